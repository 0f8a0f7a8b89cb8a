"""Bit-identity check for restructurings: hash every EXR a fixed job writes.

Two jobs: the demo's config (``vfxmatte demo``'s defaults, on a smaller demo shot so
it runs in about a minute on a shared CPU) and a SAM 2 run with random weights
(``propagate.backend=sam2``, ``random_weights``, image size 256; skipped when the
sam2 package is missing). Each EXR's pixel data (read with OpenImageIO through
``vfxmatte.io.image.read_image``) is hashed with sha256, with its channel names.

    python benchmarks/bit_identity.py --write BASELINE   # before a change
    python benchmarks/bit_identity.py --check BASELINE   # after: per-file equal/different
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
import tempfile


def _hashes(root: str) -> dict[str, str]:
    from vfxmatte.io.image import read_image

    out = {}
    for path in sorted(glob.glob(os.path.join(root, "**", "*.exr"), recursive=True)):
        image = read_image(path)
        digest = hashlib.sha256(",".join(image.channels).encode())
        digest.update(image.pixels.tobytes())
        out[os.path.relpath(path, root)] = digest.hexdigest()
    return out


def _demo(root: str) -> dict[str, str]:
    from vfxmatte.cli.demo import demo_config
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.synth import ShotSpec, write_shot

    shot = write_shot(os.path.join(root, "shot"), ShotSpec(width=320, height=180, frames=8))
    config = demo_config(shot, root)
    config.engine.progress = False
    assert run_pipeline(config).ok
    return _hashes(os.path.join(root, "matte"))


def _sam2(root: str) -> dict[str, str]:
    try:
        import sam2  # noqa: F401
    except ImportError:
        print("sam2 not installed: SAM 2 job skipped", file=sys.stderr)
        return {}
    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.synth import ShotSpec, write_shot

    shot = write_shot(os.path.join(root, "shot"), ShotSpec(width=160, height=96, frames=4, seed=3))
    config = PipelineConfig(
        plate=shot.plate,
        mask=shot.mask,
        output=os.path.join(root, "out", "m.####.exr"),
        guidance_output=os.path.join(root, "out", "guidance", "g.####.exr"),
    )
    config.propagate.backend = "sam2"
    config.propagate.sam2.random_weights = True
    config.propagate.sam2.image_size = 256
    config.engine.progress = False
    assert run_pipeline(config).ok
    return _hashes(os.path.join(root, "out"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="BASELINE")
    group.add_argument("--check", metavar="BASELINE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        now = {"demo": _demo(os.path.join(tmp, "demo")), "sam2": _sam2(os.path.join(tmp, "sam2"))}
    if args.write:
        with open(args.write, "w") as f:
            json.dump(now, f, indent=1, sort_keys=True)
        print(f"wrote {sum(map(len, now.values()))} hashes to {args.write}")
        return 0
    with open(args.check) as f:
        before = json.load(f)
    different = 0
    for job in sorted(before):
        for name in sorted(set(before[job]) | set(now.get(job, {}))):
            a, b = before[job].get(name), now.get(job, {}).get(name)
            state = "equal" if a == b else ("missing" if b is None else "different")
            different += state != "equal"
            print(f"{job}/{name}: {state}")
    print(f"{different} file(s) differ" if different else "all files bit-identical")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
