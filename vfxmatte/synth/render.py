"""Procedural pieces of a synthetic shot: textures, the background and one object.

Everything here is deterministic given its arguments (the random generators are
seeded from the shot's seed) and uses numpy and OpenCV only.

Coordinates are continuous frame pixels: pixel ``(i, j)`` covers ``[j, j+1) x
[i, i+1)`` and its centre lies at ``(j + 0.5, i + 0.5)``; ``y`` points down.
Colours are scene-linear Rec.709 (``lin_rec709``) and may exceed 1.0.

An object's alpha is drawn at ``supersample`` times the output resolution with
anti-aliased OpenCV primitives and box-averaged down, so edges and hair strands
thinner than a pixel get fractional coverage. Motion blur averages the alpha and
the *premultiplied* colour of sub-frame renders over the shutter interval.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.synth.photos import find_photos, load_photo, photo_crop

__all__ = [
    "ObjectLooks",
    "ObjectModel",
    "background_texture",
    "build_objects",
    "fractal_noise",
    "object_box",
    "occluder_card",
    "render_object",
]

_SHIFT = 4  # fractional bits of OpenCV drawing coordinates (1/16 px)
_OUTLINE_POINTS = 192
_VEIL_POINTS = 96
_STRAND_POINTS = 8
_SWAY_OMEGA = 0.35  # rad per frame of the hair sway
_VEIL_LEVELS = (0.3, 0.6)  # opacity range of the translucent veil, left to right


def fractal_noise(
    rng: np.random.Generator, height: int, width: int, channels: int, *, cell: int, octaves: int
) -> np.ndarray:
    """Smooth value noise rescaled to [0, 1].

    Octaves of random grids upsampled bicubically; the coarsest octave has cells
    of ``cell`` pixels, each next one half as large and half as strong. The sum is
    built at a reduced resolution (a quarter of the finest cell per sample) and
    upsampled once, so the cost barely depends on the frame size.

    Returns:
        ``height x width x channels`` float32 in [0, 1].
    """
    step = max(1, (cell >> (octaves - 1)) // 4)
    lh, lw = -(-height // step), -(-width // step)
    out = np.zeros((lh, lw, channels), np.float32)
    weight, c = 1.0, cell / step
    for _ in range(octaves):
        ci = max(2, int(round(c)))
        gh, gw = lh // ci + 4, lw // ci + 4
        grid = rng.random((gh, gw, channels), dtype=np.float32)
        up = cv2.resize(grid, (gw * ci, gh * ci), interpolation=cv2.INTER_CUBIC)
        up = up.reshape(gh * ci, gw * ci, channels)
        oy, ox = (int(v) for v in rng.integers(ci, 2 * ci, 2))
        out += weight * up[oy : oy + lh, ox : ox + lw]
        weight *= 0.5
        c /= 2
    lo, hi = float(out.min()), float(out.max())
    out = (out - lo) / max(hi - lo, 1e-6)
    if step > 1:
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_CUBIC)
        out = out.reshape(height, width, channels)
        np.clip(out, 0.0, 1.0, out=out)  # bicubic overshoot
    return out


def _gaussian_spot(img: np.ndarray, cx: float, cy: float, sigma: float, colour: np.ndarray) -> None:
    """Add ``colour * exp(-r^2 / 2 sigma^2)`` to ``img`` (H x W x 3) in place, in a window."""
    h, w = img.shape[:2]
    r = int(math.ceil(3 * sigma))
    x0, x1 = max(0, int(cx) - r), min(w, int(cx) + r + 1)
    y0, y1 = max(0, int(cy) - r), min(h, int(cy) + r + 1)
    if x1 <= x0 or y1 <= y0:
        return
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) ** 2
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) ** 2
    g = np.exp(-(ys[:, None] + xs[None, :]) / (2 * sigma * sigma))
    img[y0:y1, x0:x1] += g[:, :, None] * colour.astype(np.float32)


@functools.lru_cache(maxsize=2)
def background_texture(width: int, height: int, seed: int) -> np.ndarray:
    """A static scene-linear backdrop, wider than the frame so that the camera can pan.

    A sky-to-ground gradient, rectangles and poles (structure), two scales of
    noise (shading and colour variation) and a few highlights (lamps) above 1.0.
    Cached: the shot re-uses it for every frame. Treat the result as read-only.

    Returns:
        ``height x width x 3`` float32, scene-linear, in [0.02, 1.5].
    """
    rng = np.random.default_rng([seed, 7001])
    unit = float(height)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top = rng.uniform(0.25, 0.6, 3).astype(np.float32) * np.float32([0.8, 0.9, 1.1])
    bottom = rng.uniform(0.05, 0.25, 3).astype(np.float32)
    albedo = np.empty((height, width, 3), np.float32)
    albedo[:] = top + (bottom - top) * ramp
    for _ in range(int(6 + 8 * width / height)):
        x0 = rng.uniform(-0.1, 1.0) * width
        y0 = rng.uniform(0.1, 0.8) * height
        x1 = x0 + rng.uniform(0.05, 0.35) * unit
        y1 = y0 + rng.uniform(0.1, 0.6) * unit
        colour = tuple(float(v) for v in rng.uniform(0.03, 0.6, 3))
        cv2.rectangle(albedo, (int(x0), int(y0)), (int(x1), int(y1)), colour, -1)
    for _ in range(int(2 + 2 * width / height)):
        x = int(rng.uniform(0, width))
        thickness = max(1, int(rng.uniform(0.004, 0.015) * unit))
        colour = tuple(float(v) for v in rng.uniform(0.02, 0.1, 3))
        cv2.line(albedo, (x, int(0.15 * height)), (x, height), colour, thickness)
    cell = max(4, int(unit / 3))
    shading = 0.55 + 0.9 * fractal_noise(rng, height, width, 1, cell=cell, octaves=4)
    tint = 0.8 + 0.4 * fractal_noise(rng, height, width, 3, cell=max(4, cell // 4), octaves=2)
    albedo *= shading
    albedo *= tint
    img = cv2.GaussianBlur(albedo, (0, 0), 0.7)
    for _ in range(int(2 + 2 * width / height)):
        colour = rng.uniform(0.8, 1.4) * rng.uniform(0.8, 1.0, 3)
        sigma = rng.uniform(0.01, 0.035) * unit
        _gaussian_spot(img, rng.uniform(0, width), rng.uniform(0.05, 0.7) * height, sigma, colour)
    return np.clip(img, 0.02, 1.5, out=img)


@dataclass(frozen=True, eq=False)
class ObjectModel:
    """One foreground object: body shape, path, hair, veil and colour. Lengths in output px.

    The body is a star-shaped blob ``r(theta) = radius * (1 + sum a cos(f theta + p))``
    stretched vertically by ``aspect``; hair strands grow from its upper arc; the
    optional veil is an ellipse below it whose opacity goes from 0.3 to 0.6.
    """

    radius: float
    aspect: float
    harmonics: np.ndarray  # (n, 3): relative amplitude, integer frequency, phase
    anchor: tuple[float, float]  # centre of the horizontal swing, frame px
    swing: tuple[float, float, float]  # amplitude (px, signed), omega (rad/frame), phase
    bob: tuple[float, float, float]  # vertical amplitude (px), omega, phase
    spin: tuple[float, float, float]  # rotation amplitude (rad), omega, phase
    strands: np.ndarray  # (S, 5): root angle, length px, curl rad, sway rad, sway phase
    has_veil: bool
    veil_colour: np.ndarray  # (3,) float32 linear
    texture: np.ndarray  # (T, T, 3) float32 straight linear colour, object centre at T/2
    extent: float  # radius of a disc holding the whole object
    turn: float = 0.0  # steady rotation, rad per frame, on top of the spin

    def centre(self, t: float) -> tuple[float, float]:
        """Centre of the body at (fractional) frame index ``t``, frame px."""
        x = self.anchor[0] + self.swing[0] * math.sin(self.swing[1] * t + self.swing[2])
        y = self.anchor[1] + self.bob[0] * math.sin(self.bob[1] * t + self.bob[2])
        return x, y

    def angle(self, t: float) -> float:
        """Rotation of the object at frame index ``t``, radians."""
        return self.spin[0] * math.sin(self.spin[1] * t + self.spin[2]) + self.turn * t

    def _body_local(self, theta: np.ndarray) -> np.ndarray:
        r = np.full_like(theta, self.radius)
        for amp, freq, phase in self.harmonics:
            r += self.radius * amp * np.cos(freq * theta + phase)
        return np.stack([r * np.cos(theta), self.aspect * r * np.sin(theta)], axis=-1)

    def _to_frame(self, pts: np.ndarray, t: float) -> np.ndarray:
        a = self.angle(t)
        c, s = math.cos(a), math.sin(a)
        cx, cy = self.centre(t)
        x, y = pts[..., 0], pts[..., 1]
        return np.stack([c * x - s * y + cx, s * x + c * y + cy], axis=-1)

    def outline(self, t: float) -> np.ndarray:
        """Body polygon at time ``t``: ``(N, 2)`` float64 frame px."""
        theta = np.linspace(0.0, 2 * math.pi, _OUTLINE_POINTS, endpoint=False)
        return self._to_frame(self._body_local(theta), t)

    def hair(self, t: float) -> np.ndarray:
        """Hair strands at time ``t``: ``(S, P, 2)`` float64 frame px, root first."""
        root_angle, length, curl, sway, phase = (self.strands[:, i : i + 1] for i in range(5))
        roots = 0.96 * self._body_local(root_angle[:, 0])  # (S, 2), just inside the edge
        heading = np.arctan2(roots[:, 1:2], roots[:, 0:1])  # outward
        u = np.linspace(0.0, 1.0, _STRAND_POINTS)[None, :]  # (1, P)
        bend = heading + (curl + sway * np.sin(_SWAY_OMEGA * t + phase)) * u
        step = length / (_STRAND_POINTS - 1)
        dx = np.cumsum(np.cos(bend) * step, axis=1) - np.cos(bend[:, :1]) * step
        dy = np.cumsum(np.sin(bend) * step, axis=1) - np.sin(bend[:, :1]) * step
        local = np.stack([roots[:, None, 0] + dx, roots[:, None, 1] + dy], axis=-1)
        return self._to_frame(local, t)

    def veil(self, t: float) -> np.ndarray:
        """Veil polygon at time ``t``: ``(M, 2)`` float64 frame px."""
        theta = np.linspace(0.0, 2 * math.pi, _VEIL_POINTS, endpoint=False)
        x = 1.2 * self.radius * np.cos(theta)
        y = 0.75 * self.aspect * self.radius + 0.55 * self.radius * np.sin(theta)
        return self._to_frame(np.stack([x, y], axis=-1), t)


def _random_colour(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A linear RGB colour of random hue and saturation whose mean lies in [lo, hi]."""
    hue = rng.uniform(0.0, 1.0) + np.array([0.0, 1 / 3, 2 / 3])
    pure = 0.5 + 0.5 * np.cos(2 * math.pi * hue)
    saturation = rng.uniform(0.4, 0.9)
    colour = (1 - saturation) + saturation * pure
    return (rng.uniform(lo, hi) * colour / colour.mean()).astype(np.float32)


