//! Encoded models must load and run in a real ONNX consumer (tract-onnx).

use onnx_export::{Attribute, DataType, Graph, Model, Node, Tensor, ValueInfo};
use tract_onnx::prelude::*;

/// `x[2,3,4] --Reshape([6,4])--> r --MatMul(W[4,2])--> m --Gather(axis=0, [5,0,2])--> y[3,2]`
fn reshape_matmul_gather() -> Model {
    // W = [[1, 0], [0, 1], [1, 1], [2, -1]]
    let w = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, -1.0];
    let graph = Graph {
        name: "reshape_matmul_gather".into(),
        inputs: vec![ValueInfo::new("x", DataType::F32, vec![2, 3, 4])],
        outputs: vec![ValueInfo::new("y", DataType::F32, vec![3, 2])],
        initializers: vec![
            Tensor::from_i64("shape", vec![2], &[6, 4]).unwrap(),
            Tensor::from_f32("W", vec![4, 2], &w).unwrap(),
            Tensor::from_i64("indices", vec![3], &[5, 0, 2]).unwrap(),
        ],
        nodes: vec![
            Node::new("reshape", "Reshape", &["x", "shape"], &["r"]),
            Node::new("mm1", "MatMul", &["r", "W"], &["m"]),
            Node::new("gather", "Gather", &["m", "indices"], &["y"])
                .with_attr(Attribute::int("axis", 0)),
        ],
        value_infos: vec![ValueInfo::new("m", DataType::F32, vec![6, 2])],
        doc: String::new(),
    };
    let mut m = Model::new(graph, 13).unwrap();
    m.metadata = vec![("purpose".into(), "test".into())];
    m
}

fn run_tract(bytes: &[u8], input: Tensor_) -> TractResult<tract_onnx::prelude::Tensor> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .into_optimized()?
        .into_runnable()?;
    let mut out = model.run(tvec!(input.into()))?;
    Ok(out.remove(0).into_tensor())
}

type Tensor_ = tract_onnx::prelude::Tensor;

/// The elements of a tract tensor, row-major.
fn values<D: Datum + Copy>(t: &Tensor_) -> TractResult<Vec<D>> {
    Ok(t.to_plain_array_view::<D>()?.iter().copied().collect())
}

#[test]
fn tract_runs_reshape_matmul_gather() -> TractResult<()> {
    let model = reshape_matmul_gather();
    let bytes = model.encode()?;
    // x = 0, 1, ..., 23; row k of the reshaped [6,4] matrix is [4k, 4k+1, 4k+2, 4k+3].
    let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
    let input = tract_ndarray::Array3::from_shape_vec((2, 3, 4), x)?.into_tensor();
    let y = run_tract(&bytes, input)?;
    assert_eq!(y.shape(), &[3, 2]);
    // row [a, b, c, d] @ W = [a + c + 2d, b + c - d]
    // row 5 = [20, 21, 22, 23] -> [88, 20]; row 0 = [0, 1, 2, 3] -> [8, 0];
    // row 2 = [8, 9, 10, 11] -> [40, 8]
    let expected = [88.0f32, 20.0, 8.0, 0.0, 40.0, 8.0];
    assert_eq!(values::<f32>(&y)?, expected);

    // The bytes decode back to the same description.
    assert_eq!(Model::decode(&bytes)?, model);
    Ok(())
}

#[test]
fn tract_runs_f16_matmul() -> TractResult<()> {
    // a[2,3] f16 @ B[3,2] f16 -> y[2,2] f16; all values exact in f16.
    let b: Vec<u16> = [1.0f32, 2.0, -1.0, 0.5, 0.25, 4.0]
        .iter()
        .map(|&v| f16::from_f32(v).to_bits())
        .collect();
    let graph = Graph {
        name: "f16_matmul".into(),
        inputs: vec![ValueInfo::new("a", DataType::F16, vec![2, 3])],
        outputs: vec![ValueInfo::new("y", DataType::F16, vec![2, 2])],
        initializers: vec![Tensor::from_f16_bits("B", vec![3, 2], &b)?],
        nodes: vec![Node::new("mm", "MatMul", &["a", "B"], &["y"])],
        ..Graph::default()
    };
    let model = Model::new(graph, 17)?;
    let bytes = model.encode()?;

    let a: Vec<f16> = [1.0f32, 2.0, 3.0, -1.0, 0.0, 2.0]
        .iter()
        .map(|&v| f16::from_f32(v))
        .collect();
    let input = tract_ndarray::Array2::from_shape_vec((2, 3), a)?.into_tensor();
    let y = run_tract(&bytes, input)?;
    assert_eq!(y.datum_type(), f16::datum_type());
    let y: Vec<f32> = values::<f16>(&y)?.iter().map(|v| v.to_f32()).collect();
    // [1,2,3] @ B = [1 - 2 + 0.75, 2 + 1 + 12] = [-0.25, 15]
    // [-1,0,2] @ B = [-1 + 0.5, -2 + 8] = [-0.5, 6]
    assert_eq!(y, vec![-0.25, 15.0, -0.5, 6.0]);

    let back = Model::decode(&bytes)?;
    assert_eq!(back, model);
    assert_eq!(
        back.graph.initializers[0].to_f32_vec().unwrap(),
        vec![1.0, 2.0, -1.0, 0.5, 0.25, 4.0]
    );
    Ok(())
}

