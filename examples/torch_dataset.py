"""A dctchop container as a torch IterableDataset, read by a DataLoader with worker processes
(and, under torchrun, by every rank: each gets a disjoint share per epoch).

    pip install .                                   # the dctchop package (docs/python.md)
    python examples/torch_dataset.py OUT            # a container written by `dctchop compress`
    torchrun --nproc-per-node 2 examples/torch_dataset.py OUT

Needs torch (and numpy, which dctchop installs).
"""

import argparse
import os

import torch.distributed as dist
from torch.utils.data import DataLoader

import dctchop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("container", help="a container (stem or shard)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    if "RANK" in os.environ:
        dist.init_process_group("gloo")  # rank and world size now come from torch.distributed
    ds = dctchop.ContainerDataset(a.container, batch_size=8, shuffle=True, seed=0)
    # batch_size=None: the dataset already yields batches.
    dl = DataLoader(ds, batch_size=None, num_workers=a.workers)
    for epoch in range(a.epochs):
        ds.set_epoch(epoch)
        n = sum(x.shape[0] for x in dl)
        print(f"epoch {epoch}: {n} samples ({ds.num_samples} per rank), {a.workers} workers")
        assert n == ds.num_samples
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
