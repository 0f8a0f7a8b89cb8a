"""Mask propagation with the official SAM 2 video predictor (the ``sam2`` backend).

SAM 2 (Ravi et al., "SAM 2: Segment Anything in Images and Videos", 2024) tracks
objects through a video with a memory bank: every frame is segmented by
attending to the memories of the prompted ("conditioning") frames, of the last
``num_maskmem - 1`` frames (6) and to the object pointers of the last
``max_obj_ptrs_in_encoder - 1`` frames (15) (paper §4, "Memory bank"). The
``sam2`` package (extra ``vfxmatte[sam2]``) is used as a library; four things
differ from its demo use:

* Frames come from memory, not from a JPEG folder: the inference state's
  ``images`` is a :class:`~vfxmatte.propagate.sam2_frames.LazyFrames` that
  decodes a frame through the engine's callback when the model asks for it and
  keeps a few (``frame_cache``).
* Stored per-frame outputs the memory bank can no longer reach are dropped
  after the frame is yielded (``drop_old_outputs``). Kept, they grow by about
  0.75 MB per object and frame at 1024 and make long shots run out of memory
  (sam2 issues #196, #264, #545, #571); dropped, memory is flat and results
  are bit-identical (tested).
* The predictor returns its mask logits at its own resolution (``S/4``
  square, 256 at 1024) and each object is upsampled to the plate here, with
  OpenCV, one at a time: no plate-size tensor is made in torch, which keeps
  large per-frame allocations (and the heap fragmentation they cause) low.
* Hole filling of the ``sam2`` package needs its optional CUDA extension and
  otherwise warns on every frame and does nothing: it is switched off.

Prompts are a mask per object on one or more keyframes (SAM 2's mask prompt,
not converted to points), optionally refined by points or a box. Every
keyframe is added before propagation, so SAM 2 treats each as a conditioning
frame: its prompt is honoured there, and the frames after it are tracked from
its memory too (re-anchoring). Each object stays its own layer: nothing is
OR-merged and overlaps are allowed.

Order of the yielded frames, with ``k0`` the first prompted frame: ``k0``, then
every later frame in shot order, then every earlier frame in reverse order
(``k0 - 1`` down to the first frame), as in SAM 2's forward then reverse
propagation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.devices import resolve_device
from vfxmatte.errors import BackendUnavailableError, ConfigError
from vfxmatte.propagate.checkpoints import (
    MODELS,
    VERSIONS,
    Sam2Checkpoint,
    load_sam2_state_dict,
    resolve_sam2_checkpoint,
)
from vfxmatte.propagate.checks import check_mask, frame_positions
from vfxmatte.propagate.sam2_frames import LazyFrames
from vfxmatte.propagate.sam2_prompts import (
    KeyBoxes,
    KeyMasks,
    KeyPoints,
    Prompt,
    collect_prompts,
)

__all__ = ["Sam2PropagateConfig", "Sam2Propagator", "memory_reach"]

log = logging.getLogger(__name__)

_PRECISIONS = ("float32", "bfloat16", "float16")


@dataclass
class Sam2PropagateConfig:
    """Options of the ``sam2`` propagation backend."""

    model: str = param("tiny", "SAM 2 model size.", choices=tuple(MODELS))
    version: str = param("2.1", "SAM release the checkpoint belongs to.", choices=VERSIONS)
    checkpoint: str = param(
        "",
        "Path of the .pt checkpoint; empty: $VFXMATTE_HOME/sam2/sam2.1_hiera_<model>.pt "
        "(sam2_hiera_<model>.pt for version 2).",
    )
    random_weights: bool = param(
        False, "Build with random weights (tests and benchmarks only: the masks are meaningless)."
    )
    seed: int = param(0, "Seed of the random weights.", min=0, max=2**31 - 1)
    device: str = param("auto", "Compute device: auto, cpu, cuda, cuda:N or mps.")
    precision: str = param(
        "float32", "Arithmetic precision (autocast); bfloat16/float16 on GPUs.", choices=_PRECISIONS
    )
    image_size: int = param(
        1024,
        "Square model input size in pixels (a multiple of 32). The official weights are "
        "trained at 1024; smaller is faster and coarser.",
        min=128,
        max=2048,
    )
    max_cond_frames: int = param(
        0,
        "Keyframes attended per frame, the temporally closest first; 0 = all of them.",
        min=0,
        max=1000,
    )
    mask_threshold: float = param(
        0.0, "Logit above which a pixel is in the object.", min=-32.0, max=32.0
    )
    soft: bool = param(False, "Output sigmoid(logit) instead of a 0/1 mask.")
    exact_keyframes: bool = param(
        True,
        "On a keyframe, output the given mask of an object (at plate resolution) instead of "
        "SAM 2's low-resolution copy of it.",
    )
    offload_video_to_cpu: bool = param(
        False, "Keep the cached model-input frames in CPU memory instead of on the device."
    )
    offload_state_to_cpu: bool = param(
        False, "Keep the memory bank in CPU memory instead of on the device (slower, less VRAM)."
    )
    frame_cache: int = param(4, "Model-input frames kept decoded (LRU).", min=1, max=64)
    drop_old_outputs: bool = param(
        True,
        "Drop each frame's stored outputs once the memory bank cannot reach them. Off keeps "
        "them all as the sam2 package does: memory then grows with the shot.",
    )

    def __post_init__(self) -> None:
        validate_fields(self, "propagate.sam2.")
        if self.image_size % 32:
            raise ConfigError(
                f"Option 'propagate.sam2.image_size' got {self.image_size}; it must be a multiple "
                f"of 32 (e.g. {max(128, self.image_size // 32 * 32)})."
            )


def memory_reach(predictor: Any) -> int:
    """How many frames back the model reads stored outputs (SAM 2 memory bank).

    A frame ``t`` reads the memories of frames ``t - 1 ... t - (num_maskmem - 1) *
    stride - 1`` and the object pointers of ``t - 1 ... t - (max_obj_ptrs - 1)``
    (``sam2.modeling.sam2_base.SAM2Base._prepare_memory_conditioned_features``);
    mirrored when tracking in reverse. 15 for the released configs.
    """
    stride = max(1, int(getattr(predictor, "memory_temporal_stride_for_eval", 1)))
    masks = (int(predictor.num_maskmem) - 1) * stride + 1
    pointers = (
        int(predictor.max_obj_ptrs_in_encoder) - 1 if predictor.use_obj_ptrs_in_encoder else 0
    )
    return max(masks, pointers, 1)


class Sam2Propagator:
    """Propagates keyframe masks of several objects through a shot with SAM 2.

    ::

        prop = Sam2Propagator(Sam2PropagateConfig(model="tiny"))
        for number, masks in prop.propagate(get_frame, frames, {1050: {1: m1, 2: m2}}):
            ...  # masks[1], masks[2]: H x W float32 in [0, 1]

    Building loads the model once; :meth:`propagate` can run many shots.

    Raises:
        BackendUnavailableError: the ``sam2`` package is not installed.
        WeightsError: no checkpoint found, or one that does not fit the model.
        DeviceError, ConfigError: bad device or options.
    """

    def __init__(self, config: Sam2PropagateConfig | None = None) -> None:
        self.config = config if config is not None else Sam2PropagateConfig()
        self.device = resolve_device(self.config.device)
        self.autocast_dtype = _autocast_dtype(self.config.precision, self.device)
        self.checkpoint = resolve_sam2_checkpoint(
            self.config.model,
            self.config.version,
            self.config.checkpoint,
            random_weights=self.config.random_weights,
        )
        self.predictor = _build_predictor(self.checkpoint, self.config)
        self.predictor.to(self.device)
        #: Largest number of stored per-frame outputs (all objects) during the last run,
        #: and their size in bytes: what the memory bank held at its largest.
        self.peak_stored_outputs = 0
        self.peak_stored_bytes = 0

    @property
    def image_size(self) -> int:
        """The model's square input size in pixels."""
        return int(self.predictor.image_size)

    def propagate(
        self,
        get_frame: Callable[[int], np.ndarray],
        frames: Sequence[int],
        keyframes: KeyMasks,
        *,
        points: KeyPoints | None = None,
        boxes: KeyBoxes | None = None,
    ) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Propagate the prompts through the shot, streaming frames.

        Args:
            get_frame: frame number -> ``H x W x 3`` float32 display-referred RGB
                in [0, 1]. Called lazily, about once per frame (a keyframe a few
                times more); frames are resized to ``image_size`` on access.
            frames: frame numbers of the shot in shot order.
            keyframes: frame number -> {object id -> ``H x W`` float32 (or bool)
                mask in [0, 1]}; binarised at 0.5 by SAM 2. An empty mask says
                "not in view here".
            points: optional frame number -> {object id -> (``N x 2`` (x, y)
                plate pixels, ``N`` labels, 1 foreground / 0 background)}.
                With a mask on the same frame they refine it.
            boxes: optional frame number -> {object id -> (x0, y0, x1, y1) plate pixels}.

        Yields:
            ``(frame number, {object id: H x W float32 mask in [0, 1]})`` for every
            frame, in the order given in the module docstring. Every object
            prompted anywhere appears on every frame.

        Raises:
            InputError: no prompt, a prompted frame not in ``frames``, repeated
                frame numbers, or a malformed frame, mask, point or box.
        """
        order = list(frames)
        index = frame_positions(order)
        prompts = collect_prompts(index, keyframes, points or {}, boxes or {})
        size = self.image_size
        images_device = _torch_cpu() if self.config.offload_video_to_cpu else self.device
        images = LazyFrames(
            get_frame, order, size, images_device, cache_size=self.config.frame_cache
        )
        start = min(prompts)
        images[start]  # decodes the first keyframe: gives the plate size
        shape = images.shape
        assert shape is not None
        state = self._new_state(images)
        self.peak_stored_outputs = self.peak_stored_bytes = 0
        try:
            exact = self._add_prompts(state, prompts, shape, order)
            yield from self._run(state, start, order, shape, exact, reverse=False)
            if start > 0:
                yield from self._run(state, start, order, shape, exact, reverse=True)
        finally:
            state.clear()
            images.clear()

    # -- inference state ---------------------------------------------------------------

    def _new_state(self, images: LazyFrames) -> dict[str, Any]:
        """The predictor's inference state over lazy in-memory frames.

        ``SAM2VideoPredictor.init_state`` only reads a JPEG folder or an .mp4 and
        holds the whole shot; this builds the same dictionary (same keys, checked
        by the tests against ``init_state``) around :class:`LazyFrames`.

        The "video" size given to the predictor is that of its own mask logits
        (``image_size / 4`` square), so that it returns them without resizing and
        never makes a plate-size tensor; :meth:`_masks` upsamples each object to
        the plate. Point and box prompts are normalised accordingly (by the plate).
        """
        from collections import OrderedDict

        cfg = self.config
        storage = _torch_cpu() if cfg.offload_state_to_cpu else self.device
        low_res = self.image_size // 4
        return {
            "images": images,
            "num_frames": len(images),
            "offload_video_to_cpu": cfg.offload_video_to_cpu,
            "offload_state_to_cpu": cfg.offload_state_to_cpu,
            "video_height": low_res,
            "video_width": low_res,
            "device": self.device,
            "storage_device": storage,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }

    def _add_prompts(
        self,
        state: dict[str, Any],
        prompts: dict[int, dict[int, Prompt]],
        shape: tuple[int, int],
        order: list[int],
    ) -> dict[int, dict[int, np.ndarray]]:
        """Add every prompt as a conditioning frame; returns the exact keyframe masks kept.

        Returns:
            position -> {object id -> checked ``H x W`` float32 mask} for the
            (frame, object) pairs whose output is the given mask itself.
        """
        import torch

        exact: dict[int, dict[int, np.ndarray]] = {}
        for pos in sorted(prompts):
            for obj_id, prompt in sorted(prompts[pos].items()):
                number = order[pos]
                with self._autocast():
                    if prompt.mask is not None:
                        what = f"keyframe mask of object {obj_id} on frame {number}"
                        mask = check_mask(prompt.mask, shape, what)
                        self.predictor.add_new_mask(state, pos, obj_id, torch.from_numpy(mask))
                        if self.config.exact_keyframes and not prompt.has_clicks:
                            exact.setdefault(pos, {})[obj_id] = mask
                    if prompt.has_clicks:
                        self._add_clicks(state, pos, obj_id, prompt, shape)
        return exact

    def _add_clicks(
        self,
        state: dict[str, Any],
        pos: int,
        obj_id: int,
        prompt: Prompt,
        shape: tuple[int, int],
    ) -> None:
        """Add points and/or a box; with a mask already on the frame, they refine it."""
        scale = np.float32([shape[1], shape[0]])  # plate (x, y) -> [0, 1]
        self.predictor.add_new_points_or_box(
            state,
            pos,
            obj_id,
            points=None if prompt.points is None else prompt.points / scale,
            labels=prompt.labels,
            box=None if prompt.box is None else prompt.box / np.tile(scale, 2),
            clear_old_points=True,
            normalize_coords=False,  # done above: the state's "video" size is not the plate's
        )

    # -- propagation -------------------------------------------------------------------

    def _run(
        self,
        state: dict[str, Any],
        start: int,
        order: list[int],
        shape: tuple[int, int],
        exact: dict[int, dict[int, np.ndarray]],
        *,
        reverse: bool,
    ) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """One direction of SAM 2 propagation from position ``start``; yields plate-size masks."""
        steps = self.predictor.propagate_in_video(state, start_frame_idx=start, reverse=reverse)
        reach = memory_reach(self.predictor)
        while True:
            with self._autocast():  # per step: never active in the caller's code
                item = next(steps, None)
            if item is None:
                return
            pos, obj_ids, logits = item  # logits: [objects, 1, S/4, S/4]
            if reverse and pos == start:
                continue  # already yielded by the forward pass
            masks = self._masks(obj_ids, logits, shape)
            masks.update({k: m.copy() for k, m in exact.get(pos, {}).items()})
            del logits, item
            self._count_outputs(state)
            if self.config.drop_old_outputs:
                _drop_unreachable(state, pos, start, reach, reverse=reverse)
            yield order[pos], masks

    def _masks(
        self, obj_ids: Sequence[int], logits: Any, shape: tuple[int, int]
    ) -> dict[int, np.ndarray]:
        """``[K, 1, h, w]`` low-resolution logits -> {object id: ``H x W`` float32 in [0, 1]}.

        Each object is upsampled on its own, bilinearly with half-pixel centres as
        ``sam2`` does, then thresholded (or passed through a sigmoid) in place.
        """
        low = logits[:, 0].float().cpu().numpy()  # [K, h, w]
        size = (shape[1], shape[0])  # cv2 order
        masks = {}
        for i, obj in enumerate(obj_ids):
            up = cv2.resize(low[i], size, interpolation=cv2.INTER_LINEAR)
            if self.config.soft:  # sigmoid; "no object" logits are -1024: clip before exp
                np.clip(up, -60.0, 60.0, out=up)
                np.negative(up, out=up)
                np.exp(up, out=up)
                up += 1.0
                np.reciprocal(up, out=up)
            else:
                _, up = cv2.threshold(
                    up, self.config.mask_threshold, 1.0, cv2.THRESH_BINARY, dst=up
                )
            masks[int(obj)] = up
        return masks

    def _count_outputs(self, state: dict[str, Any]) -> None:
        """Track the peak number and size of stored per-frame outputs (the memory bank)."""
        count = size = 0
        for outputs in state["output_dict_per_obj"].values():
            for stored in (outputs["cond_frame_outputs"], outputs["non_cond_frame_outputs"]):
                count += len(stored)
                size += sum(_nbytes(out) for out in stored.values())
        self.peak_stored_outputs = max(self.peak_stored_outputs, count)
        self.peak_stored_bytes = max(self.peak_stored_bytes, size)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def _nbytes(output: Mapping[str, Any]) -> int:
    """Bytes of the tensors one stored frame output owns (not the shared position encoding)."""
    total = 0
    for key in ("maskmem_features", "pred_masks", "obj_ptr", "object_score_logits"):
        tensor = output.get(key)
        if tensor is not None:
            total += tensor.element_size() * tensor.nelement()
    return total


def _drop_unreachable(
    state: dict[str, Any], pos: int, start: int, reach: int, *, reverse: bool
) -> None:
    """Forget stored outputs of frames the rest of the propagation will not read.

    After position ``pos`` the next frame reads non-conditioning outputs at most
    ``reach`` positions behind it. Forward, the frames just after ``start`` are
    kept too: the reverse pass from ``start`` reads them, as it does in the
    ``sam2`` package. Conditioning (keyframe) outputs are always kept.
    """
    for obj_idx, outputs in state["output_dict_per_obj"].items():
        stored = outputs["non_cond_frame_outputs"]
        tracked = state["frames_tracked_per_obj"][obj_idx]
        if reverse:
            gone = [p for p in stored if p > pos - 1 + reach]
        else:
            gone = [p for p in stored if p < pos + 1 - reach and not start < p < start + reach]
        for p in gone:
            del stored[p]
            if p not in outputs["cond_frame_outputs"]:
                tracked.pop(p, None)


def _torch_cpu() -> Any:
    import torch

    return torch.device("cpu")


def _autocast_dtype(precision: str, device: Any) -> Any:
    """The autocast dtype for ``precision`` on ``device``; None for float32."""
    import torch

    if precision == "float32":
        return None
    if precision == "float16" and device.type == "cpu":
        raise ConfigError(
            "Option 'propagate.sam2.precision' float16 needs a GPU; on the CPU use bfloat16 "
            "or float32."
        )
    return torch.bfloat16 if precision == "bfloat16" else torch.float16


def _build_predictor(checkpoint: Sam2Checkpoint, config: Sam2PropagateConfig) -> Any:
    """Build ``SAM2VideoPredictor`` from the package config and load the weights (on CPU).

    Random weights are drawn from a private generator state seeded with
    ``config.seed``: the same seed builds the same model, and the caller's
    global RNG is left untouched.
    """
    try:
        import torch
        from sam2.build_sam import build_sam2_video_predictor
    except ImportError as exc:
        raise BackendUnavailableError(
            f"The sam2 propagation backend needs the official 'sam2' package ({exc}). "
            "Install it with: pip install 'vfxmatte[sam2]'"
        ) from exc
    overrides = [
        f"++model.image_size={config.image_size}",
        f"++model.max_cond_frames_in_attn={config.max_cond_frames or -1}",
    ]
    if config.image_size != 1024 and not config.random_weights:
        log.info("SAM 2 runs at %d px; its weights are trained at 1024.", config.image_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        try:
            predictor = build_sam2_video_predictor(
                checkpoint.config, ckpt_path=None, device="cpu", hydra_overrides_extra=overrides
            )
        except Exception as exc:  # hydra reports a missing config with its own types
            raise BackendUnavailableError(
                f"The installed sam2 package cannot build '{checkpoint.config}': {exc}. "
                "Install a sam2 release that has it: pip install -U 'vfxmatte[sam2]'"
            ) from exc
    # sam2's hole filling needs its optional CUDA extension; without it, it warns on
    # every frame and does nothing. (The builder appends its own value after ours.)
    predictor.fill_hole_area = 0
    if checkpoint.path is not None:
        load_sam2_state_dict(predictor, checkpoint.path)
        log.info("Loaded SAM %s %s from %s.", checkpoint.version, checkpoint.model, checkpoint.path)
    return predictor.eval()
