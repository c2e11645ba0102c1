//! PNG plots for `dctchop eval`, drawn with `plotters` into an in-memory RGB buffer and encoded
//! with the `image` crate. Text uses the vendored DejaVu Sans Mono (`assets/fonts/`, Bitstream
//! Vera license), registered from bytes: no system font library is needed.

use ndarray::ArrayView3;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::Once;

use anyhow::{anyhow, Result};
use dctchop::eval::Row;

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is vendored and valid; a failure would only leave the text out.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

fn encode_png(buf: Vec<u8>, w: u32, h: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| anyhow!("plot: buffer size"))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| anyhow!("plot: PNG encoder: {e}"))?;
    Ok(out.into_inner())
}

/// What a rate–distortion plot puts on the y axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Psnr,
    Ssim,
}

impl Metric {
    fn of(&self, r: &Row) -> f64 {
        match self {
            Metric::Psnr => r.psnr_db,
            Metric::Ssim => r.ssim,
        }
    }
}

/// How a point of a curve came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointKind {
    /// A dctchop configuration.
    Config,
    /// A baseline matched to a dctchop configuration's ratio.
    Matched,
    /// A baseline's sweep point.
    Curve,
}

/// One curve: its label ([`dctchop::eval::curve_label`]) and points (ratio, value, kind) sorted by
/// ratio; the same point twice is kept once (matched wins over curve).
pub type Curve = (String, Vec<(f64, f64, PointKind)>);

/// The curves of one dataset (aggregate rows, finite values only), in order of first appearance.
pub fn curves(dataset: &str, rows: &[Row], metric: Metric) -> Vec<Curve> {
    let mut out: Vec<Curve> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.dataset == dataset && r.sample.is_none() && metric.of(r).is_finite())
    {
        let label = dctchop::eval::curve_label(r);
        let kind = if r.method == "dctchop" {
            PointKind::Config
        } else if r.curve {
            PointKind::Curve
        } else {
            PointKind::Matched
        };
        let (x, y) = (r.ratio, metric.of(r));
        let v = match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, v)) => v,
            None => {
                out.push((label, Vec::new()));
                &mut out.last_mut().expect("just pushed").1
            }
        };
        match v.iter_mut().find(|p| p.0 == x && p.1 == y) {
            Some(p) => {
                if kind == PointKind::Matched {
                    p.2 = kind;
                }
            }
            None => v.push((x, y, kind)),
        }
    }
    for (_, v) in &mut out {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Rate–distortion plot of one dataset as PNG bytes: `metric` vs ratio as stored (log axis), one
/// curve per method and dctchop variant/block/store, dctchop configurations as filled dots,
/// baseline points matched to them as rings, sweep points as small dots. PSNR above
/// max(50, the best dctchop PSNR + 20) dB (near-lossless baselines) is cut off, said in the title.
pub fn rate_distortion(dataset: &str, rows: &[Row], metric: Metric) -> Result<Vec<u8>> {
    register_font();
    let (w, h) = (900u32, 580u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let mut series = curves(dataset, rows, metric);
    let cap = match metric {
        Metric::Psnr => {
            let best = series
                .iter()
                .flat_map(|(_, v)| v.iter())
                .filter(|p| p.2 == PointKind::Config)
                .map(|p| p.1)
                .fold(30.0f64, f64::max);
            (best + 20.0).max(50.0)
        }
        Metric::Ssim => f64::INFINITY,
    };
    let mut cut = false;
    for (_, v) in &mut series {
        let before = v.len();
        v.retain(|p| p.1 <= cap);
        cut |= v.len() < before;
    }
    let pts = series.iter().flat_map(|(_, v)| v.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, 0f64, f64::INFINITY, f64::MIN);
    for &(x, y, _) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.5, 2.0, 0.0, 1.0);
    }
    let (x0, x1) = (x0 / 1.2, x1 * 1.2);
    let (y0, y1) = match metric {
        Metric::Psnr => (y0 - 2.0, y1 + 2.0),
        Metric::Ssim => ((y0 - 0.02).max(-1.0), (y1 + 0.01).min(1.01)),
    };
    let (name, unit) = match metric {
        Metric::Psnr => ("PSNR", "PSNR (dB)"),
        Metric::Ssim => ("SSIM", "SSIM (mean over channels)"),
    };
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let title: String = dataset
            .chars()
            .rev()
            .take(50)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let note = if cut {
            format!(" (> {cap:.0} dB not shown)")
        } else {
            String::new()
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{name} vs ratio: {title}{note}"),
                ("sans-serif", 17),
            )
            .margin(12)
            .margin_bottom(30)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("compression ratio as stored (original bytes / stored bytes)")
            .y_desc(unit)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(plot_err)?;
        let colors = [
            RGBColor(31, 119, 180),
            RGBColor(255, 127, 14),
            RGBColor(44, 160, 44),
            RGBColor(214, 39, 40),
            RGBColor(148, 103, 189),
            RGBColor(140, 86, 75),
            RGBColor(227, 119, 194),
            RGBColor(127, 127, 127),
            RGBColor(188, 189, 34),
            RGBColor(23, 190, 207),
        ];
        for (i, (label, v)) in series.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(
                    v.iter().map(|p| (p.0, p.1)),
                    c.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(v.iter().map(|&(x, y, k)| match k {
                    PointKind::Config => Circle::new((x, y), 4, c.filled()),
                    PointKind::Matched => Circle::new((x, y), 5, c.stroke_width(2)),
                    PointKind::Curve => Circle::new((x, y), 2, c.filled()),
                }))
                .map_err(plot_err)?;
        }
        // Curves fall to the right: high ratio at high PSNR is empty, and so is low ratio at
        // low SSIM.
        let corner = match metric {
            Metric::Psnr => SeriesLabelPosition::UpperRight,
            Metric::Ssim => SeriesLabelPosition::LowerLeft,
        };
        chart
            .configure_series_labels()
            .position(corner)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(plot_err)?;
        let key = "filled dot: dctchop config; ring: baseline matched to it; small dot: sweep";
        root.draw_text(
            key,
            &("sans-serif", 12).into_font().color(&BLACK),
            (70, h as i32 - 16),
        )
        .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    encode_png(buf, w, h)
}

