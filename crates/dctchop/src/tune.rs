//! Choosing the quantization from the data: the `auto` step, and the search behind
//! `--target-psnr`, `--target-ratio` and `--max-error`.
//!
//! Both look at a **probe**: the first batch of the input (what `compress` reads first anyway), so
//! the choice costs one batch of extra work and never a second pass over the dataset. What the
//! probe does not show (a later sample with larger values, a harder image) shows in the values
//! `compress` reports over all of the data, and it warns when those miss the target.
//!
//! # The auto step
//! The DCT is orthonormal, so a uniform quantizer with step Δ on the kept coefficients adds about
//! `Δ²/12` of squared error per kept coefficient, `Δ²/12 · kept/pixels` per pixel (less when many
//! coefficients are smaller than Δ/2, so this over-estimates). `auto` sets that to
//! [`AUTO_ERROR_FRACTION`] of the chop error measured on the probe, `MSE_q = 0.1 · MSE_chop`:
//! a PSNR loss of at most `10·log10(1.1) = 0.41 dB` against the unquantized result. When the chop
//! is exact (CF = block, or constant data) the step falls back to `range · 2^-11`.
//!
//! # The code type
//! The smallest of int8, int16 that holds `max|coefficient| / Δ` of the probe with 5 % headroom.
//! Later values beyond the type are clamped to ±max (counted, reported, warned about). `auto`
//! never picks a step whose codes exceed int16: it raises the step to fit instead (and says so).
//!
//! # The channel transform
//! With `--mix auto` (the default) and 3 channels, every choice is made with and without the
//! opponent transform ([`crate::quant::ChannelMix`]): `auto` and a given step keep the one whose
//! probe codes store smaller, among those whose probe error is within 5 % of the lower (the
//! transform is orthonormal, so at one step the errors agree; a step raised to fit `--code i8`
//! or clamped codes are where they do not), and the targets search both as part of the
//! envelope.
//!
//! # Targets
//! For every candidate configuration (variant chop and triangle, CF 1..=block, or the ones the
//! user fixed, each with and without the channel transform) the probe's coefficients are computed once; the step is then found by bisection in
//! log Δ ([`BISECTION_STEPS`] halvings between the smallest step whose codes fit int16 and the
//! largest coefficient), each trial quantizing on the host, measuring the real entropy-coded size
//! of the codes (the container's own coder) and decompressing to measure the error. The chosen
//! configuration is the best point of the envelope: the fewest stored bytes that meet a PSNR or
//! max-error target, or the highest PSNR that meets a ratio.

use ndarray::ArrayView4;
use serde::Serialize;
use std::time::Instant;

use crate::container::Entropy;
use crate::entropy::ChunkCoder;
use crate::error::{Error, Result};
use crate::quant::{quantize_scaled, ChannelMix, CodeElem, CodeType, MixChoice, Quant};
use crate::spec::{Spec, Variant};
use crate::{Codec, EngineOptions};

/// The quantization error `auto` aims at, as a fraction of the chop error (MSE).
pub const AUTO_ERROR_FRACTION: f64 = 0.1;
/// Halvings of the log-step interval per configuration.
pub const BISECTION_STEPS: usize = 14;
/// Headroom over the probe's largest code when picking the code type.
const CODE_HEADROOM: f64 = 1.05;

/// What the user asks the data to meet.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum QualityTarget {
    /// PSNR in dB (peak = the data's value range) at least this.
    Psnr(f64),
    /// Ratio as stored (original bytes over stored code bytes) at least this.
    Ratio(f64),
    /// Largest absolute error at most this.
    MaxError(f64),
}

