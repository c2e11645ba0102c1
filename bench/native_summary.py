"""Summarise bench/run_native.sh's CSVs as markdown: ratios to a memory copy per engine, the
issue-11 floors checked point by point, threads and integer-code rows. Usage:
python bench/native_summary.py bench/results > bench/results/native_summary.md"""
import csv
import glob
import os
import sys

d = sys.argv[1] if len(sys.argv) > 1 else "bench/results"
rows = []
for f in sorted(glob.glob(os.path.join(d, "native_*.csv"))):
    with open(f) as fh:
        for r in csv.DictReader(fh):
            r["file"] = os.path.basename(f)
            rows.append(r)


def side(r):
    return int(r["res"].split("x")[0])


def fnum(r, k):
    return float(r[k])


def kept_fraction(r):
    """Coefficients kept per pixel: CF² of block² (chop) or the CF(CF+1)/2 of the triangle."""
    cf, b = int(r["cf"]), int(r["block"])
    kept = cf * cf if r["variant"] == "chop" else cf * (cf + 1) // 2
    return kept / (b * b)


grid = [r for r in rows if r["file"][len("native_"):-4].isdigit()]
grid.sort(key=lambda r: (r["variant"], side(r), int(r["cf"]), r["engine"]))
print("# Native engine against ORT and tract (bench/run_native.sh)\n")
print("Ratios are throughput over a memory copy of the same bytes measured in the same run;")
print("GB/s of uncompressed f32. Floors from issue 11: native ≥ 0.9× copy (chop) / ≥ 0.6×")
print("(triangle) at 256²–2048², and ≥ ORT at every size.\n")
print("| variant | res | cf | batch | engine | comp GB/s | dec GB/s | copy GB/s | c/copy | d/copy | c ns/px | d ns/px |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in grid:
    print(f"| {r['variant']} | {side(r)}² | {r['cf']} | {r['batch']} | {r['engine']} | "
          f"{fnum(r, 'compress_gbps'):.2f} | {fnum(r, 'decompress_gbps'):.2f} | {fnum(r, 'memcpy_gbps'):.2f} | "
          f"{fnum(r, 'compress_vs_memcpy'):.2f} | {fnum(r, 'decompress_vs_memcpy'):.2f} | "
          f"{fnum(r, 'compress_ns_per_pixel'):.3f} | {fnum(r, 'decompress_ns_per_pixel'):.3f} |")

print("\n## Floors, point by point (native)\n")
print("| variant | res | cf | c/copy | d/copy | floor | c ≥ ORT | d ≥ ORT | met |")
print("|---|---|---|---|---|---|---|---|---|")
misses = 0
for r in grid:
    if r["engine"] != "native" or side(r) < 256:
        continue
    floor = 0.9 if r["variant"] == "chop" else 0.6
    ort = [o for o in grid if o["engine"] == "ort" and o["variant"] == r["variant"]
           and o["res"] == r["res"] and o["cf"] == r["cf"]]
    c_ort = not ort or fnum(r, "compress_gbps") >= fnum(ort[0], "compress_gbps")
    d_ort = not ort or fnum(r, "decompress_gbps") >= fnum(ort[0], "decompress_gbps")
    c, dd = fnum(r, "compress_vs_memcpy"), fnum(r, "decompress_vs_memcpy")
    met = c >= floor and dd >= floor and c_ort and d_ort
    misses += not met
    print(f"| {r['variant']} | {side(r)}² | {r['cf']} | {c:.2f} | {dd:.2f} | {floor} | "
          f"{'yes' if c_ort else 'no'} | {'yes' if d_ort else 'no'} | {'yes' if met else '**no**'} |")
print(f"\n{misses} native point(s) below a floor.\n")

print("## Time per pixel in the grid above, native chop CF 4 (64² runs from cache; the equal-bytes table below is issue 11's measure)\n")
nat = [r for r in grid if r["engine"] == "native" and r["variant"] == "chop" and r["cf"] == "4"]
if nat:
    c = [fnum(r, "compress_ns_per_pixel") for r in nat]
    dd = [fnum(r, "decompress_ns_per_pixel") for r in nat]
    print("| res | c ns/px | d ns/px |\n|---|---|---|")
    for r in nat:
        print(f"| {side(r)}² | {fnum(r, 'compress_ns_per_pixel'):.3f} | {fnum(r, 'decompress_ns_per_pixel'):.3f} |")
    print(f"\nmax/min: compress {max(c) / min(c):.2f}×, decompress {max(dd) / min(dd):.2f}×\n")

flat = [r for r in rows if r["file"].startswith("native_flat")]
if flat:
    passes = sorted({r["file"][len("native_flat"):].split("_")[0] for r in flat})
    sizes = sorted({side(r) for r in flat})
    print("## Time per pixel at equal bytes, native chop CF 4 (issue 11: flat within 1.3×)\n")
    print("Batches of 79-101 MB at every size (64² × 2000 … 2048² × 2), so that every size streams")
    print(f"from memory; the sizes measured in turn, {len(passes)} passes (ascending, then descending,")
    print("in turn); the median of the passes is the measure.\n")
    print("| op | " + " | ".join(f"{s}²" for s in sizes) + " | max/min |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for op, key in (("compress", "compress_ns_per_pixel"), ("decompress", "decompress_ns_per_pixel")):
        per = {}
        for p in passes:
            got = {side(r): fnum(r, key) for r in flat if r["file"].startswith(f"native_flat{p}_")}
            if len(got) == len(sizes):
                per[p] = [got[s] for s in sizes]
                v = per[p]
                print(f"| {op}, pass {p} | " + " | ".join(f"{x:.3f}" for x in v)
                      + f" | {max(v) / min(v):.2f}× |")
        if per:
            med = [sorted(col)[len(col) // 2] for col in zip(*per.values())]
            print(f"| {op}, median of passes | " + " | ".join(f"{x:.3f}" for x in med)
                  + f" | **{max(med) / min(med):.2f}×** |")
    print()

thr = [r for r in rows if r["file"].startswith("native_threads")]
if thr:
    print("## One thread against two, 1024², CF 4 (issue 11: 2 threads ≥ 1.7× one)\n")
    print("Three passes; each pass measures one and two threads back to back. \"copy, T thr\" is the")
    print("same copy cut into as many parts as the row has threads, copied at once: what the memory")
    print("delivers to that many cores. \"c / d traffic\" is the bytes a direction reads plus the")
    print("bytes it writes per second (f32 image and f32 coefficients; stores counted once) over that")
    print("copy's; near 1, a direction moves data as fast as the machine copies it.\n")
    print("| pass | engine | threads | comp GB/s | dec GB/s | c/copy | d/copy | copy, 1 thr | copy, T thr "
          "| c traffic | d traffic |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(thr, key=lambda r: (r["file"], r["engine"], int(r["threads"]))):
        p = r["file"][len("native_threads"):-4]
        copy_t = fnum(r, "memcpy_threads_gbps") if r.get("memcpy_threads_gbps") else float("nan")
        k = kept_fraction(r)
        traffic = lambda op: fnum(r, f"{op}_gbps") * (1 + k) / (2 * copy_t)
        print(f"| {p} | {r['engine']} | {r['threads']} | {fnum(r, 'compress_gbps'):.2f} | "
              f"{fnum(r, 'decompress_gbps'):.2f} | {fnum(r, 'compress_vs_memcpy'):.2f} | "
              f"{fnum(r, 'decompress_vs_memcpy'):.2f} | {fnum(r, 'memcpy_gbps'):.2f} | {copy_t:.2f} | "
              f"{traffic('compress'):.2f} | {traffic('decompress'):.2f} |")
    print()
    for e in sorted({r["engine"] for r in thr}):
        ratios = {"compress": [], "decompress": []}
        for f in sorted({r["file"] for r in thr}):
            one = [r for r in thr if r["file"] == f and r["engine"] == e and r["threads"] == "1"]
            two = [r for r in thr if r["file"] == f and r["engine"] == e and r["threads"] == "2"]
            if one and two:
                for op in ratios:
                    ratios[op].append(fnum(two[0], f"{op}_gbps") / fnum(one[0], f"{op}_gbps"))
        if ratios["compress"]:
            parts = []
            for op, v in ratios.items():
                med = sorted(v)[len(v) // 2]
                parts.append(f"{op} {' / '.join(f'{x:.2f}' for x in v)} (median **{med:.2f}×**)")
            print(f"{e}: 2 threads / 1 thread per pass: " + "; ".join(parts) + "\n")

codes = [r for r in rows if r["file"].startswith("native_codes_")]
if codes:
    print("## Decompression from integer codes, CF 4 (issue 10: int8 on ORT ≥ 0.7× copy)\n")
    print("Ratios against a copy of the decompressed f32 output's size.\n")
    print("| engine | res | codes | comp GB/s | dec GB/s | c/copy | d/copy |\n|---|---|---|---|---|---|---|")
    for r in sorted(codes, key=lambda r: (side(r), r["engine"], r.get("code", ""))):
        print(f"| {r['engine']} | {side(r)}² | {r.get('code', 'none')} | {fnum(r, 'compress_gbps'):.2f} | "
              f"{fnum(r, 'decompress_gbps'):.2f} | {fnum(r, 'compress_vs_memcpy'):.2f} | "
              f"{fnum(r, 'decompress_vs_memcpy'):.2f} |")
