//! Quantization, in one place: the code types, the steps, the rounding rule, and the code tensors
//! that quantized decompress graphs take.
//!
//! # The steps
//! A [`Quant`] has one uniform `step` in the orthonormal coefficient domain, optionally shaped by
//! per-frequency multipliers that are *separable*: the step of kept coefficient (i, j) of a block
//! is `step · rows[i] · cols[j]` (empty `rows`/`cols` mean all 1). Separable steps are a diagonal
//! per axis, `D_h[i] = step · rows[i]` and `D_w[j] = cols[j]` ([`Quant::axis_steps`]), so they
//! fold exactly into the axis matrices: the compress graph computes `Q = (D_h⁻¹·L_h) · X ·
//! (D_w⁻¹·L_w)ᵀ`, the coefficients already divided by their steps, and the decompress graph
//! `X' = (D_h·L_h)ᵀ · Q · (D_w·L_w)` from the integer codes, after one `Cast` to float.
//!
//! # The rounding rule
//! Shared by every engine and the host ([`round_code`], [`quantize_scaled`]):
//!
//! ```text
//! code = clamp(round_half_to_even(y / step_ij), -max, +max)      max = 127 (i8), 32767 (i16)
//! ```
//!
//! Symmetric: -128 and -32768 are never produced. Ties go to the even integer (`2.5 → 2`,
//! `3.5 → 4`, `-0.5 → 0`), so the rounding has no bias. A value beyond ±max, ±∞ or NaN counts as
//! clamped; ±∞ clamp to ±max and NaN becomes 0. The division by the step happens in the compress
//! graph (in the graph's dtype); the host only rounds and clamps what the graph outputs, so a
//! value within one f32 rounding of a tie may round either way.
//!
//! Dequantization is the decompress graph's job: `y = code · step_ij`, folded into its matrices.
//!
//! # The channel transform
//! A [`Quant`] may also mix the channels before rounding ([`ChannelMix`]): an orthonormal C×C
//! matrix `M` applied at every coefficient position, `Y'[c] = Σ_k M[c,k]·Y[k]`. It commutes with
//! the per-channel block transform and with the steps (the same for every channel), so the
//! compress graph applies it last, to the coefficients (one MatMul over the channel axis), and the
//! decompress graph applies `Mᵀ` first, to the codes after the `Cast`. Orthonormal, it leaves the
//! chop error and the quantization error per code unchanged (`Δ²/12`); what it changes is what
//! the codes hold: the three channels of a colour photograph are mostly the same picture, and
//! after the opponent transform two of them are nearly zero and cost almost nothing to store.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::layout::Layout;

/// Integer type of the quantization codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeType {
    I8,
    I16,
}

impl CodeType {
    /// The largest code magnitude: 127 (i8) or 32767 (i16). Codes lie in `-max..=max`.
    pub fn max(self) -> i32 {
        match self {
            CodeType::I8 => i8::MAX as i32,
            CodeType::I16 => i16::MAX as i32,
        }
    }

    /// Bytes per code.
    pub fn bytes(self) -> usize {
        match self {
            CodeType::I8 => 1,
            CodeType::I16 => 2,
        }
    }

    /// Bits per code (8 or 16), as in the spec name's `-q8`/`-q16`.
    pub fn bits(self) -> usize {
        8 * self.bytes()
    }

    /// The numpy (and ONNX) name: `int8`, `int16`.
    pub fn numpy_name(self) -> &'static str {
        match self {
            CodeType::I8 => "int8",
            CodeType::I16 => "int16",
        }
    }

    /// The smallest code type that holds codes of magnitude up to `max_abs`.
    pub fn fitting(max_abs: u32) -> Option<CodeType> {
        [CodeType::I8, CodeType::I16]
            .into_iter()
            .find(|c| max_abs <= c.max() as u32)
    }
}

impl fmt::Display for CodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodeType::I8 => "i8",
            CodeType::I16 => "i16",
        })
    }
}

impl FromStr for CodeType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "i8" | "int8" => Ok(CodeType::I8),
            "i16" | "int16" => Ok(CodeType::I16),
            _ => Err(format!("unknown code type '{s}': allowed are i8, i16")),
        }
    }
}

