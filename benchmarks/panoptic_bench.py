"""Panoptic matting: seconds per frame against the number of segments, shared vs per-segment.

A synthetic 1080p frame (:func:`vfxmatte.panoptic.scene.panoptic_scene`) is cut
into ``N`` segments in front of the background (``N`` = 1, 4, 16: objects, then
stuff strata once the six objects are used) plus the background, and matted with
``panoptic.sharing=shared`` (one image check, each segment in its own box, one
matting Laplacian over the union of the bands, the background's band as wide as
its neighbours') and with ``sharing=none`` (the classical matte stage on the whole
frame once per segment), the baseline, in the same run. Each configuration runs in
a fresh process (its peak RSS is its own) after a warm-up on a small frame (imports,
numba compilation). Printed per row: seconds per frame for the layers (matting,
composition, per-layer foregrounds; wall clock and CPU time, the latter less
sensitive to other load on the machine), seconds per layer, the EXR write time, peak
RSS, the SAD of the layers against the exact ones, and at the end the ratio of the
16-segment to the 1-segment time for both modes.

Usage: python benchmarks/panoptic_bench.py [--quick] [--repeats 1] [--json F]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402

SEGMENTS = (1, 4, 16)
MODES = ("shared", "none")


def _scene(width: int, height: int, segments: int):  # noqa: ANN202
    from vfxmatte.panoptic.scene import panoptic_scene
    from vfxmatte.synth import ShotSpec

    objects = min(segments, 6)
    spec = ShotSpec(width=width, height=height, objects=objects, seed=1, frames=12)
    return panoptic_scene(spec, 0, stuff=segments - objects + 1)


def _warm_up(mode: str) -> None:
    from vfxmatte.io.colour import to_display
    from vfxmatte.panoptic.labels import segments_from_label_map
    from vfxmatte.panoptic.matte import PanopticConfig, matte_segments

    scene = _scene(128, 72, 2)
    matte_segments(
        to_display(scene.image, "lin_rec709", clip=True), scene.image,
        segments_from_label_map(scene.labels), PanopticConfig(sharing=mode),
    )  # fmt: skip


def measure(args: tuple[int, int, int, str, int]) -> dict[str, float]:
    """One (size, segments, mode), in a fresh process."""
    import numpy as np

    from vfxmatte.io.colour import to_display
    from vfxmatte.panoptic.labels import segments_from_label_map
    from vfxmatte.panoptic.matte import PanopticConfig, matte_segments
    from vfxmatte.panoptic.run import write_panoptic

    width, height, count, mode, repeats = args
    _warm_up(mode)
    scene = _scene(width, height, count)
    segments = segments_from_label_map(scene.labels)
    display = to_display(scene.image, "lin_rec709", clip=True)
    config = PanopticConfig(sharing=mode)
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = matte_segments(display, scene.image, segments, config)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        write_panoptic(os.path.join(folder, "p.exr"), result, scene.image, config)
        write_s = time.perf_counter() - start
    exact = scene.layers[[scene.ids.index(s.id) for s in segments]]
    hard = (np.arange(len(segments))[:, None, None] == np.searchsorted(
        [s.id for s in segments], scene.labels)[None]).astype(np.float32)  # fmt: skip
    return {
        "layers": len(segments),
        "seconds": float(np.median(times)),
        "seconds_per_layer": float(np.median(times)) / len(segments),
        "cpu_seconds": float(np.median(cpu)),
        "write_s": write_s,
        "peak_rss_mb": peak_rss_mb(),
        "sad": float(np.abs(result.layers - exact).sum()) / 1000,
        "sad_hard_labels": float(np.abs(hard - exact).sum()) / 1000,
        "max_sum_error": float(np.abs(result.layers.sum(axis=0) - 1).max()),
    }


_WIDTHS = (3, 7, 6, 8, 6, 8, 8, 7, 7, 8, 10)


def _row(cells: tuple) -> str:
    """One table row, the mode left-aligned and the rest right-aligned."""
    return " ".join(
        f"{c!s:<{w}}" if i == 1 else f"{c!s:>{w}}"
        for i, (c, w) in enumerate(zip(cells, _WIDTHS, strict=True))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="480x270 instead of 1920x1080")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row (median)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    width, height = (480, 270) if args.quick else (1920, 1080)
    print(
        f"Panoptic matting at {width}x{height} on {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}; N segments in front of the background (N+1 layers)"
    )
    header = ("N", "mode", "layers", "s/frame", "cpu s", "s/layer", "write s", "RSS MB", "SAD",
              "SAD hard", "max|sum-1|")  # fmt: skip
    print(_row(header))
    ctx = mp.get_context("spawn")
    rows: dict[str, dict[str, float]] = {}
    for count in SEGMENTS:
        for mode in MODES:
            with ctx.Pool(1) as pool:
                row = pool.map(measure, [(width, height, count, mode, args.repeats)])[0]
            rows[f"{count}/{mode}"] = row
            cells = (count, mode, row["layers"], f"{row['seconds']:.2f}",
                     f"{row['cpu_seconds']:.2f}", f"{row['seconds_per_layer']:.3f}",
                     f"{row['write_s']:.2f}", f"{row['peak_rss_mb']:.0f}", f"{row['sad']:.2f}",
                     f"{row['sad_hard_labels']:.2f}", f"{row['max_sum_error']:.1e}")  # fmt: skip
            print(_row(cells), flush=True)
    ratios = {m: rows[f"16/{m}"]["seconds"] / rows[f"1/{m}"]["seconds"] for m in MODES}
    speedup = {n: rows[f"{n}/none"]["seconds"] / rows[f"{n}/shared"]["seconds"] for n in SEGMENTS}
    print(
        "16-vs-1 segments time ratio: "
        + ", ".join(f"{m} {r:.2f}x" for m, r in ratios.items())
        + f" (segments 16x, layers {rows['16/shared']['layers']}/{rows['1/shared']['layers']})"
    )
    print("shared vs none speed-up: " + ", ".join(f"N={n} {s:.2f}x" for n, s in speedup.items()))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "size": [width, height],
                    "rows": rows,
                    "ratio_16_vs_1": ratios,
                    "speedup_shared_vs_none": {str(n): s for n, s in speedup.items()},
                },
                indent=2,
            )  # fmt: skip
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
