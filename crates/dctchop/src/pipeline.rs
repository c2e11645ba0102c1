//! Files in, files out: compress user data into a container, and decompress a container into
//! `.npy` or PNG files. Both stream in batches (memory: one batch of input, its coefficients and
//! the graphs' working tensors; see [`estimate_batch_bytes`]).

use ndarray::{Array4, Axis};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::budget::Budget;
use crate::container::{self, DatasetInfo, Entropy, Store};
use crate::error::{Error, Result};
use crate::graph::Direction;
use crate::input;
use crate::input::SampleType;
use crate::output::{Commit, CreatedDirs};
use crate::pixels::{Pixels, PixelsView};
use crate::quant::{ChannelMix, CodeType, MixChoice};
use crate::spec::Dtype;
use crate::spec::{Spec, Tile, Variant};
use crate::tune::{self, Choice, Probe, QualityTarget};
use crate::{Codec, EngineOptions};

/// Whether and how to quantize the coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantChoice {
    /// Float coefficients (container v1), stored as `store`.
    None,
    /// Integer codes with a step chosen from the first batch ([`crate::tune::auto`]).
    Auto,
    /// Integer codes with this step.
    Step(f64),
}

impl std::str::FromStr for QuantChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(QuantChoice::None),
            "auto" => Ok(QuantChoice::Auto),
            _ => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(QuantChoice::Step(v)),
                _ => Err(format!(
                    "invalid quantization '{s}': allowed are none, auto or a step > 0"
                )),
            },
        }
    }
}

impl std::fmt::Display for QuantChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuantChoice::None => f.write_str("none"),
            QuantChoice::Auto => f.write_str("auto"),
            QuantChoice::Step(v) => write!(f, "{v}"),
        }
    }
}

/// How to compress.
#[derive(Clone, Debug)]
pub struct CompressOptions {
    pub cf: usize,
    pub block: usize,
    pub variant: Variant,
    pub tile: Tile,
    /// Samples per graph run (capped at the dataset size); also the probe that `auto` and the
    /// targets look at.
    pub batch: usize,
    /// Element type of float coefficients (with `quant` = None).
    pub store: Store,
    pub quant: QuantChoice,
    /// Code type of quantized coefficients; None picks the smallest that holds the probe.
    pub code: Option<CodeType>,
    /// The lossless stage of quantized coefficients.
    pub entropy: Entropy,
    /// Whether quantized codes mix the channels first ([`crate::quant::ChannelMix`]).
    pub mix: MixChoice,
    /// Choose CF, variant and step to meet this (needs `quant` = Auto).
    pub target: Option<QualityTarget>,
    /// The CFs and variants a target searches (empty: all, 1..=block and chop, triangle).
    pub search_cfs: Vec<usize>,
    pub search_variants: Vec<Variant>,
    /// Largest shard file in bytes (at least one sample per shard; see
    /// [`container::samples_per_shard`]).
    pub shard_bytes: u64,
    /// Refuse when one batch would need more than this many MB (see [`estimate_batch_bytes`]).
    pub max_memory_mb: u64,
    pub engine: EngineOptions,
    pub force: bool,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            cf: 4,
            block: 8,
            variant: Variant::Chop,
            tile: Tile::Auto,
            batch: 8,
            store: Dtype::F32,
            quant: QuantChoice::Auto,
            code: None,
            entropy: Entropy::Zstd {
                level: container::DEFAULT_ZSTD_LEVEL,
            },
            mix: MixChoice::Auto,
            target: None,
            search_cfs: Vec::new(),
            search_variants: Vec::new(),
            shard_bytes: 1024 * 1_000_000,
            max_memory_mb: 4096,
            engine: EngineOptions::auto(),
            force: false,
        }
    }
}

/// The quantization `compress` used and how it was chosen.
#[derive(Clone, Debug, Serialize)]
pub struct QuantReport {
    pub step: f64,
    pub code: CodeType,
    /// The channel transform of the codes, if any.
    pub mix: Option<ChannelMix>,
    /// "none" or "zstd (level N)".
    pub entropy: String,
    /// How the step (and with a target, CF and variant) was chosen, and on what.
    pub choice: Choice,
    /// Codes clamped to ±max over all of the data.
    pub clamped: u64,
}

