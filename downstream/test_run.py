"""The smoke check itself must be able to fail: python -m pytest downstream"""

import copy

import emsim
import run


def _fake():
    base = {"step_losses": [0.5, 0.4, 0.3], "test_loss": [0.2, 0.1], "final_test_loss": 0.1}
    return {"configs": {
        "base": {"runs": [copy.deepcopy(base)], "max_abs_change": 0.0},
        "chop-cf8@snap": {"runs": [copy.deepcopy(base)], "max_abs_change": 0.0},
        "chop-cf8": {"runs": [copy.deepcopy(base)], "max_abs_change": 3e-6},
        "chop-cf4": {"runs": [{**copy.deepcopy(base), "test_loss": [0.2, 0.12],
                               "final_test_loss": 0.12}], "max_abs_change": 0.9},
    }}


def test_smoke_check_passes_on_identical_training():
    assert run.smoke_check(_fake()) == []


def test_smoke_check_fails_on_one_ulp_of_loss():
    res = _fake()
    res["configs"]["chop-cf8@snap"]["runs"][0]["step_losses"][1] = 0.4 + 1e-16 * 4
    assert any("bit-identical" in e for e in run.smoke_check(res))


def test_smoke_check_fails_on_a_lossy_cf8():
    res = _fake()
    res["configs"]["chop-cf8"]["max_abs_change"] = emsim.NOISY_QUANTUM  # > q/4
    res["configs"]["chop-cf8@snap"]["max_abs_change"] = emsim.NOISY_QUANTUM
    errs = run.smoke_check(res)
    assert any("codec or its plumbing" in e for e in errs)
    assert any("must be 0" in e for e in errs)


def test_smoke_check_fails_when_cf4_indistinguishable():
    res = _fake()
    res["configs"]["chop-cf4"]["runs"][0]["final_test_loss"] = 0.1001
    assert any("too short" in e for e in run.smoke_check(res))


def test_nominal_ratios():
    assert run.nominal_ratio("chop-cf4") == 4.0
    assert run.nominal_ratio("chop-cf2") == 16.0
    assert run.nominal_ratio("triangle-cf4") == 6.4


def test_quantized_specs_parse(monkeypatch):
    import argparse

    import pytest

    import roundtrip as rt

    monkeypatch.setattr(rt, "find_dctchop_bin", lambda explicit=None: "/bin/true")
    a = argparse.Namespace(dctchop_bin=None, threads=1, dctchop_impl="onnx")
    assert run.make_roundtrip("q-cf4", a).first_args == ["--quant", "auto", "--cf", "4"]
    assert run.make_roundtrip("q-triangle-cf6", a).first_args[-2:] == ["--variant", "triangle"]
    assert run.make_roundtrip("q-ratio32", a).first_args == ["--target-ratio", "32"]
    m = run.make_roundtrip("sz3:q-ratio32", a)
    assert isinstance(m, rt.RatioMatched) and m.matched_to == "q-ratio32" and m.family == "sz3"
    with pytest.raises(ValueError, match="bad quantized config"):
        run.make_roundtrip("q-cf", a)
    # every config of the full profile is understood
    for spec in run.PROFILES["full"]["configs"]:
        if spec.startswith("q-") or ":q-" in spec:
            run.make_roundtrip(spec, a)
