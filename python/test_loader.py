"""End-to-end check of the Python loader against the Rust CLI (run by tests/run_all.sh).

1. ``dctchop compress`` the sample image data/images/chelsea.png (451 wide, not a
   multiple of 8) and a .npy written here; the CLI reports the round-trip PSNR (--json).
2. Load the containers with python/dctchop_loader.py (numpy reader + onnxruntime).
3. Recompute the PSNR here against the original pixels (the PNG decoded by a small zlib decoder
   below, independent of the Rust image crate) and require it within 0.1 dB of the CLI's.
4. A flipped payload byte must be reported as a checksum mismatch.

Usage: python python/test_loader.py [--bin target/debug/dctchop]
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import dctchop_loader  # noqa: E402


def decode_png(path):
    """8/16-bit, non-interlaced gray/gray+alpha/RGB/RGBA PNG -> uint array [C, H, W]."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert interlace == 0 and depth in (8, 16), (path, depth, interlace)
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    bpp = channels * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        elif f in (1, 3, 4):
            cur = line.copy()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    c = prev[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (cur[i] + p) & 255
        else:
            raise ValueError(f"{path}: bad PNG filter {f}")
        out[y] = cur
        prev = cur
    if depth == 16:
        px = out.view(">u2").reshape(h, w, channels)
    else:
        px = out.reshape(h, w, channels)
    return px.transpose(2, 0, 1)


def psnr(orig, back):
    orig = orig.astype(np.float64)
    mse = np.mean((orig - back.astype(np.float64)) ** 2)
    peak = orig.max() - orig.min()
    return 10 * np.log10(peak * peak / mse)


def compress(binary, args):
    r = subprocess.run([binary, "compress", *args, "--json", "--quiet"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"dctchop compress failed: {r.stderr}")
    return json.loads(r.stdout)


def load_all(stem, batch_size):
    parts = []
    for x in dctchop_loader.Loader(stem, batch_size=batch_size, device="cpu"):
        assert x.dtype == np.float32 and x.shape[0] <= batch_size
        parts.append(x)
    return np.concatenate(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("DCTCHOP_BIN", os.path.join(ROOT, "target", "debug", "dctchop")))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dctchop-loader-")
    try:
        checks = 0
        image = os.path.join(ROOT, "data", "images", "chelsea.png")
        if not os.path.isfile(image):
            raise SystemExit(f"FAIL: {image} is missing (the repository ships its sample images in data/images)")
        for cf, variant in [(4, "chop"), (3, "triangle")]:
            stem = os.path.join(tmp, f"chelsea-{variant}{cf}")
            rep = compress(a.bin, [image, "-o", stem, "--cf", str(cf), "--variant", variant])
            orig = decode_png(image)[None]
            back = load_all(stem, batch_size=1)
            assert back.shape == orig.shape == (1, 3, 300, 451), back.shape
            got = psnr(orig, back)
            print(f"chelsea.png {variant} cf {cf}: loader PSNR {got:.3f} dB, CLI {rep['psnr_db']:.3f} dB")
            assert abs(got - rep["psnr_db"]) <= 0.1, (got, rep["psnr_db"])
            checks += 1

        # A .npy of 40 float32 samples (2 x 128 x 203), f16 storage, 1 MB shards (3 of them),
        # loader batches of 7 spanning shards.
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:128, 0:203]
        x = np.stack([np.stack([np.sin(yy * 0.01 * (s + 1) + c) * np.cos(xx * 0.03) * 100 for c in range(2)]) for s in range(40)])
        x = (x + rng.normal(0, 1, x.shape)).astype(np.float32)
        npy = os.path.join(tmp, "x.npy")
        np.save(npy, x)
        stem = os.path.join(tmp, "x")
        rep = compress(a.bin, [npy, "-o", stem, "--cf", "6", "--store", "f16", "--batch", "4", "--shard-mb", "1"])
        c = dctchop_loader.Container(stem)
        assert c.n_shards == 3, c.n_shards
        assert all(os.path.getsize(p) <= 1_000_000 for p in c.shards)
        assert len(c) == 40 and c.meta["original_dtype"] == "float32" and c.meta["store_dtype"] == "f16"
        back = load_all(stem, batch_size=7)
        assert back.shape == x.shape, back.shape
        got = psnr(x, back)
        print(f"x.npy chop cf 6 f16: loader PSNR {got:.3f} dB, CLI {rep['psnr_db']:.3f} dB")
        assert abs(got - rep["psnr_db"]) <= 0.1, (got, rep["psnr_db"])
        checks += 1

        # With onnx installed the loader runs the graph without its final Reshape: same values
        # and shape as the graph run as is.
        try:
            import onnx  # noqa: F401
            import onnxruntime as ort

            # 128 x 203 is cropped by a final Gather; a size of whole tiles ends in a Reshape.
            assert dctchop_loader.Loader(stem).declared is None
            npy2 = os.path.join(tmp, "whole.npy")
            np.save(npy2, x[:8, :, :64, :96].copy())
            stem2 = os.path.join(tmp, "whole")
            compress(a.bin, [npy2, "-o", stem2, "--cf", "4", "--batch", "4"])
            ld = dctchop_loader.Loader(stem2, batch_size=4)
            assert ld.declared == (4, 2, 64, 96), ld.declared
            y = ld.container.read_shard(0)[:4]
            plain = ort.InferenceSession(ld.container.graph, providers=["CPUExecutionProvider"])
            (want,) = plain.run(None, {plain.get_inputs()[0].name: y})
            got = ld._decompress(y)
            assert got.shape == want.shape and np.array_equal(got, want), (got.shape, want.shape)
            print("loader without the final Reshape: equal to the graph run as is")
            checks += 1
        except ImportError:
            print("SKIP final-Reshape check: onnx is not installed")

        # Damage: flip the last payload byte -> checksum mismatch.
        shard = dctchop_loader.shard_path(stem, 0)
        b = bytearray(open(shard, "rb").read())
        b[-1] ^= 0x10
        open(shard, "wb").write(bytes(b))
        try:
            load_all(stem, batch_size=3)
            raise AssertionError("flipped byte not detected")
        except dctchop_loader.ContainerError as e:
            assert "checksum mismatch" in str(e), e
        checks += 1

        # The torch example, only where torch is installed.
        try:
            import torch  # noqa: F401

            r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "torch_dataset.py"), npy, "--bin", a.bin], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            print(r.stdout.strip())
        except ImportError:
            print("SKIP examples/torch_dataset.py: torch is not installed")
        print(f"python loader: {checks} checks passed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
