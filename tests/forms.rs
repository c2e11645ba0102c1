//! Every form of a spec (dense, tiled, auto; serialized) gives the same output, and the tract
//! engine equals the plain-Rust f64 evaluation of the same matrices.

use crate::common;

use common::{image, rel_err};
use dctchop::{Codec, EngineKind, EngineOptions, Spec, Tile, Variant};

fn run(
    spec: &Spec,
    x: &ndarray::Array4<f32>,
    kind: EngineKind,
) -> (ndarray::ArrayD<f32>, ndarray::ArrayD<f32>) {
    let mut codec = Codec::new(spec, &EngineOptions::default().with_kind(kind)).unwrap();
    let y = codec.compress(x.view()).unwrap();
    let back = codec.decompress(y.view()).unwrap().into_dyn();
    (y, back)
}

#[test]
fn tiles_agree() {
    for variant in [Variant::Chop, Variant::Triangle] {
        for (h, w) in [(256, 192), (300, 451), (25, 25), (8, 200)] {
            let x = image(2, 3, h, w, 5);
            let base = Spec::new(h, w, 4).with_variant(variant).with_batch(2);
            let (y0, x0) = run(&base.clone().with_tile(Tile::Full), &x, EngineKind::Tract);
            for tile in [
                Tile::Size(8),
                Tile::Size(16),
                Tile::Size(32),
                Tile::Size(64),
                Tile::Auto,
            ] {
                let (y, back) = run(&base.clone().with_tile(tile), &x, EngineKind::Tract);
                assert!(
                    rel_err(&y, &y0) < 1e-5,
                    "{variant} {h}x{w} tile {tile}: compress"
                );
                assert!(
                    rel_err(&back, &x0) < 1e-5,
                    "{variant} {h}x{w} tile {tile}: decompress"
                );
            }
        }
    }
}

#[test]
fn serialization_agrees() {
    for variant in [Variant::Chop, Variant::Triangle] {
        // 250x250 pads to 256x256 = 32x32 blocks: chunks of 128 and 64, with padding in the last.
        for (h, w) in [(256, 256), (250, 250), (128, 96)] {
            let x = image(3, 2, h, w, 9);
            let base = Spec::new(h, w, 3)
                .with_variant(variant)
                .with_channels(2)
                .with_batch(2);
            let (y1, x1) = run(&base, &x, EngineKind::Tract);
            for s in [2, 4] {
                for tile in [Tile::Full, Tile::Auto, Tile::Size(8)] {
                    let spec = base.clone().with_serialize(s).with_tile(tile);
                    let (y, back) = run(&spec, &x, EngineKind::Tract);
                    assert!(rel_err(&y, &y1) < 1e-5, "{variant} {h}x{w} s{s} {tile}");
                    assert!(rel_err(&back, &x1) < 1e-5, "{variant} {h}x{w} s{s} {tile}");
                }
            }
        }
    }
}

#[test]
fn tract_equals_f64_reference_evaluation() {
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Size(8), Tile::Size(32)] {
            for (h, w) in [(64, 64), (300, 451)] {
                let spec = Spec::new(h, w, 3).with_variant(variant).with_tile(tile);
                let x = image(1, 3, h, w, 1);
                let (yt, xt) = run(&spec, &x, EngineKind::Tract);
                let (yr, xr) = run(&spec, &x, EngineKind::Reference);
                assert!(rel_err(&yt, &yr) < 1e-5, "{variant} {tile} {h}x{w}");
                assert!(rel_err(&xt, &xr) < 1e-5, "{variant} {tile} {h}x{w}");
            }
        }
    }
}

#[test]
fn any_sample_count_pads_the_last_batch() {
    let spec = Spec::new(32, 40, 4).with_batch(4);
    let x = image(7, 3, 32, 40, 2);
    let mut codec = Codec::new(&spec, &EngineOptions::tract()).unwrap();
    let y = codec.compress(x.view()).unwrap();
    assert_eq!(y.shape(), &[7, 3, 16, 20]);
    // Sample by sample with batch 1 gives the same.
    let mut one = Codec::new(&spec.clone().with_batch(1), &EngineOptions::tract()).unwrap();
    let y1 = one.compress(x.view()).unwrap();
    assert!(rel_err(&y, &y1) < 1e-6);
    let back = codec.decompress(y.view()).unwrap();
    assert_eq!(back.shape(), &[7, 3, 32, 40]);
    // Wrong shapes are errors, not panics.
    let bad = image(2, 3, 32, 41, 2);
    let msg = codec.compress(bad.view()).unwrap_err().to_string();
    assert!(msg.contains("expected shape"), "{msg}");
}

#[test]
fn f16_graphs_run_close_to_f32() {
    for variant in [Variant::Chop, Variant::Triangle] {
        let spec = Spec::new(64, 48, 4).with_variant(variant);
        let x = image(1, 3, 64, 48, 4);
        let (y32, x32) = run(&spec, &x, EngineKind::Tract);
        let (y16, x16) = run(
            &spec.clone().with_dtype(dctchop::Dtype::F16),
            &x,
            EngineKind::Tract,
        );
        assert!(rel_err(&y16, &y32) < 3e-3, "{}", rel_err(&y16, &y32));
        assert!(rel_err(&x16, &x32) < 3e-3, "{}", rel_err(&x16, &x32));
    }
}
