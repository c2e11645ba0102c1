//! The crate's error type.

/// Everything that can go wrong when building, validating, encoding or decoding a [`crate::Model`].
///
/// Every message names the offending item (tensor, node, input, output, ...) so that it can
/// be shown to a user as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The requested default-domain opset is outside the supported range.
    #[error("opset {opset} is not supported; the allowed range is {min}..={max}")]
    UnsupportedOpset {
        /// The requested opset.
        opset: i64,
        /// Smallest supported opset.
        min: i64,
        /// Largest supported opset.
        max: i64,
    },

    /// The model's IR version does not fit its opset.
    #[error("ir_version {ir_version} does not fit opset {opset}: it must be in {min}..={max}")]
    IrVersion {
        /// The model's IR version.
        ir_version: i64,
        /// The model's opset.
        opset: i64,
        /// Smallest IR version that may carry this opset.
        min: i64,
        /// Largest IR version this crate writes.
        max: i64,
    },

    /// A tensor was built from a number of elements that does not match its dims.
    #[error("tensor '{tensor}': dims {dims:?} need {expected} elements but {got} were given")]
    ElementCount {
        /// Tensor name.
        tensor: String,
        /// Tensor dims.
        dims: Vec<i64>,
        /// Product of the dims.
        expected: usize,
        /// Number of elements given.
        got: usize,
    },

    /// A tensor's raw byte buffer does not match `num_elements * size_bytes`.
    #[error(
        "tensor '{tensor}' has {got} bytes of raw data but dims {dims:?} of {dtype} need {expected}"
    )]
    RawLength {
        /// Tensor name.
        tensor: String,
        /// Tensor dims.
        dims: Vec<i64>,
        /// Element type name.
        dtype: &'static str,
        /// Expected byte count.
        expected: usize,
        /// Actual byte count.
        got: usize,
    },

    /// A dimension is out of range (negative for tensors, < 1 for graph inputs, outputs and
    /// value infos, which must have static shapes), or the element count overflows.
    #[error("{what} '{name}' has dims {dims:?}: {reason}")]
    BadDims {
        /// Kind of item: "graph input", "graph output", "value_info", "tensor", ...
        what: &'static str,
        /// Item name.
        name: String,
        /// The offending dims.
        dims: Vec<i64>,
        /// What is wrong with them.
        reason: &'static str,
    },

    /// A name that must be non-empty is empty.
    #[error("{what} has an empty name")]
    EmptyName {
        /// Which item, e.g. "graph input #0", "output #1 of node 'mm1'".
        what: String,
    },

    /// A value (or node) name is defined twice.
    #[error("name '{name}' is defined twice: as {first} and as {second}")]
    DuplicateName {
        /// The duplicated name.
        name: String,
        /// Description of the first definition.
        first: String,
        /// Description of the second definition.
        second: String,
    },

    /// A node input refers to nothing that exists.
    #[error(
        "node '{node}' input '{input}' is not a graph input, initializer or earlier node output"
    )]
    DanglingInput {
        /// Node name (or `#index` when it has no name).
        node: String,
        /// The undefined input name.
        input: String,
    },

    /// A node input is produced by a node that comes later (nodes must be topologically sorted).
    #[error(
        "node '{node}' input '{input}' is produced by node '{producer}', which does not come \
         before it; nodes must be in topological order"
    )]
    NotTopological {
        /// Node name (or `#index`).
        node: String,
        /// The input name.
        input: String,
        /// Node that produces it (name or `#index`), at or after the consumer.
        producer: String,
    },

    /// A graph output is not produced by anything.
    #[error("graph output '{output}' is not produced by any node, graph input or initializer")]
    UndefinedOutput {
        /// The graph output name.
        output: String,
    },

    /// A value_info entry refers to a name that is not a node output.
    #[error("value_info '{name}' does not describe any node output")]
    UnknownValueInfo {
        /// The value_info name.
        name: String,
    },

    /// A node has an empty op_type.
    #[error("node '{node}' has an empty op_type")]
    EmptyOpType {
        /// Node name (or `#index`).
        node: String,
    },

    /// A node carries two attributes with the same name, or one with an empty name.
    #[error("node '{node}' has an invalid attribute name '{attribute}' (empty or repeated)")]
    BadAttribute {
        /// Node name (or `#index`).
        node: String,
        /// The attribute name.
        attribute: String,
    },

    /// The graph has no name (ONNX requires one).
    #[error("the graph has an empty name; ONNX requires a graph name")]
    EmptyGraphName,

    /// The encoded model would exceed the 2 GiB protobuf limit.
    #[error("the encoded model would take {bytes} bytes, over the 2 GiB protobuf limit")]
    TooLarge {
        /// Encoded size in bytes.
        bytes: usize,
    },

    /// The bytes are not a valid protobuf `ModelProto`.
    #[error("invalid ONNX protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),

    /// The bytes are valid protobuf but use something this crate cannot represent, or miss
    /// a field it needs.
    #[error("cannot decode ONNX model: {0}")]
    Unsupported(String),
}
