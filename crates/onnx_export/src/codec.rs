//! Conversion between the public types and the protobuf mirrors.

use prost::Message;

use crate::proto::{
    self, attribute_type as at, tensor_shape_proto::dimension, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::validate::node_label;
use crate::{AttrValue, Attribute, DataType, ExportError, Graph, Model, Node, Tensor, ValueInfo};

/// Largest message a protobuf parser accepts (2 GiB - 1).
const MAX_PROTO_BYTES: usize = i32::MAX as usize;

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn value_info_to_proto(v: &ValueInfo) -> ValueInfoProto {
    let dim = v
        .dims
        .iter()
        .map(|&d| proto::tensor_shape_proto::Dimension {
            value: Some(dimension::Value::DimValue(d)),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(v.name.clone()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(v.dtype.onnx_code()),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        doc_string: None,
    }
}

fn tensor_to_proto(t: &Tensor) -> TensorProto {
    TensorProto {
        dims: t.dims.clone(),
        data_type: Some(t.dtype.onnx_code()),
        name: Some(t.name.clone()),
        raw_data: Some(t.raw.clone()),
        ..TensorProto::default()
    }
}

fn attribute_to_proto(a: &Attribute) -> AttributeProto {
    let mut p = AttributeProto {
        name: Some(a.name.clone()),
        ..AttributeProto::default()
    };
    match &a.value {
        AttrValue::Int(v) => {
            p.r#type = Some(at::INT);
            p.i = Some(*v);
        }
        AttrValue::Ints(v) => {
            p.r#type = Some(at::INTS);
            p.ints = v.clone();
        }
        AttrValue::Float(v) => {
            p.r#type = Some(at::FLOAT);
            p.f = Some(*v);
        }
        AttrValue::Floats(v) => {
            p.r#type = Some(at::FLOATS);
            p.floats = v.clone();
        }
        AttrValue::Str(v) => {
            p.r#type = Some(at::STRING);
            p.s = Some(v.as_bytes().to_vec());
        }
    }
    p
}

fn node_to_proto(n: &Node) -> NodeProto {
    NodeProto {
        input: n.inputs.clone(),
        output: n.outputs.clone(),
        name: non_empty(&n.name),
        op_type: Some(n.op_type.clone()),
        domain: None,
        attribute: n.attributes.iter().map(attribute_to_proto).collect(),
        doc_string: None,
    }
}

/// IR versions below 4 require every initializer to be listed among the graph inputs too.
const IR_VERSION_INITIALIZERS_OPTIONAL_IN_INPUTS: i64 = 4;

fn graph_to_proto(g: &Graph, ir_version: i64) -> GraphProto {
    let mut input: Vec<ValueInfoProto> = g.inputs.iter().map(value_info_to_proto).collect();
    if ir_version < IR_VERSION_INITIALIZERS_OPTIONAL_IN_INPUTS {
        input.extend(g.initializers.iter().map(|t| {
            value_info_to_proto(&ValueInfo::new(t.name.clone(), t.dtype, t.dims.clone()))
        }));
    }
    GraphProto {
        node: g.nodes.iter().map(node_to_proto).collect(),
        name: Some(g.name.clone()),
        initializer: g.initializers.iter().map(tensor_to_proto).collect(),
        doc_string: non_empty(&g.doc),
        input,
        output: g.outputs.iter().map(value_info_to_proto).collect(),
        value_info: g.value_infos.iter().map(value_info_to_proto).collect(),
    }
}

fn model_to_proto(m: &Model) -> ModelProto {
    ModelProto {
        ir_version: Some(m.ir_version),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(m.opset),
        }],
        producer_name: non_empty(&m.producer_name),
        producer_version: non_empty(&m.producer_version),
        domain: None,
        model_version: None,
        doc_string: non_empty(&m.doc),
        graph: Some(graph_to_proto(&m.graph, m.ir_version)),
        metadata_props: m
            .metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
    }
}

/// Serializes without validating (the caller validates).
pub(crate) fn encode(m: &Model) -> Result<Vec<u8>, ExportError> {
    let p = model_to_proto(m);
    let bytes = p.encoded_len();
    if bytes > MAX_PROTO_BYTES {
        return Err(ExportError::TooLarge { bytes });
    }
    Ok(p.encode_to_vec())
}

fn unsupported(msg: String) -> ExportError {
    ExportError::Unsupported(msg)
}

fn is_default_domain(d: Option<&str>) -> bool {
    matches!(d, None | Some("") | Some("ai.onnx"))
}

fn dtype_from_code(
    code: Option<i32>,
    what: impl FnOnce() -> String,
) -> Result<DataType, ExportError> {
    let code = code.unwrap_or(0);
    DataType::from_onnx_code(code).ok_or_else(|| {
        unsupported(format!(
            "{} has element type code {code}, which is not supported",
            what()
        ))
    })
}

fn tensor_from_proto(t: TensorProto) -> Result<Tensor, ExportError> {
    let name = t.name.unwrap_or_default();
    if t.data_location == Some(1) {
        return Err(unsupported(format!(
            "tensor '{name}' keeps its data in an external file, which is not supported"
        )));
    }
    let dtype = dtype_from_code(t.data_type, || format!("tensor '{name}'"))?;
    let raw = match t.raw_data {
        Some(raw) if !raw.is_empty() => raw,
        raw => {
            let typed: Vec<u8> = match dtype {
                DataType::F32 => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                DataType::F64 => t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                DataType::I64 => t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                DataType::I32 => t.int32_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                // 8- and 16-bit integers are stored one per int32 element; 16-bit floats as their
                // bit patterns in the low 16 bits of int32_data.
                DataType::U8 | DataType::I8 => t.int32_data.iter().map(|&v| v as u8).collect(),
                DataType::I16 => t
                    .int32_data
                    .iter()
                    .flat_map(|&v| (v as i16).to_le_bytes())
                    .collect(),
                DataType::F16 | DataType::BF16 => t
                    .int32_data
                    .iter()
                    .flat_map(|&v| (v as u16).to_le_bytes())
                    .collect(),
            };
            if typed.is_empty() {
                raw.unwrap_or_default()
            } else {
                typed
            }
        }
    };
    Tensor::from_raw(name, dtype, t.dims, raw)
}

/// `Ok(None)` when the value info has no tensor type or no shape.
fn value_info_from_proto(v: ValueInfoProto) -> Result<Option<ValueInfo>, ExportError> {
    let name = v.name.unwrap_or_default();
    let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(tt)),
        ..
    }) = v.r#type
    else {
        return Ok(None);
    };
    let dtype = dtype_from_code(tt.elem_type, || format!("value '{name}'"))?;
    let Some(shape) = tt.shape else {
        return Ok(None);
    };
    let dims = shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) => v,
            Some(dimension::Value::DimParam(_)) | None => -1,
        })
        .collect();
    Ok(Some(ValueInfo { name, dtype, dims }))
}

