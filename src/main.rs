//! The `dctchop` command line: a thin layer over the library.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use dctchop::export::{export, ExportOptions};
use dctchop::graph::{meta, spec_from_model};
use dctchop::{Dtype, Plan, Spec, Tile, Variant, DEFAULT_OPSET};

#[derive(Parser)]
#[command(
    name = "dctchop",
    version,
    about = "DCT+Chop compression as portable ONNX graphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the compress/decompress ONNX graph pair and a JSON sidecar for a spec.
    Export(ExportArgs),
    /// Print the spec, ops, shapes and ratio of an exported .onnx graph.
    Inspect {
        /// An .onnx file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Image size: `N` (square) or `HxW`.
#[derive(Clone, Copy, Debug)]
struct Res(usize, usize);

fn parse_res(s: &str) -> Result<Res, String> {
    let bad = || format!("invalid --res '{s}': use N (e.g. 256) or HxW (e.g. 344x403), sizes >= 1");
    let parse = |t: &str| t.trim().parse::<usize>().ok().filter(|&v| v >= 1);
    match s.split_once(['x', 'X']) {
        Some((h, w)) => Ok(Res(parse(h).ok_or_else(bad)?, parse(w).ok_or_else(bad)?)),
        None => parse(s).map(|n| Res(n, n)).ok_or_else(bad),
    }
}

#[derive(Args)]
struct SpecArgs {
    /// Chop factor: keep CF×CF (chop) or the i+j<CF triangle of each block; 1..=block.
    #[arg(long)]
    cf: usize,
    /// Image size: N or HxW (any sizes >= 1; padded to whole blocks inside the graph).
    #[arg(long, value_parser = parse_res)]
    res: Res,
    /// Channels per sample.
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Samples per graph run (static batch).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// DCT block size: 4, 8, 16 or 32.
    #[arg(long, default_value_t = 8)]
    block: usize,
    /// chop (CF×CF square) or triangle (i+j<CF).
    #[arg(long, default_value = "chop")]
    variant: Variant,
    /// Strip size of the matrix products: a multiple of the block, 'full' (the paper's dense
    /// form) or 'auto'.
    #[arg(long, default_value = "auto")]
    tile: Tile,
    /// Partial serialization: graphs process one (H/s × W/s) chunk; s must divide the block counts.
    #[arg(long, default_value_t = 1)]
    serialize: usize,
    /// Element type of graph inputs, outputs and constants: f32 or f16.
    #[arg(long, default_value = "f32")]
    dtype: Dtype,
}

impl SpecArgs {
    fn spec(&self) -> Spec {
        Spec {
            batch: self.batch,
            channels: self.channels,
            height: self.res.0,
            width: self.res.1,
            block: self.block,
            cf: self.cf,
            variant: self.variant,
            tile: self.tile,
            serialize: self.serialize,
            dtype: self.dtype,
        }
    }
}

#[derive(Args)]
struct ExportArgs {
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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Export(a) => cmd_export(a),
        Command::Inspect { file, json } => cmd_inspect(file, json),
    };
    if let Err(e) = result {
        eprintln!("dctchop: error: {e:#}");
        std::process::exit(1);
    }
}

fn cmd_export(a: ExportArgs) -> Result<()> {
    let spec = a.spec.spec();
    let plan = Plan::new(&spec)?;
    let out = export(
        &plan,
        &ExportOptions {
            out_dir: a.out.clone(),
            opset: a.opset,
            force: a.force,
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out.report)?);
        return Ok(());
    }
    let r = &out.report;
    let g = |d: &str, k: &str| r["graphs"][d][k].clone();
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
        g("compress", "flops").as_u64().unwrap_or(0) / 1_000_000,
        g("compress", "constant_bytes").as_u64().unwrap_or(0) / 1024,
        g("decompress", "flops").as_u64().unwrap_or(0) / 1_000_000,
        g("decompress", "constant_bytes").as_u64().unwrap_or(0) / 1024,
    );
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

fn fmt_shape(s: &[usize]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

fn cmd_inspect(file: PathBuf, json: bool) -> Result<()> {
    let bytes = std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
    let model = onnx_export::Model::decode(&bytes)
        .with_context(|| format!("{}: not a readable ONNX model", file.display()))?;
    let spec = spec_from_model(&model).with_context(|| file.display().to_string())?;
    let get = |k: &str| {
        model
            .metadata
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let io = |v: &Vec<onnx_export::ValueInfo>| -> Vec<serde_json::Value> {
        v.iter()
            .map(|vi| serde_json::json!({"name": vi.name, "dtype": vi.dtype.name(), "shape": vi.dims}))
            .collect()
    };
    let mut ops: std::collections::BTreeMap<String, usize> = Default::default();
    for n in &model.graph.nodes {
        *ops.entry(n.op_type.clone()).or_default() += 1;
    }
    let const_bytes: usize = model.graph.initializers.iter().map(|t| t.raw.len()).sum();
    let report = serde_json::json!({
        "file": file,
        "producer": format!("{} {}", model.producer_name, model.producer_version),
        "ir_version": model.ir_version,
        "opset": model.opset,
        "graph": get(meta::GRAPH),
        "spec": spec,
        "layout": get(meta::LAYOUT),
        "tile": get(meta::TILE),
        "compression_ratio": get(meta::RATIO).and_then(|r| r.parse::<f64>().ok()),
        "inputs": io(&model.graph.inputs),
        "outputs": io(&model.graph.outputs),
        "ops": ops,
        "nodes": model.graph.nodes.len(),
        "constant_bytes": const_bytes,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("file:        {}", file.display());
    println!(
        "producer:    {}  (ir {}, opset {})",
        report["producer"].as_str().unwrap_or(""),
        model.ir_version,
        model.opset
    );
    if spec.is_none() {
        println!("note:        no dctchop metadata (not exported by dctchop)");
    }
    for (k, v) in [
        ("graph", "graph"),
        ("layout", "layout"),
        ("tile", "tile"),
        ("ratio", "compression_ratio"),
    ] {
        if !report[v].is_null() {
            println!(
                "{:<12} {}",
                format!("{k}:"),
                report[v].to_string().trim_matches('"')
            );
        }
    }
    if let Some(s) = &spec {
        println!("spec:        {}", serde_json::to_string(s)?);
    }
    for (label, vis) in [
        ("input", &model.graph.inputs),
        ("output", &model.graph.outputs),
    ] {
        for vi in vis.iter() {
            println!(
                "{:<12} {} {} {:?}",
                format!("{label}:"),
                vi.name,
                vi.dtype.name(),
                vi.dims
            );
        }
    }
    let ops_s: Vec<String> = ops.iter().map(|(k, v)| format!("{k}x{v}")).collect();
    println!(
        "ops:         {}  ({} nodes)",
        ops_s.join(" "),
        model.graph.nodes.len()
    );
    println!("constants:   {} bytes", const_bytes);
    if model
        .graph
        .nodes
        .iter()
        .any(|n| !["MatMul", "Gather", "Reshape"].contains(&n.op_type.as_str()))
    {
        bail!(
            "{}: contains ops other than MatMul, Gather, Reshape",
            file.display()
        );
    }
    Ok(())
}
