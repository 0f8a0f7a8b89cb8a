"""Cryptomatte EXR output and input (ID mattes for Nuke, Houdini, Blender, Fusion).

Follows the "Cryptomatte Specification" (Psyop, Friedman & Jones 2015, v1.1/1.2):

* channels ``{layer}00.R/G/B/A``, ``{layer}01.R/G/B/A``, ...: each RGBA group holds two
  ranks, ``R`` = ID of rank ``2n``, ``G`` = its coverage, ``B`` = ID of rank ``2n+1``,
  ``A`` = its coverage (section *EXR File / Channel contents*). Rank 0 is the segment
  with the highest coverage in the pixel (section *Ranking Pixel Filter*). An empty rank
  has ID 0.0 and coverage 0.
* IDs are MurmurHash3_x86_32 of the UTF-8 name, converted ``uint32_to_float32``
  (:func:`~vfxmatte.panoptic.murmur.cryptomatte_id`); they are stored as float32,
  never half, since half would destroy the hash bits.
* header attributes ``cryptomatte/<key>/name``, ``/hash`` (``MurmurHash3_32``),
  ``/conversion`` (``uint32_to_float32``) and ``/manifest`` (JSON ``{name: "8 hex"}``),
  with ``<key>`` the first 7 hex digits of the MurmurHash3 of the layer name (as
  Blender does; the spec only asks for a key stable across frames).

A pixel with more segments than ranks keeps the ``ranks`` largest coverages exactly and
loses the rest, as a renderer's ranking filter does.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vfxmatte.errors import ConfigError, InputError, closest_hint
from vfxmatte.io.image import read_image, write_image
from vfxmatte.panoptic.murmur import cryptomatte_id, murmurhash3_32

__all__ = [
    "cryptomatte_channels",
    "cryptomatte_key",
    "encode_cryptomatte",
    "read_cryptomatte",
    "write_cryptomatte",
]

log = logging.getLogger(__name__)

HASH = "MurmurHash3_32"
CONVERSION = "uint32_to_float32"
#: Elements of the ``rows x W x K`` coverage stack ranked at a time (bounds memory).
_CHUNK_ELEMENTS = 1 << 22


def cryptomatte_key(layer: str) -> str:
    """The 7-hex-digit metadata key of ``layer``: ``f"{mm3(layer):08x}"[:7]``."""
    return f"{murmurhash3_32(layer):08x}"[:7]


def cryptomatte_channels(layer: str, ranks: int) -> list[str]:
    """Channel names for ``ranks`` ranks, rounded up to a whole RGBA group of 2 ranks.

    Example: ``cryptomatte_channels("CryptoObject", 6)`` gives ``CryptoObject00.R`` ...
    ``CryptoObject02.A`` (12 names).
    """
    groups = (ranks + 1) // 2
    return [f"{layer}{g:02d}.{c}" for g in range(groups) for c in "RGBA"]


def _check_names(coverages: Mapping[str, Any]) -> None:
    if not coverages:
        raise InputError("write_cryptomatte got no segments; pass at least one name: coverage.")
    for name in coverages:
        if not isinstance(name, str) or not name:
            raise InputError(f"Segment names must be non-empty strings, got {name!r}.")


def _check_arrays(
    arrays: Mapping[str, Any], what: str, shape: tuple[int, ...] | None, ref: str = ""
) -> dict[str, np.ndarray]:
    """Float32 ``H x W`` copies of ``arrays``, all of one shape (``shape`` if given), finite.

    ``ref`` names where ``shape`` came from, for the error message.
    """
    out: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        a = np.asarray(array, dtype=np.float32)
        if a.ndim != 2:
            raise InputError(f"{what} '{name}' must be an H x W array, got shape {a.shape}.")
        if shape is None:
            shape, ref = a.shape, f"'{name}'"
        if a.shape != shape:
            raise InputError(
                f"{what} shapes differ: '{name}' is {a.shape}, expected {shape} "
                f"(the shape of {ref}); all arrays of one file must be H x W alike."
            )
        bad = ~np.isfinite(a)
        if bad.any():
            y, x = np.argwhere(bad)[0]
            raise InputError(
                f"{what} '{name}' has {int(bad.sum())} NaN/infinite value(s) "
                f"(first at x={x}, y={y}); coverage must be finite."
            )
        out[name] = a
    return out


def _segment_ids(names: list[str]) -> tuple[np.ndarray, dict[str, str]]:
    """Float32 IDs ``(K,)`` of ``names`` and the manifest; ConfigError on a hash clash."""
    seen: dict[int, str] = {}
    manifest: dict[str, str] = {}
    for name in names:
        bits, _ = cryptomatte_id(name)
        if bits in seen:
            # Probability ~K^2 / 2^33 per file: real but rare enough to ask for a rename.
            raise ConfigError(
                f"Segments '{seen[bits]}' and '{name}' have the same Cryptomatte ID "
                f"{bits:08x} (a MurmurHash3 collision); rename one of them."
            )
        seen[bits] = name
        manifest[name] = f"{bits:08x}"
    ids = np.array([int(manifest[n], 16) for n in names], dtype=np.uint32).view(np.float32)
    return ids, manifest


def _rank_rows(stack: np.ndarray, ids: np.ndarray, ranks: int) -> np.ndarray:
    """Rank one chunk: ``stack`` ``h x W x K`` coverage -> ``h x W x 2*ranks`` id/cov pairs.

    Output channel ``2r`` is the ID of rank ``r`` and ``2r+1`` its coverage, which is the
    spec's R, G, B, A order when split into groups of 4. Ties keep the input order.
    """
    h, w, k = stack.shape
    keep = min(k, ranks)
    # A full stable sort (not argpartition) so that ties at the cut are decided by input
    # order too, making the output deterministic; rows are chunked to bound its memory.
    order = np.argsort(-stack, axis=-1, kind="stable")[..., :keep]
    cov = np.take_along_axis(stack, order, axis=-1)  # [h, W, keep]
    present = cov > 0
    out = np.zeros((h, w, 2 * ranks), np.float32)
    out[..., 0 : 2 * keep : 2] = np.where(present, ids[order], np.float32(0))
    out[..., 1 : 2 * keep : 2] = np.where(present, cov, np.float32(0))
    return out


def encode_cryptomatte(
    coverages: Mapping[str, np.ndarray], ranks: int = 6
) -> tuple[np.ndarray, dict[str, str]]:
    """Rank per-segment coverages into Cryptomatte pixels.

    Args:
        coverages: name -> ``H x W`` float32 coverage in [0, 1] (values <= 0 count as
            absent; a pixel's coverages usually sum to at most 1).
        ranks: how many segments each pixel keeps (rounded up to even).

    Returns:
        ``(pixels, manifest)``: ``H x W x 2*ranks`` float32 for
        :func:`cryptomatte_channels` and ``{name: "8 hex digits"}``.

    Raises:
        InputError: no segments, bad names, non-2D/mismatched shapes, NaN/inf.
        ConfigError: ranks < 1, or two names with the same ID.
    """
    ranks = _check_ranks(ranks)
    _check_names(coverages)
    arrays = _check_arrays(coverages, "Coverage", None)
    names = list(arrays)
    height, width = arrays[names[0]].shape
    pixels = np.zeros((height, width, 2 * ranks), np.float32)
    manifest = _encode_into(pixels, arrays, ranks)
    return pixels, manifest


def _check_ranks(ranks: int) -> int:
    """``ranks`` rounded up to even; ConfigError outside 1..200."""
    if isinstance(ranks, bool) or not isinstance(ranks, int) or not 1 <= ranks <= 200:
        raise ConfigError(f"ranks must be an integer in 1..200 (default 6), got {ranks!r}.")
    return ranks + ranks % 2


def _encode_into(
    pixels: np.ndarray, arrays: Mapping[str, np.ndarray], ranks: int
) -> dict[str, str]:
    """Rank checked ``arrays`` into ``pixels`` (``H x W x 2*ranks``); returns the manifest."""
    names = list(arrays)
    ids, manifest = _segment_ids(names)
    height, width = pixels.shape[:2]
    rows = max(1, _CHUNK_ELEMENTS // max(1, width * len(names)))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        stack = np.stack([arrays[n][y0:y1] for n in names], axis=-1)  # [h, W, K]
        pixels[y0:y1] = _rank_rows(stack, ids, ranks)
    return manifest


def write_cryptomatte(
    path: str | os.PathLike[str],
    coverages: Mapping[str, np.ndarray],
    *,
    layer: str = "CryptoObject",
    ranks: int = 6,
    metadata: Mapping[str, Any] | None = None,
    extra_channels: Mapping[str, np.ndarray | Callable[[], np.ndarray]] | None = None,
    dtype: str = "float",
    compression: str = "zip",
) -> None:
    """Write a Cryptomatte EXR (atomically) from per-segment coverage mattes.

    Args:
        path: the ``.exr`` file.
        coverages: segment name -> ``H x W`` coverage (float32, linear, [0, 1]); see
            :func:`encode_cryptomatte`. The manifest lists every name.
        layer: the Cryptomatte type name (``CryptoObject``, ``CryptoMaterial``, ...).
        ranks: segments kept per pixel (default 6, the spec's suggestion; rounded up to
            even). Coverage of lower-ranked segments in a pixel is dropped.
        metadata: more header attributes (e.g. those carried from the plate).
        extra_channels: more ``H x W`` channels in the same file, e.g. an ``R,G,B,A``
            preview or ``<segment>.A`` mattes; a value may be a function returning the
            array, called once when the channel is filled (bounds memory).
        dtype: pixel type of the whole file; only ``float`` is valid, since Cryptomatte
            IDs are float32 bit patterns that half would destroy.
        compression: EXR compression (lossless ones only make sense: ``zip``, ``piz``...).

    Raises:
        InputError: see :func:`encode_cryptomatte`; an extra channel of another shape.
        ConfigError: not an ``.exr`` path, ``dtype`` other than float, a bad layer name
            or an extra channel named like a Cryptomatte channel.
    """
    path = os.fspath(path)
    if not path.lower().endswith(".exr"):
        raise ConfigError(f"Cryptomatte needs an OpenEXR file (.exr), got '{path}'.")
    if dtype != "float":
        raise ConfigError(
            f"Cryptomatte channels must be float32, got dtype {dtype!r}; IDs are float32 bit "
            "patterns that half precision would corrupt. Use dtype='float'."
        )
    if not isinstance(layer, str) or not layer:
        raise ConfigError(f"layer must be a non-empty name such as 'CryptoObject', got {layer!r}.")
    ranks = _check_ranks(ranks)
    _check_names(coverages)
    arrays = _check_arrays(coverages, "Coverage", None)
    shape = next(iter(arrays.values())).shape
    channels = cryptomatte_channels(layer, ranks)
    extras = dict(extra_channels or {})
    clash = sorted(set(extras) & set(channels))
    if clash:
        raise ConfigError(f"Extra channels {', '.join(clash)} clash with the Cryptomatte ones.")
    # One array for the whole file, filled channel by channel (no stacked copies).
    pixels = np.empty((*shape, len(extras) + 2 * ranks), np.float32)
    for c, name in enumerate(extras):
        value = extras[name]() if callable(extras[name]) else extras[name]
        checked = _check_arrays({name: value}, "Extra channel", shape, "the coverages")
        pixels[..., c] = checked[name]
    manifest = _encode_into(pixels[..., len(extras) :], arrays, ranks)
    channels = list(extras) + channels
    key = cryptomatte_key(layer)
    header = dict(metadata or {})
    header.update(
        {
            f"cryptomatte/{key}/name": layer,
            f"cryptomatte/{key}/hash": HASH,
            f"cryptomatte/{key}/conversion": CONVERSION,
            f"cryptomatte/{key}/manifest": json.dumps(manifest),
        }
    )
    write_image(path, pixels, channels, metadata=header, dtype="float", compression=compression)
    log.debug("Wrote %s: %d segments, %d channels.", path, len(manifest), len(channels))


def _header(path: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Cryptomatte attributes by key, and channel names, across all parts of ``path``."""
    import OpenImageIO as oiio

    if not os.path.isfile(path):
        raise InputError(f"The Cryptomatte file '{path}' does not exist.")
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise InputError(f"Cannot read the Cryptomatte file '{path}': {oiio.geterror()}.")
    layers: dict[str, dict[str, str]] = {}
    channels: list[str] = []
    try:
        part = 0
        while inp.seek_subimage(part, 0):
            spec = inp.spec()
            channels += [c for c in spec.channelnames if c not in channels]
            for attr in spec.extra_attribs:
                # Nuke shows them as exr/cryptomatte/...; OIIO drops the "exr/" prefix.
                match = re.fullmatch(r"(?:exr/)?cryptomatte/([^/]+)/(\w+)", attr.name)
                if match:
                    layers.setdefault(match[1], {})[match[2]] = str(attr.value)
            part += 1
    finally:
        inp.close()
    return layers, channels


def _pick_layer(path: str, layers: dict[str, dict[str, str]], layer: str | None) -> dict[str, str]:
    by_name = {fields.get("name", key): fields for key, fields in layers.items()}
    if not by_name:
        raise InputError(f"'{path}' has no Cryptomatte metadata (cryptomatte/<key>/name).")
    if layer is None:
        if len(by_name) > 1:
            raise InputError(
                f"'{path}' holds several Cryptomattes ({', '.join(sorted(by_name))}); "
                "pass layer= to choose one."
            )
        return next(iter(by_name.values()))
    if layer not in by_name:
        raise InputError(
            f"'{path}' has no Cryptomatte '{layer}'; it has: {', '.join(sorted(by_name))}."
            + closest_hint(layer, by_name)
        )
    return by_name[layer]


def _load_manifest(path: str, fields: dict[str, str]) -> dict[str, str]:
    name = fields.get("name", "?")
    if fields.get("hash", HASH) != HASH or fields.get("conversion", CONVERSION) != CONVERSION:
        raise InputError(
            f"Cryptomatte '{name}' in '{path}' uses hash {fields.get('hash')!r} / conversion "
            f"{fields.get('conversion')!r}; only {HASH} / {CONVERSION} exist in the spec."
        )
    if "manifest" in fields:
        text = fields["manifest"]
    elif "manif_file" in fields:
        sidecar = os.path.join(os.path.dirname(path), fields["manif_file"])
        try:
            with open(sidecar, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise InputError(f"Cannot read the manifest '{sidecar}' of '{path}': {exc}.") from exc
    else:
        raise InputError(f"Cryptomatte '{name}' in '{path}' has no manifest; names are unknown.")
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"The manifest of '{name}' in '{path}' is not JSON: {exc}.") from exc
    if not isinstance(manifest, dict):
        raise InputError(f"The manifest of '{name}' in '{path}' is not a JSON object.")
    return {str(k): str(v) for k, v in manifest.items()}


def read_cryptomatte(
    path: str | os.PathLike[str], layer: str | None = None
) -> dict[str, np.ndarray]:
    """Decode the mattes of a Cryptomatte EXR.

    Args:
        path: the ``.exr`` file.
        layer: the Cryptomatte type name; ``None`` when the file holds only one.

    Returns:
        manifest name -> ``H x W`` float32 coverage: the sum, over all ranks, of the
        coverage channels whose ID bits equal the name's ID. IDs in the pixels that are
        not in the manifest are ignored.

    Raises:
        InputError: missing file, no/unknown Cryptomatte, an unsupported hash or
            conversion, a missing or malformed manifest, no rank channels.
    """
    path = os.fspath(path)
    layers, available = _header(path)
    fields = _pick_layer(path, layers, layer)
    manifest = _load_manifest(path, fields)
    name = fields["name"]
    pattern = re.compile(re.escape(name) + r"(\d\d)\.([RGBA])")
    rank_channels = sorted(
        (c for c in available if pattern.fullmatch(c)),
        key=lambda c: (c[len(name) : len(name) + 2], "RGBA".index(c[-1])),
    )
    if not rank_channels or len(rank_channels) % 4:
        raise InputError(
            f"'{path}' has Cryptomatte '{name}' metadata but rank channels "
            f"{rank_channels or 'none'}; expected {name}00.R/G/B/A, {name}01.R/G/B/A..."
        )
    pixels = read_image(path, rank_channels).pixels  # [H, W, 2*ranks]: id, cov, id, cov...
    id_bits = np.ascontiguousarray(pixels[..., 0::2]).view(np.uint32)
    cov = pixels[..., 1::2]
    mattes: dict[str, np.ndarray] = {}
    for segment, hex_id in manifest.items():
        try:
            bits = np.uint32(int(hex_id, 16))
        except ValueError as exc:
            raise InputError(
                f"The manifest of '{name}' in '{path}' gives '{segment}' the ID {hex_id!r}, "
                "not 8 hex digits."
            ) from exc
        mattes[segment] = np.where(id_bits == bits, cov, np.float32(0)).sum(axis=-1)
    return mattes
