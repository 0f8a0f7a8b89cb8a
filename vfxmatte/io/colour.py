"""Colour: the sRGB transfer function and named colourspace conversion (OCIO).

Plates are scene-linear unless the file or the user says otherwise; models and
the classical solver see display-referred sRGB values in [0,1]. This module is the
one place where that conversion happens (DESIGN.md, "Colour").

Values outside [0, 1]. :func:`linear_to_srgb` and :func:`srgb_to_linear` extend the
sRGB curve the way OCIO's built-in configs do (``ExponentWithLinearTransform``,
style ``linear``; vfxmatte's ACEScg path goes through them): the power segment
continues past 1.0 and the linear segment continues below 0 (linear -0.5 -> sRGB
-6.46, not the mirrored -0.735). Both are monotonic, so ``srgb_to_linear(
linear_to_srgb(x)) == x`` for every finite ``x``: a round trip linear -> display ->
linear keeps highlights and negative values when the caller passes ``clip=False``
to :func:`to_display`. Models get
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
    "colourspace_table",
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
_COMMON = ("ACEScg", "lin_rec709", "sRGB", "ACES2065-1", "ACEScct")


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB OETF (IEC 61966-2-1), the power segment extended past 1.0 and the linear
    segment below 0, as OCIO's built-in configs extend it.

    Args:
        x: linear values, any shape, float.
    Returns:
        float32 array of the same shape; [0,1] maps to [0,1], ``x < 0`` to ``12.92 x``.
    """
    x = np.asarray(x, dtype=np.float32)
    curve = 1.055 * np.power(np.maximum(x, np.float32(0.0031308)), 1 / 2.4) - 0.055
    with np.errstate(over="ignore"):  # below -2.6e37 the line leaves float32: -inf
        line = x * np.float32(12.92)
    return np.where(x <= 0.0031308, line, curve).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`linear_to_srgb` (same extension past 1.0 and below 0)."""
    x = np.asarray(x, dtype=np.float32)
    curve = np.power((np.maximum(x, np.float32(0.04045)) + 0.055) / 1.055, 2.4)
    return np.where(x <= 0.04045, x / np.float32(12.92), curve).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _config(ocio_config: str | None) -> Any:
    import OpenImageIO as oiio

    if ocio_config and not os.path.isfile(ocio_config) and not ocio_config.startswith("ocio://"):
        raise ConfigError(f"The OCIO config '{ocio_config}' does not exist.")
    cfg = oiio.ColorConfig(ocio_config or "")
    error = cfg.geterror() if ocio_config else ""
    if error:  # OpenImageIO falls back to a minimal built-in config: say so instead
        from vfxmatte.io.image_checks import clean_text

        raise ConfigError(
            f"Cannot read the OCIO config '{ocio_config}' ({clean_text(error, limit=160)}); "
            "give a valid config.ocio, or an ocio:// built-in name."
        )
    return cfg


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
        hint = closest_hint(name, [*names, *_aliases(cfg, names)])
        common = [c for c in _COMMON if cfg.getColorSpaceIndex(cfg.resolve(c)) >= 0]
        listed = f"Common names: {', '.join(common)}; " if common else ""
        raise ConfigError(
            f"Unknown colourspace '{name}' in the OCIO config '{cfg.configname()}'.{hint} "
            f"{listed}'vfxmatte info --colourspaces' lists all {len(names)} with their aliases."
        )
    return resolved


def _aliases(cfg: Any, names: list[str]) -> list[str]:
    getter = getattr(cfg, "getAliases", None)
    if getter is None:
        return []
    return [alias for n in names for alias in getter(n)]


def colourspace_table(ocio_config: str | None = None) -> list[tuple[str, list[str], bool]]:
    """``(name, aliases, is scene-linear)`` of every colourspace of the config in use."""
    cfg = _config(ocio_config)
    getter = getattr(cfg, "getAliases", None)
    return [
        (n, list(getter(n)) if getter else [], bool(cfg.isColorSpaceLinear(n)))
        for n in available_colourspaces(ocio_config)
    ]


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
