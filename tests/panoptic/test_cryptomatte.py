"""Tests of MurmurHash3, Cryptomatte IDs and the Cryptomatte EXR writer/reader."""

from __future__ import annotations

import json
import struct

import numpy as np
import OpenImageIO as oiio
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.image import read_image
from vfxmatte.panoptic import cryptomatte as cm
from vfxmatte.panoptic.cryptomatte import (
    cryptomatte_channels,
    cryptomatte_key,
    encode_cryptomatte,
    read_cryptomatte,
    write_cryptomatte,
)
from vfxmatte.panoptic.murmur import cryptomatte_id, murmurhash3_32

# --------------------------------------------------------------------------- MurmurHash3


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        # SMHasher MurmurHash3_x86_32 sanity vectors, as quoted in the Wikipedia article
        # "MurmurHash" and the widely copied StackOverflow answer "MurmurHash3 test vectors".
        (b"", 0, 0x00000000),
        (b"", 1, 0x514E28B7),
        (b"", 0xFFFFFFFF, 0x81F16F39),
        (b"\xff\xff\xff\xff", 0, 0x76293B50),
        (b"!Ce\x87", 0, 0xF55B516B),  # little-endian block 0x87654321
        (b"aaaa", 0x9747B28C, 0x5A97808A),
        (b"test", 0, 0xBA6BD213),
        (b"Hello, world!", 0, 0xC0363E43),  # 13 bytes: 3 blocks + 1-byte tail
        (b"hello", 0, 0x248BFA47),
        (b"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
    ],
)
def test_murmurhash3_reference_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmurhash3_32(data, seed) == expected


def test_murmurhash3_str_is_utf8_and_seed_is_uint32() -> None:
    assert murmurhash3_32("Hello, world!") == murmurhash3_32(b"Hello, world!")
    assert murmurhash3_32("ünï") == murmurhash3_32("ünï".encode())
    assert murmurhash3_32(b"", -1) == murmurhash3_32(b"", 0xFFFFFFFF)


# --------------------------------------------------------------------------- Cryptomatte IDs


def _spec_hash_to_float_bits(h: int) -> int:
    """The specification's C++ ``hash_to_float``: clamp the exponent to [1, 254]."""
    mantissa = h & ((1 << 23) - 1)
    exponent = min(max((h >> 23) & 0xFF, 1), 254)
    return (h & 0x80000000) | (exponent << 23) | mantissa


@pytest.mark.parametrize(
    ("name", "hex_id"),
    # The manifest example of the Cryptomatte Specification (Psyop, section "Manifest").
    [("bunny", "13851a76"), ("default", "42c9679f"), ("bunny_porcelain_mat", "b24b26d4")],
)
def test_cryptomatte_id_matches_spec_manifest_example(name: str, hex_id: str) -> None:
    bits, value = cryptomatte_id(name)
    assert f"{bits:08x}" == hex_id
    assert value == struct.unpack("<f", bytes.fromhex(hex_id)[::-1])[0]


@pytest.mark.parametrize(
    ("name", "raw", "fixed"),
    [
        # Found by search over "obj<i>": mm3 gives exponent 0 (a denormal) and 255 (a NaN);
        # the spec's clamp makes them exponent 1 and 254, i.e. bit 23 flips.
        ("obj45", 0x00734D5C, 0x00F34D5C),
        ("obj520", 0x7FBB01ED, 0x7F3B01ED),
    ],
)
def test_cryptomatte_id_clamps_exponent(name: str, raw: int, fixed: int) -> None:
    assert murmurhash3_32(name) == raw
    bits, value = cryptomatte_id(name)
    assert bits == fixed == _spec_hash_to_float_bits(raw)
    assert np.isfinite(value) and abs(value) >= np.finfo(np.float32).tiny


def test_cryptomatte_id_equals_spec_conversion_for_many_names() -> None:
    for i in range(2000):
        bits, value = cryptomatte_id(f"segment_{i}")
        assert bits == _spec_hash_to_float_bits(murmurhash3_32(f"segment_{i}"))
        assert np.float32(value).view(np.uint32) == bits


