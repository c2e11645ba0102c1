//! Fused, allocation-free, multithreaded block-separable transforms on the CPU: the native
//! engine of dctchop (DCT+Chop, HPDC'24). dctchop's `engine::native` drives it with the plan's
//! matrices and its layout's kept coefficients.
//!
//! # What it computes
//! Every plane (one channel of one sample, `H×W` row-major f32, or integer samples — `u8`,
//! `u16`, `i16`, see [`Pixel`] — converted to f32 as they are loaded) is cut into
//! `b×b` blocks (`b ∈ {4, 8, 16, 32}`), padded at the bottom/right edges by
//! half-sample symmetric mirroring ([`mirror`]). For each block `X`:
//!
//! * compress:   `Y  = A_rows · X · A_colsᵀ`   (`c×c`, `A_* ` are `c×b`)
//! * decompress: `X' = B_rowsᵀ · Y · B_cols`   (`b×b`, cropped to `H×W`)
//!
//! With `A = B = F` (the first `c` rows of the orthonormal DCT-II, see
//! [`dct_rows`]) this is DCT+Chop. The matrices are arbitrary so that
//! quantisation step sizes can be folded in (`diag(1/s)·F` / `diag(s)·F`).
//!
//! Layouts per plane (planes are concatenated), chosen by [`Keep`]:
//! * [`Keep::Grid`] (the whole square): `[nbh·c, nbw·c]`, block `(bi,bj)` coefficient `(i,j)`
//!   at row `bi·c+i`, column `bj·c+j`.
//! * [`Keep::BlockMajor`] (row `i` keeps its first `row_len[i]` coefficients, e.g. the
//!   triangle `i + j < c`): `[nbh·nbw·K]`, `K = Σ row_len`, block-major, inside a
//!   block the `(i,j)` with `i+j<c` in row-major order.
//!
//! # How (and why this way)
//! Once vectorised the transform is close to memory bound, so the design goal
//! is to touch every input byte once and every output byte once, with nothing
//! full-size in between. The unit of work is a *strip*: one block row (`b`
//! image rows × `W`) of one plane. A strip is processed in column chunks: whole
//! rows up to [`CHUNK`] = 2048 columns, narrower where the `c×chunk`
//! intermediate would not fit in [`CHUNK_BYTES`] (an L1 data cache: above
//! 1024 columns for `c > 4`, above 512 for `c > 8`). Whole rows matter for memory, not for arithmetic: each
//! row of a strip is then read or written as one piece, so the hardware
//! prefetcher follows one ascending stream per row instead of `b` interleaved
//! short ones (decompress at 256² was 13–25 % slower with 128-column chunks):
//!
//! * **compress**: (1) *row pass* — `T[i][x] = Σ_k A_rows[i][k]·X[k][x]`
//!   (`c×chunk`), vectorised over 16 contiguous columns, the `b` input rows of a
//!   lane group loaded once and kept in registers while the `c` outputs are
//!   produced. It is the heavy pass (`c` FMAs per input pixel) and goes first
//!   because it shrinks the data `b/c`-fold along the contiguous axis, where it
//!   vectorises without shuffles. When every row of `A_rows` is mirror-symmetric
//!   or antisymmetric (the DCT's rows alternate; detected per plan, within a few
//!   ulps), it first forms the sums and differences of mirrored input rows
//!   (`X[k] ± X[b-1-k]`) and then needs `b/2` terms per output instead of `b`.
//!   (2) *column pass* — per block and row `i`:
//!   `Y[i][·] = Σ_l T[i][bj·b+l]·A_colsᵀ[l][·]`, FMAs of a broadcast `T` value
//!   with register-resident `b`-lane rows of `A_colsᵀ` (lanes `≥ c` are zero
//!   padding), `c²/b` FMAs per pixel. Results go to a small staging row with
//!   overlapping full-width stores (which makes the triangle selection free) and
//!   are then copied, or rounded to integer codes, into the output — with
//!   streaming stores (no read of the line first) for long f32 runs when the
//!   output is at least a quarter of the input.
//! * **decompress** mirrors it: the cheap *width pass* expands the chunk's
//!   coefficients to `c×chunk` (broadcast-FMA), one coefficient row at a time
//!   so the row's length is a compile-time constant of the inner loop (one
//!   instance per length up to 8), then the heavy *height pass*
//!   writes the `b` output rows one row at a time (so the stores form one
//!   ascending stream per page for the hardware prefetcher), 16 lanes per store,
//!   straight into the caller's buffer; cropped rows are never computed.
//!
//! Mirror padding is handled by index mapping only at the edges: rows are
//! mapped once per strip (an array of `b` row offsets, consecutive for interior
//! strips), and the at most one partially valid/padded column group at the right
//! edge (`≤ 32` columns) is gathered into / scattered from a small scratch tile.
//! The interior path has no per-element branches.
//!
//! For narrow images (`W < 1024`) compress prefetches the input at least
//! [`READ_AHEAD_BYTES`] ahead while it works on the current strip (see
//! `row_pass`): the row pass reads `b` rows interleaved, which defeats the L2
//! streamer when rows share a 4 KiB page. Decompress prefetches its output
//! [`WRITE_AHEAD_BYTES`] ahead of every store, at every width, so the stores'
//! line fills are under way before the stores reach them.
//!
//! # SIMD
//! Kernels are plain safe Rust over fixed-size arrays (`[f32; 16]` lane groups,
//! `[f32; b]` block rows with `b` a const generic) that LLVM autovectorises. They
//! are compiled three times — baseline x86-64/other (SSE2, separate mul+add),
//! AVX2+FMA and AVX-512 — and the best one for the running CPU is chosen at
//! plan construction ([`Isa::detect`]), so the binary runs on any x86-64
//! without `-C target-cpu`. The only `unsafe` in the crate is the call into
//! those `#[target_feature]` functions (after run-time detection), the
//! prefetch instruction (`prefetch_l2`), the SSE streaming store and its
//! `sfence` (`stream_f32`, `stream_fence`) and the lifetime erasure in the
//! thread pool; each is justified where it occurs.
//!
//! # Threading
//! The strips of all planes form one global list (`planes·nbh` strips), cut into
//! tasks of consecutive strips (~[`TASK_PIXELS`] pixels each, so a 2048² plane
//! yields 256 tasks and a 64² plane is grouped with its neighbours). Each
//! task's output is one contiguous range of the output buffer, so tasks are
//! claimed by splitting the output slice under a mutex — safe, no allocation,
//! dynamic load balancing, and results independent of the thread count. A
//! persistent pool (`pool.rs`) runs the claim loop on every thread; calls with
//! little work run inline on the caller.
//!
//! # Allocation
//! `compress*`/`decompress*` allocate nothing: the plan owns one scratch buffer
//! per pool thread (131 KiB for `b = 8`), lent to each thread of a call and
//! neither allocated nor zeroed per call, and the pool is created with the plan
//! (see `tests/alloc.rs`). Only calls made concurrently on one plan from several
//! threads of the caller can find the buffers lent out; they allocate their own.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod pool;

use pool::Pool;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Widest column chunk processed at once (floats); sizes the scratch. Plans
/// take whole rows up to this width, as far as the `c×chunk` intermediate fits
/// in [`CHUNK_BYTES`]: fewer, longer row pieces per strip keep the hardware
/// prefetcher on one stream per row (crates/block_transform/README.md).
pub const CHUNK: usize = 2048;
/// Budget of the `c×chunk` intermediate (an L1 data cache).
pub const CHUNK_BYTES: usize = 32 * 1024;
/// SIMD lane group: 16 f32 = one AVX-512 register / two AVX2 registers.
const LANES: usize = 16;
/// Widest right-edge tile (columns not covered by whole lane groups + padding).
const TAIL: usize = 32;
/// Row stride of the `c×chunk` intermediate: one cache line more than
/// [`CHUNK`], so that its rows (8 KiB apart otherwise) fall in different L1
/// sets from each other and from the image rows of a strip.
const TMP_W: usize = CHUNK + LINE_F32;
/// Row stride of the staging buffer: a chunk's `nb·c ≤ CHUNK` values plus the
/// `b`-lane overhang of the overlapping stores.
const STAGE_W: usize = CHUNK + 32;
/// Compress prefetches its input for images narrower than this (see
/// `row_pass`). From 1024 on each row has pages of its own, where the
/// hardware prefetcher keeps up and the prefetches only cost load slots
/// (crates/block_transform/README.md has the measurements).
const READ_AHEAD_MAX_W: usize = 1024;
/// Least distance of the compress read-ahead: it runs whole strips ahead, at
/// least this many bytes (f32 samples: 4 strips at 64², 2 at 128², one from 256²).
pub const READ_AHEAD_BYTES: usize = 8 * 1024;
/// Decompress prefetches the output this many bytes ahead of each store.
pub const WRITE_AHEAD_BYTES: usize = 4 * 1024;
/// Target pixels per task: ~5–10 µs of work, far above the ~50 ns claim cost.
pub const TASK_PIXELS: usize = 16 * 1024;
/// Below this many (padded) pixels a call runs on the calling thread only:
/// waking a parked worker costs a few µs.
const INLINE_PIXELS: usize = 64 * 1024;

/// Which coefficients of each `c×c` block are stored, and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Keep {
    /// The whole square, as a grid: plane `[nbh·c, nbw·c]`.
    Grid,
    /// Row `i` of a block keeps its first `row_len[i]` coefficients (`row_len.len() == c`);
    /// blocks are stored block-major, `K = Σ row_len` values each, row after row.
    BlockMajor(Vec<usize>),
}

impl Keep {
    /// The triangle `i + j < c` (DCT+Chop's triangle variant), block-major.
    pub fn triangle(c: usize) -> Keep {
        Keep::BlockMajor((0..c).map(|i| c - i).collect())
    }
}

