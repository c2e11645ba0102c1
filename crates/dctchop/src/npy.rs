//! Reading and writing `.npy` tensors (via npyz) for the graph-level tools and tests.

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};
use npyz::WriterBuilder;
use std::path::Path;

use crate::error::{Error, Result};
use crate::input::SampleType;
use crate::quant::{CodeElem, Codes, CodesView};
use crate::spec::Dtype;

/// Serialize `values` (C order, `shape`) as an in-memory `.npy` of `T`'s dtype.
fn npy_bytes<T: npyz::AutoSerialize>(
    shape: &[usize],
    values: impl Iterator<Item = T>,
) -> Result<Vec<u8>> {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail; npyz's errors are io::Error all the same.
    let io = |e: std::io::Error| Error::io("<.npy in memory>", e);
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()
        .map_err(io)?;
    w.extend(values).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(bytes)
}

/// The header of a C-order little-endian float32 `.npy` of `shape` (format version 1.0: magic,
/// version, length, the dict, spaces and a newline, 64-byte aligned as numpy writes it), for
/// writers that stream the data after it.
pub fn f32_header(shape: &[usize]) -> Vec<u8> {
    header(SampleType::Float32, shape)
}

/// numpy's `descr` of a sample type, little endian.
fn descr(ty: SampleType) -> &'static str {
    match ty {
        SampleType::Uint8 => "|u1",
        SampleType::Uint16 => "<u2",
        SampleType::Int16 => "<i2",
        SampleType::Int32 => "<i4",
        SampleType::Float16 => "<f2",
        SampleType::Float32 => "<f4",
        SampleType::Float64 => "<f8",
    }
}

/// Append `values` to `out` as the little-endian data of a `ty` `.npy`: integers rounded half
/// away from zero and clamped to the type's range (NaN becomes 0), float16 clamped to its
/// finite range (±65504) and rounded to nearest, float64 exact.
pub fn extend_le(out: &mut Vec<u8>, values: &[f32], ty: SampleType) {
    // Half away from zero without a libm call per value (`f32::round` is one on baseline
    // x86-64), in operations that vectorize: truncate toward zero (`as` saturates and maps NaN
    // to 0), then step away from zero when the dropped fraction (exact: |v| < 2^23 has one,
    // larger values have none) is at least 0.5; clamp to the type's range.
    #[inline(always)]
    fn round_clamp(v: f32, lo: i32, hi: i32) -> i32 {
        let v = v.clamp(lo as f32 - 1.0, hi as f32 + 1.0);
        let t = v as i32;
        let f = v - t as f32;
        t.wrapping_add(i32::from(f >= 0.5))
            .wrapping_sub(i32::from(f <= -0.5))
            .clamp(lo, hi)
    }
    macro_rules! ints {
        ($t:ty) => {
            ints!($t, |typed: &mut [$t]| {
                for (d, &v) in typed.iter_mut().zip(values) {
                    *d = round_clamp(v, <$t>::MIN as i32, <$t>::MAX as i32) as $t;
                }
            })
        };
        // The same rule as `round_clamp`, in the kernels' vectorized pass (the scalar loop
        // above does not vectorize on baseline x86-64: saturating casts).
        (sample $t:ty) => {
            ints!($t, |typed: &mut [$t]| {
                block_transform::store_samples(values, typed).expect("equal lengths")
            })
        };
        ($t:ty, $typed:expr) => {{
            let (lo, hi) = (<$t>::MIN as i32, <$t>::MAX as i32);
            let start = out.len();
            let size = std::mem::size_of::<$t>();
            out.resize(start + size * values.len(), 0);
            let dst = &mut out[start..];
            match bytemuck::try_cast_slice_mut::<u8, $t>(dst) {
                // Typed stores into the (aligned) buffer: a loop that vectorizes.
                Ok(typed) if cfg!(target_endian = "little") => $typed(typed),
                _ => {
                    for (d, &v) in dst.chunks_exact_mut(size).zip(values) {
                        d.copy_from_slice(&(round_clamp(v, lo, hi) as $t).to_le_bytes());
                    }
                }
            }
        }};
    }
    match ty {
        SampleType::Uint8 => ints!(sample u8),
        SampleType::Uint16 => ints!(sample u16),
        SampleType::Int16 => ints!(sample i16),
        SampleType::Int32 => ints!(i32),
        // Clamped to f16's finite range first (as integers are to theirs): a lossy value just
        // beyond 65504 would otherwise round to infinity.
        SampleType::Float16 => out.extend(values.iter().flat_map(|&v| {
            let m = half::f16::MAX.to_f32();
            half::f16::from_f32(v.clamp(-m, m)).to_le_bytes()
        })),
        SampleType::Float32 => extend_f32_le(out, values),
        SampleType::Float64 => out.extend(values.iter().flat_map(|&v| (v as f64).to_le_bytes())),
    }
}

