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

# Linear values below 0 (out-of-gamut colour, negative lobes of a resize filter), in
# the toe, in [0, 1] and above 1 (highlights).
WIDE = np.array([-100.0, -2.0, -0.5, -0.01, -1e-4, 0.0, 1e-4, 0.002, 0.0031308, 0.01, 0.18,
                 0.5, 1.0, 1.5, 4.0, 16.0, 100.0], np.float32)


def test_srgb_curve_known_values() -> None:
    x = np.array([0.0, 0.0031308, 0.18, 1.0], np.float32)
    # IEC 61966-2-1: 0.18 linear -> 0.46135 encoded; the curve meets 1 at 1.
    np.testing.assert_allclose(linear_to_srgb(x), [0.0, 0.04044994, 0.46135613, 1.0], atol=1e-6)


def test_transfer_round_trip_keeps_values_above_one_and_below_zero() -> None:
    np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(WIDE)), WIDE, rtol=1e-5, atol=1e-7)
    assert linear_to_srgb(np.float32(4.0)) > 1.0
    assert np.all(np.diff(linear_to_srgb(WIDE)) > 0)  # monotonic: no fold at 0


def _ocio_processor(config: str, src: str, dst: str):
    ocio = pytest.importorskip("PyOpenColorIO")
    return ocio.Config.CreateFromFile(config).getProcessor(src, dst).getDefaultCPUProcessor()


def _ocio_apply(processor, values: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(np.repeat(values[:, None], 3, axis=1), np.float32)
    processor.applyRGB(rgb)
    return rgb[:, 0]


@pytest.mark.parametrize("config", ["ocio://default", "ocio://studio-config-latest"])
def test_srgb_curve_outside_0_1_matches_opencolorio(config) -> None:
    """OCIO's built-in configs extend the curve linearly below 0 (-0.5 -> -6.46) and
    continue the power segment above 1; the numpy path gives the same numbers in both
    directions (OCIO's own linear slope is 12.9232 where IEC 61966-2-1 says 12.92)."""
    lin, srgb = "Linear Rec.709 (sRGB)", "sRGB Encoded Rec.709 (sRGB)"
    encoded = _ocio_apply(_ocio_processor(config, lin, srgb), WIDE)
    np.testing.assert_allclose(linear_to_srgb(WIDE), encoded, rtol=5e-4, atol=1e-6)
    assert abs(float(linear_to_srgb(np.float32(-0.5))) + 6.46) < 1e-3
    display = np.array([-10.0, -1.0, -0.2, -0.01, 0.0, 0.02, 0.5, 1.0, 1.3, 3.0], np.float32)
    decoded = _ocio_apply(_ocio_processor(config, srgb, lin), display)
    np.testing.assert_allclose(srgb_to_linear(display), decoded, rtol=5e-4, atol=1e-6)


def test_named_conversion_below_zero_matches_the_acescg_path() -> None:
    """``lin_rec709 -> sRGB`` (numpy) and ``ACEScg -> sRGB`` (OCIO) agree on negative and
    bright values: one rule whatever the plate's colourspace."""
    rgb = np.stack([WIDE, WIDE[::-1], np.full_like(WIDE, -0.25)], axis=1)[None]
    acescg = convert_colourspace(rgb, "lin_rec709", "ACEScg")
    via_ocio = convert_colourspace(acescg, "ACEScg", "sRGB")
    np.testing.assert_allclose(convert_colourspace(rgb, "lin_rec709", "sRGB"), via_ocio,
                               rtol=2e-3, atol=1e-4)


def test_torch_curve_follows_the_same_rule() -> None:
    torch = pytest.importorskip("torch")
    from vfxmatte.io.colour_torch import srgb_decode, srgb_encode

    x = torch.from_numpy(WIDE)
    np.testing.assert_allclose(srgb_encode(x).numpy(), np.clip(linear_to_srgb(WIDE), 0, 1),
                               atol=1e-6)
    display = np.linspace(-2, 3, 41, dtype=np.float32)
    np.testing.assert_allclose(srgb_decode(torch.from_numpy(display)).numpy(),
                               srgb_to_linear(display), rtol=1e-5, atol=1e-7)


def test_display_round_trip_with_and_without_clip() -> None:
    plate = np.array([[[0.02, 0.5, 4.0], [-0.3, -0.001, 250.0]]], np.float32)
    shown = to_display(plate)
    assert shown.max() == 1.0 and shown.min() == 0.0
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