fn required_value_info(v: ValueInfoProto, what: &str) -> Result<ValueInfo, ExportError> {
    let name = v.name.clone().unwrap_or_default();
    value_info_from_proto(v)?.ok_or_else(|| {
        unsupported(format!(
            "{what} '{name}' has no tensor type with a shape (unknown rank is not supported)"
        ))
    })
}

fn attribute_from_proto(a: AttributeProto, node: &str) -> Result<Attribute, ExportError> {
    let name = a.name.unwrap_or_default();
    let fail = |what: &str| {
        unsupported(format!(
            "node '{node}' attribute '{name}' {what}, which is not supported"
        ))
    };
    if a.ref_attr_name.is_some() {
        return Err(fail("refers to a function attribute"));
    }
    let ty = match a.r#type {
        Some(t) if t != 0 => t,
        // Very old files have no type field: infer it from the field that is set.
        _ if a.f.is_some() => at::FLOAT,
        _ if a.i.is_some() => at::INT,
        _ if a.s.is_some() => at::STRING,
        _ if a.t.is_some() => at::TENSOR,
        _ if !a.floats.is_empty() => at::FLOATS,
        _ if !a.ints.is_empty() => at::INTS,
        _ if !a.strings.is_empty() => at::STRINGS,
        _ => return Err(fail("has no type and no value")),
    };
    let value = match ty {
        at::INT => AttrValue::Int(a.i.unwrap_or_default()),
        at::INTS => AttrValue::Ints(a.ints),
        at::FLOAT => AttrValue::Float(a.f.unwrap_or_default()),
        at::FLOATS => AttrValue::Floats(a.floats),
        at::STRING => AttrValue::Str(
            String::from_utf8(a.s.unwrap_or_default())
                .map_err(|_| fail("is a string that is not valid UTF-8"))?,
        ),
        at::TENSOR => return Err(fail("is a tensor")),
        at::GRAPH | at::GRAPHS => return Err(fail("is a graph")),
        at::STRINGS => return Err(fail("is a list of strings")),
        at::TENSORS => return Err(fail("is a list of tensors")),
        other => return Err(fail(&format!("has attribute type {other}"))),
    };
    Ok(Attribute { name, value })
}

