#!/usr/bin/env bash
# Integer originals, default flags (issue 10's "≥ 0.5 GB/s of original data"): `dctchop compress`,
# `dctchop decompress` to float32 and `decompress --dtype original` of a uint8 and a uint16 .npy
# (1000 × 3 × 256², image-like), beside `cp` of the same file, in GB/s of the ORIGINAL bytes.
# The page cache of each input is warmed by four reads first: on this VM the first touch of
# memory after a pause runs at a fraction of its speed, whoever touches it.
#   bash bench/e2e_int.sh [DIR] [ROUNDS]      DIR: scratch on the disk to measure (target/e2e_int)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/e2e_int}; rounds=${2:-5}
bin="${DCTCHOP_BIN:-target/release/dctchop}"
[ -x "$bin" ] || cargo build --release --locked --quiet
bash python/setup_venv.sh >/dev/null
mkdir -p "$dir"
for ty in uint8 uint16; do
  [ -f "$dir/$ty.npy" ] && continue
  .venv/bin/python - "$dir/$ty.npy" "$ty" <<'PY'
import sys
import numpy as np
path, ty = sys.argv[1], sys.argv[2]
n = 1000
top = 255 if ty == "uint8" else 65535
out = np.lib.format.open_memmap(path, mode="w+", dtype=ty, shape=(n, 3, 256, 256))
rng = np.random.default_rng(11)
yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 256
for s0 in range(0, n, 100):
    f = rng.uniform(1, 12, size=(100, 3, 4, 2)).astype(np.float32)
    ph = rng.uniform(0, 6.3, size=(100, 3, 4)).astype(np.float32)
    img = np.zeros((100, 3, 256, 256), np.float32)
    for t in range(4):
        img += np.sin(2 * np.pi * (f[:, :, t, 0, None, None] * yy + f[:, :, t, 1, None, None] * xx)
                      + ph[:, :, t, None, None])
    img += rng.normal(0, 0.05, size=img.shape).astype(np.float32)
    out[s0:s0 + 100] = np.clip((img + 4.2) / 8.4 * top, 0, top).round().astype(ty)
out.flush()
PY
done
warm() { for _ in 1 2 3 4; do cat "$1" > /dev/null; done; }
wall() { # command...: wall seconds
  local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
results=$(mktemp)
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$rounds"); do
  for ty in uint8 uint16; do
    src="$dir/$ty.npy"
    warm "$src"; echo "$ty cp $(wall cp "$src" "$dir/copy.npy")" >> "$results"; rm -f "$dir/copy.npy"
    rm -f "$dir/$ty".c.*
    warm "$src"; echo "$ty compress $(wall "$bin" compress "$src" -o "$dir/$ty.c" --quiet)" >> "$results"
    echo "$ty decompress $(wall "$bin" decompress "$dir/$ty.c" -o "$dir/back.npy" --quiet)" >> "$results"
    rm -f "$dir/back.npy"
    echo "$ty decompress-original $(wall "$bin" decompress "$dir/$ty.c" -o "$dir/back.npy" --dtype original --quiet)" >> "$results"
    rm -f "$dir/back.npy"
  done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
.venv/bin/python - "$results" "$dir" <<'PY'
import os, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("| data | step | median wall s (all) | GB/s of original data | × cp |")
print("|---|---|---|---|---|")
for ty in ("uint8", "uint16"):
    size = os.path.getsize(os.path.join(sys.argv[2], f"{ty}.npy"))
    cp = statistics.median(float(r[2]) for r in rows if r[:2] == [ty, "cp"])
    for step in ("cp", "compress", "decompress", "decompress-original"):
        ts = [float(r[2]) for r in rows if r[:2] == [ty, step]]
        t = statistics.median(ts)
        alls = ", ".join(f"{v:.2f}" for v in ts)
        print(f"| {ty} {size / 1e6:.0f} MB | {step} | {t:.2f} ({alls}) | {size / t / 1e9:.2f} | {cp / t:.2f} |")
PY
rm -f "$results"
