//! A validated [`Spec`] turned into a reusable plan: the f64 matrices and the exact sequence of
//! tensor operations (a [`Program`]) of the compress and decompress graphs.
//!
//! # Forms
//! Each image axis (rows, columns) is transformed by its own matrix, so H ≠ W works:
//! compress `Y = L_h · X · L_wᵀ`, decompress `X' = L_hᵀ · Y · L_w` (paper Eq. 4 and 6 with
//! `L = M·T_L`). Per axis the plan picks one of two forms:
//! - **dense** (`tile = full`, the paper's form): one `L` for the whole axis. Padding (mirror,
//!   see [`mirror_index`]) and cropping are folded into the matrix columns/rows, so no Gather is
//!   needed; cost O(n) per pixel.
//! - **tiled** (`tile = t`): the axis is cut into strips of `t` (a multiple of the block) and a
//!   Reshape turns the block-diagonal `L` into one small `t`-wide matrix applied to every strip;
//!   cost O(t) per pixel. Padding to a multiple of `t` is a Gather before the product, and the
//!   extra coefficients/pixels are dropped with a Gather after it. Blocks are independent, so the
//!   extra (padding) blocks never influence the kept ones.
//!
//! # Layouts (identical for every form of a spec)
//! - chop: `[B, C, nbh·CF, nbw·CF]`, block (bi, bj) at rows `bi·CF..`, cols `bj·CF..`.
//! - triangle: `[B, C, nbh·nbw·CF(CF+1)/2]`, block-major (block row, then block column), inside a
//!   block the (i, j) with i + j < CF in row-major order.
//!
//! # Quantized specs
//! The steps ([`crate::quant::Quant::axis_steps`], a diagonal `D_h`, `D_w` per axis) are folded
//! into the f64 axis matrices, in every form: the compress graph's forward matrices have their
//! coefficient rows divided by the step of their frequency (`D⁻¹·L`), so it outputs `Y / step`;
//! the decompress graph's matrices are multiplied by it (`D·L`), and its program starts with a
//! [`Step::Cast`] from the integer codes to the float dtype. See [`fold_steps`].

use ndarray::Array2;

use crate::dct::dct_matrix;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::quant::CodeType;
use crate::spec::{Spec, Tile, MAX_CONSTANT_BYTES};

/// How one image axis is transformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisForm {
    /// One matrix for the whole axis (padding/cropping folded in).
    Dense,
    /// Strips of `t` samples; the axis is padded to `padded` (a multiple of `t`) first.
    Tiled { t: usize, padded: usize },
}

/// One tensor operation of a graph. Shapes are tracked by [`Program`].
#[derive(Clone, Debug)]
pub enum Step {
    /// Select `indices` along `axis` (ONNX Gather).
    Gather { axis: usize, indices: Vec<i64> },
    /// Reinterpret the row-major data with a new shape (ONNX Reshape).
    Reshape { shape: Vec<usize> },
    /// `x @ w` over the last axis of x (ONNX MatMul(x, w)).
    MatMulRight { w: Array2<f64> },
    /// `w @ x` over the last two axes of x (ONNX MatMul(w, x)).
    MatMulLeft { w: Array2<f64> },
    /// Integer codes of type `from` to the graph's float dtype (ONNX Cast); exact. Only the first
    /// step of a quantized decompress program.
    Cast { from: CodeType },
}

/// A straight-line tensor program: the single input's shape and the steps applied to it. The
/// input is float, or integer codes when the first step is a [`Step::Cast`].
#[derive(Clone, Debug)]
pub struct Program {
    pub input: Vec<usize>,
    pub steps: Vec<Step>,
}

impl Step {
    /// Output shape of this step for an input of `shape`.
    pub fn output_shape(&self, shape: &[usize]) -> Vec<usize> {
        let mut out = shape.to_vec();
        match self {
            Step::Gather { axis, indices } => out[*axis] = indices.len(),
            Step::Reshape { shape } => out = shape.clone(),
            Step::MatMulRight { w } => *out.last_mut().expect("rank >= 1") = w.ncols(),
            Step::MatMulLeft { w } => {
                let r = out.len();
                out[r - 2] = w.nrows();
            }
            Step::Cast { .. } => {}
        }
        out
    }

