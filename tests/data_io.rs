//! Data in, data out: inputs (.npy of every dtype/order/rank, images), the safetensors
//! container (read back with the `safetensors` crate, sharding, checksum), the batch loader, and
//! a table of bad inputs through the CLI (one-line error naming the file, nothing written,
//! input unmodified).

use crate::common;
use common::dctchop;
use ndarray::{Array4, ArrayD, IxDyn};
use std::path::{Path, PathBuf};

use dctchop::container::{self, Store};
use dctchop::pipeline::{self, CompressOptions};
use dctchop::{input, Codec, EngineOptions, Spec};

fn tmpdir(tag: &str) -> PathBuf {
    common::fresh_dir("dataio", tag)
}

fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
    fortran: bool,
) {
    use npyz::WriterBuilder;
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut bytes = Vec::new();
    let order = if fortran {
        npyz::Order::Fortran
    } else {
        npyz::Order::C
    };
    // `data` is in C order; a Fortran file stores the transposed walk.
    let values: Vec<T> = if fortran {
        let a = ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap();
        a.t().iter().copied().collect()
    } else {
        data.to_vec()
    };
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&dims)
        .order(order)
        .writer(&mut bytes)
        .begin_nd()
        .unwrap();
    w.extend(values).unwrap();
    w.finish().unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A smooth test image in 0..255 (f64), `[n, c, h, w]`, C order.
fn smooth(n: usize, c: usize, h: usize, w: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n * c * h * w);
    for s in 0..n {
        for ch in 0..c {
            for i in 0..h {
                for j in 0..w {
                    let x =
                        (i as f64 * 0.11 + s as f64).sin() * (j as f64 * 0.07 + ch as f64).cos();
                    v.push(127.5 + 120.0 * x);
                }
            }
        }
    }
    v
}

