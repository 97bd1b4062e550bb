//! The Newton iteration matrix `M - c·J` of the implicit methods (`M` the mass matrix, the identity unless the
//! model has one) and its LU factorisation, stored to suit the sparsity patterns of `J = ∂F/∂u` and `M`,
//! which the compiler knows exactly: banded (own LU, [`crate::band`]) when the pattern lies in a narrow band
//! around the diagonal — chains, discretised 1-D PDEs — or the system is tiny, and dense (nalgebra)
//! otherwise.

use nalgebra::{DMatrix, DVectorViewMut, Dyn, LU};

use crate::band::BandLu;

/// `J`'s and `M`'s entries are given as values in the order of the patterns `(row, column)` the matrix was
/// made with.
#[derive(Debug)]
pub(crate) struct IterationMatrix {
    n: usize,
    /// The patterns the matrix was made for (`J`'s, `M`'s), to tell whether a workspace fits a model.
    pattern: Vec<(u32, u32)>,
    mass_pattern: Vec<(u32, u32)>,
    /// Where each entry of `J` goes in the storage, where each entry of `M` goes (none: `M = I`), and where
    /// the diagonal is.
    at: Vec<usize>,
    mass_at: Vec<usize>,
    diag: Vec<usize>,
    store: Store,
}

#[derive(Debug)]
enum Store {
    Band(BandLu),
    Dense {
        lu: Option<LU<f64, Dyn, Dyn>>,
        /// The matrix storage between factorisations (nalgebra's LU takes it by value).
        spare: Option<DMatrix<f64>>,
    },
}

impl IterationMatrix {
    /// For `n × n` Jacobians with non-zero entries only at `pattern`, and mass matrices with non-zero entries
    /// only at `mass_pattern` (empty: the identity).
    pub fn new(n: usize, pattern: impl IntoIterator<Item = (u32, u32)>, mass_pattern: &[(u32, u32)]) -> Self {
        let pattern: Vec<(u32, u32)> = pattern.into_iter().collect();
        let (mut kl, mut ku) = (0, 0);
        for &(i, j) in pattern.iter().chain(mass_pattern) {
            let (i, j) = (i as usize, j as usize);
            kl = kl.max(i.saturating_sub(j));
            ku = ku.max(j.saturating_sub(i));
        }
        // The band LU stores 2kl + ku + 1 values per column and does about n·kl·(kl + ku) work: worth it
        // while that storage is at most half the dense column (tridiagonal from n = 8 on). Systems of up to
        // 4 states take it whatever their pattern: there it is a plain dense LU without nalgebra's generic
        // overhead and pivot allocation (Van der Pol and Robertson solve 5–7% faster).
        let store = if 2 * (2 * kl + ku + 1) <= n || n <= 4 {
            Store::Band(BandLu::new(n, kl, ku))
        } else {
            Store::Dense { lu: None, spare: Some(DMatrix::zeros(n, n)) }
        };
        let index = |i: usize, j: usize| match &store {
            Store::Band(b) => b.index(i, j),
            Store::Dense { .. } => j * n + i,
        };
        let at = pattern.iter().map(|&(i, j)| index(i as usize, j as usize)).collect();
        let mass_at = mass_pattern.iter().map(|&(i, j)| index(i as usize, j as usize)).collect();
        let diag = (0..n).map(|i| index(i, i)).collect();
        IterationMatrix { n, pattern, mass_pattern: mass_pattern.to_vec(), at, mass_at, diag, store }
    }

    /// Whether this matrix was made for `n × n` Jacobians and mass matrices with these patterns.
    pub fn fits(&self, n: usize, pattern: impl IntoIterator<Item = (u32, u32)>, mass_pattern: &[(u32, u32)]) -> bool {
        self.n == n && self.pattern.iter().copied().eq(pattern) && self.mass_pattern == mass_pattern
    }

    #[cfg(test)]
    pub fn is_banded(&self) -> bool {
        matches!(self.store, Store::Band(_))
    }

    /// `J`'s pattern, in the order of its entries.
    pub fn pattern(&self) -> &[(u32, u32)] {
        &self.pattern
    }

    /// The number of entries of `J` (the length of the values [`IterationMatrix::factor`] reads).
    pub fn entries(&self) -> usize {
        self.pattern.len()
    }