/// An orthonormal transform of the channels applied before rounding (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelMix {
    /// For 3 channels (RGB): brightness `(R+G+B)/√3` and two colour differences, `(R−B)/√2`
    /// and `(R−2G+B)/√6`. Orthonormal, with exact f64 entries; as good as the data's own
    /// principal axes (KLT) on the sample photographs (measured in docs/evaluation.md).
    Opponent,
}

impl ChannelMix {
    /// The channel count the transform is defined for.
    pub fn channels(self) -> usize {
        match self {
            ChannelMix::Opponent => 3,
        }
    }

    /// The matrix `M` (C×C, orthonormal): mixed channel c = Σ_k M[c,k]·channel k.
    pub fn matrix(self) -> ndarray::Array2<f64> {
        match self {
            ChannelMix::Opponent => {
                let (a, b, c) = (1.0 / 3f64.sqrt(), 1.0 / 2f64.sqrt(), 1.0 / 6f64.sqrt());
                ndarray::arr2(&[[a, a, a], [b, 0.0, -b], [c, -2.0 * c, c]])
            }
        }
    }

    /// `M` (or `Mᵀ` when `inverse`) row-major in f32, each entry rounded once from f64.
    pub fn coefficients(self, inverse: bool) -> [f32; 9] {
        let m = self.matrix();
        std::array::from_fn(|i| {
            let (r, k) = (i / 3, i % 3);
            (if inverse { m[[k, r]] } else { m[[r, k]] }) as f32
        })
    }

    /// Mix (`inverse` = false: `M`) or unmix (`Mᵀ`) in place `data` laid out as
    /// `[N, C, plane]` (any N), in f32 ([`block_transform::mix3`]).
    pub fn apply(self, data: &mut [f32], plane: usize, inverse: bool) {
        debug_assert_eq!(self.channels(), 3);
        if data.is_empty() {
            return;
        }
        block_transform::mix3(data, plane, &self.coefficients(inverse))
            .expect("callers pass [N, 3, plane] data of a validated spec");
    }
}

impl fmt::Display for ChannelMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelMix::Opponent => "opponent",
        })
    }
}

impl FromStr for ChannelMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "opponent" => Ok(ChannelMix::Opponent),
            _ => Err(format!(
                "unknown channel transform '{s}': allowed are opponent"
            )),
        }
    }
}

/// Whether to mix the channels: `auto` lets the probe decide ([`crate::tune`]), `none` never,
/// or one transform always.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MixChoice {
    /// The opponent transform for 3-channel data when it stores the probe smaller; else none.
    #[default]
    Auto,
    None,
    Use(ChannelMix),
}

impl MixChoice {
    /// The transforms worth trying on data of `channels` channels.
    pub fn candidates(self, channels: usize) -> Vec<Option<ChannelMix>> {
        match self {
            MixChoice::Auto if channels == ChannelMix::Opponent.channels() => {
                vec![None, Some(ChannelMix::Opponent)]
            }
            MixChoice::Auto | MixChoice::None => vec![None],
            MixChoice::Use(m) => vec![Some(m)],
        }
    }
}

impl fmt::Display for MixChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MixChoice::Auto => f.write_str("auto"),
            MixChoice::None => f.write_str("none"),
            MixChoice::Use(m) => m.fmt(f),
        }
    }
}

impl FromStr for MixChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(MixChoice::Auto),
            "none" => Ok(MixChoice::None),
            other => other.parse().map(MixChoice::Use).map_err(|_| {
                format!("unknown channel transform '{s}': allowed are auto, none, opponent")
            }),
        }
    }
}

/// How a spec quantizes its coefficients (see the module docs): code type, uniform step,
/// optional separable per-frequency multipliers (length CF each; empty = all 1), and an optional
/// channel transform.
///
/// Equality and hashing compare the bit patterns of the numbers, so a `Quant` is a lawful map
/// key; [`Quant::validate`] rejects NaN.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Quant {
    pub code: CodeType,
    pub step: f64,
    /// Multiplier of the step for each vertical frequency i (0..CF); empty = all 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<f64>,
    /// Multiplier of the step for each horizontal frequency j (0..CF); empty = all 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cols: Vec<f64>,
    /// Channels mixed before rounding (absent: each channel coded as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<ChannelMix>,
}

