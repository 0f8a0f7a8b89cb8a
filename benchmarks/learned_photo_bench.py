"""The learned path on real photographs: network vs guidance vs classical, same frames, same run.

Two sets:

* **held-out shots over real photographs** (``held_out_frames(photos=True)``): the
  backdrop and the objects' textures are crops of the held-out photos (coffee,
  china, grace_hopper, Desk, Tree), so colour does not separate object from
  background; exact GT alpha and foreground. Each frame is scored with two kinds
  of per-frame guidance: ``dilated`` (GT > 0.5 grown by 3-9 px, what the old
  tables used) and ``rough`` (edge off by 1-8 px either way plus a wobble of
  +-3 px, as a propagated mask is). Alpha SAD/MSE/Grad/Conn of the guidance, the
  classical default and each network (one plain pass and T=3 decoding), and the
  band foreground MSE (GT alpha) of the plate, multilevel and each colour network.
* **eyeball photos** (scikit-image astronaut and chelsea the cat, role
  ``eyeball``, never trained on) with hand-drawn rough polygon masks: no GT, PNG
  previews only (photo | mask | classical | each network), to look for holes.

Usage: python benchmarks/learned_photo_bench.py [--frames 12] [--size 512]
       [--matte NAME=PATH ...] [--colour NAME=PATH ...] [--json F] [--previews DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

SHIPPED = Path(__file__).resolve().parent.parent / "weights"

# Rough masks of the eyeball photos: polygons (x, y) drawn by eye around the subject.
EYEBALL = {
    "astronaut": [(225, 12), (275, 25), (300, 70), (295, 140), (300, 180), (310, 230),
                  (345, 260), (360, 340), (420, 345), (480, 380), (505, 450), (505, 512),
                  (25, 512), (20, 380), (40, 280), (70, 240), (120, 200), (125, 170),
                  (160, 140), (150, 80), (170, 35)],
    "chelsea": [(0, 0), (330, 0), (380, 20), (385, 80), (375, 150), (360, 230), (330, 300),
                (0, 300)],
}  # fmt: skip


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        name, _, path = v.partition("=")
        out[name] = path
    return out


def _nets(mattes: dict[str, str]) -> dict[str, object]:
    from vfxmatte.matte.network.backend import NetworkMatte
    from vfxmatte.matte.network.options import NetworkMatteConfig

    nets: dict[str, object] = {}
    for name, path in mattes.items():
        for t in (1, 3):
            cfg = NetworkMatteConfig(weights=path, device="cpu", iterations=t, working_size=1024)
            nets[f"{name}, T={t}"] = NetworkMatte(cfg)
        if name.startswith("previous"):  # the older weights as they were before the band gate
            ungated = NetworkMatte(NetworkMatteConfig(weights=path, device="cpu", iterations=1))
            ungated.model.band_max = 0.0
            nets[f"{name}, T=1, no band gate"] = ungated
    return nets


def alpha_table(frames: list, nets: dict[str, object]) -> tuple[dict, dict]:
    from vfxmatte.matte.classical import matte_classical
    from vfxmatte.train.evaluation import evaluate_matte

    methods = {
        "guidance": lambda i, g: g,
        "classical (default)": lambda i, g: matte_classical(i, g)[0],
    }
    methods.update({k: (lambda i, g, n=n: n(i, g)[0]) for k, n in nets.items()})
    rows, preds = {}, {}
    for name, fn in methods.items():
        start = time.perf_counter()
        acc, preds[name] = evaluate_matte(fn, frames)
        rows[name] = {
            k: float(v) for k, v in acc.mean().items() if k in ("SAD", "MSE", "Grad", "Conn")
        }
        rows[name]["s/frame"] = (time.perf_counter() - start) / len(frames)
        # worst frame of this method relative to the guidance (never worse: <= 1)
        sads = [float(np.abs(p - f.alpha).sum()) for p, f in zip(preds[name], frames, strict=True)]
        base = [float(np.abs(f.guidance - f.alpha).sum()) for f in frames]
        rows[name]["worst SAD / guidance"] = max(
            s / max(b, 1e-6) for s, b in zip(sads, base, strict=True)
        )
    return rows, preds


def eyeball(nets: dict[str, object], out: Path) -> list[str]:
    from vfxmatte.io.colour import linear_to_srgb
    from vfxmatte.matte.classical import matte_classical
    from vfxmatte.synth.photos import load_photo
    from vfxmatte.train.evaluation import write_preview

    written = []
    for name, poly in EYEBALL.items():
        image = np.clip(linear_to_srgb(load_photo(name)), 0, 1).astype(np.float32)
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.array(poly, np.int32)], 1)
        guide = mask.astype(np.float32)
        panels = [image, guide, matte_classical(image, guide)[0]]
        panels += [
            n(image, guide)[0] for k, n in nets.items() if k.endswith("T=1") or "no band" in k
        ]
        path = out / f"eyeball_{name}.png"
        write_preview(path, panels)
        written.append(str(path))
    return written


def colour_table(frames: list, colours: dict[str, str]) -> dict[str, float]:
    from vfxmatte.decontaminate.multilevel import estimate_foreground_multilevel
    from vfxmatte.decontaminate.network import NetworkForeground, NetworkForegroundConfig

    methods = {
        "plate (F = I)": lambda p, a: p,
        "multilevel (default)": estimate_foreground_multilevel,
    }
    for name, path in colours.items():
        methods[name] = NetworkForeground(NetworkForegroundConfig(weights=path, device="cpu"))
    out = {}
    for name, fn in methods.items():
        errs = []
        for f in frames:
            band = (f.alpha > 0) & (f.alpha < 1)
            if band.any():
                pred = np.clip(fn(f.plate, f.alpha), 0, 1)
                errs.append(float(((pred - np.clip(f.fg_linear, 0, 1)) ** 2)[band].mean()))
        out[name] = float(np.mean(errs))
    return out


def main() -> None:
    import torch

    from vfxmatte.train.evaluation import held_out_frames, write_preview

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--offset", type=int, default=2000)
    parser.add_argument("--matte", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--colour", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--json", default="")
    parser.add_argument("--previews", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    mattes = {**_pairs(args.matte), "shipped": str(SHIPPED / "matte_small.safetensors")}
    colours = {"shipped colour": str(SHIPPED / "colour.safetensors"), **_pairs(args.colour)}
    nets = _nets(mattes)
    report: dict = {"frames": args.frames, "size": args.size, "offset": args.offset,
                    "mattes": mattes, "colours": colours}  # fmt: skip
    out = Path(args.previews) if args.previews else None
    for rough in (False, True):
        frames = held_out_frames(args.frames, args.size, args.offset, photos=True, rough=rough)
        key = "rough" if rough else "dilated"
        rows, preds = alpha_table(frames, nets)
        report[f"alpha_{key}"] = rows
        print(f"\n{key} guidance, {len(frames)} frames over held-out photos ({args.size} px)")
        print("| method | SAD | MSE x1e3 | Grad | Conn | worst SAD/guidance | s/frame |")
        print("|---|---|---|---|---|---|---|")
        for name, r in rows.items():
            worst = r["worst SAD / guidance"]
            print(
                f"| {name} | {r['SAD']:.3f} | {r['MSE'] * 1e3:.2f} | {r['Grad']:.2f} | "
                f"{r['Conn']:.3f} | {worst:.2f} | {r['s/frame']:.2f} |"
            )
        if out is not None:
            shown = [k for k in preds if k in ("classical (default)",) or k.endswith("T=1")]
            for i, f in enumerate(frames[:3]):
                panels = [f.image, f.guidance, *(preds[k][i] for k in shown), f.alpha]
                write_preview(out / f"{key}_{i}.png", panels)
        if not rough:
            report["colour_band_mse"] = colour_table(frames, colours)
            print("\nband foreground MSE x1e3 (GT alpha)")
            for name, v in report["colour_band_mse"].items():
                print(f"| {name} | {v * 1e3:.3f} |")
    if out is not None:
        report["eyeball_previews"] = eyeball(nets, out)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