/// A perceptually ordered colour map (dark blue → green → yellow), t in 0..=1.
fn colormap(t: f64) -> [u8; 3] {
    let stops = [
        (0.0, [68.0, 1.0, 84.0]),
        (0.25, [59.0, 82.0, 139.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [94.0, 201.0, 98.0]),
        (1.0, [253.0, 231.0, 37.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    for w in stops.windows(2) {
        let (a, ca) = w[0];
        let (b, cb) = w[1];
        if t <= b {
            let u = (t - a) / (b - a);
            return [0, 1, 2].map(|k| (ca[k] + u * (cb[k] - ca[k])).round() as u8);
        }
    }
    [253, 231, 37]
}

/// The original (gray, or RGB for 3 channels; scaled to its range) beside |orig − recon|
/// (mean over channels, colour-mapped from 0 to the largest error), with a caption.
pub fn error_map(
    orig: ArrayView3<'_, f32>,
    rec: ArrayView3<'_, f32>,
    min: f64,
    max: f64,
    title: &str,
) -> Result<Vec<u8>> {
    register_font();
    let (c, h, w) = orig.dim();
    let top = 28usize;
    let gap = 8usize;
    let (iw, ih) = (2 * w + gap, h + top);
    let mut buf = vec![255u8; iw * ih * 3];
    let range = dctchop::eval::data_range(min, max);
    let norm = |v: f32| (((v as f64 - min) / range).clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut err = vec![0f64; h * w];
    for i in 0..h {
        for j in 0..w {
            err[i * w + j] = (0..c)
                .map(|k| (orig[[k, i, j]] as f64 - rec[[k, i, j]] as f64).abs())
                .sum::<f64>()
                / c as f64;
        }
    }
    let emax = err.iter().copied().fold(0.0, f64::max);
    for i in 0..h {
        for j in 0..w {
            let px = if c == 3 {
                [
                    norm(orig[[0, i, j]]),
                    norm(orig[[1, i, j]]),
                    norm(orig[[2, i, j]]),
                ]
            } else {
                let g = norm(orig[[0, i, j]]);
                [g, g, g]
            };
            let o = ((i + top) * iw + j) * 3;
            buf[o..o + 3].copy_from_slice(&px);
            let t = if emax > 0.0 {
                err[i * w + j] / emax
            } else {
                0.0
            };
            let o = ((i + top) * iw + w + gap + j) * 3;
            buf[o..o + 3].copy_from_slice(&colormap(t));
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (iw as u32, ih as u32)).into_drawing_area();
        let text = format!("{title} | right: |error| 0..{emax:.3}");
        let text: String = text.chars().take((iw / 8).max(10)).collect();
        root.draw_text(&text, &("sans-serif", 13).into_font().color(&BLACK), (4, 6))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    encode_png(buf, iw as u32, ih as u32)
}
