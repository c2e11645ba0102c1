//! `dctchop._dctchop`: the Rust core of the Python package `dctchop` (see docs/python.md).
//!
//! Everything here is a thin layer over the `dctchop` library: arguments are checked and turned
//! into library types ([`options`]), long-running calls release the GIL, library errors become
//! the Python exception of their kind (`dctchop.errors`), and arrays cross without copies where
//! numpy allows (a C-contiguous float32 input is read in place; results are handed to numpy as
//! they are).

// Python functions take their options as keyword arguments: one Rust parameter each.
#![allow(clippy::too_many_arguments)]

mod options;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dctchop::container::{self, Payload, ShardData};
use dctchop::graph::Direction;
use dctchop::pixels::PixelsView;
use dctchop::quant::{Codes, CodesView};
use dctchop::{ErrorKind, Plan};
use ndarray::{ArrayViewD, Ix4};
use numpy::{
    IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use options::{engine_options, payload_for, spec_from_kwargs};

/// A library error as the Python exception of its kind (`dctchop.errors`).
pub(crate) fn err(e: dctchop::Error) -> PyErr {
    let name = match e.kind() {
        ErrorKind::Invalid => "SpecError",
        ErrorKind::File => "FileError",
        ErrorKind::Corrupt => "CorruptError",
        ErrorKind::Resource => "ResourceError",
        ErrorKind::Engine => "EngineError",
        _ => "DctchopError",
    };
    raise(name, e.to_string())
}

/// The exception `dctchop.errors.<name>(message)`.
pub(crate) fn raise(name: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let made = py
            .import("dctchop.errors")
            .and_then(|m| m.getattr(name))
            .and_then(|cls| cls.call1((message.clone(),)));
        match made {
            Ok(v) => PyErr::from_value(v),
            Err(_) => PyRuntimeError::new_err(format!("{name}: {message}")),
        }
    })
}

fn spec_error(message: String) -> PyErr {
    raise("SpecError", message)
}

/// JSON text as a Python object (dict, list, ...).
fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}

/// `x` as a float32 array: the array itself when it is one (no copy), else `numpy.asarray(x,
/// dtype=float32)`.
fn as_f32<'py>(x: &Bound<'py, PyAny>, what: &str) -> PyResult<PyReadonlyArrayDyn<'py, f32>> {
    if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
        return Ok(a.readonly());
    }
    let py = x.py();
    let conv = py
        .import("numpy")?
        .call_method1("asarray", (x, "float32"))
        .map_err(|e| spec_error(format!("{what}: not convertible to a float32 array: {e}")))?;
    Ok(conv
        .cast::<PyArrayDyn<f32>>()
        .map_err(|e| spec_error(format!("{what}: not a float32 array: {e}")))?
        .readonly())
}

fn check_ndim(shape: &[usize], ndim: usize, what: &str, layout: &str) -> PyResult<()> {
    if shape.len() != ndim {
        return Err(spec_error(format!(
            "{what}: expected a {ndim}-D array {layout}, got shape {shape:?}"
        )));
    }
    Ok(())
}

