"""What one training step computes for each network: batches, forward pass, loss terms.

* :class:`MatteTask` trains :class:`~vfxmatte.matte.network.arch.PRNMattingNet`:
  perturbed guidance (MGMatting §3.1), training-time self-guidance with random
  ellipse sizes (and GT-derived self-guidance for the first
  ``guidance.curriculum_steps``), the PRN objective with level weights (Eq. 5),
  the confidence loss and iterative-decoding training (Mask2Alpha Algorithm 1).
* :class:`~vfxmatte.train.refine_task.RefineTask` trains the sparse refiner
  (``task: refine``) on the output of a frozen matting network.
* :class:`ColourTask` trains :class:`~vfxmatte.decontaminate.colour_net.ColourNet`
  on random alpha blending (MGMatting §3.2) with L1 over the whole image plus L1
  inside the soft band, where the colour matters.

A batch is a pure function of ``(seed, step)`` (see :meth:`Task.batch`), so a
resumed run sees exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from vfxmatte.errors import ConfigError
from vfxmatte.matte.network.arch import ArchConfig, PRNMattingNet, arch_config
from vfxmatte.train.composition import SampleMaker
from vfxmatte.train.config import TrainConfig
from vfxmatte.train.guidance import gt_self_guidance, self_guidance
from vfxmatte.train.losses import confidence_loss, l1_loss, prn_loss, trimap_loss
from vfxmatte.train.sources import (
    FolderBackgrounds,
    FolderForegrounds,
    SyntheticBackgrounds,
    SyntheticForegrounds,
)

__all__ = [
    "TINY_ARCH",
    "ColourTask",
    "MatteTask",
    "Task",
    "build_task",
    "decode_mix",
    "matting_batch",
]

#: A very small PRN for tests and smoke runs (``arch: tiny``).
TINY_ARCH = ArchConfig(
    name="tiny",
    stem=(8, 8, 8),
    enc_planes=(8, 16, 16, 16),
    enc_blocks=(1, 1, 1, 1),
    skip_planes=(8, 8, 8, 16, 16),
    aspp_mid=8,
    aspp_out=16,
    dec_blocks=(1, 1, 1, 1),
    head_mid=8,
)

# Purposes of the per-step random generators (kept apart so that adding one
# kind of randomness does not shift another).
_BATCH, _STEP, _WEAK = 1, 2, 3


def _sources(config: TrainConfig) -> SampleMaker:
    data = config.data
    if data.source == "photos":
        from vfxmatte.train.footage import (
            FootageSampleMaker,
            PhotoBackgrounds,
            PhotoForegrounds,
        )

        backgrounds: Any = PhotoBackgrounds(data.synth_canvas)
        if data.background_dirs:
            backgrounds = FolderBackgrounds(data.background_dirs)
        return FootageSampleMaker(
            PhotoForegrounds(data.synth_canvas), backgrounds, data, config.guidance
        )
    if data.source == "folders":
        foregrounds: Any = FolderForegrounds(data.matting_dirs)
    else:
        foregrounds = SyntheticForegrounds(data.synth_canvas)
    if data.background_dirs:
        backgrounds = FolderBackgrounds(data.background_dirs)
    elif data.source == "folders" and foregrounds.backgrounds:
        backgrounds = FolderBackgrounds(files=foregrounds.backgrounds)
    else:
        backgrounds = SyntheticBackgrounds(data.synth_canvas)
    return SampleMaker(foregrounds, backgrounds, data, config.guidance)


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    """``H x W`` or ``H x W x C`` arrays -> ``N x C x H x W`` float32 tensor."""
    batch = np.stack([a if a.ndim == 3 else a[..., None] for a in arrays])
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2), np.float32))


def matting_batch(maker: SampleMaker, rng: np.random.Generator, size: int) -> dict[str, Any]:
    """``size`` composited matting samples as tensors (image, alpha, fg, bg, guidance)."""
    samples = [maker.matting(rng) for _ in range(size)]
    return {
        "image": _stack([s.image for s in samples]),
        "alpha": _stack([s.alpha for s in samples]),
        "fg": _stack([s.fg for s in samples]),
        "bg": _stack([s.bg for s in samples]),
        "guidance": _stack([s.guidance for s in samples]),
        "comp_valid": torch.tensor([s.comp_valid for s in samples]),
    }


def decode_mix(
    coarse: torch.Tensor, fine: torch.Tensor, rng: np.random.Generator, smooth: float = 4.0
) -> torch.Tensor:
    """Mask2Alpha Algorithm 1: ``m_t = x_t M_coarse + (1 - x_t) M_fine`` per sample.

    ``t ~ U(0, 1)`` per sample; ``x_t`` is 1 (still coarse) on the share ``1 - t``
    of the pixels with the highest rank of a smooth random field, so committed
    (fine) pixels come in blobs, as confidence-ordered commits do at inference.
    """
    n, _, h, w = coarse.shape
    out = coarse.clone()
    for b in range(n):
        t = rng.uniform(0.0, 1.0)
        field = rng.random((h, w)).astype(np.float32)
        if smooth > 0:
            field = cv2.GaussianBlur(field, (0, 0), smooth)
        threshold = np.quantile(field, t)
        still_coarse = torch.from_numpy((field >= threshold).astype(np.float32))[None]
        still_coarse = still_coarse.to(coarse.device, coarse.dtype)
        out[b] = still_coarse * coarse[b] + (1.0 - still_coarse) * fine[b]
    return out


class Task:
    """Base of the per-network step logic."""

    kind = ""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.maker = _sources(config)
        self.model = self.build_model()

    def build_model(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def setup(self, device: torch.device) -> None:
        """Move the model to ``device`` (called once the initial weights are loaded)."""
        self.model.to(device)

    def after_step(self) -> None:
        """Called after every optimiser step (EMA teachers update here)."""

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors besides the model that a resumable checkpoint must hold."""
        return {}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def export_config(self) -> dict[str, Any]:
        """What :func:`vfxmatte.weights.save_checkpoint` stores as the network's config."""
        return {"arch": dataclasses.asdict(self.model.arch)}  # type: ignore[arg-type]

    def rng(self, step: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, step, purpose])

    def batch(self, step: int) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, image: np.ndarray, guidance: np.ndarray) -> np.ndarray:
        """Alpha of one display-referred held-out frame (matting tasks; eval mode)."""
        from vfxmatte.train.evaluation import predict_alpha

        return predict_alpha(self.model, image, guidance)

    def losses(
        self, batch: dict[str, torch.Tensor], step: int
    ) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


