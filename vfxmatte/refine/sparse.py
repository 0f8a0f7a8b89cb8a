"""The ``sparse`` refine backend: self-guided sparse detail recovery at full resolution.

Mask2Alpha §3.3 (SGSDR) and SparseMat (CVPR 2023, sparse high-resolution
module): the coarse alpha of the matte stage is upsampled to the plate's
resolution, the pixels whose predicted error (``1 - confidence``) exceeds
``tau`` are selected (optionally grown by ``dilate`` pixels), and a small
residual network of submanifold sparse convolutions (:class:`SparseRefineNet`)
recomputes alpha there from the full-resolution image, the upsampled alpha, the
error and (optionally) the matting network's decoder features sampled at those
pixels. Cost follows the number of selected pixels, not the frame size.

* **Backends** (``impl``): ``torch`` (gather + GEMM, correct with any thread count,
  the default) and ``spconv`` (the CUDA accelerator; on CPU it runs
  single-threaded because the CPU wheel is wrong with more threads). Both give the
  same numbers within float tolerance.
* **Temporal sparsity** (``temporal``, SparseMat §3.3): a pixel whose plate did not
  change since the previous frame (the 9x9 window sum of the mean absolute RGB
  difference below ``temporal_sum`` and its own difference below
  ``temporal_pixel``) is not refined and keeps the previous frame's result. Frames
  must then come in order; :meth:`SparseRefiner.reset` starts a new shot.
* **Budget** (``max_active``): when more pixels are selected than this, they are
  refined through a cascade of resolutions (SparseMat): at 1/4 and 1/2 of the
  frame first, then at full resolution only where the alpha is still fractional
  (``0.01 < alpha < 0.99``); any level still over budget keeps its most uncertain
  ``max_active`` pixels. Memory is bounded by the budget, never by the frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vfxmatte.devices import resolve_device
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.refine.base import check_refine_inputs, upsample
from vfxmatte.refine.options import SparseRefineConfig
from vfxmatte.refine.sparse_conv import ActiveSet
from vfxmatte.refine.sparse_net import SparseRefineNet, sparse_inputs

__all__ = ["CASCADE_SCALES", "RefineStats", "SparseRefineConfig", "SparseRefiner"]

log = logging.getLogger(__name__)

#: Resolutions (fractions of the frame) refined before full resolution when over budget.
CASCADE_SCALES: tuple[float, ...] = (0.25, 0.5)
_FRACTIONAL = 0.01  # SparseMat: still uncertain where 0.01 < alpha < 0.99
_TEMPORAL_WINDOW = 9  # SparseMat's window of the frame-difference sum


@dataclass
class RefineStats:
    """What the last call did.

    Attributes:
        pixels: pixels of the frame.
        selected: pixels whose error exceeds ``tau`` (after dilation, before temporal reuse).
        reused: pixels that kept the previous frame's result (temporal).
        levels: ``(scale, active pixels)`` of every refinement pass, coarsest first.
    """

    pixels: int = 0
    selected: int = 0
    reused: int = 0
    levels: list[tuple[float, int]] = field(default_factory=list)

    @property
    def active(self) -> int:
        """Pixels refined at full resolution."""
        return sum(n for scale, n in self.levels if scale == 1.0)

    @property
    def active_fraction(self) -> float:
        return self.active / self.pixels if self.pixels else 0.0


class SparseRefiner:
    """Refines alpha at the uncertain pixels of every frame; built once per run.

    Args:
        config: options; ``config.weights`` names the checkpoint (empty: the shipped
            starter weights, ``weights/refine.safetensors``).
        network: a ready network instead of ``config.weights`` (tests, benchmarks,
            training loops).

    Raises:
        ConfigError: neither weights nor a network given.
        WeightsError: the checkpoint is missing, of another kind, or does not fit.
        BackendUnavailableError: ``impl='spconv'`` without spconv installed.
    """

    def __init__(
        self, config: SparseRefineConfig | None = None, network: SparseRefineNet | None = None
    ) -> None:
        self.config = config or SparseRefineConfig()
        self.device = resolve_device(self.config.device)
        if network is None:
            from vfxmatte.weights import SHIPPED, shipped_weights

            weights = self.config.weights or shipped_weights("refine")
            if not weights:
                raise ConfigError(
                    "The sparse refiner needs the weights of a refinement network: set "
                    "refine.sparse.weights to a checkpoint of kind 'refine' (the starter "
                    f"weights {SHIPPED['refine']} were not found in $VFXMATTE_HOME/weights or "
                    "the repository), or use refine.backend=none."
                )
            network = SparseRefineNet.from_checkpoint(weights)
            log.info("Loaded the refinement network from %s.", weights)
        if self.config.impl == "spconv":
            from vfxmatte.refine.spconv_backend import import_spconv

            import_spconv()  # fail now, not on the first frame
            if self.device.type == "cpu":
                log.info("refine: spconv on CPU runs single-threaded (its CPU wheel needs it).")
        self.net = network.to(self.device).eval()
        self.last_stats = RefineStats()
        self._previous: tuple[torch.Tensor, torch.Tensor] | None = None  # (image, alpha)

    @property
    def feature_channels(self) -> int:
        """Decoder feature channels the network reads (0: it needs none)."""
        return int(self.net.arch.feature_channels)

    def reset(self) -> None:
        """Forget the previous frame (a new shot or pass)."""
        self._previous = None

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        confidence: np.ndarray,
        features: Any = None,
    ) -> np.ndarray:
        """Refined full-resolution alpha of one frame.

        Args:
            image: ``H x W x 3`` float32, display-referred RGB in [0, 1].
            alpha: ``h x w`` float32 in [0, 1], the coarse alpha at any working
                resolution with the image's aspect ratio (upsampled bilinearly).
            confidence: ``h x w`` float32 in [0, 1]; predicted error = 1 - confidence.
            features: decoder features covering the frame, torch ``[1, F, h', w']`` (or
                ``[F, h', w']``) or numpy ``h' x w' x F``; required when the network has
                ``feature_channels > 0``, refused otherwise.

        Returns:
            ``H x W`` float32 alpha in [0, 1].

        Raises:
            InputError: malformed or mismatched inputs.
        """
        image, alpha, confidence = check_refine_inputs(image, alpha, confidence)
        if confidence is None:
            raise InputError("refine: the sparse refiner needs a confidence map.")
        feats = self._features(features)
        height, width = image.shape[:2]
        stats = RefineStats(pixels=height * width)
        with torch.no_grad():
            img = torch.from_numpy(image).to(self.device)
            coarse = upsample(torch.from_numpy(alpha).to(self.device), height, width)
            error = 1.0 - upsample(torch.from_numpy(confidence).to(self.device), height, width)
            select = _dilate(error > self.config.tau, self.config.dilate)
            # count_nonzero: a sum over a bool tensor would first copy it to int64.
            stats.selected = count = int(torch.count_nonzero(select))
            unchanged = self._unchanged(img) if self.config.temporal else None
            if unchanged is not None:
                select &= ~unchanged
                count = int(torch.count_nonzero(select))
            out = self._refine(img, coarse, error, select, count, feats, stats)
            if unchanged is not None:
                out = torch.where(unchanged, self._previous[1], out)
                stats.reused = int(torch.count_nonzero(unchanged))
            if self.config.temporal:
                self._previous = (img.clone(), out.clone())
        self.last_stats = stats
        return out.cpu().numpy()

    # -- selection ---------------------------------------------------------------------------
    def _unchanged(self, img: torch.Tensor) -> torch.Tensor | None:
        """``[H, W]`` bool, pixels whose plate did not change (SparseMat), or ``None``."""
        if self._previous is None:
            return None
        previous = self._previous[0]
        if previous.shape != img.shape:
            log.info("refine: the frame size changed; temporal reuse starts again.")
            self._previous = None
            return None
        diff = (img - previous).abs().mean(dim=2)
        k = _TEMPORAL_WINDOW
        window = F.avg_pool2d(diff[None, None], (1, k), stride=1, padding=(0, k // 2))
        window = F.avg_pool2d(window, (k, 1), stride=1, padding=(k // 2, 0))[0, 0] * (k * k)
        return (window < self.config.temporal_sum) & (diff < self.config.temporal_pixel)

    def _features(self, features: Any) -> torch.Tensor | None:
        """Decoder features as ``[1, F, h, w]`` float32 on the device, checked."""
        expected = self.net.arch.feature_channels
        if features is None:
            if expected:
                raise InputError(
                    f"refine: the refinement network expects {expected} feature channels; pass "
                    "the matting network's decoder features."
                )
            return None
        if isinstance(features, np.ndarray):
            if features.ndim != 3:
                raise InputError(
                    f"refine: numpy features must be h x w x F, got shape {features.shape}."
                )
            features = torch.from_numpy(np.ascontiguousarray(features)).permute(2, 0, 1)
        if not isinstance(features, torch.Tensor):
            raise InputError(f"refine: features must be a tensor, got {type(features).__name__}.")
        if features.ndim == 3:
            features = features[None]
        if features.ndim != 4 or features.shape[0] != 1:
            raise InputError(f"refine: features must be [1, F, h, w], got {tuple(features.shape)}.")
        if features.shape[1] != expected:
            raise InputError(
                f"refine: the refinement network expects {expected} feature channels, got "
                f"{features.shape[1]}."
            )
        if not features.is_floating_point() or not torch.isfinite(features).all():
            raise InputError("refine: features must be finite floats.")
        return features.to(self.device, torch.float32)

    # -- refinement --------------------------------------------------------------------------
    def _refine(
        self,
        img: torch.Tensor,
        coarse: torch.Tensor,
        error: torch.Tensor,
        select: torch.Tensor,
        count: int,
        feats: torch.Tensor | None,
        stats: RefineStats,
    ) -> torch.Tensor:
        """Full-resolution alpha with ``select`` (``count`` pixels) refined, within the budget."""
        budget = self.config.max_active
        if count <= budget:
            return self._level(img, coarse, error, select, feats, 1.0, stats)
        log.info(
            "refine: %d pixels selected, above max_active=%d; refining through a cascade of "
            "resolutions.",
            count,
            budget,
        )
        height, width = coarse.shape
        out, region = coarse, select
        for scale in CASCADE_SCALES:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            small = [
                F.adaptive_avg_pool2d(t[None], size)[0]
                for t in (img.permute(2, 0, 1), out[None], error[None])
            ]
            picked = F.adaptive_max_pool2d(region[None, None].float(), size)[0, 0] > 0
            picked = _cap(picked, small[2][0], budget)
            refined = self._level(
                small[0].permute(1, 2, 0), small[1][0], small[2][0], picked, feats, scale, stats
            )
            cover = F.interpolate(picked[None, None].float(), size=(height, width))[0, 0] > 0
            cover &= region
            out = torch.where(cover, upsample(refined, height, width), out)
            region = cover & (out > _FRACTIONAL) & (out < 1.0 - _FRACTIONAL)
        return self._level(img, out, error, _cap(region, error, budget), feats, 1.0, stats)

    def _level(
        self,
        img: torch.Tensor,
        alpha: torch.Tensor,
        error: torch.Tensor,
        select: torch.Tensor,
        feats: torch.Tensor | None,
        scale: float,
        stats: RefineStats,
    ) -> torch.Tensor:
        """``alpha`` with the network's output written at the ``select``-ed pixels."""
        active = ActiveSet.from_mask(select)
        stats.levels.append((scale, len(active)))
        if len(active) == 0:
            return alpha
        inputs = sparse_inputs(img, alpha, error, active, feats)
        refined = self.net(inputs, active, impl=self.config.impl)
        out = alpha.clone()
        out[active.coords[:, 0], active.coords[:, 1]] = refined
        return out


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``mask`` grown by a ``(2r+1)`` square (two separable max-pools)."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    grown = F.max_pool2d(mask[None, None].float(), (1, k), stride=1, padding=(0, radius))
    grown = F.max_pool2d(grown, (k, 1), stride=1, padding=(radius, 0))
    return grown[0, 0] > 0


def _cap(mask: torch.Tensor, error: torch.Tensor, budget: int) -> torch.Tensor:
    """``mask`` reduced to its ``budget`` pixels of largest error (ties: raster order)."""
    flat = torch.nonzero(mask.flatten())[:, 0]
    if flat.numel() <= budget:
        return mask
    order = torch.sort(error.flatten()[flat], descending=True, stable=True).indices[:budget]
    out = torch.zeros_like(mask)
    out.view(-1)[flat[order]] = True
    return out
