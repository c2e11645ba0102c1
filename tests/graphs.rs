//! Exported graphs, parsed back: only MatMul/Gather/Reshape, static shapes, self-describing
//! metadata, deterministic bytes. Also writes cases for the Python cross-check
//! (`python/crosscheck.py`: onnx.checker full check, onnxruntime vs tract).

use crate::common;

use dctchop::engine::compile;
use dctchop::export::{export, ExportOptions};
use dctchop::graph::{spec_from_model, Direction};
use dctchop::npy::{write_npy, write_npy_codes};
use dctchop::{CodeType, Codes, Dtype, EngineOptions, Plan, Quant, Spec, Tile, Variant};
use onnx_export::{DataType, Model};
use std::path::PathBuf;

/// The matrix of specs every graph-level check covers.
fn specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Size(8), Tile::Size(32), Tile::Auto] {
            v.push(Spec::new(64, 64, 4).with_variant(variant).with_tile(tile));
            v.push(
                Spec::new(300, 451, 3)
                    .with_variant(variant)
                    .with_tile(tile)
                    .with_batch(2),
            );
        }
        v.push(Spec::new(25, 25, 8).with_variant(variant).with_channels(1));
        v.push(
            Spec::new(256, 256, 5)
                .with_variant(variant)
                .with_serialize(2)
                .with_tile(Tile::Size(16)),
        );
        v.push(
            Spec::new(250, 250, 4)
                .with_variant(variant)
                .with_serialize(4),
        );
        v.push(
            Spec::new(96, 128, 4)
                .with_variant(variant)
                .with_dtype(Dtype::F16),
        );
        v.push(
            Spec::new(64, 80, 6)
                .with_variant(variant)
                .with_block(16)
                .with_tile(Tile::Size(32)),
        );
    }
    v
}

