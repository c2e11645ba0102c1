//! `dctchop decompress`: a container back to `.npy` or PNG files.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::args::{fmt_shape, EngineArgs, OutputArgs};
use crate::progress::Progress;

#[derive(Args)]
pub struct DecompressArgs {
    /// A container: its stem OUT or any shard OUT.NNNNN.safetensors.
    input: PathBuf,
    /// OUT.npy (float32 [N,C,H,W]), OUT.png (one sample) or a directory (one PNG per sample).
    #[arg(short, long)]
    out: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Samples per graph run.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Refuse containers whose batch would need more memory than this many MB (from the
    /// shards' metadata, before anything is read).
    #[arg(long, default_value_t = dctchop::budget::DEFAULT_MB)]
    max_memory_mb: u64,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: DecompressArgs) -> Result<()> {
    let engine = a.engine.options();
    let budget = dctchop::budget::Budget::new(a.max_memory_mb)?;
    engine.check()?;
    let mut p = Progress::new(a.output.quiet, "decompress");
    let r = dctchop::pipeline::decompress_within(
        &a.input,
        &a.out,
        &engine,
        a.batch,
        a.output.force,
        budget,
        &mut |d, t| p.update(d, t),
    );
    p.finish();
    let r = r?;
    if a.output.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if !a.output.quiet {
        println!(
            "decompressed {} samples {} (original {}) -> {} ({} file(s)), {:.1} MB/s",
            r.samples,
            fmt_shape(&r.shape),
            r.original_dtype,
            a.out.display(),
            r.outputs.len(),
            r.mb_per_s
        );
    }
    Ok(())
}
