//! Quantized graphs end to end, against references written here: the folded matrices against
//! explicit diagonal products, the rounding rule against an f64 half-to-even written out, the
//! round trip against the unquantized graphs plus host rounding, an error bound at CF = block,
//! engines against each other on code graphs, and the one-line errors of bad inputs.

use crate::common;

use common::{image, ort_ready, rel_err};
use dctchop::engine::reference::run_program;
use dctchop::engine::{compile, compile_bytes, Runner};
use dctchop::plan::Step;
use dctchop::{
    CodeType, Codec, Codes, CodesView, Direction, Dtype, EngineKind, EngineOptions, Plan, Quant,
    Spec, Tile, Variant,
};
use ndarray::{Array2, ArrayD, IxDyn};

/// Quantized specs covering both variants, every form, padded sizes, serialization, f16 and
/// non-uniform steps.
fn specs() -> Vec<Spec> {
    let mut v = Vec::new();
    let per_freq = |cf: usize| {
        Quant::uniform(CodeType::I16, 0.75).with_multipliers(
            (0..cf).map(|i| 1.0 + 0.5 * i as f64).collect(),
            (0..cf).map(|j| 1.0 + 0.25 * j as f64).collect(),
        )
    };
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [
            Tile::Full,
            Tile::Size(8),
            Tile::Size(16),
            Tile::Size(32),
            Tile::Auto,
        ] {
            v.push(
                Spec::new(64, 48, 4)
                    .with_variant(variant)
                    .with_tile(tile)
                    .with_quant(Quant::uniform(CodeType::I8, 12.0)),
            );
            v.push(
                Spec::new(100, 75, 3)
                    .with_variant(variant)
                    .with_tile(tile)
                    .with_batch(2)
                    .with_quant(per_freq(3)),
            );
        }
        v.push(
            Spec::new(25, 25, 8)
                .with_variant(variant)
                .with_channels(1)
                // Small enough that int8 clamps the largest coefficients.
                .with_quant(Quant::uniform(CodeType::I8, 4.0)),
        );
        v.push(
            Spec::new(128, 64, 3)
                .with_variant(variant)
                .with_serialize(2)
                .with_batch(2)
                .with_quant(per_freq(3)),
        );
        v.push(
            Spec::new(64, 64, 4)
                .with_variant(variant)
                .with_tile(Tile::Size(16))
                .with_dtype(Dtype::F16)
                .with_quant(Quant::uniform(CodeType::I8, 16.0)),
        );
    }
    v
}

fn unquantized(spec: &Spec) -> Spec {
    Spec {
        quant: None,
        ..spec.clone()
    }
}

/// The diagonal matrix whose entry k is `d[k % cf]` (or its reciprocal).
fn diag(n: usize, d: &[f64], reciprocal: bool) -> Array2<f64> {
    let mut m = Array2::zeros((n, n));
    for k in 0..n {
        let v = d[k % d.len()];
        m[[k, k]] = if reciprocal { 1.0 / v } else { v };
    }
    m
}

