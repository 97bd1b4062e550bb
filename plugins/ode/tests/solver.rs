//! The Dormand–Prince integrator against known solutions and invariants.

use parfit_core::math;
use parfit_core::{Model, SimError};
use parfit_ode::{OdeModel, SolverOptions};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn tight(tol: f64) -> SolverOptions {
    SolverOptions { rtol: tol, atol: tol, ..SolverOptions::default() }
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect()
}

fn solve(m: &OdeModel, params: &[f64], times: &[f64]) -> Result<Vec<f64>, SimError> {
    let mut ws = m.workspace();
    let mut out = vec![f64::NAN; m.spec().output_len(times.len())];
    m.simulate(&mut ws, params, &[], times, &mut out)?;
    Ok(out)
}

const LV: &str = "\
in_i { alpha = 1.1, beta = 0.4, delta = 0.1, gamma = 0.4 }
x0 { 10.0 }
y0 { 5.0 }
u_i {
  prey = x0,
  predator = y0,
}
F_i {
  alpha * prey - beta * prey * predator,
  delta * prey * predator - gamma * predator,
}
out_i { prey, predator, V = delta * prey - gamma * log(prey) + beta * predator - alpha * log(predator) }
";
const LV_PARAMS: [f64; 4] = [1.1, 0.4, 0.1, 0.4];

#[test]
fn exponential_decay_matches_exp() {
    let m = OdeModel::compile("in_i { k = 0.7 }\nu_i { y = 2 }\nF_i { -k * y }", "decay.ds", tight(1e-10)).unwrap();
    // Over ten time units y falls to 0.7%, where atol starts to dominate the error control.
    let times = linspace(0.0, 10.0, 101);
    let out = solve(&m, &[0.5], &times).unwrap();
    let mut worst: f64 = 0.0;
    for (t, y) in times.iter().zip(&out) {
        let exact = 2.0 * math::exp(-0.5 * t);
        worst = worst.max(((y - exact) / exact).abs());
    }
    assert!(worst < 1e-8, "worst relative error {worst:e}");
}

#[test]
fn harmonic_oscillator_matches_sin_cos() {
    let src = "in_i { w = 2 }\nu_i { x = 1, v = 0 }\nF_i { v, -w * w * x }";
    let m = OdeModel::compile(src, "sho.ds", tight(1e-10)).unwrap();
    let times = linspace(0.0, 20.0, 401);
    let out = solve(&m, &[2.0], &times).unwrap();
    let mut worst: f64 = 0.0;
    for (i, t) in times.iter().enumerate() {
        worst = worst.max((out[2 * i] - math::cos(2.0 * t)).abs());
        worst = worst.max((out[2 * i + 1] + 2.0 * math::sin(2.0 * t)).abs());
    }
    assert!(worst < 1e-8, "worst absolute error {worst:e}");
}

#[test]
fn lotka_volterra_conserves_its_first_integral() {
    let times = linspace(0.0, 100.0, 1001);
    for (tol, bound) in [(1e-10, 1e-8), (1e-6, 1e-3)] {
        let m = OdeModel::compile(LV, "lv.ds", tight(tol)).unwrap();
        let out = solve(&m, &LV_PARAMS, &times).unwrap();
        let v0 = out[2];
        let drift = out.chunks(3).map(|r| ((r[2] - v0) / v0).abs()).fold(0.0, f64::max);
        assert!(drift < bound, "tol {tol:e}: relative drift of V {drift:e}");
        // The solution really oscillates: prey goes well below and above its start.
        let prey_min = out.chunks(3).map(|r| r[0]).fold(f64::INFINITY, f64::min);
        assert!(prey_min < 2.0, "{prey_min}");
    }
}

#[test]
fn dense_output_agrees_with_stepping_onto_the_times() {
    let times = linspace(0.0, 30.0, 301);
    let dense = OdeModel::compile(LV, "lv.ds", tight(1e-9)).unwrap();
    let exact = OdeModel::compile(LV, "lv.ds", SolverOptions { dense_output: false, ..tight(1e-9) }).unwrap();
    let reference = OdeModel::compile(LV, "lv.ds", tight(1e-13)).unwrap();
    let a = solve(&dense, &LV_PARAMS, &times).unwrap();
    let b = solve(&exact, &LV_PARAMS, &times).unwrap();
    let r = solve(&reference, &LV_PARAMS, &times).unwrap();
    let rel = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| ((p - q) / q).abs()).fold(0.0, f64::max);
    assert!(rel(&a, &b) < 1e-6, "dense vs stepped: {:e}", rel(&a, &b));
    assert!(rel(&a, &r) < 1e-6, "dense vs reference: {:e}", rel(&a, &r));
    assert!(rel(&b, &r) < 1e-6, "stepped vs reference: {:e}", rel(&b, &r));
    // Both land exactly on the last time, so the first row is the exact initial state.
    assert_eq!(&a[..2], &[10.0, 5.0]);
    assert_eq!(&b[..2], &[10.0, 5.0]);
}

