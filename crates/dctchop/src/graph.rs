//! Lowering a plan's [`Program`]s to ONNX models (through the DCT-agnostic `onnx_export` crate),
//! and reading the self-description back.

use onnx_export::{AttrValue, Attribute, DataType, Graph, Model, Node, Tensor, ValueInfo};

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::plan::{Plan, Program, Step};
use crate::quant::{CodeType, Quant};
use crate::spec::{Dtype, Spec, OPSET_RANGE};

/// Which of the two graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Compress,
    Decompress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Compress => "compress",
            Direction::Decompress => "decompress",
        }
    }
    /// (input name, output name): compress `x → y`, decompress `y → x`.
    pub fn io_names(self) -> (&'static str, &'static str) {
        match self {
            Direction::Compress => ("x", "y"),
            Direction::Decompress => ("y", "x"),
        }
    }
}

/// Metadata keys written into every graph's `metadata_props`.
pub mod meta {
    pub const SPEC: &str = "dctchop.spec";
    pub const CHUNK_SPEC: &str = "dctchop.chunk_spec";
    pub const GRAPH: &str = "dctchop.graph";
    pub const LAYOUT: &str = "dctchop.layout";
    pub const RATIO: &str = "dctchop.compression_ratio";
    pub const TILE: &str = "dctchop.tile";
    pub const PADDING: &str = "dctchop.padding";
    pub const VERSION: &str = "dctchop.version";
    /// Only in the graphs of a quantized spec: the [`crate::quant::Quant`] as JSON (the same as
    /// the spec's `quant` field).
    pub const QUANT: &str = "dctchop.quant";
}

pub const PRODUCER: &str = "dctchop";
pub const PADDING_RULE: &str = "mirror-symmetric (half-sample), cropped on decompress";

fn onnx_dtype(d: Dtype) -> DataType {
    match d {
        Dtype::F32 => DataType::F32,
        Dtype::F16 => DataType::F16,
    }
}

