//! ZFP baselines (cargo feature `zfp`; ZFP 1.0.1 built from source by `zfp-sys`).
//!
//! Every channel of every sample is one 2-D f32 field (H × W), compressed on its own. The stored
//! size is the bytes `zfp_compress` wrote (no header: the mode and shape are known to both
//! sides); the achieved ratio is reported as measured.
//!
//! - **Fixed rate** (`zfp-rate`): `rate` = original bits per value ÷ target ratio (32/ratio for
//!   f32 data, 8/ratio for uint8), rounded to the 1/16 bit ZFP uses for 2-D blocks and kept
//!   within 9/16..=32 (ZFP's floor for f32 is 1 + 8 bits per 4×4 block), unaligned. No search:
//!   the size follows from the rate, slightly above it when H or W is not a multiple of 4 (ZFP
//!   pads partial 4×4 blocks).
//! - **Fixed accuracy** (`zfp-accuracy`): absolute error tolerance `tol`. ZFP only uses powers of
//!   two (`zfp_stream_set_accuracy` keeps 2^⌊log2 tol⌋), so the tolerance is searched as an
//!   integer exponent k, tol = 2^k, from ⌊log2 range⌋ − 30 (near lossless for f32) to
//!   ⌈log2 max |x|⌉ + 7 (ZFP keeps 6 guard bit planes below each block's exponent, so only
//!   there does a block shrink to its header): a binary search on the real compressed size
//!   of all samples, then the neighbours; the k whose ratio is closest (in log scale) to the
//!   target wins. Neighbouring exponents differ by roughly one bit plane, so the achieved ratio
//!   can miss the target by up to half a step (reported as achieved).

use ndarray::{s, Array2, Array4, ArrayView2};
use std::collections::BTreeMap;
use std::time::Instant;

use super::search::{closest_int, par_map, short};
use super::{Baseline, Data, Outcome};
use crate::bench::median;
use crate::error::{Error, Result};
use zfp_sys as z;

/// The ZFP version built by `zfp-sys`, e.g. `1.0.1`.
pub fn version() -> String {
    format!(
        "{}.{}.{}",
        z::ZFP_VERSION_MAJOR,
        z::ZFP_VERSION_MINOR,
        z::ZFP_VERSION_PATCH
    )
}

/// How ZFP spends its bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Fixed rate: bits per value.
    Rate(f64),
    /// Fixed accuracy: absolute error tolerance (ZFP uses the power of two at or below it).
    Accuracy(f64),
}

impl Mode {
    /// The row's `method`.
    pub fn method(&self) -> &'static str {
        match self {
            Mode::Rate(_) => "zfp-rate",
            Mode::Accuracy(_) => "zfp-accuracy",
        }
    }
    /// The row's `param`.
    pub fn param(&self) -> f64 {
        match *self {
            Mode::Rate(v) | Mode::Accuracy(v) => v,
        }
    }
    /// The row's `config`.
    pub fn config(&self) -> String {
        match *self {
            Mode::Rate(r) => format!("rate {r:.3}"),
            Mode::Accuracy(t) => format!("tol {}", short(t)),
        }
    }
}

/// A ZFP stream in one mode over one H×W f32 field, plus the bit stream once attached; all
/// three are freed on drop, whatever fails in between.
struct Zfp {
    field: *mut z::zfp_field,
    stream: *mut z::zfp_stream,
    bits: *mut z::bitstream,
}

impl Zfp {
    /// # Safety
    /// `data` must point at `h * w` f32 (row-major: x fastest = width) that outlive the value.
    unsafe fn open(data: *mut f32, h: usize, w: usize, mode: Mode) -> Result<Zfp> {
        let zfp = Zfp {
            field: z::zfp_field_2d(data.cast(), z::zfp_type_zfp_type_float, w, h),
            stream: z::zfp_stream_open(std::ptr::null_mut()),
            bits: std::ptr::null_mut(),
        };
        if zfp.field.is_null() || zfp.stream.is_null() {
            return Err(Error::Engine {
                engine: "ZFP",
                message: "cannot allocate a stream".into(),
            });
        }
        match mode {
            Mode::Rate(rate) => {
                z::zfp_stream_set_rate(zfp.stream, rate, z::zfp_type_zfp_type_float, 2, 0);
            }
            Mode::Accuracy(tol) => {
                z::zfp_stream_set_accuracy(zfp.stream, tol);
            }
        }
        Ok(zfp)
    }

