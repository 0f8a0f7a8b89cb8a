"""Synthetic shots with exact ground truth, for demos, tests and benchmarks.

A shot is a textured scene-linear background (with a slow camera pan) and ``K``
foreground objects (blob bodies with sub-pixel hair strands, one with a
translucent veil) that move on smooth paths, overlap, and are motion blurred.
Every frame comes with its exact ground truth: alpha, straight foreground,
background, per-object visible layers (a partition of unity), hard labels and a
coarse guidance mask. The composite identity ``image = alpha * fg + (1 - alpha) *
background`` holds to float32 rounding.

>>> spec = ShotSpec(width=320, height=180, frames=3)
>>> frame = render_frame(spec, 0)
>>> frame.image.shape, frame.layers.shape
((180, 320, 3), (180, 320, 2))
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vfxmatte.config import param, param_specs, validate_value
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.atomic import atomic_path
from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.io.image import write_image
from vfxmatte.io.timecode import pack_timecode
from vfxmatte.synth.photos import PHOTO_ROLES, find_photos, load_photo, photo_crop
from vfxmatte.synth.render import (
    ObjectLooks,
    background_texture,
    build_objects,
    object_box,
    occluder_card,
    render_object,
)

__all__ = [
    "FPS",
    "ShotPaths",
    "ShotSpec",
    "SynthFrame",
    "layer_names",
    "make_shot",
    "preview_png",
    "render_frame",
    "smpte_timecode",
    "write_shot",
]

log = logging.getLogger(__name__)

#: Frame rate written into the plate's metadata.
FPS = 24
#: Where :func:`write_shot` puts each file, relative to its folder.
_LAYOUT = {
    "plate": "plate/plate.####.exr",
    "alpha": "gt/alpha.####.exr",
    "fg": "gt/fg.####.exr",
    "background": "gt/background.####.exr",
    "layers": "gt/layers.####.exr",
    "labels": "gt/labels.####.png",
    "mask": "mask.png",
    "manifest": "shot.json",
}

# One rendered object: index k, frame box (x0, y0, x1, y1), alpha h x w, premult h x w x 3.
_Rendered = tuple[int, tuple[int, int, int, int], np.ndarray, np.ndarray]


@dataclass
class ShotSpec:
    """What synthetic shot to render. Every field is validated on construction.

    Raises:
        ConfigError: a value of the wrong type or out of range, naming the field.
    """

    width: int = param(640, "Frame width in pixels.", min=16, max=8192)
    height: int = param(360, "Frame height in pixels.", min=16, max=8192)
    frames: int = param(24, "Number of frames in the shot.", min=1, max=100000)
    objects: int = param(1, "Number of foreground objects (object 1 at the back).", min=1, max=6)
    seed: int = param(0, "Random seed: the same seed renders the same shot.", min=0, max=2**31 - 1)
    supersample: int = param(4, "Render N x larger, then box-average (soft edges).", min=1, max=8)
    motion_blur_samples: int = param(
        3, "Sub-frame renders averaged over the shutter (1 = no motion blur).", min=1, max=64
    )
    shutter: float = param(0.5, "Shutter, fraction of a frame (0.5 = 180 deg).", min=0.0, max=1.0)
    hair: bool = param(True, "Give the objects hair strands thinner than a pixel.")
    translucent: bool = param(True, "Give object 1 a semi-transparent veil (alpha 0.3-0.6).")
    speed: float = param(6.0, "Peak object speed in pixels per frame.", min=0.0, max=100.0)
    pan: float = param(
        1.0, "Background pan in pixels per frame; turns back after W/2.", min=-100.0, max=100.0
    )
    mask_dilate: int = param(
        6, "Dilation in pixels of (alpha > 0.5) that makes the coarse mask.", min=0, max=256
    )
    first_frame: int = param(1001, "Frame number of the first frame.", min=0, max=10**7)
    background: str = param(
        "procedural",
        "The backdrop: procedural (gradient, rectangles, noise, lamps), or photo (a real "
        "photograph, see vfxmatte.synth.photos, panned like the procedural one).",
        choices=("procedural", "photo"),
    )
    textures: str = param(
        "procedural",
        "Object colour: procedural, or photo (crops of real photographs of the same role as "
        "the backdrop, so that colour alone does not separate object and background).",
        choices=("procedural", "photo"),
    )
    photo: str = param(
        "", "Photograph of the photo backdrop by name (e.g. coffee, Desk); empty: by seed."
    )
    photo_role: str = param(
        "heldout",
        "Which photographs photo backdrops and textures come from: heldout (benchmarks), "
        "train (training data) or eyeball.",
        choices=PHOTO_ROLES,
    )
    turn: float = param(
        0.0, "Steady rotation of every object in degrees per frame.", min=-90.0, max=90.0
    )
    occluder: bool = param(
        False,
        "A textured card in front of every object, as tall as the frame, crossing it "
        "(centred at mid-shot): it hides the objects and is not part of the matte.",
    )
    occluder_width: float = param(
        0.4, "Width of the occluder card, a fraction of the frame width.", min=0.01, max=1.0
    )
    occluder_speed: float = param(
        -8.0, "Horizontal speed of the occluder card in pixels per frame.", min=-200.0, max=200.0
    )

    def __post_init__(self) -> None:
        for spec in param_specs(type(self)):
            value = getattr(self, spec.name)
            if value is None:
                raise ConfigError(f"Option 'ShotSpec.{spec.name}' needs a value, got None.")
            setattr(self, spec.name, validate_value(spec, value, where="ShotSpec."))

    @property
    def last_frame(self) -> int:
        """Frame number of the last frame."""
        return self.first_frame + self.frames - 1


@dataclass
class SynthFrame:
    """One rendered frame and its exact ground truth (all scene-linear Rec.709).

    Attributes:
        number: frame number (``spec.first_frame + index``).
        image: ``H x W x 3`` float32, the plate: all objects composited over the
            background; values above 1.0 in highlights.
        alpha: ``H x W`` float32 in [0, 1], combined alpha ``1 - prod_k (1 - a_k)``.
        fg: ``H x W x 3`` float32, straight (unpremultiplied) combined foreground
            colour; 0 where ``alpha == 0``.
        background: ``H x W x 3`` float32, the clean plate behind the objects.
        layers: ``H x W x (K+1)`` float32 in [0, 1], visible coverage, background
            first then objects back to front; sums to 1 at every pixel.
        labels: ``H x W`` int32, argmax of ``layers``: 0 background, ``k+1`` object ``k``.
        mask: ``H x W`` bool, ``alpha > 0.5`` dilated by ``spec.mask_dilate`` px.
    """

    number: int
    image: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    background: np.ndarray
    layers: np.ndarray
    labels: np.ndarray
    mask: np.ndarray


@dataclass
class ShotPaths:
    """Where :func:`write_shot` put a shot: folder, ``####`` patterns, mask and manifest."""

    root: str
    plate: str
    alpha: str
    fg: str
    background: str
    layers: str
    labels: str
    mask: str
    manifest: str

    def frame(self, pattern: str, number: int) -> str:
        """``pattern`` (one of the fields) with ``####`` replaced by ``number``."""
        return pattern.replace("####", f"{number:04d}")


