#!/usr/bin/env python3
"""Cross-check dctchop's exported ONNX graphs against independent runtimes.

Usage:
    python/crosscheck.py CASES_DIR [--openvino] [--quiet]

CASES_DIR holds one subdirectory per case (written by a Rust test), each with

    compress.onnx     input `x` -> output `y`
    decompress.onnx   input `y` -> output `x`
    x.npy             the input
    y.npy             what tract produced for compress(x)
    x_rec.npy         what tract produced for decompress(y.npy)
    meta.json         {"name": str, "tolerance": float, "spec": {...}}

A quantized case (meta.json has "quant": {"code": "i8"|"i16", "step": ...})
also has

    q.npy             int8/int16 codes: y.npy rounded by dctchop's rule
                      (round half to even, clamp to +-127 / +-32767)

and its decompress graph takes q.npy (input `y` is int8/int16, one Cast node
to float at the input), and x_rec.npy is what tract produced for
decompress(q.npy). The codes are fed exactly as stored, never cast.

For every case and graph this checks

    checker      onnx.checker.check_model(onnx.load(path), full_check=True)
    static       ops only in {MatMul, Gather, Reshape} (default domain; plus
                 one Cast in a quantized case's decompress graph), inputs
                 and outputs named as above, every graph input/output dim a
                 positive static dim_value, and the declared input/output
                 dtypes and shapes equal to those of the .npy files
    onnxruntime  CPUExecutionProvider: compress(x.npy) vs y.npy and
                 decompress(y.npy) vs x_rec.npy
    openvino     (--openvino) the same with OpenVINO on CPU; every graph is
                 compiled with INFERENCE_PRECISION_HINT=f32 (CPUs with bf16
                 units otherwise compute f32 and f16 graphs in bf16, ~1e-2
                 error); f16 graphs then compute in f32 and round at the
                 f16 tensors, as in graphs/verify.py. The error with the
                 default hint is also reported on an INFO line (never a
                 failure).

Error metric: max|out - ref| / max(ptp(ref), tiny), computed in float64;
a check passes if it is <= meta.json's tolerance and the output's shape and
dtype equal the reference's exactly. NaN/Inf anywhere in either is a failure.

Output: one line per check, `PASS|FAIL <case> <consumer> <graph>
max_rel_err=<value>` (value `-` for checker/static), then detail lines
(indented) for failures, then a last line `N passed, M failed` counting the
PASS/FAIL lines. --quiet prints only failures, INFO lines and the summary.

Exit status: 0 all passed, 1 any failed, 2 no cases / bad usage / missing
Python packages (run python/setup_venv.sh).
"""

import argparse
import json
import math
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWED_OPS = {"MatMul", "Gather", "Reshape"}
GRAPHS = {
    # graph: (input name, output name, input file, reference output file)
    "compress": ("x", "y", "x.npy", "y.npy"),
    "decompress": ("y", "x", "y.npy", "x_rec.npy"),
}
# A quantized case's decompress graph takes the codes and may hold one Cast.
QUANT_GRAPHS = dict(GRAPHS, decompress=("y", "x", "q.npy", "x_rec.npy"))


def allowed_ops(quantized, graph):
    return ALLOWED_OPS | {"Cast"} if quantized and graph == "decompress" else ALLOWED_OPS
CASE_FILES = ["meta.json", "compress.onnx", "decompress.onnx", "x.npy", "y.npy", "x_rec.npy"]