    /// Floating-point operations, counted like the paper: an (m×k)·(k×n) product is m·n·(2k−1).
    pub fn flops(&self, shape: &[usize]) -> u64 {
        let prod = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
        match self {
            Step::MatMulRight { w } => {
                let rows = prod(&shape[..shape.len() - 1]);
                rows * w.ncols() as u64 * (2 * w.nrows() as u64 - 1)
            }
            Step::MatMulLeft { w } => {
                let r = shape.len();
                let batch = prod(&shape[..r - 2]);
                batch * w.nrows() as u64 * shape[r - 1] as u64 * (2 * w.ncols() as u64 - 1)
            }
            _ => 0,
        }
    }
}

impl Program {
    /// The code type the input takes (a quantized decompress program), or `None` for a float
    /// input.
    pub fn input_code(&self) -> Option<CodeType> {
        match self.steps.first() {
            Some(Step::Cast { from }) => Some(*from),
            _ => None,
        }
    }

    /// Shapes before the first step and after every step (len = steps + 1).
    pub fn shapes(&self) -> Vec<Vec<usize>> {
        let mut shapes = vec![self.input.clone()];
        for s in &self.steps {
            let next = s.output_shape(shapes.last().expect("non-empty"));
            shapes.push(next);
        }
        shapes
    }

    pub fn output_shape(&self) -> Vec<usize> {
        self.shapes().pop().expect("non-empty")
    }

    /// Total FLOPs of all MatMul steps.
    pub fn flops(&self) -> u64 {
        let shapes = self.shapes();
        self.steps
            .iter()
            .zip(&shapes)
            .map(|(s, sh)| s.flops(sh))
            .sum()
    }

    /// Bytes of all constants (matrices at `elem` bytes each, indices as int64, reshape targets).
    pub fn constant_bytes(&self, elem: u64) -> u64 {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Gather { indices, .. } => 8 * indices.len() as u64,
                Step::Reshape { shape } => 8 * shape.len() as u64,
                Step::MatMulRight { w } | Step::MatMulLeft { w } => elem * w.len() as u64,
                Step::Cast { .. } => 0,
            })
            .sum()
    }

    /// Largest constant and largest tensor (input, intermediates, output), in elements.
    pub fn largest_constant_and_tensor(&self) -> (u64, u64) {
        let c = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Gather { indices, .. } => indices.len() as u64,
                Step::Reshape { shape } => shape.len() as u64,
                Step::MatMulRight { w } | Step::MatMulLeft { w } => w.len() as u64,
                Step::Cast { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        let t = self
            .shapes()
            .iter()
            .map(|s| s.iter().map(|&d| d as u64).product::<u64>())
            .max()
            .unwrap_or(0);
        (c, t)
    }

    /// Op type of each step, as in the ONNX graph.
    pub fn op_types(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Gather { .. } => "Gather",
                Step::Reshape { .. } => "Reshape",
                Step::MatMulRight { .. } | Step::MatMulLeft { .. } => "MatMul",
                Step::Cast { .. } => "Cast",
            })
            .collect()
    }
}

/// Source index of padded position `i` for an axis of length `n`: half-sample symmetric mirror
/// (…c b a | a b c | c b a…), periodic with period 2n so any amount of padding works.
///
/// Why mirror and not edge replication: the DCT-II's implicit boundary extension is exactly this
/// symmetric one, so a mirrored partial block has no artificial jump at the image edge and its
/// energy stays in the low frequencies that chop keeps; edge replication creates a kink (a jump in
/// the derivative) that leaks into the dropped high frequencies and raises the error near the edge.
pub fn mirror_index(i: usize, n: usize) -> usize {
    let j = i % (2 * n);
    if j < n {
        j
    } else {
        2 * n - 1 - j
    }
}