impl QualityTarget {
    pub fn validate(self) -> Result<()> {
        let (name, v, ok, allowed) = match self {
            QualityTarget::Psnr(v) => ("target-psnr", v, v.is_finite() && v > 0.0, "dB > 0"),
            QualityTarget::Ratio(v) => ("target-ratio", v, v.is_finite() && v > 1.0, "> 1"),
            QualityTarget::MaxError(v) => ("max-error", v, v.is_finite() && v > 0.0, "> 0"),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid_option(name, v, allowed))
        }
    }

    /// Whether measured values meet the target.
    pub fn met(self, psnr_db: f64, ratio: f64, max_error: f64) -> bool {
        match self {
            QualityTarget::Psnr(p) => psnr_db >= p,
            QualityTarget::Ratio(r) => ratio >= r,
            QualityTarget::MaxError(e) => max_error <= e,
        }
    }
}

impl std::fmt::Display for QualityTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QualityTarget::Psnr(v) => write!(f, "PSNR >= {v} dB"),
            QualityTarget::Ratio(v) => write!(f, "ratio >= {v}"),
            QualityTarget::MaxError(v) => write!(f, "max error <= {v}"),
        }
    }
}

/// The data a choice is made on: the first batch, and facts of the whole input.
pub struct Probe<'a> {
    pub x: ArrayView4<'a, f32>,
    /// Value range used as the PSNR peak (the probe's own when the whole range is unknown).
    pub peak: f64,
    /// Bytes of one original sample as stored in the input (for ratios).
    pub original_sample_bytes: f64,
}

impl Probe<'_> {
    pub fn samples(&self) -> usize {
        self.x.shape()[0]
    }
}

/// One evaluated point: a configuration, a step and what they give on the probe.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub variant: Variant,
    pub cf: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix: Option<ChannelMix>,
    pub step: f64,
    pub code: CodeType,
    /// Stored (entropy-coded) bytes per sample.
    pub bytes_per_sample: f64,
    pub ratio: f64,
    pub psnr_db: f64,
    pub max_error: f64,
    pub mse: f64,
}

/// The chosen quantization and how it was chosen.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub variant: Variant,
    pub cf: usize,
    pub quant: Quant,
    /// How it was chosen: "step" (given), "auto", or the target.
    pub how: String,
    /// The probe's values at the choice (None for a given step).
    pub probe: Option<Point>,
    /// Samples the choice saw.
    pub probe_samples: usize,
    /// Configurations and trials evaluated (targets only).
    pub trials: usize,
    pub seconds: f64,
    /// What the user should know (step raised to fit a code type, target not reachable, ...).
    pub notes: Vec<String>,
}

/// The coefficients of one configuration on the probe, ready for trial steps.
struct Config {
    variant: Variant,
    cf: usize,
    /// The channel transform applied to `y` (and undone before decompressing a trial).
    mix: Option<ChannelMix>,
    /// Coefficients of one channel of one sample.
    plane: usize,
    codec: Codec,
    coder: Option<ChunkCoder>,
    y: ndarray::ArrayD<f32>,
    /// Scratch: dequantized coefficients of a trial.
    deq: ndarray::ArrayD<f32>,
    max_abs: f64,
    chop: Stats,
}

#[derive(Clone, Copy, Debug)]
struct Stats {
    mse: f64,
    max_error: f64,
}

fn stats(x: ArrayView4<'_, f32>, back: ArrayView4<'_, f32>) -> Stats {
    let (mut sse, mut worst) = (0f64, 0f64);
    for (&a, &b) in x.iter().zip(back.iter()) {
        let d = (a as f64 - b as f64).abs();
        sse += d * d;
        worst = worst.max(d);
    }
    Stats {
        mse: sse / x.len().max(1) as f64,
        max_error: worst,
    }
}

/// PSNR in dB for a mean squared error and peak; +inf when exact.
pub fn psnr_db(mse: f64, peak: f64) -> f64 {
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (peak * peak / mse).log10()
    }
}

/// Round `y / step` to codes by the container's rule and write `code · step` into `deq`.
fn quantize_trial<T: CodeElem>(y: &[f32], step: f64, codes: &mut Vec<T>, deq: &mut [f32]) {
    let scaled: Vec<f32> = y.iter().map(|&v| (v as f64 / step) as f32).collect();
    codes.clear();
    codes.resize(y.len(), T::default());
    quantize_scaled(&scaled, codes);
    for (d, &c) in deq.iter_mut().zip(codes.iter()) {
        *d = (c.to_f64() * step) as f32;
    }
}

