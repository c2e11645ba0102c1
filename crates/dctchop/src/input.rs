//! Reading user data: `.npy` files and images (PNG, JPEG, TIFF), one file, several files or a
//! directory of images, as `[N, C, H, W]` f32 batches in the data's original units.
//!
//! - `.npy`: dtypes uint8, uint16, int16, int32, float16, float32, float64 (either byte order);
//!   shapes (H, W), (C, H, W) or (N, C, H, W); C or Fortran order. C-order files are streamed
//!   batch by batch; Fortran-order files are read whole (their samples are not contiguous).
//!   int32 values above 2^24 in magnitude lose precision in f32.
//! - Images: 8- or 16-bit gray, gray+alpha, RGB, RGBA (and 32-bit float TIFF) → `[1, C, H, W]`
//!   with values as stored (0..255 for 8-bit, 0..65535 for 16-bit). Several images (or a
//!   directory, where files with other extensions are ignored) form one dataset and must all
//!   have the same size, channels and bit depth.
//!
//! - HDF5 (cargo feature `hdf5`): `FILE.h5:/DATASET[:LAYOUT]` (or `.hdf5`; the dataset may be
//!   omitted when the file has exactly one). Same dtypes as `.npy`; shapes (H, W), (C, H, W),
//!   (N, C, H, W), or with LAYOUT `nhw`, `hwc`, `nhwc` (N, H, W), (H, W, C), (N, H, W, C).
//!   Read in hyperslabs of whole samples along N (one batch in memory at a time).
//!
//! [`Reader::next_pixels_with_range`] leaves `.npy` samples of uint8, and of uint16 and int16 in
//! the machine's byte order, in their own type ([`Pixels`]), for the native engine to read as
//! they are.
//!
//! Non-finite values (NaN, ±Inf) are not checked here; the compress pipeline rejects them.

/// The range (and NaN check) of a batch, as the readers return it.
pub use block_transform::Range;
use ndarray::{Array4, ShapeBuilder};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pixels::Pixels;

#[cfg(feature = "hdf5")]
mod h5;

/// Image file extensions recognized (lower case).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "tif", "tiff"];

const FORMATS: &str =
    ".npy, .png, .jpg/.jpeg, .tif/.tiff, a directory of images, or FILE.h5:/DATASET (HDF5)";

/// Axis layouts accepted after an HDF5 dataset name (`FILE.h5:/DATASET:LAYOUT`).
pub const HDF5_LAYOUTS: [&str; 6] = ["hw", "chw", "nhw", "hwc", "nchw", "nhwc"];

/// Element type of the original data (what the user's file holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleType {
    Uint8,
    Uint16,
    Int16,
    Int32,
    Float16,
    Float32,
    Float64,
}

/// Every sample type, in the order error messages list them.
pub const SAMPLE_TYPES: [SampleType; 7] = [
    SampleType::Uint8,
    SampleType::Uint16,
    SampleType::Int16,
    SampleType::Int32,
    SampleType::Float16,
    SampleType::Float32,
    SampleType::Float64,
];

impl SampleType {
    /// The numpy name (`uint8`, `float32`, ...).
    pub fn numpy_name(self) -> &'static str {
        match self {
            SampleType::Uint8 => "uint8",
            SampleType::Uint16 => "uint16",
            SampleType::Int16 => "int16",
            SampleType::Int32 => "int32",
            SampleType::Float16 => "float16",
            SampleType::Float32 => "float32",
            SampleType::Float64 => "float64",
        }
    }

    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            SampleType::Uint8 => 1,
            SampleType::Uint16 | SampleType::Int16 | SampleType::Float16 => 2,
            SampleType::Int32 | SampleType::Float32 => 4,
            SampleType::Float64 => 8,
        }
    }

    /// The type of a numpy name, if it is one of [`SAMPLE_TYPES`].
    pub fn from_numpy_name(name: &str) -> Option<SampleType> {
        SAMPLE_TYPES.into_iter().find(|t| t.numpy_name() == name)
    }

    /// All names, for error messages.
    pub fn allowed() -> String {
        let names: Vec<&str> = SAMPLE_TYPES.iter().map(|t| t.numpy_name()).collect();
        names.join(", ")
    }

    /// numpy's kind letter and size (`u`, 1 for uint8).
    fn kind_size(self) -> (char, usize) {
        let kind = match self {
            SampleType::Uint8 | SampleType::Uint16 => 'u',
            SampleType::Int16 | SampleType::Int32 => 'i',
            _ => 'f',
        };
        (kind, self.bytes())
    }
}

