//! HDF5 input (cargo feature `hdf5`): one dataset of a `.h5`/`.hdf5` file, read in hyperslabs of
//! whole samples along the first axis, so memory stays bounded by one batch.

use ndarray::{Array4, ArrayD, IxDyn};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::SampleType;

/// Where the data is: the file, the dataset's full name and the axis letters of its layout.
#[derive(Clone, Debug)]
pub struct Source {
    pub file: PathBuf,
    pub dataset: String,
    /// Axis letters of the stored dataset (`hw`, `chw`, `nhw`, `hwc`, `nchw`, `nhwc`).
    pub layout: String,
    shape: Vec<usize>,
}

/// Every dataset's full name under `g`, depth first, sorted.
fn list_datasets(g: &hdf5::Group, out: &mut Vec<String>) -> hdf5::Result<()> {
    for d in g.datasets()? {
        out.push(d.name());
    }
    for sub in g.groups()? {
        list_datasets(&sub, out)?;
    }
    Ok(())
}

/// Open `file`, find `dataset` (or the only dataset when None) and check dtype and shape.
/// Returns `[N, C, H, W]`, the sample type and the source.
pub fn open(
    file: &Path,
    dataset: Option<&str>,
    layout: Option<&str>,
) -> Result<([usize; 4], SampleType, Source)> {
    let h5err = |e: hdf5::Error| Error::corrupt(file, format!("HDF5: {e}"));
    if !file.is_file() {
        // Error::io gives the OS message (missing file, permission).
        std::fs::metadata(file).map_err(|e| Error::io(file, e))?;
        return Err(Error::unsupported(file, "not a regular file"));
    }
    let f = hdf5::File::open(file)
        .map_err(|e| Error::unsupported(file, format!("cannot open as an HDF5 file: {e}")))?;
    let mut names = Vec::new();
    list_datasets(&f, &mut names).map_err(h5err)?;
    names.sort();
    let listing = || {
        if names.is_empty() {
            "the file has no datasets".to_string()
        } else {
            format!("the datasets are: {}", names.join(", "))
        }
    };
    let name = match dataset {
        Some(d) => {
            let full = if d.starts_with('/') {
                d.to_string()
            } else {
                format!("/{d}")
            };
            if !names.contains(&full) {
                return Err(Error::invalid_input(
                    file,
                    format!(
                        "no dataset {full}: {}; pass FILE.h5:/DATASET[:LAYOUT]",
                        listing()
                    ),
                ));
            }
            full
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(Error::invalid_input(
                file,
                format!("name the dataset as FILE.h5:/DATASET: {}", listing()),
            ))
        }
    };
    let ds = f.dataset(&name).map_err(h5err)?;
    let bad = |m: String| Error::unsupported(file, format!("dataset {name}: {m}"));
    use hdf5::types::{FloatSize, IntSize, TypeDescriptor as TD};
    let td = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| bad(format!("unsupported element type ({e})")))?;
    let dtype = match td {
        TD::Unsigned(IntSize::U1) => SampleType::Uint8,
        TD::Unsigned(IntSize::U2) => SampleType::Uint16,
        TD::Integer(IntSize::U2) => SampleType::Int16,
        TD::Integer(IntSize::U4) => SampleType::Int32,
        TD::Float(FloatSize::U2) => SampleType::Float16,
        TD::Float(FloatSize::U4) => SampleType::Float32,
        TD::Float(FloatSize::U8) => SampleType::Float64,
        other => {
            return Err(bad(format!(
                "element type {other} is not supported: allowed are {}",
                SampleType::allowed()
            )))
        }
    };
    let shape = ds.shape();
    let layout = match (layout, shape.len()) {
        (Some(l), r) if l.len() == r => l.to_string(),
        (Some(l), r) => {
            return Err(bad(format!(
                "layout {l} is for rank {} but the dataset has rank {r}, shape {shape:?}",
                l.len()
            )))
        }
        (None, 2) => "hw".into(),
        (None, 3) => "chw".into(),
        (None, 4) => "nchw".into(),
        (None, _) => {
            return Err(bad(format!(
                "shape {shape:?} is not supported: allowed are ranks 2 (H, W), 3 (C, H, W; or \
                 N, H, W with FILE.h5:/DATASET:nhw, H, W, C with :hwc) and 4 (N, C, H, W; or \
                 N, H, W, C with :nhwc)"
            )))
        }
    };
    let dim = |a: char| layout.find(a).map_or(1, |i| shape[i]);
    let nchw = [dim('n'), dim('c'), dim('h'), dim('w')];
    if nchw.contains(&0) {
        return Err(Error::invalid_input(
            file,
            format!("dataset {name}: shape {shape:?} is empty: every size must be >= 1"),
        ));
    }
    Ok((
        nchw,
        dtype,
        Source {
            file: file.to_path_buf(),
            dataset: name,
            layout,
            shape,
        },
    ))
}