/// max |a - b| / max |b| over two matrices of one shape.
fn max_rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Every MatMul of a quantized program equals the unquantized program's matrix times the
/// diagonal of steps on its coefficient axis (an explicit f64 product), and the programs are
/// otherwise identical: the decompress program is one Cast followed by the unquantized steps.
#[test]
fn folded_matrices_equal_explicit_diagonal_products() {
    for spec in specs() {
        let q = spec.quant.clone().unwrap();
        let (dh, dw) = q.axis_steps(spec.cf);
        let pq = Plan::new(&spec).unwrap();
        let pu = Plan::new(&unquantized(&spec)).unwrap();
        assert_eq!(
            pq.decompress.steps[0].clone_cast(),
            Some(q.code),
            "{}",
            spec.name()
        );
        assert_eq!(pq.decompress.input_code(), Some(q.code));
        assert_eq!(pq.compress.input_code(), None);
        let dec_q = &pq.decompress.steps[1..];
        assert_eq!(pq.compress.steps.len(), pu.compress.steps.len());
        assert_eq!(dec_q.len(), pu.decompress.steps.len());
        let mut checked = 0;
        for (direction, qs, us) in [
            (
                Direction::Compress,
                &pq.compress.steps[..],
                &pu.compress.steps[..],
            ),
            (Direction::Decompress, dec_q, &pu.decompress.steps[..]),
        ] {
            for (k, (a, b)) in qs.iter().zip(us).enumerate() {
                let what = format!("{} {direction:?} step {k}", spec.name());
                let compress = direction == Direction::Compress;
                let expected = match (a, b) {
                    // Compress: Y = (D_h⁻¹ L_h) X (D_w⁻¹ L_w)ᵀ.
                    (Step::MatMulRight { w: wq }, Step::MatMulRight { w: wu }) if compress => {
                        (wq, wu.dot(&diag(wu.ncols(), &dw, true)))
                    }
                    (Step::MatMulLeft { w: wq }, Step::MatMulLeft { w: wu }) if compress => {
                        (wq, diag(wu.nrows(), &dh, true).dot(wu))
                    }
                    // Decompress: X = (D_h L_h)ᵀ Q (D_w L_w); the triangle's 0/1 expansion
                    // (K × CF²) carries no step.
                    (Step::MatMulRight { w: wq }, Step::MatMulRight { w: wu })
                        if wu.ncols() == spec.cf * spec.cf
                            && k <= 1
                            && !spec.layout().is_grid() =>
                    {
                        (wq, wu.clone())
                    }
                    (Step::MatMulRight { w: wq }, Step::MatMulRight { w: wu }) => {
                        (wq, diag(wu.nrows(), &dw, false).dot(wu))
                    }
                    (Step::MatMulLeft { w: wq }, Step::MatMulLeft { w: wu }) => {
                        (wq, wu.dot(&diag(wu.ncols(), &dh, false)))
                    }
                    (
                        Step::Gather {
                            indices: ia,
                            axis: xa,
                        },
                        Step::Gather {
                            indices: ib,
                            axis: xb,
                        },
                    ) => {
                        assert_eq!((ia, xa), (ib, xb), "{what}");
                        continue;
                    }
                    (Step::Reshape { shape: sa }, Step::Reshape { shape: sb }) => {
                        assert_eq!(sa, sb, "{what}");
                        continue;
                    }
                    _ => panic!("{what}: the programs differ in structure"),
                };
                // One correctly rounded f64 operation either way: within 1 ulp.
                let e = max_rel(expected.0, &expected.1);
                assert!(e <= 4.5e-16, "{what}: {e:e}");
                checked += 1;
            }
        }
        assert!(checked >= 4, "{}", spec.name());
    }
}

/// Helper: `Some(code)` when a step is a Cast.
trait CastOf {
    fn clone_cast(&self) -> Option<CodeType>;
}
impl CastOf for Step {
    fn clone_cast(&self) -> Option<CodeType> {
        match self {
            Step::Cast { from } => Some(*from),
            _ => None,
        }
    }
}

/// The step of every stored coefficient of one chunk-graph tensor `[B, C, plane]`.
fn steps_tensor(spec: &Spec) -> ArrayD<f64> {
    let q = spec.quant.as_ref().unwrap();
    let plane = q.plane_steps(&spec.layout());
    let shape = spec.compressed_shape();
    let n = shape[0] * shape[1];
    let flat: Vec<f64> = (0..n).flat_map(|_| plane.iter().copied()).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), flat).unwrap()
}

/// In f64, the folded programs compute the unquantized ones divided (compress) and multiplied
/// (decompress) by the steps of the coefficients.
#[test]
fn folded_programs_scale_by_the_steps_in_f64() {
    for spec in specs() {
        let pq = Plan::new(&spec).unwrap();
        let pu = Plan::new(&unquantized(&spec)).unwrap();
        let c = &pq.chunk;
        let steps = steps_tensor(c);
        let x = image(c.batch, c.channels, c.height, c.width, 5)
            .mapv(|v| v as f64)
            .into_dyn();
        let yq = run_program(&pq.compress, &x).unwrap();
        let yu = run_program(&pu.compress, &x).unwrap();
        let want = &yu / &steps;
        let e = (&yq - &want)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        let scale = want.mapv(f64::abs).fold(0.0, |m: f64, &v| m.max(v));
        assert!(e <= 1e-12 * scale, "{} compress: {e:e}", spec.name());
        // Any integer codes.
        let codes = yq.mapv(|v| (v / 3.0).round().clamp(-127.0, 127.0));
        let xq = run_program(&pq.decompress, &codes).unwrap();
        let xu = run_program(&pu.decompress, &(&codes * &steps)).unwrap();
        let e = (&xq - &xu).mapv(f64::abs).fold(0.0, |m: f64, &v| m.max(v));
        let scale = xu.mapv(f64::abs).fold(1e-300, |m: f64, &v| m.max(v));
        assert!(e <= 1e-12 * scale, "{} decompress: {e:e}", spec.name());
    }
}

