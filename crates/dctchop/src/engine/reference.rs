//! A plain Rust evaluation of a [`Program`] in f64: the same matrices and steps as the ONNX
//! graph, without any ONNX runtime. Slow but exact; used as the reference in tests.

use ndarray::{Array2, ArrayD, Axis, IxDyn};

use crate::error::{Error, Result};
use crate::plan::{Program, Step};

/// Run `program` on `x` (whose shape must equal `program.input`).
pub fn run_program(program: &Program, x: &ArrayD<f64>) -> Result<ArrayD<f64>> {
    if x.shape() != program.input.as_slice() {
        return Err(Error::Shape {
            what: "reference engine input".into(),
            expected: program.input.clone(),
            got: x.shape().to_vec(),
        });
    }
    let mut cur = x.as_standard_layout().into_owned();
    for step in &program.steps {
        cur = apply(step, cur);
    }
    Ok(cur)
}

fn apply(step: &Step, x: ArrayD<f64>) -> ArrayD<f64> {
    match step {
        Step::Gather { axis, indices } => {
            let idx: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
            x.select(Axis(*axis), &idx)
                .as_standard_layout()
                .into_owned()
        }
        Step::Reshape { shape } => {
            let x = x.as_standard_layout().into_owned();
            x.into_shape_with_order(IxDyn(shape))
                .expect("program shapes are consistent")
        }
        Step::MatMulRight { w } => {
            let shape = x.shape().to_vec();
            let k = *shape.last().expect("rank >= 1");
            let rows = x.len() / k;
            let x2: Array2<f64> = x
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((rows, k))
                .expect("contiguous");
            // ndarray may return a product in column-major order (e.g. for a single row).
            let y = x2.dot(w).as_standard_layout().into_owned();
            let mut out = shape;
            *out.last_mut().expect("rank >= 1") = w.ncols();
            y.into_shape_with_order(IxDyn(&out)).expect("contiguous")
        }
        // The codes arrive as f64 already (exact for int8/int16): nothing to convert.
        Step::Cast { .. } => x,
        Step::MatMulLeft { w } => {
            let shape = x.shape().to_vec();
            let r = shape.len();
            let (k, n) = (shape[r - 2], shape[r - 1]);
            let batch = x.len() / (k * n);
            let x3 = x
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((batch, k, n))
                .expect("contiguous");
            let mut out = ndarray::Array3::<f64>::zeros((batch, w.nrows(), n));
            for (mut o, xi) in out.outer_iter_mut().zip(x3.outer_iter()) {
                o.assign(&w.dot(&xi)); // assign copies into `out`'s standard layout
            }
            let mut oshape = shape;
            oshape[r - 2] = w.nrows();
            out.into_shape_with_order(IxDyn(&oshape))
                .expect("contiguous")
        }
    }
}

/// [`Runner`](super::Runner) over [`run_program`]: f32 (or int8/int16 codes) in, f64 inside, f32
/// out.
pub struct ReferenceRunner {
    program: Program,
    output: Vec<usize>,
}

impl ReferenceRunner {
    pub fn new(program: Program) -> Self {
        let output = program.output_shape();
        ReferenceRunner { program, output }
    }
}

impl super::Runner for ReferenceRunner {
    fn input_shape(&self) -> &[usize] {
        &self.program.input
    }
    fn output_shape(&self) -> &[usize] {
        &self.output
    }
    fn run(&mut self, input: ndarray::ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        super::check_code("reference", self.program.input_code(), None)?;
        super::check_shape("reference", &self.program.input, input.shape())?;
        let x = input.mapv(|v| v as f64);
        Ok(run_program(&self.program, &x)?.mapv(|v| v as f32))
    }

    fn input_code(&self) -> Option<crate::quant::CodeType> {
        self.program.input_code()
    }

    fn run_codes_into(
        &mut self,
        codes: super::CodesView<'_>,
        out: ndarray::ArrayViewMutD<'_, f32>,
    ) -> Result<()> {
        super::check_code(
            "reference",
            self.program.input_code(),
            Some(codes.code_type()),
        )?;
        super::check_shape("reference", &self.program.input, codes.shape())?;
        let y = run_program(&self.program, &codes.to_f64())?.mapv(|v| v as f32);
        super::write_output(y.view(), out, &self.output)
    }
}
