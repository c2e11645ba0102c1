//! Compress and decompress any number of samples with a plan's compiled graphs.
//!
//! The native engine takes any number of whole images at once. The graphs have a fixed batch;
//! for them [`Codec`] runs full batches and pads the last one (with copies of its last sample,
//! dropped afterwards). With `serialize = s` the graphs process one
//! (Hp/s × Wp/s) spatial chunk of the mirror-padded image; the codec cuts each sample into s×s
//! true spatial chunks, runs them one after another, and reassembles the global layout, so the
//! result equals the unserialized compressor.
//!
//! A quantized spec ([`crate::quant`]): [`Codec::compress`] returns what the compress graph
//! outputs, the coefficients divided by their steps; [`Codec::compress_codes`] also applies the
//! rounding rule on the host and returns integer codes; [`Codec::decompress_codes`] runs the
//! decompress graph on codes (batching and serialization as for floats). [`Codec::decompress`]
//! refuses a quantized spec: its graph takes codes.

use ndarray::{
    s, Array4, ArrayD, ArrayView4, ArrayViewD, ArrayViewMut4, ArrayViewMutD, Axis, IxDyn,
};

use crate::engine::{compile, EngineOptions, Runner};
use crate::error::{Error, Result};
use crate::graph::Direction;
use crate::pixels::PixelsView;
use crate::plan::{mirror_index, Plan};
use crate::quant::{CodeElem, Codes, CodesView, Quant};
use crate::spec::Spec;

/// A plan with both graphs compiled once by one engine.
pub struct Codec {
    plan: Plan,
    compress: Box<dyn Runner>,
    decompress: Box<dyn Runner>,
}

impl Codec {
    /// Validate `spec`, build its plan and compile both graphs.
    pub fn new(spec: &Spec, opts: &EngineOptions) -> Result<Codec> {
        Codec::from_plan(Plan::new(spec)?, opts)
    }

