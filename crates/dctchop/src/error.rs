//! One error type for the library. Every message is one line that names what is wrong (the file,
//! the field or the option), what it was, and what is allowed or what to do instead.
//!
//! The variants are typed by kind ([`Error::kind`]) so that callers (the CLI, the Python
//! package) can react to a class of failure without parsing messages.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is, for callers that map errors onto their own types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A spec field or an option is out of range ([`Error::InvalidSpec`],
    /// [`Error::InvalidOption`]).
    Invalid,
    /// A file cannot be used as asked: missing, unsupported, mismatched, exists already, or an
    /// I/O failure.
    File,
    /// Stored data is damaged or contradicts itself.
    Corrupt,
    /// A resource limit would be exceeded.
    Resource,
    /// A graph could not be built, compiled or run.
    Engine,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of a [`crate::Spec`] is out of range.
    #[error("invalid {field} = {value}: allowed is {allowed}")]
    InvalidSpec {
        field: &'static str,
        value: String,
        allowed: String,
    },

    /// An option that is not part of the spec (batch size, shard size, opset, …) is out of range.
    #[error("invalid {option} = {value}: allowed is {allowed}")]
    InvalidOption {
        option: &'static str,
        value: String,
        allowed: String,
    },

    /// An array passed to the library has the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },

    /// An output file exists and overwriting was not allowed.
    #[error("{}: already exists; pass --force to overwrite it", path.display())]
    AlreadyExists { path: PathBuf },

    /// A file that must exist does not.
    #[error("{}: not found: {expected}", path.display())]
    NotFound { path: PathBuf, expected: String },

    /// A file is readable but holds something this build cannot handle (a format, an element
    /// type, a layout, a feature that is not compiled in).
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },

    /// A file's contents cannot be used as asked (wrong shape, non-finite values, inputs that do
    /// not go together, an output that cannot hold the data).
    #[error("{}: {message}", path.display())]
    InvalidInput { path: PathBuf, message: String },

    /// Stored data is damaged or inconsistent: truncated, a checksum mismatch, metadata that
    /// contradicts itself or the rest of the container.
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },

    /// Doing this would exceed a resource limit (e.g. `--max-memory-mb`).
    #[error("{}: {message}", path.display())]
    TooLarge { path: PathBuf, message: String },

    /// An I/O failure. The OS message is part of this error's own text (not a `source()`), so
    /// a chain printer such as anyhow's `{:#}` does not repeat it.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("ONNX graph: {0}")]
    Onnx(#[from] onnx_export::ExportError),

    #[error("{engine} engine: {message}")]
    Engine {
        engine: &'static str,
        message: String,
    },
}

impl Error {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidSpec { .. } | Error::InvalidOption { .. } | Error::Shape { .. } => {
                ErrorKind::Invalid
            }
            Error::AlreadyExists { .. }
            | Error::NotFound { .. }
            | Error::Unsupported { .. }
            | Error::InvalidInput { .. }
            | Error::Io { .. } => ErrorKind::File,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::TooLarge { .. } => ErrorKind::Resource,
            Error::Onnx(_) | Error::Engine { .. } => ErrorKind::Engine,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
    pub(crate) fn unsupported(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn invalid_input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn invalid_option(
        option: &'static str,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        Error::InvalidOption {
            option,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