impl PartialEq for Quant {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.code == other.code
            && self.step.to_bits() == other.step.to_bits()
            && bits(&self.rows) == bits(&other.rows)
            && bits(&self.cols) == bits(&other.cols)
            && self.mix == other.mix
    }
}

impl Eq for Quant {}

impl Hash for Quant {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.code.hash(state);
        self.step.to_bits().hash(state);
        for v in self.rows.iter().chain([f64::NAN].iter()).chain(&self.cols) {
            v.to_bits().hash(state);
        }
        self.mix.hash(state);
    }
}

impl Quant {
    /// One step for every coefficient.
    pub fn uniform(code: CodeType, step: f64) -> Quant {
        Quant {
            code,
            step,
            rows: Vec::new(),
            cols: Vec::new(),
            mix: None,
        }
    }

    /// Mix the channels before rounding (see [`ChannelMix`]).
    pub fn with_mix(mut self, mix: Option<ChannelMix>) -> Quant {
        self.mix = mix;
        self
    }

    /// Per-frequency multipliers: the step of (i, j) becomes `step · rows[i] · cols[j]`.
    pub fn with_multipliers(mut self, rows: Vec<f64>, cols: Vec<f64>) -> Quant {
        self.rows = rows;
        self.cols = cols;
        self
    }

    /// Whether every coefficient has the same step.
    pub fn is_uniform(&self) -> bool {
        self.rows.iter().chain(&self.cols).all(|&m| m == 1.0)
    }

    /// Check the step (finite, > 0) and the multipliers (finite, > 0, CF of each or none).
    /// Errors name the field, the value and what is allowed.
    pub fn validate(&self, cf: usize) -> Result<()> {
        let bad = |field: &'static str, value: String, allowed: String| {
            Err(Error::InvalidSpec {
                field,
                value,
                allowed,
            })
        };
        if !(self.step.is_finite() && self.step > 0.0) {
            return bad(
                "quant.step",
                self.step.to_string(),
                "a finite number > 0 (the quantization step in the orthonormal coefficient \
                 domain)"
                    .into(),
            );
        }
        for (field, v) in [("quant.rows", &self.rows), ("quant.cols", &self.cols)] {
            if !v.is_empty() && v.len() != cf {
                return bad(
                    field,
                    format!("{} multipliers", v.len()),
                    format!("exactly cf = {cf} multipliers (one per frequency), or none"),
                );
            }
            if let Some(m) = v.iter().find(|m| !(m.is_finite() && **m > 0.0)) {
                return bad(field, m.to_string(), "finite multipliers > 0".into());
            }
            // The folded steps must stay finite and non-zero too.
            if let Some(s) = v.iter().map(|m| m * self.step).find(|s| !s.is_normal()) {
                return bad(
                    field,
                    format!("a step of {s}"),
                    "multipliers whose steps (step x multiplier) are normal f64 numbers".into(),
                );
            }
        }
        let (dh, dw) = self.axis_steps(cf);
        if let Some(s) = dh
            .iter()
            .flat_map(|a| dw.iter().map(move |b| a * b))
            .find(|s| !s.is_normal())
        {
            return bad(
                "quant",
                format!("a step of {s}"),
                "steps step x rows[i] x cols[j] that are normal f64 numbers".into(),
            );
        }
        Ok(())
    }

    fn row(&self, i: usize) -> f64 {
        self.rows.get(i).copied().unwrap_or(1.0)
    }

    fn col(&self, j: usize) -> f64 {
        self.cols.get(j).copied().unwrap_or(1.0)
    }

    /// The per-axis diagonals `(D_h, D_w)`, CF each: `D_h[i] = step · rows[i]`, `D_w[j] =
    /// cols[j]`, so the step of (i, j) is `D_h[i] · D_w[j]` (the uniform step sits on the row
    /// axis).
    pub fn axis_steps(&self, cf: usize) -> (Vec<f64>, Vec<f64>) {
        (
            (0..cf).map(|i| self.step * self.row(i)).collect(),
            (0..cf).map(|j| self.col(j)).collect(),
        )
    }

    /// The step of coefficient (i, j) of a block: `step · rows[i] · cols[j]` (evaluated as
    /// `D_h[i] · D_w[j]`).
    pub fn step_at(&self, i: usize, j: usize) -> f64 {
        self.step * self.row(i) * self.col(j)
    }

    /// The step of every coefficient of one stored plane of `layout`, in stored order.
    pub fn plane_steps(&self, layout: &Layout) -> Vec<f64> {
        let mut steps = vec![0.0; layout.plane_len()];
        let (nbh, nbw) = layout.blocks;
        for bi in 0..nbh {
            for bj in 0..nbw {
                for (k, &(i, j)) in layout.kept().iter().enumerate() {
                    steps[layout.offset(bi, bj, k)] = self.step_at(i, j);
                }
            }
        }
        steps
    }

    /// A file-name-safe suffix for spec names: `-q8s2.5` (8-bit codes, step 2.5; the step as
    /// Rust prints an f64, which never uses an exponent), followed by `w` and 8 hex digits (a
    /// FNV-1a hash of the multipliers' bits) when the steps are not uniform, and `-opponent` for a
    /// channel transform.
    pub fn name_suffix(&self) -> String {
        let mut s = format!("-q{}s{}", self.code.bits(), self.step);
        if !self.is_uniform() {
            let mut h: u32 = 0x811c_9dc5;
            let bytes = self
                .rows
                .iter()
                .map(|v| v.to_bits())
                .chain([u64::MAX])
                .chain(self.cols.iter().map(|v| v.to_bits()))
                .flat_map(u64::to_le_bytes);
            for b in bytes {
                h = (h ^ b as u32).wrapping_mul(0x0100_0193);
            }
            s += &format!("w{h:08x}");
        }
        if let Some(m) = self.mix {
            s += &format!("-{m}");
        }
        s
    }
}