/// Instruction set a kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Baseline target (SSE2 on x86-64), no FMA.
    Generic,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/VL/BW/DQ + FMA (x86-64-v4).
    Avx512,
}

impl Isa {
    /// Best instruction set supported by the running CPU.
    pub fn detect() -> Isa {
        if Isa::Avx512.is_supported() {
            Isa::Avx512
        } else if Isa::Avx2.is_supported() {
            Isa::Avx2
        } else {
            Isa::Generic
        }
    }

    /// Whether the running CPU can execute kernels compiled for `self`.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Errors from plan construction or buffer-size checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Block size not in {4, 8, 16, 32}.
    BadBlock(usize),
    /// `cf` not in `1..=block`.
    BadCf {
        /// requested cf
        cf: usize,
        /// block size
        block: usize,
    },
    /// Height or width is zero.
    EmptyImage,
    /// A slice has the wrong length.
    BadLen {
        /// which argument
        what: &'static str,
        /// required length
        expected: usize,
        /// given length
        got: usize,
    },
    /// The requested instruction set is not supported by this CPU.
    Unsupported(Isa),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BadBlock(b) => write!(f, "block size {b} not in {{4, 8, 16, 32}}"),
            Error::BadCf { cf, block } => write!(f, "cf {cf} not in 1..={block}"),
            Error::EmptyImage => write!(f, "image height and width must be >= 1"),
            Error::BadLen {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected length {expected}, got {got}"),
            Error::Unsupported(isa) => write!(f, "{isa:?} not supported by this CPU"),
        }
    }
}

impl std::error::Error for Error {}

/// Half-sample symmetric mirror index: padded index `i` reads source `mirror(i, n)`.
/// Periodic with period `2n`, so it is valid for any `i` even when `n < b`.
#[inline]
pub fn mirror(i: usize, n: usize) -> usize {
    let j = i % (2 * n);
    if j < n { j } else { 2 * n - 1 - j }
}

/// The first `c` rows of the orthonormal `b×b` DCT-II matrix (row-major `c×b`),
/// computed in f64 and rounded to f32.
pub fn dct_rows(b: usize, c: usize) -> Vec<f32> {
    let mut m = Vec::with_capacity(c * b);
    for i in 0..c {
        for j in 0..b {
            let v = if i == 0 {
                1.0 / (b as f64).sqrt()
            } else {
                (2.0 / b as f64).sqrt()
                    * (std::f64::consts::PI * (2 * j + 1) as f64 * i as f64 / (2 * b) as f64).cos()
            };
            m.push(v as f32);
        }
    }
    m
}

/// Per-axis matrices, each row-major `c×b`.
#[derive(Clone, Copy, Debug)]
pub struct Matrices<'a> {
    /// compress, height axis: `Y = A_rows·X·A_colsᵀ`
    pub a_rows: &'a [f32],
    /// compress, width axis
    pub a_cols: &'a [f32],
    /// decompress, height axis: `X' = B_rowsᵀ·Y·B_cols`
    pub b_rows: &'a [f32],
    /// decompress, width axis
    pub b_cols: &'a [f32],
}

/// Integer code types for quantised coefficients (`i8`, `i16`).
///
/// Codes are `clamp(round_ties_even(y), -MAX, MAX)`: symmetric, `i8::MIN` /
/// `i16::MIN` are never produced. NaN becomes 0 (not counted as clamped).
pub trait Code: Copy + Send + Sync + 'static + sealed::Sealed + Elem {
    /// Largest magnitude produced (127 or 32767).
    const MAX: f32;
    /// The code as f32 (exact).
    fn to_f32(self) -> f32;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
}

/// Element types the kernels read/write (f32 coefficients or integer codes).
/// Implementation detail of [`Code`]; sealed.
#[doc(hidden)]
pub trait Elem: Copy + Send + Sync + 'static + sealed::Sealed {
    /// Writes `src` converted to `Self` into `dst`; returns how many were clamped.
    fn store(src: &[f32], dst: &mut [Self]) -> usize;
    /// [`Elem::store`] with streaming (non-temporal) stores where it can.
    fn store_stream(src: &[f32], dst: &mut [Self]) -> usize {
        Self::store(src, dst)
    }
    /// Gives f32 access to `rows` rows of `len` coefficients starting at `off`
    /// (stride `stride`) of `src`: f32 returns `src` itself; codes convert into
    /// `stage` (row stride `STAGE_W`). Returns `(data, offset, stride)`.
    fn view<'s>(
        src: &'s [Self],
        stage: &'s mut [f32],
        rows: usize,
        len: usize,
        stride: usize,
        off: usize,
    ) -> (&'s [f32], usize, usize);
}

impl Elem for f32 {
    #[inline(always)]
    fn store(src: &[f32], dst: &mut [f32]) -> usize {
        dst.copy_from_slice(src);
        0
    }
    #[inline(always)]
    fn store_stream(src: &[f32], dst: &mut [f32]) -> usize {
        stream_f32(src, dst);
        0
    }
    #[inline(always)]
    fn view<'s>(
        src: &'s [f32],
        _: &'s mut [f32],
        _: usize,
        _: usize,
        stride: usize,
        off: usize,
    ) -> (&'s [f32], usize, usize) {
        (src, off, stride)
    }
}

/// 1.5·2²³: adding it to an f32 with |v| < 2²² rounds v to an integer, ties to
/// even (the FP default mode). Branch-free and vectorisable on every ISA,
/// unlike `round_ties_even`, a libm call on baseline x86-64.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// Bit pattern of [`ROUND_MAGIC`]: `bits(MAGIC + n) = bits(MAGIC) + n` for |n| < 2²².
const ROUND_MAGIC_BITS: i32 = 0x4B40_0000;

/// `v` limited to `[lo, hi]`; NaN passes through (maps to `vmaxps`/`vminps`).
#[inline(always)]
fn clamp_sel(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v < lo { lo } else { v };
    if v > hi { hi } else { v }
}

macro_rules! impl_code {
    ($t:ty, $max:expr) => {
        impl Code for $t {
            const MAX: f32 = $max as f32;
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
        }
        impl Elem for $t {
            #[inline(always)]
            fn store(src: &[f32], dst: &mut [$t]) -> usize {
                // Written so that it vectorises (LLVM scalarises saturating
                // f32→int casts): after pre-clamping, `v + 1.5·2²³` holds
                // round_ties_even(v) in its low mantissa bits, so the integer is
                // read from the bit pattern; clamping and narrowing are then
                // plain integer ops. NaN is mapped to 0 first (not counted).
                let mut clamped = 0u32;
                for (d, &v) in dst.iter_mut().zip(src) {
                    let v = if v.is_nan() {
                        0.0
                    } else {
                        clamp_sel(v, -65536.0, 65536.0)
                    };
                    let n = (v + ROUND_MAGIC).to_bits() as i32 - ROUND_MAGIC_BITS;
                    clamped += u32::from(n.abs() > $max);
                    *d = n.clamp(-$max, $max) as $t;
                }
                clamped as usize
            }
            #[inline(always)]
            fn view<'s>(
                src: &'s [$t],
                stage: &'s mut [f32],
                rows: usize,
                len: usize,
                stride: usize,
                off: usize,
            ) -> (&'s [f32], usize, usize) {
                for r in 0..rows {
                    let s = &src[off + r * stride..][..len];
                    for (d, &v) in stage[r * STAGE_W..][..len].iter_mut().zip(s) {
                        *d = v as f32;
                    }
                }
                (stage, 0, STAGE_W)
            }
        }
    };
}
impl_code!(i8, 127);
impl_code!(i16, 32767);

/// Element types of the images the kernels read: compress input and the reference of
/// [`BlockTransform::decompress_compare`]. `f32`, or integer samples (`u8`, `u16`, `i16`)
/// converted to f32 (exactly) as they are loaded, so integer data never exists as a float
/// buffer: a quarter (`u8`) or half of the memory traffic.
pub trait Pixel: Copy + Send + Sync + 'static + pixel_sealed::Sealed {
    /// The value as f32 (exact for the integer types).
    #[doc(hidden)]
    fn to_f32(self) -> f32;
    /// Low bits of the value (the read-ahead folds them so its loads are kept).
    #[doc(hidden)]
    fn bits(self) -> u32;
    /// The first [`LANES`] values of `src` as f32: one vector load (and conversion).
    #[doc(hidden)]
    fn lanes(src: &[Self]) -> [f32; LANES];
    /// [`Range`] of `x`, vectorized by the caller's instruction set.
    #[doc(hidden)]
    fn range_of(x: &[Self]) -> Range;
}

mod pixel_sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for i16 {}
}

impl Pixel for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn bits(self) -> u32 {
        self.to_bits()
    }
    #[inline(always)]
    fn lanes(src: &[f32]) -> [f32; LANES] {
        src[..LANES].try_into().unwrap()
    }
    #[inline(always)]
    fn range_of(x: &[f32]) -> Range {
        let mut lo = [f32::INFINITY; LANES];
        let mut hi = [f32::NEG_INFINITY; LANES];
        // Counted as a mask (is_finite is one compare of |v| with ∞), no branch.
        let mut bad = [0u32; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                let v = c[l];
                lo[l] = lo[l].min(v);
                hi[l] = hi[l].max(v);
                bad[l] |= u32::from(!v.is_finite());
            }
        }
        for (l, &v) in rest.iter().enumerate() {
            lo[l] = lo[l].min(v);
            hi[l] = hi[l].max(v);
            bad[l] |= u32::from(!v.is_finite());
        }
        Range {
            lo: lo.iter().copied().fold(f32::INFINITY, f32::min),
            hi: hi.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            finite: bad.iter().all(|&b| b == 0),
        }
    }
}

