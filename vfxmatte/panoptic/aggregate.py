"""Per-segment soft alphas to a partition of unity (panoptic matting layers).

A panoptic matte gives every segment ``k`` of a hard label map its own soft
alpha ``a_k``. Alone these do not sum to 1: two overlapping hair strands both
claim a pixel, or a hole in every alpha claims nothing. Compositing (Mask-guided
Matting in the Wild, §4.1) needs *layers* ``v_k >= 0`` with ``sum_k v_k == 1``
at every pixel, so that ``image = sum_k v_k F_k``. This module turns alphas into
such layers, either by the instance-wise over composition of §4.1 (when the
occlusion order is known) or by normalisation (when it is not).

All arrays are segment-first: ``K x H x W``; ``labels`` holds, per pixel, the
segment *index* in ``[0, K)`` (not the label-map id; see
:func:`vfxmatte.panoptic.labels.segments_from_label_map`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vfxmatte.errors import ConfigError, InputError

__all__ = [
    "aggregate_layers",
    "alphas_from_layers",
    "recompose",
    "soft_layers_from_labels",
]

#: How far outside [0, 1] an input alpha may be (float rounding) before it is an error.
_ALPHA_SLACK = 1e-4


def _check_labels(labels: np.ndarray, k_count: int, hw: tuple[int, int]) -> np.ndarray:
    """Validate an ``H x W`` integer map of segment indices in ``[0, k_count)``."""
    labels = np.asarray(labels)
    if labels.shape != hw:
        raise InputError(f"labels must be H x W = {hw}, got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be an integer array, got dtype {labels.dtype}.")
    if labels.size and (labels.min() < 0 or labels.max() >= k_count):
        raise InputError(
            f"labels must be segment indices in [0, {k_count}), "
            f"got values {int(labels.min())} to {int(labels.max())}."
        )
    return labels.astype(np.intp, copy=False)


def _check_alphas(alphas: np.ndarray) -> np.ndarray:
    """Validate ``K x H x W`` alphas in [0, 1] (values within the slack are clipped later)."""
    alphas = np.asarray(alphas)
    if alphas.ndim != 3 or alphas.shape[0] < 1:
        raise InputError(f"alphas must be K x H x W with K >= 1, got shape {alphas.shape}.")
    if alphas.dtype.kind not in "biuf":
        raise InputError(f"alphas must be a float array, got dtype {alphas.dtype}.")
    if not np.isfinite(alphas).all():
        raise InputError("alphas contain NaN or inf; fix the matting step that produced them.")
    lo, hi = (float(alphas.min()), float(alphas.max())) if alphas.size else (0.0, 0.0)
    if lo < -_ALPHA_SLACK or hi > 1.0 + _ALPHA_SLACK:
        raise InputError(f"alphas must be in [0, 1], got values {lo:.6g} to {hi:.6g}.")
    return alphas


#: Elements of ``K x pixels`` worked on at a time (float64: 32 MB), to bound memory.
_CHUNK_ELEMENTS = 1 << 22


def _check_order(order: Sequence[int], k_count: int) -> list[int]:
    """Validate a back-to-front permutation of ``range(k_count)``."""
    order = [int(k) for k in order]
    if sorted(order) != list(range(k_count)):
        raise ConfigError(
            f"order must list every segment index 0..{k_count - 1} exactly once "
            f"(back to front), got {order}."
        )
    return order


def _give_to_label(layers: np.ndarray, labels: np.ndarray, amount: np.ndarray) -> None:
    """Add ``amount`` (shaped as ``labels``) to each pixel's label layer, in place."""
    layers[(labels, *np.indices(labels.shape))] += amount


