//! `dctchop decompress`: a container back to `.npy` or PNG files.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::args::{fmt_shape, EngineArgs, OutputArgs};
use crate::progress::Progress;
use dctchop::pipeline::{DecompressOptions, OutputDtype};

#[derive(Args)]
pub struct DecompressArgs {
    /// A container: its stem OUT or any shard OUT.NNNNN.safetensors.
    input: PathBuf,
    /// OUT.npy ([N,C,H,W], float32 unless --dtype original), OUT.png (one sample) or a
    /// directory (one PNG per sample).
    #[arg(short, long)]
    out: PathBuf,
    /// Element type of a .npy output: float32, or original (the compressed data's type:
    /// integers rounded and clamped to their range) [default: float32].
    #[arg(long, value_name = "float32|original")]
    dtype: Option<OutputDtype>,
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
    let opts = DecompressOptions {
        engine,
        batch: a.batch,
        force: a.output.force,
        budget,
        dtype: a.dtype.unwrap_or_default(),
    };
    let r =
        dctchop::pipeline::decompress_within(&a.input, &a.out, &opts, &mut |d, t| p.update(d, t));
    p.finish();
    let r = r?;
    if a.output.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if !a.output.quiet {
        println!(
            "decompressed {} samples {} (original {}) -> {} ({} file(s), {}), {:.1} MB/s",
            r.samples,
            fmt_shape(&r.shape),
            r.original_dtype,
            a.out.display(),
            r.outputs.len(),
            r.dtype,
            r.mb_per_s
        );
    }
    Ok(())
}