fn read_all(ds: &input::Dataset) -> Array4<f32> {
    let mut r = ds.reader().unwrap();
    let mut parts = Vec::new();
    while let Some(b) = r.next_batch(2).unwrap() {
        parts.push(b);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(ndarray::Axis(0), &views).unwrap()
}

/// Every batch of `Reader::next_pixels_with_range` (2 samples at a time) as f32, the variant the
/// batches came as, and their merged range.
fn read_all_pixels(ds: &input::Dataset) -> (Array4<f32>, &'static str, input::Range) {
    use dctchop::pixels::Pixels;
    let mut r = ds.reader().unwrap();
    let (mut parts, mut kinds) = (Vec::new(), Vec::new());
    let mut range = input::Range::EMPTY;
    while let Some((b, batch_range)) = r.next_pixels_with_range(2).unwrap() {
        kinds.push(match &b {
            Pixels::F32(_) => "F32",
            Pixels::U8(_) => "U8",
            Pixels::U16(_) => "U16",
            Pixels::I16(_) => "I16",
        });
        range = range.merge(batch_range);
        parts.push(b.clone().into_f32());
        r.recycle_pixels(b);
    }
    kinds.dedup();
    assert_eq!(kinds.len(), 1, "one kind for every batch: {kinds:?}");
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let all = ndarray::concatenate(ndarray::Axis(0), &views).unwrap();
    (all, kinds[0], range)
}

#[test]
fn npy_every_dtype_order_and_rank_reads_as_f32() {
    let dir = tmpdir("npy");
    let shapes: [&[usize]; 3] = [&[5, 7], &[2, 5, 7], &[3, 2, 5, 7]];
    for shape in shapes {
        let n: usize = shape.iter().product();
        let base = smooth(1, 1, 1, n); // 7.5..247.5
        let as4 = match shape.len() {
            2 => [1, 1, shape[0], shape[1]],
            3 => [1, shape[0], shape[1], shape[2]],
            _ => [shape[0], shape[1], shape[2], shape[3]],
        };
        for fortran in [false, true] {
            let cases: Vec<(&str, Vec<f32>)> = {
                let p = |t: &str| dir.join(format!("{t}-{}-{fortran}.npy", shape.len()));
                let mut v = Vec::new();
                let d: Vec<u8> = base.iter().map(|&x| x as u8).collect();
                write_npy(&p("u8"), shape, &d, fortran);
                v.push(("uint8", d.iter().map(|&x| x as f32).collect()));
                let d: Vec<u16> = base.iter().map(|&x| (x * 250.0) as u16).collect();
                write_npy(&p("u16"), shape, &d, fortran);
                v.push(("uint16", d.iter().map(|&x| x as f32).collect()));
                let d: Vec<i16> = base.iter().map(|&x| (x * 100.0 - 12000.0) as i16).collect();
                write_npy(&p("i16"), shape, &d, fortran);
                v.push(("int16", d.iter().map(|&x| x as f32).collect()));
                let d: Vec<i32> = base.iter().map(|&x| (x * 1000.0) as i32 - 70000).collect();
                write_npy(&p("i32"), shape, &d, fortran);
                v.push(("int32", d.iter().map(|&x| x as f32).collect()));
                let d: Vec<half::f16> = base.iter().map(|&x| half::f16::from_f64(x)).collect();
                write_npy(&p("f16"), shape, &d, fortran);
                v.push(("float16", d.iter().map(|&x| x.to_f32()).collect()));
                let d: Vec<f32> = base.iter().map(|&x| x as f32 / 3.0).collect();
                write_npy(&p("f32"), shape, &d, fortran);
                v.push(("float32", d.clone()));
                let d: Vec<f64> = base.iter().map(|&x| x / 7.0).collect();
                write_npy(&p("f64"), shape, &d, fortran);
                v.push(("float64", d.iter().map(|&x| x as f32).collect()));
                v
            };
            let files = ["u8", "u16", "i16", "i32", "f16", "f32", "f64"];
            for ((dtype, want), f) in cases.into_iter().zip(files) {
                let path = dir.join(format!("{f}-{}-{fortran}.npy", shape.len()));
                let ds = input::open(std::slice::from_ref(&path)).unwrap();
                assert_eq!(ds.dtype.numpy_name(), dtype, "{}", path.display());
                assert_eq!(ds.shape(), as4, "{}", path.display());
                let got = read_all(&ds);
                let want = Array4::from_shape_vec(as4, want).unwrap();
                assert_eq!(got, want, "{}", path.display());
                // As Pixels: the same values, in their own type where the reader keeps it.
                let (got, kind, range) = read_all_pixels(&ds);
                assert_eq!(got, want, "{}", path.display());
                let kept = match (f, fortran) {
                    ("u8", false) => "U8",
                    ("u16", false) => "U16",
                    ("i16", false) => "I16",
                    _ => "F32",
                };
                assert_eq!(kind, kept, "{}", path.display());
                let lo = want.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = want.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert_eq!((range.lo, range.hi, range.finite), (lo, hi, true));
            }
        }
    }
}

/// Big-endian `.npy` files (`>u2`, `>i2`, `>f4`, `>f8`) read as their values; the reader
/// converts them to f32 rather than handing over integers in the wrong byte order.
#[test]
fn npy_big_endian_reads_as_its_values() {
    let dir = tmpdir("npy-be");
    let shape = [3usize, 2, 5, 7];
    let n: usize = shape.iter().product();
    let base = smooth(1, 1, 1, n);
    let file = |descr: &str, data: Vec<u8>| {
        let mut h =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3, 2, 5, 7), }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((h.len() as u16).to_le_bytes());
        bytes.extend(h.as_bytes());
        bytes.extend(data);
        let path = dir.join(format!("{}.npy", descr.replace('>', "be-")));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let u16s: Vec<u16> = base.iter().map(|&x| (x * 250.0) as u16).collect();
    let i16s: Vec<i16> = base.iter().map(|&x| (x * 100.0 - 12000.0) as i16).collect();
    let f32s: Vec<f32> = base.iter().map(|&x| x as f32 / 3.0).collect();
    let f64s: Vec<f64> = base.iter().map(|&x| x / 7.0).collect();
    let cases = [
        (
            file(">u2", u16s.iter().flat_map(|v| v.to_be_bytes()).collect()),
            u16s.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
        ),
        (
            file(">i2", i16s.iter().flat_map(|v| v.to_be_bytes()).collect()),
            i16s.iter().map(|&v| v as f32).collect(),
        ),
        (
            file(">f4", f32s.iter().flat_map(|v| v.to_be_bytes()).collect()),
            f32s.clone(),
        ),
        (
            file(">f8", f64s.iter().flat_map(|v| v.to_be_bytes()).collect()),
            f64s.iter().map(|&v| v as f32).collect(),
        ),
    ];
    for (path, want) in cases {
        let ds = input::open(std::slice::from_ref(&path)).unwrap();
        let want = Array4::from_shape_vec(shape, want).unwrap();
        assert_eq!(read_all(&ds), want, "{}", path.display());
        let (got, kind, _) = read_all_pixels(&ds);
        assert_eq!((got, kind), (want, "F32"), "{}", path.display());
    }
}