macro_rules! impl_pixel {
    ($t:ty) => {
        impl Pixel for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn bits(self) -> u32 {
                self as u32
            }
            #[inline(always)]
            fn lanes(src: &[$t]) -> [f32; LANES] {
                // A plain loop over a fixed-size array: one widening load and one conversion
                // (array::from_fn here kept the lanes in memory, 2× slower).
                let s: &[$t; LANES] = src[..LANES].try_into().unwrap();
                let mut out = [0.0f32; LANES];
                for l in 0..LANES {
                    out[l] = s[l] as f32;
                }
                out
            }
            #[inline(always)]
            fn range_of(x: &[$t]) -> Range {
                // In the integer type: one 64-byte register holds 64 / size_of lanes.
                const N: usize = 64 / std::mem::size_of::<$t>();
                let (mut lo, mut hi) = ([<$t>::MAX; N], [<$t>::MIN; N]);
                let chunks = x.chunks_exact(N);
                let rest = chunks.remainder();
                for c in chunks {
                    for l in 0..N {
                        lo[l] = lo[l].min(c[l]);
                        hi[l] = hi[l].max(c[l]);
                    }
                }
                for (l, &v) in rest.iter().enumerate() {
                    lo[l] = lo[l].min(v);
                    hi[l] = hi[l].max(v);
                }
                if x.is_empty() {
                    return Range::EMPTY;
                }
                Range {
                    lo: lo.iter().copied().min().unwrap_or(<$t>::MIN) as f32,
                    hi: hi.iter().copied().max().unwrap_or(<$t>::MAX) as f32,
                    finite: true,
                }
            }
        }
    };
}
impl_pixel!(u8);
impl_pixel!(u16);
impl_pixel!(i16);

/// A reusable plan for one image geometry, block size, cf, layout and matrix set.
///
/// Construction precomputes everything (padded matrices, edge index tables,
/// the thread pool); the transform calls allocate nothing.
pub struct BlockTransform {
    h: usize,
    w: usize,
    b: usize,
    c: usize,
    keep: Keep,
    /// Whether the layout is block-major (else the grid).
    block_major: bool,
    nbh: usize,
    nbw: usize,
    /// Columns `[0, wd)` are processed straight from/to the image (whole lane
    /// groups, whole blocks, all inside `W`); `[wd, wp)` through the edge tile.
    wd: usize,
    /// Padded width `nbw·b`.
    wp: usize,
    /// Stored coefficients per block.
    per_block: usize,
    /// Coefficients per strip (= per block row) in the output layout.
    strip_len: usize,
    /// Source column (within the row) of every edge-tile column.
    tail_cols: Vec<usize>,
    /// Block-major layouts: offset of row `i` inside a block's `K` values, and its length.
    row_off: Vec<usize>,
    row_len: Vec<usize>,
    /// `b×b`, zero padded: `ar[i][k] = A_rows[i][k]`.
    ar: Vec<f32>,
    /// Whether each row of `A_rows` is antisymmetric (`ar[i][b-1-k] = -ar[i][k]`, else it
    /// is symmetric); `None` unless every row is one or the other, as in the DCT.
    ar_anti: Option<Vec<bool>>,
    /// `act[l][j] = A_cols[j][l]` (transposed so a block row times it is a broadcast-FMA).
    act: Vec<f32>,
    /// `brt[k][i] = B_rows[i][k]`.
    brt: Vec<f32>,
    /// `bc[j][l] = B_cols[j][l]`.
    bc: Vec<f32>,
    isa: Isa,
    tune: Tuning,
    /// One scratch buffer per thread of a call (`scratch_len(b)` floats each),
    /// allocated with the plan and lent to the threads for each call.
    scratch: Mutex<Vec<Vec<f32>>>,
    pool: Pool,
}

/// Performance knobs (exposed only for the tuning experiments).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Column chunk width, a multiple of `max(16, b)`, at most [`CHUNK`].
    pub chunk: usize,
    /// Compress reads ahead (see `row_pass`) for images narrower than this; 0 disables.
    pub read_ahead_max_w: usize,
    /// Least distance of the compress read-ahead in bytes (whole strips, at least one).
    pub read_ahead_bytes: usize,
    /// Decompress prefetches its output this many bytes ahead; 0 disables.
    pub write_ahead_bytes: usize,
    /// Use the matrices' (anti)symmetry where they have it (see `row_pass`).
    pub symmetry: bool,
    /// Compress writes long runs of f32 coefficients with streaming stores (see `col_pass`).
    pub stream: bool,
}

impl std::fmt::Debug for BlockTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockTransform")
            .field("h", &self.h)
            .field("w", &self.w)
            .field("block", &self.b)
            .field("cf", &self.c)
            .field("keep", &self.keep)
            .field("isa", &self.isa)
            .field("threads", &self.pool.threads())
            .finish()
    }
}

impl BlockTransform {
    /// Builds a plan. `m`'s matrices are row-major `cf×block`. `threads` is the
    /// maximum number of threads a call uses, the caller included (0 = all cores).
    pub fn new(
        h: usize,
        w: usize,
        block: usize,
        cf: usize,
        keep: Keep,
        m: &Matrices<'_>,
        threads: usize,
    ) -> Result<Self, Error> {
        if ![4, 8, 16, 32].contains(&block) {
            return Err(Error::BadBlock(block));
        }
        if cf == 0 || cf > block {
            return Err(Error::BadCf { cf, block });
        }
        if h == 0 || w == 0 {
            return Err(Error::EmptyImage);
        }
        let (b, c) = (block, cf);
        for (what, s) in [
            ("a_rows", m.a_rows),
            ("a_cols", m.a_cols),
            ("b_rows", m.b_rows),
            ("b_cols", m.b_cols),
        ] {
            if s.len() != c * b {
                return Err(Error::BadLen {
                    what,
                    expected: c * b,
                    got: s.len(),
                });
            }
        }
        let mut ar = vec![0.0; b * b];
        let mut act = vec![0.0; b * b];
        let mut brt = vec![0.0; b * b];
        let mut bc = vec![0.0; b * b];
        for i in 0..c {
            for k in 0..b {
                ar[i * b + k] = m.a_rows[i * b + k];
                act[k * b + i] = m.a_cols[i * b + k];
                brt[k * b + i] = m.b_rows[i * b + k];
                bc[i * b + k] = m.b_cols[i * b + k];
            }
        }
        let nbh = h.div_ceil(b);
        let nbw = w.div_ceil(b);
        let wp = nbw * b;
        let group = LANES.max(b);
        let wd = w / group * group;
        let tail_cols: Vec<usize> = (wd..wp).map(|x| mirror(x, w)).collect();
        debug_assert!(tail_cols.len() <= TAIL);
        let row_len = match &keep {
            Keep::Grid => vec![c; c],
            Keep::BlockMajor(r) if r.len() == c && r.iter().all(|&l| l <= c) => r.clone(),
            Keep::BlockMajor(r) => {
                return Err(Error::BadLen {
                    what: "row_len (one length <= cf per row)",
                    expected: c,
                    got: r.len(),
                });
            }
        };
        let row_off: Vec<usize> = row_len
            .iter()
            .scan(0, |acc, &l| {
                let o = *acc;
                *acc += l;
                Some(o)
            })
            .collect();
        let per_block: usize = row_len.iter().sum();
        let block_major = matches!(keep, Keep::BlockMajor(_));
        let strip_len = nbw * per_block;
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        Ok(BlockTransform {
            h,
            w,
            b,
            c,
            keep,
            block_major,
            nbh,
            nbw,
            wd,
            wp,
            per_block,
            strip_len,
            tail_cols,
            row_off,
            row_len,
            ar_anti: parity(m.a_rows, c, b),
            ar,
            act,
            brt,
            bc,
            isa: Isa::detect(),
            tune: Tuning {
                chunk: default_chunk(c, group),
                read_ahead_max_w: READ_AHEAD_MAX_W,
                read_ahead_bytes: READ_AHEAD_BYTES,
                write_ahead_bytes: WRITE_AHEAD_BYTES,
                symmetry: true,
                stream: true,
            },
            scratch: Mutex::new((0..threads).map(|_| vec![0.0; scratch_len(b)]).collect()),
            pool: Pool::new(threads),
        })
    }

    /// Plain DCT+Chop plan: all four matrices are [`dct_rows`]`(block, cf)`.
    pub fn dct(
        h: usize,
        w: usize,
        block: usize,
        cf: usize,
        keep: Keep,
        threads: usize,
    ) -> Result<Self, Error> {
        if ![4, 8, 16, 32].contains(&block) {
            return Err(Error::BadBlock(block));
        }
        if cf == 0 || cf > block {
            return Err(Error::BadCf { cf, block });
        }
        let f = dct_rows(block, cf);
        let m = Matrices {
            a_rows: &f,
            a_cols: &f,
            b_rows: &f,
            b_cols: &f,
        };
        Self::new(h, w, block, cf, keep, &m, threads)
    }

    /// Forces the kernels of a given instruction set (e.g. to benchmark them).
    pub fn set_isa(&mut self, isa: Isa) -> Result<(), Error> {
        if !isa.is_supported() {
            return Err(Error::Unsupported(isa));
        }
        self.isa = isa;
        Ok(())
    }

    /// Overrides the performance knobs (tuning experiments only).
    #[doc(hidden)]
    pub fn set_tuning(&mut self, t: Tuning) {
        let group = LANES.max(self.b);
        self.tune = Tuning {
            chunk: (t.chunk / group * group).clamp(group, CHUNK),
            ..t
        };
    }

    /// Current performance knobs.
    #[doc(hidden)]
    pub fn tuning(&self) -> Tuning {
        self.tune
    }

