"""Streaming evaluation of predicted matte sequences against ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.io.image import probe_image, read_image
from vfxmatte.io.sequence import FramePattern, resolve_frames
from vfxmatte.metrics import MetricsAccumulator

__all__ = ["evaluate_sequences"]


def _alpha_channel(path: str, wanted: str | None) -> list[str]:
    channels = probe_image(path).channels
    if wanted:
        return [wanted]
    for name in ("A", "matte.A", "Y"):
        if name in channels:
            return [name]
    if len(channels) == 1 or channels[:3] == ("R", "G", "B"):
        return [channels[0]]
    raise InputError(
        f"Cannot tell the alpha channel of '{path}' ({', '.join(channels)}); "
        "pass --pred-channel/--gt-channel."
    )


def evaluate_sequences(
    pred: str,
    gt: str,
    *,
    frames: str | Sequence[int] | None = None,
    pred_channel: str | None = None,
    gt_channel: str | None = None,
    pred_fg: str | None = None,
    gt_fg: str | None = None,
) -> MetricsAccumulator:
    """Metrics of every frame of ``pred`` against ``gt`` (both sequence patterns).

    Alpha channels default to ``A`` (or ``matte.A``, ``Y``, or a single channel).
    With ``pred_fg``/``gt_fg`` patterns (``R,G,B`` straight foreground, or a
    multi-layer file's ``fg`` layer) the foreground error is added. One frame of
    each is in memory at a time.
    """
    pred_pattern, gt_pattern = FramePattern.parse(pred), FramePattern.parse(gt)
    numbers = resolve_frames(pred_pattern, frames)
    resolve_frames(gt_pattern, numbers)
    acc = MetricsAccumulator()
    pred_ch = _alpha_channel(pred_pattern.path(numbers[0]), pred_channel)
    gt_ch = _alpha_channel(gt_pattern.path(numbers[0]), gt_channel)
    for number in numbers:
        p = read_image(pred_pattern.path(number), pred_ch, number=number).pixels[..., 0]
        g = read_image(gt_pattern.path(number), gt_ch, number=number).pixels[..., 0]
        if p.shape != g.shape:
            raise InputError(
                f"Frame {number}: the prediction is {p.shape[1]}x{p.shape[0]} but the ground "
                f"truth is {g.shape[1]}x{g.shape[0]}."
            )
        pf = gf = None
        if pred_fg and gt_fg:
            pf = _fg(pred_fg, number)
            gf = _fg(gt_fg, number)
        acc.add(number, p.clip(0, 1), g.clip(0, 1), pred_fg=pf, gt_fg=gf)
    return acc


def _fg(pattern: str, number: int) -> np.ndarray:
    """``H x W x 3`` straight foreground: the ``fg`` layer, or ``R,G,B``."""
    path = FramePattern.parse(pattern).path(number)
    channels = probe_image(path).channels
    wanted = "fg" if "fg.R" in channels else "R,G,B"
    return read_image(path, wanted, number=number).pixels