#[test]
fn images_keep_original_units_and_channels() {
    let dir = tmpdir("img");
    let (w, h) = (13u32, 9u32);
    let px = |x: u32, y: u32, c: u32| (x * 17 + y * 5 + c * 60) % 256;
    let g8 = image::GrayImage::from_fn(w, h, |x, y| image::Luma([px(x, y, 0) as u8]));
    g8.save(dir.join("g8.png")).unwrap();
    let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([0, 1, 2, 3].map(|c| px(x, y, c) as u8))
    });
    rgba.save(dir.join("rgba.png")).unwrap();
    let rgb16: image::ImageBuffer<image::Rgb<u16>, Vec<u16>> =
        image::ImageBuffer::from_fn(w, h, |x, y| {
            image::Rgb([0, 1, 2].map(|c| (px(x, y, c) * 257) as u16))
        });
    rgb16.save(dir.join("rgb16.png")).unwrap();
    rgb16.save(dir.join("rgb16.tif")).unwrap();
    let rgb8 = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([0, 1, 2].map(|c| px(x, y, c) as u8))
    });
    rgb8.save(dir.join("rgb8.jpg")).unwrap();
    for (file, c, dtype, scale) in [
        ("g8.png", 1, "uint8", 1),
        ("rgba.png", 4, "uint8", 1),
        ("rgb16.png", 3, "uint16", 257),
        ("rgb16.tif", 3, "uint16", 257),
    ] {
        let ds = input::open(&[dir.join(file)]).unwrap();
        assert_eq!((ds.channels, ds.dtype.numpy_name()), (c, dtype), "{file}");
        assert_eq!(ds.shape(), [1, c, h as usize, w as usize]);
        let a = read_all(&ds);
        for ((_, ch, y, x), v) in a.indexed_iter() {
            assert_eq!(
                *v,
                (px(x as u32, y as u32, ch as u32) * scale) as f32,
                "{file}"
            );
        }
    }
    let ds = input::open(&[dir.join("rgb8.jpg")]).unwrap();
    assert_eq!((ds.channels, ds.dtype.numpy_name()), (3, "uint8"));
    // A directory of same-size images is one dataset, in file-name order.
    let d2 = dir.join("set");
    std::fs::create_dir_all(&d2).unwrap();
    for i in 0..3 {
        rgb8.save(d2.join(format!("{i}.png"))).unwrap();
    }
    std::fs::write(d2.join("notes.txt"), "ignored").unwrap();
    let ds = input::open(&[d2]).unwrap();
    assert_eq!(ds.shape(), [3, 3, h as usize, w as usize]);
}

/// `compress` of uint8, uint16 and int16 `.npy` files with the default (quantized) options, which
/// hand the native engine the samples in their own type: the container decompresses to what the
/// codec gives for the same values as f32, and the reported PSNR and max error are those
/// recomputed here from the decompressed data (several batches after the probe, a mixed-channel
/// choice possible, odd sizes).
#[test]
fn integer_npy_compress_equals_the_codec_on_f32_values() {
    let dir = tmpdir("int-npy");
    let (n, c, h, w) = (9, 3, 37, 45);
    let base = smooth(n, c, h, w);
    let u8s: Vec<u8> = base.iter().map(|&x| x.round() as u8).collect();
    let u16s: Vec<u16> = base.iter().map(|&x| (x * 250.0) as u16).collect();
    let i16s: Vec<i16> = base.iter().map(|&x| (x * 100.0 - 12000.0) as i16).collect();
    write_npy(&dir.join("u8.npy"), &[n, c, h, w], &u8s, false);
    write_npy(&dir.join("u16.npy"), &[n, c, h, w], &u16s, false);
    write_npy(&dir.join("i16.npy"), &[n, c, h, w], &i16s, false);
    let cases = [
        ("u8", u8s.iter().map(|&v| v as f32).collect::<Vec<f32>>()),
        ("u16", u16s.iter().map(|&v| v as f32).collect()),
        ("i16", i16s.iter().map(|&v| v as f32).collect()),
    ];
    for (name, values) in cases {
        let x = Array4::from_shape_vec((n, c, h, w), values).unwrap();
        let src = dir.join(format!("{name}.npy"));
        let stem = dir.join(name);
        let o = CompressOptions {
            batch: 2,
            ..CompressOptions::default()
        };
        let rep =
            pipeline::compress(std::slice::from_ref(&src), &stem, &o, &mut |_, _| {}).unwrap();
        assert!(rep.quant.is_some(), "{name}: quantized by default");
        let cont = container::open(&stem).unwrap();
        let spec = cont.header.spec.clone();
        let mut codec = Codec::new(&spec, &EngineOptions::native()).unwrap();
        let (codes, clamped) = codec.compress_codes(x.view()).unwrap();
        let want = codec.decompress_codes(codes.view()).unwrap();
        let mut got = Vec::new();
        for b in cont.loader(4, &EngineOptions::native()).unwrap() {
            got.extend(b.unwrap().iter().copied());
        }
        assert_eq!(got, want.iter().copied().collect::<Vec<_>>(), "{name}");
        assert_eq!(
            rep.quant.as_ref().unwrap().clamped,
            clamped as u64,
            "{name}"
        );
        let back = want.clone().into_dyn();
        common::assert_reported_psnr(rep.psnr_db, &x, &back);
        let worst = x
            .iter()
            .zip(want.iter())
            .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()));
        assert!(
            (rep.max_error - worst).abs() <= worst * f32::EPSILON as f64,
            "{name}: {} vs {worst}",
            rep.max_error
        );
        assert_eq!((rep.value_min, rep.value_max), {
            let lo = x.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            let hi = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            (lo, hi)
        });
    }
}

/// Float coefficients (container v1): these tests size shards by coefficient bytes.
fn opts(cf: usize, batch: usize) -> CompressOptions {
    CompressOptions {
        cf,
        batch,
        quant: pipeline::QuantChoice::None,
        ..CompressOptions::default()
    }
}

