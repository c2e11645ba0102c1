"""Plots and the markdown report of a downstream run (called by run.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

FAMILY_ORDER = ["baseline", "chop", "triangle", "quantized", "zfp", "sz3", "reference"]
LINE_STYLE = {"baseline": "-", "chop": "-", "triangle": "--", "quantized": "-.", "zfp": "--",
              "sz3": ":", "reference": "-"}


def _label(spec: str, e: dict) -> str:
    return "base" if spec == "base" else f"{spec} (CR {e['ratio']:.2f})"


def plots(res: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfgs = res["configs"]
    paths = []
    epochs = np.arange(1, len(cfgs["base"]["runs"][0]["test_loss"]) + 1)
    cmap = plt.get_cmap("viridis")

    def colour(spec, e, i, n):
        return "black" if spec == "base" else cmap(i / max(n - 1, 1))

    # Fig. 7 analog: training loss per epoch (mean over seeds), baseline + dctchop
    dct = [s for s, e in cfgs.items()
           if e["family"] in ("baseline", "chop", "triangle", "quantized", "reference")]
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, s in enumerate(dct):
        e = cfgs[s]
        tl = np.mean([r["train_loss"] for r in e["runs"]], axis=0)
        ls = LINE_STYLE[e["family"]]
        ax[0].plot(epochs, tl, ls, color=colour(s, e, i, len(dct)), label=_label(s, e))
        if s != "base":
            ax[1].plot(epochs, e["diff_pct_curve_mean"], ls, color=colour(s, e, i, len(dct)),
                       label=_label(s, e))
    ax[0].set(xlabel="epoch", ylabel="training MSE (on the inputs as compressed)", yscale="log",
              title="Training loss (Fig. 7 analog)")
    ax[1].axhline(0, color="black", lw=0.8)
    for y in (-3, 3):
        ax[1].axhline(y, color="grey", lw=0.6, ls=":")
    ax[1].set(xlabel="epoch", ylabel="test MSE difference from base (%)",
              title="Test loss vs baseline, mean over seeds (Fig. 8 analog)")
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    p = out / "downstream-dctchop.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)

    # Fig. 9 analog: dctchop vs ZFP vs SZ3 at matched ratios
    matched = sorted({e["matched_to"] for e in cfgs.values() if e.get("matched_to")},
                     key=lambda s: -cfgs[s]["ratio"] if s in cfgs else 0)
    if matched:
        fig, axs = plt.subplots(1, len(matched), figsize=(max(7.0, 4.2 * len(matched)), 4.4),
                                squeeze=False)
        for ax, ref in zip(axs[0], matched):
            for s, e in cfgs.items():
                if s == ref or e.get("matched_to") == ref:
                    style = "-" if s == ref else LINE_STYLE[e["family"]]
                    d = np.array([[100.0 * (a / b - 1) for a, b in zip(r["test_loss"], cfgs["base"]["runs"][k]["test_loss"])]
                                  for k, r in enumerate(e["runs"])])
                    ax.plot(epochs, d.mean(0), style, label=f"{e['family']} CR {e['ratio']:.2f}")
                    if len(d) > 1:
                        ax.fill_between(epochs, d.min(0), d.max(0), alpha=0.15)
            ax.axhline(0, color="black", lw=0.8)
            ax.set(xlabel="epoch", ylabel="test MSE difference from base (%)",
                   title=f"matched to {ref}")
            ax.legend(fontsize=8)
        fig.suptitle("dctchop vs ZFP vs SZ3 at matched ratios (Fig. 9 analog)\n"
                     "test MSE vs baseline, mean over seeds; band = seed min..max", fontsize=9)
        fig.tight_layout()
        p = out / "downstream-vs-zfp-sz3.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)

    # the final difference per configuration, every seed
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(cfgs)), 4))
    specs = [s for s in cfgs if s != "base"]
    for i, s in enumerate(specs):
        e = cfgs[s]
        ax.scatter([i] * len(e["diff_pct"]), e["diff_pct"], color="C0", s=14,
                   label="test inputs uncompressed (seeds)" if i == 0 else None)
        if e.get("diff_pct_testcomp"):
            ax.scatter([i + 0.2] * len(e["diff_pct_testcomp"]), e["diff_pct_testcomp"],
                       facecolors="none", edgecolors="C1", s=18,
                       label="test inputs round-tripped too" if i == 0 else None)
        ax.errorbar(i, e["diff_pct_mean"], yerr=0 if math.isnan(e["diff_pct_std"]) else e["diff_pct_std"],
                    fmt="_", color="C3", ms=14, capsize=4)
    ax.axhline(0, color="black", lw=0.8)
    for y in (-3, 3):
        ax.axhline(y, color="grey", lw=0.6, ls=":")
    ax.set_xticks(range(len(specs)), [f"{s}\nCR {cfgs[s]['ratio']:.2f}" for s in specs],
                  rotation=60, fontsize=7)
    ax.set(ylabel="final test MSE difference from base (%)",
           title="Final test loss vs baseline: seeds (dots), mean ± std (red)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    p = out / "downstream-final.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    return paths


def samples_png(res: dict, samples: dict, out: Path) -> Path:
    """The first training image's 96x96 corner as each configuration gives it to the model.
    Drawn pixel-exact (each data pixel = 2x2 image pixels, no resampling), so that no moire
    from display scaling can make identical inputs look different."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["clean"] + [s for s in res["configs"] if s in samples]
    up, gap, top, head, dpi = 2, 16, 28, 30, 100
    tile = 96 * up
    cols = min(len(keys), 6)
    rows = (len(keys) + cols - 1) // cols
    w, h = cols * (tile + gap) + gap, rows * (tile + top) + head + gap
    fig = plt.figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    lo, hi = np.percentile(samples["base"] if "base" in samples else samples["clean"], [0.5, 99.5])
    for i, k in enumerate(keys):
        r_, c_ = divmod(i, cols)
        img = np.clip((samples[k] - lo) / (hi - lo), 0, 1)
        img = np.kron(img, np.ones((up, up)))
        x0 = gap + c_ * (tile + gap)
        row_top = head + r_ * (tile + top)  # pixels from the top
        y0 = h - (row_top + top + tile)  # figimage's origin is the lower left corner
        fig.figimage(img, xo=x0, yo=y0, cmap="gray", vmin=0, vmax=1, origin="upper")
        t = "clean target" if k == "clean" else ("noisy input" if k == "base" else
                                                 f"{k}  CR {res['configs'][k]['ratio']:.2f}")
        fig.text((x0 + tile / 2) / w, (h - (row_top + top - 4)) / h, t, ha="center", va="bottom",
                 fontsize=8)
    fig.text(0.5, 1 - 8 / h, "Training input as the model sees it (first image, 96×96 px = "
             "19 Å corner; same grey scale)", ha="center", va="top", fontsize=9)
    p = out / "downstream-inputs.png"
    fig.savefig(p, dpi=dpi)
    plt.close(fig)
    return p


