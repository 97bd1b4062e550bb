//! The DiffSL subset: what parses, what is rejected and how, and what expressions evaluate to.

use parfit_core::math;
use parfit_core::{Model, OutputKind};
use parfit_ode::{KINDS, OdeModel, ParseError, SolverOptions, model_from_config};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

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
out_i { prey, predator }
";

fn compile(src: &str) -> Result<OdeModel, ParseError> {
    OdeModel::compile(src, "model.ds", SolverOptions::default())
}

fn compile_err(src: &str) -> ParseError {
    match compile(src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e,
    }
}

/// Evaluate `out_i` at t = 0 with the given parameters.
fn outputs(m: &OdeModel, params: &[f64]) -> Vec<f64> {
    let mut ws = m.workspace();
    let mut out = vec![0.0; m.spec().outputs.len()];
    m.simulate(&mut ws, params, &[], &[0.0], &mut out).unwrap();
    out
}

#[test]
fn lotka_volterra_spec() {
    let m = compile(LV).unwrap();
    let spec = m.spec();
    assert_eq!(spec.name, "model");
    let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "delta", "gamma"]);
    assert_eq!(spec.defaults(), [1.1, 0.4, 0.1, 0.4]);
    assert!(spec.params.iter().all(|p| p.lower == f64::NEG_INFINITY && p.upper == f64::INFINITY && !p.log_scale));
    assert!(spec.inputs.is_empty());
    assert_eq!(spec.outputs, ["prey", "predator"]);
    assert_eq!(spec.output_kind, OutputKind::TimeSeries);
    assert_eq!(m.n_states(), 2);
    assert_eq!(outputs(&m, &spec.defaults()), [10.0, 5.0]);
}

#[test]
fn parse_errors_report_line_and_column() {
    let cases: &[(&str, &str)] = &[
        ("a { 1 }\nb {\n  2 x }", "model.ds:3:5: expected ',' or '}' after element, found 'x'"),
        ("u_i { y = 1 }\nF_i { (y + 1 }", "model.ds:2:14: expected ')', found '}'"),
        ("u_i { y = 1 }\nF_i { y * }", "model.ds:2:11: expected an expression, found '}'"),
        ("u_i { y = 1 }\nF_i -y }", "model.ds:2:5: expected '{' after tensor name 'F_i', found '-'"),
        ("u_i { y = 1 }\nF_i { -y", "model.ds:2:9: expected ',' or '}' after element, found end of input"),
        ("u_i { y = 1 }\nF_i { pow(y 2) }", "model.ds:2:13: expected ',' or ')' in call to pow, found '2'"),
        ("u_i { y = 1 }\n  F_i { y @ 2 }", "model.ds:2:11: unexpected character '@'"),
        ("u_i { y = 1e }", "model.ds:1:11: malformed number '1e': no digits in the exponent"),
        ("/* open\ncomment", "model.ds:1:1: unterminated block comment '/*'"),
        ("in = [a, 3]", "model.ds:1:10: expected an input name or ']', found '3'"),
    ];
    for (src, want) in cases {
        assert_eq!(compile_err(src).to_string(), *want, "source:\n{src}");
    }
    let e = compile_err("u_i { y = 1 }\nF_i { y y }");
    assert_eq!((e.source_name.as_str(), e.line, e.column), ("model.ds", 2, 9));
    assert_eq!(e.message, "expected ',' or '}' after element, found 'y'");
}

