//! The accuracy harness (`dctchop eval`): metrics against independent references, the stored
//! ratio against the container files, target picking, the CLI on the sample images, bad input.

use crate::common;
use common::dctchop;
use dctchop::container::Store;
use dctchop::eval::{self, Data, EvalOptions, Target};
use dctchop::pipeline::QuantChoice;
use dctchop::{EngineOptions, Variant};
use ndarray::{Array2, Array3, Array4};
use std::path::PathBuf;
use std::process::Output;

fn tmpdir(tag: &str) -> PathBuf {
    common::fresh_dir("evaltest", tag)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Deterministic standard normal numbers (64-bit LCG + Box–Muller).
struct Normal(u64);
impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn next(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A smooth, textured 8-bit-valued test image [n, c, h, w].
fn synthetic(n: usize, c: usize, h: usize, w: usize) -> Array4<f32> {
    Array4::from_shape_fn((n, c, h, w), |(s, k, i, j)| {
        let v = 128.0
            + 60.0 * ((i as f64 * 0.11 + s as f64).sin() * (j as f64 * 0.07 + k as f64).cos())
            + 30.0 * ((i * j) as f64 * 0.013).sin();
        v.round().clamp(0.0, 255.0) as f32
    })
}

fn data(name: &str, x: Array4<f32>, dtype: &str) -> Data {
    let min = x.iter().fold(f64::INFINITY, |a, &b| a.min(b as f64));
    let max = x.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    Data {
        name: name.into(),
        dtype: dctchop::input::SampleType::from_numpy_name(dtype).expect("a sample type"),
        x,
        min,
        max,
    }
}

#[test]
fn identical_data_has_infinite_psnr_and_ssim_one() {
    let x = synthetic(1, 3, 40, 50);
    let s = x.index_axis(ndarray::Axis(0), 0);
    let m = eval::sample_metrics(s, s, 255.0);
    assert_eq!(m.psnr_db, f64::INFINITY);
    assert!((m.ssim - 1.0).abs() < 1e-12, "{}", m.ssim);
    assert_eq!(m.max_abs_error, 0.0);
    assert_eq!(m.nrmse, 0.0);
    // JSON writes the infinite PSNR as null (documented), CSV as "inf".
    let d = data("same", x.clone(), "uint8");
    let o = eval::Outcome {
        method: "identity".into(),
        config: "none".into(),
        variant: None,
        cf: None,
        block: None,
        store: None,
        quant: None,
        param: None,
        matched_to: None,
        coefficient_ratio: None,
        stored_bytes: d.original_bytes(),
        compress_s: 1.0,
        decompress_s: 1.0,
        recon: x,
    };
    let rows = eval::rows_of(&d, &o);
    let json = serde_json::to_value(&rows[0]).unwrap();
    assert!(json["psnr_db"].is_null(), "{json}");
    assert!(eval::to_csv(&rows).contains(",inf,inf,"));
}

#[test]
fn gaussian_noise_gives_the_expected_psnr() {
    // A ramp 0..255 (range 255) plus N(0, sigma^2) noise: PSNR = 20 log10(255 / sigma).
    let (h, w, sigma) = (256, 256, 5.0f64);
    let orig = Array3::from_shape_fn((1, h, w), |(_, i, j)| (i + j) as f32 * 255.0 / 510.0);
    let mut g = Normal(42);
    let noisy = orig.mapv(|v| (v as f64 + sigma * g.next()) as f32);
    let m = eval::sample_metrics(orig.view(), noisy.view(), 255.0);
    let expected = 20.0 * (255.0f64 / sigma).log10();
    assert!(
        (m.psnr_db - expected).abs() < 0.1,
        "{} vs {expected}",
        m.psnr_db
    );
    assert!((m.nrmse - sigma / 255.0).abs() < 0.01 * sigma / 255.0 * 10.0);
}

#[test]
fn ssim_tiny_case_by_hand() {
    // 2x2 image: below 7 pixels a side, one global window. x = [0,1,2,3], y = [0,1,2,4], L = 3:
    // mx = 1.5, my = 1.75, vx = 1.25, vy = 2.1875, cov = 1.625, C1 = 0.0009, C2 = 0.0081.
    let x = Array2::from_shape_vec((2, 2), vec![0f32, 1., 2., 3.]).unwrap();
    let y = Array2::from_shape_vec((2, 2), vec![0f32, 1., 2., 4.]).unwrap();
    let hand = (2.0 * 1.5 * 1.75 + 0.0009) * (2.0 * 1.625 + 0.0081)
        / ((1.5f64 * 1.5 + 1.75 * 1.75 + 0.0009) * (1.25 + 2.1875 + 0.0081));
    let got = eval::ssim_channel(x.view(), y.view(), 3.0);
    assert!((got - hand).abs() < 1e-12, "{got} vs {hand}");
    assert!((hand - 0.934_46).abs() < 1e-4);
}

#[test]
fn ssim_gaussian_window_matches_a_direct_2d_sum() {
    // Independent reference: the 11x11 Gaussian (sigma 1.5) as one 2-D window, summed directly.
    let (h, w) = (19, 23);
    let mut g = Normal(7);
    let x = Array2::from_shape_fn((h, w), |_| (100.0 + 40.0 * g.next()) as f32);
    let y = x.mapv(|v| v + (10.0 * g.next()) as f32);
    let l = 255.0f64;
    let (c1, c2) = ((0.01 * l).powi(2), (0.03 * l).powi(2));
    let mut win = [[0f64; 11]; 11];
    let mut tot = 0.0;
    for (a, row) in win.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            let (da, db) = (a as f64 - 5.0, b as f64 - 5.0);
            *v = (-(da * da + db * db) / (2.0 * 1.5 * 1.5)).exp();
            tot += *v;
        }
    }
    let mut sum = 0.0;
    let mut count = 0.0;
    for i in 0..=h - 11 {
        for j in 0..=w - 11 {
            let (mut mx, mut my, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for a in 0..11 {
                for b in 0..11 {
                    let wt = win[a][b] / tot;
                    let (p, q) = (x[[i + a, j + b]] as f64, y[[i + a, j + b]] as f64);
                    mx += wt * p;
                    my += wt * q;
                    sxx += wt * p * p;
                    syy += wt * q * q;
                    sxy += wt * p * q;
                }
            }
            let (vx, vy, cxy) = (sxx - mx * mx, syy - my * my, sxy - mx * my);
            sum += ((2.0 * mx * my + c1) * (2.0 * cxy + c2))
                / ((mx * mx + my * my + c1) * (vx + vy + c2));
            count += 1.0;
        }
    }
    let want = sum / count;
    let got = eval::ssim_channel(x.view(), y.view(), l);
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    assert!(got < 0.99 && got > 0.0);
}

#[test]
fn stored_ratio_is_original_bytes_over_container_file_size() {
    // The eval row's ratio against a container written by the compress pipeline, sized here.
    let dir = tmpdir("ratio");
    let x = synthetic(3, 3, 30, 45);
    let png = dir.join("a.png");
    let npy = dir.join("a.npy");
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    let _ = png;
    for store in [Store::F32, Store::F16] {
        let sets = eval::datasets(std::slice::from_ref(&npy)).unwrap();
        let d = eval::load(&sets[0].0, &sets[0].1).unwrap();
        let spec = eval::spec_for(&d, 3, 8, Variant::Chop, 8).unwrap();
        let o = eval::run_dctchop(&d, &spec, store, &EngineOptions::tract(), 1).unwrap();
        let row = &eval::rows_of(&d, &o)[0];
        let opts = dctchop::pipeline::CompressOptions {
            cf: 3,
            store,
            quant: dctchop::pipeline::QuantChoice::None,
            force: true,
            ..Default::default()
        };
        let out = dir.join(format!("c-{store}"));
        let rep =
            dctchop::pipeline::compress(std::slice::from_ref(&npy), &out, &opts, &mut |_, _| {})
                .unwrap();
        let file_bytes: u64 = rep
            .shards
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        let original = (3 * 3 * 30 * 45 * 4) as f64;
        assert_eq!(row.original_bytes as f64, original);
        assert_eq!(row.stored_bytes, file_bytes, "{store}");
        assert!((row.ratio - original / file_bytes as f64).abs() < 1e-12);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn target_psnr_picks_the_highest_ratio_that_meets_it() {
    let d = data("synthetic", synthetic(2, 1, 48, 64), "uint8");
    let opts = EvalOptions {
        cfs: (1..=8).collect(),
        variants: vec![Variant::Chop, Variant::Triangle],
        stores: vec![Store::F32, Store::F16],
        repeats: 1,
        baselines: false,
        quants: vec![QuantChoice::None],
        envelope: false,
        ..Default::default()
    };
    let (report, _) = eval::evaluate(std::slice::from_ref(&d), &opts, &mut |_| {}).unwrap();
    let agg: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.sample.is_none() && r.method == "dctchop")
        .collect();
    assert_eq!(agg.len(), 32);
    // Targets between the configurations' worst PSNRs: the pick must be, by brute force, the
    // largest ratio among those whose worst sample meets the target.
    let mut ps: Vec<f64> = agg
        .iter()
        .map(|r| r.psnr_worst_db)
        .filter(|p| p.is_finite())
        .collect();
    ps.sort_by(|a, b| a.total_cmp(b));
    for t in ps.windows(2).map(|w| (w[0] + w[1]) / 2.0) {
        let got = eval::pick(&report.rows, "synthetic", Target::MinPsnr(t)).unwrap();
        let best = agg
            .iter()
            .filter(|r| r.psnr_worst_db >= t)
            .map(|r| r.ratio)
            .fold(0.0, f64::max);
        assert_eq!(got.ratio, best, "target {t}");
        assert!(got.psnr_worst_db >= t);
    }
    assert!(eval::pick(&report.rows, "synthetic", Target::MinPsnr(1e9)).is_none());
    let e = eval::pick(&report.rows, "synthetic", Target::MaxError(1e-3)).unwrap();
    assert!(e.max_abs_error <= 1e-3);
    // Through the options, the summary records the pick.
    let opts = EvalOptions {
        cfs: vec![2, 4, 6],
        variants: vec![Variant::Chop],
        repeats: 1,
        baselines: false,
        target: Some(Target::MinPsnr(ps[ps.len() / 2])),
        ..Default::default()
    };
    let (report, _) = eval::evaluate(std::slice::from_ref(&d), &opts, &mut |_| {}).unwrap();
    let want =
        eval::pick(&report.rows, "synthetic", opts.target.unwrap()).map(|r| r.config.clone());
    assert_eq!(report.datasets[0].pick, want);
}

#[test]
fn cf_lists_parse() {
    // Good lists: each configuration appears in the report.
    let dir = tmpdir("cflist");
    let npy = dir.join("x.npy");
    let x = common::image(1, 1, 16, 16, 3);
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    for (list, want) in [
        ("2..4", vec![2, 3, 4]),
        ("2..=3", vec![2, 3]),
        ("2,5", vec![2, 5]),
        ("6", vec![6]),
    ] {
        let o = dctchop(&[
            "eval",
            npy.to_str().unwrap(),
            "--cf",
            list,
            "--variant",
            "chop",
            "--repeats",
            "1",
            "--no-baselines",
            "--quant",
            "none",
            "--no-envelope",
            "--json",
            "--force",
            "-o",
            dir.join("out").to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut cfs: Vec<u64> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["sample"].is_null())
            .map(|row| row["cf"].as_u64().unwrap())
            .collect();
        cfs.dedup();
        assert_eq!(
            cfs,
            want.iter().map(|&c| c as u64).collect::<Vec<_>>(),
            "{list}"
        );
    }
    for bad in ["", "a", "7..2", "2,,4", "1..x"] {
        let o = dctchop(&["eval", npy.to_str().unwrap(), "--cf", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--cf"), "{bad}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_runs_on_the_sample_images() {
    let images = common::sample_images();
    let dir = tmpdir("cli");
    let out = dir.join("out");
    let o = dctchop(&[
        "eval",
        images.to_str().unwrap(),
        "--cf",
        "2,4",
        "--variant",
        "chop",
        "--repeats",
        "1",
        "--target-psnr",
        "30",
        "--curve-points",
        "4",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("chelsea.png") && t.contains("jpeg") && t.contains("target"),
        "{t}"
    );
    assert!(t.contains("curve points, in results.csv/json"), "{t}");
    // The baselines built in are printed; those left out say why.
    #[allow(unused_mut)]
    let mut methods = vec!["jpeg"];
    #[cfg(feature = "zfp")]
    methods.extend(["zfp-rate", "zfp-accuracy"]);
    #[cfg(not(feature = "zfp"))]
    assert!(t.contains("ZFP skipped: built without"), "{t}");
    #[cfg(feature = "sz3")]
    methods.push("sz3");
    #[cfg(not(feature = "sz3"))]
    assert!(t.contains("SZ3 skipped: built without"), "{t}");
    for m in &methods {
        assert!(t.contains(&format!("\n  {m:<12} ")), "{m}: {t}");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    // 5 images of different sizes: 5 datasets; dctchop and JPEG rows, aggregate and per sample.
    assert_eq!(json["datasets"].as_array().unwrap().len(), 5);
    assert!(csv.lines().count() > 20);
    for d in json["datasets"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        let rows: Vec<_> = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["dataset"] == name && r["sample"].is_null())
            .collect();
        // Float and auto-quantized rows per CF (2 each), plus envelope curve points.
        let dct = |curve: bool| {
            rows.iter()
                .filter(|r| r["method"] == "dctchop" && r["curve"] == curve)
                .count()
        };
        assert_eq!(dct(false), 4);
        assert!(dct(true) >= 1, "envelope points");
        for m in &methods {
            let of = |curve: bool| {
                rows.iter()
                    .filter(|r| r["method"] == *m && r["curve"] == curve)
                    .count()
            };
            assert_eq!(
                of(false),
                4,
                "{m}: one matched row per dctchop configuration"
            );
            assert!(of(true) >= 2, "{m}: curve rows");
        }
        for r in rows
            .iter()
            .filter(|r| r["method"] == "dctchop" || r["method"] == "jpeg")
        {
            if r["curve"] == true {
                continue;
            }
            let p = r["psnr_db"].as_f64().unwrap();
            assert!(p > 20.0 && p < 80.0, "{r}");
        }
    }
    let pngs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .collect();
    assert_eq!(
        pngs.len(),
        15,
        "5 rate-distortion plots (PSNR), 5 (SSIM) and 5 error maps"
    );
    for p in pngs {
        let img = image::open(p.path()).unwrap();
        assert!(img.width() > 100 && img.height() > 100);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tmpdir("bad");
    let x = synthetic(1, 1, 16, 16);
    let npy = dir.join("x.npy");
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    let npy_s = npy.to_str().unwrap();
    let full = dir.join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let missing = dir.join("nope.npy");
    let o1 = dir.join("o1");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "eval",
                missing.to_str().unwrap(),
                "-o",
                o1.to_str().unwrap(),
            ],
            "nope.npy",
        ),
        (
            vec!["eval", npy_s, "--cf", "9", "-o", o1.to_str().unwrap()],
            "invalid cf = 9: allowed is 1..=8",
        ),
        (
            vec!["eval", npy_s, "--cf", "x", "-o", o1.to_str().unwrap()],
            "--cf",
        ),
        (
            vec![
                "eval",
                npy_s,
                "--variant",
                "circle",
                "-o",
                o1.to_str().unwrap(),
            ],
            "circle",
        ),
        (
            vec!["eval", npy_s, "--cf", "2", "-o", full.to_str().unwrap()],
            "--force",
        ),
    ];
    for (args, want) in cases {
        let o = dctchop(&args);
        let t = text(&o);
        assert_eq!(
            o.status.code(),
            Some(if args.contains(&"x") || args.contains(&"circle") {
                2
            } else {
                1
            }),
            "{args:?}: {t}"
        );
        assert!(t.contains(want), "{args:?}: {t}");
        assert!(!t.contains("panicked"), "{t}");
    }
    assert!(!o1.exists(), "no output on error");
    assert_eq!(
        std::fs::read_to_string(full.join("keep.txt")).unwrap(),
        "mine"
    );
    // With --force it writes beside the existing file; float data: JPEG is skipped, said so.
    let o = dctchop(&[
        "eval",
        npy_s,
        "--cf",
        "2",
        "--repeats",
        "1",
        "-o",
        full.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("JPEG skipped: needs 8-bit data, this is float32"));
    assert!(full.join("results.csv").is_file() && full.join("keep.txt").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_downstream_is_retired_and_points_to_the_training_harness() {
    let o = common::dctchop(&["eval", "--downstream"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("retired") && err.contains("downstream/run.py"),
        "{err}"
    );
}

#[cfg(feature = "zfp")]
#[test]
fn zfp_fixed_rate_hits_the_matched_ratio() {
    // f32 data: rate = 32 / ratio bits per value; 48x64 fields are whole 4x4 blocks, so the
    // achieved ratio equals the target exactly.
    let x = synthetic(2, 3, 48, 64).mapv(|v| v / 255.0);
    let d = data("f", x, "float32");
    for ratio in [2.0, 4.0, 8.0] {
        assert_eq!(eval::zfp::rate_for(&d, ratio), 32.0 / ratio);
        let o = eval::zfp::run_zfp(&d, ratio, 1, None).unwrap();
        let row = &eval::rows_of(&d, &o)[0];
        assert!(
            (row.ratio - ratio).abs() / ratio < 0.01,
            "{} vs {ratio}",
            row.ratio
        );
        assert!(
            row.psnr_db.is_finite() && row.psnr_db > 20.0,
            "{}",
            row.psnr_db
        );
    }
    // uint8 data: 8 bits per original value.
    let d8 = data("u", synthetic(1, 1, 16, 16), "uint8");
    assert_eq!(eval::zfp::rate_for(&d8, 2.0), 4.0);
}

#[test]
fn ratio_grid_spans_the_dctchop_rows_and_1_5_to_100() {
    use eval::search::ratio_grid;
    let g = ratio_grid(&[0.33, 5.3], 10);
    assert_eq!(g.len(), 10);
    assert!(
        (g[0] - 0.9 * 0.33).abs() < 1e-12 && (g[9] - 100.0).abs() < 1e-9,
        "{g:?}"
    );
    // Log-spaced: equal steps of ln r.
    let steps: Vec<f64> = g.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    assert!(
        steps.iter().all(|s| (s - steps[0]).abs() < 1e-9),
        "{steps:?}"
    );
    let g = ratio_grid(&[2.0, 150.0], 5);
    assert!(
        (g[0] - 1.5).abs() < 1e-12 && (g[4] - 165.0).abs() < 1e-9,
        "{g:?}"
    );
    assert!(ratio_grid(&[2.0], 0).is_empty());
}

#[test]
fn log_search_and_integer_search_find_the_closest_size() {
    use eval::search::{closest_int, LogSearch, MATCH_TOL};
    // A smooth size curve: bytes = 1e6 / (1 + p) for p in 1e-3..=1e3 (falling).
    let f = |p: f64| (1e6 / (1.0 + p)).round() as u64;
    let mut s = LogSearch::new(1e-3, 1e3);
    let mut calls = 0;
    for want in [9e5, 2e5, 1.2e4, 3e3] {
        let (p, b) = s
            .find(want, MATCH_TOL, &mut |p| {
                calls += 1;
                Ok(f(p))
            })
            .unwrap();
        assert_eq!(b, f(p));
        assert!((b as f64 / want).ln().abs() <= MATCH_TOL, "{want}: {b}");
    }
    // Bisection in ln p over a range of ln(1e6) = 13.8 to 1 %: a handful of probes each, and the
    // later searches reuse the earlier probes.
    assert!(calls <= 40, "{calls} probes");
    // Out of reach: the nearer end of the range.
    let (p, _) = s.find(1e7, MATCH_TOL, &mut |p| Ok(f(p))).unwrap();
    assert!((p - 1e-3).abs() < 1e-12);
    let (p, _) = s.find(10.0, MATCH_TOL, &mut |p| Ok(f(p))).unwrap();
    assert!((p - 1e3).abs() < 1e-9);
    // Integers, growing sizes (JPEG-like) and falling sizes (ZFP-tolerance-like): the closest in
    // log scale by brute force.
    let grow = |q: i64| (100.0 * 1.07f64.powi(q as i32)) as u64;
    let fall = |k: i64| (1e6 / 2f64.powf(k as f64 * 0.7)) as u64;
    for want in [150.0, 999.0, 3e4, 1.0, 1e9] {
        let got = closest_int(1, 100, true, want, &mut |q| Ok(grow(q))).unwrap();
        let best = (1..=100)
            .min_by(|&a, &b| {
                let d = |q: i64| (grow(q) as f64 / want).ln().abs();
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        assert_eq!(got, best, "grow {want}");
        let got = closest_int(-5, 20, false, want, &mut |k| Ok(fall(k))).unwrap();
        let best = (-5..=20)
            .min_by(|&a, &b| {
                let d = |k: i64| (fall(k).max(1) as f64 / want).ln().abs();
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        assert_eq!(got, best, "fall {want}");
    }
}

/// Rows of one method on one dataset: (curve rows, matched rows), aggregates only.
fn rows_by<'a>(rows: &'a [eval::Row], method: &str) -> (Vec<&'a eval::Row>, Vec<&'a eval::Row>) {
    let of = |curve: bool| {
        rows.iter()
            .filter(|r| r.method == method && r.sample.is_none() && r.curve == curve)
            .collect::<Vec<_>>()
    };
    (of(true), of(false))
}

#[test]
fn every_baseline_has_a_monotone_curve_and_matched_rows() {
    // 8-bit-valued RGB data: JPEG runs; ZFP and SZ3 when built in.
    let d = data("synthetic", synthetic(2, 3, 64, 96), "uint8");
    let opts = EvalOptions {
        cfs: vec![2, 4, 6],
        variants: vec![Variant::Chop],
        repeats: 1,
        curve_points: 8,
        quants: vec![QuantChoice::None],
        envelope: false,
        ..Default::default()
    };
    let (report, _) = eval::evaluate(std::slice::from_ref(&d), &opts, &mut |_| {}).unwrap();
    let dct: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.method == "dctchop" && r.sample.is_none())
        .collect();
    assert_eq!(dct.len(), 3);
    assert!(dct.iter().all(|r| !r.curve && r.matched_to.is_none()));
    #[allow(unused_mut)]
    let mut methods = vec!["jpeg"];
    #[cfg(feature = "zfp")]
    methods.extend(["zfp-rate", "zfp-accuracy"]);
    #[cfg(feature = "sz3")]
    methods.push("sz3");
    for m in methods {
        let (mut curve, matched) = rows_by(&report.rows, m);
        // One matched row per dctchop configuration, in order, never flagged as curve.
        assert_eq!(
            matched
                .iter()
                .map(|r| r.matched_to.clone().unwrap())
                .collect::<Vec<_>>(),
            dct.iter().map(|r| r.config.clone()).collect::<Vec<_>>(),
            "{m}"
        );
        // Curve rows: distinct parameters, no matched_to, several of them.
        assert!(curve.iter().all(|r| r.matched_to.is_none()), "{m}");
        let mut params: Vec<f64> = curve.iter().map(|r| r.param.unwrap()).collect();
        params.dedup();
        assert_eq!(params.len(), curve.len(), "{m}");
        // Grid: 8 ratios from 0.4 to 100. JPEG cannot go below its q = 100 ratio nor above its
        // q = 1 ratio, ZFP fixed rate not above 8 / (9/16) = 14.2 on 8-bit data (at least 1 + 8
        // bits per 4x4 block), SZ3 not below ~0.9 (at tight bounds it stores these integer
        // values losslessly) nor far above 25 on fields this small (its ~100-byte header per
        // field), so grid points collapse at the ends; ZFP fixed accuracy has only power-of-two
        // tolerances, so two grid ratios can share one.
        let want = match m {
            "jpeg" => 4,
            _ => 5,
        };
        assert!(
            curve.len() >= want,
            "{m}: {} curve points: {:?}",
            curve.len(),
            curve.iter().map(|r| (r.param, r.ratio)).collect::<Vec<_>>()
        );
        // More bits (lower ratio) never means lower PSNR or SSIM, beyond small noise.
        curve.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
        for w in curve.windows(2) {
            assert!(
                w[1].psnr_db <= w[0].psnr_db + 0.5 && w[1].ssim <= w[0].ssim + 0.005,
                "{m}: {} at ratio {} vs {} at ratio {}",
                w[1].psnr_db,
                w[1].ratio,
                w[0].psnr_db,
                w[0].ratio
            );
        }
        // The curve spans the dctchop rows' ratios (0.44..4 here) where the method can reach
        // them, and beyond.
        let (lo, hi) = (curve[0].ratio, curve[curve.len() - 1].ratio);
        if m != "jpeg" {
            let dmax = dct.iter().map(|r| r.ratio).fold(0.0, f64::max);
            assert!(lo <= 1.0 && hi >= dmax, "{m}: {lo}..{hi}");
            if m != "zfp-rate" {
                assert!(hi >= 20.0, "{m}: {lo}..{hi}");
            }
        }
        // Per-sample rows come with every curve point.
        let samples = report
            .rows
            .iter()
            .filter(|r| r.method == m && r.curve && r.sample.is_some())
            .count();
        assert_eq!(samples, 2 * curve.len(), "{m}");
    }
    // Curve labels: dctchop by variant, block and store; a baseline by method; another family
    // (e.g. a quantized store) is its own curve without a code change.
    assert_eq!(eval::curve_label(dct[0]), "dctchop chop b8 f32");
    let (_, m) = rows_by(&report.rows, "jpeg");
    assert_eq!(eval::curve_label(m[0]), "jpeg");
    let mut q = dct[0].clone();
    q.store = Some("q8".into());
    assert_eq!(eval::curve_label(&q), "dctchop chop b8 q8");
    // CSV: the curve column.
    let csv = eval::to_csv(&report.rows);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains(",matched_to,curve,sample,"));
    assert!(csv
        .lines()
        .any(|l| l.contains(",jpeg,") && l.contains(",true,all,")));
    // Without a grid, matched rows only.
    let opts = EvalOptions {
        curve_points: 0,
        ..opts
    };
    let (report, _) = eval::evaluate(std::slice::from_ref(&d), &opts, &mut |_| {}).unwrap();
    assert!(report.rows.iter().all(|r| !r.curve));
}

/// A smooth float32 field with some noise, values in about -1..1: [n, c, h, w].
#[cfg(any(feature = "zfp", feature = "sz3"))]
fn float_field(n: usize, c: usize, h: usize, w: usize) -> Array4<f32> {
    let mut g = Normal(11);
    Array4::from_shape_fn((n, c, h, w), |(s, k, i, j)| {
        let (y, x) = (i as f64 / h as f64, j as f64 / w as f64);
        ((6.0 * x + s as f64).sin() * (4.0 * y + k as f64).cos() * 0.8 + 0.02 * g.next()) as f32
    })
}

/// Largest |a - b| in f64, computed here (independent of the harness).
#[cfg(any(feature = "zfp", feature = "sz3"))]
fn max_abs_diff(a: ndarray::ArrayView2<'_, f32>, b: ndarray::ArrayView2<'_, f32>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(&p, &q)| (p as f64 - q as f64).abs())
        .fold(0.0, f64::max)
}

#[cfg(feature = "sz3")]
#[test]
fn sz3_round_trip_meets_its_absolute_error_bound() {
    use eval::sz3;
    let x = float_field(1, 2, 150, 200);
    // Slack for the reconstruction's own f32 rounding: one ulp of the largest value (< 1).
    let slack = f32::EPSILON as f64;
    let mut last = u64::MAX;
    for eb in [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5] {
        let mut total = 0u64;
        for k in 0..2 {
            let f = x.slice(ndarray::s![0, k, .., ..]);
            let bytes = sz3::compress_field(f, eb).unwrap();
            total += bytes.len() as u64;
            let back = sz3::decompress_field(&bytes, 150, 200).unwrap();
            let e = max_abs_diff(f, back.view());
            assert!(e <= eb + slack, "eb {eb}: max error {e}");
            // Not trivially exact: the bound is used (SZ3 stores the tightest bound losslessly).
            if eb >= 1e-3 {
                assert!(e > 0.05 * eb, "eb {eb}: max error {e}");
            }
        }
        // Looser bound, fewer bytes.
        assert!(total < last, "eb {eb}: {total} bytes, {last} before");
        last = total;
        // Through the harness: the row reports the same bytes and a max error within the bound.
        let d = data("f", x.clone(), "float32");
        let o = sz3::run(&d, eb, 1).unwrap();
        assert_eq!(o.stored_bytes, total);
        assert_eq!(sz3::stored_bytes(&d, eb).unwrap(), total);
        let row = &eval::rows_of(&d, &o)[0];
        assert!(row.max_abs_error <= eb + slack && row.param == Some(eb));
    }
    // Shapes SZ3 takes as 1-D (a side of 1) round-trip too.
    let line = float_field(1, 1, 1, 300);
    let f = line.slice(ndarray::s![0, 0, .., ..]);
    let back = sz3::decompress_field(&sz3::compress_field(f, 1e-3).unwrap(), 1, 300).unwrap();
    assert!(max_abs_diff(f, back.view()) <= 1e-3 + slack);
}

#[cfg(feature = "sz3")]
#[test]
fn sz3_bound_search_hits_the_requested_ratio() {
    use eval::search::MATCH_TOL;
    use eval::sz3;
    // float32 data, 2 samples x 2 channels of 150x200 (480 KB): SZ3's size moves by a few
    // bytes per small step of the bound, so the bisection can always stop within its 1 %
    // tolerance; the ratio reported is then the real one of that bound.
    let d = data("f", float_field(2, 2, 150, 200), "float32");
    let mut s = sz3::Sz3::new(&d);
    for target in [3.0, 8.0, 20.0, 60.0] {
        let (eb, bytes) = s.bound_for(target, MATCH_TOL).unwrap();
        let achieved = d.original_bytes() as f64 / bytes as f64;
        assert!(
            (achieved / target).ln().abs() <= MATCH_TOL,
            "target {target}: ratio {achieved} at eb {eb}"
        );
        let o = sz3::run(&d, eb, 1).unwrap();
        assert_eq!(o.stored_bytes, bytes, "the search measured the real size");
        let row = &eval::rows_of(&d, &o)[0];
        assert!((row.ratio - achieved).abs() < 1e-12);
        assert!(row.max_abs_error <= eb + f32::EPSILON as f64);
    }
    assert!(s.probes().len() < 60, "{} probes", s.probes().len());
}

#[cfg(feature = "zfp")]
#[test]
fn zfp_fixed_accuracy_meets_its_tolerance_and_matches_the_ratio() {
    use eval::zfp::{self, Mode};
    let x = float_field(1, 2, 96, 128);
    let mut last = u64::MAX;
    for k in [-16, -12, -8, -4, -1] {
        let tol = (k as f64).exp2();
        let mut total = 0u64;
        for c in 0..2 {
            let f = x.slice(ndarray::s![0, c, .., ..]);
            let bytes = zfp::compress_field(f, Mode::Accuracy(tol)).unwrap();
            total += bytes.len() as u64;
            let back = zfp::decompress_field(&bytes, 96, 128, Mode::Accuracy(tol)).unwrap();
            let e = max_abs_diff(f, back.view());
            assert!(e <= tol, "tol 2^{k}: max error {e}");
        }
        assert!(total < last, "tol 2^{k}: {total} bytes");
        last = total;
    }
    // The search: the tolerance is a power of two, and its ratio is the closest (in log scale)
    // of its neighbours', measured here independently.
    let d = data("f", x, "float32");
    let mut b = zfp::FixedAccuracy::new(&d);
    let ob = d.original_bytes() as f64;
    for target in [2.0, 5.0, 12.0, 30.0] {
        let tol = b.tolerance_for(target).unwrap();
        let k = tol.log2();
        assert_eq!(k, k.round(), "{tol}");
        let miss = |t: f64| {
            let r = ob / zfp::stored_bytes(&d, Mode::Accuracy(t)).unwrap() as f64;
            (r / target).ln().abs()
        };
        let m = miss(tol);
        assert!(
            m <= miss(tol * 2.0) && m <= miss(tol / 2.0),
            "target {target}: tol {tol}"
        );
        // One bit plane apart, neighbouring ratios differ by well under 2x here.
        assert!(m < 0.35, "target {target}: miss {m}");
        let o = zfp::run_mode(&d, Mode::Accuracy(tol), 1).unwrap();
        let row = &eval::rows_of(&d, &o)[0];
        assert!(row.max_abs_error <= tol && row.method == "zfp-accuracy");
    }
}

#[test]
fn quantized_rows_and_the_envelope_curve() {
    let d = data("q", synthetic(2, 3, 64, 96), "uint8");
    let opts = EvalOptions {
        cfs: vec![2, 4],
        variants: vec![Variant::Chop, Variant::Triangle],
        baselines: false,
        curve_points: 4,
        repeats: 1,
        ..Default::default()
    };
    let (report, _) = eval::evaluate(std::slice::from_ref(&d), &opts, &mut |_| {}).unwrap();
    let agg = |r: &&eval::Row| r.sample.is_none();
    for variant in ["chop", "triangle"] {
        for cf in [2, 4] {
            let of = |q: Option<&str>| {
                report
                    .rows
                    .iter()
                    .filter(agg)
                    .find(|r| {
                        r.variant.as_deref() == Some(variant)
                            && r.cf == Some(cf)
                            && r.quant.as_deref() == q
                            && !r.curve
                    })
                    .unwrap_or_else(|| panic!("{variant} cf{cf} {q:?}"))
            };
            let (float, auto) = (of(None), of(Some("auto")));
            // auto: far smaller on disk at most ~0.5 dB below the float coefficients.
            assert!(
                auto.ratio > 4.0 * float.ratio,
                "{variant} cf{cf}: {} vs {}",
                auto.ratio,
                float.ratio
            );
            assert!(float.psnr_db - auto.psnr_db <= 0.5, "{variant} cf{cf}");
            assert!(auto.param.unwrap() > 0.0 && auto.store.is_none());
            assert!(eval::curve_label(auto).ends_with("q-auto"));
        }
    }
    // The envelope: curve rows, one label, ratios that reach at least the grid's targets, and
    // no envelope point worse than a fixed auto configuration at a higher ratio.
    let env: Vec<&eval::Row> = report
        .rows
        .iter()
        .filter(agg)
        .filter(|r| r.quant.as_deref() == Some("envelope"))
        .collect();
    assert!(env.len() >= 2, "{}", env.len());
    assert!(env
        .iter()
        .all(|r| r.curve && eval::curve_label(r) == "dctchop b8 q-envelope"));
    for a in report
        .rows
        .iter()
        .filter(agg)
        .filter(|r| r.quant.as_deref() == Some("auto"))
    {
        for e in &env {
            if a.ratio < e.ratio {
                continue;
            }
            // `a` stores at least as small as the envelope point: it must not be much better.
            assert!(
                e.psnr_db >= a.psnr_db - 0.3,
                "envelope {} ({:.2}x, {:.2} dB) vs {} ({:.2}x, {:.2} dB)",
                e.config,
                e.ratio,
                e.psnr_db,
                a.config,
                a.ratio,
                a.psnr_db
            );
        }
    }
    let csv = eval::to_csv(&report.rows);
    assert!(csv.lines().next().unwrap().contains(",store,quant,param,"));
}
