"""Real photographs for synthetic shots, training data and eyeball tests.

Shots made only of procedural textures can be separated by colour alone, and a
method tuned on them may fail on footage. This module finds real photographs that
are already on the machine and gives them to the generator as scene-linear
Rec.709 images:

* the sample photos inside installed wheels: scikit-image (``skimage/data``),
  scikit-learn (``sklearn/datasets/images``) and matplotlib
  (``matplotlib/mpl-data/sample_data``), 8-bit sRGB, linearised here;
* scene-linear EXR photographs in the folders of ``$VFXMATTE_PHOTOS`` (a
  ``os.pathsep`` list) and, in a checkout, ``../shared/real`` beside the repository
  (the OpenEXR project's sample images: Desk, MtTamWest, StillLife, Tree, Carrots).
  EXRs that carry ``chromaticities`` other than Rec.709 (Carrots is ACES AP0) are
  converted to Rec.709 primaries (Bradford-adapted to D65).

Every photo has a fixed role, so that what trains a network never scores it:

* ``train``: backgrounds and textures for training data;
* ``heldout``: backgrounds and textures of benchmark shots;
* ``eyeball``: photographs with real hair or fur (the scikit-image astronaut and
  cat), kept for looking at results with a rough mask; never trained on.

Exposure: an EXR photograph is scaled so that its log-average luminance is 0.18
(Reinhard's key, the scale bounded to [1/16, 16]); values above 1.0 are kept.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vfxmatte.errors import ConfigError, InputError, closest_hint
from vfxmatte.io.colour import srgb_to_linear

__all__ = [
    "PHOTO_ROLES",
    "Photo",
    "find_photos",
    "load_photo",
    "photo_crop",
    "photo_folders",
]

PHOTO_ROLES = ("train", "heldout", "eyeball")

# name -> role. Photos of one scene (the motorcycle stereo pair) share a role.
_ROLES = {
    # scikit-image
    "astronaut": "eyeball",
    "chelsea": "eyeball",
    "coffee": "heldout",
    "rocket": "train",
    "motorcycle_left": "train",
    "motorcycle_right": "train",
    "brick": "train",
    "grass": "train",
    "gravel": "train",
    "camera": "train",
    # scikit-learn
    "china": "heldout",
    "flower": "train",
    # matplotlib
    "grace_hopper": "heldout",
    # OpenEXR sample images (scene-linear)
    "Desk": "heldout",
    "Tree": "heldout",
    "MtTamWest": "train",
    "StillLife": "train",
    "Carrots": "train",
}
_WHEEL_FOLDERS = (
    ("skimage", "data"),
    ("sklearn", "datasets/images"),
    ("matplotlib", "mpl-data/sample_data"),
)
_PEAK = 64.0  # brightest value kept (practical lights); a half EXR holds 65504
_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr")
_REC709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
_BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)


@dataclass(frozen=True)
class Photo:
    """One photograph on disk: its name, file, role and encoding (``sRGB`` or ``linear``)."""

    name: str
    path: str
    role: str
    encoding: str


def photo_folders() -> list[Path]:
    """Folders searched for scene-linear EXR photographs, in order.

    ``$VFXMATTE_PHOTOS`` first, then ``../shared/real`` beside the repository when
    vfxmatte runs from a checkout.
    """
    folders = [Path(p) for p in os.environ.get("VFXMATTE_PHOTOS", "").split(os.pathsep) if p]
    checkout = Path(__file__).resolve().parents[3] / "shared" / "real"
    folders.append(checkout)
    return [f for f in folders if f.is_dir()]


def _wheel_folders() -> list[Path]:
    found = []
    for module, sub in _WHEEL_FOLDERS:
        spec = importlib.util.find_spec(module)  # does not import the package
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(list(spec.submodule_search_locations)[0]) / sub
        if folder.is_dir():
            found.append(folder)
    return found


def find_photos(
    role: str | None = None, *, folders: Sequence[str | os.PathLike[str]] = ()
) -> list[Photo]:
    """The known photographs present on this machine, sorted by name.

    Args:
        role: ``train``, ``heldout``, ``eyeball`` or ``None`` (all).
        folders: more folders of EXR photographs, searched before the defaults.

    Raises:
        ConfigError: an unknown role.
    """
    if role is not None and role not in PHOTO_ROLES:
        raise ConfigError(
            f"Unknown photo role '{role}'; valid: {', '.join(PHOTO_ROLES)}."
            + closest_hint(role, PHOTO_ROLES)
        )
    found: dict[str, Photo] = {}
    for folder in [Path(f) for f in folders] + photo_folders() + _wheel_folders():
        for path in sorted(folder.iterdir()):
            name = path.stem
            if path.suffix.lower() not in _SUFFIXES or name not in _ROLES or name in found:
                continue
            encoding = "linear" if path.suffix.lower() == ".exr" else "sRGB"
            found[name] = Photo(name, str(path), _ROLES[name], encoding)
    photos = sorted(found.values(), key=lambda p: p.name.lower())
    return [p for p in photos if role is None or p.role == role]


def _xyz_matrix(chroma: Sequence[float]) -> np.ndarray:
    """RGB -> XYZ matrix of primaries and white ``(rx, ry, gx, gy, bx, by, wx, wy)``."""
    xy = np.asarray(chroma, np.float64).reshape(4, 2)
    xyz = np.stack([xy[:, 0] / xy[:, 1], np.ones(4), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]], 1)
    primaries, white = xyz[:3].T, xyz[3]
    return primaries * np.linalg.solve(primaries, white)[None, :]


def to_rec709_matrix(chroma: Sequence[float]) -> np.ndarray:
    """3x3 matrix from RGB with ``chroma`` primaries/white to linear Rec.709 (D65).

    The white point is adapted with the Bradford transform.
    """
    src, dst = _xyz_matrix(chroma), _xyz_matrix(_REC709)
    w_src = _BRADFORD @ (src @ np.ones(3))
    w_dst = _BRADFORD @ (dst @ np.ones(3))
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(w_dst / w_src) @ _BRADFORD
    return np.linalg.inv(dst) @ adapt @ src


def _read_exr(path: str) -> np.ndarray:
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise InputError(f"Cannot read the photograph '{path}': {oiio.geterror()}.")
    try:
        spec = inp.spec()
        chroma = spec.getattribute("chromaticities")
        rgb = np.asarray(inp.read_image(0, 0, 0, 3, "float"), np.float32)
    finally:
        inp.close()
    rgb = rgb.reshape(spec.height, spec.width, 3)
    if chroma is not None and np.abs(np.subtract(chroma, _REC709)).max() > 0.02:
        rgb = rgb @ to_rec709_matrix(chroma).T.astype(np.float32)
    rgb = np.nan_to_num(np.maximum(rgb, 0.0), posinf=0.0)
    lum = rgb @ np.float32([0.2126, 0.7152, 0.0722])
    key = math.exp(float(np.mean(np.log(lum + 1e-4))))
    rgb *= np.float32(np.clip(0.18 / key, 1 / 16, 16))
    return np.minimum(rgb, np.float32(_PEAK), out=rgb)


@functools.lru_cache(maxsize=8)
def _load(path: str, encoding: str, max_side: int) -> np.ndarray:
    if encoding == "linear":
        rgb = _read_exr(path)
    else:
        raw = cv2.imread(path, cv2.IMREAD_COLOR)  # grey photos come back as 3 channels
        if raw is None:
            raise InputError(f"Cannot read the photograph '{path}'.")
        rgb = srgb_to_linear(raw[:, :, ::-1].astype(np.float32) / 255.0)
    h, w = rgb.shape[:2]
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    rgb.flags.writeable = False
    return rgb


def load_photo(photo: Photo | str, *, max_side: int = 0) -> np.ndarray:
    """The photograph as ``H x W x 3`` float32 scene-linear Rec.709 (read-only, cached).

    Args:
        photo: a :class:`Photo` or the name of one (``"coffee"``, ``"Desk"``).
        max_side: shrink so that the longer side is at most this (0: as stored).

    Raises:
        InputError: an unknown name or an unreadable file.
    """
    if isinstance(photo, str):
        known = {p.name: p for p in find_photos()}
        if photo not in known:
            raise InputError(
                f"No photograph named '{photo}' on this machine; found: "
                f"{', '.join(known) or 'none (pip install scikit-image)'}."
                + closest_hint(photo, known)
            )
        photo = known[photo]
    return _load(photo.path, photo.encoding, int(max_side))


def photo_crop(
    image: np.ndarray,
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    zoom: tuple[float, float] = (1.0, 1.0),
    flip: bool = True,
) -> np.ndarray:
    """A random ``height x width`` crop of ``image``, scaled to cover it.

    ``zoom`` > 1 magnifies (a smaller region of the photo fills the crop). With
    ``flip`` the crop is mirrored left-right half of the time.

    Returns:
        ``height x width x 3`` float32, a new array.
    """
    ih, iw = image.shape[:2]
    scale = max(height / ih, width / iw) * float(rng.uniform(*zoom))
    ch = max(1, min(ih, int(round(height / scale))))
    cw = max(1, min(iw, int(round(width / scale))))
    y0 = int(rng.integers(0, ih - ch + 1))
    x0 = int(rng.integers(0, iw - cw + 1))
    region = image[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
    out = cv2.resize(region, (width, height), interpolation=interp).reshape(height, width, 3)
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)
