//! Kernels vs the independent f64 reference in `common/`.
mod common;

use block_transform::{BlockTransform, Error, Isa, Keep, Matrices, Tuning};
use common::*;

// (9, 2100): wider than the widest column chunk, so rows take several chunks plus the edge tile.
const SIZES: [(usize, usize); 7] = [
    (1, 1),
    (1, 37),
    (25, 25),
    (300, 451),
    (64, 64),
    (17, 8),
    (9, 2100),
];
const REL_TOL: f64 = 1e-6;

fn cfs(b: usize) -> Vec<usize> {
    let mut v = vec![1, 2, b / 2 + 1, b];
    v.dedup();
    v
}

fn planes_for(h: usize, w: usize) -> usize {
    if h * w > 10_000 { 2 } else { 3 }
}

fn isas() -> Vec<Isa> {
    [Isa::Generic, Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| i.is_supported())
        .collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn keep(tri: bool, c: usize) -> Keep {
    if tri { Keep::triangle(c) } else { Keep::Grid }
}

/// Error scale: the data range, or the largest magnitude in `r` when that is
/// bigger: an f32 result cannot be more accurate than its own ulp (a constant
/// 32×32 block has a DC of 32·x, whose ulp is already 2e-6 of the data range).
/// `strict` cases pass the reference itself; non-orthonormal cases pass the
/// reference computed from absolute values (the sum of |terms|, which bounds the
/// f32 rounding error when terms cancel).
fn scale(data_range: f64, r: &[f64]) -> f64 {
    data_range.max(r.iter().fold(0.0f64, |m, v| m.max(v.abs())))
}

struct Mats {
    ar: Vec<f32>,
    ac: Vec<f32>,
    br: Vec<f32>,
    bc: Vec<f32>,
}

impl Mats {
    fn dct(b: usize, c: usize) -> Self {
        let f: Vec<f32> = dct_f64(b, c).iter().map(|&v| v as f32).collect();
        Mats {
            ar: f.clone(),
            ac: f.clone(),
            br: f.clone(),
            bc: f,
        }
    }
    /// Four different arbitrary matrices: nothing orthonormal or symmetric to lean on.
    fn random(b: usize, c: usize, rng: &mut Rng) -> Self {
        let mut m = || rng.vec_f32(c * b, -0.6, 0.6);
        Mats {
            ar: m(),
            ac: m(),
            br: m(),
            bc: m(),
        }
    }
    /// Arbitrary rows, each mirror-symmetric or antisymmetric (`m[i][b-1-k] = ±m[i][k]`,
    /// the sign drawn per row, not alternating as in the DCT): the kernels' symmetric path
    /// with values that owe nothing to the DCT.
    fn mirrored(b: usize, c: usize, rng: &mut Rng) -> Self {
        let mut m = || {
            let mut v = rng.vec_f32(c * b, -0.6, 0.6);
            let signs = rng.vec_f32(c, -1.0, 1.0);
            for (r, s) in v.chunks_exact_mut(b).zip(signs) {
                for k in 0..b / 2 {
                    r[b - 1 - k] = if s < 0.0 { -r[k] } else { r[k] };
                }
            }
            v
        };
        Mats {
            ar: m(),
            ac: m(),
            br: m(),
            bc: m(),
        }
    }
    fn view(&self) -> Matrices<'_> {
        Matrices {
            a_rows: &self.ar,
            a_cols: &self.ac,
            b_rows: &self.br,
            b_cols: &self.bc,
        }
    }
}