def test_channels_and_key() -> None:
    assert cryptomatte_channels("CryptoObject", 3) == [
        f"CryptoObject{g:02d}.{c}" for g in range(2) for c in "RGBA"
    ]
    # mm3("CryptoObject") = 0x3ae39a58 (this module); the key is its first 7 hex digits.
    assert cryptomatte_key("CryptoObject") == "3ae39a5"


# --------------------------------------------------------------------------- writing


def _blobs(height: int = 16, width: int = 20) -> dict[str, np.ndarray]:
    """3 overlapping soft segments whose coverages sum to 1 everywhere."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    raw = [
        np.exp(-((x - 4) ** 2 + (y - 4) ** 2) / 20),
        np.exp(-((x - 15) ** 2 + (y - 8) ** 2) / 30),
        np.full((height, width), 0.05, np.float32),  # the background, everywhere
    ]
    total = sum(raw)
    return {
        n: (r / total).astype(np.float32) for n, r in zip(["hero", "car", "sky"], raw, strict=True)
    }


def _attributes(path) -> tuple[list[str], dict[str, object], object]:
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    inp.close()
    attrs = {a.name: a.value for a in spec.extra_attribs}
    return list(spec.channelnames), attrs, spec.format


def test_round_trip_three_soft_segments(tmp_path) -> None:
    cov = _blobs()
    assert np.allclose(sum(cov.values()), 1.0, atol=1e-6)
    path = tmp_path / "crypto.exr"
    write_cryptomatte(path, cov)
    back = read_cryptomatte(path)
    assert list(back) == ["hero", "car", "sky"]
    for name, matte in cov.items():
        assert back[name].dtype == np.float32 and back[name].shape == (16, 20)
        np.testing.assert_allclose(back[name], matte, atol=1e-6)


def test_channel_names_pixel_type_and_metadata(tmp_path) -> None:
    cov = _blobs()
    path = tmp_path / "crypto.exr"
    write_cryptomatte(path, cov, metadata={"Artist": "pytest"})
    channels, attrs, fmt = _attributes(path)
    # EXR stores channels sorted by name; the set is what Nuke looks up.
    assert sorted(channels) == sorted(f"CryptoObject{g:02d}.{c}" for g in range(3) for c in "RGBA")
    assert fmt == oiio.FLOAT  # ids must not go through half
    key = "3ae39a5"
    assert attrs[f"cryptomatte/{key}/name"] == "CryptoObject"
    assert attrs[f"cryptomatte/{key}/hash"] == "MurmurHash3_32"
    assert attrs[f"cryptomatte/{key}/conversion"] == "uint32_to_float32"
    manifest = json.loads(attrs[f"cryptomatte/{key}/manifest"])
    assert manifest == {n: f"{cryptomatte_id(n)[0]:08x}" for n in cov}
    assert attrs["Artist"] == "pytest"


def test_pixel_layout_is_ranked_id_coverage_pairs(tmp_path) -> None:
    ones = np.ones((1, 1), np.float32)
    cov = {"a": 0.2 * ones, "b": 0.5 * ones, "c": 0.3 * ones}
    path = tmp_path / "one.exr"
    write_cryptomatte(path, cov, layer="CryptoMaterial", ranks=6)
    p00 = read_image(path, "CryptoMaterial00").pixels[0, 0]
    p01 = read_image(path, "CryptoMaterial01").pixels[0, 0]
    p02 = read_image(path, "CryptoMaterial02").pixels[0, 0]
    ida, idb, idc = (np.float32(cryptomatte_id(n)[1]) for n in "abc")
    np.testing.assert_array_equal(p00, np.array([idb, 0.5, idc, 0.3], np.float32))  # rank 0, rank 1
    np.testing.assert_array_equal(p01, np.array([ida, 0.2, 0, 0], np.float32))  # rank 2, empty
    np.testing.assert_array_equal(p02, np.zeros(4, np.float32))  # ranks 4, 5: empty
    assert p00.view(np.uint32)[0] == cryptomatte_id("b")[0]  # bit-exact through the file


def test_more_segments_than_ranks_keeps_the_largest(tmp_path) -> None:
    # Per pixel 5 segments with distinct coverages; ranks=3 is rounded up to 4, so the
    # smallest one in each pixel is dropped: its coverage is lost, the kept 4 are exact.
    rng = np.random.default_rng(1)
    raw = rng.permuted(np.tile(np.arange(1, 6, dtype=np.float32), (8, 9, 1)), axis=-1)
    raw /= raw.sum(axis=-1, keepdims=True)
    cov = {f"s{k}": raw[..., k] for k in range(5)}
    path = tmp_path / "trunc.exr"
    write_cryptomatte(path, cov, ranks=3)
    channels, _, _ = _attributes(path)
    assert len(channels) == 8  # 2 RGBA groups = 4 ranks
    back = np.stack([read_cryptomatte(path)[f"s{k}"] for k in range(5)], axis=-1)
    smallest = raw == raw.min(axis=-1, keepdims=True)
    np.testing.assert_array_equal(back[smallest], 0.0)
    np.testing.assert_allclose(back[~smallest], raw[~smallest], atol=1e-7)
    np.testing.assert_allclose(back.sum(axis=-1), 1 - raw.min(axis=-1), atol=1e-6)


def _naive_encode(stack: np.ndarray, ids: np.ndarray, ranks: int) -> np.ndarray:
    out = np.zeros(stack.shape[:2] + (2 * ranks,), np.float32)
    for y, x in np.ndindex(*stack.shape[:2]):
        pairs = sorted(((-c, k) for k, c in enumerate(stack[y, x]) if c > 0))[:ranks]
        for r, (neg, k) in enumerate(pairs):
            out[y, x, 2 * r : 2 * r + 2] = [ids[k], -neg]
    return out


@pytest.mark.parametrize(("segments", "ranks"), [(3, 6), (9, 4), (9, 2)])
def test_encode_matches_per_pixel_reference_and_chunking(monkeypatch, segments, ranks) -> None:
    rng = np.random.default_rng(segments)
    stack = rng.uniform(0, 1, (7, 5, segments)).astype(np.float32)
    stack[stack < 0.3] = 0  # absent segments
    stack[0, 0] = 0.25  # a tie everywhere: input order decides
    cov = {f"n{k}": stack[..., k] for k in range(segments)}
    ids = np.array([cryptomatte_id(f"n{k}")[1] for k in range(segments)], np.float32)
    expected = _naive_encode(stack, ids, ranks)
    whole, _ = encode_cryptomatte(cov, ranks)
    monkeypatch.setattr(cm, "_CHUNK_ELEMENTS", 1)  # one row at a time
    chunked, _ = encode_cryptomatte(cov, ranks)
    np.testing.assert_array_equal(whole, expected)
    np.testing.assert_array_equal(chunked, expected)


def test_extra_channels_in_the_same_file(tmp_path) -> None:
    cov = _blobs()
    rgba = {
        c: np.full((16, 20), v, np.float32)
        for c, v in zip("RGBA", [0.1, 0.2, 0.3, 1.0], strict=True)
    }
    path = tmp_path / "extra.exr"
    write_cryptomatte(path, cov, extra_channels={**rgba, "hero.A": cov["hero"]})
    np.testing.assert_array_equal(
        read_image(path, "RGBA").pixels[0, 0], [rgba[c][0, 0] for c in "RGBA"]
    )
    np.testing.assert_array_equal(read_image(path, "hero.A").pixels[..., 0], cov["hero"])
    np.testing.assert_allclose(read_cryptomatte(path)["car"], cov["car"], atol=1e-6)


def test_two_cryptomattes_in_one_file(tmp_path) -> None:
    objects = _blobs()
    materials = {"chrome": np.full((16, 20), 0.7, np.float32)}
    pixels, manifest = encode_cryptomatte(materials, 2)
    key = cryptomatte_key("CryptoMaterial")
    meta = {
        f"cryptomatte/{key}/name": "CryptoMaterial",
        f"cryptomatte/{key}/hash": "MurmurHash3_32",
        f"cryptomatte/{key}/conversion": "uint32_to_float32",
        f"cryptomatte/{key}/manifest": json.dumps(manifest),
    }
    extra = dict(
        zip(cryptomatte_channels("CryptoMaterial", 2), np.moveaxis(pixels, -1, 0), strict=True)
    )
    path = tmp_path / "two.exr"
    write_cryptomatte(path, objects, metadata=meta, extra_channels=extra)
    with pytest.raises(InputError, match="several Cryptomattes.*CryptoMaterial, CryptoObject"):
        read_cryptomatte(path)
    np.testing.assert_allclose(read_cryptomatte(path, "CryptoMaterial")["chrome"], 0.7)
    assert set(read_cryptomatte(path, "CryptoObject")) == {"hero", "car", "sky"}
    with pytest.raises(InputError, match="no Cryptomatte 'CryptoMaterail'.*Did you mean"):
        read_cryptomatte(path, "CryptoMaterail")


# --------------------------------------------------------------------------- errors


def test_input_errors(tmp_path) -> None:
    path = tmp_path / "bad.exr"
    a = np.zeros((4, 5), np.float32)
    with pytest.raises(InputError, match="no segments"):
        write_cryptomatte(path, {})
    with pytest.raises(InputError, match=r"'b' is \(4, 6\), expected \(4, 5\).*'a'"):
        write_cryptomatte(path, {"a": a, "b": np.zeros((4, 6))})
    with pytest.raises(InputError, match="H x W"):
        write_cryptomatte(path, {"a": np.zeros((4, 5, 1))})
    nan = a.copy()
    nan[2, 3] = np.nan
    with pytest.raises(InputError, match="'a' has 1 NaN.*x=3, y=2"):
        write_cryptomatte(path, {"a": nan})
    with pytest.raises(InputError, match="non-empty strings"):
        write_cryptomatte(path, {"": a})
    with pytest.raises(InputError, match="non-empty strings"):
        write_cryptomatte(path, {3: a})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="Extra channel shapes differ.*the coverages"):
        write_cryptomatte(path, {"a": a}, extra_channels={"R": np.zeros((2, 2))})
    assert not path.exists()


def test_config_errors(tmp_path, monkeypatch) -> None:
    a = {"a": np.zeros((4, 5), np.float32)}
    with pytest.raises(ConfigError, match="float32.*half"):
        write_cryptomatte(tmp_path / "x.exr", a, dtype="half")
    with pytest.raises(ConfigError, match="OpenEXR"):
        write_cryptomatte(tmp_path / "x.png", a)
    with pytest.raises(ConfigError, match="ranks"):
        write_cryptomatte(tmp_path / "x.exr", a, ranks=0)
    with pytest.raises(ConfigError, match="clash"):
        write_cryptomatte(tmp_path / "x.exr", a, extra_channels={"CryptoObject00.R": a["a"]})
    # A real MurmurHash3 collision is ~1 in 2^32 per pair; fake one.
    monkeypatch.setattr(cm, "cryptomatte_id", lambda name: (0x3F800000, 1.0))
    with pytest.raises(ConfigError, match="'a' and 'b' have the same Cryptomatte ID 3f800000"):
        write_cryptomatte(tmp_path / "x.exr", {**a, "b": a["a"]})


def test_reader_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_cryptomatte(tmp_path / "missing.exr")
    from vfxmatte.io.image import write_image

    plain = tmp_path / "plain.exr"
    write_image(plain, np.zeros((2, 2, 1), np.float32), ["A"])
    with pytest.raises(InputError, match="no Cryptomatte metadata"):
        read_cryptomatte(plain)
