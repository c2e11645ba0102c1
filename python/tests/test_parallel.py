"""Many workers, one container: parts + assemble, and a Dask LocalCluster run vs the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dctchop


def _write_parts(stem, x, ranges, **kw):
    parts = []
    for i, (a, b) in enumerate(ranges):
        w = dctchop.PartWriter(stem, i, b - a, x.shape[2], x.shape[3], 4, dtype=str(x.dtype), **kw)
        w.push(x[a:b])
        parts.append(w.finish())
    return parts


def test_parts_assemble_into_what_one_process_writes(tmp_path, data_npy, reference, multi_shard):
    x = np.load(data_npy)
    stem = tmp_path / "p"
    parts = _write_parts(stem, x, [(0, 25), (25, 26), (26, 60)], batch=4, shard_mb=0.5)
    assert parts[1] == f"{stem}.part-00001"
    c = dctchop.assemble(stem)  # parts found beside the stem
    assert not list(tmp_path.glob("p.part-*")), "parts are moved, not copied"
    one = dctchop.open(multi_shard)
    assert len(c) == 60 and c.shape == one.shape and c.value_range == one.value_range
    assert c.spec == one.spec and len(c.shards) > 4 and c.container_id != one.container_id
    c.verify()
    np.testing.assert_array_equal(np.concatenate(list(c.loader(16))), reference)
    assert c.metadata(0)["container_id"] == c.container_id
    # The graph is the one a single process writes.
    assert Path(c.graph).read_bytes() == Path(one.graph).read_bytes()


def test_quantized_parts_with_zstd(tmp_path, data_npy):
    x = np.load(data_npy)[:20]
    stem = tmp_path / "q"
    parts = _write_parts(stem, x, [(0, 9), (9, 20)], batch=4, quant=("i16", 0.05), entropy="zstd:5")
    c = dctchop.assemble(stem, parts)
    assert c.payload == {"kind": "codes", "dtype": "int16", "entropy": "zstd:5"}
    assert c.read_shard(0).dtype == np.int16
    codec = dctchop.Codec(124, 132, 4, batch=4, quant=("i16", 0.05))
    codes, _ = codec.compress_codes(x)
    np.testing.assert_array_equal(np.concatenate([c.read_shard(i) for i in range(len(c.shards))]), codes)
    np.testing.assert_array_equal(np.concatenate(list(c.loader(8))), codec.decompress_codes(codes))


def test_assemble_refuses_mismatched_parts_and_existing_output(tmp_path, data_npy):
    x = np.load(data_npy)[:6]
    stem = tmp_path / "m"
    a = dctchop.PartWriter(stem, 0, 3, 124, 132, 4)
    a.push(x[:3])
    b = dctchop.PartWriter(stem, 1, 3, 124, 132, 2)
    b.push(x[3:])
    parts = [a.finish(), b.finish()]
    with pytest.raises(dctchop.FileError, match="does not belong"):
        dctchop.assemble(stem, parts)
    with pytest.raises(dctchop.FileError, match="not found"):
        dctchop.assemble(tmp_path / "none")
    w = dctchop.PartWriter(stem, 2, 3, 124, 132, 4)
    with pytest.raises(dctchop.FileError, match="3 samples"):
        w.push(x)
    with pytest.raises(dctchop.FileError, match="0 were written"):
        w.finish()
    c = dctchop.assemble(stem, [parts[0]])
    assert len(c) == 3
    again = _write_parts(stem, x, [(0, 6)])
    with pytest.raises(dctchop.FileError, match="already exists"):
        dctchop.assemble(stem, again)
    assert len(dctchop.assemble(stem, again, force=True)) == 6


def test_dask_local_cluster_matches_single_process_compress(tmp_path, cli, data_npy, reference):
    from dask import distributed  # in python/requirements.txt: never skipped
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        c = dctchop.compress_parallel(str(data_npy), str(tmp_path / "d"), cf=4, client=client,
                                      chunk_samples=16, batch=4, shard_mb=1)
    assert len(c) == 60 and len(c.shards) >= 4
    c.verify()
    got = np.concatenate(list(dctchop.ContainerLoader(c, batch_size=16)))
    np.testing.assert_array_equal(got, reference)  # reference: `dctchop compress` + decompress
    back = tmp_path / "d.npy"
    cli("decompress", c.stem, "-o", back)  # the CLI reads the assembled container
    np.testing.assert_array_equal(np.load(back), reference)
