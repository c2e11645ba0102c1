//! Property tests (proptest): spec validation and plans on arbitrary specs, container metadata
//! parsing on arbitrary field values, and the CF = block round trip on arbitrary image sizes.

use proptest::prelude::*;
use std::path::{Path, PathBuf};

use crate::container;
use crate::layout::Variant;
use crate::spec::{Dtype, Spec, Tile};
use crate::{Codec, EngineOptions, Plan};

fn tile() -> impl Strategy<Value = Tile> {
    prop_oneof![
        Just(Tile::Full),
        Just(Tile::Auto),
        (0usize..200).prop_map(Tile::Size),
    ]
}

/// Sizes from tiny to absurd (overflowing products included).
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..70,
        70usize..5000,
        Just(usize::MAX),
        (1usize..1 << 40)
    ]
}

prop_compose! {
    fn any_spec()(
        batch in size(), channels in size(), height in size(), width in size(),
        block in prop_oneof![Just(4usize), Just(8), Just(16), Just(32), 0usize..40],
        cf in 0usize..40, triangle in any::<bool>(), tile in tile(),
        serialize in prop_oneof![1usize..5, 0usize..1000],
        f16 in any::<bool>(),
    ) -> Spec {
        Spec {
            batch, channels, height, width, block, cf,
            variant: if triangle { Variant::Triangle } else { Variant::Chop },
            tile, serialize,
            dtype: if f16 { Dtype::F16 } else { Dtype::F32 },
            quant: None,
        }
    }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dctchop-props-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A valid one-shard container written by the library, as (header JSON, payload).
fn good_shard(dir: &Path) -> (serde_json::Value, Vec<u8>) {
    let stem = dir.join("good");
    if !container::shard_path(&stem, 0).is_file() {
        let x = ndarray::Array4::<f32>::from_shape_fn((2, 1, 8, 8), |(n, _, i, j)| {
            (n * 64 + i * 8 + j) as f32
        });
        let npy = dir.join("x.npy");
        crate::npy::write_npy(&npy, x.view().into_dyn(), Dtype::F32, true).unwrap();
        let opts = crate::pipeline::CompressOptions {
            cf: 4,
            ..Default::default()
        };
        crate::pipeline::compress(&[npy], &stem, &opts, &mut |_, _| {}).unwrap();
    }
    let b = std::fs::read(container::shard_path(&stem, 0)).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&b[8..8 + n]).unwrap(),
        b[8 + n..].to_vec(),
    )
}

const FIELDS: [&str; 14] = [
    "spec",
    "layout",
    "store_dtype",
    "original_dtype",
    "original_shape",
    "value_min",
    "value_max",
    "stored_ratio",
    "shard_index",
    "shard_count",
    "shard_first_sample",
    "shard_samples",
    "checksum",
    "container_id",
];

proptest! {
    // A fixed seed: CI runs the same cases every time (a failure is reproducible, never
    // flaky); PROPTEST_RNG_SEED is ignored. Change the seed to explore new cases locally.
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_dc7c),
        ..ProptestConfig::default()
    })]

    /// Validation never panics; a rejection names a field, and a valid spec of a reasonable
    /// size builds a plan whose programs produce the spec's shapes.
    #[test]
    fn spec_validation_and_plans(spec in any_spec()) {
        match spec.validate() {
            Err(e) => prop_assert!(e.to_string().starts_with("invalid "), "{e}"),
            Ok(()) => {
                let (m, ix) = crate::plan::estimate_build_bytes(&spec);
                let elems = crate::budget::elems(&spec.input_shape()).unwrap_or(u64::MAX);
                if m < 64 << 20 && ix < 64 << 20 && elems < 1 << 22 {
                    let plan = Plan::new(&spec).unwrap();
                    prop_assert_eq!(plan.compress.output_shape(), plan.chunk.compressed_shape());
                    prop_assert_eq!(plan.decompress.output_shape(), plan.chunk.input_shape());
                } else if m > crate::spec::MAX_CONSTANT_BYTES || ix > crate::spec::MAX_CONSTANT_BYTES {
                    // Refused before anything is allocated.
                    prop_assert!(Plan::new(&spec).is_err());
                }
            }
        }
    }

    /// Any value in any metadata field is either accepted or a one-line error naming the shard;
    /// never a panic.
    #[test]
    fn container_metadata_never_panics(
        field in proptest::sample::select(FIELDS.to_vec()),
        value in prop_oneof![
            ".*",
            "-?[0-9]{1,25}",
            Just("NaN".to_string()),
            Just("inf".to_string()),
            "\\[[0-9, -]{0,40}\\]",
            "\\{\"height\":[0-9]{1,20},\"width\":[0-9]{1,20}\\}",
        ],
    ) {
        let dir = tmp("meta");
        let (mut h, payload) = good_shard(&dir);
        h["__metadata__"][field] = value.clone().into();
        let mut hb = serde_json::to_vec(&h).unwrap();
        while !hb.len().is_multiple_of(8) {
            hb.push(b' ');
        }
        let mut b = (hb.len() as u64).to_le_bytes().to_vec();
        b.extend(&hb);
        b.extend(&payload);
        let stem = dir.join("crafted");
        let shard = container::shard_path(&stem, 0);
        std::fs::write(&shard, &b).unwrap();
        match container::open(&stem) {
            Ok(c) => { let _ = c.verify(); }
            Err(e) => {
                let m = e.to_string();
                // It names a shard of the container (shard_count = 2 makes shard 1 the missing
                // file) on one line.
                prop_assert!(m.contains("crafted.0") && m.contains(".safetensors") && !m.contains('\n'), "{m}");
            }
        }
    }

    /// CF = block keeps every coefficient: the round trip is exact up to f32 rounding, for any
    /// image size (padding included), block and variant.
    #[test]
    fn full_cf_round_trip(
        h in 1usize..40, w in 1usize..40, c in 1usize..4,
        block in prop_oneof![Just(4usize), Just(8)],
        triangle in any::<bool>(), seed in any::<u64>(),
    ) {
        // At CF = block the triangle keeps only i + j < block: not the whole block.
        let variant = if triangle { Variant::Triangle } else { Variant::Chop };
        let cf = block;
        let spec = Spec::new(h, w, cf).with_block(block).with_channels(c).with_variant(variant);
        let mut state = seed | 1;
        let x = ndarray::Array4::<f32>::from_shape_simple_fn((2, c, h, w), || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1000) as f32 / 10.0
        });
        let mut codec = Codec::new(&spec.clone().with_batch(2), &EngineOptions::native()).unwrap();
        let y = codec.compress(x.view()).unwrap();
        let back = codec.decompress(y.view()).unwrap();
        let err = x.iter().zip(back.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        if variant == Variant::Chop {
            prop_assert!(err <= 1e-3, "max error {err}");
        } else {
            prop_assert!(err.is_finite());
        }
    }
}
