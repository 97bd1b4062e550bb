//! Small dense solves on caller-owned, row-major buffers, so the gradient-based optimisers
//! allocate nothing per iteration. Problems here have tens of parameters, where these loops beat
//! anything fancier.

/// Solve `A x = b` for symmetric positive definite `A` (n × n, row-major; only the lower triangle
/// is read). `a` is overwritten by the Cholesky factor, `b` by the solution. Returns `false`,
/// leaving `b` unspecified, when `A` is not numerically positive definite.
pub(crate) fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64]) -> bool {
    debug_assert!(a.len() >= n * n && b.len() >= n);
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..n {
        let s: f64 = (0..i).map(|k| a[i * n + k] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * n + i];
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[k * n + i] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * n + i];
    }
    true
}

/// Solve `A x = b` (n × n, row-major) by Gaussian elimination with partial pivoting. `a` is
/// destroyed, `b` becomes the solution. Returns `false` when `A` is numerically singular.
pub(crate) fn lu_solve(a: &mut [f64], n: usize, b: &mut [f64]) -> bool {
    lu_solve_many(a, n, b, 1)
}

/// Solve `A X = B` for `m` right-hand sides at once (`A` n × n, `B` n × m, both row-major) with one
/// elimination: `A` is destroyed, `B` becomes `X`. Each column gets exactly the operations
/// [`lu_solve`] would apply to it alone. Returns `false` when `A` is numerically singular.
pub(crate) fn lu_solve_many(a: &mut [f64], n: usize, b: &mut [f64], m: usize) -> bool {
    debug_assert!(a.len() >= n * n && b.len() >= n * m);
    let scale = a[..n * n].iter().fold(0.0_f64, |s, v| s.max(v.abs()));
    if !(scale > 0.0 && scale.is_finite()) {
        return n == 0;
    }
    for col in 0..n {
        let pivot = (col..n).fold(col, |p, r| if a[r * n + col].abs() > a[p * n + col].abs() { r } else { p });
        if a[pivot * n + col].abs() <= scale * f64::EPSILON * n as f64 {
            return false;
        }
        if pivot != col {
            for k in 0..n {
                a.swap(pivot * n + k, col * n + k);
            }
            for j in 0..m {
                b.swap(pivot * m + j, col * m + j);
            }
        }
        let p = a[col * n + col];
        for r in col + 1..n {
            let factor = a[r * n + col] / p;
            if factor != 0.0 {
                for k in col..n {
                    a[r * n + k] -= factor * a[col * n + k];
                }
                for j in 0..m {
                    b[r * m + j] -= factor * b[col * m + j];
                }
            }
        }
    }
    for i in (0..n).rev() {
        for j in 0..m {
            let s: f64 = (i + 1..n).map(|k| a[i * n + k] * b[k * m + j]).sum();
            b[i * m + j] = (b[i * m + j] - s) / a[i * n + i];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn solves_match_the_system() {
        // A = Mᵀ M + I is positive definite.
        let m = [2.0, -1.0, 0.5, 0.3, 1.5, -0.7, 1.0, 0.2, 3.0];
        let n = 3;
        let mut a = vec![0.0; 9];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[k * n + i] * m[k * n + j]).sum::<f64>() + f64::from(i == j);
            }
        }
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum()).collect();
        let (mut a1, mut b1) = (a.clone(), b.clone());
        assert!(cholesky_solve(&mut a1, n, &mut b1));
        let mut a2 = m.to_vec();
        let mut b2: Vec<f64> = (0..n).map(|i| (0..n).map(|j| m[i * n + j] * x[j]).sum()).collect();
        assert!(lu_solve(&mut a2, n, &mut b2));
        for i in 0..n {
            assert!((b1[i] - x[i]).abs() < 1e-12 && (b2[i] - x[i]).abs() < 1e-12, "{b1:?} {b2:?}");
        }
        let singular = [1.0, 2.0, 2.0, 4.0];
        assert!(!cholesky_solve(&mut singular.clone(), 2, &mut [1.0, 1.0]));
        assert!(!lu_solve(&mut singular.clone(), 2, &mut [1.0, 1.0]));
        assert!(lu_solve(&mut [], 0, &mut []));
    }

    #[test]
    fn many_right_hand_sides_solve_like_one_each() {
        // A general (non-symmetric) matrix whose first column needs a row swap.
        let a = [0.1, 2.0, -1.0, 3.0, 0.5, 0.25, -1.0, 1.5, 2.0];
        let n = 3;
        // B = I: X is the inverse; every column bit-identical to its own solve.
        let mut x = vec![0.0; 9];
        for i in 0..n {
            x[i * n + i] = 1.0;
        }
        assert!(lu_solve_many(&mut a.clone(), n, &mut x, n));
        for col in 0..n {
            let mut e = vec![0.0; n];
            e[col] = 1.0;
            assert!(lu_solve(&mut a.clone(), n, &mut e));
            for row in 0..n {
                assert_eq!(x[row * n + col].to_bits(), e[row].to_bits());
            }
        }
        for i in 0..n {
            for j in 0..n {
                let aij: f64 = (0..n).map(|k| a[i * n + k] * x[k * n + j]).sum();
                assert!((aij - f64::from(i == j)).abs() < 1e-14, "A·A⁻¹ at ({i}, {j}): {aij}");
            }
        }
        assert!(!lu_solve_many(&mut [1.0, 2.0, 2.0, 4.0], 2, &mut [1.0, 0.0, 0.0, 1.0], 2));
    }
}