    /// Whether compress takes the mirror-symmetric path (every row of `A_rows` symmetric or
    /// antisymmetric, as in the DCT, and [`Tuning::symmetry`] on).
    #[doc(hidden)]
    pub fn uses_symmetry(&self) -> bool {
        self.tune.symmetry && self.ar_anti.is_some()
    }

    /// Instruction set the kernels run with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Maximum threads per call (caller included).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// How many times a pool worker (not the caller) has run a call's work
    /// loop: diagnostics showing that calls really are multi-threaded.
    pub fn worker_runs(&self) -> u64 {
        self.pool.worker_runs()
    }

    /// Pixels per plane (`H·W`).
    pub fn plane_len(&self) -> usize {
        self.h * self.w
    }

    /// Coefficients per plane in the output layout.
    pub fn plane_coeffs(&self) -> usize {
        self.nbh * self.strip_len
    }

    /// Blocks per plane `(nbh, nbw)`.
    pub fn blocks(&self) -> (usize, usize) {
        (self.nbh, self.nbw)
    }

    /// `x`: `planes·H·W` pixels (f32, or integer samples converted on load) → `y`:
    /// `planes·plane_coeffs()` coefficients.
    pub fn compress<S: Pixel>(&self, x: &[S], planes: usize, y: &mut [f32]) -> Result<(), Error> {
        self.check(x.len(), y.len(), planes)?;
        self.run_compress(x, planes, y);
        Ok(())
    }

    /// Like [`compress`](Self::compress) but writes integer codes
    /// `clamp(round_ties_even(y), -MAX, MAX)`; returns how many values were clamped.
    pub fn compress_codes<S: Pixel, T: Code>(
        &self,
        x: &[S],
        planes: usize,
        y: &mut [T],
    ) -> Result<usize, Error> {
        self.check(x.len(), y.len(), planes)?;
        Ok(self.run_compress(x, planes, y))
    }

    /// `y`: `planes·plane_coeffs()` coefficients → `x`: `planes·H·W` f32.
    pub fn decompress(&self, y: &[f32], planes: usize, x: &mut [f32]) -> Result<(), Error> {
        self.decompress_elems(y, planes, x)
    }

    /// Like [`decompress`](Self::decompress) from integer codes (converted on load).
    pub fn decompress_codes<T: Code>(
        &self,
        y: &[T],
        planes: usize,
        x: &mut [f32],
    ) -> Result<(), Error> {
        self.decompress_elems(y, planes, x)
    }

    /// [`decompress`](Self::decompress) (`T` = `f32`) or [`decompress_codes`](Self::decompress_codes).
    pub fn decompress_elems<T: Elem>(
        &self,
        y: &[T],
        planes: usize,
        x: &mut [f32],
    ) -> Result<(), Error> {
        self.check(x.len(), y.len(), planes)?;
        self.run_decompress::<T, f32>(y, planes, x, None);
        Ok(())
    }

    /// [`decompress_codes`](Self::decompress_codes) (`T` = `f32`: [`decompress`](Self::decompress))
    /// that also compares each strip with the same strip of `reference` (the layout of `x`) while
    /// it is in the cache: returns [`diff_stats`]`(reference, x)` (the f64 sum in another order)
    /// without a pass of its own over the two buffers.
    pub fn decompress_compare<T: Elem, R: Pixel>(
        &self,
        y: &[T],
        planes: usize,
        x: &mut [f32],
        reference: &[R],
    ) -> Result<(f64, f64), Error> {
        self.check(x.len(), y.len(), planes)?;
        if reference.len() != x.len() {
            return Err(Error::BadLen {
                what: "reference",
                expected: x.len(),
                got: reference.len(),
            });
        }
        Ok(self.run_decompress(y, planes, x, Some(reference)))
    }

    fn check(&self, xlen: usize, ylen: usize, planes: usize) -> Result<(), Error> {
        let expect = |what, expected, got| {
            if expected == got {
                Ok(())
            } else {
                Err(Error::BadLen {
                    what,
                    expected,
                    got,
                })
            }
        };
        expect("x", planes * self.plane_len(), xlen)?;
        expect("y", planes * self.plane_coeffs(), ylen)
    }

    /// Strips per task and whether the call is worth waking the pool for.
    fn schedule(&self, strips: usize) -> (usize, bool) {
        let strip_px = self.b * self.wp;
        let per_task = (TASK_PIXELS / strip_px).max(1);
        let parallel =
            self.pool.threads() > 1 && strips > per_task && strips * strip_px >= INLINE_PIXELS;
        (per_task, parallel)
    }

    /// Offset of global strip `s` in the decompressed (image) buffer.
    fn image_offset(&self, s: usize) -> usize {
        (s / self.nbh) * self.h * self.w + (s % self.nbh) * self.b * self.w
    }

    fn run_compress<S: Pixel, T: Elem>(&self, x: &[S], planes: usize, y: &mut [T]) -> usize {
        let strips = planes * self.nbh;
        if strips == 0 {
            return 0;
        }
        let (per_task, parallel) = self.schedule(strips);
        let work = Mutex::new(Claims {
            next: 0,
            strips,
            per_task,
            rest: y,
        });
        let clamped = AtomicUsize::new(0);
        let body = || {
            let n = match self.b {
                4 => dispatch(
                    self.isa,
                    CompressLoop::<4, S, T> {
                        p: self,
                        x,
                        work: &work,
                    },
                ),
                8 => dispatch(
                    self.isa,
                    CompressLoop::<8, S, T> {
                        p: self,
                        x,
                        work: &work,
                    },
                ),
                16 => dispatch(
                    self.isa,
                    CompressLoop::<16, S, T> {
                        p: self,
                        x,
                        work: &work,
                    },
                ),
                _ => dispatch(
                    self.isa,
                    CompressLoop::<32, S, T> {
                        p: self,
                        x,
                        work: &work,
                    },
                ),
            };
            clamped.fetch_add(n, Ordering::Relaxed);
        };
        if parallel {
            self.pool.run(&body)
        } else {
            body()
        }
        clamped.into_inner()
    }

    /// Decompress; with a reference, also its diff stats against the output.
    fn run_decompress<T: Elem, R: Pixel>(
        &self,
        y: &[T],
        planes: usize,
        x: &mut [f32],
        reference: Option<&[R]>,
    ) -> (f64, f64) {
        let strips = planes * self.nbh;
        if strips == 0 {
            return (0.0, 0.0);
        }
        let stats = Mutex::new((0.0f64, 0.0f64));
        let (per_task, parallel) = self.schedule(strips);
        let work = Mutex::new(Claims {
            next: 0,
            strips,
            per_task,
            rest: x,
        });
        let body = || {
            match self.b {
                4 => dispatch(
                    self.isa,
                    DecompressLoop::<4, T, R> {
                        p: self,
                        y,
                        work: &work,
                        reference,
                        stats: &stats,
                    },
                ),
                8 => dispatch(
                    self.isa,
                    DecompressLoop::<8, T, R> {
                        p: self,
                        y,
                        work: &work,
                        reference,
                        stats: &stats,
                    },
                ),
                16 => dispatch(
                    self.isa,
                    DecompressLoop::<16, T, R> {
                        p: self,
                        y,
                        work: &work,
                        reference,
                        stats: &stats,
                    },
                ),
                _ => dispatch(
                    self.isa,
                    DecompressLoop::<32, T, R> {
                        p: self,
                        y,
                        work: &work,
                        reference,
                        stats: &stats,
                    },
                ),
            };
        };
        if parallel {
            self.pool.run(&body)
        } else {
            body()
        }
        stats.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// Hands out tasks (ranges of global strips) together with their disjoint,
/// contiguous output range, splitting the output slice front to back.
struct Claims<'a, T> {
    next: usize,
    strips: usize,
    per_task: usize,
    rest: &'a mut [T],
}

impl<'a, T> Claims<'a, T> {
    /// Claims the next task; `len(s0, s1)` is the output length of strips `s0..s1`.
    #[inline(always)]
    fn claim(
        m: &Mutex<Self>,
        len: impl Fn(usize, usize) -> usize,
    ) -> Option<(usize, usize, &'a mut [T])> {
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        if g.next >= g.strips {
            return None;
        }
        let s0 = g.next;
        let s1 = (s0 + g.per_task).min(g.strips);
        g.next = s1;
        let (head, tail) = std::mem::take(&mut g.rest).split_at_mut(len(s0, s1));
        g.rest = tail;
        Some((s0, s1, head))
    }
}

// ---------------------------------------------------------------------------
// ISA dispatch
// ---------------------------------------------------------------------------

/// Multiply-add flavour: fused on FMA targets; separate mul+add on baseline
/// (where `mul_add` would be a libm call).
trait Arith {
    fn fma(a: f32, b: f32, c: f32) -> f32;
}
struct Fused;
struct Unfused;
impl Arith for Fused {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}
impl Arith for Unfused {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// A per-thread work loop, monomorphised per instruction set by [`dispatch`].
trait Kernel {
    fn run<A: Arith>(self) -> usize;
}

fn dispatch<K: Kernel>(isa: Isa, k: K) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: plans only hold `Isa::Avx512` after `Isa::is_supported`
        // confirmed every feature enabled on `run_avx512` at run time.
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe { run_avx512(k) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2 + FMA.
        #[allow(unsafe_code)]
        Isa::Avx2 => unsafe { run_avx2(k) },
        _ => k.run::<Unfused>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,avx,fma,sse4.1")]
fn run_avx512<K: Kernel>(k: K) -> usize {
    k.run::<Fused>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx,fma,sse4.1")]
fn run_avx2<K: Kernel>(k: K) -> usize {
    k.run::<Fused>()
}

// ---------------------------------------------------------------------------
// Whole-buffer scans of the pipeline around the transform, compiled per instruction set like
// the kernels: at baseline (SSE2, 2 f64 lanes) they cost as much as the transform itself.
// ---------------------------------------------------------------------------

/// Smallest and largest value of a buffer and whether all of it is finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Smallest value (`+∞` for an empty buffer); NaN is ignored.
    pub lo: f32,
    /// Largest value (`-∞` for an empty buffer); NaN is ignored.
    pub hi: f32,
    /// No NaN or ±∞.
    pub finite: bool,
}

impl Range {
    /// The range of an empty buffer.
    pub const EMPTY: Range = Range {
        lo: f32::INFINITY,
        hi: f32::NEG_INFINITY,
        finite: true,
    };

    /// The range of two buffers together.
    pub fn merge(self, other: Range) -> Range {
        Range {
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
            finite: self.finite && other.finite,
        }
    }
}

/// [`Range`] of `x`, in one vectorized pass.
pub fn range<S: Pixel>(x: &[S]) -> Range {
    let mut out = Range::EMPTY;
    dispatch(Isa::detect(), RangeKernel { x, out: &mut out });
    out
}

/// Sum of squared differences and largest absolute difference of `a` and `b` (equal lengths):
/// each difference is rounded to f32 (relative error ≤ 2⁻²⁴), squares are summed per lane in f32
/// over at most [`DIFF_F32_RUN`]·16 values, then in f64, so the sum is within about 10⁻⁵ of the
/// exact one (relative) at f32 speed.
pub fn diff_stats<R: Pixel>(a: &[R], b: &[f32]) -> Result<(f64, f64), Error> {
    if a.len() != b.len() {
        return Err(Error::BadLen {
            what: "diff_stats b",
            expected: a.len(),
            got: b.len(),
        });
    }
    let mut out = (0.0, 0.0);
    dispatch(
        Isa::detect(),
        DiffKernel {
            a,
            b,
            out: &mut out,
        },
    );
    Ok(out)
}

struct RangeKernel<'a, S> {
    x: &'a [S],
    out: &'a mut Range,
}

impl<S: Pixel> Kernel for RangeKernel<'_, S> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        *self.out = S::range_of(self.x);
        0
    }
}