#[test]
fn tract_loads_every_supported_opset() -> TractResult<()> {
    for opset in onnx_export::MIN_OPSET..=onnx_export::MAX_OPSET {
        let graph = Graph {
            name: "mm".into(),
            inputs: vec![ValueInfo::new("a", DataType::F32, vec![1, 2])],
            outputs: vec![ValueInfo::new("y", DataType::F32, vec![1, 2])],
            initializers: vec![Tensor::from_f32("B", vec![2, 2], &[0.0, 1.0, 1.0, 0.0])?],
            nodes: vec![Node::new("mm", "MatMul", &["a", "B"], &["y"])],
            ..Graph::default()
        };
        let bytes = Model::new(graph, opset)?.encode()?;
        let input = tract_ndarray::arr2(&[[3.0f32, 5.0]]).into_tensor();
        let y = run_tract(&bytes, input)?;
        assert_eq!(values::<f32>(&y)?, [5.0, 3.0], "opset {opset}");
    }
    Ok(())
}

/// `q:CODE[2,3] --Cast(to=FLOAT or FLOAT16)--> c --MatMul(W[3,2])--> y`: integer codes in, floats
/// out, as in a quantized decompress graph.
fn cast_matmul(code: DataType, out: DataType) -> Model {
    let w = [0.5f32, 1.0, -2.0, 0.25, 1.0, 0.0];
    let weights = match out {
        DataType::F32 => Tensor::from_f32("W", vec![3, 2], &w).unwrap(),
        _ => {
            let bits: Vec<u16> = w.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
            Tensor::from_f16_bits("W", vec![3, 2], &bits).unwrap()
        }
    };
    let graph = Graph {
        name: "cast_matmul".into(),
        inputs: vec![ValueInfo::new("q", code, vec![2, 3])],
        outputs: vec![ValueInfo::new("y", out, vec![2, 2])],
        initializers: vec![weights],
        nodes: vec![
            Node::new("cast", "Cast", &["q"], &["c"])
                .with_attr(Attribute::int("to", out.onnx_code() as i64)),
            Node::new("mm", "MatMul", &["c", "W"], &["y"]),
        ],
        value_infos: vec![ValueInfo::new("c", out, vec![2, 3])],
        doc: String::new(),
    };
    Model::new(graph, 13).unwrap()
}

#[test]
fn tract_runs_cast_from_int8_and_int16() -> TractResult<()> {
    // [a, b, c] @ W = [0.5a - 2b + c, a + 0.25b]
    let rows = [[-128i32, 4, 127], [3, -32768, 32767]];
    let expect = |r: [i32; 3]| {
        let [a, b, c] = r.map(|v| v as f64);
        [0.5 * a - 2.0 * b + c, a + 0.25 * b]
    };
    // int16 -> f32: the extremes of the type are exact.
    let bytes = cast_matmul(DataType::I16, DataType::F32).encode()?;
    let q: Vec<i16> = rows.iter().flatten().map(|&v| v as i16).collect();
    let y = run_tract(
        &bytes,
        tract_ndarray::Array2::from_shape_vec((2, 3), q)?.into_tensor(),
    )?;
    let want: Vec<f32> = rows
        .iter()
        .flat_map(|&r| expect(r))
        .map(|v| v as f32)
        .collect();
    assert_eq!(values::<f32>(&y)?, want);
    // int8 -> f16 (row 0 only fits int8).
    let bytes = cast_matmul(DataType::I8, DataType::F16).encode()?;
    let q: Vec<i8> = [-128i8, 4, 127, 3, -5, 0].to_vec();
    let y = run_tract(
        &bytes,
        tract_ndarray::Array2::from_shape_vec((2, 3), q)?.into_tensor(),
    )?;
    assert_eq!(y.datum_type(), f16::datum_type());
    let got: Vec<f32> = values::<f16>(&y)?.iter().map(|v| v.to_f32()).collect();
    assert_eq!(got, vec![55.0, -127.0, 11.5, 1.75]);
    Ok(())
}
