"""Exceptions raised by dctchop: one class per kind of failure, all derived from DctchopError.

The Rust core raises these for every library error (the message names the file, field or option,
the value, and what is allowed); bad arguments from Python raise them too, never a crash.
"""

from __future__ import annotations


class DctchopError(Exception):
    """Base class of every error dctchop raises."""


class SpecError(DctchopError, ValueError):
    """A spec field, an option or an array's shape/type is out of range (also a ValueError)."""


class FileError(DctchopError, OSError):
    """A file cannot be used as asked: missing, exists already, unsupported, or an I/O failure
    (also an OSError)."""


class CorruptError(DctchopError):
    """Stored data is damaged or contradicts itself (checksum mismatch, truncated shard,
    inconsistent metadata, shards of different containers mixed)."""


class ResourceError(DctchopError):
    """A resource limit would be exceeded (e.g. max_memory_mb)."""


class EngineError(DctchopError, RuntimeError):
    """A graph could not be built, compiled or run (also a RuntimeError)."""


__all__ = [
    "DctchopError",
    "SpecError",
    "FileError",
    "CorruptError",
    "ResourceError",
    "EngineError",
]