/// Samples given from Python: uint8, uint16 and int16 arrays read in place, anything else as
/// float32 ([`as_f32`]).
enum PyPixels<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    U8(PyReadonlyArrayDyn<'py, u8>),
    U16(PyReadonlyArrayDyn<'py, u16>),
    I16(PyReadonlyArrayDyn<'py, i16>),
}

impl<'py> PyPixels<'py> {
    fn extract(x: &Bound<'py, PyAny>, what: &str) -> PyResult<PyPixels<'py>> {
        if let Ok(a) = x.cast::<PyArrayDyn<u8>>() {
            return Ok(PyPixels::U8(a.readonly()));
        }
        if let Ok(a) = x.cast::<PyArrayDyn<u16>>() {
            return Ok(PyPixels::U16(a.readonly()));
        }
        if let Ok(a) = x.cast::<PyArrayDyn<i16>>() {
            return Ok(PyPixels::I16(a.readonly()));
        }
        as_f32(x, what).map(PyPixels::F32)
    }

    fn shape(&self) -> &[usize] {
        match self {
            PyPixels::F32(a) => a.shape(),
            PyPixels::U8(a) => a.shape(),
            PyPixels::U16(a) => a.shape(),
            PyPixels::I16(a) => a.shape(),
        }
    }

    /// The 4-D view (the shape checked by the caller).
    fn view(&self) -> PixelsView<'_> {
        fn four<T>(a: ArrayViewD<'_, T>) -> ndarray::ArrayView4<'_, T> {
            a.into_dimensionality::<Ix4>().expect("checked 4-D")
        }
        match self {
            PyPixels::F32(a) => PixelsView::F32(four(a.as_array())),
            PyPixels::U8(a) => PixelsView::U8(four(a.as_array())),
            PyPixels::U16(a) => PixelsView::U16(four(a.as_array())),
            PyPixels::I16(a) => PixelsView::I16(four(a.as_array())),
        }
    }
}

/// Codes given from Python: an int8 or int16 array, read in place.
enum PyCodes<'py> {
    I8(PyReadonlyArrayDyn<'py, i8>),
    I16(PyReadonlyArrayDyn<'py, i16>),
}

impl<'py> PyCodes<'py> {
    fn extract(x: &Bound<'py, PyAny>) -> PyResult<PyCodes<'py>> {
        if let Ok(a) = x.cast::<PyArrayDyn<i8>>() {
            return Ok(PyCodes::I8(a.readonly()));
        }
        if let Ok(a) = x.cast::<PyArrayDyn<i16>>() {
            return Ok(PyCodes::I16(a.readonly()));
        }
        let got = match x.cast::<PyUntypedArray>() {
            Ok(a) => format!("a {} array", a.dtype()),
            Err(_) => format!("a {}", x.get_type().name()?),
        };
        Err(spec_error(format!(
            "codes: expected an int8 or int16 numpy array, got {got}"
        )))
    }
    fn view(&self) -> CodesView<'_> {
        match self {
            PyCodes::I8(a) => CodesView::I8(a.as_array()),
            PyCodes::I16(a) => CodesView::I16(a.as_array()),
        }
    }
}

fn codes_to_py(py: Python<'_>, c: Codes) -> Bound<'_, PyAny> {
    match c {
        Codes::I8(a) => a.into_pyarray(py).into_any(),
        Codes::I16(a) => a.into_pyarray(py).into_any(),
    }
}

/// Compresses and decompresses numpy arrays with one spec's graphs, compiled once.
#[pyclass(frozen, module = "dctchop._dctchop")]
struct Codec {
    inner: Mutex<dctchop::Codec>,
    spec: dctchop::Spec,
}

impl Codec {
    fn lock(&self) -> std::sync::MutexGuard<'_, dctchop::Codec> {
        // A panic inside a previous call cannot leave the codec half-updated in a way that
        // matters: each call writes only its own output.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl Codec {
    #[new]
    #[pyo3(signature = (height, width, cf, *, engine = "auto", threads = None, device = "cpu", **spec))]
    fn new(
        py: Python<'_>,
        height: usize,
        width: usize,
        cf: usize,
        engine: &str,
        threads: Option<usize>,
        device: &str,
        spec: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Codec> {
        let spec = spec_from_kwargs(py, height, width, cf, spec)?;
        Codec::build(py, spec, engine, threads, device)
    }

    /// A codec for a spec given as a dict or JSON text (e.g. `Container.spec`); `batch`
    /// overrides the spec's batch.
    #[staticmethod]
    #[pyo3(signature = (spec, *, batch = None, engine = "auto", threads = None, device = "cpu"))]
    fn from_spec(
        py: Python<'_>,
        spec: &Bound<'_, PyAny>,
        batch: Option<usize>,
        engine: &str,
        threads: Option<usize>,
        device: &str,
    ) -> PyResult<Codec> {
        let mut spec = options::spec_from_any(py, spec)?;
        if let Some(b) = batch {
            spec = spec.with_batch(b);
        }
        Codec::build(py, spec, engine, threads, device)
    }

    /// The spec, as a dict.
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_value(&self.spec).expect("spec serializes"),
        )
    }

    /// Shape of one batch of input, `[batch, C, H, W]`.
    #[getter]
    fn input_shape(&self) -> Vec<usize> {
        self.spec.input_shape()
    }

    /// Shape of one batch of compressed data.
    #[getter]
    fn compressed_shape(&self) -> Vec<usize> {
        self.spec.compressed_shape()
    }

    /// Pixels per kept coefficient (padding counted).
    #[getter]
    fn ratio(&self) -> f64 {
        self.spec.compression_ratio()
    }

    /// The code type of a quantized spec (`"int8"`/`"int16"`), else None.
    #[getter]
    fn code_dtype(&self) -> Option<&'static str> {
        self.spec.quant.as_ref().map(|q| q.code.numpy_name())
    }

    /// Compress `x` `[N, C, H, W]` (any N >= 1) into float32 coefficients `[N, ...]`.
    fn compress<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let a = as_f32(x, "compress input")?;
        let v = a.as_array();
        check_ndim(v.shape(), 4, "compress input", "[N, C, H, W]")?;
        let v = v.into_dimensionality::<Ix4>().expect("checked 4-D");
        let y = py.detach(|| self.lock().compress(v)).map_err(err)?;
        Ok(y.into_pyarray(py).into_any())
    }

    /// Decompress float32 coefficients `[N, ...]` into `[N, C, H, W]` float32.
    fn decompress<'py>(&self, y: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = y.py();
        let a = as_f32(y, "decompress input")?;
        let v: ArrayViewD<'_, f32> = a.as_array();
        let x = py.detach(|| self.lock().decompress(v)).map_err(err)?;
        Ok(x.into_pyarray(py).into_any())
    }

    /// Compress `x` into integer codes (quantized specs): returns `(codes, clamped)`. uint8,
    /// uint16 and int16 arrays are read as they are (no float32 copy); anything else is
    /// converted to float32.
    fn compress_codes<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let py = x.py();
        let a = PyPixels::extract(x, "compress input")?;
        check_ndim(a.shape(), 4, "compress input", "[N, C, H, W]")?;
        let v = a.view();
        let (codes, clamped) = py.detach(|| self.lock().compress_codes(v)).map_err(err)?;
        PyTuple::new(
            py,
            [
                codes_to_py(py, codes),
                clamped.into_pyobject(py)?.into_any(),
            ],
        )
    }

    /// Decompress int8/int16 codes `[N, ...]` (quantized specs) into `[N, C, H, W]` float32.
    fn decompress_codes<'py>(&self, codes: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = codes.py();
        let c = PyCodes::extract(codes)?;
        let view = c.view();
        let x = py
            .detach(|| self.lock().decompress_codes(view))
            .map_err(err)?;
        Ok(x.into_pyarray(py).into_any())
    }

    fn __repr__(&self) -> String {
        format!(
            "dctchop.Codec({})",
            serde_json::to_string(&self.spec).expect("spec serializes")
        )
    }
}

