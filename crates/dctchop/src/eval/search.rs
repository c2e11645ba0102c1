//! Matching a baseline's real stored size to a target ratio, and the ratio grid of the
//! rate–distortion curves.
//!
//! A baseline with one continuous parameter whose stored size falls as the parameter grows (an
//! error bound or tolerance) is matched by **bisection in log space** of the parameter on the
//! real compressed byte count: every probe compresses all samples. Sizes already measured are
//! kept, so later searches start from the tightest bracket found so far (the curve's grid points
//! first, then the matched points between them).

use crate::error::Result;

/// Tolerance of a matched point: stop once |ln(achieved ratio ÷ target)| ≤ 1 %.
pub const MATCH_TOL: f64 = 0.01;
/// Tolerance of a curve point (it only has to land near its grid ratio): 5 %.
pub const CURVE_TOL: f64 = 0.05;
/// Probes per search at most.
const MAX_PROBES: usize = 40;
/// The bracket stops narrowing below this width in ln p (0.01 %): a size that jumps across the
/// target there is out of reach, and the nearer side is taken.
const MIN_BRACKET: f64 = 1e-4;

/// Sizes of one baseline by parameter, for a parameter p in `lo..=hi` (p > 0) whose stored size
/// does not grow with p (nearly: a non-monotone step only makes the bisection settle on one of the
/// crossings).
pub struct LogSearch {
    lo: f64,
    hi: f64,
    /// (ln p, total stored bytes), sorted by ln p.
    seen: Vec<(f64, u64)>,
}

impl LogSearch {
    /// Search p in `lo..=hi` (both > 0, lo < hi).
    pub fn new(lo: f64, hi: f64) -> LogSearch {
        debug_assert!(lo > 0.0 && hi > lo);
        LogSearch {
            lo,
            hi,
            seen: Vec::new(),
        }
    }

    /// Every (p, bytes) measured so far, by p.
    pub fn probes(&self) -> Vec<(f64, u64)> {
        self.seen.iter().map(|&(x, b)| (x.exp(), b)).collect()
    }

    fn probe(&mut self, x: f64, bytes: &mut dyn FnMut(f64) -> Result<u64>) -> Result<u64> {
        if let Some(&(_, b)) = self.seen.iter().find(|(y, _)| *y == x) {
            return Ok(b);
        }
        let b = bytes(x.exp())?;
        let at = self.seen.partition_point(|(y, _)| *y < x);
        self.seen.insert(at, (x, b));
        Ok(b)
    }

    /// The parameter whose stored size is closest (in log scale) to `want_bytes`, and that size:
    /// bisection in ln p between the two neighbouring probes that bracket `want_bytes`, until the
    /// best probe is within `tol` (|ln(bytes ÷ want_bytes)|), the bracket is narrower than 1e-4,
    /// or after 40 probes. A size out of reach returns the nearer end of the range.
    pub fn find(
        &mut self,
        want_bytes: f64,
        tol: f64,
        bytes: &mut dyn FnMut(f64) -> Result<u64>,
    ) -> Result<(f64, u64)> {
        let (xlo, xhi) = (self.lo.ln(), self.hi.ln());
        self.probe(xlo, bytes)?;
        self.probe(xhi, bytes)?;
        let miss = |b: u64| (b.max(1) as f64 / want_bytes).ln().abs();
        for _ in 0..MAX_PROBES {
            let best = *self
                .seen
                .iter()
                .min_by(|a, b| miss(a.1).total_cmp(&miss(b.1)))
                .expect("two probes");
            if miss(best.1) <= tol {
                return Ok((best.0.exp(), best.1));
            }
            // a: the largest ln p still at or above the wanted size; b: the next probe up.
            let Some(ia) = self.seen.iter().rposition(|&(_, b)| b as f64 >= want_bytes) else {
                return Ok((best.0.exp(), best.1)); // smaller than the largest parameter gives
            };
            let Some(&(xb, _)) = self.seen.get(ia + 1) else {
                return Ok((best.0.exp(), best.1)); // larger than the smallest parameter gives
            };
            let xa = self.seen[ia].0;
            if xb - xa < MIN_BRACKET {
                return Ok((best.0.exp(), best.1));
            }
            self.probe(0.5 * (xa + xb), bytes)?;
        }
        let best = *self
            .seen
            .iter()
            .min_by(|a, b| miss(a.1).total_cmp(&miss(b.1)))
            .expect("two probes");
        Ok((best.0.exp(), best.1))
    }
}

/// The integer in `lo..=hi` whose stored size is closest (in log scale) to `want_bytes`, for
/// sizes monotone in it (growing with it when `grows`, else falling): a binary search for the
/// crossing, then its neighbours are compared (sizes may be slightly non-monotone). `bytes` should
/// cache: the neighbours are asked again.
pub fn closest_int(
    lo: i64,
    hi: i64,
    grows: bool,
    want_bytes: f64,
    bytes: &mut dyn FnMut(i64) -> Result<u64>,
) -> Result<i64> {
    let (mut a, mut b) = (lo, hi);
    while b - a > 1 {
        let mid = a + (b - a) / 2;
        let m = bytes(mid)? as f64;
        // Invariant: the crossing lies in a..=b.
        if (m < want_bytes) == grows {
            a = mid;
        } else {
            b = mid;
        }
    }
    let mut best = (f64::INFINITY, a);
    for k in [(a - 1).max(lo), a, b, (b + 1).min(hi)] {
        let d = (bytes(k)?.max(1) as f64 / want_bytes).ln().abs();
        if d < best.0 {
            best = (d, k);
        }
    }
    Ok(best.1)
}

/// The target ratios of the rate–distortion curves: `points` log-spaced ratios from
/// min(1.5, 0.9 × the smallest dctchop ratio) to max(100, 1.1 × the largest), so every curve
/// spans at least the dctchop rows (where the method can reach those ratios).
pub fn ratio_grid(dctchop_ratios: &[f64], points: usize) -> Vec<f64> {
    if points == 0 {
        return Vec::new();
    }
    let (mut lo, mut hi) = (1.5f64, 100f64);
    for &r in dctchop_ratios.iter().filter(|r| r.is_finite() && **r > 0.0) {
        lo = lo.min(0.9 * r);
        hi = hi.max(1.1 * r);
    }
    if points == 1 {
        return vec![(lo * hi).sqrt()];
    }
    let (a, b) = (lo.ln(), hi.ln());
    (0..points)
        .map(|i| (a + (b - a) * i as f64 / (points - 1) as f64).exp())
        .collect()
}

/// Run `f` on `0..n` over the available cores (at most `n` threads), results in order.
/// Used for the untimed size probes only; timed runs stay on one thread.
pub fn par_map<T: Send>(n: usize, f: &(dyn Fn(usize) -> Result<T> + Sync)) -> Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1)
        .clamp(1, n.max(1));
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t * chunk..((t + 1) * chunk).min(n)).map(f).collect()))
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in handles {
            let part: Result<Vec<T>> = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            out.extend(part?);
        }
        Ok(out)
    })
}

/// A short decimal for a parameter in a config label: 4 significant digits.
pub fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-3..5).contains(&mag) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - mag).max(0) as usize;
    format!("{v:.decimals$}")
}
