"""Convert the published MGMatting checkpoint into a vfxmatte ``mgm`` checkpoint.

The release (yucornetto/MGMatting, licensed for non-commercial research only) is a
torch pickle holding ``{"state_dict": ..., "iter", "loss", "opt_state_dict",
"lr_state_dict"}``. Every key starts with ``module.`` (DistributedDataParallel),
and SpectralNorm-wrapped convolutions store ``<name>.module.weight_bar``,
``weight_u`` and ``weight_v`` instead of ``<name>.weight``. At inference the
effective weight is ``weight_bar / sigma`` with ``sigma = u . (W v)`` and ``W``
the bar weight reshaped to ``(shape[0], -1)``; folding that in once gives a plain
network with identical outputs.

vfxmatte never ships or downloads these weights: converting a checkpoint the user
owns is the opt-in, and the licence travels in the converted file's metadata.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import torch

from vfxmatte.errors import WeightsError
from vfxmatte.matte.network.arch import ARCHITECTURES, PRNMattingNet
from vfxmatte.weights import load_state_dict, save_checkpoint

__all__ = ["LICENCE_NOTE", "convert_mgmatting", "fold_mgmatting_state_dict", "mgm_release_arch"]

LICENCE_NOTE = (
    "MGMatting release weights (yucornetto/MGMatting): licensed for non-commercial research "
    "use only"
)
_SN_SUFFIXES = (".module.weight_bar", ".module.weight_u", ".module.weight_v")


def mgm_release_arch() -> dict:
    """The architecture options of the released generator (no confidence head)."""
    return dataclasses.asdict(dataclasses.replace(ARCHITECTURES["mgm"], confidence_head=False))


def fold_mgmatting_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip ``module.`` and fold SpectralNorm into plain ``.weight`` tensors.

    Raises:
        WeightsError: a SpectralNorm layer with a missing part or inconsistent shapes.
    """
    plain: dict[str, torch.Tensor] = {}
    spectral: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"state_dict entry {key!r} is not a tensor")
        name = key[len("module.") :] if key.startswith("module.") else key
        for suffix in _SN_SUFFIXES:
            if name.endswith(suffix):
                spectral.setdefault(name[: -len(suffix)], {})[suffix.rsplit("_", 1)[1]] = value
                break
        else:
            plain[name] = value
    for prefix, parts in spectral.items():
        missing = sorted({"bar", "u", "v"} - set(parts))
        if missing:
            raise WeightsError(
                f"SpectralNorm layer {prefix!r} lacks weight_{', weight_'.join(missing)}"
            )
        bar = parts["bar"].double()
        matrix = bar.reshape(bar.shape[0], -1)
        u, v = parts["u"].double(), parts["v"].double()
        if u.shape != (matrix.shape[0],) or v.shape != (matrix.shape[1],):
            raise WeightsError(
                f"SpectralNorm layer {prefix!r}: u {tuple(u.shape)} / v {tuple(v.shape)} do not "
                f"fit weight_bar {tuple(bar.shape)}"
            )
        sigma = torch.dot(u, matrix.mv(v))
        if not torch.isfinite(sigma) or float(sigma) == 0.0:
            raise WeightsError(f"SpectralNorm layer {prefix!r}: sigma is {float(sigma)}")
        plain[f"{prefix}.weight"] = (bar / sigma).to(parts["bar"].dtype)
    return plain


def convert_mgmatting(
    source: str | os.PathLike[str], target: str | os.PathLike[str]
) -> dict[str, torch.Tensor]:
    """Read a released MGMatting ``.pth`` and write a vfxmatte ``mgm`` checkpoint.

    The source is read with ``torch.load(weights_only=True)``: no code in the file
    runs. Returns the folded state dict.

    Raises:
        WeightsError: unreadable source, or keys that do not fit the ``mgm`` network.
    """
    try:
        payload = torch.load(os.fspath(source), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint not found: {source}") from None
    except Exception as exc:  # pickle/zip errors of a damaged or foreign file
        raise WeightsError(f"{source}: not a readable torch checkpoint ({exc})") from exc
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict):
        raise WeightsError(f"{source}: no state_dict inside")
    folded = fold_mgmatting_state_dict(state)
    arch = mgm_release_arch()
    model = PRNMattingNet(arch)
    load_state_dict(model, folded, source=f"{source} (MGMatting release)")
    metadata = {
        "source": "MGMatting release",
        "converted_from": os.path.basename(os.fspath(source)),
        "licence": LICENCE_NOTE,
    }
    if isinstance(payload, dict) and "iter" in payload:
        metadata["iteration"] = str(payload["iter"])
    save_checkpoint(target, "matte", {"arch": arch}, model.state_dict(), metadata)
    return folded
