//! Throughput benchmark: `cargo run --release -p block_transform --example kernel_bench [-- options]`.
//!
//! For each image size the batch is chosen so the uncompressed f32 tensor is
//! ~64 MiB (3 channels). Every measurement is the median of `--runs` (default 7)
//! timed runs after 3 warm-up runs. GB/s are of UNCOMPRESSED f32 bytes; `×copy`
//! is relative to a single-threaded `copy_from_slice` of the same tensor
//! between two pre-faulted buffers, measured in the same process before and
//! after each size (median of both sets).
//!
//! Options (all optional): `--sizes 64,256,512,1024,2048` `--cf 2,4,7`
//! `--threads 1,2` `--block 8` `--variants chop,tri` `--ops c,d,ci8,di8`
//! `--isa generic|avx2|avx512` `--runs 7` `--mib 64`; the plan's
//! [`Tuning`](block_transform::Tuning):
//! `--chunk N` (column chunk), `--read-ahead-max-w N` (0: no read-ahead),
//! `--read-ahead-bytes N` and `--write-ahead-bytes N` (0: no write-ahead),
//! `--symmetry 0` (the general kernels even for the DCT's mirror-symmetric rows),
//! `--stream 0` (compress stores its coefficients with ordinary stores only).
//! Ops: `c`/`d` floats, `ci8`/`di8` int8 codes, `ci16` int16 codes, `cu8i16` int16 codes of
//! 8-bit samples, `di16` decompress int16 codes, `dci16`/`dci16u8` decompress_compare of int16 codes against the f32 / 8-bit
//! samples (GB/s and ×copy are of the f32 size in every row).
//!
//! `--hot`: instead, a compute-bound table per instruction set: one thread on a
//! cache-resident 3×128² tensor (minimum of 15 × 20 calls), ns per pixel; compress's
//! streaming stores are off there unless `--stream 1` is given.

use block_transform::{BlockTransform, Isa, Keep, Tuning};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn list(name: &str, default: &str) -> Vec<String> {
    arg(name)
        .unwrap_or_else(|| default.to_string())
        .split(',')
        .map(str::to_string)
        .collect()
}

fn nums(name: &str, default: &str) -> Vec<usize> {
    list(name, default)
        .iter()
        .map(|s| s.parse().expect("number"))
        .collect()
}

