//! Events and hybrid models: DiffSL's `stop`, `reset` and the model index `N`, through both integrators.

use parfit_core::Model;
use parfit_core::math;
use parfit_ode::{Method, OdeModel, SolverOptions, solver_stats};

const BALL: &str = "in_i { g = 9.81, e = 0.8, v0 = 10 }
u_i { x = 0, v = v0 }
F_i { v, -g }
stop { x }
reset_i { 0, -e * v }
";

/// The model at `rtol = atol = tol`, its initial state at t = 0 (as pydiffsol's).
fn model(src: &str, solver: Method, tol: f64) -> OdeModel {
    let opts = SolverOptions { rtol: tol, atol: tol, solver, t0: Some(0.0), ..Default::default() };
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

/// The exact sensitivities of `src` at `params` against central differences of plain solves (both at
/// 1e-12), for every parameter, output and time: relative error at most 1e-5 of the larger of the value and
/// a thousandth of the series' largest (a sensitivity crossing zero is held to its series' scale).
fn check_sensitivities(src: &str, solver: Method, params: &[f64], times: &[f64]) {
    let m = model(src, solver, 1e-12);
    let (np, no, nt) = (params.len(), m.spec().outputs.len(), times.len());
    let mut ws = m.workspace();
    let (mut out, mut sens) = (vec![f64::NAN; nt * no], vec![f64::NAN; nt * no * np]);
    m.simulate_sensitivities(&mut ws, params, &[], times, &mut out, &mut sens).unwrap();
    assert!(solver_stats(&ws).unwrap().resets > 0, "the solve crosses events");
    for p in 0..np {
        let h = 1e-5 * params[p].abs().max(1e-3);
        let shifted = |d: f64| {
            let mut q = params.to_vec();
            q[p] += d;
            run(&m, &q, times)
        };
        let (up, down) = (shifted(h), shifted(-h));
        let fd: Vec<f64> = up.iter().zip(&down).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        for o in 0..no {
            let scale = (0..nt).map(|i| fd[i * no + o].abs()).fold(0.0, f64::max);
            for (i, t) in times.iter().enumerate() {
                let (got, want) = (sens[(i * no + o) * np + p], fd[i * no + o]);
                let tol = 1e-5 * want.abs().max(1e-3 * scale).max(1e-9);
                assert!((got - want).abs() <= tol, "{solver:?}: d out_{o}(t = {t}) / d p_{p}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn sensitivities_cross_the_bounces_of_a_ball_with_drag() {
    // Linear drag makes the flight times depend on every parameter non-trivially; the times avoid the
    // bounces (at about 1.86, 3.33, 4.54), where the output is not differentiable.
    let src = "in_i { g = 9.81, e = 0.8, v0 = 10, c = 0.1 }
u_i { x = 0, v = v0 }
F_i { v, -g - c * v }
stop { x }
reset_i { 0, -e * v }
";
    let times = [0.5, 1.2, 2.3, 3.0, 3.9, 4.4, 5.0];
    for solver in [Method::Dopri5, Method::Bdf] {
        check_sensitivities(src, solver, &[9.81, 0.8, 10.0, 0.1], &times);
    }
}

#[test]
fn sensitivities_cross_doses_whose_times_are_parameters() {
    // A two-compartment model dosed at t = tau and 2 tau: the event times move with tau (∂stop/∂p), the
    // reset adds the dose (∂reset/∂p) and the states jump (∂reset/∂u, F before and after).
    let src = "in_i { dose = 1000, tau = 6, CL = 100, Q = 50 }
Vc { 1000 } Vp { 1000 }
u_i { qc = dose, qp = 0 }
F_i { -qc / Vc * CL - Q * (qc / Vc - qp / Vp), Q * (qc / Vc - qp / Vp) }
stop_i { t - tau, t - 2 * tau }
reset_i { qc + dose, qp }
";
    let times = [1.0, 5.0, 7.0, 11.5, 12.5, 20.0];
    for solver in [Method::Dopri5, Method::Bdf] {
        check_sensitivities(src, solver, &[1000.0, 6.0, 100.0, 50.0], &times);
    }
}

/// The event models of `tests/events/` and their names in `references.json`.
const MODELS: [(&str, &str); 10] = [
    ("ball_book", include_str!("events/ball_book.ds")),
    ("ball_declarative", include_str!("events/ball_declarative.ds")),
    ("drug_delivery_declarative", include_str!("events/drug_delivery_declarative.ds")),
    ("drug_delivery_hybrid", include_str!("events/drug_delivery_hybrid.ds")),
    ("sir_policy_switching", include_str!("events/sir_policy_switching.ds")),
    ("logistic_stop", include_str!("events/logistic_stop.ds")),
    ("hybrid_logistic", include_str!("events/hybrid_logistic.ds")),
    ("logistic_time_reset", include_str!("events/logistic_time_reset.ds")),
    ("dosing_book", include_str!("events/dosing_book.ds")),
    ("growth_decay_book", include_str!("events/growth_decay_book.ds")),
];

/// The event models of `tests/events/` (DiffSL's book, diffsol's examples and diffsol-c's tests; sources in
/// each file) against pydiffsol at 1e-12 (`make_references.py`), at rtol = atol = 1e-8 through every method,
/// with and without dense output:
/// the largest error in units of the tolerance, `|y - ref| / (atol + rtol·|ref|)`, at most 10, and NaN
/// exactly where pydiffsol's solution has ended (a stop without reset).
#[test]
fn event_models_agree_with_pydiffsol() {
    let refs: serde_json::Value = serde_json::from_str(include_str!("events/references.json")).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
    };
    let tol = 1e-8;
    for (name, src) in MODELS {
        let r = &refs[name];
        let (params, times) = (floats(&r["params"]), floats(&r["times"]));
        let want: Vec<f64> = r["outputs"].as_array().unwrap().iter().flat_map(floats).collect();
        let methods = [Method::Auto, Method::Dopri5, Method::Bdf];
        // Also with steps landing on the requested times (`dense_output = false`).
        for (solver, dense_output) in methods.into_iter().flat_map(|m| [(m, true), (m, false)]) {
            let opts = SolverOptions { dense_output, ..*model(src, solver, tol).options() };
            let m = OdeModel::compile(src, name, opts).unwrap();
            let got = run(&m, &params, &times);
            let mut worst = 0.0f64;
            for (k, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.is_nan(), w.is_nan(), "{name} {solver:?}: output {k}: {g} vs {w}");
                if !w.is_nan() {
                    worst = worst.max((g - w).abs() / (tol + tol * w.abs()));
                }
            }
            assert!(worst <= 10.0, "{name} {solver:?} (dense {dense_output}): {worst} tolerances from pydiffsol");
        }
    }
}

#[test]
fn a_stop_without_reset_ends_the_solve_and_says_where() {
    // Logistic growth stopped when y reaches 0.6: at t = ln(13.5) / r (diffsol-c's logistic_stop test).
    let src = include_str!("events/logistic_stop.ds");
    let times = [0.5, 1.0, 1.5, 2.0];
    let t_stop = math::ln(13.5f64) / 2.0;
    for solver in [Method::Dopri5, Method::Bdf] {
        let m = model(src, solver, 1e-10);
        let mut ws = m.workspace();
        let (mut out, mut sens) = ([0.0; 4], [0.0; 12]);
        m.simulate(&mut ws, &[2.0, 1.0, 0.1], &[], &times, &mut out).unwrap();
        let stats = solver_stats(&ws).unwrap();
        assert!((stats.stopped_at.unwrap() - t_stop).abs() < 1e-9, "{stats:?}");
        assert_eq!((stats.stop_index, stats.resets), (Some(0), 0));
        assert!(out[..2].iter().all(|v| v.is_finite()) && out[2..].iter().all(|v| v.is_nan()), "{out:?}");
        m.simulate_sensitivities(&mut ws, &[2.0, 1.0, 0.1], &[], &times, &mut out, &mut sens).unwrap();
        assert!(sens[..6].iter().all(|v| v.is_finite()) && sens[6..].iter().all(|v| v.is_nan()), "{sens:?}");
    }
}

#[test]
fn at_the_time_of_a_reset_the_output_is_the_state_before_it() {
    // pydiffsol reports the state before the reset at the event's own time: asked at t = 24 exactly,
    // the dosing model (x = 0 until then) gives 0, and just after it the dose.
    let src = include_str!("events/dosing_book.ds");
    for solver in [Method::Dopri5, Method::Bdf] {
        let m = model(src, solver, 1e-6);
        let out = run(&m, &[], &[24.0, 24.0, 24.0 + 1e-9]);
        assert_eq!(out[..2], [0.0, 0.0], "{solver:?}");
        assert!((out[2] - 10.0).abs() < 1e-8, "{solver:?}: {out:?}");
    }
}

/// A fit whose data reach past a stop that ends the solve: the cost there is undefined, and the error says
/// which output at which time, and why, instead of a divergence at t = NaN.
#[test]
fn a_cost_observed_after_a_stop_says_so() {
    use parfit_core::{Case, Cost, Objective};
    let m: std::sync::Arc<dyn Model> =
        std::sync::Arc::new(model(include_str!("events/logistic_stop.ds"), Method::Auto, 1e-8));
    let case = |times: Vec<f64>| Case {
        id: "c".into(),
        inputs: vec![],
        observations: times.iter().map(|_| 1.0).collect(),
        times,
    };
    let theta = [2.0, 1.0, 0.1];
    let before = Objective::new(m.clone(), case(vec![0.5, 1.0]), &["out_0".to_string()], Cost::Sse).unwrap();
    assert!(before.try_value(&mut before.scratch(), &theta).unwrap().is_finite());
    let after = Objective::new(m, case(vec![0.5, 1.0, 1.5]), &["out_0".to_string()], Cost::Sse).unwrap();
    let e = after.try_value(&mut after.scratch(), &theta).unwrap_err().to_string();
    assert!(e.contains("no value (NaN) for output 'out_0' at t = 1.5") && e.contains("'stop' without 'reset'"), "{e}");
}

/// Native code (which reads `N` from its register) and the interpreter give the same bits, with and without
/// sensitivities, through both integrators.
#[test]
fn event_models_give_the_same_bits_with_and_without_the_jit() {
    let refs: serde_json::Value = serde_json::from_str(include_str!("events/references.json")).unwrap();
    let bits = |v: &[f64]| -> Vec<u64> { v.iter().map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() }).collect() };
    for (name, src) in MODELS {
        let times: Vec<f64> = refs[name]["times"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
        for solver in [Method::Dopri5, Method::Bdf] {
            let results: Vec<(Vec<u64>, Vec<u64>)> = [true, false]
                .into_iter()
                .map(|jit| {
                    let opts = SolverOptions { solver, jit, t0: Some(0.0), ..Default::default() };
                    let m = OdeModel::compile(src, name, opts).unwrap();
                    assert_eq!(m.is_native(), jit && cfg!(not(target_arch = "wasm32")));
                    let p = m.spec().defaults();
                    let no = m.spec().outputs.len();
                    let mut ws = m.workspace();
                    let (mut out, mut sens) = (vec![0.0; no * times.len()], vec![0.0; no * times.len() * p.len()]);
                    m.simulate_sensitivities(&mut ws, &p, &[], &times, &mut out, &mut sens).unwrap();
                    let plain = run(&m, &p, &times);
                    ([bits(&out), bits(&plain)].concat(), bits(&sens))
                })
                .collect();
            assert!(results[0] == results[1], "{name} {solver:?}: native and interpreted results differ");
        }
    }
}

/// The README's switching example is diffsol's hybrid drug-delivery model with two parameters: same numbers.
#[test]
fn the_readme_switching_example_is_the_hybrid_drug_model() {
    let readme = "in_i { CL = 100, Q = 50 }
Vc { 1000 } Vp { 1000 }
doses_i { 1000, 500, 2000 }
u_i { qc = doses_i[0], qp = 0 }
F_i { -qc / Vc * CL - Q * (qc / Vc - qp / Vp), Q * (qc / Vc - qp / Vp) }
stop_i { 1, t - 6, t - 12 }
reset_i { qc + doses_i[N], qp }
";
    let times: Vec<f64> = (1..48).map(|k| 0.5 * k as f64).collect();
    let a = run(&model(readme, Method::Auto, 1e-8), &[100.0, 50.0], &times);
    let b = run(&model(include_str!("events/drug_delivery_hybrid.ds"), Method::Auto, 1e-8), &[], &times);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{x} vs {y}");
    }
    // Row 24 is t = 12.5, just after the second dose of 2000.
    assert!(b[2 * 24] > 2000.0, "{}", b[2 * 24]);
}
