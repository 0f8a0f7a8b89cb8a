"""Training data that looks like footage: real photographs on both sides of the edge.

The synthetic generator's objects and backdrops have different colour statistics,
so a network trained on them can separate foreground from background by colour
alone and ignore its mask; on real photographs that network punches holes into
dark fur and drops faces. Here both sides come from the *same* distribution, the
``train`` photographs of :mod:`vfxmatte.synth.photos` (scikit-image, scikit-learn
and matplotlib sample photos, the scene-linear OpenEXR photographs):

* :class:`PhotoForegrounds`: the synthetic objects' exact alpha (blob bodies,
  sub-pixel hair strands, translucent veils, motion blur) with the colour of a
  real photograph crop (random zoom and exposure) instead of a procedural texture;
* :class:`PhotoBackgrounds`: crops of the same photographs;
* :class:`FootageSampleMaker`: the composition of :class:`SampleMaker` plus

  - *tone matching* (``data.tone_match_prob``): the object's mean luminance is set
    to the background's (x U(0.7, 1.4)), then both are darkened (dark-on-dark) or
    brightened (light-on-light, highlights clip as on a camera);
  - *instances inside one mask* (``data.union_prob`` of the two-object samples): the
    guidance and the target cover both objects (union alpha, exact F for the
    composition loss), and the second object is the dimmer one, so that a network
    learns to keep the dimmer of two objects a mask holds (Mask-guided Matting in
    the Wild §4.1 supervises one object given its own mask; both are needed);
  - camera degradations (``data.realism_prob``): blur, noise, JPEG of the base
    class plus luminance-dependent grain.

Photos are loaded once per process at most ``_MAX_SIDE`` pixels; a sample costs a
crop and a resize, so data generation runs at the synthetic generator's rate (the
object alpha is rendered the same way).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.train.composition import MattingSample, SampleMaker, composite, to_display
from vfxmatte.train.guidance import perturb_guidance
from vfxmatte.train.sources import HELD_OUT_SEED, SyntheticForegrounds

__all__ = ["FootageSampleMaker", "PhotoBackgrounds", "PhotoForegrounds", "train_photos"]

_MAX_SIDE = 768
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@functools.lru_cache(maxsize=1)
def train_photos() -> tuple[np.ndarray, ...]:
    """The ``train`` photographs, scene-linear, long side at most 768 (loaded once).

    Raises:
        InputError: none found (scikit-image, scikit-learn or matplotlib not installed).
    """
    from vfxmatte.synth.photos import find_photos, load_photo

    photos = find_photos("train")
    if not photos:
        raise InputError(
            "data.source=photos found no training photographs: install scikit-image "
            "(pip install scikit-image) or point $VFXMATTE_PHOTOS at scene-linear EXRs."
        )
    return tuple(load_photo(p, max_side=_MAX_SIDE) for p in photos)


def _photo_crop(rng: np.random.Generator, height: int, width: int, zoom: float) -> np.ndarray:
    """A ``height x width x 3`` crop of a random training photo, ``zoom`` >= 1 magnifies."""
    photos = train_photos()
    image = photos[int(rng.integers(len(photos)))]
    ih, iw = image.shape[:2]
    scale = max(height / ih, width / iw) * zoom
    ch, cw = max(1, min(ih, round(height / scale))), max(1, min(iw, round(width / scale)))
    y0, x0 = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop, np.float32)


class PhotoForegrounds:
    """Synthetic objects' alpha with a real photograph's colour (one per index)."""

    def __init__(self, canvas: int = 384, supersample: int = 4) -> None:
        self.shapes = SyntheticForegrounds(canvas, supersample)

    def __len__(self) -> int:
        return HELD_OUT_SEED

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        _, alpha = self.shapes[index]
        rng = np.random.default_rng([int(index) % HELD_OUT_SEED, 6161])
        h, w = alpha.shape
        fg = _photo_crop(rng, h, w, float(rng.uniform(1.0, 3.0)))
        fg *= np.float32(math.exp(rng.uniform(-0.7, 0.5)))
        return fg, alpha


class PhotoBackgrounds:
    """Crops of the training photographs at random zoom and exposure (one per index)."""

    def __init__(self, size: int = 384) -> None:
        self.size = int(size)

    def __len__(self) -> int:
        return HELD_OUT_SEED

    def __getitem__(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([int(index) % HELD_OUT_SEED, 5252])
        h = int(self.size * rng.uniform(1.0, 1.6))
        w = int(h * rng.uniform(1.0, 1.8))
        bg = _photo_crop(rng, h, w, float(rng.uniform(1.0, 2.0)))
        return bg * np.float32(math.exp(rng.uniform(-0.7, 0.5)))


def _luma(rgb: np.ndarray, weight: np.ndarray | None = None) -> float:
    lum = rgb @ _LUMA
    if weight is None:
        return float(lum.mean())
    return float((lum * weight).sum() / max(float(weight.sum()), 1e-6))


def union_instances(
    fg1: np.ndarray, a1: np.ndarray, fg2: np.ndarray, a2: np.ndarray, bg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object 1 over object 2 over ``bg``, supervised as one: ``(image, alpha, F)``.

    ``alpha = 1 - (1 - a1)(1 - a2)`` and ``F = (a1 F1 + (1 - a1) a2 F2) / alpha``, so
    ``image = alpha F + (1 - alpha) bg`` holds exactly (the composition loss stays valid).
    """
    image = composite(fg1, a1, composite(fg2, a2, bg))
    alpha = (1.0 - (1.0 - a1) * (1.0 - a2)).astype(np.float32)
    premult = a1[..., None] * fg1 + ((1.0 - a1) * a2)[..., None] * fg2
    fg = np.where(alpha[..., None] > 1e-6, premult / np.maximum(alpha, 1e-6)[..., None], fg1)
    return image, alpha, fg.astype(np.float32)