/// Round a value already divided by its step to a code: `clamp(round_half_to_even(v), -max,
/// +max)`. Returns the code and whether it was clamped (beyond ±max, ±∞ or NaN; NaN gives 0).
pub fn round_code(v: f64, code: CodeType) -> (i32, bool) {
    let max = code.max() as f64;
    if v.is_nan() {
        return (0, true);
    }
    let r = v.round_ties_even();
    if r > max {
        (code.max(), true)
    } else if r < -max {
        (-code.max(), true)
    } else {
        (r as i32, false)
    }
}

/// The rounding rule for a coefficient and its step: `round_code(y / step, code)`.
pub fn quantize(y: f64, step: f64, code: CodeType) -> (i32, bool) {
    round_code(y / step, code)
}

/// The element types codes are stored in (`i8`, `i16`). Sealed.
pub trait CodeElem: Copy + Default + Send + Sync + fmt::Debug + 'static + private::Sealed {
    const CODE: CodeType;
    /// A value known to lie in `-max..=max`.
    fn from_code(v: i32) -> Self;
    fn to_f64(self) -> f64;
    /// Wrap a view as [`CodesView`].
    fn view(a: ArrayViewD<'_, Self>) -> CodesView<'_>;
    /// Wrap an owned array as [`Codes`].
    fn owned(a: ArrayD<Self>) -> Codes;
    /// Two's-complement arithmetic that wraps (the entropy stage's differences).
    fn wrapping_sub(self, other: Self) -> Self;
    fn wrapping_add(self, other: Self) -> Self;
    /// Zigzag map (0, -1, 1, -2, ... → 0, 1, 2, 3, ...) kept in the same bits, so small
    /// magnitudes of either sign have zero high bits; [`CodeElem::unzigzag`] inverts it.
    fn zigzag(self) -> Self;
    fn unzigzag(self) -> Self;
    /// Byte `b` (0 = least significant) of the two's-complement value.
    fn byte(self, b: usize) -> u8;
    /// The value of little-endian bytes (`hi` ignored for one-byte codes).
    fn from_bytes(lo: u8, hi: u8) -> Self;
}

