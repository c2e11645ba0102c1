"""A container as a ``torch.utils.data.IterableDataset`` (imports torch; the rest of dctchop
does not).

``ContainerDataset(path, batch_size, shuffle=..., seed=...)`` yields float32 tensors
``[<=batch_size, C, H, W]`` (use ``DataLoader(ds, batch_size=None, num_workers=...)``: the
dataset batches). Each DataLoader worker reads its own part of this rank's share; the rank and
world size come from ``torch.distributed`` when it is initialized. Call ``set_epoch(epoch)``
before each epoch, as with ``DistributedSampler``. With ``decoder="onnxruntime"`` and
``device="cuda"`` the batches are decompressed on the GPU and handed over by DLPack.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import torch
from torch.utils.data import IterableDataset, get_worker_info

from .loader import ContainerLoader, distributed_rank_and_size


class ContainerDataset(IterableDataset):
    def __init__(self, path: Any, batch_size: int = 16, *, shuffle: bool = False, seed: int = 0,
                 rank: Optional[int] = None, world_size: Optional[int] = None, drop_last: bool = False,
                 decoder: str = "rust", device: str = "cpu", engine: str = "auto",
                 threads: Optional[int] = None) -> None:
        super().__init__()
        if rank is None or world_size is None:
            r, w = distributed_rank_and_size()
            rank = r if rank is None else rank
            world_size = w if world_size is None else world_size
        self.path = str(path)
        self.kw = dict(batch_size=batch_size, shuffle=shuffle, seed=seed, rank=rank,
                       world_size=world_size, drop_last=drop_last, decoder=decoder, device=device,
                       engine=engine, threads=threads)
        self.epoch = 0
        # Opened once here so that errors surface in the main process.
        self.num_samples = ContainerLoader(self.path, **{**self.kw, "decoder": "rust", "device": "cpu"}).num_samples()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        loader = ContainerLoader(self.path, epoch=self.epoch, worker=worker, num_workers=workers, **self.kw)
        for x in loader:
            yield torch.from_numpy(x) if isinstance(x, __import__("numpy").ndarray) else torch.from_dlpack(x)
