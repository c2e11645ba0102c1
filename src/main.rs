//! The `dctchop` command line: a thin layer over the library.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use dctchop::export::{export, ExportOptions};
use dctchop::graph::{meta, spec_from_model};
use dctchop::target::{estimate, Overrides, Target};
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
    /// Measure compress/decompress throughput beside a memory copy (one JSON line per config
    /// with --json). Comma lists sweep: --res 64,256 --cf 2,4 --form full,8,32,auto.
    Bench(BenchArgs),
    /// Print the spec, ops, shapes and ratio of an exported .onnx graph.
    Inspect {
        /// An .onnx file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run an exported .onnx graph on a .npy tensor and write the result as .npy.
    Run(RunArgs),
    /// Compress .npy files or images into a sharded safetensors container (+ decompress graph).
    Compress(CompressArgs),
    /// Decompress a container into a .npy, a .png or a directory of PNGs.
    Decompress(DecompressArgs),
    /// Measure what compression does to your data (ratio as stored, PSNR, SSIM, errors,
    /// throughput) beside JPEG; table, results.csv/json and plots in -o DIR.
    Eval(dctchop::eval::cli::EvalArgs),
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
    /// chop (CF×CF square) or triangle (i+j<CF) [default: chop, or the target's].
    #[arg(long)]
    variant: Option<Variant>,
    /// Strip size of the matrix products: a multiple of the block, 'full' (the paper's dense
    /// form) or 'auto' [default: auto, or the target's].
    #[arg(long)]
    tile: Option<Tile>,
    /// Partial serialization: graphs process one (H/s × W/s) chunk; s must divide the block
    /// counts [default: 1, or what the target needs].
    #[arg(long)]
    serialize: Option<usize>,
    /// Element type of graph inputs, outputs and constants: f32 or f16 [default: f32, or the
    /// target's].
    #[arg(long)]
    dtype: Option<Dtype>,
    /// Platform profile: cpu, cuda, cs2, sn30, groq, ipu. Sets the defaults of --tile,
    /// --serialize, --dtype and --variant (explicit flags win) and checks the graphs against the
    /// platform's memory units.
    #[arg(long)]
    target: Option<Target>,
}

impl SpecArgs {
    /// The spec: explicit flags, then the target profile's defaults (cpu's when no target).
    fn spec(&self) -> Spec {
        let base = Spec::new(self.res.0, self.res.1, self.cf)
            .with_batch(self.batch)
            .with_channels(self.channels)
            .with_block(self.block);
        let user = Overrides {
            tile: self.tile,
            serialize: self.serialize,
            dtype: self.dtype,
            variant: self.variant,
        };
        self.target
            .unwrap_or(Target::Cpu)
            .profile()
            .apply(base, user)
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
    dctchop::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Export(a) => cmd_export(a),
        Command::Bench(a) => cmd_bench(a),
        Command::Inspect { file, json } if dctchop::container::looks_like_container(&file) => {
            cmd_inspect_container(file, json)
        }
        Command::Inspect { file, json } => cmd_inspect(file, json),
        Command::Run(a) => cmd_run(a),
        Command::Compress(a) => cmd_compress(a),
        Command::Decompress(a) => cmd_decompress(a),
        Command::Eval(a) => dctchop::eval::cli::run(a).map_err(anyhow::Error::from),
    };
    if let Err(e) = result {
        eprintln!("dctchop: error: {e:#}");
        std::process::exit(1);
    }
}