/// The forward matrix of one axis in dense form: `L = M · T_L · P`, shape (nb·CF × n), where P
/// mirror-pads n to nb·block. Row bi·CF + i holds basis vector i of block bi.
pub fn forward_dense(n: usize, block: usize, cf: usize) -> Array2<f64> {
    let t = dct_matrix(block);
    let nb = n.div_ceil(block);
    let mut l = Array2::<f64>::zeros((nb * cf, n));
    for bi in 0..nb {
        for i in 0..cf {
            for u in 0..block {
                l[[bi * cf + i, mirror_index(bi * block + u, n)]] += t[[i, u]];
            }
        }
    }
    l
}

/// The inverse matrix of one axis in dense form: the first n rows of `T_Lᵀ · Mᵀ`, shape
/// (n × nb·CF); it reconstructs the padded axis and crops it in one product.
pub fn inverse_dense(n: usize, block: usize, cf: usize) -> Array2<f64> {
    let t = dct_matrix(block);
    let nb = n.div_ceil(block);
    let mut l = Array2::<f64>::zeros((n, nb * cf));
    for x in 0..n {
        let bi = x / block;
        for i in 0..cf {
            l[[x, bi * cf + i]] = t[[i, x - bi * block]];
        }
    }
    l
}

/// The forward matrix of one strip of `tile` samples: block-diagonal `M · T`, (tile/block·CF × tile).
pub fn forward_tile(tile: usize, block: usize, cf: usize) -> Array2<f64> {
    forward_dense(tile, block, cf)
}

/// How [`fold_steps`] applies a diagonal of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// Divide (compress: the graph outputs coefficients divided by their steps).
    Divide,
    /// Multiply (decompress: the graph dequantizes the codes it is given).
    Multiply,
}

/// Fold one axis's steps into a matrix whose rows are coefficients (row `k` holds frequency
/// `k % cf` of some block: the forward matrices of every form, and the transposes of the inverse
/// ones): row k is divided or multiplied by `d[k % cf]`, in f64 (one correctly rounded operation
/// per entry). `None` leaves the matrix as it is.
pub fn fold_steps(mut m: Array2<f64>, cf: usize, d: Option<&[f64]>, fold: Fold) -> Array2<f64> {
    if let Some(d) = d {
        assert_eq!(d.len(), cf, "one step per frequency");
        for (k, mut row) in m.rows_mut().into_iter().enumerate() {
            let s = d[k % cf];
            match fold {
                Fold::Divide => row.mapv_inplace(|v| v / s),
                Fold::Multiply => row.mapv_inplace(|v| v * s),
            }
        }
    }
    m
}

/// The 0/1 expansion that turns a block's kept coefficients (in stored order) back into its
/// full CF×CF square (row-major), with zeros where the layout drops a coefficient.
pub fn block_expansion(layout: &Layout) -> Array2<f64> {
    let cf = layout.cf;
    let mut e = Array2::<f64>::zeros((layout.per_block(), cf * cf));
    for (k, &(i, j)) in layout.kept().iter().enumerate() {
        e[[k, i * cf + j]] = 1.0;
    }
    e
}

/// The `tile = auto` rule (see README, "Forms"), from `bench/run_grid.sh` on a 2-core CPU: an
/// axis of at most 4 blocks stays dense (one cache-resident product, fewest ops); longer axes use
/// strips of 2 blocks (16 for block 8) where that divides the padded axis, else 1 block, so no
/// padding is ever added. Strips of 2 blocks were the best or within noise of the best tile for
/// ONNX Runtime and tract from 64² to 2048², and tract's decompression gained most from them;
/// strips of 8 blocks were 1.5-2.5x slower everywhere.
pub fn auto_tile(padded: usize, block: usize) -> AxisForm {
    if padded <= 4 * block {
        return AxisForm::Dense;
    }
    for mult in [2, 1] {
        let t = block * mult;
        if padded.is_multiple_of(t) {
            return AxisForm::Tiled { t, padded };
        }
    }
    AxisForm::Tiled { t: block, padded }
}

/// Resolve the spec's tile for one axis whose block-padded length is `padded`.
pub fn resolve_axis(tile: Tile, padded: usize, block: usize) -> AxisForm {
    match tile {
        Tile::Full => AxisForm::Dense,
        Tile::Auto => auto_tile(padded, block),
        Tile::Size(t) if t >= padded => AxisForm::Dense,
        Tile::Size(t) => AxisForm::Tiled {
            t,
            padded: padded.div_ceil(t) * t,
        },
    }
}