impl std::fmt::Display for SampleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.numpy_name())
    }
}

/// Element type of a `.npy` file's data: the sample type and its byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elem {
    ty: SampleType,
    big_endian: bool,
}

impl Elem {
    fn parse(descr: &str) -> Option<Elem> {
        let (order, rest) = descr.split_at(1.min(descr.len()));
        let big_endian = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return None,
        };
        let (kind, size) = rest.split_at(1.min(rest.len()));
        let kind = kind.chars().next()?;
        let size: usize = size.parse().ok()?;
        let ty = SAMPLE_TYPES
            .into_iter()
            .find(|t| t.kind_size() == (kind, size))?;
        Some(Elem { ty, big_endian })
    }

    /// Append the decoded values of `bytes` (a whole number of elements) to `out`.
    fn decode(&self, bytes: &[u8], out: &mut Vec<f32>) {
        let be = self.big_endian;
        macro_rules! conv {
            ($t:ty, $n:expr, $f:expr) => {
                out.extend(bytes.chunks_exact($n).map(|c| {
                    let a: [u8; $n] = c.try_into().expect("chunk size");
                    let v = if be {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    };
                    $f(v)
                }))
            };
        }
        match self.ty {
            SampleType::Uint8 => out.extend(bytes.iter().map(|&b| b as f32)),
            SampleType::Uint16 => conv!(u16, 2, |v| v as f32),
            SampleType::Int16 => conv!(i16, 2, |v| v as f32),
            SampleType::Int32 => conv!(i32, 4, |v| v as f32),
            SampleType::Float16 => conv!(u16, 2, |v| half::f16::from_bits(v).to_f32()),
            SampleType::Float32 => conv!(f32, 4, |v| v),
            SampleType::Float64 => conv!(f64, 8, |v| v as f32),
        }
    }
}

#[derive(Clone, Debug)]
enum Source {
    Npy {
        path: PathBuf,
        elem: Elem,
        data_start: u64,
        fortran: bool,
    },
    Images(Vec<PathBuf>),
    #[cfg(feature = "hdf5")]
    Hdf5(h5::Source),
}

/// An opened input: its shape, original dtype and where the data is. Nothing is decoded yet
/// (image headers and the `.npy` header are read and checked).
#[derive(Clone, Debug)]
pub struct Dataset {
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Element type of the original data.
    pub dtype: SampleType,
    source: Source,
}

impl Dataset {
    /// The original shape `[N, C, H, W]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.n, self.channels, self.height, self.width]
    }

    /// Bytes per element of the original dtype.
    pub fn elem_bytes(&self) -> usize {
        self.dtype.bytes()
    }

    /// The files the data comes from (one `.npy`, or the images in order).
    pub fn files(&self) -> Vec<PathBuf> {
        match &self.source {
            Source::Npy { path, .. } => vec![path.clone()],
            Source::Images(v) => v.clone(),
            #[cfg(feature = "hdf5")]
            Source::Hdf5(s) => vec![s.file.clone()],
        }
    }

    /// A short name for messages: the file, or "N images in DIR".
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Npy { path, .. } => path.display().to_string(),
            Source::Images(v) if v.len() == 1 => v[0].display().to_string(),
            Source::Images(v) => format!("{} images ({} ...)", v.len(), v[0].display()),
            #[cfg(feature = "hdf5")]
            Source::Hdf5(s) => format!("{}:{}", s.file.display(), s.dataset),
        }
    }

    /// The file holding sample `i` (for error messages).
    pub fn file_of(&self, i: usize) -> PathBuf {
        match &self.source {
            Source::Npy { path, .. } => path.clone(),
            Source::Images(v) => v[i.min(v.len() - 1)].clone(),
            #[cfg(feature = "hdf5")]
            Source::Hdf5(s) => s.file.clone(),
        }
    }

    /// Start reading from the first sample.
    pub fn reader(&self) -> Result<Reader<'_>> {
        let inner = match &self.source {
            Source::Npy {
                path,
                elem,
                data_start,
                fortran,
            } => {
                let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
                f.seek(SeekFrom::Start(*data_start))
                    .map_err(|e| Error::io(path, e))?;
                let mut r = BufReader::with_capacity(READ_BUFFER_BYTES, f);
                if *fortran {
                    let n = self.n * self.channels * self.height * self.width;
                    let mut all = Vec::new();
                    read_elems(&mut r, path, *elem, n, &mut all, &mut Vec::new(), None)?;
                    let a = Array4::from_shape_vec(
                        (self.n, self.channels, self.height, self.width).f(),
                        all,
                    )
                    .expect("sizes checked when the file was opened");
                    Inner::Memory(a.as_standard_layout().into_owned())
                } else {
                    Inner::Npy(r, *elem, path.clone())
                }
            }
            Source::Images(_) => Inner::Images,
            #[cfg(feature = "hdf5")]
            Source::Hdf5(_) => Inner::Hdf5,
        };
        Ok(Reader {
            ds: self,
            next: 0,
            inner,
            spare: Vec::new(),
            spare_ints: IntSpares::default(),
            raw: Vec::new(),
        })
    }
}

