"""Mask-guided matting measured apart from propagation: trimap, solver, time, foreground.

Every method gets the same per-frame guidance made from the ground truth as in
Mask-guided Matting in the Wild (Park et al., CVPR 2023): ``alpha > 0.5`` dilated by
25 px (``ShotSpec.mask_dilate=25``), so that what is measured is how well a matte is
recovered from a correct but coarse mask, not how well the mask was propagated.

Shots: held-out synthetic shots over **real photographs** (``photo_role='heldout'``:
backdrop and object textures from the scikit-image / scikit-learn / matplotlib
sample photos and ``../shared/real/*.exr``), one shot per photograph, hairy objects
with a translucent veil, moving and turning.

Rows, all in one run:

* ``guidance``: the mask itself as alpha, the plate as foreground;
* ``pymatting cf, erode/dilate``: what a user has: ``pymatting.estimate_alpha_cf``
  with a trimap of the mask eroded and dilated by ``--ed-radius`` px, foreground by
  ``pymatting.estimate_foreground_ml`` on the scene-linear plate;
* ``default before (legacy)``: the classical backend with ``legacy=True`` (the
  previous default: geodesic trimap) and the multilevel decontamination;
* ``default``: the classical backend and decontamination as configured by default;
* ``GT trimap ceiling``: the same pymatting closed-form solve with a trimap made from
  the ground truth (unknown = ``0.01 < alpha < 0.99`` dilated by ``--gt-radius`` px),
  foreground from the default decontamination; ``GT trimap, wider`` the same with
  ``--gt-wide-radius`` px (a looser ceiling).

Columns: SAD, MSE, Grad, Conn (Composition-1k scales, whole frame), dtSSD (the shot's
frames in order, RVM's scale), band fg MSE (x 1e3, scene-linear, over ``0 < gt alpha
< 1``) and s/frame (matte + foreground, wall clock, this process). A second table
compares the foreground estimators **on the same alpha** (ground truth, and the default
matte's): ``estimate_foreground_ml`` (pymatting, on the linear plate), the multilevel
backend (the same solver with the plate mapped into its range) and the default.

With ``--previews DIR`` also one PNG per eyeball photo (the scikit-image astronaut and
cat with rough polygon masks, no truth): trimap | alpha | composite over a real photo
for the previous and the current default.

Usage: OMP_NUM_THREADS=1 python benchmarks/matte_bench.py [--width 480 --height 270]
       [--frames 4] [--photos coffee,Desk] [--previews DIR] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vfxmatte import metrics
from vfxmatte.decontaminate.multilevel import estimate_foreground_multilevel
from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.synth.photos import find_photos
from vfxmatte.synth.shot import ShotSpec, make_shot

sys.path.insert(0, str(Path(__file__).parent))
from learned_photo_bench import EYEBALL  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "matte_bench.json"
GUIDANCE_DILATE = 25  # px, the MGMatting-in-the-wild protocol
# (alpha, fg, seconds) of one frame, from (display, linear, guidance).
Method = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def display_of(linear: np.ndarray) -> np.ndarray:
    """The matte stage's input: sRGB-encoded, clipped to [0, 1], float32."""
    return np.clip(linear_to_srgb(linear), 0.0, 1.0).astype(np.float32)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def erode_dilate_trimap(mask: np.ndarray, radius: int) -> np.ndarray:
    """0 / 0.5 / 1 trimap: the mask eroded (fg) and dilated (not bg) by ``radius`` px."""
    m8 = (mask > 0.5).astype(np.uint8)
    trimap = np.full(m8.shape, 0.5, np.float64)
    trimap[cv2.dilate(m8, _disk(radius)) == 0] = 0.0
    trimap[cv2.erode(m8, _disk(radius)) == 1] = 1.0
    return trimap


def gt_trimap(alpha: np.ndarray, radius: int) -> np.ndarray:
    """0 / 0.5 / 1 trimap from the truth: unknown where it is mixed, dilated."""
    mixed = ((alpha > 0.01) & (alpha < 0.99)).astype(np.uint8)
    unknown = cv2.dilate(mixed, _disk(radius)).astype(bool)
    trimap = (alpha >= 0.5).astype(np.float64)
    trimap[unknown] = 0.5
    return trimap