def _object_texture(
    rng: np.random.Generator,
    radius: float,
    aspect: float,
    extent: float,
    photo: np.ndarray | None = None,
) -> np.ndarray:
    """Straight colour of an object in its own frame: ``T x T x 3`` float32, linear.

    Procedural (a body colour, a hair colour, fractal shading and two speculars
    above 1.0), or with ``photo`` (scene-linear ``H x W x 3``) a random crop of that
    photograph, the hair ring darker or lighter than the body by a random factor.
    """
    size = 2 * int(math.ceil(extent)) + 4
    coords = np.arange(size, dtype=np.float32) + 0.5 - size / 2
    rn = np.sqrt(coords[None, :] ** 2 + (coords[:, None] / aspect) ** 2) / radius
    mix = np.clip((rn - 0.85) / 0.25, 0.0, 1.0)[:, :, None]
    if photo is not None:
        body = photo_crop(photo, size, size, rng, zoom=(1.0, 3.0))
        hair_gain = np.float32(math.exp(rng.normal(0.0, 0.6)))
        return np.ascontiguousarray(body * (1 - mix + hair_gain * mix), dtype=np.float32)
    body_colour = _random_colour(rng, 0.15, 0.7)
    hair_colour = _random_colour(rng, 0.05, 0.4)
    cell = max(4, int(radius / 2))
    shade = 0.45 + 0.9 * fractal_noise(rng, size, size, 1, cell=cell, octaves=3)
    tex = (body_colour * (1 - mix) + hair_colour * mix) * shade
    for _ in range(2):  # speculars above 1.0
        sx, sy = rng.uniform(-0.5, 0.5) * radius, rng.uniform(-0.6, 0.3) * radius * aspect
        colour = rng.uniform(0.9, 1.6) * rng.uniform(0.85, 1.0, 3)
        _gaussian_spot(tex, size / 2 + sx, size / 2 + sy, 0.08 * radius, colour)
    return np.ascontiguousarray(tex, dtype=np.float32)


