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