/// A validated spec with its graph programs. Build once, reuse for every batch.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What the user asked for (the whole image).
    pub spec: Spec,
    /// What the graphs process: one serialized chunk (equal to `spec` when serialize = 1).
    pub chunk: Spec,
    /// Resolved form of the row (height) axis of the chunk.
    pub rows: AxisForm,
    /// Resolved form of the column (width) axis of the chunk.
    pub cols: AxisForm,
    pub compress: Program,
    pub decompress: Program,
}

impl Plan {
    pub fn new(spec: &Spec) -> Result<Plan> {
        spec.validate()?;
        let chunk = spec.chunk_spec();
        let (hp, wp) = chunk.padded();
        let rows = resolve_axis(spec.tile, hp, spec.block);
        let cols = resolve_axis(spec.tile, wp, spec.block);
        // Refuse before allocating: dense matrices grow with n², and f64 is used while building.
        let (bytes, index_bytes) = build_bytes(spec, &chunk, rows, cols);
        if index_bytes > MAX_CONSTANT_BYTES {
            return Err(Error::InvalidSpec {
                field: "height x width",
                value: format!("{}x{}", chunk.height, chunk.width),
                allowed: format!(
                    "sizes whose graph constants fit the {} MiB cap (the Gather index vectors \
                     alone need {} MiB): use --serialize, or split the data",
                    MAX_CONSTANT_BYTES >> 20,
                    index_bytes >> 20
                ),
            });
        }
        if bytes > MAX_CONSTANT_BYTES {
            return Err(Error::InvalidSpec {
                field: "tile",
                value: spec.tile.to_string(),
                allowed: format!(
                    "a form whose matrices fit the {} MiB cap (this one needs {} MiB for \
                     {}x{}): use --tile auto or --tile 32, or --serialize",
                    MAX_CONSTANT_BYTES >> 20,
                    bytes >> 20,
                    chunk.height,
                    chunk.width
                ),
            });
        }
        let compress = build_compress(&chunk, rows, cols);
        let decompress = build_decompress(&chunk, rows, cols);
        Ok(Plan {
            spec: spec.clone(),
            chunk,
            rows,
            cols,
            compress,
            decompress,
        })
    }

    /// The tile actually used, for names and reports ("full", "32", or "32x16" if the axes differ).
    pub fn tile_label(&self) -> String {
        let label = |f: AxisForm| match f {
            AxisForm::Dense => "full".to_string(),
            AxisForm::Tiled { t, .. } => t.to_string(),
        };
        let (r, c) = (label(self.rows), label(self.cols));
        if r == c {
            r
        } else {
            format!("{r}x{c}")
        }
    }

    /// File-name stem encoding the whole spec with the resolved tile.
    pub fn name(&self) -> String {
        self.spec.name_with_tile(&self.tile_label())
    }
}

/// Bytes the constants of `spec`'s programs take while they are built, before anything is
/// allocated: (the f64 matrices, the int64 Gather index vectors). [`Plan::new`] refuses either
/// over [`MAX_CONSTANT_BYTES`]; `export --max-memory-mb` checks their sum.
pub fn estimate_build_bytes(spec: &Spec) -> (u64, u64) {
    let chunk = spec.chunk_spec();
    let (hp, wp) = chunk.padded();
    let rows = resolve_axis(spec.tile, hp, spec.block);
    let cols = resolve_axis(spec.tile, wp, spec.block);
    build_bytes(spec, &chunk, rows, cols)
}

