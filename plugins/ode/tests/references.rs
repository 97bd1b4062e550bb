//! parfit against SciPy references (`tests/data/ode_problems/`, made by `make_references.py` there).
//!
//! Error measure, per output and time: `|y - ref| / (atol + rtol · |ref|)` — the error in units of the
//! requested tolerance (a relative error, floored by `atol` where the solution is small). Every problem
//! must stay within 10 such units at rtol = 1e-8 (atol = 1e-8; Robertson 1e-14 for its small y2).

use std::path::PathBuf;
use std::time::Instant;

use parfit_core::{Model, SimError};
use parfit_ode::{Method, OdeModel, SolverOptions, SolverStats, solver_stats};

const RTOL: f64 = 1e-8;
const LIMIT: f64 = 10.0;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ode_problems")
}

struct Reference {
    names: Vec<String>,
    times: Vec<f64>,
    /// Row-major: `values[i * names.len() + j]` is output `j` at `times[i]`.
    values: Vec<f64>,
}

fn reference(name: &str) -> Reference {
    let path = data_dir().join(format!("{name}.csv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    assert_eq!(header[0], "t");
    let (mut times, mut values) = (Vec::new(), Vec::new());
    for line in lines {
        let mut cells = line.split(',').map(|c| c.parse::<f64>().unwrap());
        times.push(cells.next().unwrap());
        values.extend(cells);
    }
    Reference { names: header[1..].to_vec(), times, values }
}

struct Run {
    /// Largest `|y - ref| / (atol + rtol |ref|)`, and where: (output, time).
    worst: f64,
    at: (String, f64),
    stats: SolverStats,
    seconds: f64,
}

fn run(name: &str, solver: Method, atol: f64) -> Result<Run, SimError> {
    let path = data_dir().join(format!("{name}.ds"));
    let text = std::fs::read_to_string(&path).unwrap();
    let opts = SolverOptions { rtol: RTOL, atol, solver, ..SolverOptions::default() };
    let model = OdeModel::compile(&text, &format!("{name}.ds"), opts).unwrap_or_else(|e| panic!("{e}"));
    let r = reference(name);
    assert_eq!(model.spec().outputs, r.names, "{name}: outputs");
    let mut ws = model.workspace();
    let mut out = vec![f64::NAN; r.values.len()];
    let start = Instant::now();
    model.simulate(&mut ws, &model.spec().defaults(), &[], &r.times, &mut out)?;
    let seconds = start.elapsed().as_secs_f64();
    let m = r.names.len();
    let mut worst = (0.0, 0);
    for (k, (y, yr)) in out.iter().zip(&r.values).enumerate() {
        let e = (y - yr).abs() / (atol + RTOL * yr.abs());
        // A NaN error counts as the worst.
        if e.is_nan() || e > worst.0 {
            worst = (e, k);
        }
    }
    let at = (r.names[worst.1 % m].clone(), r.times[worst.1 / m]);
    Ok(Run { worst: worst.0, at, stats: solver_stats(&ws).unwrap(), seconds })
}

fn check(name: &str, solver: Method, atol: f64) -> Run {
    let r = run(name, solver, atol).unwrap_or_else(|e| panic!("{name} ({solver:?}): {e}"));
    println!(
        "{name:<16} {solver:<6?} max error {:>6.2} tol (at {} t = {}), {} steps, {} rejected, {} f, {} J, {} LU, {:.1} ms",
        r.worst,
        r.at.0,
        r.at.1,
        r.stats.steps,
        r.stats.rejected_steps,
        r.stats.rhs_evals,
        r.stats.jac_evals,
        r.stats.lu_factorizations,
        r.seconds * 1e3
    );
    assert!(r.worst <= LIMIT, "{name} ({solver:?}): error {:.2} tolerances at {} t = {}", r.worst, r.at.0, r.at.1);
    r
}

#[test]
fn logistic() {
    let r = check("logistic", Method::Auto, 1e-8);
    assert!(r.stats.switched_to_bdf_at.is_none());
    check("logistic", Method::Bdf, 1e-8);
}

#[test]
fn lotka_volterra() {
    let r = check("lotka_volterra", Method::Auto, 1e-8);
    assert!(r.stats.switched_to_bdf_at.is_none());
}

#[test]
fn sir() {
    let r = check("sir", Method::Auto, 1e-8);
    assert!(r.stats.switched_to_bdf_at.is_none());
    check("sir", Method::Bdf, 1e-8);
}

#[test]
fn fitzhugh_nagumo() {
    let r = check("fitzhugh_nagumo", Method::Auto, 1e-8);
    assert!(r.stats.switched_to_bdf_at.is_none());
}

#[test]
fn van_der_pol_stiff() {
    check("van_der_pol", Method::Bdf, 1e-8);
    let r = check("van_der_pol", Method::Auto, 1e-8);
    assert!(r.stats.switched_to_bdf_at.is_some());
    // Dormand–Prince alone gives up with an error naming stiffness (how fast is for the benchmarks).
    let err = run("van_der_pol", Method::Dopri5, 1e-8).err().expect("dopri5 must refuse");
    assert!(err.to_string().contains("stiff"), "{err}");
}

#[test]
fn robertson_stiff() {
    check("robertson", Method::Bdf, 1e-14);
    let r = check("robertson", Method::Auto, 1e-14);
    assert!(r.stats.switched_to_bdf_at.is_some());
}

#[test]
fn diffusion_chain_stiff() {
    let r = check("diffusion_chain", Method::Bdf, 1e-8);
    // A linear problem: its Jacobian is constant, so Newton needs no re-evaluation of it.
    assert_eq!(r.stats.jac_evals, 1, "{:?}", r.stats);
    check("diffusion_chain", Method::Auto, 1e-8);
}

#[test]
fn robertson_dae_stiff() {
    // The diffsl README's DAE; its reference is robertson's ODE, the DAE's index-reduced form.
    let r = check("robertson_dae", Method::Bdf, 1e-14);
    assert!(r.stats.jac_evals > 0, "{:?}", r.stats);
}

#[test]
fn bouncing_ball_events() {
    // Twelve bounces against the exact piecewise-parabolic solution, with both integrators.
    for solver in [Method::Dopri5, Method::Bdf, Method::Auto] {
        let r = check("bouncing_ball", solver, 1e-8);
        assert_eq!(r.stats.resets, 12, "{solver:?}: {:?}", r.stats);
    }
}

#[test]
fn heat_2d_stiff() {
    // 900 states coupled through a sparse 2-D matrix A_ij and the contraction A_ij * u_j, against the exact
    // (eigendecomposition) solution. A linear problem: one Jacobian evaluation.
    let r = check("heat_2d", Method::Bdf, 1e-8);
    assert_eq!(r.stats.jac_evals, 1, "{:?}", r.stats);
}

/// The JIT (`jit = true`, the default) and the interpreter give the same bits on every reference problem,
/// with both integrators, for the solution and for its parameter sensitivities.
#[test]
fn native_code_and_interpreter_agree_bit_for_bit() {
    let problems = [
        "logistic",
        "lotka_volterra",
        "sir",
        "fitzhugh_nagumo",
        "van_der_pol",
        "robertson",
        "diffusion_chain",
        "robertson_dae",
        "bouncing_ball",
        "heat_2d",
    ];
    let mut sensitivity_solves = 0;
    for name in problems.into_iter().filter(|n| data_dir().join(format!("{n}.ds")).exists()) {
        let text = std::fs::read_to_string(data_dir().join(format!("{name}.ds"))).unwrap();
        let r = reference(name);
        for solver in [Method::Dopri5, Method::Bdf] {
            let bits = |jit: bool| {
                let opts = SolverOptions {
                    rtol: 1e-6,
                    atol: 1e-10,
                    solver,
                    jit,
                    max_steps: 20_000,
                    ..SolverOptions::default()
                };
                let model = OdeModel::compile(&text, name, opts).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(model.is_native(), jit, "{name}");
                let mut ws = model.workspace();
                let mut out = vec![f64::NAN; r.values.len()];
                let res = model.simulate(&mut ws, &model.spec().defaults(), &[], &r.times, &mut out);
                // And the sensitivity equations, whose right-hand side has its own native code.
                let mut sens_out = vec![f64::NAN; r.values.len()];
                let mut sens = vec![f64::NAN; r.values.len() * model.spec().params.len()];
                let sens_res = model.simulate_sensitivities(
                    &mut ws,
                    &model.spec().defaults(),
                    &[],
                    &r.times,
                    &mut sens_out,
                    &mut sens,
                );
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let errors = (res.map_err(|e| e.to_string()), sens_res.map_err(|e| e.to_string()));
                (errors, bits(&out), bits(&sens_out), bits(&sens))
            };
            let native = bits(true);
            assert_eq!(native, bits(false), "{name} ({solver:?})");
            sensitivity_solves += usize::from(native.0.1.is_ok());
        }
    }
    assert!(sensitivity_solves >= 7, "only {sensitivity_solves} sensitivity solves succeeded");
}
