//! Runtimes that execute a plan. The graph is data (an ONNX model); a graph engine (tract, ONNX
//! Runtime) compiles it once into a [`Runner`] that is reused for every batch. The native engine
//! runs the plan's block matrices directly, and the reference engine evaluates its program in
//! f64.

pub mod native;
#[cfg(feature = "ort")]
pub mod ort;
pub mod reference;
pub mod rewrite;
pub mod tract;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::graph::Direction;
use crate::pixels::PixelsView;
use crate::plan::Plan;
use crate::quant::CodeType;
pub use crate::quant::CodesView;
use crate::spec::Dtype;

/// Which runtime executes a plan or a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// The default: the native engine for plans on the CPU, tract for ONNX files, ONNX Runtime
    /// on a CUDA device.
    #[default]
    Auto,
    /// The plan's block matrices run by fused, vectorized CPU kernels (no ONNX). Plans only.
    Native,
    /// tract-onnx (pure Rust, CPU): runs the ONNX graphs.
    Tract,
    /// The plan's program evaluated in f64 by plain Rust code (no ONNX). Slow; a reference.
    Reference,
    /// ONNX Runtime through the `ort` crate (cargo feature `ort`, on by default), loading the
    /// ONNX Runtime 1.31 shared library at run time (see the `engine::ort` module for the lookup).
    Ort,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Auto => "auto",
            EngineKind::Native => "native",
            EngineKind::Tract => "tract",
            EngineKind::Reference => "reference",
            EngineKind::Ort => "ort",
        })
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(EngineKind::Auto),
            "native" => Ok(EngineKind::Native),
            "tract" => Ok(EngineKind::Tract),
            "reference" | "ref" => Ok(EngineKind::Reference),
            "ort" | "onnxruntime" => Ok(EngineKind::Ort),
            _ => Err(format!(
                "unknown engine '{s}': allowed are auto, native, tract, ort, reference"
            )),
        }
    }
}

/// Where an engine runs the graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// CUDA device N (ONNX Runtime's CUDA execution provider; needs `onnxruntime-gpu`).
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown device '{s}': allowed are cpu, cuda, cuda:N");
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(bad),
        }
    }
}

/// The most worker threads an engine may be given ([`EngineOptions::check`]).
pub const MAX_THREADS: usize = 1024;

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Engine settings.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    pub kind: EngineKind,
    /// Worker threads; `None` = all cores.
    pub threads: Option<usize>,
    /// Where to run (only the `ort` engine runs anywhere but the CPU).
    pub device: Device,
}

impl EngineOptions {
    /// The default engine (native for plans on the CPU).
    pub fn auto() -> Self {
        EngineOptions::default()
    }
    pub fn native() -> Self {
        EngineOptions::default().with_kind(EngineKind::Native)
    }
    pub fn tract() -> Self {
        EngineOptions::default().with_kind(EngineKind::Tract)
    }
    pub fn with_kind(mut self, kind: EngineKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }
    /// Check the options: `threads` in 1..=[`MAX_THREADS`] (more only thrash: thread start-up
    /// alone took minutes at 100000).
    pub fn check(&self) -> Result<()> {
        match self.threads {
            Some(t) if t == 0 || t > MAX_THREADS => Err(crate::error::Error::invalid_option(
                "--threads",
                t,
                format!("1..={MAX_THREADS} (default: all {} cores)", cores()),
            )),
            _ => Ok(()),
        }
    }

    /// The thread count engines use: `threads`, or all cores.
    pub fn resolved_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

/// A compiled graph with one input and one output, both of fixed shape. Float data crosses the
/// API as f32; graphs of another float dtype convert at the boundary.
///
/// A quantized decompress graph takes integer codes instead ([`Runner::input_code`] is `Some`):
/// run it with [`Runner::run_codes_into`] / [`Runner::run_codes`], which hand the codes to the
/// engine as int8/int16 tensors, never through f32. The float methods refuse a code graph, the
/// code methods refuse a float graph or codes of the wrong type, each with one-line
/// [`Error::Engine`] naming what the graph takes. An engine that runs code graphs overrides
/// `input_code` and `run_codes_into`; the defaults describe a float-only engine.
pub trait Runner: Send {
    fn input_shape(&self) -> &[usize];
    fn output_shape(&self) -> &[usize];

    /// Whether `run` and `run_into` take any number of samples (the declared shapes' first axis
    /// is then only the nominal batch). Graph engines take exactly the declared shape.
    fn any_batch(&self) -> bool {
        false
    }
    /// Run once on an input of exactly `input_shape()`.
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>>;

    /// The code type the graph's input takes (a quantized decompress graph), or `None` when it
    /// takes floats.
    fn input_code(&self) -> Option<CodeType> {
        None
    }

    /// Run a code graph once on `codes` (of exactly `input_shape()` and of the graph's code
    /// type) and write the result into `out` (of exactly `output_shape()`).
    fn run_codes_into(&mut self, codes: CodesView<'_>, out: ArrayViewMutD<'_, f32>) -> Result<()> {
        let _ = out;
        Err(code_mismatch(
            "this",
            self.input_code(),
            Some(codes.code_type()),
        ))
    }

