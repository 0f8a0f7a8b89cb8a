"""The ``network`` decontaminate backend: the foreground colour network on the band.

Only the uncertain band ``eps < alpha < 1 - eps`` needs a colour estimate; outside
it the answer is exact (``F = I`` where opaque, ``F = 0`` where transparent, as
for the multi-level solver). The frame is cut into tiles; runs of tiles touching
the band are run through the network at full resolution with ``context_margin``
pixels of context, and only their band pixels are written back.

The network sees display-referred colour. Each crop is first divided by its
exposure ``s = max(1, crop maximum)``
(:func:`~vfxmatte.decontaminate.colour_net.colour_exposure`, the rule the
TorchScript export uses too) so scene-linear highlights stay in range, converted
with the sRGB curve, and the predicted colour is converted back and multiplied
by ``s``: highlights in the band keep their scene-linear level.

Torch is imported when the backend is built, not when its options are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.decontaminate.tiles import band_crops, relative
from vfxmatte.errors import InputError, WeightsError
from vfxmatte.io.colour import linear_to_srgb, srgb_to_linear

__all__ = ["NetworkForeground", "NetworkForegroundConfig", "load_colour_network"]

KIND = "colour"


@dataclass
class NetworkForegroundConfig:
    """Options of the foreground colour network backend."""

    weights: str = param(
        "",
        "Foreground colour network checkpoint (.safetensors of kind 'colour'); empty: the "
        "shipped starter weights (weights/colour.safetensors).",
    )
    alpha_epsilon: float = param(
        1e-3,
        "Alpha at most this is transparent (F=0), at least 1 minus this is opaque (F=plate); "
        "the network colours what lies between.",
        min=0.0, max=0.1,
    )  # fmt: skip
    tile_size: int = param(256, "Side of the tiles that make up the band crops.", min=8, max=8192)
    context_margin: int = param(
        32, "Pixels of context run around each band crop and discarded.", min=0, max=1024
    )
    device: str = param("auto", "Compute device: auto, cpu, cuda, cuda:N or mps.")

    def __post_init__(self) -> None:
        validate_fields(self, "decontaminate.network.")


def load_colour_network(path: str | os.PathLike[str], device: Any = "cpu") -> Any:
    """The :class:`~vfxmatte.decontaminate.colour_net.ColourNet` a checkpoint describes."""
    from vfxmatte.decontaminate.colour_net import ColourNet
    from vfxmatte.weights import load_checkpoint, load_state_dict

    checkpoint = load_checkpoint(path, KIND)
    model = ColourNet(checkpoint.config.get("arch"))
    load_state_dict(model, checkpoint.state_dict, source=str(path))
    return model.eval().to(device)


class NetworkForeground:
    """Loaded colour network; ``instance(linear_image, alpha) -> straight foreground``."""

    def __init__(self, config: NetworkForegroundConfig) -> None:
        from vfxmatte.devices import resolve_device
        from vfxmatte.weights import shipped_weights

        weights = config.weights or shipped_weights(KIND)
        if not weights:
            raise WeightsError(
                "decontaminate.backend=network needs decontaminate.network.weights "
                "(--decontaminate.network.weights PATH): a .safetensors checkpoint of kind "
                "'colour'; the starter weights were not found in $VFXMATTE_HOME/weights or "
                "the repository"
            )
        self.config = config
        self.device = resolve_device(config.device)
        self.model = load_colour_network(weights, self.device)

    def _run_crop(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        import torch

        from vfxmatte.decontaminate.colour_net import colour_exposure
        from vfxmatte.matte.network.prn import pad_to_stride

        exposure = float(colour_exposure(torch.from_numpy(np.ascontiguousarray(image))))
        display = np.clip(linear_to_srgb(image / np.float32(exposure)), 0.0, 1.0)
        img = torch.from_numpy(np.ascontiguousarray(display, np.float32)).permute(2, 0, 1)[None]
        alp = torch.from_numpy(np.ascontiguousarray(alpha, np.float32))[None, None]
        margin = 8 if min(alpha.shape) > 8 else 0
        img_p, (top, left, h, w) = pad_to_stride(img, 8, margin)
        alp_p, _ = pad_to_stride(alp, 8, margin)
        with torch.inference_mode():
            fg = self.model(img_p.to(self.device), alp_p.to(self.device))
        fg = fg[0, :, top : top + h, left : left + w].permute(1, 2, 0).float().cpu().numpy()
        return srgb_to_linear(fg) * np.float32(exposure)

    def __call__(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        alpha = np.asarray(alpha)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != alpha.shape:
            raise InputError(
                f"Expected image H×W×3 and alpha H×W of the same size; got image {image.shape} "
                f"and alpha {alpha.shape}."
            )
        if not (np.isfinite(image).all() and np.isfinite(alpha).all()):
            raise InputError("The image or the alpha holds NaN or infinite values.")
        image = image.astype(np.float32, copy=False)
        alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False)
        eps = self.config.alpha_epsilon
        fg = np.where((alpha >= 1.0 - eps)[..., None], image, np.float32(0.0))
        band = (alpha > eps) & (alpha < 1.0 - eps)
        if not band.any():
            return fg.astype(np.float32, copy=False)
        for crop, core in band_crops(band, self.config.tile_size, self.config.context_margin):
            predicted = self._run_crop(image[crop], alpha[crop])
            local = relative(core, crop)
            keep = band[core]
            fg[core][keep] = predicted[local][keep]
        return fg.astype(np.float32, copy=False)