def _one_object(
    k: int,
    width: int,
    height: int,
    frames: int,
    count: int,
    seed: int,
    speed: float,
    looks: ObjectLooks,
) -> ObjectModel:
    rng = np.random.default_rng([seed, 101, k])
    unit = float(min(width, height))
    radius = unit * rng.uniform(0.13, 0.19) * (1.0 if count <= 2 else 0.8)
    aspect = rng.uniform(1.1, 1.45)
    harmonics = np.stack(
        [rng.uniform(0.02, 0.09, 3), np.array([2.0, 3.0, 5.0]), rng.uniform(0, 2 * math.pi, 3)],
        axis=-1,
    )
    # Objects swing left/right in alternate directions and cross near mid-shot.
    amplitude = rng.uniform(0.15, 0.28) * width * (1 if k % 2 == 0 else -1)
    omega = speed / abs(amplitude)
    phase = -omega * (frames - 1) / 2 + rng.uniform(-0.35, 0.35)
    anchor = (width * (0.5 + rng.uniform(-0.06, 0.06)), height * (0.5 + rng.uniform(-0.06, 0.06)))
    bob = (0.04 * height, rng.uniform(0.1, 0.3), rng.uniform(0, 2 * math.pi))
    spin = (rng.uniform(0.03, 0.12), rng.uniform(0.1, 0.25), rng.uniform(0, 2 * math.pi))
    n = int(rng.integers(45, 75))
    # Per strand: root angle (upper arc), length, curl, sway, sway phase.
    lo = [-math.pi / 2 - 1.1, 0.2 * radius, -0.6, 0.05, 0.0]
    hi = [-math.pi / 2 + 1.1, 0.5 * radius, 0.6, 0.3, 2 * math.pi]
    strands = rng.uniform(lo, hi, (n, 5))
    reach = aspect * (1 + harmonics[:, 0].sum())
    extent = radius * max(reach + 0.5, 0.75 * aspect + 1.2) + 2
    return ObjectModel(
        radius=radius,
        aspect=aspect,
        harmonics=harmonics,
        anchor=anchor,
        swing=(amplitude, omega, phase),
        bob=bob,
        spin=spin,
        strands=strands,
        has_veil=k == 0,
        veil_colour=(rng.uniform(0.5, 1.0) * np.float32([0.45, 0.6, 0.85])).astype(np.float32),
        texture=_object_texture(rng, radius, aspect, extent, looks.photo(rng)),
        extent=extent,
        turn=math.radians(looks.turn),
    )


