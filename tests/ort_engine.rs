//! The ONNX Runtime engine computes what tract computes, for every form of the graphs. Skipped
//! (with the reason printed) when no ONNX Runtime 1.31 library can be found, unless
//! `DCTCHOP_REQUIRE_ORT=1` (set by tests/run_all.sh).

use crate::common;

use common::{image, ort_ready, rel_err};
use dctchop::{Codec, Device, Dtype, EngineKind, EngineOptions, Spec, Tile, Variant};

/// Compress with both engines, and decompress tract's coefficients with both engines; the ort
/// results must equal tract's within `tol` of the data range.
fn ort_equals_tract(spec: &Spec, n: usize, tol: f64) {
    let x = image(n, spec.channels, spec.height, spec.width, 11);
    let what = spec.name();
    let mut tract = Codec::new(spec, &EngineOptions::default()).unwrap();
    let mut ort = Codec::new(spec, &EngineOptions::default().with_kind(EngineKind::Ort))
        .unwrap_or_else(|e| panic!("{what}: ort engine: {e}"));
    let yt = tract.compress(x.view()).unwrap();
    let yo = ort.compress(x.view()).unwrap();
    let e = rel_err(&yo, &yt);
    assert!(e <= tol, "{what}: compress rel err {e:e} > {tol:e}");
    let xt = tract.decompress(yt.view()).unwrap().into_dyn();
    let xo = ort.decompress(yt.view()).unwrap().into_dyn();
    let e = rel_err(&xo, &xt);
    assert!(e <= tol, "{what}: decompress rel err {e:e} > {tol:e}");
}

#[test]
fn ort_equals_tract_every_variant_and_tile() {
    if !ort_ready() {
        return;
    }
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Size(8), Tile::Auto] {
            let spec = Spec::new(64, 96, 4)
                .with_variant(variant)
                .with_tile(tile)
                .with_batch(2);
            // 3 samples: two graph runs, the last batch padded.
            ort_equals_tract(&spec, 3, 1e-5);
        }
    }
}

#[test]
fn ort_equals_tract_padded_size() {
    if !ort_ready() {
        return;
    }
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Auto] {
            let spec = Spec::new(300, 451, 4).with_variant(variant).with_tile(tile);
            ort_equals_tract(&spec, 1, 1e-5);
        }
    }
}

#[test]
fn ort_equals_tract_serialized() {
    if !ort_ready() {
        return;
    }
    for variant in [Variant::Chop, Variant::Triangle] {
        let spec = Spec::new(128, 64, 3)
            .with_variant(variant)
            .with_serialize(2)
            .with_batch(2);
        ort_equals_tract(&spec, 2, 1e-5);
    }
}

#[test]
fn ort_equals_tract_f16() {
    if !ort_ready() {
        return;
    }
    for variant in [Variant::Chop, Variant::Triangle] {
        for tile in [Tile::Full, Tile::Auto] {
            let spec = Spec::new(64, 64, 4)
                .with_variant(variant)
                .with_tile(tile)
                .with_dtype(Dtype::F16);
            ort_equals_tract(&spec, 2, 3e-3);
        }
    }
}

#[test]
fn ort_single_thread_and_reuse() {
    if !ort_ready() {
        return;
    }
    let spec = Spec::new(64, 64, 4).with_batch(2);
    let opts = EngineOptions::default()
        .with_kind(EngineKind::Ort)
        .with_threads(1);
    let mut codec = Codec::new(&spec, &opts).unwrap();
    let x = image(2, 3, 64, 64, 3);
    let first = codec.compress(x.view()).unwrap();
    for _ in 0..3 {
        assert_eq!(
            codec.compress(x.view()).unwrap(),
            first,
            "same session, same result"
        );
    }
}

/// The ort engine runs a tiled graph without its trailing output Reshape (ONNX Runtime would copy
/// the whole output there) and hands back the declared shape, on both the plain and the timed
/// (IO-binding) path.
#[test]
fn ort_elides_the_output_reshape_and_keeps_the_declared_shape() {
    if !ort_ready() {
        return;
    }
    let spec = Spec::new(48, 64, 4).with_tile(Tile::Size(16)).with_batch(2);
    let plan = dctchop::Plan::new(&spec).unwrap();
    let ort = EngineOptions::default().with_kind(EngineKind::Ort);
    for d in [dctchop::Direction::Compress, dctchop::Direction::Decompress] {
        let bytes = plan.model(d, 13).unwrap().encode().unwrap();
        let elided = dctchop::engine::rewrite::elide_output_reshape(&bytes)
            .expect("tiled graphs end in a Reshape");
        let mut r = dctchop::engine::compile_bytes(&bytes, Dtype::F32, &ort).unwrap();
        let mut t =
            dctchop::engine::compile_bytes(&bytes, Dtype::F32, &EngineOptions::default()).unwrap();
        assert_eq!(r.output_shape(), &elided.declared[..], "{d:?}");
        assert_eq!(r.output_shape(), t.output_shape(), "{d:?}");
        let x = image(1, 1, 1, r.input_shape().iter().product(), 5)
            .into_shape_with_order(r.input_shape().to_vec())
            .unwrap();
        let yr = r.run(x.view()).unwrap();
        let yt = t.run(x.view()).unwrap();
        assert!(rel_err(&yr, &yt) <= 1e-5, "{d:?}");
        assert_eq!(r.time_runs(x.view(), 2).unwrap().len(), 2);
    }
}

#[test]
fn ort_cuda_on_a_cpu_only_library_is_an_error() {
    if !ort_ready() {
        return;
    }
    let (path, _) = dctchop::engine::ort_library().unwrap();
    let opts = EngineOptions::default()
        .with_kind(EngineKind::Ort)
        .with_device(Device::Cuda(0));
    match Codec::new(&Spec::new(16, 16, 4), &opts) {
        // A GPU build of ONNX Runtime on a machine with a GPU: nothing to check here.
        Ok(_) => eprintln!("{}: has a working CUDA provider", path.display()),
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.contains("CUDA") && m.contains("cuda:0") && m.contains("--device cpu"),
                "{m}"
            );
        }
    }
}

#[test]
fn other_engines_refuse_cuda() {
    for kind in [EngineKind::Tract, EngineKind::Reference] {
        let opts = EngineOptions::default()
            .with_kind(kind)
            .with_device(Device::Cuda(1));
        let e = Codec::new(&Spec::new(16, 16, 4), &opts)
            .err()
            .expect("error");
        let m = e.to_string();
        assert!(m.contains("CPU only") && m.contains("cuda:1"), "{m}");
    }
}

#[test]
fn device_and_engine_parse() {
    assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
    assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
    assert_eq!("CUDA:3".parse::<Device>().unwrap(), Device::Cuda(3));
    assert!("cuda:x"
        .parse::<Device>()
        .unwrap_err()
        .contains("cpu, cuda, cuda:N"));
    assert_eq!("ort".parse::<EngineKind>().unwrap(), EngineKind::Ort);
    assert_eq!(EngineKind::Ort.to_string(), "ort");
}

#[cfg(not(feature = "ort"))]
#[test]
fn without_the_feature_ort_is_a_clear_error() {
    let opts = EngineOptions::default().with_kind(EngineKind::Ort);
    let e = Codec::new(&Spec::new(16, 16, 4), &opts)
        .err()
        .expect("error");
    assert!(e.to_string().contains("without the 'ort' feature"), "{e}");
}