/// The ONNX type of integer codes.
pub fn code_dtype(c: CodeType) -> DataType {
    match c {
        CodeType::I8 => DataType::I8,
        CodeType::I16 => DataType::I16,
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn matrix_tensor(name: String, w: &ndarray::Array2<f64>, dtype: Dtype) -> Result<Tensor> {
    let shape = vec![w.nrows() as i64, w.ncols() as i64];
    // Matrices are built in f64 and rounded once, here.
    let data = w.as_standard_layout();
    let slice = data.as_slice().expect("standard layout");
    Ok(match dtype {
        Dtype::F32 => {
            let v: Vec<f32> = slice.iter().map(|&x| x as f32).collect();
            Tensor::from_f32(name, shape, &v)?
        }
        Dtype::F16 => {
            let v: Vec<u16> = slice
                .iter()
                .map(|&x| half::f16::from_f64(x).to_bits())
                .collect();
            Tensor::from_f16_bits(name, shape, &v)?
        }
    })
}

/// Build the ONNX model of one program.
pub fn program_to_model(
    program: &Program,
    direction: Direction,
    dtype: Dtype,
    opset: i64,
    metadata: Vec<(String, String)>,
) -> Result<Model> {
    if !OPSET_RANGE.contains(&opset) {
        return Err(Error::invalid_option(
            "opset",
            opset,
            format!("{}..={}", OPSET_RANGE.start(), OPSET_RANGE.end()),
        ));
    }
    let (in_name, out_name) = direction.io_names();
    let shapes = program.shapes();
    let elem = onnx_dtype(dtype);
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut value_infos = Vec::new();
    let mut cur = in_name.to_string();
    let last = program.steps.len();
    for (i, step) in program.steps.iter().enumerate() {
        let out = if i + 1 == last {
            out_name.to_string()
        } else {
            format!("t{i}")
        };
        let node = match step {
            Step::Gather { axis, indices } => {
                let iname = format!("idx{i}");
                inits.push(Tensor::from_i64(
                    iname.clone(),
                    vec![indices.len() as i64],
                    indices,
                )?);
                Node {
                    name: format!("gather{i}"),
                    op_type: "Gather".into(),
                    inputs: vec![cur.clone(), iname],
                    outputs: vec![out.clone()],
                    attributes: vec![Attribute {
                        name: "axis".into(),
                        value: AttrValue::Int(*axis as i64),
                    }],
                }
            }
            Step::Reshape { shape } => {
                let sname = format!("shape{i}");
                inits.push(Tensor::from_i64(
                    sname.clone(),
                    vec![shape.len() as i64],
                    &dims(shape),
                )?);
                Node {
                    name: format!("reshape{i}"),
                    op_type: "Reshape".into(),
                    inputs: vec![cur.clone(), sname],
                    outputs: vec![out.clone()],
                    attributes: vec![],
                }
            }
            Step::MatMulRight { w } | Step::MatMulLeft { w } => {
                let wname = format!("w{i}");
                inits.push(matrix_tensor(wname.clone(), w, dtype)?);
                let inputs = if matches!(step, Step::MatMulRight { .. }) {
                    vec![cur.clone(), wname]
                } else {
                    vec![wname, cur.clone()]
                };
                Node {
                    name: format!("matmul{i}"),
                    op_type: "MatMul".into(),
                    inputs,
                    outputs: vec![out.clone()],
                    attributes: vec![],
                }
            }
            Step::Cast { .. } => Node {
                name: format!("cast{i}"),
                op_type: "Cast".into(),
                inputs: vec![cur.clone()],
                outputs: vec![out.clone()],
                attributes: vec![Attribute {
                    name: "to".into(),
                    value: AttrValue::Int(elem.onnx_code() as i64),
                }],
            },
        };
        nodes.push(node);
        if i + 1 != last {
            value_infos.push(ValueInfo {
                name: out.clone(),
                dtype: elem,
                dims: dims(&shapes[i + 1]),
            });
        }
        cur = out;
    }
    assert!(!program.steps.is_empty(), "plans always have steps");
    let graph = Graph {
        name: format!("dctchop_{}", direction.as_str()),
        inputs: vec![ValueInfo {
            name: in_name.into(),
            dtype: program.input_code().map(code_dtype).unwrap_or(elem),
            dims: dims(&program.input),
        }],
        outputs: vec![ValueInfo {
            name: out_name.into(),
            dtype: elem,
            dims: dims(shapes.last().expect("non-empty")),
        }],
        initializers: inits,
        nodes,
        value_infos,
        doc: String::new(),
    };
    let mut model = Model::new(graph, opset)?;
    model.producer_name = PRODUCER.into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    model.doc = format!(
        "DCT+Chop {} graph generated by dctchop {}",
        direction.as_str(),
        env!("CARGO_PKG_VERSION")
    );
    model.metadata = metadata;
    Ok(model)
}

/// The metadata every graph of `plan` carries: full spec, chunk spec, layout, ratio, version,
/// and for a quantized spec the quant.
pub fn plan_metadata(plan: &Plan, direction: Direction) -> Vec<(String, String)> {
    let to_json = |s: &Spec| serde_json::to_string(s).expect("spec serializes");
    let mut m = vec![
        (meta::GRAPH.into(), direction.as_str().into()),
        (meta::SPEC.into(), to_json(&plan.spec)),
        (meta::CHUNK_SPEC.into(), to_json(&plan.chunk)),
        (meta::LAYOUT.into(), plan.spec.layout_name().into()),
        (
            meta::RATIO.into(),
            format!("{}", plan.spec.compression_ratio()),
        ),
        (meta::TILE.into(), plan.tile_label()),
        (meta::PADDING.into(), PADDING_RULE.into()),
        (meta::VERSION.into(), env!("CARGO_PKG_VERSION").into()),
    ];
    if let Some(q) = &plan.spec.quant {
        m.push((
            meta::QUANT.into(),
            serde_json::to_string(q).expect("quant serializes"),
        ));
    }
    m
}

impl Plan {
    /// The ONNX model of one direction at `opset`.
    pub fn model(&self, direction: Direction, opset: i64) -> Result<Model> {
        let program = match direction {
            Direction::Compress => &self.compress,
            Direction::Decompress => &self.decompress,
        };
        program_to_model(
            program,
            direction,
            self.spec.dtype,
            opset,
            plan_metadata(self, direction),
        )
    }
}

/// Read the dctchop spec back from a model's metadata, quant included (None for foreign models).
///
/// The quantization metadata must agree with itself and with the graph, else this is a
/// [`Error::Corrupt`] naming the key: `dctchop.quant` present exactly when the spec has a quant
/// and equal to it; a valid spec; and a decompress graph whose input is the quant's code type
/// (float for an unquantized spec), a compress graph with a float input.
pub fn spec_from_model(model: &Model) -> Result<Option<Spec>> {
    let corrupt = |m: String| Error::corrupt("<ONNX model>", m);
    let get = |k: &str| model.metadata.iter().find(|(key, _)| key == k);
    let Some((_, json)) = get(meta::SPEC) else {
        return Ok(None);
    };
    let spec: Spec = serde_json::from_str(json).map_err(|e| {
        corrupt(format!(
            "metadata '{}' is not a valid spec: {e}",
            meta::SPEC
        ))
    })?;
    let quant: Option<Quant> = match get(meta::QUANT) {
        None => None,
        Some((_, q)) => Some(serde_json::from_str(q).map_err(|e| {
            corrupt(format!(
                "metadata '{}' is not a valid quant: {e}",
                meta::QUANT
            ))
        })?),
    };
    if quant != spec.quant {
        let show = |q: &Option<Quant>| match q {
            Some(q) => serde_json::to_string(q).expect("quant serializes"),
            None => "absent".into(),
        };
        return Err(corrupt(format!(
            "metadata '{}' ({}) contradicts the quant of '{}' ({})",
            meta::QUANT,
            show(&quant),
            meta::SPEC,
            show(&spec.quant)
        )));
    }
    spec.validate().map_err(|e| {
        corrupt(format!(
            "metadata '{}' is not a valid spec: {e}",
            meta::SPEC
        ))
    })?;
    let graph = get(meta::GRAPH).map(|(_, g)| g.as_str());
    if let (Some(g), [input]) = (graph, &model.graph.inputs[..]) {
        let want = match (g, &spec.quant) {
            ("decompress", Some(q)) => code_dtype(q.code),
            _ => onnx_dtype(spec.dtype),
        };
        if input.dtype != want {
            let what = match &spec.quant {
                Some(q) => format!("quantized with {} codes", q.code.numpy_name()),
                None => "not quantized".into(),
            };
            return Err(corrupt(format!(
                "{g} graph input '{}' is {}, but its metadata '{}' is {what}, so the input must \
                 be {want}",
                input.name,
                input.dtype,
                meta::SPEC
            )));
        }
    }
    Ok(Some(spec))
}

/// The only ops a dctchop graph contains (plus [`CAST`] in a quantized decompress graph).
pub const OPS: [&str; 3] = ["MatMul", "Gather", "Reshape"];

/// The op a quantized decompress graph adds to [`OPS`]: one Cast of the codes at the input.
pub const CAST: &str = "Cast";

/// A graph input or output as `inspect` reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IoInfo {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<i64>,
}

/// What `dctchop inspect` reports of an ONNX file: its producer, dctchop metadata (absent for
/// foreign models), inputs, outputs, op counts and constant size.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GraphInfo {
    pub file: std::path::PathBuf,
    pub producer: String,
    pub ir_version: i64,
    pub opset: i64,
    /// `compress` or `decompress` (dctchop metadata).
    pub graph: Option<String>,
    pub spec: Option<Spec>,
    /// The quantization (dctchop metadata of a quantized spec).
    pub quant: Option<Quant>,
    pub layout: Option<String>,
    pub tile: Option<String>,
    pub compression_ratio: Option<f64>,
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    /// Op type → node count.
    pub ops: std::collections::BTreeMap<String, usize>,
    pub nodes: usize,
    pub constant_bytes: usize,
}