impl Codec {
    fn build(
        py: Python<'_>,
        spec: dctchop::Spec,
        engine: &str,
        threads: Option<usize>,
        device: &str,
    ) -> PyResult<Codec> {
        let opts = engine_options(engine, threads, device)?;
        let codec = py
            .detach(|| dctchop::Codec::new(&spec, &opts))
            .map_err(err)?;
        Ok(Codec {
            inner: Mutex::new(codec),
            spec,
        })
    }
}

/// Write the compress/decompress graph pair and its JSON sidecar for a spec; returns the sidecar
/// (a dict) with the written paths under `"files"`.
#[pyfunction]
#[pyo3(signature = (height, width, cf, out_dir = PathBuf::from("dctchop-out"), *, opset = 13, force = false, **spec))]
fn export<'py>(
    py: Python<'py>,
    height: usize,
    width: usize,
    cf: usize,
    out_dir: PathBuf,
    opset: i64,
    force: bool,
    spec: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec_from_kwargs(py, height, width, cf, spec)?;
    let opts = dctchop::export::ExportOptions {
        out_dir,
        opset,
        force,
        target: None,
    };
    let done = py
        .detach(|| {
            let plan = Plan::new(&spec)?;
            dctchop::export::export(&plan, &opts)
        })
        .map_err(err)?;
    let mut rep = done.report.clone();
    rep["files"] = serde_json::json!({
        "compress": done.compress,
        "decompress": done.decompress,
        "sidecar": done.sidecar,
    });
    json_to_py(py, &rep)
}

