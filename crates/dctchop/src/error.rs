//! One error type for the library; every message says what is wrong and what is allowed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {field} = {value}: allowed is {allowed}")]
    InvalidSpec {
        field: &'static str,
        value: String,
        allowed: String,
    },

    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("ONNX graph: {0}")]
    Onnx(#[from] onnx_export::ExportError),

    #[error("{engine} engine: {message}")]
    Engine {
        engine: &'static str,
        message: String,
    },

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
