"""The one IMAGE/MASK conversion helper, and ComfyUI's Load Image mask convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfxmatte.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def t(pack):
    return pack.tensors


def test_image_round_trip_and_shapes(t) -> None:
    rng = np.random.default_rng(0)
    frames = rng.random((2, 5, 7, 3), dtype=np.float32)
    image = t.numpy_to_image(frames)
    assert image.dtype == torch.float32 and tuple(image.shape) == (2, 5, 7, 3)
    np.testing.assert_array_equal(t.image_to_numpy(image), frames)
    rgba = torch.cat([image, torch.ones(2, 5, 7, 1)], dim=3)  # the alpha channel is dropped
    np.testing.assert_array_equal(t.image_to_numpy(rgba), frames)
    np.testing.assert_array_equal(t.image_to_numpy(image[0]), frames[:1])  # H x W x C
    assert t.image_to_numpy(torch.zeros(1, 4, 4, 1)).shape == (1, 4, 4, 3)  # grey
    with pytest.raises(
        InputError, match=r"B x H x W x 3 \(ComfyUI IMAGE\), got shape \(2, 3, 5, 7\)"
    ):
        t.image_to_numpy(image.permute(0, 3, 1, 2))


def test_mask_round_trip_and_shapes(t) -> None:
    masks = np.zeros((3, 4, 6), np.float32)
    masks[1, 1:3, 2:5] = 1
    tensor = t.numpy_to_mask(masks)
    assert tuple(tensor.shape) == (3, 4, 6)
    np.testing.assert_array_equal(t.mask_to_numpy(tensor), masks)
    assert t.mask_to_numpy(torch.zeros(4, 6)).shape == (1, 4, 6)
    with pytest.raises(InputError, match="B x H x W"):
        t.mask_to_numpy(torch.zeros(1, 4, 6, 1))


def test_nan_is_refused_with_its_count(t) -> None:
    image = torch.zeros(1, 4, 4, 3)
    image[0, 1, 2] = float("nan")
    with pytest.raises(InputError, match="3 NaN or infinite"):
        t.image_to_numpy(image)


def test_load_image_placeholder_mask_is_explained(t) -> None:
    with pytest.raises(InputError, match="empty 64x64 MASK that ComfyUI's Load Image gives"):
        t.fit_mask(np.zeros((64, 64), np.float32), (48, 80))
    # A real 64x64 plate with an empty mask is not the placeholder.
    assert not t.fit_mask(np.zeros((64, 64), np.float32), (64, 64)).any()


def _cutout_mask() -> np.ndarray:
    """An object in the middle: 1 on the object."""
    mask = np.zeros((40, 60), np.float32)
    mask[10:30, 20:45] = 1.0
    return mask


def test_inverted_load_image_mask(t) -> None:
    obj = _cutout_mask()
    load_image = 1.0 - obj  # Load Image's MASK of a cut-out: 1 - alpha
    assert t.looks_inverted(load_image) and not t.looks_inverted(obj)
    np.testing.assert_array_equal(t.fit_mask(load_image, obj.shape), obj)  # auto inverts
    np.testing.assert_array_equal(t.fit_mask(load_image, obj.shape, mode="as is"), load_image)
    np.testing.assert_array_equal(t.fit_mask(obj, obj.shape, mode="invert"), load_image)
    np.testing.assert_array_equal(t.fit_mask(obj, obj.shape), obj)  # auto keeps a normal mask
    # An object that reaches one edge only is not mistaken for a background.
    edge = obj.copy()
    edge[10:, 20:45] = 1.0
    np.testing.assert_array_equal(t.fit_mask(edge, obj.shape), edge)
    with pytest.raises(ConfigError, match="Did you mean 'invert'"):
        t.fit_mask(obj, obj.shape, mode="inverse")


def test_mask_size_and_range(t) -> None:
    obj = _cutout_mask()
    with pytest.raises(InputError, match="is 60x40 but the frames are 120x80"):
        t.fit_mask(obj, (80, 120))
    big = t.fit_mask(obj, (80, 120), resize=True)
    assert big.shape == (80, 120) and big[40, 65] == 1.0 and big[2, 2] == 0.0
    with pytest.raises(InputError, match=r"values from 0 to 2; a MASK must lie in \[0, 1\]"):
        t.fit_mask(obj * 2, obj.shape)
