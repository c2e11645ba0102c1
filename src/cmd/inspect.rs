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
    /// For a container: skip reading every payload to check its checksums (and zstd frames).
    #[arg(long)]
    no_verify: bool,
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
    use dctchop::container::{Entropy, Payload};
    let c = dctchop::container::open(&a.file)?;
    if !a.no_verify {
        c.verify()?;
    }
    let h = &c.header;
    let meta: std::collections::BTreeMap<_, _> = h.raw.iter().collect();
    let file_bytes = c.file_bytes()?;
    let payload_bytes: u64 = c.headers.iter().map(|h| h.data_len).sum();
    let original = h.info.original_bytes();
    let clamped: u64 = c.headers.iter().map(|h| h.clamped).sum();
    let (payload, bits, step, entropy, level) = match h.payload {
        Payload::Float(d) => (
            format!("float coefficients ({d})"),
            d.bytes() * 8,
            None,
            "none",
            None,
        ),
        Payload::Codes { code, entropy } => {
            let (e, l) = match entropy {
                Entropy::None => ("none", None),
                Entropy::Zstd { level } => ("zstd", Some(level)),
            };
            let step = h.spec.quant.as_ref().map(|q| q.step);
            let mix = h.spec.quant.as_ref().and_then(|q| q.mix);
            let what = match mix {
                Some(m) => format!("integer codes ({code}) of {m}-mixed channels"),
                None => format!("integer codes ({code})"),
            };
            (what, code.bits(), step, e, l)
        }
    };
    let summary = serde_json::json!({
        "samples": c.len(),
        "shards": c.shards.len(),
        "payload": payload,
        "bits": bits,
        "quant_step": step,
        "entropy": entropy,
        "zstd_level": level,
        "clamped": clamped,
        "original_bytes": original,
        "payload_bytes": payload_bytes,
        "file_bytes": file_bytes,
        "ratio_on_disk": original as f64 / file_bytes.max(1) as f64,
        "stored_ratio": original as f64 / payload_bytes.max(1) as f64,
        "coefficient_ratio": h.spec.compression_ratio(),
        "checksums": if a.no_verify { "not checked" } else { "verified" },
    });
    if a.json {
        let v = serde_json::json!({
            "container": c.stem,
            "shards": c.shards,
            "summary": summary,
            "metadata": meta,
        });
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let mut t = format!(
        "container {} ({} shard(s), {} samples of {:?} {})\n",
        c.stem.display(),
        c.shards.len(),
        c.len(),
        h.info.shape,
        h.info.dtype
    );
    t += &format!(
        "  stored:       {payload}, {bits} bits{}, entropy {entropy}{}\n",
        step.map_or(String::new(), |s| format!(", step {s}")),
        level.map_or(String::new(), |l| format!(" (level {l})")),
    );
    t += &format!(
        "  spec:         {} CF {}, block {}\n",
        h.spec.variant, h.spec.cf, h.spec.block
    );
    t += &format!(
        "  ratio:        {:.3} on disk ({} of {} bytes; payload alone {:.3}), coefficient ratio \
         {:.3}\n",
        original as f64 / file_bytes.max(1) as f64,
        file_bytes,
        original,
        original as f64 / payload_bytes.max(1) as f64,
        h.spec.compression_ratio()
    );
    if matches!(h.payload, Payload::Codes { .. }) {
        t += &format!("  clamped:      {clamped} codes\n");
    }
    t += &format!(
        "  checksums:    {}\n",
        if a.no_verify {
            "not checked (--no-verify)"
        } else {
            "verified (every shard's CRC and zstd frame)"
        }
    );
    t += "metadata (shard 0):\n";
    for (k, v) in meta {
        t += &format!("  {k}: {v}\n");
    }
    Ok(t)
}
