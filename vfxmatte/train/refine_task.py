"""Training step of the sparse refinement network on a frozen matting network's output.

Mask2Alpha §3.3 refines, at full resolution, only the pixels the coarse pass is
unsure about. :class:`RefineTask` trains :class:`~vfxmatte.refine.sparse_net.SparseRefineNet`
exactly where inference would use it:

1. a frozen PRN (``refine.coarse_weights``, default the shipped starter weights)
   mattes the batch at a random working/full ratio ``s ~ U(coarse_scale_min,
   coarse_scale_max)`` (area down-sampling, reflect padding, bilinear up-sampling:
   the backend's path), giving the coarse alpha and its predicted error;
2. the active set is the pixels whose predicted error exceeds ``tau ~
   U(tau_min, tau_max)``, grown by ``0..dilate_max`` pixels, as
   ``refine.sparse.tau``/``refine.sparse.dilate`` select them at inference;
3. the refiner runs on that set with the same sparse convolution as inference,
   reading RGB, the coarse alpha and error and (``refine.features``) the coarse
   network's stride-1 decoder features upsampled bilinearly
   (the batch is stacked into one tall grid with an empty row between samples, so
   no 3x3 neighbourhood crosses from one sample into the next);
4. the loss is L1 and the composition loss on the active pixels plus the
   Laplacian (and optionally gradient) loss of the full alpha with the refined
   pixels written in (``loss.l1``, ``loss.composition``, ``loss.laplacian``,
   ``loss.gradient``).

The log carries ``mae`` (refined) and ``coarse_mae`` (before refinement) on the
active pixels, so a run shows what the refiner adds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vfxmatte.matte.network.prn import pad_to_stride
from vfxmatte.refine.sparse_conv import ActiveSet
from vfxmatte.refine.sparse_net import SparseRefineArch, SparseRefineNet, sparse_inputs
from vfxmatte.train.losses import composition_loss, gradient_loss, l1_loss, laplacian_loss
from vfxmatte.train.tasks import _BATCH, _STEP, Task, matting_batch

__all__ = ["RefineTask", "coarse_pass", "select_active", "stack_tall", "unstack_tall"]


def coarse_pass(
    model: nn.Module, image: torch.Tensor, guidance: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alpha, predicted error (``N x 1 x h x w``) and stride-1 decoder features
    (``N x F x h x w``) of ``model`` at ``scale`` x the input size.

    ``image`` ``N x 3 x H x W`` display-referred, ``guidance`` ``N x 1 x H x W``;
    ``scale < 1`` area-downsamples both first (the network backend's working size).
    """
    height, width = image.shape[-2:]
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = F.interpolate(image, size=size, mode="area")
        guidance = F.interpolate(guidance, size=size, mode="area")
    h, w = image.shape[-2:]
    img, (top, left, _, _) = pad_to_stride(image)
    gui, _ = pad_to_stride(guidance)
    out = model(img, gui)
    alpha = out["alpha"][:, :, top : top + h, left : left + w]
    error = out["error"][:, :, top : top + h, left : left + w]
    features = out["features"][:, :, top : top + h, left : left + w]
    return alpha.clamp(0.0, 1.0), error.clamp(0.0, 1.0), features