/// Checks compress and decompress of every ISA against the reference for one case.
#[allow(clippy::too_many_arguments)]
fn check_case(
    h: usize,
    w: usize,
    b: usize,
    c: usize,
    tri: bool,
    m: &Mats,
    lo: f64,
    hi: f64,
    rng: &mut Rng,
    strict: bool,
) -> f64 {
    let planes = planes_for(h, w);
    let x = rng.vec_f32(planes * h * w, lo, hi);
    let (ar, ac, br, bc) = (to_f64(&m.ar), to_f64(&m.ac), to_f64(&m.br), to_f64(&m.bc));
    let yref = compress_ref(&x, planes, h, w, b, c, tri, &ar, &ac);
    // Decompress the reference coefficients (rounded to f32, the kernel's input).
    let yin: Vec<f32> = yref.iter().map(|&v| v as f32).collect();
    let xref = decompress_ref(&to_f64(&yin), planes, h, w, b, c, tri, &br, &bc);
    // For non-orthonormal matrices the f32 error is relative to the sum of the
    // absolute terms (cancellation): the same reference on |x|, |A| gives it.
    let abs = |v: &[f64]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let xa: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let yabs = compress_ref(&xa, planes, h, w, b, c, tri, &abs(&ar), &abs(&ac));
    let xabs = decompress_ref(
        &abs(&to_f64(&yin)),
        planes,
        h,
        w,
        b,
        c,
        tri,
        &abs(&br),
        &abs(&bc),
    );
    let data_range = hi - lo;
    let mut worst: f64 = 0.0;
    // Every instruction set, with and without the mirror-symmetric path (where the
    // matrices have it; else both runs take the general path) and the streaming stores.
    let tunings = [(true, true), (false, false), (true, false), (false, true)];
    for (isa, (symmetry, stream)) in isas().into_iter().flat_map(|i| tunings.map(|t| (i, t))) {
        let mut plan = BlockTransform::new(h, w, b, c, keep(tri, c), &m.view(), 2).unwrap();
        plan.set_isa(isa).unwrap();
        plan.set_tuning(Tuning {
            symmetry,
            stream,
            ..plan.tuning()
        });
        assert_eq!(plan.plane_coeffs(), coeffs_per_plane(h, w, b, c, tri));
        let mut y = vec![f32::NAN; yref.len()];
        plan.compress(&x, planes, &mut y).unwrap();
        let e = max_abs_err(&y, &yref) / scale(data_range, if strict { &yref } else { &yabs });
        assert!(
            e <= REL_TOL,
            "compress {isa:?} symmetry={symmetry} stream={stream} {h}x{w} b={b} c={c} tri={tri}: rel err {e:e}"
        );
        let mut xo = vec![f32::NAN; x.len()];
        plan.decompress(&yin, planes, &mut xo).unwrap();
        let e2 = max_abs_err(&xo, &xref) / scale(data_range, if strict { &xref } else { &xabs });
        assert!(
            e2 <= REL_TOL,
            "decompress {isa:?} symmetry={symmetry} stream={stream} {h}x{w} b={b} c={c} tri={tri}: rel err {e2:e}"
        );
        worst = worst.max(e).max(e2);
    }
    worst
}

#[test]
fn dct_matches_reference_all_blocks_sizes_variants() {
    let mut rng = Rng(1);
    let mut worst: f64 = 0.0;
    for b in [4, 8, 16, 32] {
        for c in cfs(b) {
            let m = Mats::dct(b, c);
            for tri in [false, true] {
                for (h, w) in SIZES {
                    worst = worst.max(check_case(h, w, b, c, tri, &m, -1.0, 1.0, &mut rng, true));
                }
            }
        }
    }
    eprintln!("worst relative error (dct, data in [-1,1)): {worst:e}");
}

#[test]
fn offset_data_matches_reference() {
    // Image-like data in [0, 255): DC terms up to 255·b, far above the data
    // range, so the error is judged against the largest Σ|terms| (f32 ulp limit).
    let mut rng = Rng(2);
    let mut worst: f64 = 0.0;
    for b in [4, 8, 16, 32] {
        let m = Mats::dct(b, b / 2 + 1);
        for tri in [false, true] {
            for (h, w) in [(25, 25), (64, 64), (17, 8)] {
                worst = worst.max(check_case(
                    h,
                    w,
                    b,
                    b / 2 + 1,
                    tri,
                    &m,
                    0.0,
                    255.0,
                    &mut rng,
                    false,
                ));
            }
        }
    }
    eprintln!("worst relative error (dct, data in [0,255)): {worst:e}");
}

#[test]
fn arbitrary_matrices_match_reference() {
    let mut rng = Rng(3);
    let mut worst: f64 = 0.0;
    for b in [4, 8, 16, 32] {
        for c in cfs(b) {
            let m = Mats::random(b, c, &mut rng);
            for tri in [false, true] {
                for (h, w) in SIZES {
                    worst = worst.max(check_case(h, w, b, c, tri, &m, -1.0, 1.0, &mut rng, false));
                }
            }
        }
    }
    eprintln!("worst relative error (random matrices): {worst:e}");
}

