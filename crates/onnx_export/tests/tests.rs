//! Integration tests of `onnx_export`: model structure and encoding (`model`), and execution of
//! encoded models by an independent ONNX consumer, tract (`tract`).

mod model;
mod tract;