#[test]
fn unsupported_constructs_are_rejected_by_name() {
    let base = "u_i { y = 1 }\nF_i { -y }\n";
    let cases: &[(&str, &str)] = &[
        ("M_i { dydt }", "3:1: 'M_i' gives M·du/dt in terms of the derivatives 'dudt_i' names, but there is no"),
        ("reset_i { 1 }", "3:1: 'reset_i' needs 'stop'"),
        ("stop { y - 0.5 }\nreset_i { 1, 2 }", "4:1: 'reset_i' has 2 elements but 'u_i' has 1 states"),
        ("k { 1, 2 }", "3:1: tensor 'k' has 2 elements: a tensor without an index is a scalar"),
        ("u_i { (1:2): z = 1 }", "3:1: 'u_i' is defined twice"),
        ("out_i { (1): y }", "3:9: the range (1:2) leaves indices 0..1 of 'out_i' undefined"),
        ("v_i { (0:2): 1, (1:3): 2 }", "3:17: the range (1:3) overlaps"),
        ("v_i { (0:2, 0:2): 1 }", "3:7: the range gives 2 indices but 'v_i' has 1 (one per index letter)"),
        ("A_ij { (0..2, 0..3): 1 }", "3:8: the diagonal range (0:2, 0:3) is not square"),
        ("A_ij { (0:2, 0:2): 1, (1, 1): 2 }", "3:23: the entry (1, 1) of 'A_ij' is given twice"),
        (
            "A_ij { (0:2, 0:2): w_i }\nw_i { 1, 2, 3 }",
            "3:20: index 'i' has 3 elements but the range (0:2, 0:2) gives it 2",
        ),
        ("A_ii { 1 }", "3:1: tensor 'A_ii' repeats the index letter 'i' (position 2)"),
        ("k { A_ii }\nA_ij { (0:2, 0:2): 1 }", "3:5: not supported: repeated index letters (line 3)"),
        ("k { A_ij }\nA_ij { (0:2, 0:2): 1 }", "3:5: the expression sums over 2 indices at once ('i', 'j')"),
        ("k { A_i }\nA_ij { (0:2, 0:2): 1 }", "3:5: 'A_i' has 1 index letter(s) but 'A' has 2 axes"),
        ("k { A_ij[0] }\nA_ij { (0:2, 0:2): 1 }", "3:5: only vectors can be indexed, and 'A_ij' is 2-D"),
        (
            "v_i { A_ij + w_j }\nA_ij { (0:2, 0:3): 1 }\nw_i { 1, 2 }",
            "3:7: cannot combine index 'j' of 3 and 2 elements",
        ),
        ("v_i { w_i / A_ij }\nA_ij { (0, 0): 1, (1, 1): 2 }\nw_i { 1, 2 }", "3:7: division by a structural zero"),
        ("out_ij { 1 }", "3:1: 'out_ij' must be a scalar or a vector"),
        (
            "v_i { w_i + z_j }\nw_i { (0:1000000): 1 }\nz_i { (0:1000000): 2 }",
            "3:7: a tensor expression of 2000000000000 entries would need about",
        ),
        (
            "v_i { exp(A_ij) }\nA_ij { (0, 0): 1, (999999, 999999): 1 }",
            "3:7: a dense tensor of 1000000000000 entries would need about",
        ),
        ("v_i { (0:2): y, (2:5): w_i }\nw_i { 1, 2 }", "3:24: cannot fit a vector of 2 elements into the range (2:5)"),
        ("k { (0:1): 1 }", "3:5: scalar 'k' cannot have an element range"),
        ("v_i { A_ij }", "3:7: unknown name 'A'"),
        ("v_i { w_i + z_i }\nw_i { 1, 2 }\nz_i { 1, 2, 3 }", "3:7: cannot combine vectors of 2 and 3 elements"),
        ("k { w }\nw_i { 1, 2 }", "3:5: 'w' is a vector of 2 elements: refer to it as 'w_i'"),
        ("k { w_i[2] }\nw_i { 1, 2 }", "3:5: index 2 is out of range: 'w_i' has 2 elements"),
        ("N { 2 }", "3:1: 'N' is reserved (DiffSL's model index)"),
        ("k { y_i[N:2] }", "3:11: not supported: index ranges whose length depends on 'N' (line 3)"),
        (
            "k { interp1d(x_i, x_i, t) }\nx_i { 0, 1, 1 }",
            "3:5: interp1d's x_i must be strictly increasing, but x[2] = 1 follows 1",
        ),
        ("k { interp1d(x_i, x_i, t) }\nx_i { 0, y }", "3:5: interp1d's points x_i and y_i must be constants"),
        (
            "k { interp1d(x_i, z_i, t) }\nx_i { 0, 1 }\nz_i { 0, 1, 2 }",
            "3:5: interp1d needs x_i and y_i of the same length",
        ),
        ("k { interp1d(x, x_i, t) }\nx_i { 0, 1 }", "3:14: 'x' is a vector of 2 elements: refer to it as 'x_i'"),
        ("A_ij { read('a.tns') }", "3:8: read(…) needs the shape it fills as a range"),
        ("A_ij { (0:2, 0:2): read('none.tns') }", "3:20: read('none.tns'): cannot read none.tns"),
        ("A_ij { (0:2, 0:2): read('a.txt') }", "3:20: read('a.txt'): unsupported file extension"),
        ("k { 2E1 }", "3:6: DiffSL writes exponents with a lowercase 'e'"),
        ("k { 2 };", "3:8: ';' is not DiffSL: elements are separated by ','"),
        ("out_i { pow(y, 2) + y^3 }", "3:22: '^' is not DiffSL"),
        ("out_i { erf(y) }", "3:9: unknown function 'erf'"),
        ("out_i { y + z }", "3:13: unknown name 'z'"),
        ("a { b }\nb { a + 1 }\nout_i { a }", "4:5: circular definition: a -> b -> a"),
        ("unused { nothing }", "3:10: unknown name 'nothing'"),
        ("F_i { 1 }", "3:1: 'F_i' is defined twice (first at 2:1)"),
        ("y { 2 }", "3:1: 'y' is defined twice (first at 1:7)"),
        ("t { 2 }", "3:1: 't' is reserved for time"),
        ("x_1 { 2 }", "3:1: invalid tensor name 'x_1'"),
        ("out_i { y, y }", "3:12: duplicate output name 'y'"),
        ("in = [k]", "3:1: input list is no longer supported: define the inputs as 'in_i { a = …, b = … }'"),
        ("in_i { k }", "3:8: each element of 'in_i' needs a name"),
        ("in_i { k = 1, j = k }", "3:19: the defaults of inputs must be constant expressions"),
        ("in_i { k = 1, j = 2 * t }", "3:19: the default of input 'j' must be a constant expression"),
    ];
    for (extra, want) in cases {
        let src = format!("{base}{extra}");
        let msg = compile_err(&src).to_string();
        assert!(msg.starts_with(&format!("model.ds:{want}")), "source:\n{src}\ngot:  {msg}\nwant: model.ds:{want}…");
    }
    let more: &[(&str, &str)] = &[
        ("F_i { 1 }", "model.ds:1:10: the model has no state tensor 'u_i'"),
        ("u_i { y = 1 }", "model.ds:1:14: the model has no right-hand side 'F_i'"),
        ("u_i { y = 1, z = 2 }\nF_i { 1 }", "model.ds:2:1: 'F_i' has 1 elements but 'u_i' has 2 states"),
        ("u_i { y = 1 }\nF { 1 }", "model.ds:2:1: 'F' and 'u_i' must have the same shape, but 'F' is a scalar"),
        (
            "u_i { y = t }\nF_i { 1 }",
            "model.ds:1:11: the initial value of state 'y' depends on t or the state (or the model index N)",
        ),
        ("u_i { y = 1, z = y }\nF_i { 1, 1 }", "model.ds:1:18: the initial values in 'u_i' cannot depend on the state"),
        ("k { 1 }\nin_i { k = 1 }\nu_i { y = 1 }\nF_i { 1 }", "model.ds:2:8: 'k' is defined twice (first at 1:1)"),
        ("in = [k]\nk { 1 }\nu_i { y = 1 }\nF_i { k }", "model.ds:1:1: input list is no longer supported"),
    ];
    for (src, want) in more {
        let msg = compile_err(src).to_string();
        assert!(msg.starts_with(want), "source:\n{src}\ngot:  {msg}\nwant: {want}…");
    }
}