/// Read samples `start..start + k` as `[k, C, H, W]` f32.
pub fn read(src: &Source, dtype: SampleType, start: usize, k: usize) -> Result<Array4<f32>> {
    let h5err = |e: hdf5::Error| {
        Error::corrupt(
            &src.file,
            format!("dataset {}: cannot read: {e}", src.dataset),
        )
    };
    let f = hdf5::File::open(&src.file).map_err(h5err)?;
    let ds = f.dataset(&src.dataset).map_err(h5err)?;
    if ds.shape() != src.shape {
        return Err(Error::corrupt(
            &src.file,
            format!(
                "dataset {} changed while reading: now shape {:?}, was {:?}",
                src.dataset,
                ds.shape(),
                src.shape
            ),
        ));
    }
    // One hyperslab: samples start..start+k along the first axis when it is N, else everything
    // (then N = 1 and start = 0).
    let sel: Vec<hdf5::SliceOrIndex> = src
        .layout
        .chars()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 && a == 'n' {
                (start..start + k).into()
            } else {
                (..).into()
            }
        })
        .collect();
    let sel = hdf5::Selection::from(hdf5::Hyperslab::from(sel));
    let r = ds.as_reader();
    macro_rules! rd {
        ($t:ty, $f:expr) => {
            r.read_slice::<$t, _, IxDyn>(sel).map_err(h5err)?.mapv($f)
        };
    }
    let a: ArrayD<f32> = match dtype {
        SampleType::Uint8 => rd!(u8, |v| v as f32),
        SampleType::Uint16 => rd!(u16, |v| v as f32),
        SampleType::Int16 => rd!(i16, |v| v as f32),
        SampleType::Int32 => rd!(i32, |v| v as f32),
        SampleType::Float16 => rd!(half::f16, |v| v.to_f32()),
        SampleType::Float32 => rd!(f32, |v| v),
        SampleType::Float64 => rd!(f64, |v| v as f32),
    };
    // Insert the missing axes (length 1) and permute to N, C, H, W.
    let mut a = a;
    let mut letters: Vec<char> = src.layout.chars().collect();
    for ax in ['n', 'c'] {
        if !letters.contains(&ax) {
            a.insert_axis_inplace(ndarray::Axis(0));
            letters.insert(0, ax);
        }
    }
    let perm: Vec<usize> = "nchw"
        .chars()
        .map(|x| {
            letters
                .iter()
                .position(|&l| l == x)
                .expect("layout checked")
        })
        .collect();
    let a = a.permuted_axes(IxDyn(&perm));
    let shape = a.shape().to_vec();
    a.as_standard_layout()
        .into_owned()
        .into_dimensionality::<ndarray::Ix4>()
        .map_err(|e| {
            Error::corrupt(
                &src.file,
                format!("dataset {}: {e}: {shape:?}", src.dataset),
            )
        })
}