mod private {
    pub trait Sealed {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
}

impl CodeElem for i8 {
    const CODE: CodeType = CodeType::I8;
    fn from_code(v: i32) -> Self {
        v as i8
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn view(a: ArrayViewD<'_, Self>) -> CodesView<'_> {
        CodesView::I8(a)
    }
    fn owned(a: ArrayD<Self>) -> Codes {
        Codes::I8(a)
    }
    fn wrapping_sub(self, other: Self) -> Self {
        i8::wrapping_sub(self, other)
    }
    fn wrapping_add(self, other: Self) -> Self {
        i8::wrapping_add(self, other)
    }
    fn zigzag(self) -> Self {
        self.wrapping_shl(1) ^ (self >> 7)
    }
    fn unzigzag(self) -> Self {
        let u = self as u8;
        ((u >> 1) as i8) ^ -((u & 1) as i8)
    }
    fn byte(self, _: usize) -> u8 {
        self as u8
    }
    fn from_bytes(lo: u8, _: u8) -> Self {
        lo as i8
    }
}

impl CodeElem for i16 {
    const CODE: CodeType = CodeType::I16;
    fn from_code(v: i32) -> Self {
        v as i16
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn view(a: ArrayViewD<'_, Self>) -> CodesView<'_> {
        CodesView::I16(a)
    }
    fn owned(a: ArrayD<Self>) -> Codes {
        Codes::I16(a)
    }
    fn wrapping_sub(self, other: Self) -> Self {
        i16::wrapping_sub(self, other)
    }
    fn wrapping_add(self, other: Self) -> Self {
        i16::wrapping_add(self, other)
    }
    fn zigzag(self) -> Self {
        self.wrapping_shl(1) ^ (self >> 15)
    }
    fn unzigzag(self) -> Self {
        let u = self as u16;
        ((u >> 1) as i16) ^ -((u & 1) as i16)
    }
    fn byte(self, b: usize) -> u8 {
        self.to_le_bytes()[b]
    }
    fn from_bytes(lo: u8, hi: u8) -> Self {
        i16::from_le_bytes([lo, hi])
    }
}

/// Quantize values already divided by their steps (what a quantized compress graph outputs) into
/// `out` by the rounding rule; returns how many were clamped. `out.len()` must equal
/// `scaled.len()`.
pub fn quantize_scaled<T: CodeElem>(scaled: &[f32], out: &mut [T]) -> usize {
    assert_eq!(scaled.len(), out.len(), "quantize_scaled: length mismatch");
    let mut clamped = 0;
    for (o, &v) in out.iter_mut().zip(scaled) {
        let (c, hit) = round_code(v as f64, T::CODE);
        clamped += hit as usize;
        *o = T::from_code(c);
    }
    clamped
}

/// An owned tensor of codes.
#[derive(Clone, Debug, PartialEq)]
pub enum Codes {
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
}

/// A borrowed tensor of codes: what a quantized decompress graph takes.
#[derive(Clone, Debug)]
pub enum CodesView<'a> {
    I8(ArrayViewD<'a, i8>),
    I16(ArrayViewD<'a, i16>),
}

impl Codes {
    /// Quantize scaled coefficients (a compress graph's output) into codes of `code`; returns
    /// the codes and how many values were clamped.
    pub fn quantize(scaled: ArrayViewD<'_, f32>, code: CodeType) -> (Codes, usize) {
        fn go<T: CodeElem>(scaled: ArrayViewD<'_, f32>) -> (Codes, usize) {
            let s = scaled.as_standard_layout();
            let src = s.as_slice().expect("standard layout");
            let mut out = vec![T::default(); src.len()];
            let clamped = quantize_scaled(src, &mut out);
            let a = ArrayD::from_shape_vec(IxDyn(scaled.shape()), out).expect("same length");
            (T::owned(a), clamped)
        }
        match code {
            CodeType::I8 => go::<i8>(scaled),
            CodeType::I16 => go::<i16>(scaled),
        }
    }

    pub fn code_type(&self) -> CodeType {
        self.view().code_type()
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Codes::I8(a) => a.shape(),
            Codes::I16(a) => a.shape(),
        }
    }

    pub fn view(&self) -> CodesView<'_> {
        match self {
            Codes::I8(a) => CodesView::I8(a.view()),
            Codes::I16(a) => CodesView::I16(a.view()),
        }
    }
}

impl CodesView<'_> {
    pub fn code_type(&self) -> CodeType {
        match self {
            CodesView::I8(_) => CodeType::I8,
            CodesView::I16(_) => CodeType::I16,
        }
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            CodesView::I8(a) => a.shape(),
            CodesView::I16(a) => a.shape(),
        }
    }

    /// The codes as f64 (exact).
    pub fn to_f64(&self) -> ArrayD<f64> {
        match self {
            CodesView::I8(a) => a.mapv(|v| v as f64),
            CodesView::I16(a) => a.mapv(|v| v as f64),
        }
    }

    /// The codes as f32 (exact: |code| ≤ 32767 < 2²⁴).
    pub fn to_f32(&self) -> ArrayD<f32> {
        match self {
            CodesView::I8(a) => a.mapv(|v| v as f32),
            CodesView::I16(a) => a.mapv(|v| v as f32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Variant;

    /// Half-to-even rounding written out with floor and parity (independent of
    /// `f64::round_ties_even`).
    fn reference_round(v: f64) -> f64 {
        let f = v.floor();
        let frac = v - f;
        let up = frac > 0.5 || (frac == 0.5 && f % 2.0 != 0.0);
        if up {
            f + 1.0
        } else {
            f
        }
    }

    fn reference(v: f64, max: i32) -> (i32, bool) {
        let r = reference_round(v);
        let m = max as f64;
        if r > m {
            (max, true)
        } else if r < -m {
            (-max, true)
        } else {
            (r as i32, false)
        }
    }

    #[test]
    fn rounding_matches_half_even_reference_with_ties_and_clamping() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            3.5,
            0.49999999999999994,
            126.5,
            127.5,
            -127.5,
            -128.0,
            128.0,
            1e9,
            -1e9,
            32766.5,
            32767.5,
            -32767.5,
            -32768.0,
            0.1,
            -0.9,
        ];
        // A deterministic sweep of quarters and random-ish values across both ranges.
        let mut s: u64 = 7;
        for k in -140_000..140_000i64 {
            values.push(k as f64 / 4.0);
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            values.push(((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 80_000.0);
        }
        for code in [CodeType::I8, CodeType::I16] {
            for &v in &values {
                assert_eq!(round_code(v, code), reference(v, code.max()), "{v} {code}");
            }
        }
        // The spelled-out ties.
        assert_eq!(round_code(2.5, CodeType::I8), (2, false));
        assert_eq!(round_code(3.5, CodeType::I8), (4, false));
        assert_eq!(round_code(-0.5, CodeType::I8), (0, false));
        assert_eq!(round_code(-1.5, CodeType::I8), (-2, false));
        // Symmetric clamping: -128 / -32768 never appear.
        assert_eq!(round_code(-128.0, CodeType::I8), (-127, true));
        assert_eq!(round_code(127.4, CodeType::I8), (127, false));
        assert_eq!(round_code(127.5, CodeType::I8), (127, true));
        assert_eq!(round_code(-32768.0, CodeType::I16), (-32767, true));
        assert_eq!(round_code(f64::INFINITY, CodeType::I16), (32767, true));
        assert_eq!(round_code(f64::NEG_INFINITY, CodeType::I8), (-127, true));
        assert_eq!(round_code(f64::NAN, CodeType::I8), (0, true));
        assert_eq!(quantize(7.5, 3.0, CodeType::I8), (2, false));
        assert_eq!(quantize(-7.5, 3.0, CodeType::I8), (-2, false));
    }

    #[test]
    fn slices_count_clamped_values() {
        let scaled = [0.5f32, 1.5, -200.0, 200.0, 126.6, f32::NAN, -127.4];
        let mut out = [0i8; 7];
        assert_eq!(quantize_scaled(&scaled, &mut out), 3);
        assert_eq!(out, [0, 2, -127, 127, 127, 0, -127]);
        let mut out16 = [0i16; 7];
        assert_eq!(quantize_scaled(&scaled, &mut out16), 1);
        assert_eq!(out16, [0, 2, -200, 200, 127, 0, -127]);
        let a = ndarray::arr2(&[[0.5f32, 300.0], [-2.5, 1.0]]).into_dyn();
        let (c, n) = Codes::quantize(a.view(), CodeType::I8);
        assert_eq!(n, 1);
        assert_eq!(
            c,
            Codes::I8(ndarray::arr2(&[[0i8, 127], [-2, 1]]).into_dyn())
        );
    }

    #[test]
    fn validation_names_field_value_and_range() {
        let q = |step| Quant::uniform(CodeType::I8, step);
        for (quant, field, allowed) in [
            (q(0.0), "quant.step = 0", "finite number > 0"),
            (q(-1.0), "quant.step = -1", "finite number > 0"),
            (q(f64::NAN), "quant.step = NaN", "finite number > 0"),
            (q(f64::INFINITY), "quant.step = inf", "finite number > 0"),
            (
                q(1.0).with_multipliers(vec![1.0; 3], vec![]),
                "quant.rows = 3 multipliers",
                "cf = 4",
            ),
            (
                q(1.0).with_multipliers(vec![], vec![1.0, 2.0, 0.0, 1.0]),
                "quant.cols = 0",
                "> 0",
            ),
            (
                q(1e-300).with_multipliers(vec![1e-20; 4], vec![]),
                "quant.rows",
                "normal",
            ),
        ] {
            let msg = quant.validate(4).unwrap_err().to_string();
            assert!(msg.contains(field) && msg.contains(allowed), "{msg}");
            assert!(!msg.contains('\n'));
        }
        assert!(q(0.5).validate(4).is_ok());
        assert!(q(0.5)
            .with_multipliers(vec![1.0, 2.0, 3.0, 4.0], vec![1.0; 4])
            .validate(4)
            .is_ok());
    }

    #[test]
    fn steps_are_separable_and_placed_by_the_layout() {
        let q = Quant::uniform(CodeType::I16, 2.0).with_multipliers(vec![1.0, 3.0], vec![0.5, 4.0]);
        let (dh, dw) = q.axis_steps(2);
        assert_eq!((dh.clone(), dw.clone()), (vec![2.0, 6.0], vec![0.5, 4.0]));
        for (i, a) in dh.iter().enumerate() {
            for (j, b) in dw.iter().enumerate() {
                assert_eq!(q.step_at(i, j), a * b);
            }
        }
        let l = Layout::new(Variant::Triangle, 2, (1, 2));
        // Block-major, kept (0,0), (0,1), (1,0) per block.
        assert_eq!(q.plane_steps(&l), vec![1.0, 8.0, 3.0, 1.0, 8.0, 3.0]);
        let l = Layout::new(Variant::Chop, 2, (1, 2));
        assert_eq!(
            q.plane_steps(&l),
            vec![1.0, 8.0, 1.0, 8.0, 3.0, 24.0, 3.0, 24.0]
        );
    }

    #[test]
    fn serde_names_and_parsing() {
        let q = Quant::uniform(CodeType::I8, 2.5);
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"code":"i8","step":2.5}"#
        );
        let back: Quant = serde_json::from_str(r#"{"code":"i16","step":0.25}"#).unwrap();
        assert_eq!(back, Quant::uniform(CodeType::I16, 0.25));
        let m = q.clone().with_multipliers(vec![1.0, 2.0], vec![]);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"code":"i8","step":2.5,"rows":[1.0,2.0]}"#);
        assert_eq!(serde_json::from_str::<Quant>(&json).unwrap(), m);
        assert_eq!("int16".parse::<CodeType>().unwrap(), CodeType::I16);
        assert_eq!(
            CodeType::I8.to_string().parse::<CodeType>().unwrap(),
            CodeType::I8
        );
        assert!("u8".parse::<CodeType>().unwrap_err().contains("i8, i16"));
        assert_eq!((CodeType::I8.max(), CodeType::I16.max()), (127, 32767));
        assert_eq!(CodeType::fitting(127), Some(CodeType::I8));
        assert_eq!(CodeType::fitting(128), Some(CodeType::I16));
        assert_eq!(CodeType::fitting(40000), None);
        assert_eq!(q.name_suffix(), "-q8s2.5");
        assert_eq!(
            Quant::uniform(CodeType::I16, 0.001).name_suffix(),
            "-q16s0.001"
        );
        let w = m.name_suffix();
        assert!(
            w.starts_with("-q8s2.5w") && w.len() == "-q8s2.5w".len() + 8,
            "{w}"
        );
        // Multipliers of 1 are uniform: same name as none.
        let ones = q.clone().with_multipliers(vec![1.0; 2], vec![1.0; 2]);
        assert_eq!(ones.name_suffix(), "-q8s2.5");
    }
}
