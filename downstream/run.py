#!/usr/bin/env python3
"""Downstream accuracy of training on compressed data (HPDC'24 DCT+Chop paper, Fig. 7-9, em_denoise).

    python downstream/run.py --smoke                 # CI: tiny, baseline vs chop CF 8 (+ CF 4); exits 1 on failure
    python downstream/run.py --reduced --out /tmp/r  # 1 seed, fewer configs/epochs: timing and a first look
    python downstream/run.py --full --out docs/      # the reported run: every config, 3 seeds, <= 45 min on 2 cores

Each configuration round-trips the *training inputs* (the noisy micrographs) through its compressor
once (compression is deterministic, so this equals doing it per batch), then trains the denoiser
from scratch for every seed; the test set is never compressed (see downstream/README.md for why).
Writes OUT/downstream.md, OUT/downstream-results.json, OUT/downstream.csv and OUT/downstream-*.png.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import emsim  # noqa: E402
import roundtrip as rt  # noqa: E402

CHOP_CFS = [2, 3, 4, 5, 6, 7]
PROFILES = {
    # CI: must finish in well under 3 minutes on 2 loaded cores, data generation included.
    "smoke": dict(n_train=24, n_test=4, data_seed=1000, seeds=[0], epochs=2, crops_per_image=1,
                  width=8, crop=64, batch=8, max_steps=None,
                  configs=["base", "chop-cf8", "chop-cf4"]),
    # A quick look: one seed, a subset of configs, fewer epochs (for timing and sanity).
    "reduced": dict(n_train=256, n_test=16, data_seed=1000, seeds=[0], epochs=4, crops_per_image=2,
                    width=16, crop=64, batch=16, max_steps=None,
                    configs=["base", "chop-cf2", "chop-cf4", "chop-cf6", "triangle-cf4",
                             "zfp:chop-cf4", "sz3:chop-cf4"]),
    # The reported run.
    "full": dict(n_train=256, n_test=16, data_seed=1000, seeds=[0, 1, 2], epochs=10,
                 crops_per_image=2, width=16, crop=64, batch=16, max_steps=None,
                 configs=(["base"] + [f"chop-cf{c}" for c in CHOP_CFS]
                          + ["triangle-cf4", "triangle-cf6"]
                          + [f"{f}:chop-cf{c}" for f in ("zfp", "sz3") for c in (2, 4, 6)])),
}


def log(msg: str):
    print(msg, flush=True)


def nominal_ratio(spec: str) -> float:
    """Stored ratio of a dctchop spec against float32: chop 64/CF^2, triangle 64/(CF(CF+1)/2)."""
    variant, cf = spec.split("-cf")
    cf = int(cf)
    return 64.0 / (cf * cf) if variant == "chop" else 64.0 / (cf * (cf + 1) / 2)


def make_roundtrip(spec: str, args) -> rt.Roundtrip:
    """'base' | 'chop-cfN' | 'triangle-cfN' | 'zfp:<dctchop spec>' | 'sz3:<dctchop spec>'
    (ZFP/SZ3 at the ratio that dctchop spec stores)."""
    if spec == "base":
        return rt.Identity()
    if spec.startswith(("zfp:", "sz3:")):
        fam, ref = spec.split(":")
        ratio = nominal_ratio(ref)
        r = rt.ZfpFixedRate(32.0 / ratio, ratio) if fam == "zfp" else rt.Sz3ErrorBound(ratio)
        r.name = spec
        r.matched_to = ref
        return r
    variant, cf = spec.split("-cf")
    if args.dctchop_impl == "reference":
        r = rt.DctChopReference(int(cf), variant)
        r.name = spec + "(ref)"
        r.family = variant
        return r
    return rt.DctChopOnnx(int(cf), variant, batch=16, bin_path=args.dctchop_bin,
                          graph_dir=args.work / "graphs", threads=args.threads)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(peak * peak / mse)


def run(args) -> dict:
    import torch

    import train as tr

    torch.set_num_threads(args.threads)
    prof = dict(PROFILES[args.profile])
    for k in ("epochs", "n_train", "n_test", "lr", "width", "crops_per_image"):
        if getattr(args, k) is not None:
            prof[k] = getattr(args, k)
    if args.seeds is not None:
        prof["seeds"] = args.seeds
    if args.configs is not None:
        prof["configs"] = args.configs
    t_all = time.perf_counter()
    t = time.perf_counter()
    cfg = emsim.SimConfig()
    cache = args.work / "data"
    tr_clean, tr_noisy = emsim.load_or_make(cache, "train", prof["n_train"], prof["data_seed"], cfg)
    # test images come from another seed: no image (or defect layout) is shared with training
    te_clean, te_noisy = emsim.load_or_make(cache, "test", prof["n_test"], prof["data_seed"] + 1, cfg)
    t_data = time.perf_counter() - t
    log(f"data: train {tr_noisy.shape}, test {te_noisy.shape} ({t_data:.1f} s)")
    peak = float(tr_clean.max() - tr_clean.min())
    data_range = float(tr_noisy.max() - tr_noisy.min())
    tcfg = tr.TrainConfig(epochs=prof["epochs"], batch=prof["batch"], crop=prof["crop"],
                          crops_per_image=prof["crops_per_image"], width=prof["width"],
                          max_steps=prof["max_steps"], lr=prof.get("lr", 5e-4))
    results = {"profile": args.profile, "settings": prof, "train_config": dataclasses.asdict(tcfg),
               "sim_config": dataclasses.asdict(cfg), "threads": args.threads,
               "host": {"python": platform.python_version(), "torch": torch.__version__,
                        "cpus": os.cpu_count(), "machine": platform.machine()},
               "trivial_test_mse": {"noisy_input": float(((te_noisy - te_clean) ** 2).mean())},
               "data_range": data_range, "configs": {}}
    for spec in prof["configs"]:
        t = time.perf_counter()
        r = make_roundtrip(spec, args)
        x = r(tr_noisy)
        t_comp = time.perf_counter() - t
        targets = tr_clean
        te_x = r(te_noisy)  # only for the diagnostic "test inputs compressed too"
        entry = {**r.describe(), "spec": spec, "compress_s": t_comp,
                 "matched_to": getattr(r, "matched_to", None),
                 "input_psnr_db": psnr(x, tr_noisy, peak),
                 "input_mse_vs_clean": float(((x - tr_clean) ** 2).mean()),
                 "max_abs_change": float(np.abs(x - tr_noisy).max()), "runs": []}
        log(f"{spec}: ratio {r.ratio:.3f}, round trip {t_comp:.1f} s, PSNR vs noisy "
            f"{entry['input_psnr_db']:.2f} dB, MSE(train input, clean) {entry['input_mse_vs_clean']:.5f}")
        for seed in prof["seeds"]:
            h = tr.train_run(x, targets, te_noisy, te_clean, seed, tcfg,
                             log=log if args.verbose else None)
            h["test_loss_compressed_inputs"] = None
            if spec != "base":
                # diagnostic: the same trained model on round-tripped test inputs
                h["test_loss_compressed_inputs"] = _eval_last(h, te_x, te_clean, tcfg)
            h.pop("model", None)
            entry["runs"].append({"seed": seed, **h})
            log(f"  seed {seed}: test MSE {h['final_test_loss']:.6f} ({h['steps']} steps, "
                f"{h['wall_s']:.1f} s)")
        results["configs"][spec] = entry
    results["wall_s"] = time.perf_counter() - t_all
    results["data_s"] = t_data
    summarize(results)
    return results


def _eval_last(h, te_x, te_clean, tcfg):
    import torch

    import train as tr

    model = h["model"]
    return tr.evaluate(model, torch.from_numpy(te_x), torch.from_numpy(te_clean), tcfg.eval_batch)


def summarize(res: dict):
    """Adds per-config paired differences vs the baseline (same seed), in percent."""
    base = {r["seed"]: r for r in res["configs"]["base"]["runs"]}
    for spec, e in res["configs"].items():
        d = [100.0 * (r["final_test_loss"] / base[r["seed"]]["final_test_loss"] - 1)
             for r in e["runs"] if r["seed"] in base]
        curves = np.array([[100.0 * (a / b - 1) for a, b in zip(r["test_loss"], base[r["seed"]]["test_loss"])]
                           for r in e["runs"] if r["seed"] in base])
        e["diff_pct"] = d
        e["diff_pct_mean"] = float(np.mean(d))
        e["diff_pct_std"] = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
        e["diff_pct_curve_mean"] = curves.mean(0).tolist()
        e["final_test_loss_mean"] = float(np.mean([r["final_test_loss"] for r in e["runs"]]))
        e["train_s_mean"] = float(np.mean([r["wall_s"] for r in e["runs"]]))
        cl = [r["test_loss_compressed_inputs"] for r in e["runs"] if r["test_loss_compressed_inputs"]]
        e["test_loss_compressed_inputs_mean"] = float(np.mean(cl)) if cl else None


# ---------------------------------------------------------------------------------------------
# smoke check


def smoke_check(res: dict) -> list[str]:
    """CF 8 keeps every coefficient, so its round trip is the identity up to float rounding.

    Why a tolerance and not bit equality: the ONNX graphs compute D = T A T^T and A' = T^T D T in
    float32, so the training inputs differ from the originals by a few ulps (|change| ~1e-7 of the
    data's range), and SGD then carries that into the weights; bit equality would fail for a
    correct codec. The check is two-sided instead: (1) the CF-8 inputs differ from the originals by
    at most 1e-5 of the data range (a wrong block layout, a transposed matrix or a dropped
    coefficient changes them by O(range)); (2) every per-step training loss and every test loss of
    the CF-8 run matches the baseline run with the same seed to 1e-4 relative; (3) a lossy
    configuration (CF 4, when run) differs from the baseline by more than 100x that tolerance, so
    the tolerance does separate "same data" from "different data" on this very run.
    """
    errs = []
    cfgs = res["configs"]
    base = cfgs["base"]["runs"][0]
    tol = 1e-4
    rng_ = float(res.get("data_range", 0.0)) or 1.0
    if "chop-cf8" in cfgs:
        e = cfgs["chop-cf8"]
        if e["max_abs_change"] > 1e-5 * rng_:
            errs.append(f"CF 8 round trip changed the data by {e['max_abs_change']:.3g} "
                        f"(> 1e-5 of the range {rng_:.3g})")
        r = e["runs"][0]
        a = np.array(r["step_losses"] + r["test_loss"])
        b = np.array(base["step_losses"] + base["test_loss"])
        rel = float(np.max(np.abs(a / b - 1)))
        res["smoke_cf8_max_rel_diff"] = rel
        if rel > tol:
            errs.append(f"training on CF 8 data differs from the baseline: max relative loss "
                        f"difference {rel:.3g} > {tol}")
    else:
        errs.append("smoke needs the chop-cf8 configuration")
    for spec in ("chop-cf4",):
        if spec in cfgs:
            r = cfgs[spec]["runs"][0]
            a = np.array(r["test_loss"])
            b = np.array(base["test_loss"])
            rel = float(np.max(np.abs(a / b - 1)))
            res[f"smoke_{spec}_max_rel_diff"] = rel
            if rel < 100 * tol:
                errs.append(f"{spec} test loss is within {rel:.3g} of the baseline: the tolerance "
                            "would not catch a real change")
    return errs


# ---------------------------------------------------------------------------------------------
# outputs


def write_outputs(res: dict, out: Path, cmd: str):
    import report

    out.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(res, default=float))
    for e in slim["configs"].values():
        for r in e["runs"]:
            r.pop("step_losses", None)
    (out / "downstream-results.json").write_text(json.dumps(slim, indent=1))
    with open(out / "downstream.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["config", "family", "ratio", "matched_to", "seeds", "test_mse_mean",
                    "diff_pct_mean", "diff_pct_std", "diff_pct_per_seed", "input_psnr_db",
                    "input_mse_vs_clean", "test_mse_compressed_inputs", "train_s_mean", "compress_s"])
        for spec, e in res["configs"].items():
            w.writerow([spec, e["family"], f"{e['ratio']:.4f}", e["matched_to"] or "",
                        len(e["runs"]), f"{e['final_test_loss_mean']:.6g}",
                        f"{e['diff_pct_mean']:.3f}", f"{e['diff_pct_std']:.3f}",
                        " ".join(f"{d:.3f}" for d in e["diff_pct"]), f"{e['input_psnr_db']:.3f}",
                        f"{e['input_mse_vs_clean']:.6g}",
                        "" if e["test_loss_compressed_inputs_mean"] is None
                        else f"{e['test_loss_compressed_inputs_mean']:.6g}",
                        f"{e['train_s_mean']:.1f}", f"{e['compress_s']:.2f}"])
    pngs = report.plots(res, out)
    md = report.markdown(res, cmd, pngs)
    (out / "downstream.md").write_text(md)
    return [out / "downstream.md", out / "downstream-results.json", out / "downstream.csv", *pngs]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--smoke", dest="profile", action="store_const", const="smoke")
    g.add_argument("--reduced", dest="profile", action="store_const", const="reduced")
    g.add_argument("--full", dest="profile", action="store_const", const="full")
    ap.add_argument("--out", type=Path, default=None,
                    help="where the report goes (default: none for --smoke, else docs/)")
    ap.add_argument("--work", type=Path, default=HERE / "work",
                    help="cache of datasets and exported graphs (default downstream/work)")
    ap.add_argument("--dctchop-bin", default=None,
                    help="dctchop binary (default: $DCTCHOP_BIN, /work/bin/dctchop, target/{release,debug})")
    ap.add_argument("--dctchop-impl", choices=["onnx", "reference"], default="onnx",
                    help="onnx: dctchop's exported graphs (the real thing); reference: numpy, for "
                         "development without a binary")
    ap.add_argument("--threads", type=int, default=2, help="torch/onnxruntime threads (default 2)")
    ap.add_argument("--configs", nargs="+", default=None, help="override the profile's configs")
    ap.add_argument("--seeds", nargs="+", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--crops-per-image", type=int, default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = run(args)
    cmd = "python downstream/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.profile == "smoke":
        errs = smoke_check(res)
        log(f"smoke: CF 8 vs baseline max relative loss difference "
            f"{res.get('smoke_cf8_max_rel_diff', float('nan')):.3g}; CF 4 vs baseline "
            f"{res.get('smoke_chop-cf4_max_rel_diff', float('nan')):.3g}; "
            f"{time.perf_counter() - t0:.1f} s in all")
        if args.out:
            write_outputs(res, args.out, cmd)
        if errs:
            for e in errs:
                log("FAIL: " + e)
            return 1
        log("smoke: OK")
        return 0
    out = args.out or (HERE.parent / "docs")
    for p in write_outputs(res, out, cmd):
        log(f"wrote {p}")
    log(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