enum Inner {
    Npy(BufReader<File>, Elem, PathBuf),
    Memory(Array4<f32>),
    Images,
    #[cfg(feature = "hdf5")]
    Hdf5,
}

/// Read buffer of streamed files (`.npy` input, container shards): a system call per few MB.
/// Where system calls are expensive (sandboxed VMs) small reads dominate: `dd` of a cached
/// file ran at 0.4 GB/s with 196 KB reads, 2.2 GB/s with 1 MB and 3.0 GB/s with 8 MB.
pub(crate) const READ_BUFFER_BYTES: usize = 8 << 20;
/// Raw bytes of non-f32 data converted and range-scanned at a time by
/// [`Reader::next_batch_with_range`] (1 MiB of f32 for uint8: in the L2 cache for the scan).
const DECODE_CHUNK_BYTES: usize = 256 << 10;
/// Batches [`Reader::recycle`] keeps for reuse.
const SPARE_BATCHES: usize = 4;

/// Reads a [`Dataset`] in batches.
pub struct Reader<'a> {
    ds: &'a Dataset,
    next: usize,
    inner: Inner,
    /// A batch handed back by [`Reader::recycle`], refilled by the next `.npy` read: a fresh
    /// multi-MB allocation per batch costs page faults and zeroing every time.
    spare: Vec<Vec<f32>>,
    /// The same for batches of integer samples ([`Reader::recycle_pixels`]).
    spare_ints: IntSpares,
    /// The raw bytes of a `.npy` read, reused.
    raw: Vec<u8>,
}

