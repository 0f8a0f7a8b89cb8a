"""Where foregrounds and backgrounds come from: the synthetic generator or folders on disk.

A *foreground source* yields ``(fg, alpha)``: ``fg`` straight scene-linear colour
``H x W x 3`` float32 (defined everywhere, also where alpha is 0, so resizing and
colour networks see no black fringe), ``alpha`` ``H x W`` float32 in [0,1]. A
*background source* yields ``H x W x 3`` float32 scene-linear colour. Both are
indexed by an integer so that a sample is a pure function of its index (what
makes a resumed run identical to an uninterrupted one).

* :class:`SyntheticForegrounds` / :class:`SyntheticBackgrounds`: the objects and
  backdrops of :mod:`vfxmatte.synth` (blob bodies with sub-pixel hair, a
  translucent veil, motion blur) drawn with seeds in ``[0, 2**30)``; held-out
  evaluation uses shot seeds from :data:`HELD_OUT_SEED` upwards, never seen here.
* :class:`FolderForegrounds`: matting datasets in the common layouts --
  Composition-1k (``fg/`` + ``alpha/``), Distinction-646 (``FG/`` + ``GT/``),
  AM-2K (``original/`` + ``mask/``), P3M (``blurred_image/`` + ``mask/``); files
  are paired by name stem. 8-bit images are taken as sRGB and linearised.
* :class:`FolderBackgrounds`: every image under a folder (COCO, VOC...).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.io.colour import srgb_to_linear
from vfxmatte.synth.render import background_texture, build_objects, object_box, render_object

__all__ = [
    "HELD_OUT_SEED",
    "IMAGE_SUFFIXES",
    "FolderBackgrounds",
    "FolderForegrounds",
    "SyntheticBackgrounds",
    "SyntheticForegrounds",
    "extend_colour",
    "find_matting_folders",
    "read_alpha",
    "read_colour",
]

#: Synthetic seeds at or above this are reserved for held-out evaluation.
HELD_OUT_SEED = 2**30
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp")

FG_NAMES = ("fg", "foreground", "original", "blurred_image", "image", "images", "merged")
ALPHA_NAMES = ("alpha", "gt", "mask", "matte", "alphas", "masks", "trimap_free_alpha")
BG_NAMES = ("bg", "background", "backgrounds")


def extend_colour(fg: np.ndarray, alpha: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """Fill ``fg`` where ``alpha`` is ~0 with nearby foreground colour (normalised blur).

    Keeps ``fg`` wherever ``alpha > 0.02``; elsewhere takes the alpha-weighted
    blur of the colour, so resizing and blurring do not pull black into edges.
    """
    w = alpha[..., None].astype(np.float32)
    num = cv2.GaussianBlur(fg * w, (0, 0), sigma).reshape(fg.shape)
    den = cv2.GaussianBlur(w, (0, 0), sigma).reshape(w.shape)
    mean = (fg * w).sum(axis=(0, 1)) / max(float(w.sum()), 1e-6)
    filled = np.where(den > 1e-4, num / np.maximum(den, 1e-4), mean)
    return np.where(w > 0.02, fg, filled).astype(np.float32)


class SyntheticForegrounds:
    """Procedural foreground objects of :mod:`vfxmatte.synth` (one per index)."""

    def __init__(self, canvas: int = 384, supersample: int = 4) -> None:
        self.canvas = int(canvas)
        self.supersample = int(supersample)

    def __len__(self) -> int:
        return HELD_OUT_SEED

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        seed = int(index) % HELD_OUT_SEED
        rng = np.random.default_rng([seed, 4242])
        hair = bool(rng.random() < 0.85)
        veil = bool(rng.random() < 0.35)
        blur_samples = int(rng.choice([1, 1, 3, 5]))
        speed = float(rng.uniform(0.0, 30.0)) if blur_samples > 1 else 0.0
        frames = 16
        t = float(rng.uniform(0.0, frames - 1))
        times = t + 0.5 * np.linspace(-0.5, 0.5, blur_samples) if blur_samples > 1 else [t]
        times = np.asarray(times, dtype=np.float64)
        size = self.canvas
        obj = build_objects(size, size, frames, 1, seed, speed)[0]
        box = object_box(obj, times, size, size, hair=hair, veil=veil)
        if box is None:  # the object swung out of the canvas: take the first frame instead
            times = np.zeros(1)
            box = object_box(obj, times, size, size, hair=hair, veil=veil) or (0, 0, size, size)
        alpha, premult = render_object(obj, times, box, self.supersample, hair=hair, veil=veil)
        fg = premult / np.maximum(alpha, 1e-6)[..., None]
        pad = 16
        alpha = np.pad(alpha, pad)
        fg = np.pad(fg, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        return extend_colour(fg.astype(np.float32), alpha), alpha.astype(np.float32)


class SyntheticBackgrounds:
    """Procedural scene-linear backdrops (:func:`vfxmatte.synth.render.background_texture`)."""

    def __init__(self, size: int = 384) -> None:
        self.size = int(size)

    def __len__(self) -> int:
        return HELD_OUT_SEED

    def __getitem__(self, index: int) -> np.ndarray:
        seed = int(index) % HELD_OUT_SEED
        rng = np.random.default_rng([seed, 5151])
        aspect = rng.uniform(1.0, 2.0)
        h = int(self.size * rng.uniform(1.0, 1.6))
        tex = background_texture(int(h * aspect), h, seed)
        gain = np.float32(math.exp(rng.uniform(-0.7, 0.5)))
        return np.ascontiguousarray(tex * gain, dtype=np.float32)


def read_colour(path: str | os.PathLike[str]) -> np.ndarray:
    """``H x W x 3`` float32 scene-linear colour of an image file.

    Integer files (PNG/JPEG/8- or 16-bit TIFF) are taken as sRGB-encoded and
    linearised; float files (EXR, float TIFF) as scene-linear already.
    """
    from vfxmatte.io.image import read_image

    path = os.fspath(path)
    pixels = read_image(path).pixels
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    pixels = np.ascontiguousarray(pixels[..., :3], dtype=np.float32)
    if not _is_float_file(path):
        pixels = srgb_to_linear(np.clip(pixels, 0.0, 1.0))
    return pixels


def _is_float_file(path: str) -> bool:
    """Whether the file stores floating-point pixels (EXR, float TIFF...)."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(path)
    if inp is None:  # read_image has already reported unreadable files
        return path.lower().endswith(".exr")
    try:
        return str(inp.spec().format) in ("half", "float", "double")
    finally:
        inp.close()


