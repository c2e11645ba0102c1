//! The `dctchop` binary as a user types it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn dctchop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dctchop"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dctchop-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn export_as_documented_then_refuse_to_clobber_then_force() {
    let dir = tmpdir("export");
    let d = dir.to_str().unwrap();
    let o = dctchop(&["export", "--cf", "4", "--res", "256", "-o", d]);
    assert!(o.status.success(), "{}", text(&o));
    let stem = "chop-cf4-b8-n1x3x256x256-tile16-s1-f32";
    for ext in ["compress.onnx", "decompress.onnx", "json"] {
        assert!(dir.join(format!("{stem}.{ext}")).is_file(), "{ext}");
    }
    assert!(text(&o).contains("ratio 4.0000"), "{}", text(&o));
    let before = std::fs::read(dir.join(format!("{stem}.compress.onnx"))).unwrap();
    let o = dctchop(&["export", "--cf", "4", "--res", "256", "-o", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("already exists") && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    assert_eq!(
        before,
        std::fs::read(dir.join(format!("{stem}.compress.onnx"))).unwrap()
    );
    let o = dctchop(&["export", "--cf", "4", "--res", "256", "-o", d, "--force"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = dctchop(&[
        "inspect",
        dir.join(format!("{stem}.compress.onnx")).to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("MatMul") && t.contains("[1, 3, 128, 128]") && t.contains("chop-blockgrid-v1"),
        "{t}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_option_and_rectangular_sizes() {
    let dir = tmpdir("options");
    let d = dir.to_str().unwrap();
    let o = dctchop(&[
        "export",
        "--cf",
        "3",
        "--res",
        "344x403",
        "--channels",
        "1",
        "--batch",
        "4",
        "--block",
        "8",
        "--variant",
        "triangle",
        "--tile",
        "16",
        "--dtype",
        "f16",
        "--opset",
        "17",
        "-o",
        d,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["compressed_shape"],
        serde_json::json!([4, 1, 43 * 51 * 6])
    );
    assert_eq!(v["opset"], 17);
    let o = dctchop(&[
        "export",
        "--cf",
        "2",
        "--res",
        "256",
        "--serialize",
        "2",
        "--tile",
        "full",
        "-o",
        d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("128x128 chunk"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tmpdir("bad");
    let d = dir.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["export", "--cf", "9", "--res", "64"],
            "cf = 9: allowed is 1..=8",
        ),
        (
            vec!["export", "--cf", "4", "--res", "64", "--block", "12"],
            "block = 12",
        ),
        (
            vec!["export", "--cf", "4", "--res", "64", "--tile", "12"],
            "tile = 12",
        ),
        (
            vec!["export", "--cf", "4", "--res", "300", "--serialize", "4"],
            "serialize = 4",
        ),
        (vec!["export", "--cf", "4", "--res", "0x5"], "invalid --res"),
        (
            vec!["export", "--cf", "4", "--res", "64", "--variant", "zigzag"],
            "unknown variant",
        ),
        (
            vec!["export", "--cf", "4", "--res", "64", "--opset", "9"],
            "opset = 9",
        ),
        (
            vec!["export", "--cf", "4", "--res", "16384", "--tile", "full"],
            "--tile auto",
        ),
        (
            vec!["compress", "data/images/chelsea.png", "--quant", "0"],
            "allowed are none, auto or a step > 0",
        ),
        (
            vec!["compress", "data/images/chelsea.png", "--quant", "fine"],
            "allowed are none, auto or a step > 0",
        ),
        (
            vec![
                "compress",
                "data/images/chelsea.png",
                "--target-ratio",
                "10",
                "--max-error",
                "2",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "compress",
                "data/images/chelsea.png",
                "--store",
                "f16",
                "--quant",
                "auto",
            ],
            "--quant none",
        ),
        (
            vec![
                "compress",
                "data/images/chelsea.png",
                "--quant",
                "none",
                "--code",
                "i8",
            ],
            "--code",
        ),
        (
            vec!["compress", "data/images/chelsea.png", "--zstd-level", "23"],
            "zstd-level = 23",
        ),
        (
            vec![
                "compress",
                "data/images/chelsea.png",
                "--quant",
                "none",
                "--mix",
                "opponent",
            ],
            "invalid --mix with --quant none",
        ),
        (
            vec!["decompress", "data/images/chelsea.png", "--dtype", "int4"],
            "unknown output dtype 'int4': allowed are float32, original",
        ),
        (
            vec!["compress", "data/images/chelsea.png", "--mix", "ycbcr"],
            "unknown channel transform 'ycbcr': allowed are auto, none, opponent",
        ),
        (
            vec!["export", "--cf", "4", "--res", "64", "--mix", "opponent"],
            "--quant",
        ),
        (
            vec![
                "export",
                "--cf",
                "4",
                "--res",
                "64",
                "--channels",
                "1",
                "--quant",
                "2",
                "--mix",
                "opponent",
            ],
            "needs 3 channels",
        ),
        (
            vec![
                "compress",
                "data/images/chelsea.png",
                "--entropy",
                "none",
                "--zstd-level",
                "3",
            ],
            "--zstd-level",
        ),
        (
            vec!["compress", "data/images/chelsea.png", "--target-psnr=-3"],
            "target-psnr = -3",
        ),
        (
            vec![
                "compress",
                "data/images/chelsea.png",
                "--target-ratio",
                "0.5",
            ],
            "target-ratio = 0.5",
        ),
        (
            vec![
                "compress",
                "data/images/chelsea.png",
                "--target-ratio",
                "10",
                "--quant",
                "2",
            ],
            "--quant 2",
        ),
    ];
    for (mut args, want) in cases {
        args.extend(["-o", d]);
        let o = dctchop(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    // Nothing was written by any failing export.
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().count() == 0);
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let o = dctchop(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("junk.onnx") && !text(&o).contains("panicked"),
        "{}",
        text(&o)
    );
    let o = dctchop(&["inspect", dir.join("missing.onnx").to_str().unwrap()]);
    assert!(text(&o).contains("missing.onnx"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- `dctchop run` and the ONNX Runtime engine -------------------------------------------------

use crate::common;

/// The binary with a modified environment and working directory.
#[cfg(feature = "ort")]
fn dctchop_in(
    args: &[&str],
    cwd: &std::path::Path,
    env: &[(&str, &str)],
    unset: &[&str],
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dctchop"));
    c.args(args).current_dir(cwd);
    for k in unset {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("binary runs")
}

/// Export a small graph pair (chop CF 4, batch 2, 40x60: the width is padded to 64) and write an
/// f32 input .npy for it. Returns (dir, compress graph, decompress graph, input).
fn graph_and_input(tag: &str, dtype: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let d = dir.to_str().unwrap();
    let o = dctchop(&[
        "export", "--cf", "4", "--res", "40x60", "--batch", "2", "--dtype", dtype, "-o", d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let find = |suffix: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap()
    };
    let (c, dc) = (find(".compress.onnx"), find(".decompress.onnx"));
    let x = common::image(2, 3, 40, 60, 9).into_dyn();
    let input = dir.join("x.npy");
    dctchop::npy::write_npy(&input, x.view(), dctchop::Dtype::F32, true).unwrap();
    (dir, c, dc, input)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn run_round_trip_with_both_engines() {
    let (dir, c, dc, input) = graph_and_input("run", "f32");
    let ort = common::ort_ready();
    let engines: &[&str] = if ort { &["tract", "ort"] } else { &["tract"] };
    let mut coeffs = Vec::new();
    let mut images = Vec::new();
    for engine in engines {
        let y = dir.join(format!("y-{engine}.npy"));
        let o = dctchop(&[
            "run",
            s(&c),
            "--input",
            s(&input),
            "-o",
            s(&y),
            "--engine",
            engine,
            "--repeat",
            "3",
        ]);
        assert!(o.status.success(), "{engine}: {}", text(&o));
        assert!(
            text(&o).contains("GB/s") && text(&o).contains("median of 3 runs"),
            "{}",
            text(&o)
        );
        assert!(!text(&o).contains("converted"), "{}", text(&o));
        let back = dir.join(format!("back-{engine}.npy"));
        let o = dctchop(&[
            "run",
            s(&dc),
            "--input",
            s(&y),
            "-o",
            s(&back),
            "--engine",
            engine,
            "--threads",
            "1",
        ]);
        assert!(o.status.success(), "{engine}: {}", text(&o));
        coeffs.push(dctchop::npy::read_npy_f32(&y).unwrap());
        images.push(dctchop::npy::read_npy_f32(&back).unwrap());
    }
    // The CLI equals the library.
    let spec = dctchop::Spec::new(40, 60, 4).with_batch(2);
    let mut codec = dctchop::Codec::new(&spec, &dctchop::EngineOptions::default()).unwrap();
    let x = common::image(2, 3, 40, 60, 9);
    let y = codec.compress(x.view()).unwrap();
    let back = codec.decompress(y.view()).unwrap().into_dyn();
    for ((yc, ty), (bc, tb)) in coeffs.iter().zip(&images) {
        assert_eq!((ty.as_str(), tb.as_str()), ("<f4", "<f4"));
        assert_eq!(yc.shape(), &[2, 3, 20, 32]);
        assert!(common::rel_err(yc, &y) <= 1e-5);
        assert!(common::rel_err(bc, &back) <= 1e-5);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_f16_graph_converts_input_and_writes_f16() {
    let (dir, c, _, input) = graph_and_input("run16", "f16");
    let engines: &[&str] = if common::ort_ready() {
        &["tract", "ort"]
    } else {
        &["tract"]
    };
    let mut outs = Vec::new();
    for engine in engines {
        let y = dir.join(format!("y-{engine}.npy"));
        let o = dctchop(&[
            "run",
            s(&c),
            "--input",
            s(&input),
            "-o",
            s(&y),
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("converted") && text(&o).contains("float32 to float16"),
            "{}",
            text(&o)
        );
        let (a, ty) = dctchop::npy::read_npy_f32(&y).unwrap();
        assert_eq!(ty, "<f2");
        outs.push(a);
    }
    if let [a, b] = &outs[..] {
        assert!(common::rel_err(b, a) <= 3e-3);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_wrong_shape_names_the_file_and_both_shapes() {
    let (dir, c, _, _) = graph_and_input("runshape", "f32");
    let bad = dir.join("bad.npy");
    let x = common::image(2, 3, 40, 61, 1).into_dyn();
    dctchop::npy::write_npy(&bad, x.view(), dctchop::Dtype::F32, true).unwrap();
    let y = dir.join("y.npy");
    let o = dctchop(&["run", s(&c), "--input", s(&bad), "-o", s(&y)]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("bad.npy") && t.contains("[2, 3, 40, 60]") && t.contains("[2, 3, 40, 61]"),
        "{t}"
    );
    assert!(!y.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_never_clobbers_without_force() {
    let (dir, c, _, input) = graph_and_input("runforce", "f32");
    let y = dir.join("y.npy");
    std::fs::write(&y, b"precious").unwrap();
    let o = dctchop(&["run", s(&c), "--input", s(&input), "-o", s(&y)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("already exists") && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(&y).unwrap(), b"precious");
    let o = dctchop(&["run", s(&c), "--input", s(&input), "-o", s(&y), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        dctchop::npy::read_npy_f32(&y).unwrap().0.shape(),
        &[2, 3, 20, 32]
    );
    // The reference engine needs a plan, not a graph file.
    let o = dctchop(&[
        "run",
        s(&c),
        "--input",
        s(&input),
        "-o",
        s(&y),
        "--force",
        "--engine",
        "reference",
    ]);
    assert!(
        text(&o).contains("reference engine") && text(&o).contains("tract or ort"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_devices_never_fall_back_silently() {
    let (dir, c, _, input) = graph_and_input("runcuda", "f32");
    let y = dir.join("y.npy");
    let o = dctchop(&[
        "run",
        s(&c),
        "--input",
        s(&input),
        "-o",
        s(&y),
        "--engine",
        "tract",
        "--device",
        "cuda",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("tract engine: runs on the CPU only"),
        "{}",
        text(&o)
    );
    // The native engine runs plans on the CPU; it neither runs ONNX files nor CUDA.
    for (engine, device, needle) in [
        (
            "native",
            "cpu",
            "native engine: it runs a dctchop plan, not ONNX bytes",
        ),
        ("native", "cuda", "native engine: runs on the CPU only"),
    ] {
        let o = dctchop(&[
            "run",
            s(&c),
            "--input",
            s(&input),
            "-o",
            s(&y),
            "--engine",
            engine,
            "--device",
            device,
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(needle), "{}", text(&o));
        assert!(!y.exists(), "nothing written on error");
    }
    if common::ort_ready() {
        let o = dctchop(&[
            "run",
            s(&c),
            "--input",
            s(&input),
            "-o",
            s(&y),
            "--engine",
            "ort",
            "--device",
            "cuda:0",
        ]);
        if o.status.success() {
            eprintln!(
                "this ONNX Runtime has a working CUDA provider: {}",
                text(&o)
            );
            std::fs::remove_file(&y).unwrap();
        } else {
            let t = text(&o);
            assert!(
                t.contains("no CUDA execution provider") && t.contains("onnxruntime-gpu"),
                "{t}"
            );
            assert!(!y.exists(), "nothing written on error");
        }
        // The default engine on a CUDA device is ONNX Runtime: the same answer.
        let o = dctchop(&[
            "run",
            s(&c),
            "--input",
            s(&input),
            "-o",
            s(&y),
            "--device",
            "cuda",
        ]);
        let t = text(&o);
        assert!(
            o.status.success() || t.contains("no CUDA execution provider"),
            "{t}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A subprocess each, so the process-wide ONNX Runtime state of one case cannot leak into another.
#[cfg(feature = "ort")]
#[test]
fn ort_library_lookup_errors() {
    let (dir, c, _, input) = graph_and_input("runlookup", "f32");
    let y = dir.join("y.npy");
    let args = [
        "run",
        s(&c),
        "--input",
        s(&input),
        "-o",
        s(&y),
        "--engine",
        "ort",
    ];

    // ORT_DYLIB_PATH that does not exist: named, never silently replaced by another library.
    let missing = dir.join("nowhere/libonnxruntime.so.1.31.1");
    let o = dctchop_in(&args, &dir, &[("ORT_DYLIB_PATH", s(&missing))], &[]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains(s(&missing)) && t.contains("no such file"), "{t}");
    assert!(t.contains("python/setup_venv.sh"), "{t}");

    // A file that is not ONNX Runtime.
    let o = dctchop_in(&args, &dir, &[("ORT_DYLIB_PATH", s(&c))], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(s(&c)) && !text(&o).contains("panicked"),
        "{}",
        text(&o)
    );

    // Nothing anywhere: a copy of the binary outside the repository (a hard link; skipped when
    // the temp dir is on another file system), no venv, no python3 on PATH.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("dctchop");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_dctchop"), &exe).is_ok() {
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let o = Command::new(&exe)
            .args(args)
            .current_dir(&dir)
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("DCTCHOP_VENV")
            .env("PATH", &empty)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let t = text(&o);
        for want in [
            "ORT_DYLIB_PATH: not set",
            "DCTCHOP_VENV: not set",
            &format!("{}: no such venv", dir.join(".venv").display()),
            "python3",
            "fix: python/setup_venv.sh && export ORT_DYLIB_PATH=$(python/ort_dylib_path.sh)",
        ] {
            assert!(t.contains(want), "missing {want:?} in: {t}");
        }
    } else {
        eprintln!(
            "skipping the not-found case: cannot hard-link the binary into {}",
            bin.display()
        );
    }
    assert!(!y.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn target_profiles_set_defaults_record_estimates_and_warn() {
    let dir = tmpdir("target");
    let d = dir.to_str().unwrap();
    // SN30: a 512x512 f32 channel (1 MiB) does not fit a 0.5 MB PMU, so serialize becomes 2.
    let o = dctchop(&[
        "export", "--cf", "4", "--res", "512", "--batch", "100", "--target", "sn30", "-o", d,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["spec"]["serialize"], 2, "{rep}");
    assert_eq!(rep["target"]["target"], "sn30", "{rep}");
    let g = &rep["target"]["compress"];
    assert!(g["largest_constant_bytes"].as_u64().unwrap() > 0, "{rep}");
    assert!(g["largest_tensor_bytes"].as_u64().unwrap() > 0, "{rep}");
    assert_eq!(rep["target"]["warnings"], serde_json::json!([]), "{rep}");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("warning"),
        "{}",
        text(&o)
    );
    // An explicit flag wins over the profile and the warning names the flag to change.
    let o = dctchop(&[
        "export",
        "--cf",
        "4",
        "--res",
        "512",
        "--batch",
        "100",
        "--target",
        "sn30",
        "--serialize",
        "1",
        "-o",
        d,
        "--force",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("warning") && text(&o).contains("--serialize"),
        "{}",
        text(&o)
    );
    // Groq at 512x512 x 100: the paper's failure, reported before any hardware is touched.
    let o = dctchop(&[
        "export", "--cf", "4", "--res", "512", "--batch", "100", "--target", "groq", "-o", d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("on chip"), "{}", text(&o));
    // IPU: triangle and f16 by default.
    let o = dctchop(&[
        "export", "--cf", "4", "--res", "64", "--target", "ipu", "-o", d, "--json",
    ]);
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["spec"]["variant"], "triangle", "{rep}");
    assert_eq!(rep["spec"]["dtype"], "f16", "{rep}");
    let o = dctchop(&[
        "export", "--cf", "4", "--res", "64", "--target", "tpu", "-o", d,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("allowed are cpu, cuda"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_json_and_csv_report_every_configuration_with_baselines() {
    let dir = tmpdir("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("r.csv");
    let args = [
        "bench",
        "--res",
        "32,24x40",
        "--cf",
        "4",
        "--batch",
        "2",
        "--channels",
        "1",
        "--form",
        "full,8,auto",
        "--budget",
        "0.001",
        "--json",
        "--csv",
        s(&csv),
    ];
    let o = dctchop(&args);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "2 resolutions x 3 forms");
    for p in &lines {
        for k in [
            "engine",
            "form",
            "variant",
            "res",
            "cf",
            "batch",
            "channels",
            "compress_gbps",
            "decompress_gbps",
            "memcpy_gbps",
            "memcpy_threads_gbps",
        ] {
            assert!(!p[k].is_null(), "{k} missing in {p}");
        }
        assert!(p["memcpy_threads_gbps"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["compress_gbps"].as_f64().unwrap() > 0.0, "{p}");
        // The dense form was measured beside every point: its ratio is filled in, and 1 for itself.
        let r = p["compress_vs_dense"].as_f64().unwrap();
        if p["form"] == "full" {
            assert_eq!(r, 1.0);
        }
        // Throughput is bytes / time: recompute it from the reported fields.
        let gbps = p["bytes"].as_f64().unwrap() / p["compress_s"].as_f64().unwrap() / 1e9;
        assert!((gbps / p["compress_gbps"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    }
    assert_eq!(lines[3]["res"], "24x40");
    let table = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 7, "{table}");
    let cols = rows[0].split(',').count();
    assert!(rows.iter().all(|r| r.split(',').count() == cols), "{table}");
    // An existing CSV is kept unless --force.
    let o = dctchop(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), table);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- quantized graphs ----------------------------------------------------------------------------

/// Export a quantized pair (triangle CF 4, batch 2, 40x60 padded to 40x64) with `extra` flags and
/// write an f32 input for it. Returns (dir, compress graph, decompress graph, input).
fn quant_pair(tag: &str, extra: &[&str]) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "export",
        "--cf",
        "4",
        "--res",
        "40x60",
        "--batch",
        "2",
        "--variant",
        "triangle",
        "-o",
        d,
    ];
    args.extend(extra);
    let o = dctchop(&args);
    assert!(o.status.success(), "{}", text(&o));
    let find = |suffix: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap()
    };
    let (c, dc) = (find(".compress.onnx"), find(".decompress.onnx"));
    let x = common::image(2, 3, 40, 60, 9).into_dyn();
    let input = dir.join("x.npy");
    dctchop::npy::write_npy(&input, x.view(), dctchop::Dtype::F32, true).unwrap();
    (dir, c, dc, input)
}

/// Exit status 1 and exactly one line on stderr that contains every `want`.
fn one_line_error(o: &Output, want: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for w in want {
        assert!(err.contains(w), "{err} lacks {w}");
    }
}

#[test]
fn quantized_export_inspect_and_run_round_trip() {
    let (dir, c, dc, input) = quant_pair("quant", &["--quant", "16", "--code", "i8"]);
    let stem = "triangle-cf4-b8-n2x3x40x60-tile8x16-s1-f32-q8s16";
    assert_eq!(
        c.file_name().unwrap().to_str().unwrap(),
        format!("{stem}.compress.onnx")
    );
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{stem}.json"))).unwrap()).unwrap();
    assert_eq!(
        side["spec"]["quant"],
        serde_json::json!({"code": "i8", "step": 16.0})
    );
    assert_eq!(side["graphs"]["decompress"]["input"]["dtype"], "i8");
    assert_eq!(side["graphs"]["compress"]["input"]["dtype"], "f32");
    assert_eq!(side["graphs"]["decompress"]["ops"]["Cast"], 1);

    let o = dctchop(&["inspect", s(&dc)]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("quant:       int8 codes, step 16 (uniform)")
            && t.contains("Castx1")
            && t.contains("input:       y int8"),
        "{t}"
    );
    let o = dctchop(&["inspect", s(&c), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["quant"]["step"], 16.0);
    assert!(v["ops"].get("Cast").is_none());

    // compress -> codes -> decompress, on every engine, equals the library.
    let spec = dctchop::Spec::new(40, 60, 4)
        .with_batch(2)
        .with_variant(dctchop::Variant::Triangle)
        .with_quant(dctchop::Quant::uniform(dctchop::CodeType::I8, 16.0));
    // tract: the engine `run` uses for graph files, so the codes must be identical.
    let mut codec = dctchop::Codec::new(&spec, &dctchop::EngineOptions::tract()).unwrap();
    let x = common::image(2, 3, 40, 60, 9);
    let (want_codes, _) = codec.compress_codes(x.view()).unwrap();
    let want_back = codec
        .decompress_codes(want_codes.view())
        .unwrap()
        .into_dyn();
    let engines: &[&str] = if common::ort_ready() {
        &["tract", "ort"]
    } else {
        &["tract"]
    };
    for engine in engines {
        let q = dir.join(format!("q-{engine}.npy"));
        let o = dctchop(&[
            "run",
            s(&c),
            "--input",
            s(&input),
            "-o",
            s(&q),
            "--codes",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("int8 codes;"), "{}", text(&o));
        let codes = match dctchop::npy::read_npy(&q).unwrap() {
            dctchop::npy::NpyData::Codes(c) => c,
            other => panic!("{other:?}"),
        };
        if *engine == "tract" {
            assert_eq!(codes, want_codes);
        }
        let back = dir.join(format!("back-{engine}.npy"));
        let o = dctchop(&[
            "run",
            s(&dc),
            "--input",
            s(&q),
            "-o",
            s(&back),
            "--engine",
            engine,
            "--repeat",
            "2",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let (b, ty) = dctchop::npy::read_npy_f32(&back).unwrap();
        assert_eq!(ty, "<f4");
        assert!(common::rel_err(&b, &want_back) <= 1e-5, "{engine}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quantized_export_with_per_frequency_steps() {
    let (dir, _, dc, _) = quant_pair(
        "quantpf",
        &[
            "--quant",
            "2",
            "--quant-rows",
            "1,2,3,4",
            "--quant-cols",
            "1,1,1.5,2",
        ],
    );
    let name = dc.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.contains("-f32-q16s2w"), "{name}");
    let o = dctchop(&["inspect", s(&dc)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(
            "int16 codes, step 2 x rows [1.0, 2.0, 3.0, 4.0] x cols [1.0, 1.0, 1.5, 2.0]"
        ),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quantized_bad_inputs_are_one_line_errors() {
    let dir = tmpdir("quantbad");
    let d = dir.to_str().unwrap();
    let export = |extra: &[&str]| {
        let mut a = vec!["export", "--cf", "4", "--res", "64", "-o", d];
        a.extend(extra);
        dctchop(&a)
    };
    one_line_error(
        &export(&["--quant", "0"]),
        &["invalid quant.step = 0", "> 0"],
    );
    one_line_error(&export(&["--quant", "nan"]), &["invalid quant.step = NaN"]);
    one_line_error(&export(&["--quant=-1.5"]), &["invalid quant.step = -1.5"]);
    one_line_error(
        &export(&["--quant", "1", "--quant-rows", "1,2"]),
        &["invalid quant.rows = 2 multipliers", "cf = 4"],
    );
    one_line_error(
        &export(&["--quant", "1", "--quant-cols", "1,2,0,1"]),
        &["invalid quant.cols = 0", "> 0"],
    );
    let o = export(&["--quant", "1", "--code", "u8"]);
    assert!(!o.status.success() && text(&o).contains("unknown code type 'u8'"));
    let o = export(&["--code", "i8"]);
    assert!(
        !o.status.success() && text(&o).contains("--quant"),
        "{}",
        text(&o)
    );
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().count() == 0);

    let (qdir, c, dc, input) = quant_pair("quantbadrun", &["--quant", "16", "--code", "i8"]);
    let (_, pc, pdc, _) = graph_and_input("quantbadplain", "f32");
    let out = qdir.join("out.npy");
    let shape = [2usize, 3, 5 * 8 * 10];
    // int16 codes to an int8 graph.
    let q16 = qdir.join("q16.npy");
    let codes16 = ndarray::ArrayD::<i16>::zeros(shape.to_vec());
    dctchop::npy::write_npy_codes(&q16, dctchop::CodesView::I16(codes16.view()), true).unwrap();
    let o = dctchop(&["run", s(&dc), "--input", s(&q16), "-o", s(&out)]);
    one_line_error(
        &o,
        &["q16.npy", "dtype int16", "takes int8 codes", "input 'y'"],
    );
    // Floats to a code graph.
    let yf = qdir.join("yf.npy");
    let o = dctchop(&["run", s(&c), "--input", s(&input), "-o", s(&yf)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = dctchop(&["run", s(&dc), "--input", s(&yf), "-o", s(&out)]);
    one_line_error(&o, &["yf.npy", "dtype float32", "takes int8 codes"]);
    // Codes to a float graph (the plain pair's decompress graph takes [2, 3, 20, 32]).
    let q8 = qdir.join("q8.npy");
    let codes8 = ndarray::ArrayD::<i8>::zeros(vec![2, 3, 20, 32]);
    dctchop::npy::write_npy_codes(&q8, dctchop::CodesView::I8(codes8.view()), true).unwrap();
    let o = dctchop(&["run", s(&pdc), "--input", s(&q8), "-o", s(&out)]);
    one_line_error(
        &o,
        &[
            "q8.npy",
            "dtype int8",
            "takes float32",
            "only for quantized",
        ],
    );
    // --codes on an unquantized compress graph.
    let o = dctchop(&[
        "run",
        s(&pc),
        "--input",
        s(&input),
        "-o",
        s(&out),
        "--codes",
    ]);
    one_line_error(&o, &["--codes", "not a quantized compress graph"]);
    // An integer type that is not a code type.
    let i32s = qdir.join("i32.npy");
    let mut bytes = Vec::new();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<i32>::new()
            .default_dtype()
            .shape(&[2, 3, 400])
            .writer(&mut bytes)
            .begin_nd()
            .unwrap();
        w.extend(std::iter::repeat_n(0i32, 2400)).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(&i32s, bytes).unwrap();
    let o = dctchop(&["run", s(&dc), "--input", s(&i32s), "-o", s(&out)]);
    one_line_error(&o, &["i32.npy", "<i4 is not supported", "int8/int16 codes"]);
    assert!(!out.exists());

    // Step metadata that contradicts the graph: dctchop.quant edited to another step; the graph
    // input retyped to int16 while the metadata says int8.
    let model = onnx_export::Model::decode(&std::fs::read(&dc).unwrap()).unwrap();
    let mut m = model.clone();
    for (k, v) in m.metadata.iter_mut() {
        if k == "dctchop.quant" {
            *v = r#"{"code":"i8","step":2.0}"#.into();
        }
    }
    let tampered = qdir.join("tampered.onnx");
    std::fs::write(&tampered, m.encode().unwrap()).unwrap();
    for args in [
        vec!["inspect", s(&tampered)],
        vec!["run", s(&tampered), "--input", s(&q16), "-o", s(&out)],
    ] {
        one_line_error(
            &dctchop(&args),
            &[
                "tampered.onnx",
                "dctchop.quant",
                "step\":2.0",
                "contradicts",
                "16.0",
            ],
        );
    }
    let mut m = model.clone();
    m.graph.inputs[0].dtype = onnx_export::DataType::I16;
    std::fs::write(&tampered, m.encode().unwrap()).unwrap();
    one_line_error(
        &dctchop(&["inspect", s(&tampered)]),
        &["tampered.onnx", "input 'y' is int16", "int8 codes"],
    );
    // A quant in the metadata of a graph whose spec has none.
    let plain = onnx_export::Model::decode(&std::fs::read(&pdc).unwrap()).unwrap();
    let mut m = plain.clone();
    m.metadata
        .push(("dctchop.quant".into(), r#"{"code":"i8","step":1.0}"#.into()));
    std::fs::write(&tampered, m.encode().unwrap()).unwrap();
    one_line_error(
        &dctchop(&["inspect", s(&tampered)]),
        &["tampered.onnx", "contradicts", "(absent)"],
    );
    // A Cast in an unquantized graph is a foreign op.
    let mut m = plain;
    m.graph.nodes.insert(
        0,
        onnx_export::Node::new("c", "Cast", &["y"], &["y_cast"])
            .with_attr(onnx_export::Attribute::int("to", 1)),
    );
    m.graph.nodes[1].inputs[0] = "y_cast".into();
    std::fs::write(&tampered, m.encode().unwrap()).unwrap();
    let o = dctchop(&["inspect", s(&tampered)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("contains ops other than MatMul, Gather, Reshape: Cast"),
        "{}",
        text(&o)
    );
    for d in [dir, qdir] {
        let _ = std::fs::remove_dir_all(d);
    }
}
