//! The ONNX Runtime engine (cargo feature `ort`, on by default).
//!
//! The `ort` crate is built with `load-dynamic`: nothing is downloaded or linked at build time and
//! the ONNX Runtime shared library is opened the first time this engine is used. Lookup order
//! (see [`find_library`]):
//! 1. `ORT_DYLIB_PATH` when set (an error when that file does not exist);
//! 2. `libonnxruntime.so.1.*` in the `onnxruntime/capi/` folder of a Python venv: `DCTCHOP_VENV`,
//!    then `.venv` in the current directory, then in the directory of the running executable and
//!    each of its ancestors (so `target/release/dctchop` finds the repository's `.venv`);
//! 3. the `onnxruntime` package of `python3` on `PATH`.
//!
//! The library must be ONNX Runtime 1.31.x (what `ort` 2.0.0-rc.15 is written against). One
//! process loads one library and creates one ONNX Runtime environment, kept for its lifetime;
//! each [`OrtRunner`] compiles its session once and reuses it for every run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};
use ort::environment::Environment;
use ort::ep::{ExecutionProvider, CUDA};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{PrimitiveTensorElementType, Tensor, TensorElementType, TensorRef, TensorRefMut};

use super::{
    check_code, check_shape, run_then_write, write_output, CodesView, Device, EngineOptions, Runner,
};
use crate::error::{Error, Result};
use crate::quant::CodeType;
use crate::spec::Dtype;

/// The ONNX Runtime minor version this build is written against (`ort` 2.0.0-rc.15).
pub const REQUIRED_MINOR: u32 = 31;

/// The one command that makes an ONNX Runtime library available.
pub const FIX: &str = "python/setup_venv.sh && export ORT_DYLIB_PATH=$(python/ort_dylib_path.sh)";

fn err(e: impl std::fmt::Display) -> Error {
    Error::Engine {
        engine: "ort",
        message: e.to_string(),
    }
}

/// The ONNX Runtime library this process uses.
#[derive(Clone, Debug)]
pub struct Library {
    pub path: PathBuf,
    /// e.g. `1.31.1`
    pub version: String,
}

struct Loaded {
    library: Library,
    env: Environment,
}

static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

/// Find, check and load the ONNX Runtime library (once per process; later calls return the same
/// library, or the same error).
pub fn library() -> Result<Library> {
    loaded().map(|l| l.library.clone())
}

fn loaded() -> Result<&'static Loaded> {
    LOADED.get_or_init(load).as_ref().map_err(err)
}

