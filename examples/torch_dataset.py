"""A dctchop container as a torch IterableDataset, read by a DataLoader with worker processes.

Each worker decompresses its own subset of shards (shard i goes to worker i % num_workers) with
its own ONNX Runtime session; batches come out as float32 tensors [B, C, H, W].

    python examples/torch_dataset.py OUT            # a container written by `dctchop compress`
    python examples/torch_dataset.py data.npy --bin target/debug/dctchop   # compress first

Needs numpy, onnxruntime and torch.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from dctchop_loader import Container, Loader  # noqa: E402


class DctchopDataset(IterableDataset):
    def __init__(self, path, batch_size=8, device="cpu"):
        self.path, self.batch_size, self.device = path, batch_size, device
        self.n_shards = Container(path).n_shards

    def __iter__(self):
        info = get_worker_info()
        shards = range(self.n_shards)
        if info is not None:
            shards = [s for s in shards if s % info.num_workers == info.id]
        for x in Loader(self.path, batch_size=self.batch_size, device=self.device, shards=shards):
            yield torch.from_numpy(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input", help="a container (stem or shard), or a .npy to compress first")
    ap.add_argument("--bin", default="target/debug/dctchop")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    path = a.input
    if path.endswith(".npy"):
        path = os.path.join(tempfile.mkdtemp(prefix="dctchop-torch-"), "data")
        # Small shards so that both workers get some.
        subprocess.run([a.bin, "compress", a.input, "-o", path, "--batch", "1", "--shard-mb", "1", "--quiet"], check=True)
    ds = DctchopDataset(path, batch_size=2)
    # batch_size=None: the dataset already yields batches.
    dl = DataLoader(ds, batch_size=None, num_workers=a.workers)
    n = sum(b.shape[0] for b in dl)
    assert n == len(Container(path)), (n, len(Container(path)))
    print(f"torch DataLoader ({a.workers} workers): {n} samples from {ds.n_shards} shard(s)")


if __name__ == "__main__":
    main()