#[test]
fn dense_output_is_fourth_order_between_steps() {
    // Few, long steps (loose tolerance) but many outputs: interpolation error must stay near the step error.
    let src = "u_i { x = 1, v = 0 }\nF_i { v, -x }";
    let m = OdeModel::compile(src, "sho.ds", tight(1e-5)).unwrap();
    let times = linspace(0.0, 10.0, 1001);
    let out = solve(&m, &[], &times).unwrap();
    let worst = times.iter().enumerate().map(|(i, t)| (out[2 * i] - math::cos(*t)).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-4, "{worst:e}");
}

#[test]
fn blow_up_is_an_error_and_the_workspace_still_works() {
    let m =
        OdeModel::compile("in_i { a = 1 }\nu_i { y = 1 }\nF_i { a * pow(y, 2) }", "blowup.ds", tight(1e-8)).unwrap();
    let mut ws = m.workspace();
    let times = [0.0, 0.5, 2.0];
    let mut out = [f64::NAN; 3];
    let err = m.simulate(&mut ws, &[1.0], &[], &times, &mut out).unwrap_err();
    assert!(
        matches!(err, SimError::Diverged { .. } | SimError::StepTooSmall { .. } | SimError::TooManySteps { .. }),
        "{err:?}"
    );
    // y = 1/(1 - t): fine up to the singularity.
    assert_eq!(out[0], 1.0);
    assert!((out[1] - 2.0).abs() < 1e-6, "{}", out[1]);

    // With a = -1 the solution is 1/(1 + t); the same workspace gives the same bits as a fresh one.
    m.simulate(&mut ws, &[-1.0], &[], &times, &mut out).unwrap();
    for (t, y) in times.iter().zip(&out) {
        assert!((y - 1.0 / (1.0 + t)).abs() < 1e-7, "t = {t}: {y}");
    }
    let fresh = solve(&m, &[-1.0], &times).unwrap();
    assert_eq!(fresh.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), out.map(f64::to_bits));
}