#[test]
fn mirror_symmetric_matrices_match_reference() {
    let mut rng = Rng(6);
    let mut worst: f64 = 0.0;
    for b in [4, 8, 16, 32] {
        for c in cfs(b) {
            let m = Mats::mirrored(b, c, &mut rng);
            let plan = BlockTransform::new(8, 8, b, c, Keep::Grid, &m.view(), 1).unwrap();
            assert!(
                plan.uses_symmetry(),
                "b={b} c={c}: mirrored rows not detected"
            );
            for tri in [false, true] {
                for (h, w) in SIZES {
                    worst = worst.max(check_case(h, w, b, c, tri, &m, -1.0, 1.0, &mut rng, false));
                }
            }
        }
    }
    eprintln!("worst relative error (mirror-symmetric matrices): {worst:e}");
}

#[test]
fn symmetric_path_is_taken_only_for_mirrored_rows() {
    let mut rng = Rng(7);
    for b in [4, 8, 16, 32] {
        for c in cfs(b) {
            let plan =
                |m: &Mats| BlockTransform::new(8, 8, b, c, Keep::Grid, &m.view(), 1).unwrap();
            assert!(plan(&Mats::dct(b, c)).uses_symmetry(), "dct b={b} c={c}");
            assert!(
                !plan(&Mats::random(b, c, &mut rng)).uses_symmetry(),
                "random b={b} c={c}"
            );
            // One entry of the last row off its mirror image by 1e-4: neither symmetric nor
            // antisymmetric any more, so the general path must be used.
            let mut m = Mats::mirrored(b, c, &mut rng);
            m.ar[c * b - 1] += 1e-4;
            assert!(!plan(&m).uses_symmetry(), "perturbed b={b} c={c}");
        }
    }
}

#[test]
fn full_cf_round_trip_reproduces_input() {
    let mut rng = Rng(4);
    for b in [4, 8, 16, 32] {
        for (h, w) in SIZES {
            let planes = planes_for(h, w);
            let x = rng.vec_f32(planes * h * w, -1.0, 1.0);
            for isa in isas() {
                let mut plan = BlockTransform::dct(h, w, b, b, Keep::Grid, 2).unwrap();
                plan.set_isa(isa).unwrap();
                let mut y = vec![0.0; planes * plan.plane_coeffs()];
                plan.compress(&x, planes, &mut y).unwrap();
                let mut xo = vec![0.0; x.len()];
                plan.decompress(&y, planes, &mut xo).unwrap();
                let e = max_abs_err(&xo, &to_f64(&x)) / 2.0;
                assert!(
                    e <= REL_TOL,
                    "round trip {isa:?} {h}x{w} b={b}: rel err {e:e}"
                );
            }
        }
    }
}

