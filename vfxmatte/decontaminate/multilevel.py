"""Weight-free foreground decontamination: fast multi-level foreground estimation.

Given a plate ``I`` and its alpha, estimate the straight foreground ``F`` and the
background ``B`` with ``I = αF + (1-α)B`` so that edges carry no background spill.
The solver is the multi-level method of Germer, Uelwer, Conrad and Harmeling,
"Fast Multi-Level Foreground Estimation" (ICPR 2020, arXiv:2006.14970): a
coarse-to-fine pyramid where each level runs a few Gauss-Seidel sweeps of the
per-pixel 2×2 system of §3 (data term of the compositing equation plus a
smoothness term weighted by ``regularization + gradient_weight·|∇α|``). The
kernel is pymatting's ``estimate_foreground_ml`` (extra ``vfxmatte[classical]``).

Two things differ from calling pymatting on a whole display-referred image:

* **Scene-linear values.** pymatting clips ``F`` and ``B`` to ``[0, 1]`` after
  every update, which would flatten highlights (a plate at 4.0 would come back at
  1.0). For a fixed alpha the solver is linear in the image apart from that
  clip: the 2×2 system's matrix depends only on alpha, and its right-hand side,
  the neighbour terms and the initial mean colours are linear in ``I`` (and
  shift with it, so it is affine too). We therefore map each crop into the
  solver's range and back: ``I' = (I - lo) / s`` and ``F = F'·s + lo``. ``lo``
  is ``min(0, min I)`` (0 for ordinary plates) and ``s`` is a power of two at
  least ``_HEADROOM`` times the crop's value span, so for ``lo == 0`` the
  mapping is bit-exact in float32 (``F(k·I) = k·F(I)`` exactly for powers of
  two ``k``). The clip ends up at ``[lo, lo + s]``: the lower bound stays at 0
  as in pymatting (below the plate's own minimum if that is negative), the
  upper bound sits far above the brightest value of the crop, where it only
  stops runaway values at tiny alpha. The crop's values are not clipped.
* **Cost follows the band.** Only the uncertain band ``ε < α < 1-ε`` needs
  solving (``band_only``). The frame is cut into ``tile_size`` tiles; runs of
  tiles in a row that touch the band are solved as one crop with
  ``context_margin`` pixels of context on every side, and only the tiles' cores
  are written back. Memory per solve is bounded by the crop, not the frame. When
  the crops would cover most of the frame, one full-frame solve is cheaper and is
  used instead. The multi-level solver is linear in the pixel count, so crops of
  any size are handled by the same kernel.

Outside the band the answer is known and is set exactly, in both modes: where
``α >= 1-ε``, ``F = I`` (the compositing equation gives ``I = F`` when ``α = 1``)
and ``B = 0``; where ``α <= ε``, ``B = I`` and ``F = 0``. The straight foreground
is undefined where nothing of it is visible; 0 keeps the premultiplied colour
``αF`` at 0 there and makes it obvious in a viewer that no colour was estimated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from vfxmatte.config import param, param_specs, validate_value
from vfxmatte.decontaminate.tiles import Slices, area, band_crops, relative
from vfxmatte.errors import BackendUnavailableError, ConfigError, InputError

__all__ = [
    "MultilevelConfig",
    "estimate_foreground_background_multilevel",
    "estimate_foreground_multilevel",
]

logger = logging.getLogger(__name__)

# The solver's upper clip is moved this many times above the crop's value span.
_HEADROOM = 16.0
# Alpha may miss [0, 1] by this much (float round-off upstream) and is clipped.
_ALPHA_TOLERANCE = 1e-6
# Above this share of the frame covered by crops, one full-frame solve is cheaper.
_FULL_FRAME_SHARE = 0.7

_Solver = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass
class MultilevelConfig:
    """Options of the multi-level foreground estimation (Germer et al. 2020)."""

    regularization: float = param(
        1e-5,
        "Smoothness weight added everywhere (epsilon of the paper, §3). Higher gives "
        "smoother colours.",
        min=1e-9,
        max=1.0,
    )
    n_small_iterations: int = param(
        10,
        "Solver sweeps per pyramid level while the level is at most small_size.",
        min=1,
        max=1000,
    )
    n_big_iterations: int = param(
        2, "Solver sweeps per pyramid level above small_size.", min=1, max=1000
    )
    small_size: int = param(
        32, "Pyramid levels up to this width and height count as small.", min=1, max=65536
    )
    gradient_weight: float = param(
        1.0,
        "Extra smoothness where alpha changes (|grad alpha| term of the paper).",
        min=0.0,
        max=100.0,
    )
    band_only: bool = param(
        True,
        "Solve only crops around the uncertain band (eps < alpha < 1-eps); cost follows "
        "the band, not the frame size. Off: one solve over the whole frame.",
    )
    alpha_epsilon: float = param(
        1e-3,
        "Alpha at most this is transparent (F=0), at least 1 minus this is opaque "
        "(F=plate); between is the band that is solved.",
        min=0.0,
        max=0.1,
    )
    tile_size: int = param(
        128, "Side in pixels of the tiles that make up the band crops.", min=8, max=8192
    )
    context_margin: int = param(
        32,
        "Pixels of context solved around each band crop and then discarded.",
        min=0,
        max=4096,
    )


def estimate_foreground_multilevel(
    image: np.ndarray, alpha: np.ndarray, config: MultilevelConfig | None = None
) -> np.ndarray:
    """Straight foreground colour of a plate, free of background spill.

    Fast multi-level foreground estimation (Germer et al., ICPR 2020); see the
    module docstring for how scene-linear values and the band are handled.

    Args:
        image: ``H×W×C`` (C=3 for RGB) float plate, scene-linear; values may
            exceed 1.0 and are kept. Converted to float32.
        alpha: ``H×W`` (or ``H×W×1``) float alpha in ``[0, 1]``.
        config: solver options; defaults to :class:`MultilevelConfig`.

    Returns:
        ``H×W×C`` float32 straight (unpremultiplied) foreground, scene-linear:
        equal to ``image`` where ``alpha >= 1-ε``, 0 where ``alpha <= ε``.

    Raises:
        InputError: shapes disagree, a value is NaN/inf, alpha is outside [0, 1].
        ConfigError: a config value is out of range.
        BackendUnavailableError: pymatting is not installed.
    """
    foreground, _ = estimate_foreground_background_multilevel(image, alpha, config)
    return foreground


def estimate_foreground_background_multilevel(
    image: np.ndarray,
    alpha: np.ndarray,
    config: MultilevelConfig | None = None,
    *,
    ceiling: np.ndarray | None = None,
    solved_clear: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Straight foreground and background with ``image ≈ αF + (1-α)B``.

    Same arguments and errors as :func:`estimate_foreground_multilevel`, and:

    Args:
        ceiling: optional ``H×W`` float map, at least the plate's value at every pixel
            (and > 0): the solver's upper clip there instead of the crop-wide headroom.
            Each pixel is solved divided by its ceiling and multiplied back, so a
            ceiling of 1 where the plate is at most 1 is exactly pymatting's clip to
            ``[0, 1]`` (which bounds the ``1/α`` blow-up of tiny alphas), and a highlight
            above 1.0 keeps its value under a ceiling above it.
        solved_clear: optional ``H×W×C`` float32 array, filled where ``alpha <= ε``
            inside the solved crops with the solver's own smooth extension of ``F``
            there (NaN elsewhere); the returned ``F`` stays 0 there.

    Returns:
        ``(F, B)``, each ``H×W×C`` float32 scene-linear. ``B`` equals ``image``
        where ``alpha <= ε`` and is 0 where ``alpha >= 1-ε`` (hidden there).
    """
    cfg = _checked_config(config)
    image, alpha = _checked_inputs(image, alpha)
    eps = cfg.alpha_epsilon
    opaque = (alpha >= 1.0 - eps)[..., None]
    clear = (alpha <= eps)[..., None]
    zero = np.float32(0.0)
    foreground = np.where(opaque, image, zero)
    background = np.where(clear, image, zero)
    band = ~(opaque | clear)[..., 0]
    if not band.any():
        return foreground, background
    solve_band(
        image, alpha, cfg, solve_regions(band, cfg), foreground,
        background=background, ceiling=ceiling, solved_clear=solved_clear,
    )  # fmt: skip
    return foreground, background