/// Half-to-even rounding and symmetric clamping written out in f64 (independent of the
/// library's rule).
fn round_half_even(v: f64) -> f64 {
    let f = v.floor();
    let d = v - f;
    if d > 0.5 || (d == 0.5 && f.rem_euclid(2.0) == 1.0) {
        f + 1.0
    } else {
        f
    }
}

fn reference_code(scaled: f64, max: f64) -> f64 {
    round_half_even(scaled).clamp(-max, max)
}

#[test]
fn host_rounding_equals_the_written_out_rule() {
    // Ties, values beyond ±max, and a sweep.
    let mut v: Vec<f32> = vec![
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        126.5,
        127.5,
        -127.5,
        -128.0,
        128.0,
        1e6,
        -1e6,
        32766.5,
        32767.5,
        -32767.5,
        -32768.0,
        40000.0,
        -0.49999997,
    ];
    v.extend((-300_000..300_000).map(|k| k as f32 * 0.125));
    let a = ndarray::Array1::from(v.clone()).into_dyn();
    for code in [CodeType::I8, CodeType::I16] {
        let max = code.max() as f64;
        let (codes, clamped) = Codes::quantize(a.view(), code);
        let want: Vec<f64> = v.iter().map(|&s| reference_code(s as f64, max)).collect();
        let got: Vec<f64> = match &codes {
            Codes::I8(c) => c.iter().map(|&x| x as f64).collect(),
            Codes::I16(c) => c.iter().map(|&x| x as f64).collect(),
        };
        assert_eq!(got, want, "{code}");
        let beyond = v
            .iter()
            .filter(|&&s| round_half_even(s as f64).abs() > max)
            .count();
        assert_eq!(clamped, beyond, "{code}");
        assert!(!got.contains(&-(max + 1.0)), "{code}: -max-1 appeared");
    }
}

/// Quantized compress → host rounding → quantized decompress equals the unquantized graphs with
/// the rounding done here: codes agree except within f32 noise of a tie, and decompressing the
/// codes equals the unquantized decompression of codes × steps.
#[test]
fn round_trip_equals_unquantized_graphs_plus_host_rounding() {
    for spec in specs() {
        if spec.dtype != Dtype::F32 {
            continue;
        }
        let q = spec.quant.clone().unwrap();
        let n = spec.batch + 1; // a padded last batch
        let x = image(n, spec.channels, spec.height, spec.width, 21);
        for opts in [EngineOptions::tract(), EngineOptions::native()] {
            let mut cq = Codec::new(&spec, &opts).unwrap();
            let mut cu = Codec::new(&unquantized(&spec), &opts).unwrap();
            let (codes, clamped) = cq.compress_codes(x.view()).unwrap();
            assert_eq!(codes.code_type(), q.code);
            // Reference codes from the unquantized coefficients, rounded here in f64.
            let y = cu.compress(x.view()).unwrap();
            let plane = q.plane_steps(&spec.layout());
            let max = q.code.max() as f64;
            let ys = y
                .as_slice()
                .unwrap()
                .chunks(plane.len())
                .flat_map(|p| p.iter().zip(&plane).map(|(&v, &s)| v as f64 / s))
                .collect::<Vec<f64>>();
            let got: Vec<f64> = codes.view().to_f64().iter().copied().collect();
            // f32 noise of the graphs, relative to the largest scaled coefficient.
            let noise = 1e-5 * ys.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            let mut near_ties = 0;
            let mut ref_clamped = 0;
            for (k, (&s, &g)) in ys.iter().zip(&got).enumerate() {
                let want = reference_code(s, max);
                ref_clamped += (round_half_even(s).abs() > max) as usize;
                if want != g {
                    // Only where the f32 graphs could land on either side of a tie.
                    let off = (s - s.floor() - 0.5).abs();
                    assert!(
                        off < noise && (want - g).abs() == 1.0,
                        "{}: code {k}: {g} vs {want} (scaled {s})",
                        spec.name()
                    );
                    near_ties += 1;
                }
            }
            assert!(
                near_ties * 1000 <= got.len(),
                "{}: {near_ties}",
                spec.name()
            );
            assert!(
                clamped.abs_diff(ref_clamped) <= near_ties,
                "{}",
                spec.name()
            );
            eprintln!(
                "{} {}: {} codes, {clamped} clamped, {near_ties} differ at a tie",
                spec.name(),
                opts.kind,
                got.len()
            );
            // Decompress: the quantized graph on the codes vs the unquantized graph on codes × step.
            let back = cq.decompress_codes(codes.view()).unwrap().into_dyn();
            let deq: Vec<f32> = got
                .chunks(plane.len())
                .flat_map(|p| p.iter().zip(&plane).map(|(&c, &s)| (c * s) as f32))
                .collect();
            let deq = ArrayD::from_shape_vec(y.raw_dim(), deq).unwrap();
            let want = cu.decompress(deq.view()).unwrap().into_dyn();
            let e = rel_err(&back, &want);
            assert!(e <= 1e-5, "{} {}: {e:e}", spec.name(), opts.kind);
        }
    }
}

