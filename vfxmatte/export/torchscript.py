"""Build :class:`~vfxmatte.export.model.MatteExport` from checkpoints and save TorchScript.

The module is compiled with ``torch.jit.script`` (shape-dependent logic -- working
resolution, padding, decoding counts -- stays dynamic, which tracing would freeze
at the example's size), run once against the eager module on an example input,
and written atomically.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass

import torch

from vfxmatte.errors import VfxMatteError, WeightsError
from vfxmatte.export.model import MatteExport
from vfxmatte.io.atomic import atomic_path

__all__ = ["ExportCheck", "build_export", "save_torchscript"]


@dataclass
class ExportCheck:
    """How the scripted module compared with the eager one on the example input."""

    max_abs_diff: float
    shape: tuple[int, ...]


def build_export(
    matte_weights: str,
    colour_weights: str = "",
    working_size: int = 1024,
    iterations: int = 0,
    refine_weights: str = "",
    refine_tau: float = 0.1,
) -> MatteExport:
    """The export module from a matte checkpoint and optional refine and colour checkpoints."""
    from vfxmatte.decontaminate.network import load_colour_network
    from vfxmatte.export.refine import ExportRefine
    from vfxmatte.matte.network.backend import load_matting_network
    from vfxmatte.refine.sparse_net import SparseRefineNet

    matte, _ = load_matting_network(matte_weights)
    colour = load_colour_network(colour_weights) if colour_weights else None
    refine = None
    if refine_weights:
        net = SparseRefineNet.from_checkpoint(refine_weights)
        channels = matte.arch.skip_planes[0]
        if net.arch.feature_channels not in (0, channels):
            raise WeightsError(
                f"{refine_weights} reads {net.arch.feature_channels} feature channels; the "
                f"matting network gives {channels}"
            )
        refine = ExportRefine(net, refine_tau)
    return MatteExport(
        matte, colour, working_size=working_size, iterations=iterations, refine=refine
    ).eval()


def save_torchscript(
    module: MatteExport,
    path: str | os.PathLike[str],
    example: torch.Tensor | None = None,
    tolerance: float = 1e-4,
) -> ExportCheck:
    """Script ``module``, check it against eager on ``example``, write it to ``path``.

    Raises:
        VfxMatteError: the scripted output differs from eager by more than ``tolerance``.
    """
    module = module.eval()
    if example is None:
        generator = torch.Generator().manual_seed(0)
        example = torch.rand(1, 4, 96, 128, generator=generator)
        example[:, 3] = (example[:, 3] > 0.5).float()
    with warnings.catch_warnings():
        # torch 2.x deprecates TorchScript in favour of torch.export, but Nuke's Inference
        # node reads TorchScript only.
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(copy.deepcopy(module))
    with torch.no_grad():
        eager = module(example)
        compiled = scripted(example)
    diff = float((eager - compiled).abs().max())
    if not diff <= tolerance:
        raise VfxMatteError(
            f"TorchScript output differs from eager by {diff:g} (> {tolerance:g}); not written"
        )
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(scripted, str(tmp))
    return ExportCheck(diff, tuple(compiled.shape))
