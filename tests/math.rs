//! The compressor against independent references: the naive O(N⁴) DCT of Eq. 1, lossless
//! round trips at CF = block, and the projection identity compress(decompress(y)) = y.

use crate::common;

use common::{image, rel_err};
use dctchop::dct::{kept_positions, naive_dct2};
use dctchop::{Codec, EngineOptions, Spec, Tile, Variant};
use ndarray::{s, Array2};

/// Coefficients of every block from Eq. 1, laid out as the spec documents.
fn naive_coefficients(x: &ndarray::Array4<f32>, spec: &Spec) -> ndarray::ArrayD<f32> {
    let b = spec.block;
    let (nbh, nbw) = spec.blocks();
    let pos = kept_positions(spec.variant, spec.cf);
    let mut out = ndarray::ArrayD::<f32>::zeros(spec.compressed_shape().as_slice());
    for n in 0..spec.batch {
        for c in 0..spec.channels {
            for bi in 0..nbh {
                for bj in 0..nbw {
                    // Whole-block sizes only in this test, so no padding is involved.
                    let blk: Array2<f64> = x
                        .slice(s![n, c, bi * b..(bi + 1) * b, bj * b..(bj + 1) * b])
                        .mapv(|v| v as f64);
                    let d = naive_dct2(&blk);
                    for (k, &(i, j)) in pos.iter().enumerate() {
                        let v = d[[i, j]] as f32;
                        match spec.variant {
                            Variant::Chop => out[[n, c, bi * spec.cf + i, bj * spec.cf + j]] = v,
                            Variant::Triangle => out[[n, c, (bi * nbw + bj) * pos.len() + k]] = v,
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn coefficients_equal_naive_eq1() {
    for variant in [Variant::Chop, Variant::Triangle] {
        for (block, cf) in [(8, 5), (8, 2), (4, 3), (16, 7)] {
            for tile in [Tile::Full, Tile::Auto, Tile::Size(block)] {
                let spec = Spec::new(64, 96, cf)
                    .with_batch(2)
                    .with_block(block)
                    .with_variant(variant)
                    .with_tile(tile);
                let x = image(2, 3, 64, 96, 7);
                let mut codec = Codec::new(&spec, &EngineOptions::tract()).unwrap();
                let y = codec.compress(x.view()).unwrap();
                let want = naive_coefficients(&x, &spec);
                let err = rel_err(&y, &want);
                assert!(err < 1e-5, "{variant} b{block} cf{cf} {tile}: {err}");
            }
        }
    }
}

#[test]
fn cf_equal_block_round_trips_any_size() {
    for (h, w) in [(64, 64), (300, 451), (25, 25), (1, 1), (7, 13)] {
        for variant in [Variant::Chop, Variant::Triangle] {
            for tile in [Tile::Full, Tile::Size(8), Tile::Size(32), Tile::Auto] {
                // The triangle keeps i+j<CF only, so it is lossless only for the square: use chop's
                // CF = block for it and the triangle at CF = block still drops high frequencies.
                if variant == Variant::Triangle {
                    continue;
                }
                let spec = Spec::new(h, w, 8).with_variant(variant).with_tile(tile);
                let x = image(1, 3, h, w, 3);
                let mut codec = Codec::new(&spec, &EngineOptions::tract()).unwrap();
                let y = codec.compress(x.view()).unwrap();
                let back = codec.decompress(y.view()).unwrap();
                let err = rel_err(&back.into_dyn(), &x.clone().into_dyn());
                assert!(err < 1e-5, "{h}x{w} {tile}: {err}");
            }
        }
    }
}

#[test]
fn compress_of_decompress_is_identity_on_coefficients() {
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Size(8), Tile::Size(16), Tile::Auto] {
            for cf in [1, 3, 4, 7] {
                let spec = Spec::new(48, 80, cf)
                    .with_variant(variant)
                    .with_tile(tile)
                    .with_channels(2);
                let mut codec = Codec::new(&spec, &EngineOptions::tract()).unwrap();
                let x = image(1, 2, 48, 80, cf as u64);
                let y = codec.compress(x.view()).unwrap();
                let back = codec.decompress(y.view()).unwrap();
                let y2 = codec.compress(back.view()).unwrap();
                let err = rel_err(&y2, &y);
                assert!(err < 1e-5, "{variant} {tile} cf{cf}: {err}");
            }
        }
    }
}

#[test]
fn triangle_is_the_chop_square_restricted() {
    // Same image: the triangle's coefficients are exactly the chop square's at i + j < CF.
    let cf = 5;
    let chop = Spec::new(40, 56, cf);
    let tri = chop.clone().with_variant(Variant::Triangle);
    let x = image(1, 3, 40, 56, 11);
    let yc = Codec::new(&chop, &EngineOptions::tract())
        .unwrap()
        .compress(x.view())
        .unwrap();
    let yt = Codec::new(&tri, &EngineOptions::tract())
        .unwrap()
        .compress(x.view())
        .unwrap();
    let (_, nbw) = chop.blocks();
    let pos = kept_positions(Variant::Triangle, cf);
    for c in 0..3 {
        for bi in 0..5 {
            for bj in 0..nbw {
                for (k, &(i, j)) in pos.iter().enumerate() {
                    let a = yc[[0, c, bi * cf + i, bj * cf + j]];
                    let b = yt[[0, c, (bi * nbw + bj) * pos.len() + k]];
                    assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0));
                }
            }
        }
    }
}
