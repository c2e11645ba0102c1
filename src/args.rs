//! Flag groups shared by several subcommands, and their parsers.

use clap::Args;

use dctchop::quant::ChannelMix;
use dctchop::target::{Overrides, Target};
use dctchop::{CodeType, Dtype, Quant, Spec, Tile, Variant};

/// Image size: `N` (square) or `HxW`.
#[derive(Clone, Copy, Debug)]
pub struct Res(pub usize, pub usize);

pub fn parse_res(s: &str) -> Result<Res, String> {
    let bad = || format!("invalid --res '{s}': use N (e.g. 256) or HxW (e.g. 344x403), sizes >= 1");
    let parse = |t: &str| t.trim().parse::<usize>().ok().filter(|&v| v >= 1);
    match s.split_once(['x', 'X']) {
        Some((h, w)) => Ok(Res(parse(h).ok_or_else(bad)?, parse(w).ok_or_else(bad)?)),
        None => parse(s).map(|n| Res(n, n)).ok_or_else(bad),
    }
}

/// The spec flags of `export`.
#[derive(Args)]
pub struct SpecArgs {
    /// Chop factor: keep CF×CF (chop) or the i+j<CF triangle of each block; 1..=block.
    #[arg(long)]
    pub cf: usize,
    /// Image size: N or HxW (any sizes >= 1; padded to whole blocks inside the graph).
    #[arg(long, value_parser = parse_res)]
    pub res: Res,
    /// Channels per sample.
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    /// Samples per graph run (static batch).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// DCT block size: 4, 8, 16 or 32.
    #[arg(long, default_value_t = 8)]
    pub block: usize,
    /// chop (CF×CF square) or triangle (i+j<CF) [default: chop, or the target's].
    #[arg(long)]
    pub variant: Option<Variant>,
    /// Strip size of the matrix products: a multiple of the block, 'full' (the paper's dense
    /// form) or 'auto' [default: auto, or the target's].
    #[arg(long)]
    pub tile: Option<Tile>,
    /// Partial serialization: graphs process one (H/s × W/s) chunk; s must divide the block
    /// counts [default: 1, or what the target needs].
    #[arg(long)]
    pub serialize: Option<usize>,
    /// Element type of graph inputs, outputs and constants: f32 or f16 [default: f32, or the
    /// target's].
    #[arg(long)]
    pub dtype: Option<Dtype>,
    /// Platform profile: cpu, cuda, cs2, sn30, groq, ipu. Sets the defaults of --tile,
    /// --serialize, --dtype and --variant (explicit flags win) and checks the graphs against the
    /// platform's memory units.
    #[arg(long)]
    pub target: Option<Target>,
    /// Quantize with this step (in the orthonormal coefficient domain): the compress graph
    /// outputs coefficients divided by the step (the host rounds them to codes), the decompress
    /// graph takes int8/int16 codes.
    #[arg(long, value_name = "STEP")]
    pub quant: Option<f64>,
    /// Code type of the quantized graphs: i8 or i16 [default: i16].
    #[arg(long, requires = "quant")]
    pub code: Option<CodeType>,
    /// Per-frequency multipliers of the step for the vertical frequencies 0..CF, comma separated
    /// (e.g. 1,1.5,2,3); the step of (i, j) is STEP x rows[i] x cols[j] [default: all 1].
    #[arg(
        long,
        value_name = "M,M,...",
        value_delimiter = ',',
        requires = "quant"
    )]
    pub quant_rows: Vec<f64>,
    /// Per-frequency multipliers of the step for the horizontal frequencies 0..CF [default: all
    /// 1].
    #[arg(
        long,
        value_name = "M,M,...",
        value_delimiter = ',',
        requires = "quant"
    )]
    pub quant_cols: Vec<f64>,
    /// Mix the channels of the codes with this orthonormal transform: opponent (3 channels;
    /// the compress graph ends and the decompress graph begins with one MatMul over the
    /// channel axis) [default: none].
    #[arg(long, value_name = "opponent", requires = "quant")]
    pub mix: Option<ChannelMix>,
}

impl SpecArgs {
    /// The spec: explicit flags, then the target profile's defaults (cpu's when no target).
    pub fn spec(&self) -> Spec {
        let base = Spec::new(self.res.0, self.res.1, self.cf)
            .with_batch(self.batch)
            .with_channels(self.channels)
            .with_block(self.block);
        let user = Overrides {
            tile: self.tile,
            serialize: self.serialize,
            dtype: self.dtype,
            variant: self.variant,
        };
        let spec = self
            .target
            .unwrap_or(Target::Cpu)
            .profile()
            .apply(base, user);
        match self.quant {
            Some(step) => spec.with_quant(
                Quant::uniform(self.code.unwrap_or(CodeType::I16), step)
                    .with_multipliers(self.quant_rows.clone(), self.quant_cols.clone())
                    .with_mix(self.mix),
            ),
            None => spec,
        }
    }
}

/// The engine flags shared by `run`, `compress` and `decompress`.
#[derive(Args)]
pub struct EngineArgs {
    /// auto (native kernels for compress/decompress; tract for `run`, which runs ONNX files;
    /// ort on CUDA), native, tract (ONNX graphs in pure Rust) or ort (ONNX Runtime 1.31, loaded
    /// at run time).
    #[arg(long, default_value = "auto")]
    pub engine: dctchop::EngineKind,
    /// cpu, or cuda[:N] (ort engine with onnxruntime-gpu only).
    #[arg(long, default_value = "cpu")]
    pub device: dctchop::Device,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl EngineArgs {
    pub fn options(&self) -> dctchop::EngineOptions {
        dctchop::EngineOptions {
            kind: self.engine,
            threads: self.threads,
            device: self.device,
        }
    }
}

/// How `compress` and `decompress` write and report.
#[derive(Args)]
pub struct OutputArgs {
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
    /// No progress bar and no summary line.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `[1, 3, 256, 256]`.
pub fn fmt_shape(s: &[usize]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Megabytes (10^6 bytes).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