/// Compress `.npy` files, images or an HDF5 dataset into the container `out`, as
/// `dctchop compress` does; returns its report (a dict).
#[pyfunction]
#[pyo3(signature = (inputs, out, **options))]
fn compress_files<'py>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    out: PathBuf,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let inputs: Vec<PathBuf> = if let Ok(p) = inputs.extract::<PathBuf>() {
        vec![p]
    } else {
        inputs
            .extract()
            .map_err(|_| spec_error("inputs: expected a path or a list of paths".to_string()))?
    };
    let opts = options::compress_options(options)?;
    let rep = py
        .detach(|| dctchop::pipeline::compress(&inputs, &out, &opts, &mut |_, _| {}))
        .map_err(err)?;
    json_to_py(py, &serde_json::to_value(&rep).expect("report serializes"))
}

/// Decompress a container into a `.npy` (float32, or the original's type with
/// `dtype="original"`), a PNG or a directory of PNGs, as `dctchop decompress` does; returns its
/// report (a dict).
#[pyfunction]
#[pyo3(signature = (container, out, *, batch = 16, engine = "auto", threads = None, device = "cpu", force = false, dtype = "float32"))]
#[allow(clippy::too_many_arguments)]
fn decompress_files<'py>(
    py: Python<'py>,
    container: PathBuf,
    out: PathBuf,
    batch: usize,
    engine: &str,
    threads: Option<usize>,
    device: &str,
    force: bool,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = dctchop::pipeline::DecompressOptions {
        engine: engine_options(engine, threads, device)?,
        batch,
        force,
        dtype: dtype
            .parse()
            .map_err(|e: String| spec_error(format!("invalid dtype = {dtype:?}: {e}")))?,
        ..Default::default()
    };
    let rep = py
        .detach(|| dctchop::pipeline::decompress_within(&container, &out, &opts, &mut |_, _| {}))
        .map_err(err)?;
    json_to_py(py, &serde_json::to_value(&rep).expect("report serializes"))
}