struct DiffKernel<'a, R> {
    a: &'a [R],
    b: &'a [f32],
    out: &'a mut (f64, f64),
}

impl<R: Pixel> Kernel for DiffKernel<'_, R> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        let mut sse = [0f64; DIFF_LANES];
        let mut worst = [0f32; DIFF_LANES];
        diff_accumulate(self.a, self.b, &mut sse, &mut worst);
        *self.out = (
            sse.iter().sum(),
            worst.iter().copied().fold(0.0, f32::max) as f64,
        );
        0
    }
}

/// Lanes of the difference sums.
const DIFF_LANES: usize = LANES;
/// Lane groups whose squares are summed in f32 before the sums move to f64: bounds the f32
/// rounding of a lane's partial sum to about 256 ulp, i.e. 1.5·10⁻⁵ relative, in the worst case.
/// (Summing in f64 throughout cost as much as the decompression itself.)
pub const DIFF_F32_RUN: usize = 256;

/// Adds the squared differences of `a` and `b` (equal lengths) to `sse` and their largest
/// absolute value to `worst`, lane by lane (see [`diff_stats`] for the rounding).
#[inline(always)]
fn diff_accumulate<R: Pixel>(
    a: &[R],
    b: &[f32],
    sse: &mut [f64; DIFF_LANES],
    worst: &mut [f32; DIFF_LANES],
) {
    const RUN: usize = DIFF_F32_RUN * DIFF_LANES;
    for (a, b) in a.chunks(RUN).zip(b.chunks(RUN)) {
        // Fresh register accumulators per run (a select, not f32::max: NaN cannot occur in a
        // round trip of finite data, and max's NaN rule costs a compare and a blend).
        let mut run = [0f32; DIFF_LANES];
        let mut top = *worst;
        let (ac, bc) = (a.chunks_exact(DIFF_LANES), b.chunks_exact(DIFF_LANES));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (a, b) in ac.zip(bc) {
            let a = R::lanes(a);
            let b: &[f32; DIFF_LANES] = b.try_into().unwrap();
            for l in 0..DIFF_LANES {
                let d = a[l] - b[l];
                run[l] += d * d;
                let m = d.abs();
                top[l] = if m > top[l] { m } else { top[l] };
            }
        }
        for (l, (&a, &b)) in ar.iter().zip(br).enumerate() {
            let d = (a.to_f32() - b).abs();
            run[l] += d * d;
            top[l] = if d > top[l] { d } else { top[l] };
        }
        for l in 0..DIFF_LANES {
            sse[l] += run[l] as f64;
        }
        *worst = top;
    }
}

/// Mix three channels in place: `data` is `[N, 3, plane]` (any N); at every position p of every
/// sample, channel r becomes `Σ_k m[3r + k] · channel k` (fused multiply-adds where the ISA has
/// them), in one vectorized pass.
pub fn mix3(data: &mut [f32], plane: usize, m: &[f32; 9]) -> Result<(), Error> {
    if plane == 0 || !data.len().is_multiple_of(3 * plane) {
        return Err(Error::BadLen {
            what: "mix3 data (a multiple of 3 planes)",
            expected: 3 * plane.max(1) * data.len().div_ceil(3 * plane.max(1)),
            got: data.len(),
        });
    }
    dispatch(Isa::detect(), MixKernel { data, plane, m });
    Ok(())
}

/// `src` rounded to codes by [`Code`]'s rule into `dst` (equal lengths); returns how many were
/// clamped. The kernels' own store, as a whole-buffer pass.
pub fn store_codes<T: Code>(src: &[f32], dst: &mut [T]) -> Result<usize, Error> {
    if src.len() != dst.len() {
        return Err(Error::BadLen {
            what: "store_codes dst",
            expected: src.len(),
            got: dst.len(),
        });
    }
    Ok(dispatch(Isa::detect(), StoreKernel { src, dst }))
}

/// Codes to f32 (exact), equal lengths.
pub fn load_codes<T: Code>(src: &[T], dst: &mut [f32]) -> Result<(), Error> {
    if src.len() != dst.len() {
        return Err(Error::BadLen {
            what: "load_codes dst",
            expected: src.len(),
            got: dst.len(),
        });
    }
    dispatch(Isa::detect(), LoadKernel { src, dst });
    Ok(())
}

/// Integer sample types that decompressed values are written back in (`u8`, `u16`, `i16`).
///
/// Values are rounded half away from zero and clamped to the type's range; NaN becomes 0.
pub trait Sample: Copy + Send + Sync + 'static + sample_sealed::Sealed {
    /// Smallest value.
    const LO: i32;
    /// Largest value.
    const HI: i32;
    /// The already rounded and clamped value (`LO..=HI`) narrowed.
    fn narrow(v: i32) -> Self;
}

mod sample_sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for i16 {}
}

macro_rules! impl_sample {
    ($t:ty) => {
        impl Sample for $t {
            const LO: i32 = <$t>::MIN as i32;
            const HI: i32 = <$t>::MAX as i32;
            #[inline(always)]
            fn narrow(v: i32) -> $t {
                v as $t
            }
        }
    };
}
impl_sample!(u8);
impl_sample!(u16);
impl_sample!(i16);

/// `src` rounded half away from zero, clamped to `T`'s range (NaN to 0) into `dst` (equal
/// lengths), in one vectorized pass: the output rule of integer `.npy` and PNG files.
pub fn store_samples<T: Sample>(src: &[f32], dst: &mut [T]) -> Result<(), Error> {
    if src.len() != dst.len() {
        return Err(Error::BadLen {
            what: "store_samples dst",
            expected: src.len(),
            got: dst.len(),
        });
    }
    dispatch(Isa::detect(), SampleKernel { src, dst });
    Ok(())
}

struct SampleKernel<'a, T> {
    src: &'a [f32],
    dst: &'a mut [T],
}

impl<T: Sample> Kernel for SampleKernel<'_, T> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        // As the codes' store: pre-clamp (one beyond the range keeps its side), round to
        // nearest-even through the bit pattern of `v + 1.5·2²³`, then turn the ties that went
        // toward zero away from it. `d = v - t` is exact (|v| < 2²²).
        let (lo, hi) = (T::LO as f32 - 1.0, T::HI as f32 + 1.0);
        for (d, &v) in self.dst.iter_mut().zip(self.src) {
            let v = if v.is_nan() {
                0.0
            } else {
                clamp_sel(v, lo, hi)
            };
            let t = (v + ROUND_MAGIC).to_bits() as i32 - ROUND_MAGIC_BITS;
            let frac = v - t as f32;
            let n = t + i32::from(frac == 0.5 && v > 0.0) - i32::from(frac == -0.5 && v < 0.0);
            *d = T::narrow(n.clamp(T::LO, T::HI));
        }
        0
    }
}

struct MixKernel<'a> {
    data: &'a mut [f32],
    plane: usize,
    m: &'a [f32; 9],
}

impl Kernel for MixKernel<'_> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        let m = *self.m;
        for sample in self.data.chunks_exact_mut(3 * self.plane) {
            let (p0, rest) = sample.split_at_mut(self.plane);
            let (p1, p2) = rest.split_at_mut(self.plane);
            for ((a, b), c) in p0.iter_mut().zip(p1.iter_mut()).zip(p2.iter_mut()) {
                let (x0, x1, x2) = (*a, *b, *c);
                *a = A::fma(m[2], x2, A::fma(m[1], x1, m[0] * x0));
                *b = A::fma(m[5], x2, A::fma(m[4], x1, m[3] * x0));
                *c = A::fma(m[8], x2, A::fma(m[7], x1, m[6] * x0));
            }
        }
        0
    }
}

