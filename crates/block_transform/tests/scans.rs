//! The whole-buffer scans (`range`, `diff_stats`, `mix3`, `store_codes`, `load_codes`,
//! `store_samples`) against naive loops, at lengths around the lane widths and with NaN and infinities.

use block_transform::{diff_stats, load_codes, mix3, range, store_codes, store_samples};

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
    // Up to several f32 runs (DIFF_F32_RUN lane groups each) and a remainder.
    let run = block_transform::DIFF_F32_RUN * 16;
    for n in [
        0,
        1,
        7,
        8,
        9,
        15,
        16,
        17,
        63,
        1000,
        4097,
        run - 1,
        run,
        run + 1,
        10 * run + 5,
    ] {
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
        // The documented rounding: differences in f32 (2⁻²⁴ relative), squares summed in f32
        // over one run per lane, then in f64.
        assert!(
            (sse - want_sse).abs() <= 2e-5 * want_sse,
            "n {n}: {sse} vs {want_sse}"
        );
        assert!(
            (worst - want_worst).abs() <= want_worst * f32::EPSILON as f64,
            "n {n}: {worst} vs {want_worst}"
        );
    }
    assert!(diff_stats(&[1.0, 2.0], &[1.0]).is_err());
}

#[test]
fn mix3_equals_a_naive_f64_matrix_product() {
    let m = [0.5f32, -1.25, 2.0, 0.0, 1.0, -0.75, 3.0, 0.125, -2.5];
    for plane in [1, 7, 16, 17, 100] {
        for n in [1, 3] {
            let x = values(3 * plane * n, plane as u64 * 7 + n as u64);
            let mut y = x.clone();
            mix3(&mut y, plane, &m).unwrap();
            for s in 0..n {
                for p in 0..plane {
                    for r in 0..3 {
                        let want: f64 = (0..3)
                            .map(|k| m[3 * r + k] as f64 * x[(3 * s + k) * plane + p] as f64)
                            .sum();
                        let got = y[(3 * s + r) * plane + p] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{got} {want}"
                        );
                    }
                }
            }
        }
    }
    let mut short = vec![0f32; 10];
    assert!(mix3(&mut short, 3, &m).is_err());
}

/// The codes rule written out: NaN → 0 (not counted), else round half to even, clamp to ±max.
fn naive_code(v: f32, max: f64) -> (f64, bool) {
    if v.is_nan() {
        return (0.0, false);
    }
    let v = v as f64;
    let f = v.floor();
    let r = if v - f > 0.5 || (v - f == 0.5 && f % 2.0 != 0.0) {
        f + 1.0
    } else {
        f
    };
    (r.clamp(-max, max), r.abs() > max)
}

#[test]
fn store_and_load_codes_follow_the_written_out_rule() {
    let mut x = values(1001, 5);
    x.extend([
        0.5,
        1.5,
        2.5,
        -0.5,
        -1.5,
        126.5,
        127.5,
        -127.5,
        1e9,
        -1e9,
        f32::NAN,
    ]);
    x.extend([f32::INFINITY, f32::NEG_INFINITY, 32766.5, 32767.5, -40000.0]);
    let mut c8 = vec![0i8; x.len()];
    let mut c16 = vec![0i16; x.len()];
    let n8 = store_codes(&x, &mut c8).unwrap();
    let n16 = store_codes(&x, &mut c16).unwrap();
    let (mut w8, mut w16) = (0, 0);
    for (i, &v) in x.iter().enumerate() {
        let (a, h8) = naive_code(v, 127.0);
        let (b, h16) = naive_code(v, 32767.0);
        assert_eq!(c8[i] as f64, a, "{v}");
        assert_eq!(c16[i] as f64, b, "{v}");
        w8 += h8 as usize;
        w16 += h16 as usize;
    }
    assert_eq!((n8, n16), (w8, w16));
    let mut back = vec![0f32; x.len()];
    load_codes(&c16, &mut back).unwrap();
    assert!(back.iter().zip(&c16).all(|(&f, &c)| f == c as f32));
    load_codes(&c8, &mut back).unwrap();
    assert!(back.iter().zip(&c8).all(|(&f, &c)| f == c as f32));
    assert!(store_codes(&x, &mut c8[1..]).is_err());
}

/// The sample rule written out: NaN → 0, else round half away from zero, clamp to `lo..=hi`.
fn naive_sample(v: f32, lo: f64, hi: f64) -> f64 {
    if v.is_nan() {
        return 0.0;
    }
    let v = v as f64;
    let r = v.signum() * (v.abs() + 0.5).floor();
    r.clamp(lo, hi)
}

#[test]
fn store_samples_follows_the_written_out_rule() {
    let mut x: Vec<f32> = values(1001, 7).iter().map(|v| v * 300.0).collect();
    x.extend([
        0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 254.5, 255.5, 256.0, -0.0, 127.5, -128.5,
        32766.5, 32767.5, -32768.5, -32767.5, 65534.5, 65535.5, 1e9, -1e9,
    ]);
    x.extend([
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        8388607.5,
        16777216.0,
    ]);
    let mut u8s = vec![0u8; x.len()];
    let mut u16s = vec![0u16; x.len()];
    let mut i16s = vec![0i16; x.len()];
    store_samples(&x, &mut u8s).unwrap();
    store_samples(&x, &mut u16s).unwrap();
    store_samples(&x, &mut i16s).unwrap();
    for (i, &v) in x.iter().enumerate() {
        assert_eq!(u8s[i] as f64, naive_sample(v, 0.0, 255.0), "u8 {v}");
        assert_eq!(u16s[i] as f64, naive_sample(v, 0.0, 65535.0), "u16 {v}");
        assert_eq!(
            i16s[i] as f64,
            naive_sample(v, -32768.0, 32767.0),
            "i16 {v}"
        );
    }
    assert!(store_samples(&x, &mut u8s[1..]).is_err());
}

/// `range` of integer samples: the naive min and max, always finite, across the integer lane
/// widths (64 `u8`, 32 `u16`/`i16` per register) and their remainders.
#[test]
fn range_of_integer_samples_equals_a_naive_scan() {
    fn check<S: block_transform::Pixel + Ord + Into<f32>>(sample: impl Fn(u64) -> S) {
        for n in [0, 1, 31, 32, 33, 63, 64, 65, 127, 1000, 4099] {
            let mut s = n as u64 * 7 + 1;
            let x: Vec<S> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    sample(s)
                })
                .collect();
            let r = range(&x);
            match (x.iter().min(), x.iter().max()) {
                (Some(&lo), Some(&hi)) => {
                    assert_eq!(
                        (r.lo, r.hi, r.finite),
                        (lo.into(), hi.into(), true),
                        "n {n}"
                    )
                }
                _ => assert_eq!(r, block_transform::Range::EMPTY),
            }
        }
    }
    check(|s| s as u8);
    check(|s| (s % 200) as u8 + 20);
    check(|s| s as u16);
    check(|s| s as i16);
    check(|s| (s % 1000) as i16 - 500);
}