/// An opened container: every shard's header read and checked (no payload read).
#[pyclass(frozen, module = "dctchop._dctchop")]
struct Container {
    inner: container::Container,
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[pymethods]
impl Container {
    /// The stem `OUT` (shards are `OUT.NNNNN.safetensors`).
    #[getter]
    fn stem(&self) -> String {
        path_str(&self.inner.stem)
    }
    /// The shard paths, in order.
    #[getter]
    fn shards(&self) -> Vec<String> {
        self.inner.shards.iter().map(|p| path_str(p)).collect()
    }
    /// The decompress graph's path (`OUT.decompress.onnx`; it may be absent).
    #[getter]
    fn graph(&self) -> String {
        path_str(&container::graph_path(&self.inner.stem))
    }
    /// Samples in each shard.
    #[getter]
    fn shard_samples(&self) -> Vec<usize> {
        self.inner.headers.iter().map(|h| h.samples).collect()
    }
    /// The original `[N, C, H, W]`.
    #[getter]
    fn shape(&self) -> (usize, usize, usize, usize) {
        let [n, c, h, w] = self.inner.header.info.shape;
        (n, c, h, w)
    }
    /// The original element type's numpy name.
    #[getter]
    fn original_dtype(&self) -> &'static str {
        self.inner.header.info.dtype.numpy_name()
    }
    /// Smallest and largest original value.
    #[getter]
    fn value_range(&self) -> (f64, f64) {
        (self.inner.header.info.min, self.inner.header.info.max)
    }
    /// The spec (a dict).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_value(&self.inner.header.spec).expect("spec serializes"),
        )
    }
    /// numpy dtype of `read_shard`'s result: `float32` (float shards, f16 widened) or the code
    /// type (`int8`, `int16`).
    #[getter]
    fn stored_dtype(&self) -> &'static str {
        match self.inner.header.payload {
            Payload::Float(_) => "float32",
            Payload::Codes { code, .. } => code.numpy_name(),
        }
    }
    /// What the shards hold: `{"kind": "float"|"codes", "dtype": ..., "entropy": ...}`.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = match self.inner.header.payload {
            Payload::Float(d) => serde_json::json!({"kind": "float", "dtype": d.numpy_name()}),
            Payload::Codes { code, entropy } => serde_json::json!({
                "kind": "codes", "dtype": code.numpy_name(),
                "entropy": match entropy {
                    container::Entropy::None => "none".to_string(),
                    container::Entropy::Zstd { level } => format!("zstd:{level}"),
                },
            }),
        };
        json_to_py(py, &v)
    }
    /// `container_id` (None for containers written before it existed).
    #[getter]
    fn container_id(&self) -> Option<String> {
        self.inner.header.container_id.clone()
    }
    /// Shard `i`'s metadata strings.
    fn metadata<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        let h = self.shard_header(i)?;
        let d = PyDict::new(py);
        for (k, v) in &h.raw {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Shard `i`'s stored samples as a numpy array in the spec's compressed layout: float32
    /// coefficients, or int8/int16 codes (entropy stage already undone). Checksums verified.
    fn read_shard<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        self.shard_header(i)?;
        let d = py.detach(|| self.inner.read_shard(i)).map_err(err)?;
        Ok(match d {
            ShardData::Float(a) => a.into_pyarray(py).into_any(),
            ShardData::Codes(c) => codes_to_py(py, c),
        })
    }

    /// Read every payload and check every checksum, without decompressing.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.verify()).map_err(err)
    }

    /// A Rust loader: an iterator of decompressed float32 `[<=batch_size, C, H, W]` batches over
    /// all shards in order.
    #[pyo3(signature = (batch_size = 16, *, engine = "auto", threads = None, device = "cpu"))]
    fn loader(
        &self,
        py: Python<'_>,
        batch_size: usize,
        engine: &str,
        threads: Option<usize>,
        device: &str,
    ) -> PyResult<Loader> {
        let opts = engine_options(engine, threads, device)?;
        let l = py
            .detach(|| self.inner.loader(batch_size, &opts))
            .map_err(err)?;
        Ok(Loader {
            inner: Mutex::new(l),
        })
    }

    /// The decompress graph of this container's spec for `batch` samples per run, as ONNX bytes.
    /// With `elide_reshape`, the graph's trailing Reshape is removed (ONNX Runtime runs it as a
    /// full copy) and the shape to reshape the output to is returned too; else that is None.
    #[pyo3(signature = (batch, *, elide_reshape = true))]
    fn decompress_graph<'py>(
        &self,
        py: Python<'py>,
        batch: usize,
        elide_reshape: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, Option<Vec<usize>>)> {
        let spec = self.inner.header.spec.clone().with_batch(batch);
        let bytes = py
            .detach(|| {
                Plan::new(&spec)?
                    .model(Direction::Decompress, dctchop::DEFAULT_OPSET)?
                    .encode()
                    .map_err(dctchop::Error::from)
            })
            .map_err(err)?;
        if elide_reshape {
            if let Some(e) = dctchop::engine::rewrite::elide_output_reshape(&bytes) {
                return Ok((PyBytes::new(py, &e.bytes), Some(e.declared)));
            }
        }
        Ok((PyBytes::new(py, &bytes), None))
    }

    fn __repr__(&self) -> String {
        format!(
            "dctchop.Container({:?}: {} samples {:?} {}, {} shard(s))",
            self.stem(),
            self.inner.len(),
            self.inner.header.info.shape,
            self.inner.header.info.dtype.numpy_name(),
            self.inner.shards.len()
        )
    }
}

impl Container {
    fn shard_header(&self, i: usize) -> PyResult<&container::Header> {
        self.inner.headers.get(i).ok_or_else(|| {
            spec_error(format!(
                "shard index {i}: allowed is 0..{} ({})",
                self.inner.headers.len(),
                self.stem()
            ))
        })
    }
}

/// Open a container by its stem or any shard path.
#[pyfunction]
fn open(py: Python<'_>, path: PathBuf) -> PyResult<Container> {
    let inner = py.detach(|| container::open(&path)).map_err(err)?;
    Ok(Container { inner })
}

/// Iterator over a container's decompressed batches (from `Container.loader`).
#[pyclass(frozen, module = "dctchop._dctchop")]
struct Loader {
    inner: Mutex<container::Loader>,
}

#[pymethods]
impl Loader {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let next = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).next());
        match next {
            None => Ok(None),
            Some(r) => Ok(Some(r.map_err(err)?.into_pyarray(py).into_any())),
        }
    }
}

