//! Writing a plan's graph pair and its JSON sidecar: all-or-nothing, never clobbering (see
//! [`crate::output`]).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Result;
use crate::graph::{Direction, PADDING_RULE};
use crate::plan::{Plan, Program};
use crate::spec::Dtype;

/// Where and how to write.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub out_dir: PathBuf,
    pub opset: i64,
    /// Overwrite existing files.
    pub force: bool,
    /// A target profile's memory estimate, recorded in the sidecar under "target".
    pub target: Option<crate::target::Estimate>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Exported {
    pub name: String,
    pub compress: PathBuf,
    pub decompress: PathBuf,
    pub sidecar: PathBuf,
    pub report: Value,
}

fn program_report(p: &Program, dtype: Dtype, file: &str, direction: Direction) -> Value {
    let elem = dtype.bytes() as u64;
    let shapes = p.shapes();
    let mut ops: BTreeMap<&str, usize> = BTreeMap::new();
    for op in p.op_types() {
        *ops.entry(op).or_default() += 1;
    }
    let (largest_const, largest_tensor) = p.largest_constant_and_tensor();
    let (iname, oname) = direction.io_names();
    // A quantized decompress graph takes codes.
    let in_type = p.input_code().map_or(dtype.to_string(), |c| c.to_string());
    json!({
        "file": file,
        "input": {"name": iname, "shape": p.input, "dtype": in_type},
        "output": {"name": oname, "shape": shapes.last(), "dtype": dtype.to_string()},
        "flops": p.flops(),
        "constant_bytes": p.constant_bytes(elem),
        "largest_constant_elements": largest_const,
        "largest_tensor_elements": largest_tensor,
        "ops": ops,
        "nodes": p.steps.len(),
    })
}

/// The sidecar JSON of a plan (also what `dctchop export --json` prints).
pub fn report(plan: &Plan, opset: i64) -> Value {
    report_with_target(plan, opset, None)
}

/// The sidecar JSON with an optional target estimate.
pub fn report_with_target(
    plan: &Plan,
    opset: i64,
    target: Option<&crate::target::Estimate>,
) -> Value {
    let name = plan.name();
    let runs = plan.spec.serialize * plan.spec.serialize;
    json!({
        "name": name,
        "producer": "dctchop",
        "version": env!("CARGO_PKG_VERSION"),
        "spec": plan.spec,
        "chunk_spec": plan.chunk,
        "tile_resolved": plan.tile_label(),
        "layout": plan.spec.layout_name(),
        "padding": PADDING_RULE,
        "compression_ratio": plan.spec.compression_ratio(),
        "input_shape": plan.spec.input_shape(),
        "compressed_shape": plan.spec.compressed_shape(),
        "graph_runs_per_batch": runs,
        "opset": opset,
        "ir_version": onnx_export::ir_version_for_opset(opset).ok(),
        "graphs": {
            "compress": program_report(&plan.compress, plan.spec.dtype,
                &format!("{name}.compress.onnx"), Direction::Compress),
            "decompress": program_report(&plan.decompress, plan.spec.dtype,
                &format!("{name}.decompress.onnx"), Direction::Decompress),
        },
        "target": target,
    })
}

/// Write `<name>.compress.onnx`, `<name>.decompress.onnx` and `<name>.json` into `out_dir`.
/// Either all three are written or none is: files go to temporaries first and are renamed at
/// the end. Existing files are kept unless `force`.
pub fn export(plan: &Plan, opts: &ExportOptions) -> Result<Exported> {
    let name = plan.name();
    let dir = &opts.out_dir;
    let paths = [
        dir.join(format!("{name}.compress.onnx")),
        dir.join(format!("{name}.decompress.onnx")),
        dir.join(format!("{name}.json")),
    ];
    for p in &paths {
        crate::output::check_writable(p, opts.force)?;
    }
    // Build everything in memory before touching the disk.
    let compress = plan.model(Direction::Compress, opts.opset)?.encode()?;
    let decompress = plan.model(Direction::Decompress, opts.opset)?.encode()?;
    let rep = report_with_target(plan, opts.opset, opts.target.as_ref());
    let sidecar = serde_json::to_vec_pretty(&rep).expect("json");
    let created = crate::output::CreatedDirs::create(dir)?;
    crate::output::write_all_atomic(
        &[
            (&paths[0], &compress[..]),
            (&paths[1], &decompress[..]),
            (&paths[2], &sidecar[..]),
        ],
        opts.force,
    )?;
    created.keep();
    let [c, d, j] = paths;
    Ok(Exported {
        name,
        compress: c,
        decompress: d,
        sidecar: j,
        report: rep,
    })
}
