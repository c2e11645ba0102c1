//! Shared helpers for the integration tests.
#![allow(dead_code)]

use ndarray::{Array4, ArrayD};

/// Deterministic pseudo-random image batch with smooth structure plus noise, values in [0, 255].
pub fn image(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Array4<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut rnd = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / ((1u64 << 31) as f64)
    };
    Array4::from_shape_fn((n, c, h, w), |(s, ch, i, j)| {
        let smooth = 127.5
            + 60.0 * ((i as f64 * 0.07 + s as f64).sin() * (j as f64 * 0.05 + ch as f64).cos());
        (smooth + 60.0 * (rnd() - 0.5)) as f32
    })
}

/// max |a - b| / max(range(reference), 1e-12)
pub fn rel_err(a: &ArrayD<f32>, reference: &ArrayD<f32>) -> f64 {
    assert_eq!(a.shape(), reference.shape(), "shape mismatch");
    let (lo, hi) = reference
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
    let range = (hi - lo).max(1e-12);
    a.iter()
        .zip(reference.iter())
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .fold(0.0, f64::max)
        / range
}

/// Whether the ONNX Runtime engine can be used here. When it cannot, say why and return false
/// (the caller skips), unless `DCTCHOP_REQUIRE_ORT=1`, which turns that into a test failure.
pub fn ort_ready() -> bool {
    match dctchop::engine::ort_library() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("DCTCHOP_REQUIRE_ORT").as_deref() == Ok("1") {
                panic!("DCTCHOP_REQUIRE_ORT=1 but the ort engine cannot be used: {e}");
            }
            eprintln!(
                "skipping: the ort engine cannot be used here ({e}); \
                 set DCTCHOP_REQUIRE_ORT=1 to make this a failure"
            );
            false
        }
    }
}

/// An empty directory `dctchop-{suite}-{tag}-{pid}` in the system temp dir.
pub fn fresh_dir(suite: &str, tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dctchop-{suite}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run the `dctchop` binary built for this test run.
pub fn dctchop(args: &[&str]) -> std::process::Output {
    dctchop_env(args, &[])
}

/// [`dctchop`] with extra environment variables.
pub fn dctchop_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dctchop"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("binary runs")
}

/// PSNR of `back` against `x` in dB, peak = the data range of `x`, computed in f64 here,
/// independently of the library's metrics.
pub fn psnr<D: ndarray::Dimension>(x: &ndarray::Array<f32, D>, back: &ndarray::ArrayD<f32>) -> f64 {
    assert_eq!(x.shape(), back.shape(), "shape mismatch");
    let (lo, hi) = x.iter().fold((f64::MAX, f64::MIN), |(l, h), &v| {
        (l.min(v as f64), h.max(v as f64))
    });
    let mse = x
        .iter()
        .zip(back.iter())
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum::<f64>()
        / x.len() as f64;
    10.0 * ((hi - lo).powi(2) / mse).log10()
}

/// The PSNR a compress report states equals the one recomputed from the decompressed data, and
/// is above 20 dB.
pub fn assert_reported_psnr<D: ndarray::Dimension>(
    reported: Option<f64>,
    x: &ndarray::Array<f32, D>,
    back: &ndarray::ArrayD<f32>,
) {
    let p = psnr(x, back);
    assert!(
        (p - reported.expect("the report has a PSNR")).abs() < 1e-6,
        "{p} vs {reported:?}"
    );
    assert!(p > 20.0, "{p}");
}

/// Decompress the container `stem` with tract (graph batch 3) to `dir/back.npy` and read it back.
pub fn decompress_to_npy(stem: &std::path::Path, dir: &std::path::Path) -> ArrayD<f32> {
    let out = dir.join("back.npy");
    dctchop::pipeline::decompress(
        stem,
        &out,
        &dctchop::EngineOptions::tract(),
        3,
        false,
        &mut |_, _| {},
    )
    .unwrap();
    dctchop::npy::read_npy_f32(&out).unwrap().0
}

/// The sample images shipped with the repository (`data/images`, see its SOURCES.md). Tests that
/// need them fail, not skip, when they are missing.
pub fn sample_images() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/images");
    assert!(
        p.join("chelsea.png").is_file(),
        "{} is missing the sample images (see data/images/SOURCES.md)",
        p.display()
    );
    p
}