def pymatting_cf(display: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    import pymatting

    if not (trimap == 0.5).any():
        return trimap.astype(np.float32)
    alpha = pymatting.estimate_alpha_cf(display.astype(np.float64), trimap)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def foreground_ml(linear: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """pymatting's estimate_foreground_ml called as a user would, on the linear plate."""
    import pymatting

    fg = pymatting.estimate_foreground_ml(linear.astype(np.float64), alpha.astype(np.float64))
    return fg.astype(np.float32)


def _default_decontaminate() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from vfxmatte.decontaminate import DECONTAMINATE_BACKENDS
    from vfxmatte.engine.config import DecontaminateStageConfig

    cfg = DecontaminateStageConfig()
    impl = DECONTAMINATE_BACKENDS.load(cfg.backend)
    options = getattr(cfg, cfg.backend, None)
    if isinstance(impl, type):
        return impl(options)
    return lambda linear, alpha: impl(linear, alpha, config=options)


def classical_backend(**overrides: Any) -> Any:
    """The classical matte backend, built as the engine builds it (a stateful object)."""
    from vfxmatte.engine.stages import _bind
    from vfxmatte.matte import MATTE_BACKENDS
    from vfxmatte.matte.classical import ClassicalMatteConfig

    fields = {f.name for f in dataclasses.fields(ClassicalMatteConfig)}
    cfg = ClassicalMatteConfig(**{k: v for k, v in overrides.items() if k in fields})

    class _Section:
        classical = cfg

    return _bind(MATTE_BACKENDS, "classical", _Section)


def _has_legacy() -> bool:
    from vfxmatte.matte.classical import ClassicalMatteConfig

    return "legacy" in {f.name for f in dataclasses.fields(ClassicalMatteConfig)}


class Methods:
    """The rows of the table; ``reset()`` between shots (temporal state)."""

    def __init__(self, ed_radius: int, gt_radius: int, gt_wide_radius: int) -> None:
        self.ed_radius = ed_radius
        self.gt_radius = gt_radius
        self.gt_wide_radius = gt_wide_radius
        self.decontaminate = _default_decontaminate()
        self._fresh()

    def _fresh(self) -> None:
        self.before = classical_backend(legacy=True) if _has_legacy() else classical_backend()
        self.after = classical_backend()
        self.steady = classical_backend(temporal_weight=0.5)
        self.independent = classical_backend(temporal_weight=0.0)

    def reset(self) -> None:
        self._fresh()

    def names(self) -> list[str]:
        return [
            "guidance",
            "pymatting cf, erode/dilate",
            "default before (legacy)",
            "default",
            "infer, temporal prior 0.5",
            "infer, no temporal prior",
            "GT trimap ceiling",
            "GT trimap, wider",
        ]

    def run(
        self,
        name: str,
        display: np.ndarray,
        linear: np.ndarray,
        guide: np.ndarray,
        gt: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        if name == "guidance":
            return guide, np.where(guide[..., None] > 0, linear, 0.0).astype(np.float32)
        if name == "pymatting cf, erode/dilate":
            alpha = pymatting_cf(display, erode_dilate_trimap(guide, self.ed_radius))
            return alpha, foreground_ml(linear, alpha)
        if name == "default before (legacy)":
            alpha = _alpha_of(self.before(display, guide))
            return alpha, estimate_foreground_multilevel(linear, alpha)
        if name in ("default", "infer, temporal prior 0.5", "infer, no temporal prior"):
            backend = {
                "default": self.after,
                "infer, temporal prior 0.5": self.steady,
                "infer, no temporal prior": self.independent,
            }[name]
            alpha = _alpha_of(backend(display, guide))
            return alpha, self.decontaminate(linear, alpha)
        if name in ("GT trimap ceiling", "GT trimap, wider"):
            radius = self.gt_radius if name == "GT trimap ceiling" else self.gt_wide_radius
            alpha = pymatting_cf(display, gt_trimap(gt, radius))
            return alpha, self.decontaminate(linear, alpha)
        raise KeyError(name)


def _alpha_of(result: Any) -> np.ndarray:
    alpha = result[0] if isinstance(result, tuple) else result.alpha
    return np.asarray(alpha, np.float32)


def band_fg_mse(fg: np.ndarray, gt_fg: np.ndarray, gt_alpha: np.ndarray) -> float:
    """Foreground MSE x 1e3 over the mixed pixels ``0 < gt alpha < 1``, scene-linear.

    Both colours are clipped to [0, 1] first, as in MGMatting's evaluation of
    foreground in [0, 1]: otherwise a few highlights of a linear photograph (up to 64)
    decide the whole figure. That values above 1.0 are kept is checked by the tests.
    """
    band = (gt_alpha > 0.0) & (gt_alpha < 1.0)
    if not band.any():
        return 0.0
    diff = np.clip(fg.astype(np.float64), 0, 1) - np.clip(gt_fg.astype(np.float64), 0, 1)
    err = np.mean(diff**2, axis=2)
    return float(err[band].mean() * 1e3)


def shot_specs(args: argparse.Namespace) -> list[ShotSpec]:
    names = [p.name for p in find_photos("heldout")]
    if args.photos:
        wanted = args.photos.split(",")
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise SystemExit(f"not a held-out photo here: {', '.join(missing)}; have {names}")
        names = wanted
    return [
        ShotSpec(
            width=args.width,
            height=args.height,
            frames=args.frames,
            seed=100 + i,
            background="photo",
            textures="photo",
            photo=name,
            photo_role="heldout",
            mask_dilate=GUIDANCE_DILATE,
            turn=1.5,
            speed=4.0,
        )
        for i, name in enumerate(names)
    ]


def _preview(path: Path, display: np.ndarray, gt: np.ndarray, rows: dict[str, np.ndarray]) -> None:
    """One PNG: the plate and the truth, then each method's alpha, side by side."""
    tiles = [display, np.repeat(gt[..., None], 3, 2)]
    tiles += [np.repeat(a[..., None], 3, 2) for a in rows.values()]
    h, w = gt.shape
    labelled = []
    for tile, label in zip(tiles, ["plate", "truth", *rows], strict=True):
        t = (np.clip(tile, 0, 1) * 255).astype(np.uint8).copy()
        cv2.putText(t, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 0, 0), 1)
        labelled.append(t)
    while len(labelled) % 4:
        labelled.append(np.zeros((h, w, 3), np.uint8))
    grid = np.concatenate(
        [np.concatenate(labelled[i : i + 4], 1) for i in range(0, len(labelled), 4)], 0
    )
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def run_shot(
    spec: ShotSpec, methods: Methods, previews: Path | None
) -> dict[str, dict[str, float]]:
    methods.reset()
    accs = {n: metrics.MetricsAccumulator() for n in methods.names()}
    times: dict[str, list[float]] = {n: [] for n in methods.names()}
    band: dict[str, list[float]] = {n: [] for n in methods.names()}
    same_alpha: dict[str, list[float]] = {}
    for i, frame in enumerate(make_shot(spec)):
        display = display_of(frame.image)
        guide = frame.mask.astype(np.float32)
        alphas = {}
        for name in methods.names():
            t0 = time.perf_counter()
            alpha, fg = methods.run(name, display, frame.image, guide, frame.alpha)
            times[name].append(time.perf_counter() - t0)
            accs[name].add(frame.number, alpha, frame.alpha)
            band[name].append(band_fg_mse(fg, frame.fg, frame.alpha))
            alphas[name] = alpha
        for label, alpha in (("gt alpha", frame.alpha), ("default alpha", alphas["default"])):
            for est, fg in foreground_rows(methods, frame.image, alpha).items():
                same_alpha.setdefault(f"{est} | {label}", []).append(
                    band_fg_mse(fg, frame.fg, frame.alpha)
                )
        if previews is not None and i == spec.frames // 2:
            _preview(previews / f"matte_{spec.photo}.png", display, frame.alpha, alphas)
    out = {}
    for name in methods.names():
        row = accs[name].mean()
        row = {k: row[k] for k in ("SAD", "MSE", "Grad", "Conn", "dtSSD") if k in row}
        row["band fg MSE"] = float(np.mean(band[name]))
        row["s/frame"] = float(np.median(times[name]))
        out[name] = row
    out["_foreground on the same alpha"] = {k: float(np.mean(v)) for k, v in same_alpha.items()}
    return out


def foreground_rows(methods: Methods, linear: np.ndarray, alpha: np.ndarray) -> dict[str, Any]:
    return {
        "estimate_foreground_ml": foreground_ml(linear, alpha),
        "multilevel": estimate_foreground_multilevel(linear, alpha),
        "default": methods.decontaminate(linear, alpha),
    }


def summarise(per_shot: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean over shots of every row and column."""
    rows: dict[str, dict[str, list[float]]] = {}
    for shot in per_shot.values():
        for name, row in shot.items():
            for k, v in row.items():
                rows.setdefault(name, {}).setdefault(k, []).append(v)
    return {n: {k: float(np.mean(v)) for k, v in r.items()} for n, r in rows.items()}


def format_rows(rows: dict[str, dict[str, float]], ceiling: str = "GT trimap ceiling") -> str:
    cols = ["SAD", "MSE", "Grad", "Conn", "dtSSD", "band fg MSE", "s/frame"]
    lines = [f"{'method':32s}" + "".join(f"{c:>12s}" for c in cols) + f"{'SAD/ceil':>10s}"]
    ceil = rows.get(ceiling, {}).get("SAD")
    for name, row in rows.items():
        if name.startswith("_"):
            continue
        line = f"{name:32s}" + "".join(
            f"{row.get(c, float('nan')):12.{4 if c == 'MSE' else 3}f}" for c in cols
        )
        line += f"{row['SAD'] / ceil:10.2f}" if ceil else ""
        lines.append(line)
    same = rows.get("_foreground on the same alpha")
    if same:
        lines.append("band fg MSE x1e3 of the foreground estimators on the same alpha:")
        lines += [f"  {k:48s}{v:10.3f}" for k, v in same.items()]
    return "\n".join(lines)


# Rough masks of the eyeball photos (scikit-image's astronaut and chelsea the cat, no
# truth): the polygons of learned_photo_bench.py.


def eyeball_previews(out: Path, methods: Methods) -> list[Path]:
    """PNG per photo: plate | rough mask, then per method (before, default) its trimap |
    alpha | composite over the coffee photo (linear light, default decontamination)."""
    import skimage.data

    from vfxmatte.io.colour import srgb_to_linear
    from vfxmatte.matte.classical import ClassicalMatteConfig, trimap_classical

    backdrop = skimage.data.coffee().astype(np.float32) / 255.0
    written = []
    for name, polygon in EYEBALL.items():
        display = getattr(skimage.data, name)().astype(np.float32) / 255.0
        h, w = display.shape[:2]
        mask = np.zeros((h, w), np.float32)
        cv2.fillPoly(mask, [np.array(polygon, np.int32)], 1.0)
        linear = srgb_to_linear(display).astype(np.float32)
        bg = srgb_to_linear(cv2.resize(backdrop, (w, h), interpolation=cv2.INTER_AREA))
        rows = [[display, np.repeat(mask[..., None], 3, 2), np.zeros_like(display)]]
        for legacy in (True, False):
            cfg = ClassicalMatteConfig(legacy=legacy)
            alpha = _alpha_of(classical_backend(legacy=legacy)(display, mask))
            trimap = trimap_classical(display, mask, cfg)
            fg = methods.decontaminate(linear, alpha)
            comp = linear_to_srgb(alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg)
            grey = [np.repeat(t[..., None], 3, 2) for t in (trimap, alpha)]
            rows.append([*grey, comp])
        grid = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
        path = out / f"eyeball_{name}.png"
        img8 = (np.clip(grid, 0, 1) * 255).astype(np.uint8)
        cv2.imwrite(str(path), cv2.cvtColor(img8, cv2.COLOR_RGB2BGR))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=270)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--photos", default="", help="comma-separated held-out photos (default all)")
    ap.add_argument(
        "--ed-radius",
        type=int,
        default=30,
        help="erode/dilate radius of the pymatting baseline's trimap, px",
    )
    ap.add_argument("--gt-radius", type=int, default=3, help="dilation of the GT trimap, px")
    ap.add_argument(
        "--gt-wide-radius",
        type=int,
        default=10,
        help="dilation of the second, wider GT trimap row, px",
    )
    ap.add_argument("--previews", default="", help="folder for PNG previews (one per shot)")
    ap.add_argument("--json", default=str(RESULTS))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    previews = Path(args.previews) if args.previews else None
    if previews is not None:
        previews.mkdir(parents=True, exist_ok=True)
    methods = Methods(args.ed_radius, args.gt_radius, args.gt_wide_radius)
    per_shot = {}
    if previews is not None:
        for path in eyeball_previews(previews, methods):
            print(f"wrote {path} (rows: plate | mask; legacy; default)", flush=True)
    for spec in shot_specs(args):
        t0 = time.perf_counter()
        per_shot[spec.photo] = run_shot(spec, methods, previews)
        print(f"== {spec.photo} ({time.perf_counter() - t0:.0f} s)", flush=True)
        print(format_rows(per_shot[spec.photo]), flush=True)
    mean = summarise(per_shot)
    print("== mean over shots")
    print(format_rows(mean))
    result = {
        "benchmark": "matte_bench",
        "protocol": f"per-frame guidance = (gt alpha > 0.5) dilated by {GUIDANCE_DILATE} px",
        "size": [args.width, args.height],
        "frames": args.frames,
        "ed_radius": args.ed_radius,
        "gt_radius": args.gt_radius,
        "gt_wide_radius": args.gt_wide_radius,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "python": sys.version.split()[0],
        "mean": mean,
        "shots": per_shot,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
