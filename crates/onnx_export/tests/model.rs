//! Round trip, determinism and validation tests of the public API.

use onnx_export::{
    AttrValue, Attribute, DataType, ExportError, Graph, Model, Node, Tensor, ValueInfo,
};

/// `x[2,3,4] --Reshape([6,4])--> r --MatMul(W[4,2])--> m --Gather(axis=0, [5,0,2])--> y[3,2]`
fn sample_model() -> Model {
    let w: Vec<f32> = (0..8).map(|v| v as f32 * 0.5 - 1.0).collect();
    let graph = Graph {
        name: "sample".into(),
        inputs: vec![ValueInfo::new("x", DataType::F32, vec![2, 3, 4])],
        outputs: vec![ValueInfo::new("y", DataType::F32, vec![3, 2])],
        initializers: vec![
            Tensor::from_i64("shape", vec![2], &[6, 4]).unwrap(),
            Tensor::from_f32("W", vec![4, 2], &w).unwrap(),
            Tensor::from_i64("idx", vec![3], &[5, 0, 2]).unwrap(),
        ],
        nodes: vec![
            Node::new("reshape", "Reshape", &["x", "shape"], &["r"]),
            Node::new("mm1", "MatMul", &["r", "W"], &["m"]),
            Node::new("gather", "Gather", &["m", "idx"], &["y"])
                .with_attr(Attribute::int("axis", 0)),
        ],
        value_infos: vec![
            ValueInfo::new("r", DataType::F32, vec![6, 4]),
            ValueInfo::new("m", DataType::F32, vec![6, 2]),
        ],
        doc: "a sample graph".into(),
    };
    let mut m = Model::new(graph, 13).unwrap();
    m.doc = "model doc".into();
    m.metadata = vec![
        ("zeta".into(), "1".into()),
        ("alpha".into(), "2".into()),
        ("mid".into(), String::new()),
    ];
    m
}

/// A model exercising every attribute kind and data type (not meant to be run).
fn kitchen_sink() -> Model {
    let mut g = Graph {
        name: "sink".into(),
        inputs: vec![ValueInfo::new("a", DataType::F16, vec![1, 2])],
        outputs: vec![ValueInfo::new("z", DataType::F16, vec![1, 2])],
        ..Graph::default()
    };
    for (i, dt) in DataType::ALL.into_iter().enumerate() {
        let n = 3;
        let raw = (0..n * dt.size_bytes())
            .map(|b| (b * 7 + i) as u8)
            .collect();
        g.initializers
            .push(Tensor::from_raw(format!("t{i}"), dt, vec![n as i64], raw).unwrap());
    }
    g.initializers
        .push(Tensor::from_f32("scalar", vec![], &[42.0]).unwrap());
    g.initializers
        .push(Tensor::from_f32("empty", vec![0, 3], &[]).unwrap());
    g.nodes.push(Node {
        name: String::new(),
        op_type: "Custom".into(),
        inputs: vec!["a".into(), String::new(), "t0".into()],
        outputs: vec!["z".into()],
        attributes: vec![
            Attribute::int("i", 0),
            Attribute::int("neg", -7),
            Attribute::ints("is", vec![1, -2, 1 << 40]),
            Attribute::ints("no_ints", vec![]),
            Attribute::float("f", 0.0),
            Attribute::floats("fs", vec![1.5, -0.25]),
            Attribute::string("s", "héllo"),
            Attribute::string("empty_s", ""),
        ],
    });
    let mut m = Model::new(g, 24).unwrap();
    m.producer_name = String::new();
    m.producer_version = String::new();
    m
}

#[test]
fn round_trip_equals_original() {
    for m in [sample_model(), kitchen_sink()] {
        let bytes = m.encode().unwrap();
        let back = Model::decode(&bytes).unwrap();
        assert_eq!(back, m);
        // And re-encoding the decoded model gives the same bytes.
        assert_eq!(back.encode().unwrap(), bytes);
    }
}

