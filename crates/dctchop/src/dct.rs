//! The DCT-II itself, in f64: the transform matrix (paper Eq. 2) and a naive reference of Eq. 1.
//! Which coefficients each variant keeps is in [`crate::layout`].

use ndarray::Array2;

/// Orthonormal DCT-II matrix T (N×N), paper Eq. 2: row i is the i-th cosine basis vector.
pub fn dct_matrix(n: usize) -> Array2<f64> {
    let nf = n as f64;
    Array2::from_shape_fn((n, n), |(i, j)| {
        if i == 0 {
            1.0 / nf.sqrt()
        } else {
            (2.0 / nf).sqrt()
                * (std::f64::consts::PI * (2 * j + 1) as f64 * i as f64 / (2.0 * nf)).cos()
        }
    })
}

/// Naive 2-D DCT-II of one N×N block straight from Eq. 1 (O(N⁴)). Independent of
/// [`dct_matrix`]; used only as a test reference.
pub fn naive_dct2(p: &Array2<f64>) -> Array2<f64> {
    let n = p.nrows();
    assert_eq!(n, p.ncols(), "naive_dct2 takes a square block");
    let nf = n as f64;
    let s =
        |u: usize, v: usize| (((2 * u + 1) * v) as f64 * std::f64::consts::PI / (2.0 * nf)).cos();
    let c = |w: usize| {
        if w == 0 {
            std::f64::consts::FRAC_1_SQRT_2
        } else {
            1.0
        }
    };
    Array2::from_shape_fn((n, n), |(i, j)| {
        let mut acc = 0.0;
        for x in 0..n {
            for y in 0..n {
                acc += p[[x, y]] * s(x, i) * s(y, j);
            }
        }
        // Eq. 1 prints the factor 1/sqrt(2N), which equals the orthonormal 2/N only at N = 8
        // (1/sqrt(16) = 2/8). Use 2/N so that every block size is checked.
        (2.0 / nf) * c(i) * c(j) * acc
    })
}

pub use crate::layout::kept_positions;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthonormal_for_every_block_size() {
        for n in [4, 8, 16, 32] {
            let t = dct_matrix(n);
            let eye = t.dot(&t.t());
            for ((i, j), v) in eye.indexed_iter() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-12, "n={n} ({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn eq1_matches_eq2_and_paper_factor_for_n8() {
        // For N = 8 the printed factor 1/sqrt(2N) equals 2/N, so the reference is Eq. 1 verbatim.
        assert!((1.0 / (16f64).sqrt() - 2.0 / 8.0).abs() < 1e-15);
        for n in [4, 8, 16] {
            let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let t = dct_matrix(n);
            let d = t.dot(&a).dot(&t.t());
            let r = naive_dct2(&a);
            for (x, y) in d.iter().zip(r.iter()) {
                assert!((x - y).abs() < 1e-10);
            }
        }
    }
}
