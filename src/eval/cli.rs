//! Arguments and driver of `dctchop eval` (kept in the library so the binary only dispatches).

use clap::Args;
use std::path::PathBuf;

use super::{Data, EvalOptions, Target};
use crate::container::Store;
use crate::error::{Error, Result};
use crate::spec::Variant;
use crate::{EngineKind, EngineOptions};

/// A CF list: `4`, `2,4,6` or a range `2..7` (inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfList(pub Vec<usize>);

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
    /// tract (built in) or ort (ONNX Runtime, loaded at run time).
    #[arg(long, default_value = "tract")]
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
    /// Skip the JPEG (and ZFP) baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Run the downstream-accuracy task instead (patch classification on the images in DIR,
    /// default ../shared/data/images): train on original vs round-tripped data per CF.
    #[arg(long)]
    pub downstream: bool,
    /// Images directory of the downstream task.
    #[arg(long, default_value = "../shared/data/images")]
    pub downstream_dir: PathBuf,
}

/// Run `dctchop eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    let target = match (a.target_psnr, a.max_error) {
        (Some(p), _) => Some(Target::MinPsnr(p)),
        (None, Some(e)) => Some(Target::MaxError(e)),
        _ => None,
    };
    if a.batch == 0 || a.repeats == 0 {
        return Err(Error::InvalidSpec {
            field: if a.batch == 0 { "batch" } else { "repeats" },
            value: "0".into(),
            allowed: "an integer >= 1".into(),
        });
    }
    let opts = EvalOptions {
        cfs: a.cf.0.clone(),
        variants: a.variant.clone(),
        blocks: a.block.clone(),
        stores: a.store.clone(),
        engine: EngineOptions::default().with_kind(a.engine),
        batch: a.batch,
        repeats: a.repeats,
        baselines: !a.no_baselines,
        target,
    };
    super::validate(&opts)?;
    let out = a.out.clone().unwrap_or_else(super::default_out_dir);
    super::check_out_dir(&out, a.force)?;
    if a.downstream {
        let report = super::downstream::run(&a.downstream_dir, &opts)?;
        let text = super::downstream::to_text(&report);
        std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
        let path = out.join("downstream.json");
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Other(format!("JSON: {e}")))?;
        crate::export::write_all_atomic(&[(&path, json.as_bytes())])?;
        if a.json {
            println!("{json}");
        } else {
            print!("{text}");
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    let sets = super::datasets(&a.data)?;
    let data: Vec<Data> = sets
        .iter()
        .map(|(name, ds)| super::load(name, ds))
        .collect::<Result<_>>()?;
    let quiet = a.json;
    let (report, maps) = super::evaluate(&data, &opts, &mut |line| {
        if !quiet {
            eprintln!("  done {line}");
        }
    })?;
    let written = super::write_outputs(&out, &report, &data, &maps)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .map_err(|e| Error::Other(format!("JSON: {e}")))?
        );
    } else {
        print!("{}", super::to_table(&report));
        for p in written {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}