@dataclass(frozen=True)
class ObjectLooks:
    """How objects look and turn beyond their shape and path.

    ``textures``: ``procedural`` or ``photo`` (crops of the photographs of
    ``photo_role``, see :mod:`vfxmatte.synth.photos`); ``turn``: steady rotation
    in degrees per frame.
    """

    textures: str = "procedural"
    photo_role: str = "heldout"
    turn: float = 0.0

    def photo(self, rng: np.random.Generator) -> np.ndarray | None:
        """A photograph for one object's texture (drawn with ``rng``), or ``None``."""
        if self.textures != "photo":
            return None
        photos = find_photos(self.photo_role)
        if not photos:
            raise InputError(
                f"No '{self.photo_role}' photographs on this machine for photo textures; "
                "pip install scikit-image (or set VFXMATTE_PHOTOS to a folder of EXRs)."
            )
        return load_photo(photos[int(rng.integers(len(photos)))], max_side=1024)


@functools.lru_cache(maxsize=2)
def build_objects(
    width: int,
    height: int,
    frames: int,
    count: int,
    seed: int,
    speed: float,
    looks: ObjectLooks = ObjectLooks(),
) -> tuple[ObjectModel, ...]:
    """The ``count`` objects of a shot, back to front. Cached; treat as read-only.

    Object ``k`` depends on ``(seed, k)``, the frame size, the speed and ``looks``;
    its size also on whether there are more than two objects. Object 0 carries the
    veil.
    """
    return tuple(
        _one_object(k, width, height, frames, count, seed, speed, looks) for k in range(count)
    )


