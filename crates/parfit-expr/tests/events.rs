//! DiffSL's events compiled: the model index `N`, the stop functions and the reset, and their derivatives.

use parfit_expr::{Dialect, Program, compile, compile_with_sensitivities};

/// The bouncing ball of DiffSL's book, with its constants as parameters.
const BALL: &str = "in_i { g = 9.81, e = 0.8, v0 = 10 }
u_i { x = 0, v = v0 }
F_i { v, -g }
stop { x }
reset_i { 0, -e * v }
";

fn started(p: &Program, params: &[f64]) -> Vec<f64> {
    let mut regs = vec![0.0; p.n_regs];
    p.start(&mut regs, params, &mut vec![0.0; p.n_states]);
    regs
}

#[test]
fn the_bouncing_ball_has_a_stop_function_and_a_reset() {
    let c = compile(BALL, Dialect::Ode).unwrap();
    let p = &c.program;
    assert_eq!((p.stop_regs.len(), p.reset_regs.len()), (1, 2));
    assert_eq!(p.model_index_reg, None, "the ball does not read N");
    let mut regs = started(p, &[9.81, 0.8, 10.0]);
    let mut g = [f64::NAN];
    p.stop_values(&mut regs, 1.0, &[0.25, -3.0], &mut g);
    assert_eq!(g, [0.25]);
    let mut y = [f64::NAN; 2];
    p.reset_state(&mut regs, 1.0, &[-1e-12, -3.0], &mut y);
    assert_eq!(y, [0.0, 0.8 * 3.0]);
    // Without sensitivities there is no derivative code.
    assert!(p.dstop_entries.is_empty() && p.dreset_entries.is_empty());
}

#[test]
fn the_model_index_is_an_input_read_at_every_evaluation() {
    // Growth while N = 0, decay while N = 1; the rate depends on a parameter and on N, so it cannot be
    // hoisted into the once-per-simulation code.
    let src = "in_i { r = 0.1 }
u { x = 1 }
rate { (1 - 2 * N) * r }
F { rate * x }
stop_i { t - 48, t - 24 }
reset { 1 }
out_i { x, n = N }";
    for c in [compile(src, Dialect::Ode).unwrap(), compile_with_sensitivities(src).unwrap()] {
        let p = &c.program;
        assert!(p.model_index_reg.is_some());
        let mut regs = started(p, &[0.1]);
        let (mut dy, mut out, mut g) = ([0.0], [0.0; 2], [0.0; 2]);
        p.rhs(&mut regs, 0.0, &[2.0], &mut dy);
        p.outputs(&mut regs, 0.0, &[2.0], &mut out);
        assert_eq!((dy, out), ([0.2], [2.0, 0.0]));
        p.set_model_index(&mut regs, 1);
        p.rhs(&mut regs, 0.0, &[2.0], &mut dy);
        p.outputs(&mut regs, 0.0, &[2.0], &mut out);
        assert_eq!((dy, out), ([-0.2], [2.0, 1.0]));
        p.stop_values(&mut regs, 30.0, &[2.0], &mut g);
        assert_eq!(g, [-18.0, 6.0]);
        // A new simulation starts at N = 0 whatever the register file held.
        p.start(&mut regs, &[0.1], &mut [0.0]);
        p.rhs(&mut regs, 0.0, &[2.0], &mut dy);
        assert_eq!(dy, [0.2]);
    }
}

