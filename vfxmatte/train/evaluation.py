"""Held-out evaluation: generated shots the training never saw, metrics and PNG previews.

The held-out frames are rendered by :func:`vfxmatte.synth.render_frame` from shot
seeds at or above :data:`~vfxmatte.train.sources.HELD_OUT_SEED` (training draws
objects and backdrops from seeds below it). Each frame comes with its exact
alpha and foreground and the shot's coarse guidance mask (GT alpha > 0.5 dilated
by a few pixels, as a propagated mask would look).

Matting quality uses :mod:`vfxmatte.metrics` (SAD, MSE, Grad, Conn over the whole
frame); colour quality the foreground MSE inside the soft band.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vfxmatte.errors import InputError
from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.matte.network.prn import pad_to_stride
from vfxmatte.metrics import MetricsAccumulator
from vfxmatte.synth import ShotSpec, render_frame
from vfxmatte.train.sources import ALPHA_NAMES, HELD_OUT_SEED, read_alpha, read_colour

#: Sub-folder names of an evaluation set: composites, and optional coarse masks/trimaps.
IMAGE_NAMES = ("merged", "image", "images", "composite", "original", "blurred_image", "plate")
GUIDANCE_NAMES = ("guidance", "coarse", "coarse_mask", "trimap", "trimaps")

__all__ = [
    "HeldOutFrame",
    "evaluate_colour",
    "evaluate_matte",
    "folder_frames",
    "held_out_frames",
    "predict_alpha",
    "rough_guidance",
    "predict_colour",
    "write_preview",
]


@dataclass
class HeldOutFrame:
    """One held-out frame: display-referred image, guidance, GT alpha and straight fg.

    ``plate`` and ``fg_linear`` are the scene-linear originals of ``image`` and ``fg``.
    """

    image: np.ndarray
    guidance: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    plate: np.ndarray
    fg_linear: np.ndarray


def rough_guidance(alpha: np.ndarray, rng: np.random.Generator, reach: int = 8) -> np.ndarray:
    """A rough per-frame mask as propagation or quick roto gives: binary, edge off by 1-8 px.

    ``alpha > 0.5`` grown or shrunk (chosen per frame) by ``1..reach`` pixels, then
    its contour displaced by a smooth random field of +-3 px, so the error varies
    along the edge as a propagated mask's does. ``H x W`` float32 in {0, 1}.
    """
    import cv2

    mask = (alpha > 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5)
    signed = inside - outside  # > 0 inside
    shift = float(rng.integers(1, reach + 1)) * (1.0 if rng.random() < 0.6 else -1.0)
    field = cv2.GaussianBlur(rng.standard_normal(alpha.shape).astype(np.float32), (0, 0), 12.0)
    field *= 3.0 / max(float(np.abs(field).max()), 1e-6)
    return (signed + shift + field > 0).astype(np.float32)


def held_out_frames(
    count: int, long_side: int = 512, offset: int = 0, photos: bool = False, rough: bool = False
) -> list[HeldOutFrame]:
    """``count`` frames of different held-out shots (16:9, long side ``long_side``).

    Shot ``i`` uses seed ``HELD_OUT_SEED + offset + i``; it has one or two objects,
    with or without hair and veil, and motion blur on every other shot. With
    ``photos`` the backdrop and the objects' textures are crops of the *held-out*
    real photographs (:mod:`vfxmatte.synth.photos`), so colour does not separate
    object from background; with ``rough`` the guidance is :func:`rough_guidance`
    (edge off by 1-8 px either way) instead of the GT mask dilated by 3-9 px.
    """
    frames = []
    height = max(32, int(round(long_side * 9 / 16 / 32)) * 32)
    for i in range(count):
        rng = np.random.default_rng([HELD_OUT_SEED + offset + i, 99])
        spec = ShotSpec(
            width=long_side,
            height=height,
            frames=12,
            objects=int(rng.integers(1, 3)),
            seed=HELD_OUT_SEED + offset + i,
            hair=bool(rng.random() < 0.8),
            translucent=bool(rng.random() < 0.5),
            motion_blur_samples=3 if i % 2 else 1,
            speed=float(rng.uniform(2.0, 12.0)),
            mask_dilate=int(rng.integers(3, 10)),
            background="photo" if photos else "procedural",
            textures="photo" if photos else "procedural",
            photo_role="heldout",
        )
        frame = render_frame(spec, int(rng.integers(0, spec.frames)))
        image = np.clip(linear_to_srgb(frame.image), 0.0, 1.0).astype(np.float32)
        fg = np.clip(linear_to_srgb(frame.fg), 0.0, 1.0).astype(np.float32)
        mask = frame.mask.astype(np.float32)
        if rough:
            mask = rough_guidance(
                frame.alpha, np.random.default_rng([HELD_OUT_SEED + offset + i, 7])
            )
        frames.append(HeldOutFrame(image, mask, frame.alpha, fg, frame.image, frame.fg))
    return frames


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    return next((children[n] for n in names if n in children), None)


def _by_stem(folder: Path) -> dict[str, Path]:
    from vfxmatte.train.sources import IMAGE_SUFFIXES

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return {p.stem: p for p in files}


def _fit(array: np.ndarray, long_side: int, interpolation: int) -> np.ndarray:
    """Scale ``array`` down so its long side is at most ``long_side`` (never up)."""
    h, w = array.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1.0:
        return array
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(array, size, interpolation=interpolation)


def folder_frames(
    root: str | os.PathLike[str], long_side: int = 1024, dilate: int = 6, limit: int = 0
) -> list[HeldOutFrame]:
    """Evaluation frames from a folder: composites, GT alpha and optional guidance.

    Sub-folders (paired by file stem): the composites (``merged/``, ``image/``,
    ``original/``...), the alpha (``alpha/``, ``GT/``, ``mask/``...), and optionally
    coarse masks or trimaps (``guidance/``, ``trimaps/``...; a trimap's
    foreground + unknown region, ``>= 0.5``, is the guidance). Without them the
    guidance is the GT alpha > 0.5 dilated by ``dilate`` px. Frames larger than
    ``long_side`` are scaled down. The foreground fields hold the composite
    (there is no GT foreground in such sets).

    Raises:
        InputError: the folder or its composite/alpha sub-folders are missing.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"Evaluation folder not found: {base}.")
    images, alphas = _find(base, IMAGE_NAMES), _find(base, ALPHA_NAMES)
    if images is None or alphas is None:
        raise InputError(
            f"{base} needs a composite folder ({', '.join(IMAGE_NAMES)}) and an alpha folder "
            f"({', '.join(ALPHA_NAMES)})."
        )
    guides = _find(base, GUIDANCE_NAMES)
    image_files, alpha_files = _by_stem(images), _by_stem(alphas)
    guide_files = _by_stem(guides) if guides is not None else {}
    stems = sorted(set(image_files) & set(alpha_files))
    if not stems:
        raise InputError(f"{images} and {alphas} share no file names (pairs match by stem).")
    frames = []
    for stem in stems[: limit or None]:
        plate = read_colour(image_files[stem])
        alpha = read_alpha(str(alpha_files[stem]))
        if stem in guide_files:
            guidance = (read_alpha(str(guide_files[stem])) >= 0.5).astype(np.float32)
        else:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
            guidance = cv2.dilate((alpha > 0.5).astype(np.float32), kernel)
        if plate.shape[:2] != alpha.shape or guidance.shape != alpha.shape:
            raise InputError(f"{stem}: the composite, alpha and guidance sizes differ.")
        plate = _fit(plate, long_side, cv2.INTER_AREA)
        alpha = np.clip(_fit(alpha, long_side, cv2.INTER_AREA), 0.0, 1.0)
        guidance = _fit(guidance, long_side, cv2.INTER_NEAREST)
        image = np.clip(linear_to_srgb(plate), 0.0, 1.0).astype(np.float32)
        frames.append(HeldOutFrame(image, guidance, alpha, image, plate, plate))
    return frames


