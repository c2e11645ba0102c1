//! `dctchop run`: run any graph with one static input and output on a `.npy` tensor: float in,
//! float out, or int8/int16 codes in (a quantized decompress graph), float out.

use anyhow::{bail, Result};
use clap::Args;
use ndarray::ArrayD;
use std::path::PathBuf;
use std::time::Instant;

use crate::args::{fmt_shape, EngineArgs};
use dctchop::engine::Runner;
use dctchop::graph::{Direction, GraphFile};
use dctchop::npy::NpyData;
use dctchop::{Codes, Dtype, EngineKind};

#[derive(Args)]
pub struct RunArgs {
    /// An exported .onnx graph: float32 or float16, one static-shape input and one output (a
    /// quantized decompress graph takes int8/int16 codes).
    file: PathBuf,
    /// Input tensor (.npy) of exactly the graph's input shape: float16/32/64 for a float input,
    /// int8/int16 codes (of the graph's code type) for a quantized decompress graph.
    #[arg(long)]
    input: PathBuf,
    /// Output tensor (.npy, written in the graph's output dtype, or as codes with --codes).
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
    /// Refuse graphs whose run (constants, input, output and intermediate tensors, from their
    /// declared and inferred shapes) would need more memory than this many MB.
    #[arg(long, default_value_t = dctchop::budget::DEFAULT_MB)]
    max_memory_mb: u64,
    /// For a quantized compress graph: round its output (coefficients divided by their steps) to
    /// the spec's int8/int16 codes by the documented rule, and write the codes.
    #[arg(long)]
    codes: bool,
}

/// What the input file holds, checked against what the graph takes.
enum Input {
    Float(ArrayD<f32>),
    Codes(Codes),
}

pub fn run(a: RunArgs) -> Result<()> {
    if a.repeat == 0 {
        bail!("invalid --repeat = 0: allowed is 1 or more");
    }
    let budget = dctchop::budget::Budget::new(a.max_memory_mb)?;
    a.engine.options().check()?;
    dctchop::output::check_writable(&a.out, a.force)?;
    let g = GraphFile::read_within(&a.file, budget)?;
    let file = a.file.display();
    // --codes needs the quant of a compress graph.
    let code_out = if a.codes {
        match (&g.spec, g.direction) {
            (Some(spec), Some(Direction::Compress)) if spec.quant.is_some() => {
                spec.quant.as_ref().map(|q| q.code)
            }
            _ => bail!(
                "--codes: {file} is not a quantized compress graph (by its dctchop metadata); \
                 --codes rounds a quantized compress graph's output to codes"
            ),
        }
    } else {
        None
    };
    // The input is read whole: its size counts too.
    let input_len = std::fs::metadata(&a.input).map(|m| m.len()).unwrap_or(0);
    budget.check(
        &a.input,
        "reading this input",
        Some(input_len.saturating_mul(2)),
        "",
    )?;
    let data = dctchop::npy::read_npy(&a.input)?;
    if data.shape() != g.input.shape.as_slice() {
        bail!(
            "{}: wrong shape: expected {} (input '{}' of {file}), got {}",
            a.input.display(),
            fmt_shape(&g.input.shape),
            g.input.name,
            fmt_shape(data.shape())
        );
    }
    let stored = data.type_name();
    let input = match (g.codes, data) {
        (Some(c), NpyData::Codes(codes)) if codes.code_type() == c => Input::Codes(codes),
        (Some(c), _) => bail!(
            "{}: dtype {stored}, but {file} takes {} codes (input '{}' of a quantized \
             decompress graph)",
            a.input.display(),
            c.numpy_name(),
            g.input.name
        ),
        (None, NpyData::Codes(_)) => bail!(
            "{}: dtype {stored}, but {file} takes {} (input '{}'); integer codes are only for \
             quantized decompress graphs",
            a.input.display(),
            g.input.dtype.numpy_name(),
            g.input.name
        ),
        (None, NpyData::Float(x, descr)) => {
            let graph_descr = match g.input.dtype {
                Dtype::F32 => "<f4",
                Dtype::F16 => "<f2",
            };
            if descr != graph_descr {
                println!(
                    "converted {} from {stored} to {} (the graph's input dtype)",
                    a.input.display(),
                    g.input.dtype.numpy_name()
                );
            }
            Input::Float(x)
        }
    };
    let bytes_per = g.input.dtype.bytes();

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

    let once = |r: &mut Box<dyn Runner>| match &input {
        Input::Float(x) => r.run(x.view()),
        Input::Codes(c) => r.run_codes(c.view()),
    };
    if a.repeat > 1 {
        once(&mut runner)?; // warm-up
    }
    let mut times = Vec::with_capacity(a.repeat);
    let mut y = None;
    for _ in 0..a.repeat {
        let t = Instant::now();
        let out = once(&mut runner)?;
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
    let in_len = g.input.shape.iter().product::<usize>();
    let uncompressed = in_len.max(y.len()) * bytes_per;
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
    if let Some(code) = code_out {
        let (codes, clamped) = Codes::quantize(y.view(), code);
        dctchop::npy::write_npy_codes(&a.out, codes.view(), a.force)?;
        println!(
            "wrote {} ({} codes; {clamped} of {} values clamped to +-{})",
            a.out.display(),
            code.numpy_name(),
            y.len(),
            code.max()
        );
        return Ok(());
    }
    dctchop::npy::write_npy(&a.out, y.view(), g.output.dtype, a.force)?;
    println!(
        "wrote {} ({})",
        a.out.display(),
        g.output.dtype.numpy_name()
    );
    Ok(())
}
