"""Plots of `dctchop bench --csv` results, in the manner of the paper's Fig. 10-13.

Usage: python bench/plot.py bench/results   (reads every *.csv there, writes *.png beside them)
Throughput = uncompressed bytes / median time; the dashed line is a memory copy of the same
bytes measured in the same run (the bandwidth limit).
"""
import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(folder):
    rows = []
    for f in sorted(Path(folder).glob("*.csv")):
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh):
                r["section"] = f.stem
                rows.append(r)
    return rows


def npix(res):
    h, w = res.split("x")
    return int(h)


def label(r):
    form = "dense (paper)" if r["form"] == "full" else f"tile {r['form']}"
    return f"{r['engine']} {form}"


def line_plot(rows, xkey, xlabel, title, path, logx=True):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, direction in zip(axes, ["compress", "decompress"]):
        series = defaultdict(list)
        copy = defaultdict(list)
        for r in rows:
            x = xkey(r)
            series[label(r)].append((x, float(r[f"{direction}_gbps"])))
            copy[x].append(float(r["memcpy_gbps"]))
        forms = sorted({n.split(" ", 1)[1] for n in series})
        colors = {f: plt.cm.tab10(i) for i, f in enumerate(forms)}
        for name, pts in sorted(series.items()):
            pts.sort()
            engine, form = name.split(" ", 1)
            # Colour = form, line style = engine; the paper's dense form is drawn thicker.
            style = "-" if engine == "ort" else "--"
            marker = "o" if engine == "ort" else "s"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=marker, ms=3,
                    color=colors[form], lw=2.5 if "dense" in form else 1.2, label=name)
        xs = sorted(copy)
        ax.plot(xs, [sorted(copy[x])[len(copy[x]) // 2] for x in xs], ":k", lw=2, label="memcpy")
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(f"{direction}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("GB/s of uncompressed data")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: wrote {path}")


def summary(rows, path):
    """Markdown table: per engine and resolution, the dense form, every tile, auto and the copy."""
    res_rows = [r for r in rows if r["section"].startswith("resolution") and r["cf"] == "4"
                and r["variant"] == "chop"]
    if not res_rows:
        return
    lines = ["| engine | res | batch | form (tile) | compress GB/s | decompress GB/s | copy GB/s "
             "| c / copy | d / copy | c / dense | d / dense | c ns/px | d ns/px |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["engine"], npix(r["res"]), r["form"] != "full", r["form"] == "auto",
                     int(r["form"]) if r["form"].isdigit() else 0)
    for r in sorted(res_rows, key=key):
        form = "dense (paper)" if r["form"] == "full" else r["form"]
        if r["form"] == "auto":
            form = f"**auto ({r['tile_resolved']})**"
        f = lambda k: f"{float(r[k]):.2f}" if r[k] else "-"
        lines.append(f"| {r['engine']} | {r['res']} | {r['batch']} | {form} | {f('compress_gbps')} "
                     f"| {f('decompress_gbps')} | {f('memcpy_gbps')} | {f('compress_vs_memcpy')} "
                     f"| {f('decompress_vs_memcpy')} | {f('compress_vs_dense')} "
                     f"| {f('decompress_vs_dense')} | {f('compress_ns_per_pixel')} "
                     f"| {f('decompress_ns_per_pixel')} |")
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"summary: wrote {path}")


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    rows = [r for r in load(folder) if r["threads"] != "1" or r["section"] != "threads"]
    summary(rows, folder / "summary.md")
    res_rows = [r for r in rows if r["section"].startswith("resolution") and r["variant"] == "chop"
                and r["cf"] == "4"]
    if res_rows:
        line_plot(res_rows, lambda r: npix(r["res"]), "resolution (pixels per side)",
                  "Throughput vs resolution, CF 4, chop (batch 100x3 up to 512², ~100 MB above)",
                  folder / "throughput_vs_resolution.png")
    b_rows = [r for r in rows if r["section"] == "batch"]
    if b_rows:
        line_plot(b_rows, lambda r: int(r["batch"]), "batch (samples of 3x64x64)",
                  "Throughput vs batch at 64², CF 4, chop", folder / "throughput_vs_batch.png")
    cf_rows = [r for r in rows if r["section"] == "cf"]
    if cf_rows:
        for variant in ["chop", "triangle"]:
            sel = [r for r in cf_rows if r["variant"] == variant]
            if sel:
                line_plot(sel, lambda r: int(r["cf"]), "chop factor CF",
                          f"Throughput vs CF at 256², batch 100x3, {variant}",
                          folder / f"throughput_vs_cf_{variant}.png", logx=False)


if __name__ == "__main__":
    main()