def _geometry(obj: ObjectModel, t: float, hair: bool, veil: bool) -> list[np.ndarray]:
    parts = [obj.outline(t)]
    if hair:
        parts.append(obj.hair(t).reshape(-1, 2))
    if veil and obj.has_veil:
        parts.append(obj.veil(t))
    return parts


def object_box(
    obj: ObjectModel, times: np.ndarray, width: int, height: int, *, hair: bool, veil: bool
) -> tuple[int, int, int, int] | None:
    """Integer frame box ``(x0, y0, x1, y1)`` holding the object over ``times``, clipped.

    ``None`` when the object is outside the frame at every time.
    """
    pts = np.concatenate([p for t in times for p in _geometry(obj, float(t), hair, veil)])
    x0 = max(0, int(math.floor(pts[:, 0].min())) - 2)
    y0 = max(0, int(math.floor(pts[:, 1].min())) - 2)
    x1 = min(width, int(math.ceil(pts[:, 0].max())) + 2)
    y1 = min(height, int(math.ceil(pts[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _canvas_points(pts: np.ndarray, x0: int, y0: int, s: int) -> np.ndarray:
    """Frame px -> fixed-point OpenCV coordinates of the supersampled canvas."""
    scaled = (pts - np.array([x0, y0], dtype=np.float64)) * s - 0.5  # pixel centres at ints
    return np.round(scaled * (1 << _SHIFT)).astype(np.int32)


def _coverage(canvas: np.ndarray, w: int, h: int, s: int) -> np.ndarray:
    """Box-average a ``(h*s) x (w*s)`` uint8 canvas to ``h x w`` float32 coverage in [0, 1]."""
    if s == 1:
        return canvas.astype(np.float32) / 255.0
    mean = cv2.resize(canvas.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    # Round to the exact integer box sum so that full coverage is exactly 1.0.
    return np.rint(mean * (s * s)) / np.float32(255 * s * s)


def _sample_texture(obj: ObjectModel, t: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """The object's straight colour over ``box`` at time ``t``: ``h x w x 3`` float32."""
    x0, y0, x1, y1 = box
    a = obj.angle(t)
    c, s = math.cos(a), math.sin(a)
    cx, cy = obj.centre(t)
    half = obj.texture.shape[0] / 2 - 0.5
    # Inverse map: frame pixel centre -> object frame (rotate by -a) -> texture index.
    ox, oy = x0 + 0.5 - cx, y0 + 0.5 - cy
    m = np.array([[c, s, c * ox + s * oy + half], [-s, c, -s * ox + c * oy + half]])
    return cv2.warpAffine(
        obj.texture,
        m,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


def _veil_level(obj: ObjectModel, t: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """Veil opacity over ``box``: 0.3 on the object's left to 0.6 on its right, ``h x w``."""
    x0, y0, x1, y1 = box
    a = obj.angle(t)
    cx, cy = obj.centre(t)
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5 - cy
    local_x = math.cos(a) * xs[None, :] + math.sin(a) * ys[:, None]
    u = np.clip(0.5 + 0.5 * local_x / (1.2 * obj.radius), 0.0, 1.0)
    lo, hi = _VEIL_LEVELS
    return (lo + (hi - lo) * u).astype(np.float32)


def render_object(
    obj: ObjectModel,
    times: np.ndarray,
    box: tuple[int, int, int, int],
    supersample: int,
    *,
    hair: bool,
    veil: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one object over ``box``, motion-blurred over the sub-frame ``times``.

    Each sub-frame is drawn at ``supersample`` x resolution (anti-aliased fills
    and 1-px strands, i.e. ``1/supersample`` px at output resolution) and box
    averaged. Inside the object the veil sits behind body and hair:
    ``a = b + (1 - b) v``, premultiplied ``b F + (1 - b) v F_veil``.

    Returns:
        ``(alpha, premult)``: ``h x w`` float32 in [0, 1] and ``h x w x 3`` float32
        scene-linear premultiplied colour, both the mean over ``times``.
    """
    x0, y0, x1, y1 = box
    w, h, s = x1 - x0, y1 - y0, supersample
    alpha = np.zeros((h, w), np.float32)
    premult = np.zeros((h, w, 3), np.float32)
    for t in (float(v) for v in times):
        canvas = np.zeros((h * s, w * s), np.uint8)
        if hair:
            strands = list(_canvas_points(obj.hair(t), x0, y0, s))
            cv2.polylines(canvas, strands, False, 255, 1, cv2.LINE_AA, _SHIFT)
        body = _canvas_points(obj.outline(t), x0, y0, s)
        cv2.fillPoly(canvas, [body], 255, cv2.LINE_AA, _SHIFT)
        b = _coverage(canvas, w, h, s)
        colour = _sample_texture(obj, t, box)
        if veil and obj.has_veil:
            canvas[:] = 0
            cv2.fillPoly(canvas, [_canvas_points(obj.veil(t), x0, y0, s)], 255, cv2.LINE_AA, _SHIFT)
            v = (1 - b) * _coverage(canvas, w, h, s) * _veil_level(obj, t, box)
            alpha += b + v
            premult += b[:, :, None] * colour + v[:, :, None] * obj.veil_colour
        else:
            alpha += b
            premult += b[:, :, None] * colour
    n = np.float32(len(times))
    return np.clip(alpha / n, 0.0, 1.0), premult / n


def occluder_card(
    width: int,
    height: int,
    times: np.ndarray,
    *,
    centre: float,
    card_width: float,
    speed: float,
    texture: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """A full-height card moving sideways, motion blurred over the sub-frame ``times``.

    The card spans ``[x - W/2, x + W/2)`` with ``x = centre + speed * t``; its
    coverage of each column is exact (fractional at the two edges) and averaged
    over ``times``. ``texture`` (``height x Wt x 3`` straight linear colour)
    moves with the card.

    Args:
        width, height: the frame's size.
        centre: x of the card's centre at frame index 0.
        card_width: the card's width ``W`` in pixels.
        speed: pixels per frame.

    Returns:
        ``(coverage, colour)``: ``height x width`` float32 in [0, 1] and
        ``height x width x 3`` float64 straight colour (the mean over ``times``
        of the colour seen, weighted by coverage).
    """
    card_w = float(card_width)
    cols = np.arange(width, dtype=np.float64)
    cover = np.zeros(width, np.float64)
    premult = np.zeros((height, width, 3), np.float64)
    tex_w = texture.shape[1]
    for t in (float(v) for v in times):
        left = centre + speed * t - card_w / 2
        c = np.clip(np.minimum(cols + 1, left + card_w) - np.maximum(cols, left), 0.0, 1.0)
        cover += c
        u = np.clip((cols + 0.5 - left).astype(np.int64), 0, tex_w - 1)
        premult += c[None, :, None] * texture[:, u]
    n = float(len(times))
    cover /= n
    colour = np.zeros_like(premult)
    np.divide(premult / n, cover[None, :, None], out=colour, where=cover[None, :, None] > 0)
    return np.repeat(cover.astype(np.float32)[None, :], height, axis=0), colour
