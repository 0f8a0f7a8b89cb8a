"""The node classes of the pack, by ComfyUI node id, and their display names."""

from __future__ import annotations

from .composite_nodes import Composite, Premultiply
from .io_nodes import OpenPlate, ReadFrames, ReadMask, WriteEXRSequence
from .matte_nodes import Decontaminate, Matte, Refine
from .models import LoadColourModel, LoadMatteModel, LoadRefineModel, LoadSam2Model
from .panoptic_nodes import PanopticMatte, ReadLabelMap, WritePanoptic
from .propagate_nodes import PropagateMask
from .shot_nodes import MatteShot

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

_NODES = [
    (LoadSam2Model, "Load SAM 2 Model"),
    (LoadMatteModel, "Load Matte Model"),
    (LoadRefineModel, "Load Refine Model"),
    (LoadColourModel, "Load Colour Model"),
    (OpenPlate, "Open Plate"),
    (ReadFrames, "Read Frames"),
    (ReadMask, "Read Mask"),
    (ReadLabelMap, "Read Label Map"),
    (WriteEXRSequence, "Write EXR Sequence"),
    (PropagateMask, "Propagate Mask"),
    (Matte, "Matte"),
    (MatteShot, "Matte Shot (files)"),
    (Refine, "Refine"),
    (Decontaminate, "Decontaminate"),
    (PanopticMatte, "Panoptic Matte"),
    (WritePanoptic, "Write Panoptic EXR"),
    (Premultiply, "Premultiply"),
    (Composite, "Composite"),
]

NODE_CLASS_MAPPINGS = {f"VfxMatte.{cls.__name__}": cls for cls, _ in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    f"VfxMatte.{cls.__name__}": f"VfxMatte {title}" for cls, title in _NODES
}
