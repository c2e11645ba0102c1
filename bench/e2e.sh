#!/usr/bin/env bash
# Whole files, default flags: `dctchop compress` and `dctchop decompress` of a >= 4 GB float32
# .npy against `cp` of the same file on the same disk, with wall time and peak RSS from
# /usr/bin/time -v; rounds alternate cp / compress / decompress and medians are reported
# (issue 11). Usage: bash bench/e2e.sh [DIR] [SAMPLES] [ROUNDS]
#   DIR      scratch directory on the disk to measure (default target/e2e; needs ~2.1x the file)
#   SAMPLES  3x256x256 float32 samples (default 5500 = 4.33 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/e2e}; samples=${2:-5500}; rounds=${3:-3}
bin="${DCTCHOP_BIN:-target/release/dctchop}"
[ -x "$bin" ] || cargo build --release --locked --quiet
bash python/setup_venv.sh >/dev/null
mkdir -p "$dir"
src="$dir/data.npy"
if [ ! -f "$src" ]; then
  # Image-like samples (a few random plane waves plus noise), written in chunks.
  .venv/bin/python - "$src" "$samples" <<'PY'
import sys
import numpy as np
path, n = sys.argv[1], int(sys.argv[2])
out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 3, 256, 256))
rng = np.random.default_rng(7)
yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 256
for s0 in range(0, n, 100):
    k = min(100, n - s0)
    f = rng.uniform(1, 12, size=(k, 3, 4, 2)).astype(np.float32)
    ph = rng.uniform(0, 6.3, size=(k, 3, 4)).astype(np.float32)
    img = np.zeros((k, 3, 256, 256), np.float32)
    for t in range(4):
        img += np.sin(2 * np.pi * (f[:, :, t, 0, None, None] * yy + f[:, :, t, 1, None, None] * xx)
                      + ph[:, :, t, None, None])
    img += rng.normal(0, 0.05, size=img.shape).astype(np.float32)
    out[s0:s0 + k] = img
out.flush()
PY
fi
bytes=$(stat -c %s "$src")
measure() { # label, command...: prints "label seconds max_rss_kb"
  local label=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" >/dev/null 2>"$log"
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
  rm -f "$log"
  echo "$label $wall $rss"
}
results=$(mktemp)
echo "== $src: $bytes bytes; $rounds rounds; load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$rounds"); do
  measure cp cp "$src" "$dir/copy.npy" >> "$results"; rm -f "$dir/copy.npy"
  rm -f "$dir"/c.*
  measure compress "$bin" compress "$src" -o "$dir/c" --quiet >> "$results"
  measure decompress "$bin" decompress "$dir/c" -o "$dir/back.npy" --quiet >> "$results"
  rm -f "$dir/back.npy"
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin" inspect "$dir/c" --no-verify 2>/dev/null | grep -E "ratio|step|entropy" | head -3 >&2 || true
.venv/bin/python - "$results" "$bytes" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
size = int(sys.argv[2])
med = {k: (statistics.median(float(r[1]) for r in rows if r[0] == k),
           max(int(r[2]) for r in rows if r[0] == k)) for k in ("cp", "compress", "decompress")}
cp = med["cp"][0]
print(f"| step | median wall s (all) | GB/s of the float32 file | × cp | peak RSS MB |")
print("|---|---|---|---|---|")
for k, (t, rss) in med.items():
    alls = ", ".join(f"{float(r[1]):.2f}" for r in rows if r[0] == k)
    print(f"| {k} | {t:.2f} ({alls}) | {size / t / 1e9:.2f} | {cp / t:.2f} | {rss / 1024:.0f} |")
PY
rm -f "$results"
