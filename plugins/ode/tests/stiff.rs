//! BDF, the `solver` option, stiffness detection and solver statistics.

use parfit_core::math;
use parfit_core::{Model, SimError};
use parfit_ode::{Method, OdeModel, SolverOptions, SolverStats, solver_stats};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn opts(solver: Method, tol: f64) -> SolverOptions {
    SolverOptions { rtol: tol, atol: tol, solver, ..SolverOptions::default() }
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect()
}

fn solve(m: &OdeModel, params: &[f64], times: &[f64]) -> (Result<Vec<f64>, SimError>, SolverStats) {
    let mut ws = m.workspace();
    let mut out = vec![f64::NAN; m.spec().output_len(times.len())];
    let r = m.simulate(&mut ws, params, &[], times, &mut out).map(|()| out);
    (r, solver_stats(&ws).unwrap())
}

const VDP: &str = "in_i { mu = 1000 }\nu_i { x = 2, v = 0 }\nF_i { v, mu * (1 - x * x) * v - x }";

#[test]
fn bdf_matches_known_solutions() {
    // Decay (linear, constant Jacobian) and a forced oscillator (non-autonomous).
    let m =
        OdeModel::compile("in_i { k = 0.7 }\nu_i { y = 2 }\nF_i { -k * y }", "d.ds", opts(Method::Bdf, 1e-9)).unwrap();
    let times = linspace(0.0, 10.0, 101);
    let (out, stats) = solve(&m, &[0.5], &times);
    let out = out.unwrap();
    // Error in units of the tolerance: |y - exact| / (atol + rtol |exact|).
    let worst = times
        .iter()
        .zip(&out)
        .map(|(t, y)| {
            let e = 2.0 * math::exp(-0.5 * t);
            (y - e).abs() / (1e-9 + 1e-9 * e)
        })
        .fold(0.0, f64::max);
    assert!(worst < 10.0, "{worst}");
    assert!(stats.jac_evals >= 1 && stats.lu_factorizations >= 1 && stats.steps > 10, "{stats:?}");

    let src = "u_i { y = 1 }\nF_i { -y + sin(t) }";
    let m = OdeModel::compile(src, "f.ds", opts(Method::Bdf, 1e-10)).unwrap();
    let (out, _) = solve(&m, &[], &times);
    let exact = |t: f64| 1.5 * math::exp(-t) + 0.5 * (math::sin(t) - math::cos(t));
    let worst = times.iter().zip(out.unwrap()).map(|(&t, y)| (y - exact(t)).abs()).fold(0.0, f64::max);
    assert!(worst < 2e-9, "{worst:e}");
}

#[test]
fn bdf_error_falls_with_the_tolerance() {
    let src = "u_i { x = 1, v = 0 }\nF_i { v, -x }";
    let times = linspace(0.0, 10.0, 41);
    let mut last = f64::INFINITY;
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let m = OdeModel::compile(src, "sho.ds", opts(Method::Bdf, tol)).unwrap();
        let (out, stats) = solve(&m, &[], &times);
        let out = out.unwrap();
        let err = times.iter().enumerate().map(|(i, t)| (out[2 * i] - math::cos(*t)).abs()).fold(0.0, f64::max);
        // The tolerance is a target for the global error.
        assert!(err < 10.0 * tol && err < last / 10.0, "tol {tol:e}: error {err:e} ({stats:?})");
        last = err;
    }
}

#[cfg_attr(target_arch = "wasm32", ignore = "needs a clock, which wasm32-unknown-unknown lacks")]
#[test]
fn dopri5_refuses_a_very_stiff_problem_quickly() {
    let m = OdeModel::compile(VDP, "vdp.ds", opts(Method::Dopri5, 1e-8)).unwrap();
    let start = std::time::Instant::now();
    let (out, stats) = solve(&m, &[1000.0], &[0.0, 3000.0]);
    let err = out.unwrap_err();
    assert!(matches!(&err, SimError::Other(m) if m.contains("stiff") && m.contains("solver = \"bdf\"")), "{err}");
    assert!(stats.steps < 5000, "{stats:?}");
    assert!(start.elapsed().as_secs_f64() < 2.0);
}

#[test]
fn auto_switches_to_bdf_and_agrees_with_bdf() {
    let times = linspace(0.0, 3000.0, 31);
    let auto = OdeModel::compile(VDP, "vdp.ds", opts(Method::Auto, 1e-8)).unwrap();
    let bdf = OdeModel::compile(VDP, "vdp.ds", opts(Method::Bdf, 1e-8)).unwrap();
    let (a, sa) = solve(&auto, &[1000.0], &times);
    let (b, sb) = solve(&bdf, &[1000.0], &times);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(sa.switched_to_bdf_at.is_some_and(|t| t < 10.0), "{sa:?}");
    assert!(sb.switched_to_bdf_at.is_none() && sb.steps < 20_000, "{sb:?}");
    // x is O(1) and v small except during the fast jumps; compare x only, as it is smooth at the samples.
    for i in 0..times.len() {
        assert!((a[2 * i] - b[2 * i]).abs() < 1e-4, "t = {}: {} vs {}", times[i], a[2 * i], b[2 * i]);
    }
}

