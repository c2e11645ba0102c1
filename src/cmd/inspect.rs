//! `dctchop inspect`: describe an exported graph, or print a container's metadata.

use anyhow::{bail, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

use dctchop::graph::GraphInfo;

#[derive(Args)]
pub struct InspectArgs {
    /// An .onnx file, or a container (its stem or any shard).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let text = if dctchop::container::looks_like_container(&a.file) {
        container_text(&a)?
    } else {
        let info = GraphInfo::read(&a.file)?;
        let text = if a.json {
            serde_json::to_string_pretty(&info)? + "\n"
        } else {
            graph_text(&info)?
        };
        let foreign = info.foreign_ops();
        if !foreign.is_empty() {
            print(&text);
            bail!(
                "{}: contains ops other than {}: {}",
                a.file.display(),
                info.allowed_ops().join(", "),
                foreign.join(", ")
            );
        }
        text
    };
    print(&text);
    Ok(())
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn graph_text(info: &GraphInfo) -> Result<String> {
    let mut t = String::new();
    t += &format!("file:        {}\n", info.file.display());
    t += &format!(
        "producer:    {}  (ir {}, opset {})\n",
        info.producer, info.ir_version, info.opset
    );
    if info.spec.is_none() {
        t += "note:        no dctchop metadata (not exported by dctchop)\n";
    }
    let ratio = info
        .compression_ratio
        .map(|r| serde_json::Value::from(r).to_string());
    for (k, v) in [
        ("graph", &info.graph),
        ("layout", &info.layout),
        ("tile", &info.tile),
        ("ratio", &ratio),
    ] {
        if let Some(v) = v {
            t += &format!("{:<12} {v}\n", format!("{k}:"));
        }
    }
    if let Some(q) = &info.quant {
        let mut line = format!("{} codes, step {}", q.code.numpy_name(), q.step);
        if q.is_uniform() {
            line += " (uniform)";
        } else {
            line += &format!(" x rows {:?} x cols {:?}", q.rows, q.cols);
        }
        t += &format!("quant:       {line}\n");
    }
    if let Some(s) = &info.spec {
        t += &format!("spec:        {}\n", serde_json::to_string(s)?);
    }
    for (label, vis) in [("input", &info.inputs), ("output", &info.outputs)] {
        for vi in vis {
            t += &format!(
                "{:<12} {} {} {:?}\n",
                format!("{label}:"),
                vi.name,
                vi.dtype,
                vi.shape
            );
        }
    }
    let ops: Vec<String> = info.ops.iter().map(|(k, v)| format!("{k}x{v}")).collect();
    t += &format!("ops:         {}  ({} nodes)\n", ops.join(" "), info.nodes);
    t += &format!("constants:   {} bytes\n", info.constant_bytes);
    Ok(t)
}

fn container_text(a: &InspectArgs) -> Result<String> {
    let c = dctchop::container::open(&a.file)?;
    let meta: std::collections::BTreeMap<_, _> = c.header.raw.iter().collect();
    if a.json {
        let v = serde_json::json!({
            "container": c.stem,
            "shards": c.shards,
            "metadata": meta,
        });
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let mut t = format!(
        "container {} ({} shard(s))\n",
        c.stem.display(),
        c.shards.len()
    );
    for (k, v) in meta {
        t += &format!("  {k}: {v}\n");
    }
    Ok(t)
}
