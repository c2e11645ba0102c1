//! The whole-buffer scans (`range`, `diff_stats`) against naive loops, at lengths around the
//! lane widths and with NaN and infinities.

use block_transform::{diff_stats, range};

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s % 20_001) as f32 - 10_000.0) * 0.0137
        })
        .collect()
}

#[test]
fn range_equals_a_naive_scan() {
    for n in [0, 1, 7, 15, 16, 17, 31, 33, 100, 1000, 4099] {
        let x = values(n, n as u64 + 3);
        let r = range(&x);
        let lo = x.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!((r.lo, r.hi, r.finite), (lo, hi, true), "n {n}");
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, n / 2, n.saturating_sub(1)] {
                if n == 0 {
                    continue;
                }
                let mut y = x.clone();
                y[at] = bad;
                let r = range(&y);
                assert!(!r.finite, "n {n}: {bad} at {at}");
                // NaN is ignored by the range; an infinity is the range's end.
                let lo = y.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = y.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert_eq!((r.lo, r.hi), (lo, hi), "n {n}: {bad} at {at}");
            }
        }
        if n > 0 {
            let mut y = x.clone();
            y[n - 1] = f32::MAX;
            assert!(range(&y).finite, "f32::MAX is finite");
        }
    }
}

#[test]
fn diff_stats_equal_naive_f64_sums() {
    for n in [0, 1, 7, 8, 9, 63, 1000, 4097] {
        let a = values(n, 11 + n as u64);
        let b = values(n, 29 + n as u64);
        let (sse, worst) = diff_stats(&a, &b).unwrap();
        let d: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| x as f64 - y as f64)
            .collect();
        let want_sse: f64 = d.iter().map(|d| d * d).sum();
        let want_worst = d.iter().fold(0f64, |m, d| m.max(d.abs()));
        assert!(
            (sse - want_sse).abs() <= 1e-12 * want_sse.max(1.0),
            "n {n}: {sse} vs {want_sse}"
        );
        assert_eq!(worst, want_worst, "n {n}: the largest difference is exact");
    }
    assert!(diff_stats(&[1.0, 2.0], &[1.0]).is_err());
}
