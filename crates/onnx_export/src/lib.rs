//! Serialize a small, static-shape graph description into ONNX protobuf (`ModelProto`) bytes,
//! and decode such bytes back into the same description.
//!
//! The crate knows nothing about any particular model: it offers plain data types
//! ([`Model`], [`Graph`], [`Node`], [`Tensor`], [`ValueInfo`], [`Attribute`]),
//! a structural check ([`Model::validate`]), a deterministic encoder ([`Model::encode`]) and
//! a decoder ([`Model::decode`]).
//!
//! Encoding conventions:
//! * one `opset_import` for the default domain (`""`), nodes in the default domain;
//! * graph inputs do not list initializers (except for IR version 3, i.e. opsets 7 and 8,
//!   which requires them to be listed; [`Model::decode`] drops them again); initializers are
//!   stored as `raw_data` (little-endian, row-major);
//! * graph inputs, outputs and value infos have static shapes (`dim_value` only);
//! * metadata properties are written in the given order;
//! * the same [`Model`] always encodes to identical bytes.
//!
//! ```
//! use onnx_export::{DataType, Graph, Model, Node, Tensor, ValueInfo};
//!
//! let graph = Graph {
//!     name: "tiny".into(),
//!     inputs: vec![ValueInfo::new("x", DataType::F32, vec![1, 2])],
//!     outputs: vec![ValueInfo::new("y", DataType::F32, vec![1, 2])],
//!     initializers: vec![Tensor::from_f32("w", vec![2, 2], &[1.0, 0.0, 0.0, 1.0]).unwrap()],
//!     nodes: vec![Node::new("mm", "MatMul", &["x", "w"], &["y"])],
//!     ..Graph::default()
//! };
//! let model = Model::new(graph, 13).unwrap();
//! let bytes = model.encode().unwrap();
//! assert_eq!(Model::decode(&bytes).unwrap(), model);
//! ```

#![warn(missing_docs)]

mod codec;
mod error;
mod proto;
mod validate;

pub use error::ExportError;

/// Smallest supported default-domain opset.
pub const MIN_OPSET: i64 = 7;
/// Largest supported default-domain opset.
pub const MAX_OPSET: i64 = 24;

/// Element type of a tensor or value (the supported subset of `TensorProto.DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// IEEE 754 binary32 (`FLOAT` = 1).
    F32,
    /// IEEE 754 binary16 (`FLOAT16` = 10).
    F16,
    /// bfloat16 (`BFLOAT16` = 16).
    BF16,
    /// IEEE 754 binary64 (`DOUBLE` = 11).
    F64,
    /// Signed 64-bit integer (`INT64` = 7).
    I64,
    /// Signed 32-bit integer (`INT32` = 6).
    I32,
    /// Unsigned 8-bit integer (`UINT8` = 2).
    U8,
    /// Signed 8-bit integer (`INT8` = 3).
    I8,
    /// Signed 16-bit integer (`INT16` = 5).
    I16,
}

impl DataType {
    /// All supported data types.
    pub const ALL: [DataType; 9] = [
        DataType::F32,
        DataType::F16,
        DataType::BF16,
        DataType::F64,
        DataType::I64,
        DataType::I32,
        DataType::U8,
        DataType::I8,
        DataType::I16,
    ];

    /// The `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            DataType::F32 => 1,
            DataType::U8 => 2,
            DataType::I8 => 3,
            DataType::I16 => 5,
            DataType::I32 => 6,
            DataType::I64 => 7,
            DataType::F16 => 10,
            DataType::F64 => 11,
            DataType::BF16 => 16,
        }
    }

    /// The data type for a `TensorProto.DataType` code, or `None` if unsupported.
    pub fn from_onnx_code(code: i32) -> Option<Self> {
        DataType::ALL.into_iter().find(|d| d.onnx_code() == code)
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::F16 | DataType::BF16 | DataType::I16 => 2,
            DataType::F32 | DataType::I32 => 4,
            DataType::F64 | DataType::I64 => 8,
        }
    }

    /// Lower-case name as numpy spells it: `"float32"`, `"float16"`, `"bfloat16"`,
    /// `"float64"`, `"int64"`, `"int32"`, `"uint8"`, `"int8"`, `"int16"`.
    pub fn name(self) -> &'static str {
        match self {
            DataType::F32 => "float32",
            DataType::F16 => "float16",
            DataType::BF16 => "bfloat16",
            DataType::F64 => "float64",
            DataType::I64 => "int64",
            DataType::I32 => "int32",
            DataType::U8 => "uint8",
            DataType::I8 => "int8",
            DataType::I16 => "int16",
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Number of elements for `dims`, or `None` if a dim is negative or the product overflows.
pub(crate) fn checked_num_elements(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| {
        let d = usize::try_from(d).ok()?;
        acc.checked_mul(d)
    })
}