/// Quantised matrices `diag(1/s)·F` (per axis) and the reference codes.
///
/// Data in [0, 1.3) makes the DC terms ≈ `dc` (with little cancellation), so
/// with `dc` ≈ 130 the i8 clamp at 127 is exercised while every |y| and every
/// Σ|terms| stays ≲ 300, where the f32 result is accurate to < 1e-4: then codes
/// must equal the reference outside the 1e-4 tie band (`strict`). With
/// `dc` ≈ 33000 (i16 clamp), an f32 ulp is already 4e-3, so the band there is
/// the f32 error bound 1e-6·Σ|terms| and codes are also checked to be within ±1.
fn check_codes<T>(dc: f64, max: f64, strict: bool)
where
    T: block_transform::Code + Into<i32> + Default,
{
    let mut rng = Rng(5);
    let (mut total, mut excused, mut mismatched, mut clamped_all) =
        (0usize, 0usize, 0usize, 0usize);
    let mut max_terms: f64 = 0.0;
    for b in [4, 8, 16, 32] {
        for c in cfs(b) {
            let f = dct_f64(b, c);
            let sigma = (b as f64 * 0.65 / dc).sqrt();
            let qf: Vec<f32> = (0..c * b)
                .map(|n| (f[n] / (sigma * (1.0 + (n / b) as f64 / 4.0))) as f32)
                .collect();
            let m = Matrices {
                a_rows: &qf,
                a_cols: &qf,
                b_rows: &qf,
                b_cols: &qf,
            };
            for tri in [false, true] {
                for (h, w) in SIZES {
                    let planes = planes_for(h, w);
                    let x = rng.vec_f32(planes * h * w, 0.0, 1.3);
                    // The kernel's matrices are the f32-rounded ones: the reference uses exactly those.
                    let q64 = to_f64(&qf);
                    let yref = compress_ref(&x, planes, h, w, b, c, tri, &q64, &q64);
                    let qa: Vec<f64> = q64.iter().map(|v| v.abs()).collect();
                    let yabs = compress_ref(&x, planes, h, w, b, c, tri, &qa, &qa);
                    max_terms = yabs.iter().fold(max_terms, |m, &v| m.max(v));
                    let band = |n: usize| {
                        if strict {
                            1e-4
                        } else {
                            1e-4f64.max(1e-6 * yabs[n])
                        }
                    };
                    let near_tie = |n: usize| (yref[n].abs().fract() - 0.5).abs() < band(n);
                    let (mut sure, mut maybe) = (0, 0);
                    total += yref.len();
                    excused += (0..yref.len()).filter(|&n| near_tie(n)).count();
                    for (n, y) in yref.iter().enumerate() {
                        if y.abs() > max + 0.5 {
                            maybe += 1;
                            sure += usize::from(!near_tie(n));
                        } else if y.abs() > max - 0.5 && near_tie(n) {
                            maybe += 1;
                        }
                    }
                    for isa in isas() {
                        let mut plan =
                            BlockTransform::new(h, w, b, c, keep(tri, c), &m, 2).unwrap();
                        plan.set_isa(isa).unwrap();
                        let mut y = vec![T::default(); yref.len()];
                        let clamped = plan.compress_codes(&x, planes, &mut y).unwrap();
                        clamped_all += clamped;
                        for (n, (&got, &r)) in y.iter().zip(&yref).enumerate() {
                            let want = r.round_ties_even().clamp(-max, max) as i32;
                            let got: i32 = got.into();
                            mismatched += usize::from(got != want);
                            assert!(
                                got == want || (near_tie(n) && (got - want).abs() == 1),
                                "{isa:?} {h}x{w} b={b} c={c} tri={tri} [{n}]: got {got}, ref {r}"
                            );
                            assert!(got.abs() as f64 <= max);
                        }
                        assert!(
                            (sure..=maybe).contains(&clamped),
                            "{isa:?} clamped {clamped} not in {sure}..={maybe}"
                        );
                    }
                }
            }
        }
    }
    if strict {
        assert!(
            max_terms < 400.0,
            "strict test must stay where f32 is accurate to 1e-4"
        );
    }
    if dc > max {
        assert!(clamped_all > 0, "clamping must be exercised");
    }
    eprintln!(
        "codes max {max} dc {dc}: {total} values, max Σ|terms| {max_terms:.0}, {excused} in the tie band, \
         {mismatched} mismatches over all ISAs (all in the band), {clamped_all} clamped"
    );
}

#[test]
fn i8_codes_match_reference() {
    check_codes::<i8>(130.0, 127.0, true);
}

#[test]
fn i16_codes_match_reference() {
    check_codes::<i16>(130.0, 32767.0, true);
    check_codes::<i16>(33000.0, 32767.0, false);
}