def matte_arch(name: str) -> ArchConfig:
    """The architecture of ``arch: name`` (``small``, ``mgm`` or the test-sized ``tiny``)."""
    if name == "tiny":
        return dataclasses.replace(TINY_ARCH)
    return arch_config(name)


class MatteTask(Task):
    """Training step of the PRN matting network."""

    kind = "matte"

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.teacher: nn.Module | None = None
        self.weak: Any = None
        if config.selftrain.enabled:
            from vfxmatte.train.coco import CocoWeakMasks

            st = config.selftrain
            self.weak = CocoWeakMasks(st.coco_json, st.coco_images, st.min_area)

    def build_model(self) -> nn.Module:
        arch = matte_arch(self.config.arch)
        if self.config.loss.trimap > 0:
            arch = dataclasses.replace(arch, trimap_head=True)
        if self.config.band_learned:
            arch = dataclasses.replace(arch, band_learned=True)
        return PRNMattingNet(arch)

    def setup(self, device: torch.device) -> None:
        super().setup(device)
        if self.weak is not None:  # the EMA teacher starts as a copy of the (initial) student
            self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)

    def after_step(self) -> None:
        if self.teacher is not None:
            from vfxmatte.train.selftrain import ema_update

            ema_update(self.teacher, self.model, self.config.selftrain.ema_decay)

    def extra_state(self) -> dict[str, torch.Tensor]:
        if self.teacher is None:
            return {}
        return {f"teacher.{k}": v for k, v in self.teacher.state_dict().items()}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        if self.teacher is not None:
            own = {k[len("teacher.") :]: v for k, v in state.items() if k.startswith("teacher.")}
            self.teacher.load_state_dict(own)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        batch = matting_batch(self.maker, self.rng(step, _BATCH), self.config.data.batch_size)
        if self.weak is not None:
            batch.update(self.weak_batch(step))
        return batch

    def weak_batch(self, step: int) -> dict[str, torch.Tensor]:
        """Weak (teacher) and strong (student) views of weak-mask instances."""
        from vfxmatte.train.selftrain import weak_view

        rng = self.rng(step, _WEAK)
        st, size = self.config.selftrain, self.config.data.crop_size
        views = [
            weak_view(self.weak[int(rng.integers(len(self.weak)))], size, st.beta, rng)
            for _ in range(st.batch_size)
        ]
        return {
            "weak_image": _stack([v.image for v in views]),
            "weak_mask": _stack([v.mask for v in views]),
            "strong_image": _stack([v.strong_image for v in views]),
            "strong_guidance": _stack([v.strong_guidance for v in views]),
        }

    def self_training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``L1(student(strong view), teacher(weak view))`` (§4.2)."""
        if self.teacher is None:
            raise RuntimeError("self-training needs setup() to have built the teacher")
        with torch.no_grad():
            target = self.teacher(batch["weak_image"], batch["weak_mask"])["alpha"]
        student = self.model(batch["strong_image"], batch["strong_guidance"])["alpha"]
        return l1_loss(student, target)

    def guidance_input(self, batch: dict[str, torch.Tensor], rng: np.random.Generator) -> Any:
        """The mask fed to the network: the perturbed guidance, or a partial decode of it."""
        if rng.random() < self.config.loss.decode_prob:
            return decode_mix(batch["guidance"], batch["alpha"], rng)
        return batch["guidance"]

    def self_guidance_masks(
        self, out: dict[str, torch.Tensor], gt: torch.Tensor, step: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-time masks where OS4 and OS1 speak (random ellipse sizes)."""
        g = self.config.guidance
        size4 = int(rng.integers(1, g.self_os8_max + 1))
        size1 = int(rng.integers(1, g.self_os4_max + 1))
        if step < g.curriculum_steps:
            return gt_self_guidance(gt, size4), gt_self_guidance(gt, size1)
        g4 = self_guidance(out["alpha_os8"], size4)
        fused = out["alpha_os4"] * g4 + out["alpha_os8"] * (1.0 - g4)
        return g4, self_guidance(fused, size1)

    def losses(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        rng = self.rng(step, _STEP)
        cfg = self.config.loss
        gt = batch["alpha"]
        # the band gate is measured from the perturbed mask, also under partial decoding
        out = self.model(batch["image"], self.guidance_input(batch, rng), batch["guidance"])
        g4, g1 = self.self_guidance_masks(out, gt, step, rng)
        levels = {
            "os8": (out["alpha_os8"], None, cfg.weight_os8),
            "os4": (out["alpha_os4"], g4, cfg.weight_os4),
            "os1": (out["alpha_os1"], g1, cfg.weight_os1),
        }
        terms = prn_loss(
            levels,
            gt,
            fg=batch["fg"],
            bg=batch["bg"],
            image=batch["image"],
            comp_valid=batch["comp_valid"],
            linear=self.config.data.composite_space == "linear",
            l1=cfg.l1,
            composition=cfg.composition,
            laplacian=cfg.laplacian,
            gradient=cfg.gradient,
        )
        if cfg.confidence > 0 and "error" in out and self.model.has_confidence:
            terms["confidence"] = confidence_loss(out["error"], out["alpha"], gt)
            terms["total"] = terms["total"] + cfg.confidence * terms["confidence"]
        if cfg.trimap > 0 and "trimap" in out:
            terms["trimap"] = trimap_loss(out["trimap"], gt, cfg.trimap_bins)
            terms["total"] = terms["total"] + cfg.trimap * terms["trimap"]
        if self.teacher is not None and "weak_image" in batch:
            terms["self_training"] = self.self_training_loss(batch)
            terms["total"] = terms["total"] + self.config.selftrain.weight * terms["self_training"]
        with torch.no_grad():
            terms["mae"] = (out["alpha"] - gt).abs().mean()
        return terms


class ColourTask(Task):
    """Training step of the foreground colour network (random alpha blending)."""

    kind = "colour"

    def build_model(self) -> nn.Module:
        from vfxmatte.decontaminate.colour_net import ColourNet

        return ColourNet()

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = self.rng(step, _BATCH)
        samples = [self.maker.colour(rng) for _ in range(self.config.data.batch_size)]
        return {
            "image": _stack([s.image for s in samples]),
            "alpha": _stack([s.alpha for s in samples]),
            "fg": _stack([s.fg for s in samples]),
        }

    def losses(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        alpha = batch["alpha"]
        pred = self.model(batch["image"], alpha)
        band = ((alpha > 0.0) & (alpha < 1.0)).to(alpha.dtype)
        whole = l1_loss(pred, batch["fg"])
        edge = l1_loss(pred, batch["fg"], band) if float(band.sum()) > 0 else whole * 0.0
        total = self.config.loss.colour_l1 * (whole + edge)
        return {"l1": whole, "band_l1": edge, "total": total}


def build_task(config: TrainConfig) -> Task:
    """The :class:`Task` of ``config.task``."""
    if config.task == "matte":
        return MatteTask(config)
    if config.task == "colour":
        return ColourTask(config)
    if config.task == "refine":
        from vfxmatte.train.refine_task import RefineTask

        return RefineTask(config)
    raise ConfigError(f"Unknown task {config.task!r}; choose matte or colour.")
