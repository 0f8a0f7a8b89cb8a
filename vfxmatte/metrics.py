"""Matting benchmark metrics: SAD, MSE, MAD, Grad, Conn, dtSSD and foreground MSE.

The image metrics follow Rhemann et al., "A Perceptually Motivated Online Benchmark
for Image Matting", CVPR 2009, as implemented by the Composition-1k evaluation code
of Deep Image Matting (Xu et al. 2017, ``DIM_evaluation_code``: ``compute_sad_loss.m``,
``compute_mse_loss.m``, ``compute_gradient_loss.m``, ``compute_connectivity_error.m``,
``gaussgradient.m``) and its Python ports (GCA-Matting / MGMatting
``utils/evaluate.py``, RobustVideoMatting ``evaluation/evaluate_lr.py``). The
temporal metric dtSSD is from Erofeev et al., "Perceptually Motivated Benchmark for
Video Matting", BMVC 2015, with the scale of RobustVideoMatting's ``MetricDTSSD``.

Every function takes alpha mattes as ``H x W`` (or ``H x W x 1``) floating arrays in
``[0, 1]``; 8-bit mattes must be divided by 255 first. An optional ``mask`` (``H x W``,
bool or 0/1) restricts the evaluated pixels, e.g. ``trimap == 128`` for the
Composition-1k protocol; the default is the whole image. Scales are those of the
published tables: SAD, Grad and Conn are divided by 1000, MSE and MAD are raw means
(multiply by 1e3 to compare with RobustVideoMatting's tables), dtSSD is multiplied by
100 as in RobustVideoMatting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from vfxmatte.errors import InputError

__all__ = [
    "METRIC_NAMES",
    "FrameRow",
    "MetricsAccumulator",
    "conn",
    "dtssd",
    "dtssd_step",
    "evaluate_frame",
    "fg_error",
    "format_table",
    "gauss_gradient",
    "gaussian_derivative_kernel",
    "grad",
    "mad",
    "mse",
    "sad",
]

logger = logging.getLogger(__name__)

#: Column order of :func:`format_table`; ``evaluate_frame`` returns the first five.
METRIC_NAMES = ("SAD", "MSE", "MAD", "Grad", "Conn", "dtSSD", "FgMSE")

_CONN_THETA = 0.15  # Rhemann et al. 2009: degrees of connectivity below theta count as full.


# --------------------------------------------------------------------------- validation


def _as_alpha(name: str, array: np.ndarray) -> np.ndarray:
    """Return ``array`` as float64 ``H x W`` after checking dtype, shape, finiteness, range."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise InputError(f"{name} must be an alpha matte of shape H x W; found shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(
            f"{name} must be a float alpha in [0, 1]; found dtype {a.dtype} "
            "(divide 8-bit mattes by 255 first)."
        )
    if a.size == 0:
        raise InputError(f"{name} must have at least one pixel; found shape {a.shape}.")
    if not np.isfinite(a).all():
        raise InputError(f"{name} must contain finite values; found NaN or infinity.")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"{name} must lie in [0, 1]; found values in [{lo:.6g}, {hi:.6g}] (clip it first)."
        )
    return a.astype(np.float64, copy=False)


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_alpha("pred", pred), _as_alpha("gt", gt)
    if p.shape != g.shape:
        raise InputError(f"pred and gt must have the same shape; found {p.shape} and {g.shape}.")
    return p, g


def _as_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Return a bool ``H x W`` mask; ``None`` selects every pixel."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != shape:
        raise InputError(f"mask must have the alpha's shape {shape}; found {m.shape}.")
    if m.dtype == bool:
        return m
    if not np.isin(m, (0, 1)).all():
        raise InputError(
            "mask must be bool or contain only 0 and 1; found other values "
            "(pass e.g. trimap == 128 for the unknown region)."
        )
    return m.astype(bool)


# --------------------------------------------------------------------------- SAD/MSE/MAD


