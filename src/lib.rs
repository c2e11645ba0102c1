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
//! - [`engine`]: runtimes (tract; ONNX Runtime with the `ort` feature; a plain-Rust f64 reference).
//! - [`codec`]: compress/decompress any number of samples, batching and serialization.
//! - [`export`]: writing graph pairs and sidecars atomically.
//! - [`input`]: reading `.npy` files and images (PNG, JPEG, TIFF) as f32 batches.
//! - [`container`]: the sharded safetensors container of coefficients, and its batch [`container::Loader`].
//! - [`pipeline`]: files in, files out: `compress` into a container, `decompress` to .npy/PNG.
//! - [`target`]: export profiles for CPU, CUDA and the paper's accelerators, memory estimates.
//!
//! ```no_run
//! use dctchop::{Codec, EngineOptions, Spec};
//! let spec = Spec::new(256, 256, 4).with_batch(16);
//! let mut codec = Codec::new(&spec, &EngineOptions::tract())?;
//! let x = ndarray::Array4::<f32>::zeros((40, 3, 256, 256));
//! let y = codec.compress(x.view())?;          // [40, 3, 128, 128]
//! let back = codec.decompress(y.view())?;     // [40, 3, 256, 256]
//! # Ok::<(), dctchop::Error>(())
//! ```

pub mod bench;
pub mod codec;
pub mod container;
pub mod dct;
pub mod engine;
pub mod error;
pub mod eval;
pub mod export;
pub mod graph;
pub mod input;
pub mod npy;
pub mod pipeline;
pub mod plan;
pub mod spec;
pub mod target;

pub use codec::Codec;
pub use engine::{Device, EngineKind, EngineOptions};
pub use error::{Error, Result};
pub use graph::Direction;
pub use plan::Plan;
pub use spec::{Dtype, Spec, Tile, Variant};
pub use target::Target;

/// The opset graphs are written with unless the user asks for another.
pub const DEFAULT_OPSET: i64 = 13;
