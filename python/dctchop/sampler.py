"""Which samples each rank (and DataLoader worker) reads in an epoch.

The contract is that of ``torch.utils.data.DistributedSampler``: for a given ``seed`` and
``epoch`` every rank computes the same global order without communicating, and takes its own
``1/world_size`` of it, so the ranks' shares are disjoint and together hold every sample exactly
once (with ``drop_last=False``, the order is padded with its own first samples up to a multiple
of ``world_size``, as DistributedSampler does; with ``drop_last=True`` its tail is dropped). The
order is the same for the same seed and epoch, and different for another epoch.

Unlike DistributedSampler, the order is shard-aware so that a rank reads only its own shards:
the shards are permuted (seed, epoch), the samples of each shard are permuted (seed, epoch,
shard), the resulting sequence is cut into ``world_size`` contiguous ranges, and each range into
``num_workers`` contiguous ranges for DataLoader workers. A rank thus reads about
``shards/world_size`` shard files (plus at most two it shares with a neighbour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Piece:
    """Samples ``local`` (indices within the shard, in reading order) of shard ``shard``."""

    shard: int
    local: np.ndarray


def _sequence(
    shard_samples: Sequence[int], shuffle: bool, seed: int, epoch: int
) -> Tuple[np.ndarray, np.ndarray]:
    """The epoch's global order as (shard, local index) arrays."""
    sizes = np.asarray(shard_samples, dtype=np.int64)
    k = len(sizes)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(k)
    else:
        order = np.arange(k)
    shard = np.repeat(order, sizes[order])
    local = np.empty(int(sizes.sum()), dtype=np.int64)
    pos = 0
    for s in order:
        n = int(sizes[s])
        if shuffle:
            local[pos : pos + n] = np.random.default_rng([seed, epoch, int(s)]).permutation(n)
        else:
            local[pos : pos + n] = np.arange(n)
        pos += n
    return shard, local


def split(
    shard_samples: Sequence[int],
    *,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    worker: int = 0,
    num_workers: int = 1,
) -> List[Piece]:
    """The pieces of shards that ``rank`` (and its DataLoader ``worker``) reads this epoch."""
    if world_size < 1 or not 0 <= rank < world_size:
        from .errors import SpecError

        raise SpecError(f"invalid rank = {rank}, world_size = {world_size}: allowed is 0 <= rank < world_size")
    if num_workers < 1 or not 0 <= worker < num_workers:
        from .errors import SpecError

        raise SpecError(f"invalid worker = {worker}, num_workers = {num_workers}: allowed is 0 <= worker < num_workers")
    shard, local = _sequence(shard_samples, shuffle, seed, epoch)
    n = len(shard)
    if drop_last:
        per = n // world_size
    else:
        per = -(-n // world_size)
        pad = per * world_size - n
        if pad and n:
            reps = -(-pad // n)
            shard = np.concatenate([shard] + [shard] * reps)[: per * world_size]
            local = np.concatenate([local] + [local] * reps)[: per * world_size]
    a = rank * per
    shard, local = shard[a : a + per], local[a : a + per]
    # This rank's range, cut for DataLoader workers (contiguous, sizes differ by at most one).
    bounds = np.linspace(0, per, num_workers + 1).round().astype(np.int64)
    shard = shard[bounds[worker] : bounds[worker + 1]]
    local = local[bounds[worker] : bounds[worker + 1]]
    pieces: List[Piece] = []
    if len(shard) == 0:
        return pieces
    cuts = np.flatnonzero(np.diff(shard)) + 1
    for s, l in zip(np.split(shard, cuts), np.split(local, cuts)):
        pieces.append(Piece(int(s[0]), l))
    return pieces


def samples_per_rank(n: int, world_size: int, drop_last: bool = False) -> int:
    """Samples each rank reads per epoch (as DistributedSampler's ``num_samples``)."""
    return n // world_size if drop_last else -(-n // world_size)
