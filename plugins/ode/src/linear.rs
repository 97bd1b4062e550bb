//! The Newton iteration matrix `M - c·J` of the implicit methods (`M` the mass matrix, the identity unless the
//! model has one) and its LU factorisation, stored to suit the sparsity patterns of `J = ∂F/∂u` and `M`,
//! which the compiler knows exactly: banded (own LU, [`crate::band`]) when the pattern lies in a narrow band
//! around the diagonal — chains, discretised 1-D PDEs — or the system is tiny; sparse (own LU with a
//! fill-reducing ordering, [`crate::sparse`]) when that costs less than the band or a dense LU — 2-D grids;
//! dense (nalgebra) otherwise.

use nalgebra::{DMatrix, DVectorViewMut, Dyn, LU};

use crate::band::BandLu;
use crate::sparse::SparseLu;

/// Bands this narrow (`kl + ku`) are always stored as bands: tridiagonal and pentadiagonal systems have no
/// cheaper factorisation, and the band LU has a register-carried solve for the tridiagonal ones.
const NARROW_BAND: usize = 4;
/// Solves per factorisation assumed when comparing storages: Newton's iterations while a factorisation is
/// reused (20–40 on the reference problems).
const SOLVES_PER_FACTOR: f64 = 20.0;
/// How much slower the sparse LU is per multiply-add than the band and dense ones (indirect addressing).
const SPARSE_OVERHEAD: f64 = 3.0;

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
    Sparse(Box<SparseLu>),
    Dense {
        lu: Option<LU<f64, Dyn, Dyn>>,
        /// The matrix storage between factorisations (nalgebra's LU takes it by value).
        spare: Option<DMatrix<f64>>,
    },
}