struct StoreKernel<'a, T> {
    src: &'a [f32],
    dst: &'a mut [T],
}

impl<T: Code> Kernel for StoreKernel<'_, T> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        T::store(self.src, self.dst)
    }
}

struct LoadKernel<'a, T> {
    src: &'a [T],
    dst: &'a mut [f32],
}

impl<T: Code> Kernel for LoadKernel<'_, T> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        for (d, &c) in self.dst.iter_mut().zip(self.src) {
            *d = c.to_f32();
        }
        0
    }
}

// ---------------------------------------------------------------------------
// Kernels. Everything below is `#[inline(always)]` so that it is compiled with
// the target features of the `run_*` function it ends up in.
// ---------------------------------------------------------------------------

/// The plan's matrices viewed as `b×b` arrays.
struct Mats<'a, const B: usize> {
    ar: &'a [[f32; B]; B],
    act: &'a [[f32; B]; B],
    brt: &'a [[f32; B]; B],
    bc: &'a [[f32; B]; B],
}

#[inline(always)]
fn square<const B: usize>(v: &[f32]) -> &[[f32; B]; B] {
    v.as_chunks::<B>().0.try_into().expect("matrix is b×b")
}

impl<'a, const B: usize> Mats<'a, B> {
    #[inline(always)]
    fn new(p: &'a BlockTransform) -> Self {
        Mats {
            ar: square(&p.ar),
            act: square(&p.act),
            brt: square(&p.brt),
            bc: square(&p.bc),
        }
    }
}

/// For each of the `c` rows of the row-major `c×b` matrix `m`: `Some(true)` if it is
/// antisymmetric (`m[i][b-1-k] = -m[i][k]`), `Some(false)` if symmetric, within a few f32
/// ulps of the row's largest entry (the DCT's rows alternate, but its f64 cosines rounded
/// to f32 need not mirror exactly). `None` if any row is neither.
fn parity(m: &[f32], c: usize, b: usize) -> Option<Vec<bool>> {
    (0..c)
        .map(|i| {
            let r = &m[i * b..][..b];
            let tol = 8.0 * f32::EPSILON * r.iter().fold(0f32, |a, v| a.max(v.abs()));
            let mirrored =
                |sign: f32| (0..b / 2).all(|k| (r[k] - sign * r[b - 1 - k]).abs() <= tol);
            if mirrored(1.0) {
                Some(false)
            } else if mirrored(-1.0) {
                Some(true)
            } else {
                None
            }
        })
        .collect()
}

/// Column chunk of a plan with `c` kept rows: whole rows up to [`CHUNK`],
/// while the `c×chunk` intermediate fits in [`CHUNK_BYTES`].
fn default_chunk(c: usize, group: usize) -> usize {
    let fits = CHUNK_BYTES / (c * std::mem::size_of::<f32>());
    (fits / group * group).clamp(group, CHUNK)
}

/// [`Elem::store_stream`] if `stream`, else [`Elem::store`].
#[inline(always)]
fn store_run<T: Elem>(stream: bool, src: &[f32], dst: &mut [T]) -> usize {
    if stream {
        T::store_stream(src, dst)
    } else {
        T::store(src, dst)
    }
}

/// Shortest run of coefficients compress writes with streaming stores.
const STREAM_MIN_BYTES: usize = 256;

/// Floats of one thread's scratch buffer for block size `b` (4176 per block row).
fn scratch_len(b: usize) -> usize {
    b * (TMP_W + STAGE_W + TAIL) + LINE_F32
}

/// f32 values per cache line: scratch views start at a line boundary, so that
/// the kernels' 16-lane loads and stores never straddle two lines.
const LINE_F32: usize = 16;

/// One thread's scratch for a call, viewed in a buffer the plan owns (so a
/// call neither allocates nor zeroes it).
struct Scratch<'s, const B: usize> {
    /// `c×chunk` intermediate (row-pass output / width-pass output).
    tmp: &'s mut [[f32; TMP_W]; B],
    /// Staging for coefficients (compress output / decompress code conversion).
    stage: &'s mut [[f32; STAGE_W]; B],
    /// Right-edge tile: `b` rows × ≤ 32 columns.
    tail: &'s mut [[f32; TAIL]; B],
}

impl<'s, const B: usize> Scratch<'s, B> {
    #[inline(always)]
    fn new(buf: &'s mut [f32]) -> Self {
        let misalign = (buf.as_ptr() as usize / std::mem::size_of::<f32>()) % LINE_F32;
        let buf = &mut buf[(LINE_F32 - misalign) % LINE_F32..];
        let (tmp, rest) = buf.split_at_mut(B * TMP_W);
        let (stage, tail) = rest.split_at_mut(B * STAGE_W);
        Scratch {
            tmp: tmp.as_chunks_mut().0.try_into().expect("scratch_len"),
            stage: stage.as_chunks_mut().0.try_into().expect("scratch_len"),
            tail: tail[..B * TAIL]
                .as_chunks_mut()
                .0
                .try_into()
                .expect("scratch_len"),
        }
    }
}

impl BlockTransform {
    /// Lends a scratch buffer to one thread of a call. There is one per pool
    /// thread; only calls made concurrently from several threads of the caller
    /// can run out, and they get a fresh buffer.
    fn take_scratch(&self) -> Vec<f32> {
        let mut free = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        free.pop().unwrap_or_else(|| vec![0.0; scratch_len(self.b)])
    }

    fn give_back_scratch(&self, buf: Vec<f32>) {
        let mut free = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.pool.threads() {
            free.push(buf);
        }
    }
}

struct CompressLoop<'a, 'o, const B: usize, S, T> {
    p: &'a BlockTransform,
    x: &'a [S],
    work: &'a Mutex<Claims<'o, T>>,
}

impl<const B: usize, S: Pixel, T: Elem> Kernel for CompressLoop<'_, '_, B, S, T> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        let p = self.p;
        let m = Mats::<B>::new(p);
        let mut buf = p.take_scratch();
        let mut sc = Scratch::<B>::new(&mut buf);
        let mut clamped = 0;
        let r = p.strip_len;
        while let Some((s0, s1, out)) = Claims::claim(self.work, |a, b| (b - a) * r) {
            for (s, o) in (s0..s1).zip(out.chunks_exact_mut(r)) {
                clamped += compress_strip::<B, S, T, A>(p, &m, self.x, s, o, &mut sc);
            }
        }
        p.give_back_scratch(buf);
        if p.tune.stream {
            stream_fence();
        }
        clamped
    }
}

struct DecompressLoop<'a, 'o, const B: usize, T, R> {
    p: &'a BlockTransform,
    y: &'a [T],
    work: &'a Mutex<Claims<'o, f32>>,
    /// Compared with each strip as it is written; the sums go to `stats`.
    reference: Option<&'a [R]>,
    stats: &'a Mutex<(f64, f64)>,
}

impl<const B: usize, T: Elem, R: Pixel> Kernel for DecompressLoop<'_, '_, B, T, R> {
    #[inline(always)]
    fn run<A: Arith>(self) -> usize {
        let p = self.p;
        let m = Mats::<B>::new(p);
        let mut buf = p.take_scratch();
        let mut sc = Scratch::<B>::new(&mut buf);
        let r = p.strip_len;
        let len = |a, b| p.image_offset(b) - p.image_offset(a);
        let (mut sse, mut worst) = ([0f64; DIFF_LANES], [0f32; DIFF_LANES]);
        while let Some((s0, s1, mut out)) = Claims::claim(self.work, len) {
            for s in s0..s1 {
                let rows = (p.h - (s % p.nbh) * B).min(B);
                let (o, rest) = out.split_at_mut(rows * p.w);
                out = rest;
                decompress_strip::<B, T, A>(p, &m, &self.y[s * r..][..r], s, o, &mut sc);
                if let Some(reference) = self.reference {
                    let a = &reference[p.image_offset(s)..][..o.len()];
                    diff_accumulate(a, o, &mut sse, &mut worst);
                }
            }
        }
        p.give_back_scratch(buf);
        if self.reference.is_some() {
            let mut g = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            g.0 += sse.iter().sum::<f64>();
            g.1 = worst.iter().map(|&w| w as f64).fold(g.1, f64::max);
        }
        0
    }
}