#[test]
fn container_round_trip_shards_loader_and_independent_psnr() {
    let dir = tmpdir("container");
    let (n, c, h, w) = (10, 3, 20, 27); // not multiples of 8
    let data: Vec<f32> = smooth(n, c, h, w).iter().map(|&v| v as f32).collect();
    let src = dir.join("x.npy");
    write_npy(&src, &[n, c, h, w], &data, false);
    let x = Array4::from_shape_vec((n, c, h, w), data).unwrap();
    let stem = dir.join("out");
    let spec = Spec::new(h, w, 4).with_channels(c).with_batch(4);
    let per = spec.compressed_shape()[1..].iter().product::<usize>() * 4;
    let mut o = opts(4, 4);
    o.shard_bytes = (container::HEADER_RESERVE + 3 * per) as u64; // 3 samples per shard
    let rep = pipeline::compress(std::slice::from_ref(&src), &stem, &o, &mut |_, _| {}).unwrap();
    assert_eq!(rep.shards.len(), 4);
    // Deterministic: the same input and options give byte-identical shards.
    let again = pipeline::compress(
        std::slice::from_ref(&src),
        &dir.join("again"),
        &o,
        &mut |_, _| {},
    )
    .unwrap();
    for (p, q) in rep.shards.iter().zip(&again.shards) {
        assert!(
            std::fs::read(p).unwrap() == std::fs::read(q).unwrap(),
            "{}",
            p.display()
        );
    }
    assert!(container::graph_path(&stem).is_file());

    // Every shard is a plain safetensors file with the documented metadata.
    let mut all = Vec::new();
    for (i, p) in rep.shards.iter().enumerate() {
        let bytes = std::fs::read(p).unwrap();
        assert!(
            bytes.len() as u64 <= o.shard_bytes,
            "shard {i} over the bound"
        );
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let m = meta.metadata().clone().unwrap();
        assert_eq!(m["format"], "dctchop-container");
        assert_eq!(m["original_dtype"], "float32");
        assert_eq!(m["original_shape"], "[10,3,20,27]");
        assert_eq!(m["shard_index"], i.to_string());
        assert_eq!(m["layout"], "chop-blockgrid-v1");
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor("coefficients").unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32);
        assert_eq!(
            m["checksum"],
            format!("crc32:{:08x}", crc32fast::hash(t.data()))
        );
        all.extend(
            t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
        );
    }
    // The stored coefficients are the codec's (the default engine, as compress used).
    let mut codec = Codec::new(&spec, &EngineOptions::auto()).unwrap();
    let y = codec.compress(x.view()).unwrap();
    assert_eq!(all, y.iter().copied().collect::<Vec<_>>());

    // The loader spans shards with batches of 4 and equals the codec's decompression.
    let cont = container::open(&rep.shards[2]).unwrap();
    assert_eq!(cont.len(), n);
    let want = codec.decompress(y.view()).unwrap();
    let mut got = Vec::new();
    for b in cont.loader(4, &EngineOptions::tract()).unwrap() {
        let b = b.unwrap();
        assert!(b.shape()[0] <= 4);
        got.extend(b.iter().copied());
    }
    assert_eq!(got, want.iter().copied().collect::<Vec<_>>());

    // PSNR recomputed here from the decompressed .npy, peak = data range.
    let back = common::decompress_to_npy(&stem, &dir);
    common::assert_reported_psnr(rep.psnr_db, &x, &back);
}

#[test]
fn f16_store_and_png_output_in_original_units() {
    let dir = tmpdir("png");
    let (h, w) = (19u32, 21u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 11) as u8, (y * 13) as u8, 128])
    });
    let src = dir.join("a.png");
    img.save(&src).unwrap();
    let mut o = opts(8, 1); // CF = block: near-lossless
    o.store = Store::F16;
    o.variant = dctchop::Variant::Triangle;
    o.cf = 8;
    let rep = pipeline::compress(
        std::slice::from_ref(&src),
        &dir.join("c"),
        &o,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(rep.original_dtype.numpy_name(), "uint8");
    assert_eq!(
        rep.stored_ratio,
        (19 * 21 * 3) as f64 / rep.payload_bytes as f64
    );
    let out = dir.join("b.png");
    pipeline::decompress(
        &dir.join("c"),
        &out,
        &EngineOptions::tract(),
        1,
        false,
        &mut |_, _| {},
    )
    .unwrap();
    let back = image::open(&out).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), (w, h));
    let maxdiff = img
        .as_raw()
        .iter()
        .zip(back.as_raw())
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap();
    // Triangle CF 8 drops the high-frequency half of each block: small, bounded error.
    assert!(maxdiff <= 40, "{maxdiff}");
    // A directory output: one PNG per sample.
    let d = dir.join("pngs");
    pipeline::decompress(
        &dir.join("c"),
        &d,
        &EngineOptions::tract(),
        1,
        false,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(d.join("00000.png").is_file());
}

/// (name, files to create in the input dir, CLI args, text the error must contain)
type Case = (&'static str, Vec<String>, &'static str);

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            let b = if p.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                vec![]
            };
            (p, b)
        })
        .collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// `shard` (a safetensors file) with one `__metadata__` field set to `value`: the header is