    /// Read or write the compressed stream at `bytes`.
    ///
    /// # Safety
    /// `bytes` must point at `len` bytes that outlive the value.
    unsafe fn attach(&mut self, bytes: *mut u8, len: usize) -> Result<()> {
        self.bits = z::stream_open(bytes.cast(), len);
        if self.bits.is_null() {
            return Err(Error::Engine {
                engine: "ZFP",
                message: "cannot allocate a bit stream".into(),
            });
        }
        z::zfp_stream_set_bit_stream(self.stream, self.bits);
        z::zfp_stream_rewind(self.stream);
        Ok(())
    }
}

impl Drop for Zfp {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was returned by the matching ZFP constructor.
        unsafe {
            if !self.field.is_null() {
                z::zfp_field_free(self.field);
            }
            if !self.stream.is_null() {
                z::zfp_stream_close(self.stream);
            }
            if !self.bits.is_null() {
                z::stream_close(self.bits);
            }
        }
    }
}

/// Compress one H×W field; returns the stream bytes.
pub fn compress_field(x: ArrayView2<'_, f32>, mode: Mode) -> Result<Vec<u8>> {
    let (h, w) = x.dim();
    let mut buf: Vec<f32> = x.iter().copied().collect();
    // SAFETY: `buf` and `out` outlive `zfp`, which is dropped before either is touched again;
    // `out` is sized by zfp_stream_maximum_size.
    let out = unsafe {
        let mut zfp = Zfp::open(buf.as_mut_ptr(), h, w, mode)?;
        let cap = z::zfp_stream_maximum_size(zfp.stream, zfp.field);
        let mut out = vec![0u8; cap];
        zfp.attach(out.as_mut_ptr(), cap)?;
        let n = z::zfp_compress(zfp.stream, zfp.field); // 0 on failure
        drop(zfp);
        out.truncate(n);
        out
    };
    if out.is_empty() {
        return Err(Error::Engine {
            engine: "ZFP",
            message: "compression failed".into(),
        });
    }
    Ok(out)
}

/// Decompress one H×W field written by [`compress_field`] in the same mode.
pub fn decompress_field(bytes: &[u8], h: usize, w: usize, mode: Mode) -> Result<Array2<f32>> {
    let mut buf = vec![0f32; h * w];
    let mut input = bytes.to_vec();
    // SAFETY: as in compress_field; the stream reads `input`, the field writes `buf`.
    let n = unsafe {
        let mut zfp = Zfp::open(buf.as_mut_ptr(), h, w, mode)?;
        zfp.attach(input.as_mut_ptr(), input.len())?;
        z::zfp_decompress(zfp.stream, zfp.field)
    };
    if n == 0 {
        return Err(Error::Engine {
            engine: "ZFP",
            message: "decompression failed".into(),
        });
    }
    Array2::from_shape_vec((h, w), buf).map_err(|e| Error::Engine {
        engine: "ZFP",
        message: e.to_string(),
    })
}

/// The ZFP rate (bits per value) aimed at `ratio` for this data, as ZFP will use it: a 4×4
/// block gets a whole number of bits, at least 1 + 8 for f32 (`zfp_stream_set_rate`), so the
/// rate is original bits per value ÷ ratio rounded to 1/16 and kept within 9/16..=32.
pub fn rate_for(data: &Data, ratio: f64) -> f64 {
    let bits = 8.0 * data.dtype.bytes() as f64;
    ((16.0 * bits / ratio).round() / 16.0).clamp(9.0 / 16.0, 32.0)
}

/// Compress and decompress every sample and channel with ZFP fixed rate aimed at `ratio`.
pub fn run_zfp(
    data: &Data,
    ratio: f64,
    repeats: usize,
    matched_to: Option<String>,
) -> Result<Outcome> {
    let mut o = run_mode(data, Mode::Rate(rate_for(data, ratio)), repeats)?;
    o.matched_to = matched_to;
    Ok(o)
}