def sad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Sum of absolute differences over ``mask``, in thousands (``/ 1000``) as benchmarks report.

    ``pred``, ``gt``: ``H x W`` float alpha in [0, 1]; ``mask``: ``H x W`` bool or 0/1.
    """
    p, g = _pair(pred, gt)
    m = _as_mask(mask, p.shape)
    return float(np.abs(p - g)[m].sum() / 1000.0)


def _masked_mean(error: np.ndarray, m: np.ndarray) -> float:
    count = int(m.sum())
    if count == 0:
        logger.debug("empty evaluation mask: reporting 0 error")
        return 0.0
    return float(error[m].sum() / count)


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the ``mask`` pixels (raw; multiply by 1e3 for RVM's tables).

    The Composition-1k code divides by the number of unknown pixels; an empty mask gives 0.
    """
    p, g = _pair(pred, gt)
    return _masked_mean((p - g) ** 2, _as_mask(mask, p.shape))


def mad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute difference over the ``mask`` pixels (raw; an empty mask gives 0)."""
    p, g = _pair(pred, gt)
    return _masked_mean(np.abs(p - g), _as_mask(mask, p.shape))


# --------------------------------------------------------------------------- Grad


def gaussian_derivative_kernel(sigma: float = 1.4, epsilon: float = 1e-2) -> np.ndarray:
    """The ``x`` kernel of ``gaussgradient.m`` (G. Xiong), used by the Grad metric.

    ``h[i, j] = g(i - r) * g'(j - r)`` with ``g`` the 1-D Gaussian of std ``sigma``,
    ``r = ceil(sigma * sqrt(-2 * log(sqrt(2 pi) * sigma * epsilon)))`` (4 for sigma 1.4),
    normalised to unit L2 norm (``h / sqrt(sum(h^2))``, as in the MATLAB and Python
    references). Returns a float64 ``(2r+1) x (2r+1)`` array; the ``y`` kernel is ``h.T``.
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -u * gauss / sigma**2
    h = np.outer(gauss, dgauss)
    return h / np.sqrt(np.sum(h * h))


def gauss_gradient(image: np.ndarray, sigma: float = 1.4) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``(gx, gy)`` of a ``H x W`` float image by Gaussian-derivative convolution.

    Replicates MATLAB ``imfilter(IM, h, 'replicate', 'conv')`` (true convolution with
    replicated borders; ``scipy.ndimage.convolve(mode='nearest')`` in the Python ports).
    Returns two float64 ``H x W`` arrays.
    """
    im = np.asarray(image, dtype=np.float64)
    hx = gaussian_derivative_kernel(sigma)
    # cv2.filter2D correlates; flipping the kernel turns it into a convolution.
    gx = cv2.filter2D(im, cv2.CV_64F, cv2.flip(hx, -1), borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(im, cv2.CV_64F, cv2.flip(hx.T, -1), borderType=cv2.BORDER_REPLICATE)
    return gx, gy


def grad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Gradient error (Rhemann et al. 2009): ``sum_mask (|grad pred| - |grad gt|)^2 / 1000``.

    Gradients use :func:`gauss_gradient` with sigma 1.4 on the whole image, then the
    squared magnitude difference is summed over ``mask``. Like the Python ports
    (GCA-Matting, MGMatting) the inputs are used as given; the MATLAB code and RVM
    first min-max normalise each matte (``mat2gray``), which is the identity for
    mattes that reach both 0 and 1.
    """
    p, g = _pair(pred, gt)
    m = _as_mask(mask, p.shape)
    pred_amp = np.hypot(*gauss_gradient(p, 1.4))
    gt_amp = np.hypot(*gauss_gradient(g, 1.4))
    return float(((pred_amp - gt_amp) ** 2)[m].sum() / 1000.0)


# --------------------------------------------------------------------------- Conn


def _thresholds(step: float) -> np.ndarray:
    """MATLAB ``0:step:1`` rounded to clean decimals, so ``alpha == 0.6`` passes ``>= 0.6``."""
    n = math.floor(1.0 / step + 1e-9)
    return np.round(np.arange(n + 1) * step, 10)


