//! HDF5 input (feature `hdf5`): files written here with the hdf5 crate itself, read as
//! `FILE.h5:/DATASET[:LAYOUT]`, compressed and decompressed; errors for a missing dataset name,
//! a wrong rank and a bad layout.
#![cfg(feature = "hdf5")]

mod common;
use common::dctchop;
use ndarray::{Array2, Array3, Array4, Axis};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dctchop::input;
use dctchop::pipeline::{self, CompressOptions};

/// HDF5 takes an exclusive `flock` on a file open for writing, and its file descriptors are not
/// close-on-exec: a child process spawned by another test while a fixture is being written
/// inherits the descriptor and keeps the lock for its whole life, so the later read-only open
/// fails with EAGAIN. Fixture writes and spawns therefore never overlap.
static WRITE_OR_SPAWN: Mutex<()> = Mutex::new(());

/// Create `path` and fill it with `fill`; the file is closed before the lock is released.
fn write_h5(path: &Path, fill: impl FnOnce(&hdf5::File)) {
    let _g = WRITE_OR_SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let f = hdf5::File::create(path).unwrap();
    fill(&f);
    f.close().unwrap();
}

fn tmpdir(tag: &str) -> PathBuf {
    common::fresh_dir("hdf5", tag)
}

fn smooth(s: usize, i: usize, j: usize) -> f64 {
    127.5 + 120.0 * (i as f64 * 0.11 + s as f64).sin() * (j as f64 * 0.07).cos()
}

fn read_all(ds: &input::Dataset, batch: usize) -> Array4<f32> {
    let mut r = ds.reader().unwrap();
    let mut parts = Vec::new();
    while let Some(b) = r.next_batch(batch).unwrap() {
        assert!(b.shape()[0] <= batch);
        parts.push(b);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(0), &views).unwrap()
}

/// Compress `spec` with `batch`, decompress to .npy; (report, decompressed data).
fn round_trip(spec: &str, dir: &Path, batch: usize) -> (pipeline::CompressReport, Array4<f32>) {
    let stem = dir.join("out");
    let o = CompressOptions {
        cf: 4,
        batch,
        ..CompressOptions::default()
    };
    let rep = pipeline::compress(&[PathBuf::from(spec)], &stem, &o, &mut |_, _| {}).unwrap();
    let back = common::decompress_to_npy(&stem, dir);
    (rep, back.into_dimensionality().unwrap())
}

#[test]
fn f32_2d_dataset_round_trip() {
    let dir = tmpdir("f32");
    let file = dir.join("one.h5");
    let (h, w) = (20, 27);
    let x = Array2::from_shape_fn((h, w), |(i, j)| smooth(0, i, j) as f32);
    write_h5(&file, |f| {
        f.new_dataset_builder()
            .with_data(&x)
            .create("image")
            .unwrap();
    });
    // The only dataset: the name may be omitted.
    for spec in [
        format!("{}:/image", file.display()),
        file.display().to_string(),
    ] {
        let ds = input::open(&[PathBuf::from(&spec)]).unwrap();
        assert_eq!(ds.shape(), [1, 1, h, w]);
        assert_eq!(ds.dtype.numpy_name(), "float32");
        assert_eq!(ds.describe(), format!("{}:/image", file.display()));
        let got = read_all(&ds, 4);
        assert_eq!(got.index_axis(Axis(0), 0).index_axis(Axis(0), 0), x);
    }
    let (rep, back) = round_trip(&format!("{}:/image", file.display()), &dir, 8);
    assert_eq!(rep.original_shape, [1, 1, h, w]);
    assert_eq!(rep.original_dtype.numpy_name(), "float32");
    let x4 = x.clone().insert_axis(Axis(0)).insert_axis(Axis(0));
    common::assert_reported_psnr(rep.psnr_db, &x4, &back.into_dyn());
}