/// A constant tensor (graph initializer): name, element type, dims and little-endian,
/// row-major raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Value name (unique among graph inputs, initializers and node outputs).
    pub name: String,
    /// Element type.
    pub dtype: DataType,
    /// Dims (each >= 0; empty for a scalar).
    pub dims: Vec<i64>,
    /// Little-endian, row-major element bytes; length `num_elements() * dtype.size_bytes()`.
    pub raw: Vec<u8>,
}

impl Tensor {
    /// A tensor from raw little-endian bytes; checks the dims and the byte length.
    pub fn from_raw(
        name: impl Into<String>,
        dtype: DataType,
        dims: Vec<i64>,
        raw: Vec<u8>,
    ) -> Result<Self, ExportError> {
        let t = Tensor {
            name: name.into(),
            dtype,
            dims,
            raw,
        };
        t.check_data()?;
        Ok(t)
    }

    fn from_elements<T: Copy, const N: usize>(
        name: String,
        dtype: DataType,
        dims: Vec<i64>,
        data: &[T],
        to_le: impl Fn(T) -> [u8; N],
    ) -> Result<Self, ExportError> {
        let expected = element_count(&name, &dims)?;
        if expected != data.len() {
            return Err(ExportError::ElementCount {
                tensor: name,
                dims,
                expected,
                got: data.len(),
            });
        }
        let raw = data.iter().flat_map(|&v| to_le(v)).collect();
        Ok(Tensor {
            name,
            dtype,
            dims,
            raw,
        })
    }

    /// A `float32` tensor; `data.len()` must equal the product of `dims`.
    pub fn from_f32(
        name: impl Into<String>,
        dims: Vec<i64>,
        data: &[f32],
    ) -> Result<Self, ExportError> {
        Self::from_elements(name.into(), DataType::F32, dims, data, f32::to_le_bytes)
    }

    /// A `float16` tensor from IEEE binary16 bit patterns (e.g. `half::f16::to_bits`);
    /// `data.len()` must equal the product of `dims`.
    pub fn from_f16_bits(
        name: impl Into<String>,
        dims: Vec<i64>,
        data: &[u16],
    ) -> Result<Self, ExportError> {
        Self::from_elements(name.into(), DataType::F16, dims, data, u16::to_le_bytes)
    }

    /// A `float64` tensor; `data.len()` must equal the product of `dims`.
    pub fn from_f64(
        name: impl Into<String>,
        dims: Vec<i64>,
        data: &[f64],
    ) -> Result<Self, ExportError> {
        Self::from_elements(name.into(), DataType::F64, dims, data, f64::to_le_bytes)
    }

    /// An `int64` tensor; `data.len()` must equal the product of `dims`.
    pub fn from_i64(
        name: impl Into<String>,
        dims: Vec<i64>,
        data: &[i64],
    ) -> Result<Self, ExportError> {
        Self::from_elements(name.into(), DataType::I64, dims, data, i64::to_le_bytes)
    }

    /// An `int32` tensor; `data.len()` must equal the product of `dims`.
    pub fn from_i32(
        name: impl Into<String>,
        dims: Vec<i64>,
        data: &[i32],
    ) -> Result<Self, ExportError> {
        Self::from_elements(name.into(), DataType::I32, dims, data, i32::to_le_bytes)
    }

    /// An `int8` tensor; `data.len()` must equal the product of `dims`.
    pub fn from_i8(
        name: impl Into<String>,
        dims: Vec<i64>,
        data: &[i8],
    ) -> Result<Self, ExportError> {
        Self::from_elements(name.into(), DataType::I8, dims, data, i8::to_le_bytes)
    }