/// What `compress` did.
#[derive(Clone, Debug, Serialize)]
pub struct CompressReport {
    pub input: String,
    pub shards: Vec<PathBuf>,
    pub graph: PathBuf,
    pub samples: usize,
    pub original_shape: [usize; 4],
    pub original_dtype: SampleType,
    pub original_bytes: u64,
    pub cf: usize,
    pub variant: Variant,
    /// The quantization (None: float coefficients).
    pub quant: Option<QuantReport>,
    /// Coefficient bytes in all shards (after the entropy stage; headers excluded).
    pub payload_bytes: u64,
    /// Bytes of all shard files (headers included; the .onnx graph excluded).
    pub file_bytes: u64,
    /// Kept coefficients vs pixels (the spec's ratio, padding counted).
    pub coefficient_ratio: f64,
    /// original_bytes / payload_bytes (what the container metadata records).
    pub stored_ratio: f64,
    /// original_bytes / file_bytes.
    pub file_ratio: f64,
    pub value_min: f64,
    pub value_max: f64,
    /// PSNR of the round trip (compress, store, decompress) in dB, peak = value_max - value_min
    /// (1 for constant data); computed in f64. None when the round trip is exact.
    pub psnr_db: Option<f64>,
    /// Largest absolute error of the round trip over all of the data.
    pub max_error: f64,
    /// The target, and whether all of the data met it (PSNR, `stored_ratio`, max error).
    pub target: Option<QualityTarget>,
    pub target_met: Option<bool>,
    /// What the user should know: clamped codes, a missed target, a raised step.
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// Original bytes per second, in MB/s.
    pub mb_per_s: f64,
}

/// Bytes one batch may use while compressing: the f32 input, padded copies and the graphs'
/// intermediate tensors (about 6 image-sized f32 tensors per sample), for `batch` samples.
pub fn estimate_batch_bytes(spec: &Spec, batch: usize) -> u64 {
    let (hp, wp) = spec.padded();
    // Saturating: a crafted container's spec must read as "too large", never wrap to small.
    crate::budget::bytes_of(&[batch, spec.channels, hp, wp], 4 * 6).unwrap_or(u64::MAX)
}

/// `x` in standard (C) layout, as the batch scans need; readers return it so but for
/// Fortran-ordered in-memory data.
fn standard(x: Array4<f32>) -> Array4<f32> {
    if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    }
}

/// Input bytes (as f32) transformed at once by `compress`: a group of samples whose halves stay
/// in the two cores' L2 caches (2 MiB each here) from the scan to the round-trip comparison, and
/// few enough hand-offs to the kernel's pool (1 MiB groups measured slower: bench/README.md).
const GROUP_BYTES: usize = 4 << 20;

/// Sum of squared differences and largest absolute difference of `x` and `back`, in f64.
fn error_stats(x: &[f32], back: &[f32]) -> (f64, f64) {
    block_transform::diff_stats(x, back).expect("a group and its round trip have one shape")
}

/// The error for non-finite values in `x` (samples from `start`), counting them in the rest of
/// the input too (`rest`: the batches after `x`).
fn non_finite(
    ds: &input::Dataset,
    rest: &mut dyn Iterator<Item = Result<Array4<f32>>>,
    x: &Array4<f32>,
    start: usize,
) -> Result<Error> {
    let mut total = x.iter().filter(|v| !v.is_finite()).count();
    for batch in rest {
        total += batch?.iter().filter(|v| !v.is_finite()).count();
    }
    let mut file = ds.file_of(start);
    if let Some(i) = x
        .outer_iter()
        .position(|s| s.iter().any(|v| !v.is_finite()))
    {
        file = ds.file_of(start + i);
    }
    let whole = if ds.files().len() > 1 {
        format!(" (counted over {})", ds.describe())
    } else {
        String::new()
    };
    Ok(Error::invalid_input(
        file,
        format!(
            "contains {total} non-finite values (NaN or Inf){whole}: not supported, replace them \
             (e.g. numpy.nan_to_num) before compressing"
        ),
    ))
}

/// What the transform sends to the container writer's thread.
enum Pushed {
    Codes(crate::quant::Codes, u64),
    Floats(ndarray::ArrayD<f32>),
}

