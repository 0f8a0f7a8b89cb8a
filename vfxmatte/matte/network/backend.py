"""The ``network`` matte backend: a trained PRN at a working resolution.

:class:`NetworkMatte` is built once per run (it loads the checkpoint) and then
called per frame with a display-referred image and its guidance mask. The frame
is scaled so its long side is at most ``working_size``, reflect-padded to the
network's stride, decoded (plain or confidence-guided iterative decoding), and
alpha and confidence are scaled back to the frame. The stride-1 decoder features
of the last step stay available to the sparse refiner (:attr:`MatteResult.features`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from vfxmatte.devices import resolve_device
from vfxmatte.errors import InputError, WeightsError
from vfxmatte.matte.network.arch import PRNMattingNet, arch_config
from vfxmatte.matte.network.decode import iterative_decode
from vfxmatte.matte.network.options import NetworkMatteConfig
from vfxmatte.matte.network.prn import pad_to_stride
from vfxmatte.propagate.checks import check_image, check_mask
from vfxmatte.weights import (
    SHIPPED,
    Checkpoint,
    load_checkpoint,
    load_state_dict,
    shipped_weights,
)

__all__ = ["MatteResult", "NetworkMatte", "NetworkMatteConfig", "load_matting_network"]

KIND = "matte"


@dataclass
class MatteResult:
    """One frame's matte at frame resolution plus what refinement can reuse."""

    alpha: np.ndarray
    confidence: np.ndarray
    features: torch.Tensor
    scale: float


def load_matting_network(
    path: str | os.PathLike[str], device: Any = "cpu"
) -> tuple[PRNMattingNet, Checkpoint]:
    """Build the network a checkpoint describes and load its weights (eval mode).

    Raises:
        WeightsError: missing/unreadable file, wrong kind, keys that do not fit.
    """
    checkpoint = load_checkpoint(path, KIND)
    arch = checkpoint.config.get("arch")
    if not isinstance(arch, dict):
        raise WeightsError(f"{path}: checkpoint config has no 'arch' section")
    model = PRNMattingNet(arch_config(arch))
    load_state_dict(model, checkpoint.state_dict, source=str(path))
    return model.eval().to(device), checkpoint


def _scaled_size(height: int, width: int, working: int) -> tuple[int, int, float]:
    scale = min(1.0, working / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale)), scale


class NetworkMatte:
    """Loaded matting network; ``instance(image, guidance) -> (alpha, confidence)``."""

    def __init__(self, config: NetworkMatteConfig) -> None:
        weights = config.weights or shipped_weights(KIND)
        if not weights:
            raise WeightsError(
                "matte.backend=network needs matte.network.weights (--matte.network.weights PATH): "
                "a .safetensors checkpoint of kind 'matte'; the starter weights "
                f"({SHIPPED[KIND]}) were not found in $VFXMATTE_HOME/weights or the repository"
            )
        self.config = config
        self.device = resolve_device(config.device)
        self.model, self.checkpoint = load_matting_network(weights, self.device)
        self.dtype = torch.float16 if config.half and self.device.type == "cuda" else torch.float32
        self.model.to(self.dtype)

    def __call__(self, image: np.ndarray, guidance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = self.matte(image, guidance)
        return result.alpha, result.confidence

    def predict(
        self, image: torch.Tensor, guidance: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded-tensor level: ``(alpha, error, features)`` after iterative decoding."""
        features: list[torch.Tensor] = []

        def step(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(image, mask, guidance)  # the band stays around the user's mask
            features[:] = [out["features"]]
            return out["alpha"], out["error"]

        alpha, error, _ = iterative_decode(
            step, guidance, self.config.iterations, self.config.schedule
        )
        return alpha, error, features[0]

    def matte(self, image: np.ndarray, guidance: np.ndarray) -> MatteResult:
        """Alpha and confidence of one frame (``H x W`` float32 in [0,1])."""
        image = check_image(image, "image")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = image[..., :3]
        guidance = check_mask(guidance, image.shape[:2], "guidance")
        if not (np.isfinite(image).all() and np.isfinite(guidance).all()):
            raise InputError("The image or the guidance holds NaN or infinite values.")
        height, width = image.shape[:2]
        h, w, scale = _scaled_size(height, width, self.config.working_size)
        if scale < 1.0:
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            guidance = cv2.resize(guidance, (w, h), interpolation=cv2.INTER_AREA)
        img = torch.from_numpy(np.ascontiguousarray(np.clip(image, 0.0, 1.0), np.float32))
        img = img.permute(2, 0, 1)[None]
        gui = torch.from_numpy(np.ascontiguousarray(np.clip(guidance, 0.0, 1.0), np.float32))
        gui = gui[None, None]
        img_p, (top, left, _, _) = pad_to_stride(img)
        gui_p, _ = pad_to_stride(gui)
        with torch.inference_mode():
            alpha, error, features = self.predict(
                img_p.to(self.device, self.dtype), gui_p.to(self.device, self.dtype)
            )
        crop = (slice(None), slice(None), slice(top, top + h), slice(left, left + w))
        alpha_w = alpha[crop][0, 0].float().cpu().numpy()
        conf_w = 1.0 - error[crop][0, 0].float().cpu().numpy()
        features = features[crop].float()
        if scale < 1.0:
            alpha_w = cv2.resize(alpha_w, (width, height), interpolation=cv2.INTER_LINEAR)
            conf_w = cv2.resize(conf_w, (width, height), interpolation=cv2.INTER_LINEAR)
        alpha_out = np.clip(alpha_w, 0.0, 1.0).astype(np.float32)
        conf_out = np.clip(conf_w, 0.0, 1.0).astype(np.float32)
        return MatteResult(alpha_out, conf_out, features, scale)
