"""Type stubs of the Rust core ``dctchop._dctchop`` (docstrings: docs/python.md)."""

from os import PathLike
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, PathLike[str]]
# None, (code, step), or {"code", "step", optional "rows", "cols", "mix": "opponent" | None}.
_Quant = Union[None, Tuple[str, float], Dict[str, Any]]

__version__: str
COMPRESS_OPTIONS: List[str]

class Codec:
    """Compresses/decompresses numpy arrays with one spec's graphs, compiled once. Spec keywords:
    channels, batch, block, variant, tile, serialize, dtype, quant."""

    def __init__(
        self,
        height: int,
        width: int,
        cf: int,
        *,
        engine: str = "auto",
        threads: Optional[int] = None,
        device: str = "cpu",
        channels: int = 3,
        batch: int = 1,
        block: int = 8,
        variant: str = "chop",
        tile: Union[str, int] = "auto",
        serialize: int = 1,
        dtype: str = "f32",
        quant: _Quant = None,
    ) -> None: ...
    @staticmethod
    def from_spec(
        spec: Union[str, Dict[str, Any]],
        *,
        batch: Optional[int] = None,
        engine: str = "auto",
        threads: Optional[int] = None,
        device: str = "cpu",
    ) -> Codec: ...
    @property
    def spec(self) -> Dict[str, Any]: ...
    @property
    def input_shape(self) -> List[int]: ...
    @property
    def compressed_shape(self) -> List[int]: ...
    @property
    def ratio(self) -> float: ...
    @property
    def code_dtype(self) -> Optional[str]: ...
    def compress(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    def decompress(self, y: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    def compress_codes(self, x: npt.ArrayLike) -> Tuple[npt.NDArray[np.signedinteger[Any]], int]: ...
    def decompress_codes(self, codes: npt.NDArray[np.signedinteger[Any]]) -> npt.NDArray[np.float32]: ...

class Container:
    """An opened container (every shard header checked; payloads read on demand)."""

    @property
    def stem(self) -> str: ...
    @property
    def shards(self) -> List[str]: ...
    @property
    def graph(self) -> str: ...
    @property
    def shard_samples(self) -> List[int]: ...
    @property
    def shape(self) -> Tuple[int, int, int, int]: ...
    @property
    def original_dtype(self) -> str: ...
    @property
    def value_range(self) -> Tuple[float, float]: ...
    @property
    def spec(self) -> Dict[str, Any]: ...
    @property
    def stored_dtype(self) -> str: ...
    @property
    def payload(self) -> Dict[str, str]: ...
    @property
    def container_id(self) -> Optional[str]: ...
    def metadata(self, i: int) -> Dict[str, str]: ...
    def __len__(self) -> int: ...
    def read_shard(self, i: int) -> npt.NDArray[Any]: ...
    def verify(self) -> None: ...
    def loader(
        self, batch_size: int = 16, *, engine: str = "auto", threads: Optional[int] = None, device: str = "cpu"
    ) -> Loader: ...
    def decompress_graph(self, batch: int, *, elide_reshape: bool = True) -> Tuple[bytes, Optional[List[int]]]: ...

class Loader(Iterator[npt.NDArray[np.float32]]):
    def __iter__(self) -> Loader: ...
    def __next__(self) -> npt.NDArray[np.float32]: ...

class PartWriter:
    """One worker's share of a dataset, written as part ``part`` of container ``stem``."""

    def __init__(
        self,
        stem: _Path,
        part: int,
        samples: int,
        height: int,
        width: int,
        cf: int,
        *,
        dtype: str = "float32",
        store: str = "f32",
        entropy: str = "zstd",
        shard_mb: float = 1024.0,
        engine: str = "auto",
        threads: Optional[int] = None,
        force: bool = False,
        channels: int = 3,
        batch: int = 1,
        block: int = 8,
        variant: str = "chop",
        tile: Union[str, int] = "auto",
        serialize: int = 1,
        quant: _Quant = None,
    ) -> None: ...
    def push(self, x: npt.ArrayLike) -> None: ...
    def finish(self) -> str: ...

def export(
    height: int,
    width: int,
    cf: int,
    out_dir: _Path = "dctchop-out",
    *,
    opset: int = 13,
    force: bool = False,
    **spec: Any,
) -> Dict[str, Any]: ...
def compress_files(inputs: Union[_Path, Sequence[_Path]], out: _Path, **options: Any) -> Dict[str, Any]: ...
def decompress_files(
    container: _Path,
    out: _Path,
    *,
    batch: int = 16,
    engine: str = "auto",
    threads: Optional[int] = None,
    device: str = "cpu",
    force: bool = False,
    dtype: str = "float32",  # or "original": the compressed data's type (integers rounded, clamped)
) -> Dict[str, Any]: ...
def open(path: _Path) -> Container: ...
def assemble(stem: _Path, parts: Optional[Sequence[_Path]] = None, *, force: bool = False) -> Container: ...
def part_stem(stem: _Path, part: int) -> str: ...
def keep_freed_memory() -> None: ...
