"""Images through the CLI, read back by the package: PSNR recomputed independently of the CLI
(a numpy PNG decoder, no image library), ported from the retired python/test_loader.py."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import dctchop

IMAGE = Path(__file__).resolve().parents[2] / "data" / "images" / "chelsea.png"


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


@pytest.mark.parametrize("cf, variant", [(4, "chop"), (3, "triangle")])
def test_chelsea_psnr_matches_the_cli_report(tmp_path, cli, cf, variant):
    assert IMAGE.is_file(), f"{IMAGE}: the repository ships its sample images in data/images"
    stem = tmp_path / f"chelsea-{variant}{cf}"
    r = cli("compress", IMAGE, "-o", stem, "--cf", cf, "--variant", variant, "--json", "--quiet")
    rep = json.loads(r.stdout)
    c = dctchop.open(stem)
    assert c.original_dtype == "uint8" and c.shape == (1, 3, 300, 451)
    back = np.concatenate(list(dctchop.ContainerLoader(stem, batch_size=1)))
    got = psnr(decode_png(IMAGE)[None], back)
    assert abs(got - rep["psnr_db"]) <= 0.1, (got, rep["psnr_db"])
    # compress_files writes the same container from the same image.
    rep2 = dctchop.compress_files(IMAGE, tmp_path / "py", cf=cf, variant=variant)
    assert Path(rep2["shards"][0]).read_bytes() == Path(c.shards[0]).read_bytes()
    assert abs(rep2["psnr_db"] - rep["psnr_db"]) < 1e-9


def test_decompress_files_to_the_original_dtype(tmp_path):
    # An 8-bit image back as uint8: the float32 decompression rounded half away from zero and
    # clipped to 0..255 (written out here), and equal to the PNG output's pixels.
    dctchop.compress_files(str(IMAGE), tmp_path / "c")
    f = tmp_path / "f.npy"
    o = tmp_path / "o.npy"
    dctchop.decompress_files(tmp_path / "c", f)
    rep = dctchop.decompress_files(tmp_path / "c", o, dtype="original")
    assert rep["dtype"] == "uint8"
    x, u = np.load(f), np.load(o)
    assert u.dtype == np.uint8 and u.shape == x.shape
    want = np.clip(np.sign(x) * np.floor(np.abs(x.astype(np.float64)) + 0.5), 0, 255)
    np.testing.assert_array_equal(u, want.astype(np.uint8))
    dctchop.decompress_files(tmp_path / "c", tmp_path / "p.png")
    np.testing.assert_array_equal(u[0], decode_png(tmp_path / "p.png"))
    with pytest.raises(dctchop.SpecError, match="dtype"):
        dctchop.decompress_files(tmp_path / "c", tmp_path / "z.npy", dtype="int4")
