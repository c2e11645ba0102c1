"""dctchop: DCT+Chop lossy compression for AI training data, from Python.

The Rust core (``dctchop._dctchop``) compresses and decompresses numpy arrays (:class:`Codec`),
writes graph pairs (:func:`export`), compresses files into containers and back
(:func:`compress_files`, :func:`decompress_files`) and reads containers (:func:`open`). On top:
:class:`ContainerLoader` (batches for any rank/worker/epoch), ``dctchop.torchdata`` (a torch
``IterableDataset``; imports torch), ``dctchop.device`` (ONNX Runtime decompression on a GPU)
and ``dctchop.parallel`` (many workers writing one container, on Dask). Guide: docs/python.md.
"""

from __future__ import annotations

from typing import Any

from ._dctchop import (
    Codec,
    Container,
    Loader,
    PartWriter,
    __version__,
    assemble,
    compress_files,
    decompress_files,
    export,
    keep_freed_memory,
    open,
    part_stem,
)
from .errors import CorruptError, DctchopError, EngineError, FileError, ResourceError, SpecError
from .loader import ContainerLoader
from .sampler import split

__all__ = [
    "Codec",
    "Container",
    "ContainerLoader",
    "ContainerDataset",
    "CorruptError",
    "DctchopError",
    "EngineError",
    "FileError",
    "Loader",
    "PartWriter",
    "ResourceError",
    "SpecError",
    "__version__",
    "assemble",
    "compress_files",
    "compress_parallel",
    "decompress_files",
    "export",
    "keep_freed_memory",
    "open",
    "part_stem",
    "split",
]


def __getattr__(name: str) -> Any:
    # Lazy: torch and dask are imported only when these are used.
    if name == "ContainerDataset":
        from .torchdata import ContainerDataset

        return ContainerDataset
    if name == "compress_parallel":
        from .parallel import compress_parallel

        return compress_parallel
    raise AttributeError(f"module 'dctchop' has no attribute {name!r}")
