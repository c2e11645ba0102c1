//! The native engine: a plan's block matrices run directly by the fused, vectorized,
//! multithreaded CPU kernels of the `block_transform` crate — no ONNX, no external library.
//!
//! The graphs' forms (dense, tiled, serialized) are different factorizations of one block
//! transform, so the native engine computes that transform itself: per block `Y = F·X·Fᵀ`, with
//! the plan's mirror padding and cropping and the layout's kept coefficients, for the whole image
//! at once. It reads each input byte once and writes each output byte once, accepts any number
//! of samples per call, and allocates nothing per call (the kernel plan owns its thread pool and
//! its scratch buffers are allocated with it).
//!
//! Results equal the f64 reference interpreter to about 1e-7 of the data range for f32 specs.
//! For f16 specs it still computes in f32 (its input and output cross the API as f32 anyway), so
//! it is more accurate than an f16 graph.
//!
//! A quantized spec's steps are folded into the per-block matrices exactly as into the graphs'
//! ([`fold_steps`], in f64, then rounded once): compress outputs coefficients / step, and the
//! decompress runner takes int8/int16 codes ([`Runner::run_codes_into`]), converted on load by
//! the kernels.
//!
//! A channel transform ([`ChannelMix`]) runs on the coefficients, as in the graphs: compress
//! mixes the kernel's float coefficients and rounds them on the host; decompress converts the
//! codes to floats, unmixes them and runs the kernel's float path, in a scratch buffer the runner
//! keeps.

use block_transform::{BlockTransform, Keep, Matrices};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use super::{check_code, CodesView, EngineOptions, Runner};
use crate::error::{Error, Result};
use crate::graph::Direction;
use crate::pixels::{each_pixel_slice, PixelsView};
use crate::plan::{fold_steps, forward_tile, Fold, Plan};
use crate::quant::{ChannelMix, CodeElem, CodeType, Codes};

fn err(e: impl std::fmt::Display) -> Error {
    Error::Engine {
        engine: "native",
        message: e.to_string(),
    }
}

/// One direction of a plan, compiled for the native kernels.
pub struct NativeRunner {
    kernel: BlockTransform,
    direction: Direction,
    /// Declared shapes (the spec's batch); any batch size is accepted.
    input: Vec<usize>,
    output: Vec<usize>,
    /// Image planes (channels) per sample.
    planes_per_sample: usize,
    /// The code type a quantized decompress runner takes.
    code: Option<CodeType>,
    /// The channel transform of a quantized spec (`M` and `Mᵀ`, f32), and the coefficients of
    /// one channel of one sample it mixes at a time.
    mix: Option<[[f32; 9]; 2]>,
    coefficient_plane: usize,
    /// Mixed coefficients (kept between calls: steady state allocates nothing).
    scratch: Vec<f32>,
}

impl NativeRunner {
    pub fn new(plan: &Plan, direction: Direction, opts: &EngineOptions) -> Result<NativeRunner> {
        let spec = &plan.spec;
        let layout = spec.layout();
        let keep = if layout.is_grid() {
            Keep::Grid
        } else {
            Keep::BlockMajor(layout.row_lengths().ok_or_else(|| {
                err(format!(
                    "layout {} keeps coefficients that are not a prefix of each block row",
                    layout.name()
                ))
            })?)
        };
        // The per-block matrix F (CF × block), built in f64 like every graph's, with the steps of
        // a quantized spec folded in (rows = frequencies), cast once.
        let (dh, dw) = match &spec.quant {
            Some(q) => {
                let (dh, dw) = q.axis_steps(spec.cf);
                (Some(dh), Some(dw))
            }
            None => (None, None),
        };
        let f = forward_tile(spec.block, spec.block, spec.cf);
        let m = |d: &Option<Vec<f64>>, fold| -> Vec<f32> {
            fold_steps(f.clone(), spec.cf, d.as_deref(), fold)
                .iter()
                .map(|&v| v as f32)
                .collect()
        };
        let (a_rows, a_cols) = (m(&dh, Fold::Divide), m(&dw, Fold::Divide));
        let (b_rows, b_cols) = (m(&dh, Fold::Multiply), m(&dw, Fold::Multiply));
        let m = Matrices {
            a_rows: &a_rows,
            a_cols: &a_cols,
            b_rows: &b_rows,
            b_cols: &b_cols,
        };
        let kernel = BlockTransform::new(
            spec.height,
            spec.width,
            spec.block,
            spec.cf,
            keep,
            &m,
            opts.resolved_threads(),
        )
        .map_err(err)?;
        let (input, output) = match direction {
            Direction::Compress => (spec.input_shape(), spec.compressed_shape()),
            Direction::Decompress => (spec.compressed_shape(), spec.input_shape()),
        };
        let code = match direction {
            Direction::Decompress => spec.quant.as_ref().map(|q| q.code),
            Direction::Compress => None,
        };
        Ok(NativeRunner {
            kernel,
            direction,
            input,
            output,
            planes_per_sample: spec.channels,
            code,
            mix: spec
                .quant
                .as_ref()
                .and_then(|q| q.mix)
                .map(|m: ChannelMix| [m.coefficients(false), m.coefficients(true)]),
            coefficient_plane: spec.compressed_shape()[2..].iter().product(),
            scratch: Vec::new(),
        })
    }

