"""Loader nodes: pick a weights file and output the options that make the stages use it.

A loaded model is a :class:`~.common.LoadedModel`: the resolved file plus the
config overrides (``{"matte.backend": "network", "matte.network.weights": path}``)
that the stage nodes apply to their config. The network itself is built by the
stage that runs it, on ComfyUI's device (an ``auto`` device option becomes
``comfy.model_management.get_torch_device()``). Files are listed from ComfyUI's
``models/vfxmatte/<kind>`` folders (see :mod:`.host`) or ``$VFXMATTE_HOME``;
nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.errors import ConfigError, VfxMatteError, WeightsError
from vfxmatte.propagate.checkpoints import resolve_sam2_checkpoint
from vfxmatte.propagate.sam2 import Sam2PropagateConfig

from . import host
from .common import (
    COLOUR_MODEL,
    MATTE_MODEL,
    REFINE_MODEL,
    SAM2,
    ConfigNode,
    LoadedModel,
    build_host_config,
    section_values,
)
from .widgets import (
    Widget,
    config_class_at,
    config_widgets,
    file_fingerprint,
    has_option,
    widget_values,
)

__all__ = ["LoadColourModel", "LoadMatteModel", "LoadRefineModel", "LoadSam2Model"]

#: The SAM 2 checkpoint choice that means "the official file for model and version".
SAM2_AUTO = "auto (official file for model/version from VFXMATTE_HOME)"
#: The only choice shown when a model folder holds no weights.
NO_FILES = "(no weight files found)"

_SAM2_PREFIX = "propagate.sam2."


def _file_choices(kind: str, first: tuple[str, ...] = ()) -> list[str]:
    files = host.list_model_files(kind)
    return [*first, *files] if (first or files) else [NO_FILES]


def _weights_path(kind: str, name: str) -> str:
    if name == NO_FILES:
        raise WeightsError(
            f"No {kind} weights to load: put a weights file into one of "
            f"{', '.join(host.model_folders(kind))} and refresh ComfyUI."
        )
    return host.resolve_model_file(kind, name)


class LoadSam2Model(ConfigNode):
    """SAM 2 checkpoint and options for the propagate stage (``propagate.backend=sam2``)."""

    OPEN_CHOICES = ("checkpoint",)
    RETURN_TYPES = (SAM2,)
    RETURN_NAMES = ("sam2",)
    FUNCTION = "load"
    CATEGORY = "vfxmatte/loaders"
    DESCRIPTION = (
        "SAM 2 / SAM 2.1 checkpoint for mask propagation, from models/vfxmatte/sam2, models/sam2 "
        "or $VFXMATTE_HOME/sam2 (never downloaded). Connect it to Propagate Mask or Matte Shot."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(
            Sam2PropagateConfig,
            _SAM2_PREFIX,
            exclude=("checkpoint",),
            # ComfyUI's front end turns an INT called "seed" into a randomising widget.
            rename={"seed": "random_weights_seed"},
        )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {
            "checkpoint": (
                _file_choices("sam2", (SAM2_AUTO,)),
                {"tooltip": "Checkpoint file (YAML/CLI: propagate.sam2.checkpoint)."},
            )
        }

    @classmethod
    def IS_CHANGED(cls, checkpoint: str = SAM2_AUTO, **values: Any) -> str:  # noqa: N802
        try:
            if checkpoint != SAM2_AUTO:
                return file_fingerprint([host.resolve_model_file("sam2", checkpoint)])
            found = resolve_sam2_checkpoint(
                values.get("model", "tiny"), str(values.get("version", "2.1"))
            )
            return file_fingerprint([str(found.path)])
        except VfxMatteError:
            return f"missing:{checkpoint}"

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        checkpoint = values.get("checkpoint")
        if checkpoint not in (None, SAM2_AUTO) and not values.get("random_weights"):
            host.resolve_model_file("sam2", checkpoint)

    def load(self, checkpoint: str, **values: Any) -> tuple[LoadedModel]:
        """Resolve the checkpoint (WeightsError if missing) and return the sam2 options."""
        flat = widget_values(self.widgets(), values)
        random = flat.get(_SAM2_PREFIX + "random_weights", False)
        if checkpoint == SAM2_AUTO or random:
            flat[_SAM2_PREFIX + "checkpoint"] = ""
        else:
            flat[_SAM2_PREFIX + "checkpoint"] = host.resolve_model_file("sam2", checkpoint)
        config = build_host_config(PipelineConfig, flat)
        sam2: Sam2PropagateConfig = config.propagate.sam2
        resolved = resolve_sam2_checkpoint(
            sam2.model, sam2.version, sam2.checkpoint, random_weights=sam2.random_weights
        )
        found = None if resolved.path is None else str(resolved.path)
        overrides = {"propagate.backend": "sam2", **section_values(config, "propagate.sam2")}
        overrides[_SAM2_PREFIX + "checkpoint"] = found or ""
        return (LoadedModel("sam2", found, overrides),)


class _NetworkLoader(ConfigNode):
    """A learned network of one stage: ``<stage>.backend=<backend>``, ``<section>.weights``."""

    OPEN_CHOICES = ("weights",)
    KIND = ""
    STAGE = ""  # the stage section, e.g. "matte"
    BACKEND = ""  # the backend that uses the weights, e.g. "network"
    FUNCTION = "load"
    CATEGORY = "vfxmatte/loaders"

    @classmethod
    def section(cls) -> str:
        return f"{cls.STAGE}.{cls.BACKEND}"

    @classmethod
    def available(cls) -> bool:
        """Whether this vfxmatte has the backend's ``weights`` option."""
        return has_option(PipelineConfig, cls.section() + ".weights")

    @classmethod
    def require(cls) -> None:
        if not cls.available():
            raise ConfigError(
                f"This vfxmatte has no '{cls.section()}.weights' option: the {cls.STAGE} "
                f"backend '{cls.BACKEND}' is not part of the installed version. Update vfxmatte "
                "(pip install -U vfxmatte) to use these weights."
            )

    @classmethod
    def widgets(cls) -> list[Widget]:
        section = config_class_at(PipelineConfig, cls.section())
        if section is None:
            return []
        return config_widgets(section, cls.section() + ".", exclude=("weights",))

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        tooltip = f"Weights file (YAML/CLI: {cls.section()}.weights)."
        return {"weights": (_file_choices(cls.KIND), {"tooltip": tooltip})}

    @classmethod
    def IS_CHANGED(cls, weights: str = NO_FILES, **values: Any) -> str:  # noqa: N802
        try:
            return file_fingerprint([_weights_path(cls.KIND, weights)])
        except VfxMatteError:
            return f"missing:{weights}"

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        cls.require()
        if values.get("weights") is not None:
            _weights_path(cls.KIND, values["weights"])

    def load(self, weights: str, **values: Any) -> tuple[LoadedModel]:
        """Resolve the weights (WeightsError if missing) and return the stage's options."""
        self.require()
        path = _weights_path(self.KIND, weights)
        flat = {f"{self.STAGE}.backend": self.BACKEND, **widget_values(self.widgets(), values)}
        flat[self.section() + ".weights"] = path
        config = build_host_config(PipelineConfig, flat)  # the library's checks of the options
        overrides = {
            f"{self.STAGE}.backend": self.BACKEND,
            **section_values(config, self.section()),
        }
        return (LoadedModel(self.KIND, path, overrides),)


