//! The checked-in conformance suite in `graphs/`: graph pairs, inputs and expected outputs
//! computed in f64 by the plain-Rust evaluation of the plan's matrices, and `manifest.json`.
//!
//! - Every graph and tensor is regenerated and compared byte for byte: export is deterministic.
//! - Every case runs on tract within the manifest's tolerance.
//!
//! `DCTCHOP_BLESS=1 cargo test --test tests conformance::` rewrites the suite (after a deliberate
//! change).

use crate::common;

use dctchop::engine::{compile, reference::run_program, EngineKind, EngineOptions};
use dctchop::graph::Direction;
use dctchop::npy::{codes_to_npy_bytes, read_npy, read_npy_f32, to_npy_bytes, NpyData};
use dctchop::quant::{round_code, ChannelMix};
use dctchop::{CodeType, Codes, Dtype, Plan, Quant, Spec, Tile, Variant};
use ndarray::ArrayD;
use std::path::{Path, PathBuf};

const OPSET: i64 = 13;

/// (case name, spec). Small sizes: the whole suite stays around 4 MB. Quantized cases come last
/// (their decompress input is a codes file, `q.npy`).
fn cases() -> Vec<(&'static str, Spec)> {
    use Variant::Triangle;
    let q = Quant::uniform;
    vec![
        (
            "chop-dense-64x64-f32",
            Spec::new(64, 64, 4).with_tile(Tile::Full),
        ),
        (
            "chop-tile8-64x96-f32",
            Spec::new(64, 96, 4).with_tile(Tile::Size(8)),
        ),
        (
            "chop-tile32-padded-100x75-f32",
            Spec::new(100, 75, 3).with_tile(Tile::Size(32)),
        ),
        (
            "chop-auto-padded-300x451-f32",
            Spec::new(300, 451, 4).with_channels(1),
        ),
        (
            "chop-dense-padded-25x25-cf8-f32",
            Spec::new(25, 25, 8).with_tile(Tile::Full).with_channels(1),
        ),
        (
            "chop-block16-tile32-64x80-f32",
            Spec::new(64, 80, 6)
                .with_block(16)
                .with_tile(Tile::Size(32)),
        ),
        (
            "chop-serialize2-chunk-128x128-f32",
            Spec::new(128, 128, 4)
                .with_serialize(2)
                .with_tile(Tile::Size(16)),
        ),
        (
            "chop-batch4-tile16-32x48-f32",
            Spec::new(32, 48, 2).with_batch(4).with_tile(Tile::Size(16)),
        ),
        (
            "chop-tile16-64x64-f16",
            Spec::new(64, 64, 4)
                .with_tile(Tile::Size(16))
                .with_dtype(Dtype::F16),
        ),
        (
            "triangle-dense-64x64-f32",
            Spec::new(64, 64, 3)
                .with_variant(Triangle)
                .with_tile(Tile::Full),
        ),
        (
            "triangle-tile16-96x80-f32",
            Spec::new(96, 80, 5)
                .with_variant(Triangle)
                .with_tile(Tile::Size(16)),
        ),
        (
            "triangle-auto-padded-150x227-f32",
            Spec::new(150, 227, 4)
                .with_variant(Triangle)
                .with_channels(1),
        ),
        (
            "triangle-serialize2-chunk-250x250-f32",
            Spec::new(250, 250, 4)
                .with_variant(Triangle)
                .with_serialize(2)
                .with_channels(1),
        ),
        (
            "triangle-tile8-64x48-f16",
            Spec::new(64, 48, 4)
                .with_variant(Triangle)
                .with_tile(Tile::Size(8))
                .with_dtype(Dtype::F16),
        ),
        (
            "chop-q8-dense-64x64-f32",
            Spec::new(64, 64, 4)
                .with_tile(Tile::Full)
                .with_quant(q(CodeType::I8, 12.0)),
        ),
        (
            "chop-q16-tile16-padded-100x75-f32",
            Spec::new(100, 75, 3)
                .with_tile(Tile::Size(16))
                .with_quant(q(CodeType::I16, 0.5)),
        ),
        (
            "triangle-q8-tile8-64x48-f32",
            Spec::new(64, 48, 4)
                .with_variant(Triangle)
                .with_tile(Tile::Size(8))
                .with_quant(q(CodeType::I8, 12.0)),
        ),
        (
            "triangle-q16-perfreq-auto-padded-150x227-f32",
            Spec::new(150, 227, 4)
                .with_variant(Triangle)
                .with_channels(1)
                .with_quant(
                    q(CodeType::I16, 1.0)
                        .with_multipliers(vec![1.0, 1.5, 2.0, 3.0], vec![1.0, 1.25, 1.5, 2.0]),
                ),
        ),
        (
            "chop-q8-tile16-64x64-f16",
            Spec::new(64, 64, 4)
                .with_tile(Tile::Size(16))
                .with_dtype(Dtype::F16)
                .with_quant(q(CodeType::I8, 16.0)),
        ),
        (
            "chop-q16-opponent-tile16-padded-100x75-f32",
            Spec::new(100, 75, 3)
                .with_tile(Tile::Size(16))
                .with_quant(q(CodeType::I16, 0.5).with_mix(Some(ChannelMix::Opponent))),
        ),
        (
            "triangle-q8-opponent-dense-64x48-f32",
            Spec::new(64, 48, 4)
                .with_variant(Triangle)
                .with_tile(Tile::Full)
                .with_quant(q(CodeType::I8, 12.0).with_mix(Some(ChannelMix::Opponent))),
        ),
    ]
}

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphs")
}