def read_alpha(path: str | os.PathLike[str]) -> np.ndarray:
    """``H x W`` float32 alpha in [0,1] of a file (its last channel if it has 2 or 4)."""
    from vfxmatte.io.image import read_image

    pixels = read_image(path).pixels
    channel = pixels.shape[2] - 1 if pixels.shape[2] in (2, 4) else 0
    return np.clip(pixels[..., channel], 0.0, 1.0).astype(np.float32)


def _images(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def _sub(root: Path, names: Sequence[str]) -> Path | None:
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for name in names:
        if name in children:
            return children[name]
    return None


def find_matting_folders(root: str | os.PathLike[str]) -> tuple[Path, Path, Path | None]:
    """``(fg_dir, alpha_dir, bg_dir or None)`` of a matting dataset root.

    Raises:
        InputError: the root is missing or holds no recognised fg/alpha pair.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"Matting dataset folder not found: {base}.")
    fg, alpha = _sub(base, FG_NAMES), _sub(base, ALPHA_NAMES)
    if fg is None or alpha is None:
        found = ", ".join(sorted(p.name for p in base.iterdir() if p.is_dir())) or "none"
        raise InputError(
            f"{base} holds no foreground/alpha folder pair (sub-folders found: {found}); "
            f"expected one of {', '.join(FG_NAMES)} and one of {', '.join(ALPHA_NAMES)}."
        )
    return fg, alpha, _sub(base, BG_NAMES)


class FolderForegrounds:
    """Foreground/alpha pairs from one or more matting dataset roots, paired by stem."""

    def __init__(self, roots: Sequence[str | os.PathLike[str]]) -> None:
        self.pairs: list[tuple[Path, Path]] = []
        self.backgrounds: list[Path] = []
        for root in roots:
            fg_dir, alpha_dir, bg_dir = find_matting_folders(root)
            fgs, alphas = _images(fg_dir), _images(alpha_dir)
            common = sorted(set(fgs) & set(alphas))
            if not common:
                raise InputError(
                    f"{fg_dir} and {alpha_dir} share no file names; pairs are matched by stem "
                    f"(e.g. {next(iter(fgs), 'a')}.png in both)."
                )
            self.pairs += [(fgs[k], alphas[k]) for k in common]
            if bg_dir is not None:
                self.backgrounds += list(_images(bg_dir).values())

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        fg_path, alpha_path = self.pairs[int(index) % len(self.pairs)]
        fg, alpha = read_colour(fg_path), read_alpha(str(alpha_path))
        if fg.shape[:2] != alpha.shape:
            raise InputError(
                f"{fg_path} is {fg.shape[1]}x{fg.shape[0]} but its alpha {alpha_path} is "
                f"{alpha.shape[1]}x{alpha.shape[0]}."
            )
        return extend_colour(fg, alpha), alpha


class FolderBackgrounds:
    """Every image file under some folders (or an explicit list of files)."""

    def __init__(
        self, folders: Sequence[str | os.PathLike[str]] = (), files: Sequence[Path] = ()
    ) -> None:
        self.files: list[Path] = list(files)
        for folder in folders:
            if not Path(folder).is_dir():
                raise InputError(f"Background folder not found: {folder}.")
            self.files += list(_images(Path(folder)).values())
        if not self.files:
            raise InputError(
                f"No background images ({', '.join(IMAGE_SUFFIXES)}) in "
                f"{', '.join(map(str, folders))}."
            )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_colour(self.files[int(index) % len(self.files)])