    /// An `int16` tensor; `data.len()` must equal the product of `dims`.
    pub fn from_i16(
        name: impl Into<String>,
        dims: Vec<i64>,
        data: &[i16],
    ) -> Result<Self, ExportError> {
        Self::from_elements(name.into(), DataType::I16, dims, data, i16::to_le_bytes)
    }

    /// Number of elements: the product of `dims` (1 for a scalar). Negative dims count as 0
    /// and an overflowing product saturates at `usize::MAX`.
    pub fn num_elements(&self) -> usize {
        self.dims.iter().fold(1usize, |acc, &d| {
            acc.saturating_mul(usize::try_from(d).unwrap_or(0))
        })
    }

    /// Checks dims (>= 0, no overflow) and `raw.len() == num_elements() * size_bytes()`.
    pub(crate) fn check_data(&self) -> Result<(), ExportError> {
        let n = element_count(&self.name, &self.dims)?;
        let expected = n
            .checked_mul(self.dtype.size_bytes())
            .ok_or_else(|| overflow("tensor", &self.name, &self.dims))?;
        if self.raw.len() != expected {
            return Err(ExportError::RawLength {
                tensor: self.name.clone(),
                dims: self.dims.clone(),
                dtype: self.dtype.name(),
                expected,
                got: self.raw.len(),
            });
        }
        Ok(())
    }

    fn chunks<const N: usize>(&self) -> Option<impl Iterator<Item = [u8; N]> + '_> {
        if self.raw.len() != self.num_elements().checked_mul(N)? {
            return None;
        }
        Some(
            self.raw
                .chunks_exact(N)
                .map(|c| <[u8; N]>::try_from(c).expect("chunk of exact size")),
        )
    }

    /// The elements as `f32`: exact for `float32`, `float16` and `bfloat16` tensors;
    /// `None` for other types or when `raw` has the wrong length.
    pub fn to_f32_vec(&self) -> Option<Vec<f32>> {
        match self.dtype {
            DataType::F32 => Some(self.chunks::<4>()?.map(f32::from_le_bytes).collect()),
            DataType::F16 => Some(
                self.chunks::<2>()?
                    .map(|b| half::f16::from_bits(u16::from_le_bytes(b)).to_f32())
                    .collect(),
            ),
            DataType::BF16 => Some(
                self.chunks::<2>()?
                    .map(|b| half::bf16::from_bits(u16::from_le_bytes(b)).to_f32())
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The elements as `i64`: exact for `int64`, `int32`, `int16`, `uint8` and `int8` tensors;
    /// `None` for other types or when `raw` has the wrong length.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        match self.dtype {
            DataType::I64 => Some(self.chunks::<8>()?.map(i64::from_le_bytes).collect()),
            DataType::I32 => Some(
                self.chunks::<4>()?
                    .map(|b| i64::from(i32::from_le_bytes(b)))
                    .collect(),
            ),
            DataType::I16 => Some(
                self.chunks::<2>()?
                    .map(|b| i64::from(i16::from_le_bytes(b)))
                    .collect(),
            ),
            DataType::U8 => Some(self.chunks::<1>()?.map(|b| i64::from(b[0])).collect()),
            DataType::I8 => Some(
                self.chunks::<1>()?
                    .map(|b| i64::from(i8::from_le_bytes(b)))
                    .collect(),
            ),
            _ => None,
        }
    }
}

fn overflow(what: &'static str, name: &str, dims: &[i64]) -> ExportError {
    ExportError::BadDims {
        what,
        name: name.to_owned(),
        dims: dims.to_vec(),
        reason: "the element count overflows",
    }
}

/// Element count of a tensor, rejecting negative dims and overflow.
fn element_count(name: &str, dims: &[i64]) -> Result<usize, ExportError> {
    if dims.iter().any(|&d| d < 0) {
        return Err(ExportError::BadDims {
            what: "tensor",
            name: name.to_owned(),
            dims: dims.to_vec(),
            reason: "tensor dims must be >= 0",
        });
    }
    checked_num_elements(dims).ok_or_else(|| overflow("tensor", name, dims))
}

/// Name, element type and static shape of a graph input, graph output or intermediate value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    /// Value name.
    pub name: String,
    /// Element type.
    pub dtype: DataType,
    /// Static dims, each >= 1 (written as `dim_value`). A decoded symbolic dim
    /// (`dim_param`) or unknown dim reads as -1, which [`Model::validate`] rejects.
    pub dims: Vec<i64>,
}