/// At CF = block nothing is chopped, so the only error is the rounding: each coefficient is off
/// by at most step/2, the transform is orthonormal, so in every block the error's L2 norm is at
/// most step/2 · b (b² coefficients), any one pixel is off by at most step/2 · Σ|basis| ≤
/// step/2 · b (Cauchy-Schwarz: Σ_i |t_i(u)| ≤ √b per axis), and the RMS error is at most step/2.
#[test]
fn cf_equal_block_error_is_bounded_by_the_step() {
    let step = 0.1;
    for (h, w) in [(64, 64), (100, 75)] {
        for (tile, opts) in [
            (Tile::Full, EngineOptions::tract()),
            (Tile::Auto, EngineOptions::tract()),
            (Tile::Auto, EngineOptions::native()),
        ] {
            let spec = Spec::new(h, w, 8)
                .with_tile(tile)
                .with_quant(Quant::uniform(CodeType::I16, step));
            let x = image(1, 3, h, w, 8);
            let mut codec = Codec::new(&spec, &opts).unwrap();
            let (codes, clamped) = codec.compress_codes(x.view()).unwrap();
            assert_eq!(clamped, 0);
            let back = codec.decompress_codes(codes.view()).unwrap();
            let err = &back - &x;
            // f32 arithmetic on values up to 255 adds a little; allow 1e-3 absolute.
            let slack = 1e-3;
            let bound = step / 2.0 * 8.0;
            let max = err.iter().fold(0.0f64, |m, &e| m.max((e as f64).abs()));
            assert!(max <= bound + slack, "{h}x{w} {tile}: max {max}");
            let rms =
                (err.iter().map(|&e| (e as f64).powi(2)).sum::<f64>() / err.len() as f64).sqrt();
            assert!(rms <= step / 2.0 + slack, "{h}x{w} {tile}: rms {rms}");
            for bi in 0..h.div_ceil(8) {
                for bj in 0..w.div_ceil(8) {
                    let blk = err.slice(ndarray::s![
                        ..,
                        ..,
                        bi * 8..((bi + 1) * 8).min(h),
                        bj * 8..((bj + 1) * 8).min(w)
                    ]);
                    for c in 0..3 {
                        let l2 = blk
                            .index_axis(ndarray::Axis(1), c)
                            .iter()
                            .map(|&e| (e as f64).powi(2))
                            .sum::<f64>()
                            .sqrt();
                        assert!(l2 <= bound + 8.0 * slack, "{h}x{w} block {bi},{bj}: {l2}");
                    }
                }
            }
            // The uniform quantizer's expected RMS is step/√12: the bound is not vacuous.
            assert!(rms > step / 12f64.sqrt() / 2.0, "{rms}");
        }
    }
}

/// The engines that run code graphs, for this machine.
fn engines() -> Vec<EngineOptions> {
    let mut v = vec![
        EngineOptions::tract(),
        EngineOptions::native(),
        EngineOptions::default().with_kind(EngineKind::Reference),
    ];
    if ort_ready() {
        v.push(EngineOptions::default().with_kind(EngineKind::Ort));
    }
    v
}

