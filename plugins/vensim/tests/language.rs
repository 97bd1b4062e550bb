//! The Vensim subset: what parses, what is refused and how, and what simulations compute.

use parfit_core::{Model, SimError};
use parfit_vensim::{Method, ParseError, VensimModel, model_from_config};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const CONTROL: &str = "\
********************************************************
\t.Control
********************************************************~
\t\tSimulation Control Parameters
\t|

FINAL TIME  = 10
\t~\tMonth
\t~\tThe final time for the simulation.
\t|

INITIAL TIME  = 0 ~ Month ~ |
SAVEPER  = TIME STEP ~ Month [0,?] ~ |
TIME STEP  = 0.25 ~ Month [0,?] ~ |
";

/// A model from equations (each `~ ~ |`-terminated by the caller or not) plus the control section above.
fn model_src(equations: &str) -> String {
    format!(
        "{{UTF-8}}\n{equations}\n{CONTROL}\n\\\\\\---/// Sketch information - do not modify anything except names\nV300\n"
    )
}

fn compile(equations: &str) -> Result<VensimModel, ParseError> {
    VensimModel::compile(&model_src(equations), "model.mdl", None)
}

fn compile_err(equations: &str) -> String {
    match compile(equations) {
        Ok(_) => panic!("expected an error for:\n{equations}"),
        Err(e) => e.to_string(),
    }
}

fn run(m: &VensimModel, params: &[f64], inputs: &[f64], times: &[f64]) -> Result<Vec<f64>, SimError> {
    let mut ws = m.workspace();
    let mut out = vec![f64::NAN; m.spec().output_len(times.len())];
    m.simulate(&mut ws, params, inputs, times, &mut out).map(|()| out)
}

/// Outputs at t = 0 with the default parameters and the file's initial values.
fn at_start(m: &VensimModel) -> Vec<f64> {
    run(m, &m.spec().defaults(), &vec![f64::NAN; m.spec().inputs.len()], &[0.0]).unwrap()
}

fn output(m: &VensimModel, out: &[f64], name: &str) -> f64 {
    out[m.spec().output_index(name).unwrap_or_else(|| panic!("no output {name}"))]
}

