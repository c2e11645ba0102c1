"""Decompression with ONNX Runtime (the Python ``onnxruntime`` package) on any of its devices.

Only the stored payload crosses the bus: the codes (int8/int16 for quantized containers, else
float32 coefficients) are bound as the graph's input with IO binding, the graph runs on the
device, and the output stays there as an ``onnxruntime.OrtValue``, which supports DLPack
(``torch.from_dlpack(out)``, ``numpy.from_dlpack(out)`` on the CPU). On the CPU the graph runs
without its final Reshape (ONNX Runtime would run it as a full copy) and the result is a numpy
array.

Needs ``onnxruntime`` (``onnxruntime-gpu`` for ``device="cuda"``); imported on first use.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from .errors import EngineError, SpecError


def _parse_device(device: str) -> Tuple[str, int]:
    d = device.lower()
    if d == "cpu":
        return "cpu", 0
    if d in ("cuda", "gpu"):
        return "cuda", 0
    if d.startswith("cuda:") and d[5:].isdigit():
        return "cuda", int(d[5:])
    raise SpecError(f"invalid device = {device!r}: allowed are 'cpu', 'cuda', 'cuda:N'")


class OrtDecoder:
    """Decompresses a container's stored batches with an ONNX Runtime session per batch size.

    ``container``: a ``dctchop.Container``; ``device``: ``"cpu"`` or ``"cuda[:N]"``;
    ``providers``: override ONNX Runtime's execution providers (default: the device's provider
    alone, so a graph the provider cannot run fails instead of silently falling back).
    """

    def __init__(self, container: Any, device: str = "cpu", providers: Optional[list] = None,
                 threads: Optional[int] = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - exercised where onnxruntime is missing
            raise EngineError("decoder='onnxruntime' needs the onnxruntime package "
                              "(onnxruntime-gpu for CUDA)") from e
        self._ort = ort
        self.container = container
        self.kind, self.device_id = _parse_device(device)
        if providers is None:
            if self.kind == "cuda":
                providers = [("CUDAExecutionProvider", {"device_id": self.device_id})]
            else:
                providers = ["CPUExecutionProvider"]
        self.providers = providers
        self.threads = threads
        self._sessions: Dict[int, Tuple[Any, Optional[Tuple[int, ...]]]] = {}

    def _session(self, batch: int):
        if batch not in self._sessions:
            # On the device the Reshape copy is cheap and DLPack consumers need the declared shape.
            graph, declared = self.container.decompress_graph(batch, elide_reshape=self.kind == "cpu")
            so = self._ort.SessionOptions()
            if self.threads:
                so.intra_op_num_threads = self.threads
            try:
                sess = self._ort.InferenceSession(graph, sess_options=so, providers=self.providers)
            except Exception as e:
                raise EngineError(f"onnxruntime could not load the decompress graph "
                                  f"(batch {batch}, providers {self.providers}): {e}") from e
            if self.kind == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
                raise EngineError("onnxruntime has no CUDA execution provider here "
                                  f"(available: {self._ort.get_available_providers()}); "
                                  "install onnxruntime-gpu")
            self._sessions[batch] = (sess, tuple(declared) if declared else None)
        return self._sessions[batch]

    def decompress(self, stored: np.ndarray) -> Any:
        """Decompress ``[k, ...]`` stored samples: a numpy float32 ``[k, C, H, W]`` on the CPU,
        an ``OrtValue`` on the device (DLPack: ``torch.from_dlpack``) otherwise."""
        k = stored.shape[0]
        sess, declared = self._session(k)
        inp = sess.get_inputs()[0].name
        out = sess.get_outputs()[0].name
        io = sess.io_binding()
        stored = np.ascontiguousarray(stored)
        if self.kind == "cpu":
            io.bind_cpu_input(inp, stored)
        else:
            # The one host-to-device copy: the stored codes, not the decompressed images.
            io.bind_ortvalue_input(inp, self._ort.OrtValue.ortvalue_from_numpy(stored, "cuda", self.device_id))
        io.bind_output(out, self.kind, self.device_id)
        sess.run_with_iobinding(io)
        value = io.get_outputs()[0]
        if self.kind == "cpu":
            x = value.numpy()
            return x.reshape(declared) if declared else x
        return value
