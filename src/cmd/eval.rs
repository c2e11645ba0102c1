//! `dctchop eval`: flags, the run, and its outputs (terminal table, results.csv/json, plots).

use anyhow::{bail, Context, Result};
use clap::Args;
use ndarray::Axis;
use std::fs;
use std::path::{Path, PathBuf};

use crate::plot;
use dctchop::container::Store;
use dctchop::eval::{self, opt, Data, ErrorMapSample, EvalOptions, Report, Target};
use dctchop::output::write_all_atomic;
use dctchop::pipeline::QuantChoice;
use dctchop::quant::MixChoice;
use dctchop::{EngineKind, EngineOptions, Variant};

/// A CF list: `4`, `2,4,6` or a range `2..7` (inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfList(pub Vec<usize>);

/// The largest CF of any block size.
const MAX_CF: usize = 32;

/// Parse `4`, `2,4,6` or `2..7` / `2..=7` (inclusive).
pub fn parse_cf_list(s: &str) -> std::result::Result<CfList, String> {
    let bad =
        || format!("invalid --cf '{s}': allowed are N, N,M,... or A..B (inclusive), e.g. 2..7");
    let s = s.trim();
    if let Some((a, b)) = s.split_once("..") {
        let b = b.trim_start_matches('=');
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        // A CF is at most the block size (32 at most): refuse a range beyond it before listing it.
        if b > MAX_CF {
            return Err(format!(
                "invalid --cf '{s}': a CF is 1..={MAX_CF} (at most the block size)"
            ));
        }
        return Ok(CfList((a..=b).collect()));
    }
    let v = s
        .split(',')
        .map(|t| t.trim().parse::<usize>().map_err(|_| bad()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(CfList(v))
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Datasets: .npy files, images, or directories of images (each argument is one dataset; a
    /// directory of differently sized images becomes one dataset per size).
    #[arg(required_unless_present = "downstream")]
    pub data: Vec<PathBuf>,
    /// Chop factors: N, a list 2,4,6 or a range 2..7.
    #[arg(long, default_value = "2..7", value_parser = parse_cf_list)]
    pub cf: CfList,
    /// Variants: chop, triangle (comma list).
    #[arg(long, value_delimiter = ',', default_value = "chop,triangle")]
    pub variant: Vec<Variant>,
    /// DCT block sizes (comma list).
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub block: Vec<usize>,
    /// Stored coefficient types: f32, f16 (comma list).
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub store: Vec<Store>,
    /// auto (= native), native, tract or ort (ONNX Runtime, loaded at run time).
    #[arg(long, default_value = "auto")]
    pub engine: EngineKind,
    /// Samples per graph run.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed runs per throughput measurement (median reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Output directory (default: a new dctchop-eval-YYYYmmdd-HHMMSS, UTC, in the current dir).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Write into an existing non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Pick the highest-ratio configuration whose worst-sample PSNR is at least P dB.
    #[arg(long, conflicts_with = "max_error")]
    pub target_psnr: Option<f64>,
    /// Pick the highest-ratio configuration whose max absolute error is at most E.
    #[arg(long)]
    pub max_error: Option<f64>,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Skip the baselines (JPEG; ZFP and SZ3 when built in).
    #[arg(long)]
    pub no_baselines: bool,
    /// Points of each baseline's rate-distortion curve, at log-spaced ratios from
    /// min(1.5, dctchop's) to max(100, dctchop's); 0: only the points matched to dctchop.
    #[arg(long, default_value_t = 10)]
    pub curve_points: usize,
    /// Refuse datasets that would need more memory than this many MB (from their headers,
    /// before any is decoded).
    #[arg(long, default_value_t = dctchop::budget::DEFAULT_MB)]
    pub max_memory_mb: u64,
    /// Retired: the downstream evaluation trains real denoisers with downstream/run.py (see
    /// docs/downstream.md); this flag only says so.
    #[arg(long, hide = true)]
    pub downstream: bool,
    /// dctchop quantizations to evaluate (comma list): none (float coefficients, per --store),
    /// auto, or a step.
    #[arg(long, value_delimiter = ',', default_value = "none,auto")]
    pub quant: Vec<QuantChoice>,
    /// Skip dctchop's envelope curve (the best quantized variant, CF and step per target ratio,
    /// as `compress --target-ratio` chooses).
    #[arg(long)]
    pub no_envelope: bool,
    /// Channel transform of the quantized rows and the envelope: auto (chosen on the first batch
    /// as `compress` does; the envelope searches with and without it), none, or opponent.
    #[arg(long, value_name = "auto|none|opponent", default_value = "auto")]
    pub mix: MixChoice,
}

/// Run `dctchop eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    if a.downstream {
        bail!(
            "eval --downstream (a logistic-regression smoke test) is retired: downstream accuracy \
             is measured by training denoisers on compressed data, `PY=$(downstream/setup.sh) && \
             $PY downstream/run.py` (see docs/downstream.md)"
        );
    }
    let target = match (a.target_psnr, a.max_error) {
        (Some(p), _) => Some(Target::MinPsnr(p)),
        (None, Some(e)) => Some(Target::MaxError(e)),
        _ => None,
    };
    if a.batch == 0 || a.repeats == 0 {
        bail!(
            "invalid --{} = 0: allowed is an integer >= 1",
            if a.batch == 0 { "batch" } else { "repeats" }
        );
    }
    let opts = EvalOptions {
        cfs: a.cf.0.clone(),
        variants: a.variant.clone(),
        blocks: a.block.clone(),
        stores: a.store.clone(),
        quants: a.quant.clone(),
        envelope: !a.no_envelope,
        mix: a.mix,
        engine: EngineOptions::default().with_kind(a.engine),
        batch: a.batch,
        repeats: a.repeats,
        baselines: !a.no_baselines,
        curve_points: a.curve_points,
        target,
    };
    eval::validate(&opts)?;
    let budget = dctchop::budget::Budget::new(a.max_memory_mb)?;
    let out = a.out.clone().unwrap_or_else(default_out_dir);
    dctchop::output::check_dir_writable(&out, a.force)?;
    let sets = eval::datasets(&a.data)?;
    eval::check_memory(&sets, &opts, budget)?;
    let data: Vec<Data> = sets
        .iter()
        .map(|(name, ds)| eval::load(name, ds))
        .collect::<dctchop::Result<_>>()?;
    let quiet = a.json;
    let (report, maps) = eval::evaluate(&data, &opts, &mut |line| {
        if !quiet {
            eprintln!("  done {line}");
        }
    })?;
    let written = write_outputs(&out, &report, &data, &maps)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", to_table(&report));
        for p in written {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// The terminal table: aggregate rows, one block per dataset.
fn to_table(report: &Report) -> String {
    let mut s = String::new();
    for d in &report.datasets {
        s.push_str(&format!(
            "{}  [{}x{}x{}x{} {}, range {}..{}, {:.2} MB]\n",
            d.name,
            d.shape[0],
            d.shape[1],
            d.shape[2],
            d.shape[3],
            d.dtype,
            d.value_min,
            d.value_max,
            d.original_bytes as f64 / 1e6
        ));
        s.push_str(&format!(
            "  {:<12} {:<20} {:>7} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>9} {:>8} {:>8}  {}\n",
            "method",
            "config",
            "coef.r",
            "ratio",
            "PSNR",
            "worst",
            "SSIM",
            "worst",
            "NRMSE",
            "max err",
            "comp",
            "decomp",
            "matched to"
        ));
        let mut curve: Vec<(String, usize)> = Vec::new();
        for r in report
            .rows
            .iter()
            .filter(|r| r.dataset == d.name && r.sample.is_none() && r.curve)
        {
            match curve.iter_mut().find(|(m, _)| *m == r.method) {
                Some((_, k)) => *k += 1,
                None => curve.push((r.method.clone(), 1)),
            }
        }
        for r in report
            .rows
            .iter()
            .filter(|r| r.dataset == d.name && r.sample.is_none() && !r.curve)
        {
            s.push_str(&format!(
                "  {:<12} {:<20} {:>7} {:>8.3} {:>8.2} {:>8.2} {:>7.4} {:>7.4} {:>9.5} {:>9.3} {:>8.1} {:>8.1}  {}\n",
                r.method,
                r.config,
                r.coefficient_ratio.map(|v| format!("{v:.3}")).unwrap_or_default(),
                r.ratio,
                r.psnr_db,
                r.psnr_worst_db,
                r.ssim,
                r.ssim_worst,
                r.nrmse,
                r.max_abs_error,
                r.compress_mb_s,
                r.decompress_mb_s,
                opt(&r.matched_to)
            ));
        }
        if !curve.is_empty() {
            let list: Vec<String> = curve.iter().map(|(m, k)| format!("{m} {k}")).collect();
            s.push_str(&format!(
                "  (curve points, in results.csv/json and the plots: {})\n",
                list.join(", ")
            ));
        }
        for why in &d.skipped {
            s.push_str(&format!("  ({why})\n"));
        }
        if let Some(t) = report.target {
            let what = match t {
                Target::MinPsnr(p) => format!("worst-sample PSNR >= {p} dB"),
                Target::MaxError(e) => format!("max abs error <= {e}"),
            };
            match &d.pick {
                Some(c) => s.push_str(&format!("  target {what}: pick {c}\n")),
                None => s.push_str(&format!(
                    "  target {what}: no evaluated configuration meets it\n"
                )),
            }
        }
        s.push('\n');
    }
    s
}

/// A file-name-safe version of a dataset name.
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').chars().take(80).collect()
}

/// Write results.csv, results.json and the plots into `dir` (created if missing). Returns the
/// written paths.
fn write_outputs(
    dir: &Path,
    report: &Report,
    data: &[Data],
    maps: &[ErrorMapSample],
) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let csv = dir.join("results.csv");
    let json = dir.join("results.json");
    let json_text = serde_json::to_string_pretty(report)?;
    // The directory was checked before the run (non-empty only with --force).
    write_all_atomic(
        &[
            (&csv, eval::to_csv(&report.rows).as_bytes()),
            (&json, json_text.as_bytes()),
        ],
        true,
    )?;
    let mut written = vec![csv, json];
    for (i, d) in data.iter().enumerate() {
        let short = Path::new(&d.name)
            .file_stem()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| d.name.clone());
        let tag = format!("{i:02}-{}", slug(&short));
        let rd = dir.join(format!("rd-{tag}.png"));
        let png = plot::rate_distortion(&d.name, &report.rows, plot::Metric::Psnr)?;
        let ssim = dir.join(format!("rd-ssim-{tag}.png"));
        let png_ssim = plot::rate_distortion(&d.name, &report.rows, plot::Metric::Ssim)?;
        write_all_atomic(&[(&rd, &png), (&ssim, &png_ssim)], true)?;
        written.push(rd);
        written.push(ssim);
        if let Some((cfg, rec)) = maps.get(i) {
            let em = dir.join(format!("errormap-{tag}.png"));
            let png = plot::error_map(
                d.x.index_axis(Axis(0), 0),
                rec.index_axis(Axis(0), 0),
                d.min,
                d.max,
                &format!("{} sample 0, {cfg}", d.name),
            )?;
            write_all_atomic(&[(&em, &png)], true)?;
            written.push(em);
        }
    }
    Ok(written)
}

/// The default output directory: `dctchop-eval-YYYYmmdd-HHMMSS` (UTC) in the current directory.
fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    PathBuf::from(format!(
        "dctchop-eval-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}