def aggregate_layers(
    alphas: np.ndarray,
    labels: np.ndarray,
    *,
    order: Sequence[int] | None = None,
) -> np.ndarray:
    """Turn per-segment soft alphas into layers that sum to 1 at every pixel.

    With ``order`` (segment indices back to front, e.g. background/stuff first)
    this is the instance-wise composition of Mask-guided Matting in the Wild,
    §4.1: from front to back, segment ``k`` keeps what the segments in front of
    it let through, ``v_k = a_k * prod_{j in front of k} (1 - a_j)``. What no
    segment claims, ``1 - sum_k v_k``, goes to the pixel's own label segment.
    With a background whose alpha is 1 everywhere at the back, that remainder is
    0 and the background is "whatever is left", ``v_bg = 1 - sum of others``.

    Without ``order`` the alphas are normalised per pixel: where
    ``sum_k a_k > 1`` every alpha is divided by the sum; where it is ``<= 1``
    (including 0, a pixel no alpha covers) the alphas are kept and the
    remainder ``1 - sum_k a_k`` goes to the pixel's label segment.

    Args:
        alphas: ``K x H x W`` float in [0, 1], straight alpha of each segment
            (values within 1e-4 outside [0, 1] are clipped).
        labels: ``H x W`` integer, the hard label map as segment indices in ``[0, K)``.
        order: back-to-front permutation of ``range(K)``, or None.

    Returns:
        ``K x H x W`` float32 layers, all ``>= 0``, summing to 1 (within 1e-6).

    Raises:
        InputError: wrong shapes, non-integer or out-of-range labels, alphas
            outside [0, 1] or not finite.
        ConfigError: ``order`` is not a permutation of ``range(K)``.
    """
    alphas = _check_alphas(alphas)
    k_count, h, w = alphas.shape
    idx = _check_labels(labels, k_count, (h, w))
    back_to_front = _check_order(order, k_count) if order is not None else None
    # Most pixels are settled by one alpha of 1, or by none (the label's): one-hot there,
    # and the composition only runs where alphas are fractional or overlap.
    flat = alphas.reshape(k_count, -1)
    top, top_value, count = _top(flat)
    settled = (count == 0) | ((count == 1) & (top_value >= 1.0))
    winner = np.where(count == 0, idx.ravel(), top)
    layers = np.empty((k_count, h * w), np.float32)
    for k in range(k_count):  # one-hot of the winner; the active pixels are redone below
        np.equal(winner, k, out=layers[k], casting="unsafe")
    active = np.flatnonzero(~settled)
    step = max(1, _CHUNK_ELEMENTS // k_count)
    for i in range(0, active.size, step):
        part = active[i : i + step]
        a = np.clip(flat[:, part].astype(np.float64), 0.0, 1.0)
        layers[:, part] = _compose(a, idx.ravel()[part], back_to_front)
    return layers.reshape(k_count, h, w)


def _top(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel of ``K x N`` alphas: the first largest one's index, its value, how many > 0.

    One contiguous pass per segment (``argmax`` over axis 0 strides across the whole
    array for every pixel and is several times slower).
    """
    top = np.zeros(flat.shape[1], np.intp)
    value = flat[0].copy()
    count = (flat[0] > 0).astype(np.int32)
    for k in range(1, flat.shape[0]):
        row = flat[k]
        better = row > value
        top[better] = k
        np.maximum(value, row, out=value)
        count += row > 0
    return top, value, count


def _compose(a: np.ndarray, idx: np.ndarray, order: list[int] | None) -> np.ndarray:
    """:func:`aggregate_layers` of some pixels: ``a`` ``K x ...`` float64 in [0, 1], ``idx``
    their labels (shaped as ``a[0]``)."""
    if order is not None:
        layers = np.empty_like(a)
        trans = np.ones(idx.shape, np.float64)
        for k in reversed(order):
            layers[k] = a[k] * trans
            trans *= 1.0 - a[k]
        remainder = trans
    else:
        total = a.sum(axis=0)
        over = total > 1.0
        layers = np.where(over[None], a / np.where(over, total, 1.0)[None], a)
        remainder = np.where(over, 0.0, 1.0 - total)
    _give_to_label(layers, idx, np.maximum(remainder, 0.0))
    # Float rounding can leave sums of 1 +- 1e-15; renormalising keeps the
    # float32 result within one rounding of 1 at every pixel.
    layers /= layers.sum(axis=0, keepdims=True)
    return layers


def alphas_from_layers(
    layers: np.ndarray, order: Sequence[int], *, eps: float = 1e-6
) -> np.ndarray:
    """Invert the composition of §4.1: straight alphas from visible layers.

    From front to back, ``a_k = v_k / prod_{j in front of k} (1 - a_j)`` where
    that transmittance exceeds ``eps``; where it does not, segment ``k`` is
    hidden and its alpha is unknowable, so it is set to 0.

    Args:
        layers: ``K x H x W`` float, visible coverage of each segment.
        order: back-to-front permutation of ``range(K)``.
        eps: smallest transmittance to divide by.

    Returns:
        ``K x H x W`` float32 alphas in [0, 1].
    """
    v = np.clip(_check_alphas(layers).astype(np.float64), 0.0, 1.0)
    order = _check_order(order, v.shape[0])
    alphas = np.zeros_like(v)
    trans = np.ones(v.shape[1:], np.float64)
    for k in reversed(order):
        seen = trans > eps
        np.divide(v[k], trans, out=alphas[k], where=seen)
        alphas[k] = np.clip(alphas[k], 0.0, 1.0)
        trans *= 1.0 - alphas[k]
    return alphas.astype(np.float32)


def soft_layers_from_labels(labels: np.ndarray, k_count: int) -> np.ndarray:
    """One-hot layers of a hard label map: the trivial baseline with hard edges.

    Args:
        labels: ``H x W`` integer segment indices in ``[0, k_count)``.
        k_count: number of segments ``K``.

    Returns:
        ``K x H x W`` float32, 1 where ``labels == k`` and 0 elsewhere.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"labels must be H x W, got shape {labels.shape}.")
    if k_count < 1:
        raise ConfigError(f"k_count must be >= 1, got {k_count}.")
    idx = _check_labels(labels, k_count, labels.shape)
    return (np.arange(k_count)[:, None, None] == idx[None]).astype(np.float32)


def recompose(layers: np.ndarray, fgs: np.ndarray) -> np.ndarray:
    """Composite segment colours through their layers: ``sum_k v_k F_k`` (§4.1).

    Args:
        layers: ``K x H x W`` float, layers summing to 1 (e.g. from
            :func:`aggregate_layers`).
        fgs: ``K x H x W x 3`` float, straight colour of each segment,
            scene-linear (the background plate is one of the segments).

    Returns:
        ``H x W x 3`` float32 image.
    """
    layers = np.asarray(layers)
    fgs = np.asarray(fgs)
    if layers.ndim != 3 or fgs.shape != layers.shape + (3,):
        raise InputError(
            f"recompose needs layers K x H x W and fgs K x H x W x 3, "
            f"got {layers.shape} and {fgs.shape}."
        )
    out = np.einsum("khw,khwc->hwc", layers.astype(np.float64), fgs.astype(np.float64))
    return out.astype(np.float32)