#[test]
fn tract_ort_and_reference_agree_on_code_graphs() {
    for spec in specs() {
        let x = image(spec.batch, spec.channels, spec.height, spec.width, 33);
        let mut reference = Codec::new(
            &spec,
            &EngineOptions::default().with_kind(EngineKind::Reference),
        )
        .unwrap();
        let (codes, _) = reference.compress_codes(x.view()).unwrap();
        let y_ref = reference.compress(x.view()).unwrap();
        let x_ref = reference.decompress_codes(codes.view()).unwrap().into_dyn();
        let tol = if spec.dtype == Dtype::F16 { 3e-3 } else { 1e-5 };
        for opts in engines() {
            let mut c = Codec::new(&spec, &opts).unwrap();
            let what = format!("{} {}", spec.name(), opts.kind);
            let y = c.compress(x.view()).unwrap();
            let e = rel_err(&y, &y_ref);
            assert!(e <= tol, "{what} compress: {e:e}");
            let back = c.decompress_codes(codes.view()).unwrap().into_dyn();
            let e = rel_err(&back, &x_ref);
            assert!(e <= tol, "{what} decompress: {e:e}");
        }
    }
}

/// The graph's runner directly, with `run_codes` and `run_codes_into`: the same result, and the
/// ort engine still elides the output Reshape of a tiled quantized decompress graph.
#[test]
fn runners_take_codes_directly() {
    let spec = Spec::new(48, 64, 4)
        .with_tile(Tile::Size(16))
        .with_batch(2)
        .with_quant(Quant::uniform(CodeType::I8, 8.0));
    let plan = Plan::new(&spec).unwrap();
    let bytes = plan
        .model(Direction::Decompress, 13)
        .unwrap()
        .encode()
        .unwrap();
    assert!(dctchop::engine::rewrite::elide_output_reshape(&bytes).is_some());
    let codes = ndarray::Array::from_shape_fn(spec.compressed_shape(), |d| {
        (((d[2] * 7 + d[3] * 3 + d[1]) % 255) as i16 - 127) as i8
    })
    .into_dyn();
    let mut outs = Vec::new();
    for opts in engines() {
        let mut r: Box<dyn Runner> = match opts.kind {
            EngineKind::Reference | EngineKind::Native => {
                compile(&plan, Direction::Decompress, &opts).unwrap()
            }
            _ => compile_bytes(&bytes, Dtype::F32, &opts).unwrap(),
        };
        assert_eq!(r.input_code(), Some(CodeType::I8), "{}", opts.kind);
        assert_eq!(r.output_shape(), &spec.input_shape()[..]);
        let a = r.run_codes(CodesView::I8(codes.view())).unwrap();
        let mut b = ArrayD::<f32>::zeros(spec.input_shape());
        r.run_codes_into(CodesView::I8(codes.view()), b.view_mut())
            .unwrap();
        assert_eq!(a, b, "{}", opts.kind);
        outs.push(a);
    }
    for o in &outs[1..] {
        assert!(rel_err(o, &outs[0]) <= 1e-5);
    }
}

