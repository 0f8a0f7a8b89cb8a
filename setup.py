"""Packaging beyond ``pyproject.toml``: the wheel carries the starter weights.

The weights live in ``weights/`` of the repository (with their configs and training
logs); a wheel installs the weight files and configs as ``vfxmatte/_weights/``, where
``vfxmatte.weights.shipped_weights`` finds them (``$VFXMATTE_HOME/weights`` still
overrides). Everything else is declared in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["vfxmatte", "vfxmatte.*"]), "vfxmatte._weights"],
    package_dir={"vfxmatte._weights": "weights"},
    package_data={
        "vfxmatte": ["py.typed"],
        "vfxmatte._weights": ["*.safetensors", "*.yaml", "README.md"],
    },
)
