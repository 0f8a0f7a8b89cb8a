"""Matte a shot from Python: render a small synthetic shot, run the default path, score it.

Run: python examples/matte_from_python.py [OUTDIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.evaluate import evaluate_sequences
from vfxmatte.synth import ShotSpec, write_shot


def main(outdir: str) -> dict[str, float]:
    shot = write_shot(Path(outdir) / "shot", ShotSpec(width=320, height=180, frames=6))
    config = PipelineConfig(
        plate=shot.plate,  # shot/plate/plate.####.exr, scene-linear
        mask=shot.mask,  # coarse mask of the first frame
        output=str(Path(outdir) / "matte" / "shot.####.exr"),
    )
    config.output_options.kinds = "rgba,alpha"
    config.output_options.preview = "checker"
    report = run_pipeline(config, on_progress=lambda e: print(f"frame {e.number}: {e.status}"))
    print(report.summary())
    scores = evaluate_sequences(config.output, shot.alpha).mean()
    print({name: round(value, 4) for name, value in scores.items()})
    return scores


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="vfxmatte_example_"))