/// Check option combinations that do not depend on the data.
fn check_options(opts: &CompressOptions) -> Result<()> {
    if opts.batch == 0 {
        return Err(Error::invalid_option("batch", 0, "an integer >= 1"));
    }
    if let Some(t) = opts.target {
        t.validate()?;
        if opts.quant != QuantChoice::Auto {
            return Err(Error::invalid_option(
                "quant",
                opts.quant,
                "auto with a target (the target chooses the step)",
            ));
        }
    }
    if let QuantChoice::Step(s) = opts.quant {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::invalid_option(
                "quant",
                s,
                "none, auto or a step > 0",
            ));
        }
    }
    if let Entropy::Zstd { level } = opts.entropy {
        if !crate::entropy::LEVELS.contains(&level) {
            return Err(Error::invalid_option(
                "zstd-level",
                level,
                format!(
                    "{}..={}",
                    crate::entropy::LEVELS.start(),
                    crate::entropy::LEVELS.end()
                ),
            ));
        }
    }
    if let (QuantChoice::None, Some(code)) = (opts.quant, opts.code) {
        return Err(Error::invalid_option(
            "code",
            code,
            "only with quantization (--quant auto or a step)",
        ));
    }
    if let (QuantChoice::None, MixChoice::Use(m)) = (opts.quant, opts.mix) {
        return Err(Error::invalid_option(
            "mix",
            m,
            "only with quantization (--quant auto or a step): the channel transform changes \
             nothing for float coefficients",
        ));
    }
    Ok(())
}

/// The spec of the data, quantized as `opts` asks: the user's step, the auto step or the target's
/// choice, made on the probe `x` (the first batch).
fn choose(
    ds: &input::Dataset,
    base: &Spec,
    x: &Array4<f32>,
    opts: &CompressOptions,
) -> Result<(Spec, Option<Choice>)> {
    let (lo, hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v as f64), h.max(v as f64))
        });
    let probe = Probe {
        x: x.view(),
        peak: if hi > lo { hi - lo } else { 1.0 },
        original_sample_bytes: (ds.channels * ds.height * ds.width * ds.elem_bytes()) as f64,
    };
    let choice = match (opts.quant, opts.target) {
        (QuantChoice::None, _) => return Ok((base.clone(), None)),
        (_, Some(target)) => {
            let all_cfs: Vec<usize> = (1..=base.block).collect();
            let cfs = if opts.search_cfs.is_empty() {
                &all_cfs
            } else {
                &opts.search_cfs
            };
            let variants = if opts.search_variants.is_empty() {
                &[Variant::Chop, Variant::Triangle][..]
            } else {
                &opts.search_variants[..]
            };
            tune::search(
                &probe,
                base,
                variants,
                cfs,
                target,
                opts.code,
                opts.mix,
                opts.entropy,
                &opts.engine,
            )?
        }
        (QuantChoice::Auto, None) => tune::auto(
            &probe,
            base,
            opts.code,
            opts.mix,
            opts.entropy,
            &opts.engine,
        )?,
        (QuantChoice::Step(step), None) => tune::given_step(
            &probe,
            base,
            step,
            opts.code,
            opts.mix,
            opts.entropy,
            &opts.engine,
        )?,
    };
    let mut spec = base
        .clone()
        .with_variant(choice.variant)
        .with_quant(choice.quant.clone());
    spec.cf = choice.cf;
    Ok((spec, Some(choice)))
}

