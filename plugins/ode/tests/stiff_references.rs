//! Upstream problems the stiff solvers must not give up on, against the references of `tests/stiff/`
//! (made by `make_references.py` there: SciPy, checked against LSODA/Radau and pydiffsol).
//!
//! - diffsol's Robertson ODE over Hairer & Wanner's span [0, 4e10], where the steps grow from 1e-6 to 1e9:
//!   it succeeds at default and tight tolerances with either stiff path, and at rtol = 1e-8 it agrees with
//!   the reference within 1e-6 relative on every state, y (which falls to 2e-13) included.
//! - diffsol's population-dynamics example at default tolerances: within 10 tolerances of the reference.

use parfit_core::math;
use parfit_core::{Model, SimError};
use parfit_ode::{Method, OdeModel, SolverOptions, SolverStats, solver_stats};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const ROBERTSON: &str = include_str!("stiff/robertson_4e10.ds");
const ROBERTSON_REF: &str = include_str!("stiff/robertson_4e10.csv");
const POPULATION: &str = include_str!("stiff/population_dynamics.ds");
const POPULATION_REF: &str = include_str!("stiff/population_dynamics.csv");

/// A reference CSV: the times and the rows of states.
fn reference(csv: &str) -> (Vec<f64>, Vec<Vec<f64>>) {
    let rows: Vec<Vec<f64>> =
        csv.lines().skip(1).map(|l| l.split(',').map(|c| c.parse().expect("a number")).collect()).collect();
    (rows.iter().map(|r| r[0]).collect(), rows.iter().map(|r| r[1..].to_vec()).collect())
}

/// Solve `source` at `times` (at its default parameters); the outputs by time, and the work done.
fn solve(source: &str, opts: SolverOptions, times: &[f64]) -> Result<(Vec<Vec<f64>>, SolverStats), SimError> {
    let model = OdeModel::compile(source, "model.ds", opts).unwrap_or_else(|e| panic!("{e}"));
    let mut ws = model.workspace();
    let mut out = vec![f64::NAN; model.spec().output_len(times.len())];
    let result = model.simulate(&mut ws, &model.spec().defaults(), &[], times, &mut out);
    let stats = solver_stats(&ws).expect("an ODE workspace");
    result?;
    let m = model.spec().outputs.len();
    Ok((out.chunks(m).map(<[f64]>::to_vec).collect(), stats))
}

/// The largest `|y - ref| / scale(ref)` over all states and times, and where it is (time, state).
fn worst(got: &[Vec<f64>], want: &[Vec<f64>], times: &[f64], scale: impl Fn(f64) -> f64) -> (f64, f64, usize) {
    let mut w = (0.0, f64::NAN, 0);
    for ((g, r), &t) in got.iter().zip(want).zip(times) {
        for (j, (y, yr)) in g.iter().zip(r).enumerate() {
            let e = (y - yr).abs() / scale(*yr);
            if e.is_nan() || e > w.0 {
                w = (e, t, j);
            }
        }
    }
    w
}

fn opts(solver: Method, rtol: f64, atol: f64) -> SolverOptions {
    SolverOptions { rtol, atol, solver, ..SolverOptions::default() }
}

/// The smallest step used to be tied to the end time (16 ε · 4e10 = 1.4e-4), which killed this solve at
/// t = 0.026 (default tolerances) or at t = 0 (rtol = 1e-10, or BDF from the start).
#[test]
fn robertson_over_4e10_succeeds_at_default_and_tight_tolerances() {
    let (times, want) = reference(ROBERTSON_REF);
    for solver in [Method::Auto, Method::Bdf] {
        for tol in [1e-6, 1e-10] {
            let (got, stats) = solve(ROBERTSON, opts(solver, tol, tol), &times)
                .unwrap_or_else(|e| panic!("{solver:?} at {tol:e}: {e}"));
            let (e, t, j) = worst(&got, &want, &times, |r| tol + tol * r.abs());
            println!("{solver:?} tol {tol:e}: {e:.3} tolerances (t = {t:e}, state {j}); {stats:?}");
            assert!(e <= 10.0, "{solver:?} at {tol:e}: {e} tolerances off at t = {t:e}, state {j}");
            // Steps grew to span decades: a few thousand steps cover 16 decades of time.
            assert!(stats.steps < 5000, "{solver:?} at {tol:e}: {stats:?}");
        }
    }
}

