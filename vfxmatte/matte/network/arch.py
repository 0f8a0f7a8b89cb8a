"""The Progressive Refinement Network (MGMatting §3.1) as one parametric module.

Yu et al., "Mask Guided Matting via Progressive Refinement Network" (CVPR 2021).
A ResNet-D encoder with five shortcut branches (strides 1, 2, 4, 8, 16) feeds
ASPP and a decoder of transposed-convolution blocks; alpha side outputs leave the
decoder at output strides 8, 4 and 1 and are fused coarse to fine by
:mod:`vfxmatte.matte.network.prn`.

:data:`ARCHITECTURES` holds two presets:

* ``mgm`` -- exactly the published MGMatting generator (``res_shortcut_encoder_29``
  + ``res_shortcut_decoder_22``, one mask channel): module names and shapes match
  its checkpoint once SpectralNorm is folded into plain weights and ``module.``
  is stripped (:mod:`vfxmatte.matte.network.convert`). 29.7 M parameters.
* ``small`` -- the same topology with narrower, shallower stages (about 3 M
  parameters), fast enough for CPU and small enough to ship trained weights.

Both add a confidence head (Mask2Alpha §3.2: a per-pixel prediction of
``|alpha - alpha_gt|``) unless ``confidence_head`` is off, as it is for weights
converted from the MGMatting release, which has none.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vfxmatte.config import param, validate_fields
from vfxmatte.errors import ConfigError
from vfxmatte.matte.network.band import band_gate, gate_outputs
from vfxmatte.matte.network.prn import ellipse_kernel, progressive_fuse

__all__ = ["ARCHITECTURES", "ArchConfig", "PRNMattingNet", "arch_config"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE = 32


@dataclass
class ArchConfig:
    """Architecture of a PRN matting network (saved inside every checkpoint)."""

    name: str = param("small", "Preset this architecture was built from (mgm, small, custom).")
    stem: tuple[int, int, int] = param((16, 16, 32), "Channels of the three stem convolutions.")
    enc_planes: tuple[int, int, int, int] = param(
        (32, 64, 128, 256), "Channels of the encoder stages (strides 4, 8, 16, 32)."
    )
    enc_blocks: tuple[int, int, int, int] = param((2, 2, 2, 1), "Residual blocks per stage.")
    skip_planes: tuple[int, int, int, int, int] = param(
        (16, 16, 32, 64, 128), "Channels of the shortcut branches (strides 1, 2, 4, 8, 16)."
    )
    aspp_mid: int = param(64, "Channels of each ASPP branch.", min=1)
    aspp_out: int = param(256, "Channels out of ASPP.", min=1)
    dec_blocks: tuple[int, int, int, int] = param((1, 1, 1, 1), "Decoder blocks per stage.")
    head_mid: int = param(16, "Hidden channels of the alpha side heads.", min=1)
    confidence_head: bool = param(True, "Predict a per-pixel error (Mask2Alpha).")
    trimap_head: bool = param(
        False,
        "Predict a three-class trimap (background, unknown, foreground) from the stride-1 "
        "features, trained with the SEMat trimap loss; an auxiliary output, not used by the "
        "matte.",
    )
    binary_guidance: bool = param(
        False, "Binarise the guidance at 0.5 before the network (what MGMatting was trained on)."
    )
    band_max: float = param(
        20.0,
        "Mask trust (band gate): the network may change the guidance only within this many "
        "working-resolution pixels of its 0.5 contour; beyond, the output is the guidance "
        "(0: no gate). Bounded by the training guidance perturbation (kernels up to 30 px).",
        min=0.0, max=256.0,
    )  # fmt: skip
    band_ramp: float = param(
        4.0, "Pixels over which the band gate fades from the network to the guidance.",
        min=0.5, max=64.0,
    )  # fmt: skip
    band_learned: bool = param(
        False,
        "The band's radius is a trained parameter (band_max * sigmoid(band_logit)); "
        "otherwise it is band_max.",
    )

    def __post_init__(self) -> None:
        for name in ("stem", "enc_planes", "enc_blocks", "skip_planes", "dec_blocks"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        validate_fields(self, "arch.")
        if any(v < 1 for v in self.stem + self.enc_planes + self.skip_planes):
            raise ConfigError("arch: channel counts must be >= 1")
        if any(v < 0 for v in self.enc_blocks + self.dec_blocks):
            raise ConfigError("arch: block counts must be >= 0")


ARCHITECTURES: dict[str, ArchConfig] = {
    "mgm": ArchConfig(
        name="mgm",
        stem=(32, 32, 64),
        enc_planes=(64, 128, 256, 512),
        enc_blocks=(3, 4, 4, 2),
        skip_planes=(32, 32, 64, 128, 256),
        aspp_mid=256,
        aspp_out=512,
        dec_blocks=(2, 3, 3, 2),
        head_mid=32,
        confidence_head=True,
        binary_guidance=True,
    ),
    "small": ArchConfig(),
}


def arch_config(value: str | dict[str, Any] | ArchConfig) -> ArchConfig:
    """An :class:`ArchConfig` from a preset name, a mapping (from a checkpoint) or itself."""
    if isinstance(value, ArchConfig):
        return value
    if isinstance(value, str):
        if value not in ARCHITECTURES:
            from vfxmatte.errors import closest_hint

            raise ConfigError(
                f"unknown network size {value!r}{closest_hint(value, ARCHITECTURES)}; "
                f"choose one of {', '.join(ARCHITECTURES)}"
            )
        return dataclasses.replace(ARCHITECTURES[value])
    known = {f.name for f in dataclasses.fields(ArchConfig)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown architecture options in checkpoint: {', '.join(unknown)}")
    return ArchConfig(**value)


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=False)


class EncoderBlock(nn.Module):
    """ResNet basic block; a stride-2 block downsamples its shortcut with AvgPool (ResNet-D)."""

    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class DecoderBlock(nn.Module):
    """Basic block with a 4x4 transposed convolution when it upsamples; LeakyReLU 0.2."""

    def __init__(self, cin: int, planes: int, stride: int, upsample: nn.Module | None) -> None:
        super().__init__()
        if stride > 1:
            self.conv1: nn.Module = nn.ConvTranspose2d(cin, cin, 4, stride=2, padding=1, bias=False)
        else:
            self.conv1 = _conv3(cin, cin)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = _conv3(cin, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.bn1(self.conv1(x)), 0.2)
        out = self.bn2(self.conv2(out))
        identity = x if self.upsample is None else self.upsample(x)
        return F.leaky_relu(out + identity, 0.2)


def _encoder_stage(cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    if blocks == 0:
        return nn.Sequential(nn.Identity())
    downsample: nn.Module | None = None
    if stride != 1:
        downsample = nn.Sequential(
            nn.AvgPool2d(2, stride), _conv1(cin, planes), nn.BatchNorm2d(planes)
        )
    elif cin != planes:
        downsample = nn.Sequential(_conv1(cin, planes), nn.BatchNorm2d(planes))
    layers = [EncoderBlock(cin, planes, stride, downsample)]
    layers += [EncoderBlock(planes, planes, 1, None) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _decoder_stage(cin: int, planes: int, blocks: int) -> nn.Sequential:
    if blocks == 0:
        return nn.Sequential(nn.Identity())
    upsample = nn.Sequential(
        nn.UpsamplingNearest2d(scale_factor=2), _conv1(cin, planes), nn.BatchNorm2d(planes)
    )
    layers = [DecoderBlock(cin, planes, 2, upsample)]
    layers += [DecoderBlock(planes, planes, 1, None) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _shortcut(cin: int, planes: int) -> nn.Sequential:
    # conv-ReLU-BN twice, in that order (keys .0/.2/.3/.5 of the MGMatting checkpoint).
    return nn.Sequential(
        _conv3(cin, planes), nn.ReLU(), nn.BatchNorm2d(planes),
        _conv3(planes, planes), nn.ReLU(), nn.BatchNorm2d(planes),
    )  # fmt: skip


def _head(cin: int, mid: int, cout: int = 1) -> nn.Sequential:
    return nn.Sequential(
        _conv3(cin, mid), nn.BatchNorm2d(mid), nn.LeakyReLU(0.2),
        nn.Conv2d(mid, cout, 3, padding=1),
    )  # fmt: skip


class Encoder(nn.Module):
    """ResNet-D stem and stages, plus the five shortcut branches."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        s1, s2, s3 = arch.stem
        self.conv1 = _conv3(4, s1, 2)
        self.conv2 = _conv3(s1, s2, 1)
        self.conv3 = _conv3(s2, s3, 2)
        self.bn1 = nn.BatchNorm2d(s1)
        self.bn2 = nn.BatchNorm2d(s2)
        self.bn3 = nn.BatchNorm2d(s3)
        p = arch.enc_planes
        stages_in = (s3, p[0], p[1], p[2])
        self.layer1 = _encoder_stage(stages_in[0], p[0], arch.enc_blocks[0], 1)
        self.layer2 = _encoder_stage(stages_in[1], p[1], arch.enc_blocks[1], 2)
        self.layer3 = _encoder_stage(stages_in[2], p[2], arch.enc_blocks[2], 2)
        self.layer_bottleneck = _encoder_stage(stages_in[3], p[3], arch.enc_blocks[3], 2)
        skip_in = (4, s2, p[0], p[1], p[2])
        self.shortcut = nn.ModuleList(
            _shortcut(cin, planes) for cin, planes in zip(skip_in, arch.skip_planes, strict=True)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = F.relu(self.bn1(self.conv1(x)))
        x1 = F.relu(self.bn2(self.conv2(out)))  # stride 2
        out = F.relu(self.bn3(self.conv3(x1)))
        x2 = self.layer1(out)  # stride 4
        x3 = self.layer2(x2)  # stride 8
        x4 = self.layer3(x3)  # stride 16
        out = self.layer_bottleneck(x4)  # stride 32
        feats = [self.shortcut[0](x), self.shortcut[1](x1)]
        feats += [self.shortcut[2](x2), self.shortcut[3](x3), self.shortcut[4](x4)]
        return out, feats


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: dilations 1/2/4/8 plus a global-pool branch."""

    def __init__(self, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.aspp1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.aspp2 = nn.Conv2d(cin, mid, 3, padding=2, dilation=2, bias=False)
        self.aspp3 = nn.Conv2d(cin, mid, 3, padding=4, dilation=4, bias=False)
        self.aspp4 = nn.Conv2d(cin, mid, 3, padding=8, dilation=8, bias=False)
        self.aspp5 = nn.Conv2d(cin, mid, 1, bias=False)
        self.aspp1_bn = nn.BatchNorm2d(mid)
        self.aspp2_bn = nn.BatchNorm2d(mid)
        self.aspp3_bn = nn.BatchNorm2d(mid)
        self.aspp4_bn = nn.BatchNorm2d(mid)
        self.aspp5_bn = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid * 5, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.relu(self.aspp1_bn(self.aspp1(x)))
        x2 = F.relu(self.aspp2_bn(self.aspp2(x)))
        x3 = F.relu(self.aspp3_bn(self.aspp3(x)))
        x4 = F.relu(self.aspp4_bn(self.aspp4(x)))
        pooled = F.adaptive_avg_pool2d(x, 1)
        x5 = F.relu(self.aspp5_bn(self.aspp5(pooled)))
        x5 = x5.expand(-1, -1, x.shape[2], x.shape[3])
        return F.relu(self.bn2(self.conv2(torch.cat((x1, x2, x3, x4, x5), dim=1))))


class Decoder(nn.Module):
    """Upsampling stages with shortcut sums; alpha side heads at strides 8, 4 and 1."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        k = arch.skip_planes
        self.layer1 = _decoder_stage(arch.aspp_out, k[4], arch.dec_blocks[0])
        self.layer2 = _decoder_stage(k[4], k[3], arch.dec_blocks[1])
        self.layer3 = _decoder_stage(k[3], k[2], arch.dec_blocks[2])
        self.layer4 = _decoder_stage(k[2], k[1], arch.dec_blocks[3])
        self.conv1 = nn.ConvTranspose2d(k[1], k[0], 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(k[0])
        self.refine_OS1 = _head(k[0], arch.head_mid)
        self.refine_OS4 = _head(k[2], arch.head_mid)
        self.refine_OS8 = _head(k[3], arch.head_mid)
        self.refine_error: nn.Module | None = (
            _head(k[0] + 1, arch.head_mid) if arch.confidence_head else None
        )
        self.trimap: nn.Module | None = _head(k[0], arch.head_mid, 3) if arch.trimap_head else None

    def forward(
        self, x: torch.Tensor, feats: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits at strides 8, 4, 1 (at their own resolutions) and the stride-1 features."""
        x = self.layer1(x) + feats[4]
        x = self.layer2(x) + feats[3]
        os8 = self.refine_OS8(x)
        x = self.layer3(x) + feats[2]
        os4 = self.refine_OS4(x)
        x = self.layer4(x) + feats[1]
        x = F.leaky_relu(self.bn1(self.conv1(x)), 0.2) + feats[0]
        os1 = self.refine_OS1(x)
        return os8, os4, os1, x


def _to_alpha(logits: torch.Tensor, scale: int) -> torch.Tensor:
    if scale > 1:
        logits = F.interpolate(logits, scale_factor=float(scale), mode="bilinear")
    return (torch.tanh(logits) + 1.0) / 2.0


class PRNMattingNet(nn.Module):
    """Image + guidance -> side alphas, fused alpha, predicted error, stride-1 features.

    ``forward(image, guidance)`` takes ``N x 3 x H x W`` RGB in [0,1] (display-referred)
    and ``N x 1 x H x W`` guidance in [0,1], with ``H`` and ``W`` multiples of 32
    (:func:`vfxmatte.matte.network.prn.pad_to_stride`). ImageNet normalisation
    happens inside. The side outputs are fused with the test-time self-guidance
    (15x15 then 7x7 ellipse dilation); training calls
    :func:`~vfxmatte.matte.network.prn.progressive_fuse` with other kernels.
    """

    def __init__(self, arch: ArchConfig | str | dict[str, Any] = "small") -> None:
        super().__init__()
        self.arch = arch_config(arch)
        self.encoder = Encoder(self.arch)
        self.aspp = ASPP(self.arch.enc_planes[3], self.arch.aspp_mid, self.arch.aspp_out)
        self.decoder = Decoder(self.arch)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.register_buffer("kernel_os4", ellipse_kernel(15), False)
        self.register_buffer("kernel_os1", ellipse_kernel(7), False)
        self.binary_guidance = self.arch.binary_guidance
        self.has_confidence = self.arch.confidence_head
        self.band_max = float(self.arch.band_max)
        self.band_ramp = float(self.arch.band_ramp)
        if self.arch.band_learned:
            # starts at 3/4 of band_max: sigmoid(ln 3) = 0.75
            self.band_logit = nn.Parameter(torch.tensor(math.log(3.0)))
        else:
            self.register_buffer("band_logit", torch.tensor(math.inf), False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # residual branches start as identity (as MGMatting does)
            if isinstance(m, (EncoderBlock, DecoderBlock)):
                nn.init.zeros_(m.bn2.weight)

    def band_radius(self) -> torch.Tensor:
        """The band gate's radius in pixels (0-d tensor; ``band_max`` unless learned)."""
        return self.band_max * torch.sigmoid(self.band_logit.float())

    def forward(
        self, image: torch.Tensor, guidance: torch.Tensor, coarse: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``coarse``: the user's mask the band is measured from (default: ``guidance``).

        Iterative decoding feeds partly decoded masks as ``guidance``; the band stays
        around the original mask so that it cannot drift over the steps.
        """
        source = guidance if coarse is None else coarse
        out = self._predict(image, guidance)
        if self.band_max > 0.0:
            gate = band_gate(source, self.band_radius(), self.band_max, self.band_ramp)
            out = gate_outputs(out, torch.clamp(source, 0.0, 1.0), gate)
        return out

    def _predict(self, image: torch.Tensor, guidance: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.binary_guidance:
            guidance = (guidance >= 0.5).to(image.dtype)
        x = torch.cat(((image - self.mean) / self.std, guidance), dim=1)
        embedding, feats = self.encoder(x)
        os8_l, os4_l, os1_l, features = self.decoder(self.aspp(embedding), feats)
        os8 = _to_alpha(os8_l, 8)
        os4 = _to_alpha(os4_l, 4)
        os1 = _to_alpha(os1_l, 1)
        alpha, g4, g1 = progressive_fuse(os8, os4, os1, self.kernel_os4, self.kernel_os1)
        out = {
            "alpha": alpha,
            "alpha_os8": os8,
            "alpha_os4": os4,
            "alpha_os1": os1,
            "guide_os4": g4,
            "guide_os1": g1,
            "features": features,
        }
        head = self.decoder.refine_error
        if head is not None:
            out["error"] = torch.sigmoid(head(torch.cat((features, alpha.detach()), dim=1)))
        else:
            # No trained error head (converted MGMatting weights): the side outputs'
            # disagreement where alpha is fractional stands in for the predicted error.
            spread = torch.maximum((os1 - os4).abs(), (os4 - os8).abs())
            out["error"] = torch.clamp(spread + alpha * (1.0 - alpha), 0.0, 1.0)
        trimap = self.decoder.trimap
        if trimap is not None:
            out["trimap"] = trimap(features)  # logits: background, unknown, foreground
        return out