def _largest_component(binary: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of a bool ``H x W`` array (all False when empty).

    Labelling the transpose numbers components in column-major order, so ties go to the
    component MATLAB's ``bwconncomp`` + ``max`` picks.
    """
    n, labels_t, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(binary.T, dtype=np.uint8), connectivity=4
    )
    if n <= 1:
        return np.zeros_like(binary, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels_t == largest).T


def conn(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, step: float = 0.1
) -> float:
    """Connectivity error (Rhemann et al. 2009), as ``compute_connectivity_error.m``.

    For each threshold ``t`` of ``step:step:1``, ``omega_t`` is the largest
    4-connected component of ``(pred >= t) & (gt >= t)``. ``l`` is, per pixel, the
    threshold just below the first one at which it leaves ``omega`` (1 if it never
    does). With ``d = alpha - l``, ``phi = 1 - d * (d >= 0.15)``; the error is
    ``sum_mask |phi_pred - phi_gt| / 1000``. Unlike the GCA-Matting/MGMatting port,
    the background label never counts as the largest component (as in MATLAB and RVM).
    """
    if not 0.0 < step <= 1.0:
        raise InputError(f"step must be in (0, 1]; found {step}.")
    p, g = _pair(pred, gt)
    m = _as_mask(mask, p.shape)
    steps = _thresholds(step)
    l_map = np.full(p.shape, -1.0)
    for i in range(1, len(steps)):
        omega = _largest_component((p >= steps[i]) & (g >= steps[i]))
        l_map[(l_map == -1.0) & ~omega] = steps[i - 1]
    l_map[l_map == -1.0] = 1.0
    pred_d, gt_d = p - l_map, g - l_map
    pred_phi = 1.0 - pred_d * (pred_d >= _CONN_THETA)
    gt_phi = 1.0 - gt_d * (gt_d >= _CONN_THETA)
    return float(np.abs(pred_phi - gt_phi)[m].sum() / 1000.0)


# --------------------------------------------------------------------------- video, colour


def dtssd_step(
    pred_t: np.ndarray, pred_prev: np.ndarray, gt_t: np.ndarray, gt_prev: np.ndarray
) -> float:
    """dtSSD of one frame pair (Erofeev et al. 2015), scaled as RobustVideoMatting.

    ``100 * sqrt(sum(((pred_t - pred_prev) - (gt_t - gt_prev))^2) / (H * W))``, i.e.
    RVM's ``MetricDTSSD``. All four are ``H x W`` float alpha in [0, 1].
    """
    p1, g1 = _pair(pred_t, gt_t)
    p0, g0 = _pair(pred_prev, gt_prev)
    if p0.shape != p1.shape:
        raise InputError(
            f"consecutive frames must have the same shape; found {p0.shape} then {p1.shape}."
        )
    return _dtssd_unchecked(p1, p0, g1, g0)


def _dtssd_unchecked(p1: np.ndarray, p0: np.ndarray, g1: np.ndarray, g0: np.ndarray) -> float:
    diff = (p1 - p0) - (g1 - g0)
    return float(math.sqrt(np.sum(diff * diff) / g1.size) * 100.0)


def dtssd(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> float:
    """Mean of :func:`dtssd_step` over frames ``t >= 1`` of a shot (needs 2+ frames).

    RVM's spreadsheet also averages a 0 for the first frame in, so its figure is this
    value times ``(T - 1) / T``.
    """
    if len(preds) != len(gts):
        raise InputError(
            f"preds and gts must have the same number of frames; found {len(preds)} and {len(gts)}."
        )
    if len(preds) < 2:
        raise InputError(f"dtSSD needs at least 2 frames; found {len(preds)}.")
    steps = [dtssd_step(preds[t], preds[t - 1], gts[t], gts[t - 1]) for t in range(1, len(preds))]
    return float(np.mean(steps))


def fg_error(pred_fg: np.ndarray, gt_fg: np.ndarray, gt_alpha: np.ndarray) -> float:
    """Foreground colour MSE over the pixels where ``gt_alpha > 0`` (raw, mean over channels).

    As MGMatting / RobustVideoMatting (``mse(pred_fgr[gt_pha > 0], true_fgr[gt_pha > 0])``).
    ``pred_fg``, ``gt_fg``: ``H x W x C`` float straight colour, any finite range;
    ``gt_alpha``: ``H x W`` float in [0, 1]. No foreground pixel gives 0.
    """
    a = _as_alpha("gt_alpha", gt_alpha)
    pf, gf = np.asarray(pred_fg), np.asarray(gt_fg)
    for name, f in (("pred_fg", pf), ("gt_fg", gf)):
        if f.ndim != 3 or f.shape[:2] != a.shape:
            raise InputError(f"{name} must have shape {a.shape} x C; found {f.shape}.")
        if not np.issubdtype(f.dtype, np.floating):
            raise InputError(f"{name} must be float colour; found dtype {f.dtype}.")
        if not np.isfinite(f).all():
            raise InputError(f"{name} must contain finite values; found NaN or infinity.")
    if pf.shape != gf.shape:
        raise InputError(
            f"pred_fg and gt_fg must have the same shape; found {pf.shape} and {gf.shape}."
        )
    return _masked_mean(
        np.mean((pf.astype(np.float64) - gf.astype(np.float64)) ** 2, axis=2), a > 0
    )


# --------------------------------------------------------------------------- evaluation


def evaluate_frame(
    pred_alpha: np.ndarray, gt_alpha: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """``{'SAD', 'MSE', 'MAD', 'Grad', 'Conn'}`` of one frame, scales as the functions."""
    p, g = _pair(pred_alpha, gt_alpha)
    m = _as_mask(mask, p.shape)
    return {
        "SAD": sad(p, g, m),
        "MSE": mse(p, g, m),
        "MAD": mad(p, g, m),
        "Grad": grad(p, g, m),
        "Conn": conn(p, g, m),
    }


@dataclass(frozen=True)
class FrameRow:
    """One row of a metrics table: a frame number (``None`` for the mean) and its values."""

    frame: int | None
    values: Mapping[str, float]


@dataclass
class MetricsAccumulator:
    """Collects per-frame metrics of a shot; dtSSD accumulates without holding the shot.

    Frames must be added in increasing frame order; dtSSD is taken against the previously
    added frame. Only the previous pred/gt alpha are kept.
    """

    rows: list[FrameRow] = field(default_factory=list)
    _prev: tuple[int, np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def add(
        self,
        frame_number: int,
        pred: np.ndarray,
        gt: np.ndarray,
        pred_fg: np.ndarray | None = None,
        gt_fg: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> FrameRow:
        """Evaluate one frame (``H x W`` float alpha in [0, 1]) and append its row."""
        if (pred_fg is None) != (gt_fg is None):
            raise InputError("pred_fg and gt_fg must be given together; found only one.")
        if self._prev is not None and frame_number <= self._prev[0]:
            raise InputError(
                f"frames must be added in increasing order; found {frame_number} "
                f"after {self._prev[0]}."
            )
        p, g = _pair(pred, gt)
        values = evaluate_frame(p, g, mask)
        if self._prev is not None:
            _, p0, g0 = self._prev
            if p0.shape != p.shape:
                raise InputError(
                    f"all frames must have the same shape; found {p0.shape} then {p.shape}."
                )
            values["dtSSD"] = _dtssd_unchecked(p, p0, g, g0)
        if pred_fg is not None and gt_fg is not None:
            values["FgMSE"] = fg_error(pred_fg, gt_fg, g)
        # Copies: readers often reuse one frame buffer, which would alias the previous frame.
        self._prev = (frame_number, p.copy(), g.copy())
        row = FrameRow(frame_number, values)
        self.rows.append(row)
        return row

    def mean(self) -> dict[str, float]:
        """Mean of each metric over the frames that have it (dtSSD: frames ``t >= 1``)."""
        out: dict[str, float] = {}
        for name in METRIC_NAMES:
            vals = [r.values[name] for r in self.rows if name in r.values]
            if vals:
                out[name] = float(np.mean(vals))
        return out

    def table(self) -> str:
        """Per-frame rows followed by the mean row, as :func:`format_table`."""
        return format_table([*self.rows, FrameRow(None, self.mean())])


def format_table(rows: Sequence[FrameRow]) -> str:
    """Fixed-width text table, one line per row; missing values print as ``-``.

    Columns follow :data:`METRIC_NAMES`, keeping those present in any row.
    """
    names = [n for n in METRIC_NAMES if any(n in r.values for r in rows)]
    header = ["frame", *names]
    body = [
        [
            "mean" if r.frame is None else str(r.frame),
            *(f"{r.values[n]:.5g}" if n in r.values else "-" for n in names),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True))
        for line in [header, *body]
    )
