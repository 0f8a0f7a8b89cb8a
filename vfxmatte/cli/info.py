"""``vfxmatte info``: versions, devices and which optional backends work here."""

from __future__ import annotations

import argparse
import importlib
import platform
from typing import Any

from vfxmatte import __version__

# Optional dependency -> (import name, the extra that installs it, what it enables).
OPTIONAL = {
    "pymatting": ("pymatting", "classical", "closed-form alpha and multi-level foreground"),
    "sam2": ("sam2", "sam2", "SAM2 video propagation"),
    "spconv": ("spconv.pytorch", "sparse", "spconv sparse refinement (CUDA accelerator)"),
    "dask": ("distributed", "distributed", "Dask cluster executor"),
}
CORE = ("numpy", "torch", "cv2", "OpenImageIO", "av", "yaml", "tqdm")


def register(sub: Any) -> None:
    parser = sub.add_parser("info", help="versions, devices and available backends")
    parser.add_argument(
        "--colourspaces",
        action="store_true",
        help="list the colourspaces of the OCIO config (names, aliases, linear or not)",
    )
    parser.add_argument("--ocio", default="", help="OCIO config to list (default: built-in)")
    parser.set_defaults(run=run)


def _version(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
        return f"NOT AVAILABLE ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    return str(getattr(module, "__version__", getattr(module, "VERSION_STRING", "ok")))


def collect() -> dict[str, Any]:
    """What ``vfxmatte info`` prints, as data (also used by bug reports)."""
    from vfxmatte.devices import available_devices

    info: dict[str, Any] = {
        "vfxmatte": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "core": {name: _version(name) for name in CORE},
        "devices": available_devices(),
        "optional": {},
    }
    for name, (module_name, extra, what) in OPTIONAL.items():
        status = _version(module_name)
        if status.startswith("NOT AVAILABLE"):
            status += f"; pip install 'vfxmatte[{extra}]'"
        info["optional"][name] = {"status": status, "enables": what}
    return info


def _print_colourspaces(ocio: str) -> int:
    from vfxmatte.io.colour import colourspace_table

    for name, aliases, linear in colourspace_table(ocio or None):
        kind = "scene-linear" if linear else "encoded"
        print(f"{name}  [{kind}]" + (f"  aliases: {', '.join(aliases)}" if aliases else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "colourspaces", False):
        return _print_colourspaces(getattr(args, "ocio", ""))
    info = collect()
    print(f"vfxmatte {info['vfxmatte']} on Python {info['python']} ({info['platform']})")
    print("core:")
    for name, version in info["core"].items():
        print(f"  {name:<12} {version}")
    print(f"devices: {', '.join(info['devices'])}")
    print("optional backends:")
    for name, entry in info["optional"].items():
        print(f"  {name:<12} {entry['status']}  [{entry['enables']}]")
    return 0