impl Reader<'_> {
    /// Index of the next sample to be read.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Hand a batch back once done with it: the next batch read from a `.npy` reuses its memory.
    /// A few are kept: a pipeline has one batch being read, one queued and one in use.
    pub fn recycle(&mut self, batch: Array4<f32>) {
        let (v, offset) = batch.into_raw_vec_and_offset();
        if offset.is_none_or(|o| o == 0) && self.spare.len() < SPARE_BATCHES {
            self.spare.push(v);
        }
    }

    /// [`Reader::recycle`] for any [`Pixels`].
    pub fn recycle_pixels(&mut self, batch: Pixels) {
        fn keep<T>(spare: &mut Vec<Vec<T>>, a: Array4<T>) {
            let (v, offset) = a.into_raw_vec_and_offset();
            if offset.is_none_or(|o| o == 0) && spare.len() < SPARE_BATCHES {
                spare.push(v);
            }
        }
        match batch {
            Pixels::F32(a) => self.recycle(a),
            Pixels::U8(a) => keep(&mut self.spare_ints.u8, a),
            Pixels::U16(a) => keep(&mut self.spare_ints.u16, a),
            Pixels::I16(a) => keep(&mut self.spare_ints.i16, a),
        }
    }

    /// [`Reader::next_batch_with_range`], but samples of a `.npy` of uint8, or of uint16 or
    /// int16 in the machine's byte order, stay in their type (read straight from the file, no
    /// conversion); anything else comes as f32.
    pub fn next_pixels_with_range(&mut self, max: usize) -> Result<Option<(Pixels, Range)>> {
        let ds = self.ds;
        let k = max.min(ds.n - self.next);
        let n = k * ds.channels * ds.height * ds.width;
        let shape = (k, ds.channels, ds.height, ds.width);
        if let Inner::Npy(r, elem, path) = &mut self.inner {
            let native = elem.big_endian == cfg!(target_endian = "big");
            let batch = match elem.ty {
                _ if k == 0 => return Ok(None),
                SampleType::Uint8 => Some(read_ints(r, path, n, &mut self.spare_ints.u8)?)
                    .map(|(v, range)| (Pixels::U8(shaped(shape, v)), range)),
                SampleType::Uint16 if native => {
                    Some(read_ints(r, path, n, &mut self.spare_ints.u16)?)
                        .map(|(v, range)| (Pixels::U16(shaped(shape, v)), range))
                }
                SampleType::Int16 if native => {
                    Some(read_ints(r, path, n, &mut self.spare_ints.i16)?)
                        .map(|(v, range)| (Pixels::I16(shaped(shape, v)), range))
                }
                _ => None,
            };
            if batch.is_some() {
                self.next += k;
                return Ok(batch);
            }
        }
        Ok(self
            .next_batch_with_range(max)?
            .map(|(x, range)| (Pixels::F32(x), range)))
    }

    /// The next up to `max` samples as `[k, C, H, W]`, or None at the end.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Array4<f32>>> {
        self.next_batch_inner(max, None)
    }

    /// [`Reader::next_batch`] with the batch's [`Range`] (and NaN check), scanned as the data
    /// is converted (for `.npy` input: no pass of its own over the batch).
    pub fn next_batch_with_range(&mut self, max: usize) -> Result<Option<(Array4<f32>, Range)>> {
        let mut range = Range::EMPTY;
        let batch = self.next_batch_inner(max, Some(&mut range))?;
        Ok(batch.map(|x| (x, range)))
    }

    fn next_batch_inner(
        &mut self,
        max: usize,
        range: Option<&mut Range>,
    ) -> Result<Option<Array4<f32>>> {
        let ds = self.ds;
        let k = max.min(ds.n - self.next);
        if k == 0 {
            return Ok(None);
        }
        let (c, h, w) = (ds.channels, ds.height, ds.width);
        // `.npy` reads scan the range as they convert; the other sources after the batch.
        let mut range = range;
        let batch = match &mut self.inner {
            Inner::Npy(r, elem, path) => {
                let mut data = self.spare.pop().unwrap_or_default();
                let scan = range.take();
                read_elems(
                    r,
                    path,
                    *elem,
                    k * c * h * w,
                    &mut data,
                    &mut self.raw,
                    scan,
                )?;
                Array4::from_shape_vec((k, c, h, w), data).expect("sizes checked")
            }
            Inner::Memory(a) => a
                .slice(ndarray::s![self.next..self.next + k, .., .., ..])
                .to_owned(),
            Inner::Images => {
                let Source::Images(files) = &ds.source else {
                    unreachable!()
                };
                let mut out = Array4::<f32>::zeros((k, c, h, w));
                for (j, path) in files[self.next..self.next + k].iter().enumerate() {
                    let img = load_image(path)?;
                    if img.shape() != [1, c, h, w] {
                        return Err(Error::corrupt(
                            path,
                            format!(
                                "changed while reading: now {:?}, expected {:?}",
                                img.shape(),
                                [1, c, h, w]
                            ),
                        ));
                    }
                    out.slice_mut(ndarray::s![j..j + 1, .., .., ..])
                        .assign(&img);
                }
                out
            }
            #[cfg(feature = "hdf5")]
            Inner::Hdf5 => {
                let Source::Hdf5(src) = &ds.source else {
                    unreachable!()
                };
                h5::read(src, ds.dtype, self.next, k)?
            }
        };
        if let Some(range) = range {
            let x = batch.as_standard_layout();
            *range = block_transform::range(x.as_slice().expect("standard layout"));
        }
        self.next += k;
        Ok(Some(batch))
    }
}