/// Codes to a float graph, floats to a code graph, codes of the other type: one-line errors
/// naming what the graph takes, from every engine and from the codec.
#[test]
fn wrong_input_kinds_are_one_line_errors() {
    let spec = Spec::new(32, 32, 4).with_quant(Quant::uniform(CodeType::I8, 4.0));
    let plan = Plan::new(&spec).unwrap();
    let plain = Plan::new(&unquantized(&spec)).unwrap();
    let codes8 = ArrayD::<i8>::zeros(spec.compressed_shape());
    let codes16 = ArrayD::<i16>::zeros(spec.compressed_shape());
    let floats = ArrayD::<f32>::zeros(spec.compressed_shape());
    let one_line = |e: dctchop::Error, want: &[&str]| {
        let m = e.to_string();
        assert!(!m.contains('\n'), "{m}");
        for w in want {
            assert!(m.contains(w), "{m} lacks {w}");
        }
    };
    for opts in engines() {
        let mut q = compile(&plan, Direction::Decompress, &opts).unwrap();
        let mut f = compile(&plain, Direction::Decompress, &opts).unwrap();
        one_line(
            q.run(floats.view()).unwrap_err(),
            &["takes int8", "got float", "run_codes"],
        );
        let mut out = ArrayD::<f32>::zeros(spec.input_shape());
        one_line(
            q.run_into(floats.view(), out.view_mut()).unwrap_err(),
            &["takes int8", "got float"],
        );
        one_line(
            q.run_codes(CodesView::I16(codes16.view())).unwrap_err(),
            &["takes int8", "got int16"],
        );
        one_line(
            f.run_codes(CodesView::I8(codes8.view())).unwrap_err(),
            &["takes float", "got int8", "only for quantized"],
        );
        // The compress graph of a quantized spec takes floats.
        let mut c = compile(&plan, Direction::Compress, &opts).unwrap();
        assert_eq!(c.input_code(), None);
        one_line(
            c.run_codes(CodesView::I8(codes8.view())).unwrap_err(),
            &["takes float"],
        );
        // Wrong shape of codes.
        let bad = ArrayD::<i8>::zeros(vec![1, 3, 16, 15]);
        one_line(
            q.run_codes(CodesView::I8(bad.view())).unwrap_err(),
            &["expected shape"],
        );
    }
    let mut codec = Codec::new(&spec, &EngineOptions::tract()).unwrap();
    one_line(
        codec.decompress(floats.view()).unwrap_err(),
        &["quant", "takes int8 codes", "decompress_codes"],
    );
    one_line(
        codec
            .decompress_codes(CodesView::I16(codes16.view()))
            .unwrap_err(),
        &["quant.code = i8", "int16"],
    );
    let mut plain_codec = Codec::new(&unquantized(&spec), &EngineOptions::tract()).unwrap();
    one_line(
        plain_codec
            .decompress_codes(CodesView::I8(codes8.view()))
            .unwrap_err(),
        &["quant = none", "quantized spec"],
    );
    let x = image(1, 3, 32, 32, 1);
    one_line(
        plain_codec.compress_codes(x.view()).unwrap_err(),
        &["quant = none"],
    );
}

#[test]
fn bad_quant_specs_are_refused_naming_the_field() {
    let q = |step: f64| Spec::new(64, 64, 4).with_quant(Quant::uniform(CodeType::I8, step));
    for (spec, want) in [
        (q(0.0), "invalid quant.step = 0"),
        (q(f64::NAN), "invalid quant.step = NaN"),
        (q(-1.5), "invalid quant.step = -1.5"),
        (
            Spec::new(64, 64, 4).with_quant(
                Quant::uniform(CodeType::I8, 1.0).with_multipliers(vec![], vec![1.0; 3]),
            ),
            "invalid quant.cols = 3 multipliers: allowed is exactly cf = 4",
        ),
    ] {
        let e = Plan::new(&spec).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "{e}");
        assert!(Codec::new(&spec, &EngineOptions::tract()).is_err());
    }
}

/// The opponent transform written out here (independent of `ChannelMix::matrix`).
fn opponent() -> [[f64; 3]; 3] {
    let (a, b, c) = (1.0 / 3f64.sqrt(), 1.0 / 2f64.sqrt(), 1.0 / 6f64.sqrt());
    [[a, a, a], [b, 0.0, -b], [c, -2.0 * c, c]]
}

/// Apply `m` (or its transpose) over axis 1 of `[N, 3, …]`, in f64.
fn mix3(y: &ArrayD<f32>, m: [[f64; 3]; 3], transpose: bool) -> ArrayD<f32> {
    let mut out = y.clone();
    let n = y.shape()[0];
    let plane = y.len() / n / 3;
    let src = y.as_slice().unwrap();
    let dst = out.as_slice_mut().unwrap();
    for s in 0..n {
        for p in 0..plane {
            for r in 0..3 {
                let v: f64 = (0..3)
                    .map(|k| {
                        let w = if transpose { m[k][r] } else { m[r][k] };
                        w * src[(s * 3 + k) * plane + p] as f64
                    })
                    .sum();
                dst[(s * 3 + r) * plane + p] = v as f32;
            }
        }
    }
    out
}

/// Quantized specs with the opponent channel transform: both variants, dense, tiled, padded,
/// serialized, both code types.
fn mixed_specs() -> Vec<Spec> {
    let mix = |q: Quant| q.with_mix(Some(dctchop::quant::ChannelMix::Opponent));
    let mut v = Vec::new();
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Size(16), Tile::Auto] {
            v.push(
                Spec::new(64, 48, 4)
                    .with_variant(variant)
                    .with_tile(tile)
                    .with_batch(2)
                    .with_quant(mix(Quant::uniform(CodeType::I16, 3.0))),
            );
        }
        v.push(
            Spec::new(100, 75, 3)
                .with_variant(variant)
                .with_quant(mix(Quant::uniform(CodeType::I8, 24.0))),
        );
        v.push(
            Spec::new(128, 64, 3)
                .with_variant(variant)
                .with_serialize(2)
                .with_quant(mix(Quant::uniform(CodeType::I16, 2.0))),
        );
    }
    v
}

