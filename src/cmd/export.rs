//! `dctchop export`: write a spec's graph pair and sidecar.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::args::{fmt_shape, SpecArgs};
use dctchop::export::{export, ExportOptions};
use dctchop::target::estimate;
use dctchop::{Plan, DEFAULT_OPSET};

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// ONNX opset (13..=21).
    #[arg(long, default_value_t = DEFAULT_OPSET)]
    opset: i64,
    /// Output directory (created if missing).
    #[arg(short, long, default_value = "dctchop-out")]
    out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Print the sidecar JSON on stdout instead of a summary.
    #[arg(long)]
    json: bool,
    /// Refuse specs whose graphs' constants (matrices and index vectors, while built and
    /// encoded) would need more memory than this many MB.
    #[arg(long, default_value_t = dctchop::budget::DEFAULT_MB)]
    max_memory_mb: u64,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let spec = a.spec.spec();
    let budget = dctchop::budget::Budget::new(a.max_memory_mb)?;
    spec.validate()?;
    // Matrices and indices are built in f64/int64, then encoded (about as large again).
    let (matrices, indices) = dctchop::plan::estimate_build_bytes(&spec);
    let cap = dctchop::spec::MAX_CONSTANT_BYTES;
    if matrices > cap || indices > cap {
        // Over the fixed cap of graph constants whatever the budget: Plan::new says which
        // (before it allocates anything).
        Plan::new(&spec)?;
    }
    budget.check(
        &a.out,
        &format!("building the graphs of {}", spec.name()),
        Some(matrices.saturating_add(indices).saturating_mul(2)),
        "use --serialize (or --tile auto), or raise --max-memory-mb",
    )?;
    let plan = Plan::new(&spec)?;
    let target = a.spec.target.map(|t| estimate(&plan, t));
    let out = export(
        &plan,
        &ExportOptions {
            out_dir: a.out.clone(),
            opset: a.opset,
            force: a.force,
            target: target.clone(),
        },
    )?;
    for w in target.iter().flat_map(|t| &t.warnings) {
        eprintln!("dctchop: warning: {w}");
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out.report)?);
        return Ok(());
    }
    let r = &out.report;
    let g = |d: &str, k: &str| r["graphs"][d][k].as_u64().unwrap_or(0);
    println!("wrote {}", out.compress.display());
    println!("wrote {}", out.decompress.display());
    println!("wrote {}", out.sidecar.display());
    println!(
        "{} -> {}  ratio {:.4}  tile {}  layout {}",
        fmt_shape(&spec.input_shape()),
        fmt_shape(&spec.compressed_shape()),
        spec.compression_ratio(),
        plan.tile_label(),
        spec.layout_name()
    );
    println!(
        "compress: {} MFLOP, {} KiB constants; decompress: {} MFLOP, {} KiB constants",
        g("compress", "flops") / 1_000_000,
        g("compress", "constant_bytes") / 1024,
        g("decompress", "flops") / 1_000_000,
        g("decompress", "constant_bytes") / 1024,
    );
    if let Some(q) = &spec.quant {
        let per_freq = if q.is_uniform() {
            String::new()
        } else {
            format!(
                " x per-frequency multipliers (rows {:?}, cols {:?})",
                q.rows, q.cols
            )
        };
        println!(
            "quantized: step {}{per_freq}, {} codes: the compress graph outputs coefficients / \
             step (round them with `dctchop run --codes`), the decompress graph takes {} codes",
            q.step,
            q.code.numpy_name(),
            q.code.numpy_name()
        );
    }
    if spec.serialize > 1 {
        println!(
            "serialize {}: graphs take one {}x{} chunk; run them {} times per batch (dctchop does this for you)",
            spec.serialize,
            plan.chunk.height,
            plan.chunk.width,
            spec.serialize * spec.serialize
        );
    }
    Ok(())
}