#[cfg_attr(target_arch = "wasm32", ignore = "needs threads, which wasm32-unknown-unknown lacks")]
#[test]
fn workspace_reuse_is_bit_identical() {
    let m = OdeModel::compile(LV, "lv.ds", SolverOptions::default()).unwrap();
    let times = linspace(0.0, 50.0, 200);
    let first = solve(&m, &LV_PARAMS, &times).unwrap();
    let mut ws = m.workspace();
    let mut out = vec![0.0; first.len()];
    for params in [[1.0, 0.5, 0.2, 0.3], LV_PARAMS, [1.5, 0.1, 0.05, 0.9], LV_PARAMS] {
        m.simulate(&mut ws, &params, &[], &times, &mut out).unwrap();
    }
    assert!(first.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()));
    // And from another thread.
    let other = std::thread::scope(|s| s.spawn(|| solve(&m, &LV_PARAMS, &times).unwrap()).join().unwrap());
    assert!(first.iter().zip(&other).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn a_workspace_of_another_model_is_resized() {
    let small = OdeModel::compile("u_i { y = 1 }\nF_i { -y }", "a.ds", SolverOptions::default()).unwrap();
    let lv = OdeModel::compile(LV, "lv.ds", SolverOptions::default()).unwrap();
    let times = linspace(0.0, 5.0, 11);
    let mut ws = small.workspace();
    let mut out = vec![0.0; lv.spec().output_len(times.len())];
    lv.simulate(&mut ws, &LV_PARAMS, &[], &times, &mut out).unwrap();
    assert_eq!(out, solve(&lv, &LV_PARAMS, &times).unwrap());
}

#[test]
fn too_many_steps() {
    let m = OdeModel::compile(LV, "lv.ds", SolverOptions { max_steps: 20, ..SolverOptions::default() }).unwrap();
    let err = solve(&m, &LV_PARAMS, &[0.0, 100.0]).unwrap_err();
    assert!(matches!(err, SimError::TooManySteps { max_steps: 20, .. }), "{err:?}");
}

#[test]
fn initial_time_option_and_odd_time_grids() {
    let src = "in_i { k = 0.5 }\nu_i { y = 1 }\nF_i { -k * y }\nout_i { y, t }";
    // t0 before the first requested time.
    let m = OdeModel::compile(src, "d.ds", SolverOptions { t0: Some(0.0), ..tight(1e-10) }).unwrap();
    let out = solve(&m, &[0.5], &[1.0, 2.0]).unwrap();
    assert!((out[0] - math::exp(-0.5f64)).abs() < 1e-9 && out[1] == 1.0);
    assert!((out[2] - math::exp(-1.0f64)).abs() < 1e-9 && out[3] == 2.0);
    assert!(matches!(solve(&m, &[0.5], &[-1.0, 2.0]), Err(SimError::BadInput(_))));

    // Repeated times, with and without dense output; the initial state is given at times[0] = 3.
    for dense_output in [true, false] {
        let m = OdeModel::compile(src, "d.ds", SolverOptions { dense_output, ..tight(1e-10) }).unwrap();
        let times = [3.0, 3.0, 3.5, 3.5, 4.0];
        let out = solve(&m, &[0.5], &times).unwrap();
        for (i, t) in times.iter().enumerate() {
            assert!((out[2 * i] - math::exp(-0.5 * (t - 3.0))).abs() < 1e-9, "{dense_output} {t}");
            assert_eq!(out[2 * i + 1], *t);
        }
        assert_eq!(solve(&m, &[0.5], &[]).unwrap(), Vec::<f64>::new());
        assert_eq!(solve(&m, &[0.5], &[7.0]).unwrap(), [1.0, 7.0]);
    }
}

#[test]
fn bad_arguments_are_errors() {
    let m = OdeModel::compile(LV, "lv.ds", SolverOptions::default()).unwrap();
    let mut ws = m.workspace();
    let mut out = vec![0.0; 6];
    let bad_input = |r: Result<(), SimError>| matches!(r, Err(SimError::BadInput(_)));
    assert!(bad_input(m.simulate(&mut ws, &[1.0], &[], &[0.0, 1.0], &mut out)));
    assert!(bad_input(m.simulate(&mut ws, &LV_PARAMS, &[1.0], &[0.0, 1.0], &mut out)));
    assert!(bad_input(m.simulate(&mut ws, &LV_PARAMS, &[], &[1.0, 0.0], &mut out)));
    assert!(bad_input(m.simulate(&mut ws, &LV_PARAMS, &[], &[0.0, f64::NAN], &mut out)));
    assert!(bad_input(m.simulate(&mut ws, &LV_PARAMS, &[], &[0.0], &mut out)));
    let r = m.simulate(&mut ws, &[f64::NAN, 0.4, 0.1, 0.4], &[], &[0.0, 1.0], &mut out);
    assert!(matches!(r, Err(SimError::BadParameter { ref name, .. }) if name == "alpha"), "{r:?}");
    let mut foreign: parfit_core::Workspace = Box::new(0u8);
    assert!(matches!(m.simulate(&mut foreign, &LV_PARAMS, &[], &[0.0, 1.0], &mut out), Err(SimError::Other(_))));
    // A state that starts non-finite diverges at once.
    let m =
        OdeModel::compile("in_i { a = 0 }\nu_i { y = 1 / a }\nF_i { y }", "inf.ds", SolverOptions::default()).unwrap();
    assert!(matches!(solve(&m, &[0.0], &[0.0, 1.0]), Err(SimError::Diverged { t: 0.0 })));
}

#[test]
fn max_step_and_first_step_are_respected() {
    let src = "u_i { x = 1, v = 0 }\nF_i { v, -x }";
    let free = OdeModel::compile(src, "a.ds", tight(1e-8)).unwrap();
    let capped = OdeModel::compile(src, "a.ds", SolverOptions { max_step: Some(1e-3), ..tight(1e-8) }).unwrap();
    let first = OdeModel::compile(src, "a.ds", SolverOptions { h0: Some(1e-4), ..tight(1e-8) }).unwrap();
    let times = [0.0, 1.0];
    let a = solve(&free, &[], &times).unwrap();
    let b = solve(&capped, &[], &times).unwrap();
    let c = solve(&first, &[], &times).unwrap();
    for v in [&a, &b, &c] {
        assert!((v[2] - math::cos(1f64)).abs() < 1e-7);
    }
    // A capped step count shows the cap was applied: 1000 steps of 1e-3 exceed a 500-step budget.
    let budget =
        OdeModel::compile(src, "a.ds", SolverOptions { max_step: Some(1e-3), max_steps: 500, ..tight(1e-8) }).unwrap();
    assert!(matches!(solve(&budget, &[], &times), Err(SimError::TooManySteps { .. })));
}