impl Config {
    fn new(
        probe: &Probe<'_>,
        base: &Spec,
        variant: Variant,
        cf: usize,
        mix: Option<ChannelMix>,
        engine: &EngineOptions,
        entropy: Entropy,
    ) -> Result<Config> {
        let mut spec = base.clone().with_variant(variant);
        spec.cf = cf;
        spec.quant = None;
        spec.validate()?;
        if let Some(m) = mix {
            spec.check_mix(m)?;
        }
        let mut codec = Codec::new(&spec, engine)?;
        let mut y = codec.compress(probe.x)?.as_standard_layout().into_owned();
        let back = codec.decompress(y.view())?;
        let chop = stats(probe.x, back.view());
        let plane = spec.compressed_shape()[2..].iter().product();
        if let Some(m) = mix {
            m.apply(y.as_slice_mut().expect("standard layout"), plane, false);
        }
        let max_abs = y.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
        let coder = match entropy {
            Entropy::Zstd { level } => Some(ChunkCoder::new(&spec.layout(), spec.channels, level)?),
            Entropy::None => None,
        };
        Ok(Config {
            variant,
            cf,
            mix,
            plane,
            codec,
            coder,
            deq: y.clone(),
            y: y.as_standard_layout().into_owned(),
            max_abs,
            chop,
        })
    }

    /// The smallest step whose probe codes fit int16, and the largest step worth trying.
    fn step_range(&self, peak: f64) -> (f64, f64) {
        let hi = (self.max_abs * 2.0).max(peak).max(1e-30);
        let lo = (self.max_abs * CODE_HEADROOM / CodeType::I16.max() as f64)
            .max(hi * 1e-9)
            .max(1e-30);
        (lo, hi)
    }

    /// Quantize the probe with `step` into `code` (the smallest that holds it when None; host
    /// rounding, the container's rule), measure the stored size and decompress it.
    fn trial(&mut self, probe: &Probe<'_>, step: f64, code: Option<CodeType>) -> Result<Point> {
        let code = code
            .or_else(|| code_for(self.max_abs, step))
            .unwrap_or(CodeType::I16);
        let n = probe.samples();
        let y = self.y.as_slice().expect("standard layout");
        let deq = self.deq.as_slice_mut().expect("standard layout");
        let bytes = match code {
            CodeType::I8 => {
                let mut c = Vec::<i8>::new();
                quantize_trial(y, step, &mut c, deq);
                encoded_len(&mut self.coder, &c, n)?
            }
            CodeType::I16 => {
                let mut c = Vec::<i16>::new();
                quantize_trial(y, step, &mut c, deq);
                encoded_len(&mut self.coder, &c, n)?
            }
        };
        if let Some(m) = self.mix {
            m.apply(deq, self.plane, true);
        }
        let back = self.codec.decompress(self.deq.view())?;
        let s = stats(probe.x, back.view());
        let bytes_per_sample = bytes as f64 / n as f64;
        Ok(Point {
            variant: self.variant,
            cf: self.cf,
            mix: self.mix,
            step,
            code,
            bytes_per_sample,
            ratio: probe.original_sample_bytes / bytes_per_sample.max(1e-9),
            psnr_db: psnr_db(s.mse, probe.peak),
            max_error: s.max_error,
            mse: s.mse,
        })
    }
}

fn encoded_len<T: CodeElem>(
    coder: &mut Option<ChunkCoder>,
    codes: &[T],
    n: usize,
) -> Result<usize> {
    Ok(match coder {
        Some(c) => c.encode(codes, n)?.len(),
        None => codes.len() * T::CODE.bytes(),
    })
}

/// The smallest code type holding `max_abs / step` with headroom, if any does.
pub fn code_for(max_abs: f64, step: f64) -> Option<CodeType> {
    let m = max_abs / step * CODE_HEADROOM;
    if m <= CodeType::I8.max() as f64 {
        Some(CodeType::I8)
    } else if m <= CodeType::I16.max() as f64 {
        Some(CodeType::I16)
    } else {
        None
    }
}