impl ValueInfo {
    /// Shorthand constructor.
    pub fn new(name: impl Into<String>, dtype: DataType, dims: Vec<i64>) -> Self {
        ValueInfo {
            name: name.into(),
            dtype,
            dims,
        }
    }
}

/// The value of a node attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `INT` attribute.
    Int(i64),
    /// `INTS` attribute.
    Ints(Vec<i64>),
    /// `FLOAT` attribute.
    Float(f32),
    /// `FLOATS` attribute.
    Floats(Vec<f32>),
    /// `STRING` attribute (UTF-8).
    Str(String),
}

/// A named node attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Attribute name (non-empty, unique within its node).
    pub name: String,
    /// Attribute value.
    pub value: AttrValue,
}

impl Attribute {
    /// An `INT` attribute.
    pub fn int(name: impl Into<String>, v: i64) -> Self {
        Attribute {
            name: name.into(),
            value: AttrValue::Int(v),
        }
    }

    /// An `INTS` attribute.
    pub fn ints(name: impl Into<String>, v: Vec<i64>) -> Self {
        Attribute {
            name: name.into(),
            value: AttrValue::Ints(v),
        }
    }

    /// A `FLOAT` attribute.
    pub fn float(name: impl Into<String>, v: f32) -> Self {
        Attribute {
            name: name.into(),
            value: AttrValue::Float(v),
        }
    }

    /// A `FLOATS` attribute.
    pub fn floats(name: impl Into<String>, v: Vec<f32>) -> Self {
        Attribute {
            name: name.into(),
            value: AttrValue::Floats(v),
        }
    }

    /// A `STRING` attribute.
    pub fn string(name: impl Into<String>, v: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: AttrValue::Str(v.into()),
        }
    }
}

/// One operator application in the default (`ai.onnx`) domain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// Node name (may be empty; non-empty names must be unique).
    pub name: String,
    /// Operator type, e.g. `"MatMul"`.
    pub op_type: String,
    /// Input value names; an empty string marks an omitted optional input.
    pub inputs: Vec<String>,
    /// Output value names (non-empty, unique in the graph).
    pub outputs: Vec<String>,
    /// Attributes, written in this order.
    pub attributes: Vec<Attribute>,
}

impl Node {
    /// A node without attributes.
    pub fn new(
        name: impl Into<String>,
        op_type: impl Into<String>,
        inputs: &[&str],
        outputs: &[&str],
    ) -> Self {
        Node {
            name: name.into(),
            op_type: op_type.into(),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            outputs: outputs.iter().map(|s| (*s).to_owned()).collect(),
            attributes: Vec::new(),
        }
    }

    /// Adds an attribute (builder style).
    pub fn with_attr(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }
}

/// A graph: inputs, outputs, initializers and topologically sorted nodes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// Graph name (non-empty; ONNX requires one).
    pub name: String,
    /// Graph inputs fed at run time (initializers are not listed here; the encoder adds them
    /// to the protobuf inputs itself when the IR version is 3).
    pub inputs: Vec<ValueInfo>,
    /// Graph outputs.
    pub outputs: Vec<ValueInfo>,
    /// Constant tensors.
    pub initializers: Vec<Tensor>,
    /// Nodes, in topological order.
    pub nodes: Vec<Node>,
    /// Optional shapes of intermediate values (node outputs).
    pub value_infos: Vec<ValueInfo>,
    /// Graph doc string (omitted when empty).
    pub doc: String,
}

/// A complete model: IR version, default-domain opset, producer info, metadata and graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// ONNX IR version (see [`ir_version_for_opset`]).
    pub ir_version: i64,
    /// Default-domain (`ai.onnx`) opset version.
    pub opset: i64,
    /// Producer name (omitted when empty).
    pub producer_name: String,
    /// Producer version (omitted when empty).
    pub producer_version: String,
    /// Model doc string (omitted when empty).
    pub doc: String,
    /// `metadata_props` key/value pairs, written in this order.
    pub metadata: Vec<(String, String)>,
    /// The main graph.
    pub graph: Graph,
}

