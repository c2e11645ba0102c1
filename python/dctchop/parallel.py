"""Compress one dataset with many independent workers into one container, on Dask.

Each task compresses a contiguous range of samples into its own part (``OUT.part-NNNNN``,
shard names that cannot collide; :class:`dctchop.PartWriter`), and :func:`dctchop.assemble`
turns the parts into the container ``OUT`` at the end, rewriting only the shard headers (see
docs/container.md, "Containers written by many workers"). The tasks share nothing but the file
system: on a real cluster, pass a ``Client`` connected to its scheduler (``dask-scheduler`` /
``dask-worker``, ``dask_jobqueue.SLURMCluster``, ``dask_kubernetes``, ...) and put the input
and ``out`` on a file system every worker sees.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _dctchop


def _source_array(source: str):
    """A lazily read ``[N, C, H, W]`` array: a ``.npy`` (memory-mapped) or ``FILE.h5:/dataset``."""
    if ".h5:" in source or ".hdf5:" in source:
        import h5py

        file, name = source.rsplit(":", 1)
        return h5py.File(file, "r")[name]
    return np.load(source, mmap_mode="r")


def _shape(a) -> Tuple[int, int, int, int]:
    if a.ndim == 3:
        return (a.shape[0], 1, a.shape[1], a.shape[2])
    if a.ndim != 4:
        from .errors import SpecError

        raise SpecError(f"input: expected [N, C, H, W] or [N, H, W], got shape {tuple(a.shape)}")
    return tuple(int(d) for d in a.shape)  # type: ignore[return-value]


def compress_part(source: str, out: str, part: int, start: int, stop: int, cf: int,
                  options: Dict[str, Any]) -> str:
    """Compress samples ``start..stop`` of ``source`` into part ``part`` of ``out`` (one task).
    Returns the part's stem."""
    a = _source_array(source)
    n, c, h, w = _shape(a)
    opts = dict(options)
    batch = int(opts.get("batch", 8))
    writer_kw = {k: opts[k] for k in ("store", "entropy", "shard_mb", "engine", "threads", "force") if k in opts}
    spec_kw = {k: opts[k] for k in ("block", "variant", "tile", "batch", "quant") if k in opts}
    wr = _dctchop.PartWriter(out, part, stop - start, h, w, cf, dtype=str(a.dtype), channels=c,
                             **writer_kw, **spec_kw)
    for i in range(start, stop, batch):
        x = np.asarray(a[i : min(i + batch, stop)])
        if x.ndim == 3:
            x = x[:, None]
        wr.push(x)
    return wr.finish()


def compress_parallel(source: str, out: str, *, cf: int = 4, client: Any = None,
                      chunk_samples: Optional[int] = None, force: bool = False, **options: Any):
    """Compress ``source`` (a ``.npy`` or ``FILE.h5:/dataset``) into the container ``out`` with
    one Dask task per ``chunk_samples`` samples, then assemble the parts. ``options``: ``block``,
    ``variant``, ``tile``, ``batch``, ``quant``, ``store``, ``entropy``, ``shard_mb``,
    ``engine``, ``threads`` (per task). ``client``: a ``dask.distributed.Client`` (default: the
    current one). Returns the opened :class:`dctchop.Container`."""
    if client is None:
        from dask.distributed import get_client

        client = get_client()
    n = _shape(_source_array(source))[0]
    if chunk_samples is None:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunk_samples = -(-n // workers)
    if chunk_samples < 1:
        from .errors import SpecError

        raise SpecError(f"invalid chunk_samples = {chunk_samples}: allowed is an integer >= 1")
    options = dict(options, force=force)
    ranges: List[Tuple[int, int]] = [(s, min(s + chunk_samples, n)) for s in range(0, n, chunk_samples)]
    futures = [client.submit(compress_part, source, out, i, a, b, cf, options, pure=False)
               for i, (a, b) in enumerate(ranges)]
    parts = client.gather(futures)
    return _dctchop.assemble(out, parts, force=force)