#[test]
fn encoding_is_deterministic() {
    let a = sample_model().encode().unwrap();
    let b = sample_model().encode().unwrap();
    let c = sample_model().clone().encode().unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn model_new_sets_ir_version_and_rejects_bad_opset() {
    let m = Model::new(Graph::default(), 17).unwrap();
    assert_eq!(m.ir_version, 8);
    assert_eq!(m.opset, 17);
    let e = Model::new(Graph::default(), 25).unwrap_err();
    assert!(matches!(e, ExportError::UnsupportedOpset { opset: 25, .. }));
    assert!(e.to_string().contains("7..=24"), "{e}");
}

#[test]
fn op_types() {
    assert_eq!(
        sample_model().op_types(),
        vec!["Reshape", "MatMul", "Gather"]
    );
}

/// Applies `edit` to the sample model and returns the validation error message; checks that
/// `encode` fails the same way.
fn invalid(edit: impl FnOnce(&mut Model)) -> String {
    let mut m = sample_model();
    edit(&mut m);
    let e = m.validate().expect_err("model should be invalid");
    assert_eq!(m.encode().unwrap_err(), e);
    e.to_string()
}

fn assert_names(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(
            msg.contains(p),
            "error message {msg:?} should contain {p:?}"
        );
    }
}

#[test]
fn sample_is_valid() {
    sample_model().validate().unwrap();
    kitchen_sink().validate().unwrap();
}

#[test]
fn rejects_duplicate_names() {
    let e = invalid(|m| m.graph.initializers[1].name = "x".into());
    assert_names(&e, &["'x'", "graph input", "initializer"]);

    let e = invalid(|m| m.graph.nodes[1].outputs[0] = "idx".into());
    assert_names(&e, &["'idx'", "initializer", "output of node 'mm1'"]);

    let e = invalid(|m| m.graph.nodes[2].outputs[0] = "r".into());
    assert_names(&e, &["'r'", "node 'reshape'", "node 'gather'"]);

    let e = invalid(|m| {
        let x = m.graph.inputs[0].clone();
        m.graph.inputs.push(x);
    });
    assert_names(&e, &["'x'", "graph input"]);

    let e = invalid(|m| m.graph.nodes[2].name = "mm1".into());
    assert_names(&e, &["'mm1'", "node #1", "node #2"]);

    let e = invalid(|m| {
        let y = m.graph.outputs[0].clone();
        m.graph.outputs.push(y);
    });
    assert_names(&e, &["'y'", "graph output"]);

    let e = invalid(|m| {
        m.graph.nodes[1].attributes.push(Attribute::int("alpha", 1));
        m.graph.nodes[1]
            .attributes
            .push(Attribute::float("alpha", 1.0));
    });
    assert_names(&e, &["'mm1'", "'alpha'"]);
}

#[test]
fn rejects_empty_names() {
    let e = invalid(|m| m.graph.initializers[2].name = String::new());
    assert_names(&e, &["initializer #2", "empty name"]);
    let e = invalid(|m| m.graph.nodes[0].outputs[0] = String::new());
    assert_names(&e, &["output #0 of node 'reshape'", "empty name"]);
    let e = invalid(|m| m.graph.name = String::new());
    assert_names(&e, &["graph", "empty name"]);
    let e = invalid(|m| m.graph.nodes[1].op_type = String::new());
    assert_names(&e, &["'mm1'", "op_type"]);
}

#[test]
fn rejects_dangling_input() {
    let e = invalid(|m| m.graph.nodes[1].inputs[1] = "foo".into());
    assert_eq!(
        e,
        "node 'mm1' input 'foo' is not a graph input, initializer or earlier node output"
    );
    // Unnamed nodes are reported by index.
    let e = invalid(|m| {
        m.graph.nodes[1].name = String::new();
        m.graph.nodes[1].inputs[1] = "foo".into();
    });
    assert_names(&e, &["node '#1'", "'foo'"]);
}

#[test]
fn rejects_nodes_out_of_topological_order() {
    let e = invalid(|m| m.graph.nodes.swap(0, 1));
    assert_names(
        &e,
        &["node 'mm1'", "input 'r'", "node 'reshape'", "topological"],
    );
    // A node consuming its own output.
    let e = invalid(|m| m.graph.nodes[1].inputs[0] = "m".into());
    assert_names(&e, &["node 'mm1'", "input 'm'", "topological"]);
}

#[test]
fn rejects_undefined_graph_output() {
    let e = invalid(|m| m.graph.outputs[0].name = "nowhere".into());
    assert_eq!(
        e,
        "graph output 'nowhere' is not produced by any node, graph input or initializer"
    );
}