def _fmt_pm(m, s):
    return f"{m:+.2f}" if math.isnan(s) else f"{m:+.2f} ± {s:.2f}"


def markdown(res: dict, cmd: str, pngs: list[Path]) -> str:
    cfgs = res["configs"]
    st, tc = res["settings"], res["train_config"]
    prof = res["profile"]
    L = []
    title = "Downstream accuracy: training a denoiser on compressed simulated micrographs"
    L.append(f"# {title}\n")
    if prof != "full":
        L.append(f"> **This is a `--{prof}` run, not the reported full run**: "
                 f"{len(st['seeds'])} seed(s), {tc['epochs']} epochs, {len(cfgs)} configurations. "
                 "Numbers are preliminary.\n")
    L.append("Generated by `" + cmd + "` (downstream/run.py). The dataset, model, what is "
             "compressed and why are described in [downstream/README.md](../downstream/README.md).\n")
    L.append("## Setup\n")
    L.append(f"- Data: simulated graphene micrographs (downstream/emsim.py), 1×256×256 float32 "
             f"clean/noisy pairs; {st['n_train']} training images (seed {st['data_seed']}), "
             f"{st['n_test']} test images (seed {st['data_seed'] + 1}).")
    arch = ("convolutional encoder-decoder without skip connections (train.EncoderDecoder)"
            if tc["arch"] == "encdec" else
            f"small U-Net shaped like SciML-Bench's em_denoise net, {tc['depth']} pooling levels")
    L.append(f"- Model: {arch}, width {tc['width']} "
             f"({_nparams(tc['arch'], tc['width'], tc['depth'])} parameters); Adam, LR {tc['lr']}, batch {tc['batch']} random "
             f"{tc['crop']}×{tc['crop']} crops, {tc['crops_per_image']} crop(s) per training image "
             f"per epoch, {tc['epochs']} epochs; loss MSE(model(noisy), clean).")
    L.append("- Compression: each configuration round-trips the **noisy training inputs** "
             "(full 256×256 images) once; targets (clean) and the test set are not compressed "
             "(except in `+targets` rows, which round-trip the clean targets too). "
             "dctchop runs as the ONNX graphs of `dctchop export`, under onnxruntime; ZFP "
             "(zfpy, fixed rate 32/ratio bits per value) and SZ3 (pysz, absolute error bound found "
             "by bisection) compress each 256×256 image on its own, at the ratio of the dctchop "
             "configuration they are matched to; their ratios below are as achieved."
             + (" `q-…` rows are dctchop's quantized mode (integer codes + zstd, the default of "
                "`dctchop compress`), run through the CLI (float32 .npy → `dctchop compress` → "
                "`dctchop decompress`): `q-cfN` is `--cf N --quant auto`, `q-ratioR` is "
                "`--target-ratio R`; the CLI makes its choice (the step; for a target also CF and "
                "variant) on its first batch, the first 8 training images, and that choice is "
                "reused for the clean targets and the test inputs. Their ratio is the container's stored ratio: float32 bytes "
                "over the code bytes as stored (shard headers and the decompress graph excluded); "
                "ZFP/SZ3 rows matched to them use that ratio as achieved on the training inputs."
                if any(e["family"] == "quantized" for e in cfgs.values()) else ""))
    L.append(f"- Seeds {st['seeds']}: a seed fixes weight init, crops and batch order, the same for "
             "every configuration, so the difference from baseline is paired per seed. "
             "Difference = 100 × (test MSE / baseline test MSE of the same seed − 1); "
             "negative = better than baseline.")
    h = res["host"]
    L.append(f"- Ran on {res['threads']} thread(s), {h['cpus']} CPUs, torch {h['torch']}, "
             f"Python {h['python']}; total wall time **{res['wall_s'] / 60:.1f} min** "
             f"(data generation {res['data_s']:.0f} s, round trips {res.get('roundtrip_s', 0):.0f} s, "
             f"training {res.get('train_wall_s', 0) / 60:.1f} min in {res.get('jobs', 1)} parallel "
             f"process(es)). The training runs used {res.get('train_cpu_s', 0) / 60:.1f} CPU-minutes "
             f"in all, so on an otherwise idle 2-core machine they take about "
             f"{res.get('train_cpu_s', 0) / 120:.1f} min (load average during this run: "
             f"{res.get('loadavg', '?')})."
             + (f" Projected from this run's CPU time, the full run takes about "
                f"**{res['projected_full_idle_min']:.0f} min** on an idle 2-core machine."
                if res.get("projected_full_idle_min") else "") + "\n")
    L.append("## Results\n")
    L.append(f"Test MSE of the noisy test inputs themselves (no denoising): "
             f"{res['trivial_test_mse']['noisy_input']:.5f}.\n")
    L.append("| config | ratio | train input PSNR vs uncompressed (dB) | MSE(train input, clean) | "
             "signal lost: MSE(round-tripped clean, clean) | test MSE (mean) | **diff vs base (%)** mean ± std | per seed (%) | "
             "diff vs base (%), test inputs compressed too | train wall s / run | train CPU s / run | "
             "round trip s |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for s in sorted(cfgs, key=lambda s: (FAMILY_ORDER.index(cfgs[s]["family"]), -cfgs[s]["ratio"])):
        e = cfgs[s]
        ps = "∞" if math.isinf(e["input_psnr_db"]) else f"{e['input_psnr_db']:.1f}"
        tci = ("" if e.get("diff_pct_testcomp_mean") is None
               else _fmt_pm(e["diff_pct_testcomp_mean"], e["diff_pct_testcomp_std"]))
        diff = "—" if s == "base" else _fmt_pm(e["diff_pct_mean"], e["diff_pct_std"])
        seeds = "" if s == "base" else " ".join(f"{d:+.2f}" for d in e["diff_pct"])
        L.append(f"| {s} | {e['ratio']:.2f} | {ps} | {e['input_mse_vs_clean']:.5f} | "
                 f"{e['signal_mse_lost']:.1e} | "
                 f"{e['final_test_loss_mean']:.5f} | {diff} | {seeds} | {tci} | "
                 f"{e['train_s_mean']:.0f} | {e.get('train_cpu_s_mean', float('nan')):.0f} | "
                 f"{e['compress_s']:.1f} |")
    L.append("")
    for s, e in cfgs.items():
        if e.get("target_ratio_unreachable"):
            L.append(f"- {s}: SZ3 compresses these (digitised) inputs by {e['ratio']:.2f} even at "
                     f"an error bound of {e['abs_error_bound']:.1e}, so the ratio of {e['matched_to']} "
                     "cannot be matched; the row is SZ3 at "
                     "(near-)lossless settings.")
        if e["family"] == "quantized" and e.get("chosen_cf") is not None:
            L.append(f"- {s} (`{e.get('cli_args', '?')}`): {e['chosen_variant']} CF "
                     f"{e['chosen_cf']}, step {e['quant_step']:.3g}, {e['code_type']} codes, "
                     f"{e['entropy']}; ratio with shard headers {e['file_ratio']:.2f}.")
        if e["family"] == "zfp" and math.isinf(e["input_psnr_db"]):
            L.append(f"- {s}: at {32 / e['ratio']:.1f} bits/value ZFP reproduces the digitised "
                     "inputs exactly (lossless).")
    L.append("")
    # honest statements, computed. "Helps" needs >= 2 seeds, a mean below -1 % and mean + std < 0;
    # |mean| <= 1 % counts as no measurable effect (the seed-to-seed spread of the paired
    # differences is of that order; chop-cf8, rounding only, shows the floor of the method).
    def cls(m, sd, n):
        if m > 3:
            return "over"
        if n >= 2 and m < -1 and m + sd < 0:
            return "helps"
        if abs(m) <= 1:
            return "none"
        return "between"

    def groups(key_m, key_s, key_list):
        g = {"over": [], "helps": [], "none": [], "between": []}
        for s, e in cfgs.items():
            if s == "base" or e.get(key_m) is None:
                continue
            g[cls(e[key_m], e[key_s], len(e[key_list]))].append(s)
        return {k: (", ".join(v) if v else "none") for k, v in g.items()}

    g = groups("diff_pct_mean", "diff_pct_std", "diff_pct")
    nseeds = len(st["seeds"])
    L.append("## What the numbers say (computed from the table)\n")
    L.append("Test inputs uncompressed (the primary metric):\n")
    L.append(f"- Loss difference above +3 % (worse than the paper's bound): {g['over']}.")
    L.append(f"- Between +1 and +3 % or below −1 % without a consistent sign: {g['between']}.")
    L.append(f"- No measurable effect (|difference| ≤ 1 %): {g['none']}.")
    L.append(f"- Compression helps (mean below −1 % and mean + std below 0"
             f"{', needs ≥ 2 seeds' if nseeds < 2 else ''}): {g['helps']}.\n")
    g = groups("diff_pct_testcomp_mean", "diff_pct_testcomp_std", "diff_pct_testcomp")
    L.append("Test inputs round-tripped too (a pipeline that stores all data compressed):\n")
    L.append(f"- Above +3 %: {g['over']}.")
    L.append(f"- Between: {g['between']}.")
    L.append(f"- No measurable effect: {g['none']}.")
    L.append(f"- Better than baseline: {g['helps']}.")
    L.append("")
    L.append("## Plots\n")
    for p in pngs:
        L.append(f"![{p.stem}]({p.name})\n")
    L.append("## Reproduce\n")
    L.append("```sh\nPY=$(downstream/setup.sh)            # venv with pinned torch, onnxruntime, zfpy, pysz\n"
             "cargo build --release                # or DCTCHOP_BIN=/path/to/dctchop\n"
             f"$PY downstream/run.py --{prof} --out docs/\n```\n")
    return "\n".join(L) + "\n"


def _nparams(arch: str, width: int, depth: int) -> int:
    try:
        import train

        return sum(p.numel() for p in train.ARCHS[arch](width, depth).parameters())
    except Exception:  # pragma: no cover
        return -1