/// Compress `inputs` into the container `out` (a stem: shards `out.NNNNN.safetensors`) and write
/// the decompress graph `out.decompress.onnx` beside it. `progress(done, total)` is called after
/// each batch.
pub fn compress(
    inputs: &[PathBuf],
    out: &Path,
    opts: &CompressOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CompressReport> {
    let t0 = Instant::now();
    check_options(opts)?;
    // 1..=physical memory: an allocation beyond it would abort, leaving files behind.
    Budget::new(opts.max_memory_mb)?;
    let ds = input::open(inputs)?;
    let stem = container::output_stem(out)?;
    let batch = opts.batch.min(ds.n);
    let base = Spec::new(ds.height, ds.width, opts.cf)
        .with_channels(ds.channels)
        .with_batch(batch)
        .with_block(opts.block)
        .with_variant(opts.variant)
        .with_tile(opts.tile);
    let at_input = |e: Error| Error::invalid_input(ds.file_of(0), format!("cannot compress: {e}"));
    base.validate().map_err(at_input)?;
    let cap = opts.max_memory_mb.saturating_mul(1_000_000);
    let need = estimate_batch_bytes(&base, batch);
    if need > cap {
        let one = estimate_batch_bytes(&base, 1);
        let fits = cap / one.max(1);
        let hint = if fits == 0 {
            "one sample alone is over the cap: raise --max-memory-mb".to_string()
        } else {
            format!("lower --batch (allowed: 1..={fits}) or raise --max-memory-mb")
        };
        return Err(Error::TooLarge {
            path: ds.file_of(0),
            message: format!(
                "too large for the memory cap: a batch of {batch} samples of {}x{}x{} needs about \
                 {} MB, over --max-memory-mb {}; {hint}",
                ds.channels,
                ds.height,
                ds.width,
                need.div_ceil(1_000_000),
                opts.max_memory_mb
            ),
        });
    }
    // Refuse to overwrite before spending time on the data (the writer checks every shard).
    let graph_file = container::graph_path(&stem);
    crate::output::check_writable(&container::shard_path(&stem, 0), opts.force)?;
    crate::output::check_writable(&graph_file, opts.force)?;

    let mut reader = ds.reader()?;
    let first = reader
        .next_batch(batch)?
        .map(standard)
        .ok_or_else(|| Error::invalid_input(ds.file_of(0), "holds no samples"))?;
    let first_range = block_transform::range(first.as_slice().expect("standard layout"));
    if !first_range.finite {
        let mut rest = std::iter::from_fn(|| reader.next_batch(batch).transpose());
        return Err(non_finite(&ds, &mut rest, &first, 0)?);
    }
    let (spec, choice) = choose(&ds, &base, &first, opts).map_err(|e| match e {
        Error::InvalidSpec { .. } => at_input(e),
        // A target or step the data cannot meet: say which data.
        Error::InvalidOption { .. } => Error::invalid_input(ds.file_of(0), e.to_string()),
        e => e,
    })?;
    let mut codec = Codec::new(&spec, &opts.engine).map_err(at_input)?;
    let graph = codec
        .plan()
        .model(Direction::Decompress, crate::DEFAULT_OPSET)?
        .encode()?;
    let payload = container::Payload::for_spec(&spec, opts.store, opts.entropy);
    let writer = container::Writer::create(
        &stem,
        &spec,
        payload,
        ds.n,
        opts.shard_bytes,
        opts.force,
        std::slice::from_ref(&graph_file),
    )?;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut sse, mut worst) = (0f64, 0f64);
    let mut clamped_total = 0u64;
    // After the first batch (the probe) the data is read and transformed in groups of samples
    // small enough that the transform and the round trip behind the reported PSNR and max error
    // find the group still in the cores' caches; the native engine compares each strip of the
    // round trip with the input as it writes it. Three threads overlap: a reader (system calls,
    // conversion to f32 unless the engine reads integer samples itself, the range and NaN
    // scan) one batch ahead, this thread (the transform,
    // on the kernel's pool), and the writer (entropy stage, shard files). Buffers circulate, so
    // memory stays at a few groups.
    // The reader reads several groups at once: fewer, larger system calls. Graph engines run
    // whole batches of the spec's size (a smaller group would be padded to one): for them both
    // are the batch.
    let sample_bytes = ds.channels * ds.height * ds.width * 4;
    let (group, read_group) = if codec.any_batch() {
        let group = (GROUP_BYTES / sample_bytes.max(1)).clamp(1, batch);
        let read = (crate::input::READ_BUFFER_BYTES / sample_bytes.max(1)).max(group);
        (group, read)
    } else {
        (batch, batch)
    };
    let mut back_buf = Array4::<f32>::zeros((group, ds.channels, ds.height, ds.width));
    // Integer samples (uint8, ...) stay integers where the engine reads them itself: a quarter
    // of the bytes to read, hand over, transform and compare for uint8.
    let integer_pixels = spec.is_quantized() && codec.takes_integer_pixels();
    let writer = std::thread::scope(|scope| -> Result<container::Writer> {
        // Each batch comes with its range (and the NaN check), scanned on the reader's thread.
        let (to_main, groups) =
            std::sync::mpsc::sync_channel::<Result<(Pixels, block_transform::Range)>>(1);
        let (recycle, spare) = std::sync::mpsc::channel::<Pixels>();
        scope.spawn(move || {
            loop {
                while let Ok(x) = spare.try_recv() {
                    reader.recycle_pixels(x);
                }
                let next = if integer_pixels {
                    reader.next_pixels_with_range(read_group)
                } else {
                    reader
                        .next_batch_with_range(read_group)
                        .map(|b| b.map(|(x, range)| (Pixels::F32(x), range)))
                };
                let next = next
                    .transpose()
                    .map(|r| r.map(|(x, range)| (x.standard(), range)));
                match next {
                    // The main thread stopped (an error): stop reading.
                    Some(r) => {
                        if to_main.send(r).is_err() {
                            break;
                        }
                    }
                    None => break,
                }
            }
        });
        // The writer codes a whole zstd frame at once (tens of ms): room for a frame's worth
        // of groups keeps the transform going meanwhile instead of taking turns with it.
        let depth = writer.frame_samples().div_ceil(group) + 1;
        let (to_writer, pushed) = std::sync::mpsc::sync_channel::<Pushed>(depth);
        let mut writer = writer;
        let writing = scope.spawn(move || -> Result<container::Writer> {
            for p in pushed {
                match p {
                    Pushed::Codes(c, clamped) => writer.push_codes(c.view(), clamped)?,
                    Pushed::Floats(y) => writer.push(y.view())?,
                }
            }
            Ok(writer)
        });
        let mut start = 0;
        let first = (Pixels::F32(first), first_range);
        let mut groups = std::iter::once(Ok(first)).chain(groups.iter());
        let mut stopped = false;
        while let Some(item) = groups.next() {
            let (x, range) = item?;
            if !range.finite {
                let mut rest = groups.by_ref().map(|r| r.map(|(x, _)| x.into_f32()));
                return Err(non_finite(&ds, &mut rest, &x.into_f32(), start)?);
            }
            lo = lo.min(range.lo as f64);
            hi = hi.max(range.hi as f64);
            for g0 in (0..x.shape()[0]).step_by(group) {
                let k = group.min(x.shape()[0] - g0);
                let xg = x.view().samples(g0..g0 + k);
                let mut back = back_buf.slice_mut(ndarray::s![0..k, .., .., ..]);
                let (msg, (gsse, gworst)) = if spec.is_quantized() {
                    let (codes, clamped) = codec.compress_codes(xg)?;
                    clamped_total += clamped as u64;
                    let stats = codec.decompress_codes_compare(codes.view(), back, xg)?;
                    (Pushed::Codes(codes, clamped as u64), stats)
                } else {
                    let PixelsView::F32(xg) = xg else {
                        unreachable!("integer samples are read only for quantized specs")
                    };
                    let xs = xg.as_slice().expect("standard layout");
                    let mut y = codec.compress(xg)?;
                    if opts.store == Dtype::F16 {
                        y.mapv_inplace(|v| half::f16::from_f32(v).to_f32());
                    }
                    back.assign(&codec.decompress(y.view())?);
                    let stats = error_stats(xs, back.as_slice().expect("standard layout"));
                    (Pushed::Floats(y), stats)
                };
                sse += gsse;
                worst = worst.max(gworst);
                if to_writer.send(msg).is_err() {
                    stopped = true; // The writer failed: its error is returned below.
                    break;
                }
            }
            start += x.shape()[0];
            let _ = recycle.send(x);
            if stopped {
                break;
            }
            progress(start, ds.n);
        }
        drop(to_writer);
        writing
            .join()
            .expect("the container writer thread does not panic")
    })?;
    let info = DatasetInfo {
        dtype: ds.dtype,
        shape: ds.shape(),
        min: lo,
        max: hi,
    };
    let shards = writer.finish(&info, &[(graph_file.clone(), graph)], Some(&graph_file))?;
    let c = container::open(&stem)?;
    let payload_bytes: u64 = c.headers.iter().map(|h| h.data_len).sum();
    let file_bytes = c.file_bytes()?;
    let elems = ds.shape().iter().product::<usize>() as u64;
    let original_bytes = elems * ds.elem_bytes() as u64;
    let mse = sse / elems as f64;
    let peak = if hi > lo { hi - lo } else { 1.0 };
    let psnr_db = (mse > 0.0).then(|| 10.0 * (peak * peak / mse).log10());
    let stored_ratio = original_bytes as f64 / payload_bytes.max(1) as f64;
    let mut warnings = Vec::new();
    if clamped_total > 0 {
        let kept = (ds.n * spec.compressed_shape()[1..].iter().product::<usize>()) as f64;
        warnings.push(format!(
            "{clamped_total} codes ({:.4}%) were clamped to +-{} (values larger than the first \
             batch's): pass a larger --quant step or --code i16",
            100.0 * clamped_total as f64 / kept,
            spec.quant.as_ref().map_or(0, |q| q.code.max())
        ));
    }
    let target_met = opts
        .target
        .map(|t| t.met(psnr_db.unwrap_or(f64::INFINITY), stored_ratio, worst));
    if let (Some(t), Some(false)) = (opts.target, target_met) {
        let probe = choice.as_ref().map_or(0, |c| c.probe_samples);
        warnings.push(format!(
            "the whole dataset misses the target {t}: PSNR {}, ratio {stored_ratio:.3}, max \
             error {worst:.6} (the choice was made on the first {probe} sample(s)); compress \
             again with a stricter target or a larger --batch",
            psnr_db.map_or("inf".to_string(), |p| format!("{p:.2} dB"))
        ));
    }
    if let Some(ch) = &choice {
        warnings.extend(ch.notes.iter().cloned());
    }
    let quant = match (&spec.quant, choice) {
        (Some(q), Some(choice)) => Some(QuantReport {
            step: q.step,
            code: q.code,
            mix: q.mix,
            entropy: opts.entropy.to_string(),
            choice,
            clamped: clamped_total,
        }),
        _ => None,
    };
    let seconds = t0.elapsed().as_secs_f64();
    Ok(CompressReport {
        input: ds.describe(),
        shards,
        graph: graph_file,
        samples: ds.n,
        original_shape: ds.shape(),
        original_dtype: ds.dtype,
        original_bytes,
        cf: spec.cf,
        variant: spec.variant,
        quant,
        payload_bytes,
        file_bytes,
        coefficient_ratio: spec.compression_ratio(),
        stored_ratio,
        file_ratio: original_bytes as f64 / file_bytes as f64,
        value_min: lo,
        value_max: hi,
        psnr_db,
        max_error: worst,
        target: opts.target,
        target_met,
        warnings,
        seconds,
        mb_per_s: original_bytes as f64 / 1e6 / seconds.max(1e-9),
    })
}

