"""What the write guard, the lock and the settings digest cost, against frame I/O.

Figures, all measured in this run:

* the up-front guard of a run (every output path of every frame resolved and
  compared with every plate frame, locations probed, lock taken, stale temps looked
  for) for a shot of ``--frames`` frames and 5 output kinds plus previews, against
  reading **one** 1080p EXR plate frame (the I/O floor of one frame);
* the resume check of one complete frame (:meth:`OutputSet.is_complete`) with the
  settings digest against the check without it (size and channels only, the old rule);
* the settings header of one frame (:meth:`FrameSettings.header`) against writing
  one 1080p half EXR frame.

Usage: ``python benchmarks/write_guard_bench.py [--frames 1000] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.digest import run_settings
from vfxmatte.engine.outputs import FrameResult, OutputConfig, OutputSet
from vfxmatte.engine.paths import guarded_run
from vfxmatte.engine.stages import ColourContext
from vfxmatte.io.frame import Frame
from vfxmatte.io.image import read_image, write_image


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also save the figures here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vfxmatte-guard-bench-"))
    frames = list(range(1001, 1001 + args.frames))
    (root / "plates").mkdir()
    big = np.random.default_rng(0).random((1080, 1920, 3), dtype=np.float32)
    write_image(root / "plates" / "p.1001.exr", big, ["R", "G", "B"])
    for f in frames[1:]:  # the guard only looks at names: the other frames are links
        os.link(root / "plates" / "p.1001.exr", root / "plates" / f"p.{f}.exr")
    (root / "mask.png").write_bytes(b"")
    config = PipelineConfig(
        plate=str(root / "plates" / "p.####.exr"),
        mask=str(root / "mask.png"),
        output=str(root / "out" / "m.####.exr"),
    )
    config.output_options = OutputConfig(
        kinds="rgba,alpha,fg,confidence,multilayer", preview="checker"
    )

    def guard() -> None:
        with guarded_run(config):
            pass

    read_one = _best(lambda: read_image(root / "plates" / "p.1001.exr"), args.repeat)
    guard_s = _best(guard, args.repeat)

    # Resume check of one complete frame, small files (the check reads headers only).
    small = PipelineConfig(
        plate=config.plate, mask=config.mask, output=str(root / "o" / "m.####.exr")
    )
    small.output_options = OutputConfig(kinds="rgba,alpha")
    first = Frame(1001, big[:8, :8], ("R", "G", "B"), {}, str(root / "plates" / "p.1001.exr"))
    colour = ColourContext.resolve("auto", first)
    settings = run_settings(small, colour, frames)
    with_digest = OutputSet(small.output, small.output_options, settings)
    without = OutputSet(small.output, small.output_options)
    result = FrameResult(
        1001, np.ones((8, 8), np.float32), big[:8, :8], np.ones((8, 8), np.float32), {}
    )
    with_digest.write(result)
    assert with_digest.is_complete(1001, 8, 8) and without.is_complete(1001, 8, 8)
    n = 200
    check_new = _best(lambda: [with_digest.is_complete(1001, 8, 8) for _ in range(n)], 3) / n
    check_old = _best(lambda: [without.is_complete(1001, 8, 8) for _ in range(n)], 3) / n
    header = _best(lambda: [settings.header(1001) for _ in range(n)], 3) / n
    write_one = _best(
        lambda: write_image(root / "w.exr", np.concatenate([big, big[..., :1]], 2), list("RGBA")), 3
    )
    figures = {
        "frames": args.frames,
        "guard_ms": guard_s * 1e3,
        "read_one_1080p_frame_ms": read_one * 1e3,
        "guard_in_frame_reads": guard_s / read_one,
        "resume_check_with_digest_ms": check_new * 1e3,
        "resume_check_without_digest_ms": check_old * 1e3,
        "settings_header_ms": header * 1e3,
        "write_one_1080p_rgba_half_ms": write_one * 1e3,
    }
    print(f"guard of a {args.frames}-frame run, 5 kinds + previews: {figures['guard_ms']:.1f} ms")
    print(
        f"  baseline: reading one 1080p EXR frame {figures['read_one_1080p_frame_ms']:.1f} ms "
        f"-> the guard costs {figures['guard_in_frame_reads']:.2f} frame read(s)"
    )
    print(
        f"resume check of one frame: {figures['resume_check_with_digest_ms']:.3f} ms with the "
        f"digest, {figures['resume_check_without_digest_ms']:.3f} ms without (baseline)"
    )
    print(
        f"settings header of one frame: {figures['settings_header_ms']:.3f} ms; baseline: "
        f"writing one 1080p RGBA half EXR {figures['write_one_1080p_rgba_half_ms']:.1f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