def _tensor(array: np.ndarray) -> torch.Tensor:
    a = array if array.ndim == 3 else array[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))[None]


@torch.no_grad()
def predict_alpha(model: torch.nn.Module, image: np.ndarray, guidance: np.ndarray) -> np.ndarray:
    """One plain forward pass of a PRN on a display-referred frame: ``H x W`` alpha."""
    device = next(model.parameters()).device
    img, (top, left, h, w) = pad_to_stride(_tensor(image))
    gui, _ = pad_to_stride(_tensor(guidance))
    out = model(img.to(device), gui.to(device))
    return out["alpha"][0, 0, top : top + h, left : left + w].float().cpu().numpy()


@torch.no_grad()
def predict_colour(model: torch.nn.Module, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight foreground ``H x W x 3`` of a display-referred frame and its alpha."""
    device = next(model.parameters()).device
    img, (top, left, h, w) = pad_to_stride(_tensor(image), stride=8, margin=8)
    a, _ = pad_to_stride(_tensor(alpha), stride=8, margin=8)
    out = model(img.to(device), a.to(device))
    return out[0, :, top : top + h, left : left + w].permute(1, 2, 0).float().cpu().numpy()


def evaluate_matte(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray], frames: list[HeldOutFrame]
) -> tuple[MetricsAccumulator, list[np.ndarray]]:
    """Metrics of ``predict(image, guidance) -> alpha`` over ``frames``, and the predictions."""
    acc = MetricsAccumulator()
    preds = []
    for i, frame in enumerate(frames):
        pred = np.clip(predict(frame.image, frame.guidance), 0.0, 1.0).astype(np.float32)
        acc.add(i, pred, frame.alpha)
        preds.append(pred)
    return acc, preds


def evaluate_colour(
    model: torch.nn.Module, frames: list[HeldOutFrame]
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Foreground MSE (display space) inside the soft band ``0 < alpha < 1`` with GT alpha.

    Also reports the same error for the trivial estimate ``F = I`` (the plate itself).
    """
    errors, baseline, preds = [], [], []
    for frame in frames:
        pred = predict_colour(model, frame.image, frame.alpha)
        band = (frame.alpha > 0.0) & (frame.alpha < 1.0)
        if band.any():
            errors.append(float(((pred - frame.fg) ** 2)[band].mean()))
            baseline.append(float(((frame.image - frame.fg) ** 2)[band].mean()))
        preds.append(pred)
    return {
        "band_fg_mse": float(np.mean(errors)) if errors else 0.0,
        "band_fg_mse_plate": float(np.mean(baseline)) if baseline else 0.0,
    }, preds


def _grey(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(a, 0.0, 1.0)[..., None], 3, axis=2)


def write_preview(path: str | os.PathLike[str], panels: list[np.ndarray]) -> None:
    """Write panels (``H x W`` alpha or ``H x W x 3`` RGB in [0,1]) side by side as a PNG."""
    strip = np.concatenate([p if p.ndim == 3 else _grey(p) for p in panels], axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    u8 = np.round(np.clip(strip, 0.0, 1.0) * 255.0).astype(np.uint8)
    cv2.imwrite(str(path), u8[..., ::-1])
