//! SZ3 baseline (cargo feature `sz3`; SZ3 3.3.2 through the `sz3` crate, which bundles its
//! C++ sources and builds them with cmake and the system C++ compiler).
//!
//! Every channel of every sample is one 2-D f32 field (H × W, row-major; a side of 1 makes it
//! 1-D), compressed on its own in **absolute error bound** mode with SZ3's default pipeline
//! (`ALGO_INTERP_LORENZO`: it tries spline interpolation and Lorenzo/regression on a sample and
//! keeps the better, then Huffman + zstd). Per channel rather than one 3-D [C, H, W] field: the
//! same unit as dctchop (a 2-D DCT per channel) and ZFP here, and a colour axis of 3 points gives
//! SZ3's predictors little to work with — on chelsea.png the 3-D field was 1–10 % larger at the
//! same bound (see docs/evaluation.md). The stored size is the bytes SZ3 returned: its own
//! header and config (dims, bound, algorithm) included, nothing added.
//!
//! The bound is matched to a target ratio by bisection in log space on the real compressed size
//! of all samples ([`LogSearch`]), over `range` × 1e-7 ..= `range` (range = the dataset's data
//! range): from near lossless to everything within the bound.

use ndarray::{s, Array4, ArrayView2};
use std::time::Instant;

use super::search::{par_map, short, LogSearch};
use super::{Baseline, Data, Outcome};
use crate::bench::median;
use crate::error::{Error, Result};

/// The SZ3 version the `sz3` crate bundles (its crate version's build metadata).
pub const VERSION: &str = "3.3.2";

fn sz3_err(e: impl std::fmt::Display) -> Error {
    Error::Engine {
        engine: "SZ3",
        message: e.to_string(),
    }
}

/// SZ3's dimensions of an H×W field, slowest first, without sides of 1 (the crate refuses them).
fn dims(h: usize, w: usize) -> Vec<usize> {
    let d: Vec<usize> = [h, w].into_iter().filter(|&n| n != 1).collect();
    if d.is_empty() {
        vec![1]
    } else {
        d
    }
}

/// Compress one H×W field with absolute error bound `eb`; returns SZ3's whole output.
pub fn compress_field(x: ArrayView2<'_, f32>, eb: f64) -> Result<Vec<u8>> {
    if !(eb.is_finite() && eb >= 0.0) {
        return Err(Error::invalid_option(
            "SZ3 error bound",
            eb,
            "a finite number >= 0",
        ));
    }
    let (h, w) = x.dim();
    let buf: Vec<f32> = x.iter().copied().collect();
    let mut b = sz3::DimensionedData::<f32, _>::build(&buf);
    for d in dims(h, w) {
        b = b.dim(d).map_err(sz3_err)?;
    }
    let field = b.finish().map_err(sz3_err)?;
    let config = sz3::Config::new(sz3::ErrorBound::Absolute(eb));
    sz3::compress_with_config(&field, &config).map_err(sz3_err)
}

/// Decompress one H×W field written by [`compress_field`].
pub fn decompress_field(bytes: &[u8], h: usize, w: usize) -> Result<ndarray::Array2<f32>> {
    let (_, field) = sz3::decompress::<f32, _>(bytes).map_err(sz3_err)?;
    if field.dims() != dims(h, w).as_slice() {
        return Err(sz3_err(format!(
            "decompressed dims {:?}, expected {:?}",
            field.dims(),
            dims(h, w)
        )));
    }
    ndarray::Array2::from_shape_vec((h, w), field.into_data()).map_err(sz3_err)
}

/// Total stored bytes of all samples and channels at bound `eb` (untimed; fields in parallel).
pub fn stored_bytes(data: &Data, eb: f64) -> Result<u64> {
    let (n, c, _, _) = data.x.dim();
    let sizes = par_map(n * c, &|i| {
        Ok(compress_field(data.x.slice(s![i / c, i % c, .., ..]), eb)?.len() as u64)
    })?;
    Ok(sizes.iter().sum())
}

/// Compress and decompress every sample and channel at bound `eb`; times are medians of
/// `repeats` runs on one thread.
pub fn run(data: &Data, eb: f64, repeats: usize) -> Result<Outcome> {
    let (n, c, h, w) = data.x.dim();
    let mut times = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        streams.clear();
        for i in 0..n {
            for k in 0..c {
                streams.push(compress_field(data.x.slice(s![i, k, .., ..]), eb)?);
            }
        }
        times.push(t.elapsed().as_secs_f64());
    }
    let compress_s = median(&times);
    let mut times = Vec::new();
    let mut recon = Array4::<f32>::zeros((n, c, h, w));
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        for i in 0..n {
            for k in 0..c {
                let f = decompress_field(&streams[i * c + k], h, w)?;
                recon.slice_mut(s![i, k, .., ..]).assign(&f);
            }
        }
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(Outcome {
        method: "sz3".into(),
        config: format!("eb {}", short(eb)),
        variant: None,
        cf: None,
        block: None,
        store: None,
        quant: None,
        param: Some(eb),
        matched_to: None,
        coefficient_ratio: None,
        stored_bytes: streams.iter().map(|s| s.len() as u64).sum(),
        compress_s,
        decompress_s: median(&times),
        recon,
    })
}

/// SZ3 as a [`Baseline`]: the absolute error bound searched on the real stored size.
pub struct Sz3<'a> {
    data: &'a Data,
    search: LogSearch,
}

impl<'a> Sz3<'a> {
    pub fn new(data: &'a Data) -> Self {
        let range = data.range();
        Sz3 {
            data,
            search: LogSearch::new(range * 1e-7, range),
        }
    }

    /// The bound whose stored ratio is closest to `ratio` (within `tol` in log scale where the
    /// size allows), and its stored bytes.
    pub fn bound_for(&mut self, ratio: f64, tol: f64) -> Result<(f64, u64)> {
        let want = self.data.original_bytes() as f64 / ratio;
        let data = self.data;
        self.search
            .find(want, tol, &mut |eb| stored_bytes(data, eb))
    }

    /// Every (bound, stored bytes) measured so far.
    pub fn probes(&self) -> Vec<(f64, u64)> {
        self.search.probes()
    }
}

impl Baseline for Sz3<'_> {
    fn method(&self) -> &'static str {
        "sz3"
    }
    fn find(&mut self, ratio: f64, tol: f64) -> Result<f64> {
        Ok(self.bound_for(ratio, tol)?.0)
    }
    fn run(&self, param: f64, repeats: usize) -> Result<Outcome> {
        run(self.data, param, repeats)
    }
}