def solve_band(
    image: np.ndarray,
    alpha: np.ndarray,
    cfg: MultilevelConfig,
    regions: list[tuple[Slices, Slices]],
    foreground: np.ndarray,
    *,
    background: np.ndarray | None = None,
    ceiling: np.ndarray | None = None,
    solved_clear: np.ndarray | None = None,
) -> None:
    """Solve the ``(crop, core)`` regions and write the band pixels of their cores.

    The arrays are already checked (:func:`_checked_inputs`) and in one set of coordinates,
    which may be a part of the frame (a caller that works on a box around the band):
    ``regions`` are given in those coordinates, ``foreground`` (and ``background``,
    ``solved_clear`` where given) are filled in place, pixels outside the band keep
    their values. Each crop's result depends on the crop only, so solving the frame's
    regions in a box that holds them gives the frame's numbers.
    """
    eps = cfg.alpha_epsilon
    solve = _load_solver()
    logger.debug(
        "multilevel: %d crop(s) covering %d pixels of %d",
        len(regions),
        sum(area(crop) for crop, _ in regions),
        alpha.size,
    )
    with _single_threaded_numba():
        for crop, core in regions:
            f_crop, b_crop = _solve_crop(
                solve, image[crop], alpha[crop], cfg, None if ceiling is None else ceiling[crop]
            )
            local = relative(core, crop)
            a_core = alpha[core]
            clear = (a_core <= eps)[..., None]
            # Pixels of the core outside the band keep their exact values.
            unknown = ~((a_core >= 1.0 - eps)[..., None] | clear)
            np.copyto(foreground[core], f_crop[local], where=unknown)
            if background is not None:
                np.copyto(background[core], b_crop[local], where=unknown)
            if solved_clear is not None:
                np.copyto(solved_clear[core], f_crop[local], where=clear)