def upsample(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear (``align_corners=False``) resize of ``N x C x h x w`` to ``height x width``."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def select_active(error: torch.Tensor, tau: float, dilate: int) -> torch.Tensor:
    """``N x 1 x H x W`` bool: predicted error above ``tau``, grown by a ``2*dilate+1`` square."""
    select = (error > tau).float()
    if dilate > 0:
        select = F.max_pool2d(select, 2 * dilate + 1, stride=1, padding=dilate)
    return select > 0


def stack_tall(x: torch.Tensor) -> torch.Tensor:
    """``N x C x H x W`` -> ``C x N(H+1) x W``: samples stacked, a zero row after each."""
    n, c, h, w = x.shape
    padded = F.pad(x, (0, 0, 0, 1))
    return padded.permute(1, 0, 2, 3).reshape(c, n * (h + 1), w)


def unstack_tall(x: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`stack_tall`: ``C x N(H+1) x W`` -> ``N x C x H x W``."""
    c, tall, w = x.shape
    h = tall // n - 1
    return x.reshape(c, n, h + 1, w)[:, :, :h].permute(1, 0, 2, 3)


class RefineTask(Task):
    """Training step of the sparse refiner (``task: refine``)."""

    kind = "refine"

    def __init__(self, config: Any) -> None:
        from vfxmatte.matte.network.backend import load_matting_network
        from vfxmatte.weights import SHIPPED, shipped_weights

        weights = config.refine.coarse_weights or shipped_weights("matte")
        if not weights:
            from vfxmatte.errors import ConfigError

            raise ConfigError(
                "task=refine needs a matting network to refine: set refine.coarse_weights "
                f"(the shipped {SHIPPED['matte']} was not found)."
            )
        self.coarse_weights = str(weights)
        self.coarse, _ = load_matting_network(weights, "cpu")
        self.coarse.requires_grad_(False).eval()
        super().__init__(config)

    def build_model(self) -> nn.Module:
        r = self.config.refine
        features = self.coarse.arch.skip_planes[0] if r.features else 0
        return SparseRefineNet(
            SparseRefineArch(width=r.width, blocks=r.blocks, feature_channels=features)
        )

    def setup(self, device: torch.device) -> None:
        super().setup(device)
        self.coarse.to(device)

    def export_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.model.arch)  # type: ignore[arg-type]

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        return matting_batch(self.maker, self.rng(step, _BATCH), self.config.data.batch_size)

    def losses(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        rng = self.rng(step, _STEP)
        r, cfg = self.config.refine, self.config.loss
        scale = float(rng.uniform(r.coarse_scale_min, r.coarse_scale_max))
        tau = float(rng.uniform(r.tau_min, r.tau_max))
        dilate = int(rng.integers(0, r.dilate_max + 1))
        image, gt = batch["image"], batch["alpha"]
        n, _, height, width = image.shape
        with torch.no_grad():
            alpha, error, features = coarse_pass(self.coarse, image, batch["guidance"], scale)
            alpha, error = upsample(alpha, height, width), upsample(error, height, width)
            select = select_active(error, tau, dilate)
        active = ActiveSet.from_mask(stack_tall(select)[0])
        coarse_tall = stack_tall(alpha)[0]
        gt_tall = stack_tall(gt)[0]
        if len(active) == 0:  # nothing to refine: a zero loss that still reaches the weights
            zero = sum(p.sum() for p in self.model.parameters()) * 0.0
            return {"total": zero, "active": torch.tensor(0.0)}
        inputs = sparse_inputs(
            stack_tall(image).permute(1, 2, 0), coarse_tall, stack_tall(error)[0], active
        )
        if self.model.arch.feature_channels:  # bilinear, as sample_features reads them
            up = stack_tall(upsample(features, height, width)).permute(1, 2, 0)
            inputs = torch.cat([inputs, active.gather(up)], dim=1)
        pred = self.model(inputs, active, impl="torch")
        gt_rows = active.gather(gt_tall)
        coarse_rows = inputs[:, 3]
        terms: dict[str, torch.Tensor] = {"l1": l1_loss(pred, gt_rows)}
        total = cfg.l1 * terms["l1"]
        if cfg.composition > 0:
            sample = active.coords[:, 0] // (height + 1)
            valid = batch["comp_valid"].to(pred.dtype)[sample][:, None]
            if float(valid.sum()) > 0:
                rows = {k: active.gather(stack_tall(batch[k]).permute(1, 2, 0)) for k in
                        ("fg", "bg", "image")}  # fmt: skip
                linear = self.config.data.composite_space == "linear"
                terms["composition"] = composition_loss(
                    pred[:, None], rows["fg"], rows["bg"], rows["image"], valid, linear=linear
                )
                total = total + cfg.composition * terms["composition"]
        if cfg.laplacian > 0 or cfg.gradient > 0:
            delta = active.scatter((pred - coarse_rows)[:, None])
            full = unstack_tall(coarse_tall[None] + delta, n)
            if cfg.laplacian > 0:
                terms["laplacian"] = laplacian_loss(full, gt)
                total = total + cfg.laplacian * terms["laplacian"]
            if cfg.gradient > 0:
                terms["gradient"] = gradient_loss(full, gt)
                total = total + cfg.gradient * terms["gradient"]
        terms["total"] = total
        with torch.no_grad():
            terms["mae"] = (pred - gt_rows).abs().mean()
            terms["coarse_mae"] = (coarse_rows - gt_rows).abs().mean()
            terms["active"] = torch.tensor(len(active) / float(n * height * width))
        return terms

    def predict(self, image: np.ndarray, guidance: np.ndarray) -> np.ndarray:
        """Coarse pass at ``refine.eval_scale`` then the refiner, as the engine runs them."""
        from vfxmatte.refine.options import SparseRefineConfig
        from vfxmatte.refine.sparse import SparseRefiner

        r = self.config.refine
        device = next(self.model.parameters()).device
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))[None]
        gui = torch.from_numpy(np.ascontiguousarray(guidance, np.float32))[None, None]
        with torch.no_grad():
            alpha, error, features = coarse_pass(
                self.coarse, img.to(device), gui.to(device), r.eval_scale
            )
        refiner = SparseRefiner(
            SparseRefineConfig(tau=r.eval_tau, dilate=r.eval_dilate, device=str(device)),
            network=self.model,  # type: ignore[arg-type]
        )
        conf = 1.0 - error[0, 0].cpu().numpy()
        feats = features if self.model.arch.feature_channels else None
        return refiner(image, alpha[0, 0].cpu().numpy(), conf, features=feats)