#[test]
fn unsupported_constructs_are_refused_with_their_place() {
    let cases: &[(&str, &str)] = &[
        ("a = 1 ~~|\nx[region] = 1 ~~|", "model.mdl:3:2: subscripts ('[...]') are not supported"),
        ("a = 1 ~~|\nx = 2 * y[north] ~~|\ny = 1 ~~|", "model.mdl:3:10: subscripts ('[...]') are not supported"),
        ("region: north, south ~~|", "model.mdl:2:7: subscript range definitions are not supported"),
        (
            "effect((0,1),(1,2)) ~~|",
            "model.mdl:2:7: lookup (table function) definitions such as 'effect(...)' are not supported",
        ),
        (
            "effect = WITH LOOKUP(Time, ((0,1),(1,2))) ~~|",
            "model.mdl:2:10: the Vensim function WITH LOOKUP is not supported (a lookup function)",
        ),
        (
            "t = 1 ~~|\nx = effect table(t) ~~|",
            "model.mdl:3:5: 'effect table(...)': unknown function (supported: MIN, MAX, ABS, EXP, LN, SQRT, IF THEN \
             ELSE, INTEG); calling a variable as a lookup is not supported",
        ),
        (
            "s = INTEG(1, 0) ~~|\nx = SMOOTH(s, 3) ~~|",
            "model.mdl:3:5: the Vensim function SMOOTH is not supported (a delay or smoothing function)",
        ),
        (
            "s = INTEG(1, 0) ~~|\nx = DELAY FIXED(s, 3, 0) ~~|",
            "model.mdl:3:5: the Vensim function DELAY FIXED is not supported (a delay or smoothing function)",
        ),
        (
            "s = INTEG(1, 0) ~~|\nx = delay1i(s, 3, 0) ~~|",
            "model.mdl:3:5: the Vensim function DELAY1I is not supported (a delay or smoothing function)",
        ),
        ("x = 1 + STEP(2, 5) ~~|", "model.mdl:2:9: the Vensim function STEP is not supported (a test input)"),
        ("x = PULSE(2, 5) ~~|", "model.mdl:2:5: the Vensim function PULSE is not supported (a test input)"),
        ("x = RAMP(1, 2, 5) ~~|", "model.mdl:2:5: the Vensim function RAMP is not supported (a test input)"),
        (
            "x = RANDOM UNIFORM(0, 1, 7) ~~|",
            "model.mdl:2:5: the Vensim function RANDOM UNIFORM is not supported (a random-number function)",
        ),
        (
            "x = ZIDZ(1, 0) ~~|",
            "model.mdl:2:5: the Vensim function ZIDZ is not supported (supported: MIN, MAX, ABS, EXP, LN, SQRT, IF \
             THEN ELSE, INTEG)",
        ),
        (
            ":MACRO: EXPGROWTH(x, r)\nEXPGROWTH = INTEG(r * x, x) ~~|\n:END OF MACRO:\n",
            "model.mdl:2:1: macros (:MACRO:) are not supported",
        ),
        ("x := 1 ~~|", "model.mdl:2:3: data equations (':=') are not supported"),
        ("x ~ units ~ data from a file |", "model.mdl:2:1: 'x' has no equation: data variables are not supported"),
        (
            "x = 1, 2, 3 ~~|",
            "model.mdl:2:6: lists of numbers (values of a subscripted constant) are not supported: subscripts are not supported",
        ),
        ("x = 2 * INTEG(1, 0) ~~|", "model.mdl:2:9: INTEG must be the whole right-hand side of a stock's equation"),
    ];
    for (eqs, want) in cases {
        assert_eq!(&compile_err(eqs), want, "for:\n{eqs}");
    }
}

#[test]
fn syntax_and_reference_errors() {
    let cases: &[(&str, &str)] = &[
        ("x = 1 +\n ~~|", "model.mdl:3:2: expected a number, a name or '(', found the end of the equation"),
        ("x = (1 + 2 ~~|", "model.mdl:2:12: expected ')', found the end of the equation"),
        ("x = 1 2 ~~|", "model.mdl:2:7: expected an operator, found '2'"),
        ("x = MIN(1) ~~|", "model.mdl:2:8: MIN takes 2 arguments, found 1"),
        ("x = IF THEN ELSE(1, 2) ~~|", "model.mdl:2:17: IF THEN ELSE takes 3 arguments, found 2"),
        ("x = y + 1 ~~|", "model.mdl:2:5: unknown variable 'y'"),
        (
            "x = 1 ~~|\nX = 2 ~~|",
            "model.mdl:3:1: 'X' is defined twice (also as 'x'; names ignore case, spaces and underscores)",
        ),
        ("Time = 1 ~~|", "model.mdl:2:1: 'Time' is built in and cannot be defined"),
        ("x = 1 ? 2 ~~|", "model.mdl:2:7: unexpected character '?'"),
        (
            "s = INTEG(1 ~~|",
            "model.mdl:2:13: expected ',' between the INTEG rate and initial value, found the end of the equation",
        ),
    ];
    for (eqs, want) in cases {
        assert_eq!(&compile_err(eqs), want, "for:\n{eqs}");
    }
    let missing =
        VensimModel::compile("x = 1 ~~|\nINITIAL TIME = 0 ~~|\nTIME STEP = 1 ~~|", "m.mdl", None).unwrap_err();
    assert_eq!(missing.to_string(), "m.mdl:1:1: the .Control section must define FINAL TIME");
    let zero_step = VensimModel::compile("INITIAL TIME = 0 ~~|\nFINAL TIME = 1 ~~|\nTIME STEP = 0 ~~|", "m.mdl", None);
    assert_eq!(zero_step.unwrap_err().to_string(), "m.mdl:3:1: TIME STEP must be positive, found 0");
}

