//! Throughput measurement: a spec's graphs on an engine, beside a memory copy of the same bytes
//! (the bandwidth limit) measured in the same process. Medians of several timed runs after a
//! warm-up; inputs are prepared outside the timed region.

use ndarray::ArrayD;
use serde::Serialize;

use crate::engine::{compile, EngineOptions};
use crate::error::Result;
use crate::graph::Direction;
use crate::plan::Plan;
use crate::spec::{Dtype, Spec};
use std::path::{Path, PathBuf};

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct BenchPoint {
    pub engine: String,
    /// `cpu` or `cuda:N` (on CUDA, input and output stay on the device while timed).
    pub device: String,
    pub threads: usize,
    /// The spec's tile setting (`full` is the paper's dense form).
    pub form: String,
    /// The tile actually used per axis.
    pub tile_resolved: String,
    pub variant: String,
    pub res: String,
    pub cf: usize,
    pub block: usize,
    pub batch: usize,
    pub channels: usize,
    pub dtype: Dtype,
    /// Code type of a quantized spec (`none`: float coefficients).
    pub code: String,
    /// Uncompressed bytes per graph run.
    pub bytes: usize,
    pub reps: usize,
    pub compress_s: f64,
    pub decompress_s: f64,
    pub memcpy_s: f64,
    pub compress_gbps: f64,
    pub decompress_gbps: f64,
    pub memcpy_gbps: f64,
    pub compress_vs_memcpy: f64,
    pub decompress_vs_memcpy: f64,
    pub compress_ns_per_pixel: f64,
    pub decompress_ns_per_pixel: f64,
    /// Speed-up over the paper's dense form (`form = full`) of the same configuration measured in
    /// the same run; `None` when the dense form was not measured beside it.
    pub compress_vs_dense: Option<f64>,
    pub decompress_vs_dense: Option<f64>,
    /// Throughput relative to the native engine on the same configuration and form, measured
    /// back to back; `None` when native was not measured beside it.
    pub compress_vs_native: Option<f64>,
    pub decompress_vs_native: Option<f64>,
    /// The same copy split across `threads` threads: what the memory delivers to that many
    /// cores, the ceiling of a transform whose traffic is a copy's (the ratios above stay
    /// against the one-thread copy).
    pub memcpy_threads_gbps: f64,
}

/// Fill `*_vs_dense` of every point from the `full` point among them (the forms of one
/// configuration, measured back to back).
pub fn relate_to_dense(points: &mut [BenchPoint]) {
    let dense: Vec<BenchPoint> = points
        .iter()
        .filter(|p| p.form == "full")
        .cloned()
        .collect();
    for p in points.iter_mut() {
        if let Some(d) = dense.iter().find(|d| d.code == p.code) {
            p.compress_vs_dense = Some(d.compress_s / p.compress_s);
            p.decompress_vs_dense = Some(d.decompress_s / p.decompress_s);
        }
    }
}

/// Fill `*_vs_native` of every point from the native point of the same form among them (the
/// engines of one configuration, measured back to back).
pub fn relate_to_native(points: &mut [BenchPoint]) {
    let native: Vec<BenchPoint> = points
        .iter()
        .filter(|p| p.engine == "native")
        .cloned()
        .collect();
    for p in points.iter_mut() {
        if let Some(n) = native.iter().find(|n| n.form == p.form && n.code == p.code) {
            p.compress_vs_native = Some(n.compress_s / p.compress_s);
            p.decompress_vs_native = Some(n.decompress_s / p.decompress_s);
        }
    }
}

/// CSV columns, in the order of [`BenchPoint`]'s fields.
pub const CSV_HEADER: &str = "engine,device,threads,form,tile_resolved,variant,res,cf,block,batch,\
channels,dtype,bytes,reps,compress_s,decompress_s,memcpy_s,compress_gbps,decompress_gbps,\
memcpy_gbps,compress_vs_memcpy,decompress_vs_memcpy,compress_ns_per_pixel,\
decompress_ns_per_pixel,compress_vs_dense,decompress_vs_dense,compress_vs_native,\
decompress_vs_native,code,memcpy_threads_gbps";

