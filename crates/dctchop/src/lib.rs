//! # dctchop
//!
//! DCT+Chop lossy compression (Abdelhamid et al., HPDC'24) as static-shape ONNX graphs whose
//! nodes are only `MatMul`, `Gather` and `Reshape`, so any ONNX consumer — CPU, GPU or AI
//! accelerator — can run them.
//!
//! - [`spec`]: what the user asks for ([`Spec`]), validated once.
//! - [`dct`]: the DCT-II matrix and references, in f64.
//! - [`plan`]: matrices and the exact tensor program of each graph, for every form.
//! - [`graph`]: lowering to ONNX (via the DCT-agnostic `onnx_export` crate) and metadata.
//! - [`graph_check`]: every ONNX graph checked before an engine runs it (shapes, indices, memory).
//! - [`engine`]: runtimes (tract; ONNX Runtime with the `ort` feature; a plain-Rust f64 reference).
//! - [`codec`]: compress/decompress any number of samples, batching and serialization.
//! - [`layout`]: what a variant keeps and where it is stored (the one place that knows).
//! - [`quant`]: code types, steps and the rounding rule of quantized graphs (the one place).
//! - [`export`]: writing graph pairs and sidecars.
//! - [`output`]: writing files without losing anything (temporaries, atomic commits, --force).
//! - [`input`]: reading `.npy` files and images (PNG, JPEG, TIFF) as f32 batches (or integer
//!   `.npy` samples as they are: [`pixels`]).
//! - [`pixels`]: batches of original samples in their own type (f32, u8, u16, i16).
//! - [`container`]: the sharded safetensors container of coefficients, and its batch [`container::Loader`].
//! - [`pipeline`]: files in, files out: `compress` into a container, `decompress` to .npy/PNG.
//! - [`budget`]: the memory budget (`--max-memory-mb`) checked before large allocations.
//! - [`target`]: export profiles for CPU, CUDA and the paper's accelerators, memory estimates.
//!
//! ```no_run
//! use dctchop::{Codec, EngineOptions, Spec};
//! let spec = Spec::new(256, 256, 4).with_batch(16);
//! let mut codec = Codec::new(&spec, &EngineOptions::auto())?; // the native engine
//! let x = ndarray::Array4::<f32>::zeros((40, 3, 256, 256));
//! let y = codec.compress(x.view())?;          // [40, 3, 128, 128]
//! let back = codec.decompress(y.view())?;     // [40, 3, 256, 256]
//! # Ok::<(), dctchop::Error>(())
//! ```

pub mod bench;
pub mod budget;
pub mod codec;
pub mod container;
pub mod dct;
pub mod engine;
pub mod entropy;
pub mod error;
pub mod eval;
pub mod export;
pub mod graph;
pub mod graph_check;
pub mod input;
pub mod layout;
pub mod npy;
pub mod output;
pub mod pipeline;
pub mod pixels;
pub mod plan;
#[cfg(test)]
mod props;
pub mod quant;
pub mod spec;
pub mod target;
pub mod tune;

pub use codec::Codec;
pub use engine::{Device, EngineKind, EngineOptions};
pub use error::{Error, ErrorKind, Result};
pub use graph::Direction;
pub use layout::{Layout, Variant};
pub use plan::Plan;
pub use quant::{CodeType, Codes, CodesView, Quant};
pub use spec::{Dtype, Spec, Tile};
pub use target::Target;

/// Tune glibc's allocator for large, repeated batches: keep freed memory in the heap and use one
/// arena. Process-wide, so the library never calls it itself; the `dctchop` binary calls it first
/// thing, and a program that runs a [`Codec`] or a [`container::Loader`] in a loop should too,
/// before it starts any threads. A no-op on other platforms.
///
/// Why: graph runs allocate their large tensors afresh each time, and glibc serves every
/// allocation above 32 MiB with a new mmap that page-faults on first touch, on every run. Keeping
/// freed memory measured 4× faster on a 78 MB Reshape under tract, 2.6× faster ONNX Runtime
/// decompression, and 2× faster [`Codec::decompress`] with ONNX Runtime at 256² × 300
/// (bench/README.md). One arena: tract's worker threads otherwise allocate their packing buffers
/// in per-thread arenas that return pages to the kernel; with a single arena a tile-32 compress
/// at 256² × 300 ran 191 → 136 ms.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The opset graphs are written with unless the user asks for another.
pub const DEFAULT_OPSET: i64 = 13;
