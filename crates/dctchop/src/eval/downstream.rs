//! Downstream accuracy: does a model trained on compressed data still work on real data?
//!
//! Task: classify 32×32 grayscale patches by the image they come from (one class per image in a
//! directory, e.g. the 5 sample images). Each image (converted to gray: mean of its channels,
//! 0..255) is split by rows: the top 60 % gives training patches (stride 16), the bottom 40 %
//! test patches (stride 32), so train and test never overlap. Training data is either the
//! original top part or that part compressed and decompressed with dctchop (whole region, f32
//! coefficients) at each CF and variant; the test patches are always original.
//!
//! Model: multinomial logistic regression on the 1024 pixels (centred by the training mean,
//! scaled by the training standard deviation), zero initialization, full-batch gradient descent
//! with momentum (300 epochs, step 1/λmax of XᵀX/n found by power iteration, momentum 0.9,
//! L2 1e-4). Everything is deterministic (no random numbers, fixed order).

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use serde::Serialize;
use std::path::{Path, PathBuf};

use super::EvalOptions;
use crate::error::{Error, Result};
use crate::spec::{Spec, Variant};
use crate::{input, Codec};

pub const PATCH: usize = 32;
const TRAIN_STRIDE: usize = 16;
const TEST_STRIDE: usize = 32;
const TRAIN_FRACTION: f64 = 0.6;
const EPOCHS: usize = 300;
/// Step in units of 1/λmax of the feature Gram matrix.
const STEP: f64 = 1.0;
const MOMENTUM: f64 = 0.9;
const L2: f64 = 1e-4;

/// One training condition's result.
#[derive(Clone, Debug, Serialize)]
pub struct DownstreamRow {
    /// `original` or e.g. `chop cf4`.
    pub training_data: String,
    pub variant: Option<String>,
    pub cf: Option<usize>,
    pub coefficient_ratio: Option<f64>,
    /// PSNR (dB, peak 255) of the compressed training regions against the originals.
    pub train_psnr_db: Option<f64>,
    /// Accuracy on the original test patches.
    pub test_accuracy: f64,
    /// test_accuracy − the original-data model's.
    pub accuracy_change: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DownstreamReport {
    pub images: Vec<String>,
    pub train_patches: usize,
    pub test_patches: usize,
    pub rows: Vec<DownstreamRow>,
}

/// Gray images (mean over channels) of the images in `dir`, sorted by name.
pub fn load_gray(dir: &Path) -> Result<Vec<(PathBuf, Array2<f32>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| {
            f.extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .is_some_and(|e| input::IMAGE_EXTENSIONS.contains(&e.as_str()))
        })
        .collect();
    files.sort();
    if files.len() < 2 {
        return Err(Error::invalid_input(
            dir,
            "the downstream task needs at least 2 images (one class each)",
        ));
    }
    files
        .into_iter()
        .map(|f| {
            let x = input::load_image(&f)?;
            let g = x
                .index_axis(Axis(0), 0)
                .mean_axis(Axis(0))
                .expect("channels");
            if g.dim().0 < 2 * PATCH || g.dim().1 < PATCH {
                return Err(Error::invalid_input(
                    &f,
                    format!("too small for {PATCH}x{PATCH} train and test patches"),
                ));
            }
            Ok((f, g))
        })
        .collect()
}

fn split_row(h: usize) -> usize {
    ((h as f64 * TRAIN_FRACTION) as usize).clamp(PATCH, h - PATCH)
}

/// Patches of `img` as rows of pixels scaled to −0.5..0.5.
fn patches(img: ArrayView2<'_, f32>, stride: usize, out: &mut Vec<Vec<f64>>) {
    let (h, w) = img.dim();
    let mut i = 0;
    while i + PATCH <= h {
        let mut j = 0;
        while j + PATCH <= w {
            let p = img.slice(s![i..i + PATCH, j..j + PATCH]);
            out.push(p.iter().map(|&v| v as f64 / 255.0 - 0.5).collect());
            j += stride;
        }
        i += stride;
    }
}

fn to_matrix(rows: &[Vec<f64>]) -> Array2<f64> {
    let d = rows.first().map_or(0, |r| r.len());
    Array2::from_shape_vec((rows.len(), d), rows.concat()).expect("equal rows")
}

/// Largest eigenvalue of XᵀX/n by power iteration (fixed start, 50 steps: deterministic).
fn lambda_max(x: &Array2<f64>) -> f64 {
    let n = x.dim().0.max(1) as f64;
    let mut v = Array1::<f64>::ones(x.dim().1);
    let mut lam = 1.0;
    for _ in 0..50 {
        let u = x.t().dot(&x.dot(&v)) / n;
        lam = u.dot(&u).sqrt();
        if lam == 0.0 {
            return 1.0;
        }
        v = u / lam;
    }
    lam
}

/// A trained model: per-feature centring and scale, weights [d+1, k] (last row the bias).
pub struct Model {
    mean: Array1<f64>,
    scale: f64,
    w: Array2<f64>,
}

impl Model {
    fn features(&self, x: &Array2<f64>) -> Array2<f64> {
        let (n, d) = x.dim();
        let mut xb = Array2::<f64>::ones((n, d + 1));
        xb.slice_mut(s![.., ..d])
            .assign(&((x - &self.mean) / self.scale));
        xb
    }
}