fn node_from_proto(n: NodeProto, index: usize) -> Result<Node, ExportError> {
    let name = n.name.unwrap_or_default();
    let label = node_label(&name, index);
    if !is_default_domain(n.domain.as_deref()) {
        return Err(unsupported(format!(
            "node '{label}' is in domain '{}'; only the default ai.onnx domain is supported",
            n.domain.unwrap_or_default()
        )));
    }
    let attributes = n
        .attribute
        .into_iter()
        .map(|a| attribute_from_proto(a, &label))
        .collect::<Result<_, _>>()?;
    Ok(Node {
        name,
        op_type: n.op_type.unwrap_or_default(),
        inputs: n.input,
        outputs: n.output,
        attributes,
    })
}

fn graph_from_proto(g: GraphProto) -> Result<Graph, ExportError> {
    let initializers = g
        .initializer
        .into_iter()
        .map(tensor_from_proto)
        .collect::<Result<Vec<_>, _>>()?;
    let mut inputs = Vec::with_capacity(g.input.len());
    for v in g.input {
        // Files from IR < 4 list initializers among the graph inputs as well.
        if initializers
            .iter()
            .any(|t| Some(&t.name) == v.name.as_ref())
        {
            continue;
        }
        inputs.push(required_value_info(v, "graph input")?);
    }
    let outputs = g
        .output
        .into_iter()
        .map(|v| required_value_info(v, "graph output"))
        .collect::<Result<_, _>>()?;
    let mut value_infos = Vec::with_capacity(g.value_info.len());
    for v in g.value_info {
        if let Some(v) = value_info_from_proto(v)? {
            value_infos.push(v);
        }
    }
    let nodes = g
        .node
        .into_iter()
        .enumerate()
        .map(|(i, n)| node_from_proto(n, i))
        .collect::<Result<_, _>>()?;
    Ok(Graph {
        name: g.name.unwrap_or_default(),
        inputs,
        outputs,
        initializers,
        nodes,
        value_infos,
        doc: g.doc_string.unwrap_or_default(),
    })
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Model, ExportError> {
    let p = ModelProto::decode(bytes)?;
    let opset = p
        .opset_import
        .iter()
        .find(|o| is_default_domain(o.domain.as_deref()))
        .map(|o| o.version.unwrap_or_default())
        .ok_or_else(|| unsupported("the model imports no default-domain (ai.onnx) opset".into()))?;
    let graph = p
        .graph
        .ok_or_else(|| unsupported("the model has no graph".into()))?;
    Ok(Model {
        ir_version: p.ir_version.unwrap_or_default(),
        opset,
        producer_name: p.producer_name.unwrap_or_default(),
        producer_version: p.producer_version.unwrap_or_default(),
        doc: p.doc_string.unwrap_or_default(),
        metadata: p
            .metadata_props
            .into_iter()
            .map(|e| (e.key.unwrap_or_default(), e.value.unwrap_or_default()))
            .collect(),
        graph: graph_from_proto(graph)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vi(name: &str, dims: Vec<i64>) -> ValueInfoProto {
        value_info_to_proto(&ValueInfo::new(name, DataType::F32, dims))
    }

    /// A model written the way other tools may write it: typed data fields, initializers
    /// listed as inputs, dim_param, attributes without a type field.
    #[test]
    fn decode_foreign_conventions() {
        let mut x = vi("x", vec![1, 4]);
        if let Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tt)),
            ..
        }) = &mut x.r#type
        {
            tt.shape.as_mut().unwrap().dim[0].value =
                Some(dimension::Value::DimParam("batch".into()));
        }
        let w = TensorProto {
            dims: vec![4, 2],
            data_type: Some(1),
            float_data: (0..8).map(|v| v as f32).collect(),
            name: Some("w".into()),
            ..Default::default()
        };
        let idx = TensorProto {
            dims: vec![2],
            data_type: Some(7),
            int64_data: vec![1, 0],
            name: Some("idx".into()),
            ..Default::default()
        };
        let h = TensorProto {
            dims: vec![2],
            data_type: Some(10),
            int32_data: vec![0x3C00, 0xC000],
            name: Some("h".into()),
            ..Default::default()
        };
        let q = TensorProto {
            dims: vec![2],
            data_type: Some(3),
            int32_data: vec![-1, 5],
            name: Some("q".into()),
            ..Default::default()
        };
        let p = ModelProto {
            ir_version: Some(3),
            opset_import: vec![
                OperatorSetIdProto {
                    domain: Some("ai.onnx.ml".into()),
                    version: Some(2),
                },
                OperatorSetIdProto {
                    domain: None,
                    version: Some(8),
                },
            ],
            graph: Some(GraphProto {
                name: Some("g".into()),
                input: vec![x, vi("w", vec![4, 2])],
                output: vec![vi("y", vec![2, 2])],
                value_info: vec![ValueInfoProto {
                    name: Some("untyped".into()),
                    ..Default::default()
                }],
                initializer: vec![w, idx, h, q],
                node: vec![
                    NodeProto {
                        input: vec!["x".into(), "w".into()],
                        output: vec!["m".into()],
                        op_type: Some("MatMul".into()),
                        ..Default::default()
                    },
                    NodeProto {
                        input: vec!["m".into(), "idx".into()],
                        output: vec!["y".into()],
                        op_type: Some("Gather".into()),
                        domain: Some("ai.onnx".into()),
                        attribute: vec![AttributeProto {
                            name: Some("axis".into()),
                            i: Some(0),
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = Model::decode(&p.encode_to_vec()).unwrap();
        assert_eq!(m.opset, 8);
        assert_eq!(m.ir_version, 3);
        let g = &m.graph;
        assert_eq!(
            g.inputs,
            vec![ValueInfo::new("x", DataType::F32, vec![-1, 4])]
        );
        assert!(g.value_infos.is_empty());
        assert_eq!(
            g.initializers[0].to_f32_vec().unwrap(),
            (0..8).map(|v| v as f32).collect::<Vec<_>>()
        );
        assert_eq!(g.initializers[1].to_i64_vec().unwrap(), vec![1, 0]);
        assert_eq!(g.initializers[2].to_f32_vec().unwrap(), vec![1.0, -2.0]);
        assert_eq!(g.initializers[3].to_i64_vec().unwrap(), vec![-1, 5]);
        assert_eq!(g.nodes[0].name, "");
        assert_eq!(g.nodes[1].attributes, vec![Attribute::int("axis", 0)]);
        assert_eq!(m.op_types(), vec!["MatMul", "Gather"]);
        // dim_param reads as -1, which validation rejects as a non-static shape.
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains("graph input 'x'"), "{e}");
    }

    #[test]
    fn ir3_lists_initializers_as_inputs() {
        let graph = Graph {
            name: "g".into(),
            inputs: vec![ValueInfo::new("a", DataType::F32, vec![1, 2])],
            outputs: vec![ValueInfo::new("y", DataType::F32, vec![1, 2])],
            initializers: vec![Tensor::from_f32("B", vec![2, 2], &[0.0; 4]).unwrap()],
            nodes: vec![Node::new("mm", "MatMul", &["a", "B"], &["y"])],
            ..Graph::default()
        };
        for (opset, inputs) in [(7, vec!["a", "B"]), (8, vec!["a", "B"]), (9, vec!["a"])] {
            let m = Model::new(graph.clone(), opset).unwrap();
            let bytes = m.encode().unwrap();
            let p = ModelProto::decode(bytes.as_slice()).unwrap();
            let names: Vec<_> = p
                .graph
                .unwrap()
                .input
                .into_iter()
                .map(|v| v.name.unwrap())
                .collect();
            assert_eq!(names, inputs, "opset {opset}");
            assert_eq!(Model::decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn decode_rejects_unsupported_content() {
        let base = || ModelProto {
            ir_version: Some(7),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(13),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = |p: ModelProto| Model::decode(&p.encode_to_vec()).unwrap_err().to_string();

        let mut p = base();
        p.opset_import[0].domain = Some("com.microsoft".into());
        assert!(err(p).contains("default-domain"));

        let mut p = base();
        p.graph = None;
        assert!(err(p).contains("no graph"));

        let mut p = base();
        p.graph.as_mut().unwrap().node.push(NodeProto {
            name: Some("c".into()),
            op_type: Some("Constant".into()),
            output: vec!["k".into()],
            attribute: vec![AttributeProto {
                name: Some("value".into()),
                r#type: Some(at::TENSOR),
                t: Some(TensorProto::default()),
                ..Default::default()
            }],
            ..Default::default()
        });
        let e = err(p);
        assert!(e.contains("node 'c' attribute 'value' is a tensor"), "{e}");

        let mut p = base();
        p.graph.as_mut().unwrap().node.push(NodeProto {
            op_type: Some("FusedMatMul".into()),
            domain: Some("com.microsoft".into()),
            ..Default::default()
        });
        let e = err(p);
        assert!(
            e.contains("node '#0'") && e.contains("com.microsoft"),
            "{e}"
        );

        let mut p = base();
        p.graph.as_mut().unwrap().initializer.push(TensorProto {
            name: Some("s".into()),
            data_type: Some(8),
            dims: vec![1],
            ..Default::default()
        });
        let e = err(p);
        assert!(e.contains("tensor 's'") && e.contains("code 8"), "{e}");

        let mut p = base();
        p.graph.as_mut().unwrap().initializer.push(TensorProto {
            name: Some("ext".into()),
            data_type: Some(1),
            dims: vec![1],
            data_location: Some(1),
            ..Default::default()
        });
        assert!(err(p).contains("tensor 'ext'"));

        let mut p = base();
        p.graph.as_mut().unwrap().initializer.push(TensorProto {
            name: Some("short".into()),
            data_type: Some(1),
            dims: vec![3],
            float_data: vec![1.0],
            ..Default::default()
        });
        let e = err(p);
        assert!(e.contains("tensor 'short'"), "{e}");

        let mut p = base();
        p.graph.as_mut().unwrap().output.push(ValueInfoProto {
            name: Some("y".into()),
            ..Default::default()
        });
        let e = err(p);
        assert!(e.contains("graph output 'y'"), "{e}");

        assert!(matches!(
            Model::decode(b"\xff\xff\xff"),
            Err(ExportError::Protobuf(_))
        ));
    }
}