/// The header of a C-order little-endian `.npy` of `ty` and `shape` (as [`f32_header`]).
pub fn header(ty: SampleType, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        descr(ty)
    );
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

/// Append `values` as little-endian bytes to `out` (the data of a float32 `.npy`).
pub fn extend_f32_le(out: &mut Vec<u8>, values: &[f32]) {
    let start = out.len();
    out.resize(start + 4 * values.len(), 0);
    for (d, v) in out[start..].chunks_exact_mut(4).zip(values) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// Serialize `a` as a C-order `.npy` (f32 `<f4` or f16 `<f2`).
pub fn to_npy_bytes(a: ArrayViewD<'_, f32>, ty: Dtype) -> Result<Vec<u8>> {
    match ty {
        Dtype::F32 => npy_bytes(a.shape(), a.iter().copied()),
        Dtype::F16 => npy_bytes(a.shape(), a.iter().map(|&v| half::f16::from_f32(v))),
    }
}

/// Write `a` to `path` atomically, replacing an existing file only with `force` (see
/// [`crate::output`]).
pub fn write_npy(path: &Path, a: ArrayViewD<'_, f32>, ty: Dtype, force: bool) -> Result<()> {
    let bytes = to_npy_bytes(a, ty)?;
    crate::output::write_atomic(path, &bytes, force)
}

/// The bytes of a regular file (a FIFO or device is refused instead of blocking).
fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::unsupported(
            path,
            "is not a regular file; pass a .npy file",
        ));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Longest `.npy` header accepted (numpy writes about 128 bytes).
pub const MAX_HEADER_BYTES: usize = 65536;