/// The choice for a given `step` on the probe: the code type is `code` when given, else the
/// smallest that holds the probe's largest code (with headroom); an error naming the smallest
/// allowed step when not even int16 does. With several channel transforms to try, the one whose
/// probe codes store smallest.
pub fn given_step(
    probe: &Probe<'_>,
    base: &Spec,
    step: f64,
    code: Option<CodeType>,
    mix: MixChoice,
    entropy: Entropy,
    engine: &EngineOptions,
) -> Result<Choice> {
    let t0 = Instant::now();
    let mixes = mix.candidates(base.channels);
    let mut points = Vec::new();
    let mut refused = None;
    for &m in &mixes {
        let mut c = Config::new(probe, base, base.variant, base.cf, m, engine, entropy)?;
        let fits = code.or_else(|| code_for(c.max_abs, step));
        let Some(fits) = fits else {
            refused.get_or_insert_with(|| {
                Error::invalid_option(
                    "quant",
                    step,
                    format!(
                        "a step of at least {:.6}: with {step} the codes of the first batch \
                         reach {:.0}, beyond int16 (32767)",
                        c.max_abs * CODE_HEADROOM / CodeType::I16.max() as f64,
                        c.max_abs / step
                    ),
                )
            });
            continue;
        };
        let point = if mixes.len() > 1 {
            Some(c.trial(probe, step, Some(fits))?)
        } else {
            None
        };
        points.push((m, fits, point));
    }
    if points.is_empty() {
        return Err(refused.expect("a refused candidate"));
    }
    let views: Vec<_> = points.iter().map(|(m, _, p)| (*m, p.as_ref())).collect();
    let (best, mix_note) = smallest(&views);
    let (m, code, point) = points.swap_remove(best);
    Ok(Choice {
        variant: base.variant,
        cf: base.cf,
        quant: Quant::uniform(code, step).with_mix(m),
        how: format!("step given{mix_note}"),
        probe: point,
        probe_samples: probe.samples(),
        trials: mixes.len().saturating_sub(1) * mixes.len(),
        seconds: t0.elapsed().as_secs_f64(),
        notes: Vec::new(),
    })
}

/// How much larger than the best candidate's probe MSE a channel-transform candidate's may be
/// and still win on size: the transform is orthonormal, so at one step the errors agree within
/// noise, but a step raised to fit a code type, or codes clamped, cost error.
const MIX_MSE_TOLERANCE: f64 = 0.05;

/// Index of the candidate (transform, probe point) that stores the probe smallest among those
/// whose error is within [`MIX_MSE_TOLERANCE`] of the lowest, and a note (`"; …"`, empty for
/// one candidate) saying what the transform saved or would have cost.
fn smallest(points: &[(Option<ChannelMix>, Option<&Point>)]) -> (usize, String) {
    if points.len() < 2 {
        return (0, String::new());
    }
    debug_assert_eq!(points.len(), 2, "with or without the one transform");
    let bytes = |i: usize| points[i].1.map_or(f64::INFINITY, |p| p.bytes_per_sample);
    let mse = |i: usize| points[i].1.map_or(f64::INFINITY, |p| p.mse);
    let low = (0..points.len()).map(mse).fold(f64::INFINITY, f64::min);
    let best = (0..points.len())
        .filter(|&i| mse(i) <= low * (1.0 + MIX_MSE_TOLERANCE))
        .min_by(|&a, &b| bytes(a).total_cmp(&bytes(b)))
        .unwrap_or(0);
    let other = usize::from(best == 0);
    let name = |m: Option<ChannelMix>| {
        m.map_or("no channel transform".into(), |m| {
            format!("the {m} channel transform")
        })
    };
    let why = if mse(other) > low * (1.0 + MIX_MSE_TOLERANCE) {
        format!(
            ", whose error is {:.2}x higher",
            mse(other) / low.max(f64::MIN_POSITIVE)
        )
    } else {
        String::new()
    };
    let note = format!(
        "; {} stores the probe in {:.1}% of the bytes of {}{why}",
        name(points[best].0),
        100.0 * bytes(best) / bytes(other),
        name(points[other].0),
    );
    (best, note)
}