impl GraphInfo {
    /// Read and describe the ONNX file at `path`. A graph of the ops [`crate::graph_check`]
    /// knows is checked (shapes consistent, Gather indices in range; no memory budget); one with
    /// other ops is described as it is ([`GraphInfo::foreign_ops`]).
    pub fn read(path: &std::path::Path) -> Result<GraphInfo> {
        let bytes = read_regular(path, None)?;
        Self::from_bytes(path, &bytes)
    }

    /// [`GraphInfo::read`] of bytes already read (`path` names them in messages).
    pub fn from_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<GraphInfo> {
        let model = Model::decode(bytes)
            .map_err(|e| Error::unsupported(path, format!("not a readable ONNX model: {e}")))?;
        let known = model
            .graph
            .nodes
            .iter()
            .all(|n| crate::graph_check::KNOWN_OPS.contains(&n.op_type.as_str()));
        if known {
            crate::graph_check::check(&model, path, bytes.len() as u64, None)?;
        }
        let spec = spec_from_model(&model).map_err(|e| match e {
            Error::Corrupt { message, .. } => Error::corrupt(path, message),
            other => other,
        })?;
        let get = |k: &str| {
            model
                .metadata
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let io = |v: &[ValueInfo]| -> Vec<IoInfo> {
            v.iter()
                .map(|vi| IoInfo {
                    name: vi.name.clone(),
                    dtype: vi.dtype.name(),
                    shape: vi.dims.clone(),
                })
                .collect()
        };
        let mut ops = std::collections::BTreeMap::new();
        for n in &model.graph.nodes {
            *ops.entry(n.op_type.clone()).or_default() += 1;
        }
        Ok(GraphInfo {
            file: path.to_path_buf(),
            producer: format!("{} {}", model.producer_name, model.producer_version),
            ir_version: model.ir_version,
            opset: model.opset,
            graph: get(meta::GRAPH),
            quant: spec.as_ref().and_then(|s| s.quant.clone()),
            spec,
            layout: get(meta::LAYOUT),
            tile: get(meta::TILE),
            compression_ratio: get(meta::RATIO).and_then(|r| r.parse().ok()),
            inputs: io(&model.graph.inputs),
            outputs: io(&model.graph.outputs),
            ops,
            nodes: model.graph.nodes.len(),
            constant_bytes: model.graph.initializers.iter().map(|t| t.raw.len()).sum(),
        })
    }

    /// The ops this graph may hold: [`OPS`], plus [`CAST`] when it is a quantized decompress
    /// graph (by its metadata).
    pub fn allowed_ops(&self) -> Vec<&'static str> {
        let mut ops = OPS.to_vec();
        if self.quant.is_some() && self.graph.as_deref() == Some(Direction::Decompress.as_str()) {
            ops.push(CAST);
        }
        ops
    }

