//! LU factorisation with partial pivoting of a banded matrix, and solves with it: `O(n·kl·(kl + ku))` work
//! and `O(n·(2kl + ku))` storage instead of dense `O(n³)` and `O(n²)`.
//!
//! The storage is LAPACK's for `gbtrf`: column `j` holds rows `j - kl - ku ..= j + kl` contiguously, the top
//! `kl` of them empty before the factorisation. Row interchanges push entries of `U` up to `kl + ku` above
//! the diagonal, and that is where they land; `L`'s multipliers stay below the diagonal of their column, and
//! the interchanges are applied to the right-hand side as the forward substitution meets them.

/// A banded `n × n` matrix (lower bandwidth `kl`, upper `ku`) and, after [`BandLu::factor`], its LU factors.
#[derive(Debug, Clone)]
pub(crate) struct BandLu {
    n: usize,
    kl: usize,
    ku: usize,
    /// Column-major, `rows()` values per column.
    ab: Vec<f64>,
    /// Row `j` was interchanged with row `piv[j] ≥ j` at step `j`.
    piv: Vec<usize>,
    /// `1 / U_jj`: the back substitution multiplies (a division's latency would sit on its critical path).
    inv_diag: Vec<f64>,
    /// `U`'s actual upper bandwidth: `ku` without row interchanges, up to `kl + ku` with them.
    u_band: usize,
    /// Whether the factorisation interchanged rows.
    interchanged: bool,
}

impl BandLu {
    pub fn new(n: usize, kl: usize, ku: usize) -> Self {
        let rows = 2 * kl + ku + 1;
        BandLu {
            n,
            kl,
            ku,
            ab: vec![0.0; rows * n],
            piv: vec![0; n],
            inv_diag: vec![0.0; n],
            u_band: ku,
            interchanged: false,
        }
    }

    fn rows(&self) -> usize {
        2 * self.kl + self.ku + 1
    }

    /// Where entry `(i, j)` of the matrix is stored; it must lie in the band, `j - ku ≤ i ≤ j + kl`.
    pub fn index(&self, i: usize, j: usize) -> usize {
        debug_assert!(i + self.ku >= j && i <= j + self.kl, "({i}, {j}) outside the band");
        j * self.rows() + self.kl + self.ku + i - j
    }

    /// The storage, to be filled through [`BandLu::index`] (every other value zero) before [`BandLu::factor`].
    pub fn storage(&mut self) -> &mut [f64] {
        &mut self.ab
    }

    /// Factorise in place. False when a pivot is zero (the matrix is singular) or not finite.
    pub fn factor(&mut self) -> bool {
        let (n, kl, rows) = (self.n, self.kl, self.rows());
        let kv = self.kl + self.ku; // U's upper bandwidth
        let ab = &mut self.ab;
        // The last column the eliminations so far reached: a row interchange at step j moves row entries
        // up to column piv[j] + ku into row j.
        let mut last = 0;
        self.u_band = self.ku;
        self.interchanged = false;
        for j in 0..n {
            let below = kl.min(n - 1 - j);
            let diag = j * rows + kv;
            let col = &ab[diag..=diag + below];
            let mut p = 0;
            for (k, v) in col.iter().enumerate().skip(1) {
                if v.abs() > col[p].abs() {
                    p = k;
                }
            }
            self.piv[j] = j + p;
            let pivot = col[p];
            if pivot == 0.0 || !pivot.is_finite() {
                return false;
            }
            last = last.max((j + p + self.ku).min(n - 1));
            self.u_band = self.u_band.max(last - j);
            if p != 0 {
                self.interchanged = true;
                for c in j..=last {
                    let top = c * rows + kv + j - c;
                    ab.swap(top, top + p);
                }
            }
            let inv = 1.0 / pivot;
            self.inv_diag[j] = inv;
            for v in &mut ab[diag + 1..=diag + below] {
                *v *= inv;
            }
            // Rank-one update of the rows below the pivot, columns j+1..=last.
            for c in j + 1..=last {
                let top = c * rows + kv + j - c;
                let u = ab[top];
                if u != 0.0 {
                    for k in 1..=below {
                        ab[top + k] -= ab[diag + k] * u;
                    }
                }
            }
        }
        true
    }

