//! Lowering a plan's [`Program`]s to ONNX models (through the DCT-agnostic `onnx_export` crate),
//! and reading the self-description back.

use onnx_export::{AttrValue, Attribute, DataType, Graph, Model, Node, Tensor, ValueInfo};

use crate::error::{Error, Result};
use crate::plan::{Plan, Program, Step};
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
}

pub const PRODUCER: &str = "dctchop";
pub const PADDING_RULE: &str = "mirror-symmetric (half-sample), cropped on decompress";

fn onnx_dtype(d: Dtype) -> DataType {
    match d {
        Dtype::F32 => DataType::F32,
        Dtype::F16 => DataType::F16,
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
            dtype: elem,
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

/// The metadata every graph of `plan` carries: full spec, chunk spec, layout, ratio, version.
pub fn plan_metadata(plan: &Plan, direction: Direction) -> Vec<(String, String)> {
    let to_json = |s: &Spec| serde_json::to_string(s).expect("spec serializes");
    vec![
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
    ]
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

/// Read the dctchop spec back from a model's metadata (None for foreign models).
pub fn spec_from_model(model: &Model) -> Result<Option<Spec>> {
    let Some((_, json)) = model.metadata.iter().find(|(k, _)| k == meta::SPEC) else {
        return Ok(None);
    };
    serde_json::from_str(json).map(Some).map_err(|e| {
        Error::corrupt(
            "<ONNX model>",
            format!("metadata '{}' is not a valid spec: {e}", meta::SPEC),
        )
    })
}

/// The only ops a dctchop graph contains.
pub const OPS: [&str; 3] = ["MatMul", "Gather", "Reshape"];

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
    /// Read and describe the ONNX file at `path`.
    pub fn read(path: &std::path::Path) -> Result<GraphInfo> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let model = Model::decode(&bytes)
            .map_err(|e| Error::unsupported(path, format!("not a readable ONNX model: {e}")))?;
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

    /// Op types outside [`OPS`], if any.
    pub fn foreign_ops(&self) -> Vec<&str> {
        self.ops
            .keys()
            .map(String::as_str)
            .filter(|op| !OPS.contains(op))
            .collect()
    }
}

/// One tensor of a [`GraphFile`]: its name, element type and static shape.
#[derive(Clone, Debug)]
pub struct Port {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

/// An ONNX file that `dctchop run` can execute: exactly one input and one output, both float32
/// or both float16, with static shapes. Any such graph qualifies, not only dctchop's.
#[derive(Clone, Debug)]
pub struct GraphFile {
    pub path: std::path::PathBuf,
    pub bytes: Vec<u8>,
    pub input: Port,
    pub output: Port,
}

impl GraphFile {
    pub fn read(path: &std::path::Path) -> Result<GraphFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let model = Model::decode(&bytes)
            .map_err(|e| Error::unsupported(path, format!("not a readable ONNX model: {e}")))?;
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
        let dtype = match inp.dtype {
            DataType::F32 => Dtype::F32,
            DataType::F16 => Dtype::F16,
            other => {
                return Err(bad(format!(
                    "input '{}' is {other}; `run` takes float32 or float16 graphs",
                    inp.name
                )))
            }
        };
        if outp.dtype != inp.dtype {
            return Err(bad(format!(
                "input '{}' is {} but output '{}' is {}; `run` needs one dtype",
                inp.name, inp.dtype, outp.name, outp.dtype
            )));
        }
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
            bytes,
        })
    }
}
