"""The whole job's configuration, one dataclass per stage, mirrored by YAML and CLI.

A YAML file holds the same nesting as :class:`PipelineConfig`::

    plate: plates/shot.####.exr
    mask: masks/shot_mask.1001.png
    output: out/shot.####.exr
    matte:
      backend: classical
      classical: {band_fraction: 0.05}
    output_options: {kinds: "rgba,alpha", preview: checker}

and ``--set matte.classical.band_fraction=0.05`` changes one value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vfxmatte.config import param
from vfxmatte.decontaminate import DECONTAMINATE_BACKENDS
from vfxmatte.decontaminate.fusion import FusionConfig
from vfxmatte.decontaminate.multilevel import MultilevelConfig
from vfxmatte.decontaminate.network import NetworkForegroundConfig
from vfxmatte.engine.outputs import OutputConfig
from vfxmatte.matte import MATTE_BACKENDS
from vfxmatte.matte.classical import ClassicalMatteConfig
from vfxmatte.matte.network.options import NetworkMatteConfig
from vfxmatte.propagate import PROPAGATE_BACKENDS
from vfxmatte.propagate.flow import FlowPropagateConfig
from vfxmatte.propagate.sam2 import Sam2PropagateConfig
from vfxmatte.propagate.snapcut import SnapCutPropagateConfig
from vfxmatte.refine import REFINE_BACKENDS
from vfxmatte.refine.options import SparseRefineConfig

__all__ = [
    "DecontaminateStageConfig",
    "EngineConfig",
    "InputConfig",
    "MatteStageConfig",
    "PipelineConfig",
    "PropagateStageConfig",
    "RefineStageConfig",
]


@dataclass
class InputConfig:
    """How the plate and the masks are read."""

    colourspace: str = param(
        "auto",
        "Colourspace of the plate: auto (EXR/HDR/float files are lin_rec709, others sRGB), "
        "or an OCIO name such as ACEScg, lin_rec709, sRGB.",
    )
    ocio: str = param("", "Path of an OCIO config to use instead of the built-in one.")
    channels: str = param("RGB", "Plate channels or layer to read, e.g. R,G,B or beauty.")
    nonfinite: str = param(
        "error",
        "What to do with NaN/inf pixels of the plate and the masks: error, or zero "
        "(read them as 0).",
        choices=("error", "zero"),
    )
    mask_channel: str = param(
        "auto", "Mask channel: auto (A if present and not constant, else the first), or a name."
    )
    mask_resize: bool = param(False, "Resize masks whose size differs from the plate's.")
    first_frame: int = param(0, "Frame number of a video file's first frame.")


@dataclass
class PropagateStageConfig:
    """Guidance for every frame from the keyframe mask(s)."""

    backend: str = param(
        "snapcut",
        "snapcut: local colour windows and a shape prior carried by consistent optical flow, "
        "with a drift report (Video SnapCut; weight-free); flow: optical-flow propagation "
        "alone (kept for comparison); sam2: SAM 2 video predictor (run as a first phase "
        "that writes guidance files); static: the keyframe mask on every frame; "
        "given: --mask is a mask sequence with a frame for every plate frame.",
        choices=PROPAGATE_BACKENDS.names(),
    )
    flow: FlowPropagateConfig = field(default_factory=FlowPropagateConfig)
    snapcut: SnapCutPropagateConfig = field(default_factory=SnapCutPropagateConfig)
    sam2: Sam2PropagateConfig = field(default_factory=Sam2PropagateConfig)


@dataclass
class MatteStageConfig:
    """Guidance + frame -> alpha and confidence."""

    backend: str = param("classical", "Matting backend.", choices=MATTE_BACKENDS.names())
    classical: ClassicalMatteConfig = field(default_factory=ClassicalMatteConfig)
    network: NetworkMatteConfig = field(default_factory=NetworkMatteConfig)


@dataclass
class RefineStageConfig:
    """Sparse high-resolution refinement of the uncertain pixels."""

    backend: str = param(
        "none",
        "Refinement backend (none: keep the matte stage's alpha; sparse: refine the "
        "uncertain pixels at full resolution, needs refine.sparse.weights).",
        choices=REFINE_BACKENDS.names(),
    )
    sparse: SparseRefineConfig = field(default_factory=SparseRefineConfig)


@dataclass
class DecontaminateStageConfig:
    """Straight foreground colour without background spill."""

    backend: str = param(
        "fusion",
        "fusion: multi-level estimation fused with the nearby opaque colour where alpha is "
        "small; multilevel: fast multi-level foreground estimation (the previous default); "
        "network: the foreground colour network (needs weights); none: the plate colour as is.",
        choices=DECONTAMINATE_BACKENDS.names(),
    )
    fusion: FusionConfig = field(default_factory=FusionConfig)
    multilevel: MultilevelConfig = field(default_factory=MultilevelConfig)
    network: NetworkForegroundConfig = field(default_factory=NetworkForegroundConfig)


@dataclass
class EngineConfig:
    """How the frame loop runs."""

    on_error: str = param(
        "stop",
        "On a failing frame: stop, or skip it and list it at the end.",
        choices=("stop", "skip"),
    )
    overwrite: bool = param(False, "Redo frames whose outputs already exist.")
    progress: bool = param(True, "Show a progress bar on a terminal.")
    executor: str = param(
        "local",
        "Where frames are matted: local (this process, frame by frame); processes (worker "
        "processes on this machine); dask (a Dask cluster: --scheduler, or a local cluster of "
        "--workers processes). processes and dask propagate first, then matte chunks of "
        "frames in parallel.",
        choices=("local", "processes", "dask"),
    )
    scheduler: str = param(
        "",
        "Address of a running Dask scheduler, e.g. tcp://farm-head:8786 (executor dask); "
        "empty: start a local cluster.",
    )
    dashboard: bool = param(
        False,
        "Serve the Dask dashboard during the run (executor dask): the local cluster's on "
        "127.0.0.1 at a free port, logged at the start (needs bokeh); with --scheduler, log "
        "that cluster's link. Off: the local cluster serves no dashboard.",
    )
    workers: int = param(
        0,
        "Worker processes of executor processes or of the local Dask cluster (0: one per "
        "CPU core).",
        min=0,
        max=4096,
    )
    chunk_size: int = param(
        0,
        "Frames per chunk (one task, or one farm job with farm-split); 0: automatic.",
        min=0,
        max=1_000_000,
    )
    overlap: int = param(
        0,
        "Warm-up frames before each chunk, processed but not written, so that stages that "
        "use neighbouring frames leave no seam at chunk boundaries.",
        min=0,
        max=1000,
    )
    retries: int = param(
        2, "Times a chunk is retried when its worker dies or fails unexpectedly.", min=0, max=100
    )
    connect_timeout: float = param(
        10.0, "Seconds to wait for the Dask scheduler to answer.", min=0.1, max=3600.0
    )
    phase: str = param(
        "all",
        "all: the whole job; propagate: only write the guidance masks (to --guidance-output, "
        "default beside the output) and stop, the first job of a render-farm split.",
        choices=("all", "propagate"),
    )
    force_executor: bool = param(
        False,
        "Use executor dask even for a shot too small for a local cluster to win (its start "
        "and stop cost more than the workers save); off: such a shot runs locally, with a "
        "warning.",
    )
    io_depth: int = param(
        1,
        "Frames read ahead and written behind on their own threads while one is matted "
        "(each step holds about two more frames in memory); 0: read, matte and write in turn. "
        "The frames are identical either way.",
        min=0,
        max=8,
    )


@dataclass
class PipelineConfig:
    """Everything one ``vfxmatte matte`` run needs."""

    plate: str = param("", "Plate: a sequence pattern (shot.####.exr), an image or a video.")
    mask: str = param("", "Keyframe mask image (or, with propagate.backend=given, a pattern).")
    output: str = param("", "Output pattern, e.g. out/shot.####.exr.")
    frames: str = param("", "Frame range, e.g. 1001-1100 or 1001-1100x2 (default: all).")
    key_frame: int = param(-1, "Frame number of --mask (default: the first frame).")
    keyframes: str = param(
        "", "More keyframe masks that re-anchor propagation: 'FRAME=PATH;FRAME=PATH'."
    )
    guidance_output: str = param("", "Also write the guidance masks to this pattern.")
    guidance: str = param(
        "",
        "Precomputed guidance masks, e.g. guide/shot.####.exr (written by --phase propagate "
        "or vfxmatte propagate): skip propagation and matte --frames from them, one "
        "render-farm chunk. Read with --input.mask-channel; missing frames are an error.",
    )
    input: InputConfig = field(default_factory=InputConfig)
    propagate: PropagateStageConfig = field(default_factory=PropagateStageConfig)
    matte: MatteStageConfig = field(default_factory=MatteStageConfig)
    refine: RefineStageConfig = field(default_factory=RefineStageConfig)
    decontaminate: DecontaminateStageConfig = field(default_factory=DecontaminateStageConfig)
    output_options: OutputConfig = field(default_factory=OutputConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