#[test]
fn every_function_evaluates_correctly() {
    // Each function once with a parameter argument (run-time code) and once with literals (folded).
    // black_box: the expected values come from this target's libm at run time, as the interpreter's do, not from
    // the compiler's constant folding with the build machine's libm (on wasm32 the two differ in last bits).
    let x = std::hint::black_box(0.7_f64);
    let fns: &[(&str, f64)] = &[
        ("exp(X)", math::exp(x)),
        ("log(X)", math::ln(x)),
        ("sqrt(X)", x.sqrt()),
        ("sin(X)", math::sin(x)),
        ("cos(X)", math::cos(x)),
        ("tan(X)", math::tan(x)),
        ("sinh(X)", math::sinh(x)),
        ("cosh(X)", math::cosh(x)),
        ("tanh(X)", math::tanh(x)),
        ("abs(-X)", x),
        ("abs(X - 1)", 0.30000000000000004),
        ("pow(X, 2.5)", math::powf(x, 2.5)),
        ("pow(X, 2)", x * x),
        ("pow(2, X)", math::powf(2f64, x)),
        ("min(X, 0.3)", 0.3),
        ("max(X, 0.3)", x),
        ("min(0.3, X)", 0.3),
        ("max(0.3, X)", x),
        ("log10(X)", math::log10(x)),
        ("sigmoid(X)", 1.0 / (1.0 + math::exp(-x))),
        ("heaviside(X - 0.7)", 1.0),
        ("heaviside(X - 0.8)", 0.0),
        ("arcsinh(X)", math::asinh(x)),
        ("arccosh(X + 1)", math::acosh(x + 1.0)),
        ("arctan(X)", math::atan(x)),
        ("copysign(X, -1)", -x),
        ("piecewise(X - 1, 1, X - 0.5, 2, 3)", 2.0),
        ("piecewise(X - 0.5, 1, 3)", 1.0),
        ("piecewise(X - 0.75, 1, 3)", 3.0),
    ];
    let exprs: Vec<String> = fns.iter().map(|(e, _)| e.to_string()).collect();
    let with_param =
        format!("in_i {{ p = {x} }}\nu_i {{ y = 0 }}\nF_i {{ 0 }}\nout_i {{ {} }}", exprs.join(", ").replace('X', "p"));
    let folded = format!("u_i {{ y = 0 }}\nF_i {{ 0 }}\nout_i {{ {} }}", exprs.join(", ").replace('X', &x.to_string()));
    for (src, params) in [(with_param, vec![x]), (folded, vec![])] {
        let m = compile(&src).unwrap();
        let got = outputs(&m, &params);
        for ((expr, want), got) in fns.iter().zip(&got) {
            assert_eq!(got.to_bits(), want.to_bits(), "{expr}: got {got}, want {want}");
        }
    }
}

