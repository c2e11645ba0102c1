"""Time dctchop's exported graphs on a CUDA GPU, beside a device-to-device copy of the same bytes.

    python bench/gpu.py GRAPH_DIR [--repeats 30] [--csv out.csv]

GRAPH_DIR holds `dctchop export` output (graph pairs and their JSON sidecars; bench/gpu.sh
exports the set used in bench/README.md). Every graph runs with its input and output on the
GPU (no host transfers), through:
  - torch: graphs/torch_runner.py, the graph's MatMul/Gather/Reshape/Cast as torch operations;
  - torch+graph: the same, captured once in a CUDA graph and replayed (no per-op launch cost);
  - torch+h2d (decompress only): the stored input copied from pinned host memory each run,
    then the graph: what a training loader pays when only the stored bytes cross the bus;
  - ort: ONNX Runtime's CUDAExecutionProvider with IO binding, when the installed onnxruntime
    has it (else the row says why it is missing).
Each is timed with CUDA events: the median of --repeats runs after 3 warm-up runs. GB/s counts
the uncompressed f32 bytes (the compress input, the decompress output), as `dctchop bench`
does, and `x copy` divides by the rate of `torch.Tensor.copy_` between two device buffers of
those bytes, measured in the same run. Decompress graphs of quantized specs take the int8/int16
codes that their compress graph's output rounds to.
"""

from __future__ import annotations

import argparse
import csv
import glob
import importlib.util
import json
import os
import statistics
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "torch_runner", os.path.join(here, "..", "graphs", "torch_runner.py")
)
torch_runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(torch_runner)

DT = {"f32": torch.float32, "f16": torch.float16, "i8": torch.int8, "i16": torch.int16}


def time_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def cuda_graph(fn):
    """fn captured in a CUDA graph (its output buffer is reused by every replay)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def ort_runner(path, x, out_shape, out_dtype):
    try:
        import onnxruntime as ort
    except ImportError as e:
        return None, f"onnxruntime not importable: {e}"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return None, f"onnxruntime {ort.__version__} has no CUDAExecutionProvider"
    so = ort.SessionOptions()
    sess = ort.InferenceSession(path, so, providers=["CUDAExecutionProvider"])
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        return None, f"session fell back to {sess.get_providers()}"
    y = torch.empty(out_shape, dtype=out_dtype, device="cuda")
    np_dt = {torch.float32: np.float32, torch.float16: np.float16}
    b = sess.io_binding()
    inp = sess.get_inputs()[0]
    b.bind_input(inp.name, "cuda", 0, {torch.float32: np.float32, torch.float16: np.float16,
                                       torch.int8: np.int8, torch.int16: np.int16}[x.dtype],
                 list(x.shape), x.data_ptr())
    b.bind_output(sess.get_outputs()[0].name, "cuda", 0, np_dt[out_dtype], list(y.shape),
                  y.data_ptr())

    def run():
        sess.run_with_iobinding(b)

    return (run, y), None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("graph_dir")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--csv")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu.py: error: torch sees no CUDA GPU", file=sys.stderr)
        return 2
    torch_runner._exact_products()
    dev = torch.device("cuda")
    print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    rows = []
    sidecars = sorted(glob.glob(os.path.join(args.graph_dir, "*.json")))
    if not sidecars:
        print(f"bench/gpu.py: error: no sidecars in {args.graph_dir}", file=sys.stderr)
        return 2
    for sc in sidecars:
        meta = json.load(open(sc))
        g = meta["graphs"]
        cin, cout = g["compress"]["input"], g["compress"]["output"]
        din, dout = g["decompress"]["input"], g["decompress"]["output"]
        comp = torch_runner.Graph(os.path.join(args.graph_dir, g["compress"]["file"]), dev)
        deco = torch_runner.Graph(os.path.join(args.graph_dir, g["decompress"]["file"]), dev)
        gen = torch.Generator(device=dev).manual_seed(1)
        x = torch.rand(cin["shape"], generator=gen, device=dev, dtype=DT[cin["dtype"]])
        with torch.no_grad():
            y = comp(x)
            if din["dtype"] in ("i8", "i16"):
                m = 127 if din["dtype"] == "i8" else 32767
                y = torch.round(y).clamp(-m, m).to(DT[din["dtype"]])
            assert list(y.shape) == din["shape"], (y.shape, din["shape"])
            back = deco(y)
            err = (back.float() - x.float()).abs().max().item()
        nbytes = int(np.prod(cin["shape"])) * 4
        src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev)
        dst = torch.empty_like(src)
        copy_ms = time_ms(lambda: dst.copy_(src), args.repeats)
        copy_gbs = nbytes / copy_ms / 1e6
        for direction, graph, inp, out in (
            ("compress", comp, x, cout),
            ("decompress", deco, y, dout),
        ):
            path = os.path.join(args.graph_dir, g[direction]["file"])

            def eager(graph=graph, inp=inp):
                with torch.no_grad():
                    return graph(inp)

            results = {"torch": time_ms(eager, args.repeats)}
            with torch.no_grad():
                results["torch+graph"] = time_ms(cuda_graph(eager), args.repeats)
            if direction == "decompress":
                # A training loader's path: the stored input (codes or coefficients) crosses
                # the bus from pinned host memory each run, the output stays on the device.
                host = inp.cpu().pin_memory()
                dev_in = torch.empty_like(inp)

                def h2d(graph=graph, host=host, dev_in=dev_in):
                    dev_in.copy_(host, non_blocking=True)
                    with torch.no_grad():
                        return graph(dev_in)

                results["torch+h2d"] = time_ms(h2d, args.repeats)
            ort_run, why = ort_runner(path, inp, out["shape"], DT[out["dtype"]])
            if ort_run is not None:
                run, got = ort_run
                results["ort"] = time_ms(run, args.repeats)
                want = eager()
                ort_err = (got.float() - want.float()).abs().max().item()
            else:
                ort_err = None
            for engine, ms in results.items():
                gbs = nbytes / ms / 1e6
                row = {
                    "graph": meta["name"],
                    "direction": direction,
                    "engine": engine,
                    "in_dtype": inp.dtype.__repr__().replace("torch.", ""),
                    "ms": round(ms, 4),
                    "gb_per_s": round(gbs, 1),
                    "x_copy": round(gbs / copy_gbs, 3),
                    "copy_gb_per_s": round(copy_gbs, 1),
                    "roundtrip_max_err": f"{err:.3g}",
                    "ort_vs_torch_max_diff": "" if ort_err is None or engine != "ort" else f"{ort_err:.3g}",
                }
                rows.append(row)
                print(
                    f"{meta['name']:<58} {direction:<10} {engine:<12} {ms:8.3f} ms "
                    f"{gbs:8.1f} GB/s {gbs / copy_gbs:6.2f}x copy ({copy_gbs:.0f} GB/s)"
                )
            if why:
                print(f"{meta['name']:<58} {direction:<10} ort: not run: {why}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