#[test]
fn cycles_without_a_stock_are_errors() {
    assert_eq!(
        compile_err("a = b + 1 ~~|\nb = c * 2 ~~|\nc = a ~~|"),
        "model.mdl:2:1: circular definition without a stock (INTEG) to break it: a -> b -> c -> a"
    );
    assert_eq!(
        compile_err("a = a ~~|"),
        "model.mdl:2:1: circular definition without a stock (INTEG) to break it: a -> a"
    );
    assert_eq!(
        compile_err("s = INTEG(1, t) ~~|\nt = s * 2 ~~|"),
        "model.mdl:2:1: circular initial values: s -> t -> s"
    );
    // A cycle through a stock is the normal case.
    let m = compile("s = INTEG(-f, 1) ~~|\nf = s / 2 ~~|").unwrap();
    assert_eq!(m.spec().outputs, ["s", "f"]);
}

#[test]
fn names_ignore_case_spaces_and_underscores() {
    let m = compile(
        "Dec 1 Loss Rate = 0.5 ~ 1/Year ~ comment: the \"rate\" {not a comment}, [0, 1] ~ tildes too |\n\
         \"birth  flow\" = DEC_1__loss_rate * 2 ~~|\n\
         Stock  One = INTEG (\n\tBirth_Flow - stock one\\\n\t * dec 1 loss RATE,\n\t\t3) ~~|",
    )
    .unwrap();
    let spec = m.spec();
    assert_eq!(spec.params[0].name, "Dec 1 Loss Rate");
    assert_eq!(spec.inputs, ["Stock One"]);
    assert_eq!(spec.outputs, ["Stock One", "birth flow"]);
    let out = at_start(&m);
    assert_eq!(out, [3.0, 1.0]);
    // One Euler step: 3 + 0.25 * (1 - 3 * 0.5).
    let out = run(&m, &[0.5], &[f64::NAN], &[0.25]).unwrap();
    assert_eq!(out[0], 3.0 + (1.0 - 3.0 * 0.5) * 0.25);
}

#[test]
fn built_ins_and_if_then_else() {
    let m = compile(
        "a = 2.5 ~~|\nb = -4 ~~|\n\
         mn = MIN(a, b) ~~|\nmx = MAX(a, b) ~~|\nab = ABS(b) ~~|\nex = EXP(a) ~~|\nlg = LN(a) ~~|\nsq = SQRT(a) ~~|\n\
         pw = a ^ 2 ^ 0.5 ~~|\nng = -a ^ 2 ~~|\n\
         c1 = IF THEN ELSE(a > b :AND: b < 0, 1, 2) ~~|\n\
         c2 = IF THEN ELSE(:NOT: a >= 3 :OR: a = b, 10 * a, 0) ~~|\n\
         c3 = IF THEN ELSE(a <> 2.5, 1, IF THEN ELSE(b <= -4, 7, 8)) ~~|\n\
         c4 = (a - b) * (a + b) / 2 ~~|\n\
         tt = Time * TIME STEP ~~|",
    )
    .unwrap();
    let (a, b) = (2.5f64, -4.0f64);
    let expect = [
        ("mn", b),
        ("mx", a),
        ("ab", 4.0),
        ("ex", a.exp()),
        ("lg", a.ln()),
        ("sq", a.sqrt()),
        ("pw", a.powf(2f64.powf(0.5))),
        ("ng", -(a * a)),
        ("c1", 1.0),
        ("c2", 25.0),
        ("c3", 7.0),
        ("c4", (a - b) * (a + b) / 2.0),
    ];
    let out = at_start(&m);
    for (name, v) in expect {
        assert_eq!(output(&m, &out, name).to_bits(), v.to_bits(), "{name}");
    }
    // Parameters flow through at run time, not just at compile time.
    let out = run(&m, &[3.0, 1.0], &[], &[2.0]).unwrap();
    assert_eq!(output(&m, &out, "mn"), 1.0);
    assert_eq!(output(&m, &out, "c1"), 2.0);
    assert_eq!(output(&m, &out, "c2"), 0.0);
    assert_eq!(output(&m, &out, "tt"), 0.5);
}

