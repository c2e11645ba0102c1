"""Compress -> decompress round trips of training batches, one class per compressor.

The harness only sees `Roundtrip`: `name`, `family`, `ratio` (original float32 bytes / bytes as
stored) and `__call__(batch[N, C, H, W] float32) -> same shape float32`. Unquantized dctchop runs
through the ONNX graphs that `dctchop export` writes (onnxruntime); its quantized mode (integer
codes + zstd, what `dctchop compress` stores by default) runs through the CLI itself
(`DctChopQuantCli`), as a user would run it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np


class Roundtrip:
    name: str = "?"
    family: str = "?"  # baseline | chop | triangle | quantized | zfp | sz3 | reference
    ratio: float = 1.0  # original float32 bytes / stored bytes (as achieved on the data, for ZFP/SZ3)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "family": self.family, "ratio": self.ratio}


class Identity(Roundtrip):
    name, family, ratio = "base", "baseline", 1.0

    def __call__(self, batch):
        return batch


# ---------------------------------------------------------------------------------------------
# dctchop


def find_dctchop_bin(explicit: str | None = None) -> str:
    """--dctchop-bin, else $DCTCHOP_BIN, else target/release, target/debug
    of this repository, else `dctchop` on PATH."""
    repo = Path(__file__).resolve().parent.parent
    cands = [explicit, os.environ.get("DCTCHOP_BIN"),
             str(repo / "target/release/dctchop"), str(repo / "target/debug/dctchop")]
    for c in cands:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    w = shutil.which("dctchop")
    if w:
        return w
    raise FileNotFoundError(
        "no dctchop binary: pass --dctchop-bin, set DCTCHOP_BIN, or `cargo build --release`")


class DctChopOnnx(Roundtrip):
    """dctchop's compress/decompress ONNX graphs, exported by the CLI, run with onnxruntime.

    The graphs have a static batch; inputs are padded with zeros to a multiple of it."""

    def __init__(self, cf: int, variant: str = "chop", *, res: int = 256, channels: int = 1,
                 batch: int = 16, bin_path: str | None = None, graph_dir: Path = Path("graphs"),
                 threads: int = 1, extra_args: tuple[str, ...] = ()):
        import onnxruntime as ort

        self.cf, self.variant, self.batch = cf, variant, batch
        self.family = variant
        self.name = f"{variant}-cf{cf}" + "".join(a.strip("-") for a in extra_args)
        exe = find_dctchop_bin(bin_path)
        graph_dir = Path(graph_dir)
        graph_dir.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "export", "--cf", str(cf), "--res", str(res), "--channels", str(channels),
               "--batch", str(batch), "--variant", variant, "-o", str(graph_dir), "--force",
               "--json", *extra_args]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rep = json.loads(out)
        self.report = rep
        self.ratio = float(rep["compression_ratio"])
        self.compressed_shape = rep["compressed_shape"]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        g = rep["graphs"]
        self._c = ort.InferenceSession(str(graph_dir / g["compress"]["file"]), so,
                                       providers=["CPUExecutionProvider"])
        self._d = ort.InferenceSession(str(graph_dir / g["decompress"]["file"]), so,
                                       providers=["CPUExecutionProvider"])
        self._cin = g["compress"]["input"]["name"]
        self._din = g["decompress"]["input"]["name"]

    def compress(self, batch: np.ndarray) -> np.ndarray:
        return self._c.run(None, {self._cin: batch})[0]

    def decompress(self, y: np.ndarray) -> np.ndarray:
        return self._d.run(None, {self._din: y})[0]

    def __call__(self, batch):
        n = len(batch)
        out = np.empty_like(batch)
        for s in range(0, n, self.batch):
            chunk = np.ascontiguousarray(batch[s:s + self.batch], dtype=np.float32)
            k = len(chunk)
            if k < self.batch:
                chunk = np.concatenate(
                    [chunk, np.zeros((self.batch - k,) + chunk.shape[1:], np.float32)])
            out[s:s + k] = self.decompress(self.compress(chunk))[:k]
        return out


class DctChopCliError(RuntimeError):
    """A `dctchop` command failed; the message holds the command line and the CLI's stderr."""