/// Compresses global strip `s` into `out` (its `strip_len` coefficients).
#[inline(always)]
fn compress_strip<const B: usize, S: Pixel, T: Elem, A: Arith>(
    p: &BlockTransform,
    m: &Mats<'_, B>,
    x: &[S],
    s: usize,
    out: &mut [T],
    sc: &mut Scratch<'_, B>,
) -> usize {
    let hw = p.h * p.w;
    let plane = &x[(s / p.nbh) * hw..][..hw];
    let r0 = (s % p.nbh) * B;
    // Row offsets of the strip's b source rows; mirrored only in the last strip.
    let rows: [usize; B] = if r0 + B <= p.h {
        std::array::from_fn(|k| (r0 + k) * p.w)
    } else {
        std::array::from_fn(|k| mirror(r0 + k, p.h) * p.w)
    };
    // Read-ahead region: the strip `k` strips on in memory (possibly in a later
    // plane), walked at the pace this strip is consumed.
    let ahead = if p.w < p.tune.read_ahead_max_w {
        let strip_bytes = B * p.w * std::mem::size_of::<S>();
        let k = p.tune.read_ahead_bytes.div_ceil(strip_bytes).max(1);
        let a = p.image_offset(s + k).min(x.len());
        &x[a..(a + B * p.w).min(x.len())]
    } else {
        &[]
    };
    let anti = if p.tune.symmetry {
        p.ar_anti.as_deref()
    } else {
        None
    };
    let mut pf = (0usize, 0u32);
    let mut clamped = 0;
    let mut x0 = 0;
    while x0 < p.wd {
        let width = (p.wd - x0).min(p.tune.chunk);
        row_pass::<B, S, A>(
            plane,
            &rows,
            x0,
            width / LANES,
            m.ar,
            p.c,
            anti,
            sc.tmp,
            ahead,
            &mut pf,
        );
        clamped += col_pass::<B, T, A>(p, m, sc.tmp, width / B, x0 / B, sc.stage, out);
        x0 += width;
    }
    if p.wd < p.wp {
        // Right edge: gather the mirrored columns into the tile, then same kernels.
        let tw = p.wp - p.wd;
        for (k, t) in sc.tail.iter_mut().enumerate() {
            let src = &plane[rows[k]..][..p.w];
            for (d, &col) in t.iter_mut().zip(&p.tail_cols) {
                *d = src[col].to_f32();
            }
        }
        let tile_rows: [usize; B] = std::array::from_fn(|k| k * TAIL);
        let tile = sc.tail.as_flattened();
        row_pass::<B, f32, A>(
            tile,
            &tile_rows,
            0,
            tw.div_ceil(LANES),
            m.ar,
            p.c,
            anti,
            sc.tmp,
            &[],
            &mut pf,
        );
        clamped += col_pass::<B, T, A>(p, m, sc.tmp, tw / B, p.wd / B, sc.stage, out);
    }
    std::hint::black_box(pf.1);
    clamped
}

/// `tmp[i][g·16..] = Σ_k ar[i][k] · src[rows[k] + x0 + g·16..]` for `i < c`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_pass<const B: usize, S: Pixel, A: Arith>(
    src: &[S],
    rows: &[usize; B],
    x0: usize,
    groups: usize,
    ar: &[[f32; B]; B],
    c: usize,
    anti: Option<&[bool]>,
    tmp: &mut [[f32; TMP_W]; B],
    ahead: &[S],
    pf: &mut (usize, u32),
) {
    // Elements per 64-byte cache line, and lines the b rows of one lane group span.
    let line = 64 / std::mem::size_of::<S>();
    let lines = (B * LANES).div_ceil(line);
    for g in 0..groups {
        let x = x0 + g * LANES;
        // Read ahead as many lines per group as this group consumes. Why: this
        // loop reads the b rows interleaved, 64 B of each in turn; when several
        // rows share a 4 KiB page (W < 1024) that pattern defeats the L2
        // streamer (one ascending stream per page), so without help every line
        // would be a demand miss. The read-ahead is one sequential stream.
        if pf.0 < ahead.len() {
            for t in 0..lines {
                if let Some(v) = ahead.get(pf.0 + t * line) {
                    read_ahead(v, &mut pf.1);
                }
            }
            pf.0 += B * LANES;
        }
        // Load the b input rows once (integer samples converted here, in registers); they
        // stay in registers across the c outputs.
        // (A loop, not array::from_fn: its closure was not inlined into the
        // target-feature function, which cost 2× with a conversion in it.)
        let mut xs = [[0.0f32; LANES]; B];
        for (k, v) in xs.iter_mut().enumerate() {
            *v = S::lanes(&src[rows[k] + x..]);
        }
        if let Some(anti) = anti {
            // Rows with mirror symmetry (the DCT's): sums and differences of the mirrored
            // input rows first, then b/2 terms per output instead of b.
            let h = B / 2;
            let mut sd = [[0.0f32; LANES]; B];
            for k in 0..h {
                for l in 0..LANES {
                    sd[k][l] = xs[k][l] + xs[B - 1 - k][l];
                    sd[h + k][l] = xs[k][l] - xs[B - 1 - k][l];
                }
            }
            for ((a, t), &odd) in ar[..c].iter().zip(tmp.iter_mut()).zip(anti) {
                let acc = if odd {
                    half_dot::<B, A>(a, &sd, h)
                } else {
                    half_dot::<B, A>(a, &sd, 0)
                };
                t[g * LANES..][..LANES].copy_from_slice(&acc);
            }
            continue;
        }
        for (a, t) in ar[..c].iter().zip(tmp.iter_mut()) {
            // Two independent FMA chains (even/odd k): halves the latency chain,
            // which otherwise bounds small c.
            let (mut e, mut o) = ([0.0f32; LANES], [0.0f32; LANES]);
            for k in (0..B).step_by(2) {
                for l in 0..LANES {
                    e[l] = A::fma(a[k], xs[k][l], e[l]);
                    o[l] = A::fma(a[k + 1], xs[k + 1][l], o[l]);
                }
            }
            let acc: [f32; LANES] = std::array::from_fn(|l| e[l] + o[l]);
            t[g * LANES..][..LANES].copy_from_slice(&acc);
        }
    }
}

/// `Σ_{k<b/2} a[k] · v[off + k]` in two FMA chains (even/odd k).
#[inline(always)]
fn half_dot<const B: usize, A: Arith>(
    a: &[f32; B],
    v: &[[f32; LANES]; B],
    off: usize,
) -> [f32; LANES] {
    let (mut e, mut o) = ([0.0f32; LANES], [0.0f32; LANES]);
    for k in (0..B / 2).step_by(2) {
        for l in 0..LANES {
            e[l] = A::fma(a[k], v[off + k][l], e[l]);
            o[l] = A::fma(a[k + 1], v[off + k + 1][l], o[l]);
        }
    }
    std::array::from_fn(|l| e[l] + o[l])
}

/// `dst.copy_from_slice(src)` with non-temporal (streaming) stores for the 16-byte aligned
/// part on x86_64: the lines are written without being read first. Callers that stream
/// must run [`stream_fence`] before other threads may read `dst`.
#[inline(always)]
fn stream_f32(src: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
        let src = &src[..dst.len()];
        // `align_offset` may answer usize::MAX (never here in practice): then nothing streams.
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        let body = (dst.len() - head) / 4 * 4;
        let (d_head, rest) = dst.split_at_mut(head);
        let (d_body, d_tail) = rest.split_at_mut(body);
        let (s_head, rest) = src.split_at(head);
        let (s_body, s_tail) = rest.split_at(body);
        d_head.copy_from_slice(s_head);
        for (d4, s4) in d_body.chunks_exact_mut(4).zip(s_body.chunks_exact(4)) {
            // SAFETY: SSE is part of every x86_64 CPU. `s4` holds 4 readable floats
            // (`_mm_loadu_ps` has no alignment requirement); `d4` is 4 writable floats that
            // start 16-byte aligned (`d_body` starts at an aligned address and every chunk
            // is 16 bytes on from it), which `_mm_stream_ps` requires.
            #[allow(unsafe_code)]
            unsafe {
                _mm_stream_ps(d4.as_mut_ptr(), _mm_loadu_ps(s4.as_ptr()));
            }
        }
        d_tail.copy_from_slice(s_tail);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Orders this thread's streaming stores before its later stores (`sfence`), so that the
/// pool's completion signal publishes them to the caller like ordinary stores.
#[inline(always)]
fn stream_fence() {
    // SAFETY: `sfence` needs only SSE, which every x86_64 CPU has; it touches no memory.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_sfence()
    }
}

/// Starts bringing the line holding `v` into the cache: a prefetch into L2 on
/// x86_64 (L1 stays free for the strip being worked on); elsewhere a plain
/// load, folded into `sink` so that it is not optimised away.
#[inline(always)]
fn read_ahead<S: Pixel>(v: &S, sink: &mut u32) {
    #[cfg(target_arch = "x86_64")]
    {
        let _ = sink;
        prefetch_l2((v as *const S).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        *sink ^= v.bits();
    }
}

/// `prefetcht1` of the line at `p`: any address, it only moves data towards the core.
#[inline(always)]
#[allow(unused_variables)]
fn prefetch_l2(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        // SAFETY: `_mm_prefetch` needs only SSE, which every x86_64 CPU has; a
        // prefetch never faults (not even on an unmapped address) and changes
        // no memory, so no address can make it unsound.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T1>(p.cast())
        }
    }
}

/// Column pass of compress for `nb` blocks (chunk starts at block `bj0`) and
/// store of the chunk's coefficients into `out` (the strip's output).
#[inline(always)]
fn col_pass<const B: usize, T: Elem, A: Arith>(
    p: &BlockTransform,
    m: &Mats<'_, B>,
    tmp: &[[f32; TMP_W]; B],
    nb: usize,
    bj0: usize,
    stage: &mut [[f32; STAGE_W]; B],
    out: &mut [T],
) -> usize {
    let c = p.c;
    let bm = p.block_major;
    // Staging position of (block, row): bj·bs + rs[i].
    let bs = if bm { p.per_block } else { c };
    let rs: [usize; B] = std::array::from_fn(|i| {
        if bm {
            p.row_off.get(i).copied().unwrap_or(0)
        } else {
            i * STAGE_W
        }
    });
    let st = stage.as_flattened_mut();
    // act as computed values (not loads): LLVM then keeps the b rows in
    // registers and uses FMAs with an embedded broadcast of tmp, instead of
    // re-loading act as a memory operand of every FMA (load-port bound, 2× slower).
    let zero = std::hint::black_box(0.0f32);
    let act: [[f32; B]; B] = std::array::from_fn(|l| std::array::from_fn(|j| m.act[l][j] + zero));
    for bj in 0..nb {
        for (i, t) in tmp[..c].iter().enumerate() {
            let seg: &[f32; B] = t[bj * B..][..B].try_into().unwrap();
            let (mut e, mut o) = ([0.0f32; B], [0.0f32; B]);
            for l in (0..B).step_by(2) {
                for j in 0..B {
                    e[j] = A::fma(seg[l], act[l][j], e[j]);
                    o[j] = A::fma(seg[l + 1], act[l + 1][j], o[j]);
                }
            }
            let acc: [f32; B] = std::array::from_fn(|j| e[j] + o[j]);
            // Full-width store; lanes ≥ valid spill into slots written later.
            st[bj * bs + rs[i]..][..B].copy_from_slice(&acc);
        }
    }
    // Streaming stores skip the read-for-ownership of each output line, which pays when the
    // output is a large part of the traffic (a quarter of the input or more) and the runs
    // are long enough that few lines are shared between runs (see `STREAM_MIN_BYTES`).
    let run = if bm { nb * p.per_block } else { nb * c };
    let run_bytes = run * std::mem::size_of::<T>();
    let stream = p.tune.stream && 4 * p.per_block >= B * B && run_bytes >= STREAM_MIN_BYTES;
    // (Direct calls, not a function pointer or closure chosen here: through a pointer the
    // stores were not inlined into the kernel's instruction set, hot compress→i8 CF 7 0.56 →
    // 0.96 ns/px.)
    if bm {
        let n = nb * p.per_block;
        store_run(stream, &st[..n], &mut out[bj0 * p.per_block..][..n])
    } else {
        let n = nb * c;
        let row = p.nbw * c;
        let mut clamped = 0;
        for i in 0..c {
            let dst = &mut out[i * row + bj0 * c..][..n];
            clamped += store_run(stream, &st[i * STAGE_W..][..n], dst);
        }
        clamped
    }
}