/// With a channel transform, every engine's compress output is the transform-free quantized
/// output mixed by the opponent matrix (applied here in f64), and its decompression of any codes
/// is the transform-free decompression of the codes unmixed by the transpose; the graphs stay
/// MatMul/Gather/Reshape with one Cast, and the container records it as format version 3.
#[test]
fn channel_transform_equals_mixing_the_coefficients_in_f64() {
    let m = opponent();
    for spec in mixed_specs() {
        let plain = Spec {
            quant: spec.quant.clone().map(|q| q.with_mix(None)),
            ..spec.clone()
        };
        let plan = Plan::new(&spec).unwrap();
        let ops = plan.compress.op_types();
        assert!(ops
            .iter()
            .all(|o| ["MatMul", "Gather", "Reshape"].contains(o)));
        let ops = plan.decompress.op_types();
        assert_eq!(ops[0], "Cast");
        assert!(ops[1..]
            .iter()
            .all(|o| ["MatMul", "Gather", "Reshape"].contains(o)));
        let x = image(spec.batch, 3, spec.height, spec.width, 41);
        for opts in engines() {
            let what = format!("{} {}", spec.name(), opts.kind);
            let mut cm = Codec::new(&spec, &opts).unwrap();
            let mut cp = Codec::new(&plain, &opts).unwrap();
            // Compress: scaled coefficients, and the codes (rounded after mixing).
            let want = mix3(&cp.compress(x.view()).unwrap(), m, false);
            let got = cm.compress(x.view()).unwrap();
            let e = rel_err(&got, &want);
            assert!(e <= 1e-5, "{what} compress: {e:e}");
            let (codes, _) = cm.compress_codes(x.view()).unwrap();
            let codes_f = codes.view().to_f32();
            let dev = (&codes_f - &want.mapv(f32::round_ties_even))
                .iter()
                .fold(0f32, |a, &b| a.max(b.abs()));
            assert!(dev <= 1.0, "{what} codes: {dev}");
            // Decompress: unmixed codes through the transform-free float path.
            let back = cm.decompress_codes(codes.view()).unwrap().into_dyn();
            let unmixed = mix3(&codes_f, m, true);
            let unq = Spec {
                quant: None,
                ..spec.clone()
            };
            let mut cu = Codec::new(&unq, &opts).unwrap();
            // One uniform step in these specs: dequantizing is one product.
            let step = plain.quant.as_ref().unwrap().step;
            let deq = unmixed.mapv(|v| (v as f64 * step) as f32);
            let want = cu.decompress(deq.view()).unwrap().into_dyn();
            let e = rel_err(&back, &want);
            assert!(e <= 1e-5, "{what} decompress: {e:e}");
            // The transform is orthonormal: the round trip's error is the transform-free one's.
            let (pc, _) = cp.compress_codes(x.view()).unwrap();
            let pback = cp.decompress_codes(pc.view()).unwrap();
            let mse = |b: &ndarray::Array4<f32>| {
                (b - &x).iter().map(|&d| (d as f64).powi(2)).sum::<f64>() / x.len() as f64
            };
            let back4 = back.into_dimensionality::<ndarray::Ix4>().unwrap();
            let (a, b) = (mse(&back4), mse(&pback));
            assert!((a - b).abs() <= 0.15 * b, "{what}: mse {a} vs {b} without");
        }
    }
}

#[test]
fn channel_transform_matrix_is_the_written_out_orthonormal_one() {
    let m = dctchop::quant::ChannelMix::Opponent.matrix();
    let want = opponent();
    for r in 0..3 {
        for k in 0..3 {
            assert!((m[[r, k]] - want[r][k]).abs() <= 1e-16);
            let dot: f64 = (0..3).map(|i| want[r][i] * want[k][i]).sum();
            assert!((dot - (r == k) as u8 as f64).abs() <= 1e-15);
        }
    }
    // A transform for 3 channels on 1-channel data is refused, naming the field.
    let spec = Spec::new(32, 32, 4).with_channels(1).with_quant(
        Quant::uniform(CodeType::I8, 4.0).with_mix(Some(dctchop::quant::ChannelMix::Opponent)),
    );
    let e = spec.validate().unwrap_err().to_string();
    assert!(
        e.contains("quant.mix") && e.contains("needs 3 channels"),
        "{e}"
    );
}

