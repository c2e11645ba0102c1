//! `dctchop run`: run any float graph with one static input and output on a `.npy` tensor.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

use crate::args::{fmt_shape, EngineArgs};
use dctchop::graph::GraphFile;
use dctchop::{Dtype, EngineKind};

#[derive(Args)]
pub struct RunArgs {
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

pub fn run(a: RunArgs) -> Result<()> {
    if a.repeat == 0 {
        bail!("invalid --repeat = 0: allowed is 1 or more");
    }
    dctchop::output::check_writable(&a.out, a.force)?;
    let g = GraphFile::read(&a.file)?;
    let file = a.file.display();
    let (x, descr) = dctchop::npy::read_npy_f32(&a.input)?;
    if x.shape() != g.input.shape.as_slice() {
        bail!(
            "{}: wrong shape: expected {} (input '{}' of {file}), got {}",
            a.input.display(),
            fmt_shape(&g.input.shape),
            g.input.name,
            fmt_shape(x.shape())
        );
    }
    let graph_descr = match g.input.dtype {
        Dtype::F32 => "<f4",
        Dtype::F16 => "<f2",
    };
    let bytes_per = g.input.dtype.bytes();
    if descr != graph_descr {
        let name = match descr.as_str() {
            "<f2" => "float16",
            "<f4" => "float32",
            "<f8" => "float64",
            _ => "?",
        };
        println!(
            "converted {} from {name} to {} (the graph's input dtype)",
            a.input.display(),
            g.input.dtype.numpy_name()
        );
    }

    let opts = a.engine.options();
    let t0 = Instant::now();
    let mut runner = dctchop::engine::compile_bytes(&g.bytes, g.input.dtype, &opts)?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let engine = match a.engine.engine.for_graph(a.engine.device) {
        EngineKind::Ort => {
            let (path, version) = dctchop::engine::ort_library()?;
            format!("ort (ONNX Runtime {version}, {})", path.display())
        }
        other => other.to_string(),
    };
    println!(
        "engine {engine}, device {}, {} threads; compiled in {compile_ms:.1} ms",
        a.engine.device,
        opts.resolved_threads()
    );

    if a.repeat > 1 {
        runner.run(x.view())?; // warm-up
    }
    let mut times = Vec::with_capacity(a.repeat);
    let mut y = None;
    for _ in 0..a.repeat {
        let t = Instant::now();
        let out = runner.run(x.view())?;
        times.push(t.elapsed().as_secs_f64());
        y = Some(out);
    }
    let y = y.expect("at least one run");
    if y.shape() != g.output.shape.as_slice() {
        bail!(
            "{file}: the engine returned shape {}, the graph declares {}",
            fmt_shape(y.shape()),
            fmt_shape(&g.output.shape)
        );
    }
    let median = dctchop::bench::median(&times);
    let uncompressed = x.len().max(y.len()) * bytes_per;
    let runs = if a.repeat > 1 {
        format!("median of {} runs after 1 warm-up", a.repeat)
    } else {
        "1 run".to_string()
    };
    println!(
        "{} {} -> {} {}: {:.3} ms ({runs}), {:.2} GB/s of uncompressed data ({uncompressed} bytes)",
        g.input.name,
        fmt_shape(&g.input.shape),
        g.output.name,
        fmt_shape(&g.output.shape),
        median * 1e3,
        uncompressed as f64 / median / 1e9
    );
    dctchop::npy::write_npy(&a.out, y.view(), g.output.dtype, a.force)?;
    println!(
        "wrote {} ({})",
        a.out.display(),
        g.output.dtype.numpy_name()
    );
    Ok(())
}