/// Decompresses global strip `s` from its coefficients `ys` into `out`
/// (the strip's `rows·W` image values).
#[inline(always)]
fn decompress_strip<const B: usize, T: Elem, A: Arith>(
    p: &BlockTransform,
    m: &Mats<'_, B>,
    ys: &[T],
    s: usize,
    out: &mut [f32],
    sc: &mut Scratch<'_, B>,
) {
    let rows = (p.h - (s % p.nbh) * B).min(B);
    let mut x0 = 0;
    while x0 < p.wd {
        let width = (p.wd - x0).min(p.tune.chunk);
        width_pass::<B, T, A>(p, m, ys, width / B, x0 / B, sc.stage, sc.tmp);
        height_pass::<B, A>(
            sc.tmp,
            p.c,
            width / LANES,
            m.brt,
            rows,
            out,
            p.w,
            x0,
            p.tune.write_ahead_bytes / std::mem::size_of::<f32>(),
        );
        x0 += width;
    }
    if p.wd < p.wp {
        let tw = p.wp - p.wd;
        width_pass::<B, T, A>(p, m, ys, tw / B, p.wd / B, sc.stage, sc.tmp);
        let tile = sc.tail.as_flattened_mut();
        height_pass::<B, A>(
            sc.tmp,
            p.c,
            tw.div_ceil(LANES),
            m.brt,
            rows,
            tile,
            TAIL,
            0,
            0,
        );
        // Crop: only columns < W of the valid rows are written.
        let vw = p.w - p.wd;
        for (k, t) in sc.tail[..rows].iter().enumerate() {
            out[k * p.w + p.wd..][..vw].copy_from_slice(&t[..vw]);
        }
    }
}

/// `z[i][bj·b..][..b] = Σ_j Y(bj0+bj)[i][j] · bc[j]` for the chunk's `nb` blocks.
#[inline(always)]
fn width_pass<const B: usize, T: Elem, A: Arith>(
    p: &BlockTransform,
    m: &Mats<'_, B>,
    ys: &[T],
    nb: usize,
    bj0: usize,
    stage: &mut [[f32; STAGE_W]; B],
    z: &mut [[f32; TMP_W]; B],
) {
    let c = p.c;
    let bm = p.block_major;
    let st = stage.as_flattened_mut();
    let (coef, off, stride) = if bm {
        T::view(ys, st, 1, nb * p.per_block, 0, bj0 * p.per_block)
    } else {
        T::view(ys, st, c, nb * c, p.nbw * c, bj0 * c)
    };
    let bs = if bm { p.per_block } else { c };
    let rs: [usize; B] = std::array::from_fn(|i| {
        if bm {
            p.row_off.get(i).copied().unwrap_or(0)
        } else {
            i * stride
        }
    });
    // Register-resident matrix rows (see `col_pass`).
    let zero = std::hint::black_box(0.0f32);
    let bc: [[f32; B]; B] = std::array::from_fn(|j| std::array::from_fn(|l| m.bc[j][l] + zero));
    // One coefficient row `i` at a time over the chunk's blocks: its length `jn` is then
    // fixed for the inner loop, which is compiled per length up to 8 (straight-line FMAs;
    // a run-time length costs a compare and branch per term and bounds checks per block).
    if nb == 0 {
        return;
    }
    for (i, zr) in z[..c].iter_mut().enumerate() {
        let jn = p.row_len[i];
        // Block `bj`'s coefficients of this row start at `row[bj·bs]`.
        let row = &coef[off + rs[i]..][..(nb - 1) * bs + jn];
        let zr = &mut zr[..nb * B];
        // Grid layout in a strip cut into several chunks: each row's run of this chunk is
        // read in one burst, a page or more from the last one; fetch the next row's run
        // while this one is computed (the hardware would start each burst with misses).
        let ahead = if !bm && nb * B < p.wd && i + 1 < c {
            stride
        } else {
            0
        };
        match jn {
            1 => width_row::<B, 1, A>(row, bs, ahead, &bc, zr),
            2 => width_row::<B, 2, A>(row, bs, ahead, &bc, zr),
            3 => width_row::<B, 3, A>(row, bs, ahead, &bc, zr),
            4 => width_row::<B, 4, A>(row, bs, ahead, &bc, zr),
            5 => width_row::<B, 5, A>(row, bs, ahead, &bc, zr),
            6 => width_row::<B, 6, A>(row, bs, ahead, &bc, zr),
            7 => width_row::<B, 7, A>(row, bs, ahead, &bc, zr),
            8 => width_row::<B, 8, A>(row, bs, ahead, &bc, zr),
            _ => width_row_any::<B, A>(row, bs, jn, ahead, &bc, zr),
        }
    }
}

/// `zr[bj·b..][..b] = Σ_{j<J} row[bj·bs + j] · bc[j]` for every block of `zr`.
#[inline(always)]
fn width_row<const B: usize, const J: usize, A: Arith>(
    row: &[f32],
    bs: usize,
    ahead: usize,
    bc: &[[f32; B]; B],
    zr: &mut [f32],
) {
    for (zb, cs) in zr.chunks_exact_mut(B).zip(row.chunks(bs)) {
        if ahead > 0 {
            prefetch_l2(cs.as_ptr().wrapping_add(ahead).cast());
        }
        let cs: &[f32; J] = cs[..J].try_into().unwrap();
        let mut acc = [0.0f32; B];
        for (&v, brow) in cs.iter().zip(bc) {
            for l in 0..B {
                acc[l] = A::fma(v, brow[l], acc[l]);
            }
        }
        zb.copy_from_slice(&acc);
    }
}

/// [`width_row`] for a length known only at run time (`jn > 8`: blocks 16 and 32). Kept as a
/// copy: one function with `jn` as an argument, given literals 1–8 at the call site, measured
/// the same for decompress but made the unrelated compress kernels of the same build slower
/// (hot compress→i8 CF 7 0.59 → 0.96 ns/px), so the length stays a const generic.
#[inline(always)]
fn width_row_any<const B: usize, A: Arith>(
    row: &[f32],
    bs: usize,
    jn: usize,
    ahead: usize,
    bc: &[[f32; B]; B],
    zr: &mut [f32],
) {
    for (zb, cs) in zr.chunks_exact_mut(B).zip(row.chunks(bs)) {
        if ahead > 0 {
            prefetch_l2(cs.as_ptr().wrapping_add(ahead).cast());
        }
        let mut acc = [0.0f32; B];
        for (&v, brow) in cs[..jn].iter().zip(bc) {
            for l in 0..B {
                acc[l] = A::fma(v, brow[l], acc[l]);
            }
        }
        zb.copy_from_slice(&acc);
    }
}

/// `out[k·stride + x0 + g·16..] = Σ_i brt[k][i] · z[i][g·16..]` for `k < rows`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn height_pass<const B: usize, A: Arith>(
    z: &[[f32; TMP_W]; B],
    c: usize,
    groups: usize,
    brt: &[[f32; B]; B],
    rows: usize,
    out: &mut [f32],
    stride: usize,
    x0: usize,
    ahead: usize,
) {
    // Row-major store order (one output row at a time): the hardware prefetcher
    // sees a single ascending stream per page.
    let zero = std::hint::black_box(0.0f32);
    for (k, bk) in brt[..rows].iter().enumerate() {
        let o = &mut out[k * stride + x0..];
        // Splat the row's c coefficients once (kept in registers), so the inner
        // loop is one load + one FMA per term.
        let mut bv = [[0.0f32; LANES]; B];
        for (d, &v) in bv.iter_mut().zip(&bk[..c]) {
            *d = [v + zero; LANES];
        }
        for g in 0..groups {
            let x = g * LANES;
            let mut acc = [0.0f32; LANES];
            for (zi, bki) in z[..c].iter().zip(&bv) {
                let zi: &[f32; LANES] = zi[x..][..LANES].try_into().unwrap();
                for l in 0..LANES {
                    acc[l] = A::fma(bki[l], zi[l], acc[l]);
                }
            }
            o[x..][..LANES].copy_from_slice(&acc);
            // The output `ahead` floats on (a later strip, possibly another
            // thread's or past the buffer: a prefetch is harmless anywhere).
            if ahead > 0 {
                prefetch_l2(o[x..].as_ptr().wrapping_add(ahead).cast());
            }
        }
    }
}