    /// [`Runner::run_codes_into`] that also returns `(sum of squared differences, largest
    /// absolute difference)` of `out` against `reference` (in `out`'s layout), in f64, computed
    /// as the output is written. `None`: not supported here (the caller compares the output).
    fn run_codes_compare(
        &mut self,
        codes: CodesView<'_>,
        out: ArrayViewMutD<'_, f32>,
        reference: PixelsView<'_>,
    ) -> Option<Result<(f64, f64)>> {
        let _ = (codes, out, reference);
        None
    }

    /// Whether [`Runner::compress_codes`] and [`Runner::run_codes_compare`] read integer
    /// samples themselves (else the caller converts them to f32 first).
    fn takes_integer_pixels(&self) -> bool {
        false
    }

    /// A quantized compress runner that can round its output to codes itself (the rule of
    /// [`crate::quant::round_code`]) returns them with the number clamped; `None`: the caller
    /// rounds [`Runner::run`]'s output. `input` holds any number of samples when
    /// [`Runner::any_batch`], and integer samples when [`Runner::takes_integer_pixels`].
    fn compress_codes(
        &mut self,
        input: PixelsView<'_>,
        code: CodeType,
    ) -> Option<Result<(crate::quant::Codes, usize)>> {
        let _ = (input, code);
        None
    }

    /// [`Runner::run_codes_into`] into a new array.
    fn run_codes(&mut self, codes: CodesView<'_>) -> Result<ArrayD<f32>> {
        let mut out = ArrayD::<f32>::zeros(self.output_shape());
        self.run_codes_into(codes, out.view_mut())?;
        Ok(out)
    }

    /// Run once and write the result into `out`, of exactly `output_shape()`. Engines override
    /// it to copy straight from their own output buffer, one full-size copy fewer than `run`
    /// followed by an assignment.
    fn run_into(&mut self, input: ArrayViewD<'_, f32>, out: ArrayViewMutD<'_, f32>) -> Result<()> {
        run_then_write(self, input, out)
    }

    /// Run `reps` times on the same input and return each run's wall time in seconds. Engines
    /// override this to convert the input once, outside the timed region, so only the graph
    /// execution is measured.
    fn time_runs(&mut self, input: ArrayViewD<'_, f32>, reps: usize) -> Result<Vec<f64>> {
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t0 = std::time::Instant::now();
            let out = self.run(input.view())?;
            times.push(t0.elapsed().as_secs_f64());
            drop(out);
        }
        Ok(times)
    }
}

impl EngineKind {
    /// The engine `Auto` stands for when running a plan on `device`.
    pub fn for_plan(self, device: Device) -> EngineKind {
        match (self, device) {
            (EngineKind::Auto, Device::Cpu) => EngineKind::Native,
            (EngineKind::Auto, Device::Cuda(_)) => EngineKind::Ort,
            (k, _) => k,
        }
    }
    /// The engine `Auto` stands for when running an ONNX file on `device`.
    pub fn for_graph(self, device: Device) -> EngineKind {
        match (self, device) {
            (EngineKind::Auto, Device::Cpu) => EngineKind::Tract,
            (EngineKind::Auto, Device::Cuda(_)) => EngineKind::Ort,
            (k, _) => k,
        }
    }
}

/// Compile one direction of `plan` with the chosen engine.
pub fn compile(plan: &Plan, direction: Direction, opts: &EngineOptions) -> Result<Box<dyn Runner>> {
    opts.check()?;
    let opts = &opts.clone().with_kind(opts.kind.for_plan(opts.device));
    match opts.kind {
        EngineKind::Tract | EngineKind::Ort => {
            let model = plan.model(direction, crate::DEFAULT_OPSET)?;
            let bytes = model.encode()?;
            compile_bytes(&bytes, plan.spec.dtype, opts)
        }
        EngineKind::Native => {
            check_device(opts)?;
            Ok(Box::new(native::NativeRunner::new(plan, direction, opts)?))
        }
        EngineKind::Auto => unreachable!("resolved above"),
        EngineKind::Reference => {
            check_device(opts)?;
            let program = match direction {
                Direction::Compress => plan.compress.clone(),
                Direction::Decompress => plan.decompress.clone(),
            };
            Ok(Box::new(reference::ReferenceRunner::new(program)))
        }
    }
}

