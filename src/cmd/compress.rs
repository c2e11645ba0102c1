//! `dctchop compress`: files in, a container out.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use crate::args::{fmt_shape, mb, EngineArgs, OutputArgs};
use crate::progress::Progress;
use dctchop::container::Store;
use dctchop::pipeline::CompressOptions;
use dctchop::{Tile, Variant};

#[derive(Args)]
pub struct CompressArgs {
    /// Inputs: one .npy (uint8/uint16/int16/int32/float16/32/64; (H,W), (C,H,W) or (N,C,H,W)),
    /// or image files (PNG, JPEG, TIFF) and directories of images, all of one size, or one HDF5
    /// dataset FILE.h5:/DATASET[:LAYOUT] (LAYOUT nhw, hwc, nhwc; needs `--features hdf5`).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Container stem: writes OUT.00000.safetensors, ... and OUT.decompress.onnx.
    #[arg(short, long)]
    out: PathBuf,
    /// Chop factor: 1..=block.
    #[arg(long, default_value_t = 4)]
    cf: usize,
    /// chop (CF×CF square) or triangle (i+j<CF).
    #[arg(long, default_value = "chop")]
    variant: Variant,
    /// DCT block size: 4, 8, 16 or 32.
    #[arg(long, default_value_t = 8)]
    block: usize,
    /// Strip size of the matrix products: a multiple of the block, 'full' or 'auto'.
    #[arg(long, default_value = "auto")]
    tile: Tile,
    #[command(flatten)]
    engine: EngineArgs,
    /// Element type of the stored coefficients: f32 or f16.
    #[arg(long, default_value = "f32")]
    store: Store,
    /// Samples per graph run (also the batch of the written decompress graph).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Largest shard file in MB (10^6 bytes); one sample per shard if a sample is larger.
    #[arg(long, default_value_t = 1024)]
    shard_mb: u64,
    /// Refuse inputs whose batch would need more memory than this many MB.
    #[arg(long, default_value_t = 4096)]
    max_memory_mb: u64,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: CompressArgs) -> Result<()> {
    if a.shard_mb == 0 {
        bail!("invalid --shard-mb = 0: allowed is an integer >= 1 (MB)");
    }
    let opts = CompressOptions {
        cf: a.cf,
        block: a.block,
        variant: a.variant,
        tile: a.tile,
        batch: a.batch,
        store: a.store,
        shard_bytes: a.shard_mb.saturating_mul(1_000_000),
        max_memory_mb: a.max_memory_mb,
        engine: a.engine.options(),
        force: a.output.force,
    };
    let mut p = Progress::new(a.output.quiet, "compress");
    let r = dctchop::pipeline::compress(&a.inputs, &a.out, &opts, &mut |d, t| p.update(d, t));
    p.finish();
    let r = r?;
    if a.output.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if !a.output.quiet {
        let psnr = r
            .psnr_db
            .map_or("inf (exact)".to_string(), |v| format!("{v:.2} dB"));
        println!(
            "compressed {} ({} {}, {:.2} MB) -> {} shard(s), {:.2} MB: ratio on disk {:.3} \
             (coefficient ratio {:.3}), PSNR {psnr} (peak = range {}..{}), {:.1} MB/s",
            r.input,
            fmt_shape(&r.original_shape),
            r.original_dtype,
            mb(r.original_bytes),
            r.shards.len(),
            mb(r.file_bytes),
            r.file_ratio,
            r.coefficient_ratio,
            r.value_min,
            r.value_max,
            r.mb_per_s
        );
        println!("wrote {} and {}", r.shards[0].display(), r.graph.display());
    }
    Ok(())
}