fn tolerance(d: Dtype) -> f64 {
    match d {
        Dtype::F32 => 1e-5,
        Dtype::F16 => 5e-3,
    }
}

struct Generated {
    files: Vec<(String, Vec<u8>)>,
    manifest_entry: serde_json::Value,
}

fn round_to(d: Dtype, a: ArrayD<f64>) -> ArrayD<f32> {
    match d {
        Dtype::F32 => a.mapv(|v| v as f32),
        Dtype::F16 => a.mapv(|v| half::f16::from_f64(v).to_f32()),
    }
}

fn generate(name: &str, spec: &Spec, seed: u64) -> Generated {
    let plan = Plan::new(spec).unwrap();
    let c = &plan.chunk;
    let ty = spec.dtype;
    let x = round_to(
        spec.dtype,
        common::image(c.batch, c.channels, c.height, c.width, seed)
            .mapv(|v| v as f64)
            .into_dyn(),
    );
    // Expected outputs: the f64 evaluation of the same matrices, rounded once to the dtype.
    let y64 = run_program(&plan.compress, &x.mapv(|v| v as f64)).unwrap();
    let y = round_to(spec.dtype, y64.clone());
    // A quantized case: the codes are the rounding rule applied to the f64 coefficients / step
    // (what the compress graph outputs, before any rounding to the dtype).
    let codes = spec.quant.as_ref().map(|q| {
        let c = y64.mapv(|v| round_code(v, q.code).0);
        match q.code {
            CodeType::I8 => Codes::I8(c.mapv(|v| v as i8)),
            CodeType::I16 => Codes::I16(c.mapv(|v| v as i16)),
        }
    });
    let dec_in = match &codes {
        Some(c) => c.view().to_f64(),
        None => y.mapv(|v| v as f64),
    };
    let x_rec = round_to(spec.dtype, run_program(&plan.decompress, &dec_in).unwrap());
    let mut files = Vec::new();
    for d in [Direction::Compress, Direction::Decompress] {
        let bytes = plan.model(d, OPSET).unwrap().encode().unwrap();
        files.push((format!("{}.onnx", d.as_str()), bytes));
    }
    for (f, a) in [("x.npy", &x), ("y.npy", &y), ("x_rec.npy", &x_rec)] {
        files.push((f.to_string(), to_npy_bytes(a.view(), ty).unwrap()));
    }
    if let Some(c) = &codes {
        files.push(("q.npy".into(), codes_to_npy_bytes(c.view()).unwrap()));
    }
    let dtype = match spec.dtype {
        Dtype::F32 => "float32",
        Dtype::F16 => "float16",
    };
    let mut manifest_entry = serde_json::json!({
        "name": name,
        "dir": name,
        "dtype": dtype,
        "tolerance": tolerance(spec.dtype),
        "spec": spec,
        "graph_spec": plan.chunk,
        "tile_resolved": plan.tile_label(),
        "layout": spec.layout_name(),
        "compress": {"graph": "compress.onnx", "input": "x.npy", "expected": "y.npy"},
        "decompress": {"graph": "decompress.onnx", "input": "y.npy", "expected": "x_rec.npy"},
    });
    if let Some(q) = &spec.quant {
        // Unquantized entries keep exactly their v1 form.
        manifest_entry["quant"] = serde_json::to_value(q).unwrap();
        manifest_entry["decompress"] = serde_json::json!({
            "graph": "decompress.onnx",
            "input": "q.npy",
            "input_dtype": q.code.numpy_name(),
            "expected": "x_rec.npy",
        });
    }
    Generated {
        files,
        manifest_entry,
    }
}

