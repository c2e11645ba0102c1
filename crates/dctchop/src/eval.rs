//! The accuracy harness behind `dctchop eval`: what compression does to the user's data.
//!
//! For every dataset (one input file, or one directory of same-size images) and every
//! configuration (block × variant × CF × store) it compresses the data with the codec, writes a
//! real container into a temporary directory, reads the coefficients back from it, decompresses
//! and measures, per sample and in f64:
//!
//! - the **ratio as stored**: original bytes (in the original dtype) ÷ bytes of the container
//!   files actually written (headers included);
//! - **PSNR** in dB, peak = the dataset's data range (max − min; 1 for constant data);
//!   `+inf` for an exact reconstruction (written `inf` in CSV, `null` in JSON);
//! - **SSIM** (Wang et al. 2004): 11×11 Gaussian window σ = 1.5 (7×7 for images smaller than 11
//!   pixels on a side; one global window below 7), K1 = 0.01, K2 = 0.03, L = data range,
//!   "valid" windows only (no padding), computed per channel and averaged;
//! - **NRMSE** = RMSE ÷ data range, and the **max absolute error**;
//! - compress and decompress **throughput**: original bytes ÷ median time of `repeats` runs.
//!
//! Baselines on the same samples ([`Baseline`]): JPEG (the `image` crate's encoder, 8-bit data
//! with 1 or 3 channels; the quality in 1..=100 whose real byte ratio is closest in log scale),
//! with the `zfp` cargo feature ZFP fixed-rate and fixed-accuracy (see `eval::zfp`), with the
//! `sz3` feature SZ3 in absolute-error-bound mode (see `eval::sz3`). Each is run twice over:
//! **matched** to every dctchop configuration's ratio as stored (`matched_to` = that
//! configuration), and swept over a grid of target ratios ([`search::ratio_grid`]) spanning the
//! dctchop rows and 1.5..100, giving its rate–distortion **curve** (rows with `curve` = true).

use ndarray::{s, Array4, ArrayView2, ArrayView3};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use crate::container::{self, DatasetInfo, Store};
use crate::error::{Error, Result};
use crate::input;
use crate::input::SampleType;
use crate::pipeline::QuantChoice;
use crate::quant::MixChoice;
use crate::spec::Dtype;
use crate::spec::{Spec, Variant};
use crate::{Codec, EngineOptions};

pub mod search;
#[cfg(feature = "sz3")]
pub mod sz3;
#[cfg(feature = "zfp")]
pub mod zfp;

/// A quality target: the highest-ratio dctchop configuration that meets it on every sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Target {
    /// Worst-sample PSNR at least this many dB.
    MinPsnr(f64),
    /// Largest absolute error at most this (in data units).
    MaxError(f64),
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub cfs: Vec<usize>,
    pub variants: Vec<Variant>,
    pub blocks: Vec<usize>,
    /// Float stores apply to `QuantChoice::None`; `Auto` and steps are quantized rows.
    pub stores: Vec<Store>,
    pub quants: Vec<QuantChoice>,
    /// dctchop's own rate–distortion curve: for each ratio of the baselines' grid, the best
    /// quantized configuration (variant, CF, step) that `compress --target-ratio` would choose.
    pub envelope: bool,
    /// The channel transform of quantized rows (auto: chosen on the probe, as `compress` does).
    pub mix: MixChoice,
    pub engine: EngineOptions,
    /// Samples per graph run.
    pub batch: usize,
    /// Timed runs per measurement (the median is reported).
    pub repeats: usize,
    /// JPEG (and ZFP, SZ3 when built in) beside dctchop.
    pub baselines: bool,
    /// Points of each baseline's rate–distortion curve (0: matched points only).
    pub curve_points: usize,
    pub target: Option<Target>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            cfs: (2..=7).collect(),
            variants: vec![Variant::Chop, Variant::Triangle],
            blocks: vec![8],
            stores: vec![Dtype::F32],
            quants: vec![QuantChoice::None, QuantChoice::Auto],
            envelope: true,
            mix: MixChoice::Auto,
            engine: EngineOptions::auto(),
            batch: 8,
            repeats: 3,
            baselines: true,
            curve_points: 10,
            target: None,
        }
    }
}

/// Metrics of one reconstructed sample (f64).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SampleMetrics {
    pub mse: f64,
    /// dB; +inf when exact.
    pub psnr_db: f64,
    pub ssim: f64,
    pub nrmse: f64,
    pub max_abs_error: f64,
}

/// One row of the results: a sample (`sample` = Some) or the aggregate over a dataset's samples
/// (`sample` = None; `*_worst` are the worst sample's values, the others the mean).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub dataset: String,
    /// `dctchop`, `jpeg`, `zfp-rate`, `zfp-accuracy` or `sz3`.
    pub method: String,
    /// e.g. `chop cf4 b8 f32`, `q85`, `rate 8.000`, `tol 0.5000`, `eb 1.234`.
    pub config: String,
    pub variant: Option<String>,
    pub cf: Option<usize>,
    pub block: Option<usize>,
    pub store: Option<String>,
    /// dctchop's quantization: `auto`, `step` or `envelope` (a point of the target-ratio
    /// envelope); None for float coefficients and baselines.
    pub quant: Option<String>,
    /// JPEG quality, ZFP rate (bits per value), ZFP tolerance or SZ3 absolute error bound.
    pub param: Option<f64>,
    /// For baselines: the dctchop configuration whose ratio they were matched to.
    pub matched_to: Option<String>,
    /// A point of a baseline's rate–distortion curve (swept, not matched to a configuration).
    pub curve: bool,
    pub sample: Option<usize>,
    pub samples: usize,
    /// Pixels ÷ kept coefficients (dctchop only, padding counted).
    pub coefficient_ratio: Option<f64>,
    pub original_bytes: u64,
    pub stored_bytes: u64,
    /// original_bytes ÷ stored_bytes (whole dataset, also on per-sample rows).
    pub ratio: f64,
    pub psnr_db: f64,
    pub psnr_worst_db: f64,
    pub ssim: f64,
    pub ssim_worst: f64,
    pub nrmse: f64,
    pub nrmse_worst: f64,
    pub max_abs_error: f64,
    /// MB/s (10^6 bytes) of original data, median of the timed runs.
    pub compress_mb_s: f64,
    pub decompress_mb_s: f64,
}

