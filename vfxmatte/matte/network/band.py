"""Mask trust by construction: the network may change alpha only near the guidance edge.

A matting network trained on composites can learn to matte by colour instead of
following its mask; on real footage it then punches holes into dark fur or drops
a face whose colour resembles the background. The *band gate* makes that
impossible: the network's alpha is kept only within ``r`` pixels (at the
network's working resolution) of the guidance's 0.5 contour and blended
linearly back to the guidance over the last ``ramp`` pixels of that band; far
inside and far outside the mask the output *is* the guidance.

``r`` is bounded by the range of the training guidance perturbation (MGMatting
§3.1 dilates/erodes the GT mask with kernels up to 30 px, so a training mask's
edge lies at most ~15 px from the true one): a band wider than the errors the
network was taught to correct only lets it invent new ones. A checkpoint may
learn ``r`` (``arch.band_learned``: ``r = band_max * sigmoid(band_logit)``, a
gradient flows through the ramp); weights without it (the shipped starter
weights, converted MGMatting weights) use ``r = band_max``.

Distance to the edge is measured by growing and shrinking the binarised mask
one pixel at a time with alternating 3x3 square and cross max-pools (an
octagonal metric, within 8% of Euclidean), capped at ``ceil(band_max) + 1``
steps, so it is plain tensor arithmetic: any device, half precision, TorchScript.
Pixels beyond the frame count as neither inside nor outside, so the frame border
is no edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["band_gate", "edge_distance", "gate_outputs"]


def _grow(x: torch.Tensor, square: bool) -> torch.Tensor:
    """One step of binary dilation (max-pool pads with -inf: beyond the frame adds nothing)."""
    if square:
        return F.max_pool2d(x, 3, 1, 1)
    across = F.max_pool2d(x, [1, 3], 1, [0, 1])
    down = F.max_pool2d(x, [3, 1], 1, [1, 0])
    return torch.maximum(across, down)


def edge_distance(guidance: torch.Tensor, steps: int) -> torch.Tensor:
    """Steps from every pixel to the guidance's 0.5 contour, capped at ``steps``.

    Args:
        guidance: ``N x 1 x H x W`` in [0, 1].
        steps: the cap (``>= 1``).

    Returns:
        ``N x 1 x H x W`` of the guidance's dtype: 0 on the pixels either side of
        the contour, ``k`` for pixels ``k + 1`` steps away, ``steps`` beyond.
    """
    inside = (guidance >= 0.5).to(guidance.dtype)
    grown = inside
    shrunk = inside
    distance = torch.zeros_like(inside)
    for k in range(steps):
        square = k % 2 == 0
        grown = _grow(grown, square)
        shrunk = -_grow(-shrunk, square)
        # not yet reached by either front: still 1 in both (deep inside) or 0 in both
        distance = distance + (grown == shrunk).to(distance.dtype)
    return distance


def band_gate(
    guidance: torch.Tensor, radius: torch.Tensor, band_max: float, ramp: float
) -> torch.Tensor:
    """``N x 1 x H x W`` weight of the network's alpha: 1 near the edge, 0 beyond ``radius``.

    ``gate = clamp((radius - d) / ramp, 0, 1)`` with ``d`` from :func:`edge_distance`
    (``radius`` a 0-d tensor so that a learned radius gets a gradient).
    """
    steps = int(band_max) + 2
    distance = edge_distance(guidance, steps)
    return torch.clamp((radius.to(guidance.dtype) - distance) / ramp, 0.0, 1.0)


def gate_outputs(
    outputs: dict[str, torch.Tensor], guidance: torch.Tensor, gate: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Blend the alpha outputs back to ``guidance`` where ``gate < 1``; the error follows.

    Alphas (``alpha``, ``alpha_os8/os4/os1``) become ``gate * a + (1 - gate) * guidance``;
    the predicted error becomes ``gate * error`` (where the guidance is returned there
    is nothing for decoding or refinement to correct).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in outputs.items():
        if key in ("alpha", "alpha_os8", "alpha_os4", "alpha_os1"):
            out[key] = gate * value + (1.0 - gate) * guidance
        elif key == "error":
            out[key] = gate * value
        else:
            out[key] = value
    out["band"] = gate
    return out
