#!/usr/bin/env bash
# Issue 11's acceptance grid: the native engine beside ONNX Runtime and tract in one run, CF 2/4/7,
# chop and triangle, 64² to 2048², batches of about 20-100 MB; time per pixel at equal bytes from
# 64² to 2048² (five passes); one thread against two at 1024²;
# decompression from int8/int16 codes. CSVs in bench/results/native_*.csv, then a markdown summary
# (bench/native_summary.py). Usage: bash bench/run_native.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
budget=1.0; sizes="64:100 256:100 512:25 1024:8 2048:2"
if [ "${1:-}" = --quick ]; then budget=0.2; sizes="64:100 256:10"; fi
bash python/setup_venv.sh >/dev/null
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(bash python/ort_dylib_path.sh | tail -1)}"
if [ -z "${DCTCHOP_BIN:-}" ]; then cargo build --release --locked --quiet; fi
bin="${DCTCHOP_BIN:-target/release/dctchop}"
out=bench/results; mkdir -p "$out"
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)";
  echo "cores: $(nproc)"; echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"; echo "commit: $(git rev-parse --short HEAD)";
  echo "onnxruntime: $ORT_DYLIB_PATH"; } > "$out/native_machine.txt"
run() { # csv-name, then bench flags
  local name="$1"; shift
  echo "== $name: dctchop bench $*" >&2
  "$bin" bench --budget "$budget" --form auto --csv "$out/$name.csv" --force "$@"
}
for s in $sizes; do
  res=${s%%:*}; batch=${s##*:}
  run "native_${res}" --res "$res" --batch "$batch" --cf 2,4,7 --variant chop,triangle \
      --engine native,ort,tract
done
# Time per pixel from 64² to 2048² at equal bytes (~80-100 MB per batch), native CF 4, five passes
# over the sizes, ascending and descending in turn, so that the VM's drift (minutes at a time)
# shows beside the size effect instead of landing on the same sizes every pass.
flat="64:2000 128:500 256:100 512:25 1024:8 2048:2"
if [ "${1:-}" = --quick ]; then flat="64:200 2048:1"; fi
rm -f "$out"/native_flat[0-9]_*.csv
for pass in 1 2 3 4 5; do
  order=$flat
  if [ $((pass % 2)) = 0 ]; then order=$(printf '%s\n' $flat | tac | xargs); fi
  for s in $order; do
    res=${s%%:*}; batch=${s##*:}
    run "native_flat${pass}_${res}" --res "$res" --batch "$batch" --cf 4 --engine native
  done
done
for pass in 1 2 3; do
  run "native_threads${pass}" --res 1024 --batch 8 --cf 4 --threads 1,2 --engine native,ort
done
run native_codes_256 --res 256 --batch 100 --cf 4 --codes none,i8,i16 --engine native,ort
run native_codes_1024 --res 1024 --batch 8 --cf 4 --codes none,i8,i16 --engine native,ort
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/native_machine.txt"
.venv/bin/python bench/native_summary.py "$out" > "$out/native_summary.md"
echo "summary: $out/native_summary.md"