/// What `decompress` did.
#[derive(Clone, Debug, Serialize)]
pub struct DecompressReport {
    pub container: PathBuf,
    pub outputs: Vec<PathBuf>,
    pub samples: usize,
    pub shape: [usize; 4],
    pub original_dtype: SampleType,
    pub seconds: f64,
    /// Decompressed f32 bytes per second, in MB/s.
    pub mb_per_s: f64,
    /// Whether the `.npy` went to the disk with `O_DIRECT`, bypassing the page cache (large
    /// outputs where the file system allows it; see [`crate::output::DirectWriter`]).
    pub direct_io: bool,
    /// Element type of the `.npy` written (float32 unless `--dtype original`; PNGs: the
    /// original's).
    pub dtype: SampleType,
}

/// What `decompress` writes, from the output path: `.npy`, `.png` (one sample), else a directory
/// of PNGs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Npy,
    Png,
    PngDir,
}

impl OutputKind {
    pub fn of(out: &Path) -> OutputKind {
        match out
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .as_deref()
        {
            Some("npy") => OutputKind::Npy,
            Some("png") => OutputKind::Png,
            _ => OutputKind::PngDir,
        }
    }
}

/// The element type of a decompressed `.npy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputDtype {
    /// float32, what the transform computes.
    #[default]
    Float32,
    /// The original data's type: integers rounded (half away from zero, as the PNG output)
    /// and clamped to the type's range, float16 rounded to nearest, float64 widened.
    Original,
}