/// Quantized specs: both variants, dense/tiled/auto, padded sizes, serialization, f16, int8 and
/// int16, uniform and per-frequency steps.
fn quant_specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Size(8), Tile::Auto] {
            v.push(
                Spec::new(64, 64, 4)
                    .with_variant(variant)
                    .with_tile(tile)
                    .with_quant(Quant::uniform(CodeType::I8, 12.0)),
            );
            v.push(
                Spec::new(300, 451, 3)
                    .with_variant(variant)
                    .with_tile(tile)
                    .with_batch(2)
                    .with_quant(
                        Quant::uniform(CodeType::I16, 0.5)
                            .with_multipliers(vec![1.0, 2.0, 4.0], vec![1.0, 1.5, 3.0]),
                    ),
            );
        }
        v.push(
            Spec::new(256, 256, 5)
                .with_variant(variant)
                .with_serialize(2)
                .with_tile(Tile::Size(16))
                .with_quant(Quant::uniform(CodeType::I16, 1.0)),
        );
        v.push(
            Spec::new(96, 128, 4)
                .with_variant(variant)
                .with_dtype(Dtype::F16)
                .with_quant(Quant::uniform(CodeType::I8, 16.0)),
        );
    }
    v
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dctchop-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn exported_graphs_parse_back_with_allowed_ops_and_static_shapes() {
    let dir = tmpdir("parse");
    for spec in specs() {
        let plan = Plan::new(&spec).unwrap();
        // Specs whose tiles resolve to the same form share a name: overwrite.
        let out = export(
            &plan,
            &ExportOptions {
                out_dir: dir.clone(),
                opset: 13,
                force: true,
                target: None,
            },
        )
        .unwrap();
        for (path, direction) in [
            (&out.compress, Direction::Compress),
            (&out.decompress, Direction::Decompress),
        ] {
            let model = Model::decode(&std::fs::read(path).unwrap()).unwrap();
            for op in model.op_types() {
                assert!(
                    ["MatMul", "Gather", "Reshape"].contains(&op.as_str()),
                    "{op} in {path:?}"
                );
            }
            assert_eq!(model.opset, 13);
            assert_eq!(spec_from_model(&model).unwrap().as_ref(), Some(&spec));
            let (iname, oname) = direction.io_names();
            let (i, o) = (&model.graph.inputs[0], &model.graph.outputs[0]);
            assert_eq!((i.name.as_str(), o.name.as_str()), (iname, oname));
            let chunk = &plan.chunk;
            let (want_in, want_out) = match direction {
                Direction::Compress => (chunk.input_shape(), chunk.compressed_shape()),
                Direction::Decompress => (chunk.compressed_shape(), chunk.input_shape()),
            };
            let dims = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
            assert_eq!(i.dims, dims(&want_in), "{path:?}");
            assert_eq!(o.dims, dims(&want_out), "{path:?}");
            let meta: std::collections::HashMap<_, _> = model.metadata.iter().cloned().collect();
            assert_eq!(meta["dctchop.layout"], spec.layout_name());
            assert_eq!(
                meta["dctchop.compression_ratio"].parse::<f64>().unwrap(),
                spec.compression_ratio()
            );
            assert_eq!(meta["dctchop.graph"], direction.as_str());
        }
        // The sidecar is valid JSON with the spec and both graphs' costs.
        let side: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out.sidecar).unwrap()).unwrap();
        assert_eq!(
            side["compression_ratio"].as_f64().unwrap(),
            spec.compression_ratio()
        );
        assert_eq!(
            side["graphs"]["compress"]["flops"].as_u64().unwrap(),
            plan.compress.flops()
        );
        // Export is deterministic.
        let again = plan
            .model(Direction::Compress, 13)
            .unwrap()
            .encode()
            .unwrap();
        assert_eq!(again, std::fs::read(&out.compress).unwrap(), "{}", out.name);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quantized_graphs_parse_back_with_one_cast_and_their_quant() {
    for spec in quant_specs() {
        let plan = Plan::new(&spec).unwrap();
        let q = spec.quant.as_ref().unwrap();
        for d in [Direction::Compress, Direction::Decompress] {
            let bytes = plan.model(d, 13).unwrap().encode().unwrap();
            let model = Model::decode(&bytes).unwrap();
            let what = format!("{} {d:?}", plan.name());
            let casts = model
                .graph
                .nodes
                .iter()
                .filter(|n| n.op_type == "Cast")
                .collect::<Vec<_>>();
            for op in model.op_types() {
                assert!(
                    ["MatMul", "Gather", "Reshape", "Cast"].contains(&op.as_str()),
                    "{op} in {what}"
                );
            }
            let input = &model.graph.inputs[0];
            match d {
                Direction::Compress => {
                    assert!(casts.is_empty(), "{what}");
                    assert_eq!(input.dtype, model.graph.outputs[0].dtype, "{what}");
                }
                Direction::Decompress => {
                    // One Cast, of the graph input, to the graph's float type, first.
                    assert_eq!(casts.len(), 1, "{what}");
                    assert_eq!(casts[0].inputs, vec!["y".to_string()]);
                    assert_eq!(model.graph.nodes[0].op_type, "Cast");
                    let to = match spec.dtype {
                        Dtype::F32 => DataType::F32,
                        Dtype::F16 => DataType::F16,
                    };
                    assert_eq!(
                        casts[0].attributes[0].value,
                        onnx_export::AttrValue::Int(to.onnx_code() as i64)
                    );
                    let want = match q.code {
                        CodeType::I8 => DataType::I8,
                        CodeType::I16 => DataType::I16,
                    };
                    assert_eq!(input.dtype, want, "{what}");
                    assert_eq!(model.graph.outputs[0].dtype, to);
                }
            }
            assert_eq!(spec_from_model(&model).unwrap().as_ref(), Some(&spec));
            let meta: std::collections::HashMap<_, _> = model.metadata.iter().cloned().collect();
            let mq: Quant = serde_json::from_str(&meta["dctchop.quant"]).unwrap();
            assert_eq!(&mq, q);
            let chunk: Spec = serde_json::from_str(&meta["dctchop.chunk_spec"]).unwrap();
            assert_eq!(chunk, plan.chunk);
            assert_eq!(chunk.quant.as_ref(), Some(q));
            // Export is deterministic.
            assert_eq!(plan.model(d, 13).unwrap().encode().unwrap(), bytes);
        }
    }
    // Unquantized graphs carry no quant key.
    let plain = Plan::new(&Spec::new(32, 32, 4)).unwrap();
    let m = plain.model(Direction::Decompress, 13).unwrap();
    assert!(m.metadata.iter().all(|(k, _)| k != "dctchop.quant"));
}

