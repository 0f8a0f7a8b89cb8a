"""Quality of weight-free propagation over whole shots on real photographs (issue 16).

Shots (``vfxmatte.synth``, 960x540, held-out photographs as backdrops and object
textures, motion blur over a 180-degree shutter; a furry object with a
semi-transparent veil): two at 2% of the frame width per frame turning 3 degrees
per frame, a slow one (1%, 1 degree), two objects crossing (the target is both),
and one whose object passes behind an occluder card for about 7 frames.

For every shot and backend (``flow``, the old default, and ``snapcut``) in the
same run:

* IoU of the propagated mask with ``alpha > 0.5`` per frame, keyframe 0:
  first propagated frame, mean, worst, last; seconds per frame of propagation;
* with ``--sad-frames N`` the full default job (matting included) over the
  first N frames with each backend, and the same job given masks derived from
  the ground truth (``alpha > 0.5``) on every frame, the ceiling of what
  propagation can give: per-frame SAD against the true alpha, first/mean/last,
  and the ratio of each job's mean SAD to the given-mask job's;
* with ``--speed`` seconds per frame of each backend at 1920x1080.

A strip of the last frames of each shot (plate with the snapcut mask tinted
magenta, the true outline green) is written to ``--previews``.

With ``--two-keys`` snapcut also runs with a second keyframe on the last frame,
its two directions blended (``blend_keys``, the default) and switched (before).

Usage: python benchmarks/propagate_quality.py [--frames 24] [--sad-frames 12]
       [--shots turn11,turn12,slow,cross,occluder] [--speed] [--two-keys] [--json out.json]
       [--previews folder]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 960, 540
BACKENDS = ("flow", "snapcut")


def shot_specs(frames: int) -> dict[str, object]:
    from vfxmatte.synth import ShotSpec

    base = dict(
        width=WIDTH, height=HEIGHT, frames=frames, background="photo", textures="photo",
        photo_role="heldout", motion_blur_samples=3, shutter=0.5,
    )  # fmt: skip
    fast = dict(speed=0.02 * WIDTH, turn=3.0)
    return {
        "turn11": ShotSpec(seed=11, **fast, **base),
        "turn12": ShotSpec(seed=12, **fast, **base),
        "slow": ShotSpec(seed=14, speed=0.01 * WIDTH, turn=1.0, **base),
        "cross": ShotSpec(seed=15, objects=2, speed=0.015 * WIDTH, turn=2.0, **base),
        "occluder": ShotSpec(seed=13, occluder=True, **fast, **base),
    }


def _display(frame) -> np.ndarray:
    from vfxmatte.io.colour import to_display

    return np.clip(to_display(frame.image), 0.0, 1.0).astype(np.float32)


def make_propagator(backend: str):
    if backend == "flow":
        from vfxmatte.propagate.flow import FlowPropagator

        return FlowPropagator()
    from vfxmatte.propagate.snapcut import SnapCutPropagator

    return SnapCutPropagator()


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


def propagate_shot(
    spec, backends, preview: Path | None, name: str, two_keys: bool = False
) -> dict[str, dict]:
    """IoU per frame of each backend from keyframe 0; frames rendered once for all.

    With ``two_keys`` also snapcut with a second keyframe on the last frame, its two
    directions blended and (the old behaviour) switched at the keyframe.
    """
    from vfxmatte.synth import render_frame

    props = {b: make_propagator(b) for b in backends}
    ious: dict[str, list[float]] = {b: [] for b in backends}
    seconds = dict.fromkeys(backends, 0.0)
    confidence: list[float] = []
    tiles = []
    hidden: list[int] = []  # frames where the object is out of view
    last = set(range(max(1, spec.frames - 8), spec.frames))
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(spec.frames):
        frame = render_frame(spec, i)
        image, truth = _display(frame), frame.alpha > 0.5
        if two_keys:
            kept.append((image, truth))
        if not truth.any():
            hidden.append(i)
        for b, prop in props.items():
            start = time.perf_counter()
            mask = prop.reset(image, truth.astype(np.float32)) if i == 0 else prop.step(image)
            seconds[b] += time.perf_counter() - start
            ious[b].append(iou(mask >= 0.5, truth))
            if b == "snapcut":
                confidence.append(prop.drift.confidence)
                if i in last and preview is not None:
                    tiles.append(_tile(image, mask >= 0.5, truth, i, prop.drift.confidence))
    if tiles and preview is not None:
        rows = [np.concatenate(tiles[k : k + 4], axis=1) for k in range(0, len(tiles), 4)]
        rows = [np.pad(r, ((0, 0), (0, rows[0].shape[1] - r.shape[1]), (0, 0))) for r in rows]
        strip = cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(preview / f"{name}_last_frames.png"), strip)
    out = {}
    for b in backends:
        v = ious[b]
        out[b] = {
            "iou": v, "first": v[1], "mean": float(np.mean(v[1:])), "worst": float(np.min(v)),
            "last": v[-1], "s_per_frame": seconds[b] / spec.frames,
        }  # fmt: skip
        if hidden:
            out[b]["back"] = _reacquisition(v, hidden)
    out["snapcut"]["confidence"] = confidence
    if two_keys:
        out["two_keys"] = _two_keys(kept)
    return out


def _two_keys(kept: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """snapcut with keyframes on the first and last frames, blended and switched."""
    from vfxmatte.propagate.snapcut import SnapCutPropagateConfig, propagate_sequence

    n = len(kept)
    keys = {0: kept[0][1].astype(np.float32), n - 1: kept[-1][1].astype(np.float32)}
    out = {}
    for label, blend in (("switched", False), ("blended", True)):
        config = SnapCutPropagateConfig(blend_keys=blend)
        start = time.perf_counter()
        masks = dict(propagate_sequence(lambda i: kept[i][0], list(range(n)), keys, config))
        seconds = time.perf_counter() - start
        v = [iou(masks[i] >= 0.5, kept[i][1]) for i in range(n)]
        out[label] = {
            "iou": v, "mean": float(np.mean(v[1:-1])), "worst": float(np.min(v)),
            "s_per_frame": seconds / n,
        }  # fmt: skip
    return out


def _reacquisition(ious: list[float], hidden: list[int]) -> dict[str, object]:
    """After the object's last run of hidden frames: IoU 5 and 10 frames after it is back in
    view, the worst IoU from 10 frames on, and the first frame from which IoU stays >= 0.9."""
    back = hidden[-1] + 1
    start = hidden[-1]
    while start - 1 in hidden:
        start -= 1
    after = ious[back:]
    steady = next((back + k for k in range(len(after)) if min(after[k:]) >= 0.9), None)
    return {
        "hidden": [start, hidden[-1]], "back": back,
        "iou_5": after[5] if len(after) > 5 else None,
        "iou_10": after[10] if len(after) > 10 else None,
        "worst_from_10": min(after[10:]) if len(after) > 10 else None,
        "steady_from": steady,
    }  # fmt: skip


def _tile(image, mask, truth, index, confidence) -> np.ndarray:
    from vfxmatte.io.colour import to_display  # noqa: F401  (display image already)

    vis = image.copy()
    vis[mask] = 0.45 * vis[mask] + 0.55 * np.float32([1.0, 0.0, 1.0])
    u8 = np.ascontiguousarray((vis * 255).astype(np.uint8))
    contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(u8, contours, -1, (0, 255, 0), 2)
    label = f"frame {index}  conf {confidence:.2f}"
    cv2.putText(u8, label, (12, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    return cv2.resize(u8, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)


def job_sad(spec, frames: int, folder: Path) -> dict[str, dict]:
    """The default job over ``frames`` frames with each backend and with GT-derived masks."""
    import dataclasses

    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.io.image import read_image, write_image
    from vfxmatte.io.sequence import FramePattern
    from vfxmatte.metrics import sad
    from vfxmatte.synth import write_shot

    short = dataclasses.replace(spec, frames=frames)
    paths = write_shot(folder / "shot", short)
    alpha = FramePattern.parse(paths.alpha)
    truth = {n: read_image(alpha.path(n)).pixels[..., 0] for n in range(1001, 1001 + frames)}
    for n, a in truth.items():
        write_image(folder / f"gtmask.{n:04d}.exr", (a > 0.5).astype(np.float32)[..., None], ["A"])
    key = folder / "key.png"
    cv2.imwrite(str(key), ((truth[1001] > 0.5) * 255).astype(np.uint8))
    out = {}
    for job in ("given", *BACKENDS):
        config = PipelineConfig(plate=paths.plate, output=str(folder / job / "m.####.exr"))
        config.engine.progress = False
        config.output_options.kinds = "alpha"
        if job == "given":
            config.propagate.backend = "given"
            config.mask = str(folder / "gtmask.####.exr")
        else:
            config.propagate.backend = job
            config.mask = str(key)
        start = time.perf_counter()
        report = run_pipeline(config)
        seconds = time.perf_counter() - start
        if not report.ok:
            raise SystemExit(f"The {job} job failed: {report.summary()}")
        pred = FramePattern.parse(config.output)
        per = [sad(read_image(pred.path(n)).pixels[..., 0], truth[n]) for n in sorted(truth)]
        out[job] = {"sad": per, "mean": float(np.mean(per)), "s_per_frame": seconds / frames}
        if report.drift.samples:
            out[job]["drift"] = report.drift.summary()
    base = out["given"]["mean"]
    for job in out:
        out[job]["ratio_to_given"] = out[job]["mean"] / base if base > 0 else float("nan")
    return out


def speed_1080p(frames: int = 8) -> dict[str, float]:
    from vfxmatte.synth import ShotSpec, render_frame

    spec = ShotSpec(width=1920, height=1080, frames=frames, background="photo", textures="photo",
                    speed=0.02 * 1920, turn=3.0, seed=11)  # fmt: skip
    rendered = [render_frame(spec, i) for i in range(frames)]
    images = [_display(f) for f in rendered]
    key = (rendered[0].alpha > 0.5).astype(np.float32)
    out = {}
    for b in BACKENDS:
        prop = make_propagator(b)
        prop.reset(images[0], key)
        start = time.perf_counter()
        for image in images[1:]:
            prop.step(image)
        out[b] = (time.perf_counter() - start) / (frames - 1)
    return out


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--sad-frames", type=int, default=0, help="0: no full jobs")
    parser.add_argument("--sad-shots", default="turn11,turn12")
    parser.add_argument("--shots", default="turn11,turn12,slow,cross,occluder")
    parser.add_argument("--speed", action="store_true", help="also s/frame at 1920x1080")
    parser.add_argument(
        "--two-keys", action="store_true",
        help="also snapcut with a second keyframe on the last frame, blended and switched",
    )  # fmt: skip
    parser.add_argument("--previews", default="", help="folder for PNG strips")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    specs = shot_specs(args.frames)
    preview = Path(args.previews) if args.previews else None
    if preview is not None:
        preview.mkdir(parents=True, exist_ok=True)
    threads = os.environ.get("OMP_NUM_THREADS", "-")
    print(f"Propagation quality, {WIDTH}x{HEIGHT}, {args.frames} frames, keyframe 0, "
          f"{os.cpu_count()} cores, OMP_NUM_THREADS={threads}")  # fmt: skip
    results: dict[str, object] = {}
    for name in args.shots.split(","):
        res = propagate_shot(specs[name], BACKENDS, preview, name, args.two_keys)
        results[name] = res
        for b in BACKENDS:
            r = res[b]
            print(f"  {name:<9} {b:<8} IoU first {r['first']:.3f} mean {r['mean']:.3f} "
                  f"worst {r['worst']:.3f} last {r['last']:.3f}   {r['s_per_frame']:.3f} s/frame",
                  flush=True)  # fmt: skip
            if "back" in r:
                k = r["back"]
                print(f"            hidden frames {k['hidden'][0]}-{k['hidden'][1]}: IoU 5 frames "
                      f"after {_f(k['iou_5'])}, 10 after {_f(k['iou_10'])}, worst from 10 on "
                      f"{_f(k['worst_from_10'])}, >= 0.9 from {k['steady_from']}")  # fmt: skip
        for label, r in res.get("two_keys", {}).items():
            print(f"            snapcut, keyframes first+last, {label:<8}: IoU mean "
                  f"{r['mean']:.3f} worst {r['worst']:.3f}   "
                  f"{r['s_per_frame']:.3f} s/frame")  # fmt: skip
        low = [i for i, c in enumerate(res["snapcut"]["confidence"]) if c < 0.5]
        print(f"            snapcut frames with confidence < 0.5: {low}")
    if args.sad_frames:
        for name in args.sad_shots.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                res = job_sad(specs[name], args.sad_frames, Path(tmp))
            results[f"{name}_sad"] = res
            for job, r in res.items():
                s = r["sad"]
                print(f"  {name:<9} job {job:<8} SAD first {s[0]:.2f} mean {r['mean']:.2f} "
                      f"last {s[-1]:.2f}  last/first {s[-1] / max(s[0], 1e-9):.2f}  "
                      f"x given {r['ratio_to_given']:.2f}  {r['s_per_frame']:.2f} s/frame",
                      flush=True)  # fmt: skip
                if "drift" in r:
                    print(f"            {r['drift']}")
    if args.speed:
        speed = speed_1080p()
        results["speed_1080p"] = speed
        print("  1920x1080 propagation s/frame: "
              + ", ".join(f"{b} {s:.3f}" for b, s in speed.items()))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