def _import_deps():
    """Import numpy/onnx/onnxruntime; if they are missing, re-exec with the
    project's venv python when there is one, else explain and exit 2."""
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        return
    except ImportError as e:
        err = e
    venv = os.environ.get("DCTCHOP_VENV") or os.path.join(HERE, "..", ".venv")
    vpy = os.path.abspath(os.path.join(venv, "bin", "python"))
    if os.path.exists(vpy) and os.path.realpath(sys.prefix) != os.path.realpath(venv) \
            and not os.environ.get("DCTCHOP_CROSSCHECK_REEXEC"):
        os.environ["DCTCHOP_CROSSCHECK_REEXEC"] = "1"
        os.execv(vpy, [vpy, os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write(
        f"crosscheck: error: {err}\n"
        f"crosscheck: run python/setup_venv.sh, then use {vpy} (or set DCTCHOP_VENV)\n")
    sys.exit(2)


_import_deps()

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

NP_OF_ONNX = {
    onnx.TensorProto.FLOAT: np.dtype(np.float32),
    onnx.TensorProto.FLOAT16: np.dtype(np.float16),
    onnx.TensorProto.DOUBLE: np.dtype(np.float64),
    onnx.TensorProto.INT8: np.dtype(np.int8),
    onnx.TensorProto.UINT8: np.dtype(np.uint8),
    onnx.TensorProto.INT16: np.dtype(np.int16),
    onnx.TensorProto.UINT16: np.dtype(np.uint16),
    onnx.TensorProto.INT32: np.dtype(np.int32),
    onnx.TensorProto.UINT32: np.dtype(np.uint32),
    onnx.TensorProto.INT64: np.dtype(np.int64),
    onnx.TensorProto.UINT64: np.dtype(np.uint64),
    onnx.TensorProto.BOOL: np.dtype(np.bool_),
}


def _etype_name(t):
    try:
        return onnx.TensorProto.DataType.Name(t)
    except ValueError:
        return f"elem_type {t}"


class Report:
    def __init__(self, quiet):
        self.quiet = quiet
        self.passed = 0
        self.failed = 0
        self.failed_cases = set()

    def result(self, ok, case, consumer, graph, err=None, details=(), extra=""):
        err_s = "-" if err is None else _fmt_err(err)
        line = f"{'PASS' if ok else 'FAIL'} {case} {consumer} {graph} max_rel_err={err_s}"
        if extra:
            line += f" {extra}"
        if ok:
            self.passed += 1
            if not self.quiet:
                print(line)
        else:
            self.failed += 1
            self.failed_cases.add(case)
            print(line)
            for d in details:
                for sub in str(d).rstrip().splitlines():
                    print(f"    {sub}")
        sys.stdout.flush()

    def info(self, line, always=False):
        if always or not self.quiet:
            print(line)
            sys.stdout.flush()


def _fmt_err(e):
    if isinstance(e, str):
        return e
    if math.isnan(e):
        return "nan"
    if math.isinf(e):
        return "inf"
    return f"{e:.3e}"


def _exc_msg(e):
    msg = str(e).strip() or repr(e)
    return f"{type(e).__name__}: {msg}"


def rel_err(out, ref):
    """max|out-ref| / max(ptp(ref), tiny) in float64; nan if non-finite."""
    a = np.asarray(out, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        return float("nan")
    if a.size == 0:
        return 0.0
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("nan")
    diff = float(np.max(np.abs(a - b)))
    scale = max(float(np.ptp(b)), np.finfo(np.float64).tiny)
    return diff / scale


def compare(out, ref, tol, what):
    """Returns (ok, err, details)."""
    details = []
    out = np.asarray(out)
    if out.shape != ref.shape:
        details.append(f"{what}: shape {list(out.shape)} != reference {list(ref.shape)}")
    if out.dtype != ref.dtype:
        details.append(f"{what}: dtype {out.dtype} != reference {ref.dtype}")
    if out.shape != ref.shape:
        return False, float("nan"), details
    err = rel_err(out, ref)
    if math.isnan(err):
        n_out = int(np.size(out) - np.count_nonzero(np.isfinite(out.astype(np.float64))))
        n_ref = int(np.size(ref) - np.count_nonzero(np.isfinite(ref.astype(np.float64))))
        details.append(f"{what}: non-finite values (output: {n_out}, reference: {n_ref})")
        return False, err, details
    if err > tol:
        a = out.astype(np.float64)
        b = ref.astype(np.float64)
        d = np.abs(a - b)
        idx = np.unravel_index(int(np.argmax(d)), d.shape)
        n_bad = int(np.count_nonzero(d > tol * max(float(np.ptp(b)), np.finfo(np.float64).tiny)))
        details.append(
            f"{what}: max_rel_err {err:.3e} > tolerance {tol:g}; worst at index {list(map(int, idx))}:"
            f" got {float(a[idx]):.9g}, reference {float(b[idx]):.9g}; reference range [{b.min():.9g}, {b.max():.9g}];"
            f" {n_bad}/{d.size} elements out of tolerance")
    return not details, err, details


def load_npy(path):
    arr = np.load(path, allow_pickle=False)
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: not a single .npy array")
    return arr


def value_info_sig(vi):
    """(np dtype or None, [dims], [problems]) of a graph input/output."""
    problems = []
    tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    if tt is None:
        return None, None, [f"'{vi.name}' is not a tensor (type: {vi.type.WhichOneof('value')})"]
    dt = NP_OF_ONNX.get(tt.elem_type)
    if dt is None:
        problems.append(f"'{vi.name}' has unsupported {_etype_name(tt.elem_type)}")
    if not tt.HasField("shape"):
        return dt, None, problems + [f"'{vi.name}' has no shape"]
    dims = []
    for i, d in enumerate(tt.shape.dim):
        kind = d.WhichOneof("value")
        if kind == "dim_value" and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            shown = {"dim_value": lambda: str(d.dim_value), "dim_param": lambda: repr(d.dim_param)}.get(
                kind, lambda: "unset")()
            problems.append(f"'{vi.name}' dim {i} is {kind or 'unset'}={shown}, not a positive static dim_value")
            dims.append(None)
    return dt, dims, problems


def check_static(model, graph, arrays, quantized=False):
    """Ops, names, static dims and agreement with the .npy files."""
    in_name, out_name, in_file, ref_file = (QUANT_GRAPHS if quantized else GRAPHS)[graph]
    allowed = allowed_ops(quantized, graph)
    g = model.graph
    problems = []

    bad_ops = {}
    for node in g.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        if key not in allowed:
            bad_ops.setdefault(key, []).append(node.name or "<unnamed>")
    for op, names in sorted(bad_ops.items()):
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        problems.append(f"op {op} not allowed (only {sorted(allowed)}): {len(names)} node(s): {shown}")
    casts = [n for n in g.node if n.op_type == "Cast"]
    if casts and (len(casts) > 1 or not casts[0].input or casts[0].input[0] != in_name):
        problems.append(f"a quantized graph has exactly one Cast, of its input '{in_name}'")

    inits = {t.name for t in g.initializer}
    for vi in list(g.input) + list(g.output):
        problems += value_info_sig(vi)[2]

    feeds = [vi for vi in g.input if vi.name not in inits]
    if [vi.name for vi in feeds] != [in_name]:
        problems.append(f"non-initializer inputs are {[vi.name for vi in feeds]}, expected ['{in_name}']")
    if [vi.name for vi in g.output] != [out_name]:
        problems.append(f"outputs are {[vi.name for vi in g.output]}, expected ['{out_name}']")

    for vis, name, fname in ((g.input, in_name, in_file), (g.output, out_name, ref_file)):
        vi = next((v for v in vis if v.name == name), None)
        arr = arrays.get(fname)
        if vi is None or arr is None:
            continue
        dt, dims, _ = value_info_sig(vi)
        if dt is not None and dt != arr.dtype:
            problems.append(f"'{name}' is declared {dt} but {fname} is {arr.dtype}")
        if dims is not None and None not in dims and tuple(dims) != arr.shape:
            problems.append(f"'{name}' is declared {dims} but {fname} has shape {list(arr.shape)}")

    ops = sorted({n.op_type for n in g.node})
    return problems, f"ops={','.join(ops) or 'none'} nodes={len(g.node)}"


def run_ort(path, in_name, out_name, x):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    if out_name not in names:
        raise RuntimeError(f"onnxruntime session has outputs {names}, no '{out_name}'")
    return sess.run([out_name], {in_name: x})[0]


class OpenVino:
    def __init__(self):
        import openvino as ov
        self.ov = ov
        self.core = ov.Core()
        self.version = ov.get_version()
        try:
            self.default_hint = self._tname(self.core.get_property("CPU", "INFERENCE_PRECISION_HINT"))
        except Exception as e:  # pragma: no cover - informational only
            self.default_hint = f"unknown ({_exc_msg(e)})"

    @staticmethod
    def _tname(t):
        try:
            return t.get_type_name()
        except AttributeError:
            return str(t)

    def run(self, path, in_name, out_name, x, config):
        model = self.core.read_model(path)
        compiled = self.core.compile_model(model, "CPU", config)
        hint = self._tname(compiled.get_property("INFERENCE_PRECISION_HINT"))
        names = [n for o in compiled.outputs for n in o.get_names()]
        if out_name not in names:
            raise RuntimeError(f"openvino compiled model has outputs {names}, no '{out_name}'")
        res = compiled.create_infer_request().infer({in_name: x})
        return np.array(res[compiled.output(out_name)], copy=True), hint


def check_case(case_dir, rep, ovx):
    case = os.path.basename(os.path.normpath(case_dir))

    missing = [f for f in CASE_FILES if not os.path.isfile(os.path.join(case_dir, f))]
    if missing:
        rep.result(False, case, "files", "-", details=[
            f"{case_dir}: missing {', '.join(missing)} (expected {', '.join(CASE_FILES)})"])
        if "meta.json" in missing:
            return

    mpath = os.path.join(case_dir, "meta.json")
    try:
        with open(mpath) as f:
            meta = json.load(f)
        if not isinstance(meta, dict):
            raise ValueError("top level is not an object")
        tol = meta.get("tolerance")
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"'tolerance' must be a finite number >= 0, got {tol!r}")
        tol = float(tol)
    except Exception as e:
        rep.result(False, case, "meta", "-", details=[f"{mpath}: {_exc_msg(e)}"])
        return
    name = meta.get("name")
    quantized = bool(meta.get("quant"))
    rep.info(f"# case {case}" + (f" (name {name!r})" if name and name != case else "")
             + f" tolerance={tol:g} spec={json.dumps(meta.get('spec'), sort_keys=True)}")
    if quantized and not os.path.isfile(os.path.join(case_dir, "q.npy")):
        missing.append("q.npy")
        rep.result(False, case, "files", "-", details=[
            f"{case_dir}: missing q.npy (a quantized case: meta.json has 'quant')"])

    arrays = {}
    for fname in ("x.npy", "y.npy", "x_rec.npy") + (("q.npy",) if quantized else ()):
        p = os.path.join(case_dir, fname)
        if fname in missing:
            continue
        try:
            arrays[fname] = load_npy(p)
        except Exception as e:
            rep.result(False, case, "npy", fname, details=[f"{p}: cannot load: {_exc_msg(e)}"])

    for graph, (in_name, out_name, in_file, ref_file) in (QUANT_GRAPHS if quantized else GRAPHS).items():
        path = os.path.join(case_dir, f"{graph}.onnx")
        if f"{graph}.onnx" in missing:
            continue

        try:
            model = onnx.load(path)
        except Exception as e:
            rep.result(False, case, "checker", graph, details=[f"{path}: onnx.load failed: {_exc_msg(e)}"])
            continue

        try:
            onnx.checker.check_model(model, full_check=True)
            rep.result(True, case, "checker", graph)
        except Exception as e:
            rep.result(False, case, "checker", graph, details=[
                f"{path}: onnx.checker.check_model(full_check=True) failed:", _exc_msg(e)])

        try:
            problems, summary = check_static(model, graph, arrays, quantized)
            rep.result(not problems, case, "static", graph, extra=summary,
                       details=[f"{path}:"] + [f"- {p}" for p in problems])
        except Exception as e:
            rep.result(False, case, "static", graph, details=[
                f"{path}: static check crashed: {_exc_msg(e)}", traceback.format_exc()])

        if in_file not in arrays or ref_file not in arrays:
            what = " and ".join(f for f in (in_file, ref_file) if f not in arrays)
            rep.result(False, case, "onnxruntime", graph, details=[
                f"{path}: not run: {what} missing or unreadable"])
            continue
        x, ref = arrays[in_file], arrays[ref_file]
        what = f"{graph}.onnx({in_file}) vs {ref_file}"

        try:
            out = run_ort(path, in_name, out_name, x)
            ok, err, det = compare(out, ref, tol, what)
            rep.result(ok, case, "onnxruntime", graph, err, [f"{case_dir}:"] + det)
        except Exception as e:
            rep.result(False, case, "onnxruntime", graph, details=[
                f"{path}: onnxruntime CPUExecutionProvider failed on {in_file} "
                f"(dtype {x.dtype}, shape {list(x.shape)}):", _exc_msg(e)])

        if ovx is None:
            continue
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        ov_err = None
        try:
            out, hint = ovx.run(path, in_name, out_name, x, config)
            ok, err, det = compare(out, ref, tol, what)
            ov_err = err
            rep.result(ok, case, "openvino", graph, err, [f"{case_dir}: (inference precision {hint})"] + det,
                       extra=f"precision={hint}")
        except Exception as e:
            rep.result(False, case, "openvino", graph, details=[
                f"{path}: OpenVINO CPU failed with config {config} on {in_file} "
                f"(dtype {x.dtype}, shape {list(x.shape)}):", _exc_msg(e)])
        try:
            if ovx.default_hint == "f32" and ov_err is not None:
                # Default is already f32 on this CPU: same config, same result.
                err, hint, note = ov_err, "f32", "; CPU default is f32, same run as above"
            else:
                out, hint = ovx.run(path, in_name, out_name, x, {})
                err = rel_err(out, ref) if np.shape(out) == ref.shape else float("nan")
                note = ""
            rep.info(f"INFO {case} openvino-default {graph} max_rel_err={_fmt_err(err)} "
                     f"precision={hint} (report only, tolerance {tol:g}{note})", always=True)
        except Exception as e:
            rep.info(f"INFO {case} openvino-default {graph} max_rel_err=- "
                     f"(failed: {_exc_msg(e)})", always=True)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Cross-check dctchop ONNX graphs (onnx checker, static ops/shapes, "
                    "onnxruntime, optionally OpenVINO) against tract's outputs.")
    ap.add_argument("cases_dir", metavar="CASES_DIR", help="directory with one subdirectory per case")
    ap.add_argument("--openvino", action="store_true", help="also run the graphs with OpenVINO (CPU)")
    ap.add_argument("--quiet", action="store_true", help="print only failures, INFO lines and the summary")
    args = ap.parse_args(argv)

    if not os.path.isdir(args.cases_dir):
        sys.stderr.write(f"crosscheck: error: CASES_DIR {args.cases_dir!r} is not a directory\n")
        return 2
    cases = sorted(
        os.path.join(args.cases_dir, d) for d in os.listdir(args.cases_dir)
        if not d.startswith(".") and os.path.isdir(os.path.join(args.cases_dir, d)))
    if not cases:
        sys.stderr.write(
            f"crosscheck: error: no cases in {os.path.abspath(args.cases_dir)!r}: expected one subdirectory "
            f"per case with {', '.join(CASE_FILES)}\n")
        return 2

    ovx = None
    if args.openvino:
        try:
            ovx = OpenVino()
        except ImportError as e:
            sys.stderr.write(f"crosscheck: error: --openvino given but openvino cannot be imported ({e}); "
                             "run python/setup_venv.sh\n")
            return 2

    rep = Report(args.quiet)
    rep.info(f"# numpy {np.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}"
             + (f", openvino {ovx.version} (CPU default inference precision {ovx.default_hint})" if ovx else "")
             + f"; {len(cases)} case(s) in {os.path.abspath(args.cases_dir)}")
    for case_dir in cases:
        try:
            check_case(case_dir, rep, ovx)
        except Exception as e:  # should not happen; keep going with other cases
            rep.result(False, os.path.basename(case_dir), "internal", "-", details=[
                f"{case_dir}: crosscheck crashed: {_exc_msg(e)}", traceback.format_exc()])

    if rep.failed_cases:
        rep.info(f"# failing cases: {', '.join(sorted(rep.failed_cases))}", always=True)
    print(f"{rep.passed} passed, {rep.failed} failed")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