    /// Solve `A x = b` in place with the factors of [`BandLu::factor`].
    pub fn solve(&self, b: &mut [f64]) {
        let (n, kl, rows) = (self.n, self.kl, self.rows());
        let kv = self.kl + self.ku;
        let ab = &self.ab;
        debug_assert_eq!(b.len(), n);
        if kl == 1 && self.u_band == 1 && !self.interchanged {
            // Tridiagonal without interchanges (diagonally dominant, as diffusion makes it): the same
            // operations, with the unknown carried in a register from one row to the next instead of through
            // memory — the recurrence's latency is the whole cost of this solve.
            let mut x = b[0];
            for j in 1..n {
                x = b[j] - ab[(j - 1) * rows + kv + 1] * x;
                b[j] = x;
            }
            let mut x = b[n - 1] * self.inv_diag[n - 1];
            b[n - 1] = x;
            for j in (0..n - 1).rev() {
                x = (b[j] - ab[(j + 1) * rows + kv - 1] * x) * self.inv_diag[j];
                b[j] = x;
            }
            return;
        }
        // L: the interchanges in the order they were made, each followed by its column's elimination.
        if kl > 0 {
            for j in 0..n {
                let p = self.piv[j];
                if p != j {
                    b.swap(j, p);
                }
                let x = b[j];
                let below = kl.min(n - 1 - j);
                let diag = j * rows + kv;
                for (bi, l) in b[j + 1..=j + below].iter_mut().zip(&ab[diag + 1..=diag + below]) {
                    *bi -= l * x;
                }
            }
        }
        // U, by columns from the last.
        for j in (0..n).rev() {
            let diag = j * rows + kv;
            let x = b[j] * self.inv_diag[j];
            b[j] = x;
            let above = self.u_band.min(j);
            for (bi, u) in b[j - above..j].iter_mut().zip(&ab[diag - above..diag]) {
                *bi -= u * x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random value in [-1, 1).
    fn value(k: usize) -> f64 {
        // splitmix64's finaliser (a plain multiplicative hash makes nearly singular matrices).
        let mut x = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// A random banded matrix (dense, row-major) and its band LU.
    fn matrix(n: usize, kl: usize, ku: usize, diag: f64) -> (Vec<f64>, BandLu) {
        let mut dense = vec![0.0; n * n];
        let mut lu = BandLu::new(n, kl, ku);
        for i in 0..n {
            for j in i.saturating_sub(kl)..(i + ku + 1).min(n) {
                let v = value(i * n + j) + if i == j { diag } else { 0.0 };
                dense[i * n + j] = v;
                let k = lu.index(i, j);
                lu.storage()[k] = v;
            }
        }
        (dense, lu)
    }

    fn residual(dense: &[f64], x: &[f64], b: &[f64]) -> f64 {
        let n = b.len();
        (0..n).map(|i| ((0..n).map(|j| dense[i * n + j] * x[j]).sum::<f64>() - b[i]).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn solves_banded_systems_with_and_without_pivoting() {
        // A small diagonal makes partial pivoting interchange rows; a large one keeps them in place (and
        // tridiagonal systems then take the solve's register path).
        for (n, kl, ku) in [
            (1, 0, 0),
            (2, 1, 1),
            (5, 1, 1),
            (40, 1, 1),
            (12, 2, 1),
            (12, 1, 3),
            (9, 0, 2),
            (9, 3, 0),
            (3, 2, 2),
            (4, 3, 3),
            (5, 4, 4),
            (6, 5, 5),
            (6, 2, 5),
            (6, 5, 2),
            (40, 2, 2),
        ] {
            for diag in [0.0, 0.05, 10.0] {
                let (dense, mut lu) = matrix(n, kl, ku, diag);
                assert!(lu.factor(), "n {n} kl {kl} ku {ku} diag {diag}");
                let b: Vec<f64> = (0..n).map(|i| value(1000 + i)).collect();
                let mut x = b.clone();
                lu.solve(&mut x);
                let r = residual(&dense, &x, &b);
                assert!(r < 1e-10, "n {n} kl {kl} ku {ku} diag {diag}: residual {r:e}");
            }
        }
    }

    #[test]
    fn agrees_with_a_dense_lu() {
        let (n, kl, ku) = (30, 2, 3);
        let (dense, mut lu) = matrix(n, kl, ku, 0.1);
        assert!(lu.factor());
        let b: Vec<f64> = (0..n).map(|i| value(500 + i)).collect();
        let mut x = b.clone();
        lu.solve(&mut x);
        let m = nalgebra::DMatrix::from_row_slice(n, n, &dense);
        let y = m.lu().solve(&nalgebra::DVector::from_column_slice(&b)).unwrap();
        for i in 0..n {
            assert!((x[i] - y[i]).abs() < 1e-10 * y[i].abs().max(1.0), "x[{i}] = {} vs {}", x[i], y[i]);
        }
    }

    #[test]
    fn a_singular_matrix_is_refused() {
        // Tridiagonal with a zero column.
        let mut lu = BandLu::new(4, 1, 1);
        for (i, j, v) in [(0, 0, 1.0), (1, 0, 2.0), (2, 3, 1.0), (3, 3, 4.0), (0, 1, 0.0), (2, 2, 0.0)] {
            let k = lu.index(i, j);
            lu.storage()[k] = v;
        }
        assert!(!lu.factor());
    }
}