#[test]
fn sidecar_flops_of_dense_form_equal_eq5_and_eq7() {
    let dir = tmpdir("flops");
    let (n, cf) = (256.0f64, 4.0f64);
    let spec = Spec::new(256, 256, 4)
        .with_channels(1)
        .with_tile(Tile::Full);
    let out = export(
        &Plan::new(&spec).unwrap(),
        &ExportOptions {
            out_dir: dir.clone(),
            opset: 13,
            force: false,
            target: None,
        },
    )
    .unwrap();
    let eq5 = 2.0 * n.powi(3) * cf / 8.0 * (cf / 8.0 + 1.0) - n * n * (cf / 8.0 + cf * cf / 64.0);
    let eq7 = 2.0 * n.powi(3) * cf / 8.0 * (cf / 8.0 + 1.0) - n * n * (cf / 8.0 + 1.0);
    assert_eq!(
        out.report["graphs"]["compress"]["flops"].as_f64().unwrap(),
        eq5
    );
    assert_eq!(
        out.report["graphs"]["decompress"]["flops"]
            .as_f64()
            .unwrap(),
        eq7
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn export_refuses_to_clobber_and_leaves_nothing_on_error() {
    let dir = tmpdir("clobber");
    let plan = Plan::new(&Spec::new(32, 32, 2)).unwrap();
    let opts = ExportOptions {
        out_dir: dir.clone(),
        opset: 13,
        force: false,
        target: None,
    };
    export(&plan, &opts).unwrap();
    let err = export(&plan, &opts).unwrap_err().to_string();
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    export(
        &plan,
        &ExportOptions {
            force: true,
            target: None,
            ..opts.clone()
        },
    )
    .unwrap();
    // A bad opset fails before anything is written.
    let empty = tmpdir("clobber-empty");
    let err = export(
        &plan,
        &ExportOptions {
            out_dir: empty.clone(),
            opset: 99,
            force: false,
            target: None,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("opset"), "{err}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    for d in [dir, empty] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// Write one case per spec for `python/crosscheck.py`: both graphs, a random input, and what
/// tract computed (for a quantized spec also the codes, `q.npy`, which its decompress graph
/// takes). Directory: `$DCTCHOP_CROSSCHECK_DIR` or `target/crosscheck`.
#[test]
fn write_crosscheck_cases() {
    let root = std::env::var_os("DCTCHOP_CROSSCHECK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/crosscheck"));
    let _ = std::fs::remove_dir_all(&root);
    for (k, spec) in specs().into_iter().chain(quant_specs()).enumerate() {
        let plan = Plan::new(&spec).unwrap();
        let case = root.join(format!("{k:02}-{}", plan.name()));
        std::fs::create_dir_all(&case).unwrap();
        for d in [Direction::Compress, Direction::Decompress] {
            let bytes = plan.model(d, 13).unwrap().encode().unwrap();
            std::fs::write(case.join(format!("{}.onnx", d.as_str())), bytes).unwrap();
        }
        let c = &plan.chunk;
        let ty = spec.dtype;
        // f16 inputs are rounded to f16 first so every consumer sees the same values.
        let x = common::image(c.batch, c.channels, c.height, c.width, k as u64)
            .mapv(|v| {
                if ty == Dtype::F16 {
                    half::f16::from_f32(v).to_f32()
                } else {
                    v
                }
            })
            .into_dyn();
        let mut comp = compile(&plan, Direction::Compress, &EngineOptions::tract()).unwrap();
        let mut dec = compile(&plan, Direction::Decompress, &EngineOptions::tract()).unwrap();
        let y = comp.run(x.view()).unwrap();
        let x_rec = match &spec.quant {
            Some(q) => {
                let (codes, _) = Codes::quantize(y.view(), q.code);
                write_npy_codes(&case.join("q.npy"), codes.view(), true).unwrap();
                dec.run_codes(codes.view()).unwrap()
            }
            None => dec.run(y.view()).unwrap(),
        };
        write_npy(&case.join("x.npy"), x.view(), ty, true).unwrap();
        write_npy(&case.join("y.npy"), y.view(), ty, true).unwrap();
        write_npy(&case.join("x_rec.npy"), x_rec.view(), ty, true).unwrap();
        let tol = match spec.dtype {
            Dtype::F32 => 1e-5,
            Dtype::F16 => 2e-3,
        };
        let mut meta = serde_json::json!({"name": plan.name(), "tolerance": tol, "spec": spec});
        if let Some(q) = &spec.quant {
            meta["quant"] = serde_json::to_value(q).unwrap();
        }
        std::fs::write(
            case.join("meta.json"),
            serde_json::to_vec_pretty(&meta).unwrap(),
        )
        .unwrap();
    }
}
