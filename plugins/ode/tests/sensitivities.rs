//! Forward sensitivities against central finite differences of plain simulations, for every parameter and
//! every output at every time, through Dormand–Prince and through BDF.
//!
//! Both sides are solved at tight tolerances so that the differences' own error (the solution error over
//! the step, ~1e-12 / 1e-5) stays far below the 1e-5 relative agreement asked for. "Relative" is per
//! output and parameter: `|exact - fd| ≤ 1e-5 · max(|fd|, 1e-3 · max over times |fd|, 1e-2 · max over
//! times |out| / |p|)`, so that a sensitivity passing through zero is held to its series' scale rather
//! than to an impossible relative error at the crossing, and one that is zero to the differences' noise
//! level (tolerance × output / step = 1e-12 · |out| / (1e-5 |p|) = 1e-7 |out| / |p|).

use parfit_core::Model;
use parfit_ode::{Method, OdeModel, SolverOptions, solver_stats};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(not(target_arch = "wasm32"))]
fn problem(name: &str) -> String {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/data/ode_problems/{name}.ds"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// On wasm32 (no file system) the problems are compiled in.
#[cfg(target_arch = "wasm32")]
fn problem(name: &str) -> String {
    match name {
        "lotka_volterra" => include_str!("../../../tests/data/ode_problems/lotka_volterra.ds"),
        "robertson" => include_str!("../../../tests/data/ode_problems/robertson.ds"),
        "sir" => include_str!("../../../tests/data/ode_problems/sir.ds"),
        "van_der_pol" => include_str!("../../../tests/data/ode_problems/van_der_pol.ds"),
        other => panic!("{other}: not compiled in for wasm32"),
    }
    .to_string()
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect()
}

/// Check every sensitivity of `src` at the default parameters against central differences; returns the
/// largest relative error (as defined above).
fn check(name: &str, src: &str, opts: SolverOptions, times: &[f64]) -> f64 {
    let m = OdeModel::compile(src, name, opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.has_sensitivities());
    let spec = m.spec().clone();
    let (np, no, nt) = (spec.params.len(), spec.outputs.len(), times.len());
    let p0 = spec.defaults();
    let mut ws = m.workspace();
    let mut out = vec![f64::NAN; nt * no];
    let mut sens = vec![f64::NAN; nt * no * np];
    m.simulate_sensitivities(&mut ws, &p0, &[], times, &mut out, &mut sens).unwrap();
    let stats = solver_stats(&ws).unwrap();
    if opts.solver == Method::Bdf {
        assert!(stats.lu_factorizations > 0 && stats.steps > 0, "{name}: {stats:?}");
    }

    // The outputs agree with a plain simulation to the tolerance (the steps differ: sensitivities take
    // part in the error test).
    let mut plain = vec![0.0; nt * no];
    m.simulate(&mut ws, &p0, &[], times, &mut plain).unwrap();
    for (a, b) in out.iter().zip(&plain) {
        assert!((a - b).abs() <= 1e3 * (opts.atol + opts.rtol * b.abs()), "{name}: output {a} vs plain {b}");
    }

    let mut worst = 0.0f64;
    for p in 0..np {
        let h = 1e-5 * p0[p].abs().max(1e-3);
        let mut run = |v: f64| {
            let mut q = p0.clone();
            q[p] = v;
            let mut o = vec![0.0; nt * no];
            m.simulate(&mut ws, &q, &[], times, &mut o).unwrap();
            o
        };
        let (up, down) = (run(p0[p] + h), run(p0[p] - h));
        let fd: Vec<f64> = up.iter().zip(&down).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        for o in 0..no {
            let scale = (0..nt).map(|i| fd[i * no + o].abs()).fold(0.0, f64::max);
            let natural = (0..nt).map(|i| out[i * no + o].abs()).fold(0.0, f64::max) / p0[p].abs().max(1e-3);
            for (i, &t) in times.iter().enumerate() {
                let k = i * no + o;
                let (exact, diff) = (sens[k * np + p], fd[k]);
                let rel = (exact - diff).abs() / diff.abs().max(1e-3 * scale).max(1e-2 * natural).max(1e-300);
                worst = worst.max(rel);
                assert!(
                    rel <= 1e-5,
                    "{name}: d {}/d {} at t = {}: sensitivity {exact}, differences {diff} (relative error {rel:.1e})",
                    spec.outputs[o],
                    spec.params[p].name,
                    t
                );
            }
        }
    }
    println!("{name} ({:?}): worst relative error {worst:.1e}; {stats:?}", opts.solver);
    worst
}

fn tight(solver: Method) -> SolverOptions {
    SolverOptions { rtol: 1e-12, atol: 1e-12, solver, ..SolverOptions::default() }
}

#[test]
fn lotka_volterra_sensitivities_match_finite_differences() {
    let times = linspace(0.0, 30.0, 61);
    check("lotka_volterra", &problem("lotka_volterra"), tight(Method::Dopri5), &times);
    // Output times on the step grid rather than interpolated.
    check(
        "lotka_volterra",
        &problem("lotka_volterra"),
        SolverOptions { dense_output: false, ..tight(Method::Dopri5) },
        &times,
    );
}

#[test]
fn sir_sensitivities_match_finite_differences() {
    // `pop` and `infected0` also set the initial state.
    let times = linspace(0.0, 160.0, 81);
    check("sir", &problem("sir"), tight(Method::Dopri5), &times);
}

#[test]
fn bdf_sensitivities_match_finite_differences() {
    // The same non-stiff problems through BDF's block solves, then a stiff one.
    check("lotka_volterra", &problem("lotka_volterra"), tight(Method::Bdf), &linspace(0.0, 15.0, 31));
    check("sir", &problem("sir"), tight(Method::Bdf), &linspace(0.0, 160.0, 33));
    let opts = SolverOptions { rtol: 1e-10, atol: 1e-16, solver: Method::Bdf, ..SolverOptions::default() };
    check("robertson", &problem("robertson"), opts, &[0.0, 0.1, 1.0, 10.0, 40.0, 100.0]);
}

#[test]
fn banded_bdf_sensitivities_match_finite_differences() {
    // A nonlinear chain of 12 states: its Jacobian is tridiagonal, so BDF solves every block (the state and
    // each parameter's sensitivities) with the band LU.
    let src = "in_i { D = 3, k = 0.5 }
u_i { (0:3): 1, (3:12): 0 }
F_i {
  D * (u_i[1] - u_i[0]) - k * u_i[0] * u_i[0],
  (1:11): D * (u_i[0:10] - 2 * u_i[1:11] + u_i[2:12]) - k * u_i[1:11] * u_i[1:11],
  D * (u_i[10] - 2 * u_i[11]),
}";
    check("chain", src, tight(Method::Bdf), &linspace(0.0, 5.0, 11));
}

#[test]
fn outputs_and_initial_states_that_depend_on_parameters() {
    // ∂u0/∂p and ∂out/∂p directly, through hoisted parameter code, and outputs mixing states and `t`.
    let src = "in_i { r = 0.8, K = 10, y0 = 0.5 }
scaled { y0 * K }
u_i { y = scaled, z = pow(K, 0.5) }
F_i { r * y * (1 - y / K), -z / K + sin(t) }
out_i { y, fraction = y / K, mixed = exp(-r * t) * z + K }";
    check("logistic", src, tight(Method::Dopri5), &linspace(0.0, 8.0, 17));
    check("logistic", src, tight(Method::Bdf), &linspace(0.0, 8.0, 17));
}

#[test]
fn auto_switches_to_bdf_with_sensitivities() {
    let src = problem("van_der_pol").replace("mu = 1000", "mu = 100");
    let m = OdeModel::compile(&src, "vdp.ds", SolverOptions { rtol: 1e-8, atol: 1e-8, ..Default::default() }).unwrap();
    let times = linspace(0.0, 200.0, 21);
    let mut ws = m.workspace();
    let (mut out, mut sens) = (vec![0.0; 42], vec![0.0; 42]);
    m.simulate_sensitivities(&mut ws, &[100.0], &[], &times, &mut out, &mut sens).unwrap();
    assert!(solver_stats(&ws).unwrap().switched_to_bdf_at.is_some());
    let mut plain = vec![0.0; 42];
    m.simulate(&mut ws, &[100.0], &[], &times, &mut plain).unwrap();
    for (a, b) in out.iter().zip(&plain) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
    assert!(sens.iter().all(|s| s.is_finite()));
}

#[test]
fn bad_sensitivity_buffers_are_errors() {
    let m = OdeModel::compile(&problem("lotka_volterra"), "lv.ds", SolverOptions::default()).unwrap();
    let mut ws = m.workspace();
    let mut out = vec![0.0; 4];
    let err = m.simulate_sensitivities(&mut ws, &[1.1, 0.4, 0.1, 0.4], &[], &[0.0, 1.0], &mut out, &mut [0.0; 5]);
    assert!(err.unwrap_err().to_string().contains("sensitivity buffer has length 5, expected 16"));
}
