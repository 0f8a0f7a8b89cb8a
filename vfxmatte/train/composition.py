"""Training samples by composition: ``I = aF + (1 - a)B`` with exact ground truth.

* :func:`composite`: one foreground over a background, in scene-linear light
  (then the sRGB curve, as a camera plate seen by the network) or in display space.
* :func:`compose_instances`: instance-wise learning (Mask-guided Matting in the
  Wild §4.1, Eq. 2): two foregrounds stacked on one background, supervision for
  one of them; when the target is behind, its visible alpha is recalibrated to
  ``a2' = a2 (1 - a1)``. The returned effective background keeps the composition
  identity ``I = a' F + (1 - a') B'`` exact for the composition loss.
* :func:`random_alpha_blend`: random alpha blending (MGMatting §3.2) for the
  colour network: an unrelated alpha mixes two colour images, so the network
  learns colour, not matting, and is supervised over the whole image.
* :class:`SampleMaker`: draws a full training sample (augmented foreground(s),
  background, crop around the unknown region, perturbed guidance, realism
  degradations) as a pure function of a random generator.

Arrays are numpy ``H x W x C`` float32; alphas ``H x W`` float32 in [0,1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.train.augment import (
    add_noise,
    colour_jitter,
    crop_box_around_unknown,
    gaussian_blur,
    jpeg_recompress,
    random_affine,
    random_resize,
)
from vfxmatte.train.config import DataConfig, GuidanceConfig
from vfxmatte.train.guidance import perturb_guidance

__all__ = [
    "ColourSample",
    "MattingSample",
    "SampleMaker",
    "compose_instances",
    "composite",
    "crop_padded",
    "random_alpha_blend",
    "to_display",
]


def to_display(rgb: np.ndarray, space: str) -> np.ndarray:
    """Colour in composition ``space`` -> display-referred [0,1] (the network's input)."""
    out = linear_to_srgb(rgb) if space == "linear" else rgb
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg`` (all in the same colour space)."""
    a = alpha[..., None]
    return (a * fg + (1.0 - a) * bg).astype(np.float32)


def compose_instances(
    fg1: np.ndarray,
    a1: np.ndarray,
    fg2: np.ndarray,
    a2: np.ndarray,
    bg: np.ndarray,
    target: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object 1 in front of object 2 over ``bg``; supervision for object ``target`` (1 or 2).

    Returns:
        ``(image, alpha, effective_bg)``: the composite, the target's visible alpha
        (``a1`` for the front one, ``a2 (1 - a1)`` for the back one) and the
        colour behind the target such that ``image = alpha F + (1 - alpha) B'``.
    """
    behind = composite(fg2, a2, bg)
    image = composite(fg1, a1, behind)
    if target == 1:
        return image, a1.astype(np.float32), behind
    alpha = (a2 * (1.0 - a1)).astype(np.float32)
    rest = image - alpha[..., None] * fg2
    open_ = (1.0 - alpha)[..., None]
    effective = np.where(open_ > 1e-4, rest / np.maximum(open_, 1e-4), bg)
    return image, alpha, effective.astype(np.float32)


def random_alpha_blend(
    fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Random alpha blending: ``(image, target_fg)`` with the target defined everywhere."""
    return composite(fg, alpha, bg), fg.astype(np.float32)


def crop_padded(array: np.ndarray, y: int, x: int, size: int, mode: str = "constant") -> np.ndarray:
    """``size x size`` window at ``(y, x)``, padded (zeros or reflection) where it leaves."""
    h, w = array.shape[:2]
    pad_y0, pad_x0 = max(0, -y), max(0, -x)
    pad_y1, pad_x1 = max(0, y + size - h), max(0, x + size - w)
    if pad_y0 or pad_x0 or pad_y1 or pad_x1:
        widths: list[tuple[int, int]] = [(pad_y0, pad_y1), (pad_x0, pad_x1)]
        widths += [(0, 0)] * (array.ndim - 2)
        if mode == "reflect" and min(h, w) > 1:
            # reflection is limited to the array size; repeat it with symmetric mode
            array = np.pad(array, widths, mode="symmetric")
        else:
            array = np.pad(array, widths, mode="edge" if mode == "reflect" else "constant")
        y, x = y + pad_y0, x + pad_x0
    return np.ascontiguousarray(array[y : y + size, x : x + size])


@dataclass
class MattingSample:
    """One training sample of the matting network.

    ``image`` and ``guidance`` are the network inputs (display-referred). ``fg``
    and ``bg`` are in the composition space (``linear`` or ``display``) and satisfy
    ``composite(fg, alpha, bg) -> image`` (through :func:`to_display`) unless
    ``comp_valid`` is False (the image was degraded after composition).
    """

    image: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    guidance: np.ndarray
    comp_valid: bool


@dataclass
class ColourSample:
    """One training sample of the colour network: display-referred image, alpha, target F."""

    image: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray


class SampleMaker:
    """Draws training samples from foreground and background sources.

    ``foregrounds[i] -> (fg linear, alpha)`` and ``backgrounds[j] -> bg linear``
    (see :mod:`vfxmatte.train.sources`).
    """

    def __init__(
        self,
        foregrounds: Any,
        backgrounds: Any,
        data: DataConfig,
        guidance: GuidanceConfig,
    ) -> None:
        self.foregrounds = foregrounds
        self.backgrounds = backgrounds
        self.data = data
        self.guidance = guidance

    def _space(self, linear: np.ndarray) -> np.ndarray:
        if self.data.composite_space == "linear":
            return linear
        return to_display(linear, "linear")

    def _foreground(
        self, rng: np.random.Generator, size: int, centred: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """An augmented foreground cropped to ``size``: around its edge, or anywhere."""
        fg, alpha = self.foregrounds[int(rng.integers(len(self.foregrounds)))]
        longest = max(alpha.shape)
        scale = rng.uniform(self.data.scale_min, self.data.scale_max) * size / longest * 1.3
        fg, alpha = random_resize(fg, alpha, scale, rng)
        if self.data.rotate_max > 0:
            fg, alpha = random_affine(fg, alpha, rng, self.data.rotate_max)
        fg = colour_jitter(fg, rng, self.data.jitter)
        if centred:
            y, x = crop_box_around_unknown(alpha, size, rng)
        else:
            y = int(rng.integers(-size // 2, max(1, alpha.shape[0] - size // 2)))
            x = int(rng.integers(-size // 2, max(1, alpha.shape[1] - size // 2)))
        return crop_padded(fg, y, x, size, "reflect"), crop_padded(alpha, y, x, size)

    def _background(self, rng: np.random.Generator, size: int) -> np.ndarray:
        bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        h, w = bg.shape[:2]
        scale = max(size / h, size / w) * rng.uniform(1.0, 1.5)
        if abs(scale - 1.0) > 1e-3:
            bg = cv2.resize(bg, (max(size, round(w * scale)), max(size, round(h * scale))))
        y = int(rng.integers(0, bg.shape[0] - size + 1))
        x = int(rng.integers(0, bg.shape[1] - size + 1))
        bg = np.ascontiguousarray(bg[y : y + size, x : x + size, :3], dtype=np.float32)
        if rng.random() < 0.5:
            bg = bg[:, ::-1].copy()
        if rng.random() < self.data.defocus_prob:
            bg = gaussian_blur(bg, float(rng.uniform(1.0, 6.0)))
        return bg

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5:
            image = gaussian_blur(image, float(rng.uniform(0.3, 1.5)))
        if rng.random() < 0.7:
            image = add_noise(image, float(rng.uniform(0.005, 0.04)), rng)
        if rng.random() < 0.7:
            image = jpeg_recompress(image, int(rng.integers(30, 95)))
        return image

    def matting(self, rng: np.random.Generator) -> MattingSample:
        """A matting sample: composite, target alpha, F and B, and a perturbed guidance."""
        size = self.data.crop_size
        fg1, a1 = self._foreground(rng, size, centred=True)
        bg = self._space(self._background(rng, size))
        fg1 = self._space(fg1)
        if rng.random() < self.data.instance_prob:
            fg2, a2 = self._foreground(rng, size, centred=False)
            fg2 = self._space(fg2)
            if rng.random() < 0.5:  # the target in front of the other object
                image, alpha, bg_eff = compose_instances(fg1, a1, fg2, a2, bg, target=1)
            else:
                image, alpha, bg_eff = compose_instances(fg2, a2, fg1, a1, bg, target=2)
        else:
            image, alpha, bg_eff = composite(fg1, a1, bg), a1, bg
        display = to_display(image, self.data.composite_space)
        comp_valid = True
        if rng.random() < self.data.realism_prob:
            display = self._degrade(display, rng)
            comp_valid = False
        guidance = perturb_guidance(alpha, rng, self.guidance)
        return MattingSample(display, alpha, fg1, bg_eff, guidance, comp_valid)

    def colour(self, rng: np.random.Generator) -> ColourSample:
        """A random-alpha-blending sample for the colour network (targets in display space)."""
        size = self.data.crop_size
        _, alpha = self._foreground(rng, size, centred=True)
        if rng.random() < 0.5:
            fg, _ = self._foreground(rng, size, centred=False)  # an object's own colours
        else:
            fg = colour_jitter(self._background(rng, size), rng, self.data.jitter)
        bg = self._background(rng, size)
        image, target = random_alpha_blend(self._space(fg), self._space(bg), alpha)
        space = self.data.composite_space
        return ColourSample(to_display(image, space), alpha, to_display(target, space))
