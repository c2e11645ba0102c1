"""The torch IterableDataset: DataLoader workers and ranks. Runs where torch is importable;
with DCTCHOP_REQUIRE_TORCH=1 (tests/run_all.sh, in the downstream venv that has torch) a
missing torch is a failure, not a skip."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import dctchop

if os.environ.get("DCTCHOP_REQUIRE_TORCH") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")


def test_dctchop_does_not_import_torch():
    import subprocess

    r = subprocess.run([sys.executable, "-c", "import sys, dctchop; dctchop.ContainerLoader; "
                        "print('torch' in sys.modules)"], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_and_ranks_cover_every_sample_once(multi_shard, reference, workers):
    from torch.utils.data import DataLoader

    seen = []
    for rank in range(2):
        ds = dctchop.ContainerDataset(multi_shard, batch_size=4, shuffle=True, seed=9, rank=rank, world_size=2)
        ds.set_epoch(1)
        for x in DataLoader(ds, batch_size=None, num_workers=workers):
            assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
            seen.append(x.numpy())
    got = np.concatenate(seen)
    assert got.shape == reference.shape
    # Each sample exactly once: match every decoded sample to its reference row.
    flat_ref = reference.reshape(len(reference), -1)
    flat = got.reshape(len(got), -1)
    order = [int(np.flatnonzero((np.abs(flat_ref - row).max(axis=1) == 0))[0]) for row in flat]
    assert sorted(order) == list(range(len(reference)))