impl Model {
    /// A model for `graph` at `opset`, with `ir_version = ir_version_for_opset(opset)`,
    /// producer `"onnx_export"` at this crate's version, no doc and no metadata.
    /// Fails only for an unsupported opset; call [`Model::validate`] to check the graph.
    pub fn new(graph: Graph, opset: i64) -> Result<Self, ExportError> {
        Ok(Model {
            ir_version: ir_version_for_opset(opset)?,
            opset,
            producer_name: "onnx_export".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            doc: String::new(),
            metadata: Vec::new(),
            graph,
        })
    }

    /// Checks the model structurally:
    /// * opset in [`MIN_OPSET`]`..=`[`MAX_OPSET`], and `ir_version` between
    ///   [`ir_version_for_opset`] and the IR version of [`MAX_OPSET`];
    /// * the graph has a name;
    /// * names of graph inputs, initializers and node outputs are non-empty and unique
    ///   (together), non-empty node names are unique, graph output names are unique;
    /// * every non-empty node input is a graph input, an initializer or an output of an
    ///   earlier node (topological order);
    /// * every graph output is produced (by a node, or is a graph input or initializer);
    /// * every value_info names a node output, at most once;
    /// * op types and attribute names are non-empty, attribute names unique per node;
    /// * initializer dims are >= 0 and `raw.len() == num_elements * size_bytes`;
    /// * dims of graph inputs, outputs and value infos are all >= 1 (static shapes).
    pub fn validate(&self) -> Result<(), ExportError> {
        validate::validate(self)
    }

    /// Validates, then serializes to `ModelProto` bytes. Deterministic: the same model always
    /// gives the same bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ExportError> {
        self.validate()?;
        codec::encode(self)
    }

    /// Parses `ModelProto` bytes. The inverse of [`Model::encode`]; it also accepts files
    /// written by other tools: typed tensor data (`float_data`, `int32_data`, `int64_data`,
    /// `double_data`) is converted to raw bytes, `dim_param` or missing dims read as -1,
    /// graph inputs that duplicate an initializer (IR < 4 style) are dropped, and value
    /// infos without a tensor type or shape are skipped. Unsupported content (non-default
    /// domains, tensor/graph/strings attributes, other element types, external data)
    /// is an error. The result is not validated; call [`Model::validate`] if needed.
    pub fn decode(bytes: &[u8]) -> Result<Model, ExportError> {
        codec::decode(bytes)
    }

    /// Distinct op types, in node order of first appearance.
    pub fn op_types(&self) -> Vec<String> {
        let mut seen = Vec::<String>::new();
        for n in &self.graph.nodes {
            if !seen.contains(&n.op_type) {
                seen.push(n.op_type.clone());
            }
        }
        seen
    }
}