#[test]
fn requested_times_must_be_on_the_step_grid() {
    let m = compile("s = INTEG(1, 0) ~~|").unwrap();
    let err = run(&m, &[], &[0.0], &[0.0, 0.3]).unwrap_err();
    assert_eq!(
        err,
        SimError::BadInput(
            "time 0.3 is not on the model's step grid (INITIAL TIME 0 + n × TIME STEP 0.25, n ≥ 0)".into()
        )
    );
    assert!(matches!(run(&m, &[], &[0.0], &[-0.25]), Err(SimError::BadInput(m)) if m.contains("time -0.25")));
    // Within 1e-9 of a step is on it; past FINAL TIME (10) is allowed.
    let out = run(&m, &[], &[0.0], &[0.5 + 1e-12, 12.0]).unwrap();
    assert_eq!(out, [0.5, 12.0]);
    // Repeated times give the same row.
    let out = run(&m, &[], &[1.0], &[1.0, 1.0, 0.0 + 1.0]).unwrap();
    assert_eq!(out, [2.0, 2.0, 2.0]);
    assert_eq!(run(&m, &[], &[0.0], &[]).unwrap(), Vec::<f64>::new());
}

#[test]
fn bad_calls_are_errors() {
    let m = compile("k = 1 ~~|\ns = INTEG(-k * s, 1) ~~|").unwrap();
    assert!(matches!(run(&m, &[1.0, 2.0], &[1.0], &[0.0]), Err(SimError::BadInput(_))));
    assert!(matches!(run(&m, &[1.0], &[], &[0.0]), Err(SimError::BadInput(_))));
    assert!(matches!(run(&m, &[f64::NAN], &[1.0], &[0.0]), Err(SimError::BadParameter { name, .. }) if name == "k"));
    assert!(matches!(run(&m, &[1.0], &[f64::INFINITY], &[0.0]), Err(SimError::BadInput(_))));
    let m = compile("s = INTEG(s * s, 1) ~~|").unwrap();
    assert!(matches!(run(&m, &[], &[1e200], &[0.0, 1.0]), Err(SimError::Diverged { t }) if t == 0.25));
}

/// One workspace serves many calls and models; results never depend on what it held before.
#[test]
fn workspace_reuse_is_bit_identical() {
    let a = compile("k = 0.3 ~~|\ns = INTEG(-k * s + f, 2) ~~|\nf = IF THEN ELSE(s > 1, 0.1, Time) ~~|").unwrap();
    let b = compile("x = INTEG(1, 0) ~~|\ny = INTEG(x, 5) ~~|\nz = x * y ~~|").unwrap();
    let times: Vec<f64> = (0..=40).map(|i| i as f64 * 0.25).collect();
    let fresh = run(&a, &[0.3], &[f64::NAN], &times).unwrap();
    let mut ws = a.workspace();
    let mut out = vec![0.0; a.spec().output_len(times.len())];
    for k in [0.9, 0.3] {
        a.simulate(&mut ws, &[k], &[7.0], &times, &mut out).unwrap();
    }
    a.simulate(&mut ws, &[0.3], &[f64::NAN], &times, &mut out).unwrap();
    assert_eq!(out, fresh);
    // A workspace of another model (same type, other sizes) is resized, not trusted.
    let mut out_b = vec![0.0; b.spec().output_len(times.len())];
    b.simulate(&mut ws, &[], &[1.0, 2.0], &times, &mut out_b).unwrap();
    a.simulate(&mut ws, &[0.3], &[f64::NAN], &times, &mut out).unwrap();
    assert_eq!(out, fresh);
}