def solve_regions(band: np.ndarray, cfg: MultilevelConfig) -> list[tuple[Slices, Slices]]:
    """``(crop, core)`` pairs to solve for the ``H×W`` bool ``band``: the band crops, or
    the whole frame once (when the crops would cover most of it)."""
    full = (slice(0, band.shape[0]), slice(0, band.shape[1]))
    if not cfg.band_only:
        return [(full, full)]
    crops = band_crops(band, cfg.tile_size, cfg.context_margin)
    if sum(area(crop) for crop, _ in crops) >= _FULL_FRAME_SHARE * band.size:
        return [(full, full)]
    return crops


def _checked_config(config: MultilevelConfig | None) -> MultilevelConfig:
    if config is None:
        return MultilevelConfig()
    if not isinstance(config, MultilevelConfig):
        raise ConfigError(f"config must be a MultilevelConfig, got {type(config).__name__}.")
    values = {
        spec.name: validate_value(spec, getattr(config, spec.name), where="multilevel.")
        for spec in param_specs(MultilevelConfig)
    }
    return dataclasses.replace(config, **values)


def _checked_inputs(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``H×W×C`` image and float32 ``H×W`` alpha clipped to [0, 1]."""
    image = np.asarray(image)
    alpha = np.asarray(alpha)
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[..., 0]
    if image.ndim != 3 or alpha.ndim != 2 or image.shape[:2] != alpha.shape:
        raise InputError(
            f"Expected image H×W×C and alpha H×W of the same size; got image "
            f"{image.shape} and alpha {alpha.shape}."
        )
    if image.size == 0:
        raise InputError(f"Image is empty (shape {image.shape}); give at least one pixel.")
    for name, array in (("image", image), ("alpha", alpha)):
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(
                f"Expected a float {name} (scene-linear image, alpha in [0, 1]); got dtype "
                f"{array.dtype}. Convert it to float32 first."
            )
        if not np.isfinite(array).all():
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise InputError(
                f"The {name} contains {bad} NaN or infinite value(s); expected finite "
                "values. Clean the input (e.g. replace NaN by 0) first."
            )
    low, high = float(alpha.min()), float(alpha.max())
    if low < -_ALPHA_TOLERANCE or high > 1.0 + _ALPHA_TOLERANCE:
        raise InputError(
            f"Alpha must lie in [0, 1]; found values in [{low:g}, {high:g}]. "
            "Clip or normalise the matte first."
        )
    image = image.astype(np.float32, copy=False)
    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False)
    return image, alpha


def _load_solver() -> _Solver:
    try:
        from pymatting import estimate_foreground_ml
    except ImportError:
        raise BackendUnavailableError(
            "The multilevel decontamination backend needs pymatting, which is not "
            "installed. Install it with: pip install 'vfxmatte[classical]'."
        ) from None
    return estimate_foreground_ml


@contextlib.contextmanager
def _single_threaded_numba() -> Iterator[None]:
    """Run numba's parallel regions on the calling thread only, for this block.

    pymatting's solver sweeps are serial; only its nearest-neighbour resizes
    are parallel. Their per-level thread launches cost more than they save on
    band crops, and stall badly when the machine is oversubscribed (several
    frames in flight): measured 0.5x instead of 3.6x for the band path at 1080p
    on a loaded 2-core box. numba's thread count is thread-local, so other
    threads are not affected, and it is restored on exit.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - pymatting depends on numba
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _solve_crop(
    solve: _Solver,
    image: np.ndarray,
    alpha: np.ndarray,
    cfg: MultilevelConfig,
    ceiling: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the solver on one crop in its [0, 1] range; ``F, B`` back in the plate's units.

    The solver is linear in the image for a fixed alpha, so mapping the crop to
    ``(I - lo) / scale`` and back only moves the solver's [0, 1] clip to
    ``[lo, lo + scale]``; see the module docstring. With ``ceiling`` (H×W) the scale
    is per pixel, ``ceiling - lo``.
    """
    h, w = alpha.shape
    if max(h, w) < 2:  # the pyramid needs two pixels along one side
        image, alpha = np.repeat(image, 2, axis=1), np.repeat(alpha, 2, axis=1)
        if ceiling is not None:
            ceiling = np.repeat(ceiling, 2, axis=1)
    lo = min(0.0, float(image.min()))
    if ceiling is not None:
        scale = np.maximum(ceiling.astype(np.float32) - np.float32(lo), 1e-6)[..., None]
    else:
        span = float(image.max()) - lo
        scale = 2.0 ** math.ceil(math.log2(span * _HEADROOM)) if span > 0.0 else 1.0
        scale = np.float32(scale)
    mapped = (image - np.float32(lo)) / scale if lo else image / scale
    foreground, background = solve(
        mapped,
        alpha,
        regularization=cfg.regularization,
        n_small_iterations=cfg.n_small_iterations,
        n_big_iterations=cfg.n_big_iterations,
        small_size=cfg.small_size,
        return_background=True,
        gradient_weight=cfg.gradient_weight,
    )
    if np.ndim(scale):
        scale = scale[:h, :w]
    foreground = foreground[:h, :w] * scale + np.float32(lo)
    background = background[:h, :w] * scale + np.float32(lo)
    return foreground.astype(np.float32, copy=False), background.astype(np.float32, copy=False)
