from __future__ import annotations

import numpy as np
import OpenImageIO as oiio
import pytest

from vfxmatte.errors import ConfigError
from vfxmatte.io.colour import (
    convert_colourspace,
    from_display,
    is_linear,
    linear_to_srgb,
    resolve_colourspace,
    srgb_to_linear,
    to_display,
)


def test_srgb_curve_known_values() -> None:
    x = np.array([0.0, 0.0031308, 0.18, 1.0], np.float32)
    # IEC 61966-2-1: 0.18 linear -> 0.46135 encoded; the curve meets 1 at 1.
    np.testing.assert_allclose(linear_to_srgb(x), [0.0, 0.04044994, 0.46135613, 1.0], atol=1e-6)


def test_transfer_round_trip_keeps_values_above_one() -> None:
    x = np.array([-0.5, 0.0, 1e-4, 0.5, 1.0, 4.0, 100.0], np.float32)
    np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(x)), x, rtol=1e-5, atol=1e-7)
    assert linear_to_srgb(np.float32(4.0)) > 1.0


def test_display_round_trip_with_and_without_clip() -> None:
    plate = np.array([[[0.02, 0.5, 4.0]]], np.float32)
    shown = to_display(plate)
    assert shown.max() == 1.0
    np.testing.assert_allclose(from_display(to_display(plate, clip=False)), plate, rtol=1e-5)


def test_numpy_path_matches_ocio() -> None:
    rgb = np.random.default_rng(1).uniform(0, 2, (6, 7, 3)).astype(np.float32)
    ours = convert_colourspace(rgb, "lin_rec709", "sRGB")
    ocio = oiio.ImageBufAlgo.colorconvert(oiio.ImageBuf(rgb), "lin_rec709", "sRGB", False)
    np.testing.assert_allclose(ours, ocio.get_pixels(oiio.FLOAT), atol=5e-5)


def test_acescg_round_trip_and_alpha_untouched() -> None:
    rgba = np.random.default_rng(2).uniform(0, 3, (5, 4, 4)).astype(np.float32)
    there = convert_colourspace(rgba, "ACEScg", "lin_rec709")
    assert not np.allclose(there[..., :3], rgba[..., :3])
    np.testing.assert_array_equal(there[..., 3], rgba[..., 3])
    back = convert_colourspace(there, "lin_rec709", "ACEScg")
    np.testing.assert_allclose(back, rgba, rtol=1e-4, atol=1e-5)


def test_names_and_aliases() -> None:
    assert resolve_colourspace("lin_rec709") == "Linear Rec.709 (sRGB)"
    assert resolve_colourspace("sRGB") == "sRGB Encoded Rec.709 (sRGB)"
    assert resolve_colourspace("ACEScg") == "ACEScg"
    assert is_linear("ACEScg") and not is_linear("sRGB")
    with pytest.raises(ConfigError, match="Unknown colourspace 'ACEScgg'.*Did you mean 'ACEScg'"):
        convert_colourspace(np.zeros((1, 1, 3), np.float32), "ACEScgg", "sRGB")


def test_ocio_config_path(tmp_path) -> None:
    with pytest.raises(ConfigError, match="The OCIO config '.*missing.ocio' does not exist"):
        resolve_colourspace("ACEScg", str(tmp_path / "missing.ocio"))
    cfg = tmp_path / "tiny.ocio"
    cfg.write_text(
        "ocio_profile_version: 2\nroles:\n  default: lin\n  scene_linear: lin\n"
        "colorspaces:\n  - !<ColorSpace>\n    name: lin\n    isdata: false\n"
        "  - !<ColorSpace>\n    name: double\n    isdata: false\n"
        "    from_scene_reference: !<MatrixTransform> {matrix: [2,0,0,0, 0,2,0,0, 0,0,2,0, 0,0,0,1]}\n"
    )
    out = convert_colourspace(np.ones((1, 2, 3), np.float32), "lin", "double", ocio_config=str(cfg))
    np.testing.assert_allclose(out, 2.0)