impl BenchPoint {
    /// One CSV row (no field holds a comma; an unmeasured ratio is empty).
    pub fn csv_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.6e},{:.6e},{:.6e},{:.4},{:.4},{:.4},{:.4},\
             {:.4},{:.4},{:.4},{},{},{},{},{},{:.4}",
            self.engine,
            self.device,
            self.threads,
            self.form,
            self.tile_resolved.replace(',', ";"),
            self.variant,
            self.res,
            self.cf,
            self.block,
            self.batch,
            self.channels,
            self.dtype,
            self.bytes,
            self.reps,
            self.compress_s,
            self.decompress_s,
            self.memcpy_s,
            self.compress_gbps,
            self.decompress_gbps,
            self.memcpy_gbps,
            self.compress_vs_memcpy,
            self.decompress_vs_memcpy,
            self.compress_ns_per_pixel,
            self.decompress_ns_per_pixel,
            opt(self.compress_vs_dense),
            opt(self.decompress_vs_dense),
            opt(self.compress_vs_native),
            opt(self.decompress_vs_native),
            self.code,
            self.memcpy_threads_gbps,
        )
    }
}

/// Collects CSV rows and writes the file atomically at the end, so an interrupted benchmark never
/// leaves a truncated table behind (nor replaces a previous one).
pub struct CsvWriter {
    path: PathBuf,
    text: String,
    force: bool,
}

impl CsvWriter {
    /// Refuses an existing `path` unless `force`, before anything is measured.
    pub fn create(path: &Path, force: bool) -> Result<CsvWriter> {
        crate::output::check_writable(path, force)?;
        Ok(CsvWriter {
            path: path.to_path_buf(),
            text: format!("{CSV_HEADER}\n"),
            force,
        })
    }
    pub fn write(&mut self, p: &BenchPoint) -> Result<()> {
        self.text.push_str(&p.csv_row());
        self.text.push('\n');
        Ok(())
    }
    /// Write the file; returns its path.
    pub fn finish(self) -> Result<PathBuf> {
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let created = crate::output::CreatedDirs::create(dir)?;
        crate::output::write_atomic(&self.path, self.text.as_bytes(), self.force)?;
        created.keep();
        Ok(self.path)
    }
}

/// Median of a non-empty sample.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Untimed runs before each direction is measured.
const WARM_UP_RUNS: usize = 3;

/// Number of timed repetitions so that each measurement lasts about `budget_s` (3..=25).
fn reps_for(one_run_s: f64, budget_s: f64) -> usize {
    ((budget_s / one_run_s.max(1e-6)) as usize).clamp(3, 25)
}

/// Median seconds to copy `elems` f32 values between two pre-allocated buffers.
pub fn memcpy_seconds(elems: usize, reps: usize) -> f64 {
    memcpy_seconds_threads(elems, reps, 1)
}

/// [`memcpy_seconds`] with the copy cut into `threads` equal parts copied at the same time
/// (scoped threads, started before the clock).
pub fn memcpy_seconds_threads(elems: usize, reps: usize, threads: usize) -> f64 {
    let src: Vec<f32> = (0..elems).map(|i| (i % 251) as f32).collect();
    let mut dst = vec![0f32; elems];
    dst.copy_from_slice(&src); // warm-up: fault in the pages
    let part = elems.div_ceil(threads.max(1)).max(1);
    let parts = elems.div_ceil(part).max(1);
    // Every thread, the timing one included, meets at a barrier before each copy and after it;
    // the time is from the first barrier's release to the second's. With one part no thread
    // is started and the barrier returns at once.
    let barrier = std::sync::Barrier::new(parts);
    let mut t = Vec::with_capacity(reps);
    std::thread::scope(|scope| {
        let mut parts = src.chunks(part).zip(dst.chunks_mut(part));
        let (s0, d0) = parts.next().unwrap_or((&[], &mut []));
        for (s, d) in parts {
            let barrier = &barrier;
            scope.spawn(move || {
                for _ in 0..reps {
                    barrier.wait();
                    d.copy_from_slice(std::hint::black_box(s));
                    std::hint::black_box(&mut *d);
                    barrier.wait();
                }
            });
        }
        for _ in 0..reps {
            barrier.wait();
            let t0 = std::time::Instant::now();
            d0.copy_from_slice(std::hint::black_box(s0));
            std::hint::black_box(&mut *d0);
            barrier.wait();
            t.push(t0.elapsed().as_secs_f64());
        }
    });
    median(&t)
}

