//! End-to-end throughput of the library path (`Codec::compress` / `Codec::decompress`, what the
//! CLI and `container::Loader` use) beside the graph alone (`dctchop bench`) and a copy of the same
//! bytes, in one process. Medians of 9 runs after a warm-up.
//!
//! `cargo run --release --example codec_throughput -- [RES] [BATCH] [SAMPLES] [ENGINE]`
//! (default 256 100 300 ort). Set `DCTCHOP_MALLOC=default` to skip `keep_freed_memory`.

use dctchop::{Codec, Direction, EngineKind, EngineOptions, Plan, Spec};
use ndarray::Array4;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var("DCTCHOP_MALLOC").as_deref() != Ok("default") {
        dctchop::keep_freed_memory();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let res: usize = arg(0, "256").parse()?;
    let batch: usize = arg(1, "100").parse()?;
    let n: usize = arg(2, "300").parse()?;
    let engine: EngineKind = arg(3, "ort").parse()?;
    let spec = Spec::new(res, res, 4).with_batch(batch);
    let opts = EngineOptions::default().with_kind(engine);
    let mut codec = Codec::new(&spec, &opts)?;
    let x = Array4::from_shape_fn((n, 3, res, res), |(s, c, i, j)| {
        ((s * 7 + c * 13 + i * j) % 251) as f32
    });
    let y = codec.compress(x.view())?;
    let gb = (x.len() * 4) as f64 / 1e9;
    let tc = timed(9, || drop(codec.compress(x.view()).unwrap()));
    let td = timed(9, || drop(codec.decompress(y.view()).unwrap()));

    // The graphs alone on one batch, as `dctchop bench` measures them, and a copy.
    let plan = Plan::new(&spec)?;
    let bgb = (batch * 3 * res * res * 4) as f64 / 1e9;
    let graph = |d: Direction, input: ndarray::ArrayViewD<'_, f32>| -> f64 {
        let mut r = dctchop::engine::compile(&plan, d, &opts).unwrap();
        median(r.time_runs(input, 9).unwrap())
    };
    let gc = graph(
        Direction::Compress,
        x.slice(ndarray::s![..batch, .., .., ..]).into_dyn(),
    );
    let gd = graph(
        Direction::Decompress,
        y.slice_axis(ndarray::Axis(0), (0..batch).into()),
    );
    let src = vec![1.0f32; x.len()];
    let mut dst = vec![0.0f32; x.len()];
    let tcopy = timed(9, || dst.copy_from_slice(&src));
    println!(
        "{engine} {res}x{res} batch {batch}, {n} samples ({:.0} MB): codec compress {:.2} GB/s, \
         decompress {:.2} GB/s; graph alone {:.2} / {:.2} GB/s; copy {:.2} GB/s",
        gb * 1e3,
        gb / tc,
        gb / td,
        bgb / gc,
        bgb / gd,
        gb / tcopy
    );
    Ok(())
}