/// rewritten and padded to 8 bytes, the payload kept (its CRC stays valid).
fn with_metadata(shard: &[u8], key: &str, value: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(shard[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&shard[8..8 + n]).unwrap();
    header["__metadata__"][key] = value.into();
    let mut hb = serde_json::to_vec(&header).unwrap();
    while !hb.len().is_multiple_of(8) {
        hb.push(b' ');
    }
    let mut out = (hb.len() as u64).to_le_bytes().to_vec();
    out.extend(&hb);
    out.extend(&shard[8 + n..]);
    out
}

#[test]
fn bad_inputs_fail_cleanly_naming_file_and_problem() {
    let dir = tmpdir("bad");
    let inp = dir.join("in");
    let out = dir.join("out");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Inputs.
    std::fs::write(inp.join("data.txt"), "hello").unwrap();
    std::fs::write(inp.join("garbage.npy"), "not an npy").unwrap();
    std::fs::write(inp.join("fake.png"), "not a png either").unwrap();
    write_npy(&inp.join("i64.npy"), &[4, 4], &[1i64; 16], false);
    write_npy(&inp.join("u32.npy"), &[4, 4], &[1u32; 16], false);
    write_npy(&inp.join("vec.npy"), &[16], &[1f32; 16], false);
    let mut nan = vec![1f32; 2 * 16 * 16];
    // All in sample 1: with --batch 1, sample 0 is compressed and written before the error.
    nan[260] = f32::NAN;
    nan[300] = f32::INFINITY;
    nan[400] = f32::NAN;
    write_npy(&inp.join("nan.npy"), &[2, 1, 16, 16], &nan, false);
    write_npy(
        &inp.join("big.npy"),
        &[1, 1, 1024, 1024],
        &vec![7u8; 1 << 20],
        false,
    );
    write_npy(
        &inp.join("ok.npy"),
        &[2, 3, 16, 16],
        &vec![3f32; 2 * 3 * 256],
        false,
    );
    let full = std::fs::read(inp.join("ok.npy")).unwrap();
    std::fs::write(inp.join("short.npy"), &full[..full.len() - 100]).unwrap();
    std::fs::create_dir_all(inp.join("empty")).unwrap();
    let mixed = inp.join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    image::RgbImage::new(8, 8)
        .save(mixed.join("a.png"))
        .unwrap();
    image::RgbImage::new(9, 8)
        .save(mixed.join("b.png"))
        .unwrap();

    // Containers: a good one, then damaged copies.
    let good = inp.join("good");
    let o = dctchop(&[
        "compress",
        &s(&inp.join("ok.npy")),
        "-o",
        &s(&good),
        "--quant",
        "none",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shard = std::fs::read(container::shard_path(&good, 0)).unwrap();
    std::fs::write(
        inp.join("trunc.00000.safetensors"),
        &shard[..shard.len() - 10],
    )
    .unwrap();
    let mut flipped = shard.clone();
    let last = flipped.len() - 5;
    flipped[last] ^= 0x40;
    std::fs::write(inp.join("flip.00000.safetensors"), &flipped).unwrap();
    // Quantized containers (v2, channels as they are): zstd chunks and raw i8 codes, then
    // damaged copies.
    let goodq = inp.join("goodq");
    let rawq = inp.join("rawq");
    for (stem, extra) in [
        (&goodq, vec!["--mix", "none"]),
        (
            &rawq,
            vec!["--mix", "none", "--entropy", "none", "--code", "i8"],
        ),
    ] {
        let (ok, st) = (s(&inp.join("ok.npy")), s(stem));
        let mut args = vec!["compress", &ok, "-o", &st, "--quiet"];
        args.extend(extra);
        let o = dctchop(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let shardq = std::fs::read(container::shard_path(&goodq, 0)).unwrap();
    let mut zflip = shardq.clone();
    let mid = zflip.len() - 12;
    zflip[mid] ^= 0x21;
    std::fs::write(inp.join("zflip.00000.safetensors"), &zflip).unwrap();
    let mut raw = std::fs::read(container::shard_path(&rawq, 0)).unwrap();
    let last = raw.len() - 1;
    raw[last] = 0x80; // i8::MIN: never written
    std::fs::write(inp.join("range.00000.safetensors"), &raw).unwrap();
    std::fs::write(
        inp.join("step.00000.safetensors"),
        with_metadata(&shardq, "quant_step", "0.5"),
    )
    .unwrap();
    // The channel transform and the format version must agree (version 3 = mixed channels).
    let mixq = inp.join("mixq");
    let o = dctchop(&[
        "compress",
        &s(&inp.join("ok.npy")),
        "-o",
        &s(&mixq),
        "--mix",
        "opponent",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shardm = std::fs::read(container::shard_path(&mixq, 0)).unwrap();
    for (name, from, version) in [("v3plain", &shardq, "3"), ("v2mixed", &shardm, "2")] {
        let bytes = with_metadata(from, "format_version", version);
        std::fs::write(inp.join(format!("{name}.00000.safetensors")), bytes).unwrap();
    }
    // Metadata that contradicts the spec: original_shape with 5 channels.
    std::fs::write(
        inp.join("meta.00000.safetensors"),
        with_metadata(&shard, "original_shape", "[2,5,16,16]"),
    )
    .unwrap();
    // An existing output.
    std::fs::write(out.join("taken.npy"), "keep me").unwrap();
    // A FIFO would block a reader forever.
    let fifo = inp.join("fifo.npy");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let i = |f: &str| s(&inp.join(f));
    let dst = s(&out.join("c"));
    let cases: Vec<Case> = vec![
        (
            "fifo input",
            vec!["compress".into(), i("fifo.npy"), "-o".into(), dst.clone()],
            "not a regular file",
        ),
        (
            "output stem is a directory",
            vec![
                "compress".into(),
                i("ok.npy"),
                "-o".into(),
                format!("{}/", s(&out)),
            ],
            "is a directory",
        ),
        (
            "unknown format",
            vec!["compress".into(), i("data.txt"), "-o".into(), dst.clone()],
            "unknown format",
        ),
        (
            "not an image",
            vec!["compress".into(), i("fake.png"), "-o".into(), dst.clone()],
            "cannot read as an image",
        ),
        (
            "not an npy",
            vec![
                "compress".into(),
                i("garbage.npy"),
                "-o".into(),
                dst.clone(),
            ],
            "not a valid .npy",
        ),
        (
            "int64 npy",
            vec!["compress".into(), i("i64.npy"), "-o".into(), dst.clone()],
            "<i8 is not supported",
        ),
        (
            "uint32 npy",
            vec!["compress".into(), i("u32.npy"), "-o".into(), dst.clone()],
            "<u4 is not supported",
        ),
        (
            "1-d npy",
            vec!["compress".into(), i("vec.npy"), "-o".into(), dst.clone()],
            "(H, W), (C, H, W)",
        ),
        (
            "nan",
            vec![
                "compress".into(),
                i("nan.npy"),
                "-o".into(),
                dst.clone(),
                "--batch".into(),
                "1".into(),
            ],
            "contains 3 non-finite values",
        ),
        (
            "truncated npy",
            vec!["compress".into(), i("short.npy"), "-o".into(), dst.clone()],
            "truncated",
        ),
        (
            "memory cap",
            vec![
                "compress".into(),
                i("big.npy"),
                "-o".into(),
                dst.clone(),
                "--max-memory-mb".into(),
                "1".into(),
            ],
            "memory cap",
        ),
        (
            "empty dir",
            vec!["compress".into(), i("empty"), "-o".into(), dst.clone()],
            "contains no images",
        ),
        (
            "mixed sizes",
            vec!["compress".into(), i("mixed"), "-o".into(), dst.clone()],
            "9x8 3-channel uint8 but",
        ),
        (
            "bad cf",
            vec![
                "compress".into(),
                i("ok.npy"),
                "-o".into(),
                dst.clone(),
                "--cf".into(),
                "9".into(),
            ],
            "cf = 9",
        ),
        (
            "nan into a new directory",
            vec![
                "compress".into(),
                i("nan.npy"),
                "-o".into(),
                s(&out.join("newdir/c")),
                "--batch".into(),
                "1".into(),
            ],
            "non-finite",
        ),
        (
            "npy into a missing directory",
            vec![
                "decompress".into(),
                s(&good),
                "-o".into(),
                s(&out.join("nodir/x.npy")),
            ],
            "does not exist",
        ),
        (
            "truncated container",
            vec![
                "decompress".into(),
                i("trunc.00000.safetensors"),
                "-o".into(),
                s(&out.join("t.npy")),
            ],
            "truncated",
        ),
        (
            "flipped byte",
            vec![
                "decompress".into(),
                i("flip.00000.safetensors"),
                "-o".into(),
                s(&out.join("f.npy")),
            ],
            "checksum mismatch",
        ),
        (
            "damaged zstd frame",
            vec![
                "decompress".into(),
                i("zflip.00000.safetensors"),
                "-o".into(),
                s(&out.join("q.npy")),
            ],
            "damaged zstd frame",
        ),
        (
            "code out of range",
            vec![
                "decompress".into(),
                i("range.00000.safetensors"),
                "-o".into(),
                s(&out.join("q.npy")),
            ],
            "out of range",
        ),
        (
            "step vs spec",
            vec![
                "decompress".into(),
                i("step.00000.safetensors"),
                "-o".into(),
                s(&out.join("q.npy")),
            ],
            "quant_step",
        ),
        (
            "format version 3 without a channel transform",
            vec![
                "decompress".into(),
                i("v3plain.00000.safetensors"),
                "-o".into(),
                s(&out.join("q.npy")),
            ],
            "format_version 3 but the spec's channel transform is none",
        ),
        (
            "format version 2 with a channel transform",
            vec![
                "decompress".into(),
                i("v2mixed.00000.safetensors"),
                "-o".into(),
                s(&out.join("q.npy")),
            ],
            "format_version 2 but the spec's channel transform is opponent",
        ),
        (
            "channel transform for 3 channels on 1",
            vec![
                "compress".into(),
                i("big.npy"),
                "-o".into(),
                s(&out.join("q")),
                "--mix".into(),
                "opponent".into(),
            ],
            "the opponent transform needs 3 channels",
        ),
        (
            "--dtype original for PNG output",
            vec![
                "decompress".into(),
                s(&goodq),
                "-o".into(),
                s(&out.join("x.png")),
                "--dtype".into(),
                "original".into(),
            ],
            "the dtype 'original' applies to .npy output",
        ),
        (
            "unreachable target",
            vec![
                "compress".into(),
                i("ok.npy"),
                "-o".into(),
                s(&out.join("q")),
                "--target-psnr".into(),
                "400".into(),
            ],
            "the closest is",
        ),
        (
            "inspect checks the checksum",
            vec!["inspect".into(), i("flip.00000.safetensors")],
            "checksum mismatch",
        ),
        (
            "inspect checks zstd frames",
            vec!["inspect".into(), i("zflip.00000.safetensors")],
            "damaged zstd frame",
        ),
        (
            "metadata vs spec",
            vec![
                "decompress".into(),
                i("meta.00000.safetensors"),
                "-o".into(),
                s(&out.join("m.npy")),
            ],
            "metadata/spec mismatch",
        ),
        (
            "missing container",
            vec![
                "decompress".into(),
                i("nothere"),
                "-o".into(),
                s(&out.join("n.npy")),
            ],
            "not found",
        ),
        (
            "existing output",
            vec![
                "decompress".into(),
                s(&good),
                "-o".into(),
                s(&out.join("taken.npy")),
            ],
            "already exists",
        ),
        (
            "existing container",
            vec!["compress".into(), i("ok.npy"), "-o".into(), s(&good)],
            "already exists",
        ),
        (
            "png of floats",
            vec![
                "decompress".into(),
                s(&good),
                "-o".into(),
                s(&out.join("x.png")),
            ],
            "uint8 or uint16",
        ),
    ];
    for (name, args, needle) in cases {
        let before_in = snapshot(&inp);
        let before_out = snapshot(&out);
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        let o = dctchop(&args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        println!("{name}: {}", err.trim_end());
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: not one line: {err}"
        );
        assert!(err.contains(needle), "{name}: wanted '{needle}' in: {err}");
        // The message names the file at fault (an input, or the output for clobbering).
        let named = args
            .iter()
            .skip(1)
            .any(|a| a.contains('/') && err.contains(*a))
            || err.contains(&inp.display().to_string());
        assert!(named, "{name}: no file named in: {err}");
        assert!(snapshot(&inp) == before_in, "{name}: input changed");
        assert!(snapshot(&out) == before_out, "{name}: output left behind");
    }
}

#[test]
fn cli_compress_decompress_inspect_on_a_sample_image() {
    let img = common::sample_images().join("chelsea.png");
    let dir = tmpdir("cli");
    let stem = dir.join("chelsea");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = dctchop(&[
        "compress",
        &s(&img),
        "-o",
        &s(&stem),
        "--cf",
        "4",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["original_shape"], serde_json::json!([1, 3, 300, 451]));
    assert_eq!(rep["original_dtype"], "uint8");
    let psnr = rep["psnr_db"].as_f64().unwrap();
    assert!((25.0..45.0).contains(&psnr), "{psnr}");
    let o = dctchop(&["inspect", &s(&container::shard_path(&stem, 0)), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(meta["metadata"]["format"], "dctchop-container");
    assert_eq!(meta["metadata"]["layout"], "chop-blockgrid-v1");
    // Decompress to a directory of PNGs; recompute the PSNR from the 8-bit output: rounding to
    // integers moves it by a little only.
    let out = dir.join("pngs");
    let o = dctchop(&["decompress", &s(&stem), "-o", &s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = image::open(&img).unwrap().to_rgb8();
    let b = image::open(out.join("00000.png")).unwrap().to_rgb8();
    let (lo, hi) = a
        .as_raw()
        .iter()
        .fold((255u8, 0u8), |(l, h), &v| (l.min(v), h.max(v)));
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    let png_psnr = 10.0 * ((hi as f64 - lo as f64).powi(2) / mse).log10();
    assert!((png_psnr - psnr).abs() < 0.3, "{png_psnr} vs {psnr}");
    // Again without --force: refused, nothing changed.
    let o = dctchop(&["decompress", &s(&stem), "-o", &s(&out)]);
    assert_eq!(o.status.code(), Some(1));
}

/// Whether this directory's file system takes `O_DIRECT` writes (checked here, independently of
/// the library: an aligned 4 KiB write through a descriptor opened with the flag).
fn takes_o_direct(dir: &Path) -> bool {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let p = dir.join("probe-direct");
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&p)
        .and_then(|mut f| {
            let buf = vec![7u8; 8192];
            let at = buf.as_ptr().align_offset(4096);
            f.write_all(&buf[at..at + 4096])
        })
        .is_ok();
    let _ = std::fs::remove_file(&p);
    ok
}

/// `decompress` to `.npy` with O_DIRECT (whole 4 KiB blocks from an aligned buffer, the tail
/// through the page cache) writes the same bytes as through the page cache: 12 MB over several
/// 8 MiB chunks, a size that is not a multiple of the block, batches that straddle chunks.
#[test]
fn direct_io_npy_output_equals_the_buffered_one() {
    let dir = common::fresh_dir("data_io", "direct");
    let x = common::image(11, 3, 300, 301, 9);
    let npy = dir.join("x.npy");
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    let stem = dir.join("c");
    let (npy_s, stem_s) = (npy.to_str().unwrap(), stem.to_str().unwrap());
    let o = dctchop(&["compress", npy_s, "-o", stem_s, "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut outs = Vec::new();
    for (name, min) in [
        ("direct.npy", "0"),
        ("buffered.npy", "18446744073709551615"),
    ] {
        let out = dir.join(name);
        let o = common::dctchop_env(
            &[
                "decompress",
                stem_s,
                "-o",
                out.to_str().unwrap(),
                "--batch",
                "3",
                "--json",
            ],
            &[("DCTCHOP_DIRECT_MIN_BYTES", min)],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        outs.push((
            std::fs::read(&out).unwrap(),
            r["direct_io"].as_bool().unwrap(),
        ));
    }
    let bytes = outs[0].0.len();
    assert!(bytes > 8 << 20 && bytes % 4096 != 0, "{bytes}");
    assert!(
        outs[0].0 == outs[1].0,
        "O_DIRECT and buffered outputs differ"
    );
    assert!(!outs[1].1, "the buffered run reports O_DIRECT");
    if takes_o_direct(&dir) {
        assert!(outs[0].1, "O_DIRECT works here but was not used");
    } else {
        println!(
            "NOTE: {} refuses O_DIRECT: both runs were buffered",
            dir.display()
        );
    }
    let (back, _) = dctchop::npy::read_npy_f32(&dir.join("direct.npy")).unwrap();
    assert_eq!(back.shape(), x.shape());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `decompress --dtype original` writes the compressed data's type: for uint8 (an image) and
/// uint16 (a `.npy`) the float32 decompression rounded half away from zero and clamped to the
/// type's range (computed here), for float32 the same bytes as the default.
#[test]
fn decompress_to_the_original_dtype() {
    let dir = common::fresh_dir("data_io", "orig_dtype");
    let img = common::sample_images().join("chelsea.png");
    let x16 = common::image(3, 2, 40, 56, 4).mapv(|v| (v * 300.0).clamp(0.0, 65535.0));
    let u16s: Vec<u16> = x16.iter().map(|&v| v as u16).collect();
    let p16 = dir.join("u16.npy");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p16).unwrap());
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[3, 2, 40, 56])
            .writer(&mut f)
            .begin_nd()
            .unwrap();
        w.extend(u16s.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    drop(f);
    let pf = dir.join("f32.npy");
    dctchop::npy::write_npy(
        &pf,
        common::image(2, 3, 24, 24, 6).view().into_dyn(),
        dctchop::Dtype::F32,
        true,
    )
    .unwrap();
    for (name, input, descr, max) in [
        ("u8", img, "|u1", 255.0),
        ("u16", p16, "<u2", 65535.0),
        ("f32", pf, "<f4", f64::MAX),
    ] {
        let stem = dir.join(name);
        let o = dctchop(&[
            "compress",
            input.to_str().unwrap(),
            "-o",
            stem.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (flo, orig) = (
            dir.join(format!("{name}-f.npy")),
            dir.join(format!("{name}-o.npy")),
        );
        let o = dctchop(&[
            "decompress",
            stem.to_str().unwrap(),
            "-o",
            flo.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = dctchop(&[
            "decompress",
            stem.to_str().unwrap(),
            "-o",
            orig.to_str().unwrap(),
            "--dtype",
            "original",
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(&orig).unwrap();
        assert!(
            String::from_utf8_lossy(&bytes[..128]).contains(&format!("'descr': '{descr}'")),
            "{name}"
        );
        let (f, _) = dctchop::npy::read_npy_f32(&flo).unwrap();
        if name == "f32" {
            assert_eq!(bytes, std::fs::read(&flo).unwrap());
            continue;
        }
        // The reader of `compress` decodes the integer file back to f32 (exact for these).
        let ds = dctchop::input::open(std::slice::from_ref(&orig)).unwrap();
        let got = ds.reader().unwrap().next_batch(ds.n).unwrap().unwrap();
        assert_eq!(got.shape(), f.shape());
        let mut moved = 0;
        for (&g, &v) in got.iter().zip(f.iter()) {
            let want = ((v as f64).abs() + 0.5)
                .floor()
                .copysign(v as f64)
                .clamp(0.0, max);
            assert_eq!(g as f64, want, "{name}: {v}");
            moved += usize::from(want != v as f64);
        }
        assert!(moved > 0, "{name}: nothing was rounded");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