fn manifest(entries: Vec<serde_json::Value>) -> Vec<u8> {
    let m = serde_json::json!({
        "format": "dctchop-conformance-v2",
        "producer": format!("dctchop {}", env!("CARGO_PKG_VERSION")),
        "opset": OPSET,
        "metric": "max|out - expected| / max(max(expected) - min(expected), 1e-12)",
        "cases": entries,
    });
    let mut v = serde_json::to_vec_pretty(&m).unwrap();
    v.push(b'\n');
    v
}

#[test]
fn suite_is_regenerated_byte_for_byte() {
    let root = suite_dir();
    let bless = std::env::var("DCTCHOP_BLESS").is_ok_and(|v| v == "1");
    let mut entries = Vec::new();
    let mut diffs = Vec::new();
    for (k, (name, spec)) in cases().into_iter().enumerate() {
        let g = generate(name, &spec, 100 + k as u64);
        for (file, bytes) in &g.files {
            let path = root.join(name).join(file);
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                diffs.push(path.display().to_string());
            }
        }
        entries.push(g.manifest_entry);
    }
    let m = manifest(entries);
    let mpath = root.join("manifest.json");
    if bless {
        std::fs::write(&mpath, &m).unwrap();
    } else if std::fs::read(&mpath).ok().as_deref() != Some(&m[..]) {
        diffs.push(mpath.display().to_string());
    }
    assert!(
        diffs.is_empty(),
        "regenerated suite differs from graphs/ in:\n  {}\n(re-run with DCTCHOP_BLESS=1 if the change is intended)",
        diffs.join("\n  ")
    );
}

fn rel(a: &ArrayD<f32>, e: &ArrayD<f32>) -> f64 {
    common::rel_err(a, e)
}

#[test]
fn suite_passes_on_tract() {
    suite_passes_on(EngineOptions::tract());
}

#[test]
fn suite_passes_on_ort() {
    if common::ort_ready() {
        suite_passes_on(EngineOptions::default().with_kind(EngineKind::Ort));
    }
}

fn suite_passes_on(opts: EngineOptions) {
    let root = suite_dir();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let cases = m["cases"].as_array().unwrap();
    assert_eq!(cases.len(), self::cases().len());
    let mut worst = std::collections::BTreeMap::<_, f64>::new();
    for case in cases {
        let dir: &Path = &root.join(case["dir"].as_str().unwrap());
        let spec: Spec = serde_json::from_value(case["spec"].clone()).unwrap();
        let tol = case["tolerance"].as_f64().unwrap();
        let plan = Plan::new(&spec).unwrap();
        for (d, key) in [
            (Direction::Compress, "compress"),
            (Direction::Decompress, "decompress"),
        ] {
            let input = read_npy(&dir.join(case[key]["input"].as_str().unwrap())).unwrap();
            let (expected, _) =
                read_npy_f32(&dir.join(case[key]["expected"].as_str().unwrap())).unwrap();
            let mut r = compile(&plan, d, &opts).unwrap();
            let out = match &input {
                NpyData::Float(x, _) => r.run(x.view()).unwrap(),
                NpyData::Codes(c) => {
                    assert_eq!(
                        case[key]["input_dtype"].as_str(),
                        Some(c.code_type().numpy_name())
                    );
                    r.run_codes(c.view()).unwrap()
                }
            };
            let e = rel(&out, &expected);
            let kind = if spec.quant.is_some() {
                "quantized"
            } else {
                "float"
            };
            let w = worst
                .entry((kind, spec.dtype.to_string(), key))
                .or_default();
            *w = w.max(e);
            assert!(e <= tol, "{} {key}: {e:e} > {tol:e}", dir.display());
        }
    }
    for ((kind, dtype, key), e) in worst {
        println!(
            "worst error on {}: {kind} {dtype} {key}: {e:.3e}",
            opts.kind
        );
    }
}