/// RK4 on dx/dt = -k·x: each step multiplies x by 1 - h + h²/2 - h³/6 + h⁴/24 (h = k·dt), close to e^(-h).
#[test]
fn rk4_on_exponential_decay() {
    let src = model_src("k = 1 ~~|\nx = INTEG(-k * x, 1) ~~|");
    let m = VensimModel::compile(&src, "decay.mdl", Some(Method::Rk4)).unwrap();
    assert_eq!(m.method(), Method::Rk4);
    let times: Vec<f64> = (0..=40).map(|i| i as f64 * 0.25).collect();
    let out = run(&m, &[1.0], &[f64::NAN], &times).unwrap();
    let h: f64 = 0.25;
    let g = 1.0 - h + h * h / 2.0 - h * h * h / 6.0 + h.powi(4) / 24.0;
    for (i, t) in times.iter().enumerate() {
        let x = out[i];
        assert!((x - g.powi(i as i32)).abs() <= 1e-14 * g.powi(i as i32), "t = {t}: {x} vs {}", g.powi(i as i32));
        // RK4's global error: about t·h⁴/120 relative (bounded here with a factor 2 to spare).
        assert!((x - (-t).exp()).abs() <= (t * h.powi(4) / 60.0) * (-t).exp(), "t = {t}: {x}");
    }
    // Euler on the same model: x_n = (1 - h)^n exactly.
    let euler = VensimModel::compile(&src, "decay.mdl", Some(Method::Euler)).unwrap();
    let out = run(&euler, &[1.0], &[f64::NAN], &[10.0]).unwrap();
    assert!((out[0] - 0.75f64.powi(40)).abs() < 1e-15);
    // RK4 with time-dependent rates: dx/dt = t integrates t²/2 exactly.
    let m = VensimModel::compile(&model_src("x = INTEG(Time, 0) ~~|"), "t.mdl", Some(Method::Rk4)).unwrap();
    let out = run(&m, &[], &[f64::NAN], &[10.0]).unwrap();
    assert!((out[0] - 50.0).abs() < 1e-12);
}

/// The file's settings choose the method unless the configuration does; RK2 is refused.
#[test]
fn method_from_file_settings_and_config() {
    let with_code = |code: u32| {
        format!(
            "{{UTF-8}}\nx = INTEG(-x, 1) ~~|\n{CONTROL}\n\\\\\\---///\nV300\n*View 1\n///---\\\\\\\n:L<%^E!@\n1:Current.vdf\n\
             15:0,0,0,{code},0,0\n19:100,0\n"
        )
    };
    assert_eq!(VensimModel::compile(&with_code(0), "m.mdl", None).unwrap().method(), Method::Euler);
    assert_eq!(VensimModel::compile(&with_code(1), "m.mdl", None).unwrap().method(), Method::Rk4);
    assert_eq!(VensimModel::compile(&with_code(1), "m.mdl", Some(Method::Euler)).unwrap().method(), Method::Euler);
    let rk2 = VensimModel::compile(&with_code(3), "m.mdl", None).unwrap_err().to_string();
    let line = with_code(3).lines().position(|l| l.starts_with("15:")).unwrap() + 1;
    assert!(rk2.starts_with(&format!("m.mdl:{line}:1: the file's settings ask for RK2 integration")), "{rk2}");
    let config = serde_json::json!({ "source": with_code(3), "source_name": "m.mdl", "method": "rk4" });
    assert_eq!(model_from_config("vensim", &config.to_string()).unwrap().method(), Method::Rk4);
}