impl std::str::FromStr for OutputDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "float32" | "f32" => Ok(OutputDtype::Float32),
            "original" => Ok(OutputDtype::Original),
            _ => Err(format!(
                "unknown output dtype '{s}': allowed are float32, original"
            )),
        }
    }
}

impl std::fmt::Display for OutputDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputDtype::Float32 => "float32",
            OutputDtype::Original => "original",
        })
    }
}

/// How to decompress.
#[derive(Clone, Debug)]
pub struct DecompressOptions {
    pub engine: EngineOptions,
    /// Samples per graph run.
    pub batch: usize,
    pub force: bool,
    /// Refuse containers whose batch would need more memory.
    pub budget: Budget,
    /// Element type of a `.npy` output (PNGs are always in the original bit depth).
    pub dtype: OutputDtype,
}

impl Default for DecompressOptions {
    fn default() -> Self {
        DecompressOptions {
            engine: EngineOptions::auto(),
            batch: 8,
            force: false,
            budget: Budget::default(),
            dtype: OutputDtype::Float32,
        }
    }
}

/// Decompress container `input` (stem or any shard) into `out`: a float32 `.npy` of
/// `[N, C, H, W]`, a `.png` (one sample), or a directory of `NNNNN.png` (one per sample). PNGs
/// are written in the original bit depth (uint8 or uint16 data only), rounded and clamped.
/// Within the default memory [`Budget`]; see [`decompress_within`].
pub fn decompress(
    input: &Path,
    out: &Path,
    engine: &EngineOptions,
    batch: usize,
    force: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DecompressReport> {
    let opts = DecompressOptions {
        engine: engine.clone(),
        batch,
        force,
        ..Default::default()
    };
    decompress_within(input, out, &opts, progress)
}

/// Bytes decompressing one batch of `batch` samples of container `c` needs: the graphs' working
/// tensors ([`estimate_batch_bytes`]), the stored values of the batch as f32, and one decoded
/// zstd chunk (from the shards' `chunk_samples`), all from the metadata.
pub fn decompress_batch_bytes(c: &container::Container, batch: usize) -> u64 {
    let spec = &c.header.spec;
    let per = crate::budget::elems(&spec.compressed_shape()[1..]).unwrap_or(u64::MAX);
    let chunk = c
        .headers
        .iter()
        .flat_map(|h| h.chunks.iter().map(|ch| ch.0))
        .max()
        .unwrap_or(0) as u64;
    let stored = per.saturating_mul(batch as u64).saturating_mul(4);
    let chunk = per.saturating_mul(chunk).saturating_mul(4);
    estimate_batch_bytes(spec, batch)
        .saturating_add(stored)
        .saturating_add(chunk)
}

/// [`decompress`] within a memory `budget`: the container's declared shapes are checked against
/// it before anything large is allocated.
#[allow(clippy::too_many_arguments)]
pub fn decompress_within(
    input: &Path,
    out: &Path,
    opts: &DecompressOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DecompressReport> {
    let (engine, batch, force, budget) = (&opts.engine, opts.batch, opts.force, opts.budget);
    let t0 = Instant::now();
    let c = container::open(input)?;
    let h = &c.header;
    let shape = h.info.shape;
    let n = shape[0];
    let b = batch.max(1).min(n.max(1));
    budget.check(
        &c.shards[0],
        &format!(
            "decompressing a batch of {b} samples of {}x{}x{}",
            shape[1], shape[2], shape[3]
        ),
        Some(decompress_batch_bytes(&c, b)),
        "lower --batch, or raise --max-memory-mb if the machine has the memory",
    )?;
    let kind = OutputKind::of(out);
    if kind != OutputKind::Npy && opts.dtype != OutputDtype::Float32 {
        return Err(Error::invalid_input(
            out,
            "the dtype 'original' applies to .npy output (PNGs are always in the original bit \
             depth): write a .npy, or keep the dtype float32",
        ));
    }
    // The .npy's element type.
    let written = match opts.dtype {
        OutputDtype::Float32 => SampleType::Float32,
        OutputDtype::Original => h.info.dtype,
    };
    if kind != OutputKind::Npy {
        if !matches!(h.info.dtype, SampleType::Uint8 | SampleType::Uint16) {
            return Err(Error::invalid_input(
                out,
                format!(
                    "PNG output needs uint8 or uint16 original data, but {} holds {}: write a \
                     .npy instead",
                    c.shards[0].display(),
                    h.info.dtype
                ),
            ));
        }
        if !(1..=4).contains(&shape[1]) {
            return Err(Error::invalid_input(
                out,
                format!(
                    "PNG output needs 1 to 4 channels, the data has {}",
                    shape[1]
                ),
            ));
        }
        if kind == OutputKind::Png && n != 1 {
            return Err(Error::invalid_input(
                out,
                format!(
                    "the container holds {n} samples: write a .npy or a directory (one PNG per \
                     sample)"
                ),
            ));
        }
    }
    let targets: Vec<PathBuf> = match kind {
        OutputKind::PngDir => (0..n).map(|i| out.join(format!("{i:05}.png"))).collect(),
        _ => vec![out.to_path_buf()],
    };
    for p in &targets {
        crate::output::check_writable(p, force)?;
    }
    let dir = match kind {
        OutputKind::PngDir => out,
        _ => out.parent().unwrap_or(Path::new("")),
    };
    if kind != OutputKind::PngDir && !dir.as_os_str().is_empty() && !dir.is_dir() {
        return Err(Error::invalid_input(
            out,
            format!("output directory {} does not exist", dir.display()),
        ));
    }
    let created = CreatedDirs::create(dir)?;
    let loader = c.loader(batch.max(1), engine)?;
    let mut commit = Commit::new(force);
    let mut done = 0;
    let mut direct_io = false;
    if kind == OutputKind::Npy {
        // The header, then each batch's bytes in one write, on a writer thread so that the
        // writing (system calls, the page cache) overlaps the decompression of the next batch.
        // Batches circulate between the threads (the loader decompresses into one handed back),
        // so memory stays at about two batches and nothing is allocated per batch.
        let tmp = commit.add(out)?;
        let header = crate::npy::header(written, &shape);
        let total =
            header.len() as u64 + (written.bytes() * shape.iter().product::<usize>()) as u64;
        // Large outputs bypass the page cache (see DirectWriter): they are synced before the
        // rename anyway.
        let mut tmp = crate::output::DirectWriter::new(tmp, total);
        tmp.write_all(&header)?;
        // Three stages on three threads: reading and entropy-decoding the next batch, the
        // transform of this one (on the kernel's pool), writing the previous one.
        let (mut stored, mut codec) = loader.into_stages();
        std::thread::scope(|scope| -> Result<()> {
            let (to_main, stored_batches) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move || {
                while let Some(next) = stored.next_stored().transpose() {
                    let failed = next.is_err();
                    // Stop after an error, or when the main thread stopped (its error).
                    if to_main.send(next).is_err() || failed {
                        break;
                    }
                }
            });
            let (to_writer, batches) = std::sync::mpsc::sync_channel::<Array4<f32>>(1);
            let (recycle, spare) = std::sync::mpsc::channel::<Array4<f32>>();
            let writer = scope.spawn(move || -> Result<bool> {
                let mut bytes = Vec::new();
                for x in batches {
                    match x.as_slice() {
                        // Little-endian f32 in memory is the .npy's data already.
                        Some(v)
                            if cfg!(target_endian = "little") && written == SampleType::Float32 =>
                        {
                            tmp.write_all(bytemuck::cast_slice(v))?
                        }
                        _ => {
                            bytes.clear();
                            let v = x.as_standard_layout();
                            let v = v.as_slice().expect("standard");
                            crate::npy::extend_le(&mut bytes, v, written);
                            tmp.write_all(&bytes)?;
                        }
                    }
                    // The main thread may have stopped (an error): nothing to hand back to.
                    let _ = recycle.send(x);
                }
                tmp.finish()
            });
            for d in stored_batches {
                let x =
                    container::Loader::decompress_stored(&mut codec, d?, spare.try_recv().ok())?;
                let k = x.shape()[0];
                if to_writer.send(x).is_err() {
                    break; // The writer stopped on an error: it says which below.
                }
                done += k;
                progress(done, n);
            }
            drop(to_writer);
            // Still direct at the end: a file system that refused O_DIRECT at the first write
            // was written through the page cache.
            direct_io = writer
                .join()
                .expect("the npy writer thread does not panic")?;
            Ok(())
        })?;
    } else {
        for x in loader {
            let x = x?;
            for s in x.axis_iter(Axis(0)) {
                let a = s.insert_axis(Axis(0)).to_owned();
                let png = encode_png(&a, h.info.dtype);
                commit.add_bytes(&targets[done], &png)?;
                done += 1;
            }
            progress(done, n);
        }
    }
    commit.finish()?;
    created.keep();
    let seconds = t0.elapsed().as_secs_f64();
    Ok(DecompressReport {
        container: c.shards[0].clone(),
        outputs: targets,
        samples: n,
        shape,
        original_dtype: h.info.dtype,
        seconds,
        mb_per_s: (shape.iter().product::<usize>() * 4) as f64 / 1e6 / seconds.max(1e-9),
        direct_io,
        dtype: if kind == OutputKind::Npy {
            written
        } else {
            h.info.dtype
        },
    })
}

/// Encode `[1, C, H, W]` as PNG in the original bit depth (rounded, clamped), `dtype` being
/// uint8 or uint16.
fn encode_png(x: &Array4<f32>, dtype: SampleType) -> Vec<u8> {
    use image::{DynamicImage as D, ImageBuffer};
    let (c, h, w) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    // CHW → interleaved HWC.
    let hwc = x.view().permuted_axes([0, 2, 3, 1]);
    let (wu, hu) = (w as u32, h as u32);
    let img = if dtype == SampleType::Uint8 {
        let v: Vec<u8> = hwc
            .iter()
            .map(|&p| p.round().clamp(0.0, 255.0) as u8)
            .collect();
        match c {
            1 => D::ImageLuma8(ImageBuffer::from_raw(wu, hu, v).expect("size")),
            2 => D::ImageLumaA8(ImageBuffer::from_raw(wu, hu, v).expect("size")),
            3 => D::ImageRgb8(ImageBuffer::from_raw(wu, hu, v).expect("size")),
            _ => D::ImageRgba8(ImageBuffer::from_raw(wu, hu, v).expect("size")),
        }
    } else {
        let v: Vec<u16> = hwc
            .iter()
            .map(|&p| p.round().clamp(0.0, 65535.0) as u16)
            .collect();
        match c {
            1 => D::ImageLuma16(ImageBuffer::from_raw(wu, hu, v).expect("size")),
            2 => D::ImageLumaA16(ImageBuffer::from_raw(wu, hu, v).expect("size")),
            3 => D::ImageRgb16(ImageBuffer::from_raw(wu, hu, v).expect("size")),
            _ => D::ImageRgba16(ImageBuffer::from_raw(wu, hu, v).expect("size")),
        }
    };
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .expect("PNG encoding into memory of a valid image buffer");
    buf.into_inner()
}
