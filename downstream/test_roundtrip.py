"""Tests of the round-trip adapters: python -m pytest downstream"""

import numpy as np
import pytest

import emsim
import roundtrip as rt


@pytest.fixture(scope="module")
def noisy():
    return emsim.make_dataset(3, seed=5)[1]


def _have_bin():
    try:
        rt.find_dctchop_bin()
        return True
    except FileNotFoundError:
        return False


def test_reference_chop_properties(noisy):
    # CF 8 keeps everything; chop CF k keeps k^2/64; triangle k(k+1)/2 / 64
    assert np.allclose(rt.DctChopReference(8)(noisy), noisy, atol=1e-5)
    assert rt.DctChopReference(4).ratio == 4.0
    assert rt.DctChopReference(4, "triangle").ratio == 6.4
    # round trip is a projection: applying it twice changes nothing more
    r = rt.DctChopReference(3)
    once = r(noisy)
    assert np.allclose(r(once), once, atol=1e-5)
    # and block means (DC) are kept
    b = lambda x: x.reshape(3, 1, 32, 8, 32, 8).mean(axis=(3, 5))  # noqa: E731
    assert np.allclose(b(once), b(noisy), atol=1e-5)


@pytest.mark.skipif(not _have_bin(), reason="no dctchop binary (DCTCHOP_BIN, /work/bin, target/)")
@pytest.mark.parametrize("cf,variant", [(4, "chop"), (8, "chop"), (4, "triangle")])
def test_onnx_matches_reference(tmp_path, noisy, cf, variant):
    onnx = rt.DctChopOnnx(cf, variant, batch=2, graph_dir=tmp_path)  # batch 2: padding exercised
    ref = rt.DctChopReference(cf, variant)
    assert onnx.ratio == pytest.approx(ref.ratio)
    a, b = onnx(noisy), ref(noisy)
    assert a.shape == noisy.shape and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-5 * (noisy.max() - noisy.min())


def test_zfp_fixed_rate_ratio(noisy):
    pytest.importorskip("zfpy")
    z = rt.ZfpFixedRate(8.0)
    out = z(noisy)
    assert out.shape == noisy.shape
    assert z.ratio == pytest.approx(4.0, rel=0.02)  # 32 / 8 bits, plus a header
    assert 0 < np.abs(out - noisy).max() < 1.0


def test_sz3_matches_ratio(noisy):
    pytest.importorskip("pysz")
    s = rt.Sz3ErrorBound(7.11)
    out = s(noisy)
    assert out.shape == noisy.shape
    assert s.ratio == pytest.approx(7.11, rel=0.05)
    # error-bounded: every value within the bound (small slack for float32)
    assert np.abs(out - noisy).max() <= s.error_bound * (1 + 1e-5) + 1e-7


def _psnr(a, b, peak):
    return 10 * np.log10(peak ** 2 / np.mean((a.astype(np.float64) - b) ** 2))


def _stored_ratio_on_disk(exe, noisy, tmp_path):
    """original float32 bytes / payload bytes, read from the shard itself, and the shard's
    stored_ratio metadata: what DctChopQuantCli must report, found without its code."""
    import json
    import struct
    import subprocess

    np.save(tmp_path / "x.npy", noisy.astype(np.float32))
    subprocess.run([exe, "compress", str(tmp_path / "x.npy"), "-o", str(tmp_path / "c"),
                    "--cf", "4", "--quiet"], check=True)
    raw = (tmp_path / "c.00000.safetensors").read_bytes()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hl])
    payload = len(raw) - 8 - hl
    return noisy.astype(np.float32).nbytes / payload, float(header["__metadata__"]["stored_ratio"])


@pytest.mark.skipif(not _have_bin(), reason="no dctchop binary (DCTCHOP_BIN, /work/bin, target/)")
def test_quantized_cli_ratio_and_psnr(tmp_path, noisy):
    q = rt.DctChopQuantCli(4, tmp_root=tmp_path)
    out = q(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert list(tmp_path.iterdir()) == []  # its temporary directory is gone
    on_disk, meta = _stored_ratio_on_disk(q.exe, noisy, tmp_path)
    assert q.ratio == pytest.approx(on_disk, rel=1e-9)
    assert q.ratio == pytest.approx(meta, rel=1e-6)
    assert q.ratio > 4.0  # more than the float coefficients of CF 4 store: it is quantized
    peak = float(noisy.max() - noisy.min())
    p_q = _psnr(out, noisy, peak)
    p_chop = _psnr(rt.DctChopReference(4)(noisy), noisy, peak)
    # --quant auto costs ~0.4 dB on the batch it chose the step from
    assert p_chop - 0.5 <= p_q < p_chop
    # later calls reuse the first call's choice: the same data give the same output
    assert q.frozen_args[:4] == ["--cf", "4", "--variant", "chop"]
    assert np.array_equal(q(noisy), out)


@pytest.mark.skipif(not _have_bin(), reason="no dctchop binary (DCTCHOP_BIN, /work/bin, target/)")
def test_quantized_cli_target_ratio(noisy):
    q = rt.DctChopQuantCli(target_ratio=16)
    q(noisy)
    assert q.ratio >= 16 and q.report["target_met"]
    assert q.describe()["chosen_cf"] in range(1, 9)


@pytest.mark.skipif(not _have_bin(), reason="no dctchop binary (DCTCHOP_BIN, /work/bin, target/)")
def test_quantized_cli_error_carries_stderr(tmp_path, noisy):
    q = rt.DctChopQuantCli(9, tmp_root=tmp_path)  # CF 9 > block 8: the CLI refuses
    with pytest.raises(rt.DctChopCliError, match=r"(?s)exited with \d+:.*cf = 9"):
        q(noisy)
    assert list(tmp_path.iterdir()) == []  # cleaned up on failure too


def test_quantized_cli_failing_binary(tmp_path, noisy):
    fake = tmp_path / "dctchop"
    fake.write_text("#!/bin/sh\necho 'disk full' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(rt.DctChopCliError, match="exited with 3: disk full"):
        rt.DctChopQuantCli(4, bin_path=str(fake))(noisy)


def test_quantized_cli_no_json(tmp_path, noisy):
    fake = tmp_path / "dctchop"
    fake.write_text("#!/bin/sh\necho 'compressed 3 samples'\n")
    fake.chmod(0o755)
    with pytest.raises(rt.DctChopCliError, match="no JSON report"):
        rt.DctChopQuantCli(4, bin_path=str(fake))(noisy)
