"""Install vfxmatte as a pipeline does and run the learned path from outside the repository.

    python tests/hosts/wheel_check.py [--keep DIR]

Standard library only. Steps (each prints one line; exit status 0 when all passed):

1. ``pip wheel`` of this checkout (no dependencies): its size, build time, and that it
   carries every shipped weight file as ``vfxmatte/_weights/``.
2. A fresh venv (no system site-packages) with ``torch==2.13.0`` first (so pip keeps that
   build) and the wheel with the ``classical`` extra, as the README's Nuke section does.
3. From a folder outside the checkout, with an empty ``VFXMATTE_HOME``: ``vfxmatte synth``
   a small shot and ``vfxmatte matte`` it with ``--matte.backend network
   --refine.backend sparse --decontaminate.backend network``, no weight flags: the run
   must find the weights inside the installed package and write every frame.
4. ``VFXMATTE_HOME/weights/`` still overrides: a damaged ``matte_small.safetensors``
   there must stop the run with a sentence naming that file (no traceback).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ("matte_small.safetensors", "refine.safetensors", "colour.safetensors")
FRAMES = 3


def log(message: str) -> None:
    print(f"[wheel_check {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(*args: str | Path, env: dict | None = None, cwd: Path | None = None, check=True):
    result = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True
    )
    if check and result.returncode:
        raise SystemExit(
            f"FAILED ({result.returncode}): {' '.join(map(str, args))}\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def clean_env(home: Path) -> dict:
    """The environment of a user's shell: no PYTHONPATH or venv of ours leaking in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(VFXMATTE_HOME=str(home), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.setdefault("NUMBA_NUM_THREADS", "1")
    return env


def check(work: Path) -> None:
    dist = work / "dist"
    start = time.monotonic()
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT)
    (wheel,) = dist.glob("vfxmatte-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [w for w in WEIGHTS if f"vfxmatte/_weights/{w}" not in names]
    if missing:
        raise SystemExit(f"FAILED: the wheel lacks {missing}")
    log(
        f"ok wheel {wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB, built in "
        f"{time.monotonic() - start:.0f} s, carries {', '.join(WEIGHTS)}"
    )

    start = time.monotonic()
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q", "--progress-bar", "off"]
    run(*pip, "torch==2.13.0")
    run(*pip, f"{wheel}[classical]")
    log(f"ok fresh venv with the wheel[classical] in {time.monotonic() - start:.0f} s")

    home, elsewhere = work / "home", work / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = clean_env(home)
    where = run(
        python, "-c", "import vfxmatte, vfxmatte.weights as w; "
        "print(vfxmatte.__file__); print(w.shipped_weights('matte'))",
        env=env, cwd=elsewhere,
    ).stdout.split()  # fmt: skip
    site = str(venv.resolve())
    if not (where[0].startswith(site) and where[1].startswith(site) and "_weights" in where[1]):
        raise SystemExit(f"FAILED: vfxmatte or its weights not from the venv: {where}")
    log(f"ok the installed package finds {where[1]}")

    vfxmatte = venv / "bin" / "vfxmatte"
    run(vfxmatte, "synth", "shot", "--width", "96", "--height", "64", "--frames", FRAMES,
        "--objects", "1", env=env, cwd=elsewhere)  # fmt: skip
    learned = [
        vfxmatte, "matte", "shot/plate/plate.####.exr", "-m", "shot/mask.png",
        "-o", "out/shot.####.exr", "--matte.backend", "network",
        "--refine.backend", "sparse", "--decontaminate.backend", "network",
    ]  # fmt: skip
    start = time.monotonic()
    result = run(*learned, env=env, cwd=elsewhere)
    written = sorted((elsewhere / "out").glob("shot.*.exr"))
    if len(written) != FRAMES:
        raise SystemExit(f"FAILED: {len(written)} of {FRAMES} frames written\n{result.stdout}")
    log(
        f"ok the learned path from {elsewhere}: {FRAMES} frames in {time.monotonic() - start:.0f} s"
    )

    (home / "weights").mkdir()
    damaged = home / "weights" / "matte_small.safetensors"
    damaged.write_bytes(b"not a checkpoint")
    result = run(*learned[:6], "out2/shot.####.exr", *learned[7:], env=env, cwd=elsewhere,
                 check=False)  # fmt: skip
    said = result.stdout + result.stderr
    if result.returncode == 0 or str(damaged) not in said or "Traceback" in said:
        raise SystemExit(f"FAILED: VFXMATTE_HOME/weights did not override:\n{said[-3000:]}")
    log("ok $VFXMATTE_HOME/weights overrides the packaged weights (a damaged file is named)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp one)")
    args = parser.parse_args()
    start = time.monotonic()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=False)
        check(Path(args.keep).resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="vfxmatte-wheel-") as tmp:
            check(Path(tmp).resolve())
    log(f"all passed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