#[test]
fn rejects_wrong_raw_length() {
    let e = invalid(|m| {
        m.graph.initializers[1].raw.truncate(28);
    });
    assert_eq!(
        e,
        "tensor 'W' has 28 bytes of raw data but dims [4, 2] of float32 need 32"
    );
    let e = invalid(|m| m.graph.initializers[1].dtype = DataType::F64);
    assert_names(&e, &["'W'", "float64", "64"]);
    let e = invalid(|m| m.graph.initializers[2].dims = vec![-3]);
    assert_names(&e, &["tensor 'idx'", "[-3]"]);
}

#[test]
fn rejects_zero_or_dynamic_dims() {
    let e = invalid(|m| m.graph.inputs[0].dims = vec![2, 0, 4]);
    assert_eq!(
        e,
        "graph input 'x' has dims [2, 0, 4]: all dims must be >= 1 (static shapes)"
    );
    let e = invalid(|m| m.graph.outputs[0].dims = vec![3, 0]);
    assert_names(&e, &["graph output 'y'", "[3, 0]"]);
    let e = invalid(|m| m.graph.value_infos[1].dims = vec![-1, 2]);
    assert_names(&e, &["value_info 'm'", "[-1, 2]"]);
}

#[test]
fn rejects_bad_value_infos_and_versions() {
    let e = invalid(|m| m.graph.value_infos[0].name = "x".into());
    assert_names(&e, &["value_info 'x'"]);
    let e = invalid(|m| {
        let v = m.graph.value_infos[0].clone();
        m.graph.value_infos.push(v);
    });
    assert_names(&e, &["'r'", "value_info"]);
    let e = invalid(|m| m.opset = 6);
    assert_names(&e, &["opset 6", "7..=24"]);
    let e = invalid(|m| m.ir_version = 6);
    assert_names(&e, &["ir_version 6", "opset 13", "7..=12"]);
}

#[test]
fn value_kinds_survive_round_trip() {
    let m = kitchen_sink();
    let back = Model::decode(&m.encode().unwrap()).unwrap();
    let attrs = &back.graph.nodes[0].attributes;
    assert_eq!(attrs[0].value, AttrValue::Int(0));
    assert_eq!(attrs[4].value, AttrValue::Float(0.0));
    assert_eq!(attrs[3].value, AttrValue::Ints(vec![]));
    assert_eq!(attrs[6].value, AttrValue::Str("héllo".into()));
    assert_eq!(back.graph.nodes[0].inputs[1], "");
    assert_eq!(back.opset, 24);
    assert_eq!(back.ir_version, 12);
    let scalar = &back.graph.initializers[DataType::ALL.len()];
    assert_eq!(scalar.to_f32_vec(), Some(vec![42.0]));
    assert!(scalar.dims.is_empty());
    // Every data type keeps its code and bytes.
    for (i, dt) in DataType::ALL.into_iter().enumerate() {
        assert_eq!(back.graph.initializers[i].dtype, dt);
        assert_eq!(back.graph.initializers[i], m.graph.initializers[i]);
    }
}

#[test]
fn cast_node_and_int16_input_round_trip() {
    // y:int16[2,3] --Cast(to=FLOAT)--> c --MatMul(W)--> x: the shape of a quantized decompress
    // graph.
    let graph = Graph {
        name: "codes".into(),
        inputs: vec![ValueInfo::new("y", DataType::I16, vec![2, 3])],
        outputs: vec![ValueInfo::new("x", DataType::F32, vec![2, 1])],
        initializers: vec![Tensor::from_f32("W", vec![3, 1], &[1.0, 2.0, 3.0]).unwrap()],
        nodes: vec![
            Node::new("cast", "Cast", &["y"], &["c"])
                .with_attr(Attribute::int("to", DataType::F32.onnx_code() as i64)),
            Node::new("mm", "MatMul", &["c", "W"], &["x"]),
        ],
        value_infos: vec![ValueInfo::new("c", DataType::F32, vec![2, 3])],
        doc: String::new(),
    };
    let m = Model::new(graph, 13).unwrap();
    let bytes = m.encode().unwrap();
    let back = Model::decode(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.graph.inputs[0].dtype, DataType::I16);
    assert_eq!(back.graph.nodes[0].attributes[0].value, AttrValue::Int(1));
    assert_eq!(back.op_types(), vec!["Cast", "MatMul"]);
}
