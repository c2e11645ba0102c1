"""Fixtures of the package tests: the dctchop CLI to compare against, and small containers.

The CLI is $DCTCHOP_BIN, else target/release/dctchop, else target/debug/dctchop; a missing CLI
fails the tests that need it (it is never skipped).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli() -> Path:
    env = os.environ.get("DCTCHOP_BIN")
    if env:
        return Path(env)
    for p in (REPO / "target/release/dctchop", REPO / "target/debug/dctchop"):
        if p.is_file():
            return p
    raise FileNotFoundError("no dctchop CLI: build it (cargo build --release) or set DCTCHOP_BIN")


@pytest.fixture(scope="session")
def cli():
    p = _cli()
    assert p.is_file(), f"{p}: not found (set DCTCHOP_BIN)"

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([str(p), *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, f"dctchop {' '.join(map(str, args))} failed:\n{r.stderr}"
        return r

    return run


@pytest.fixture(scope="session")
def data_npy(tmp_path_factory) -> Path:
    """60 samples of [3, 124, 132] float32 (H, W not multiples of the block)."""
    rng = np.random.default_rng(7)
    x = rng.random((60, 3, 124, 132), dtype=np.float32) * 100.0
    p = tmp_path_factory.mktemp("data") / "x.npy"
    np.save(p, x)
    return p


@pytest.fixture(scope="session")
def multi_shard(tmp_path_factory, cli, data_npy) -> Path:
    """The CLI's container of data_npy: CF 4, batch 4, 4 shards of <= 18 samples (shard-mb 1)."""
    out = tmp_path_factory.mktemp("c") / "x"
    cli("compress", data_npy, "-o", out, "--cf", "4", "--batch", "4", "--shard-mb", "1", "--quant", "none", "--quiet")
    return out


@pytest.fixture(scope="session")
def reference(tmp_path_factory, cli, multi_shard) -> np.ndarray:
    """The CLI's decompression of multi_shard, float32 [60, 3, 124, 132]."""
    out = tmp_path_factory.mktemp("r") / "back.npy"
    cli("decompress", multi_shard, "-o", out)
    return np.load(out)
