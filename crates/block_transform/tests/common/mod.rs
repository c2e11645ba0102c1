//! Independent, deliberately naive f64 reference for DCT+Chop block transforms.
//! Shares no code with the crate: explicit padded planes built by periodic
//! mirrored concatenation, literal per-block triple loops.
#![allow(dead_code)]

/// SplitMix64: tiny deterministic PRNG (no dependency).
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn vec_f32(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi) as f32).collect()
    }
}

/// First `c` rows of the orthonormal DCT-II, in f64 (row-major c×b).
pub fn dct_f64(b: usize, c: usize) -> Vec<f64> {
    let mut m = vec![0.0; c * b];
    for i in 0..c {
        let scale = if i == 0 {
            (1.0 / b as f64).sqrt()
        } else {
            (2.0 / b as f64).sqrt()
        };
        for j in 0..b {
            let angle = std::f64::consts::PI * ((2 * j + 1) * i) as f64 / (2.0 * b as f64);
            m[i * b + j] = scale * angle.cos();
        }
    }
    m
}

/// One axis extended by half-sample symmetric mirroring, built by concatenating
/// `0..n`, `n-1..=0`, `0..n`, ... until `len` entries exist.
fn extended_indices(n: usize, len: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(len + 2 * n);
    while out.len() < len {
        out.extend(0..n);
        out.extend((0..n).rev());
    }
    out.truncate(len);
    out
}

/// Padded f64 plane of size (nbh·b)×(nbw·b).
pub fn pad_plane(x: &[f32], h: usize, w: usize, b: usize) -> (Vec<f64>, usize, usize) {
    let hp = h.div_ceil(b) * b;
    let wp = w.div_ceil(b) * b;
    let ri = extended_indices(h, hp);
    let ci = extended_indices(w, wp);
    let mut p = vec![0.0; hp * wp];
    for r in 0..hp {
        for c in 0..wp {
            p[r * wp + c] = x[ri[r] * w + ci[c]] as f64;
        }
    }
    (p, hp, wp)
}

/// Triangle positions (i, j), i + j < c, row-major.
pub fn tri_positions(c: usize) -> Vec<(usize, usize)> {
    let mut v = vec![];
    for i in 0..c {
        for j in 0..c - i {
            v.push((i, j));
        }
    }
    v
}

pub fn coeffs_per_plane(h: usize, w: usize, b: usize, c: usize, tri: bool) -> usize {
    let (nbh, nbw) = (h.div_ceil(b), w.div_ceil(b));
    if tri {
        nbh * nbw * c * (c + 1) / 2
    } else {
        nbh * c * nbw * c
    }
}

/// Y = A_rows · X · A_colsᵀ per block, in the chop or triangle layout.
#[allow(clippy::too_many_arguments)]
pub fn compress_ref(
    x: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    b: usize,
    c: usize,
    tri: bool,
    ar: &[f64],
    ac: &[f64],
) -> Vec<f64> {
    let (nbh, nbw) = (h.div_ceil(b), w.div_ceil(b));
    let per = coeffs_per_plane(h, w, b, c, tri);
    let tp = tri_positions(c);
    let mut out = vec![0.0; planes * per];
    for p in 0..planes {
        let (pad, _, wp) = pad_plane(&x[p * h * w..(p + 1) * h * w], h, w, b);
        for bi in 0..nbh {
            for bj in 0..nbw {
                // t = A_rows · X  (c×b)
                let mut t = vec![0.0; c * b];
                for i in 0..c {
                    for l in 0..b {
                        let mut s = 0.0;
                        for k in 0..b {
                            s += ar[i * b + k] * pad[(bi * b + k) * wp + bj * b + l];
                        }
                        t[i * b + l] = s;
                    }
                }
                // y = t · A_colsᵀ  (c×c)
                let mut y = vec![0.0; c * c];
                for i in 0..c {
                    for j in 0..c {
                        let mut s = 0.0;
                        for l in 0..b {
                            s += t[i * b + l] * ac[j * b + l];
                        }
                        y[i * c + j] = s;
                    }
                }
                let base = p * per;
                if tri {
                    let k = tp.len();
                    for (n, &(i, j)) in tp.iter().enumerate() {
                        out[base + (bi * nbw + bj) * k + n] = y[i * c + j];
                    }
                } else {
                    for i in 0..c {
                        for j in 0..c {
                            out[base + (bi * c + i) * (nbw * c) + bj * c + j] = y[i * c + j];
                        }
                    }
                }
            }
        }
    }
    out
}

/// X' = B_rowsᵀ · Y · B_cols per block, cropped to H×W.
#[allow(clippy::too_many_arguments)]
pub fn decompress_ref(
    y: &[f64],
    planes: usize,
    h: usize,
    w: usize,
    b: usize,
    c: usize,
    tri: bool,
    br: &[f64],
    bc: &[f64],
) -> Vec<f64> {
    let (nbh, nbw) = (h.div_ceil(b), w.div_ceil(b));
    let per = coeffs_per_plane(h, w, b, c, tri);
    let tp = tri_positions(c);
    let mut out = vec![0.0; planes * h * w];
    for p in 0..planes {
        for bi in 0..nbh {
            for bj in 0..nbw {
                let mut yb = vec![0.0; c * c];
                let base = p * per;
                if tri {
                    let k = tp.len();
                    for (n, &(i, j)) in tp.iter().enumerate() {
                        yb[i * c + j] = y[base + (bi * nbw + bj) * k + n];
                    }
                } else {
                    for i in 0..c {
                        for j in 0..c {
                            yb[i * c + j] = y[base + (bi * c + i) * (nbw * c) + bj * c + j];
                        }
                    }
                }
                // u = B_rowsᵀ · Y  (b×c)
                let mut u = vec![0.0; b * c];
                for k in 0..b {
                    for j in 0..c {
                        let mut s = 0.0;
                        for i in 0..c {
                            s += br[i * b + k] * yb[i * c + j];
                        }
                        u[k * c + j] = s;
                    }
                }
                // x = u · B_cols  (b×b), cropped
                for k in 0..b {
                    let r = bi * b + k;
                    if r >= h {
                        continue;
                    }
                    for l in 0..b {
                        let col = bj * b + l;
                        if col >= w {
                            continue;
                        }
                        let mut s = 0.0;
                        for j in 0..c {
                            s += u[k * c + j] * bc[j * b + l];
                        }
                        out[p * h * w + r * w + col] = s;
                    }
                }
            }
        }
    }
    out
}

/// max |got - ref|.
pub fn max_abs_err(got: &[f32], r: &[f64]) -> f64 {
    assert_eq!(got.len(), r.len());
    got.iter()
        .zip(r)
        .map(|(&g, &r)| (g as f64 - r).abs())
        .fold(0.0, f64::max)
}

pub fn range(v: impl IntoIterator<Item = f64>) -> f64 {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in v {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    hi - lo
}
