"""The training configuration: one set of dataclasses, read from YAML with ``--set`` overrides.

Every field is made with :func:`vfxmatte.config.param`, so the YAML keys, their
defaults, ranges and help text are defined here once (the README (section Training) lists
them). :func:`load_train_config` reads a file; :func:`train_config_to_yaml`
writes the exact config a run used next to its outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vfxmatte.config import config_to_dict, load_config, param, validate_fields
from vfxmatte.errors import ConfigError

__all__ = [
    "TASKS",
    "DataConfig",
    "GuidanceConfig",
    "LossConfig",
    "OptimConfig",
    "RefineTrainConfig",
    "SelfTrainConfig",
    "TrainConfig",
    "load_train_config",
    "train_config_to_yaml",
]

TASKS = ("matte", "colour", "refine")
SOURCES = ("synthetic", "folders", "photos")
SPACES = ("linear", "display")


def _section(cls: type) -> Any:
    return field(default_factory=cls)


def _str_list(value: Any, label: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"Option '{label}' expects a list of paths, got {value!r}.")
    return [str(v) for v in value]


@dataclass
class DataConfig:
    """Where training samples come from and how they are composed and augmented."""

    source: str = param(
        "synthetic",
        "Foregrounds: 'synthetic' (procedural objects with exact alpha), 'folders' "
        "(matting_dirs with fg/alpha[/bg] sub-folders) or 'photos' (the synthetic objects' "
        "alpha coloured by crops of real training photographs, over crops of the same "
        "photographs: vfxmatte.train.footage).",
        choices=SOURCES,
    )
    matting_dirs: list[str] = param(
        [], "Matting dataset roots (Composition-1k/Distinction-646/AM-2K/P3M style folders)."
    )
    background_dirs: list[str] = param(
        [], "Folders of background images (COCO/VOC); empty: synthetic backgrounds."
    )
    crop_size: int = param(256, "Side of the square training crops (multiple of 32).", min=64)
    batch_size: int = param(4, "Samples per step.", min=1, max=1024)
    composite_space: str = param(
        "linear",
        "Compose I = aF + (1-a)B in scene-linear light (then the sRGB curve) or in display space.",
        choices=SPACES,
    )
    synth_canvas: int = param(
        384, "Canvas side of one synthetic foreground in pixels.", min=64, max=4096
    )
    scale_min: float = param(0.35, "Smallest random resize of a foreground.", min=0.1, max=4.0)
    scale_max: float = param(1.1, "Largest random resize of a foreground.", min=0.1, max=4.0)
    rotate_max: float = param(20.0, "Largest random rotation in degrees.", min=0.0, max=180.0)
    jitter: float = param(
        0.15, "Colour jitter strength (hue, saturation, brightness).", min=0.0, max=1.0
    )
    instance_prob: float = param(
        0.25,
        "Probability of two foregrounds on one background with supervision for one "
        "(instance-wise learning, Mask-guided Matting in the Wild §4.1).",
        min=0.0,
        max=1.0,
    )
    realism_prob: float = param(
        0.2,
        "Probability of JPEG re-compression, blur and noise on the composite "
        "(these samples get no composition loss, MGMatting §5).",
        min=0.0,
        max=1.0,
    )
    defocus_prob: float = param(
        0.3, "Probability of blurring the background (defocus).", min=0.0, max=1.0
    )
    tone_match_prob: float = param(
        0.4,
        "source=photos: probability of giving object and background the same brightness, "
        "then darkening (dark-on-dark) or brightening (light-on-light) both.",
        min=0.0,
        max=1.0,
    )
    union_prob: float = param(
        0.5,
        "source=photos: share of two-object samples whose mask and target cover both "
        "objects (the second one dimmer), the rest supervise one object.",
        min=0.0,
        max=1.0,
    )

    def __post_init__(self) -> None:
        self.matting_dirs = _str_list(self.matting_dirs, "data.matting_dirs")
        self.background_dirs = _str_list(self.background_dirs, "data.background_dirs")
        validate_fields(self, "data.")
        if self.crop_size % 32:
            raise ConfigError(
                f"Option 'data.crop_size' must be a multiple of 32, got {self.crop_size}; "
                f"try {max(64, 32 * round(self.crop_size / 32))}."
            )
        if self.scale_min > self.scale_max:
            raise ConfigError(
                f"Option 'data.scale_min' ({self.scale_min}) exceeds 'data.scale_max' "
                f"({self.scale_max})."
            )
        if self.source == "folders" and not self.matting_dirs:
            raise ConfigError(
                "data.source=folders needs data.matting_dirs (folders with fg/ and alpha/)."
            )


@dataclass
class GuidanceConfig:
    """Guidance perturbation (MGMatting §3.1) and the self-guidance of the PRN."""

    threshold_min: float = param(
        0.0, "Binarise the GT alpha at a threshold drawn from U(min, max).", min=0.0, max=1.0
    )
    threshold_max: float = param(1.0, "Upper end of the threshold range.", min=0.0, max=1.0)
    kernel_min: int = param(1, "Smallest dilation/erosion kernel.", min=1, max=255)
    kernel_max: int = param(30, "Largest dilation/erosion kernel.", min=1, max=255)
    cutmask_prob: float = param(
        0.25, "Probability of CutMask (copy one patch over another).", min=0.0, max=1.0
    )
    soft_prob: float = param(
        0.2,
        "Probability of a soft (blurred) guidance instead of a binary one, as propagation "
        "backends produce.",
        min=0.0,
        max=1.0,
    )
    self_os8_max: int = param(
        30, "Largest self-guidance dilation from the OS8 output (training).", min=1, max=255
    )
    self_os4_max: int = param(
        15, "Largest self-guidance dilation from the OS4 output (training).", min=1, max=255
    )
    curriculum_steps: int = param(
        300, "Steps whose self-guidance comes from the GT unknown region.", min=0
    )

    def __post_init__(self) -> None:
        validate_fields(self, "guidance.")
        if self.threshold_min > self.threshold_max or self.kernel_min > self.kernel_max:
            raise ConfigError("guidance: each *_min must not exceed its *_max.")


@dataclass
class LossConfig:
    """Weights of the loss terms (0 turns a term off)."""

    l1: float = param(1.0, "Weight of the L1 alpha loss.", min=0.0)
    composition: float = param(1.0, "Weight of the composition loss.", min=0.0)
    laplacian: float = param(1.0, "Weight of the Laplacian-pyramid loss (5 levels).", min=0.0)
    gradient: float = param(0.0, "Weight of the alpha gradient loss.", min=0.0)
    weight_os8: float = param(1.0, "PRN level weight of the OS8 output (Eq. 5).", min=0.0)
    weight_os4: float = param(2.0, "PRN level weight of the OS4 output.", min=0.0)
    weight_os1: float = param(3.0, "PRN level weight of the OS1 output.", min=0.0)
    confidence: float = param(
        1.0, "Weight of the confidence loss |c - |a_pred - a_gt|| (Mask2Alpha).", min=0.0
    )
    decode_prob: float = param(
        0.5,
        "Probability that a batch is a partially decoded mask (Mask2Alpha Algorithm 1).",
        min=0.0,
        max=1.0,
    )
    colour_l1: float = param(1.0, "Colour network: weight of L1(F) over the image.", min=0.0)
    trimap: float = param(
        0.0,
        "Weight of the trimap loss (SEMat §4.2): a three-class trimap head on the matting "
        "network trained with gradient-harmonised cross-entropy (0: no head).",
        min=0.0,
    )
    trimap_bins: int = param(
        10, "Gradient-density bins of the trimap loss's harmonising weights.", min=1, max=1000
    )

    def __post_init__(self) -> None:
        validate_fields(self, "loss.")


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    optimizer: str = param("adamw", "Optimiser.", choices=("adamw", "adam"))
    lr: float = param(1e-3, "Peak learning rate.", min=0.0)
    weight_decay: float = param(1e-4, "Weight decay.", min=0.0)
    beta1: float = param(0.9, "Adam beta1.", min=0.0, max=1.0)
    beta2: float = param(0.999, "Adam beta2.", min=0.0, max=1.0)
    warmup_steps: int = param(100, "Linear warm-up steps.", min=0)
    min_lr_ratio: float = param(0.05, "Final learning rate / peak (cosine).", min=0.0, max=1.0)
    grad_clip: float = param(1.0, "Clip the gradient norm to this (0: off).", min=0.0)
    amp: bool = param(True, "Mixed precision (bfloat16 autocast) on CUDA; ignored on CPU.")

    def __post_init__(self) -> None:
        validate_fields(self, "optim.")


@dataclass
class SelfTrainConfig:
    """Self-training on weak instance masks (Mask-guided Matting in the Wild §4.2)."""

    enabled: bool = param(False, "Add the teacher-student loss on weak masks.")
    coco_json: str = param("", "COCO instance annotations (polygons or RLE).")
    coco_images: str = param("", "Folder of the images the annotations refer to.")
    ema_decay: float = param(0.999, "EMA decay of the teacher.", min=0.0, max=1.0)
    beta: float = param(
        0.2, "Guidance dilate/erode kernel as a share of the box's short side.", min=0.0, max=1.0
    )
    weight: float = param(1.0, "Weight of L1(student, teacher).", min=0.0)
    batch_size: int = param(2, "Weak-mask samples per step.", min=1)
    min_area: int = param(1024, "Skip instances smaller than this many pixels.", min=0)

    def __post_init__(self) -> None:
        validate_fields(self, "selftrain.")
        if self.enabled and not (self.coco_json and self.coco_images):
            raise ConfigError(
                "selftrain.enabled needs selftrain.coco_json and selftrain.coco_images."
            )


@dataclass
class RefineTrainConfig:
    """The sparse refinement network (task=refine) and the frozen matte that feeds it."""

    coarse_weights: str = param(
        "",
        "Matting network whose output is refined (kind 'matte', kept frozen); empty: the "
        "shipped starter weights.",
    )
    coarse_scale_min: float = param(
        0.5,
        "Smallest working/full resolution ratio of the coarse pass (the refiner learns to "
        "upsample by up to 1/this).",
        min=0.1,
        max=1.0,
    )
    coarse_scale_max: float = param(1.0, "Largest working/full ratio.", min=0.1, max=1.0)
    tau_min: float = param(
        0.03,
        "Training selects the pixels whose predicted error exceeds a threshold drawn from "
        "U(tau_min, tau_max) per batch, as refine.sparse.tau does at inference.",
        min=0.0,
        max=1.0,
    )
    tau_max: float = param(0.15, "Upper end of the selection threshold.", min=0.0, max=1.0)
    dilate_max: int = param(
        2, "Grow the selection by 0..dilate_max pixels (random per batch).", min=0, max=32
    )
    features: bool = param(
        True,
        "Feed the coarse network's stride-1 decoder features to the refiner (it then needs "
        "matte.backend=network at inference).",
    )
    width: int = param(32, "Channels of the refiner's hidden layers.", min=1, max=512)
    blocks: int = param(3, "Residual blocks of the refiner.", min=0, max=64)
    eval_scale: float = param(
        0.5, "Working/full ratio of the coarse pass in the held-out evaluation.", min=0.1, max=1.0
    )
    eval_tau: float = param(0.05, "Selection threshold in the held-out evaluation.", min=0.0,
                            max=1.0)  # fmt: skip
    eval_dilate: int = param(1, "Selection growth in the held-out evaluation.", min=0, max=32)

    def __post_init__(self) -> None:
        validate_fields(self, "refine.")
        if self.coarse_scale_min > self.coarse_scale_max or self.tau_min > self.tau_max:
            raise ConfigError("refine: each *_min must not exceed its *_max.")


@dataclass
class TrainConfig:
    """A training run: the network, the data, the losses, the optimiser and the bookkeeping."""

    task: str = param(
        "matte",
        "Which network: matte (PRN), colour (foreground) or refine (sparse refiner on a "
        "frozen matte).",
        choices=TASKS,
    )
    arch: str = param(
        "small", "Matting network preset (task=matte).", choices=("small", "mgm", "tiny")
    )
    out_dir: str = param("runs/train", "Folder for checkpoints, logs, previews and weights.")
    name: str = param("model", "Name of the exported weights (<out_dir>/<name>.safetensors).")
    init_weights: str = param("", "Start from these weights (.safetensors); empty: from scratch.")
    seed: int = param(0, "Seed of everything random in the run.", min=0, max=2**31 - 1)
    steps: int = param(2000, "Optimisation steps.", min=1)
    time_limit: float = param(
        0.0, "Stop (and export) after this many minutes even if steps remain (0: none).", min=0.0
    )
    log_every: int = param(10, "Write a log row every N steps.", min=1)
    eval_every: int = param(250, "Evaluate on the held-out set every N steps (0: only at the end).",
                            min=0)  # fmt: skip
    checkpoint_every: int = param(100, "Save a resumable checkpoint every N steps.", min=1)
    eval_samples: int = param(8, "Held-out synthetic frames for evaluation.", min=1)
    eval_size: int = param(512, "Long side of the held-out frames (multiple of 32).", min=64)
    previews: int = param(4, "Validation samples written as PNG previews.", min=0)
    band_learned: bool = param(
        False,
        "task=matte: learn the radius of the band gate (arch.band_learned; the network may "
        "change the guidance only near its edge, at most arch.band_max pixels away).",
    )
    device: str = param("cpu", "Compute device: auto, cpu, cuda, cuda:N or mps.")
    threads: int = param(0, "torch CPU threads (0: leave torch's default).", min=0, max=256)
    data: DataConfig = _section(DataConfig)
    guidance: GuidanceConfig = _section(GuidanceConfig)
    loss: LossConfig = _section(LossConfig)
    optim: OptimConfig = _section(OptimConfig)
    selftrain: SelfTrainConfig = _section(SelfTrainConfig)
    refine: RefineTrainConfig = _section(RefineTrainConfig)

    def __post_init__(self) -> None:
        validate_fields(self, "")
        if self.eval_size % 32:
            raise ConfigError(
                f"Option 'eval_size' must be a multiple of 32, got {self.eval_size}; "
                f"try {max(64, 32 * round(self.eval_size / 32))}."
            )
        if self.task == "matte" and self.data.batch_size < 2:
            raise ConfigError(
                "Option 'data.batch_size' must be at least 2 for task=matte (the batch norm of "
                "the network's image-pooling branch needs two samples); got 1."
            )
        if self.selftrain.enabled and self.task != "matte":
            raise ConfigError("selftrain.enabled applies to task=matte only.")


def load_train_config(path: str | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a :class:`TrainConfig` from YAML plus ``KEY=VALUE`` overrides.

    Raises:
        ConfigError: unreadable YAML, unknown keys (with the closest valid one) or bad values.
    """
    return load_config(TrainConfig, path, overrides)


def train_config_to_yaml(config: TrainConfig) -> str:
    """The YAML text of ``config`` (every field, so a run can be repeated exactly)."""
    import yaml

    data = config_to_dict(config)
    return yaml.safe_dump(_plain(data), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
