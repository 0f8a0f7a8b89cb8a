"""The settings that shape a frame's pixels, written into the header of each of its files.

Every output file of a frame carries ``vfxmatte:settings`` (canonical JSON) and
``vfxmatte:settings_digest`` (its SHA-256, 16 hex digits); guidance files written by
propagation carry ``vfxmatte:guidance`` (the propagation's identity). A resumed run
reuses a frame only when the digests of its files equal its own; a file of another
digest (or of none) **stops the run before any work** with a
:class:`~vfxmatte.errors.SettingsMismatchError` that lists the frames and the
settings that differ, and ``--overwrite`` redoes them. Stopping, not redoing:
frames made with other settings may be a version someone wants, and a run is never
allowed to replace them silently; it never mixes them with its own either.

What is in it (what shapes the pixels):

* the plate: the pattern's name, and per frame the file's size and modification
  time (whole seconds: a re-rendered frame is a new frame; ``cp -p``/``rsync -a``
  keep them, a plain copy does not), the frame of a video;
* the plate's resolved colourspace, OCIO config (by content), channels, nonfinite;
* the frame's guidance: the propagation backend, its options and the keyframe masks
  (by content), or, for guidance read from files (``--guidance``, ``given``), the
  identity their header carries, else the file's size and time;
* the matte, refine and decontaminate backends, the options of the active one, its
  weights file by content (the shipped one when none is given);
* the EXR pixel type, and a lossy compression (dwaa/dwab).

Not in it: output paths and kinds, frame ranges, progress, executor, workers,
chunking, overwrite, devices (``device``, ``impl`` and memory options give the same
algorithm), vfxmatte's version. The same settings give the same digest whether a
frame was matted locally, in a worker process, on Dask or by a farm chunk, so a
shot can be resumed with another executor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfxmatte.io.sequence import FramePattern

if TYPE_CHECKING:
    from vfxmatte.engine.config import PipelineConfig

__all__ = [
    "DIGEST_ATTR",
    "GUIDANCE_ATTR",
    "SETTINGS_ATTR",
    "FrameSettings",
    "canonical",
    "differences",
    "file_identity",
    "holds_digest",
    "propagation_identity",
    "read_header",
    "run_settings",
]

SETTINGS_ATTR = "vfxmatte:settings"
DIGEST_ATTR = "vfxmatte:settings_digest"
GUIDANCE_ATTR = "vfxmatte:guidance"
#: File types whose headers keep these attributes (OpenImageIO drops them from TIFF/DPX/JPEG).
DIGEST_EXTENSIONS = (".exr", ".png")
#: Options that choose how, not what: the same algorithm on another device or path.
_NOT_PIXELS = {
    "device",
    "impl",
    "offload_video_to_cpu",
    "offload_state_to_cpu",
    "frame_cache",
    "drop_old_outputs",
}
_LOSSY = ("dwaa", "dwab", "b44", "b44a", "pxr24")
_WHOLE_HASH_BYTES = 64 << 20
_CONTENT: dict[tuple[str, int, int], str] = {}


def canonical(data: Any) -> str:
    """Compact JSON with sorted keys: equal settings give equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def holds_digest(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in DIGEST_EXTENSIONS


def file_identity(path: str) -> dict[str, Any]:
    """``{name, size, mtime}`` of a file (``missing`` when it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return {"name": os.path.basename(path), "missing": True}
    return {"name": os.path.basename(path), "size": st.st_size, "mtime": int(st.st_mtime)}


def content_identity(path: str) -> dict[str, Any]:
    """``{name, sha256}`` of a file's content (files over 64 MiB: size, first and last 4 MiB)."""
    path = os.path.expanduser(path)
    try:
        st = os.stat(path)
    except OSError:
        return {"name": os.path.basename(path), "missing": True}
    if not stat.S_ISREG(st.st_mode):  # a folder or device: its reader says what is wrong
        return {"name": os.path.basename(path), "missing": True}
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _CONTENT:
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            if st.st_size <= _WHOLE_HASH_BYTES:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    sha.update(block)
            else:
                sha.update(str(st.st_size).encode())
                sha.update(handle.read(4 << 20))
                handle.seek(-(4 << 20), os.SEEK_END)
                sha.update(handle.read())
        _CONTENT[key] = sha.hexdigest()[:16]
    return {"name": os.path.basename(path), "sha256": _CONTENT[key]}


def _options(section: Any) -> dict[str, Any]:
    if section is None or not dataclasses.is_dataclass(section):
        return {}
    return {k: v for k, v in dataclasses.asdict(section).items() if k not in _NOT_PIXELS}


def _weights(path: str, kind: str) -> dict[str, Any]:
    if not path:
        from vfxmatte.weights import shipped_weights

        path = shipped_weights(kind)
        if not path:
            return {"shipped": kind, "missing": True}
    return content_identity(path)


def _stage(section: Any, kind: str) -> dict[str, Any]:
    backend = section.backend
    options = _options(getattr(section, backend, None))
    if "weights" in options:
        options["weights"] = _weights(options["weights"], kind)
    return {"backend": backend, backend: options}  # keys read as the options' names


def _sam2_weights(options: dict[str, Any]) -> Any:
    if options.get("random_weights"):
        return {"random": options.get("seed", 0)}
    from vfxmatte.errors import VfxMatteError
    from vfxmatte.propagate.checkpoints import resolve_sam2_checkpoint

    try:
        found = resolve_sam2_checkpoint(options["model"], options["version"], options["checkpoint"])
    except VfxMatteError:
        return {"name": os.path.basename(options["checkpoint"]), "missing": True}
    return content_identity(os.fspath(found.path)) if found.path else {"random": 0}


def plate_name(plate: str) -> str:
    parsed = FramePattern.parse(plate)
    return os.path.basename(plate if parsed.is_single else parsed.as_hashes())


def propagation_identity(
    config: PipelineConfig,
    keyframe_paths: Mapping[int, list[str]],
    plate_colourspace: str,
    variant: str = "",
) -> dict[str, Any]:
    """What a propagation's guidance depends on: backend, options, keyframes, plate.

    ``keyframe_paths``: frame -> mask paths (one per object), as propagation reads them.
    ``variant`` names another code path of the same backend (``vfxmatte propagate``'s
    per-object flow).
    """
    backend = config.propagate.backend
    options = _options(getattr(config.propagate, backend, None))
    if backend == "sam2":
        options["checkpoint"] = _sam2_weights(options)
    return {
        **({"variant": variant} if variant else {}),
        "backend": backend,
        backend: options,
        "keyframes": {
            str(n): [content_identity(p) for p in paths]
            for n, paths in sorted(keyframe_paths.items())
        },
        "mask": {"channel": config.input.mask_channel, "resize": config.input.mask_resize},
        "plate": {
            "name": plate_name(config.plate),
            "colourspace": plate_colourspace,
            "channels": config.input.channels,
        },
    }


def stage_settings(config: PipelineConfig, colour: Any) -> dict[str, Any]:
    """The per-shot part: colour, stage backends and options, weights, pixel type."""
    ocio = config.input.ocio
    output: dict[str, Any] = {"dtype": config.output_options.dtype}
    if config.output_options.compression.split(":", 1)[0] in _LOSSY:
        output["compression"] = config.output_options.compression
    return {
        "version": 1,
        "input": {
            "colourspace": colour.plate,
            "linear": colour.linear,
            "ocio": content_identity(ocio) if ocio else "",
            "channels": config.input.channels,
            "nonfinite": config.input.nonfinite,
        },
        "matte": _stage(config.matte, "matte"),
        "refine": _stage(config.refine, "refine"),
        "decontaminate": _stage(config.decontaminate, "colour"),
        "output": output,
    }


@dataclass(frozen=True)
class Header:
    """What :func:`read_header` found: display size, channels, vfxmatte attributes."""

    width: int
    height: int
    channels: tuple[str, ...]
    attributes: dict[str, str]


def read_header(path: str) -> Header | None:
    """The first part's header of an image file; ``None`` when it cannot be read."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(path)
    if inp is None:
        try:
            oiio.geterror()  # clear it (a damaged header's text may not even be UTF-8)
        except UnicodeDecodeError:
            pass
        return None
    try:
        spec = inp.spec()
        attrs = {}
        for name in (SETTINGS_ATTR, DIGEST_ATTR, GUIDANCE_ATTR):
            value = spec.getattribute(name)
            if isinstance(value, str):
                attrs[name] = value
        return Header(spec.full_width, spec.full_height, tuple(spec.channelnames), attrs)
    finally:
        inp.close()


@dataclass(frozen=True)
class FrameSettings:
    """The settings of every frame of one run (picklable: chunk tasks carry it).

    ``shot``: canonical JSON of :func:`stage_settings`. ``guidance``: canonical JSON
    of the guidance identity when this run propagates; else ``guidance_files`` names
    the files read (pattern, channel, resize) and each frame's comes from its header.
    """

    shot: str
    plate: str
    video: bool = False
    guidance: str = ""
    guidance_files: tuple[str, str, bool] | None = None

    def _guidance(self, number: int) -> Any:
        if self.guidance:
            return json.loads(self.guidance)
        assert self.guidance_files is not None
        pattern, channel, resize = self.guidance_files
        path = FramePattern.parse(pattern).path(number)
        header = read_header(path) if os.path.isfile(path) else None
        found: dict[str, Any]
        if header is not None and GUIDANCE_ATTR in header.attributes:
            found = {"propagation": json.loads(header.attributes[GUIDANCE_ATTR])}
        else:
            found = {"file": file_identity(path), "channel": channel}
        if channel not in ("A", "auto"):
            found["channel"] = channel
        if resize:
            found["resize"] = True
        return found

    def inputs_present(self, number: int) -> bool:
        """Whether frame ``number``'s plate and guidance files exist (else its run fails
        with the missing input's own sentence, which comes before any settings question)."""
        plate = self.plate if self.video else FramePattern.parse(self.plate).path(number)
        if not os.path.isfile(plate):
            return False
        if self.guidance_files is None:
            return True
        return os.path.isfile(FramePattern.parse(self.guidance_files[0]).path(number))

    def data(self, number: int) -> dict[str, Any]:
        data = json.loads(self.shot)
        if self.video:
            data["plate"] = {**file_identity(self.plate), "frame": number}
        else:
            data["plate"] = file_identity(FramePattern.parse(self.plate).path(number))
        data["guidance"] = self._guidance(number)
        return data

    def header(self, number: int, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The header attributes of frame ``number``'s files (``extra``: e.g. preview options)."""
        data = self.data(number)
        if extra:
            data["extra"] = dict(extra)
        text = canonical(data)
        return {SETTINGS_ATTR: text, DIGEST_ATTR: digest_of(text)}


def guidance_header(identity: Mapping[str, Any]) -> dict[str, str]:
    """The header attribute of a guidance file written by a propagation of ``identity``."""
    return {GUIDANCE_ATTR: canonical(dict(identity))}


def run_settings(config: PipelineConfig, colour: Any, frames: list[int]) -> FrameSettings:
    """The :class:`FrameSettings` of a run of ``config`` over ``frames``."""
    from vfxmatte.engine.propagation import keyframe_paths
    from vfxmatte.io.plate import is_video

    shot = canonical(stage_settings(config, colour))
    video = is_video(config.plate)
    channel, resize = config.input.mask_channel, config.input.mask_resize
    if config.guidance:
        return FrameSettings(
            shot, config.plate, video, guidance_files=(config.guidance, channel, resize)
        )
    if config.propagate.backend == "given":
        return FrameSettings(
            shot, config.plate, video, guidance_files=(config.mask, channel, resize)
        )
    identity = propagation_identity(config, keyframe_paths(config, frames[0]), colour.plate)
    return FrameSettings(shot, config.plate, video, guidance=canonical({"propagation": identity}))


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, (dict, list)):
        items = data.items() if isinstance(data, dict) else enumerate(data)
        out: dict[str, Any] = {}
        for key, value in items:
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _say(key: str, ours: Any, theirs: Any) -> str:
    if key.startswith("plate."):
        return "the plate frame changed since (its size or time)"
    head, _, last = key.rpartition(".")
    if last in ("sha256", "size", "mtime", "missing", "name"):
        return f"{head} is another file or changed since"
    return f"{key} {ours} (on disk: {theirs})"


def _keyframes(ours: dict[str, Any], theirs: dict[str, Any], keys: list[str]) -> str:
    """``keyframes 1002 (on disk: 1001)``, or that a keyframe mask changed."""

    def frames(flat: dict[str, Any]) -> str:
        found = {k.split(".")[0] for k in flat}
        return ", ".join(sorted(found, key=int)) or "(none)"

    mine = {k: v for k, v in ours.items() if k in keys}
    other = {k: v for k, v in theirs.items() if k in keys}
    here, there = frames(mine), frames(other)
    if here != there:
        return f"keyframes {here} (on disk: {there})"
    return f"the keyframe mask of frame {here.split(',')[0]} is another file or changed since"


def differences(expected: str, found: str | None, limit: int = 4, prefix: str = "") -> str:
    """What differs between two settings texts, e.g. ``matte.classical.band_fraction 0.1
    (on disk: 0.05)``; changed files are named by their setting. ``prefix`` is put before
    every key (``propagate.`` for a propagation identity)."""
    if not found:
        return "written without vfxmatte settings (by an older vfxmatte or another program)"
    try:
        ours = _flatten(json.loads(expected), prefix)
        theirs = _flatten(json.loads(found), prefix)
    except ValueError:
        return "unreadable settings on disk"
    rename = ("guidance.propagation.", "propagate.")
    ours = {k.replace(*rename, 1): v for k, v in ours.items()}
    theirs = {k.replace(*rename, 1): v for k, v in theirs.items()}
    keys = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    parts = []
    keyframes = [k for k in keys if k.startswith("propagate.keyframes.")]
    if keyframes:
        strip = len("propagate.keyframes.")
        parts.append(
            _keyframes(
                {k[strip:]: v for k, v in ours.items() if k.startswith("propagate.keyframes.")},
                {k[strip:]: v for k, v in theirs.items() if k.startswith("propagate.keyframes.")},
                [k[strip:] for k in keyframes],
            )
        )
    for key in keys:
        if key not in keyframes:
            parts.append(_say(key, ours.get(key, "(none)"), theirs.get(key, "(none)")))
    parts = list(dict.fromkeys(parts))
    more = f" and {len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more