/// The IR version a model must declare (at least) for a default-domain opset, following the
/// official ONNX release table (`onnx.helper.VERSION_TABLE`): opset 7–8 → 3, 9 → 4, 10 → 5,
/// 11 → 6, 12–14 → 7, 15–18 → 8, 19–20 → 9, 21–22 → 10, 23 → 11, 24 → 12.
/// Opsets outside [`MIN_OPSET`]`..=`[`MAX_OPSET`] are an error.
pub fn ir_version_for_opset(opset: i64) -> Result<i64, ExportError> {
    Ok(match opset {
        7 | 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19 | 20 => 9,
        21 | 22 => 10,
        23 => 11,
        24 => 12,
        _ => {
            return Err(ExportError::UnsupportedOpset {
                opset,
                min: MIN_OPSET,
                max: MAX_OPSET,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_type_codes_round_trip() {
        for d in DataType::ALL {
            assert_eq!(DataType::from_onnx_code(d.onnx_code()), Some(d));
        }
        assert_eq!(DataType::from_onnx_code(0), None);
        assert_eq!(DataType::from_onnx_code(8), None);
        assert_eq!(DataType::from_onnx_code(5), Some(DataType::I16));
        assert_eq!(DataType::I16.size_bytes(), 2);
        assert_eq!(DataType::I16.to_string(), "int16");
        assert_eq!(DataType::F16.to_string(), "float16");
        assert_eq!(DataType::BF16.size_bytes(), 2);
    }

    #[test]
    fn ir_table() {
        assert_eq!(ir_version_for_opset(7).unwrap(), 3);
        assert_eq!(ir_version_for_opset(13).unwrap(), 7);
        assert_eq!(ir_version_for_opset(17).unwrap(), 8);
        assert_eq!(ir_version_for_opset(21).unwrap(), 10);
        assert_eq!(ir_version_for_opset(24).unwrap(), 12);
        for bad in [6, 25, 0, -1] {
            let e = ir_version_for_opset(bad).unwrap_err().to_string();
            assert!(e.contains(&bad.to_string()) && e.contains("7..=24"), "{e}");
        }
    }

    #[test]
    fn tensor_constructors_check_length() {
        let e = Tensor::from_f32("w", vec![2, 3], &[1.0; 5]).unwrap_err();
        assert!(e.to_string().contains("'w'"), "{e}");
        assert!(e.to_string().contains("6 elements"), "{e}");
        let e = Tensor::from_i64("idx", vec![-1], &[]).unwrap_err();
        assert!(e.to_string().contains("'idx'"), "{e}");
        let e = Tensor::from_raw("r", DataType::F16, vec![3], vec![0; 5]).unwrap_err();
        assert!(
            e.to_string().contains("'r'") && e.to_string().contains("6"),
            "{e}"
        );
        let e = Tensor::from_f32("big", vec![i64::MAX, i64::MAX], &[]).unwrap_err();
        assert!(e.to_string().contains("overflow"), "{e}");
        let scalar = Tensor::from_i64("s", vec![], &[7]).unwrap();
        assert_eq!(scalar.num_elements(), 1);
        assert_eq!(scalar.to_i64_vec(), Some(vec![7]));
        let empty = Tensor::from_f32("e", vec![0, 4], &[]).unwrap();
        assert_eq!(empty.to_f32_vec(), Some(vec![]));
    }

    #[test]
    fn tensor_conversions() {
        let t = Tensor::from_f32("a", vec![3], &[1.5, -2.0, 0.25]).unwrap();
        assert_eq!(t.to_f32_vec(), Some(vec![1.5, -2.0, 0.25]));
        assert_eq!(t.to_i64_vec(), None);
        // 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal = 0x0001
        let h = Tensor::from_f16_bits("h", vec![2, 2], &[0x3C00, 0xC000, 0x7BFF, 0x0001]).unwrap();
        assert_eq!(h.raw.len(), 8);
        assert_eq!(
            h.to_f32_vec(),
            Some(vec![1.0, -2.0, 65504.0, 2f32.powi(-24)])
        );
        let b = Tensor::from_raw(
            "b",
            DataType::BF16,
            vec![1],
            0x3F80u16.to_le_bytes().to_vec(),
        )
        .unwrap();
        assert_eq!(b.to_f32_vec(), Some(vec![1.0]));
        let i = Tensor::from_i64("i", vec![2], &[-5, 1 << 40]).unwrap();
        assert_eq!(i.to_i64_vec(), Some(vec![-5, 1 << 40]));
        assert_eq!(i.to_f32_vec(), None);
        let i8t = Tensor::from_raw("q", DataType::I8, vec![2], vec![0xFF, 3]).unwrap();
        assert_eq!(i8t.to_i64_vec(), Some(vec![-1, 3]));
        let i16t = Tensor::from_i16("s", vec![3], &[-32768, 1, 32767]).unwrap();
        assert_eq!(i16t.raw, vec![0x00, 0x80, 0x01, 0x00, 0xFF, 0x7F]);
        assert_eq!(i16t.to_i64_vec(), Some(vec![-32768, 1, 32767]));
        assert_eq!(
            Tensor::from_i8("b", vec![2], &[-1, 3]).unwrap().raw,
            vec![0xFF, 3]
        );
        let u8t = Tensor::from_raw("u", DataType::U8, vec![2], vec![0xFF, 3]).unwrap();
        assert_eq!(u8t.to_i64_vec(), Some(vec![255, 3]));
        let mut broken = t.clone();
        broken.raw.pop();
        assert_eq!(broken.to_f32_vec(), None);
    }

    #[test]
    fn op_types_in_first_appearance_order() {
        let mut g = Graph::default();
        for (i, op) in ["MatMul", "Add", "MatMul", "Reshape", "Add"]
            .iter()
            .enumerate()
        {
            g.nodes.push(Node::new(format!("n{i}"), *op, &[], &[]));
        }
        let m = Model::new(g, 13).unwrap();
        assert_eq!(m.op_types(), vec!["MatMul", "Add", "Reshape"]);
    }
}
