"""A lazy, in-memory frame source shaped like the SAM 2 predictor's ``images``.

The official video predictor keeps every frame of the shot as a
``3 x S x S`` tensor (``S`` = the model's ``image_size``, 1024) taken from a
JPEG folder. It only ever calls ``len(images)`` and ``images[i]``, so this
sequence decodes frame ``i`` when asked, through the engine's frame callback,
and keeps only the few most recent ones (a small LRU cache): memory no longer
grows with the length of the shot, and no JPEG is written.

The model input is made as in ``sam2.utils.misc.load_video_frames``: the
display-referred frame is resized to ``S x S`` (aspect not kept) and
normalised with the ImageNet mean and std.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from vfxmatte.errors import InputError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "LazyFrames", "to_model_input"]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def to_model_input(image: np.ndarray, size: int) -> np.ndarray:
    """Display-referred frame -> the SAM 2 image encoder's input.

    Args:
        image: ``H x W x 3`` float32 display-referred RGB in [0, 1].
        size: the model's ``image_size`` (square input).

    Returns:
        ``3 x size x size`` float32, ``(rgb - mean) / std`` with ImageNet statistics.
    """
    h, w = image.shape[:2]
    shrink = size < h or size < w
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    small = cv2.resize(image[..., :3], (size, size), interpolation=interp)
    small = (np.clip(small, 0.0, 1.0) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32)


class LazyFrames:
    """``images[i]`` for the SAM 2 inference state, decoded on access.

    Args:
        get_frame: frame number -> ``H x W x 3`` float32 display-referred RGB in [0, 1].
        numbers: frame numbers of the shot in shot order; model index ``i`` is
            ``numbers[i]``.
        size: the model's ``image_size``.
        device: ``torch.device`` the tensors are put on.
        cache_size: how many model-input tensors are kept (least recently used
            go first); each costs ``12 * size**2`` bytes.

    Attributes:
        shape: ``(H, W)`` of the frames, known after the first access.
        decoded: how many times ``get_frame`` was called (tests, diagnostics).
    """

    def __init__(
        self,
        get_frame: Callable[[int], np.ndarray],
        numbers: Sequence[int],
        size: int,
        device: Any,
        *,
        cache_size: int = 4,
    ) -> None:
        self._get_frame = get_frame
        self.numbers = list(numbers)
        self.size = size
        self.device = device
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[int, Any] = OrderedDict()
        self.shape: tuple[int, int] | None = None
        self.decoded = 0

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, index: int) -> Any:
        """The normalised ``3 x S x S`` float32 tensor of model frame ``index``."""
        import torch

        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image = self.read(self.numbers[index])
        tensor = torch.from_numpy(to_model_input(image, self.size)).to(self.device)
        self._cache[index] = tensor
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return tensor

    def read(self, number: int) -> np.ndarray:
        """Decode frame ``number`` through the callback and check it.

        Returns:
            ``H x W x 3`` float32 display-referred RGB.

        Raises:
            InputError: not an ``H x W x 3`` float array, or a size other than
                that of the first frame read.
        """
        image = self._get_frame(number)
        self.decoded += 1
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
            found = image.shape if isinstance(image, np.ndarray) else type(image).__name__
            raise InputError(f"Frame {number} must be an H×W×3 RGB array, got {found}.")
        if not np.issubdtype(image.dtype, np.floating):
            raise InputError(
                f"Frame {number} must be float32 display-referred RGB in [0, 1], got "
                f"{image.dtype}. Convert it first (e.g. divide 8-bit values by 255)."
            )
        if self.shape is None:
            self.shape = (int(image.shape[0]), int(image.shape[1]))
        elif image.shape[:2] != self.shape:
            raise InputError(
                f"Frame size changed within the shot: expected {self.shape[1]}×{self.shape[0]}, "
                f"found {image.shape[1]}×{image.shape[0]} at frame {number}. Every frame of a "
                "shot must have the same size."
            )
        return image.astype(np.float32, copy=False)

    def clear(self) -> None:
        """Drop the cached tensors."""
        self._cache.clear()