/// Measure compress and decompress of `spec` (serialize must be 1) on `opts`.
/// `budget_s` is roughly the time spent per direction.
pub fn measure(spec: &Spec, opts: &EngineOptions, budget_s: f64) -> Result<BenchPoint> {
    let plan = Plan::new(spec)?;
    let x = ArrayD::from_shape_fn(plan.chunk.input_shape(), |d| {
        let i = d[2] * 31 + d[3] * 17 + d[1] * 7 + d[0];
        ((i % 256) as f32) * 0.5 + 10.0
    });
    let mut comp = compile(&plan, Direction::Compress, opts)?;
    let mut dec = compile(&plan, Direction::Decompress, opts)?;
    // Warm-up, also sizes the repetitions. Several runs: a single one left the first tiled
    // form measured after the dense form up to 2x slow (the allocator and caches were still
    // settling from the dense form's large buffers).
    let warm = median(&comp.time_runs(x.view(), WARM_UP_RUNS)?);
    let reps = reps_for(warm, budget_s);
    let y = comp.run(x.view())?;
    let tc = median(&comp.time_runs(x.view(), reps)?);
    let td = match &spec.quant {
        // A quantized graph decompresses integer codes: time it on the codes of `y` (the
        // compress graph's output is already divided by the step; rounding is the host's and
        // is not in the compress time).
        Some(q) => {
            // One output allocated outside the timed loop for every engine.
            let (codes, _) = crate::quant::Codes::quantize(y.view(), q.code);
            let mut out = ArrayD::<f32>::zeros(x.raw_dim());
            let mut times = Vec::with_capacity(reps);
            for i in 0..WARM_UP_RUNS + reps {
                let t0 = std::time::Instant::now();
                dec.run_codes_into(codes.view(), out.view_mut())?;
                if i >= WARM_UP_RUNS {
                    times.push(t0.elapsed().as_secs_f64());
                }
            }
            median(&times)
        }
        None => {
            dec.time_runs(y.view(), WARM_UP_RUNS)?;
            median(&dec.time_runs(y.view(), reps)?)
        }
    };
    let elems = x.len();
    let elem_bytes = spec.dtype.bytes();
    let bytes = elems * elem_bytes;
    // The copy baseline moves the same number of bytes, in f32 units.
    let tm = memcpy_seconds(bytes / 4, reps.max(5));
    let threads = opts.resolved_threads();
    let tm_threads = if threads > 1 {
        memcpy_seconds_threads(bytes / 4, reps.max(5), threads)
    } else {
        tm
    };
    let gbps = |t: f64| bytes as f64 / t / 1e9;
    let pixels = (spec.batch * spec.channels * spec.height * spec.width) as f64;
    Ok(BenchPoint {
        engine: opts.kind.for_plan(opts.device).to_string(),
        device: opts.device.to_string(),
        threads,
        form: spec.tile.to_string(),
        tile_resolved: plan.tile_label(),
        variant: spec.variant.to_string(),
        res: format!("{}x{}", spec.height, spec.width),
        cf: spec.cf,
        block: spec.block,
        batch: spec.batch,
        channels: spec.channels,
        dtype: spec.dtype,
        code: spec
            .quant
            .as_ref()
            .map_or("none".to_string(), |q| q.code.to_string()),
        bytes,
        reps,
        compress_s: tc,
        decompress_s: td,
        memcpy_s: tm,
        compress_gbps: gbps(tc),
        decompress_gbps: gbps(td),
        memcpy_gbps: gbps(tm),
        compress_vs_memcpy: tm / tc,
        decompress_vs_memcpy: tm / td,
        compress_ns_per_pixel: tc / pixels * 1e9,
        decompress_ns_per_pixel: td / pixels * 1e9,
        compress_vs_dense: None,
        decompress_vs_dense: None,
        compress_vs_native: None,
        decompress_vs_native: None,
        memcpy_threads_gbps: gbps(tm_threads),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_copy_baseline_handles_more_threads_than_values() {
        // Fewer values than threads: fewer parts. The barrier counts parts, not threads; sized
        // to the threads it would wait forever here for threads that were never started.
        for (elems, threads) in [(0, 2), (1, 1), (1, 4), (3, 2), (5, 8), (1000, 3), (4096, 2)] {
            let t = memcpy_seconds_threads(elems, 3, threads);
            assert!(
                t.is_finite() && t >= 0.0,
                "{elems} values on {threads} threads: {t}"
            );
        }
    }
}
