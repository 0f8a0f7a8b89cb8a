"""One checkpoint format for every vfxmatte network: safetensors with the config inside.

A checkpoint is a ``.safetensors`` file whose header metadata carries

* ``vfxmatte.format``: ``vfxmatte-weights/1``,
* ``vfxmatte.kind``: which network it is (``matte``, ``refine``, ``colour``),
* ``vfxmatte.config``: the network's architecture options as JSON, so a file
  alone rebuilds the model it belongs to,
* free-form ``vfxmatte.*`` entries (training command, step, dataset...).

``weights_only`` torch files (``.pt``/``.pth``) holding
``{"kind", "config", "state_dict"}`` load too, for training checkpoints.
Loading never executes code from the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vfxmatte.errors import WeightsError
from vfxmatte.io.atomic import atomic_path

__all__ = [
    "FORMAT",
    "SHIPPED",
    "Checkpoint",
    "cast_checkpoint",
    "load_checkpoint",
    "load_state_dict",
    "save_checkpoint",
    "shipped_folders",
    "shipped_weights",
]

#: The starter weights of each network kind, trained here and kept in ``weights/``
#: of the repository (with their config and training log); wheels carry them as
#: ``vfxmatte/_weights/`` (see ``setup.py``).
SHIPPED = {
    "matte": "matte_small.safetensors",
    "colour": "colour.safetensors",
    "refine": "refine.safetensors",
}

FORMAT = "vfxmatte-weights/1"
_PREFIX = "vfxmatte."


@dataclass
class Checkpoint:
    """What a weights file holds."""

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    path: str = ""


def _config_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config)


def save_checkpoint(
    path: str | os.PathLike[str],
    kind: str,
    config: Any,
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write ``state_dict`` with its ``config`` to ``path`` (atomic).

    ``.safetensors`` paths get the safetensors format; anything else a
    ``weights_only``-loadable torch file.
    """
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    config_dict = _config_dict(config)
    extra = {str(k): str(v) for k, v in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import save_file

            header = {f"{_PREFIX}{k}": v for k, v in extra.items()}
            header[f"{_PREFIX}format"] = FORMAT
            header[f"{_PREFIX}kind"] = kind
            header[f"{_PREFIX}config"] = json.dumps(config_dict, sort_keys=True)
            save_file(tensors, str(tmp), metadata=header)
        else:
            payload = {
                "format": FORMAT,
                "kind": kind,
                "config": config_dict,
                "state_dict": tensors,
                "metadata": extra,
            }
            torch.save(payload, str(tmp))


def _read_safetensors(path: str) -> Checkpoint:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(path, framework="pt") as handle:
            header = handle.metadata() or {}
        tensors = load_file(path)
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    if header.get(f"{_PREFIX}format") != FORMAT:
        raise WeightsError(
            f"{path}: a safetensors file without vfxmatte metadata "
            f"({_PREFIX}format is {header.get(f'{_PREFIX}format')!r}, expected {FORMAT!r}); "
            "convert foreign checkpoints first (vfxmatte weights --help)"
        )
    try:
        config = json.loads(header.get(f"{_PREFIX}config", "{}"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: damaged config in the header ({exc})") from exc
    reserved = {"format", "kind", "config"}
    metadata = {
        k[len(_PREFIX) :]: v
        for k, v in header.items()
        if k.startswith(_PREFIX) and k[len(_PREFIX) :] not in reserved
    }
    return Checkpoint(header.get(f"{_PREFIX}kind", ""), config, tensors, metadata, path)


def _read_torch(path: str) -> Checkpoint:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of a damaged or foreign file
        raise WeightsError(f"{path}: not a readable weights file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(
            f"{path}: not a vfxmatte checkpoint (no 'format': {FORMAT!r}); convert foreign "
            "checkpoints first (vfxmatte weights --help)"
        )
    return Checkpoint(
        str(payload.get("kind", "")),
        dict(payload.get("config", {})),
        dict(payload.get("state_dict", {})),
        {str(k): str(v) for k, v in dict(payload.get("metadata", {})).items()},
        path,
    )


def load_checkpoint(
    path: str | os.PathLike[str], kind: str | Sequence[str] | None = None
) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the file.
        kind: the network kind(s) the caller accepts; ``None`` accepts any.

    Raises:
        WeightsError: missing or unreadable file, foreign format, wrong kind.
    """
    path = os.fspath(path)
    if not path:
        raise WeightsError("no weights file given")
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8:
        raise WeightsError(f"{path}: truncated weights file ({len(head)} bytes)")
    # safetensors starts with a little-endian u64 header length; torch files are zip archives.
    checkpoint = _read_torch(path) if head[:2] == b"PK" else _read_safetensors(path)
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if checkpoint.kind not in kinds:
            raise WeightsError(
                f"{path} holds a {checkpoint.kind or 'unknown'!r} network, "
                f"expected {' or '.join(repr(k) for k in kinds)}"
            )
    return checkpoint


#: Storage types :func:`cast_checkpoint` writes.
CAST_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def cast_checkpoint(
    source: str | os.PathLike[str], target: str | os.PathLike[str], dtype: str = "float16"
) -> Checkpoint:
    """Copy a checkpoint with its floating-point tensors stored as ``dtype``.

    Integer tensors (batch-norm counters) are kept. The networks load such a file
    into their float32 parameters as usual (``load_state_dict`` casts), so only
    the file shrinks; ``vfxmatte.stored_dtype`` in the header records the cast.

    Raises:
        ConfigError: unknown ``dtype``.
        WeightsError: unreadable source, or a value that does not fit ``dtype``.
    """
    from vfxmatte.errors import ConfigError

    if dtype not in CAST_DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(CAST_DTYPES)}")
    checkpoint = load_checkpoint(source)
    to = CAST_DTYPES[dtype]
    tensors = {}
    for key, value in checkpoint.state_dict.items():
        if value.is_floating_point():
            cast = value.to(to)
            if not torch.isfinite(cast).all():
                raise WeightsError(f"{os.fspath(source)}: {key} does not fit in {dtype}")
            value = cast
        tensors[key] = value
    metadata = {**checkpoint.metadata, "stored_dtype": dtype}
    save_checkpoint(target, checkpoint.kind, checkpoint.config, tensors, metadata)
    return load_checkpoint(target)


def shipped_folders() -> list[Path]:
    """Where starter weights are looked for, first match wins.

    1. ``$VFXMATTE_HOME/weights/``: a copy a studio manages (overrides the others);
    2. ``vfxmatte/_weights/`` inside the installed package: the wheel carries them;
    3. ``weights/`` of the checkout the package runs from (a clone or an editable install).
    """
    from vfxmatte.propagate.checkpoints import vfxmatte_home

    package = Path(__file__).resolve().parent
    folders = [vfxmatte_home() / "weights", package / "_weights"]
    if (package.parent / "pyproject.toml").is_file():
        folders.append(package.parent / "weights")
    return folders


def shipped_weights(kind: str) -> str:
    """Path of the starter weights of ``kind``, or ``""`` when none are found.

    Looked for in the folders of :func:`shipped_folders`, in that order.
    """
    name = SHIPPED.get(kind)
    if not name:
        return ""
    for folder in shipped_folders():
        if (folder / name).is_file():
            return str(folder / name)
    return ""


def load_state_dict(
    module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "weights"
) -> None:
    """Strict load that names every missing, unexpected and mis-shaped key.

    Raises:
        WeightsError: when the state dict does not fit ``module``.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:

        def listing(keys: list[str]) -> str:
            shown = ", ".join(keys[:8])
            return shown + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {listing(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} with another shape: {listing(shapes)}")
        raise WeightsError(f"{source} does not fit {type(module).__name__}: " + "; ".join(parts))
    module.load_state_dict(dict(state_dict), strict=True)