class DctChopQuantCli(Roundtrip):
    """dctchop's quantized mode through the real CLI: the batch is written as a float32 .npy,
    `dctchop compress IN.npy -o STEM --json [--cf N] [--variant V] [--quant auto|STEP]
    [--target-ratio R]`, then `dctchop decompress STEM -o OUT.npy`, read back. Everything lives
    in a temporary directory that is removed even when a command fails.

    `ratio` is the report's `stored_ratio`: original bytes / payload bytes of the shards (the
    codes as stored, zstd frames included; shard headers and the decompress graph excluded, as the
    unquantized configs count coefficients only). The input is always written as float32, so the
    original bytes are float32 bytes, as for every other configuration. `report["file_ratio"]`
    (shard headers included) is kept in `describe()`.

    The first call (the training inputs) lets the CLI choose the step (`--quant auto`) or CF,
    variant and step (a target); later calls (clean targets, test inputs) pass that choice
    explicitly, so every set goes through the same quantizer, as `Sz3ErrorBound` keeps the bound
    calibrated on the training inputs."""

    family = "quantized"

    def __init__(self, cf: int | None = None, variant: str | None = None, *,
                 quant: str | float = "auto", target_ratio: float | None = None,
                 bin_path: str | None = None, threads: int = 1, tmp_root: Path | None = None):
        self.exe = find_dctchop_bin(bin_path)
        self.threads, self.tmp_root = threads, tmp_root
        if target_ratio is not None:  # the target picks CF, variant and step unless given
            args = ["--target-ratio", f"{target_ratio:g}"]
            self.name = f"q-ratio{target_ratio:g}"
        elif cf is None:
            raise ValueError("DctChopQuantCli needs a cf or a target ratio")
        else:
            args = ["--quant", str(quant)]
            self.name = "q-" + ("" if variant in (None, "chop") else f"{variant}-") + f"cf{cf}"
        if cf is not None:
            args += ["--cf", str(cf)]
        if variant is not None:
            args += ["--variant", variant]
        self.first_args = args
        self.frozen_args: list[str] | None = None  # the first call's choice, for later calls
        self.report: dict | None = None  # the first call's compress report
        self.ratio = float("nan")

    def _cli(self, *argv: str) -> dict:
        cmd = [self.exe, *argv, "--threads", str(self.threads), "--json", "--quiet", "--force"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise DctChopCliError(f"`{' '.join(cmd)}` exited with {p.returncode}: "
                                  f"{p.stderr.strip() or '(no stderr)'}")
        try:
            return json.loads(p.stdout)
        except json.JSONDecodeError as e:
            raise DctChopCliError(f"`{' '.join(cmd)}` printed no JSON report ({e}): "
                                  f"{p.stdout[:500]!r}; stderr: {p.stderr.strip()}") from e

    def __call__(self, batch):
        x = np.ascontiguousarray(batch, dtype=np.float32)
        with tempfile.TemporaryDirectory(prefix="dctchop-q-", dir=self.tmp_root) as tmp:
            src, stem, dst = Path(tmp) / "in.npy", Path(tmp) / "c", Path(tmp) / "out.npy"
            np.save(src, x)
            rep = self._cli("compress", str(src), "-o", str(stem),
                            *(self.frozen_args or self.first_args))
            self._cli("decompress", str(stem), "-o", str(dst))
            y = np.load(dst)
        if y.shape != x.shape or y.dtype != np.float32:
            raise DctChopCliError(f"dctchop decompress gave {y.dtype} {y.shape}, "
                                  f"expected float32 {x.shape}")
        if self.frozen_args is None:
            self.report = rep
            q = rep["quant"]["choice"]["quant"]
            if q.get("rows") or q.get("cols"):  # --quant STEP cannot express per-frequency steps
                raise DctChopCliError(f"compress chose per-frequency steps {q}: cannot be "
                                      "repeated through --quant STEP")
            self.frozen_args = ["--cf", str(rep["cf"]), "--variant", rep["variant"],
                                "--quant", repr(float(q["step"]))]  # repr: the exact f64
        self.ratio = float(rep["stored_ratio"])
        return y

    def describe(self):
        d = super().describe()
        rep = self.report or {}
        q = rep.get("quant") or {}
        d.update(cli_args=" ".join(self.first_args), chosen_cf=rep.get("cf"),
                 chosen_variant=rep.get("variant"), quant_step=q.get("step"),
                 code_type=q.get("code"), entropy=q.get("entropy"),
                 file_ratio=rep.get("file_ratio"), cli_psnr_db=rep.get("psnr_db"),
                 target_met=rep.get("target_met"))
        return d


def dct_matrix(n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II matrix T (D = T A T^T), float64."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    t = np.cos(math.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    t[0] /= math.sqrt(2.0)
    return t


class DctChopReference(Roundtrip):
    """Plain numpy DCT+Chop (float64) for cross-checking the ONNX graphs in tests; not used
    for the reported results."""

    def __init__(self, cf: int, variant: str = "chop", block: int = 8):
        self.cf, self.variant, self.block = cf, variant, block
        self.family, self.name = "reference", f"ref-{variant}-cf{cf}"
        i, j = np.meshgrid(np.arange(block), np.arange(block), indexing="ij")
        keep = (i < cf) & (j < cf) if variant == "chop" else (i + j < cf)
        self.mask = keep.astype(np.float64)
        self.ratio = block * block / keep.sum()
        self.t = dct_matrix(block)

    def __call__(self, batch):
        n, c, h, w = batch.shape
        b = self.block
        x = batch.astype(np.float64).reshape(n, c, h // b, b, w // b, b)
        d = np.einsum("ki,ncaibj,lj->ncakbl", self.t, x, self.t) * self.mask[:, None, :]
        r = np.einsum("ki,ncakbl,lj->ncaibj", self.t, d, self.t)
        return r.reshape(n, c, h, w).astype(np.float32)


class SnapToGrid(Roundtrip):
    """Another round trip followed by rounding to the data's grid (emsim.NOISY_QUANTUM): a round
    trip within half a grid step of the data gives back the data bit for bit. Used by the smoke
    check only, to make "CF 8 equals the baseline" an exact comparison."""

    def __init__(self, inner: Roundtrip, quantum: float):
        self.inner, self.q = inner, quantum
        self.name, self.family, self.ratio = inner.name + "@snap", inner.family, inner.ratio

    def __call__(self, batch):
        y = self.inner(batch)
        self.ratio = self.inner.ratio
        return (np.round(y.astype(np.float64) / self.q) * self.q).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# ZFP and SZ3, each image (2-D) compressed on its own, as dctchop compresses each channel


class ZfpFixedRate(Roundtrip):
    """ZFP fixed-rate mode, `rate` bits per value (ratio ~ 32 / rate, plus a small header)."""

    def __init__(self, rate: float, target_ratio: float | None = None):
        import zfpy  # noqa: F401

        self.rate = rate
        self.family = "zfp"
        self.target_ratio = target_ratio if target_ratio is not None else 32.0 / rate
        self.name = f"zfp-r{self.target_ratio:.2f}"
        self.ratio = 32.0 / rate  # replaced by the achieved ratio after the first call

    def __call__(self, batch):
        import zfpy

        out = np.empty_like(batch)
        stored = 0
        for idx in np.ndindex(batch.shape[:-2]):
            buf = zfpy.compress_numpy(np.ascontiguousarray(batch[idx]), rate=self.rate)
            stored += len(buf)
            out[idx] = zfpy.decompress_numpy(buf)
        self.ratio = batch.nbytes / stored
        return out


class Sz3ErrorBound(Roundtrip):
    """SZ3 (pysz) with an absolute error bound chosen by bisection so that the achieved ratio on
    the data matches `target_ratio` (within `tol`)."""

    def __init__(self, target_ratio: float, tol: float = 0.01):
        from pysz import sz  # noqa: F401

        self.target_ratio, self.tol = target_ratio, tol
        self.family = "sz3"
        self.name = f"sz3-r{target_ratio:.2f}"
        self.ratio = float("nan")
        self.error_bound: float | None = None
        self.unreachable = False  # True when SZ3 exceeds the target ratio even near-losslessly

    @staticmethod
    def _run(batch, eb):
        from pysz import sz, szConfig, szErrorBoundMode

        cfg = szConfig()
        cfg.errorBoundMode = szErrorBoundMode.ABS
        cfg.absErrorBound = float(eb)
        out = np.empty_like(batch)
        stored = 0
        for idx in np.ndindex(batch.shape[:-2]):
            img = np.ascontiguousarray(batch[idx])
            comp, _ = sz.compress(img, cfg)
            stored += comp.nbytes
            out[idx] = sz.decompress(comp, np.float32, img.shape)[0]
        return out, batch.nbytes / stored

    def calibrate(self, sample: np.ndarray, iters: int = 24) -> float:
        """Bisection on log(bound). SZ3's ratio cannot fall below what it reaches losslessly on
        the data (digitised data compress well): if even a bound of 1e-7 of the range gives more
        than the target, that bound is kept and the achieved ratio says so."""
        rng = float(sample.max() - sample.min())
        lo, hi = math.log(rng * 1e-7), math.log(rng)  # ratio grows with the bound
        _, r_lo = self._run(sample, math.exp(lo))
        if r_lo >= self.target_ratio * (1 - self.tol):
            self.error_bound = math.exp(lo)
            self.unreachable = r_lo > self.target_ratio * (1 + self.tol)
            return self.error_bound
        best = None
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            _, r = self._run(sample, math.exp(mid))
            if best is None or abs(r / self.target_ratio - 1) < abs(best[1] / self.target_ratio - 1):
                best = (math.exp(mid), r)
            if abs(r / self.target_ratio - 1) <= self.tol:
                break
            if r < self.target_ratio:
                lo = mid
            else:
                hi = mid
        self.error_bound = best[0]
        return self.error_bound

    def __call__(self, batch):
        if self.error_bound is None:  # the first data it sees (the training inputs) set the bound
            self.calibrate(batch[:: max(1, len(batch) // 64)])  # <= ~64 images: fast enough
        out, self.ratio = self._run(batch, self.error_bound)
        return out

    def describe(self):
        d = super().describe()
        d["abs_error_bound"] = self.error_bound
        d["target_ratio_unreachable"] = self.unreachable
        return d


class RatioMatched(Roundtrip):
    """ZFP or SZ3 at the ratio another round trip (`reference`) stores on the first data it sees
    (the training inputs). For references whose ratio depends on the data (quantized dctchop),
    where no nominal ratio is known before compressing."""

    def __init__(self, family: str, reference: Roundtrip):
        assert family in ("zfp", "sz3"), family
        self.family, self.reference = family, reference
        self.name = f"{family}:{reference.name}"
        self.inner: Roundtrip | None = None
        self.ratio = float("nan")

    def __call__(self, batch):
        if self.inner is None:
            self.reference(batch)
            r = self.reference.ratio
            self.inner = ZfpFixedRate(32.0 / r, r) if self.family == "zfp" else Sz3ErrorBound(r)
        out = self.inner(batch)
        self.ratio = self.inner.ratio
        return out

    def describe(self):
        d = self.inner.describe() if self.inner is not None else {}
        d.update(name=self.name, family=self.family, ratio=self.ratio,
                 target_ratio=getattr(self.inner, "target_ratio", None))
        return d