/// Batches of integer samples handed back for reuse, per type.
#[derive(Default)]
struct IntSpares {
    u8: Vec<Vec<u8>>,
    u16: Vec<Vec<u16>>,
    i16: Vec<Vec<i16>>,
}

fn shaped<T>(shape: (usize, usize, usize, usize), v: Vec<T>) -> Array4<T> {
    Array4::from_shape_vec(shape, v).expect("sizes checked")
}

/// Samples of an integer type read, and range-scanned, at a time by
/// [`Reader::next_pixels_with_range`]: still in the L2 cache for the scan.
const INT_CHUNK_BYTES: usize = 1 << 20;

/// `n` samples of `T` (in the machine's byte order) straight from the file into a spare buffer
/// (or a new one), with their range.
fn read_ints<T: bytemuck::Pod + block_transform::Pixel>(
    r: &mut BufReader<File>,
    path: &Path,
    n: usize,
    spare: &mut Vec<Vec<T>>,
) -> Result<(Vec<T>, Range)> {
    let mut out = spare.pop().unwrap_or_default();
    resize_for_overwrite(&mut out, n, T::zeroed());
    let mut range = Range::EMPTY;
    let chunk = (INT_CHUNK_BYTES / std::mem::size_of::<T>()).max(1);
    for part in out.chunks_mut(chunk) {
        read_exact_from(r, path, bytemuck::cast_slice_mut(part))?;
        range = range.merge(block_transform::range(part));
    }
    Ok((out, range))
}

/// Fill `bytes` from the file: straight from it while the BufReader holds nothing (it never
/// does on the whole-buffer paths, where nothing else reads through it), else through it.
fn read_exact_from(r: &mut BufReader<File>, path: &Path, bytes: &mut [u8]) -> Result<()> {
    let read = if r.buffer().is_empty() {
        r.get_mut().read_exact(bytes)
    } else {
        r.read_exact(bytes)
    };
    read.map_err(|e| {
        Error::corrupt(
            path,
            format!("data ends early (file truncated or changed while reading): {e}"),
        )
    })
}

/// `out` resized to `n` elements, all about to be overwritten: what a recycled buffer holds is
/// kept, only growth is zeroed.
fn resize_for_overwrite<T: Copy>(out: &mut Vec<T>, n: usize, zero: T) {
    if out.len() >= n {
        out.truncate(n);
    } else {
        out.resize(n, zero);
    }
}

/// Read `n` elements into `out` (cleared first; its capacity is reused), through `buf`.
fn read_elems(
    r: &mut BufReader<File>,
    path: &Path,
    elem: Elem,
    n: usize,
    out: &mut Vec<f32>,
    buf: &mut Vec<u8>,
    range: Option<&mut Range>,
) -> Result<()> {
    if elem.ty == SampleType::Float32 && elem.big_endian == cfg!(target_endian = "big") {
        // Native float32: straight from the file into the f32 buffer, one copy instead of
        // three (BufReader's buffer, `buf`, the decoded values).
        resize_for_overwrite(out, n, 0.0);
        read_exact_from(r, path, bytemuck::cast_slice_mut(&mut out[..]))?;
        if let Some(range) = range {
            *range = range.merge(block_transform::range(out));
        }
        return Ok(());
    }
    out.clear();
    out.reserve(n);
    let size = elem.ty.bytes();
    // Whole read buffers straight from the file, decoded from there: no copy through the
    // BufReader.
    // With a range to scan, chunks whose f32 values are still in the L2 cache when scanned.
    let chunk = if range.is_some() {
        DECODE_CHUNK_BYTES
    } else {
        READ_BUFFER_BYTES
    };
    buf.resize(((chunk / size) * size).min(n * size), 0);
    let mut seen = Range::EMPTY;
    let mut left = n * size;
    while left > 0 {
        let take = left.min(buf.len());
        read_exact_from(r, path, &mut buf[..take])?;
        let from = out.len();
        elem.decode(&buf[..take], out);
        if range.is_some() {
            seen = seen.merge(block_transform::range(&out[from..]));
        }
        left -= take;
    }
    if let Some(range) = range {
        *range = range.merge(seen);
    }
    Ok(())
}