    /// Check `[N, …]` against the declared per-sample shape; returns N.
    fn samples(&self, got: &[usize], declared: &[usize], what: &str) -> Result<usize> {
        if got.len() != declared.len() || got[1..] != declared[1..] || got[0] == 0 {
            let mut expected = declared.to_vec();
            expected[0] = got.first().copied().unwrap_or(1).max(1);
            return Err(Error::Shape {
                what: format!("native engine {what}"),
                expected,
                got: got.to_vec(),
            });
        }
        Ok(got[0])
    }

    /// Check an input and an output of N samples each; returns N.
    fn check_io(&self, input: &[usize], out: &[usize]) -> Result<usize> {
        let n = self.samples(input, &self.input, "input")?;
        if self.samples(out, &self.output, "output")? != n {
            let mut expected = self.output.clone();
            expected[0] = n;
            return Err(Error::Shape {
                what: "native engine output".into(),
                expected,
                got: out.to_vec(),
            });
        }
        Ok(n)
    }

    fn transform(&self, x: &[f32], planes: usize, y: &mut [f32]) -> Result<()> {
        match self.direction {
            Direction::Compress => self.kernel.compress(x, planes, y),
            Direction::Decompress => self.kernel.decompress(x, planes, y),
        }
        .map_err(err)?;
        if let (Some([m, _]), Direction::Compress) = (&self.mix, self.direction) {
            block_transform::mix3(y, self.coefficient_plane, m).map_err(err)?;
        }
        Ok(())
    }
}

impl NativeRunner {
    /// Decompress `codes` into `out`; with a reference (in `out`'s layout), also the sum of
    /// squared differences and the largest absolute difference, taken strip by strip as the
    /// kernel writes them (else zeros).
    fn decode_codes(
        &mut self,
        codes: CodesView<'_>,
        mut out: ArrayViewMutD<'_, f32>,
        reference: Option<PixelsView<'_>>,
    ) -> Result<(f64, f64)> {
        check_code("native", self.code, Some(codes.code_type()))?;
        let n = self.check_io(codes.shape(), out.shape())?;
        let planes = n * self.planes_per_sample;
        let mut tmp = None;
        let y = match out.as_slice_mut() {
            Some(y) => y,
            None => tmp
                .insert(ArrayD::<f32>::zeros(out.raw_dim()))
                .as_slice_mut()
                .expect("fresh array"),
        };
        fn run<T: block_transform::Elem>(
            k: &BlockTransform,
            c: &[T],
            planes: usize,
            y: &mut [f32],
            reference: Option<PixelsView<'_>>,
        ) -> Result<(f64, f64)> {
            match reference {
                Some(r) => each_pixel_slice!(r, r => k.decompress_compare(c, planes, y, r)),
                None => k.decompress_elems(c, planes, y).map(|()| (0.0, 0.0)),
            }
            .map_err(err)
        }
        let stats = if let Some([_, unmix]) = &self.mix {
            // Codes to floats, unmixed, then the kernel's float path (same folded matrices).
            let scratch = grow(&mut self.scratch, codes.shape().iter().product());
            match &codes {
                CodesView::I8(c) => {
                    let c = c.as_standard_layout();
                    block_transform::load_codes(c.as_slice().expect("standard layout"), scratch)
                }
                CodesView::I16(c) => {
                    let c = c.as_standard_layout();
                    block_transform::load_codes(c.as_slice().expect("standard layout"), scratch)
                }
            }
            .map_err(err)?;
            block_transform::mix3(scratch, self.coefficient_plane, unmix).map_err(err)?;
            run(&self.kernel, scratch, planes, y, reference)?
        } else {
            match &codes {
                CodesView::I8(c) => {
                    let c = c.as_standard_layout();
                    let c = c.as_slice().expect("standard layout");
                    run(&self.kernel, c, planes, y, reference)?
                }
                CodesView::I16(c) => {
                    let c = c.as_standard_layout();
                    let c = c.as_slice().expect("standard layout");
                    run(&self.kernel, c, planes, y, reference)?
                }
            }
        };
        if let Some(t) = tmp {
            out.assign(&t);
        }
        Ok(stats)
    }