/// Writes one worker's share of a dataset as a part of a container (`dctchop.assemble` combines
/// the parts). See docs/container.md §9.
#[pyclass(frozen, module = "dctchop._dctchop")]
struct PartWriter {
    inner: Mutex<Option<container::PartWriter>>,
}

#[pymethods]
impl PartWriter {
    #[new]
    #[pyo3(signature = (stem, part, samples, height, width, cf, *, dtype = "float32", store = "f32", entropy = "zstd", shard_mb = 1024.0, engine = "auto", threads = None, force = false, **spec))]
    fn new(
        py: Python<'_>,
        stem: PathBuf,
        part: usize,
        samples: usize,
        height: usize,
        width: usize,
        cf: usize,
        dtype: &str,
        store: &str,
        entropy: &str,
        shard_mb: f64,
        engine: &str,
        threads: Option<usize>,
        force: bool,
        spec: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PartWriter> {
        let spec = spec_from_kwargs(py, height, width, cf, spec)?;
        let sample_type = dctchop::input::SampleType::from_numpy_name(dtype).ok_or_else(|| {
            spec_error(format!(
                "invalid dtype = {dtype}: allowed is {}",
                dctchop::input::SampleType::allowed()
            ))
        })?;
        let payload = payload_for(&spec, store, entropy)?;
        let shard_bytes = options::shard_bytes(shard_mb)?;
        let opts = engine_options(engine, threads, "cpu")?;
        let w = py
            .detach(|| {
                container::PartWriter::create(
                    &stem,
                    part,
                    &spec,
                    payload,
                    sample_type,
                    samples,
                    shard_bytes,
                    &opts,
                    force,
                )
            })
            .map_err(err)?;
        Ok(PartWriter {
            inner: Mutex::new(Some(w)),
        })
    }

    /// Compress and append `[k, C, H, W]` samples (converted to float32), in dataset order.
    fn push(&self, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = x.py();
        let a = as_f32(x, "part samples")?;
        let v = a.as_array();
        check_ndim(v.shape(), 4, "part samples", "[k, C, H, W]")?;
        let v = v.into_dimensionality::<Ix4>().expect("checked 4-D");
        py.detach(|| {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_mut() {
                Some(w) => w.push(v).map_err(err),
                None => Err(spec_error("part writer: already finished".into())),
            }
        })
    }

    /// Write the part's shards; returns the part's stem.
    fn finish(&self, py: Python<'_>) -> PyResult<String> {
        let w = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| spec_error("part writer: already finished".into()))?;
        let stem = py.detach(|| w.finish()).map_err(err)?;
        Ok(path_str(&stem))
    }
}

/// Combine parts (stems `OUT.part-NNNNN`, in dataset order; default: every part found beside
/// `stem`) into the container `stem`. Returns the opened container.
#[pyfunction]
#[pyo3(signature = (stem, parts = None, *, force = false))]
fn assemble(
    py: Python<'_>,
    stem: PathBuf,
    parts: Option<Vec<PathBuf>>,
    force: bool,
) -> PyResult<Container> {
    let inner = py
        .detach(|| {
            let parts = match parts {
                Some(p) => p,
                None => container::parts::find_parts(&stem)?,
            };
            container::assemble(&stem, &parts, force)
        })
        .map_err(err)?;
    Ok(Container { inner })
}

/// The stem of part `part` of container `stem` (`OUT.part-00003`).
#[pyfunction]
fn part_stem(stem: PathBuf, part: usize) -> String {
    path_str(&container::parts::part_stem(&stem, part))
}

/// Tune glibc's allocator for large repeated batches (see the Rust `keep_freed_memory`);
/// process-wide, call it once before starting threads. A no-op elsewhere.
#[pyfunction]
fn keep_freed_memory() {
    dctchop::keep_freed_memory();
}

#[pymodule]
fn _dctchop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Codec>()?;
    m.add_class::<Container>()?;
    m.add_class::<Loader>()?;
    m.add_class::<PartWriter>()?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add_function(wrap_pyfunction!(compress_files, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_files, m)?)?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(assemble, m)?)?;
    m.add_function(wrap_pyfunction!(part_stem, m)?)?;
    m.add_function(wrap_pyfunction!(keep_freed_memory, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "COMPRESS_OPTIONS",
        PyList::new(m.py(), options::COMPRESS_KEYS)?,
    )?;
    Ok(())
}