/// Open inputs: exactly one `.npy`, or any number of image files and directories of images.
pub fn open(inputs: &[PathBuf]) -> Result<Dataset> {
    if inputs.is_empty() {
        return Err(Error::invalid_option(
            "inputs",
            "(none)",
            format!("one or more of {FORMATS}"),
        ));
    }
    if let Some((file, dataset, layout)) = inputs.iter().find_map(|p| split_hdf5_spec(p)) {
        if inputs.len() != 1 {
            return Err(Error::invalid_input(
                file,
                "pass exactly one HDF5 dataset, alone (several inputs with HDF5 are not supported)",
            ));
        }
        return open_hdf5(&file, dataset.as_deref(), layout.as_deref());
    }
    let mut npys = Vec::new();
    let mut images = Vec::new();
    for p in inputs {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if !meta.is_dir() && !meta.is_file() {
            // A FIFO or device would block or never end.
            return Err(Error::unsupported(
                p,
                "is not a regular file (a FIFO, socket or device); pass a file",
            ));
        }
        if meta.is_dir() {
            let found = list_images(p)?;
            if found.is_empty() {
                return Err(Error::invalid_input(
                    p,
                    format!(
                        "directory contains no images (extensions {})",
                        IMAGE_EXTENSIONS.join(", ")
                    ),
                ));
            }
            images.extend(found);
        } else {
            match extension(p).as_deref() {
                Some("npy") => npys.push(p.clone()),
                Some(e) if IMAGE_EXTENSIONS.contains(&e) => images.push(p.clone()),
                _ => {
                    return Err(Error::unsupported(
                        p,
                        format!("unknown format: the inputs allowed are {FORMATS}"),
                    ))
                }
            }
        }
    }
    match (npys.len(), images.len()) {
        (1, 0) => open_npy(&npys[0]),
        (0, _) => open_images(images),
        _ => Err(Error::invalid_input(
            &npys[0],
            "pass exactly one .npy file, alone (several .npy files, or .npy mixed with images, \
             are not supported)",
        )),
    }
}

/// `FILE.h5[:DATASET[:LAYOUT]]` (or `.hdf5`, any case) → (file, dataset, layout); None when `p`
/// does not name an HDF5 file. The layout is taken only when it is one of [`HDF5_LAYOUTS`].
pub fn split_hdf5_spec(p: &Path) -> Option<(PathBuf, Option<String>, Option<String>)> {
    let s = p.to_str()?;
    let is_h5 = |f: &str| {
        let l = f.to_ascii_lowercase();
        l.ends_with(".h5") || l.ends_with(".hdf5")
    };
    let (file, rest) = if is_h5(s) {
        (s, "")
    } else {
        let i = s
            .match_indices(':')
            .map(|(i, _)| i)
            .find(|&i| is_h5(&s[..i]))?;
        (&s[..i], &s[i + 1..])
    };
    let (dataset, layout) = match rest.rsplit_once(':') {
        Some((d, l)) if HDF5_LAYOUTS.contains(&l.to_ascii_lowercase().as_str()) => {
            (d, Some(l.to_ascii_lowercase()))
        }
        _ => (rest, None),
    };
    let dataset = (!dataset.is_empty()).then(|| dataset.to_string());
    Some((PathBuf::from(file), dataset, layout))
}

#[cfg(feature = "hdf5")]
fn open_hdf5(file: &Path, dataset: Option<&str>, layout: Option<&str>) -> Result<Dataset> {
    let ([n, c, h, w], dtype, src) = h5::open(file, dataset, layout)?;
    Ok(Dataset {
        n,
        channels: c,
        height: h,
        width: w,
        dtype,
        source: Source::Hdf5(src),
    })
}

#[cfg(not(feature = "hdf5"))]
fn open_hdf5(file: &Path, _dataset: Option<&str>, _layout: Option<&str>) -> Result<Dataset> {
    Err(Error::unsupported(
        file,
        "HDF5 input needs dctchop built with `--features hdf5` (apt-get install libhdf5-dev; \
         cargo install --path . --features hdf5)",
    ))
}