class LoadMatteModel(_NetworkLoader):
    """Weights of the learned matting network (``matte.backend=network``)."""

    KIND = "matte"
    STAGE = "matte"
    BACKEND = "network"
    RETURN_TYPES = (MATTE_MODEL,)
    RETURN_NAMES = ("matte_model",)
    DESCRIPTION = (
        "Learned matting network weights from models/vfxmatte/matte or $VFXMATTE_HOME/matte. "
        "Connect to Matte or Matte Shot."
    )


class LoadRefineModel(_NetworkLoader):
    """Weights of the sparse high-resolution refiner (``refine.backend=sparse``)."""

    KIND = "refine"
    STAGE = "refine"
    BACKEND = "sparse"
    RETURN_TYPES = (REFINE_MODEL,)
    RETURN_NAMES = ("refine_model",)
    DESCRIPTION = (
        "Sparse refiner weights from models/vfxmatte/refine or $VFXMATTE_HOME/refine. Connect "
        "to Refine, Matte or Matte Shot."
    )


class LoadColourModel(_NetworkLoader):
    """Weights of the foreground-colour network (``decontaminate.backend=network``)."""

    KIND = "colour"
    STAGE = "decontaminate"
    BACKEND = "network"
    RETURN_TYPES = (COLOUR_MODEL,)
    RETURN_NAMES = ("colour_model",)
    DESCRIPTION = (
        "Foreground-colour network weights from models/vfxmatte/colour or "
        "$VFXMATTE_HOME/colour. Connect to Decontaminate, Matte or Matte Shot."
    )
