//! The user-facing compressor specification and its validation.
//!
//! A [`Spec`] is plain data (what the user asked for). [`Spec::validate`] checks every field
//! and every combination once, so the rest of the library can assume a consistent spec.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::layout::Layout;
pub use crate::layout::Variant;
use crate::quant::{ChannelMix, Quant};

/// Block sizes the DCT may use.
pub const ALLOWED_BLOCKS: [usize; 4] = [4, 8, 16, 32];
/// ONNX opsets we can emit (MatMul/Gather/Reshape exist unchanged in all of them).
pub const OPSET_RANGE: std::ops::RangeInclusive<i64> = 13..=21;
/// Refuse plans whose constant matrices (f64 while building) would exceed this many bytes.
pub const MAX_CONSTANT_BYTES: u64 = 2 << 30;

/// Element type of the graph's inputs, outputs and constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F16,
}

/// How the two matrix products are shaped (see `plan` for the forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tile {
    /// The paper's dense LHS/RHS (Eq. 4): O(n³) per image.
    Full,
    /// Pick per spec (rule in [`crate::plan::auto_tile`]).
    Auto,
    /// Strips of this many rows/columns: every MatMul has inner size `t`, cost O(pixels·t).
    Size(usize),
}

/// A complete compressor specification. Build one with [`Spec::new`] and the `with_*` setters or
/// struct syntax, then call [`Spec::validate`] (the planner does this for you).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spec {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub block: usize,
    pub cf: usize,
    pub variant: Variant,
    pub tile: Tile,
    pub serialize: usize,
    pub dtype: Dtype,
    /// Quantization (see [`crate::quant`]): the compress graph outputs coefficients divided by
    /// their steps and the decompress graph takes integer codes. `None` (the default, and absent
    /// from the JSON) for float coefficients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant: Option<Quant>,
}