#[test]
fn precedence_and_unary_minus() {
    let src = "in_i { a = 2, b = 3, c = 5 }
u_i { y = 0 }
F_i { 0 }
out_i {
  a + b * c,       // 17
  (a + b) * c,     // 25
  a - b - c,       // -6: left-associative
  a / b / c,       // 2/15
  -pow(a, 2),      // -4: the sign applies to the call
  pow(-a, 2),      // 4
  -a * b,          // -6
  a * -b,          // -6
  a - -b,          // 5
  -(a - c) / b,    // 1
  +a,              // 2
  2 * 1e-1 + 3.5e1, /* block
  comment */
  pow(a, b) * c - c,  // 35
}";
    let m = compile(src).unwrap();
    let got = outputs(&m, &[2.0, 3.0, 5.0]);
    let want = [17.0, 25.0, -6.0, 2.0 / 3.0 / 5.0, -4.0, 4.0, -6.0, -6.0, 5.0, 1.0, 2.0, 35.2, 35.0];
    assert_eq!(got, want);
    // `+a` is the bare name `a`, so that output is named after it.
    let names: Vec<String> = (0..13).map(|k| if k == 10 { "a".into() } else { format!("out_{k}") }).collect();
    assert_eq!(m.spec().outputs, names);
}

#[test]
fn scalar_inputs_and_named_outputs() {
    // Definitions in any order.
    let src = "in_i { k = 0.5, y0 = 4 }
half { k / 2 }
u_i { y = y0 }
F_i { -half * y }
out_i { y, total = y + k, t, half }";
    let m = compile(src).unwrap();
    assert_eq!(m.spec().defaults(), [0.5, 4.0]);
    assert_eq!(m.spec().outputs, ["y", "total", "t", "half"]);
    assert_eq!(outputs(&m, &[0.5, 4.0]), [4.0, 4.5, 0.0, 0.25]);
    assert_eq!(outputs(&m, &[1.0, 2.0]), [2.0, 3.0, 0.0, 0.5]);
}

#[test]
fn default_outputs_are_the_states() {
    let m = compile("u_i { a = 1, b = 2 }\nF_i { 0, 0 }").unwrap();
    assert_eq!(m.spec().outputs, ["a", "b"]);
    assert!(m.spec().params.is_empty());
}