/// A dataset's summary.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetSummary {
    pub name: String,
    pub shape: [usize; 4],
    pub dtype: SampleType,
    pub value_min: f64,
    pub value_max: f64,
    pub original_bytes: u64,
    /// Why a baseline was not run (e.g. JPEG on float data).
    pub skipped: Vec<String>,
    /// The configuration picked for the target, if one was asked for (None: none meets it).
    pub pick: Option<String>,
}

/// Everything `eval` measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub datasets: Vec<DatasetSummary>,
    pub target: Option<Target>,
    pub rows: Vec<Row>,
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// Peak used for PSNR/SSIM/NRMSE: max − min, or 1 for constant data.
pub fn data_range(min: f64, max: f64) -> f64 {
    if max > min {
        max - min
    } else {
        1.0
    }
}

/// PSNR in dB of a mean squared error at a peak; +inf for mse = 0.
pub fn psnr(mse: f64, range: f64) -> f64 {
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (range * range / mse).log10()
    }
}

fn gaussian(size: usize, sigma: f64) -> Vec<f64> {
    let c = (size as f64 - 1.0) / 2.0;
    let w: Vec<f64> = (0..size)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// "Valid" separable filtering of an H×W f64 image with the 1-D window `w` on both axes.
fn filter_valid(img: &[f64], h: usize, wd: usize, w: &[f64]) -> (Vec<f64>, usize, usize) {
    let k = w.len();
    let (oh, ow) = (h + 1 - k, wd + 1 - k);
    // Tap by tap over whole rows (contiguous, vectorizable): the same sums in the same order of
    // taps as a per-pixel dot product.
    let mut rows = vec![0f64; h * ow];
    for (dst, src) in rows.chunks_exact_mut(ow).zip(img.chunks_exact(wd)) {
        for (t, &wt) in w.iter().enumerate() {
            for (d, &v) in dst.iter_mut().zip(&src[t..t + ow]) {
                *d += wt * v;
            }
        }
    }
    let mut out = vec![0f64; oh * ow];
    for (i, dst) in out.chunks_exact_mut(ow).enumerate() {
        for (t, &wt) in w.iter().enumerate() {
            for (d, &v) in dst.iter_mut().zip(&rows[(i + t) * ow..(i + t + 1) * ow]) {
                *d += wt * v;
            }
        }
    }
    (out, oh, ow)
}

/// SSIM of one channel (Wang et al. 2004): Gaussian window 11×11, σ = 1.5 (7×7 when a side is
/// below 11; a single uniform window over the whole image when a side is below 7), K1 = 0.01,
/// K2 = 0.03, L = `range`; the mean of the SSIM map over the valid windows.
pub fn ssim_channel(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, range: f64) -> f64 {
    let (h, w) = a.dim();
    let c1 = (0.01 * range).powi(2);
    let c2 = (0.03 * range).powi(2);
    let x: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let y: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let side = h.min(w);
    if side < 7 {
        let n = (h * w) as f64;
        let mx = x.iter().sum::<f64>() / n;
        let my = y.iter().sum::<f64>() / n;
        let vx = x.iter().map(|v| (v - mx).powi(2)).sum::<f64>() / n;
        let vy = y.iter().map(|v| (v - my).powi(2)).sum::<f64>() / n;
        let cxy = x
            .iter()
            .zip(&y)
            .map(|(p, q)| (p - mx) * (q - my))
            .sum::<f64>()
            / n;
        return ((2.0 * mx * my + c1) * (2.0 * cxy + c2))
            / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
    let win = gaussian(if side >= 11 { 11 } else { 7 }, 1.5);
    let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
    let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
    let xy: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p * q).collect();
    let (mx, _, _) = filter_valid(&x, h, w, &win);
    let (my, _, _) = filter_valid(&y, h, w, &win);
    let (sxx, _, _) = filter_valid(&xx, h, w, &win);
    let (syy, _, _) = filter_valid(&yy, h, w, &win);
    let (sxy, _, _) = filter_valid(&xy, h, w, &win);
    let n = mx.len() as f64;
    (0..mx.len())
        .map(|i| {
            let (ux, uy) = (mx[i], my[i]);
            let vx = sxx[i] - ux * ux;
            let vy = syy[i] - uy * uy;
            let cxy = sxy[i] - ux * uy;
            ((2.0 * ux * uy + c1) * (2.0 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
        .sum::<f64>()
        / n
}

/// All metrics of one `[C, H, W]` sample against its reconstruction, at a data range.
pub fn sample_metrics(
    orig: ArrayView3<'_, f32>,
    rec: ArrayView3<'_, f32>,
    range: f64,
) -> SampleMetrics {
    let n = orig.len() as f64;
    let (mut sse, mut maxe) = (0f64, 0f64);
    for (&a, &b) in orig.iter().zip(rec.iter()) {
        let d = (a as f64 - b as f64).abs();
        sse += d * d;
        maxe = maxe.max(d);
    }
    let mse = sse / n;
    let ssim = orig
        .outer_iter()
        .zip(rec.outer_iter())
        .map(|(a, b)| ssim_channel(a, b, range))
        .sum::<f64>()
        / orig.shape()[0] as f64;
    SampleMetrics {
        mse,
        psnr_db: psnr(mse, range),
        ssim,
        nrmse: mse.sqrt() / range,
        max_abs_error: maxe,
    }
}

// ---------------------------------------------------------------------------------------------
// Datasets

/// A named dataset fully in memory.
pub struct Data {
    pub name: String,
    pub dtype: SampleType,
    pub x: Array4<f32>,
    pub min: f64,
    pub max: f64,
}

impl Data {
    pub fn original_bytes(&self) -> u64 {
        (self.x.len() * self.dtype.bytes()) as u64
    }
    pub fn range(&self) -> f64 {
        data_range(self.min, self.max)
    }
}

/// Turn the command-line inputs into datasets: each file is one dataset; a directory is one
/// dataset when its images share size, channels and bit depth (the input module's rule), else
/// one dataset per group of images that do (named `DIR[CxHxW dtype]`, or the file when alone).
pub fn datasets(inputs: &[PathBuf]) -> Result<Vec<(String, input::Dataset)>> {
    if inputs.is_empty() {
        return Err(Error::invalid_option(
            "inputs",
            "(none)",
            ".npy files, images or directories of images",
        ));
    }
    let mut out = Vec::new();
    for p in inputs {
        let meta = fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if !meta.is_dir() {
            out.push((
                p.display().to_string(),
                input::open(std::slice::from_ref(p))?,
            ));
            continue;
        }
        if let Ok(ds) = input::open(std::slice::from_ref(p)) {
            out.push((p.display().to_string(), ds));
            continue;
        }
        let mut files: Vec<PathBuf> = fs::read_dir(p)
            .map_err(|e| Error::io(p, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                f.is_file()
                    && f.extension()
                        .map(|e| e.to_string_lossy().to_ascii_lowercase())
                        .is_some_and(|e| input::IMAGE_EXTENSIONS.contains(&e.as_str()))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            // Let the input module give its own error.
            input::open(std::slice::from_ref(p))?;
        }
        let mut groups: BTreeMap<(usize, usize, usize, &'static str), Vec<PathBuf>> =
            BTreeMap::new();
        for f in files {
            let ds = input::open(std::slice::from_ref(&f))?;
            groups
                .entry((ds.channels, ds.height, ds.width, ds.dtype.numpy_name()))
                .or_default()
                .push(f);
        }
        for ((c, h, w, dt), fs_) in groups {
            let name = if fs_.len() == 1 {
                fs_[0].display().to_string()
            } else {
                format!("{}[{c}x{h}x{w} {dt}]", p.display())
            };
            out.push((name, input::open(&fs_)?));
        }
    }
    Ok(out)
}

/// Bytes `eval` needs for `sets`, from their headers: each dataset is held in memory as f32 with
/// its reconstruction, error maps and a baseline's buffers (4 copies), plus one batch's working
/// tensors of the largest block size ([`crate::pipeline::estimate_batch_bytes`]).
pub fn memory_bytes(sets: &[(String, input::Dataset)], opts: &EvalOptions) -> Option<u64> {
    let mut total = Some(0u64);
    let mut batch = 0u64;
    for (_, ds) in sets {
        total = crate::budget::sum([total, crate::budget::bytes_of(&ds.shape(), 4 * 4)]);
        let block = opts.blocks.iter().copied().max().unwrap_or(8);
        let spec = crate::Spec::new(ds.height, ds.width, 1)
            .with_channels(ds.channels)
            .with_block(block);
        let b = opts.batch.min(ds.n).max(1);
        batch = batch.max(crate::pipeline::estimate_batch_bytes(&spec, b));
    }
    crate::budget::sum([total, Some(batch)])
}

/// Refuse `sets` (before any is read) when [`memory_bytes`] exceeds `budget`.
pub fn check_memory(
    sets: &[(String, input::Dataset)],
    opts: &EvalOptions,
    budget: crate::budget::Budget,
) -> Result<()> {
    let Some((_, first)) = sets.first() else {
        return Ok(());
    };
    let path = if sets.len() == 1 {
        first.file_of(0)
    } else {
        PathBuf::from(first.describe())
    };
    let what = if sets.len() == 1 {
        let [n, c, h, w] = first.shape();
        format!("evaluating {n}x{c}x{h}x{w} samples")
    } else {
        format!("evaluating {} datasets", sets.len())
    };
    budget.check(
        &path,
        &what,
        memory_bytes(sets, opts),
        "evaluate a subset or smaller images, or raise --max-memory-mb if the machine has the \
         memory",
    )
}

/// Read a whole dataset into memory, rejecting non-finite values.
pub fn load(name: &str, ds: &input::Dataset) -> Result<Data> {
    let mut r = ds.reader()?;
    let x = r
        .next_batch(ds.n.max(1))?
        .ok_or_else(|| Error::invalid_input(ds.file_of(0), "no samples"))?;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut bad = 0usize;
    for &v in x.iter() {
        if v.is_finite() {
            lo = lo.min(v as f64);
            hi = hi.max(v as f64);
        } else {
            bad += 1;
        }
    }
    if bad > 0 {
        return Err(Error::invalid_input(
            ds.file_of(0),
            format!("contains {bad} non-finite values (NaN or Inf): not supported"),
        ));
    }
    Ok(Data {
        name: name.to_string(),
        dtype: ds.dtype,
        x,
        min: lo,
        max: hi,
    })
}

// ---------------------------------------------------------------------------------------------
// Running

/// A method's reconstruction and costs, before turning into rows.
pub struct Outcome {
    pub method: String,
    pub config: String,
    pub variant: Option<Variant>,
    pub cf: Option<usize>,
    pub block: Option<usize>,
    pub store: Option<Store>,
    /// dctchop's quantization: "auto" (or a step), "envelope"; None for float coefficients.
    pub quant: Option<String>,
    pub param: Option<f64>,
    pub matched_to: Option<String>,
    pub coefficient_ratio: Option<f64>,
    pub stored_bytes: u64,
    pub compress_s: f64,
    pub decompress_s: f64,
    pub recon: Array4<f32>,
}

/// Per-sample and aggregate rows of one outcome (the aggregate first).
pub fn rows_of(data: &Data, o: &Outcome) -> Vec<Row> {
    let range = data.range();
    let m: Vec<SampleMetrics> = data
        .x
        .outer_iter()
        .zip(o.recon.outer_iter())
        .map(|(a, b)| sample_metrics(a, b, range))
        .collect();
    let ob = data.original_bytes();
    let base = Row {
        dataset: data.name.clone(),
        method: o.method.clone(),
        config: o.config.clone(),
        variant: o.variant.map(|v| v.to_string()),
        cf: o.cf,
        block: o.block,
        store: o.store.map(|s| s.to_string()),
        quant: o.quant.clone(),
        param: o.param,
        matched_to: o.matched_to.clone(),
        curve: false,
        sample: None,
        samples: m.len(),
        coefficient_ratio: o.coefficient_ratio,
        original_bytes: ob,
        stored_bytes: o.stored_bytes,
        ratio: ob as f64 / o.stored_bytes.max(1) as f64,
        psnr_db: 0.0,
        psnr_worst_db: 0.0,
        ssim: 0.0,
        ssim_worst: 0.0,
        nrmse: 0.0,
        nrmse_worst: 0.0,
        max_abs_error: 0.0,
        compress_mb_s: ob as f64 / 1e6 / o.compress_s.max(1e-9),
        decompress_mb_s: ob as f64 / 1e6 / o.decompress_s.max(1e-9),
    };
    let k = m.len() as f64;
    let mut agg = base.clone();
    agg.psnr_db = m.iter().map(|s| s.psnr_db).sum::<f64>() / k;
    agg.psnr_worst_db = m.iter().map(|s| s.psnr_db).fold(f64::INFINITY, f64::min);
    agg.ssim = m.iter().map(|s| s.ssim).sum::<f64>() / k;
    agg.ssim_worst = m.iter().map(|s| s.ssim).fold(f64::INFINITY, f64::min);
    agg.nrmse = m.iter().map(|s| s.nrmse).sum::<f64>() / k;
    agg.nrmse_worst = m.iter().map(|s| s.nrmse).fold(0.0, f64::max);
    agg.max_abs_error = m.iter().map(|s| s.max_abs_error).fold(0.0, f64::max);
    let mut rows = vec![agg];
    for (i, s) in m.iter().enumerate() {
        let mut r = base.clone();
        r.sample = Some(i);
        r.psnr_db = s.psnr_db;
        r.psnr_worst_db = s.psnr_db;
        r.ssim = s.ssim;
        r.ssim_worst = s.ssim;
        r.nrmse = s.nrmse;
        r.nrmse_worst = s.nrmse;
        r.max_abs_error = s.max_abs_error;
        rows.push(r);
    }
    rows
}

static TMP_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let k = TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("dctchop-eval-{}-{k}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The spec of one configuration for a dataset (validated).
pub fn spec_for(
    data: &Data,
    cf: usize,
    block: usize,
    variant: Variant,
    batch: usize,
) -> Result<Spec> {
    let [n, c, h, w] = [
        data.x.shape()[0],
        data.x.shape()[1],
        data.x.shape()[2],
        data.x.shape()[3],
    ];
    let spec = Spec::new(h, w, cf)
        .with_channels(c)
        .with_batch(batch.clamp(1, n.max(1)))
        .with_block(block)
        .with_variant(variant);
    spec.validate()?;
    Ok(spec)
}

/// Compress `data` with one dctchop configuration through a real container in a temporary
/// directory; times are medians over `repeats` runs of the codec on the in-memory data. A
/// quantized spec is stored as entropy-coded codes (zstd at the default level) and its compress
/// time includes the host rounding; `store` applies to float coefficients only.
pub fn run_dctchop(
    data: &Data,
    spec: &Spec,
    store: Store,
    engine: &EngineOptions,
    repeats: usize,
) -> Result<Outcome> {
    let mut codec = Codec::new(spec, engine)?;
    let n = data.x.shape()[0];
    let tmp = TempDir::new()?;
    let stem = tmp.0.join("data");
    let entropy = container::Entropy::Zstd {
        level: container::DEFAULT_ZSTD_LEVEL,
    };
    let payload = container::Payload::for_spec(spec, store, entropy);
    let mut writer = container::Writer::create(&stem, spec, payload, n, u64::MAX / 4, true, &[])?;
    let mut times = Vec::new();
    if spec.is_quantized() {
        let mut out = None;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            out = Some(codec.compress_codes(data.x.view())?);
            times.push(t.elapsed().as_secs_f64());
        }
        let (codes, clamped) = out.expect("at least one run");
        writer.push_codes(codes.view(), clamped as u64)?;
    } else {
        let mut y = None;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            y = Some(codec.compress(data.x.view())?);
            times.push(t.elapsed().as_secs_f64());
        }
        let mut y = y.expect("at least one run");
        if store == Dtype::F16 {
            y.mapv_inplace(|v| half::f16::from_f32(v).to_f32());
        }
        writer.push(y.view())?;
    }
    let compress_s = crate::bench::median(&times);
    let info = DatasetInfo {
        dtype: data.dtype,
        shape: [n, data.x.shape()[1], data.x.shape()[2], data.x.shape()[3]],
        min: data.min,
        max: data.max,
    };
    // The decompress graph too, so the metadata (its digest) is what `compress` writes.
    let graph_file = container::graph_path(&stem);
    let graph = codec
        .plan()
        .model(crate::graph::Direction::Decompress, crate::DEFAULT_OPSET)?
        .encode()?;
    let shards = writer.finish(&info, &[(graph_file.clone(), graph)], Some(&graph_file))?;
    let mut stored_bytes = 0u64;
    for p in &shards {
        stored_bytes += fs::metadata(p).map_err(|e| Error::io(p, e))?.len();
    }
    // Decompression times what a reader does: read (and entropy-decode) the shards, then run.
    let c = container::open(&stem)?;
    let mut times = Vec::new();
    let mut recon = None;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let parts = (0..c.shards.len())
            .map(|i| c.read_shard(i))
            .collect::<Result<Vec<_>>>()?;
        let stored = container::ShardData::concat(parts);
        let out = match stored {
            container::ShardData::Float(y) => codec.decompress(y.view())?,
            container::ShardData::Codes(q) => codec.decompress_codes(q.view())?,
        };
        times.push(t.elapsed().as_secs_f64());
        recon = Some(out);
    }
    let (store_name, config) = match &spec.quant {
        Some(q) => (
            None,
            format!(
                "{} cf{} b{} q{:.4} {}{}",
                spec.variant,
                spec.cf,
                spec.block,
                q.step,
                q.code,
                q.mix.map_or(String::new(), |m| format!(" {m}"))
            ),
        ),
        None => (
            Some(store),
            format!("{} cf{} b{} {}", spec.variant, spec.cf, spec.block, store),
        ),
    };
    Ok(Outcome {
        method: "dctchop".into(),
        config,
        variant: Some(spec.variant),
        cf: Some(spec.cf),
        block: Some(spec.block),
        store: store_name,
        quant: spec.quant.as_ref().map(|_| "auto".to_string()),
        param: spec.quant.as_ref().map(|q| q.step),
        matched_to: None,
        coefficient_ratio: Some(spec.compression_ratio()),
        stored_bytes,
        compress_s,
        decompress_s: crate::bench::median(&times),
        recon: recon.expect("at least one run"),
    })
}

/// The probe `compress` would look at: the first `batch` samples.
fn probe_of(data: &Data, batch: usize) -> crate::tune::Probe<'_> {
    let n = data.x.shape()[0];
    crate::tune::Probe {
        x: data.x.slice(s![0..batch.min(n), .., .., ..]),
        peak: data.range(),
        original_sample_bytes: data.original_bytes() as f64 / n as f64,
    }
}

/// The spec quantized as `quant` asks (auto: [`crate::tune::auto`] on the probe), as `compress`
/// would quantize it.
pub fn quantized_spec(
    data: &Data,
    spec: &Spec,
    quant: QuantChoice,
    mix: MixChoice,
    engine: &EngineOptions,
    batch: usize,
) -> Result<Option<Spec>> {
    let entropy = container::Entropy::Zstd {
        level: container::DEFAULT_ZSTD_LEVEL,
    };
    let q = match quant {
        QuantChoice::None => return Ok(None),
        QuantChoice::Auto => {
            crate::tune::auto(&probe_of(data, batch), spec, None, mix, entropy, engine)?.quant
        }
        QuantChoice::Step(step) => {
            crate::tune::given_step(
                &probe_of(data, batch),
                spec,
                step,
                None,
                mix,
                entropy,
                engine,
            )?
            .quant
        }
    };
    Ok(Some(spec.clone().with_quant(q)))
}

/// The envelope point for a target ratio: [`crate::tune::search`] over `variants` x CF 1..=block
/// on the probe. None when no configuration reaches the ratio.
pub fn envelope_spec(
    data: &Data,
    base: &Spec,
    variants: &[Variant],
    ratio: f64,
    mix: MixChoice,
    engine: &EngineOptions,
    batch: usize,
) -> Result<Option<Spec>> {
    let entropy = container::Entropy::Zstd {
        level: container::DEFAULT_ZSTD_LEVEL,
    };
    let cfs: Vec<usize> = (1..=base.block).collect();
    match crate::tune::search(
        &probe_of(data, batch),
        base,
        variants,
        &cfs,
        crate::tune::QualityTarget::Ratio(ratio),
        None,
        mix,
        entropy,
        engine,
    ) {
        Ok(c) => {
            let mut spec = base.clone().with_variant(c.variant).with_quant(c.quant);
            spec.cf = c.cf;
            Ok(Some(spec))
        }
        Err(Error::InvalidOption { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Baselines

/// A baseline codec with one parameter, as [`evaluate`] drives it.
pub trait Baseline {
    /// The rows' `method`.
    fn method(&self) -> &'static str;
    /// The parameter whose real stored ratio is closest to `ratio` (within `tol` in log scale
    /// where a continuous parameter allows; out of reach: the nearer end).
    fn find(&mut self, ratio: f64, tol: f64) -> Result<f64>;
    /// Compress and decompress every sample at `param`, timed (median of `repeats`).
    fn run(&self, param: f64, repeats: usize) -> Result<Outcome>;
}

/// The rows of one baseline on one dataset: first the curve (one point per grid ratio, found
/// within [`search::CURVE_TOL`]; equal parameters kept once), then one point matched to each
/// `(config, ratio)` target within [`search::MATCH_TOL`]. Each parameter is run and measured once.
pub fn baseline_rows(
    data: &Data,
    b: &mut dyn Baseline,
    targets: &[(String, f64)],
    grid: &[f64],
    repeats: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Row>> {
    let mut runs: Vec<(f64, Vec<Row>)> = Vec::new();
    let mut rows_at = |b: &mut dyn Baseline, p: f64| -> Result<Vec<Row>> {
        if let Some((_, r)) = runs.iter().find(|(q, _)| *q == p) {
            return Ok(r.clone());
        }
        let o = b.run(p, repeats)?;
        progress(&format!("{}: {} {}", data.name, o.method, o.config));
        let r = rows_of(data, &o);
        runs.push((p, r.clone()));
        Ok(r)
    };
    let mut curve = Vec::new();
    let mut on_curve: Vec<f64> = Vec::new();
    for &ratio in grid {
        let p = b.find(ratio, search::CURVE_TOL)?;
        if on_curve.contains(&p) {
            continue;
        }
        on_curve.push(p);
        curve.extend(rows_at(b, p)?.into_iter().map(|mut r| {
            r.curve = true;
            r
        }));
    }
    let mut out = Vec::new();
    for (cfg, ratio) in targets {
        let p = b.find(*ratio, search::MATCH_TOL)?;
        out.extend(rows_at(b, p)?.into_iter().map(|mut r| {
            r.matched_to = Some(cfg.clone());
            r
        }));
    }
    out.extend(curve);
    Ok(out)
}

/// The label of the rate–distortion curve a row belongs to: its method, then whichever of
/// variant, block and store it has (`dctchop chop b8 f32`; a baseline: just `sz3`). A new method
/// or store is a new curve, with no change here.
pub fn curve_label(r: &Row) -> String {
    let mut label = r.method.clone();
    // Envelope points change variant and CF along the curve: one curve per block.
    let variant = match r.quant.as_deref() {
        Some("envelope") => None,
        _ => r.variant.clone(),
    };
    for part in [
        variant,
        r.block.map(|b| format!("b{b}")),
        r.store.clone(),
        r.quant.as_ref().map(|q| format!("q-{q}")),
    ]
    .into_iter()
    .flatten()
    {
        label.push(' ');
        label.push_str(&part);
    }
    label
}

// ---------------------------------------------------------------------------------------------
// JPEG baseline

/// Why JPEG cannot run on this data, if it cannot.
pub fn jpeg_unsupported(data: &Data) -> Option<String> {
    if data.dtype != SampleType::Uint8 {
        return Some(format!(
            "JPEG skipped: needs 8-bit data, this is {}",
            data.dtype
        ));
    }
    let c = data.x.shape()[1];
    if c != 1 && c != 3 {
        return Some(format!("JPEG skipped: needs 1 or 3 channels, this has {c}"));
    }
    None
}

fn jpeg_encode(x: ArrayView3<'_, f32>, quality: u8) -> Result<Vec<u8>> {
    let (c, h, w) = x.dim();
    let mut buf = Vec::with_capacity(h * w * c);
    for i in 0..h {
        for j in 0..w {
            for k in 0..c {
                buf.push(x[[k, i, j]].round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    let color = if c == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(&buf, w as u32, h as u32, color)
        .map_err(|e| Error::Engine {
            engine: "JPEG",
            message: format!("encoder: {e}"),
        })?;
    Ok(out)
}

fn jpeg_decode(bytes: &[u8], c: usize, h: usize, w: usize) -> Result<Array4<f32>> {
    let img =
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).map_err(|e| {
            Error::Engine {
                engine: "JPEG",
                message: format!("decoder: {e}"),
            }
        })?;
    let mut out = Array4::<f32>::zeros((1, c, h, w));
    if c == 1 {
        let g = img.to_luma8();
        for (x, y, p) in g.enumerate_pixels() {
            out[[0, 0, y as usize, x as usize]] = p.0[0] as f32;
        }
    } else {
        let g = img.to_rgb8();
        for (x, y, p) in g.enumerate_pixels() {
            for k in 0..3 {
                out[[0, k, y as usize, x as usize]] = p.0[k] as f32;
            }
        }
    }
    Ok(out)
}

/// JPEG sizes per quality, computed lazily.
pub struct JpegSweep<'a> {
    data: &'a Data,
    sizes: BTreeMap<u8, u64>,
}

impl<'a> JpegSweep<'a> {
    pub fn new(data: &'a Data) -> Self {
        JpegSweep {
            data,
            sizes: BTreeMap::new(),
        }
    }

    /// Total JPEG bytes of all samples at a quality.
    pub fn bytes(&mut self, q: u8) -> Result<u64> {
        if let Some(&b) = self.sizes.get(&q) {
            return Ok(b);
        }
        let mut total = 0u64;
        for s in self.data.x.outer_iter() {
            total += jpeg_encode(s, q)?.len() as u64;
        }
        self.sizes.insert(q, total);
        Ok(total)
    }

    /// The quality whose ratio is closest (in log scale) to `target`: a binary search over the
    /// (nearly monotone) size curve, then the neighbours are checked.
    pub fn closest(&mut self, target: f64) -> Result<u8> {
        let want_bytes = self.data.original_bytes() as f64 / target;
        let q = search::closest_int(1, 100, true, want_bytes, &mut |q| self.bytes(q as u8))?;
        Ok(q as u8)
    }
}

impl Baseline for JpegSweep<'_> {
    fn method(&self) -> &'static str {
        "jpeg"
    }
    fn find(&mut self, ratio: f64, _tol: f64) -> Result<f64> {
        Ok(self.closest(ratio)? as f64)
    }
    fn run(&self, param: f64, repeats: usize) -> Result<Outcome> {
        run_jpeg(self.data, param as u8, repeats)
    }
}

/// Compress and decompress every sample with JPEG at one quality.
pub fn run_jpeg(data: &Data, quality: u8, repeats: usize) -> Result<Outcome> {
    let (c, h, w) = (data.x.shape()[1], data.x.shape()[2], data.x.shape()[3]);
    let mut times = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        streams = data
            .x
            .outer_iter()
            .map(|s| jpeg_encode(s, quality))
            .collect::<Result<Vec<_>>>()?;
        times.push(t.elapsed().as_secs_f64());
    }
    let compress_s = crate::bench::median(&times);
    let mut times = Vec::new();
    let mut recon = Array4::<f32>::zeros(data.x.raw_dim());
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        for (i, b) in streams.iter().enumerate() {
            let one = jpeg_decode(b, c, h, w)?;
            recon.slice_mut(s![i..i + 1, .., .., ..]).assign(&one);
        }
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(Outcome {
        method: "jpeg".into(),
        config: format!("q{quality}"),
        variant: None,
        cf: None,
        block: None,
        store: None,
        quant: None,
        param: Some(quality as f64),
        matched_to: None,
        coefficient_ratio: None,
        stored_bytes: streams.iter().map(|s| s.len() as u64).sum(),
        compress_s,
        decompress_s: crate::bench::median(&times),
        recon,
    })
}

// ---------------------------------------------------------------------------------------------
// The whole evaluation

/// Check the options before any work: every configuration must be a valid spec for a small
/// image (CF within 1..=block, known block sizes).
pub fn validate(opts: &EvalOptions) -> Result<()> {
    for (field, empty) in [
        ("cf", opts.cfs.is_empty()),
        ("variant", opts.variants.is_empty()),
        ("block", opts.blocks.is_empty()),
        ("store", opts.stores.is_empty()),
    ] {
        if empty {
            return Err(Error::invalid_option(
                field,
                "(empty)",
                "at least one value",
            ));
        }
    }
    for &b in &opts.blocks {
        for &cf in &opts.cfs {
            for &v in &opts.variants {
                Spec::new(64, 64, cf)
                    .with_block(b)
                    .with_variant(v)
                    .validate()?;
            }
        }
    }
    if let Some(Target::MinPsnr(p) | Target::MaxError(p)) = opts.target {
        if !p.is_finite() {
            return Err(Error::invalid_option("target", p, "a finite number"));
        }
    }
    Ok(())
}

/// The highest-ratio dctchop configuration (aggregate rows of one dataset) meeting the target
/// on every sample; ties go to the better worst-sample PSNR.
pub fn pick<'a>(rows: &'a [Row], dataset: &str, target: Target) -> Option<&'a Row> {
    rows.iter()
        .filter(|r| r.dataset == dataset && r.method == "dctchop" && r.sample.is_none())
        .filter(|r| match target {
            Target::MinPsnr(p) => r.psnr_worst_db >= p,
            Target::MaxError(e) => r.max_abs_error <= e,
        })
        .max_by(|a, b| {
            a.ratio
                .total_cmp(&b.ratio)
                .then(a.psnr_worst_db.total_cmp(&b.psnr_worst_db))
        })
}

/// Per dataset: the configuration shown in the error map and its first reconstructed sample.
pub type ErrorMapSample = (String, Array4<f32>);

/// Evaluate loaded datasets. `progress` gets one line per finished configuration.
/// Returns the report and, per dataset, one (config, reconstruction) for the error map.
pub fn evaluate(
    data: &[Data],
    opts: &EvalOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(Report, Vec<ErrorMapSample>)> {
    validate(opts)?;
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    let mut maps = Vec::new();
    for d in data {
        let mut skipped = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        for &block in &opts.blocks {
            for &variant in &opts.variants {
                for &cf in &opts.cfs {
                    let spec = spec_for(d, cf, block, variant, opts.batch).map_err(|e| {
                        Error::invalid_input(&d.name, format!("cannot compress: {e}"))
                    })?;
                    for &quant in &opts.quants {
                        let stores = match quant {
                            QuantChoice::None => opts.stores.clone(),
                            _ => vec![Dtype::F32],
                        };
                        let spec = match quantized_spec(
                            d,
                            &spec,
                            quant,
                            opts.mix,
                            &opts.engine,
                            opts.batch,
                        )? {
                            Some(q) => q,
                            None => spec.clone(),
                        };
                        for store in stores {
                            let mut o = run_dctchop(d, &spec, store, &opts.engine, opts.repeats)?;
                            if quant != QuantChoice::None {
                                o.quant = Some(match quant {
                                    QuantChoice::Auto => "auto".into(),
                                    _ => "step".into(),
                                });
                            }
                            progress(&format!("{}: dctchop {}", d.name, o.config));
                            outcomes.push(o);
                        }
                    }
                }
            }
        }
        let ob = d.original_bytes() as f64;
        let targets: Vec<(String, f64)> = outcomes
            .iter()
            .map(|o| (o.config.clone(), ob / o.stored_bytes as f64))
            .collect();
        if opts.baselines {
            let ratios: Vec<f64> = targets.iter().map(|t| t.1).collect();
            let grid = search::ratio_grid(&ratios, opts.curve_points);
            let r = opts.repeats;
            match jpeg_unsupported(d) {
                Some(why) => skipped.push(why),
                None => {
                    let mut b = JpegSweep::new(d);
                    rows.extend(baseline_rows(d, &mut b, &targets, &grid, r, progress)?);
                }
            }
            #[cfg(feature = "zfp")]
            {
                let mut b = zfp::FixedRate { data: d };
                rows.extend(baseline_rows(d, &mut b, &targets, &grid, r, progress)?);
                let mut b = zfp::FixedAccuracy::new(d);
                rows.extend(baseline_rows(d, &mut b, &targets, &grid, r, progress)?);
            }
            #[cfg(not(feature = "zfp"))]
            skipped.push("ZFP skipped: built without the `zfp` cargo feature (see README)".into());
            #[cfg(feature = "sz3")]
            {
                let mut b = sz3::Sz3::new(d);
                rows.extend(baseline_rows(d, &mut b, &targets, &grid, r, progress)?);
            }
            #[cfg(not(feature = "sz3"))]
            skipped.push("SZ3 skipped: built without the `sz3` cargo feature (see README)".into());
        }
        for o in &outcomes {
            rows.extend(rows_of(d, o));
        }
        if opts.envelope {
            let ratios: Vec<f64> = targets.iter().map(|t| t.1).collect();
            let grid = search::ratio_grid(&ratios, opts.curve_points.max(2));
            for &block in &opts.blocks {
                let base = spec_for(d, 4.min(block), block, Variant::Chop, opts.batch)
                    .map_err(|e| Error::invalid_input(&d.name, format!("cannot compress: {e}")))?;
                let mut seen: Vec<Spec> = Vec::new();
                for &ratio in &grid {
                    let Some(spec) = envelope_spec(
                        d,
                        &base,
                        &opts.variants,
                        ratio,
                        opts.mix,
                        &opts.engine,
                        opts.batch,
                    )?
                    else {
                        continue;
                    };
                    if seen.contains(&spec) {
                        continue;
                    }
                    seen.push(spec.clone());
                    let mut o = run_dctchop(d, &spec, Dtype::F32, &opts.engine, opts.repeats)?;
                    o.quant = Some("envelope".into());
                    o.matched_to = Some(format!("target ratio {ratio:.3}"));
                    progress(&format!("{}: dctchop envelope {}", d.name, o.config));
                    rows.extend(rows_of(d, &o).into_iter().map(|mut r| {
                        r.curve = true;
                        r
                    }));
                }
            }
        }
        let pick_cfg = opts
            .target
            .and_then(|t| pick(&rows, &d.name, t))
            .map(|r| r.config.clone());
        // Error map: the picked configuration, else chop CF 4 when evaluated, else the first.
        let map_o = pick_cfg
            .as_ref()
            .and_then(|c| outcomes.iter().find(|o| &o.config == c))
            .or_else(|| {
                outcomes
                    .iter()
                    .find(|o| o.cf == Some(4) && o.variant == Some(Variant::Chop))
            })
            .or(outcomes.first());
        if let Some(o) = map_o {
            maps.push((
                o.config.clone(),
                o.recon.slice(s![0..1, .., .., ..]).to_owned(),
            ));
        }
        summaries.push(DatasetSummary {
            name: d.name.clone(),
            shape: [
                d.x.shape()[0],
                d.x.shape()[1],
                d.x.shape()[2],
                d.x.shape()[3],
            ],
            dtype: d.dtype,
            value_min: d.min,
            value_max: d.max,
            original_bytes: d.original_bytes(),
            skipped,
            pick: pick_cfg,
        });
    }
    Ok((
        Report {
            datasets: summaries,
            target: opts.target,
            rows,
        },
        maps,
    ))
}

// ---------------------------------------------------------------------------------------------
// Output

fn fmt_f(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{v}")
    }
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

/// The rows as CSV (one header line; PSNR `inf` for exact reconstructions).
pub fn to_csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "dataset,method,config,variant,cf,block,store,quant,param,matched_to,curve,sample,samples,\
         coefficient_ratio,original_bytes,stored_bytes,ratio,psnr_db,psnr_worst_db,ssim,\
         ssim_worst,nrmse,nrmse_worst,max_abs_error,compress_mb_s,decompress_mb_s\n",
    );
    let q = |t: &str| {
        if t.contains([',', '"', '\n']) {
            format!("\"{}\"", t.replace('"', "\"\""))
        } else {
            t.to_string()
        }
    };
    for r in rows {
        let cols = [
            q(&r.dataset),
            r.method.clone(),
            q(&r.config),
            opt(&r.variant),
            opt(&r.cf),
            opt(&r.block),
            opt(&r.store),
            opt(&r.quant),
            r.param.map(fmt_f).unwrap_or_default(),
            q(&opt(&r.matched_to)),
            r.curve.to_string(),
            r.sample
                .map(|s| s.to_string())
                .unwrap_or_else(|| "all".into()),
            r.samples.to_string(),
            r.coefficient_ratio.map(fmt_f).unwrap_or_default(),
            r.original_bytes.to_string(),
            r.stored_bytes.to_string(),
            fmt_f(r.ratio),
            fmt_f(r.psnr_db),
            fmt_f(r.psnr_worst_db),
            fmt_f(r.ssim),
            fmt_f(r.ssim_worst),
            fmt_f(r.nrmse),
            fmt_f(r.nrmse_worst),
            fmt_f(r.max_abs_error),
            fmt_f(r.compress_mb_s),
            fmt_f(r.decompress_mb_s),
        ];
        s.push_str(&cols.join(","));
        s.push('\n');
    }
    s
}
