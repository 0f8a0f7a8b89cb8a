#!/usr/bin/env bash
# One-shot GPU benchmark of vfxmatte: prepare a CUDA environment, then print in one run
# the network path s/frame at 1080p and 4K (fp16), sparse refinement spconv-CUDA vs the
# torch path vs dense, SAM 2.1 tiny propagation fps (random weights) and peak GPU memory;
# JSON under benchmarks/results/ (benchmarks/gpu_bench.py does the measuring).
#
#   benchmarks/gpu_bench.sh             on a machine with an NVIDIA GPU
#   benchmarks/gpu_bench.sh --dry-run   anywhere: print the set-up steps, run the
#                                       measurements tiny on CPU (checks the script)
#
# Environment: GPU_VENV (default .venv-gpu: a venv made for this, with the system's
# site packages so a CUDA torch already installed there is used), PIP_EXTRA (more pip
# arguments, e.g. --no-index --find-links /wheels on a machine without network),
# SPCONV (default: spconv-cu120 for a CUDA 12.0 torch build, spconv-cu121 for later ones;
# "none" to skip), STEP_TIMEOUT (seconds per step, default 900).
# Nothing here is needed by the project: every test and benchmark runs on CPU.
set -euo pipefail

cd "$(dirname "$0")/.."
DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
GPU_VENV="${GPU_VENV:-.venv-gpu}"
STEP_TIMEOUT="${STEP_TIMEOUT:-900}"
PIP_EXTRA="${PIP_EXTRA:-}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT_JSON="benchmarks/results/gpu_bench_${STAMP}.json"

say() { printf '[gpu_bench] %s\n' "$*"; }
run() {  # run a set-up step (printed only in a dry run)
    say "+ $*"
    if [[ "$DRY_RUN" == 0 ]]; then
        timeout "$STEP_TIMEOUT" "$@"
    fi
}

if [[ "$DRY_RUN" == 1 ]]; then
    say "dry run: set-up steps are printed, not run; measurements run tiny on CPU"
    PY="${PYTHON:-python3}"
else
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        say "no nvidia-smi: this machine has no NVIDIA GPU; use --dry-run to check the script"
        exit 2
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    if [[ ! -x "$GPU_VENV/bin/python" ]]; then
        run python3 -m venv --system-site-packages "$GPU_VENV"
    fi
    PY="$GPU_VENV/bin/python"
fi

# 1. torch with CUDA: keep one already there, else the index's default Linux wheel
#    (a CUDA build). 2. vfxmatte itself (no deps beyond what it needs), sam2 without deps.
if [[ "$DRY_RUN" == 0 ]] && "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    say "torch with CUDA already installed: $("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)')"
else
    # shellcheck disable=SC2086
    run "$PY" -m pip install $PIP_EXTRA "torch==2.13.0"
fi
# shellcheck disable=SC2086
run "$PY" -m pip install $PIP_EXTRA -e ".[distributed]"
# shellcheck disable=SC2086
run "$PY" -m pip install $PIP_EXTRA --no-deps "sam2==1.1.0"

# 3. spconv for the torch build's CUDA: cu120 for 12.0, cu121 for later 12.x and on
#    (the newest CUDA wheel spconv publishes; later runtimes load it).
SPCONV="${SPCONV:-}"
if [[ -z "$SPCONV" ]]; then
    CUDA_VER="$("$PY" -c 'import torch; print(torch.version.cuda or "")' 2>/dev/null || true)"
    case "$CUDA_VER" in
        12.0*) SPCONV="spconv-cu120" ;;
        *) SPCONV="spconv-cu121" ;;
    esac
fi
if [[ "$SPCONV" != "none" ]]; then
    # shellcheck disable=SC2086
    run "$PY" -m pip install $PIP_EXTRA "$SPCONV" || say "could not install $SPCONV: the sparse part reports spconv missing"
fi

# 4. The measurements, one process.
mkdir -p benchmarks/results
if [[ "$DRY_RUN" == 1 ]]; then
    OUT_JSON="${TMPDIR:-/tmp}/gpu_bench_dry_${STAMP}.json"
    timeout "$STEP_TIMEOUT" "$PY" benchmarks/gpu_bench.py --device cpu --quick --json "$OUT_JSON"
else
    timeout "$STEP_TIMEOUT" "$PY" benchmarks/gpu_bench.py --device cuda --half --json "$OUT_JSON"
fi
say "results: $OUT_JSON"