fn build_bytes(spec: &Spec, chunk: &Spec, rows: AxisForm, cols: AxisForm) -> (u64, u64) {
    // Saturating: a size that overflows u64 is over any cap.
    let coeffs = |n: usize| (n.div_ceil(spec.block) as u64).saturating_mul(spec.cf as u64);
    let matrix_elems = |form: AxisForm, n: usize| -> u64 {
        match form {
            AxisForm::Dense => coeffs(n).saturating_mul(n as u64).saturating_mul(2),
            AxisForm::Tiled { t, .. } => (t as u64).saturating_mul(t as u64).saturating_mul(2),
        }
    };
    let bytes = matrix_elems(rows, chunk.height)
        .saturating_add(matrix_elems(cols, chunk.width))
        .saturating_mul(8);
    // The Gather index vectors (int64, and built as such) grow with the image size: both
    // programs hold a few per axis, each at most ~3 padded lengths or 2 coefficient lengths
    // long, and the triangle's reordering of the kept coefficients.
    let index_elems = |form: AxisForm, n: usize| -> u64 {
        let padded = match form {
            AxisForm::Dense => n.div_ceil(spec.block).saturating_mul(spec.block),
            AxisForm::Tiled { padded, .. } => padded,
        } as u64;
        padded
            .saturating_mul(3)
            .saturating_add(coeffs(n).saturating_mul(2))
    };
    let triangle = if chunk.layout().is_grid() {
        0
    } else {
        coeffs(chunk.width).saturating_mul(spec.cf as u64 * 2)
    };
    let index_bytes = index_elems(rows, chunk.height)
        .saturating_add(index_elems(cols, chunk.width))
        .saturating_add(triangle)
        .saturating_mul(8);
    (bytes, index_bytes)
}

/// Tracks the current shape while steps are appended.
struct Builder {
    shape: Vec<usize>,
    steps: Vec<Step>,
    input: Vec<usize>,
}

impl Builder {
    fn new(input: Vec<usize>) -> Self {
        Builder {
            shape: input.clone(),
            steps: Vec::new(),
            input,
        }
    }
    fn push(&mut self, step: Step) {
        self.shape = step.output_shape(&self.shape);
        self.steps.push(step);
    }
    fn gather(&mut self, axis: usize, indices: Vec<i64>) {
        // A Gather of 0..n on an axis of length n is the identity: skip it.
        let identity = indices.len() == self.shape[axis]
            && indices.iter().enumerate().all(|(i, &v)| v == i as i64);
        if !identity {
            self.push(Step::Gather { axis, indices });
        }
    }
    fn reshape(&mut self, shape: Vec<usize>) {
        if shape != self.shape {
            self.push(Step::Reshape { shape });
        }
    }
    fn finish(self) -> Program {
        Program {
            input: self.input,
            steps: self.steps,
        }
    }
}

/// The per-axis step diagonals of a quantized spec (`None` for an unquantized one).
fn axis_steps(s: &Spec) -> (Option<Vec<f64>>, Option<Vec<f64>>) {
    match &s.quant {
        Some(q) => {
            let (dh, dw) = q.axis_steps(s.cf);
            (Some(dh), Some(dw))
        }
        None => (None, None),
    }
}

fn idx(range: impl Iterator<Item = usize>) -> Vec<i64> {
    range.map(|i| i as i64).collect()
}