#[test]
fn config_and_kinds() {
    assert_eq!(KINDS.len(), 1);
    assert_eq!((KINDS[0].kind, KINDS[0].extension), ("diffsl", "ds"));

    let config = serde_json::json!({ "source": LV, "source_name": "lv.ds", "rtol": 1e-8, "max_step": 0.5 });
    let m = model_from_config("diffsl", &config.to_string()).unwrap();
    assert_eq!(m.spec().name, "lv");
    assert_eq!(m.options().rtol, 1e-8);
    assert_eq!(m.options().atol, 1e-6);
    assert_eq!(m.options().max_step, Some(0.5));

    let err = model_from_config("sbml", &config.to_string()).unwrap_err();
    assert!(err.contains("unknown model kind 'sbml'"), "{err}");
    let err =
        model_from_config("diffsl", r#"{"source": "u_i { y = 1 }\nF_i { y y }", "source_name": "m.ds"}"#).unwrap_err();
    assert_eq!(err, "m.ds:2:9: expected ',' or '}' after element, found 'y'");
    let err = model_from_config("diffsl", r#"{"source": "", "rtl": 1}"#).unwrap_err();
    assert!(err.contains("unknown field `rtl`"), "{err}");
    let err = model_from_config("diffsl", r#"{"rtol": 1}"#).unwrap_err();
    assert!(err.contains("missing 'source'"), "{err}");
    let err = model_from_config("diffsl", r#"{"source": "u_i { y = 1 } F_i { 1 }", "rtol": -1}"#).unwrap_err();
    // An option's error is not the model text's: the host blames it on the configuration.
    assert_eq!(err, "invalid diffsl solver option rtol = -1.0: must be a finite number ≥ 0");
    assert!(model_from_config("diffsl", "[1]").is_err());
}

#[test]
fn solver_options_from_json() {
    let o: SolverOptions = serde_json::from_str("{}").unwrap();
    assert_eq!(o, SolverOptions::default());
    assert_eq!((o.rtol, o.atol, o.max_steps, o.dense_output), (1e-6, 1e-6, 100_000, true));
    let o: SolverOptions = serde_json::from_str(r#"{"t0": 0, "h0": 0.01, "dense_output": false}"#).unwrap();
    assert_eq!((o.t0, o.h0, o.dense_output), (Some(0.0), Some(0.01), false));
    assert!(serde_json::from_str::<SolverOptions>(r#"{"tol": 1}"#).is_err());
}

#[test]
fn vectors_with_ranges_slices_and_broadcasting() {
    let src = "in_i { (0:3): k = 0.5, D = 2 }
c_i { 1, 2, 3 }
u_i {
  (0:3): x = D * c_i,     // initial values from parameters and another tensor
  w = k_i[2] + 1,
}
rate_i { k_i * x_i }
F_i {
  (0:3): -rate_i + D,
  sigmoid(x_i[1]),
}
out_i { x_i, w, total = x_i[0] + x_i[1] + x_i[2], (5:7): 10 * c_i[1:3], rate_i[1], t }";
    let m = compile(src).unwrap();
    let names: Vec<&str> = m.spec().params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["k_0", "k_1", "k_2", "D"]);
    assert_eq!(m.spec().defaults(), [0.5, 0.5, 0.5, 2.0]);
    assert_eq!(m.n_states(), 4);
    assert_eq!(m.spec().outputs, ["x_0", "x_1", "x_2", "w", "total", "out_5", "out_6", "rate_1", "t"]);
    let params = [0.1, 0.2, 0.3, 3.0];
    let got = outputs(&m, &params);
    assert_eq!(got, [3.0, 6.0, 9.0, 1.3, 18.0, 20.0, 30.0, 0.2 * 6.0, 0.0]);

    // One step of the right-hand side, checked through a short solve against the exact slopes.
    let h = 1e-6;
    let mut ws = m.workspace();
    let mut out = vec![0.0; 2 * m.spec().outputs.len()];
    m.simulate(&mut ws, &params, &[], &[0.0, h], &mut out).unwrap();
    let n = m.spec().outputs.len();
    let slope = |j: usize| (out[n + j] - out[j]) / h;
    for (j, want) in [(0, -0.3 + 3.0), (1, -1.2 + 3.0), (2, -2.7 + 3.0), (3, 1.0 / (1.0 + math::exp(-6.0f64)))] {
        assert!((slope(j) - want).abs() < 1e-4, "state {j}: {} vs {want}", slope(j));
    }
}

#[test]
fn scalar_forms_unnamed_states_and_mixed_elements() {
    // The newer DiffSL style: `in`, `u`, `F`, `out` without an index for one element.
    let m = compile("in { k = 2 }\nu { x = k }\nF { -k * x }\nout { x }").unwrap();
    assert_eq!(m.spec().outputs, ["x"]);
    assert_eq!(outputs(&m, &[3.0]), [3.0]);

    // Unnamed states are called u_<position>; a range and single elements mix.
    let m = compile("u_i { (0:2): 1, 3 }\nF_i { -u_i }").unwrap();
    assert_eq!(m.spec().outputs, ["u_0", "u_1", "u_2"]);
    assert_eq!(outputs(&m, &[]), [1.0, 1.0, 3.0]);
    let m = compile("u_i { (0:2): 1, (2): 3 }\nF_i { -u_i }\nout_i { u_i[1:3], 2 * u_i }").unwrap();
    assert_eq!(m.spec().outputs, ["u_1", "u_2", "out_2", "out_3", "out_4"]);
    assert_eq!(outputs(&m, &[]), [1.0, 3.0, 2.0, 2.0, 6.0]);

    // Other index letters are fine.
    let m = compile("in_i { a = 2 }\nv_j { a, 2 * a }\nu_k { (0:2): y = v_k }\nF_i { a * y_i }").unwrap();
    assert_eq!(m.spec().outputs, ["y_0", "y_1"]);
    assert_eq!(outputs(&m, &[1.5]), [1.5, 3.0]);
}

#[test]
fn a_diffusion_chain_written_with_slices() {
    let n = 6;
    let src = format!(
        "in_i {{ D = 0.5 }}
u_i {{ (0:{n}): c = 0, }}
F_i {{
  D * (u_i[1] - 2 * u_i[0] + 1),
  (1:{m}): D * (u_i[0:{k}] - 2 * u_i[1:{m}] + u_i[2:{n}]),
  D * (u_i[{k}] - 2 * u_i[{m}]),
}}",
        m = n - 1,
        k = n - 2
    );
    let m =
        OdeModel::compile(&src, "chain.ds", SolverOptions { rtol: 1e-10, atol: 1e-10, ..Default::default() }).unwrap();
    assert_eq!(m.n_states(), n);
    // The steady state of the chain fed by 1 at the left end: c_j = 1 - (j + 1) / (n + 1).
    let mut ws = m.workspace();
    let mut out = vec![0.0; 2 * n];
    m.simulate(&mut ws, &[0.5], &[], &[0.0, 400.0], &mut out).unwrap();
    for j in 0..n {
        let want = 1.0 - (j + 1) as f64 / (n + 1) as f64;
        assert!((out[n + j] - want).abs() < 1e-7, "c_{j}: {} vs {want}", out[n + j]);
    }
}

#[test]
fn the_readme_examples_compile() {
    let readme = include_str!("../README.md");
    let blocks: Vec<&str> = readme.split("```").skip(1).step_by(2).filter(|b| b.contains("F_i")).collect();
    assert!(blocks.len() >= 3, "{}", blocks.len());
    for b in blocks {
        if let Err(e) = compile(b) {
            panic!("README example does not compile: {e}\n{b}");
        }
    }
}

/// Solve `src` at `rtol = atol = 1e-10` and compare every output at `times` with `want` (one row per time)
/// to `tol` relative (absolute below 1).
fn assert_solution(src: &str, name: &str, params: &[f64], times: &[f64], want: &[&[f64]], tol: f64) {
    let opts = SolverOptions { rtol: 1e-10, atol: 1e-10, ..Default::default() };
    let m = OdeModel::compile(src, name, opts).unwrap_or_else(|e| panic!("{e}"));
    let n_out = m.spec().outputs.len();
    let mut out = vec![0.0; n_out * times.len()];
    m.simulate(&mut m.workspace(), params, &[], times, &mut out).unwrap();
    for (k, row) in want.iter().enumerate() {
        assert_eq!(row.len(), n_out, "outputs at t = {}", times[k]);
        for (j, &w) in row.iter().enumerate() {
            let got = out[k * n_out + j];
            assert!((got - w).abs() <= tol * w.abs().max(1.0), "{name}: output {j} at t = {}: {got} vs {w}", times[k]);
        }
    }
}

/// Every tensor form of DiffSL's book at once. Expected values: pydiffsol 0.6.2 (DiffSL 0.12.4),
/// `Ode(src).solve_dense(params, [0, 1])` at rtol = atol = 1e-10, with the same text (sparse results are
/// added to `zero_i` since pydiffsol's outputs must be dense).
const TENSORS: &str = "\
in_i { a = 2 }
b_i { 10, 20, 30 }
zero_i { 0, 0, 0 }
A_ij { (0:2, 0:3): 1.0, (2, 2): 0.0 }
D_ij { (0..3, 0..3): 2 }
S_ij { (0, 0): 1, (0, 1): 2, (1, 1): 3, (2, 2): 0.0 }
R_ij { (0, 0:3): b_j, (1, 0:3): 2 * b_j, (2, 0:3): a }
C_ij { S_ij + R_ji }
u_i { x = 1, y = 2, z = 3 }
Au_i { A_ij * u_j }
Aud_i { Au_i + zero_i }
Du_i { D_ij * u_j }
Su_i { S_ij * b_j + b_i }
Cs_i { C_ij }
Ct_i { S_ji }
Ctd_i { Ct_i + zero_i }
E_i { exp(S_ij) }
r { b_i }
Bc_ij { S_ij + b_j }
Bcs_i { Bc_ij }
Q_ij { (0:2, 0:2): 1, (1:3, 2): 5 }
Qs_i { Q_ij * b_j }
F_i { -a * x, 0, 0 }
out_i { Aud_i, Du_i, Su_i, Cs_i, Ctd_i, E_i, r, Bcs_i, Qs_i, u_i[1:3], b_i[2] }
";

#[test]
fn tensors_contractions_and_broadcasting_match_pydiffsol() {
    // Rows of A sum the state (its zero row is a structural zero); D is diagonal; `S_ij * b_j + b_i` adds b
    // once per column (the whole expression is summed); C = S + Rᵀ; S's column sums; exp densifies S.
    let fixed = [
        2.0, 4.0, 6.0, 80.0, 120.0, 90.0, // Du, Su
    ];
    let rest = [
        1.0,
        5.0,
        0.0,
        11.107337927389695,
        22.085536923187668,
        3.0,
        60.0,
        63.0,
        63.0,
        60.0,
        30.0,
        180.0,
        150.0,
        2.0,
        3.0,
        30.0,
    ];
    let row = |au: [f64; 3], du0: f64, cs: [f64; 3]| -> Vec<f64> {
        let mut r = au.to_vec();
        r.push(du0);
        r.extend_from_slice(&fixed[1..]);
        r.extend_from_slice(&cs);
        r.extend_from_slice(&rest);
        r
    };
    let (t0, t1) = (
        row([6.0, 6.0, 0.0], 2.0, [35.0, 65.0, 92.0]),
        row([5.135335284368348, 5.135335284368348, 0.0], 0.2706705687366959, [35.0, 65.0, 92.0]),
    );
    assert_solution(TENSORS, "tensors.ds", &[2.0], &[0.0, 1.0], &[&t0, &t1], 1e-8);
    let (t0, t1) = (
        row([6.0, 6.0, 0.0], 2.0, [33.5, 63.5, 90.5]),
        row([5.606530659886006, 5.606530659886006, 0.0], 1.2130613197720117, [33.5, 63.5, 90.5]),
    );
    assert_solution(TENSORS, "tensors.ds", &[0.5], &[0.0, 1.0], &[&t0, &t1], 1e-8);
}

#[test]
fn the_heat_equation_with_a_banded_matrix_matches_pydiffsol() {
    // diffsol's examples/pde-heat: A is written as three diagonals `(a..b, c..d)`. Expected values:
    // pydiffsol 0.6.2, solve_dense at rtol = atol = 1e-10.
    let src = "\
D { 0.1 }
h { 1.0 / 21.0}
g { 0.0 }
m { 1.0 }
A_ij {
    (0..20, 1..21): 1.0,
    (0..21, 0..21): -2.0,
    (1..21, 0..20): 1.0,
}
b_i {
    (0): g,
    (1:20): 0.0,
    (20): g,
}
u_i {
    (0:5): g,
    (5:15): g + m,
    (15:21): g,
}
heat_i { A_ij * u_j }
F_i {
    D * (heat_i + b_i) / (h * h)
}
out_i { u_i[3], u_i[10], u_i[18] }
";
    let want: [&[f64]; 4] = [
        &[0.0, 1.0, 0.0],
        &[0.302417406019156, 0.9048625984579786, 0.11549954040818947],
        &[0.2944960021535937, 0.5378776607716714, 0.20308421508731786],
        &[0.18555375135964483, 0.33930349575555, 0.13887523016731254],
    ];
    assert_solution(src, "heat.ds", &[], &[0.0, 0.1, 0.5, 1.0], &want, 1e-7);
    // The Jacobian's pattern is A's: three diagonals, 61 entries, so BDF's LU is banded.
    let m = compile(src).unwrap();
    assert_eq!(m.n_states(), 21);
}

#[test]
fn interp1d_matches_pydiffsol() {
    // functions.md's example: clamped outside the points, batched over a vector, and on computed points.
    // Expected values: pydiffsol 0.6.2, solve_dense at rtol = atol = 1e-10, with s = 1 and s = 2.
    let src = "\
in_i { s = 1 }
xs_i { 0.0, 10.0, 20.0 }
ys_i { 1.0,  5.0, 15.0 }
q_j { -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0 }
r_j { interp1d(xs_i, ys_i, q_j) }
u_i { y = 0 }
F_i { s * interp1d(xs_i, ys_i, t) }
out_i { y, r_i, interp1d(xs_i * 2.0, ys_i + 1.0, 5.0), interp1d(xs_i, ys_i, 2 * t) }
";
    let r = [1.0, 1.0, 3.0, 5.0, 10.0, 15.0, 15.0, 3.0];
    let row = |y: f64, last: f64| -> Vec<f64> { [&[y][..], &r[..], &[last][..]].concat() };
    let want =
        [row(0.0, 1.0), row(18.750000000000398, 10.0), row(42.00000000566003, 15.0), row(280.00000000716716, 15.0)];
    let want: Vec<&[f64]> = want.iter().map(Vec::as_slice).collect();
    assert_solution(src, "interp.ds", &[1.0], &[0.0, 7.5, 12.0, 30.0], &want, 1e-8);
    let want = [row(0.0, 1.0), row(37.50000000000039, 10.0)];
    let want: Vec<&[f64]> = want.iter().map(Vec::as_slice).collect();
    assert_solution(src, "interp.ds", &[2.0], &[0.0, 7.5], &want, 1e-8);
}

#[test]
fn the_model_index_and_integer_index_arithmetic_match_pydiffsol() {
    // Without events N stays 0. Expected values: pydiffsol 0.6.2, solve_dense at rtol = atol = 1e-10.
    let src = "\
g_i { 1, 2, 3 }
u_i { y = 1 }
F_i { -g_i[N] * y }
out_i { y, g_i[N], g_i[(N + 1) % 2], g_i[N * 2 + 2], N + 1, g_i[7 / 3], g_i[N+1:N+3] }
";
    let want: [&[f64]; 2] =
        [&[1.0, 1.0, 2.0, 3.0, 1.0, 3.0, 2.0, 3.0], &[0.36787944153276636, 1.0, 2.0, 3.0, 1.0, 3.0, 2.0, 3.0]];
    assert_solution(src, "n.ds", &[], &[0.0, 1.0], &want, 1e-8);
}

// Reads files, which wasm32 has none of.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn read_imports_a_frostt_file_next_to_the_model() {
    // The file is looked up in the model file's directory. Expected values: pydiffsol 0.6.2 (which reads it
    // from the working directory), solve_dense at rtol = atol = 1e-10.
    let dir = std::env::temp_dir().join(format!("parfit-ode-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tns = "# a 3 x 3 matrix, 1-based coordinates\n1 1 -1.0\n1 2 0.5\n2 2 -2   # diagonal\n\n3 1 0.25\n3 3 -0.5\n";
    std::fs::write(dir.join("a.tns"), tns).unwrap();
    let src = "A_ij { (0:3, 0:3): read('a.tns') }\nu_i { x = 1, y = 2, z = 3 }\nF_i { A_ij * u_j }\n";
    let name = dir.join("model.ds").display().to_string();
    let want: [&[f64]; 3] = [
        &[1.0, 2.0, 3.0],
        &[0.845181877698323, 0.7357588835140131, 2.4401855823404452],
        &[0.2523549274363283, 0.036631278159418176, 1.2779218477494203],
    ];
    assert_solution(src, &name, &[], &[0.0, 0.5, 2.0], &want, 1e-7);

    // Bad files are refused at the read, naming the file's line and column.
    let refused = |tns: &str, src: &str| {
        std::fs::write(dir.join("b.tns"), tns).unwrap();
        let Err(e) = OdeModel::compile(src, &name, SolverOptions::default()) else { panic!("accepted:\n{tns}") };
        (e.line, e.column, e.message)
    };
    let src = "A_ij {\n  (0:2, 0:2): read('b.tns') }\nu_i { x = 1, y = 2 }\nF_i { A_ij * u_j }\n";
    assert_eq!(
        refused("1 1 1\n2 3 1\n", src),
        (2, 15, "b.tns:2:3: coordinate 3 is out of range 1..=2 (FROSTT counts from 1)".into())
    );
    assert_eq!(refused("1 1 1\n1 1 2\n", src), (2, 15, "b.tns:2:1: duplicate coordinates (also on line 1)".into()));
    let (line, col, msg) = refused("", &src.replace("b.tns", "missing.tns"));
    assert_eq!((line, col), (2, 15));
    assert!(msg.starts_with("read('missing.tns'): cannot read "), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn named_matrix_entries_three_axes_and_outer_products_match_pydiffsol() {
    // A named entry of a matrix is a scalar; a 3-D tensor summed over its last letter; b_i * b_j is an outer
    // product. Expected values: pydiffsol 0.6.2, solve_dense at rtol = atol = 1e-10, same text.
    let src = "\
A_ij { (0, 0): a = 3, (1, 1): 4 }
T_ijk { (0:2, 0:2, 0:2): 2, (1, 1, 2): 5 }
Mm_ij { T_ijk }
b_i { 1, 2 }
P_ij { b_i * b_j }
u_i { x = 1 }
F_i { -a * x }
w_i { a, A_ij, Mm_ij, P_ij }
out_i { x, w_i }
";
    let want: [&[f64]; 2] =
        [&[1.0, 3.0, 3.0, 4.0, 8.0, 13.0, 3.0, 6.0], &[0.04978706853301455, 3.0, 3.0, 4.0, 8.0, 13.0, 3.0, 6.0]];
    assert_solution(src, "named.ds", &[], &[0.0, 1.0], &want, 1e-8);
}
