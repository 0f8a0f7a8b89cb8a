"""One module for the whole per-frame network path, in the layout Nuke's Inference expects.

``forward(x)``: ``1 x 4 x H x W`` -- scene-linear RGB plus the guidance mask --
to ``1 x 4 x H x W`` -- straight foreground RGB (scene-linear) plus alpha. All
pre- and post-processing happens inside ``forward``: the sRGB encoding the
networks were trained on, scaling to the working resolution, padding to the
stride, confidence-guided decoding, upsampling, the foreground colour network.
Every tensor follows the input's device and dtype, so the module runs in half
precision on a GPU. Attributes (working size, decoding steps, alpha epsilon)
become knobs in Nuke.
"""

# No ``from __future__ import annotations`` here: TorchScript reads the class
# attribute annotations below and needs them as real types, not strings.
import torch
import torch.nn.functional as F
from torch import nn

from vfxmatte.decontaminate.colour_net import ColourNet, colour_exposure
from vfxmatte.export.refine import ExportRefine
from vfxmatte.io.colour_torch import srgb_decode, srgb_encode
from vfxmatte.matte.network.arch import PRNMattingNet
from vfxmatte.matte.network.decode import commit_step, commit_target

__all__ = ["MatteExport", "srgb_decode", "srgb_encode"]


def _pad(x: torch.Tensor, stride: int, margin: int) -> torch.Tensor:
    h = x.shape[-2]
    w = x.shape[-1]
    th = stride * ((h + 2 * margin + stride - 1) // stride)
    tw = stride * ((w + 2 * margin + stride - 1) // stride)
    pad = [margin, tw - w - margin, margin, th - h - margin]
    if min(h, w) > max(pad):
        return F.pad(x, pad, mode="reflect")
    return F.pad(x, pad, mode="replicate")


class MatteExport(nn.Module):
    """Matting network (+ optional sparse refiner and colour network) as one ``4 -> 4`` module."""

    working_size: int
    iterations: int
    alpha_epsilon: float
    has_colour: bool
    has_refine: bool

    def __init__(
        self,
        matte: PRNMattingNet,
        colour: ColourNet | None = None,
        working_size: int = 1024,
        iterations: int = 0,
        alpha_epsilon: float = 1e-3,
        refine: ExportRefine | None = None,
    ) -> None:
        super().__init__()
        self.matte = matte.eval()
        self.has_refine = refine is not None
        self.refine = refine if refine is not None else ExportRefine.empty()
        self.has_colour = colour is not None
        self.colour = (colour if colour is not None else ColourNet({"widths": (1, 1, 1, 1)})).eval()
        self.working_size = int(working_size)
        self.iterations = int(iterations)
        self.alpha_epsilon = float(alpha_epsilon)

    def _alpha(self, display: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        full = display
        h = display.shape[-2]
        w = display.shape[-1]
        scale = min(1.0, float(self.working_size) / float(max(h, w)))
        if scale < 1.0:
            size = [max(1, int(round(h * scale))), max(1, int(round(w * scale)))]
            display = F.interpolate(display, size=size, mode="area")
            guide = F.interpolate(guide, size=size, mode="area")
        hs = display.shape[-2]
        ws = display.shape[-1]
        image = _pad(display, 32, 32)
        coarse = _pad(guide, 32, 32)
        state = coarse.clone()
        steps = self.iterations
        if steps <= 1:
            out = self.matte(image, state, coarse)
            alpha = out["alpha"]
            error = out["error"]
            features = out["features"]
        else:
            pixels = int(state[0].numel())
            committed = torch.zeros_like(state, dtype=torch.bool)
            features = image[:, :0]  # replaced by the last step's features
            error_out = torch.zeros_like(state)
            for step in range(1, steps + 1):
                out = self.matte(image, state, coarse)
                target = commit_target(step, steps, pixels, "cosine")
                commit_step(state, committed, error_out, out["alpha"], out["error"], target)
                features = out["features"]
            alpha = state
            error = error_out
        alpha = alpha[:, :, 32 : 32 + hs, 32 : 32 + ws]
        error = error[:, :, 32 : 32 + hs, 32 : 32 + ws]
        features = features[:, :, 32 : 32 + hs, 32 : 32 + ws]
        if scale < 1.0:
            alpha = F.interpolate(alpha, size=[h, w], mode="bilinear", align_corners=False)
            error = F.interpolate(error, size=[h, w], mode="bilinear", align_corners=False)
        alpha = torch.clamp(alpha, 0.0, 1.0)
        if self.has_refine:
            alpha = self.refine(full, alpha, torch.clamp(error, 0.0, 1.0), features)
        return alpha

    def _foreground(self, rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        eps = self.alpha_epsilon
        opaque = alpha >= 1.0 - eps
        clear = alpha <= eps
        fg = rgb
        if self.has_colour:
            # exposure: highlights are scaled into range for the network and back after,
            # by the same rule as decontaminate.backend=network
            exposure = colour_exposure(rgb)
            h = rgb.shape[-2]
            w = rgb.shape[-1]
            display = _pad(srgb_encode(rgb / exposure), 8, 8)
            predicted = self.colour(display, _pad(alpha, 8, 8))[:, :, 8 : 8 + h, 8 : 8 + w]
            fg = torch.where(opaque, rgb, srgb_decode(predicted) * exposure)
        return torch.where(clear, torch.zeros_like(fg), fg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x[:, 0:3]
        guide = torch.clamp(x[:, 3:4], 0.0, 1.0)
        alpha = self._alpha(srgb_encode(rgb), guide)
        return torch.cat((self._foreground(rgb, alpha), alpha), dim=1)