fn build_compress(s: &Spec, rows: AxisForm, cols: AxisForm) -> Program {
    let (b, c, h, w) = (s.batch, s.channels, s.height, s.width);
    let (nbh, nbw) = s.blocks();
    let (hc, wc) = (nbh * s.cf, nbw * s.cf);
    let mut g = Builder::new(vec![b, c, h, w]);
    let (dh, dw) = axis_steps(s);
    // Forward matrices with their coefficient rows divided by the steps.
    let fwd_w = |m: Array2<f64>| fold_steps(m, s.cf, dw.as_deref(), Fold::Divide);
    let fwd_h = |m: Array2<f64>| fold_steps(m, s.cf, dh.as_deref(), Fold::Divide);

    // Columns first: the right product is one large GEMM and shrinks the data by CF/block before
    // the row product (the paper's order, A·RHS first).
    match cols {
        AxisForm::Dense => g.push(Step::MatMulRight {
            w: fwd_w(forward_dense(w, s.block, s.cf)).reversed_axes(),
        }),
        AxisForm::Tiled { t, padded } => {
            g.gather(3, idx((0..padded).map(|i| mirror_index(i, w))));
            g.reshape(vec![b * c * h * (padded / t), t]);
            g.push(Step::MatMulRight {
                w: fwd_w(forward_tile(t, s.block, s.cf)).reversed_axes(),
            });
            g.reshape(vec![b, c, h, padded / s.block * s.cf]);
        }
    }
    let wx = g.shape[3];
    match rows {
        AxisForm::Dense => g.push(Step::MatMulLeft {
            w: fwd_h(forward_dense(h, s.block, s.cf)),
        }),
        AxisForm::Tiled { t, padded } => {
            g.gather(2, idx((0..padded).map(|i| mirror_index(i, h))));
            g.reshape(vec![b * c * (padded / t), t, wx]);
            g.push(Step::MatMulLeft {
                w: fwd_h(forward_tile(t, s.block, s.cf)),
            });
            g.reshape(vec![b, c, padded / s.block * s.cf, wx]);
        }
    }
    // Drop the coefficients of blocks that only exist because of tile padding.
    g.gather(2, idx(0..hc));
    let layout = s.layout();
    if layout.is_grid() {
        g.gather(3, idx(0..wc));
    } else {
        // One block row is a contiguous strip of CF·wx values; pick the kept coefficients of
        // every block in it, block-major (this also drops tile-padding columns).
        g.reshape(vec![b, c, nbh, s.cf * wx]);
        let mut sel = Vec::with_capacity(nbw * layout.per_block());
        for bj in 0..nbw {
            for &(i, j) in layout.kept() {
                sel.push((i * wx + bj * s.cf + j) as i64);
            }
        }
        g.gather(3, sel);
        g.reshape(vec![b, c, nbh * nbw * layout.per_block()]);
    }
    // The channel transform commutes with the per-channel transform and the steps: applied
    // last, it runs on the small coefficient tensor.
    mix_channels(&mut g, s, false);
    g.finish()
}

/// A quantized spec's channel transform as one MatMul over the channel axis of `[B, C, …]`:
/// `M` (compress) or `Mᵀ` (`inverse`, decompress), with Reshapes to and from `[B, C, positions]`.
fn mix_channels(g: &mut Builder, s: &Spec, inverse: bool) {
    let Some(mix) = s.quant.as_ref().and_then(|q| q.mix) else {
        return;
    };
    let shape = g.shape.clone();
    let positions = shape[2..].iter().product();
    let m = mix.matrix();
    g.reshape(vec![shape[0], shape[1], positions]);
    g.push(Step::MatMulLeft {
        w: if inverse { m.reversed_axes() } else { m },
    });
    g.reshape(shape);
}

