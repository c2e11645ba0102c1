#!/usr/bin/env python3
"""dctchop envelope vs each baseline at the same ratio as stored: reads an `dctchop eval` results.csv
(sample = all rows) and interpolates each baseline curve (PSNR vs log ratio) at every envelope point.
Usage: python bench/rd_table.py DIR/results.csv"""
import csv, math, collections, sys
rows=[r for r in csv.DictReader(open(sys.argv[1])) if r['sample']=='all']
by=collections.defaultdict(list)
for r in rows:
    key=(r['dataset'], r['method'] if r['method']!='dctchop' else 'dctchop-'+(r['quant'] or 'float'))
    by[key].append((float(r['ratio']), float(r['psnr_db']), float(r['ssim'])))
def interp(pts, x):
    pts=sorted(set(p for p in pts if math.isfinite(p[1])))
    if len(pts)<2: return None
    xs=[math.log(p[0]) for p in pts]
    lx=math.log(x)
    if lx<xs[0] or lx>xs[-1]: return None
    for i in range(len(xs)-1):
        if xs[i]<=lx<=xs[i+1]:
            t=(lx-xs[i])/(xs[i+1]-xs[i]) if xs[i+1]>xs[i] else 0
            return pts[i][1]+t*(pts[i+1][1]-pts[i][1])
for d in sorted(set(k[0] for k in by)):
    print("==",d)
    env=sorted(by[(d,'dctchop-envelope')])
    print("  ratio env_dB | jpeg | zfp-rate | zfp-accuracy | sz3   (baseline dB at the same ratio, env minus baseline)")
    for (r,p,s) in env:
        out=[]
        for m in ['jpeg','zfp-rate','zfp-accuracy','sz3']:
            v=interp(by.get((d,m),[]), r)
            out.append('      n/a     ' if v is None else f"{v:6.2f} ({p-v:+6.2f})")
        print(f"{r:7.2f} {p:6.2f} | "+" | ".join(out))
