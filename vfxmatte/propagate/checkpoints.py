"""Where SAM 2 checkpoints live and which config goes with each.

vfxmatte never downloads weights. A SAM 2 / SAM 2.1 checkpoint is found, in
order:

1. the path given as ``checkpoint`` (config ``propagate.sam2.checkpoint``);
2. ``$VFXMATTE_HOME/sam2/<official file name>`` for the configured ``model``
   and ``version``, e.g. ``$VFXMATTE_HOME/sam2/sam2.1_hiera_tiny.pt``.

``VFXMATTE_HOME`` defaults to ``$XDG_CACHE_HOME/vfxmatte`` (``~/.cache/vfxmatte``).
The official files are published at https://github.com/facebookresearch/sam2
(section "Download Checkpoints"); their names and the configs of the ``sam2``
package that build the matching model are:

=============  ============================  ====================================
model          SAM 2.1 file (SAM 2 file)     config (``sam2`` package)
=============  ============================  ====================================
tiny           sam2.1_hiera_tiny.pt          configs/sam2.1/sam2.1_hiera_t.yaml
small          sam2.1_hiera_small.pt         configs/sam2.1/sam2.1_hiera_s.yaml
base_plus      sam2.1_hiera_base_plus.pt     configs/sam2.1/sam2.1_hiera_b+.yaml
large          sam2.1_hiera_large.pt         configs/sam2.1/sam2.1_hiera_l.yaml
=============  ============================  ====================================

(SAM 2: ``sam2_hiera_<model>.pt`` with ``configs/sam2/sam2_hiera_<t|s|b+|l>.yaml``.)

A checkpoint given by path whose file name is an official one selects its own
config, whatever ``model``/``version`` say, so that a renamed model option
cannot build the wrong network around the weights.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfxmatte.errors import ConfigError, WeightsError, closest_hint

__all__ = [
    "MODELS",
    "VERSIONS",
    "Sam2Checkpoint",
    "checkpoint_filename",
    "config_name",
    "load_sam2_state_dict",
    "resolve_sam2_checkpoint",
    "vfxmatte_home",
]

log = logging.getLogger(__name__)

#: Model name -> the short name used in the official config file names.
MODELS: Mapping[str, str] = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
VERSIONS: tuple[str, ...] = ("2.1", "2")
DOWNLOAD_PAGE = "https://github.com/facebookresearch/sam2#download-checkpoints"

_OFFICIAL_NAME = re.compile(r"^sam(2|2\.1)_hiera_(tiny|small|base_plus|large)\.pt$")
_NAMES_LISTED = 10  # key names quoted in an error message


@dataclass(frozen=True)
class Sam2Checkpoint:
    """A resolved checkpoint: the weights file (None for random weights) and its config."""

    path: Path | None
    model: str
    version: str

    @property
    def config(self) -> str:
        """The ``sam2`` package config that builds this model."""
        return config_name(self.model, self.version)


def vfxmatte_home() -> Path:
    """``$VFXMATTE_HOME``, else ``$XDG_CACHE_HOME/vfxmatte``, else ``~/.cache/vfxmatte``."""
    home = os.environ.get("VFXMATTE_HOME", "").strip()
    if home:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "vfxmatte"


def _check_model(model: str, version: str) -> None:
    if model not in MODELS:
        raise ConfigError(
            f"Unknown SAM 2 model '{model}'; valid: {', '.join(MODELS)}."
            + closest_hint(model, MODELS)
        )
    if version not in VERSIONS:
        raise ConfigError(f"Unknown SAM 2 version '{version}'; valid: {', '.join(VERSIONS)}.")


def checkpoint_filename(model: str, version: str) -> str:
    """Official file name, e.g. ``("tiny", "2.1") -> "sam2.1_hiera_tiny.pt"``."""
    _check_model(model, version)
    return f"sam{version}_hiera_{model}.pt"


def config_name(model: str, version: str) -> str:
    """Config of the ``sam2`` package, e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml``."""
    _check_model(model, version)
    return f"configs/sam{version}/sam{version}_hiera_{MODELS[model]}.yaml"


def resolve_sam2_checkpoint(
    model: str, version: str, checkpoint: str = "", *, random_weights: bool = False
) -> Sam2Checkpoint:
    """Find the weights file and the config that matches it.

    Args:
        model: ``tiny``, ``small``, ``base_plus`` or ``large``.
        version: ``2.1`` or ``2``.
        checkpoint: a path to a ``.pt`` file, or ``""`` to look in ``VFXMATTE_HOME``.
        random_weights: build with random weights (tests, benchmarks); no file is needed.

    Raises:
        ConfigError: unknown model or version.
        WeightsError: no file found, naming the path(s) looked at and where the
            official files are published.
    """
    _check_model(model, version)
    if random_weights:
        return Sam2Checkpoint(None, model, version)
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"The SAM 2 checkpoint '{path}' does not exist (or is not a file). Give the path "
                f"of an official .pt file (downloads: {DOWNLOAD_PAGE}), or leave 'checkpoint' "
                f"empty to use $VFXMATTE_HOME/sam2/{checkpoint_filename(model, version)}."
            )
        found = _OFFICIAL_NAME.match(path.name)
        if found:
            file_version, file_model = found.group(1), found.group(2)
            if (file_model, file_version) != (model, version):
                log.info(
                    "Checkpoint '%s' is SAM %s %s: using its config (not %s %s).",
                    path.name,
                    file_version,
                    file_model,
                    version,
                    model,
                )
            return Sam2Checkpoint(path, file_model, file_version)
        return Sam2Checkpoint(path, model, version)
    folder = vfxmatte_home() / "sam2"
    path = folder / checkpoint_filename(model, version)
    if path.is_file():
        return Sam2Checkpoint(path, model, version)
    present = sorted(p.name for p in folder.glob("sam2*_hiera_*.pt")) if folder.is_dir() else []
    also = f" Found there instead: {', '.join(present)} (set 'model'/'version')." if present else ""
    raise WeightsError(
        f"No SAM {version} '{model}' checkpoint: expected '{path}'. Download "
        f"{checkpoint_filename(model, version)} from {DOWNLOAD_PAGE} and put it there "
        "(VFXMATTE_HOME sets the folder), or give its path with 'checkpoint'." + also
    )


def _names(keys: Iterable[str]) -> str:
    keys = list(keys)
    more = f" and {len(keys) - _NAMES_LISTED} more" if len(keys) > _NAMES_LISTED else ""
    return ", ".join(keys[:_NAMES_LISTED]) + more


def load_sam2_state_dict(model: Any, path: str | os.PathLike[str]) -> None:
    """Load an official SAM 2 checkpoint (``{"model": state_dict}``) into ``model``.

    A bare state dict (a mapping of names to tensors) is accepted too. The file
    is read with ``torch.load(weights_only=True)``: no code in it is run.

    Args:
        model: the ``torch.nn.Module`` built from the matching config.
        path: the ``.pt`` file.

    Raises:
        WeightsError: unreadable file, no ``model`` entry, or keys that do not fit,
            naming the missing, unexpected and mis-shaped keys.
    """
    import torch

    try:
        blob = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(
            f"Cannot read the SAM 2 checkpoint '{path}': {exc}. Is it an official .pt file?"
        ) from None
    if isinstance(blob, Mapping) and isinstance(blob.get("model"), Mapping):
        state = blob["model"]
    elif isinstance(blob, Mapping) and all(isinstance(v, torch.Tensor) for v in blob.values()):
        state = blob
    else:
        keys = list(blob)[:5] if isinstance(blob, Mapping) else type(blob).__name__
        raise WeightsError(
            f"The SAM 2 checkpoint '{path}' holds no 'model' state dict (found {keys})."
        )
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_names(unexpected)}")
        if shapes:
            parts.append(f"wrong shapes: {_names(shapes)}")
        raise WeightsError(
            f"The SAM 2 checkpoint '{path}' does not fit the configured model ("
            + "; ".join(parts)
            + "). Check that 'model' and 'version' match the file (e.g. sam2.1_hiera_tiny.pt "
            "is model=tiny, version=2.1)."
        )
    model.load_state_dict(state, strict=True)