#[test]
fn auto_stays_explicit_on_non_stiff_problems() {
    let lv = "in_i { a = 1.1, b = 0.4, d = 0.1, g = 0.4 }\nu_i { x = 10, y = 5 }\nF_i { a * x - b * x * y, d * x * y - g * y }";
    for tol in [1e-4, 1e-6, 1e-10] {
        let m = OdeModel::compile(lv, "lv.ds", opts(Method::Auto, tol)).unwrap();
        let (out, stats) = solve(&m, &[1.1, 0.4, 0.1, 0.4], &linspace(0.0, 100.0, 500));
        out.unwrap();
        assert!(stats.switched_to_bdf_at.is_none() && stats.jac_evals == 0, "tol {tol:e}: {stats:?}");
        assert_eq!(stats.rhs_evals, 6 * (stats.steps + stats.rejected_steps) + 2, "{stats:?}");
    }
}

#[cfg_attr(target_arch = "wasm32", ignore = "needs threads, which wasm32-unknown-unknown lacks")]
#[test]
fn bdf_output_modes_repeated_times_and_workspace_reuse() {
    let src = "in_i { k = 0.5 }\nu_i { y = 1 }\nF_i { -k * y }\nout_i { y, t }";
    for dense_output in [true, false] {
        let m = OdeModel::compile(src, "d.ds", SolverOptions { dense_output, ..opts(Method::Bdf, 1e-10) }).unwrap();
        let times = [3.0, 3.0, 3.5, 3.5, 4.0, 9.0];
        let (out, _) = solve(&m, &[0.5], &times);
        let out = out.unwrap();
        for (i, t) in times.iter().enumerate() {
            assert!((out[2 * i] - math::exp(-0.5 * (t - 3.0))).abs() < 1e-8, "{dense_output} {t}: {}", out[2 * i]);
            assert_eq!(out[2 * i + 1], *t);
        }
    }
    // The same workspace gives bit-identical results after other work, also across threads.
    let m = OdeModel::compile(VDP, "vdp.ds", opts(Method::Bdf, 1e-6)).unwrap();
    let times = linspace(0.0, 100.0, 11);
    let (first, _) = solve(&m, &[50.0], &times);
    let first = first.unwrap();
    let mut ws = m.workspace();
    let mut out = vec![0.0; first.len()];
    for mu in [10.0, 50.0, 500.0, 50.0] {
        m.simulate(&mut ws, &[mu], &[], &times, &mut out).unwrap();
    }
    assert!(first.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()));
    let other = std::thread::scope(|s| s.spawn(|| solve(&m, &[50.0], &times).0.unwrap()).join().unwrap());
    assert!(first.iter().zip(&other).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn bdf_failures_are_errors() {
    let m = OdeModel::compile("u_i { y = 1 }\nF_i { y * y }", "b.ds", opts(Method::Bdf, 1e-8)).unwrap();
    let (r, _) = solve(&m, &[], &[0.0, 0.5, 2.0]);
    let err = r.unwrap_err();
    assert!(matches!(err, SimError::Diverged { .. } | SimError::StepTooSmall { .. } | SimError::TooManySteps { .. }));
    let m = OdeModel::compile(VDP, "vdp.ds", SolverOptions { max_steps: 30, ..opts(Method::Bdf, 1e-8) }).unwrap();
    assert!(matches!(solve(&m, &[1000.0], &[0.0, 3000.0]).0, Err(SimError::TooManySteps { max_steps: 30, .. })));
}

/// `wild = 1/(1 - t)` blows up at t = 1 while `calm` decays: every method ends there with an error that
/// names the time, the step and `wild` as the component to blame (first), with its value; with
/// sensitivities, the names of the sensitivity components too.
#[test]
fn a_step_size_failure_names_the_time_and_the_components_to_blame() {
    let src = "in_i { k = 1 }\nu_i { calm = 1, wild = k }\nF_i { -calm, wild * wild }";
    for solver in [Method::Auto, Method::Bdf] {
        let m = OdeModel::compile(src, "blow.ds", opts(solver, 1e-6)).unwrap();
        let (r, _) = solve(&m, &[1.0], &[0.0, 2.0]);
        let Err(SimError::StepTooSmall { t, h, worst }) = r else { panic!("{solver:?}: {r:?}") };
        assert!((t - 1.0).abs() < 1e-6 && h > 0.0 && h < 1e-14, "{solver:?}: t = {t}, h = {h:e}");
        assert_eq!(worst[0].name, "wild", "{solver:?}: {worst:?}");
        assert!(worst[0].value > 1e6 && worst.iter().any(|c| c.name == "calm"), "{solver:?}: {worst:?}");
        let message = SimError::StepTooSmall { t, h, worst }.to_string();
        assert!(message.contains(&format!("at t = {t}")) && message.contains("wild = "), "{message}");

        let mut ws = m.workspace();
        let (mut out, mut sens) = ([0.0; 4], [0.0; 4]);
        let err = m.simulate_sensitivities(&mut ws, &[1.0], &[], &[0.0, 2.0], &mut out, &mut sens).unwrap_err();
        let SimError::StepTooSmall { worst, .. } = err else { panic!("{solver:?}: {err:?}") };
        let names: Vec<&str> = worst.iter().map(|c| c.name.as_str()).collect();
        assert!(names.iter().all(|n| ["calm", "wild", "∂calm/∂k", "∂wild/∂k"].contains(n)), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with('∂')), "{solver:?}: {names:?}");
    }
}

#[test]
fn solver_option_parses() {
    let o: SolverOptions = serde_json::from_str(r#"{"solver": "bdf"}"#).unwrap();
    assert_eq!(o.solver, Method::Bdf);
    assert_eq!(SolverOptions::default().solver, Method::Auto);
    assert!(serde_json::from_str::<SolverOptions>(r#"{"solver": "radau"}"#).is_err());
}