/// The `auto` step (see the module documentation) for `base`'s variant and CF, in `code` when
/// given (the step is raised if the probe's codes would not fit it).
pub fn auto(
    probe: &Probe<'_>,
    base: &Spec,
    code: Option<CodeType>,
    mix: MixChoice,
    entropy: Entropy,
    engine: &EngineOptions,
) -> Result<Choice> {
    let t0 = Instant::now();
    let mixes = mix.candidates(base.channels);
    let mut tried = Vec::new();
    for &m in &mixes {
        tried.push((m, auto_one(probe, base, code, m, entropy, engine)?));
    }
    let views: Vec<_> = tried.iter().map(|(m, (p, _, _))| (*m, Some(p))).collect();
    let (best, mix_note) = smallest(&views);
    let (m, (point, notes, chop_mse)) = tried.swap_remove(best);
    let (code, step) = (point.code, point.step);
    let point = Some(point);
    Ok(Choice {
        variant: base.variant,
        cf: base.cf,
        quant: Quant::uniform(code, step).with_mix(m),
        how: format!(
            "auto: quantization MSE = {AUTO_ERROR_FRACTION} x chop MSE ({chop_mse:.6}) of the \
             probe{mix_note}"
        ),
        probe: point,
        probe_samples: probe.samples(),
        trials: mixes.len(),
        seconds: t0.elapsed().as_secs_f64(),
        notes,
    })
}

/// The auto step with one channel transform: the probe's point, notes, and the chop MSE.
fn auto_one(
    probe: &Probe<'_>,
    base: &Spec,
    code: Option<CodeType>,
    mix: Option<ChannelMix>,
    entropy: Entropy,
    engine: &EngineOptions,
) -> Result<(Point, Vec<String>, f64)> {
    let mut c = Config::new(probe, base, base.variant, base.cf, mix, engine, entropy)?;
    let n = probe.samples();
    let pixels = (probe.x.len() / n) as f64;
    let kept = (c.y.len() / n) as f64;
    let mut notes = Vec::new();
    let mut step = (12.0 * AUTO_ERROR_FRACTION * c.chop.mse * pixels / kept).sqrt();
    let floor = probe.peak * 2f64.powi(-11);
    if step.is_nan() || step < floor {
        notes.push(format!(
            "the chop error is {}: step set to range x 2^-11 = {floor:.6}",
            if c.chop.mse == 0.0 { "zero" } else { "tiny" }
        ));
        step = floor;
    }
    let widest = code.unwrap_or(CodeType::I16);
    let fit = c.max_abs * CODE_HEADROOM / widest.max() as f64;
    if step < fit {
        notes.push(format!(
            "step raised from {step:.6} to {fit:.6} so the codes fit {widest} (largest \
             coefficient {:.6})",
            c.max_abs
        ));
        step = fit;
    }
    let code = code
        .or_else(|| code_for(c.max_abs, step))
        .unwrap_or(CodeType::I16);
    let point = c.trial(probe, step, Some(code))?;
    Ok((point, notes, c.chop.mse))
}

