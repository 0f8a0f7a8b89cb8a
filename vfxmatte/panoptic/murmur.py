"""MurmurHash3 (x86, 32-bit) and the Cryptomatte name -> ID conversion.

Pure Python, no dependency: :func:`murmurhash3_32` is Austin Appleby's public-domain
``MurmurHash3_x86_32`` (SMHasher), which is the hash the Cryptomatte specification
requires ("Cryptomatte Specification", Psyop 2015, section *ID Generation / Hash*).
:func:`cryptomatte_id` applies the specification's ``uint32_to_float32`` conversion.
"""

from __future__ import annotations

import struct

__all__ = ["cryptomatte_id", "murmurhash3_32"]

_MASK = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _fmix32(h: int) -> int:
    """The final avalanche step of MurmurHash3 (forces every input bit to flip output bits)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def murmurhash3_32(data: bytes | str, seed: int = 0) -> int:
    """MurmurHash3_x86_32 of ``data``.

    Args:
        data: the bytes to hash; a ``str`` is hashed as its UTF-8 encoding.
        seed: unsigned 32-bit seed (taken modulo 2**32).

    Returns:
        The hash as an unsigned int in ``[0, 2**32)``, the value the C reference writes
        to its ``uint32_t`` output.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    h = seed & _MASK
    nblocks = len(data) // 4
    # Body: little-endian 32-bit blocks, as the reference reads them on x86.
    for (k,) in struct.iter_unpack("<I", data[: nblocks * 4]):
        k = (k * _C1) & _MASK
        k = _rotl32(k, 15)
        k = (k * _C2) & _MASK
        h ^= k
        h = _rotl32(h, 13)
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[nblocks * 4 :]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * _C1) & _MASK
        k = _rotl32(k, 15)
        k = (k * _C2) & _MASK
        h ^= k
    h ^= len(data) & _MASK
    return _fmix32(h)


def cryptomatte_id(name: str) -> tuple[int, float]:
    """The Cryptomatte ID of ``name``: its uint32 bits and the float32 stored in pixels.

    The hash is MurmurHash3_x86_32 of the UTF-8 name with seed 0. The specification's
    ``uint32_to_float32`` conversion clamps the float exponent to ``[1, 254]`` so that no
    ID is a denormal, an infinity or a NaN; for the two out-of-range exponents (0 and 255)
    the clamp equals flipping bit 23, which is what is done here. The manifest stores
    ``f"{bits:08x}"`` of the returned bits.

    Args:
        name: the segment name (any non-empty string).

    Returns:
        ``(bits, value)``: ``bits`` the uint32 after the exponent fix, ``value`` those
        bits reinterpreted as a float32 (returned as a Python float, exactly representable).
    """
    h = murmurhash3_32(name.encode("utf-8"), 0)
    exponent = (h >> 23) & 0xFF
    if exponent in (0, 255):
        h ^= 1 << 23
    (value,) = struct.unpack("<f", struct.pack("<I", h))
    return h, value
