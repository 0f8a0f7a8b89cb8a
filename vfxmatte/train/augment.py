"""Augmentation of training samples (numpy, OpenCV).

Geometric augmentation acts on a foreground and its alpha together (random
resize with a random interpolation, rotation/shear/flip); crops are centred on
the unknown region so most of every crop is about the edge. Photometric
augmentation jitters the foreground's colour; the "realism" set (JPEG
re-compression, blur, noise) degrades the final composite, after which the
composite identity no longer holds and the composition loss is skipped for that
sample (MGMatting §5).

Arrays are ``H x W x C`` float32; alpha ``H x W`` float32 in [0,1].
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "INTERPOLATIONS",
    "add_noise",
    "colour_jitter",
    "crop_box_around_unknown",
    "gaussian_blur",
    "jpeg_recompress",
    "random_affine",
    "random_resize",
]

INTERPOLATIONS = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA)


def random_resize(
    fg: np.ndarray, alpha: np.ndarray, scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``fg`` and ``alpha`` by ``scale``, each with a randomly chosen interpolation.

    Nearest interpolation is not used for alpha (it would make hard edges that no
    camera produces); the colour can get any of the four.
    """
    h, w = alpha.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fg_interp = int(INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))])
    a_interp = int(INTERPOLATIONS[1 + rng.integers(len(INTERPOLATIONS) - 1)])
    fg_out = cv2.resize(fg, size, interpolation=fg_interp).reshape(size[1], size[0], -1)
    a_out = cv2.resize(alpha, size, interpolation=a_interp)
    return fg_out, np.clip(a_out, 0.0, 1.0)


def random_affine(
    fg: np.ndarray, alpha: np.ndarray, rng: np.random.Generator, rotate_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation (up to ``rotate_max`` degrees), small shear and horizontal flip."""
    h, w = alpha.shape
    angle = math.radians(rng.uniform(-rotate_max, rotate_max))
    shear = rng.uniform(-0.1, 0.1)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    c, s = math.cos(angle), math.sin(angle)
    linear = np.array([[c, -s], [s, c]]) @ np.array([[flip, shear], [0.0, 1.0]])
    centre = np.array([w / 2.0, h / 2.0])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])
    flags = cv2.INTER_LINEAR
    fg_out = cv2.warpAffine(fg, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
    a_out = cv2.warpAffine(alpha, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    return fg_out.reshape(h, w, -1), np.clip(a_out, 0.0, 1.0)


def crop_box_around_unknown(
    alpha: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[int, int]:
    """Top-left ``(y, x)`` of a ``size`` crop centred on a random unknown pixel.

    Unknown means ``0 < alpha < 1``; without any, a random foreground pixel; without
    any, the middle. The box may reach past the array (the caller pads).
    """
    ys, xs = np.nonzero((alpha > 0.0) & (alpha < 1.0))
    if ys.size == 0:
        ys, xs = np.nonzero(alpha > 0.0)
    if ys.size == 0:
        cy, cx = alpha.shape[0] // 2, alpha.shape[1] // 2
    else:
        k = int(rng.integers(ys.size))
        cy, cx = int(ys[k]), int(xs[k])
    jitter = size // 8
    cy += int(rng.integers(-jitter, jitter + 1))
    cx += int(rng.integers(-jitter, jitter + 1))
    return cy - size // 2, cx - size // 2


def colour_jitter(fg: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random hue rotation, saturation and brightness of a straight colour image (>= 0)."""
    if strength <= 0.0:
        return fg
    grey = fg.mean(axis=2, keepdims=True)
    saturation = 1.0 + rng.uniform(-strength, strength) * 2.0
    out = grey + (fg - grey) * saturation
    # hue: rotate the chroma about the grey axis
    theta = rng.uniform(-math.pi, math.pi) * strength
    axis = np.ones(3) / math.sqrt(3.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(theta) * k + (1 - math.cos(theta)) * (k @ k)
    out = out @ rot.T.astype(np.float32)
    out *= np.float32(math.exp(rng.uniform(-strength, strength) * 2.0))
    return np.maximum(out, 0.0).astype(np.float32)


def jpeg_recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a display-referred ``H x W x 3`` image in [0,1]."""
    u8 = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        return image
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return decoded.astype(np.float32) / 255.0


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (no-op below 0.1)."""
    if sigma < 0.1:
        return image
    out = cv2.GaussianBlur(image, (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``sigma``, clipped to [0,1]."""
    noise = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.clip(image + noise, 0.0, 1.0)
