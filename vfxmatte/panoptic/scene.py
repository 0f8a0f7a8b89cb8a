"""Synthetic panoptic frames with exact layers: things over stuff, for tests and benchmarks.

:func:`vfxmatte.synth.render_frame` gives ``K`` objects (things) over one textured
background with exact visible layers. A panoptic label map of a real plate also
splits the background into *stuff* regions (sky, wall, ground ...). This module
cuts the synthetic background into ``stuff`` horizontal strata with wavy,
anti-aliased borders and tints each one, so that a frame has up to
``objects + stuff`` segments, and keeps the ground truth exact: stratum ``r``
covers ``c_r`` of a pixel (``sum_r c_r = 1``), the plate becomes
``image + v_bg * B * (sum_r c_r t_r - 1)`` with ``t_r`` the stratum's tint, and
the background layer ``v_bg`` splits into ``v_bg * c_r``.

Segment ids: ``0`` is the top stratum (``background``, the largest), ``1..K`` the
objects as in the synthetic label map, ``K+1 ..`` the other strata (``stuff1`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfxmatte.errors import ConfigError
from vfxmatte.synth import ShotSpec, layer_names, render_frame

__all__ = ["PanopticScene", "panoptic_scene", "stuff_coverage"]

#: Largest number of stuff strata (each must stay a few pixels tall at 16 px height).
MAX_STUFF = 32


@dataclass
class PanopticScene:
    """One synthetic frame and its exact panoptic ground truth (scene-linear Rec.709).

    Attributes:
        number: frame number.
        image: ``H x W x 3`` float32 plate.
        labels: ``H x W`` int64 ids: the argmax of ``layers``, as ``ids``.
        layers: ``K x H x W`` float32 visible coverage of each segment, summing to 1.
        ids: the label id of each layer.
        names: the name of each layer (``background``, ``object1`` ..., ``stuff1`` ...).
    """

    number: int
    image: np.ndarray
    labels: np.ndarray
    layers: np.ndarray
    ids: list[int]
    names: list[str]


def stuff_coverage(width: int, height: int, count: int, seed: int) -> np.ndarray:
    """Anti-aliased coverage of ``count`` horizontal strata with wavy borders.

    The top stratum reaches down to about 40% of the height; the others share the
    rest. Border ``r`` is ``y = b_r(x)``, a sum of two sines, kept increasing in
    ``r`` at every column; a pixel row ``[y, y+1)`` is covered below the border by
    ``clip(y + 1 - b_r(x), 0, 1)`` (exact for a flat border).

    Returns:
        ``count x H x W`` float32 in [0, 1], summing to 1 at every pixel.
    """
    if not 1 <= count <= MAX_STUFF:
        raise ConfigError(f"stuff must be between 1 and {MAX_STUFF}, got {count}.")
    rng = np.random.default_rng([seed, 7321])
    x = np.arange(width, dtype=np.float64)
    y = np.arange(height, dtype=np.float64)[:, None]
    base = 0.4 * height + (0.6 * height) * np.arange(count - 1) / max(count - 1, 1)
    spacing = 0.6 * height / max(count - 1, 1)
    below = [np.ones((height, width))]  # share of each pixel below border r (border 0 at -inf)
    previous = np.full(width, -np.inf)
    for r in range(count - 1):
        amp = rng.uniform(0.1, 0.3) * spacing
        freq = rng.uniform(1.0, 3.0, size=2) * 2 * np.pi / width
        phase = rng.uniform(0, 2 * np.pi, size=2)
        border = base[r] + amp * (
            np.sin(freq[0] * x + phase[0]) + 0.5 * np.sin(freq[1] * x + phase[1])
        )
        border = np.maximum(border, previous + 1.0)
        previous = border
        below.append(np.clip(y + 1.0 - border[None, :], 0.0, 1.0))
    below.append(np.zeros((height, width)))
    return np.stack([below[r] - below[r + 1] for r in range(count)]).astype(np.float32)


def panoptic_scene(spec: ShotSpec, index: int, stuff: int = 1) -> PanopticScene:
    """Frame ``index`` of the synthetic shot ``spec`` with its background cut into strata.

    Args:
        spec: the synthetic shot (objects, size, seed ...).
        index: 0-based frame index.
        stuff: number of stuff strata the background is cut into (1 keeps it whole).

    Returns:
        The frame, its label map and exact layers (every object has a layer; one that
        is outside the frame, or hidden everywhere, is all zero or never in ``labels``).
    """
    frame = render_frame(spec, index)
    cover = stuff_coverage(spec.width, spec.height, stuff, spec.seed)
    tint_rng = np.random.default_rng([spec.seed, 99])
    tints = tint_rng.uniform(0.45, 1.6, size=(stuff, 3)).astype(np.float32)
    tints[0] = 1.0  # the top stratum keeps the plate's own colour
    v_bg = frame.layers[..., 0]
    gain = np.einsum("rhw,rc->hwc", cover, tints) - 1.0
    image = frame.image + v_bg[..., None] * frame.background * gain
    objects = np.moveaxis(frame.layers[..., 1:], -1, 0)
    layers = np.concatenate([v_bg[None] * cover[:1], objects, v_bg[None] * cover[1:]])
    k_obj = objects.shape[0]
    ids = [0, *range(1, k_obj + 1), *range(k_obj + 1, k_obj + stuff)]
    names = [*layer_names(spec), *(f"stuff{r}" for r in range(1, stuff))]
    labels = np.asarray(ids, np.int64)[np.argmax(layers, axis=0)]
    return PanopticScene(frame.number, image.astype(np.float32), labels, layers, ids, names)