#[test]
fn robertson_over_4e10_at_rtol_1e_8_is_within_1e_6_relative() {
    let (times, want) = reference(ROBERTSON_REF);
    for solver in [Method::Auto, Method::Bdf] {
        // An absolute tolerance far below y's smallest value (2e-13), so that every state is controlled
        // relatively.
        let (got, _) = solve(ROBERTSON, opts(solver, 1e-8, 1e-20), &times).unwrap();
        let (e, t, j) = worst(&got, &want, &times, |r| r.abs() + 1e-20);
        println!("{solver:?}: largest relative error {e:.2e} (t = {t:e}, state {j})");
        assert!(e <= 1e-6, "{solver:?}: relative error {e:e} at t = {t:e}, state {j}");
    }
}

#[test]
fn population_dynamics_at_default_tolerances_is_within_10_tolerances() {
    let (times, want) = reference(POPULATION_REF);
    let defaults = SolverOptions::default();
    for solver in [Method::Auto, Method::Dopri5, Method::Bdf] {
        let (got, _) = solve(POPULATION, SolverOptions { solver, ..defaults }, &times).unwrap();
        let (e, t, j) = worst(&got, &want, &times, |r| defaults.atol + defaults.rtol * r.abs());
        println!("{solver:?}: {e:.3} tolerances (t = {t}, state {j})");
        assert!(e <= 10.0, "{solver:?}: {e} tolerances off at t = {t}, state {j}");
    }
}

/// The heat equation `u_t = D Δu` on an `m × m` grid (5-point stencil, zero boundary, spacing
/// `h = 1/(m + 1)`), one state per cell numbered row by row, as DiffSL text; starting from
/// `v_11 + 0.5 v_32`, two eigenvectors of the discrete Laplacian, whose exact solution is
/// `exp(λ_11 t) v_11 + 0.5 exp(λ_32 t) v_32`. Returns the text and the exact solution.
fn heat_equation(m: usize) -> (String, impl Fn(f64) -> Vec<f64>) {
    let h = 1.0 / (m + 1) as f64;
    let c = 1.0 / (h * h);
    let mode = |p: f64, q: f64| -> (f64, Vec<f64>) {
        let s = |k: f64| math::powi(math::sin(k * std::f64::consts::PI * h / 2.0), 2);
        let v = (0..m * m)
            .map(|k| {
                let (r, col) = ((k / m + 1) as f64, (k % m + 1) as f64);
                math::sin(p * std::f64::consts::PI * r * h) * math::sin(q * std::f64::consts::PI * col * h)
            })
            .collect();
        (-4.0 * c * (s(p) + s(q)), v)
    };
    let ((l1, v1), (l2, v2)) = (mode(1.0, 1.0), mode(3.0, 2.0));
    let mut text = format!("in_i {{ D = 1 }}\nc {{ D * {c:?} }}\nu_i {{\n");
    for (a, b) in v1.iter().zip(&v2) {
        text += &format!("  {:?},\n", a + 0.5 * b);
    }
    text += "}\nF_i {\n";
    for k in 0..m * m {
        let (r, col) = (k / m, k % m);
        let neighbours =
            [(r > 0, k.wrapping_sub(m)), (r + 1 < m, k + m), (col > 0, k.wrapping_sub(1)), (col + 1 < m, k + 1)];
        let terms: Vec<String> =
            neighbours.iter().filter(|(inside, _)| *inside).map(|(_, o)| format!("u_i[{o}]")).collect();
        text += &format!("  c * ({} - 4 * u_i[{k}]),\n", terms.join(" + "));
    }
    text += "}\n";
    let exact =
        move |t: f64| v1.iter().zip(&v2).map(|(a, b)| math::exp(l1 * t) * a + 0.5 * math::exp(l2 * t) * b).collect();
    (text, exact)
}

/// A 20 × 20 grid (400 states; `J` has bandwidth 20, so the BDF's iteration matrix is stored sparse):
/// within 10 tolerances of the exact solution, with BDF from the start and with `auto` (which switches to
/// BDF once the fast modes have decayed).
#[test]
fn heat_equation_2d_matches_its_exact_solution() {
    let (text, exact) = heat_equation(20);
    let times = [0.0, 0.002, 0.01, 0.03, 0.1, 0.3];
    let want: Vec<Vec<f64>> = times.iter().map(|&t| exact(t)).collect();
    for solver in [Method::Bdf, Method::Auto] {
        let (got, stats) = solve(&text, opts(solver, 1e-8, 1e-8), &times).unwrap();
        let (e, t, j) = worst(&got, &want, &times, |r| 1e-8 + 1e-8 * r.abs());
        println!("{solver:?}: {e:.3} tolerances (t = {t}, cell {j}); {stats:?}");
        assert!(e <= 10.0, "{solver:?}: {e} tolerances off at t = {t}, cell {j}");
        assert!(stats.lu_factorizations > 0 && stats.jac_evals > 0, "{solver:?}: {stats:?}");
    }
}
