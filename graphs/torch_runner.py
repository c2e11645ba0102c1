"""Run dctchop's ONNX graphs with PyTorch: on a CUDA GPU when there is one, else on the CPU.

An independent consumer of the graphs for verify.py's --runner hook. It interprets the ONNX
file itself (parsed with the `onnx` package) with torch operations, so it checks what the
graphs say rather than what another ONNX runtime makes of them. It takes exactly the ops
dctchop emits (MatMul, Gather, Reshape, and Cast in quantized graphs) and refuses any other.

    python graphs/verify.py --runtime custom --runner graphs/torch_runner.py:run
    DCTCHOP_TORCH_DEVICE=cpu python graphs/verify.py --runtime custom --runner graphs/torch_runner.py:run

Products run in the graph's dtype with TF32 and reduced-precision f16 reductions turned off,
so f32 graphs are computed in f32 on the GPU as on the CPU. Dependencies: torch, onnx, numpy.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

# ONNX TensorProto element types the graphs use.
_DTYPES = {
    1: torch.float32,
    3: torch.int8,
    5: torch.int16,
    6: torch.int32,
    7: torch.int64,
    10: torch.float16,
    11: torch.float64,
}


def default_device() -> torch.device:
    name = os.environ.get("DCTCHOP_TORCH_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _exact_products() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False


def _matmul(ins, attrs):
    return torch.matmul(ins[0], ins[1])


def _gather(ins, attrs):
    data, idx = ins
    axis = attrs.get("axis", 0)
    axis = axis + data.dim() if axis < 0 else axis
    idx = idx.long()
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    out = torch.index_select(data, axis, idx.reshape(-1))
    return out.reshape(data.shape[:axis] + idx.shape + data.shape[axis + 1 :])


def _reshape(ins, attrs):
    data, dims = ins
    if not attrs.get("allowzero", 0):
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return data.reshape(dims)


def _cast(ins, attrs):
    to = attrs["to"]
    if to not in _DTYPES:
        raise ValueError(f"Cast to ONNX element type {to} is not supported")
    return ins[0].to(_DTYPES[to])


OPS = {"MatMul": _matmul, "Gather": _gather, "Reshape": _reshape, "Cast": _cast}


class Graph:
    """One ONNX graph loaded onto a torch device: call it with the input tensor."""

    def __init__(self, path: str, device: torch.device | None = None):
        _exact_products()
        self.device = device or default_device()
        model = onnx.load(path)
        g = model.graph
        self.consts = {}
        # Reshape targets as Python lists (read on the host, not from the device each run).
        self.dims = {}
        for t in g.initializer:
            a = numpy_helper.to_array(t)
            self.consts[t.name] = torch.from_numpy(a.copy()).to(self.device)
            if a.dtype == np.int64 and a.ndim == 1:
                self.dims[t.name] = [int(d) for d in a]
        self.nodes = []
        for n in g.node:
            if n.op_type not in OPS:
                raise ValueError(
                    f"{path}: op {n.op_type} is not one of {', '.join(OPS)} (not a dctchop graph?)"
                )
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            self.nodes.append((n.op_type, list(n.input), n.output[0], attrs))
        inputs = [i.name for i in g.input if i.name not in self.consts]
        if len(inputs) != 1 or len(g.output) != 1:
            raise ValueError(f"{path}: expected one input and one output")
        self.input = inputs[0]
        self.output = g.output[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        env = dict(self.consts)
        env[self.input] = x
        for op, ins, out, attrs in self.nodes:
            if op == "Reshape":
                if ins[1] not in self.dims:
                    raise ValueError(f"Reshape {out}: the shape must be a constant")
                args = [env[ins[0]], self.dims[ins[1]]]
            else:
                args = [env[name] for name in ins]
            env[out] = OPS[op](args, attrs)
        return env[self.output]


_CACHE: dict[str, Graph] = {}


def run(graph_path: str, x: np.ndarray) -> np.ndarray:
    """verify.py's runner hook: the graph at `graph_path` applied to `x`, as a numpy array."""
    g = _CACHE.get(graph_path)
    if g is None:
        g = _CACHE[graph_path] = Graph(graph_path)
    with torch.no_grad():
        y = g(torch.from_numpy(np.ascontiguousarray(x)).to(g.device))
    if y.is_cuda:
        torch.cuda.synchronize()
    return y.cpu().numpy()