    /// [`Runner::compress_codes`] of the samples `x` (of shape `shape`).
    fn compress_codes_of<S: block_transform::Pixel>(
        &mut self,
        shape: &[usize],
        x: &[S],
        code: CodeType,
    ) -> Result<(Codes, usize)> {
        let n = self.samples(shape, &self.input, "input")?;
        let planes = n * self.planes_per_sample;
        let mut shape = self.output.clone();
        shape[0] = n;
        // The kernel's store rounds half to even and clamps to ±max, the rule of
        // quant::round_code (NaN, which compress refuses upstream, becomes 0 uncounted).
        fn typed<S: block_transform::Pixel, T: CodeElem + block_transform::Code>(
            k: &BlockTransform,
            x: &[S],
            planes: usize,
            shape: &[usize],
        ) -> Result<(Codes, usize)> {
            let mut out = ArrayD::<T>::default(IxDyn(shape));
            let clamped = k
                .compress_codes(x, planes, out.as_slice_mut().expect("fresh array"))
                .map_err(err)?;
            Ok((T::owned(out), clamped))
        }
        if let Some([mix, _]) = &self.mix {
            // The codes of mixed coefficients: the kernel's floats, mixed, then the kernels'
            // rounding store.
            let y = grow(&mut self.scratch, shape.iter().product());
            self.kernel.compress(x, planes, y).map_err(err)?;
            block_transform::mix3(y, self.coefficient_plane, mix).map_err(err)?;
            fn store<T: CodeElem + block_transform::Code>(
                y: &[f32],
                shape: &[usize],
            ) -> Result<(Codes, usize)> {
                let mut out = ArrayD::<T>::default(IxDyn(shape));
                let slice = out.as_slice_mut().expect("fresh array");
                let clamped = block_transform::store_codes(y, slice).map_err(err)?;
                Ok((T::owned(out), clamped))
            }
            return match code {
                CodeType::I8 => store::<i8>(y, &shape),
                CodeType::I16 => store::<i16>(y, &shape),
            };
        }
        match code {
            CodeType::I8 => typed::<S, i8>(&self.kernel, x, planes, &shape),
            CodeType::I16 => typed::<S, i16>(&self.kernel, x, planes, &shape),
        }
    }
}

/// The first `len` values of `v`, grown (never shrunk) to hold them.
fn grow(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

impl Runner for NativeRunner {
    fn input_shape(&self) -> &[usize] {
        &self.input
    }

    fn output_shape(&self) -> &[usize] {
        &self.output
    }

    fn any_batch(&self) -> bool {
        true
    }

    fn input_code(&self) -> Option<CodeType> {
        self.code
    }

    fn run_codes_into(&mut self, codes: CodesView<'_>, out: ArrayViewMutD<'_, f32>) -> Result<()> {
        self.decode_codes(codes, out, None).map(|_| ())
    }

    fn run_codes_compare(
        &mut self,
        codes: CodesView<'_>,
        out: ArrayViewMutD<'_, f32>,
        reference: PixelsView<'_>,
    ) -> Option<Result<(f64, f64)>> {
        Some(self.decode_codes(codes, out, Some(reference)))
    }

    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        check_code("native", self.code, None)?;
        let n = self.samples(input.shape(), &self.input, "input")?;
        let mut shape = self.output.clone();
        shape[0] = n;
        let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
        self.run_into(input, out.view_mut())?;
        Ok(out)
    }

    fn takes_integer_pixels(&self) -> bool {
        true
    }

    fn compress_codes(
        &mut self,
        input: PixelsView<'_>,
        code: CodeType,
    ) -> Option<Result<(Codes, usize)>> {
        if self.direction != Direction::Compress {
            return None;
        }
        let shape = input.shape().to_vec();
        Some(each_pixel_slice!(input, x => self.compress_codes_of(&shape, x, code)))
    }

    /// Times runs into one output allocated outside the timed loop, as ORT's IO binding does:
    /// timing `run` would charge each run for zeroing and faulting in a fresh output.
    fn time_runs(&mut self, input: ArrayViewD<'_, f32>, reps: usize) -> Result<Vec<f64>> {
        let n = self.samples(input.shape(), &self.input, "input")?;
        let mut shape = self.output.clone();
        shape[0] = n;
        let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t0 = std::time::Instant::now();
            self.run_into(input.view(), out.view_mut())?;
            times.push(t0.elapsed().as_secs_f64());
        }
        Ok(times)
    }

    fn run_into(
        &mut self,
        input: ArrayViewD<'_, f32>,
        mut out: ArrayViewMutD<'_, f32>,
    ) -> Result<()> {
        check_code("native", self.code, None)?;
        let n = self.check_io(input.shape(), out.shape())?;
        let planes = n * self.planes_per_sample;
        let standard = input.as_standard_layout();
        let x = standard.as_slice().expect("standard layout");
        match out.as_slice_mut() {
            Some(y) => self.transform(x, planes, y),
            None => {
                let mut tmp = ArrayD::<f32>::zeros(out.raw_dim());
                self.transform(x, planes, tmp.as_slice_mut().expect("fresh array"))?;
                out.assign(&tmp);
                Ok(())
            }
        }
    }
}