    /// Op types outside [`GraphInfo::allowed_ops`], if any.
    pub fn foreign_ops(&self) -> Vec<&str> {
        let allowed = self.allowed_ops();
        self.ops
            .keys()
            .map(String::as_str)
            .filter(|op| !allowed.contains(op))
            .collect()
    }
}

/// The bytes of the regular file `path` (a FIFO or device is refused rather than read), its
/// size first checked against `budget` when given.
fn read_regular(path: &std::path::Path, budget: Option<Budget>) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::unsupported(
            path,
            "is not a regular file; pass an .onnx file",
        ));
    }
    if let Some(b) = budget {
        b.check(path, "reading this file", Some(meta.len()), "")?;
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// One tensor of a [`GraphFile`]: its name, element type and static shape.
#[derive(Clone, Debug)]
pub struct Port {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

/// An ONNX file that `dctchop run` can execute: exactly one input and one output with static
/// shapes, both float32 or both float16, or (a quantized decompress graph) an int8/int16 input
/// and a float32/float16 output. Any such graph qualifies, not only dctchop's; a dctchop graph's
/// metadata must also agree with the graph ([`spec_from_model`]).
#[derive(Clone, Debug)]
pub struct GraphFile {
    pub path: std::path::PathBuf,
    pub bytes: Vec<u8>,
    /// The input; for a code input, `dtype` is the float type the graph casts the codes to.
    pub input: Port,
    pub output: Port,
    /// The integer code type the input takes, when it is not float.
    pub codes: Option<CodeType>,
    /// The dctchop spec, when the graph has dctchop metadata.
    pub spec: Option<Spec>,
    /// Which graph of the pair it is, by its dctchop metadata.
    pub direction: Option<Direction>,
}

impl GraphFile {
    /// Read and check the graph at `path` within the default [`Budget`].
    pub fn read(path: &std::path::Path) -> Result<GraphFile> {
        Self::read_within(path, Budget::default())
    }

    /// Read the graph at `path` and check it ([`crate::graph_check::check`]: only known ops,
    /// consistent shapes, Gather indices in range, a run within `budget`), so that no engine
    /// is handed a graph it could panic or abort on.
    pub fn read_within(path: &std::path::Path, budget: Budget) -> Result<GraphFile> {
        let bytes = read_regular(path, Some(budget))?;
        let model = Model::decode(&bytes)
            .map_err(|e| Error::unsupported(path, format!("not a readable ONNX model: {e}")))?;
        crate::graph_check::check(&model, path, bytes.len() as u64, Some(budget))?;
        let spec = spec_from_model(&model).map_err(|e| match e {
            Error::Corrupt { message, .. } => Error::corrupt(path, message),
            other => other,
        })?;
        let bad = |m: String| Error::unsupported(path, m);
        let (inp, outp) = match (&model.graph.inputs[..], &model.graph.outputs[..]) {
            ([i], [o]) => (i, o),
            (i, o) => {
                return Err(bad(format!(
                    "has {} inputs and {} outputs; `run` needs exactly one of each",
                    i.len(),
                    o.len()
                )))
            }
        };
        let dtype = match outp.dtype {
            DataType::F32 => Dtype::F32,
            DataType::F16 => Dtype::F16,
            other => {
                return Err(bad(format!(
                    "output '{}' is {other}; `run` takes graphs with a float32 or float16 output",
                    outp.name
                )))
            }
        };
        let codes = match inp.dtype {
            DataType::I8 => Some(CodeType::I8),
            DataType::I16 => Some(CodeType::I16),
            d if d == outp.dtype => None,
            other => {
                return Err(bad(format!(
                    "input '{}' is {other} but output '{}' is {}; `run` needs the input of the \
                     output's dtype, or int8/int16 codes",
                    inp.name, outp.name, outp.dtype
                )))
            }
        };
        let port = |vi: &ValueInfo, what: &str| -> Result<Port> {
            let shape = vi
                .dims
                .iter()
                .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| {
                    bad(format!(
                        "{what} '{}' has no static shape ({:?})",
                        vi.name, vi.dims
                    ))
                })?;
            Ok(Port {
                name: vi.name.clone(),
                dtype,
                shape,
            })
        };
        Ok(GraphFile {
            path: path.to_path_buf(),
            input: port(inp, "input")?,
            output: port(outp, "output")?,
            codes,
            spec,
            direction: model
                .metadata
                .iter()
                .find(|(k, _)| k == meta::GRAPH)
                .and_then(|(_, v)| match v.as_str() {
                    "compress" => Some(Direction::Compress),
                    "decompress" => Some(Direction::Decompress),
                    _ => None,
                }),
            bytes,
        })
    }

    /// What the input takes, as numpy names it: `int8`, `int16`, `float32` or `float16`.
    pub fn input_type_name(&self) -> &'static str {
        match self.codes {
            Some(c) => c.numpy_name(),
            None => self.input.dtype.numpy_name(),
        }
    }
}
