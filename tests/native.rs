//! The native engine against the f64 reference interpreter (the plan's program in f64, no
//! ONNX), against tract's run of the ONNX graphs, and on what a graph engine cannot do (any
//! number of samples per call, whole serialized images).

use crate::common;

use common::{image, rel_err};
use dctchop::engine::{compile, reference::run_program};
use dctchop::graph::Direction;
use dctchop::{Codec, Dtype, EngineKind, EngineOptions, Plan, Spec, Tile, Variant};
use ndarray::ArrayD;

fn f64_of(a: &ArrayD<f32>) -> ArrayD<f64> {
    a.mapv(|v| v as f64)
}

/// max |a − b| / range(b), in f64.
fn rel_err64(a: &ArrayD<f32>, reference: &ArrayD<f64>) -> f64 {
    let (lo, hi) = reference
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let range = (hi - lo).max(1e-12);
    a.iter()
        .zip(reference.iter())
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
        / range
}

#[test]
fn equals_the_f64_reference_within_1e_6_of_the_range() {
    let mut checked = 0;
    for variant in [Variant::Chop, Variant::Triangle] {
        for block in [4, 8, 16, 32] {
            for cf in [1, 2, block / 2 + 1, block] {
                for (h, w) in [(1, 1), (25, 25), (17, 8), (64, 96), (300, 451)] {
                    let spec = Spec::new(h, w, cf)
                        .with_variant(variant)
                        .with_block(block)
                        .with_channels(2)
                        .with_batch(2);
                    let plan = Plan::new(&spec).unwrap();
                    let x = image(2, 2, h, w, (h * w + cf) as u64).into_dyn();
                    let opts = EngineOptions::native();
                    let y = compile(&plan, Direction::Compress, &opts)
                        .unwrap()
                        .run(x.view())
                        .unwrap();
                    let y_ref = run_program(&plan.compress, &f64_of(&x)).unwrap();
                    let e = rel_err64(&y, &y_ref);
                    assert!(e < 1e-6, "{} compress: {e:.2e}", spec.name());
                    let back = compile(&plan, Direction::Decompress, &opts)
                        .unwrap()
                        .run(y.view())
                        .unwrap();
                    let back_ref = run_program(&plan.decompress, &f64_of(&y)).unwrap();
                    let e = rel_err64(&back, &back_ref);
                    assert!(e < 1e-6, "{} decompress: {e:.2e}", spec.name());
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 4 * 4 * 5);
}

#[test]
fn every_form_and_serialization_gives_the_same_result() {
    // The forms are factorizations of one transform: native output is the same for all of them.
    let x = image(3, 3, 250, 250, 11);
    for variant in [Variant::Chop, Variant::Triangle] {
        let base = Spec::new(250, 250, 3).with_variant(variant).with_batch(2);
        let mut codec = Codec::new(&base, &EngineOptions::native()).unwrap();
        let y0 = codec.compress(x.view()).unwrap();
        let b0 = codec.decompress(y0.view()).unwrap().into_dyn();
        for spec in [
            base.clone().with_tile(Tile::Full),
            base.clone().with_tile(Tile::Size(32)),
            base.clone().with_serialize(2),
            base.clone().with_serialize(4).with_tile(Tile::Size(8)),
        ] {
            let mut c = Codec::new(&spec, &EngineOptions::native()).unwrap();
            let y = c.compress(x.view()).unwrap();
            assert_eq!(y, y0, "{}", spec.name());
            assert_eq!(
                c.decompress(y.view()).unwrap().into_dyn(),
                b0,
                "{}",
                spec.name()
            );
        }
        // And the graphs of the serialized spec (run by tract) agree.
        let spec = base.clone().with_serialize(2);
        let mut t = Codec::new(&spec, &EngineOptions::tract()).unwrap();
        let yt = t.compress(x.view()).unwrap();
        assert!(rel_err(&yt, &y0) < 1e-5, "{variant}: tract vs native");
        let bt = t.decompress(yt.view()).unwrap().into_dyn();
        assert!(rel_err(&bt, &b0) < 1e-5, "{variant}: tract vs native");
    }
}

#[test]
fn any_number_of_samples_and_threads_give_identical_results() {
    let spec = Spec::new(96, 80, 4).with_batch(4);
    let x = image(13, 3, 96, 80, 4);
    let mut one = Codec::new(&spec, &EngineOptions::native().with_threads(1)).unwrap();
    let y1 = one.compress(x.view()).unwrap();
    for threads in [2, 3] {
        let mut c = Codec::new(&spec, &EngineOptions::native().with_threads(threads)).unwrap();
        assert_eq!(c.compress(x.view()).unwrap(), y1, "{threads} threads");
    }
    // Sample by sample equals all at once.
    for i in [0, 5, 12] {
        let xi = x.slice(ndarray::s![i..i + 1, .., .., ..]);
        let yi = one.compress(xi).unwrap();
        assert_eq!(
            yi.index_axis(ndarray::Axis(0), 0),
            y1.index_axis(ndarray::Axis(0), i)
        );
    }
    let back = one.decompress(y1.view()).unwrap();
    assert_eq!(back.shape(), &[13, 3, 96, 80]);
}

#[test]
fn f16_specs_compute_in_f32() {
    let spec = Spec::new(64, 64, 4).with_dtype(Dtype::F16);
    let plan = Plan::new(&spec).unwrap();
    let x = image(1, 3, 64, 64, 2).into_dyn();
    let y = compile(&plan, Direction::Compress, &EngineOptions::native())
        .unwrap()
        .run(x.view())
        .unwrap();
    let y_ref = run_program(&plan.compress, &f64_of(&x)).unwrap();
    assert!(rel_err64(&y, &y_ref) < 1e-6);
}

#[test]
fn wrong_shapes_are_errors_not_panics() {
    let plan = Plan::new(&Spec::new(32, 32, 4)).unwrap();
    let mut r = compile(&plan, Direction::Compress, &EngineOptions::native()).unwrap();
    for bad in [
        vec![1, 3, 32, 31],
        vec![0, 3, 32, 32],
        vec![2, 2, 32, 32],
        vec![3, 32, 32],
    ] {
        let x = ArrayD::<f32>::zeros(bad.clone());
        let e = r.run(x.view()).unwrap_err().to_string();
        assert!(e.contains("native engine input"), "{bad:?}: {e}");
    }
    assert_eq!(
        EngineKind::Auto.for_plan(dctchop::Device::Cpu),
        EngineKind::Native
    );
    assert_eq!("native".parse::<EngineKind>().unwrap(), EngineKind::Native);
}
