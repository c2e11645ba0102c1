//! Compress and decompress any number of samples with a plan's compiled graphs.
//!
//! The graphs have a fixed batch; [`Codec`] runs full batches and pads the last one (with copies
//! of its last sample, dropped afterwards). With `serialize = s` the graphs process one
//! (Hp/s × Wp/s) spatial chunk of the mirror-padded image; the codec cuts each sample into s×s
//! true spatial chunks, runs them one after another, and reassembles the global layout, so the
//! result equals the unserialized compressor.

use ndarray::{s, Array4, ArrayD, ArrayView4, ArrayViewD, Axis, IxDyn};

use crate::engine::{compile, EngineOptions, Runner};
use crate::error::{Error, Result};
use crate::graph::Direction;
use crate::plan::{mirror_index, Plan};
use crate::spec::{Spec, Variant};

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

    /// Compress `x` of shape `[N, C, H, W]` (any N ≥ 1) into `[N, ...]` coefficients in the
    /// spec's layout.
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

    /// Decompress `[N, ...]` coefficients into `[N, C, H, W]`.
    pub fn decompress(&mut self, y: ArrayViewD<'_, f32>) -> Result<Array4<f32>> {
        let spec = self.plan.spec.clone();
        let want = &spec.compressed_shape()[1..];
        if &y.shape()[1..] != want || y.shape()[0] == 0 {
            return Err(Error::Shape {
                what: format!("decompress input (layout {})", spec.layout_name()),
                expected: [&[y.shape()[0].max(1)][..], want].concat(),
                got: y.shape().to_vec(),
            });
        }
        let n = y.shape()[0];
        let mut out = Array4::<f32>::zeros((n, spec.channels, spec.height, spec.width));
        let b = spec.batch;
        for start in (0..n).step_by(b) {
            let take = (n - start).min(b);
            let mut dst = out.slice_mut(s![start..start + take, .., .., ..]);
            if take == b && spec.serialize == 1 {
                let src = y.slice_axis(Axis(0), (start..start + b).into());
                self.decompress.run_into(src, dst.into_dyn())?;
            } else {
                let batch = padded_batch(y.view(), start, b);
                let x = self.decompress_batch(batch.view())?;
                dst.assign(&x.slice(s![0..take, .., .., ..]));
            }
        }
        Ok(out)
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

    fn decompress_batch(&mut self, y: ArrayViewD<'_, f32>) -> Result<Array4<f32>> {
        let s = self.plan.spec.serialize;
        if s == 1 {
            let x = self.decompress.run(y)?;
            return Ok(x.into_dimensionality().expect("rank 4"));
        }
        let spec = self.plan.spec.clone();
        let chunk = self.plan.chunk.clone();
        let mut out = Array4::<f32>::zeros((spec.batch, spec.channels, spec.height, spec.width));
        for ci in 0..s {
            for cj in 0..s {
                let part = take_coeffs(&y, &spec, &chunk, ci, cj);
                let x = self.decompress.run(part.view())?;
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
fn padded_batch(x: ArrayViewD<'_, f32>, start: usize, batch: usize) -> ArrayD<f32> {
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

/// Global block index of chunk (ci, cj)'s local block (lbi, lbj).
fn global_block(chunk: &Spec, ci: usize, cj: usize, lbi: usize, lbj: usize) -> (usize, usize) {
    let (cbh, cbw) = chunk.blocks();
    (ci * cbh + lbi, cj * cbw + lbj)
}

/// Write a chunk's coefficients into the whole image's layout.
fn place_coeffs(
    out: &mut ArrayD<f32>,
    y: &ArrayD<f32>,
    spec: &Spec,
    chunk: &Spec,
    ci: usize,
    cj: usize,
) {
    let (cbh, cbw) = chunk.blocks();
    match spec.variant {
        Variant::Chop => {
            let (h, w) = (cbh * spec.cf, cbw * spec.cf);
            out.slice_mut(s![.., .., ci * h..(ci + 1) * h, cj * w..(cj + 1) * w])
                .assign(y);
        }
        Variant::Triangle => {
            let t = spec.coeffs_per_block();
            let (_, nbw) = spec.blocks();
            for lbi in 0..cbh {
                for lbj in 0..cbw {
                    let (gi, gj) = global_block(chunk, ci, cj, lbi, lbj);
                    let src = (lbi * cbw + lbj) * t;
                    let dst = (gi * nbw + gj) * t;
                    out.slice_mut(s![.., .., dst..dst + t]).assign(&y.slice(s![
                        ..,
                        ..,
                        src..src + t
                    ]));
                }
            }
        }
    }
}

/// The coefficients of chunk (ci, cj), in the chunk graph's layout.
fn take_coeffs(
    y: &ArrayViewD<'_, f32>,
    spec: &Spec,
    chunk: &Spec,
    ci: usize,
    cj: usize,
) -> ArrayD<f32> {
    let (cbh, cbw) = chunk.blocks();
    match spec.variant {
        Variant::Chop => {
            let (h, w) = (cbh * spec.cf, cbw * spec.cf);
            y.slice(s![.., .., ci * h..(ci + 1) * h, cj * w..(cj + 1) * w])
                .to_owned()
                .into_dyn()
        }
        Variant::Triangle => {
            let t = spec.coeffs_per_block();
            let (_, nbw) = spec.blocks();
            let mut idx = Vec::with_capacity(cbh * cbw * t);
            for lbi in 0..cbh {
                for lbj in 0..cbw {
                    let (gi, gj) = global_block(chunk, ci, cj, lbi, lbj);
                    idx.extend((gi * nbw + gj) * t..(gi * nbw + gj + 1) * t);
                }
            }
            y.select(Axis(2), &idx)
        }
    }
}
