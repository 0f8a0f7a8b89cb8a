#!/usr/bin/env bash
# One-shot GPU training of the small matte network, for a machine lent for a few minutes.
#
#   OUT=/some/folder bash benchmarks/gpu_train.sh            # on the GPU machine
#   OUT=/tmp/x DRY_RUN=1 bash benchmarks/gpu_train.sh        # CPU dry run, tiny budget (tested)
#
# What it does, in the repository root:
#   1. checks/installs what it needs: torch (any CUDA build already on the machine is used;
#      otherwise `pip install` from the index or from $WHEELS, a folder of wheels), the
#      project itself (`pip install --no-deps -e .`) and its pure-Python/wheel dependencies;
#   2. fine-tunes weights/matte_small.safetensors with weights/matte_small_photos.yaml
#      (footage-like data, learned band gate) at a larger crop and batch with bfloat16 AMP
#      for a fixed budget (BUDGET_MIN, default 8 minutes; the trainer stops and exports);
#   3. evaluates the result and the shipped weights on the same held-out shots over real
#      photographs with rough masks (python -m vfxmatte.train.report --photos --rough);
#   4. leaves in $OUT: run/ (weights, config.yaml, log.csv, eval.jsonl), eval_new/,
#      eval_shipped/ (heldout.json + previews), gpu_train.log, nvidia-smi.txt, env.txt.
# Nothing in the project depends on this script or on its results.
set -euo pipefail

: "${OUT:?set OUT to the folder the results go to}"
DRY_RUN="${DRY_RUN:-0}"
BUDGET_MIN="${BUDGET_MIN:-8}"
PY="${PYTHON:-python3}"
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_train.log") 2>&1
echo "gpu_train.sh $(date -u +%FT%TZ) dry_run=$DRY_RUN budget=${BUDGET_MIN}min"

# -- 1. what it needs ----------------------------------------------------------------------
pip_install() {
    if [ -n "${WHEELS:-}" ]; then
        "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$@"
    else
        "$PY" -m pip install -q "$@"
    fi
}
if ! "$PY" -c "import torch" 2>/dev/null; then
    pip_install "torch>=2.1,<2.14"
fi
missing=$("$PY" - <<'EOF'
import importlib.util
need = {"numpy": "numpy", "cv2": "opencv-python-headless", "OpenImageIO": "OpenImageIO",
        "yaml": "pyyaml", "tqdm": "tqdm", "psutil": "psutil", "scipy": "scipy",
        "safetensors": "safetensors", "av": "av", "skimage": "scikit-image"}
print(" ".join(p for m, p in need.items() if importlib.util.find_spec(m) is None))
EOF
)
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    pip_install $missing
fi
if ! "$PY" -c "import vfxmatte" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-build-isolation -e .
fi
"$PY" -c "import torch, vfxmatte; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee "$OUT/env.txt"
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" || true

# -- 2. train --------------------------------------------------------------------------------
if [ "$DRY_RUN" = "1" ]; then
    DEVICE=cpu
    SET=(--set steps=2 --set data.crop_size=64 --set data.batch_size=2 --set time_limit=1
         --set eval_samples=1 --set eval_size=128 --set previews=1 --set checkpoint_every=1
         --set threads=1)
    FRAMES=1; SIZE=128
else
    DEVICE=cuda
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
    SET=(--set steps=4000 --set data.crop_size=320 --set data.batch_size=24
         --set "time_limit=$BUDGET_MIN" --set optim.lr=0.0008 --set optim.warmup_steps=50
         --set eval_samples=12 --set checkpoint_every=200 --set threads=0)
    FRAMES=24; SIZE=512
fi
rm -rf "$OUT/run"
start=$(date +%s)
"$PY" -m vfxmatte train weights/matte_small_photos.yaml --set "out_dir=$OUT/run" \
    --set "device=$DEVICE" --set optim.amp=true --set seed=180 "${SET[@]}"
echo "training wall time: $(( $(date +%s) - start )) s"

# -- 3. evaluate, new and shipped weights on the same frames ---------------------------------
for which in new shipped; do
    weights="$OUT/run/matte_small.safetensors"
    [ "$which" = shipped ] && weights=weights/matte_small.safetensors
    "$PY" -m vfxmatte.train.report --matte "$weights" --photos --rough --iterations 1 \
        --frames "$FRAMES" --size "$SIZE" --previews 2 --out "$OUT/eval_$which"
done
echo "done: $OUT"