/// Multinomial logistic regression: features centred by the training mean and scaled by the
/// training standard deviation, full-batch gradient descent with momentum, step 1/λmax.
pub fn train(x: &Array2<f64>, y: &[usize], classes: usize) -> Model {
    let (n, d) = x.dim();
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let var = (x - &mean).mapv(|v| v * v).mean().unwrap_or(1.0);
    let mut model = Model {
        mean,
        scale: var.sqrt().max(1e-12),
        w: Array2::zeros((d + 1, classes)),
    };
    let xb = model.features(x);
    let step = STEP / lambda_max(&xb);
    let mut v = Array2::<f64>::zeros((d + 1, classes));
    let mut onehot = Array2::<f64>::zeros((n, classes));
    for (i, &c) in y.iter().enumerate() {
        onehot[[i, c]] = 1.0;
    }
    for _ in 0..EPOCHS {
        let mut p = xb.dot(&model.w);
        for mut row in p.rows_mut() {
            let m = row.fold(f64::MIN, |a, &b| a.max(b));
            row.mapv_inplace(|z| (z - m).exp());
            let s = row.sum();
            row.mapv_inplace(|z| z / s);
        }
        p -= &onehot;
        let mut g = xb.t().dot(&p) / n as f64;
        g.scaled_add(L2, &model.w);
        v = v * MOMENTUM - g * step;
        model.w += &v;
    }
    model
}

/// Fraction of rows of `x` whose arg-max class equals `y`.
pub fn accuracy(m: &Model, x: &Array2<f64>, y: &[usize]) -> f64 {
    let z = m.features(x).dot(&m.w);
    let right = z
        .rows()
        .into_iter()
        .zip(y)
        .filter(|(r, &c)| {
            let best = r
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .unwrap_or(0);
            best == c
        })
        .count();
    right as f64 / y.len().max(1) as f64
}

/// Run the task for every CF and variant of `opts` (block 8 unless `opts.blocks` says
/// otherwise; the first block size is used).
pub fn run(dir: &Path, opts: &EvalOptions) -> Result<DownstreamReport> {
    let imgs = load_gray(dir)?;
    let k = imgs.len();
    let (mut test, mut ty) = (Vec::new(), Vec::new());
    for (c, (_, g)) in imgs.iter().enumerate() {
        let cut = split_row(g.dim().0);
        let before = test.len();
        patches(g.slice(s![cut.., ..]), TEST_STRIDE, &mut test);
        ty.extend(std::iter::repeat_n(c, test.len() - before));
    }
    let test_x = to_matrix(&test);
    let block = opts.blocks.first().copied().unwrap_or(8);
    let mut conditions: Vec<Option<(Variant, usize)>> = vec![None];
    for &v in &opts.variants {
        for &cf in &opts.cfs {
            conditions.push(Some((v, cf)));
        }
    }
    let mut rows = Vec::new();
    let mut base_acc = 0.0;
    let mut n_train = 0;
    for cond in conditions {
        let (mut train_p, mut y) = (Vec::new(), Vec::new());
        let (mut sse, mut cnt) = (0f64, 0usize);
        let mut ratio = None;
        for (c, (_, g)) in imgs.iter().enumerate() {
            let cut = split_row(g.dim().0);
            let top = g.slice(s![..cut, ..]).to_owned();
            let region = match cond {
                None => top,
                Some((v, cf)) => {
                    let (h, w) = top.dim();
                    let spec = Spec::new(h, w, cf)
                        .with_channels(1)
                        .with_block(block)
                        .with_variant(v);
                    let mut codec = Codec::new(&spec, &opts.engine)?;
                    let x = top
                        .clone()
                        .into_shape_with_order((1, 1, h, w))
                        .expect("shape");
                    let yc = codec.compress(x.view())?;
                    let back = codec.decompress(yc.view())?;
                    let back = back
                        .index_axis(Axis(0), 0)
                        .index_axis(Axis(0), 0)
                        .to_owned();
                    sse += top
                        .iter()
                        .zip(back.iter())
                        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                        .sum::<f64>();
                    cnt += h * w;
                    ratio = Some(spec.compression_ratio());
                    back
                }
            };
            let before = train_p.len();
            patches(region.view(), TRAIN_STRIDE, &mut train_p);
            y.extend(std::iter::repeat_n(c, train_p.len() - before));
        }
        n_train = train_p.len();
        let w = train(&to_matrix(&train_p), &y, k);
        let acc = accuracy(&w, &test_x, &ty);
        if cond.is_none() {
            base_acc = acc;
        }
        rows.push(DownstreamRow {
            training_data: match cond {
                None => "original".into(),
                Some((v, cf)) => format!("{v} cf{cf}"),
            },
            variant: cond.map(|(v, _)| v.to_string()),
            cf: cond.map(|(_, cf)| cf),
            coefficient_ratio: ratio,
            train_psnr_db: (cnt > 0).then(|| super::psnr(sse / cnt as f64, 255.0)),
            test_accuracy: acc,
            accuracy_change: acc - base_acc,
        });
    }
    Ok(DownstreamReport {
        images: imgs.iter().map(|(p, _)| p.display().to_string()).collect(),
        train_patches: n_train,
        test_patches: ty.len(),
        rows,
    })
}

/// The report as a terminal table.
pub fn to_text(r: &DownstreamReport) -> String {
    let mut s = format!(
        "downstream: classify {PATCH}x{PATCH} gray patches by source image ({} classes), \
         {} train / {} test patches, logistic regression\n",
        r.images.len(),
        r.train_patches,
        r.test_patches
    );
    s.push_str(&format!(
        "  {:<16} {:>8} {:>10} {:>9} {:>8}\n",
        "training data", "coef.r", "train PSNR", "test acc", "change"
    ));
    for row in &r.rows {
        s.push_str(&format!(
            "  {:<16} {:>8} {:>10} {:>9.4} {:>+8.4}\n",
            row.training_data,
            row.coefficient_ratio
                .map(|v| format!("{v:.3}"))
                .unwrap_or_default(),
            row.train_psnr_db
                .map(|v| format!("{v:.2}"))
                .unwrap_or_default(),
            row.test_accuracy,
            row.accuracy_change
        ));
    }
    s
}