fn cmd_export(a: ExportArgs) -> Result<()> {
    let spec = a.spec.spec();
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

#[derive(Args)]
struct BenchArgs {
    /// Resolutions: comma list of N or HxW.
    #[arg(long, value_delimiter = ',', value_parser = parse_res, default_value = "256")]
    res: Vec<Res>,
    /// Chop factors (comma list).
    #[arg(long, value_delimiter = ',', default_value = "4")]
    cf: Vec<usize>,
    /// Samples per graph run (comma list).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    batch: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    channels: usize,
    #[arg(long, default_value_t = 8)]
    block: usize,
    /// Variants (comma list): chop, triangle.
    #[arg(long, value_delimiter = ',', default_value = "chop")]
    variant: Vec<Variant>,
    /// Forms (comma list of tiles): full (the paper's dense form), auto, or N.
    #[arg(long, value_delimiter = ',', default_value = "full,auto")]
    form: Vec<Tile>,
    /// Engines (comma list).
    #[arg(long, value_delimiter = ',', default_value = "tract")]
    engine: Vec<dctchop::EngineKind>,
    /// Thread counts (comma list); 0 = all cores.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    threads: Vec<usize>,
    /// cpu or cuda[:N] (CUDA needs --engine ort and an onnxruntime-gpu library; input and
    /// output are bound on the device, so the times exclude host transfers).
    #[arg(long, default_value = "cpu")]
    device: dctchop::Device,
    #[arg(long, default_value = "f32")]
    dtype: Dtype,
    /// Seconds of timed runs per direction and configuration (at least 3 runs).
    #[arg(long, default_value_t = 1.0)]
    budget: f64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write every measured configuration as a CSV row to this file (written atomically
    /// when the run ends).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Overwrite an existing --csv file.
    #[arg(long)]
    force: bool,
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    if !a.json {
        println!(
            "{:<6} {:>3} {:<9} {:<6} {:<8} {:>10} {:>3} {:>5} {:>9} {:>9} {:>9} {:>6} {:>6} {:>7} {:>7}",
            "engine",
            "thr",
            "variant",
            "form",
            "tile",
            "res",
            "cf",
            "batch",
            "comp GB/s",
            "dec GB/s",
            "copy GB/s",
            "c/cp",
            "d/cp",
            "c/dense",
            "d/dense"
        );
    }
    let mut csv = match &a.csv {
        Some(path) => Some(dctchop::bench::CsvWriter::create(path, a.force)?),
        None => None,
    };
    for &engine in &a.engine {
        for &threads in &a.threads {
            for &variant in &a.variant {
                for &res in &a.res {
                    for &cf in &a.cf {
                        for &batch in &a.batch {
                            let mut opts = dctchop::EngineOptions::default()
                                .with_kind(engine)
                                .with_device(a.device);
                            if threads > 0 {
                                opts = opts.with_threads(threads);
                            }
                            // All forms of one configuration are measured back to back, so the
                            // ratios to the dense form compare runs under the same load.
                            let mut points = Vec::with_capacity(a.form.len());
                            for &form in &a.form {
                                let spec = Spec::new(res.0, res.1, cf)
                                    .with_batch(batch)
                                    .with_channels(a.channels)
                                    .with_block(a.block)
                                    .with_variant(variant)
                                    .with_tile(form)
                                    .with_dtype(a.dtype);
                                let p = dctchop::bench::measure(&spec, &opts, a.budget)
                                    .with_context(|| format!("benchmark of {}", spec.name()))?;
                                points.push(p);
                            }
                            dctchop::bench::relate_to_dense(&mut points);
                            for p in &points {
                                if let Some(w) = csv.as_mut() {
                                    w.write(p)?;
                                }
                                if a.json {
                                    println!("{}", serde_json::to_string(p)?);
                                } else {
                                    let r = |v: Option<f64>| {
                                        v.map_or("-".to_string(), |v| format!("{v:.2}"))
                                    };
                                    println!(
                                        "{:<6} {:>3} {:<9} {:<6} {:<8} {:>10} {:>3} {:>5} {:>9.3} {:>9.3} {:>9.3} {:>6.2} {:>6.2} {:>7} {:>7}",
                                        p.engine, p.threads, p.variant, p.form, p.tile_resolved, p.res, p.cf,
                                        p.batch, p.compress_gbps, p.decompress_gbps, p.memcpy_gbps,
                                        p.compress_vs_memcpy, p.decompress_vs_memcpy,
                                        r(p.compress_vs_dense), r(p.decompress_vs_dense)
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(w) = csv {
        let path = w.finish()?;
        eprintln!("dctchop: wrote {}", path.display());
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

#[derive(Args)]
struct RunArgs {
    /// An exported .onnx graph: float32 or float16, one static-shape input and one output.
    file: PathBuf,
    /// Input tensor (.npy, float16/32/64) of exactly the graph's input shape.
    #[arg(long)]
    input: PathBuf,
    /// Output tensor (.npy, written in the graph's output dtype).
    #[arg(short, long)]
    out: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
    /// Time this many runs (after one warm-up run when more than 1) and report the median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

fn cmd_run(a: RunArgs) -> Result<()> {
    use onnx_export::DataType;
    use std::time::Instant;
    if a.repeat == 0 {
        bail!("invalid --repeat = 0: allowed is 1 or more");
    }
    if a.out.exists() && !a.force {
        bail!(
            "{}: already exists; pass --force to overwrite it",
            a.out.display()
        );
    }
    let file = a.file.display();
    let bytes = std::fs::read(&a.file).with_context(|| format!("{file}: cannot read"))?;
    let model = onnx_export::Model::decode(&bytes)
        .with_context(|| format!("{file}: not a readable ONNX model"))?;
    let (inp, outp) = match (&model.graph.inputs[..], &model.graph.outputs[..]) {
        ([i], [o]) => (i, o),
        (i, o) => bail!(
            "{file}: has {} inputs and {} outputs; `run` needs exactly one of each",
            i.len(),
            o.len()
        ),
    };
    let (dtype, npy_type, bytes_per) = match inp.dtype {
        DataType::F32 => (Dtype::F32, dctchop::npy::NpyType::F32, 4),
        DataType::F16 => (Dtype::F16, dctchop::npy::NpyType::F16, 2),
        other => bail!(
            "{file}: input '{}' is {other}; `run` takes float32 or float16 graphs",
            inp.name
        ),
    };
    if outp.dtype != inp.dtype {
        bail!(
            "{file}: input '{}' is {} but output '{}' is {}; `run` needs one dtype",
            inp.name,
            inp.dtype,
            outp.name,
            outp.dtype
        );
    }
    let static_shape = |dims: &[i64]| -> Option<Vec<usize>> {
        dims.iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect()
    };
    let in_shape = static_shape(&inp.dims).with_context(|| {
        format!(
            "{file}: input '{}' has no static shape ({:?})",
            inp.name, inp.dims
        )
    })?;
    let out_shape = static_shape(&outp.dims).with_context(|| {
        format!(
            "{file}: output '{}' has no static shape ({:?})",
            outp.name, outp.dims
        )
    })?;

    let (x, descr) = dctchop::npy::read_npy_f32(&a.input)?;
    if x.shape() != in_shape.as_slice() {
        bail!(
            "{}: wrong shape: expected {} (input '{}' of {file}), got {}",
            a.input.display(),
            fmt_shape(&in_shape),
            inp.name,
            fmt_shape(x.shape())
        );
    }
    let npy_name = |d: &str| match d {
        "<f2" => "float16",
        "<f4" => "float32",
        "<f8" => "float64",
        _ => "?",
    };
    let graph_descr = if dtype == Dtype::F32 { "<f4" } else { "<f2" };
    if descr != graph_descr {
        println!(
            "converted {} from {} to {} (the graph's input dtype)",
            a.input.display(),
            npy_name(&descr),
            inp.dtype
        );
    }

    let opts = a.engine.options();
    let t0 = Instant::now();
    let mut runner = dctchop::engine::compile_bytes(&bytes, dtype, &opts)?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let engine = match a.engine.engine {
        dctchop::EngineKind::Ort => {
            let (path, version) = dctchop::engine::ort_library()?;
            format!("ort (ONNX Runtime {version}, {})", path.display())
        }
        other => other.to_string(),
    };
    println!(
        "engine {engine}, device {}, {} threads; compiled in {compile_ms:.1} ms",
        a.engine.device,
        a.engine
            .threads
            .unwrap_or_else(|| { std::thread::available_parallelism().map_or(1, |n| n.get()) })
    );

    let mut y = if a.repeat > 1 {
        Some(runner.run(x.view())?) // warm-up
    } else {
        None
    };
    let mut times = Vec::with_capacity(a.repeat);
    for _ in 0..a.repeat {
        let t = Instant::now();
        let out = runner.run(x.view())?;
        times.push(t.elapsed().as_secs_f64());
        y = Some(out);
    }
    let y = y.expect("at least one run");
    if y.shape() != out_shape.as_slice() {
        bail!(
            "{file}: the engine returned shape {}, the graph declares {}",
            fmt_shape(y.shape()),
            fmt_shape(&out_shape)
        );
    }
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    let median = if times.len() % 2 == 1 {
        times[mid]
    } else {
        (times[mid - 1] + times[mid]) / 2.0
    };
    let uncompressed = x.len().max(y.len()) * bytes_per;
    let runs = if a.repeat > 1 {
        format!("median of {} runs after 1 warm-up", a.repeat)
    } else {
        "1 run".to_string()
    };
    println!(
        "{} {} -> {} {}: {:.3} ms ({runs}), {:.2} GB/s of uncompressed data ({uncompressed} bytes)",
        inp.name,
        fmt_shape(&in_shape),
        outp.name,
        fmt_shape(&out_shape),
        median * 1e3,
        uncompressed as f64 / median / 1e9
    );
    dctchop::npy::write_npy(&a.out, y.view(), npy_type)?;
    println!("wrote {} ({})", a.out.display(), outp.dtype);
    Ok(())
}

// ---- compress / decompress: files in, a container out, and back -----------------------------

#[derive(Args)]
struct CompressArgs {
    /// Inputs: one .npy (uint8/uint16/int16/int32/float16/32/64; (H,W), (C,H,W) or (N,C,H,W)),
    /// or image files (PNG, JPEG, TIFF) and directories of images, all of one size, or one HDF5
    /// dataset FILE.h5:/DATASET[:LAYOUT] (LAYOUT nhw, hwc, nhwc; needs `--features hdf5`).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Container stem: writes OUT.00000.safetensors, ... and OUT.decompress.onnx.
    #[arg(short, long)]
    out: PathBuf,
    /// Chop factor: 1..=block.
    #[arg(long, default_value_t = 4)]
    cf: usize,
    /// chop (CF×CF square) or triangle (i+j<CF).
    #[arg(long, default_value = "chop")]
    variant: Variant,
    /// DCT block size: 4, 8, 16 or 32.
    #[arg(long, default_value_t = 8)]
    block: usize,
    /// Strip size of the matrix products: a multiple of the block, 'full' or 'auto'.
    #[arg(long, default_value = "auto")]
    tile: Tile,
    #[command(flatten)]
    engine: EngineArgs,
    /// Element type of the stored coefficients: f32 or f16.
    #[arg(long, default_value = "f32")]
    store: dctchop::container::Store,
    /// Samples per graph run (also the batch of the written decompress graph).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Largest shard file in MB (10^6 bytes); one sample per shard if a sample is larger.
    #[arg(long, default_value_t = 1024)]
    shard_mb: u64,
    /// Refuse inputs whose batch would need more memory than this many MB.
    #[arg(long, default_value_t = 4096)]
    max_memory_mb: u64,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct DecompressArgs {
    /// A container: its stem OUT or any shard OUT.NNNNN.safetensors.
    input: PathBuf,
    /// OUT.npy (float32 [N,C,H,W]), OUT.png (one sample) or a directory (one PNG per sample).
    #[arg(short, long)]
    out: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Samples per graph run.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// How `compress` and `decompress` write and report.
#[derive(Args)]
struct OutputArgs {
    /// Overwrite existing output files.
    #[arg(long)]
    force: bool,
    /// No progress bar and no summary line.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// A progress bar on stderr that appears only after ~1 s, and never with --quiet or when stderr
/// is not a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    start: std::time::Instant,
    shown: bool,
}

impl Progress {
    fn new(quiet: bool, what: &'static str) -> Progress {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::hidden(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} samples {elapsed_precise} eta {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(what);
            b
        });
        Progress {
            bar,
            start: std::time::Instant::now(),
            shown: false,
        }
    }
    fn update(&mut self, done: usize, total: usize) {
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
            if !self.shown && self.start.elapsed().as_secs_f64() > 1.0 && done < total {
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                self.shown = true;
            }
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The engine flags shared by `run`, `compress` and `decompress`.
#[derive(Args)]
struct EngineArgs {
    /// tract (built in) or ort (ONNX Runtime 1.31, loaded at run time).
    #[arg(long, default_value = "tract")]
    engine: dctchop::EngineKind,
    /// cpu, or cuda[:N] (ort engine with onnxruntime-gpu only).
    #[arg(long, default_value = "cpu")]
    device: dctchop::Device,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl EngineArgs {
    fn options(&self) -> dctchop::EngineOptions {
        dctchop::EngineOptions {
            kind: self.engine,
            threads: self.threads,
            device: self.device,
        }
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn cmd_compress(a: CompressArgs) -> Result<()> {
    if a.shard_mb == 0 {
        bail!("invalid --shard-mb = 0: allowed is an integer >= 1 (MB)");
    }
    let opts = dctchop::pipeline::CompressOptions {
        cf: a.cf,
        block: a.block,
        variant: a.variant,
        tile: a.tile,
        batch: a.batch,
        store: a.store,
        shard_bytes: a.shard_mb.saturating_mul(1_000_000),
        max_memory_mb: a.max_memory_mb,
        engine: a.engine.options(),
        force: a.output.force,
    };
    let mut p = Progress::new(a.output.quiet, "compress");
    let r = dctchop::pipeline::compress(&a.inputs, &a.out, &opts, &mut |d, t| p.update(d, t));
    p.finish();
    let r = r?;
    if a.output.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if !a.output.quiet {
        let psnr = r
            .psnr_db
            .map_or("inf (exact)".to_string(), |v| format!("{v:.2} dB"));
        println!(
            "compressed {} ({} {}, {:.2} MB) -> {} shard(s), {:.2} MB: ratio on disk {:.3} \
             (coefficient ratio {:.3}), PSNR {psnr} (peak = range {}..{}), {:.1} MB/s",
            r.input,
            fmt_shape(&r.original_shape),
            r.original_dtype,
            mb(r.original_bytes),
            r.shards.len(),
            mb(r.file_bytes),
            r.file_ratio,
            r.coefficient_ratio,
            r.value_min,
            r.value_max,
            r.mb_per_s
        );
        println!("wrote {} and {}", r.shards[0].display(), r.graph.display());
    }
    Ok(())
}

fn cmd_decompress(a: DecompressArgs) -> Result<()> {
    let engine = a.engine.options();
    let mut p = Progress::new(a.output.quiet, "decompress");
    let r = dctchop::pipeline::decompress(
        &a.input,
        &a.out,
        &engine,
        a.batch,
        a.output.force,
        &mut |d, t| p.update(d, t),
    );
    p.finish();
    let r = r?;
    if a.output.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if !a.output.quiet {
        println!(
            "decompressed {} samples {} (original {}) -> {} ({} file(s)), {:.1} MB/s",
            r.samples,
            fmt_shape(&r.shape),
            r.original_dtype,
            a.out.display(),
            r.outputs.len(),
            r.mb_per_s
        );
    }
    Ok(())
}

fn cmd_inspect_container(file: PathBuf, json: bool) -> Result<()> {
    let c = dctchop::container::open(&file)?;
    let meta: std::collections::BTreeMap<_, _> = c.header.raw.iter().collect();
    let mut text = String::new();
    if json {
        let v = serde_json::json!({
            "container": c.stem,
            "shards": c.shards,
            "metadata": meta,
        });
        text = serde_json::to_string_pretty(&v)? + "\n";
    } else {
        text += &format!(
            "container {} ({} shard(s))\n",
            c.stem.display(),
            c.shards.len()
        );
        for (k, v) in meta {
            text += &format!("  {k}: {v}\n");
        }
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(())
}