/// Compile an ONNX model given as bytes, whose input and output are `dtype` tensors (any graph
/// with one static-shape input and output, e.g. an exported `.onnx` file). Not for the
/// `reference` engine, which evaluates a [`Plan`]'s program rather than ONNX.
pub fn compile_bytes(bytes: &[u8], dtype: Dtype, opts: &EngineOptions) -> Result<Box<dyn Runner>> {
    opts.check()?;
    let opts = &opts.clone().with_kind(opts.kind.for_graph(opts.device));
    check_device(opts)?;
    match opts.kind {
        EngineKind::Tract => Ok(Box::new(tract::TractRunner::from_bytes(
            bytes, dtype, opts,
        )?)),
        EngineKind::Ort => compile_ort(bytes, dtype, opts),
        EngineKind::Reference | EngineKind::Native => Err(crate::error::Error::Engine {
            engine: if opts.kind == EngineKind::Native {
                "native"
            } else {
                "reference"
            },
            message: "it runs a dctchop plan, not ONNX bytes, so it cannot run a graph file; use \
                      the tract or ort engine"
                .into(),
        }),
        EngineKind::Auto => unreachable!("resolved above"),
    }
}

#[cfg(feature = "ort")]
fn compile_ort(bytes: &[u8], dtype: Dtype, opts: &EngineOptions) -> Result<Box<dyn Runner>> {
    Ok(Box::new(self::ort::OrtRunner::from_bytes(
        bytes, dtype, opts,
    )?))
}

#[cfg(not(feature = "ort"))]
fn compile_ort(_: &[u8], _: Dtype, _: &EngineOptions) -> Result<Box<dyn Runner>> {
    Err(not_built())
}

#[cfg(not(feature = "ort"))]
fn not_built() -> crate::error::Error {
    crate::error::Error::Engine {
        engine: "ort",
        message: "dctchop was built without the 'ort' feature; rebuild with default features \
                  (or --features ort) to use ONNX Runtime"
            .into(),
    }
}

/// Find and load the ONNX Runtime library the `ort` engine uses (once per process) and return
/// its path and version, or why it cannot be used.
pub fn ort_library() -> Result<(std::path::PathBuf, String)> {
    #[cfg(feature = "ort")]
    {
        let lib = self::ort::library()?;
        Ok((lib.path, lib.version))
    }
    #[cfg(not(feature = "ort"))]
    {
        Err(not_built())
    }
}

/// Only ONNX Runtime can run on something other than the CPU.
fn check_device(opts: &EngineOptions) -> Result<()> {
    if opts.device != Device::Cpu && opts.kind != EngineKind::Ort {
        return Err(crate::error::Error::Engine {
            engine: match opts.kind {
                EngineKind::Tract => "tract",
                EngineKind::Native => "native",
                _ => "reference",
            },
            message: format!(
                "runs on the CPU only, not on --device {}; use --engine ort (with onnxruntime-gpu) \
                 for CUDA",
                opts.device
            ),
        });
    }
    Ok(())
}

/// `run_into` by way of `run`: the default, and what engines fall back to for paths they do not
/// write in place.
pub(crate) fn run_then_write<R: Runner + ?Sized>(
    r: &mut R,
    input: ArrayViewD<'_, f32>,
    out: ArrayViewMutD<'_, f32>,
) -> Result<()> {
    let y = r.run(input)?;
    write_output(y.view(), out, r.output_shape())
}

/// Copy an engine's output (in the `declared` shape, or the same elements in another row-major
/// shape) into `out`, which must have the declared shape: a plain memory copy when both are
/// contiguous.
pub(crate) fn write_output(
    y: ArrayViewD<'_, f32>,
    mut out: ArrayViewMutD<'_, f32>,
    declared: &[usize],
) -> Result<()> {
    if out.shape() != declared || y.len() != out.len() {
        return Err(crate::error::Error::Shape {
            what: "engine output buffer".into(),
            expected: declared.to_vec(),
            got: out.shape().to_vec(),
        });
    }
    match (y.as_slice(), out.as_slice_mut()) {
        (Some(src), Some(dst)) => dst.copy_from_slice(src),
        _ => {
            let shape = out.shape().to_vec();
            let y = y
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order(shape)
                .expect("same length");
            out.assign(&y);
        }
    }
    Ok(())
}

/// The one-line error for an input of the wrong kind: `takes` is what the graph's input takes
/// (`None` = floats), `got` what it was given (`None` = floats).
pub(crate) fn code_mismatch(
    engine: &'static str,
    takes: Option<CodeType>,
    got: Option<CodeType>,
) -> Error {
    let name = |c: Option<CodeType>| c.map_or("float", CodeType::numpy_name);
    let how = match takes {
        Some(_) => "a quantized decompress graph: pass codes with run_codes",
        None => "codes are only for quantized decompress graphs",
    };
    Error::Engine {
        engine,
        message: format!(
            "the graph's input takes {} values, got {} ({how})",
            name(takes),
            name(got)
        ),
    }
}

/// Check that a runner whose input takes `takes` may be given `got`.
pub(crate) fn check_code(
    engine: &'static str,
    takes: Option<CodeType>,
    got: Option<CodeType>,
) -> Result<()> {
    if takes != got {
        return Err(code_mismatch(engine, takes, got));
    }
    Ok(())
}

/// Check an input's shape against a runner's.
pub(crate) fn check_shape(engine: &'static str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected != got {
        return Err(crate::error::Error::Shape {
            what: format!("{engine} engine input"),
            expected: expected.to_vec(),
            got: got.to_vec(),
        });
    }
    Ok(())
}