/// SciML-Bench style: a (N, H, W) uint16 stack in a group, chunked, read with `:nhw`.
#[test]
fn u16_nhw_stack_in_group_chunked_round_trip() {
    let dir = tmpdir("u16");
    let file = dir.join("stack.hdf5");
    let (n, h, w) = (7, 16, 24);
    let x = Array3::from_shape_fn((n, h, w), |(s, i, j)| (smooth(s, i, j) * 200.0) as u16);
    write_h5(&file, |f| {
        let g = f.create_group("train").unwrap();
        g.new_dataset_builder()
            .chunk((2, h, w))
            .with_data(&x)
            .create("images")
            .unwrap();
        // A second dataset: now the name is needed.
        g.new_dataset_builder()
            .with_data(&ndarray::arr1(&[1u8, 2, 3]))
            .create("labels")
            .unwrap();
    });
    let want = x.mapv(|v| v as f32).insert_axis(Axis(1)); // [N, 1, H, W]
    let spec = format!("{}:/train/images:nhw", file.display());
    let ds = input::open(&[PathBuf::from(&spec)]).unwrap();
    assert_eq!(ds.shape(), [n, 1, h, w]);
    assert_eq!(ds.dtype.numpy_name(), "uint16");
    // Batches of 3 over chunks of 2: hyperslabs across chunk boundaries.
    assert_eq!(read_all(&ds, 3), want);
    // Without the layout, rank 3 is (C, H, W) as for .npy.
    let chw = input::open(&[PathBuf::from(format!("{}:train/images", file.display()))]).unwrap();
    assert_eq!(chw.shape(), [1, n, h, w]);

    let (rep, back) = round_trip(&spec, &dir, 3);
    assert_eq!(rep.original_shape, [n, 1, h, w]);
    assert_eq!(rep.original_dtype.numpy_name(), "uint16");
    assert_eq!(rep.original_bytes, (n * h * w * 2) as u64);
    common::assert_reported_psnr(rep.psnr_db, &want, &back.into_dyn());
}

/// (N, H, W, C) float64 with `:nhwc` is permuted to (N, C, H, W).
#[test]
fn nhwc_f64_is_permuted() {
    let dir = tmpdir("nhwc");
    let file = dir.join("rgb.h5");
    let (n, h, w, c) = (3, 8, 10, 3);
    let x = Array4::from_shape_fn((n, h, w, c), |(s, i, j, k)| {
        (s * 1000 + i * 100 + j * 10 + k) as f64
    });
    write_h5(&file, |f| {
        f.new_dataset_builder().with_data(&x).create("rgb").unwrap();
    });
    let ds = input::open(&[PathBuf::from(format!("{}::nhwc", file.display()))]).unwrap();
    assert_eq!(ds.shape(), [n, c, h, w]);
    assert_eq!(ds.dtype.numpy_name(), "float64");
    let want = x.mapv(|v| v as f32).permuted_axes([0, 3, 1, 2]);
    assert_eq!(read_all(&ds, 2), want);
}

#[test]
fn errors_list_datasets_and_name_rank_and_layout() {
    let dir = tmpdir("err");
    let file = dir.join("multi.h5");
    write_h5(&file, |f| {
        let g = f.create_group("data").unwrap();
        g.new_dataset_builder()
            .with_data(&Array2::<f32>::zeros((4, 4)))
            .create("a")
            .unwrap();
        g.new_dataset_builder()
            .with_data(&ndarray::arr1(&[1.0f32, 2.0]))
            .create("vec")
            .unwrap();
        f.new_dataset_builder()
            .with_data(&Array3::<f32>::zeros((2, 4, 4)))
            .create("cube")
            .unwrap();
    });
    let err = |spec: String| {
        input::open(&[PathBuf::from(spec)])
            .map(|d| d.shape())
            .unwrap_err()
            .to_string()
    };
    let f = file.display().to_string();
    let e = err(format!("{f}:/nope"));
    assert!(e.contains("no dataset /nope"), "{e}");
    assert!(e.contains("/cube, /data/a, /data/vec"), "{e}");
    let e = err(f.clone());
    assert!(
        e.contains("name the dataset") && e.contains("/data/a"),
        "{e}"
    );
    let e = err(format!("{f}:/data/vec"));
    assert!(e.contains("shape [2] is not supported"), "{e}");
    let e = err(format!("{f}:/cube:nhwc"));
    assert!(e.contains("layout nhwc is for rank 4"), "{e}");
    let e = err(dir.join("missing.h5").display().to_string());
    assert!(e.contains("missing.h5"), "{e}");

    // The CLI: one line, naming the file and listing the datasets.
    let out = dir.join("o");
    let o = {
        let _g = WRITE_OR_SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        dctchop(&[
            "compress",
            &format!("{f}:/nope"),
            "-o",
            &out.display().to_string(),
        ])
    };
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("multi.h5") && msg.contains("/data/a"), "{msg}");
    assert!(!dir.join("o.decompress.onnx").exists());
}