/// Search the envelope over `variants` x `cfs` and the step for the best point meeting
/// `target` on the probe (see the module documentation). `code` fixes the code type (steps whose
/// codes would not fit it are not tried).
#[allow(clippy::too_many_arguments)]
pub fn search(
    probe: &Probe<'_>,
    base: &Spec,
    variants: &[Variant],
    cfs: &[usize],
    target: QualityTarget,
    code: Option<CodeType>,
    mix: MixChoice,
    entropy: Entropy,
    engine: &EngineOptions,
) -> Result<Choice> {
    target.validate()?;
    let mixes = mix.candidates(base.channels);
    let t0 = Instant::now();
    let mut best: Option<Point> = None;
    let mut closest: Option<Point> = None;
    let mut trials = 0;
    let better = |a: &Point, b: &Point| match target {
        QualityTarget::Ratio(_) => a.mse < b.mse,
        _ => a.bytes_per_sample < b.bytes_per_sample,
    };
    let mut configs = Vec::new();
    for &v in variants {
        for &cf in cfs {
            configs.extend(mixes.iter().map(|&m| (v, cf, m)));
        }
    }
    for (variant, cf, mix) in configs {
        {
            let mut c = Config::new(probe, base, variant, cf, mix, engine, entropy)?;
            let (mut lo, mut hi) = c.step_range(probe.peak);
            if let Some(code) = code {
                lo = lo.max(c.max_abs * CODE_HEADROOM / code.max() as f64);
                hi = hi.max(lo);
            }
            let meets = |p: &Point| target.met(p.psnr_db, p.ratio, p.max_error);
            // Fine steps meet quality targets, coarse steps meet ratio targets.
            let (good_end, bad_end) = match target {
                QualityTarget::Ratio(_) => (hi, lo),
                _ => (lo, hi),
            };
            let good = c.trial(probe, good_end, code)?;
            trials += 1;
            if !meets(&good) {
                if closest.as_ref().is_none_or(|b| closer(target, &good, b)) {
                    closest = Some(good);
                }
                continue;
            }
            let bad = c.trial(probe, bad_end, code)?;
            trials += 1;
            let found = if meets(&bad) {
                bad
            } else {
                let (mut g, mut b, mut at_g) = (good_end.ln(), bad_end.ln(), good);
                for _ in 0..BISECTION_STEPS {
                    let mid = 0.5 * (g + b);
                    let p = c.trial(probe, mid.exp(), code)?;
                    trials += 1;
                    if meets(&p) {
                        g = mid;
                        at_g = p;
                    } else {
                        b = mid;
                    }
                }
                at_g
            };
            if best.as_ref().is_none_or(|b| better(&found, b)) {
                best = Some(found);
            }
        }
    }
    let Some(p) = best else {
        let reach = closest.map_or(String::new(), |c| {
            format!(
                "; the closest is {} CF {} with step {:.6}: PSNR {:.2} dB, ratio {:.2}, max \
                 error {:.6}",
                c.variant, c.cf, c.step, c.psnr_db, c.ratio, c.max_error
            )
        });
        return Err(Error::InvalidOption {
            option: target_flag(target),
            value: target_value(target),
            allowed: format!(
                "a target some configuration reaches on the first {} sample(s){reach}",
                probe.samples()
            ),
        });
    };
    Ok(Choice {
        variant: p.variant,
        cf: p.cf,
        quant: Quant::uniform(p.code, p.step).with_mix(p.mix),
        how: format!(
            "target {target}: best of {} variant(s) x {} CF(s) x {} channel transform(s) on the \
             probe",
            variants.len(),
            cfs.len(),
            mixes.len()
        ),
        probe: Some(p),
        probe_samples: probe.samples(),
        trials,
        seconds: t0.elapsed().as_secs_f64(),
        notes: Vec::new(),
    })
}

/// Whether `a` is nearer the target than `b` (for the error when nothing meets it).
fn closer(target: QualityTarget, a: &Point, b: &Point) -> bool {
    match target {
        QualityTarget::Psnr(_) => a.psnr_db > b.psnr_db,
        QualityTarget::Ratio(_) => a.ratio > b.ratio,
        QualityTarget::MaxError(_) => a.max_error < b.max_error,
    }
}

fn target_flag(t: QualityTarget) -> &'static str {
    match t {
        QualityTarget::Psnr(_) => "target-psnr",
        QualityTarget::Ratio(_) => "target-ratio",
        QualityTarget::MaxError(_) => "max-error",
    }
}

fn target_value(t: QualityTarget) -> String {
    match t {
        QualityTarget::Psnr(v) | QualityTarget::Ratio(v) | QualityTarget::MaxError(v) => {
            format!("{v}")
        }
    }
}