#[test]
fn decompress_codes_match_reference() {
    let mut rng = Rng(6);
    for b in [4, 8, 16, 32] {
        for c in cfs(b) {
            let f = dct_f64(b, c);
            let s: Vec<f64> = (0..c * b)
                .map(|n| f[n] * 0.01 * (1.0 + (n / b) as f64))
                .collect();
            let sf: Vec<f32> = s.iter().map(|&v| v as f32).collect();
            let m = Matrices {
                a_rows: &sf,
                a_cols: &sf,
                b_rows: &sf,
                b_cols: &sf,
            };
            for tri in [false, true] {
                for (h, w) in SIZES {
                    let planes = planes_for(h, w);
                    let n = planes * coeffs_per_plane(h, w, b, c, tri);
                    let c8: Vec<i8> = (0..n)
                        .map(|_| (rng.next_u64() % 255) as i64 - 127)
                        .map(|v| v as i8)
                        .collect();
                    let c16: Vec<i16> = (0..n)
                        .map(|_| (rng.next_u64() % 65535) as i64 - 32767)
                        .map(|v| v as i16)
                        .collect();
                    for isa in isas() {
                        let mut plan =
                            BlockTransform::new(h, w, b, c, keep(tri, c), &m, 2).unwrap();
                        plan.set_isa(isa).unwrap();
                        let y8: Vec<f64> = c8.iter().map(|&v| v as f64).collect();
                        let r8 = decompress_ref(&y8, planes, h, w, b, c, tri, &s, &s);
                        let mut xo = vec![f32::NAN; planes * h * w];
                        plan.decompress_codes(&c8, planes, &mut xo).unwrap();
                        let e = max_abs_err(&xo, &r8) / scale(range(r8.iter().copied()), &r8);
                        assert!(
                            e <= REL_TOL,
                            "i8 {isa:?} {h}x{w} b={b} c={c} tri={tri}: {e:e}"
                        );
                        let y16: Vec<f64> = c16.iter().map(|&v| v as f64).collect();
                        let r16 = decompress_ref(&y16, planes, h, w, b, c, tri, &s, &s);
                        plan.decompress_codes(&c16, planes, &mut xo).unwrap();
                        let e = max_abs_err(&xo, &r16) / scale(range(r16.iter().copied()), &r16);
                        assert!(
                            e <= REL_TOL,
                            "i16 {isa:?} {h}x{w} b={b} c={c} tri={tri}: {e:e}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn thread_counts_give_identical_output() {
    let mut rng = Rng(7);
    // Many small planes, one large plane (strips split across threads), odd sizes.
    for (planes, h, w) in [(40, 64, 64), (1, 1000, 1000), (3, 300, 451), (2, 1030, 77)] {
        let x = rng.vec_f32(planes * h * w, -1.0, 1.0);
        for (b, c) in [(8, 4), (32, 7), (4, 2)] {
            for tri in [false, true] {
                let mut outs = vec![];
                for threads in [1, 2, 3] {
                    let plan = BlockTransform::dct(h, w, b, c, keep(tri, c), threads).unwrap();
                    assert_eq!(plan.threads(), threads);
                    let mut y = vec![0.0; planes * plan.plane_coeffs()];
                    plan.compress(&x, planes, &mut y).unwrap();
                    let mut xo = vec![0.0; x.len()];
                    plan.decompress(&y, planes, &mut xo).unwrap();
                    let mut q = vec![0i8; y.len()];
                    let n = plan.compress_codes(&x, planes, &mut q).unwrap();
                    let mut xq = vec![0.0; x.len()];
                    plan.decompress_codes(&q, planes, &mut xq).unwrap();
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    outs.push((bits(&y), bits(&xo), q, n, bits(&xq)));
                }
                assert!(
                    outs.windows(2).all(|p| p[0] == p[1]),
                    "{planes}x{h}x{w} b={b} c={c} tri={tri}"
                );
            }
        }
    }
}

#[test]
fn codes_round_ties_even_are_symmetric_and_nan_is_zero() {
    // Matrices picking X[0][0] exactly, so the code input is exactly v.
    let mut e0 = vec![0.0f32; 8];
    e0[0] = 1.0;
    let m = Matrices {
        a_rows: &e0,
        a_cols: &e0,
        b_rows: &e0,
        b_cols: &e0,
    };
    let plan = BlockTransform::new(8, 8, 8, 1, Keep::Grid, &m, 1).unwrap();
    for (v, want8, n8, want16, n16) in [
        (1e9f32, 127i8, 1usize, 32767i16, 1usize),
        (-1e9, -127, 1, -32767, 1),
        (-127.5, -127, 1, -128, 0),
        (127.5, 127, 1, 128, 0),
        (-32767.5, -127, 1, -32767, 1),
        (2.5, 2, 0, 2, 0),
        (3.5, 4, 0, 4, 0),
        (-2.5, -2, 0, -2, 0),
        (-0.5, 0, 0, 0, 0),
        (f32::NAN, 0, 0, 0, 0),
    ] {
        let mut x = vec![0.0f32; 64];
        x[0] = v;
        let mut q8 = [0i8; 1];
        let c8 = plan.compress_codes(&x, 1, &mut q8).unwrap();
        let mut q16 = [0i16; 1];
        let c16 = plan.compress_codes(&x, 1, &mut q16).unwrap();
        assert_eq!((q8[0], c8), (want8, n8), "i8 {v}");
        assert_eq!((q16[0], c16), (want16, n16), "i16 {v}");
    }
}

#[test]
fn rejects_bad_arguments() {
    assert_eq!(
        BlockTransform::dct(8, 8, 6, 2, Keep::Grid, 1).unwrap_err(),
        Error::BadBlock(6)
    );
    assert_eq!(
        BlockTransform::dct(8, 8, 8, 9, Keep::Grid, 1).unwrap_err(),
        Error::BadCf { cf: 9, block: 8 }
    );
    assert_eq!(
        BlockTransform::dct(0, 8, 8, 2, Keep::Grid, 1).unwrap_err(),
        Error::EmptyImage
    );
    let plan = BlockTransform::dct(9, 9, 8, 2, Keep::triangle(2), 1).unwrap();
    assert_eq!(plan.plane_coeffs(), 4 * 3);
    let mut y = vec![0.0; 11];
    assert!(matches!(
        plan.compress(&[0.0; 81], 1, &mut y),
        Err(Error::BadLen { what: "y", .. })
    ));
    assert!(matches!(
        plan.compress(&[0.0; 80], 1, &mut y),
        Err(Error::BadLen { what: "x", .. })
    ));
    plan.compress::<f32>(&[], 0, &mut []).unwrap();
}

#[test]
fn buffer_alignment_does_not_change_results() {
    // Sub-slices at every f32 offset within a cache line: bitwise-identical output.
    let mut rng = Rng(8);
    let (planes, h, w) = (2, 37, 83);
    let xs = rng.vec_f32(planes * h * w + 16, -1.0, 1.0);
    for (b, c) in [(8, 3), (16, 9), (4, 4)] {
        for tri in [false, true] {
            let plan = BlockTransform::dct(h, w, b, c, keep(tri, c), 2).unwrap();
            let n = planes * plan.plane_coeffs();
            let mut want_y = vec![0.0f32; n];
            plan.compress(&xs[..planes * h * w], planes, &mut want_y)
                .unwrap();
            let mut want_x = vec![0.0f32; planes * h * w];
            plan.decompress(&want_y, planes, &mut want_x).unwrap();
            for off in 0..16 {
                let x = &xs[off..off + planes * h * w];
                let mut ybuf = vec![0.0f32; n + 16];
                let mut xbuf = vec![0.0f32; x.len() + 16];
                let mut want_y_off = vec![0.0f32; n];
                plan.compress(x, planes, &mut want_y_off).unwrap();
                let y = &mut ybuf[off..off + n];
                plan.compress(x, planes, y).unwrap();
                assert_eq!(y, &want_y_off[..], "compress off {off}");
                let xo = &mut xbuf[off..off + x.len()];
                plan.decompress(&want_y, planes, xo).unwrap();
                assert_eq!(xo, &want_x[..], "decompress off {off}");
            }
        }
    }
}

/// The column chunk only partitions the columns: every chunk width gives bitwise the same
/// output as the default (whole rows up to `CHUNK`), which the reference tests check.
#[test]
fn column_chunk_width_does_not_change_results() {
    let mut rng = Rng(12);
    for (planes, h, w) in [(2, 20, 451), (1, 17, 2100), (3, 16, 1024)] {
        let x = rng.vec_f32(planes * h * w, -1.0, 1.0);
        for (b, c) in [(8, 4), (8, 8), (32, 7), (4, 1)] {
            for tri in [false, true] {
                let mut plan = BlockTransform::dct(h, w, b, c, keep(tri, c), 2).unwrap();
                let run = |plan: &BlockTransform| {
                    let mut y = vec![0.0f32; planes * plan.plane_coeffs()];
                    plan.compress(&x, planes, &mut y).unwrap();
                    let mut xo = vec![0.0f32; x.len()];
                    plan.decompress(&y, planes, &mut xo).unwrap();
                    let mut q = vec![0i16; y.len()];
                    plan.compress_codes(&x, planes, &mut q).unwrap();
                    (y, xo, q)
                };
                let default = plan.tuning();
                assert!(default.chunk <= block_transform::CHUNK);
                assert!(
                    default.chunk * c * 4 <= block_transform::CHUNK_BYTES || default.chunk <= 32
                );
                let want = run(&plan);
                for chunk in [16, 32, 128, 256, 512, block_transform::CHUNK] {
                    plan.set_tuning(block_transform::Tuning { chunk, ..default });
                    let got = run(&plan);
                    let tuned = plan.tuning().chunk;
                    assert!(
                        got == want,
                        "{planes}x{h}x{w} b={b} c={c} tri={tri} chunk={tuned}"
                    );
                }
            }
        }
    }
}

/// Calls made at the same time from several threads on one plan (the pool runs one of them,
/// the others run inline with scratch of their own) give what a lone call gives.
#[test]
fn concurrent_calls_on_one_plan_give_identical_output() {
    let mut rng = Rng(13);
    let (planes, h, w) = (6, 96, 600);
    let x = rng.vec_f32(planes * h * w, -1.0, 1.0);
    for threads in [1, 2] {
        let plan = BlockTransform::dct(h, w, 8, 4, Keep::Grid, threads).unwrap();
        let n = planes * plan.plane_coeffs();
        let mut want_y = vec![0.0f32; n];
        plan.compress(&x, planes, &mut want_y).unwrap();
        let mut want_x = vec![0.0f32; x.len()];
        plan.decompress(&want_y, planes, &mut want_x).unwrap();
        std::thread::scope(|s| {
            let callers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut y = vec![0.0f32; n];
                        let mut xo = vec![0.0f32; x.len()];
                        for _ in 0..10 {
                            plan.compress(&x, planes, &mut y).unwrap();
                            plan.decompress(&want_y, planes, &mut xo).unwrap();
                            assert!(y == want_y && xo == want_x, "threads={threads}");
                        }
                    })
                })
                .collect();
            for c in callers {
                c.join().unwrap();
            }
        });
    }
}

/// `decompress_compare` writes what `decompress`/`decompress_codes` write and returns the sum of
/// squared differences and the largest absolute difference against the reference, summed here
/// naively in f64, within `diff_stats`' documented rounding, at any thread count, padded sizes
/// and both element types.
#[test]
fn decompress_compare_equals_decompress_then_a_naive_comparison() {
    let mut rng = Rng(11);
    for (planes, h, w) in [(40, 64, 64), (3, 300, 451), (2, 1030, 77), (1, 1, 37)] {
        let x = rng.vec_f32(planes * h * w, -3.0, 3.0);
        for (b, c) in [(8, 4), (16, 7)] {
            for threads in [1, 2, 3] {
                let plan = BlockTransform::dct(h, w, b, c, Keep::Grid, threads).unwrap();
                let mut y = vec![0.0; planes * plan.plane_coeffs()];
                plan.compress(&x, planes, &mut y).unwrap();
                let mut q = vec![0i16; y.len()];
                plan.compress_codes(&x, planes, &mut q).unwrap();
                // The compare's output equals `want`; its sums equal a naive f64 comparison.
                let check = |got: &[f32], want: &[f32], stats: (f64, f64), what: &str| {
                    assert_eq!(got, want, "{what} {planes}x{h}x{w} b={b} threads={threads}");
                    let (mut sse, mut worst) = (0.0f64, 0.0f64);
                    for (&a, &b) in x.iter().zip(want) {
                        let d = a as f64 - b as f64;
                        sse += d * d;
                        worst = worst.max(d.abs());
                    }
                    // diff_stats' rounding: differences in f32, squares summed in f32 runs.
                    let max_close = (stats.1 - worst).abs() <= worst * f32::EPSILON as f64;
                    assert!(max_close, "{what}: max {} vs {worst}", stats.1);
                    let close = (stats.0 - sse).abs() <= 2e-5 * sse.max(1e-300);
                    assert!(close, "{what}: {stats:?} {sse}");
                };
                let mut want = vec![0.0; x.len()];
                let mut got = vec![0.0; x.len()];
                plan.decompress(&y, planes, &mut want).unwrap();
                let stats = plan.decompress_compare(&y, planes, &mut got, &x).unwrap();
                check(&got, &want, stats, "floats");
                plan.decompress_codes(&q, planes, &mut want).unwrap();
                let stats = plan.decompress_compare(&q, planes, &mut got, &x).unwrap();
                check(&got, &want, stats, "codes");
            }
        }
    }
    let plan = BlockTransform::dct(8, 8, 8, 4, Keep::Grid, 1).unwrap();
    let (y, mut out) = (vec![0.0f32; 16], vec![0.0f32; 64]);
    assert!(matches!(
        plan.decompress_compare(&y, 1, &mut out, &[0.0; 63]),
        Err(Error::BadLen {
            what: "reference",
            ..
        })
    ));
}

/// Integer pixels (`u8`, `u16`, `i16`) are converted exactly as they are loaded, so compress,
/// compress_codes and decompress_compare of integer samples equal, bit for bit, the same calls on
/// those samples as f32 (which the tests above check against the f64 reference): every ISA,
/// both keeps, padded sizes (the right-edge tile, the mirrored last strip), narrow planes (the
/// read-ahead) and thread counts.
#[test]
fn integer_pixels_equal_their_f32_values() {
    fn check<S: block_transform::Pixel + Default>(to: impl Fn(u64) -> S, from: impl Fn(S) -> f32) {
        let mut rng = Rng(23);
        for (planes, h, w) in [(6, 64, 64), (2, 37, 300), (1, 130, 1030), (3, 9, 17)] {
            let xs: Vec<S> = (0..planes * h * w).map(|_| to(rng.next_u64())).collect();
            let xf: Vec<f32> = xs.iter().map(|&v| from(v)).collect();
            for (b, c, tri) in [(8, 4, false), (8, 5, true), (4, 2, false), (16, 7, false)] {
                for isa in isas() {
                    for threads in [1, 2] {
                        let mut plan =
                            BlockTransform::dct(h, w, b, c, keep(tri, c), threads).unwrap();
                        plan.set_isa(isa).unwrap();
                        let what =
                            format!("{planes}x{h}x{w} b={b} c={c} tri={tri} {isa:?} t={threads}");
                        let n = planes * plan.plane_coeffs();
                        let (mut yi, mut yf) = (vec![0f32; n], vec![0f32; n]);
                        plan.compress(&xs, planes, &mut yi).unwrap();
                        plan.compress(&xf, planes, &mut yf).unwrap();
                        assert_eq!(yi, yf, "compress {what}");
                        let (mut qi, mut qf) = (vec![0i16; n], vec![0i16; n]);
                        let ci = plan.compress_codes(&xs, planes, &mut qi).unwrap();
                        let cf = plan.compress_codes(&xf, planes, &mut qf).unwrap();
                        assert_eq!((qi.clone(), ci), (qf, cf), "compress_codes {what}");
                        let (mut oi, mut of) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
                        let si = plan.decompress_compare(&qi, planes, &mut oi, &xs).unwrap();
                        let sf = plan.decompress_compare(&qi, planes, &mut of, &xf).unwrap();
                        assert_eq!(oi, of, "decompress_compare output {what}");
                        // Threads add their partial sums in the order they finish.
                        assert_eq!(si.1, sf.1, "decompress_compare max {what}");
                        let close = (si.0 - sf.0).abs() <= 1e-12 * sf.0;
                        assert!(close, "decompress_compare sse {what}: {si:?} {sf:?}");
                        assert!(si.0 > 0.0, "a lossy round trip has an error {what}");
                    }
                }
            }
        }
    }
    check(|r| r as u8, f32::from);
    check(|r| r as u16, f32::from);
    check(|r| r as i16, f32::from);
    // Image-like u8 (smooth, not noise): the same equality where codes are small.
    check(|r| (128 + (r % 7) as i32 - 3) as u8, f32::from);
}
