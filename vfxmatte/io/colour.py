"""Colour: the sRGB transfer function and named colourspace conversion (OCIO).

Plates are scene-linear unless the file or the user says otherwise; models and
the classical solver see display-referred sRGB values in [0,1]. This module is the
one place where that conversion happens (DESIGN.md, "Colour").

Values above 1.0. :func:`linear_to_srgb` and :func:`srgb_to_linear` extend the
sRGB curve past 1.0 (and mirror it below 0), so ``srgb_to_linear(linear_to_srgb(x))
== x`` for every finite ``x``: a round trip linear -> display -> linear keeps
highlights when the caller passes ``clip=False`` to :func:`to_display`. Models get
``clip=True`` (values in [0,1]); the engine never writes a foreground made from
the clipped copy, it takes colour from the linear plate.

Named conversion goes through OpenImageIO's OCIO support: its built-in config
(ACES studio config) by default, or a config file given with ``ocio_config``
(CLI ``--ocio``) or the ``OCIO`` environment variable. Names and aliases of that
config are accepted: ``ACEScg``, ``lin_rec709`` (= ``Linear Rec.709 (sRGB)``),
``sRGB`` (= ``sRGB Encoded Rec.709 (sRGB)``), ``scene_linear`` ...
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from vfxmatte.errors import ConfigError, closest_hint

__all__ = [
    "available_colourspaces",
    "convert_colourspace",
    "from_display",
    "is_linear",
    "linear_to_srgb",
    "resolve_colourspace",
    "srgb_to_linear",
    "to_display",
]

# Names that need no OCIO round trip: the sRGB curve on Rec.709 primaries.
_LINEAR_709 = "Linear Rec.709 (sRGB)"
_SRGB_709 = "sRGB Encoded Rec.709 (sRGB)"


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB OETF (IEC 61966-2-1), extended past 1.0 and mirrored below 0.

    Args:
        x: linear values, any shape, float.
    Returns:
        float32 array of the same shape; [0,1] maps to [0,1].
    """
    x = np.asarray(x, dtype=np.float32)
    a = np.abs(x)
    y = np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(a, 1 / 2.4) - 0.055)
    return (np.sign(x) * y).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`linear_to_srgb` (same extension past 1.0 and below 0)."""
    x = np.asarray(x, dtype=np.float32)
    a = np.abs(x)
    y = np.where(a <= 0.04045, a / 12.92, np.power((a + 0.055) / 1.055, 2.4))
    return (np.sign(x) * y).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _config(ocio_config: str | None) -> Any:
    import OpenImageIO as oiio

    if ocio_config and not os.path.isfile(ocio_config) and not ocio_config.startswith("ocio://"):
        raise ConfigError(f"The OCIO config '{ocio_config}' does not exist.")
    return oiio.ColorConfig(ocio_config or "")


def available_colourspaces(ocio_config: str | None = None) -> list[str]:
    """The colourspace names of the OCIO config in use."""
    return list(_config(ocio_config).getColorSpaceNames())


def resolve_colourspace(name: str, ocio_config: str | None = None) -> str:
    """The config's canonical name for ``name`` (an alias, role or name).

    Raises:
        ConfigError: for a name the config does not know, listing the valid ones.
    """
    cfg = _config(ocio_config)
    resolved = cfg.resolve(name)
    if cfg.getColorSpaceIndex(resolved) < 0:
        names = available_colourspaces(ocio_config)
        raise ConfigError(
            f"Unknown colourspace '{name}' in the OCIO config '{cfg.configname()}'; valid: "
            f"{', '.join(names)} (aliases such as ACEScg, lin_rec709, sRGB work too)."
            + closest_hint(name, names)
        )
    return resolved


def is_linear(name: str, ocio_config: str | None = None) -> bool:
    """Whether the colourspace ``name`` is scene-linear."""
    cfg = _config(ocio_config)
    return bool(cfg.isColorSpaceLinear(resolve_colourspace(name, ocio_config)))


def convert_colourspace(
    pixels: np.ndarray, src: str, dst: str, *, ocio_config: str | None = None
) -> np.ndarray:
    """Convert ``H x W x C`` float32 pixels (C >= 3; extra channels untouched).

    The sRGB <-> linear Rec.709 pair takes the exact numpy path above; every other
    pair goes through OpenImageIO's ``colorconvert`` with the given config.
    """
    src_name = resolve_colourspace(src, ocio_config)
    dst_name = resolve_colourspace(dst, ocio_config)
    pixels = np.asarray(pixels, dtype=np.float32)
    if src_name == dst_name:
        return pixels.copy()
    rgb = pixels[..., :3]
    if ocio_config is None and {src_name, dst_name} == {_LINEAR_709, _SRGB_709}:
        out_rgb = linear_to_srgb(rgb) if src_name == _LINEAR_709 else srgb_to_linear(rgb)
    else:
        out_rgb = _ocio_convert(rgb, src_name, dst_name, ocio_config)
    if pixels.shape[-1] == 3:
        return out_rgb
    return np.concatenate([out_rgb, pixels[..., 3:]], axis=-1)


def _ocio_convert(rgb: np.ndarray, src: str, dst: str, ocio_config: str | None) -> np.ndarray:
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(np.ascontiguousarray(rgb))
    out = oiio.ImageBufAlgo.colorconvert(
        buf, src, dst, False, "", "", ocio_config or "", oiio.ROI.All, 0
    )
    if out.has_error:
        raise ConfigError(f"Colour conversion {src} -> {dst} failed: {out.geterror()}.")
    return np.asarray(out.get_pixels(oiio.FLOAT), dtype=np.float32).reshape(rgb.shape)


def to_display(
    pixels: np.ndarray,
    colourspace: str = "lin_rec709",
    *,
    clip: bool = True,
    ocio_config: str | None = None,
) -> np.ndarray:
    """Plate colours -> display-referred sRGB, the input of models and solvers.

    Args:
        pixels: ``H x W x 3`` float32 in ``colourspace``.
        clip: clip to [0,1] (what models need). ``clip=False`` keeps values
            above 1.0 so that :func:`from_display` restores the plate exactly.
    """
    out = convert_colourspace(pixels, colourspace, "sRGB", ocio_config=ocio_config)
    return np.clip(out, 0.0, 1.0) if clip else out


def from_display(
    pixels: np.ndarray, colourspace: str = "lin_rec709", *, ocio_config: str | None = None
) -> np.ndarray:
    """Display-referred sRGB -> ``colourspace`` (inverse of :func:`to_display`)."""
    return convert_colourspace(pixels, "sRGB", colourspace, ocio_config=ocio_config)