/// Check a `.npy` header's shape before a parser sees it (`prefix`: the file's first bytes,
/// at least the header when the file has one): at most [`MAX_HEADER_BYTES`], and brackets
/// nested at most 3 deep (numpy writes a dict holding a tuple). npyz's literal parser backtracks
/// exponentially on deep nesting: a 118-byte header of `{` hung it for minutes (found by
/// fuzzing). Files too short or without the magic are left to npyz to report.
pub fn check_header(prefix: &[u8]) -> std::result::Result<(), String> {
    if prefix.len() < 10 || &prefix[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let (len, start) = match prefix[6] {
        1 => (u16::from_le_bytes([prefix[8], prefix[9]]) as usize, 10),
        _ if prefix.len() >= 12 => (
            u32::from_le_bytes(prefix[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        _ => return Ok(()),
    };
    if len > MAX_HEADER_BYTES {
        return Err(format!(
            "not a valid .npy file: header of {len} bytes (at most {MAX_HEADER_BYTES})"
        ));
    }
    let header = &prefix[start.min(prefix.len())..(start + len).min(prefix.len())];
    let mut depth = 0usize;
    for &b in header {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > 3 {
                    return Err(
                        "not a valid .npy file: its header nests brackets more than 3 deep".into(),
                    );
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // A shape whose element count overflows: npyz multiplies it out unchecked.
    let text = String::from_utf8_lossy(header);
    if let Some(at) = text.find("'shape'") {
        let rest = &text[at..];
        if let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) {
            if open < close {
                let mut count: u64 = 1;
                for d in rest[open + 1..close].split(',') {
                    let d = d.trim();
                    if d.is_empty() {
                        continue;
                    }
                    let overflow = || {
                        format!(
                            "not a valid .npy file: shape {} overflows: more elements than fit in 64 bits",
                            &rest[open..=close]
                        )
                    };
                    let v: u64 = d.parse().map_err(|_| overflow())?;
                    count = count.checked_mul(v).ok_or_else(overflow)?;
                }
                if usize::try_from(count).is_err() {
                    return Err(format!(
                        "not a valid .npy file: shape {} is too large for this machine",
                        &rest[open..=close]
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Read a float `.npy` (f16, f32 or f64; C or Fortran order) as f32, with its stored type.
pub fn read_npy_f32(path: &Path) -> Result<(ArrayD<f32>, String)> {
    match read(path, false)? {
        NpyData::Float(a, descr) => Ok((a, descr)),
        NpyData::Codes(_) => unreachable!("integers are refused when not asked for"),
    }
}

/// A `.npy` tensor as [`read_npy`] returns it.
#[derive(Clone, Debug)]
pub enum NpyData {
    /// A float file (f16, f32 or f64), as f32, with its stored type (`<f4`, ...).
    Float(ArrayD<f32>, String),
    /// An int8 or int16 file, exactly (quantization codes).
    Codes(Codes),
}

impl NpyData {
    /// The stored element type as numpy names it (`float32`, `int8`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            NpyData::Float(_, d) => match d.as_str() {
                "<f2" => "float16",
                "<f4" => "float32",
                _ => "float64",
            },
            NpyData::Codes(c) => c.code_type().numpy_name(),
        }
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            NpyData::Float(a, _) => a.shape(),
            NpyData::Codes(c) => c.shape(),
        }
    }
}

/// Read a float `.npy` (f16, f32, f64, as f32) or an int8/int16 one (exactly, as codes); C or
/// Fortran order.
pub fn read_npy(path: &Path) -> Result<NpyData> {
    read(path, true)
}

fn read(path: &Path, integers: bool) -> Result<NpyData> {
    let bytes = read_regular(path)?;
    let bad = |m: String| Error::unsupported(path, m);
    let corrupt = |m: String| Error::corrupt(path, m);
    check_header(&bytes).map_err(bad)?;
    let npy =
        npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(format!("not a valid .npy file: {e}")))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == npyz::Order::Fortran;
    // npyz gives the Python literal, quotes included ("'<f4'"); keep the bare type string.
    let descr = npy.dtype().descr().trim_matches('\'').to_string();
    let elem = match descr.as_str() {
        "<f4" => 4,
        "<f2" | "<i2" => 2,
        "<f8" => 8,
        "|i1" => 1,
        _ => 0, // refused below, by name
    };
    if elem > 0 {
        // The header's shape must match the data that follows it, before anything is allocated
        // for it (a crafted header could declare terabytes).
        let npy = npyz::NpyFile::new(&bytes[..])
            .map_err(|e| bad(format!("not a valid .npy file: {e}")))?;
        let have = npy.into_inner().len() as u64;
        match crate::budget::bytes_of(&shape, elem) {
            None => {
                return Err(corrupt(format!(
                    "shape {shape:?}: its size in bytes overflows (a corrupt or crafted header)"
                )))
            }
            Some(need) if need > have => {
                return Err(corrupt(format!(
                    "truncated: the header says shape {shape:?} of {descr} ({need} bytes of \
                     data), but the file has {have} bytes after its header"
                )))
            }
            Some(_) => {}
        }
    }
    // Row-major data of `shape` (stored in C or Fortran order).
    fn arr<T: Clone>(
        path: &Path,
        shape: &[usize],
        fortran: bool,
        data: Vec<T>,
    ) -> Result<ArrayD<T>> {
        let a = ArrayD::from_shape_vec(IxDyn(shape).set_f(fortran), data).map_err(|e| {
            Error::corrupt(
                path,
                format!("shape {shape:?} does not match the data: {e}"),
            )
        })?;
        Ok(a.as_standard_layout().into_owned())
    }
    fn codes<T: CodeElem + npyz::Deserialize>(
        path: &Path,
        npy: npyz::NpyFile<&[u8]>,
    ) -> Result<NpyData> {
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let fortran = npy.order() == npyz::Order::Fortran;
        let v = npy
            .into_vec::<T>()
            .map_err(|e| Error::corrupt(path, e.to_string()))?;
        Ok(NpyData::Codes(T::owned(arr(path, &shape, fortran, v)?)))
    }
    let data: Vec<f32> = match descr.as_str() {
        "<f4" => npy.into_vec::<f32>().map_err(|e| corrupt(e.to_string()))?,
        "<f2" => npy
            .into_vec::<half::f16>()
            .map_err(|e| corrupt(e.to_string()))?
            .into_iter()
            .map(|v| v.to_f32())
            .collect(),
        "<f8" => npy
            .into_vec::<f64>()
            .map_err(|e| corrupt(e.to_string()))?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "|i1" if integers => return codes::<i8>(path, npy),
        "<i2" if integers => return codes::<i16>(path, npy),
        other => {
            let allowed = if integers {
                "float16, float32, float64, or int8/int16 codes"
            } else {
                "float16, float32 or float64"
            };
            return Err(bad(format!(
                "dtype {other} is not supported: use {allowed}"
            )));
        }
    };
    Ok(NpyData::Float(arr(path, &shape, fortran, data)?, descr))
}

/// Serialize codes as a C-order `.npy` (`|i1` or `<i2`).
pub fn codes_to_npy_bytes(codes: CodesView<'_>) -> Result<Vec<u8>> {
    match codes {
        CodesView::I8(a) => npy_bytes(a.shape(), a.iter().copied()),
        CodesView::I16(a) => npy_bytes(a.shape(), a.iter().copied()),
    }
}

/// Write codes to `path` atomically (see [`write_npy`]).
pub fn write_npy_codes(path: &Path, codes: CodesView<'_>, force: bool) -> Result<()> {
    let bytes = codes_to_npy_bytes(codes)?;
    crate::output::write_atomic(path, &bytes, force)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_exactly_and_floats_still_refuse_integers() {
        let dir = std::env::temp_dir().join(format!("dctchop-npy-codes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let i8s = ndarray::arr2(&[[-127i8, 0, 127], [1, -1, 5]]).into_dyn();
        let i16s = ndarray::arr1(&[-32767i16, 300, 32767]).into_dyn();
        for codes in [Codes::I8(i8s), Codes::I16(i16s)] {
            let p = dir.join("c.npy");
            write_npy_codes(&p, codes.view(), true).unwrap();
            match read_npy(&p).unwrap() {
                NpyData::Codes(back) => assert_eq!(back, codes),
                other => panic!("{other:?}"),
            }
            let e = read_npy_f32(&p).unwrap_err().to_string();
            assert!(
                e.contains("c.npy") && e.contains("float16, float32 or float64"),
                "{e}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn streamed_f32_header_and_data_equal_npyz() {
        for shape in [
            &[3][..],
            &[1, 1],
            &[1000, 3, 256, 256],
            &[2, 3, 5, 7],
            &[123456789, 1],
        ] {
            let n: usize = shape.iter().product::<usize>().min(40);
            let small: Vec<usize> = if n < shape.iter().product::<usize>() {
                vec![] // too large to materialize: compare the header only
            } else {
                shape.to_vec()
            };
            let header = f32_header(shape);
            assert_eq!(header.len() % 64, 0, "{shape:?}");
            if small.is_empty() {
                let text = String::from_utf8_lossy(&header[10..]).to_string();
                let dims = shape
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                assert!(text.contains(&format!("'shape': ({dims}),")), "{text}");
                continue;
            }
            let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.37 - 3.0).collect();
            let mut got = header.clone();
            extend_f32_le(&mut got, &values);
            // npyz's reader reads it back, and the data bytes are npyz's writer's (its header
            // differs in spacing only: `(1, 1, )` where numpy, and this, write `(1, 1)`).
            let file = std::env::temp_dir().join(format!("dctchop-npy-{}.npy", std::process::id()));
            std::fs::write(&file, &got).unwrap();
            let (back, _) = read_npy_f32(&file).unwrap();
            std::fs::remove_file(&file).unwrap();
            assert_eq!(back.shape(), shape);
            assert_eq!(
                back.iter().copied().collect::<Vec<_>>(),
                values,
                "{shape:?}"
            );
            let want = npy_bytes(shape, values.iter().copied()).unwrap();
            assert_eq!(got[header.len()..], want[want.len() - 4 * n..], "{shape:?}");
        }
    }

    /// Every sample type's header and data, read back by the `.npy` reader of `compress`
    /// (which decodes each type on its own), against the conversion written out here.
    #[test]
    fn every_sample_type_streams_and_reads_back() {
        let values: Vec<f32> = vec![
            -70000.4, -300.5, -128.5, -1.5, -0.5, -0.49, 0.0, 0.5, 1.5, 2.5, 127.49, 254.5, 255.5,
            1000.0, 40000.7, 70000.2, 3.0e9,
        ];
        let shape = [1usize, 1, 1, values.len()];
        for ty in crate::input::SAMPLE_TYPES {
            let mut bytes = header(ty, &shape);
            extend_le(&mut bytes, &values, ty);
            let file =
                std::env::temp_dir().join(format!("dctchop-npy-{ty}-{}.npy", std::process::id()));
            std::fs::write(&file, &bytes).unwrap();
            let ds = crate::input::open(std::slice::from_ref(&file)).unwrap();
            assert_eq!(ds.dtype, ty);
            let got = ds.reader().unwrap().next_batch(1).unwrap().unwrap();
            std::fs::remove_file(&file).unwrap();
            let (lo, hi): (f64, f64) = match ty {
                SampleType::Uint8 => (0.0, 255.0),
                SampleType::Uint16 => (0.0, 65535.0),
                SampleType::Int16 => (-32768.0, 32767.0),
                SampleType::Int32 => (-2147483648.0, 2147483647.0),
                _ => (f64::MIN, f64::MAX),
            };
            for (&g, &v) in got.iter().zip(&values) {
                let want = match ty {
                    SampleType::Float16 => {
                        half::f16::from_f32(v.clamp(-65504.0, 65504.0)).to_f32() as f64
                    }
                    SampleType::Float32 | SampleType::Float64 => v as f64,
                    // Half away from zero, written out.
                    _ => ((v as f64).abs() + 0.5)
                        .floor()
                        .copysign(v as f64)
                        .clamp(lo, hi),
                };
                assert_eq!(g as f64, want as f32 as f64, "{ty}: {v}");
            }
        }
    }

    /// The range `compress` takes from the reader (scanned chunk by chunk as the data is
    /// converted) equals a naive min/max of the batch, across several chunks and batches, and a
    /// NaN or infinity anywhere clears `finite`.
    #[test]
    fn reader_ranges_equal_a_naive_scan() {
        let n = 3 * 3 * 300 * 301; // over 1 MB of f32 per batch: several conversion chunks
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 60001) as f32 * 0.9 - 3000.0)
            .collect();
        for ty in crate::input::SAMPLE_TYPES {
            for poison in [None, Some(f32::NAN), Some(f32::INFINITY)] {
                let integer = !matches!(
                    ty,
                    SampleType::Float16 | SampleType::Float32 | SampleType::Float64
                );
                if integer && poison.is_some() {
                    continue; // integers hold no NaN
                }
                let mut v = values.clone();
                if let Some(p) = poison {
                    v[n - 5] = p;
                }
                let shape = [3usize, 3, 300, 301];
                let mut bytes = header(ty, &shape);
                extend_le(&mut bytes, &v, ty);
                let file = std::env::temp_dir()
                    .join(format!("dctchop-range-{ty}-{}.npy", std::process::id()));
                std::fs::write(&file, &bytes).unwrap();
                let ds = crate::input::open(std::slice::from_ref(&file)).unwrap();
                let (mut plain, mut ranged) = (ds.reader().unwrap(), ds.reader().unwrap());
                for _ in 0..2 {
                    let x = plain.next_batch(2).unwrap().unwrap();
                    let (y, r) = ranged.next_batch_with_range(2).unwrap().unwrap();
                    let bits = |a: &ndarray::Array4<f32>| a.map(|v| v.to_bits());
                    assert_eq!(bits(&x), bits(&y), "{ty} {poison:?}");
                    let finite = x.iter().all(|v| v.is_finite());
                    let kept = x.iter().copied().filter(|v| !v.is_nan());
                    let lo = kept.clone().fold(f32::INFINITY, f32::min);
                    let hi = kept.fold(f32::NEG_INFINITY, f32::max);
                    assert_eq!((r.lo, r.hi, r.finite), (lo, hi, finite), "{ty} {poison:?}");
                }
                std::fs::remove_file(&file).unwrap();
            }
        }
    }
}