    pub fn from_plan(plan: Plan, opts: &EngineOptions) -> Result<Codec> {
        let compress = compile(&plan, Direction::Compress, opts)?;
        let decompress = compile(&plan, Direction::Decompress, opts)?;
        Ok(Codec {
            plan,
            compress,
            decompress,
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether both directions take any number of samples per call (the native engine);
    /// otherwise calls are cut into the spec's batches, the last one padded.
    pub fn any_batch(&self) -> bool {
        self.compress.any_batch() && self.decompress.any_batch()
    }

    /// Compress `x` of shape `[N, C, H, W]` (any N ≥ 1) into `[N, ...]` coefficients in the
    /// spec's layout (for a quantized spec: divided by their steps, as the graph outputs them).
    pub fn compress(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayD<f32>> {
        let spec = self.plan.spec.clone();
        let want = [spec.channels, spec.height, spec.width];
        if x.shape()[1..] != want || x.shape()[0] == 0 {
            return Err(Error::Shape {
                what: "compress input [N, C, H, W]".into(),
                expected: [&[x.shape()[0].max(1)][..], &want[..]].concat(),
                got: x.shape().to_vec(),
            });
        }
        let n = x.shape()[0];
        let mut out_shape = spec.compressed_shape();
        out_shape[0] = n;
        let mut out = ArrayD::<f32>::zeros(IxDyn(&out_shape));
        if self.compress.any_batch() {
            // The native engine transforms whole images, any number at once.
            self.compress.run_into(x.into_dyn(), out.view_mut())?;
            return Ok(out);
        }
        let b = spec.batch;
        for start in (0..n).step_by(b) {
            let take = (n - start).min(b);
            let dst = out.slice_axis_mut(Axis(0), (start..start + take).into());
            if take == b && spec.serialize == 1 {
                // A whole batch: the engine reads the caller's samples and writes the result
                // into place, with no batch copy on either side.
                let src = x.slice_axis(Axis(0), (start..start + b).into());
                self.compress.run_into(src.into_dyn(), dst)?;
            } else {
                let batch = padded_batch(x.into_dyn(), start, b);
                let y = self.compress_batch(batch.view().into_dimensionality().expect("rank 4"))?;
                let mut dst = dst;
                dst.assign(&y.slice_axis(Axis(0), (0..take).into()));
            }
        }
        Ok(out)
    }

    /// Compress `x` (any N ≥ 1; f32, or integer samples: `ArrayView4<u8>`, `<u16>`, `<i16>`
    /// or a [`PixelsView`]) into integer codes: [`Codec::compress`], then the rounding rule of
    /// [`crate::quant`] on the host. Returns the codes (of the spec's code type) and how many
    /// values were clamped to ±max. Only for a quantized spec. The native engine reads integer
    /// samples as they are (converted exactly as it loads them); other engines get them as f32.
    pub fn compress_codes<'a>(&mut self, x: impl Into<PixelsView<'a>>) -> Result<(Codes, usize)> {
        let x = x.into();
        let code = self.quant()?.code;
        let native = matches!(x, PixelsView::F32(_)) || self.compress.takes_integer_pixels();
        if self.compress.any_batch()
            && native
            && x.shape()[1..] == self.plan.spec.input_shape()[1..]
        {
            // The native engine rounds in its store (the same rule), one pass fewer.
            if let Some(done) = self.compress.compress_codes(x, code) {
                return done;
            }
        }
        let scaled = self.compress(x.to_f32().view())?;
        Ok(Codes::quantize(scaled.view(), code))
    }

    /// Whether the compress engine reads integer samples itself ([`Codec::compress_codes`] and
    /// [`Codec::decompress_codes_compare`] then take them without a conversion to f32).
    pub fn takes_integer_pixels(&self) -> bool {
        self.compress.any_batch()
            && self.compress.takes_integer_pixels()
            && self.decompress.takes_integer_pixels()
    }

    /// The spec's quantization, or the error for a method that needs one.
    fn quant(&self) -> Result<&Quant> {
        self.plan
            .spec
            .quant
            .as_ref()
            .ok_or_else(|| Error::InvalidSpec {
                field: "quant",
                value: "none".into(),
                allowed: "a quantized spec (Spec::with_quant) for codes; use compress/decompress \
                      for float coefficients"
                    .into(),
            })
    }

    /// Decompress `[N, ...]` coefficients into `[N, C, H, W]`. Not for a quantized spec, whose
    /// decompress graph takes codes ([`Codec::decompress_codes`]).
    pub fn decompress(&mut self, y: ArrayViewD<'_, f32>) -> Result<Array4<f32>> {
        if let Some(q) = &self.plan.spec.quant {
            return Err(Error::InvalidSpec {
                field: "quant",
                value: serde_json::to_string(q).expect("quant serializes"),
                allowed: format!(
                    "none for float coefficients: this spec's decompress graph takes {} codes; \
                     use Codec::decompress_codes",
                    q.code.numpy_name()
                ),
            });
        }
        self.decompress_any(y, |r, x, out| r.run_into(x, out))
    }

    /// Decompress `[N, ...]` integer codes (of the spec's code type) into `[N, C, H, W]`. Only
    /// for a quantized spec.
    pub fn decompress_codes(&mut self, codes: CodesView<'_>) -> Result<Array4<f32>> {
        let spec = &self.plan.spec;
        let n = codes.shape()[0].max(1);
        let mut out = Array4::<f32>::zeros((n, spec.channels, spec.height, spec.width));
        self.decompress_codes_into(codes, out.view_mut())?;
        Ok(out)
    }

    /// Decompress with `run` (one graph run into an output buffer) on inputs of element type T.
    fn decompress_any<T: Clone + Default>(
        &mut self,
        y: ArrayViewD<'_, T>,
        run: impl Fn(&mut dyn Runner, ArrayViewD<'_, T>, ArrayViewMutD<'_, f32>) -> Result<()>,
    ) -> Result<Array4<f32>> {
        let spec = &self.plan.spec;
        let n = y.shape()[0].max(1);
        let mut out = Array4::<f32>::zeros((n, spec.channels, spec.height, spec.width));
        self.decompress_any_into(y, out.view_mut(), run)?;
        Ok(out)
    }

    /// The codes are of this spec's code type.
    fn check_code_type(&self, codes: &CodesView<'_>) -> Result<()> {
        let q = self.quant()?;
        if q.code != codes.code_type() {
            return Err(Error::InvalidSpec {
                field: "quant.code",
                value: q.code.to_string(),
                allowed: format!(
                    "the type of the codes given ({}); this spec's decompress graph takes {}",
                    codes.code_type().numpy_name(),
                    q.code.numpy_name()
                ),
            });
        }
        Ok(())
    }

    /// [`Codec::decompress_codes_into`] that also returns the sum of squared differences and
    /// the largest absolute difference of `out` against `reference` (`[N, C, H, W]` as `out`; f32
    /// or integer samples), with [`block_transform::diff_stats`]' rounding: what `compress`
    /// reports of its round trip. The native engine takes them strip by
    /// strip as it writes (no pass of their own); other engines compare the finished output.
    pub fn decompress_codes_compare<'a>(
        &mut self,
        codes: CodesView<'_>,
        mut out: ArrayViewMut4<'_, f32>,
        reference: impl Into<PixelsView<'a>>,
    ) -> Result<(f64, f64)> {
        let reference = reference.into();
        if reference.shape() != out.shape() {
            return Err(Error::Shape {
                what: "round-trip reference [N, C, H, W]".into(),
                expected: out.shape().to_vec(),
                got: reference.shape().to_vec(),
            });
        }
        let native =
            matches!(reference, PixelsView::F32(_)) || self.decompress.takes_integer_pixels();
        if self.decompress.any_batch() && native && out.is_standard_layout() {
            self.check_code_type(&codes)?;
            self.check_decompress_shapes(codes.shape(), out.shape())?;
            let r = self.decompress.run_codes_compare(
                codes.clone(),
                out.view_mut().into_dyn(),
                reference,
            );
            if let Some(r) = r {
                return r;
            }
        }
        self.decompress_codes_into(codes, out.view_mut())?;
        let out = out.as_standard_layout();
        let out = out.as_slice().expect("standard layout");
        let stats = crate::pixels::each_pixel_slice!(reference, r => {
            block_transform::diff_stats(r, out)
        });
        Ok(stats.expect("equal shapes checked above"))
    }

    /// Decompress integer codes into `out` (`[N, C, H, W]`, N = the codes' samples), e.g. a
    /// buffer reused from batch to batch. Only for a quantized spec.
    pub fn decompress_codes_into(
        &mut self,
        codes: CodesView<'_>,
        out: ArrayViewMut4<'_, f32>,
    ) -> Result<()> {
        self.check_code_type(&codes)?;
        match codes {
            CodesView::I8(a) => {
                self.decompress_any_into(a, out, |r, x, o| r.run_codes_into(i8::view(x), o))
            }
            CodesView::I16(a) => {
                self.decompress_any_into(a, out, |r, x, o| r.run_codes_into(i16::view(x), o))
            }
        }
    }

    /// A decompress input of the spec's compressed layout (N ≥ 1 samples) and an output of
    /// `[N, C, H, W]`.
    fn check_decompress_shapes(&self, y: &[usize], out: &[usize]) -> Result<()> {
        let spec = &self.plan.spec;
        let want = &spec.compressed_shape()[1..];
        if &y[1..] != want || y[0] == 0 {
            return Err(Error::Shape {
                what: format!("decompress input (layout {})", spec.layout_name()),
                expected: [&[y[0].max(1)][..], want].concat(),
                got: y.to_vec(),
            });
        }
        let out_want = [y[0], spec.channels, spec.height, spec.width];
        if out != out_want {
            return Err(Error::Shape {
                what: "decompress output [N, C, H, W]".into(),
                expected: out_want.to_vec(),
                got: out.to_vec(),
            });
        }
        Ok(())
    }

    /// [`Codec::decompress_any`] into `out`.
    fn decompress_any_into<T: Clone + Default>(
        &mut self,
        y: ArrayViewD<'_, T>,
        mut out: ArrayViewMut4<'_, f32>,
        run: impl Fn(&mut dyn Runner, ArrayViewD<'_, T>, ArrayViewMutD<'_, f32>) -> Result<()>,
    ) -> Result<()> {
        let spec = self.plan.spec.clone();
        self.check_decompress_shapes(y.shape(), out.shape())?;
        let n = y.shape()[0];
        if self.decompress.any_batch() {
            run(self.decompress.as_mut(), y, out.view_mut().into_dyn())?;
            return Ok(());
        }
        let b = spec.batch;
        for start in (0..n).step_by(b) {
            let take = (n - start).min(b);
            let mut dst = out.slice_mut(s![start..start + take, .., .., ..]);
            if take == b && spec.serialize == 1 {
                let src = y.slice_axis(Axis(0), (start..start + b).into());
                run(self.decompress.as_mut(), src, dst.into_dyn())?;
            } else {
                let batch = padded_batch(y.view(), start, b);
                let x = self.decompress_batch(batch.view(), &run)?;
                dst.assign(&x.slice(s![0..take, .., .., ..]));
            }
        }
        Ok(())
    }

    fn compress_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayD<f32>> {
        let s = self.plan.spec.serialize;
        if s == 1 {
            return self.compress.run(x.into_dyn());
        }
        let spec = self.plan.spec.clone();
        let chunk = self.plan.chunk.clone();
        let mut out = ArrayD::<f32>::zeros(IxDyn(&spec.compressed_shape()));
        for ci in 0..s {
            for cj in 0..s {
                let part = extract_chunk(&x, &spec, &chunk, ci, cj);
                let y = self.compress.run(part.view().into_dyn())?;
                place_coeffs(&mut out, &y, &spec, &chunk, ci, cj);
            }
        }
        Ok(out)
    }

    fn decompress_batch<T: Clone + Default>(
        &mut self,
        y: ArrayViewD<'_, T>,
        run: &impl Fn(&mut dyn Runner, ArrayViewD<'_, T>, ArrayViewMutD<'_, f32>) -> Result<()>,
    ) -> Result<Array4<f32>> {
        let s = self.plan.spec.serialize;
        let spec = self.plan.spec.clone();
        let mut out = Array4::<f32>::zeros((spec.batch, spec.channels, spec.height, spec.width));
        if s == 1 {
            run(self.decompress.as_mut(), y, out.view_mut().into_dyn())?;
            return Ok(out);
        }
        let chunk = self.plan.chunk.clone();
        let mut x = ArrayD::<f32>::zeros(IxDyn(&chunk.input_shape()));
        for ci in 0..s {
            for cj in 0..s {
                let part = take_coeffs(&y, &spec, &chunk, ci, cj);
                run(self.decompress.as_mut(), part.view(), x.view_mut())?;
                let (r0, c0) = (ci * chunk.height, cj * chunk.width);
                let rows = spec.height.saturating_sub(r0).min(chunk.height);
                let cols = spec.width.saturating_sub(c0).min(chunk.width);
                if rows > 0 && cols > 0 {
                    out.slice_mut(s![.., .., r0..r0 + rows, c0..c0 + cols])
                        .assign(&x.slice(s![.., .., 0..rows, 0..cols]));
                }
            }
        }
        Ok(out)
    }
}

/// Samples `start..start + batch` along axis 0 as an owned batch, padding past the end with
/// copies of the last sample.
fn padded_batch<T: Clone>(x: ArrayViewD<'_, T>, start: usize, batch: usize) -> ArrayD<T> {
    let n = x.shape()[0];
    let idx: Vec<usize> = (start..start + batch).map(|i| i.min(n - 1)).collect();
    x.select(Axis(0), &idx)
}

/// Chunk (ci, cj) of the mirror-padded image: `[B, C, ch, cw]`.
fn extract_chunk(
    x: &ArrayView4<'_, f32>,
    spec: &Spec,
    chunk: &Spec,
    ci: usize,
    cj: usize,
) -> Array4<f32> {
    let rows: Vec<usize> = (0..chunk.height)
        .map(|r| mirror_index(ci * chunk.height + r, spec.height))
        .collect();
    let cols: Vec<usize> = (0..chunk.width)
        .map(|c| mirror_index(cj * chunk.width + c, spec.width))
        .collect();
    x.select(Axis(2), &rows).select(Axis(3), &cols)
}

/// For chunk (ci, cj): pairs (offset in the chunk's plane, offset in the whole image's plane)
/// of every stored coefficient, from the two layouts (whatever the variant).
fn chunk_offsets(spec: &Spec, chunk: &Spec, ci: usize, cj: usize) -> Vec<(usize, usize)> {
    let (whole, part) = (spec.layout(), chunk.layout());
    let (cbh, cbw) = part.blocks;
    let mut pairs = Vec::with_capacity(part.plane_len());
    for lbi in 0..cbh {
        for lbj in 0..cbw {
            let (gi, gj) = (ci * cbh + lbi, cj * cbw + lbj);
            for k in 0..part.per_block() {
                pairs.push((part.offset(lbi, lbj, k), whole.offset(gi, gj, k)));
            }
        }
    }
    pairs
}

/// Write a chunk's coefficients `[B, C, chunk plane]` into the whole image's layout.
fn place_coeffs(
    out: &mut ArrayD<f32>,
    y: &ArrayD<f32>,
    spec: &Spec,
    chunk: &Spec,
    ci: usize,
    cj: usize,
) {
    let pairs = chunk_offsets(spec, chunk, ci, cj);
    let (b, c) = (spec.batch, spec.channels);
    let mut out = out
        .view_mut()
        .into_shape_with_order((b, c, spec.layout().plane_len()))
        .expect("contiguous coefficients");
    let y = y
        .view()
        .into_shape_with_order((b, c, chunk.layout().plane_len()))
        .expect("contiguous chunk coefficients");
    for (mut o, yi) in out.outer_iter_mut().zip(y.outer_iter()) {
        for (mut o, yc) in o.outer_iter_mut().zip(yi.outer_iter()) {
            for &(src, dst) in &pairs {
                o[dst] = yc[src];
            }
        }
    }
}

/// The coefficients (or codes) of chunk (ci, cj), in the chunk graph's layout.
fn take_coeffs<T: Clone + Default>(
    y: &ArrayViewD<'_, T>,
    spec: &Spec,
    chunk: &Spec,
    ci: usize,
    cj: usize,
) -> ArrayD<T> {
    let pairs = chunk_offsets(spec, chunk, ci, cj);
    let (b, c) = (spec.batch, spec.channels);
    let y = y
        .as_standard_layout()
        .into_shape_with_order((b, c, spec.layout().plane_len()))
        .expect("contiguous coefficients")
        .into_owned();
    let mut out = ndarray::Array3::<T>::default((b, c, chunk.layout().plane_len()));
    for (mut o, yi) in out.outer_iter_mut().zip(y.outer_iter()) {
        for (mut o, yc) in o.outer_iter_mut().zip(yi.outer_iter()) {
            for &(src, dst) in &pairs {
                o[src] = yc[dst].clone();
            }
        }
    }
    out.into_shape_with_order(IxDyn(&chunk.compressed_shape()))
        .expect("same length")
}