def layer_names(spec: ShotSpec) -> tuple[str, ...]:
    """Names of the layers: ``("background", "object1", ..., "objectK")``."""
    return ("background",) + tuple(f"object{k + 1}" for k in range(spec.objects))


def _shutter_times(spec: ShotSpec, index: int) -> np.ndarray:
    """Sub-frame times (frame indices) of the open shutter, centred on ``index``."""
    n = spec.motion_blur_samples
    if n == 1 or spec.shutter == 0.0:
        return np.array([float(index)])
    return index + spec.shutter * (np.arange(n) / (n - 1) - 0.5)


def _background(spec: ShotSpec, index: int) -> np.ndarray:
    """The panned background of frame ``index``: ``H x W x 3`` float32 (a copy).

    The backdrop is at most half a frame wider than the frame; a pan that would
    run off it turns back (ping-pong), so long shots cost no more memory.
    """
    room = min(spec.width // 2, int(np.ceil(abs(spec.pan) * (spec.frames - 1))))
    tex = _backdrop(spec, spec.width + room + 1)
    offset = abs(spec.pan) * index % (2 * room) if room else 0.0
    offset = offset if offset <= room else 2 * room - offset
    if spec.pan < 0:
        offset = room - offset
    whole = int(np.floor(offset))
    if offset == whole:
        return tex[:, whole : whole + spec.width].copy()
    m = np.array([[1.0, 0.0, offset], [0.0, 1.0, 0.0]])
    return cv2.warpAffine(
        tex, m, (spec.width, spec.height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )


def _backdrop(spec: ShotSpec, width: int) -> np.ndarray:
    """The static backdrop, ``spec.height x width x 3`` float32 scene-linear (read-only)."""
    if spec.background == "procedural":
        return background_texture(width, spec.height, spec.seed)
    return _photo_backdrop(width, spec.height, spec.seed, spec.photo, spec.photo_role)


@functools.lru_cache(maxsize=2)
def _photo_backdrop(width: int, height: int, seed: int, name: str, role: str) -> np.ndarray:
    photos = find_photos(role)
    if name:
        photo = load_photo(name)
    elif photos:
        rng = np.random.default_rng([seed, 7002])
        photo = load_photo(photos[int(rng.integers(len(photos)))])
    else:
        raise InputError(
            f"No '{role}' photographs on this machine for a photo backdrop; pip install "
            "scikit-image (or set VFXMATTE_PHOTOS to a folder of EXRs)."
        )
    rng = np.random.default_rng([seed, 7003])
    out = photo_crop(photo, height, width, rng, zoom=(1.0, 1.25), flip=True)
    out.flags.writeable = False
    return out


def _looks(spec: ShotSpec) -> ObjectLooks:
    return ObjectLooks(textures=spec.textures, photo_role=spec.photo_role, turn=spec.turn)


def _render_objects(spec: ShotSpec, index: int) -> list[_Rendered]:
    """``(k, box, alpha, premult)`` of every object that touches the frame, back to front."""
    models = build_objects(
        spec.width, spec.height, spec.frames, spec.objects, spec.seed, spec.speed, _looks(spec)
    )
    times = _shutter_times(spec, index)
    kw = {"hair": spec.hair, "veil": spec.translucent}
    out = []
    for k, obj in enumerate(models):
        box = object_box(obj, times, spec.width, spec.height, **kw)
        if box is not None:
            alpha, premult = render_object(obj, times, box, spec.supersample, **kw)
            out.append((k, box, alpha, premult))
    return out


def render_frame(spec: ShotSpec, index: int) -> SynthFrame:
    """Render frame ``index`` (0-based) of the shot and its ground truth.

    Objects are composited back to front with the over operator in float64 inside
    the box they cover; outside it the frame is the background.

    Returns:
        The frame and its ground truth, see :class:`SynthFrame`.

    Raises:
        InputError: ``index`` outside ``[0, spec.frames)``.
    """
    if not 0 <= index < spec.frames:
        raise InputError(
            f"Frame index {index} is outside the shot (0 to {spec.frames - 1}); "
            "pass a 0-based index, not a frame number."
        )
    h, w, k_count = spec.height, spec.width, spec.objects
    background = _background(spec, index)
    image = background.copy()
    alpha = np.zeros((h, w), np.float32)
    fg = np.zeros((h, w, 3), np.float32)
    layers = np.zeros((h, w, k_count + 1), np.float32)
    layers[:, :, 0] = 1.0
    labels = np.zeros((h, w), np.int32)
    rendered = _render_objects(spec, index)
    if rendered:
        x0 = min(r[1][0] for r in rendered)
        y0 = min(r[1][1] for r in rendered)
        x1 = max(r[1][2] for r in rendered)
        y1 = max(r[1][3] for r in rendered)
        region = np.s_[y0:y1, x0:x1]
        a, f, img, lay = _composite(rendered, background[region], (x0, y0), k_count)
        alpha[region], fg[region], image[region], layers[region] = a, f, img, lay
        labels[region] = np.argmax(lay, axis=-1)
    if spec.occluder:
        _occlude(spec, index, image, alpha, fg, background, layers)
        labels = np.argmax(layers, axis=-1).astype(np.int32)
    return SynthFrame(
        number=spec.first_frame + index,
        image=image,
        alpha=alpha,
        fg=fg,
        background=background,
        layers=layers,
        labels=labels,
        mask=_coarse_mask(alpha, spec.mask_dilate),
    )


def _occlude(
    spec: ShotSpec,
    index: int,
    image: np.ndarray,
    alpha: np.ndarray,
    fg: np.ndarray,
    background: np.ndarray,
    layers: np.ndarray,
) -> None:
    """Put the occluder card in front of the frame's objects, in place.

    The card (coverage ``c``, straight colour ``K``) goes over the composite:
    ``image' = c K + (1 - c) image``. The objects' alpha becomes ``alpha (1 - c)``
    and the card joins the background, ``B' = (c K + (1 - c)(1 - alpha) B) / (1 -
    alpha')``, so that ``image' = alpha' fg + (1 - alpha') B'`` still holds;
    the object layers are scaled by ``1 - c`` and the background layer takes the rest.
    """
    cover, colour = occluder_card(
        spec.width,
        spec.height,
        _shutter_times(spec, index),
        centre=_card_centre(spec),
        card_width=spec.occluder_width * spec.width,
        speed=spec.occluder_speed,
        texture=_card_texture(spec),
    )
    c64 = cover.astype(np.float64)[:, :, None]
    a64 = alpha.astype(np.float64)[:, :, None]
    new_alpha = (alpha * (1.0 - cover)).astype(np.float32)
    n64 = new_alpha.astype(np.float64)[:, :, None]
    card = c64 * colour
    behind = (1.0 - c64) * (1.0 - a64) * background
    new_bg = background.astype(np.float64)
    np.divide(card + behind, 1.0 - n64, out=new_bg, where=(1.0 - n64) > 0)
    image[:] = (n64 * fg + (1.0 - n64) * new_bg).astype(np.float32)
    background[:] = new_bg.astype(np.float32)
    alpha[:] = new_alpha
    fg[new_alpha == 0] = 0.0
    layers[:, :, 1:] *= (1.0 - cover)[:, :, None]
    layers[:, :, 0] = 1.0 - layers[:, :, 1:].sum(axis=-1)


def _card_centre(spec: ShotSpec) -> float:
    """x of the card's centre at frame index 0: it is at the frame's centre at mid-shot."""
    return spec.width / 2 - spec.occluder_speed * (spec.frames - 1) / 2


@functools.lru_cache(maxsize=2)
def _card_texture_cached(spec_key: tuple) -> np.ndarray:
    spec = ShotSpec(**dict(spec_key))
    w = int(np.ceil(spec.occluder_width * spec.width)) + 4
    if spec.background == "photo":
        tex = _photo_backdrop(w, spec.height, spec.seed + 9001, "", spec.photo_role)
    else:
        tex = background_texture(w, spec.height, spec.seed + 9001)
    out = np.ascontiguousarray(tex * 0.8 + 0.05, dtype=np.float32)
    out.flags.writeable = False
    return out


def _card_texture(spec: ShotSpec) -> np.ndarray:
    return _card_texture_cached(tuple(sorted(dataclasses.asdict(spec).items())))


def _composite(
    rendered: list[_Rendered],
    background: np.ndarray,
    origin: tuple[int, int],
    k_count: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Over-composite the objects on ``background`` (a region of the frame).

    Front to back: the transmittance ``T`` in front of object ``k`` gives its
    visible layer ``a_k T`` and its contribution ``T p_k`` to the premultiplied
    foreground ``C``. Then ``alpha = 1 - T_final``, ``fg = C / alpha`` and
    ``image = C + (1 - alpha) B``, with ``alpha`` rounded to float32 *before* it
    is used so that the identity holds for the stored arrays.

    Returns:
        ``(alpha, fg, image, layers)`` of the region, float32.
    """
    rh, rw = background.shape[:2]
    trans = np.ones((rh, rw), np.float64)
    premult = np.zeros((rh, rw, 3), np.float64)
    layers = np.zeros((rh, rw, k_count + 1), np.float32)
    for k, (bx0, by0, bx1, by1), a, p in reversed(rendered):
        sl = np.s_[by0 - origin[1] : by1 - origin[1], bx0 - origin[0] : bx1 - origin[0]]
        t = trans[sl]
        layers[sl + (k + 1,)] = a * t
        premult[sl] += t[:, :, None] * p
        trans[sl] = t * (1.0 - a)
    layers[:, :, 0] = trans
    alpha = (1.0 - trans).astype(np.float32)
    alpha64 = alpha.astype(np.float64)[:, :, None]
    fg = np.zeros_like(premult)
    np.divide(premult, alpha64, out=fg, where=alpha64 > 0)
    image = premult + (1.0 - alpha64) * background
    return alpha, fg.astype(np.float32), image.astype(np.float32), layers


def _coarse_mask(alpha: np.ndarray, radius: int) -> np.ndarray:
    """``alpha > 0.5`` dilated by a disc of ``radius`` px: ``H x W`` bool."""
    core = (alpha > 0.5).astype(np.uint8)
    if radius > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        core = cv2.dilate(core, disc)
    return core.astype(bool)


def make_shot(spec: ShotSpec) -> Iterator[SynthFrame]:
    """Yield the frames of the shot in order, one at a time (never the whole shot)."""
    for index in range(spec.frames):
        yield render_frame(spec, index)


def smpte_timecode(number: int, fps: int = FPS) -> tuple[int, int]:
    """SMPTE timecode of frame ``number`` (non-drop) as OpenEXR packs it.

    Returns:
        ``(time_and_flags, user_data)``: BCD hours/minutes/seconds/frames in the
        bit layout of ``Imf::TimeCode`` (the value of ``smpte:TimeCode``).
    """
    frame, seconds = number % fps, number // fps
    return pack_timecode((seconds // 3600) % 24, (seconds // 60) % 60, seconds % 60, frame)


def _write_png(path: str, pixels: np.ndarray) -> None:
    """Write a uint8/uint16 single-channel PNG atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), pixels):
            raise InputError(f"Writing '{path}' failed; check that the folder is writable.")


def _shot_paths(outdir: Path) -> ShotPaths:
    return ShotPaths(root=str(outdir), **{k: str(outdir / v) for k, v in _LAYOUT.items()})


def _write_frame(paths: ShotPaths, spec: ShotSpec, frame: SynthFrame, dtype: str) -> None:
    n = frame.number
    rgb = ("R", "G", "B")
    plate_meta = {"framesPerSecond": (FPS, 1), "smpte:TimeCode": smpte_timecode(n)}
    write_image(paths.frame(paths.plate, n), frame.image, rgb, metadata=plate_meta, dtype=dtype)
    write_image(paths.frame(paths.alpha, n), frame.alpha, ("A",), dtype=dtype)
    write_image(paths.frame(paths.fg, n), frame.fg, rgb, dtype=dtype)
    write_image(paths.frame(paths.background, n), frame.background, rgb, dtype=dtype)
    layer_channels = [f"{name}.A" for name in layer_names(spec)]
    write_image(paths.frame(paths.layers, n), frame.layers, layer_channels, dtype=dtype)
    _write_png(paths.frame(paths.labels, n), frame.labels.astype(np.uint16))
    if n == spec.first_frame:
        _write_png(paths.mask, frame.mask.astype(np.uint8) * 255)


def write_shot(outdir: str | os.PathLike[str], spec: ShotSpec, *, dtype: str = "half") -> ShotPaths:
    """Render the shot and write it with its ground truth under ``outdir``.

    Layout (``####`` = 4-digit frame number)::

        plate/plate.####.exr        R,G,B scene-linear (framesPerSecond, smpte:TimeCode)
        gt/alpha.####.exr           A
        gt/fg.####.exr              R,G,B straight foreground
        gt/background.####.exr      R,G,B
        gt/layers.####.exr          background.A, object1.A, ... (sum to 1)
        gt/labels.####.png          16-bit label ids (0 background, k object k)
        mask.png                    8-bit 0/255 coarse mask of the first frame
        shot.json                   the spec, the patterns and the frame range

    Every file is written atomically; ``shot.json`` is written last, so its
    presence means the shot is complete.

    Args:
        dtype: EXR pixel type, ``half`` or ``float``.

    Raises:
        ConfigError: unknown ``dtype``.
    """
    if dtype not in ("half", "float"):
        raise ConfigError(f"write_shot dtype must be 'half' or 'float', got {dtype!r}.")
    paths = _shot_paths(Path(outdir))
    for frame in make_shot(spec):
        _write_frame(paths, spec, frame, dtype)
        log.debug("Wrote synthetic frame %d to %s.", frame.number, paths.root)
    manifest = {
        "spec": dataclasses.asdict(spec),
        "first_frame": spec.first_frame,
        "last_frame": spec.last_frame,
        "fps": FPS,
        "colourspace": "lin_rec709",
        "mask_frame": spec.first_frame,
        "layers": list(layer_names(spec)),
        "paths": dict(_LAYOUT),
    }
    with atomic_path(paths.manifest) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("Wrote a %d-frame synthetic shot to %s.", spec.frames, paths.root)
    return paths


def preview_png(frame: SynthFrame) -> np.ndarray:
    """A picture for the README: sRGB plate | alpha | mask, side by side.

    Returns:
        ``H x 3W x 3`` uint8 RGB (the plate through the sRGB curve, clipped).
    """
    plate = np.clip(linear_to_srgb(frame.image), 0.0, 1.0)
    alpha = np.repeat(frame.alpha[:, :, None], 3, axis=2)
    mask = np.repeat(frame.mask[:, :, None].astype(np.float32), 3, axis=2)
    strip = np.concatenate([plate, alpha, mask], axis=1)
    return np.round(strip * 255.0).astype(np.uint8)
