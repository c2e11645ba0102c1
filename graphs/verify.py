#!/usr/bin/env python3
"""Run the dctchop ONNX conformance suite against an ONNX runtime / toolchain.

Every case in manifest.json holds a compress graph (x -> y) and a decompress
graph (y -> x) together with reference tensors that were computed in float64
and stored in the graph's dtype.  For each case, direction and runtime this
script loads the graph, feeds the stored input (cast exactly to the case's
dtype), and compares the output's shape, dtype and values with the stored
expected tensor using

    err = max|out - expected| / max(max(expected) - min(expected), 1e-12)

A check passes when shape and dtype match and err <= the case's tolerance.

Quantized cases (manifest v2: a "quant" entry) have a decompress graph whose
input is integer codes: its "decompress" entry names "input": "q.npy" and
"input_dtype": "int8" or "int16".  The codes are fed exactly as stored (never
cast to float; a file of another dtype is a FAIL), the graph casts them with
its one Cast node, and the output is the case's float dtype.  Their checks are
reported under the dtype "int8->float32" (etc.) in the summary table.  The
compress graph of a quantized case is an ordinary float graph (its output is
the coefficients divided by the quantization step).

Dependencies: numpy plus the Python package of the runtime you choose
(`pip install onnxruntime`, `pip install onnxruntime-gpu`, or
`pip install openvino`).  The `onnx` package is NOT needed.

Usage:
    python graphs/verify.py                               # onnxruntime, else openvino
    python graphs/verify.py --runtime all                 # every installed runtime
    python graphs/verify.py --runtime onnxruntime --provider CUDAExecutionProvider
    python graphs/verify.py --runtime openvino --device GPU
    python graphs/verify.py --runtime openvino --ov-default-precision
    python graphs/verify.py --case tile16 --json

OpenVINO: graphs are compiled with {"INFERENCE_PRECISION_HINT": "f32"} (when
the device supports that property).  Without it, CPUs with bf16 units run f32
graphs in bf16 (and GPUs run them in f16), which misses the 1e-5 tolerance by
design.  The f16 graphs get the same hint, so they are computed with f32
arithmetic and rounded to f16 only at the output, never in bf16.
--ov-default-precision drops the hint to show what the device does by default.

Any other toolchain: write a Python function FUNC(graph_path, input_array) ->
output_array and pass it with --runner MODULE:FUNC (MODULE is an importable
module name or a path to a .py file), e.g.

    # my_runner.py
    import numpy as np, vendor_sdk                    # your toolchain's Python API
    def run(graph_path, x):
        net = vendor_sdk.compile_onnx(graph_path)     # compile/load the .onnx file
        return np.asarray(net.infer(x))               # one input in, one output out

(x is int8/int16 for the decompress graphs of quantized cases.)

    python graphs/verify.py --runtime custom --runner my_runner:run

Output: one line per check
    PASS|FAIL <case> <direction> <runtime> err=<value> tol=<tol>
(a FAIL is followed by an indented "reason:" line), a worst-error table per
runtime and dtype, and a last line "N passed, M failed".  --json prints a JSON
report instead.  Exit status: 0 all passed, 1 some check failed, 2 usage error
(no manifest, no case matched, runtime unavailable).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import sys
import time
import traceback

import numpy as np

MANIFEST_FORMATS = ("dctchop-conformance-v1", "dctchop-conformance-v2")
REPORT_FORMAT = "dctchop-conformance-report-v1"
DIRECTIONS = ("compress", "decompress")
DTYPES = {"float32": np.float32, "float16": np.float16}
CODE_DTYPES = {"int8": np.int8, "int16": np.int16}
RUNTIME_CHOICES = ("onnxruntime", "openvino", "custom", "all")
PIP_NAMES = {
    "onnxruntime": "pip install onnxruntime (or onnxruntime-gpu for CUDA)",
    "openvino": "pip install openvino",
}


class UsageError(Exception):
    """Bad arguments, missing manifest, unavailable runtime: exit status 2."""


def _first_line(exc: BaseException, limit: int = 500) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    msg = "; ".join(lines[:4]) if lines else text
    msg = f"{exc.__class__.__name__}: {msg}"
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


# --------------------------------------------------------------------------
# Runtimes.  Each has .label (no spaces), .version, .notes and
# .run(graph_path, x, dtype_name) -> ndarray.  Packages are imported lazily.
# --------------------------------------------------------------------------


class OnnxRuntimeRunner:
    name = "onnxruntime"

    def __init__(self, providers):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise UsageError(
                f"runtime 'onnxruntime' is not available ({exc}); {PIP_NAMES['onnxruntime']}"
            )
        self.ort = ort
        self.version = getattr(ort, "__version__", "?")
        available = list(ort.get_available_providers())
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise UsageError(
                f"onnxruntime {self.version}: provider(s) {', '.join(missing)} not available; "
                f"available: {', '.join(available)}"
                + (
                    " (CUDAExecutionProvider needs: pip install onnxruntime-gpu)"
                    if "CUDAExecutionProvider" in missing
                    else ""
                )
            )
        if providers:
            short = "+".join(p.replace("ExecutionProvider", "") for p in self.providers)
            self.label = f"onnxruntime:{short}"
        else:
            self.label = "onnxruntime"
        self.notes = f"providers={self.providers}"

    def run(self, graph_path, x, dtype_name):
        ort = self.ort
        so = ort.SessionOptions()
        so.log_severity_level = 3  # errors only; fall-back warnings are checked below
        sess = ort.InferenceSession(graph_path, sess_options=so, providers=self.providers)
        used = sess.get_providers()
        if used and used[0] != self.providers[0]:
            raise RuntimeError(
                f"session fell back to {used[0]} (requested {self.providers[0]})"
            )
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise RuntimeError(
                f"graph has {len(inputs)} inputs / {len(outputs)} outputs, expected 1 / 1"
            )
        (out,) = sess.run([outputs[0].name], {inputs[0].name: x})
        return out


class OpenVinoRunner:
    name = "openvino"

    def __init__(self, device, default_precision):
        try:
            import openvino as ov
        except ImportError as exc:
            raise UsageError(
                f"runtime 'openvino' is not available ({exc}); {PIP_NAMES['openvino']}"
            )
        self.ov = ov
        self.version = ov.get_version() if hasattr(ov, "get_version") else "?"
        self.core = ov.Core()
        self.device = device or "CPU"
        self.default_precision = default_precision
        physical = self.device.split(":")[0].split(".")[0]
        virtual = physical in ("AUTO", "HETERO", "MULTI", "BATCH")
        available = list(self.core.available_devices)
        if not virtual and not any(
            d == self.device or d.split(".")[0] == self.device for d in available
        ):
            raise UsageError(
                f"openvino {self.version}: device '{self.device}' not available; "
                f"available: {', '.join(available) or '(none)'}"
            )
        self.label = f"openvino:{self.device}" + (":default-precision" if default_precision else "")
        self.hint_supported = self._supports("INFERENCE_PRECISION_HINT")
        if default_precision:
            self.notes = "device default inference precision (no hint)"
        elif self.hint_supported:
            self.notes = "INFERENCE_PRECISION_HINT=f32"
        else:
            self.notes = f"device {self.device} does not support INFERENCE_PRECISION_HINT; using its default"
        try:
            caps = self.core.get_property(self.device, "OPTIMIZATION_CAPABILITIES")
            self.notes += f"; capabilities={list(caps)}"
        except Exception:
            pass

    def _supports(self, prop):
        try:
            return prop in list(self.core.get_property(self.device, "SUPPORTED_PROPERTIES"))
        except Exception:
            return True  # unknown: try it; compile errors become FAILs with a reason

    def run(self, graph_path, x, dtype_name):
        model = self.core.read_model(graph_path)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise RuntimeError(
                f"graph has {len(model.inputs)} inputs / {len(model.outputs)} outputs, expected 1 / 1"
            )
        config = {}
        if not self.default_precision and self.hint_supported:
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = self.core.compile_model(model, self.device, config)
        request = compiled.create_infer_request()
        result = request.infer({0: x})
        return np.array(result[compiled.output(0)], copy=True)


class CustomRunner:
    name = "custom"

    def __init__(self, spec):
        if not spec or ":" not in spec:
            raise UsageError("--runtime custom needs --runner MODULE:FUNC (e.g. my_runner:run)")
        module_name, _, func_name = spec.rpartition(":")
        if not module_name or not func_name:
            raise UsageError(f"--runner '{spec}' is not of the form MODULE:FUNC")
        try:
            if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
                path = os.path.abspath(module_name)
                if not os.path.isfile(path):
                    raise UsageError(f"--runner: file not found: {path}")
                modname = os.path.splitext(os.path.basename(path))[0]
                mspec = importlib.util.spec_from_file_location(modname, path)
                module = importlib.util.module_from_spec(mspec)
                sys.modules.setdefault(modname, module)
                mspec.loader.exec_module(module)
            else:
                if os.getcwd() not in sys.path:
                    sys.path.insert(0, os.getcwd())
                module = importlib.import_module(module_name)
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(f"--runner: cannot import '{module_name}': {_first_line(exc)}")
        func = getattr(module, func_name, None)
        if not callable(func):
            raise UsageError(f"--runner: '{module_name}' has no callable '{func_name}'")
        self.func = func
        self.label = f"custom:{os.path.basename(module_name)}:{func_name}"
        self.version = str(getattr(module, "__version__", "-"))
        self.notes = f"runner={spec}"

    def run(self, graph_path, x, dtype_name):
        out = self.func(graph_path, x)
        if isinstance(out, (list, tuple)) and len(out) == 1:
            out = out[0]
        return np.asarray(out)


def _importable(name):
    try:
        importlib.import_module(name)
        return True
    except Exception:
        return False


def build_runtimes(args):
    requested = args.runtime or []
    if not requested:
        if args.runner:
            requested = ["custom"]
        elif _importable("onnxruntime"):
            requested = ["onnxruntime"]
        elif _importable("openvino"):
            requested = ["openvino"]
        else:
            raise UsageError(
                "no runtime available: install one, e.g. "
                f"'{PIP_NAMES['onnxruntime']}' or '{PIP_NAMES['openvino']}', "
                "or use --runtime custom --runner MODULE:FUNC"
            )
    names = []
    for r in requested:
        if r == "all":
            found = [n for n in ("onnxruntime", "openvino") if _importable(n)]
            if args.runner:
                found.append("custom")
            if not found:
                raise UsageError(
                    "--runtime all: neither onnxruntime nor openvino is installed "
                    f"('{PIP_NAMES['onnxruntime']}' / '{PIP_NAMES['openvino']}')"
                )
            names.extend(found)
        else:
            names.append(r)
    names = list(dict.fromkeys(names))  # dedupe, keep order

    if args.provider and "onnxruntime" not in names:
        raise UsageError("--provider only applies to --runtime onnxruntime")
    if (args.device or args.ov_default_precision) and "openvino" not in names:
        raise UsageError("--device / --ov-default-precision only apply to --runtime openvino")
    if args.runner and "custom" not in names:
        raise UsageError("--runner only applies to --runtime custom (or all)")

    runtimes = []
    for n in names:
        if n == "onnxruntime":
            runtimes.append(OnnxRuntimeRunner(args.provider))
        elif n == "openvino":
            for dev in args.device or ["CPU"]:
                runtimes.append(OpenVinoRunner(dev, args.ov_default_precision))
        elif n == "custom":
            runtimes.append(CustomRunner(args.runner))
    return runtimes


# --------------------------------------------------------------------------
# Manifest and checks
# --------------------------------------------------------------------------


def load_manifest(path):
    if not os.path.isfile(path):
        raise UsageError(f"manifest not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except Exception as exc:
        raise UsageError(f"cannot read manifest {path}: {_first_line(exc)}")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), list):
        raise UsageError(f"manifest {path} has no 'cases' list")
    fmt = manifest.get("format")
    if fmt not in MANIFEST_FORMATS:
        print(
            f"warning: manifest format is {fmt!r}, this script knows {', '.join(MANIFEST_FORMATS)}",
            file=sys.stderr,
        )
    return manifest


def compute_error(out, expected):
    """The suite's metric, in float64. Returns nan for non-finite data."""
    if expected.size == 0:
        return 0.0
    o = out.astype(np.float64)
    e = expected.astype(np.float64)
    if not np.all(np.isfinite(o)):
        return math.inf
    rng = max(float(e.max() - e.min()), 1e-12)
    return float(np.max(np.abs(o - e))) / rng