impl Store {
    fn dense(n: usize) -> Store {
        Store::Dense { lu: None, spare: Some(DMatrix::zeros(n, n)) }
    }
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
        let banded = 2 * (2 * kl + ku + 1) <= n;
        let store = if n <= 4 || (banded && kl + ku <= NARROW_BAND) {
            Store::Band(BandLu::new(n, kl, ku))
        } else if 4 * (pattern.len() + mass_pattern.len()) > n * n {
            // Dense enough that ordering cannot pay.
            if banded { Store::Band(BandLu::new(n, kl, ku)) } else { Store::dense(n) }
        } else {
            // Compare the work of a factorisation and the solves made with it; the ordering (whose cost
            // grows with the work it finds) gives up as soon as it cannot win.
            let (nf, kl_f, ku_f) = (n as f64, kl as f64, ku as f64);
            let band_cost = if banded {
                nf * kl_f * (kl_f + ku_f) + SOLVES_PER_FACTOR * nf * (2.0 * kl_f + ku_f + 1.0)
            } else {
                f64::INFINITY
            };
            let dense_cost = nf * nf * nf / 3.0 + SOLVES_PER_FACTOR * nf * nf;
            let best = band_cost.min(dense_cost);
            let pattern_usize = pattern.iter().chain(mass_pattern).map(|&(i, j)| (i as usize, j as usize));
            match SparseLu::within(n, pattern_usize, best / SPARSE_OVERHEAD) {
                Some(sparse) if SPARSE_OVERHEAD * (sparse.work().0 + SOLVES_PER_FACTOR * sparse.work().1) < best => {
                    Store::Sparse(Box::new(sparse))
                }
                _ if banded => Store::Band(BandLu::new(n, kl, ku)),
                _ => Store::dense(n),
            }
        };
        Self::with_store(n, pattern, mass_pattern, store)
    }

    /// The matrix for `pattern` and `mass_pattern` in `store`, which must hold every entry of both patterns
    /// and the diagonal.
    fn with_store(n: usize, pattern: Vec<(u32, u32)>, mass_pattern: &[(u32, u32)], store: Store) -> Self {
        let index = |i: usize, j: usize| match &store {
            Store::Band(b) => b.index(i, j),
            Store::Sparse(s) => s.index(i, j),
            Store::Dense { .. } => j * n + i,
        };
        let at = pattern.iter().map(|&(i, j)| index(i as usize, j as usize)).collect();
        let mass_at = mass_pattern.iter().map(|&(i, j)| index(i as usize, j as usize)).collect();
        let diag = (0..n).map(|i| index(i, i)).collect();
        IterationMatrix { n, pattern, mass_pattern: mass_pattern.to_vec(), at, mass_at, diag, store }
    }

    /// The matrix for `pattern` stored as `kind` (`"band"`, `"sparse"` or `"dense"`) whatever it costs.
    #[cfg(test)]
    fn stored_as(kind: &str, n: usize, pattern: Vec<(u32, u32)>) -> Self {
        let (mut kl, mut ku) = (0, 0);
        for &(i, j) in &pattern {
            kl = kl.max(i.saturating_sub(j) as usize);
            ku = ku.max(j.saturating_sub(i) as usize);
        }
        let store = match kind {
            "band" => Store::Band(BandLu::new(n, kl, ku)),
            "sparse" => {
                Store::Sparse(Box::new(SparseLu::new(n, pattern.iter().map(|&(i, j)| (i as usize, j as usize)))))
            }
            _ => Store::dense(n),
        };
        Self::with_store(n, pattern, &[], store)
    }

    /// Whether this matrix was made for `n × n` Jacobians and mass matrices with these patterns.
    pub fn fits(&self, n: usize, pattern: impl IntoIterator<Item = (u32, u32)>, mass_pattern: &[(u32, u32)]) -> bool {
        self.n == n && self.pattern.iter().copied().eq(pattern) && self.mass_pattern == mass_pattern
    }

    /// How the matrix is stored: `"band"`, `"sparse"` or `"dense"`.
    #[cfg(test)]
    pub fn storage_kind(&self) -> &'static str {
        match self.store {
            Store::Band(_) => "band",
            Store::Sparse(_) => "sparse",
            Store::Dense { .. } => "dense",
        }
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
            Store::Sparse(s) => {
                fill(s.storage());
                s.factor()
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
    pub fn solve(&mut self, b: &mut [f64]) {
        match &mut self.store {
            Store::Band(lu) => lu.solve(b),
            Store::Sparse(lu) => lu.solve(b),
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
    use parfit_core::math;

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
        assert_eq!((band.storage_kind(), dense.storage_kind()), ("band", "dense"));
        assert_eq!(IterationMatrix::new(3, [(0, 0), (1, 1), (2, 2), (0, 1), (2, 0)], &[]).storage_kind(), "band");
        assert_eq!(IterationMatrix::new(6, [(0, 0), (5, 0), (0, 5)], &[]).storage_kind(), "sparse");

        let jac_tri: Vec<f64> = tri.iter().map(|&(i, j)| if i == j { -2.0 } else { 1.0 + 0.1 * i as f64 }).collect();
        let jac_full: Vec<f64> =
            full.iter().map(|&(i, j)| tri.iter().position(|&e| e == (i, j)).map_or(0.0, |k| jac_tri[k])).collect();
        assert!(band.factor(0.7, &jac_tri, &[]) && dense.factor(0.7, &jac_full, &[]));
        let b: Vec<f64> = (0..n).map(|i| math::sin(i as f64)).collect();
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

    /// The 5-point stencil's pattern on an `m × m` grid, numbered row by row (bandwidth `m`).
    fn grid(m: u32) -> Vec<(u32, u32)> {
        (0..m * m)
            .flat_map(|k| {
                let (r, c) = (k / m, k % m);
                let neighbours =
                    [(r > 0, k.wrapping_sub(m)), (r + 1 < m, k + m), (c > 0, k.wrapping_sub(1)), (c + 1 < m, k + 1)];
                std::iter::once((k, k))
                    .chain(neighbours.into_iter().filter(|&(inside, _)| inside).map(move |(_, o)| (k, o)))
            })
            .collect()
    }

    /// `J` of the heat equation on `grid(m)` (`-4` on the diagonal, `1` off it).
    fn heat(pattern: &[(u32, u32)]) -> Vec<f64> {
        pattern.iter().map(|&(i, j)| if i == j { -4.0 } else { 1.0 }).collect()
    }

    /// The 5-point stencil on an `m × m` grid (bandwidth `m`) is stored sparse, and solves as the dense LU
    /// does.
    #[test]
    fn a_2d_grid_is_sparse_and_every_storage_agrees() {
        let m = 12u32;
        let n = (m * m) as usize;
        let grid = grid(m);
        let mut sparse = IterationMatrix::new(n, grid.iter().copied(), &[]);
        assert_eq!(sparse.storage_kind(), "sparse");
        // The grid of the heat-equation test in tests/stiff_references.rs too.
        assert_eq!(IterationMatrix::new(400, self::grid(20), &[]).storage_kind(), "sparse");
        // Non-symmetric values (an advection term), and the same matrix densely.
        let jac: Vec<f64> = grid
            .iter()
            .map(|&(i, j)| {
                if i == j {
                    -4.0
                } else if j > i {
                    1.3
                } else {
                    0.7 + 0.01 * i as f64
                }
            })
            .collect();
        let full: Vec<(u32, u32)> = (0..n as u32).flat_map(|j| (0..n as u32).map(move |i| (i, j))).collect();
        let jac_full: Vec<f64> =
            full.iter().map(|e| grid.iter().position(|g| g == e).map_or(0.0, |k| jac[k])).collect();
        let mut dense = IterationMatrix::new(n, full.iter().copied(), &[]);
        for c in [0.01, 0.7, 1e6] {
            assert!(sparse.factor(c, &jac, &[]) && dense.factor(c, &jac_full, &[]));
            let b: Vec<f64> = (0..n).map(|i| math::sin(i as f64 * 0.37)).collect();
            let (mut x, mut z) = (b.clone(), b.clone());
            sparse.solve(&mut x);
            dense.solve(&mut z);
            let scale = z.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            for i in 0..n {
                assert!((x[i] - z[i]).abs() <= 1e-12 * scale, "c = {c}: x[{i}] = {} vs dense {}", x[i], z[i]);
            }
        }
    }

    /// `cargo test --release -p parfit-ode --lib -- --ignored --nocapture lu_cost`: a factorisation and a solve
    /// of the heat equation's `I - c·J` on m × m grids, in each storage.
    #[test]
    #[ignore = "timing; run in release"]
    fn lu_cost() {
        for m in [10, 30, 60] {
            let (n, pattern) = ((m * m) as usize, grid(m));
            let jac = heat(&pattern);
            let b: Vec<f64> = (0..n).map(|i| math::sin(i as f64)).collect();
            let chosen = IterationMatrix::new(n, pattern.iter().copied(), &[]).storage_kind();
            for kind in ["band", "sparse", "dense"] {
                if kind == "dense" && m > 30 {
                    continue;
                }
                let start = std::time::Instant::now();
                let mut a = IterationMatrix::stored_as(kind, n, pattern.clone());
                let setup = start.elapsed().as_secs_f64();
                let start = std::time::Instant::now();
                let reps = 10;
                for r in 0..reps {
                    assert!(a.factor(1e-3 * (1.0 + r as f64), &jac, &[]));
                }
                let factor = start.elapsed().as_secs_f64() / reps as f64;
                let mut x = b.clone();
                let start = std::time::Instant::now();
                for _ in 0..100 {
                    x.copy_from_slice(&b);
                    a.solve(&mut x);
                }
                let solve = start.elapsed().as_secs_f64() / 100.0;
                println!(
                    "{m} × {m} grid ({chosen} chosen), {kind}: set-up {:.2} ms, factorisation {:.3} ms, solve {:.1} µs",
                    setup * 1e3,
                    factor * 1e3,
                    solve * 1e6
                );
            }
        }
    }
}