    /// Form `M - c·J` from `J`'s and `M`'s entries (`mass` is empty when `M = I`) and factorise it. False
    /// when it is singular.
    pub fn factor(&mut self, c: f64, jac: &[f64], mass: &[f64]) -> bool {
        debug_assert_eq!(jac.len(), self.at.len());
        debug_assert_eq!(mass.len(), self.mass_at.len());
        let fill = |m: &mut [f64]| {
            m.fill(0.0);
            for (&k, &v) in self.at.iter().zip(jac) {
                m[k] = -c * v;
            }
            if self.mass_at.is_empty() {
                for &k in &self.diag {
                    m[k] += 1.0;
                }
            }
            for (&k, &v) in self.mass_at.iter().zip(mass) {
                m[k] += v;
            }
        };
        match &mut self.store {
            Store::Band(b) => {
                fill(b.storage());
                b.factor()
            }
            Store::Dense { lu, spare } => {
                let mut m = match (spare.take(), lu.take()) {
                    (Some(m), _) => m,
                    // Reuse the storage of the previous factorisation (`l_unpack` keeps it for a square matrix).
                    (None, Some(lu)) => lu.l_unpack(),
                    (None, None) => DMatrix::zeros(self.n, self.n),
                };
                fill(m.as_mut_slice());
                let f = LU::new(m);
                let ok = f.is_invertible();
                *lu = Some(f);
                ok
            }
        }
    }

    /// Solve `(I - c·J) x = b` in place with the last factorisation (which succeeded).
    pub fn solve(&self, b: &mut [f64]) {
        match &self.store {
            Store::Band(lu) => lu.solve(b),
            Store::Dense { lu, .. } => {
                let lu = lu.as_ref().expect("factorised before solving");
                let ok = lu.solve_mut(&mut DVectorViewMut::from_slice(b, self.n));
                debug_assert!(ok, "solved with a singular factorisation");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The diffusion chain's pattern (tridiagonal) goes to the band LU, a full one to the dense LU; both
    /// solve the same system alike.
    #[test]
    fn the_pattern_chooses_the_storage() {
        let n = 20;
        let tri: Vec<(u32, u32)> = (0..n as u32)
            .flat_map(|i| [(i, i.wrapping_sub(1)), (i, i), (i, i + 1)])
            .filter(|&(_, j)| j < n as u32)
            .collect();
        let full: Vec<(u32, u32)> = (0..n as u32).flat_map(|j| (0..n as u32).map(move |i| (i, j))).collect();
        let mut band = IterationMatrix::new(n, tri.iter().copied(), &[]);
        let mut dense = IterationMatrix::new(n, full.iter().copied(), &[]);
        assert!(band.is_banded() && !dense.is_banded());
        assert!(IterationMatrix::new(3, [(0, 0), (1, 1), (2, 2), (0, 1), (2, 0)], &[]).is_banded());
        assert!(!IterationMatrix::new(6, [(0, 0), (5, 0), (0, 5)], &[]).is_banded());

        let jac_tri: Vec<f64> = tri.iter().map(|&(i, j)| if i == j { -2.0 } else { 1.0 + 0.1 * i as f64 }).collect();
        let jac_full: Vec<f64> =
            full.iter().map(|&(i, j)| tri.iter().position(|&e| e == (i, j)).map_or(0.0, |k| jac_tri[k])).collect();
        assert!(band.factor(0.7, &jac_tri, &[]) && dense.factor(0.7, &jac_full, &[]));
        let b: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let (mut x, mut y) = (b.clone(), b.clone());
        band.solve(&mut x);
        dense.solve(&mut y);
        for i in 0..n {
            assert!((x[i] - y[i]).abs() < 1e-13, "x[{i}] = {} vs {}", x[i], y[i]);
        }
        assert!(band.fits(n, tri.iter().copied(), &[]) && !band.fits(n, full.iter().copied(), &[]));
    }

    /// With a mass matrix the matrix is `M - c·J`, its band widened by `M`'s pattern; a singular `M - c·J`
    /// (an algebraic row whose `J` row is zero) is reported.
    #[test]
    fn a_mass_matrix_replaces_the_identity() {
        // M = [[2, 0, 0], [0, 1, 0], [1, 0, 0]] (row 2 algebraic but for the coupling), J = -I.
        let (jac_pattern, mass_pattern) = ([(0, 0), (1, 1), (2, 2)], [(0, 0), (1, 1), (2, 0)]);
        let mut m = IterationMatrix::new(3, jac_pattern, &mass_pattern);
        assert!(m.factor(0.5, &[-1.0, -1.0, -1.0], &[2.0, 1.0, 1.0]));
        // [[2.5, 0, 0], [0, 1.5, 0], [1, 0, 0.5]] x = b
        let mut x = [5.0, 3.0, 3.0];
        m.solve(&mut x);
        assert_eq!(x, [2.0, 2.0, 2.0]);
        assert!(!m.factor(0.5, &[-1.0, -1.0, 0.0], &[2.0, 1.0, 0.0]));
        assert!(m.fits(3, jac_pattern, &mass_pattern) && !m.fits(3, jac_pattern, &[]));
    }
}
