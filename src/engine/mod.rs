//! Runtimes that execute a plan's graphs. The graph is data (an ONNX model); an engine compiles
//! it once into a [`Runner`] that is reused for every batch.

pub mod reference;
pub mod tract;

use ndarray::{ArrayD, ArrayViewD};
use std::fmt;
use std::str::FromStr;

use crate::error::Result;
use crate::graph::Direction;
use crate::plan::Plan;

/// Which runtime executes the graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// tract-onnx (pure Rust, CPU). The default: needs nothing installed.
    #[default]
    Tract,
    /// The plan's program evaluated in f64 by plain Rust code (no ONNX). Slow; a reference.
    Reference,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Tract => "tract",
            EngineKind::Reference => "reference",
        })
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tract" => Ok(EngineKind::Tract),
            "reference" | "ref" => Ok(EngineKind::Reference),
            _ => Err(format!(
                "unknown engine '{s}': allowed are tract, reference"
            )),
        }
    }
}

/// Engine settings.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    pub kind: EngineKind,
    /// Worker threads; `None` = all cores.
    pub threads: Option<usize>,
}

impl EngineOptions {
    pub fn tract() -> Self {
        EngineOptions::default()
    }
    pub fn with_kind(mut self, kind: EngineKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }
    pub(crate) fn resolved_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

/// A compiled graph with one input and one output, both of fixed shape. Data crosses the API as
/// f32; graphs of another dtype convert at the boundary.
pub trait Runner: Send {
    fn input_shape(&self) -> &[usize];
    fn output_shape(&self) -> &[usize];
    /// Run once on an input of exactly `input_shape()`.
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>>;
}

/// Compile one direction of `plan` with the chosen engine.
pub fn compile(plan: &Plan, direction: Direction, opts: &EngineOptions) -> Result<Box<dyn Runner>> {
    match opts.kind {
        EngineKind::Tract => {
            let model = plan.model(direction, crate::DEFAULT_OPSET)?;
            let bytes = model.encode()?;
            Ok(Box::new(tract::TractRunner::from_bytes(
                &bytes,
                plan.spec.dtype,
                opts,
            )?))
        }
        EngineKind::Reference => {
            let program = match direction {
                Direction::Compress => plan.compress.clone(),
                Direction::Decompress => plan.decompress.clone(),
            };
            Ok(Box::new(reference::ReferenceRunner::new(program)))
        }
    }
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
