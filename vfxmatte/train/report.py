"""Held-out comparison of trained weights with the weight-free baselines.

``python -m vfxmatte.train.report --matte W.safetensors [--colour C.safetensors]``
renders held-out synthetic frames (shot seeds never used by training) and
measures, on the same frames:

* alpha: the coarse guidance mask itself, the classical default
  (:func:`vfxmatte.matte.classical.matte_classical`) and the trained network
  through :class:`~vfxmatte.matte.network.backend.NetworkMatte` with one plain
  pass and with confidence-guided iterative decoding (SAD, MSE, Grad, Conn);
* colour (given the GT alpha): the plate itself (``F = I``), the multi-level
  estimate and the trained colour network (foreground MSE in the soft band,
  scene-linear, clipped to [0, 1] for comparability).

``--refine R.safetensors`` adds each network row again with sparse refinement
at the frame's resolution; ``--working-size`` makes the network matte at a lower
resolution than the frames (the high-resolution case the refiner is for).

It prints a Markdown table, writes it as JSON, and writes PNG previews
(plate | guidance | classical | network [| network + sparse] | GT).

``--dataset DIR`` evaluates on a folder instead (composites, GT alpha and
optional coarse masks or trimaps; see
:func:`vfxmatte.train.evaluation.folder_frames`); the colour comparison needs a
GT foreground and is skipped there.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vfxmatte.train.evaluation import (
    HeldOutFrame,
    evaluate_matte,
    folder_frames,
    held_out_frames,
    write_preview,
)

__all__ = [
    "colour_comparison",
    "main",
    "markdown_table",
    "matte_comparison",
    "write_previews",
]

METRICS = ("SAD", "MSE", "Grad", "Conn")


def _row(acc: Any, seconds: float, frames: int) -> dict[str, float]:
    row = {k: float(v) for k, v in acc.mean().items() if k in METRICS}
    row["s/frame"] = seconds / max(1, frames)
    return row


def _timed(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray], frames: list[HeldOutFrame]
) -> tuple[dict[str, float], list[np.ndarray]]:
    start = time.perf_counter()
    acc, preds = evaluate_matte(predict, frames)
    return _row(acc, time.perf_counter() - start, len(frames)), preds


def _network_rows(
    backend: Any, refiner: Any, frames: list[HeldOutFrame]
) -> tuple[tuple[dict[str, float], list[np.ndarray]], tuple[dict[str, float], list[np.ndarray]]]:
    """The network's row and its sparse-refinement row from one matting pass per frame.

    The refined row's ``s/frame`` is the whole path's: matting plus refinement.
    """
    from vfxmatte.engine.stages import refine_alpha

    plain: list[np.ndarray] = []
    seconds = {"matte": 0.0, "refine": 0.0}

    def matte_then_refine(image: np.ndarray, guidance: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        result = backend.matte(image, guidance)
        middle = time.perf_counter()
        plain.append(result.alpha)
        alpha = refine_alpha(refiner, image, result.alpha, result.confidence, result.features)
        seconds["matte"] += middle - start
        seconds["refine"] += time.perf_counter() - middle
        return alpha

    refined_acc, refined = evaluate_matte(matte_then_refine, frames)
    stored = iter(plain)
    plain_acc, plain = evaluate_matte(lambda image, guidance: next(stored), frames)
    total = seconds["matte"] + seconds["refine"]
    return (
        (_row(plain_acc, seconds["matte"], len(frames)), plain),
        (_row(refined_acc, total, len(frames)), refined),
    )


def matte_comparison(
    weights: str,
    frames: list[HeldOutFrame],
    iterations: Sequence[int] = (1, 3),
    refine: str | None = None,
    working_size: int = 1024,
    tau: float = 0.1,
    dilate: int = 0,
    baselines: bool = True,
) -> tuple[dict[str, dict[str, float]], dict[str, list[np.ndarray]]]:
    """Alpha metrics of the guidance, the classical default and the network on ``frames``.

    The network runs through the engine's backend at ``working_size`` (frames larger
    than it are matted scaled down and the alpha scaled back up); with ``refine``
    (a checkpoint of kind ``refine``) each network row is repeated with sparse
    refinement at the frame's resolution (``tau``, ``dilate`` as
    ``refine.sparse.tau``/``refine.sparse.dilate``). ``baselines=False`` leaves out
    the guidance and classical rows.
    """
    from vfxmatte.matte.classical import matte_classical
    from vfxmatte.matte.network.backend import NetworkMatte
    from vfxmatte.matte.network.options import NetworkMatteConfig

    rows: dict[str, dict[str, float]] = {}
    preds: dict[str, list[np.ndarray]] = {}
    if baselines:
        rows["guidance mask"], preds["guidance"] = _timed(lambda i, g: g, frames)
        rows["classical (default)"], preds["classical"] = _timed(
            lambda i, g: matte_classical(i, g)[0], frames
        )
    refiner = None
    if refine:
        from vfxmatte.refine.options import SparseRefineConfig
        from vfxmatte.refine.sparse import SparseRefiner

        refiner = SparseRefiner(
            SparseRefineConfig(weights=refine, tau=tau, dilate=dilate, device="cpu")
        )
    for t in iterations:
        config = NetworkMatteConfig(
            weights=weights, device="cpu", iterations=t, working_size=working_size
        )
        backend = NetworkMatte(config)
        label = "network, 1 pass" if t <= 1 else f"network, T={t} decoding"
        if refiner is None:
            rows[label], preds[f"network_T{t}"] = _timed(lambda i, g, b=backend: b(i, g)[0], frames)
            continue
        (rows[label], preds[f"network_T{t}"]), (refined_row, refined) = _network_rows(
            backend, refiner, frames
        )
        rows[f"{label} + sparse refinement"], preds[f"network_T{t}_sparse"] = refined_row, refined
    return rows, preds


def colour_comparison(weights: str | None, frames: list[HeldOutFrame]) -> dict[str, float]:
    """Foreground MSE in the band ``0 < alpha < 1`` (GT alpha; linear, clipped to [0,1])."""
    from vfxmatte.decontaminate.multilevel import estimate_foreground_multilevel

    methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "plate (F = I)": lambda plate, a: plate,
        "multilevel (default)": estimate_foreground_multilevel,
    }
    if weights:
        from vfxmatte.decontaminate.network import NetworkForeground, NetworkForegroundConfig

        net = NetworkForeground(NetworkForegroundConfig(weights=weights, device="cpu"))
        methods["colour network"] = net
    out = {}
    for name, fn in methods.items():
        errors = []
        for f in frames:
            band = (f.alpha > 0.0) & (f.alpha < 1.0)
            if not band.any():
                continue
            pred = np.clip(fn(f.plate, f.alpha), 0.0, 1.0)
            errors.append(float(((pred - np.clip(f.fg_linear, 0.0, 1.0)) ** 2)[band].mean()))
        out[name] = float(np.mean(errors)) if errors else 0.0
    return out


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    """The rows as a Markdown table (SAD, Grad, Conn in thousands; MSE x 1e3)."""
    lines = ["| method | SAD | MSE x1e3 | Grad | Conn | s/frame |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['SAD']:.3f} | {r['MSE'] * 1e3:.3f} | {r['Grad']:.3f} | "
            f"{r['Conn']:.3f} | {r['s/frame']:.2f} |"
        )
    return "\n".join(lines)


def write_previews(
    out: Path, frames: list[HeldOutFrame], preds: dict[str, list[np.ndarray]], n: int
) -> None:
    """PNG strips ``heldout_<i>.png``: plate | guidance | classical | network [| + sparse] | GT.

    The network panels are those of the first decoding setting in ``preds``.
    """
    first = next((k for k in preds if k.startswith("network")), None)
    shown = [k for k in ("classical", first, f"{first}_sparse") if k in preds]
    for i, frame in enumerate(frames[:n]):
        panels = [frame.image, frame.guidance, *(preds[k][i] for k in shown), frame.alpha]
        write_preview(out / f"heldout_{i}.png", panels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matte", required=True, help="matte weights (.safetensors)")
    parser.add_argument("--colour", help="colour weights (.safetensors)")
    parser.add_argument("--refine", help="sparse refiner weights (.safetensors, kind refine)")
    parser.add_argument(
        "--working-size", type=int, default=1024, help="long side the network mattes at"
    )
    parser.add_argument("--tau", type=float, default=0.1, help="refine.sparse.tau")
    parser.add_argument("--dilate", type=int, default=0, help="refine.sparse.dilate")
    parser.add_argument("--dataset", help="evaluate on this folder instead of generated shots")
    parser.add_argument("--frames", type=int, default=24, help="held-out frames (0: all)")
    parser.add_argument(
        "--size", type=int, default=512, help="long side of the frames (folders: at most)"
    )
    parser.add_argument("--offset", type=int, default=1000, help="first held-out shot index")
    parser.add_argument(
        "--photos", action="store_true", help="shots over held-out real photographs"
    )
    parser.add_argument(
        "--rough", action="store_true", help="rough guidance (edge off by 1-8 px either way)"
    )
    parser.add_argument(
        "--iterations", default="1,3", help="decoding steps of the network rows, comma-separated"
    )
    parser.add_argument("--out", default="heldout_report", help="folder for JSON and previews")
    parser.add_argument("--previews", type=int, default=4)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.dataset:
        frames = folder_frames(args.dataset, args.size, limit=args.frames)
        colour: dict[str, float] = {}
    else:
        frames = held_out_frames(
            args.frames, args.size, offset=args.offset, photos=args.photos, rough=args.rough
        )
    rows, preds = matte_comparison(
        args.matte,
        frames,
        iterations=[int(v) for v in args.iterations.split(",")],
        refine=args.refine,
        working_size=args.working_size,
        tau=args.tau,
        dilate=args.dilate,
    )
    if not args.dataset:
        colour = colour_comparison(args.colour, frames)
    write_previews(out, frames, preds, args.previews)
    report: dict[str, Any] = {
        "dataset": args.dataset or "generated",
        "frames": len(frames),
        "size": args.size,
        "offset": args.offset,
        "photos": args.photos,
        "rough": args.rough,
        "working_size": args.working_size,
        "refine": {"weights": args.refine, "tau": args.tau, "dilate": args.dilate}
        if args.refine
        else None,
        "alpha": rows,
        "colour_band_fg_mse": colour,
    }
    (out / "heldout.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(rows))
    print()
    for name, value in colour.items():
        print(f"| {name} | {value * 1e3:.3f} |")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