class FootageSampleMaker(SampleMaker):
    """:class:`SampleMaker` over photo sources with tone matching and instance unions."""

    def _tone_match(
        self, rng: np.random.Generator, fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Same brightness on both sides, then both dark or both light."""
        target = _luma(bg) * float(rng.uniform(0.7, 1.4))
        fg = fg * np.float32(target / max(_luma(fg, alpha), 1e-4))
        gain = math.exp(rng.uniform(-2.5, -1.0) if rng.random() < 0.5 else rng.uniform(0.2, 1.0))
        return fg * np.float32(gain), bg * np.float32(gain)

    def _grain(self, display: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Luminance-dependent grain (stronger in the shadows), slightly blurred."""
        sigma = float(rng.uniform(0.005, 0.03))
        noise = rng.standard_normal(display.shape[:2]).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(0.5, 1.2)))
        amount = sigma * (1.5 - display.mean(axis=2))
        return np.clip(display + (noise * amount)[..., None], 0.0, 1.0).astype(np.float32)

    def matting(self, rng: np.random.Generator) -> MattingSample:
        size = self.data.crop_size
        fg1, a1 = self._foreground(rng, size, centred=True)
        bg = self._background(rng, size)
        if rng.random() < self.data.tone_match_prob:
            fg1, bg = self._tone_match(rng, fg1, a1, bg)
        target_fg = fg1
        if rng.random() < self.data.instance_prob:
            fg2, a2 = self._foreground(rng, size, centred=False)
            if rng.random() < self.data.union_prob:
                dim = np.float32(math.exp(rng.uniform(-2.0, -0.5)))  # the dimmer object
                image, alpha, target_fg = union_instances(fg1, a1, fg2 * dim, a2, bg)
                bg_eff = bg
            else:
                fg_s, bg_s = self._space(fg1), self._space(bg)
                sample = self._instance(rng, fg_s, a1, self._space(fg2), a2, bg_s)
                image, alpha, bg_eff = sample
                return self._finish(rng, image, alpha, fg_s, bg_eff)
        else:
            image, alpha, bg_eff = composite(fg1, a1, bg), a1, bg
        return self._finish(rng, self._space(image), alpha, self._space(target_fg),
                            self._space(bg_eff))  # fmt: skip

    def _instance(self, rng: np.random.Generator, *args: Any) -> tuple[np.ndarray, ...]:
        from vfxmatte.train.composition import compose_instances

        fg1, a1, fg2, a2, bg = args
        if rng.random() < 0.5:
            return compose_instances(fg1, a1, fg2, a2, bg, target=1)
        return compose_instances(fg2, a2, fg1, a1, bg, target=2)

    def _finish(
        self,
        rng: np.random.Generator,
        image: np.ndarray,
        alpha: np.ndarray,
        fg: np.ndarray,
        bg: np.ndarray,
    ) -> MattingSample:
        display = to_display(image, self.data.composite_space)
        comp_valid = True
        if rng.random() < self.data.realism_prob:
            display = self._degrade(display, rng)
            if rng.random() < 0.5:
                display = self._grain(display, rng)
            comp_valid = False
        guidance = perturb_guidance(alpha, rng, self.guidance)
        return MattingSample(display, alpha, fg, bg, guidance, comp_valid)