fn build_decompress(s: &Spec, rows: AxisForm, cols: AxisForm) -> Program {
    let (b, c, h, w) = (s.batch, s.channels, s.height, s.width);
    let (nbh, nbw) = s.blocks();
    let (hc, wc) = (nbh * s.cf, nbw * s.cf);
    let mut g = Builder::new(s.compressed_shape());
    let (dh, dw) = axis_steps(s);
    // Inverse matrices (transposed so rows are coefficients) multiplied by the steps.
    let inv_w = |m: Array2<f64>| fold_steps(m, s.cf, dw.as_deref(), Fold::Multiply);
    let inv_h = |m: Array2<f64>| fold_steps(m, s.cf, dh.as_deref(), Fold::Multiply);
    if let Some(q) = &s.quant {
        g.push(Step::Cast { from: q.code });
    }
    mix_channels(&mut g, s, true);

    let layout = s.layout();
    if !layout.is_grid() {
        // Restore the zeros with a MatMul by the 0/1 expansion (no Scatter), giving block-major
        // CF×CF squares; then a Gather inside each block-row strip reorders them to the grid.
        g.reshape(vec![b * c * nbh * nbw, layout.per_block()]);
        g.push(Step::MatMulRight {
            w: block_expansion(&layout),
        });
        g.reshape(vec![b, c, nbh, nbw * s.cf * s.cf]);
        let mut perm = Vec::with_capacity(s.cf * wc);
        for i in 0..s.cf {
            for bj in 0..nbw {
                for j in 0..s.cf {
                    perm.push((bj * s.cf * s.cf + i * s.cf + j) as i64);
                }
            }
        }
        g.gather(3, perm);
        g.reshape(vec![b, c, hc, wc]);
    }

    let cols_step = |g: &mut Builder| {
        let hx = g.shape[2];
        match cols {
            AxisForm::Dense => g.push(Step::MatMulRight {
                w: inv_w(inverse_dense(w, s.block, s.cf).reversed_axes()),
            }),
            AxisForm::Tiled { t, padded } => {
                let ct = t / s.block * s.cf;
                let wct = padded / s.block * s.cf;
                // Padding blocks may hold anything: they only produce columns that are cropped.
                g.gather(3, idx((0..wct).map(|i| i % wc)));
                g.reshape(vec![b * c * hx * (padded / t), ct]);
                g.push(Step::MatMulRight {
                    w: inv_w(forward_tile(t, s.block, s.cf)),
                });
                g.reshape(vec![b, c, hx, padded]);
                g.gather(3, idx(0..w));
            }
        }
    };
    let rows_step = |g: &mut Builder| {
        let wx = g.shape[3];
        match rows {
            AxisForm::Dense => g.push(Step::MatMulLeft {
                w: inv_h(inverse_dense(h, s.block, s.cf).reversed_axes()).reversed_axes(),
            }),
            AxisForm::Tiled { t, padded } => {
                let ct = t / s.block * s.cf;
                let hct = padded / s.block * s.cf;
                g.gather(2, idx((0..hct).map(|i| i % hc)));
                g.reshape(vec![b * c * (padded / t), ct, wx]);
                g.push(Step::MatMulLeft {
                    w: inv_h(forward_tile(t, s.block, s.cf)).reversed_axes(),
                });
                g.reshape(vec![b, c, padded, wx]);
                g.gather(2, idx(0..h));
            }
        }
    };
    // Dense columns: the paper's order (Y·LHS first, Eq. 7). Tiled columns: rows first, so the
    // left product (many small GEMMs in most engines) runs on the small coefficient tensor and
    // the large right product is the last step.
    if cols == AxisForm::Dense {
        cols_step(&mut g);
        rows_step(&mut g);
    } else {
        rows_step(&mut g);
        cols_step(&mut g);
    }
    g.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_index_is_symmetric_and_periodic() {
        let got: Vec<usize> = (0..8).map(|i| mirror_index(i, 3)).collect();
        assert_eq!(got, vec![0, 1, 2, 2, 1, 0, 0, 1]);
        assert_eq!(mirror_index(5, 1), 0);
    }

    #[test]
    fn dense_flops_equal_paper_eq5_eq7() {
        for n in [64usize, 256, 512] {
            for cf in 1..=8 {
                let spec = Spec::new(n, n, cf).with_channels(1).with_tile(Tile::Full);
                let p = Plan::new(&spec).unwrap();
                let (nf, cff) = (n as f64, cf as f64);
                let eq5 = 2.0 * nf.powi(3) * cff / 8.0 * (cff / 8.0 + 1.0)
                    - nf * nf * (cff / 8.0 + cff * cff / 64.0);
                let eq7 =
                    2.0 * nf.powi(3) * cff / 8.0 * (cff / 8.0 + 1.0) - nf * nf * (cff / 8.0 + 1.0);
                assert_eq!(p.compress.flops() as f64, eq5, "n={n} cf={cf}");
                assert_eq!(p.decompress.flops() as f64, eq7, "n={n} cf={cf}");
                assert_eq!(p.compress.op_types(), vec!["MatMul", "MatMul"]);
            }
        }
    }

    #[test]
    fn shapes_match_spec() {
        for variant in crate::layout::VARIANTS {
            for tile in [Tile::Full, Tile::Auto, Tile::Size(8), Tile::Size(32)] {
                for (h, w) in [(300, 451), (25, 25), (64, 128)] {
                    let spec = Spec::new(h, w, 3).with_variant(variant).with_tile(tile);
                    let p = Plan::new(&spec).unwrap();
                    assert_eq!(p.compress.input, spec.input_shape());
                    assert_eq!(p.compress.output_shape(), spec.compressed_shape());
                    assert_eq!(p.decompress.input, spec.compressed_shape());
                    assert_eq!(p.decompress.output_shape(), spec.input_shape());
                }
            }
        }
    }
}
