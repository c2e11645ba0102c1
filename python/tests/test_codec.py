"""The package against the CLI: codec, export, compress_files/decompress_files, open, loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dctchop


def test_compress_files_is_byte_identical_to_the_cli(tmp_path, cli, data_npy, multi_shard):
    out = tmp_path / "x"
    rep = dctchop.compress_files(data_npy, out, cf=4, batch=4, shard_mb=1, quant="none")
    assert rep["samples"] == 60 and len(rep["shards"]) == 4
    c = dctchop.open(multi_shard)
    for i, shard in enumerate(c.shards):
        assert Path(rep["shards"][i]).read_bytes() == Path(shard).read_bytes(), f"shard {i}"
    assert Path(rep["graph"]).read_bytes() == Path(c.graph).read_bytes()


def test_open_reads_the_cli_container(multi_shard, data_npy):
    c = dctchop.open(multi_shard)
    assert len(c) == 60 and c.shape == (60, 3, 124, 132)
    assert len(c.shards) == 4 and sum(c.shard_samples) == 60
    assert c.original_dtype == "float32" and c.stored_dtype == "float32"
    assert c.spec["cf"] == 4 and c.payload == {"kind": "float", "dtype": "float32"}
    assert c.metadata(1)["shard_index"] == "1"
    x = np.load(data_npy)
    assert c.value_range == (float(x.min()), float(x.max()))
    c.verify()
    # Any shard path opens the same container.
    assert dctchop.open(c.shards[2]).stem == c.stem


def test_codec_matches_the_stored_coefficients_and_the_cli_decompression(multi_shard, data_npy, reference):
    x = np.load(data_npy)
    c = dctchop.open(multi_shard)
    codec = dctchop.Codec(124, 132, 4, batch=4)
    y = codec.compress(x)
    assert y.dtype == np.float32 and y.shape == (60, 3, 64, 68)
    stored = np.concatenate([c.read_shard(i) for i in range(len(c.shards))])
    np.testing.assert_array_equal(y, stored)
    np.testing.assert_array_equal(codec.decompress(y), reference)


@pytest.mark.parametrize("n", [1, 3, 4, 7])
def test_any_batch_count_with_a_graph_engine(n, data_npy):
    x = np.load(data_npy)[:n]
    native = dctchop.Codec(124, 132, 4, batch=4)
    tract = dctchop.Codec(124, 132, 4, batch=4, engine="tract")
    y = tract.compress(x)
    assert y.shape[0] == n
    np.testing.assert_allclose(y, native.compress(x), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(tract.decompress(y), native.decompress(y), rtol=1e-5, atol=1e-3)


def test_non_contiguous_and_other_dtypes_are_converted(data_npy):
    x = np.load(data_npy)[:4]
    codec = dctchop.Codec(124, 132, 4, batch=4)
    want = codec.compress(x)
    np.testing.assert_array_equal(codec.compress(np.asfortranarray(x)), want)
    np.testing.assert_array_equal(codec.compress(x.astype(np.float64)), want)
    u8 = (x % 256).astype(np.uint8)
    np.testing.assert_array_equal(codec.compress(u8), codec.compress(u8.astype(np.float32)))


def test_rust_loader_and_container_loader_match_the_cli(multi_shard, reference):
    c = dctchop.open(multi_shard)
    got = np.concatenate(list(c.loader(16)))
    np.testing.assert_array_equal(got, reference)
    batches = list(dctchop.ContainerLoader(multi_shard, batch_size=16))
    assert [b.shape[0] for b in batches] == [16, 16, 16, 12]
    np.testing.assert_array_equal(np.concatenate(batches), reference)


def test_decompress_files_matches_the_cli(tmp_path, multi_shard, reference):
    rep = dctchop.decompress_files(multi_shard, tmp_path / "back.npy")
    assert rep["samples"] == 60
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), reference)


def test_export_writes_the_graph_pair_the_cli_writes(tmp_path, cli):
    rep = dctchop.export(64, 48, 4, tmp_path / "py", variant="triangle", batch=2)
    cli("export", "--cf", "4", "--res", "64x48", "--variant", "triangle", "--batch", "2", "-o", tmp_path / "cli")
    for key in ("compress", "decompress"):
        p = Path(rep["files"][key])
        assert p.read_bytes() == (tmp_path / "cli" / p.name).read_bytes(), key
    side = json.loads(Path(rep["files"]["sidecar"]).read_text())
    assert side["compressed_shape"] == [2, 3, 8 * 6 * 10]  # 8x6 blocks, 10 coefficients each
    assert side["spec"]["variant"] == "triangle"


def test_export_graph_runs_in_onnxruntime_like_the_codec(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rep = dctchop.export(64, 48, 4, tmp_path, batch=2)
    x = np.random.default_rng(1).random((2, 3, 64, 48), dtype=np.float32)
    s = ort.InferenceSession(rep["files"]["compress"], providers=["CPUExecutionProvider"])
    (y,) = s.run(None, {"x": x})
    np.testing.assert_allclose(y, dctchop.Codec(64, 48, 4, batch=2).compress(x), rtol=1e-5, atol=1e-5)


def test_f16_store_and_triangle(tmp_path, cli, data_npy):
    out = tmp_path / "t"
    cli("compress", data_npy, "-o", out, "--cf", "3", "--variant", "triangle", "--store", "f16", "--quiet")
    cli("decompress", out, "-o", tmp_path / "t.npy")
    c = dctchop.open(out)
    assert c.payload == {"kind": "float", "dtype": "float16"} and c.stored_dtype == "float32"
    got = np.concatenate(list(dctchop.ContainerLoader(out, batch_size=7)))
    np.testing.assert_array_equal(got, np.load(tmp_path / "t.npy"))


def test_quantized_codec_round_trip(data_npy):
    x = np.load(data_npy)[:5]
    codec = dctchop.Codec(124, 132, 4, batch=2, quant=("i16", 0.05))
    assert codec.code_dtype == "int16"
    codes, clamped = codec.compress_codes(x)
    assert codes.dtype == np.int16 and codes.shape == (5, 3, 64, 68) and clamped == 0
    back = codec.decompress_codes(codes)
    ref = dctchop.Codec(124, 132, 4, batch=2).decompress(codes.astype(np.float32) * 0.05)
    np.testing.assert_allclose(back, ref, rtol=1e-4, atol=1e-3)
    # The codes are the compress graph's output (coefficients / step), rounded.
    scaled = codec.compress(x)
    np.testing.assert_allclose(scaled, dctchop.Codec(124, 132, 4).compress(x) / 0.05, rtol=1e-4, atol=1e-2)
    assert np.abs(codes - scaled).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("dtype,scale", [("uint8", 1.0), ("uint16", 250.0), ("int16", 100.0)])
def test_compress_codes_reads_integer_arrays_as_their_values(data_npy, dtype, scale):
    # An integer array goes to the native engine as it is (no float32 copy): the codes equal
    # those of the same values as float32, with and without the channel transform.
    x = np.load(data_npy)[:3]
    lo, hi = float(x.min()), float(x.max())
    top = {"uint8": 255, "uint16": 65535, "int16": 32767}[dtype]
    xi = np.clip(np.round((x - lo) / (hi - lo) * 255 * scale), 0, top).astype(dtype)
    for quant in [("i16", 0.7 * scale), {"code": "i16", "step": 0.7 * scale, "mix": "opponent"}]:
        codec = dctchop.Codec(124, 132, 4, quant=quant)
        codes, clamped = codec.compress_codes(xi)
        want, want_clamped = codec.compress_codes(xi.astype(np.float32))
        np.testing.assert_array_equal(codes, want)
        assert clamped == want_clamped


def test_channel_transform_from_python_matches_numpy_and_the_cli(tmp_path, cli, data_npy):
    # A spec with the opponent transform: its codes are the transform-free ones mixed by the
    # orthonormal matrix (written out here), and compress_files(mix=...) writes what the CLI does.
    x = np.load(data_npy)[:4]
    a, b, c = 1 / np.sqrt(3), 1 / np.sqrt(2), 1 / np.sqrt(6)
    m = np.array([[a, a, a], [b, 0, -b], [c, -2 * c, c]])
    mixed = dctchop.Codec(124, 132, 4, quant={"code": "i16", "step": 0.05, "mix": "opponent"})
    plain = dctchop.Codec(124, 132, 4, quant=("i16", 0.05))
    want = np.einsum("ck,nk...->nc...", m, plain.compress(x).astype(np.float64))
    np.testing.assert_allclose(mixed.compress(x), want, rtol=1e-4, atol=1e-2)
    codes, _ = mixed.compress_codes(x)
    back = mixed.decompress_codes(codes)
    unmixed = np.einsum("kc,nk...->nc...", m, codes.astype(np.float64)) * 0.05
    ref = dctchop.Codec(124, 132, 4).decompress(unmixed.astype(np.float32))
    np.testing.assert_allclose(back, ref, rtol=1e-4, atol=1e-3)
    rep = dctchop.compress_files(data_npy, tmp_path / "m", cf=4, batch=4, mix="opponent")
    assert rep["quant"]["mix"] == "opponent"
    cli("compress", data_npy, "-o", tmp_path / "n", "--cf", "4", "--batch", "4", "--mix", "opponent", "--quiet")
    assert Path(dctchop.open(tmp_path / "m").shards[0]).read_bytes() == Path(dctchop.open(tmp_path / "n").shards[0]).read_bytes()
    got = np.concatenate(list(dctchop.ContainerLoader(tmp_path / "m", batch_size=16)))
    cli("decompress", tmp_path / "n", "-o", tmp_path / "n.npy")
    np.testing.assert_array_equal(got, np.load(tmp_path / "n.npy"))
    with pytest.raises(dctchop.SpecError, match="mix"):
        dctchop.compress_files(data_npy, tmp_path / "x", mix="ycbcr")


def test_compress_files_quantizes_like_the_cli(tmp_path, cli, data_npy):
    # The CLI's defaults (quant auto, zstd) and its targets, from Python keywords.
    rep = dctchop.compress_files(data_npy, tmp_path / "a", cf=4, batch=4)
    assert rep["quant"]["code"] in ("i8", "i16") and rep["quant"]["entropy"].startswith("zstd")
    cli("compress", data_npy, "-o", tmp_path / "b", "--cf", "4", "--batch", "4", "--quiet")
    a = dctchop.open(tmp_path / "a")
    b = dctchop.open(tmp_path / "b")
    assert Path(a.shards[0]).read_bytes() == Path(b.shards[0]).read_bytes()
    assert a.payload["kind"] == "codes"
    r = dctchop.compress_files(data_npy, tmp_path / "r", target_ratio=20.0, code="i16", entropy="zstd:9")
    assert r["target_met"] is True and r["stored_ratio"] >= 20.0
    with pytest.raises(dctchop.SpecError, match="quant"):
        dctchop.compress_files(data_npy, tmp_path / "x", quant="fine")
