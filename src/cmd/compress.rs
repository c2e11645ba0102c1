//! `dctchop compress`: files in, a container out.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use crate::args::{fmt_shape, mb, EngineArgs, OutputArgs};
use crate::progress::Progress;
use dctchop::container::{Entropy, Store, DEFAULT_ZSTD_LEVEL};
use dctchop::pipeline::{CompressOptions, QuantChoice};
use dctchop::quant::{CodeType, MixChoice};
use dctchop::tune::QualityTarget;
use dctchop::{Tile, Variant};

/// `--entropy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EntropyName {
    Zstd,
    None,
}

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
    /// Chop factor: 1..=block [default: 4; with a target, the target searches every CF unless
    /// this is given].
    #[arg(long)]
    cf: Option<usize>,
    /// chop (CF×CF square) or triangle (i+j<CF) [default: chop; with a target, both are searched
    /// unless this is given].
    #[arg(long)]
    variant: Option<Variant>,
    /// DCT block size: 4, 8, 16 or 32.
    #[arg(long, default_value_t = 8)]
    block: usize,
    /// Strip size of the matrix products: a multiple of the block, 'full' or 'auto'.
    #[arg(long, default_value = "auto")]
    tile: Tile,
    #[command(flatten)]
    engine: EngineArgs,
    /// Quantization: auto (integer codes, the step chosen from the first batch so it costs at
    /// most ~0.4 dB), a step in the orthonormal coefficient domain, or none (float
    /// coefficients) [default: auto, or none with --store].
    #[arg(long, value_name = "auto|STEP|none")]
    quant: Option<QuantChoice>,
    /// Integer type of the codes: i8 or i16 [default: the smallest that holds the first batch].
    #[arg(long)]
    code: Option<CodeType>,
    /// Lossless stage of the codes: zstd or none (raw codes) [default: zstd].
    #[arg(long, value_name = "zstd|none")]
    entropy: Option<EntropyName>,
    /// zstd level: 1..=22 (higher: smaller and slower to write; reading speed barely changes).
    #[arg(long, value_name = "LEVEL")]
    zstd_level: Option<i32>,
    /// Channel transform of the codes: auto (the opponent transform for 3-channel data when it
    /// stores the first batch smaller), none, or opponent (3 channels) [default: auto].
    #[arg(long, value_name = "auto|none|opponent")]
    mix: Option<MixChoice>,
    /// Choose CF, variant and step for the smallest container whose PSNR (dB, peak = the value
    /// range) is at least this.
    #[arg(long, value_name = "DB", group = "goal")]
    target_psnr: Option<f64>,
    /// Choose CF, variant and step for the best PSNR at this ratio as stored (original bytes
    /// over stored code bytes) or more.
    #[arg(long, value_name = "RATIO", group = "goal")]
    target_ratio: Option<f64>,
    /// Choose CF, variant and step for the smallest container whose largest absolute error is at
    /// most this (checked on the first batch, reported over all data).
    #[arg(long, value_name = "E", group = "goal")]
    max_error: Option<f64>,
    /// Element type of float coefficients (--quant none): f32 or f16.
    #[arg(long)]
    store: Option<Store>,
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
    let target = match (a.target_psnr, a.target_ratio, a.max_error) {
        (Some(v), _, _) => Some(QualityTarget::Psnr(v)),
        (_, Some(v), _) => Some(QualityTarget::Ratio(v)),
        (_, _, Some(v)) => Some(QualityTarget::MaxError(v)),
        _ => None,
    };
    let quant = match (a.quant, a.store) {
        (Some(q), Some(s)) if q != QuantChoice::None => bail!(
            "invalid --store {s} with --quant {q}: --store applies to float coefficients; pass \
             --quant none to store floats, or drop --store"
        ),
        (Some(q), _) => q,
        (None, Some(_)) => QuantChoice::None,
        (None, None) => QuantChoice::Auto,
    };
    if quant == QuantChoice::None {
        for (flag, given) in [
            ("--code", a.code.is_some()),
            ("--entropy", a.entropy.is_some()),
            ("--zstd-level", a.zstd_level.is_some()),
            ("--mix", a.mix.is_some()),
        ] {
            if given {
                bail!("invalid {flag} with --quant none: it applies to quantized codes only");
            }
        }
        if target.is_some() {
            bail!(
                "invalid target with --quant none: a target chooses the quantization step; drop \
                 --quant none (and --store)"
            );
        }
    }
    if target.is_some() {
        if let Some(q @ QuantChoice::Step(_)) = a.quant {
            bail!("invalid --quant {q} with a target: the target chooses the step; drop --quant");
        }
    }
    let entropy = match (a.entropy, a.zstd_level) {
        (Some(EntropyName::None), Some(_)) => {
            bail!("invalid --zstd-level with --entropy none: drop one of them")
        }
        (Some(EntropyName::None), None) => Entropy::None,
        (_, level) => Entropy::Zstd {
            level: level.unwrap_or(DEFAULT_ZSTD_LEVEL),
        },
    };
    let opts = CompressOptions {
        cf: a.cf.unwrap_or(4),
        block: a.block,
        variant: a.variant.unwrap_or(Variant::Chop),
        tile: a.tile,
        batch: a.batch,
        store: a.store.unwrap_or(Store::F32),
        quant,
        code: a.code,
        entropy,
        mix: a.mix.unwrap_or_default(),
        target,
        search_cfs: a.cf.into_iter().collect(),
        search_variants: a.variant.into_iter().collect(),
        shard_bytes: a.shard_mb.saturating_mul(1_000_000),
        max_memory_mb: a.max_memory_mb,
        engine: a.engine.options(),
        force: a.output.force,
    };
    let mut p = Progress::new(a.output.quiet, "compress");
    let r = dctchop::pipeline::compress(&a.inputs, &a.out, &opts, &mut |d, t| p.update(d, t));
    p.finish();
    let r = r?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
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
        if let Some(q) = &r.quant {
            let probe = q.choice.probe.as_ref().map_or(String::new(), |p| {
                format!(
                    "; on the first {} sample(s): PSNR {:.2} dB, ratio {:.2}",
                    q.choice.probe_samples, p.psnr_db, p.ratio
                )
            });
            println!(
                "quantized: {} CF {}, step {:.6}, {} codes{}, entropy {}, max error {:.6}; chosen \
                 in {:.2} s by {}{probe}",
                r.variant,
                r.cf,
                q.step,
                q.code,
                q.mix
                    .map_or(String::new(), |m| format!(" of {m}-mixed channels")),
                q.entropy,
                r.max_error,
                q.choice.seconds,
                q.choice.how
            );
        }
        if let (Some(t), Some(met)) = (r.target, r.target_met) {
            println!(
                "target {t}: {}",
                if met {
                    "met over all of the data"
                } else {
                    "MISSED (see the warning)"
                }
            );
        }
        println!("wrote {} and {}", r.shards[0].display(), r.graph.display());
    }
    Ok(())
}
