//! ZFP fixed-rate baseline (cargo feature `zfp`; ZFP 1.0 built from source by `zfp-sys`).
//!
//! Every channel of every sample is one 2-D f32 field (H × W), compressed in fixed-rate mode at
//! `rate` = original bits per value ÷ target ratio (32/ratio for f32 data, 8/ratio for uint8;
//! clamped to 1/16..=32), unaligned. The stored size is the bytes `zfp_compress` wrote (no
//! header); the achieved ratio is reported as measured, which is slightly below the target when
//! H or W is not a multiple of 4 (ZFP pads partial 4×4 blocks).

use ndarray::{s, Array2, Array4, ArrayView2};
use std::time::Instant;

use super::{Data, Outcome};
use crate::bench::median;
use crate::error::{Error, Result};
use zfp_sys as z;

/// A ZFP stream at fixed `rate` over one H×W f32 field, plus the bit stream once attached; all
/// three are freed on drop, whatever fails in between.
struct Zfp {
    field: *mut z::zfp_field,
    stream: *mut z::zfp_stream,
    bits: *mut z::bitstream,
}

impl Zfp {
    /// # Safety
    /// `data` must point at `h * w` f32 (row-major: x fastest = width) that outlive the value.
    unsafe fn open(data: *mut f32, h: usize, w: usize, rate: f64) -> Result<Zfp> {
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
        z::zfp_stream_set_rate(zfp.stream, rate, z::zfp_type_zfp_type_float, 2, 0);
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

/// Compress one H×W field at `rate` bits per value; returns the stream bytes.
fn compress_field(x: ArrayView2<'_, f32>, rate: f64) -> Result<Vec<u8>> {
    let (h, w) = x.dim();
    let mut buf: Vec<f32> = x.iter().copied().collect();
    // SAFETY: `buf` and `out` outlive `zfp`, which is dropped before either is touched again;
    // `out` is sized by zfp_stream_maximum_size.
    let out = unsafe {
        let mut zfp = Zfp::open(buf.as_mut_ptr(), h, w, rate)?;
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

/// Decompress one H×W field written by [`compress_field`] at the same rate.
fn decompress_field(bytes: &[u8], h: usize, w: usize, rate: f64) -> Result<Array2<f32>> {
    let mut buf = vec![0f32; h * w];
    let mut input = bytes.to_vec();
    // SAFETY: as in compress_field; the stream reads `input`, the field writes `buf`.
    let n = unsafe {
        let mut zfp = Zfp::open(buf.as_mut_ptr(), h, w, rate)?;
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

/// The ZFP rate (bits per value) aimed at `ratio` for this data.
pub fn rate_for(data: &Data, ratio: f64) -> f64 {
    let bits = 8.0 * data.dtype.bytes() as f64;
    (bits / ratio).clamp(1.0 / 16.0, 32.0)
}

/// Compress and decompress every sample and channel with ZFP fixed rate aimed at `ratio`.
pub fn run_zfp(
    data: &Data,
    ratio: f64,
    repeats: usize,
    matched_to: Option<String>,
) -> Result<Outcome> {
    let rate = rate_for(data, ratio);
    let (n, c, h, w) = data.x.dim();
    let mut times = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        streams.clear();
        for i in 0..n {
            for k in 0..c {
                streams.push(compress_field(data.x.slice(s![i, k, .., ..]), rate)?);
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
                let f = decompress_field(&streams[i * c + k], h, w, rate)?;
                recon.slice_mut(s![i, k, .., ..]).assign(&f);
            }
        }
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(Outcome {
        method: "zfp".into(),
        config: format!("rate {rate:.3}"),
        variant: None,
        cf: None,
        block: None,
        store: None,
        param: Some(rate),
        matched_to,
        coefficient_ratio: None,
        stored_bytes: streams.iter().map(|s| s.len() as u64).sum(),
        compress_s,
        decompress_s: median(&times),
        recon,
    })
}