/// `Codec::decompress_codes_compare` (what `compress` reports of its round trip): on every
/// engine, with and without the channel transform, the output of `decompress_codes_into` and the
/// squared-difference sum and largest difference against the input summed here in f64.
#[test]
fn decompress_compare_equals_decompress_and_a_naive_comparison() {
    for spec in specs().into_iter().chain(mixed_specs()) {
        let x = image(spec.batch, spec.channels, spec.height, spec.width, 5);
        for opts in engines() {
            let what = format!("{} {}", spec.name(), opts.kind);
            let mut c = Codec::new(&spec, &opts).unwrap();
            let (codes, _) = c.compress_codes(x.view()).unwrap();
            let want = c.decompress_codes(codes.view()).unwrap();
            let mut got = ndarray::Array4::<f32>::zeros(want.raw_dim());
            let (sse, worst) = c
                .decompress_codes_compare(codes.view(), got.view_mut(), x.view())
                .unwrap();
            assert_eq!(got, want, "{what}");
            let (mut s, mut w) = (0.0f64, 0.0f64);
            for (&a, &b) in x.iter().zip(want.iter()) {
                let d = a as f64 - b as f64;
                s += d * d;
                w = w.max(d.abs());
            }
            // block_transform::diff_stats' rounding: differences in f32, squares summed in
            // f32 runs, then in f64.
            assert!(
                (worst - w).abs() <= w * f32::EPSILON as f64,
                "{what}: {worst} vs {w}"
            );
            assert!((sse - s).abs() <= 2e-5 * s, "{what}: {sse} vs {s}");
            // A reference of another shape is an error, not a panic.
            let short = x.slice(ndarray::s![.., .., 1.., ..]);
            let e = c.decompress_codes_compare(codes.view(), got.view_mut(), short);
            assert!(e.is_err(), "{what}");
        }
    }
}

/// Integer samples (what `compress` hands the codec for uint8/uint16/int16 `.npy` files): on
/// every engine, `compress_codes` of them and `decompress_codes_compare` against them give
/// exactly what the same values as f32 give (the native engine reads them as they are, the
/// others get them converted).
#[test]
fn integer_samples_compress_and_compare_as_their_f32_values() {
    for spec in specs().into_iter().chain(mixed_specs()) {
        let x = image(spec.batch, spec.channels, spec.height, spec.width, 9);
        let (lo, hi) = x
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let x8 = x.mapv(|v| ((v - lo) / (hi - lo) * 255.0).round() as u8);
        let x16 = x.mapv(|v| ((v - lo) / (hi - lo) * 60000.0).round() as u16);
        let xi = x.mapv(|v| ((v - lo) / (hi - lo) * 2000.0 - 1000.0).round() as i16);
        for opts in engines() {
            let what = format!("{} {}", spec.name(), opts.kind);
            let mut c = Codec::new(&spec, &opts).unwrap();
            let cases: [(dctchop::pixels::PixelsView<'_>, ndarray::Array4<f32>); 3] = [
                (x8.view().into(), x8.mapv(f32::from)),
                (x16.view().into(), x16.mapv(f32::from)),
                (xi.view().into(), xi.mapv(f32::from)),
            ];
            for (ints, floats) in cases {
                let (codes, clamped) = c.compress_codes(ints).unwrap();
                let (want_codes, want_clamped) = c.compress_codes(floats.view()).unwrap();
                assert_eq!(codes, want_codes, "{what}");
                assert_eq!(clamped, want_clamped, "{what}");
                let mut got = ndarray::Array4::<f32>::zeros(floats.raw_dim());
                let mut want = got.clone();
                let s = c
                    .decompress_codes_compare(codes.view(), got.view_mut(), ints)
                    .unwrap();
                let w = c
                    .decompress_codes_compare(codes.view(), want.view_mut(), floats.view())
                    .unwrap();
                assert_eq!(got, want, "{what}");
                assert_eq!(s.1, w.1, "{what}");
                assert!((s.0 - w.0).abs() <= 1e-12 * w.0, "{what}: {s:?} vs {w:?}");
            }
        }
    }
}
