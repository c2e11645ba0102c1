//! The tract engine: parse the ONNX bytes, optimize once, keep a reusable plan and state.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};
use tract_onnx::prelude::multithread::Executor;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimplePlan, SimpleState};
use tract_onnx::tract_core::runtime::RunOptions;

use super::{
    check_code, check_shape, run_then_write, write_output, CodesView, EngineOptions, Runner,
};
use crate::error::{Error, Result};
use crate::quant::CodeType;
use crate::spec::Dtype;

type Plan = TypedSimplePlan;
type State = SimpleState<TypedFact, Box<dyn TypedOp>>;

fn err(e: impl std::fmt::Display) -> Error {
    Error::Engine {
        engine: "tract",
        message: format!("{e:#}"),
    }
}

/// A compiled tract graph.
pub struct TractRunner {
    state: State,
    dtype: Dtype,
    /// The code type of an int8/int16 input (a quantized decompress graph).
    code: Option<CodeType>,
    input: Vec<usize>,
    output: Vec<usize>,
}

impl TractRunner {
    /// Compile an ONNX model (bytes) whose output is a `dtype` tensor and whose input is a
    /// `dtype` tensor or int8/int16 codes.
    pub fn from_bytes(bytes: &[u8], dtype: Dtype, opts: &EngineOptions) -> Result<Self> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(err)?
            .into_optimized()
            .map_err(err)?;
        let fact = |f: &TypedFact| -> Result<Vec<usize>> {
            f.shape
                .as_concrete()
                .map(|s| s.to_vec())
                .ok_or_else(|| err("graph has a symbolic shape; dctchop graphs are static"))
        };
        let in_fact = model.input_fact(0).map_err(err)?;
        let code = match in_fact.datum_type {
            DatumType::I8 => Some(CodeType::I8),
            DatumType::I16 => Some(CodeType::I16),
            _ => None,
        };
        let input = fact(in_fact)?;
        let output = fact(model.output_fact(0).map_err(err)?)?;
        let threads = opts.resolved_threads();
        let executor = if threads > 1 {
            Executor::multithread(threads)
        } else {
            Executor::SingleThread
        };
        let options = RunOptions {
            executor: Some(executor),
            ..RunOptions::default()
        };
        let plan: Arc<Plan> = SimplePlan::new_with_options(model, &options).map_err(err)?;
        let state = SimpleState::new(&plan).map_err(err)?;
        Ok(TractRunner {
            state,
            dtype,
            code,
            input,
            output,
        })
    }
}

impl TractRunner {
    /// Run on a prepared input tensor; the output as f32.
    fn run_tensor(&mut self, tensor: Tensor) -> Result<ArrayD<f32>> {
        let out = self.state.run(tvec!(tensor.into_tvalue())).map_err(err)?;
        let out = &out[0];
        Ok(match self.dtype {
            Dtype::F32 => out.to_plain_array_view::<f32>().map_err(err)?.to_owned(),
            Dtype::F16 => out
                .to_plain_array_view::<half::f16>()
                .map_err(err)?
                .mapv(|v| v.to_f32()),
        })
    }

    fn to_tensor(&self, input: ArrayViewD<'_, f32>) -> Result<Tensor> {
        check_code("tract", self.code, None)?;
        check_shape("tract", &self.input, input.shape())?;
        Ok(match self.dtype {
            Dtype::F32 => input.as_standard_layout().into_owned().into(),
            Dtype::F16 => input.mapv(half::f16::from_f32).into(),
        })
    }
}

impl Runner for TractRunner {
    fn input_shape(&self) -> &[usize] {
        &self.input
    }
    fn output_shape(&self) -> &[usize] {
        &self.output
    }
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let tensor = self.to_tensor(input)?;
        self.run_tensor(tensor)
    }

    fn input_code(&self) -> Option<CodeType> {
        self.code
    }

    fn run_codes_into(&mut self, codes: CodesView<'_>, out: ArrayViewMutD<'_, f32>) -> Result<()> {
        check_code("tract", self.code, Some(codes.code_type()))?;
        check_shape("tract", &self.input, codes.shape())?;
        let tensor: Tensor = match codes {
            CodesView::I8(a) => a.as_standard_layout().into_owned().into(),
            CodesView::I16(a) => a.as_standard_layout().into_owned().into(),
        };
        if self.dtype != Dtype::F32 {
            let y = self.run_tensor(tensor)?;
            return write_output(y.view(), out, &self.output);
        }
        let y = self.state.run(tvec!(tensor.into_tvalue())).map_err(err)?;
        write_output(
            y[0].to_plain_array_view::<f32>().map_err(err)?,
            out,
            &self.output,
        )
    }

    fn run_into(&mut self, input: ArrayViewD<'_, f32>, out: ArrayViewMutD<'_, f32>) -> Result<()> {
        if self.dtype != Dtype::F32 {
            return run_then_write(self, input, out);
        }
        let tensor = self.to_tensor(input)?;
        let y = self.state.run(tvec!(tensor.into_tvalue())).map_err(err)?;
        write_output(
            y[0].to_plain_array_view::<f32>().map_err(err)?,
            out,
            &self.output,
        )
    }

    fn time_runs(&mut self, input: ArrayViewD<'_, f32>, reps: usize) -> Result<Vec<f64>> {
        // Convert once; each run gets a cheap clone of the shared tensor.
        let value = self.to_tensor(input)?.into_tvalue();
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t0 = std::time::Instant::now();
            let out = self.state.run(tvec!(value.clone())).map_err(err)?;
            times.push(t0.elapsed().as_secs_f64());
            drop(out);
        }
        Ok(times)
    }
}