fn extension(p: &Path) -> Option<String> {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_image = extension(&p).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()));
        if is_image && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn open_npy(path: &Path) -> Result<Dataset> {
    let unsupported = |m: String| Error::unsupported(path, m);
    let corrupt = |m: String| Error::corrupt(path, m);
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut prefix = Vec::new();
    (&mut f)
        .take(12 + crate::npy::MAX_HEADER_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| Error::io(path, e))?;
    crate::npy::check_header(&prefix).map_err(unsupported)?;
    f.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::new(f);
    let npy = npyz::NpyFile::new(&mut r)
        .map_err(|e| unsupported(format!("not a valid .npy file: {e}")))?;
    let descr = npy.dtype().descr().trim_matches('\'').to_string();
    let elem = Elem::parse(&descr).ok_or_else(|| {
        unsupported(format!(
            "dtype {descr} is not supported: allowed are {}",
            SampleType::allowed()
        ))
    })?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == npyz::Order::Fortran;
    let [n, c, h, w] = match shape[..] {
        [h, w] => [1, 1, h, w],
        [c, h, w] => [1, c, h, w],
        [n, c, h, w] => [n, c, h, w],
        _ => {
            return Err(unsupported(format!(
                "shape {shape:?} is not supported: allowed are (H, W), (C, H, W), (N, C, H, W)"
            )))
        }
    };
    match crate::budget::bytes_of(&[n, c, h, w], elem.ty.bytes()) {
        None => {
            return Err(corrupt(format!(
                "shape {shape:?}: its size in bytes overflows (a corrupt or crafted header)"
            )))
        }
        Some(0) => {
            return Err(Error::invalid_input(
                path,
                format!("shape {shape:?} is empty: every size must be >= 1"),
            ))
        }
        Some(_) => {}
    }
    let reader = npy.into_inner();
    let data_start = reader.stream_position().map_err(|e| Error::io(path, e))?;
    let need = [n, c, h, w, elem.ty.bytes()]
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64));
    match need {
        Some(need) if data_start + need <= file_len => {}
        _ => {
            return Err(corrupt(format!(
                "truncated: the header says shape {shape:?} of {descr} ({} bytes of data), but \
                 the file has {} bytes after its header",
                need.map_or("too many".to_string(), |b| b.to_string()),
                file_len - data_start
            )))
        }
    }
    Ok(Dataset {
        n,
        channels: c,
        height: h,
        width: w,
        dtype: elem.ty,
        source: Source::Npy {
            path: path.to_path_buf(),
            elem,
            data_start,
            fortran,
        },
    })
}

/// (channels, height, width, dtype) from an image's header.
fn image_header(path: &Path) -> Result<(usize, usize, usize, SampleType)> {
    use image::{ColorType, ImageDecoder};
    let bad =
        |e: image::ImageError| Error::unsupported(path, format!("cannot read as an image: {e}"));
    let dec = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .into_decoder()
        .map_err(bad)?;
    let (w, h) = dec.dimensions();
    let (c, dtype) = match dec.color_type() {
        ColorType::L8 => (1, SampleType::Uint8),
        ColorType::La8 => (2, SampleType::Uint8),
        ColorType::Rgb8 => (3, SampleType::Uint8),
        ColorType::Rgba8 => (4, SampleType::Uint8),
        ColorType::L16 => (1, SampleType::Uint16),
        ColorType::La16 => (2, SampleType::Uint16),
        ColorType::Rgb16 => (3, SampleType::Uint16),
        ColorType::Rgba16 => (4, SampleType::Uint16),
        ColorType::Rgb32F => (3, SampleType::Float32),
        ColorType::Rgba32F => (4, SampleType::Float32),
        other => {
            return Err(Error::unsupported(
                path,
                format!(
                    "pixel type {other:?} is not supported: allowed are 8/16-bit gray, gray+alpha, \
                     RGB, RGBA and float RGB(A)"
                ),
            ))
        }
    };
    Ok((c, h as usize, w as usize, dtype))
}

