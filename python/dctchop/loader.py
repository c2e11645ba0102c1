"""Batches of a container for training: any rank, any DataLoader worker, any epoch.

``ContainerLoader`` reads the shards this rank (and worker) owns in this epoch
(:mod:`dctchop.sampler`), gathers the stored samples (float coefficients or integer codes,
checksums verified by the Rust reader) into batches, and decompresses each batch with the Rust
codec (``decoder="rust"``, the GIL released) or with ONNX Runtime on a device
(``decoder="onnxruntime"``, :mod:`dctchop.device`).
"""

from __future__ import annotations

import sys
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from . import _dctchop
from .errors import SpecError
from .sampler import Piece, samples_per_rank, split


def distributed_rank_and_size() -> Tuple[int, int]:
    """``(rank, world_size)`` of an initialized ``torch.distributed`` process group, else
    ``(0, 1)``. torch is not imported here: a program that uses torch.distributed has done so."""
    torch = sys.modules.get("torch")
    if torch is not None:
        dist = getattr(torch, "distributed", None)
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ContainerLoader:
    """Iterate over this rank's share of a container as decompressed batches.

    Parameters mirror ``DistributedSampler`` (``rank``/``world_size`` default to the
    initialized ``torch.distributed`` group, else 0/1); ``worker``/``num_workers`` split the
    rank's share further (the torch dataset sets them from ``get_worker_info()``). ``decoder``
    is ``"rust"`` (CPU, engine/threads as for ``Codec``) or ``"onnxruntime"`` (``device`` =
    ``"cpu"`` or ``"cuda[:N]"``). Batches are float32 numpy arrays ``[<=batch_size, C, H, W]``,
    or with ``decoder="onnxruntime"`` on a GPU, ``OrtValue``s (DLPack). With
    ``drop_last_batch`` the last, shorter batch of the share is dropped.
    """

    def __init__(
        self,
        path: Any,
        batch_size: int = 16,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        drop_last: bool = False,
        drop_last_batch: bool = False,
        worker: int = 0,
        num_workers: int = 1,
        decoder: str = "rust",
        device: str = "cpu",
        engine: str = "auto",
        threads: Optional[int] = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SpecError(f"invalid batch_size = {batch_size!r}: allowed is an integer >= 1")
        self.container = path if isinstance(path, _dctchop.Container) else _dctchop.open(path)
        if rank is None or world_size is None:
            r, w = distributed_rank_and_size()
            rank = r if rank is None else rank
            world_size = w if world_size is None else world_size
        self.batch_size = batch_size
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), int(epoch)
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), bool(drop_last)
        self.drop_last_batch = bool(drop_last_batch)
        self.worker, self.num_workers = int(worker), int(num_workers)
        split(self.container.shard_samples, rank=self.rank, world_size=self.world_size,
              worker=self.worker, num_workers=self.num_workers)  # validates
        if decoder == "rust":
            if device != "cpu":
                raise SpecError(f"invalid device = {device!r} for decoder='rust': allowed is 'cpu' "
                                "(use decoder='onnxruntime' for a GPU)")
            self._codec = _dctchop.Codec.from_spec(self.container.spec, batch=min(batch_size, len(self.container)),
                                                   engine=engine, threads=threads)
            self._decode = (self._codec.decompress_codes if self.container.payload["kind"] == "codes"
                            else self._codec.decompress)
        elif decoder in ("onnxruntime", "ort"):
            from .device import OrtDecoder

            self._ort = OrtDecoder(self.container, device=device, threads=threads)
            self._decode = self._ort.decompress
        else:
            raise SpecError(f"invalid decoder = {decoder!r}: allowed are 'rust', 'onnxruntime'")

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order next (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def pieces(self) -> List[Piece]:
        """The shard pieces this rank/worker reads in the current epoch."""
        return split(self.container.shard_samples, rank=self.rank, world_size=self.world_size,
                     shuffle=self.shuffle, seed=self.seed, epoch=self.epoch, drop_last=self.drop_last,
                     worker=self.worker, num_workers=self.num_workers)

    def indices(self) -> np.ndarray:
        """Global sample indices this rank/worker reads in the current epoch, in order."""
        first = np.concatenate([[0], np.cumsum(self.container.shard_samples)[:-1]])
        parts = [first[p.shard] + p.local for p in self.pieces()]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def num_samples(self) -> int:
        """Samples this rank reads per epoch (all its workers together)."""
        return samples_per_rank(len(self.container), self.world_size, self.drop_last)

    def __len__(self) -> int:
        """Batches this rank/worker yields per epoch."""
        n = sum(len(p.local) for p in self.pieces())
        return n // self.batch_size if self.drop_last_batch else -(-n // self.batch_size)

    def stored_batches(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """``(global indices, stored samples)`` per batch, before decompression."""
        first = np.concatenate([[0], np.cumsum(self.container.shard_samples)[:-1]])
        pend: List[np.ndarray] = []
        pend_idx: List[np.ndarray] = []
        have = 0
        cached: Tuple[int, Optional[np.ndarray]] = (-1, None)
        for p in self.pieces():
            if cached[0] != p.shard:
                cached = (p.shard, self.container.read_shard(p.shard))
            data = cached[1]
            assert data is not None
            pos = 0
            while pos < len(p.local):
                take = min(self.batch_size - have, len(p.local) - pos)
                sel = p.local[pos : pos + take]
                pend.append(data[sel])
                pend_idx.append(first[p.shard] + sel)
                have += take
                pos += take
                if have == self.batch_size:
                    yield np.concatenate(pend_idx), np.concatenate(pend)
                    pend, pend_idx, have = [], [], 0
        if have and not self.drop_last_batch:
            yield np.concatenate(pend_idx), np.concatenate(pend)

    def __iter__(self) -> Iterator[Any]:
        for _, stored in self.stored_batches():
            yield self._decode(stored)
