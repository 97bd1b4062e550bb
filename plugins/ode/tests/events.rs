//! Events and hybrid models: DiffSL's `stop`, `reset` and the model index `N`, through both integrators.

use parfit_core::Model;
use parfit_ode::{Method, OdeModel, SolverOptions, solver_stats};

const BALL: &str = "in_i { g = 9.81, e = 0.8, v0 = 10 }
u_i { x = 0, v = v0 }
F_i { v, -g }
stop { x }
reset_i { 0, -e * v }
";

fn model(src: &str, solver: Method, tol: f64) -> OdeModel {
    let opts = SolverOptions { rtol: tol, atol: tol, solver, ..Default::default() };
    OdeModel::compile(src, "events.ds", opts).unwrap_or_else(|e| panic!("{e}"))
}

fn run(m: &OdeModel, params: &[f64], times: &[f64]) -> Vec<f64> {
    let mut ws = m.workspace();
    let mut out = vec![f64::NAN; times.len() * m.spec().outputs.len()];
    m.simulate(&mut ws, params, &[], times, &mut out).unwrap_or_else(|e| panic!("{e}"));
    out
}

/// The bouncing ball exactly: bounces at the sums of 2 v_k / g with v_k = e^k v0.
fn ball_exact(g: f64, e: f64, v0: f64, t: f64) -> (f64, f64) {
    let (mut start, mut v) = (0.0, v0);
    loop {
        let flight = 2.0 * v / g;
        if t <= start + flight {
            let s = t - start;
            return (v * s - 0.5 * g * s * s, v - g * s);
        }
        start += flight;
        v *= e;
    }
}

#[test]
fn the_bouncing_ball_bounces_where_it_should() {
    let times: Vec<f64> = (0..=60).map(|k| 0.1 * k as f64).collect();
    for solver in [Method::Dopri5, Method::Bdf, Method::Auto] {
        let m = model(BALL, solver, 1e-8);
        let out = run(&m, &[9.81, 0.8, 10.0], &times);
        for (k, &t) in times.iter().enumerate() {
            let (x, v) = ball_exact(9.81, 0.8, 10.0, t);
            let tol = 1e-6 * (1.0 + v.abs());
            assert!(
                (out[2 * k] - x).abs() < tol && (out[2 * k + 1] - v).abs() < tol,
                "{solver:?} t = {t}: {:?} vs {x}, {v}",
                &out[2 * k..2 * k + 2]
            );
        }
        let mut ws = m.workspace();
        let mut o = vec![0.0; 2 * times.len()];
        m.simulate(&mut ws, &[9.81, 0.8, 10.0], &[], &times, &mut o).unwrap();
        let stats = solver_stats(&ws).unwrap();
        assert_eq!(stats.resets, 3, "{solver:?}: {stats:?}");
    }
}