/// Central differences of `f` in argument `j` of `x`.
fn fd(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], j: usize) -> Vec<f64> {
    let h = 1e-6 * x[j].abs().max(1.0);
    let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
    xp[j] += h;
    xm[j] -= h;
    f(&xp).iter().zip(f(&xm)).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

#[test]
fn stop_and_reset_derivatives_match_finite_differences() {
    // Every kind of dependence: the state, parameters (directly and through parameter-level tensors), t and N.
    let src = "in_i { a = 0.7, b = 1.3, c = 0.4 }
ab { a * b }
u_i { x = 1, y = 2, z = a }
F_i { -x, -y, -z }
stop_i { x * y - ab, sin(t * c) + z * z, exp(b * x) - N * y }
reset_i { x * ab + t, y / (1 + N) + sqrt(c), z * exp(-a * t) }";
    let c = compile_with_sensitivities(src).unwrap();
    let p = &c.program;
    let (n, np) = (3, 3);
    let cols = n + np + 1;
    let (params, t, y) = ([0.7, 1.3, 0.4], 0.9, [0.5, 1.1, 2.0]);
    // Values as functions of (u, p, t) packed in one vector, with N = 1.
    let eval = |x: &[f64], reset: bool| {
        let mut regs = started(p, &x[n..n + np]);
        p.set_model_index(&mut regs, 1);
        let mut v = vec![0.0; n];
        if reset {
            p.reset_state(&mut regs, x[n + np], &x[..n], &mut v);
        } else {
            p.stop_values(&mut regs, x[n + np], &x[..n], &mut v);
        }
        v
    };
    let at: Vec<f64> = y.iter().chain(&params).chain([t].iter()).copied().collect();
    let mut regs = started(p, &params);
    p.start_sensitivities(&mut regs, &mut vec![0.0; n * np]);
    p.set_model_index(&mut regs, 1);
    // Dense from the non-zero entries: row-major, `cols` columns.
    let dense = |entries: &[(u32, u32, u32)], values: &[f64]| {
        let mut m = vec![0.0; n * cols];
        for (&(row, col, _), &v) in entries.iter().zip(values) {
            m[row as usize * cols + col as usize] = v;
        }
        m
    };
    let mut values = vec![f64::NAN; p.dstop_entries.len()];
    p.stop_derivatives(&mut regs, t, &y, &mut values);
    let grad = dense(&p.dstop_entries, &values);
    let mut values = vec![f64::NAN; p.dreset_entries.len()];
    p.reset_derivatives(&mut regs, t, &y, &mut values);
    let jac = dense(&p.dreset_entries, &values);
    for col in 0..cols {
        let dstop = fd(|x| eval(x, false), &at, col);
        let dreset = fd(|x| eval(x, true), &at, col);
        for k in 0..n {
            for (got, want, what) in
                [(grad[k * cols + col], dstop[k], "stop"), (jac[k * cols + col], dreset[k], "reset")]
            {
                assert!((got - want).abs() <= 1e-7 * want.abs().max(1.0), "d{what}_{k}/d[{col}]: {got} vs {want}");
            }
        }
    }
}

#[test]
fn event_tensors_are_checked() {
    let err = |src: &str| compile(src, Dialect::Ode).unwrap_err().to_string();
    let e = err("u_i { x = 1, v = 0 }\nF_i { v, -x }\nstop { x }\nreset { 0 }");
    assert!(e.contains("'reset' has 1 elements but 'u_i' has 2 states") && e.contains("needs 'reset_i'"), "{e}");
    let e = err("u_i { x = 1, v = 0 }\nF_i { v, -x }\nstop { x }\nreset_i { 0, 1, 2 }");
    assert!(e.starts_with("4:1:") && e.contains("a reset gives the whole state"), "{e}");
    let e = err("u_i { x = 1, v = 0 }\nF_i { v, -x }\nstop { x }\nreset { 0, v }");
    assert!(e.contains("a tensor without an index is a scalar"), "{e}");
    let e = err("u { x = 1 }\nF { x }\nreset { 2 }");
    assert!(e.starts_with("3:1:") && e.contains("'reset' needs 'stop'"), "{e}");
    let e = err("u_i { x = N }\nF_i { -x }");
    assert!(e.contains("or the model index N"), "{e}");
    let e = compile("u { x = 1 }\nnext { x }\nstop { x }", Dialect::MonteCarlo).unwrap_err().to_string();
    assert!(e.contains("'stop' belongs to ODE models"), "{e}");
}

#[test]
fn derivative_code_reading_n_is_recomputed_at_every_evaluation() {
    // ∂(k·x·N)/∂x = N·k: a product of N and a parameter only, which must not be hoisted into the
    // once-per-simulation code (where N is 0).
    let src = "in_i { k = 3 }\nu { x = 1 }\nF { k * x * N }\nstop { x - 2 }\nreset { 1 }";
    let c = compile_with_sensitivities(src).unwrap();
    let p = &c.program;
    let mut regs = started(p, &[3.0]);
    p.start_sensitivities(&mut regs, &mut [0.0]);
    p.set_model_index(&mut regs, 1);
    let mut jac = [f64::NAN];
    p.jacobian(&mut regs, 0.0, &[0.5], &mut jac);
    assert_eq!(jac, [3.0]);
    // ∂F/∂k = x·N, and the sensitivity right-hand side J·s + ∂F/∂k.
    let (mut dy, mut ds) = ([0.0], [0.0]);
    p.sensitivity_rhs(&mut regs, &mut Vec::new(), 0.0, &[0.5], &[2.0], &mut dy, &mut ds);
    assert_eq!((dy, ds), ([1.5], [3.0 * 2.0 + 0.5]));
}
