//! What a variant means, in one place: which coefficients of a block it keeps, in which order,
//! and where they are stored in the compressed tensor. Spec, plan, graphs, codec, engines and
//! tests all ask a [`Layout`]; none of them matches on [`Variant`] themselves, so a new variant
//! is a new arm here and nothing else.
//!
//! Two storage schemes exist:
//! - **grid** (a variant that keeps the whole CF×CF square): the plane is `[nbh·CF, nbw·CF]`,
//!   block (bi, bj)'s coefficient (i, j) at row bi·CF + i, column bj·CF + j — the coefficients
//!   sit where the transform puts them, so the graphs only crop.
//! - **block-major** (any subset of the square): the plane is `[nbh·nbw·K]`, blocks in row-major
//!   order (block row, then block column), inside a block the kept (i, j) in the variant's order.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which coefficients of each block are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Upper-left CF×CF square (the paper's DCT+Chop).
    Chop,
    /// Upper-left triangle i + j < CF (the paper's scatter/gather optimization, §3.5.2).
    Triangle,
}

/// Every variant, for sweeps and help texts.
pub const VARIANTS: [Variant; 2] = [Variant::Chop, Variant::Triangle];

impl Variant {
    /// The name used in flags, file names and metadata.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Chop => "chop",
            Variant::Triangle => "triangle",
        }
    }

    /// Whether this variant keeps coefficient (i, j) of a block (both < CF).
    fn keeps(self, i: usize, j: usize, cf: usize) -> bool {
        match self {
            Variant::Chop => true,
            Variant::Triangle => i + j < cf,
        }
    }

    /// The name of the stored layout (recorded in graphs and containers).
    fn layout_name(self) -> &'static str {
        match self {
            Variant::Chop => "chop-blockgrid-v1",
            Variant::Triangle => "triangle-blockmajor-v1",
        }
    }

    /// Other spellings accepted on the command line.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Variant::Chop => &["square"],
            Variant::Triangle => &["tri"],
        }
    }
}

/// Positions (i, j) kept inside one block, in the stored order (row-major over the CF×CF square,
/// skipping what the variant drops).
pub fn kept_positions(variant: Variant, cf: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(cf * cf);
    for i in 0..cf {
        for j in 0..cf {
            if variant.keeps(i, j, cf) {
                out.push((i, j));
            }
        }
    }
    out
}

/// Where a variant's coefficients of one image plane are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub variant: Variant,
    pub cf: usize,
    /// Block rows and block columns of the plane.
    pub blocks: (usize, usize),
    /// The kept (i, j) of a block, in stored order.
    kept: Vec<(usize, usize)>,
}

impl Layout {
    pub fn new(variant: Variant, cf: usize, blocks: (usize, usize)) -> Layout {
        Layout {
            variant,
            cf,
            blocks,
            kept: kept_positions(variant, cf),
        }
    }

    /// The kept (i, j) of a block, in stored order.
    pub fn kept(&self) -> &[(usize, usize)] {
        &self.kept
    }

    /// Coefficients kept per block.
    pub fn per_block(&self) -> usize {
        self.kept.len()
    }

    /// Whether the plane is stored as the CF-strided block grid (else block-major).
    pub fn is_grid(&self) -> bool {
        self.kept.len() == self.cf * self.cf
    }

    pub fn name(&self) -> &'static str {
        self.variant.layout_name()
    }

    /// The kept set as a staircase, if it is one: row `i` of a block keeps exactly its first
    /// `len[i]` coefficients, stored row after row (what the native engine's kernels take).
    pub fn row_lengths(&self) -> Option<Vec<usize>> {
        let mut len = vec![0usize; self.cf];
        for (k, &(i, j)) in self.kept.iter().enumerate() {
            // Stored order must be row-major and every row a prefix.
            let prev_ok = k == 0 || self.kept[k - 1] < (i, j);
            if j != len[i] || !prev_ok {
                return None;
            }
            len[i] += 1;
        }
        Some(len)
    }

    /// Shape of one stored plane: `[nbh·CF, nbw·CF]` (grid) or `[nbh·nbw·K]` (block-major).
    pub fn plane_shape(&self) -> Vec<usize> {
        let (nbh, nbw) = self.blocks;
        if self.is_grid() {
            vec![nbh * self.cf, nbw * self.cf]
        } else {
            vec![nbh * nbw * self.per_block()]
        }
    }

    /// Coefficients in one stored plane.
    pub fn plane_len(&self) -> usize {
        self.blocks.0 * self.blocks.1 * self.per_block()
    }

    /// Offset within a stored plane of the `k`-th kept coefficient of block (bi, bj).
    pub fn offset(&self, bi: usize, bj: usize, k: usize) -> usize {
        let (_, nbw) = self.blocks;
        if self.is_grid() {
            let (i, j) = self.kept[k];
            (bi * self.cf + i) * (nbw * self.cf) + bj * self.cf + j
        } else {
            (bi * nbw + bj) * self.per_block() + k
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.to_ascii_lowercase();
        VARIANTS
            .into_iter()
            .find(|v| v.name() == s || v.aliases().contains(&s.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = VARIANTS.iter().map(|v| v.name()).collect();
                format!("unknown variant '{s}': allowed are {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangle_positions_count_and_order() {
        let p = kept_positions(Variant::Triangle, 3);
        assert_eq!(p, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]);
        for cf in 1..=8 {
            assert_eq!(
                kept_positions(Variant::Triangle, cf).len(),
                cf * (cf + 1) / 2
            );
            assert_eq!(kept_positions(Variant::Chop, cf).len(), cf * cf);
        }
    }

    #[test]
    fn offsets_cover_the_plane_once() {
        for v in VARIANTS {
            for cf in 1..=4 {
                let l = Layout::new(v, cf, (3, 5));
                let mut seen = vec![0u8; l.plane_len()];
                for bi in 0..3 {
                    for bj in 0..5 {
                        for k in 0..l.per_block() {
                            seen[l.offset(bi, bj, k)] += 1;
                        }
                    }
                }
                assert!(seen.iter().all(|&c| c == 1), "{v} cf {cf}");
                assert_eq!(l.plane_shape().iter().product::<usize>(), l.plane_len());
            }
        }
    }

    #[test]
    fn every_variant_is_a_staircase() {
        for v in VARIANTS {
            for cf in 1..=8 {
                let l = Layout::new(v, cf, (1, 1));
                let len = l.row_lengths().expect("a staircase");
                assert_eq!(len.iter().sum::<usize>(), l.per_block(), "{v} cf {cf}");
            }
        }
        let tri = Layout::new(Variant::Triangle, 3, (1, 1));
        assert_eq!(tri.row_lengths(), Some(vec![3, 2, 1]));
    }

    #[test]
    fn names_parse_back() {
        for v in VARIANTS {
            assert_eq!(v.name().parse::<Variant>().unwrap(), v);
        }
        assert_eq!("tri".parse::<Variant>().unwrap(), Variant::Triangle);
        assert!("x"
            .parse::<Variant>()
            .unwrap_err()
            .contains("chop, triangle"));
    }
}
