//! `dctchop bench`: throughput of every configuration in the sweep, beside a memory copy.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

use crate::args::{parse_res, Res};
use dctchop::bench::{measure, relate_to_dense, relate_to_native, BenchPoint, CsvWriter};
use dctchop::quant::{CodeType, Quant};
use dctchop::{Device, Dtype, EngineKind, EngineOptions, Spec, Tile, Variant};

#[derive(Args)]
pub struct BenchArgs {
    /// Resolutions: comma list of N or HxW.
    #[arg(long, value_delimiter = ',', value_parser = parse_res, default_value = "256")]
    res: Vec<Res>,
    /// Chop factors (comma list).
    #[arg(long, value_delimiter = ',', default_value = "4")]
    cf: Vec<usize>,
    /// Samples per graph run (comma list).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    batch: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    channels: usize,
    #[arg(long, default_value_t = 8)]
    block: usize,
    /// Variants (comma list): chop, triangle.
    #[arg(long, value_delimiter = ',', default_value = "chop")]
    variant: Vec<Variant>,
    /// Forms (comma list of tiles): full (the paper's dense form), auto, or N.
    #[arg(long, value_delimiter = ',', default_value = "full,auto")]
    form: Vec<Tile>,
    /// Engines (comma list): native, tract, ort, auto.
    #[arg(long, value_delimiter = ',', default_value = "native")]
    engine: Vec<EngineKind>,
    /// Thread counts (comma list); 0 = all cores.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    threads: Vec<usize>,
    /// cpu or cuda[:N] (CUDA needs --engine ort and an onnxruntime-gpu library; input and
    /// output are bound on the device, so the times exclude host transfers).
    #[arg(long, default_value = "cpu")]
    device: Device,
    #[arg(long, default_value = "f32")]
    dtype: Dtype,
    /// Coefficients (comma list): none (float), i8, i16 (quantized graphs: decompression is
    /// timed from integer codes).
    #[arg(long, value_delimiter = ',', default_value = "none")]
    codes: Vec<String>,
    /// Seconds of timed runs per direction and configuration (at least 3 runs).
    #[arg(long, default_value_t = 1.0)]
    budget: f64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write every measured configuration as a CSV row to this file (written atomically
    /// when the run ends).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Overwrite an existing --csv file.
    #[arg(long)]
    force: bool,
}

const HEADER: [&str; 19] = [
    "engine",
    "thr",
    "variant",
    "form",
    "tile",
    "res",
    "cf",
    "batch",
    "comp GB/s",
    "dec GB/s",
    "copy GB/s",
    "copyT GB/s",
    "c/cp",
    "d/cp",
    "c/dense",
    "d/dense",
    "c/nat",
    "d/nat",
    "codes",
];

fn print_row(cells: &[String]) {
    let widths: [isize; 19] = [
        -6, 3, -9, -6, -8, 10, 3, 5, 9, 9, 9, 10, 6, 6, 7, 7, 6, 6, -5,
    ];
    let line: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| {
            if w < 0 {
                format!("{c:<width$}", width = (-w) as usize)
            } else {
                format!("{c:>width$}", width = w as usize)
            }
        })
        .collect();
    println!("{}", line.join(" "));
}

fn row(p: &BenchPoint) -> Vec<String> {
    let r = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    vec![
        p.engine.clone(),
        p.threads.to_string(),
        p.variant.clone(),
        p.form.clone(),
        p.tile_resolved.clone(),
        p.res.clone(),
        p.cf.to_string(),
        p.batch.to_string(),
        format!("{:.3}", p.compress_gbps),
        format!("{:.3}", p.decompress_gbps),
        format!("{:.3}", p.memcpy_gbps),
        format!("{:.3}", p.memcpy_threads_gbps),
        format!("{:.2}", p.compress_vs_memcpy),
        format!("{:.2}", p.decompress_vs_memcpy),
        r(p.compress_vs_dense),
        r(p.decompress_vs_dense),
        r(p.compress_vs_native),
        r(p.decompress_vs_native),
        p.code.clone(),
    ]
}

pub fn run(a: BenchArgs) -> Result<()> {
    let mut codes = Vec::new();
    for c in &a.codes {
        codes.push(match c.as_str() {
            "none" => None,
            other => Some(other.parse::<CodeType>().map_err(|e| {
                anyhow::anyhow!("invalid --codes {other}: {e} (or none for float coefficients)")
            })?),
        });
    }
    if !a.json {
        print_row(&HEADER.map(String::from));
    }
    let mut csv = a
        .csv
        .as_deref()
        .map(|path| CsvWriter::create(path, a.force))
        .transpose()?;
    for &threads in &a.threads {
        for &variant in &a.variant {
            for &Res(h, w) in &a.res {
                for &cf in &a.cf {
                    for &batch in &a.batch {
                        // Every engine and form of one configuration is measured back to back,
                        // so the ratios between them compare runs under the same load.
                        let mut points = Vec::with_capacity(a.engine.len() * a.form.len());
                        for &engine in &a.engine {
                            let mut opts = EngineOptions::default()
                                .with_kind(engine)
                                .with_device(a.device);
                            if threads > 0 {
                                opts = opts.with_threads(threads);
                            }
                            let mut forms = Vec::with_capacity(a.form.len());
                            for (&form, &code) in a
                                .form
                                .iter()
                                .flat_map(|f| codes.iter().map(move |c| (f, c)))
                            {
                                let spec = Spec::new(h, w, cf)
                                    .with_batch(batch)
                                    .with_channels(a.channels)
                                    .with_block(a.block)
                                    .with_variant(variant)
                                    .with_tile(form)
                                    .with_dtype(a.dtype);
                                // The step does not change the speed; 16 keeps int8 codes of
                                // the benchmark's data in range.
                                let spec = match code {
                                    Some(c) => spec.with_quant(Quant::uniform(c, 16.0)),
                                    None => spec,
                                };
                                let p = measure(&spec, &opts, a.budget).with_context(|| {
                                    format!("benchmark of {} on {engine}", spec.name())
                                })?;
                                forms.push(p);
                            }
                            relate_to_dense(&mut forms);
                            points.extend(forms);
                        }
                        relate_to_native(&mut points);
                        for p in &points {
                            if let Some(w) = csv.as_mut() {
                                w.write(p)?;
                            }
                            if a.json {
                                println!("{}", serde_json::to_string(p)?);
                            } else {
                                print_row(&row(p));
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(w) = csv {
        let path = w.finish()?;
        eprintln!("dctchop: wrote {}", path.display());
    }
    Ok(())
}
