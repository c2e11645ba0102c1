"""Python `dctchop.Codec` vs the Rust `Codec` on the same data and spec (issue 13's target: the
Python path within 10% of Rust).

Both sides: 256x256x3 float32 x 300 samples, CF 4, batch 100, the same engine and thread count,
keep_freed_memory() on, the same data pattern ((s*7 + c*13 + i*j) % 251), median of 9 timed runs
after a warm-up. The Rust side is crates/dctchop/examples/codec_throughput.rs, run as a separate
process (built with `cargo build --release -p dctchop --example codec_throughput`); the Python
side is this process, with the package installed (`pip install .`).

    .venv/bin/python bench/python_codec.py [--engine native|tract|ort] [--rounds 3]

It alternates Rust and Python rounds (the machine may be shared: medians of rounds are
reported, each round being itself a median of 9 runs).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

import dctchop

REPO = Path(__file__).resolve().parents[1]


def rust_round(engine: str, res: int, batch: int, n: int) -> tuple[float, float]:
    exe = REPO / "target/release/examples/codec_throughput"
    if not exe.is_file():
        subprocess.run(["cargo", "build", "--release", "-p", "dctchop", "--example", "codec_throughput"],
                       cwd=REPO, check=True)
    out = subprocess.run([str(exe), str(res), str(batch), str(n), engine], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"codec compress ([\d.]+) GB/s, decompress ([\d.]+) GB/s", out)
    assert m, out
    return float(m.group(1)), float(m.group(2))


def python_round(codec, x, y) -> tuple[float, float]:
    gb = x.nbytes / 1e9

    def timed(f):
        f()
        ts = []
        for _ in range(9):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    return gb / timed(lambda: codec.compress(x)), gb / timed(lambda: codec.decompress(y))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="native")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    dctchop.keep_freed_memory()
    s, c, i, j = np.ogrid[: a.samples, :3, : a.res, : a.res]
    x = ((s * 7 + c * 13 + i * j) % 251).astype(np.float32)
    codec = dctchop.Codec(a.res, a.res, 4, batch=a.batch, engine=a.engine)
    y = codec.compress(x)
    rust, py = [], []
    for _ in range(a.rounds):
        rust.append(rust_round(a.engine, a.res, a.batch, a.samples))
        py.append(python_round(codec, x, y))
    rc, rd = (statistics.median(v) for v in zip(*rust))
    pc, pd = (statistics.median(v) for v in zip(*py))
    print(f"{a.engine} {a.res}x{a.res}x3 x {a.samples}, CF 4, batch {a.batch} ({x.nbytes / 1e6:.0f} MB), "
          f"median of {a.rounds} rounds (each a median of 9 runs):")
    print(f"  compress:   Rust {rc:.2f} GB/s, Python {pc:.2f} GB/s, Python/Rust {pc / rc:.3f}")
    print(f"  decompress: Rust {rd:.2f} GB/s, Python {pd:.2f} GB/s, Python/Rust {pd / rd:.3f}")
    print("  rounds (Rust c/d, Python c/d GB/s):",
          "; ".join(f"{r[0]:.2f}/{r[1]:.2f}, {p[0]:.2f}/{p[1]:.2f}" for r, p in zip(rust, py)))


if __name__ == "__main__":
    main()