fn open_images(files: Vec<PathBuf>) -> Result<Dataset> {
    let first = image_header(&files[0])?;
    for f in &files[1..] {
        let h = image_header(f)?;
        if h != first {
            let d = |(c, hh, w, t): (usize, usize, usize, SampleType)| {
                format!("{w}x{hh} {c}-channel {t}")
            };
            return Err(Error::invalid_input(
                f,
                format!(
                    "is {} but {} is {}: all images of one dataset must have the same size, \
                     channels and bit depth",
                    d(h),
                    files[0].display(),
                    d(first)
                ),
            ));
        }
    }
    let (c, h, w, dtype) = first;
    Ok(Dataset {
        n: files.len(),
        channels: c,
        height: h,
        width: w,
        dtype,
        source: Source::Images(files),
    })
}

/// Decode a JPEG strictly: a truncated or corrupt entropy-coded segment is an error (the image
/// crate's decoder fills what it cannot decode with grey and succeeds). The output colour space
/// is the image crate's (gray, gray+alpha, RGB, RGBA as stored; anything else as RGB), so the
/// channels agree with [`image_header`].
pub fn decode_jpeg_strict(path: &Path, bytes: &[u8]) -> Result<Array4<f32>> {
    use zune_core::colorspace::ColorSpace as Z;
    let corrupt = |e: zune_jpeg::errors::DecodeErrors| {
        Error::corrupt(
            path,
            format!("cannot decode image: truncated or corrupt JPEG: {e}"),
        )
    };
    let opts = zune_core::options::DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut dec =
        zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), opts);
    dec.decode_headers().map_err(corrupt)?;
    let out = match dec.input_colorspace() {
        Some(c @ (Z::RGB | Z::RGBA | Z::Luma | Z::LumaA)) => c,
        _ => Z::RGB,
    };
    dec.set_options(dec.options().jpeg_set_out_colorspace(out));
    let (w, h) = dec
        .dimensions()
        .ok_or_else(|| Error::corrupt(path, "cannot decode image: JPEG without dimensions"))?;
    let c = out.num_components();
    // The image crate's default allocation limit, which PNG and TIFF decoding observe too.
    const MAX_DECODE_BYTES: u64 = 512 << 20;
    let bytes_needed = crate::budget::bytes_of(&[h, w, c], 1);
    if bytes_needed.is_none_or(|b| b > MAX_DECODE_BYTES) {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            message: format!(
                "cannot decode image: a {w}x{h} JPEG of {c} channels is over the decoder's \
                 {} MiB limit",
                MAX_DECODE_BYTES >> 20
            ),
        });
    }
    let pixels = dec.decode().map_err(corrupt)?;
    if pixels.len() != w * h * c {
        return Err(Error::corrupt(
            path,
            format!(
                "cannot decode image: the JPEG decoded to {} bytes, {w}x{h}x{c} expected",
                pixels.len()
            ),
        ));
    }
    let hwc = Array4::from_shape_vec((1, h, w, c), pixels.into_iter().map(f32::from).collect())
        .expect("size checked");
    Ok(hwc
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .into_owned())
}

/// Decode one image as `[1, C, H, W]` in its stored units.
pub fn load_image(path: &Path) -> Result<Array4<f32>> {
    use image::DynamicImage as D;
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        return decode_jpeg_strict(path, &bytes);
    }
    let img = reader
        .decode()
        .map_err(|e| Error::corrupt(path, format!("cannot decode image: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (c, data): (usize, Vec<f32>) = match &img {
        D::ImageLuma8(b) => (1, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageLumaA8(b) => (2, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageRgb8(b) => (3, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageRgba8(b) => (4, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageLuma16(b) => (1, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageLumaA16(b) => (2, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageRgb16(b) => (3, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageRgba16(b) => (4, b.as_raw().iter().map(|&v| v as f32).collect()),
        D::ImageRgb32F(b) => (3, b.as_raw().clone()),
        D::ImageRgba32F(b) => (4, b.as_raw().clone()),
        other => {
            return Err(Error::unsupported(
                path,
                format!("pixel type {:?} is not supported", other.color()),
            ))
        }
    };
    // Interleaved HWC → CHW.
    let hwc = Array4::from_shape_vec((1, h, w, c), data).expect("image buffer size");
    Ok(hwc
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .into_owned())
}