fn load() -> std::result::Result<Loaded, String> {
    let path = find_library()?;
    let version = library_version(&path)?;
    let minor_ok = version
        .strip_prefix("1.")
        .and_then(|r| r.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        == Some(REQUIRED_MINOR);
    if !minor_ok {
        return Err(format!(
            "{}: ONNX Runtime {version}, but this build of dctchop needs 1.{REQUIRED_MINOR}.x \
             (ort crate {}); point ORT_DYLIB_PATH at a 1.{REQUIRED_MINOR} library: {FIX}",
            path.display(),
            ORT_CRATE_VERSION
        ));
    }
    let env = ort::init_from(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .with_name("dctchop")
        .with_telemetry(false)
        // ONNX Runtime's own log lines (coloured, on stderr) would follow every failure we
        // already report as one line: drop them; failures still come back as errors.
        .with_logger(std::sync::Arc::new(|_, _, _, _, _| {}))
        .build()
        .map_err(|e| format!("{}: creating the environment: {e}", path.display()))?;
    Ok(Loaded {
        library: Library { path, version },
        env,
    })
}

const ORT_CRATE_VERSION: &str = "2.0.0-rc.15";

/// Read the version string of an ONNX Runtime shared library (`OrtGetApiBase()->GetVersionString()`)
/// without handing it to `ort`, so a wrong version is reported before anything is initialized.
fn library_version(path: &Path) -> std::result::Result<String, String> {
    // SAFETY: loading a shared library runs its initializers; this is the library the user (or
    // the lookup) chose to run graphs with, and `ort` loads the same file right after.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
        format!(
            "{}: cannot load it as a shared library: {e}",
            path.display()
        )
    })?;
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release; the returned
    // pointer is to a static struct and `GetVersionString` returns a static C string.
    unsafe {
        let get: libloading::Symbol<GetApiBase> = lib.get(b"OrtGetApiBase").map_err(|_| {
            format!(
                "{}: not an ONNX Runtime library (no OrtGetApiBase symbol)",
                path.display()
            )
        })?;
        let base = get();
        if base.is_null() {
            return Err(format!("{}: OrtGetApiBase returned null", path.display()));
        }
        let s = ((*base).GetVersionString)();
        if s.is_null() {
            return Err(format!("{}: no version string", path.display()));
        }
        Ok(std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

/// Where to find the ONNX Runtime shared library, in the order documented in the module docs.
/// The error lists every place looked at and the command that fixes it.
pub fn find_library() -> std::result::Result<PathBuf, String> {
    let mut looked: Vec<String> = Vec::new();

    // 1. ORT_DYLIB_PATH
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            let abs = if p.is_absolute() {
                p.clone()
            } else {
                std::env::current_dir()
                    .map(|d| d.join(&p))
                    .unwrap_or(p.clone())
            };
            if !abs.is_file() {
                let what = if abs.exists() {
                    "not a file"
                } else {
                    "no such file"
                };
                return Err(format!(
                    "ORT_DYLIB_PATH={}: {what}; unset it to search the usual places, or fix it \
                     with: {FIX}",
                    p.display()
                ));
            }
            return Ok(abs);
        }
        _ => looked.push("ORT_DYLIB_PATH: not set".into()),
    }

    // 2. venvs
    let mut venvs: Vec<PathBuf> = Vec::new();
    match std::env::var_os("DCTCHOP_VENV") {
        Some(v) if !v.is_empty() => venvs.push(PathBuf::from(v)),
        _ => looked.push("DCTCHOP_VENV: not set".into()),
    }
    if let Ok(cwd) = std::env::current_dir() {
        venvs.push(cwd.join(".venv"));
    }
    if let Ok(exe) = std::env::current_exe() {
        let exe = exe.canonicalize().unwrap_or(exe);
        for dir in exe.ancestors().skip(1) {
            venvs.push(dir.join(".venv"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for venv in venvs {
        if !seen.insert(venv.clone()) {
            continue;
        }
        if !venv.is_dir() {
            looked.push(format!("{}: no such venv", venv.display()));
            continue;
        }
        let capis = venv_capi_dirs(&venv);
        for capi in &capis {
            if let Some(lib) = newest_lib(capi) {
                return Ok(lib);
            }
        }
        looked.push(format!(
            "{}: no lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.*",
            venv.display()
        ));
    }

    // 3. python3 on PATH
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            looked.push("python3: not on PATH".into())
        }
        Err(e) => looked.push(format!("python3 on PATH: cannot run it ({e})")),
        Ok(o) if !o.status.success() => {
            looked.push("python3 on PATH: has no onnxruntime package".into())
        }
        Ok(o) => {
            let dir = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("capi");
            if let Some(lib) = newest_lib(&dir) {
                return Ok(lib);
            }
            looked.push(format!(
                "python3 on PATH: onnxruntime found, but no libonnxruntime.so.1.* in {}",
                dir.display()
            ));
        }
    }

    Err(format!(
        "cannot find the ONNX Runtime 1.{REQUIRED_MINOR} shared library; looked at:\n  - {}\n\
         fix: {FIX}",
        looked.join("\n  - ")
    ))
}

/// `<venv>/lib/python3*/site-packages/onnxruntime/capi` folders that exist.
fn venv_capi_dirs(venv: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages/onnxruntime/capi"))
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The `libonnxruntime.so.1.*` (or `libonnxruntime.1.*.dylib`) in `dir` with the highest version.
fn newest_lib(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut libs: Vec<(Vec<u64>, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let ver = name
                .strip_prefix("libonnxruntime.so.")
                .or_else(|| {
                    name.strip_prefix("libonnxruntime.")
                        .and_then(|r| r.strip_suffix(".dylib"))
                })
                .filter(|v| v.starts_with("1."))?;
            let key = ver.split('.').map(|p| p.parse().unwrap_or(0)).collect();
            e.path().is_file().then(|| (key, e.path()))
        })
        .collect();
    libs.sort();
    libs.pop().map(|(_, p)| p)
}

/// A compiled ONNX Runtime session.
pub struct OrtRunner {
    session: Session,
    device: Device,
    dtype: Dtype,
    /// The code type of an int8/int16 input (a quantized decompress graph).
    code: Option<CodeType>,
    input: Vec<usize>,
    /// The output shape the graph declares (what callers get).
    output: Vec<usize>,
    /// The shape the session produces: `output`, or the same elements in another shape when the
    /// graph's trailing Reshape was elided.
    produced: Vec<usize>,
}

impl OrtRunner {
    /// Compile an ONNX model (bytes) whose output is a `dtype` tensor and whose input is a
    /// `dtype` tensor or int8/int16 codes (a quantized decompress graph): graph
    /// optimization level 3, `opts.threads` intra-op threads (all cores by default), on
    /// `opts.device`.
    ///
    /// A graph that ends in a Reshape is compiled without it (see
    /// [`super::rewrite::elide_output_reshape`]) and its result is given the declared shape on
    /// this side, for free: ONNX Runtime would copy the whole output there.
    pub fn from_bytes(bytes: &[u8], dtype: Dtype, opts: &EngineOptions) -> Result<Self> {
        if let Some(e) = super::rewrite::elide_output_reshape(bytes) {
            let elided = Self::session(&e.bytes, opts).and_then(|s| Self::checked(s, dtype, opts));
            if let Ok(mut r) = elided {
                if r.produced.iter().product::<usize>() == e.declared.iter().product::<usize>() {
                    r.output = e.declared;
                    return Ok(r);
                }
            }
        }
        Self::checked(Self::session(bytes, opts)?, dtype, opts)
    }

    /// A session for `bytes` with the engine's settings.
    fn session(bytes: &[u8], opts: &EngineOptions) -> Result<Session> {
        let loaded = loaded()?;
        let mut builder = Session::builder(&loaded.env)
            .map_err(err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(err)?
            .with_intra_threads(opts.resolved_threads())
            .map_err(err)?
            .with_log_level(ort::logging::LogLevel::Fatal)
            .map_err(err)?;
        if let Device::Cuda(id) = opts.device {
            let lib = &loaded.library;
            let id = i32::try_from(id).map_err(|_| err(format!("invalid CUDA device {id}")))?;
            let available = CUDA::is_available().map_err(err)?;
            if !available {
                return Err(err(format!(
                    "--device {}: the loaded ONNX Runtime {} ({}) has no CUDA execution \
                     provider; install onnxruntime-gpu 1.{REQUIRED_MINOR}.x and point \
                     ORT_DYLIB_PATH at its libonnxruntime.so.1.*, or use --device cpu",
                    opts.device,
                    lib.version,
                    lib.path.display()
                )));
            }
            // error_on_failure: never fall back to the CPU silently, neither for the whole
            // session (registration) nor per node (disable_cpu_ep_fallback).
            builder = builder
                .with_execution_providers([CUDA::default()
                    .with_device_id(id)
                    .build()
                    .error_on_failure()])
                .map_err(|e| err(format!("--device {}: {e}", opts.device)))?
                .with_disable_cpu_fallback()
                .map_err(err)?;
        }
        builder
            .commit_from_memory(bytes)
            .map_err(|e| err(format!("compiling the graph on {}: {e}", opts.device)))
    }

    /// Check a session's input and output (one each, static; the output of `dtype`, the input of
    /// `dtype` or int8/int16) and wrap it.
    fn checked(session: Session, dtype: Dtype, opts: &EngineOptions) -> Result<Self> {
        if session.inputs().len() != 1 || session.outputs().len() != 1 {
            return Err(err(format!(
                "the graph has {} inputs and {} outputs; dctchop graphs have one of each",
                session.inputs().len(),
                session.outputs().len()
            )));
        }
        let want = match dtype {
            Dtype::F32 => TensorElementType::Float32,
            Dtype::F16 => TensorElementType::Float16,
        };
        let in_type = session.inputs()[0].dtype().tensor_type();
        let code = match in_type {
            Some(TensorElementType::Int8) => Some(CodeType::I8),
            Some(TensorElementType::Int16) => Some(CodeType::I16),
            _ => None,
        };
        let fact = |what: &str, outlet: &ort::value::Outlet| -> Result<Vec<usize>> {
            let ty = outlet.dtype();
            let is_codes = what == "input" && code.is_some();
            if ty.tensor_type() != Some(want) && !is_codes {
                return Err(err(format!(
                    "graph {what} '{}' is {ty}, expected a {dtype} tensor{}",
                    outlet.name(),
                    if what == "input" {
                        " or int8/int16 codes"
                    } else {
                        ""
                    }
                )));
            }
            let shape = ty
                .tensor_shape()
                .ok_or_else(|| err("graph value is not a tensor"))?;
            shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| err("graph has a symbolic shape; dctchop graphs are static"))
        };
        let input = fact("input", &session.inputs()[0])?;
        let produced = fact("output", &session.outputs()[0])?;
        Ok(OrtRunner {
            session,
            device: opts.device,
            dtype,
            code,
            input,
            output: produced.clone(),
            produced,
        })
    }
}

impl OrtRunner {
    /// Time `reps` runs with IO binding: the input is bound once (copied to the device once for
    /// CUDA) and the output is bound to memory allocated once on the session's device, so each
    /// timed run is the graph execution alone (device-resident on CUDA), with no per-run
    /// allocation or copy.
    fn time_bound<T>(&mut self, x: ArrayD<T>, reps: usize) -> Result<Vec<f64>>
    where
        T: PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static,
    {
        let in_name = self.session.inputs()[0].name().to_string();
        let out_name = self.session.outputs()[0].name().to_string();
        let x = Tensor::from_array(x).map_err(err)?;
        let mut binding = self.session.create_binding().map_err(err)?;
        binding.bind_input(&in_name, &x).map_err(err)?;
        match self.device {
            Device::Cpu => {
                let y = Tensor::<T>::new(self.session.allocator(), self.produced.clone())
                    .map_err(err)?;
                binding.bind_output(&out_name, y).map_err(err)?;
            }
            Device::Cuda(id) => {
                let id = i32::try_from(id).map_err(err)?;
                let mem = MemoryInfo::new(
                    AllocationDevice::CUDA,
                    id,
                    AllocatorType::Device,
                    MemoryType::Default,
                )
                .map_err(err)?;
                binding
                    .bind_output_to_device(&out_name, &mem)
                    .map_err(err)?;
            }
        }
        binding.synchronize_inputs().map_err(err)?;
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t0 = std::time::Instant::now();
            let out = self.session.run_binding(&binding).map_err(err)?;
            binding.synchronize_outputs().map_err(err)?;
            times.push(t0.elapsed().as_secs_f64());
            drop(out);
        }
        Ok(times)
    }
}

impl OrtRunner {
    /// Give a produced (standard-layout) output the declared shape: no copy.
    fn declared(&self, y: ArrayD<f32>) -> Result<ArrayD<f32>> {
        y.into_shape_with_order(self.output.clone())
            .map_err(|e| err(format!("output of shape {:?}: {e}", self.produced)))
    }
}

impl OrtRunner {
    /// Run on int8/int16 codes and write the float output into `out`. As for f32 inputs: when
    /// the output is f32 on the CPU it is bound to `out` itself (the codes are bound as an owned
    /// copy, see `run_into`), else it is copied once.
    fn run_codes_typed<T>(
        &mut self,
        x: ArrayViewD<'_, T>,
        out: ArrayViewMutD<'_, f32>,
    ) -> Result<()>
    where
        T: PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static,
    {
        check_shape("ort", &self.input, x.shape())?;
        let direct = self.dtype == Dtype::F32
            && self.device == Device::Cpu
            && out.is_standard_layout()
            && out.shape() == self.output.as_slice();
        if direct {
            let in_name = self.session.inputs()[0].name().to_string();
            let out_name = self.session.outputs()[0].name().to_string();
            let x = Tensor::from_array(x.as_standard_layout().into_owned()).map_err(err)?;
            let out = out
                .into_shape_with_order(self.produced.clone())
                .map_err(err)?;
            let y = TensorRefMut::from_array_view_mut(out).map_err(err)?;
            let mut binding = self.session.create_binding().map_err(err)?;
            binding.bind_input(&in_name, &x).map_err(err)?;
            binding.bind_output(&out_name, y).map_err(err)?;
            self.session.run_binding(&binding).map_err(err)?;
            return Ok(());
        }
        let x = x.as_standard_layout();
        let t = TensorRef::from_array_view(x.view()).map_err(err)?;
        let y = self.session.run(ort::inputs![t]).map_err(err)?;
        match self.dtype {
            Dtype::F32 => write_output(
                y[0].try_extract_array::<f32>().map_err(err)?,
                out,
                &self.output,
            ),
            Dtype::F16 => {
                let v = y[0]
                    .try_extract_array::<half::f16>()
                    .map_err(err)?
                    .mapv(|v| v.to_f32());
                write_output(v.view(), out, &self.output)
            }
        }
    }
}

impl Runner for OrtRunner {
    fn input_shape(&self) -> &[usize] {
        &self.input
    }

    fn input_code(&self) -> Option<CodeType> {
        self.code
    }

    fn run_codes_into(&mut self, codes: CodesView<'_>, out: ArrayViewMutD<'_, f32>) -> Result<()> {
        check_code("ort", self.code, Some(codes.code_type()))?;
        match codes {
            CodesView::I8(a) => self.run_codes_typed(a, out),
            CodesView::I16(a) => self.run_codes_typed(a, out),
        }
    }
    fn output_shape(&self) -> &[usize] {
        &self.output
    }
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        check_code("ort", self.code, None)?;
        check_shape("ort", &self.input, input.shape())?;
        match self.dtype {
            Dtype::F32 => {
                let x = input.as_standard_layout();
                let t = TensorRef::from_array_view(x.view()).map_err(err)?;
                let y = {
                    let out = self.session.run(ort::inputs![t]).map_err(err)?;
                    out[0].try_extract_array::<f32>().map_err(err)?.to_owned()
                };
                self.declared(y)
            }
            Dtype::F16 => {
                let x = input.mapv(half::f16::from_f32);
                let t = TensorRef::from_array_view(x.view()).map_err(err)?;
                let y = {
                    let out = self.session.run(ort::inputs![t]).map_err(err)?;
                    out[0]
                        .try_extract_array::<half::f16>()
                        .map_err(err)?
                        .mapv(|v| v.to_f32())
                };
                self.declared(y)
            }
        }
    }

    fn run_into(&mut self, input: ArrayViewD<'_, f32>, out: ArrayViewMutD<'_, f32>) -> Result<()> {
        check_code("ort", self.code, None)?;
        if self.dtype != Dtype::F32 {
            return run_then_write(self, input, out);
        }
        check_shape("ort", &self.input, input.shape())?;
        let direct = self.device == Device::Cpu
            && out.is_standard_layout()
            && out.shape() == self.output.as_slice()
            && out.len() > input.len();
        if direct {
            // The output is bound to `out` itself, so ONNX Runtime writes into it. The input is
            // bound as an owned copy: ort 2.0.0-rc.15 deadlocks when it binds borrowed data
            // (it clones it through a session that takes the same lock). So this is only done
            // when the output is the larger side (decompression); otherwise the output is copied
            // once.
            let in_name = self.session.inputs()[0].name().to_string();
            let out_name = self.session.outputs()[0].name().to_string();
            let x = Tensor::from_array(input.as_standard_layout().into_owned()).map_err(err)?;
            let out = out
                .into_shape_with_order(self.produced.clone())
                .map_err(err)?;
            let y = TensorRefMut::from_array_view_mut(out).map_err(err)?;
            let mut binding = self.session.create_binding().map_err(err)?;
            binding.bind_input(&in_name, &x).map_err(err)?;
            binding.bind_output(&out_name, y).map_err(err)?;
            self.session.run_binding(&binding).map_err(err)?;
            return Ok(());
        }
        let x = input.as_standard_layout();
        let t = TensorRef::from_array_view(x.view()).map_err(err)?;
        let y = self.session.run(ort::inputs![t]).map_err(err)?;
        write_output(
            y[0].try_extract_array::<f32>().map_err(err)?,
            out,
            &self.output,
        )
    }

    fn time_runs(&mut self, input: ArrayViewD<'_, f32>, reps: usize) -> Result<Vec<f64>> {
        check_code("ort", self.code, None)?;
        check_shape("ort", &self.input, input.shape())?;
        match self.dtype {
            Dtype::F32 => self.time_bound(input.as_standard_layout().into_owned(), reps),
            Dtype::F16 => self.time_bound(input.mapv(half::f16::from_f32), reps),
        }
    }
}
