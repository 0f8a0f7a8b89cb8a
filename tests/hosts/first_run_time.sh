#!/usr/bin/env bash
# First-run time of the CLI in a fresh venv (seconds per step): pymatting's numba compile cold,
# warm, and after `python -m vfxmatte.warmup` at install. Usage: tests/hosts/first_run_time.sh [WORKDIR]
set -euo pipefail
W=${1:-/tmp/vfxmatte-first-run}; rm -rf $W/venv $W/dist $W/run; mkdir -p $W/run
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT" && python3 -m pip wheel --no-deps -q -w $W/dist . 
python3 -m venv $W/venv && $W/venv/bin/pip install -q torch==2.13.0 && $W/venv/bin/pip install -q "$(ls $W/dist/*.whl)[classical]"
cd $W/run && export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1
$W/venv/bin/vfxmatte synth shot --width 192 --height 108 --frames 6 --objects 2 > /dev/null
t() { local s=$(date +%s.%N); "$@" > /dev/null 2>$W/run/last.err; echo "$(echo "$(date +%s.%N) - $s" | bc)"; }
echo "import_pymatting_cold $(t $W/venv/bin/python -c 'import pymatting')"
echo "import_pymatting_warm $(t $W/venv/bin/python -c 'import pymatting')"
P=$($W/venv/bin/python -c 'import importlib.util as u; print(u.find_spec("pymatting").submodule_search_locations[0])')
clear() { find $P -name '*.nbi' -delete; find $P -name '*.nbc' -delete; }
clear; echo "first_run_cold $(t $W/venv/bin/vfxmatte matte shot/plate/plate.####.exr -m shot/mask.png -o o1/m.####.exr)"
echo "second_run_warm $(t $W/venv/bin/vfxmatte matte shot/plate/plate.####.exr -m shot/mask.png -o o2/m.####.exr)"
clear; echo "warmup_at_install $(t $W/venv/bin/python -m vfxmatte.warmup)"
echo "first_run_after_warmup $(t $W/venv/bin/vfxmatte matte shot/plate/plate.####.exr -m shot/mask.png -o o3/m.####.exr)"