impl Spec {
    /// A spec with the documented defaults: batch 1, 3 channels, block 8, chop, tile auto,
    /// serialize 1, f32.
    pub fn new(height: usize, width: usize, cf: usize) -> Self {
        Spec {
            batch: 1,
            channels: 3,
            height,
            width,
            block: 8,
            cf,
            variant: Variant::Chop,
            tile: Tile::Auto,
            serialize: 1,
            dtype: Dtype::F32,
            quant: None,
        }
    }

    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
    pub fn with_channels(mut self, channels: usize) -> Self {
        self.channels = channels;
        self
    }
    pub fn with_block(mut self, block: usize) -> Self {
        self.block = block;
        self
    }
    pub fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }
    pub fn with_tile(mut self, tile: Tile) -> Self {
        self.tile = tile;
        self
    }
    pub fn with_serialize(mut self, serialize: usize) -> Self {
        self.serialize = serialize;
        self
    }
    pub fn with_dtype(mut self, dtype: Dtype) -> Self {
        self.dtype = dtype;
        self
    }
    /// Quantize the coefficients (see [`crate::quant`]).
    pub fn with_quant(mut self, quant: Quant) -> Self {
        self.quant = Some(quant);
        self
    }

    /// Whether the channel transform `mix` applies to this spec's channels.
    pub fn check_mix(&self, mix: ChannelMix) -> Result<(), Error> {
        if mix.channels() == self.channels {
            return Ok(());
        }
        Err(Error::InvalidSpec {
            field: "quant.mix",
            value: format!("{mix} for {} channel(s)", self.channels),
            allowed: format!(
                "the {mix} transform needs {} channels (or no channel transform)",
                mix.channels()
            ),
        })
    }

    /// Whether the graphs of this spec are quantized.
    pub fn is_quantized(&self) -> bool {
        self.quant.is_some()
    }

    /// Height and width rounded up to whole blocks.
    pub fn padded(&self) -> (usize, usize) {
        // Saturating: validation reports absurd sizes instead of overflowing here.
        (
            self.height.div_ceil(self.block).saturating_mul(self.block),
            self.width.div_ceil(self.block).saturating_mul(self.block),
        )
    }

    /// Number of blocks along height and width.
    pub fn blocks(&self) -> (usize, usize) {
        (
            self.height.div_ceil(self.block),
            self.width.div_ceil(self.block),
        )
    }

    /// Where this spec's coefficients are stored (what the variant means).
    pub fn layout(&self) -> Layout {
        Layout::new(self.variant, self.cf, self.blocks())
    }

    /// Coefficients kept per block: CF² (chop) or CF(CF+1)/2 (triangle).
    pub fn coeffs_per_block(&self) -> usize {
        self.layout().per_block()
    }

    /// Shape of the uncompressed tensor `[B, C, H, W]`.
    pub fn input_shape(&self) -> Vec<usize> {
        vec![self.batch, self.channels, self.height, self.width]
    }

    /// Shape of the compressed tensor: `[B, C]` followed by the layout's plane shape (chop
    /// `[nbh·CF, nbw·CF]`, triangle `[nbh·nbw·K]`).
    pub fn compressed_shape(&self) -> Vec<usize> {
        [vec![self.batch, self.channels], self.layout().plane_shape()].concat()
    }

    /// Stored compression ratio: uncompressed elements / stored coefficients (both in the
    /// graph dtype). For sizes that are not multiples of the block, padding is counted.
    pub fn compression_ratio(&self) -> f64 {
        let (nbh, nbw) = self.blocks();
        (self.height * self.width) as f64 / (nbh * nbw * self.coeffs_per_block()) as f64
    }

    /// Name of the compressed layout (see [`Layout`]).
    pub fn layout_name(&self) -> &'static str {
        self.layout().name()
    }

    /// The spec the graphs are built for: the spec itself when serialize = 1, else one chunk
    /// (Hp/s × Wp/s, already whole blocks) with serialize 1.
    pub fn chunk_spec(&self) -> Spec {
        if self.serialize == 1 {
            // The graphs take the image as it is and pad it themselves.
            return self.clone();
        }
        let (hp, wp) = self.padded();
        Spec {
            height: hp / self.serialize,
            width: wp / self.serialize,
            serialize: 1,
            ..self.clone()
        }
    }

    /// A file-name-safe string that encodes the whole spec, e.g.
    /// `chop-cf4-b8-n1x3x256x256-tile16-s1-f32`; a quantized spec adds
    /// [`Quant::name_suffix`], e.g. `...-s1-f32-q8s2.5`.
    pub fn name(&self) -> String {
        self.name_with_tile(&self.tile.to_string())
    }

    /// [`Spec::name`] with `tile` in place of the spec's tile (the plan names the resolved one).
    pub fn name_with_tile(&self, tile: &str) -> String {
        format!(
            "{}-cf{}-b{}-n{}x{}x{}x{}-tile{}-s{}-{}{}",
            self.variant,
            self.cf,
            self.block,
            self.batch,
            self.channels,
            self.height,
            self.width,
            tile,
            self.serialize,
            self.dtype,
            self.quant
                .as_ref()
                .map(Quant::name_suffix)
                .unwrap_or_default()
        )
    }

    /// Check every field and combination. Errors name the field, the value and what is allowed.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, value: String, allowed: String| {
            Err(Error::InvalidSpec {
                field,
                value,
                allowed,
            })
        };
        if self.batch == 0 {
            return bad("batch", "0".into(), "an integer >= 1".into());
        }
        if self.channels == 0 {
            return bad("channels", "0".into(), "an integer >= 1".into());
        }
        if self.height == 0 {
            return bad("height", "0".into(), "an integer >= 1".into());
        }
        if self.width == 0 {
            return bad("width", "0".into(), "an integer >= 1".into());
        }
        if !ALLOWED_BLOCKS.contains(&self.block) {
            return bad(
                "block",
                self.block.to_string(),
                "one of 4, 8, 16, 32".into(),
            );
        }
        if self.cf == 0 || self.cf > self.block {
            return bad(
                "cf",
                self.cf.to_string(),
                format!("1..={} (at most the block size {})", self.block, self.block),
            );
        }
        if let Tile::Size(t) = self.tile {
            if t == 0 || t % self.block != 0 {
                return bad(
                    "tile",
                    t.to_string(),
                    format!(
                        "a positive multiple of the block size {} (e.g. {}, {}), 'full' or 'auto'",
                        self.block,
                        self.block,
                        4 * self.block
                    ),
                );
            }
        }
        if self.serialize == 0 {
            return bad("serialize", "0".into(), "an integer >= 1".into());
        }
        let (nbh, nbw) = self.blocks();
        if nbh % self.serialize != 0 || nbw % self.serialize != 0 {
            let (hp, wp) = self.padded();
            return bad(
                "serialize",
                self.serialize.to_string(),
                format!(
                    "a divisor of both block counts ({nbh} x {nbw} blocks of {b} in the padded \
                     {hp}x{wp} image), so every chunk holds whole blocks",
                    b = self.block
                ),
            );
        }
        if let Some(q) = &self.quant {
            q.validate(self.cf)?;
            if let Some(m) = q.mix {
                self.check_mix(m)?;
            }
            // The folded matrices hold DCT entries (|v| <= 1) times D (decompress) and divided
            // by D (compress): both must be finite in the graph's dtype.
            let (dh, dw) = q.axis_steps(self.cf);
            let (lo, hi) = self.dtype.finite_range();
            if let Some(d) = dh.iter().chain(&dw).find(|&&d| !(lo..=hi).contains(&d)) {
                return bad(
                    "quant.step",
                    format!("{} (an axis step of {d})", q.step),
                    format!(
                        "axis steps between {lo:e} and {hi:e} for {} graphs, so the matrices \
                         that fold them in stay finite",
                        self.dtype
                    ),
                );
            }
        }
        let elems = [self.batch, self.channels, self.height, self.width]
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        if elems.is_none_or(|e| e > i64::MAX as u64 / 8) {
            return bad(
                "batch x channels x height x width",
                format!(
                    "{}x{}x{}x{}",
                    self.batch, self.channels, self.height, self.width
                ),
                "a tensor size that fits in memory".into(),
            );
        }
        Ok(())
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        })
    }
}

