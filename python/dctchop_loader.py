"""Read dctchop containers from Python and decompress them in batches with ONNX Runtime.

Needs only numpy and onnxruntime (with the ``onnx`` package installed too, the decompress graph
runs without its final Reshape, which onnxruntime would run as a full copy). A container written
by ``dctchop compress INPUT -o OUT`` is

- ``OUT.00000.safetensors``, ``OUT.00001.safetensors``, ...: safetensors shards, each with one
  tensor ``coefficients`` (F32 or F16) and string metadata (spec, original dtype/shape, value
  range, ``checksum`` = ``crc32:<8 hex>`` of the coefficient bytes);
- ``OUT.decompress.onnx``: the decompress graph, with a static batch equal to the spec's batch.

The format (``dctchop-container`` v1) is specified in docs/container.md, the one normative
description; this module reads it. Which of that file's reader checks this module makes is
listed there (section 7).

Usage::

    from dctchop_loader import Container, Loader
    c = Container("OUT")                 # or any shard path
    print(len(c), c.meta["original_dtype"], c.spec)
    for x in Loader("OUT", batch_size=16, device="cpu"):   # or device="cuda"
        ...                              # x: float32 [<=16, C, H, W], original units

The safetensors format is read by a small numpy reader (8-byte little-endian header length, JSON
header, raw little-endian bytes), so the ``safetensors`` package is not needed; it can read the
shards too.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib

import numpy as np

FORMAT = "dctchop-container"
FORMAT_VERSION = "1"
_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2")}


class ContainerError(ValueError):
    """A container file is missing, damaged or inconsistent (the message names the file)."""


def read_safetensors(path):
    """Read a safetensors file: returns (metadata dict, {name: numpy array}, {name: raw bytes})."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ContainerError(f"{path}: truncated: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ContainerError(f"{path}: truncated: header length {n}, file size {len(data)}")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as e:
        raise ContainerError(f"{path}: not a safetensors header: {e}") from None
    meta = header.pop("__metadata__", {}) or {}
    payload = memoryview(data)[8 + n :]
    arrays, raw = {}, {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        if info["dtype"] not in _DTYPES:
            raise ContainerError(f"{path}: tensor {name}: dtype {info['dtype']} not supported")
        if end > len(payload):
            raise ContainerError(
                f"{path}: truncated: tensor {name} ends at {end}, payload has {len(payload)} bytes"
            )
        raw[name] = payload[start:end]
        arrays[name] = np.frombuffer(raw[name], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return meta, arrays, raw


def _stem(path):
    p = str(path)
    if p.endswith(".safetensors"):
        p = p[: -len(".safetensors")]
    m = re.match(r"^(.*)\.(\d{5})$", p)
    return m.group(1) if m else p


def shard_path(stem, i):
    return f"{stem}.{i:05d}.safetensors"


class Container:
    """A container's shards and metadata (from shard 0)."""

    def __init__(self, path):
        self.stem = _stem(path)
        first = shard_path(self.stem, 0)
        if not os.path.isfile(first):
            raise ContainerError(f"{first}: not found (expected a dctchop container shard)")
        self.meta, _, _ = read_safetensors(first)
        if self.meta.get("format") != FORMAT or self.meta.get("format_version") != FORMAT_VERSION:
            raise ContainerError(f"{first}: not a {FORMAT} v{FORMAT_VERSION} file")
        self.spec = json.loads(self.meta["spec"])
        self.shape = tuple(json.loads(self.meta["original_shape"]))
        self.n_shards = int(self.meta["shard_count"])
        self.shards = [shard_path(self.stem, i) for i in range(self.n_shards)]
        self.graph = f"{self.stem}.decompress.onnx"

    def __len__(self):
        return self.shape[0]

    def read_shard(self, i):
        """Coefficients of shard i as float32 [n, ...], checksum verified."""
        path = self.shards[i]
        meta, arrays, raw = read_safetensors(path)
        if "coefficients" not in arrays:
            raise ContainerError(f"{path}: no tensor 'coefficients'")
        want = meta.get("checksum", "")
        got = "crc32:%08x" % (zlib.crc32(raw["coefficients"]) & 0xFFFFFFFF)
        if got != want:
            raise ContainerError(f"{path}: checksum mismatch: data {got}, header {want}")
        if meta.get("spec") != self.meta["spec"] or int(meta["shard_index"]) != i:
            raise ContainerError(f"{path}: metadata does not match shard 00000")
        return arrays["coefficients"].astype(np.float32)


def _providers(device):
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ValueError(f"device {device!r}: allowed are 'cpu', 'cuda'")


def _elide_output_reshape(model_bytes):
    """The decompress graph without its trailing output Reshape, and the shape it declares.

    ONNX Runtime runs a Reshape that produces a graph output as a full copy; for a tiled
    decompress graph that copy of the full-size images is about half the run time, while the same
    reshape of the (contiguous) result costs nothing in numpy. Needs the ``onnx`` package;
    returns None without it, or when the graph does not end that way (the graph then runs as is).
    """
    try:
        import onnx
    except ImportError:
        return None
    m = onnx.load_from_string(model_bytes)
    g = m.graph
    if len(g.output) != 1:
        return None
    out = g.output[0].name
    producers = [n for n in g.node if out in n.output]
    if len(producers) != 1:
        return None
    n = producers[0]
    if n.op_type != "Reshape" or n.domain not in ("", "ai.onnx") or len(n.input) != 2:
        return None
    data, shape = n.input
    inits = {t.name for t in g.initializer}
    uses = sum(list(x.input).count(data) for x in g.node)
    if data in inits or data in {i.name for i in g.input} or shape not in inits or uses != 1:
        return None
    dims = g.output[0].type.tensor_type.shape.dim
    if not dims or not all(d.HasField("dim_value") for d in dims):
        return None
    declared = tuple(d.dim_value for d in dims)
    g.node.remove(n)
    if not any(shape in x.input for x in g.node):
        for t in list(g.initializer):
            if t.name == shape:
                g.initializer.remove(t)
    g.output[0].name = data
    g.output[0].type.tensor_type.ClearField("shape")
    return m.SerializeToString(), declared


class Loader:
    """Iterate over a container's samples as decompressed float32 [<=batch_size, C, H, W] batches.

    The decompress graph (``OUT.decompress.onnx``, static batch B) is loaded once; batches of
    any size are cut into graph runs of B samples (the last run padded with copies of its last
    sample, dropped afterwards). ``shards`` restricts the iteration to some shard indices (e.g.
    one subset per DataLoader worker).
    """

    def __init__(self, path, batch_size=None, device="cpu", graph=None, shards=None):
        import onnxruntime as ort

        self.container = Container(path)
        self.graph_batch = int(self.container.spec["batch"])
        self.batch_size = int(batch_size or self.graph_batch)
        if self.batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: allowed is >= 1")
        graph = graph or self.container.graph
        if not os.path.isfile(graph):
            raise ContainerError(f"{graph}: decompress graph not found")
        with open(graph, "rb") as f:
            model = f.read()
        # `declared`: the graph's output shape when the session runs it without its final
        # Reshape (see _elide_output_reshape); None when it runs the graph as is.
        self.declared = None
        elided = _elide_output_reshape(model)
        if elided is not None:
            self.session = ort.InferenceSession(elided[0], providers=_providers(device))
            self.declared = elided[1]
        else:
            self.session = ort.InferenceSession(model, providers=_providers(device))
        self.input = self.session.get_inputs()[0].name
        self.shards = list(range(self.container.n_shards)) if shards is None else list(shards)

    def __len__(self):
        return len(self.container)

    def _decompress(self, y):
        b = self.graph_batch
        out = []
        for s in range(0, y.shape[0], b):
            part = y[s : s + b]
            k = part.shape[0]
            if k < b:
                part = np.concatenate([part, np.repeat(part[-1:], b - k, axis=0)])
            (x,) = self.session.run(None, {self.input: np.ascontiguousarray(part)})
            if self.declared is not None:
                x = x.reshape(self.declared)  # a view: the result is contiguous
            out.append(x[:k])
        return out[0] if len(out) == 1 else np.concatenate(out)

    def __iter__(self):
        pending = []
        have = 0
        for i in self.shards:
            y = self.container.read_shard(i)
            pending.append(y)
            have += y.shape[0]
            while have >= self.batch_size:
                allc = np.concatenate(pending)
                yield self._decompress(allc[: self.batch_size])
                rest = allc[self.batch_size :]
                pending, have = [rest], rest.shape[0]
        if have:
            yield self._decompress(np.concatenate(pending))
