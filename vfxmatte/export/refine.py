"""The sparse refiner in TorchScript form, for the export.

Same parameters and the same arithmetic as the ``torch`` path of
:class:`~vfxmatte.refine.sparse_net.SparseRefineNet`: the active pixels
(predicted error above ``tau``) are gathered with their 3x3 neighbourhoods and
every layer is one matrix multiply. Written without the Python-side helpers
(closures, keyword-only arguments) that TorchScript cannot compile.

Half precision: the refiner always computes in float32, whatever the module's
and the input's dtype, and gives its alpha back in the input's dtype. It touches
only the active pixels (a few percent of the frame), so this costs little, and
half precision is not safe here: ``F.grid_sample`` on half tensors on the CPU
returns features off by up to ~4 (torch 2.13), which corrupted the exported alpha
by up to 0.92 in half, and the 9 x C_in dot products of every layer lose digits
in float16.
"""

# No ``from __future__ import annotations``: TorchScript reads the annotations.
import torch
import torch.nn.functional as F
from torch import nn

from vfxmatte.refine.sparse_conv import neighbour_table
from vfxmatte.refine.sparse_net import SparseRefineArch, SparseRefineNet

__all__ = ["ExportRefine"]


class _Conv(nn.Module):
    """One submanifold 3x3 layer as a ``[9 * C_in, C_out]`` matrix."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        out = weight.shape[0]
        self.register_buffer("kernel", weight.detach().reshape(out, -1).t().contiguous())
        self.register_buffer("bias", bias.detach().clone())

    def forward(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N + 1, C_in]`` with a zero last row -> ``[N + 1, C_out]``, same layout."""
        n = table.shape[0]
        patches = x.index_select(0, table.reshape(-1)).reshape(n, -1)
        # float32 whatever dtype the module was cast to (see the module docstring)
        rows = torch.addmm(self.bias.float(), patches.float(), self.kernel.float())
        return torch.cat([rows, rows.new_zeros(1, rows.shape[1])])


class _Block(nn.Module):
    """conv, LeakyReLU, conv, add the input, LeakyReLU (as the refiner's residual block)."""

    def __init__(self, first: _Conv, second: _Conv) -> None:
        super().__init__()
        self.first = first
        self.second = second

    def forward(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.first(x, table), 0.2)
        return F.leaky_relu(x + self.second(y, table), 0.2)


class ExportRefine(nn.Module):
    """``forward(image, alpha, error, features)`` -> refined alpha, all ``1 x C x H x W``."""

    tau: float
    feature_channels: int

    def __init__(self, net: SparseRefineNet, tau: float = 0.1) -> None:
        super().__init__()
        layers = [_Conv(layer.weight, layer.bias) for layer in net.layers]
        self.stem = layers[0]
        self.body = nn.ModuleList(
            _Block(layers[1 + 2 * b], layers[2 + 2 * b]) for b in range(net.arch.blocks)
        )
        self.head = layers[-1]
        self.feature_channels = int(net.arch.feature_channels)
        self.tau = float(tau)

    @staticmethod
    def empty() -> "ExportRefine":
        """A stand-in with no layers for exports without a refiner (never called)."""
        return ExportRefine(SparseRefineNet(SparseRefineArch(width=1, blocks=0)), 1.0)

    def forward(
        self, image: torch.Tensor, alpha: torch.Tensor, error: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        h = alpha.shape[-2]
        w = alpha.shape[-1]
        coords = torch.nonzero(error[0, 0] > self.tau)
        n = coords.shape[0]
        if n == 0:
            return alpha
        ys = coords[:, 0]
        xs = coords[:, 1]
        parts = [
            image[0][:, ys, xs].t().float(),
            alpha[0, 0][ys, xs][:, None].float(),
            error[0, 0][ys, xs][:, None].float(),
        ]
        if self.feature_channels > 0:
            # bilinear upsampling of the features read at the active pixels only, in float32
            gx = (xs.float() + 0.5) * (2.0 / w) - 1.0
            gy = (ys.float() + 0.5) * (2.0 / h) - 1.0
            grid = torch.stack([gx, gy], dim=1)[None, None]
            sampled = F.grid_sample(
                features.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
            )
            parts.append(sampled[0, :, 0].t())
        rows = torch.cat(parts, dim=1)
        x = torch.cat([rows, rows.new_zeros(1, rows.shape[1])])
        table = neighbour_table(coords, h, w)
        hidden = F.leaky_relu(self.stem(x, table), 0.2)
        for block in self.body:
            hidden = block(hidden, table)
        residual = self.head(hidden, table)[:n, 0]
        refined = torch.clamp(rows[:, 3] + residual, 0.0, 1.0)
        out = alpha.clone()
        out[0, 0, ys, xs] = refined.to(alpha.dtype)
        return out