#[test]
fn configuration_errors() {
    let src = model_src("x = INTEG(-x, 1) ~~|");
    let err = |json: serde_json::Value| model_from_config("vensim", &json.to_string()).unwrap_err();
    assert!(err(serde_json::json!({ "source": src, "rtol": 1e-6 })).contains("unknown field `rtol`"));
    assert!(err(serde_json::json!({ "source": src, "method": "rk45" })).contains("unknown variant `rk45`"));
    assert!(err(serde_json::json!({ "source_name": "m.mdl" })).contains("missing field `source`"));
    let e = model_from_config("diffsl", &serde_json::json!({ "source": src }).to_string()).unwrap_err();
    assert_eq!(e, "unknown model kind 'diffsl' (this plugin provides: vensim)");
    let m = model_from_config("vensim", &serde_json::json!({ "source": src }).to_string()).unwrap();
    assert_eq!(m.spec().name, "model");
    let e = model_from_config("vensim", &serde_json::json!({ "source": "x = 1 +" }).to_string()).unwrap_err();
    assert_eq!(e, "model.mdl:1:1: equation not terminated by '~' (units and comment) or '|'");
}

/// Initial values may be expressions of parameters, time and other stocks; inputs override them.
#[test]
fn initial_value_expressions() {
    let m = compile("k = 3 ~~|\na = INTEG(0, k * b) ~~|\nb = INTEG(0, Time + 2) ~~|").unwrap();
    assert_eq!(m.spec().inputs, ["a", "b"]);
    assert_eq!(at_start(&m), [6.0, 2.0]);
    assert_eq!(run(&m, &[3.0], &[f64::NAN, 5.0], &[0.0]).unwrap(), [15.0, 5.0]);
    assert_eq!(run(&m, &[1.0], &[4.0, f64::NAN], &[0.0]).unwrap(), [4.0, 2.0]);
    let m = compile("a = INTEG(0, 1 / 0 - 1 / 0) ~~|").unwrap();
    assert!(matches!(run(&m, &[], &[f64::NAN], &[0.0]), Err(SimError::BadInput(e)) if e.contains("'a'")));
}

/// Rates that are other stocks (or the stock itself) use the values from before the step.
#[test]
fn euler_updates_all_stocks_from_the_same_state() {
    let m = compile("a = INTEG(b, 1) ~~|\nb = INTEG(-a, 0) ~~|\nc = INTEG(c, 1) ~~|").unwrap();
    let out = run(&m, &[], &[f64::NAN; 3], &[0.25, 0.5]).unwrap();
    // a1 = a0 + b0·dt = 1 + 0·0.25, b1 = b0 − a0·dt = 0 − 1·0.25.
    let (a1, b1) = (1.0, -0.25);
    assert_eq!(out[..3], [a1, b1, 1.25]);
    assert_eq!(out[3..], [a1 + b1 * 0.25, b1 + -a1 * 0.25, 1.25 + 1.25 * 0.25]);
}

/// The `.Control` values are checked where they are written: the run must go forward in positive finite
/// steps, and the table of saved times must fit in memory.
#[test]
fn control_values_are_checked_at_their_place() {
    let with = |from: &str, to: &str| {
        let src = model_src("x = INTEG(-x, 1) ~~|").replace(from, to);
        match VensimModel::compile(&src, "m.mdl", None) {
            Ok(_) => panic!("{to}: accepted"),
            Err(e) => e.to_string(),
        }
    };
    let e = with("FINAL TIME  = 10", "FINAL TIME  = -5");
    assert!(e.starts_with("m.mdl:9:1: FINAL TIME (-5) is before INITIAL TIME (0)"), "{e}");
    let e = with("TIME STEP  = 0.25", "TIME STEP  = 0");
    assert!(e.starts_with("m.mdl:16:1: TIME STEP must be positive, found 0"), "{e}");
    let e = with("TIME STEP  = 0.25", "TIME STEP  = -1e-3");
    assert!(e.contains("TIME STEP must be positive, found -0.001"), "{e}");
    let e = with("FINAL TIME  = 10", "FINAL TIME  = 1e999");
    assert!(e.starts_with("m.mdl:9:15: number 1e999 is too large"), "{e}");
    let e = with("TIME STEP  = 0.25", "TIME STEP  = 1e-12");
    assert!(e.starts_with("m.mdl:9:1: saving 1 outputs at 10000000000001 times"), "{e}");
    assert!(e.contains("more than the limit of 8.0 GiB"), "{e}");
}
