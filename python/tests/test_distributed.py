"""The DistributedSampler contract of dctchop.split / ContainerLoader, and a 4-process run."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

import dctchop
from dctchop.sampler import samples_per_rank, split

SIZES = [18, 18, 18, 6, 11, 1, 29]  # unequal shards, N = 101


def _indices(sizes, **kw):
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.concatenate([first[p.shard] + p.local for p in split(sizes, **kw)] or [np.zeros(0, int)])


@pytest.mark.parametrize("world", [1, 2, 4, 5])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_exactly_once_per_epoch(world, shuffle):
    n = sum(SIZES)
    for epoch in range(3):
        # drop_last: disjoint, equal shares, nothing repeated.
        shares = [_indices(SIZES, rank=r, world_size=world, shuffle=shuffle, seed=3, epoch=epoch, drop_last=True)
                  for r in range(world)]
        assert all(len(s) == n // world for s in shares)
        allidx = np.concatenate(shares)
        assert len(np.unique(allidx)) == len(allidx) == n // world * world
        # Padded (DistributedSampler's default): every sample at least once, equal shares, and
        # only the padding repeats.
        shares = [_indices(SIZES, rank=r, world_size=world, shuffle=shuffle, seed=3, epoch=epoch)
                  for r in range(world)]
        assert all(len(s) == samples_per_rank(n, world) for s in shares)
        allidx = np.concatenate(shares)
        assert set(allidx.tolist()) == set(range(n))
        assert len(allidx) - n == (-n) % world


def test_order_depends_on_epoch_and_seed_only():
    kw = dict(rank=1, world_size=4, shuffle=True)
    a = _indices(SIZES, seed=5, epoch=0, **kw)
    assert np.array_equal(a, _indices(SIZES, seed=5, epoch=0, **kw))
    assert not np.array_equal(a, _indices(SIZES, seed=5, epoch=1, **kw))
    assert not np.array_equal(a, _indices(SIZES, seed=6, epoch=0, **kw))
    # Unshuffled: dataset order, contiguous ranges.
    assert np.array_equal(_indices(SIZES, rank=0, world_size=1), np.arange(sum(SIZES)))


def test_workers_split_a_rank_share():
    kw = dict(rank=2, world_size=4, shuffle=True, seed=1, epoch=4)
    share = _indices(SIZES, **kw)
    parts = [_indices(SIZES, worker=w, num_workers=3, **kw) for w in range(3)]
    assert np.array_equal(np.concatenate(parts), share)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_rank_reads_few_shards():
    sizes = [10] * 40
    for r in range(4):
        shards = {p.shard for p in split(sizes, rank=r, world_size=4, shuffle=True, seed=0, epoch=2)}
        assert len(shards) == 10


def test_bad_ranks_raise():
    with pytest.raises(dctchop.SpecError, match="rank"):
        split(SIZES, rank=4, world_size=4)
    with pytest.raises(dctchop.SpecError, match="worker"):
        split(SIZES, worker=2, num_workers=2)


def _rank_main(args):
    stem, rank, world, epochs = args
    out = []
    ld = dctchop.ContainerLoader(stem, batch_size=5, shuffle=True, seed=11, rank=rank, world_size=world)
    for epoch in range(epochs):
        ld.set_epoch(epoch)
        idx, xs = [], []
        for i, stored in ld.stored_batches():
            idx.append(i)
            xs.append(ld._decode(stored))
        out.append((np.concatenate(idx), np.concatenate(xs)))
    return rank, out


def test_four_processes_read_every_sample_once_per_epoch(multi_shard, reference):
    """4 ranks in 4 processes (world_size = 4) over the 4-shard container, 2 epochs."""
    n = len(reference)
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = dict(pool.map(_rank_main, [(str(multi_shard), r, 4, 2) for r in range(4)]))
    orders = []
    for epoch in range(2):
        idx = np.concatenate([results[r][epoch][0] for r in range(4)])
        assert sorted(idx.tolist()) == list(range(n)), f"epoch {epoch}"
        for r in range(4):
            i, x = results[r][epoch]
            assert len(i) == n // 4
            np.testing.assert_array_equal(x, reference[i])  # each batch is the right samples
        orders.append(idx)
    assert not np.array_equal(orders[0], orders[1])


def test_rank_and_world_default_to_a_single_process(multi_shard):
    ld = dctchop.ContainerLoader(multi_shard, batch_size=8)
    assert (ld.rank, ld.world_size) == (0, 1) and ld.num_samples() == 60 and len(ld) == 8
