//! Reading and writing `.npy` tensors (via npyz) for the graph-level tools and tests.

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};
use npyz::WriterBuilder;
use std::path::Path;

use crate::error::{Error, Result};
use crate::spec::Dtype;

/// Serialize `a` as a C-order `.npy` (f32 `<f4` or f16 `<f2`).
pub fn to_npy_bytes(a: ArrayViewD<'_, f32>, ty: Dtype) -> Result<Vec<u8>> {
    let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail; npyz's errors are io::Error all the same.
    let io = |e: std::io::Error| Error::io("<.npy in memory>", e);
    match ty {
        Dtype::F32 => {
            let mut w = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut bytes)
                .begin_nd()
                .map_err(io)?;
            w.extend(a.iter().copied()).map_err(io)?;
            w.finish().map_err(io)?;
        }
        Dtype::F16 => {
            let mut w = npyz::WriteOptions::<half::f16>::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut bytes)
                .begin_nd()
                .map_err(io)?;
            w.extend(a.iter().map(|&v| half::f16::from_f32(v)))
                .map_err(io)?;
            w.finish().map_err(io)?;
        }
    }
    Ok(bytes)
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

/// Read a float `.npy` (f16, f32 or f64; C or Fortran order) as f32, with its stored type.
pub fn read_npy_f32(path: &Path) -> Result<(ArrayD<f32>, String)> {
    let bytes = read_regular(path)?;
    let bad = |m: String| Error::unsupported(path, m);
    let corrupt = |m: String| Error::corrupt(path, m);
    let npy =
        npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(format!("not a valid .npy file: {e}")))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == npyz::Order::Fortran;
    // npyz gives the Python literal, quotes included ("'<f4'"); keep the bare type string.
    let descr = npy.dtype().descr().trim_matches('\'').to_string();
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
        other => {
            let msg = format!("dtype {other} is not supported: use float16, float32 or float64");
            return Err(bad(msg));
        }
    };
    let arr = ArrayD::from_shape_vec(IxDyn(&shape).set_f(fortran), data)
        .map_err(|e| corrupt(format!("shape {shape:?} does not match the data: {e}")))?;
    Ok((arr.as_standard_layout().into_owned(), descr))
}