def check(case, direction, runtime, base_dir):
    """One (case, direction, runtime) check. Never raises."""
    res = {
        "case": str(case.get("name", case.get("dir", "?"))),
        "direction": direction,
        "runtime": runtime.label,
        "status": "FAIL",
        "err": None,
        "tol": None,
        "dtype": case.get("dtype"),
        "reason": None,
    }
    t0 = time.perf_counter()
    try:
        try:
            tol = float(case["tolerance"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("case has no numeric 'tolerance'")
        res["tol"] = tol
        dtype_name = case.get("dtype")
        if dtype_name not in DTYPES:
            raise ValueError(f"unsupported dtype {dtype_name!r} (known: {', '.join(DTYPES)})")
        dtype = np.dtype(DTYPES[dtype_name])
        d = case.get(direction)
        if not isinstance(d, dict) or not all(k in d for k in ("graph", "input", "expected")):
            raise ValueError(f"case has no valid '{direction}' entry (graph/input/expected)")
        # Quantized decompress graphs take integer codes (fed as stored, never cast).
        code_name = d.get("input_dtype")
        if code_name is not None and code_name not in CODE_DTYPES:
            raise ValueError(
                f"unsupported input_dtype {code_name!r} (known: {', '.join(CODE_DTYPES)})")
        if code_name is not None:
            res["dtype"] = f"{code_name}->{dtype_name}"
        case_dir = os.path.join(base_dir, str(case.get("dir", res["case"])))
        paths = {k: os.path.join(case_dir, d[k]) for k in ("graph", "input", "expected")}
        missing = [os.path.relpath(p, base_dir) for p in paths.values() if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"missing file(s): {', '.join(missing)}")

        x = np.load(paths["input"], allow_pickle=False)
        expected = np.load(paths["expected"], allow_pickle=False)
        if code_name is not None:
            if x.dtype != np.dtype(CODE_DTYPES[code_name]):
                raise ValueError(
                    f"{d['input']} is {x.dtype}, but the graph takes {code_name} codes")
            x = np.ascontiguousarray(x)
        else:
            x = np.ascontiguousarray(x.astype(dtype, copy=False))

        try:
            out = runtime.run(os.path.abspath(paths["graph"]), x, dtype_name)
        except Exception as exc:
            raise RuntimeError(f"graph failed to load/run: {_first_line(exc)}") from None
        out = np.asarray(out)
        res["out_shape"] = list(out.shape)
        res["out_dtype"] = str(out.dtype)
        res["expected_shape"] = list(expected.shape)

        problems = []
        if expected.dtype != dtype:
            problems.append(f"expected tensor dtype {expected.dtype} != case dtype {dtype}")
        if out.dtype != dtype:
            problems.append(f"output dtype {out.dtype} != {dtype}")
        if tuple(out.shape) != tuple(expected.shape):
            problems.append(f"output shape {tuple(out.shape)} != expected {tuple(expected.shape)}")
        else:
            if not np.all(np.isfinite(expected.astype(np.float64))):
                problems.append("expected tensor contains non-finite values")
            err = compute_error(out, expected)
            res["err"] = err
            if not np.all(np.isfinite(out.astype(np.float64))):
                problems.append("output contains NaN/Inf")
            elif not (err <= tol):  # also catches nan
                problems.append(f"err {err:.3e} > tol {tol:g}")
        if problems:
            res["reason"] = "; ".join(problems)
        else:
            res["status"] = "PASS"
    except Exception as exc:
        res["reason"] = str(exc) if isinstance(exc, (ValueError, FileNotFoundError, RuntimeError)) \
            else _first_line(exc)
        if os.environ.get("DCTCHOP_VERIFY_DEBUG"):
            traceback.print_exc()
    res["seconds"] = round(time.perf_counter() - t0, 4)
    return res


def summarize(results, runtimes):
    """Per runtime and dtype: counts and the worst err (relative to tol)."""
    rows = []
    for rt in runtimes:
        mine = [r for r in results if r["runtime"] == rt.label]
        for dt in sorted({str(r["dtype"]) for r in mine}):
            sub = [r for r in mine if str(r["dtype"]) == dt]
            worst = None
            for r in sub:
                e = r["err"]
                if e is None:
                    continue
                key = e / r["tol"] if r["tol"] else e
                if worst is None or not (key <= worst[0]):
                    worst = (key, r)
            rows.append(
                {
                    "runtime": rt.label,
                    "dtype": dt,
                    "passed": sum(r["status"] == "PASS" for r in sub),
                    "failed": sum(r["status"] != "PASS" for r in sub),
                    "no_value": sum(r["err"] is None for r in sub),
                    "worst_err": None if worst is None else worst[1]["err"],
                    "tol": None if worst is None else worst[1]["tol"],
                    "worst_at": None
                    if worst is None
                    else f"{worst[1]['case']} {worst[1]['direction']}",
                }
            )
    return rows


def _fmt_err(e):
    return "nan" if e is None else f"{e:.3e}"


def print_table(rows):
    header = ("runtime", "dtype", "pass", "fail", "worst err", "tol", "worst at")
    body = []
    for r in rows:
        at = r["worst_at"] or "-"
        if r["no_value"]:
            at += f"  (+{r['no_value']} without a value)"
        body.append(
            (
                r["runtime"],
                r["dtype"],
                str(r["passed"]),
                str(r["failed"]),
                _fmt_err(r["worst_err"]) if r["worst_err"] is not None else "-",
                f"{r['tol']:g}" if r["tol"] is not None else "-",
                at,
            )
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for b in body:
        print(line(b))


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="verify.py",
        description="Check the dctchop ONNX conformance graphs against an ONNX runtime.",
        epilog="Exit status: 0 all passed, 1 a check failed, 2 usage error. "
        "See the module docstring for the --runner MODULE:FUNC hook.",
    )
    p.add_argument(
        "--runtime",
        action="append",
        choices=RUNTIME_CHOICES,
        help="runtime to test (repeatable); default: onnxruntime if installed, else openvino; "
        "'all' = every installed one (plus custom when --runner is given)",
    )
    p.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="onnxruntime execution provider, e.g. CPUExecutionProvider, CUDAExecutionProvider "
        "(repeatable, priority order; default CPUExecutionProvider)",
    )
    p.add_argument(
        "--device",
        action="append",
        metavar="DEV",
        help="openvino device: CPU, GPU, NPU, ... (repeatable; default CPU)",
    )
    p.add_argument(
        "--ov-default-precision",
        action="store_true",
        help="openvino: do not set INFERENCE_PRECISION_HINT=f32 (shows the device's "
        "default precision, e.g. bf16 on CPUs with bf16 units)",
    )
    p.add_argument(
        "--runner",
        metavar="MODULE:FUNC",
        help="for --runtime custom: FUNC(graph_path, input_array) -> output_array; "
        "MODULE is a module name or a .py path",
    )
    p.add_argument(
        "--case",
        action="append",
        metavar="SUBSTRING",
        help="only cases whose name contains SUBSTRING (repeatable: any of them)",
    )
    p.add_argument(
        "--manifest",
        metavar="PATH",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifest.json"),
        help="manifest.json of the suite (default: the one next to this script)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        manifest = load_manifest(args.manifest)
        cases = [c for c in manifest["cases"] if isinstance(c, dict)]
        if len(cases) != len(manifest["cases"]):
            print("warning: ignoring manifest case entries that are not objects", file=sys.stderr)
        if args.case:
            cases = [c for c in cases if any(s in str(c.get("name", "")) for s in args.case)]
        if not cases:
            raise UsageError(
                "no cases matched"
                + (f" --case {' / '.join(args.case)}" if args.case else "")
                + f" in {args.manifest}"
            )
        runtimes = build_runtimes(args)
    except UsageError as exc:
        print(f"verify.py: error: {exc}", file=sys.stderr)
        return 2

    base_dir = os.path.dirname(os.path.abspath(args.manifest))
    if not args.json:
        print(
            f"# manifest {args.manifest} ({manifest.get('producer', '?')}), "
            f"{len(cases)} case(s) x {len(DIRECTIONS)} directions x {len(runtimes)} runtime(s)"
        )
        print(f"# metric: {manifest.get('metric', 'max|out - expected| / max(range(expected), 1e-12)')}")
        for rt in runtimes:
            print(f"# {rt.label}: version {rt.version}; {rt.notes}")
        sys.stdout.flush()

    results = []
    for case in cases:
        for direction in DIRECTIONS:
            for rt in runtimes:
                r = check(case, direction, rt, base_dir)
                results.append(r)
                if not args.json:
                    tol = f"{r['tol']:g}" if r["tol"] is not None else "nan"
                    print(f"{r['status']} {r['case']} {direction} {rt.label} err={_fmt_err(r['err'])} tol={tol}")
                    if r["reason"]:
                        print(f"    reason: {r['reason']}")
                    sys.stdout.flush()

    passed = sum(r["status"] == "PASS" for r in results)
    failed = len(results) - passed
    rows = summarize(results, runtimes)
    if args.json:
        report = {
            "format": REPORT_FORMAT,
            "manifest": os.path.abspath(args.manifest),
            "manifest_format": manifest.get("format"),
            "producer": manifest.get("producer"),
            "metric": manifest.get("metric"),
            "runtimes": [
                {"label": rt.label, "runtime": rt.name, "version": rt.version, "notes": rt.notes}
                for rt in runtimes
            ],
            "results": results,
            "summary": rows,
            "passed": passed,
            "failed": failed,
            "ok": failed == 0,
        }
        print(json.dumps(_json_safe(report), indent=2, allow_nan=False))
    else:
        print()
        print_table(rows)
        print()
        print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
