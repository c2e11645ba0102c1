#!/usr/bin/env bash
# The paper's benchmark grid (§4.3, Fig. 10-13) on this machine: CSV per section in bench/results/,
# then PNG plots (bench/plot.py). Usage: bash bench/run_grid.sh [--quick] [--engines tract,ort]
# --quick: fewer points and a shorter time budget (a smoke run of the whole pipeline, ~5 min).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0; engines=tract,ort; budget=1.0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; budget=0.3 ;;
    --engines) engines="$2"; shift ;;
    *) echo "run_grid: unknown option $1 (allowed: --quick, --engines LIST)" >&2; exit 2 ;;
  esac
  shift
done
bash python/setup_venv.sh >/dev/null
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(bash python/ort_dylib_path.sh | tail -1)}"
# DCTCHOP_BIN: a dctchop binary built earlier (skips the build).
if [ -z "${DCTCHOP_BIN:-}" ]; then cargo build --release --locked --quiet; fi
bin="${DCTCHOP_BIN:-target/release/dctchop}"
out=bench/results; mkdir -p "$out"
run() { # section-name, then bench flags
  local name="$1"; shift
  echo "== $name: dctchop bench $*" >&2
  "$bin" bench --engine "$engines" --budget "$budget" --csv "$out/$name.csv" --force "$@"
}
# Record the machine next to the numbers.
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)";
  echo "cores: $(nproc)"; echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"; echo "commit: $(git rev-parse --short HEAD)";
  echo "onnxruntime: $ORT_DYLIB_PATH"; } > "$out/machine.txt"
if [ "$quick" = 1 ]; then
  run resolution --res 64,256 --batch 100 --cf 4 --form full,16,auto
  run batch --res 64 --batch 10,1000 --cf 4 --form full,auto
  run cf --res 256 --batch 100 --cf 2,7 --variant chop,triangle --form full,auto
else
  # Throughput vs resolution, batch 100 x 3 channels (Fig. 10/11), every form.
  run resolution --res 32,64,128,256,512 --batch 100 --cf 4 --form full,8,16,32,64,auto
  # About 100 MB per batch above 512² (the issue's large sizes).
  run resolution_large_1024 --res 1024 --batch 8 --cf 4 --form full,16,32,64,auto
  run resolution_large_2048 --res 2048 --batch 2 --cf 4 --form full,16,32,64,auto
  # Throughput vs batch at 64² (Fig. 12).
  run batch --res 64 --batch 10,100,1000,5000 --cf 4 --form full,auto
  # Chop factor and variant (Fig. 13).
  run cf --res 256 --batch 100 --cf 2,3,4,5,6,7 --variant chop,triangle --form full,auto
  # One thread against all cores.
  run threads --res 256 --batch 100 --cf 4 --threads 1,0 --form full,auto
fi
"$(pwd)/.venv/bin/python" -c "import matplotlib" 2>/dev/null || .venv/bin/pip install -q -r bench/requirements.txt
.venv/bin/python bench/plot.py "$out"
