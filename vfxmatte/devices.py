"""One resolver for compute devices: ``auto | cpu | cuda[:N] | mps``."""

from __future__ import annotations

from typing import Any

from vfxmatte.errors import DeviceError

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[str]:
    """Device names usable here, best first (``cuda:0`` ..., ``mps``, ``cpu``)."""
    import torch

    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return [*names, "cpu"]


def resolve_device(name: str = "auto") -> Any:
    """Turn a device name into a ``torch.device``.

    ``auto`` picks CUDA, then MPS, then CPU. Nothing in vfxmatte calls
    ``.cuda()``; models and tensors go ``.to(resolve_device(...))``.

    Raises:
        DeviceError: for a device that is not available, listing those that are.
    """
    import torch

    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DeviceError(
            f"Unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps."
        ) from None
    if device.type == "cuda":
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"Device '{name}' is not available here (available: {', '.join(available)}); "
                "use --device auto or cpu."
            )
        return torch.device("cuda", index)
    if device.type == "mps" and "mps" not in available:
        raise DeviceError(
            f"Device 'mps' is not available here (available: {', '.join(available)}); "
            "use --device auto or cpu."
        )
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unsupported device '{name}'; use auto, cpu, cuda, cuda:N or mps.")
    return device
