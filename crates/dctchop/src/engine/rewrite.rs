//! Rewrites an engine may apply to an ONNX graph before compiling it. They change how the graph
//! runs, never what it computes: the engine gives back exactly the values and shape the original
//! graph declares.

use prost::Message;
use tract_onnx::pb;

/// A graph whose trailing output `Reshape` was removed (see [`elide_output_reshape`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ElidedReshape {
    /// The rewritten model: its output is the Reshape's data input.
    pub bytes: Vec<u8>,
    /// The output shape the original graph declares; the rewritten graph's output has the same
    /// number of elements in the same (row-major) order, so it is a free reinterpretation.
    pub declared: Vec<usize>,
}

/// Remove the `Reshape` that produces the graph's only output, when its data input is an
/// intermediate used nowhere else and its shape is an initializer, and make that intermediate the
/// output (with no declared shape, so the runtime infers it). `None` when the graph does not end
/// that way or cannot be parsed.
///
/// Why: ONNX Runtime never lets a graph output alias another tensor's buffer, so it runs a final
/// Reshape as a full copy of the output. For a tiled decompress graph that copy of the full-size
/// image is about half the run time; a Reshape of a contiguous row-major tensor costs nothing
/// when the caller does it on its own side.
pub fn elide_output_reshape(bytes: &[u8]) -> Option<ElidedReshape> {
    let mut model = pb::ModelProto::decode(bytes).ok()?;
    let g = model.graph.as_mut()?;
    if g.output.len() != 1 {
        return None;
    }
    let declared = static_dims(&g.output[0])?;
    let out = g.output[0].name.clone();
    let producers: Vec<usize> = (0..g.node.len())
        .filter(|&i| g.node[i].output.contains(&out))
        .collect();
    let [k] = producers[..] else {
        return None;
    };
    let n = &g.node[k];
    let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
    if n.op_type != "Reshape" || !default_domain || n.input.len() != 2 || n.output.len() != 1 {
        return None;
    }
    let (data, shape) = (n.input[0].clone(), n.input[1].clone());
    let uses = |g: &pb::GraphProto, name: &str| {
        g.node
            .iter()
            .flat_map(|n| n.input.iter())
            .filter(|i| *i == name)
            .count()
    };
    let is_graph_input = g.input.iter().any(|v| v.name == data);
    let is_initializer =
        |g: &pb::GraphProto, name: &str| g.initializer.iter().any(|t| t.name == name);
    if data.is_empty() || is_graph_input || is_initializer(g, &data) || uses(g, &data) != 1 {
        return None;
    }
    if !is_initializer(g, &shape) {
        return None;
    }
    g.node.remove(k);
    if uses(g, &shape) == 0 {
        // Left in, ONNX Runtime would warn about an unused initializer on every load.
        g.initializer.retain(|t| t.name != shape);
    }
    g.value_info.retain(|v| v.name != data);
    let o = &mut g.output[0];
    match o.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        Some(pb::type_proto::Value::TensorType(t)) => t.shape = None,
        _ => return None,
    }
    o.name = data;
    Some(ElidedReshape {
        bytes: model.encode_to_vec(),
        declared,
    })
}

/// The static dims of a tensor value, or `None` when any is symbolic or missing.
fn static_dims(v: &pb::ValueInfoProto) -> Option<Vec<usize>> {
    let Some(pb::type_proto::Value::TensorType(t)) = v.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    t.shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) => usize::try_from(n).ok(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Direction;
    use crate::spec::{Spec, Tile};

    fn model(spec: &Spec, d: Direction) -> Vec<u8> {
        let plan = crate::plan::Plan::new(spec).unwrap();
        plan.model(d, crate::DEFAULT_OPSET)
            .unwrap()
            .encode()
            .unwrap()
    }

    #[test]
    fn tiled_graphs_lose_their_output_reshape_only() {
        let spec = Spec {
            batch: 2,
            tile: Tile::Size(16),
            ..Spec::new(64, 48, 4)
        };
        for d in [Direction::Compress, Direction::Decompress] {
            let bytes = model(&spec, d);
            let before = pb::ModelProto::decode(&bytes[..]).unwrap();
            let e = elide_output_reshape(&bytes).expect("a tiled graph ends in a Reshape");
            let after = pb::ModelProto::decode(&e.bytes[..]).unwrap();
            let (g0, g1) = (before.graph.unwrap(), after.graph.unwrap());
            assert_eq!(g1.node.len(), g0.node.len() - 1);
            assert_eq!(g1.node[..], g0.node[..g0.node.len() - 1]);
            assert_eq!(g1.output[0].name, g0.node.last().unwrap().input[0]);
            assert_eq!(e.declared, static_dims(&g0.output[0]).unwrap());
            assert_eq!(after.metadata_props, before.metadata_props);
            // The Reshape's shape initializer went with it.
            assert_eq!(g1.initializer.len(), g0.initializer.len() - 1);
        }
    }

    #[test]
    fn graphs_not_ending_in_a_reshape_are_left_alone() {
        // The dense (paper) compress graph is two MatMuls on the image itself.
        let spec = Spec {
            tile: Tile::Full,
            ..Spec::new(16, 16, 4)
        };
        let bytes = model(&spec, Direction::Compress);
        let g = pb::ModelProto::decode(&bytes[..]).unwrap().graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["MatMul", "MatMul"]);
        assert_eq!(elide_output_reshape(&bytes), None);
        assert_eq!(elide_output_reshape(b"not a model"), None);
    }
}
