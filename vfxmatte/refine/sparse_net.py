"""The sparse refinement network: a small residual stack of submanifold 3x3 convolutions.

Mask2Alpha §3.3 ("self-guided sparse detail recovery") and SparseMat's sparse
high-resolution module refine only the pixels the coarse pass is unsure about, at
full resolution, with submanifold sparse convolutions. :class:`SparseRefineNet`
takes, per active pixel, the input row

====================  =========================================================
channels              meaning
====================  =========================================================
``0:3``               full-resolution image, display-referred RGB in [0, 1]
``3``                 coarse alpha upsampled to full resolution, [0, 1]
``4``                 predicted error of the coarse alpha (1 - confidence)
``5:5+F``             optional decoder features, bilinearly upsampled, sampled
                      at the active pixels only (:func:`sample_features`)
====================  =========================================================

and returns ``clamp(alpha + residual, 0, 1)`` at those pixels. The same
parameters drive four forwards:

* ``impl="torch"``: gather + GEMM sparse convolution (:mod:`.sparse_conv`), the default;
* ``impl="spconv"``: ``spconv.pytorch.SubMConv2d`` (:mod:`.spconv_backend`);
* ``impl="dense_reference"``: ``F.conv2d`` on the full grid, features zeroed
  outside the active set after every layer: equal to the sparse paths at the
  active pixels (the test oracle);
* :meth:`SparseRefineNet.forward_dense`: a plain dense full-resolution forward
  (every pixel active), the baseline of ``benchmarks/refine_bench.py``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vfxmatte.config import config_from_dict, param, validate_fields
from vfxmatte.errors import ConfigError, InputError, WeightsError, closest_hint
from vfxmatte.refine.sparse_conv import ActiveSet, dense_subm_conv3x3, subm_conv3x3

__all__ = [
    "ALPHA_CHANNEL",
    "BASE_CHANNELS",
    "ERROR_CHANNEL",
    "IMPLS",
    "SparseRefineArch",
    "SparseRefineNet",
    "SubmConv3x3",
    "dense_inputs",
    "sample_features",
    "sparse_inputs",
]

#: Forward paths of :meth:`SparseRefineNet.forward`.
IMPLS: tuple[str, ...] = ("torch", "spconv", "dense_reference")
ALPHA_CHANNEL = 3
ERROR_CHANNEL = 4
BASE_CHANNELS = 5  # RGB, alpha, error
_SLOPE = 0.2  # LeakyReLU slope (as MGMatting); f(0) = 0 keeps inactive sites at zero
_HEAD_SCALE = 0.1  # a fresh network starts close to the coarse alpha


@dataclass
class SparseRefineArch:
    """Architecture of :class:`SparseRefineNet`, stored inside its checkpoints."""

    width: int = param(32, "Channels of every hidden layer.", min=1, max=512)
    blocks: int = param(3, "Residual blocks (two 3x3 convolutions each).", min=0, max=64)
    feature_channels: int = param(
        0, "Channels of the decoder features given per active pixel (0: none).", min=0, max=4096
    )

    def __post_init__(self) -> None:
        validate_fields(self, "refine.arch.")

    @property
    def in_channels(self) -> int:
        return BASE_CHANNELS + self.feature_channels

    @property
    def receptive_radius(self) -> int:
        """How far (pixels) an output reads: one per 3x3 layer."""
        return 2 + 2 * self.blocks


class SubmConv3x3(nn.Module):
    """The parameters of one submanifold 3x3 convolution, weight ``(out, 3, 3, in)``."""

    def __init__(self, in_channels: int, out_channels: int, scale: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, 3, 3, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels))
        # nn.Conv2d's default initialisation; fan-in is 9 * in for either layout.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(9 * in_channels)
        nn.init.uniform_(self.bias, -bound, bound)
        if scale != 1.0:
            with torch.no_grad():
                self.weight.mul_(scale)
                self.bias.mul_(scale)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[3]}, {self.weight.shape[0]}, kernel_size=3"


Conv = Callable[[torch.Tensor, int], torch.Tensor]


class SparseRefineNet(nn.Module):
    """Residual alpha refinement on active pixels (Mask2Alpha §3.3, SparseMat SHM).

    ``stem`` (in -> width), ``blocks`` residual blocks (conv, LeakyReLU, conv, add,
    LeakyReLU), ``head`` (width -> 1): the residual added to the upsampled alpha.
    """

    def __init__(self, arch: SparseRefineArch | None = None) -> None:
        super().__init__()
        self.arch = arch or SparseRefineArch()
        w = self.arch.width
        layers = [SubmConv3x3(self.arch.in_channels, w)]
        layers += [SubmConv3x3(w, w) for _ in range(2 * self.arch.blocks)]
        layers.append(SubmConv3x3(w, 1, scale=_HEAD_SCALE))
        self.layers = nn.ModuleList(layers)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> SparseRefineNet:
        """A network rebuilt from a checkpoint of kind ``refine`` (config inside).

        Raises:
            WeightsError: missing/unreadable file, wrong kind, bad config, keys that do not fit.
        """
        from vfxmatte.weights import load_checkpoint, load_state_dict

        checkpoint = load_checkpoint(path, "refine")
        try:
            arch = config_from_dict(SparseRefineArch, checkpoint.config)
        except ConfigError as exc:
            raise WeightsError(f"{os.fspath(path)}: bad refine architecture config: {exc}") from exc
        net = cls(arch)
        load_state_dict(net, checkpoint.state_dict, source=os.fspath(path))
        return net

    # -- the one definition of the architecture ---------------------------------------------
    def _trunk(self, x: torch.Tensor, conv: Conv) -> torch.Tensor:
        """The residual from the input, ``conv(x, i)`` applying layer ``i``.

        ``x`` is ``[N, C]`` rows (sparse paths) or ``[B, C, H, W]`` (dense paths).
        """
        h = F.leaky_relu(conv(x, 0), _SLOPE)
        for b in range(self.arch.blocks):
            y = F.leaky_relu(conv(h, 1 + 2 * b), _SLOPE)
            h = F.leaky_relu(h + conv(y, 2 + 2 * b), _SLOPE)
        return conv(h, len(self.layers) - 1)

    def _check(self, channels: int) -> None:
        if channels != self.arch.in_channels:
            raise InputError(
                f"SparseRefineNet expects {self.arch.in_channels} input channels (RGB, alpha, "
                f"error and {self.arch.feature_channels} feature channels), got {channels}."
            )

    def forward(self, inputs: torch.Tensor, active: ActiveSet, impl: str = "torch") -> torch.Tensor:
        """Refined alpha at the active pixels.

        Args:
            inputs: ``[N, C_in]`` float rows in the order of ``active.coords`` (layout in
                the module docstring; :func:`sparse_inputs` builds them).
            active: the ``N`` active pixels of the full-resolution grid.
            impl: ``torch``, ``spconv`` or ``dense_reference``.

        Returns:
            ``[N]`` alpha in [0, 1].
        """
        self._check(inputs.shape[1])
        if inputs.shape[0] != len(active):
            raise InputError(
                f"SparseRefineNet got {inputs.shape[0]} input rows for {len(active)} active pixels."
            )
        if impl not in IMPLS:
            raise ConfigError(
                f"Unknown sparse refinement impl '{impl}'; valid: {', '.join(IMPLS)}."
                + closest_hint(impl, IMPLS)
            )
        if len(active) == 0:  # spconv cannot hold an empty tensor; nothing to compute anyway
            return inputs[:, ALPHA_CHANNEL].clamp(0.0, 1.0)
        if impl == "torch":
            padded = torch.cat([inputs, inputs.new_zeros(1, inputs.shape[1])])
            residual = self._trunk(padded, self._sparse_conv(active))[:-1]
        elif impl == "spconv":
            from vfxmatte.refine.spconv_backend import SpconvTrunk

            runner = SpconvTrunk(active.coords, active.height, active.width)
            weights = [layer.weight for layer in self.layers]
            biases = [layer.bias for layer in self.layers]
            residual = runner.run(self._trunk, inputs, weights, biases)
        else:  # dense_reference
            mask = active.mask()[None, None]
            out = self._trunk(active.scatter(inputs)[None], self._dense_conv(mask))
            residual = active.gather(out[0].permute(1, 2, 0))
        return (inputs[:, ALPHA_CHANNEL] + residual[:, 0]).clamp(0.0, 1.0)

    def forward_dense(self, inputs: torch.Tensor) -> torch.Tensor:
        """Plain dense full-resolution forward (every pixel active).

        Args:
            inputs: ``[B, C_in, H, W]`` (:func:`dense_inputs`).

        Returns:
            ``[B, 1, H, W]`` alpha in [0, 1].
        """
        self._check(inputs.shape[1])
        residual = self._trunk(inputs, self._dense_conv(None))
        return (inputs[:, ALPHA_CHANNEL : ALPHA_CHANNEL + 1] + residual).clamp(0.0, 1.0)

    def _sparse_conv(self, active: ActiveSet) -> Conv:
        table = active.neighbours()
        layers = self.layers
        return lambda x, i: subm_conv3x3(x, table, layers[i].weight, layers[i].bias, padded=True)

    def _dense_conv(self, mask: torch.Tensor | None) -> Conv:
        return lambda x, i: dense_subm_conv3x3(x, mask, self.layers[i].weight, self.layers[i].bias)


def sample_features(features: torch.Tensor, active: ActiveSet) -> torch.Tensor:
    """Bilinearly upsampled features at the active pixels only: ``[N, F]``.

    Equal to ``F.interpolate(features, (H, W), mode="bilinear", align_corners=False)``
    read at the active pixels, without materialising the full-resolution map.

    Args:
        features: ``[1, F, h, w]`` covering the same field of view as the ``H x W`` grid.
        active: the active pixels of the ``H x W`` grid.
    """
    coords = active.coords.to(features.dtype)
    # Pixel centres in normalised coordinates (align_corners=False convention), (x, y) order.
    gx = (coords[:, 1] + 0.5) * (2.0 / active.width) - 1.0
    gy = (coords[:, 0] + 0.5) * (2.0 / active.height) - 1.0
    grid = torch.stack([gx, gy], dim=1)[None, None]  # [1, 1, N, 2]
    out = F.grid_sample(
        features, grid, mode="bilinear", padding_mode="border", align_corners=False
    )  # [1, F, 1, N]
    return out[0, :, 0].t()


def sparse_inputs(
    image: torch.Tensor,
    alpha: torch.Tensor,
    error: torch.Tensor,
    active: ActiveSet,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """The network's input rows at the active pixels: ``[N, 5 + F]``.

    Args:
        image: ``[H, W, 3]`` display-referred RGB in [0, 1].
        alpha: ``[H, W]`` upsampled coarse alpha.
        error: ``[H, W]`` predicted error.
        active: the active pixels.
        features: ``[1, F, h, w]`` decoder features or ``None``.
    """
    parts = [active.gather(image), active.gather(alpha)[:, None], active.gather(error)[:, None]]
    if features is not None:
        parts.append(sample_features(features, active).to(image.dtype))
    return torch.cat(parts, dim=1)


def dense_inputs(
    image: torch.Tensor,
    alpha: torch.Tensor,
    error: torch.Tensor,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """The same inputs at every pixel: ``[1, 5 + F, H, W]`` (features upsampled in full)."""
    h, w = alpha.shape
    parts = [image.permute(2, 0, 1), alpha[None], error[None]]
    if features is not None:
        up = F.interpolate(features, size=(h, w), mode="bilinear", align_corners=False)
        parts.append(up[0].to(image.dtype))
    return torch.cat(parts, dim=0)[None]
