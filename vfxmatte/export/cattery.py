"""The folder for Nuke's Cattery: TorchScript, a description, and the CatFileCreator steps.

Nuke's Inference node runs a ``.cat`` file that Nuke's own CatFileCreator node
makes from a TorchScript file; vfxmatte cannot write ``.cat`` itself. This module
writes what CatFileCreator needs and a guide to fill in its knobs. The model is
stateless per frame (Inference has no temporal memory): guidance for every frame
comes from the Nuke script (a roto, or the vfxmatte node's propagated masks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from vfxmatte import __version__
from vfxmatte.export.model import MatteExport
from vfxmatte.export.torchscript import ExportCheck, save_torchscript
from vfxmatte.io.atomic import atomic_path

__all__ = ["CHANNELS_IN", "CHANNELS_OUT", "MODEL_ID", "write_cattery"]

MODEL_ID = "vfxmatte_matte"
CHANNELS_IN = ("rgba.red", "rgba.green", "rgba.blue", "rgba.alpha")
CHANNELS_OUT = ("rgba.red", "rgba.green", "rgba.blue", "rgba.alpha")

_GUIDE = """# vfxmatte in Nuke's Inference node (Cattery)

This folder holds `{pt}`, a TorchScript export of the vfxmatte matting path
(matting network{colour}), written by vfxmatte {version} with torch {torch}.

**Input** (4 channels, scene-linear): RGB of the plate plus the guidance mask in alpha.
**Output** (4 channels): straight (unpremultiplied) foreground RGB, scene-linear, plus alpha.
Everything else -- sRGB encoding for the network, scaling to the working resolution,
padding, decoding -- happens inside the model.

## Make the .cat file

1. In Nuke, create a **CatFileCreator** node (Other > CatFileCreator).
2. Set **Torchscript File** to `{pt_path}`.
3. Set **Cat File** to where the `.cat` should go, e.g. `{cat_path}`.
4. **Channels In**: `{channels_in}` (the mask must be in alpha).
5. **Channels Out**: `{channels_out}`.
6. **Model Id**: `{model_id}`; **Output Scale**: 1.
7. Add these user knobs to CatFileCreator so they become knobs of the Inference node,
   with the same names and defaults as the model's attributes:
{knobs}
8. Click **Create .cat file and Inference**.

## Use it

Plate -> Shuffle/Copy the guidance mask (roto or the vfxmatte node's guidance) into
alpha -> **Inference** (the `.cat`) -> **Premult** for a premultiplied RGBA. Tick *Use
GPU if available*; *Optimize for Speed and Memory* runs the model in half precision,
which it supports.

## Torch version

Nuke's Inference runs the libtorch bundled with Nuke. The TorchScript must be written
by a torch that Nuke can read (Foundry's guide: torch 1.6 for Nuke 13, 1.12 for Nuke
14; check the guide for your version). This file was written with torch {torch}: if
your Nuke's torch is older, run `vfxmatte export --nuke` again in an environment with
a matching torch.
"""


def _knob_rows(attrs: dict[str, Any]) -> str:
    rows = []
    for name, value in attrs.items():
        kind = "Int_Knob" if isinstance(value, int) else "Float_Knob"
        rows.append(f"   - `{name}` ({kind}, default {value})")
    return "\n".join(rows)


def write_cattery(
    module: MatteExport,
    folder: str | os.PathLike[str],
    sources: dict[str, str] | None = None,
) -> tuple[Path, ExportCheck]:
    """Write ``<folder>/vfxmatte_matte.pt``, ``export.json`` and ``CATTERY.md``.

    Returns the TorchScript path and the scripted-vs-eager check.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    pt = out / f"{MODEL_ID}.pt"
    check = save_torchscript(module, pt)
    attrs = {
        "working_size": module.working_size,
        "iterations": module.iterations,
        "alpha_epsilon": module.alpha_epsilon,
    }
    info = {
        "model_id": MODEL_ID,
        "torchscript": pt.name,
        "vfxmatte": __version__,
        "torch": torch.__version__,
        "channels_in": list(CHANNELS_IN),
        "channels_out": list(CHANNELS_OUT),
        "input": "scene-linear RGB + guidance mask, 1x4xHxW",
        "output": "straight foreground RGB (scene-linear) + alpha, 1x4xHxW",
        "output_scale": 1,
        "attributes": attrs,
        "colour_network": module.has_colour,
        "sparse_refiner": module.has_refine,
        "sources": sources or {},
        "check_max_abs_diff": check.max_abs_diff,
    }
    with atomic_path(out / "export.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    guide = _GUIDE.format(
        pt=pt.name,
        colour=(" + sparse refiner" if module.has_refine else "")
        + (" + foreground colour network" if module.has_colour else ""),
        version=__version__,
        torch=torch.__version__,
        pt_path=pt.resolve(),
        cat_path=(out / f"{MODEL_ID}.cat").resolve(),
        channels_in=", ".join(CHANNELS_IN),
        channels_out=", ".join(CHANNELS_OUT),
        model_id=MODEL_ID,
        knobs=_knob_rows(attrs),
    )
    with atomic_path(out / "CATTERY.md") as tmp:
        tmp.write_text(guide)
    return pt, check