/// Median seconds of `runs` timed calls after 3 warm-ups.
fn median_time(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Compute-bound comparison of the instruction sets (cache-resident data).
fn hot(block: usize, cfs: &[usize]) {
    let (s, planes) = (128, 3);
    let len = planes * s * s;
    let x: Vec<f32> = (0..len).map(|i| (i % 97) as f32 * 0.01).collect();
    let mut xo = vec![0f32; len];
    let min_time = |f: &mut dyn FnMut()| {
        (0..15)
            .map(|_| {
                let st = Instant::now();
                for _ in 0..20 {
                    f();
                }
                st.elapsed().as_secs_f64() / 20.0
            })
            .fold(f64::INFINITY, f64::min)
            * 1e9
            / len as f64
    };
    println!(
        "# hot (L2-resident 3×128², 1 thread, min of 15×20 calls), block {block}, loadavg {}",
        loadavg()
    );
    println!(
        "| isa | variant | cf | compress | decompress | compress→i8 | i8→decompress | memcpy |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let copy =
        min_time(&mut || std::hint::black_box(&mut xo).copy_from_slice(std::hint::black_box(&x)));
    for isa in [Isa::Generic, Isa::Avx2, Isa::Avx512] {
        if !isa.is_supported() {
            continue;
        }
        for tri in [false, true] {
            for &cf in cfs {
                let variant = if tri { Keep::triangle(cf) } else { Keep::Grid };
                let mut p = BlockTransform::dct(s, s, block, cf, variant.clone(), 1).unwrap();
                p.set_isa(isa).unwrap();
                // Streaming stores off unless asked for: they send the output to memory,
                // which is what they are for, but this table measures the arithmetic.
                p.set_tuning(Tuning {
                    symmetry: arg("--symmetry").is_none_or(|v| v != "0"),
                    stream: arg("--stream").is_some_and(|v| v != "0"),
                    ..p.tuning()
                });
                let m = planes * p.plane_coeffs();
                let (mut y, mut q) = (vec![0f32; m], vec![0i8; m]);
                let c = min_time(&mut || p.compress(&x, planes, &mut y).unwrap());
                let d = min_time(&mut || p.decompress(&y, planes, &mut xo).unwrap());
                let ci = min_time(&mut || {
                    p.compress_codes(&x, planes, &mut q).unwrap();
                });
                let di = min_time(&mut || p.decompress_codes(&q, planes, &mut xo).unwrap());
                println!(
                    "| {isa:?} | {variant:?} | {cf} | {c:.3} | {d:.3} | {ci:.3} | {di:.3} | {copy:.3} |"
                );
            }
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--hot") {
        let block = nums("--block", "8")[0];
        return hot(block, &nums("--cf", "2,4,7"));
    }
    let sizes = nums("--sizes", "64,256,512,1024,2048");
    let cfs = nums("--cf", "2,4,7");
    let threads = nums("--threads", "1,2");
    let block = nums("--block", "8")[0];
    let runs = nums("--runs", "7")[0].max(5);
    let mib = nums("--mib", "64")[0];
    let variants: Vec<bool> = list("--variants", "chop,tri")
        .iter()
        .map(|v| v == "tri")
        .collect();
    let ops = list("--ops", "c,d,ci8,di8");
    let isa = match arg("--isa").as_deref() {
        Some("generic") => Some(Isa::Generic),
        Some("avx2") => Some(Isa::Avx2),
        Some("avx512") => Some(Isa::Avx512),
        _ => None,
    };
    println!(
        "# dctchop native bench: block {block}, isa {:?}, runs {runs} (median, 3 warm-ups), loadavg at start: {}",
        isa.unwrap_or_else(Isa::detect),
        loadavg()
    );
    println!("| size | planes | MB | cf | variant | thr | op | ms | GB/s | ns/px | ×copy |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &s in &sizes {
        let n = ((mib << 20) as f64 / (3 * s * s * 4) as f64)
            .round()
            .max(1.0) as usize;
        let planes = 3 * n;
        let len = planes * s * s;
        let bytes = (len * 4) as f64;
        // Smooth-ish pseudo-image data in [0, 1); every buffer pre-faulted.
        let x: Vec<f32> = (0..len)
            .map(|i| ((i % s) as f32 * 0.01).sin() * 0.4 + 0.5 + ((i * 7919) % 97) as f32 * 1e-3)
            .collect();
        let mut xo = vec![1.0f32; len];
        // The same image as 8-bit samples (ops cu8i16, dci16u8).
        let x8: Vec<u8> = x.iter().map(|&v| (v * 255.0) as u8).collect();
        let copy = |xo: &mut Vec<f32>| {
            median_time(runs, || {
                std::hint::black_box(&mut *xo).copy_from_slice(std::hint::black_box(&x))
            })
        };
        let mut copy_t = vec![copy(&mut xo)];
        let px = len as f64;
        let mut rows = vec![];
        for &cf in &cfs {
            for &tri in &variants {
                for &t in &threads {
                    let keep = if tri { Keep::triangle(cf) } else { Keep::Grid };
                    let mut plan = BlockTransform::dct(s, s, block, cf, keep, t).unwrap();
                    if let Some(isa) = isa {
                        plan.set_isa(isa).unwrap();
                    }
                    let mut tuning = plan.tuning();
                    if let Some(v) = arg("--chunk") {
                        tuning.chunk = v.parse().expect("--chunk N");
                    }
                    if let Some(v) = arg("--read-ahead-max-w") {
                        tuning.read_ahead_max_w = v.parse().expect("--read-ahead-max-w N");
                    }
                    if let Some(v) = arg("--write-ahead-bytes") {
                        tuning.write_ahead_bytes = v.parse().expect("--write-ahead-bytes N");
                    }
                    if let Some(v) = arg("--read-ahead-bytes") {
                        tuning.read_ahead_bytes = v.parse().expect("--read-ahead-bytes N");
                    }
                    if let Some(v) = arg("--symmetry") {
                        tuning.symmetry = v != "0";
                    }
                    if let Some(v) = arg("--stream") {
                        tuning.stream = v != "0";
                    }
                    plan.set_tuning(tuning);
                    let m = planes * plan.plane_coeffs();
                    let mut y = vec![1.0f32; m];
                    let mut q = vec![1i8; m];
                    let mut q16 = vec![1i16; m];
                    plan.compress(&x, planes, &mut y).unwrap();
                    plan.compress_codes(&x, planes, &mut q).unwrap();
                    plan.compress_codes(&x, planes, &mut q16).unwrap();
                    for op in &ops {
                        let secs = match op.as_str() {
                            "c" => median_time(runs, || plan.compress(&x, planes, &mut y).unwrap()),
                            "d" => {
                                median_time(runs, || plan.decompress(&y, planes, &mut xo).unwrap())
                            }
                            "ci8" => median_time(runs, || {
                                plan.compress_codes(&x, planes, &mut q).unwrap();
                            }),
                            "di8" => median_time(runs, || {
                                plan.decompress_codes(&q, planes, &mut xo).unwrap()
                            }),
                            "ci16" => median_time(runs, || {
                                plan.compress_codes(&x, planes, &mut q16).unwrap();
                            }),
                            "cu8i16" => median_time(runs, || {
                                plan.compress_codes(&x8, planes, &mut q16).unwrap();
                            }),
                            "di16" => median_time(runs, || {
                                plan.decompress_codes(&q16, planes, &mut xo).unwrap();
                            }),
                            "dci16" => median_time(runs, || {
                                plan.decompress_compare(&q16, planes, &mut xo, &x).unwrap();
                            }),
                            "dci16u8" => median_time(runs, || {
                                plan.decompress_compare(&q16, planes, &mut xo, &x8).unwrap();
                            }),
                            _ => panic!("unknown op {op}"),
                        };
                        let v = if tri { "tri" } else { "chop" };
                        rows.push((cf, v, t, op.clone(), secs));
                    }
                }
            }
        }
        copy_t.push(copy(&mut xo));
        copy_t.sort_by(f64::total_cmp);
        let ct = (copy_t[0] + copy_t[1]) / 2.0;
        let copy_gbs = bytes / ct / 1e9;
        println!(
            "| {s}² | {planes} | {:.1} | – | – | 1 | memcpy | {:.2} | {copy_gbs:.2} | {:.3} | 1.00 |",
            bytes / 1e6,
            ct * 1e3,
            ct * 1e9 / px
        );
        for (cf, v, t, op, secs) in rows {
            let gbs = bytes / secs / 1e9;
            println!(
                "| {s}² | {planes} | {:.1} | {cf} | {v} | {t} | {op} | {:.2} | {gbs:.2} | {:.3} | {:.2} |",
                bytes / 1e6,
                secs * 1e3,
                secs * 1e9 / px,
                gbs / copy_gbs
            );
        }
    }
    println!("# loadavg at end: {}", loadavg());
}
