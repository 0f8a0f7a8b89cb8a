"""Confidence-guided iterative decoding (Mask2Alpha §3.2, Algorithm 2).

The network predicts alpha and its own error from (image, mask). Decoding starts
from the coarse mask; at step ``t`` of ``T`` the still-coarse pixels with the
lowest predicted error are committed to the predicted alpha, so that after step
``t`` a share ``s(t/T)`` of all pixels is committed (``s`` rises to 1 at ``t =
T``). The updated mask -- committed pixels fine, the rest still coarse -- is fed
back for the next step. A committed pixel never returns to the coarse state and
keeps the value it was committed with (a unidirectional coarse -> fine
transition), so the confident interior is settled first and the last steps see
refined guidance around the uncertain edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vfxmatte.matte.network.options import SCHEDULES

__all__ = [
    "SCHEDULES",
    "DecodeTrace",
    "commit_schedule",
    "commit_step",
    "commit_target",
    "iterative_decode",
]

Predict = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def commit_schedule(step: int, steps: int, kind: str = "cosine") -> float:
    """Share of all pixels committed after ``step`` (1-based) of ``steps``."""
    r = min(max(float(step) / float(steps), 0.0), 1.0)
    if kind == "linear":
        return r
    if kind == "cosine":
        return 1.0 - math.cos(0.5 * math.pi * r)
    raise ValueError("unknown schedule " + kind)


def commit_target(step: int, steps: int, pixels: int, kind: str = "cosine") -> int:
    """Pixels committed after ``step`` of ``steps``: all of them at the last step."""
    if step >= steps:
        return pixels
    return int(round(commit_schedule(step, steps, kind) * float(pixels)))


def commit_step(
    state: torch.Tensor,
    committed: torch.Tensor,
    error_out: torch.Tensor,
    alpha: torch.Tensor,
    error: torch.Tensor,
    target: int,
) -> None:
    """Commit the lowest-error still-coarse pixels of every sample until ``target`` are done.

    ``state``, ``committed`` (bool) and ``error_out`` are updated in place; all
    tensors are ``N x 1 x H x W``. Ties break by pixel order (stable sort), so the
    result is deterministic. TorchScript-compatible (used by the export too).
    """
    n = state.shape[0]
    flat_state = state.view(n, -1)
    flat_done = committed.view(n, -1)
    flat_error = error_out.view(n, -1)
    a = alpha.reshape(n, -1)
    e = error.reshape(n, -1)
    for b in range(n):
        take = target - int(flat_done[b].sum())
        if take <= 0:
            continue
        ranked = torch.where(flat_done[b], torch.full_like(e[b], math.inf), e[b])
        order = torch.sort(ranked.float(), stable=True)[1][:take]
        flat_state[b, order] = a[b, order]
        flat_error[b, order] = e[b, order]
        flat_done[b, order] = True


@dataclass
class DecodeTrace:
    """Per-step record: how many pixels were committed after each step."""

    committed: list[int]


def iterative_decode(
    predict: Predict,
    coarse: torch.Tensor,
    steps: int,
    schedule: str = "cosine",
) -> tuple[torch.Tensor, torch.Tensor, DecodeTrace]:
    """Run ``steps`` rounds of confidence-guided decoding.

    Args:
        predict: ``mask -> (alpha, error)``, all ``N x 1 x H x W`` (the image is bound in).
        coarse: the coarse guidance mask, ``N x 1 x H x W`` in [0,1].
        steps: ``T``; 0 or 1 is a single plain prediction.
        schedule: ``cosine`` (few commits first, most at the end) or ``linear``.

    Returns:
        ``(alpha, error, trace)``: the committed alpha, the predicted error of each
        pixel at the step it was committed, and the commit counts.
    """
    if steps <= 1:
        alpha, error = predict(coarse)
        return alpha, error, DecodeTrace([int(alpha[0].numel())])
    pixels = int(coarse[0].numel())
    state = coarse.clone()
    committed = torch.zeros_like(coarse, dtype=torch.bool)
    error_out = torch.zeros_like(coarse)
    counts: list[int] = []
    for step in range(1, steps + 1):
        alpha, error = predict(state)
        target = commit_target(step, steps, pixels, schedule)
        commit_step(state, committed, error_out, alpha, error, target)
        counts.append(int(committed[0].sum()))
    return state, error_out, DecodeTrace(counts)
