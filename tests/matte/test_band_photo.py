"""The photo-tuned matte network on a real photograph with a rough mask: never worse than it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vfxmatte.matte.network.backend import NetworkMatte
from vfxmatte.matte.network.options import NetworkMatteConfig

PHOTOS = Path(__file__).resolve().parents[2] / "weights" / "matte_small_photos.safetensors"


def _real_photo_crop():
    """The scikit-image coffee photo (held-out role) with an object over it: GT known."""
    from vfxmatte.io.colour import linear_to_srgb
    from vfxmatte.synth.shot import ShotSpec, render_frame

    spec = ShotSpec(width=512, height=288, frames=2, objects=2, seed=2**30 + 5, hair=True,
                    background="photo", textures="photo", photo_role="heldout",
                    motion_blur_samples=1)  # fmt: skip
    frame = render_frame(spec, 0)
    image = np.clip(linear_to_srgb(frame.image), 0, 1).astype(np.float32)
    return image, frame.alpha


@pytest.mark.parametrize("shift", [-6, 6])
def test_real_photo_with_a_rough_mask_never_worse_than_the_mask_and_no_holes(shift):
    image, alpha = _real_photo_crop()
    binary = (alpha > 0.5).astype(np.uint8)
    size = 2 * abs(shift) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    rough = (cv2.dilate if shift > 0 else cv2.erode)(binary, kernel).astype(np.float32)
    net = NetworkMatte(NetworkMatteConfig(weights=str(PHOTOS), device="cpu", iterations=1))
    out, _ = net(image, rough)
    assert np.abs(out - alpha).sum() <= np.abs(rough - alpha).sum()
    # no holes: deep inside the mask (beyond the band) the alpha is the mask's 1
    inside = cv2.distanceTransform(rough.astype(np.uint8), cv2.DIST_L2, 5) > 21.0
    assert inside.any() and (out[inside] == 1.0).all()