/// Total stored bytes of all samples and channels in one mode (untimed; fields in parallel).
pub fn stored_bytes(data: &Data, mode: Mode) -> Result<u64> {
    let (n, c, _, _) = data.x.dim();
    let sizes = par_map(n * c, &|i| {
        Ok(compress_field(data.x.slice(s![i / c, i % c, .., ..]), mode)?.len() as u64)
    })?;
    Ok(sizes.iter().sum())
}

/// Compress and decompress every sample and channel in one mode; times are medians of
/// `repeats` runs on one thread.
pub fn run_mode(data: &Data, mode: Mode, repeats: usize) -> Result<Outcome> {
    let (n, c, h, w) = data.x.dim();
    let mut times = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        streams.clear();
        for i in 0..n {
            for k in 0..c {
                streams.push(compress_field(data.x.slice(s![i, k, .., ..]), mode)?);
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
                let f = decompress_field(&streams[i * c + k], h, w, mode)?;
                recon.slice_mut(s![i, k, .., ..]).assign(&f);
            }
        }
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(Outcome {
        method: mode.method().into(),
        config: mode.config(),
        variant: None,
        cf: None,
        block: None,
        store: None,
        quant: None,
        param: Some(mode.param()),
        matched_to: None,
        coefficient_ratio: None,
        stored_bytes: streams.iter().map(|s| s.len() as u64).sum(),
        compress_s,
        decompress_s: median(&times),
        recon,
    })
}

/// ZFP fixed rate as a [`Baseline`]: the rate follows from the target ratio (no search).
pub struct FixedRate<'a> {
    pub data: &'a Data,
}

impl Baseline for FixedRate<'_> {
    fn method(&self) -> &'static str {
        "zfp-rate"
    }
    fn find(&mut self, ratio: f64, _tol: f64) -> Result<f64> {
        Ok(rate_for(self.data, ratio))
    }
    fn run(&self, param: f64, repeats: usize) -> Result<Outcome> {
        run_mode(self.data, Mode::Rate(param), repeats)
    }
}

/// ZFP fixed accuracy as a [`Baseline`]: tolerance 2^k, k searched on the real stored size.
pub struct FixedAccuracy<'a> {
    data: &'a Data,
    /// Stored bytes by exponent k.
    sizes: BTreeMap<i64, u64>,
    lo: i64,
    hi: i64,
}

impl<'a> FixedAccuracy<'a> {
    pub fn new(data: &'a Data) -> Self {
        // ZFP keeps 2 (d + 1) = 6 guard bit planes below a block's largest exponent in
        // fixed-accuracy mode: only a tolerance 2^6 above the largest magnitude drops them all.
        let mag = data.min.abs().max(data.max.abs()).max(data.range());
        FixedAccuracy {
            data,
            sizes: BTreeMap::new(),
            lo: data.range().log2().floor() as i64 - 30,
            hi: mag.log2().ceil() as i64 + 7,
        }
    }

    /// Total stored bytes at tolerance 2^k.
    pub fn bytes(&mut self, k: i64) -> Result<u64> {
        if let Some(&b) = self.sizes.get(&k) {
            return Ok(b);
        }
        let b = stored_bytes(self.data, Mode::Accuracy((k as f64).exp2()))?;
        self.sizes.insert(k, b);
        Ok(b)
    }

    /// The tolerance (a power of two) whose stored ratio is closest (in log scale) to `ratio`.
    pub fn tolerance_for(&mut self, ratio: f64) -> Result<f64> {
        let want = self.data.original_bytes() as f64 / ratio;
        let (lo, hi) = (self.lo, self.hi);
        let k = closest_int(lo, hi, false, want, &mut |k| self.bytes(k))?;
        Ok((k as f64).exp2())
    }
}

impl Baseline for FixedAccuracy<'_> {
    fn method(&self) -> &'static str {
        "zfp-accuracy"
    }
    fn find(&mut self, ratio: f64, _tol: f64) -> Result<f64> {
        self.tolerance_for(ratio)
    }
    fn run(&self, param: f64, repeats: usize) -> Result<Outcome> {
        run_mode(self.data, Mode::Accuracy(param), repeats)
    }
}
