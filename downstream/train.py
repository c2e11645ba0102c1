"""The denoiser and its training loop (PyTorch, CPU).

One training run = (training inputs as the model sees them, i.e. already round-tripped through a
compressor; clean targets; uncompressed test set; seed). Everything random in a run (weight init,
crop positions, batch order) comes from the seed alone, so runs of different configurations with
the same seed see the same crops in the same order: their test-loss difference is paired.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class EncoderDecoder(nn.Module):
    """The default denoiser: a small convolutional encoder-decoder without skip connections.
    Down: 3x3 conv (1 -> w), two stride-2 3x3 convs (-> 2w, 2w), a 3x3 conv (2w) at 1/4
    resolution; up: bilinear x2 + 3x3 conv (-> w), bilinear x2 + 3x3 conv (w), 3x3 conv -> 1.
    BatchNorm + ReLU after every hidden conv. `depth` is unused (always 2 downsamplings)."""

    def __init__(self, width: int = 16, depth: int = 2, out_bias: float = 0.0):
        super().__init__()
        w = width

        def block(cin, cout, stride=1):
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU()]

        self.enc = nn.Sequential(*block(1, w), *block(w, 2 * w, 2), *block(2 * w, 2 * w, 2),
                                 *block(2 * w, 2 * w))
        self.dec1 = nn.Sequential(*block(2 * w, w))
        self.dec2 = nn.Sequential(*block(w, w))
        self.out = nn.Conv2d(w, 1, 3, padding=1)
        with torch.no_grad():
            self.out.bias.fill_(out_bias)

    def forward(self, x):
        h = self.enc(x)
        h = self.dec1(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
        h = self.dec2(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
        return self.out(h)


class UNet(nn.Module):
    """The structure of SciML-Bench's em_denoise network (a small U-Net: per level two 3x3
    conv -> ReLU -> BatchNorm, 2x2 max-pool down, bilinear upsampling and concatenated skips up,
    a final 3x3 conv), made smaller: `depth` pooling levels (SciML-Bench: 3) and base width
    `width` (SciML-Bench: 8), doubling per level."""

    def __init__(self, width: int = 8, depth: int = 2, out_bias: float = 0.0):
        super().__init__()

        def double(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout))

        ch = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([double(1, ch[0])] + [double(ch[i], ch[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([double(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(depth))])
        self.out = nn.Conv2d(ch[0], 1, 3, padding=1)
        with torch.no_grad():
            self.out.bias.fill_(out_bias)

    def forward(self, x):
        skips = []
        for i, blk in enumerate(self.down):
            x = blk(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for blk in self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            x = blk(torch.cat([x, skips.pop()], dim=1))
        return self.out(x)


ARCHS = {"encdec": EncoderDecoder, "unet": UNet}


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 10
    batch: int = 16  # crops per step
    crop: int = 128  # training crop (the model is fully convolutional; test runs on full images)
    crops_per_image: int = 1  # crops drawn from each training image per epoch
    lr: float = 5e-4  # the paper's em_denoise LR (Table 3); Adam
    arch: str = "encdec"  # encdec | unet
    width: int = 16
    depth: int = 2
    eval_batch: int = 16
    max_steps: int | None = None  # stop after this many steps (smoke)


def _crop_plan(rng: np.random.Generator, n_img: int, size: int, cfg: TrainConfig):
    """(image index, y, x) of every crop of one epoch, shuffled."""
    idx = np.repeat(np.arange(n_img), cfg.crops_per_image)
    ys = rng.integers(0, size - cfg.crop + 1, len(idx))
    xs = rng.integers(0, size - cfg.crop + 1, len(idx))
    perm = rng.permutation(len(idx))
    return idx[perm], ys[perm], xs[perm]


@torch.no_grad()
def evaluate(model: nn.Module, noisy: torch.Tensor, clean: torch.Tensor, batch: int) -> float:
    model.eval()
    tot = 0.0
    for s in range(0, len(noisy), batch):
        pred = model(noisy[s:s + batch])
        tot += F.mse_loss(pred, clean[s:s + batch], reduction="sum").item()
    model.train()
    return tot / noisy.numel()


def train_run(train_in: np.ndarray, train_target: np.ndarray, test_in: np.ndarray,
              test_target: np.ndarray, seed: int, cfg: TrainConfig, log=None) -> dict:
    """Train from scratch; returns per-epoch train/test MSE, the final test MSE and wall time."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # output bias starts at the mean target (the same for every configuration: targets are clean)
    model = ARCHS[cfg.arch](cfg.width, cfg.depth, out_bias=float(train_target.mean()))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    xin = torch.from_numpy(np.ascontiguousarray(train_in, dtype=np.float32))
    xtg = torch.from_numpy(np.ascontiguousarray(train_target, dtype=np.float32))
    tin = torch.from_numpy(np.ascontiguousarray(test_in, dtype=np.float32))
    ttg = torch.from_numpy(np.ascontiguousarray(test_target, dtype=np.float32))
    size, c = train_in.shape[-1], cfg.crop
    hist = {"train_loss": [], "test_loss": [], "step_losses": []}
    step = 0
    for ep in range(cfg.epochs):
        idx, ys, xs = _crop_plan(rng, len(train_in), size, cfg)
        ep_loss, ep_n = 0.0, 0
        for s in range(0, len(idx), cfg.batch):
            sl = slice(s, s + cfg.batch)
            xb = torch.stack([xin[i, :, y:y + c, x:x + c] for i, y, x in zip(idx[sl], ys[sl], xs[sl])])
            yb = torch.stack([xtg[i, :, y:y + c, x:x + c] for i, y, x in zip(idx[sl], ys[sl], xs[sl])])
            loss = F.mse_loss(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            li = loss.item()
            hist["step_losses"].append(li)
            ep_loss += li * len(xb)
            ep_n += len(xb)
            step += 1
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        hist["train_loss"].append(ep_loss / max(ep_n, 1))
        hist["test_loss"].append(evaluate(model, tin, ttg, cfg.eval_batch))
        if log:
            log(f"    epoch {ep + 1}/{cfg.epochs}: train {hist['train_loss'][-1]:.6f} "
                f"test {hist['test_loss'][-1]:.6f}")
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
    hist["final_test_loss"] = hist["test_loss"][-1]
    hist["steps"] = step
    hist["wall_s"] = time.perf_counter() - t0
    hist["cpu_s"] = time.process_time() - c0  # this process's CPU time: load-independent cost
    hist["model"] = model  # for extra evaluations by the caller; not serialised
    return hist