impl Dtype {
    /// The numpy (and ONNX) name: `float32`, `float16`.
    pub fn numpy_name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
        }
    }

    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }

    /// `(1/max, max)`: the range of scale factors whose products with, and quotients of, a value
    /// of magnitude at most 1 stay finite in this dtype.
    pub fn finite_range(self) -> (f64, f64) {
        let max = match self {
            Dtype::F32 => f32::MAX as f64,
            Dtype::F16 => half::f16::MAX.to_f64(),
        };
        (1.0 / max, max)
    }
}

impl FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "float" => Ok(Dtype::F32),
            "f16" | "float16" | "half" => Ok(Dtype::F16),
            _ => Err(format!("unknown dtype '{s}': allowed are f32, f16")),
        }
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tile::Full => f.write_str("full"),
            Tile::Auto => f.write_str("auto"),
            Tile::Size(t) => write!(f, "{t}"),
        }
    }
}

impl FromStr for Tile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" | "dense" => Ok(Tile::Full),
            "auto" => Ok(Tile::Auto),
            n => n.parse::<usize>().map(Tile::Size).map_err(|_| {
                format!(
                    "invalid tile '{s}': allowed are a multiple of the block size, 'full', 'auto'"
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_name_field_value_and_range() {
        let cases: Vec<(Spec, &str, &str)> = vec![
            (Spec::new(64, 64, 9), "cf", "1..=8"),
            (Spec::new(64, 64, 0), "cf", "1..=8"),
            (Spec::new(64, 64, 4).with_block(12), "block", "4, 8, 16, 32"),
            (
                Spec::new(64, 64, 4).with_tile(Tile::Size(12)),
                "tile",
                "multiple",
            ),
            (
                Spec::new(64, 64, 4).with_serialize(3),
                "serialize",
                "divisor",
            ),
            (Spec::new(0, 64, 4), "height", ">= 1"),
            (Spec::new(64, 0, 4), "width", ">= 1"),
            (Spec::new(64, 64, 4).with_batch(0), "batch", ">= 1"),
            (Spec::new(64, 64, 4).with_channels(0), "channels", ">= 1"),
            (Spec::new(64, 64, 4).with_serialize(0), "serialize", ">= 1"),
        ];
        for (spec, field, allowed) in cases {
            let msg = spec.validate().unwrap_err().to_string();
            assert!(msg.contains(field), "{msg}");
            assert!(msg.contains(allowed), "{msg}");
        }
        use crate::quant::{CodeType, Quant};
        let q = |step| Spec::new(64, 64, 4).with_quant(Quant::uniform(CodeType::I8, step));
        for (spec, field, allowed) in [
            (q(0.0), "quant.step = 0", "> 0"),
            (q(f64::NAN), "quant.step = NaN", "> 0"),
            (q(-2.0), "quant.step = -2", "> 0"),
            (
                q(1e-6).with_dtype(Dtype::F16),
                "quant.step = 0.000001",
                "f16",
            ),
            (q(1e-40), "quant.step", "for f32 graphs"),
            (
                Spec::new(64, 64, 4).with_quant(
                    Quant::uniform(CodeType::I16, 1.0).with_multipliers(vec![1.0; 8], vec![]),
                ),
                "quant.rows = 8 multipliers",
                "cf = 4",
            ),
        ] {
            let msg = spec.validate().unwrap_err().to_string();
            assert!(msg.contains(field) && msg.contains(allowed), "{msg}");
        }
        assert!(q(0.5).validate().is_ok());
        // 300 is padded to 304 = 38 blocks: serialize 2 is fine, 4 is not.
        assert!(Spec::new(300, 304, 4).with_serialize(2).validate().is_ok());
        assert!(Spec::new(300, 304, 4).with_serialize(4).validate().is_err());
    }

    #[test]
    fn parse_round_trips() {
        for t in ["full", "auto", "32"] {
            assert_eq!(t.parse::<Tile>().unwrap().to_string(), t);
        }
        assert!("x".parse::<Tile>().is_err());
        assert_eq!("triangle".parse::<Variant>().unwrap(), Variant::Triangle);
        assert_eq!("f16".parse::<Dtype>().unwrap(), Dtype::F16);
    }

    #[test]
    fn quant_is_absent_from_unquantized_json_and_named_only_when_present() {
        use crate::quant::{CodeType, Quant};
        let plain = Spec::new(64, 48, 4);
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(
            json,
            r#"{"batch":1,"channels":3,"height":64,"width":48,"block":8,"cf":4,"variant":"chop","tile":"auto","serialize":1,"dtype":"f32"}"#
        );
        assert_eq!(serde_json::from_str::<Spec>(&json).unwrap(), plain);
        assert_eq!(plain.name(), "chop-cf4-b8-n1x3x64x48-tileauto-s1-f32");
        let q = plain
            .clone()
            .with_quant(Quant::uniform(CodeType::I16, 0.75));
        let json = serde_json::to_string(&q).unwrap();
        assert!(
            json.ends_with(r#""dtype":"f32","quant":{"code":"i16","step":0.75}}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Spec>(&json).unwrap(), q);
        assert_eq!(q.name(), "chop-cf4-b8-n1x3x64x48-tileauto-s1-f32-q16s0.75");
        assert_eq!(q.chunk_spec().quant, q.quant);
    }

    #[test]
    fn ratios_for_multiples_of_eight() {
        for cf in 1..=8 {
            let chop = Spec::new(256, 128, cf);
            assert_eq!(chop.compression_ratio(), 64.0 / (cf * cf) as f64);
            let tri = chop.with_variant(Variant::Triangle);
            assert_eq!(tri.compression_ratio(), 64.0 / (cf * (cf + 1) / 2) as f64);
        }
    }
}
