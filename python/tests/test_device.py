"""ONNX Runtime decompression (dctchop.device) on the CPU provider: the device code path
(IO binding, per-batch-size sessions, DLPack output) against the Rust decoder."""

from __future__ import annotations

import numpy as np
import pytest

import dctchop

ort = pytest.importorskip("onnxruntime")


def test_onnxruntime_decoder_matches_rust_on_floats(multi_shard, reference):
    got = list(dctchop.ContainerLoader(multi_shard, batch_size=16, decoder="onnxruntime", device="cpu"))
    assert [g.shape[0] for g in got] == [16, 16, 16, 12]
    np.testing.assert_allclose(np.concatenate(got), reference, rtol=1e-5, atol=1e-3)


def test_onnxruntime_decoder_takes_codes(tmp_path, data_npy):
    x = np.load(data_npy)[:10]
    w = dctchop.PartWriter(tmp_path / "q", 0, 10, 124, 132, 4, batch=4, quant=("i8", 1.0))
    w.push(x)
    c = dctchop.assemble(tmp_path / "q", [w.finish()])
    graph, declared = c.decompress_graph(4)
    s = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    assert s.get_inputs()[0].type == "tensor(int8)"  # only the int8 codes go to the device
    rust = np.concatenate(list(dctchop.ContainerLoader(c, batch_size=4, shuffle=True, seed=2)))
    dev = np.concatenate(list(dctchop.ContainerLoader(c, batch_size=4, shuffle=True, seed=2,
                                                      decoder="onnxruntime")))
    np.testing.assert_allclose(dev, rust, rtol=1e-5, atol=1e-3)


def test_onnxruntime_decoder_unmixes_channels(tmp_path, data_npy):
    # Codes of opponent-mixed channels (container v3): the graph ORT runs undoes the mix.
    x = np.load(data_npy)[:6]
    w = dctchop.PartWriter(tmp_path / "m", 0, 6, 124, 132, 4, batch=3,
                           quant={"code": "i16", "step": 0.5, "mix": "opponent"})
    w.push(x)
    c = dctchop.assemble(tmp_path / "m", [w.finish()])
    assert c.metadata(0)["format_version"] == "3"
    rust = np.concatenate(list(dctchop.ContainerLoader(c, batch_size=3)))
    dev = np.concatenate(list(dctchop.ContainerLoader(c, batch_size=3, decoder="onnxruntime")))
    np.testing.assert_allclose(dev, rust, rtol=1e-5, atol=1e-3)
    # Close to the input: the step is fine, so what is left is the chop error.
    plain = dctchop.Codec(124, 132, 4).decompress(dctchop.Codec(124, 132, 4).compress(x))
    assert np.abs(rust - plain).max() < 2.0


def test_decoder_output_is_dlpack(multi_shard, reference):
    from dctchop.device import OrtDecoder

    c = dctchop.open(multi_shard)
    d = OrtDecoder(c, device="cpu")
    y = c.read_shard(0)[:3]
    x = d.decompress(y)
    np.testing.assert_allclose(np.from_dlpack(x), reference[:3], rtol=1e-5, atol=1e-3)
    # Without the Reshape elision the session's own output (an OrtValue) is DLPack too.
    graph, declared = c.decompress_graph(3, elide_reshape=False)
    assert declared is None
    s = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    io = s.io_binding()
    io.bind_cpu_input(s.get_inputs()[0].name, np.ascontiguousarray(y))
    io.bind_output(s.get_outputs()[0].name, "cpu")
    s.run_with_iobinding(io)
    np.testing.assert_allclose(np.from_dlpack(io.get_outputs()[0]), reference[:3], rtol=1e-5, atol=1e-3)


def test_bad_device_and_decoder(multi_shard):
    with pytest.raises(dctchop.SpecError, match="device"):
        dctchop.ContainerLoader(multi_shard, decoder="onnxruntime", device="tpu")
    with pytest.raises(dctchop.SpecError, match="decoder"):
        dctchop.ContainerLoader(multi_shard, decoder="magic")
    with pytest.raises(dctchop.SpecError, match="decoder='onnxruntime'"):
        dctchop.ContainerLoader(multi_shard, device="cuda")
