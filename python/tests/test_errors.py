"""Bad input raises the exception of its kind (all DctchopError), never crashes the process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dctchop
from dctchop import CorruptError, DctchopError, FileError, SpecError


def test_exception_hierarchy():
    assert issubclass(SpecError, ValueError) and issubclass(FileError, OSError)
    for e in (SpecError, FileError, CorruptError, dctchop.ResourceError, dctchop.EngineError):
        assert issubclass(e, DctchopError)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(height=64, width=64, cf=9), ["cf", "9"]),
        (dict(height=64, width=64, cf=4, block=12), ["block", "12"]),
        (dict(height=64, width=64, cf=4, variant="circle"), ["variant", "circle"]),
        (dict(height=64, width=64, cf=4, tile=12), ["tile"]),
        (dict(height=64, width=64, cf=4, colour=1), ["colour", "allowed"]),
        (dict(height=64, width=64, cf=4, batch=0), ["batch", "0"]),
        (dict(height=64, width=64, cf=4, quant=("i4", 1.0)), ["i4"]),
        (dict(height=64, width=64, cf=4, quant=("i8", -1.0)), ["step"]),
        (dict(height=64, width=64, cf=4, engine="gpu-magic"), ["engine", "gpu-magic"]),
        (dict(height=64, width=64, cf=4, threads=0), ["threads"]),
    ],
)
def test_bad_specs_raise_spec_error_naming_the_field(kwargs, words):
    with pytest.raises(SpecError) as e:
        dctchop.Codec(**kwargs)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_bad_arrays_raise_spec_error():
    codec = dctchop.Codec(16, 16, 4, batch=2)
    with pytest.raises(SpecError, match="4-D"):
        codec.compress(np.zeros((3, 16, 16), np.float32))
    with pytest.raises(SpecError, match="expected shape"):
        codec.compress(np.zeros((2, 3, 16, 17), np.float32))
    with pytest.raises(SpecError, match="expected shape"):
        codec.compress(np.zeros((0, 3, 16, 16), np.float32))
    with pytest.raises(SpecError, match="float32"):
        codec.compress([["not", "numbers"]])
    with pytest.raises(SpecError):
        codec.compress(None)
    with pytest.raises(SpecError, match="expected shape"):
        codec.decompress(np.zeros((2, 3, 9, 8), np.float32))
    with pytest.raises(SpecError, match="int8 or int16"):
        codec.decompress_codes(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(SpecError, match="quant"):
        codec.decompress_codes(np.zeros((2, 3, 8, 8), np.int8))
    q = dctchop.Codec(16, 16, 4, quant=("i8", 1.0))
    with pytest.raises(SpecError, match="decompress_codes"):
        q.decompress(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(SpecError, match="int16"):
        q.decompress_codes(np.zeros((2, 3, 8, 8), np.int16))


def test_missing_and_existing_files_raise_file_error(tmp_path, multi_shard, data_npy):
    with pytest.raises(FileError, match="not found"):
        dctchop.open(tmp_path / "nothing")
    with pytest.raises(FileError):
        dctchop.compress_files(tmp_path / "missing.npy", tmp_path / "o")
    with pytest.raises(FileError, match="already exists"):
        dctchop.compress_files(data_npy, multi_shard, cf=4, batch=4, shard_mb=1)
    with pytest.raises(SpecError, match="unknown compress option 'speed'"):
        dctchop.compress_files(data_npy, tmp_path / "o", speed=3)
    with pytest.raises(SpecError, match="shard index 9"):
        dctchop.open(multi_shard).read_shard(9)


def _copy(src: Path, dst: Path) -> Path:
    c = dctchop.open(src)
    for s in c.shards + [c.graph]:
        shutil.copy(s, dst / Path(s).name)
    return dst / Path(c.stem).name


def test_damaged_shards_raise_corrupt_error(tmp_path, multi_shard):
    stem = _copy(multi_shard, tmp_path)
    shard = Path(f"{stem}.00002.safetensors")
    b = bytearray(shard.read_bytes())
    b[-100] ^= 0x40
    shard.write_bytes(bytes(b))
    c = dctchop.open(stem)  # headers are fine
    with pytest.raises(CorruptError, match="checksum"):
        c.read_shard(2)
    with pytest.raises(CorruptError, match="checksum"):
        c.verify()
    with pytest.raises(CorruptError):
        list(dctchop.ContainerLoader(stem, batch_size=8))
    shard.write_bytes(bytes(b[:-10]))
    with pytest.raises(CorruptError, match="truncated"):
        dctchop.open(stem)
    Path(f"{stem}.00003.safetensors").unlink()
    with pytest.raises(CorruptError):
        dctchop.open(stem)


def test_bad_input_never_kills_the_interpreter(tmp_path):
    # Everything above in a fresh interpreter that must exit normally (a Rust panic across the
    # boundary would surface as a PanicException or an abort, not as these exceptions).
    code = f"""
import numpy as np, dctchop
bad = [lambda: dctchop.Codec(0, 0, 0), lambda: dctchop.Codec(8, 8, 4).compress(np.zeros((1,3,8,8,1),'f4')),
       lambda: dctchop.open({str(tmp_path)!r}), lambda: dctchop.Codec(8, 8, 4, quant={{'code': 'i8'}}),
       lambda: dctchop.Codec(8, 8, 4, tile='x'), lambda: dctchop.export(8, 8, 99, {str(tmp_path)!r}),
       lambda: dctchop.Codec.from_spec('{{"nope": 1}}'), lambda: dctchop.ContainerLoader({str(tmp_path)!r}, 0),
       lambda: dctchop.Codec(8, 8, 4).compress(np.full((1,3,8,8), np.nan, 'f4')),
       lambda: dctchop.PartWriter({str(tmp_path / 'p')!r}, 0, 0, 8, 8, 4)]
for f in bad:
    try:
        f()
    except dctchop.DctchopError as e:
        print(type(e).__name__)
    else:
        print("no error")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 10 and "no error" not in lines[:8] + lines[9:], r.stdout
