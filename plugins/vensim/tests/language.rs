//! The Vensim subset: what parses, what is refused and how, and what simulations compute.

use parfit_core::math;
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
        (
            "t = 1 ~~|\nx = effect table(t) ~~|",
            "model.mdl:3:5: 'effect table(…)' is not a Vensim function this plugin knows, nor a lookup or macro of \
             the model",
        ),
        ("x = DELAY MATERIAL(1, 2, 0, 0) ~~|", "model.mdl:2:5: the Vensim function DELAY MATERIAL is not supported"),
        (
            "r: a, b ~~|\nx[r] = 1 ~~|\ny[r] = VECTOR LOOKUP(x[r], 1, 1, 1, 1) ~~|",
            "model.mdl:4:8: the Vensim function VECTOR LOOKUP is not supported",
        ),
        (
            "x = GET TIME VALUE(2, 0, 0) ~~|",
            "model.mdl:2:5: GET TIME VALUE is supported for the simulation's time or its initial time in model units \
             only: GET TIME VALUE(0 or 1, offset, 0)",
        ),
        (
            "x = 1 + GET DIRECT CONSTANTS('c.csv', ',', 'B2') ~~|",
            "model.mdl:2:9: the Vensim function GET DIRECT CONSTANTS is supported only as the whole right-hand side \
             of an equation",
        ),
        ("x = 2 * INTEG(1, 0) ~~|", "model.mdl:2:9: INTEG must be the whole right-hand side of a stock's equation"),
        (
            "x = 1 + ACTIVE INITIAL(2, 3) ~~|",
            "model.mdl:2:9: ACTIVE INITIAL must be the whole right-hand side of an auxiliary",
        ),
    ];
    for (eqs, want) in cases {
        assert_eq!(&compile_err(eqs), want, "for:\n{eqs}");
    }
}

#[test]
fn subscript_errors_name_the_place() {
    let cases: &[(&str, &str)] = &[
        ("r: a, b ~~|\nx[r] = 1, 2, 3 ~~|", "model.mdl:3:1: 'x' needs 2 numbers here, found 3"),
        ("r: a, b ~~|\nx[r] = 1 ~~|\ny = x ~~|", "model.mdl:4:5: 'x' has 1 subscript, found 0"),
        (
            "r: a, b ~~|\ns: c ~~|\nx[r] = 1 ~~|\ny = x[c] ~~|",
            "model.mdl:5:7: 'c' is not an element of 'r', the range of 'x' there",
        ),
        (
            "r: a, b ~~|\nx[r] = 1 ~~|\ny = x[r] ~~|",
            "model.mdl:4:7: the subscript range 'r' is not on the left-hand side (nor mapped to a range there)",
        ),
        ("r: a, b ~~|\nx[r] = 1 ~~|\ny = x[q] ~~|", "model.mdl:4:7: 'q' is neither a subscript range nor an element"),
        ("r: a, b ~~|\nx[a] = 1 ~~|\ny = x[b] ~~|", "model.mdl:4:5: x[b] has no equation"),
        ("r: a, b ~~|\nx[r] = 1 ~~|\nx[a] = 2 ~~|", "model.mdl:4:1: x[a] is defined twice"),
        (
            "r: a, b ~~|\nx[r] = 1 ~~|\ny[r] = x[r!] ~~|",
            "model.mdl:4:10: 'r!' is only allowed inside a vector function (SUM, PROD, VMIN, VMAX, …)",
        ),
        ("r: a, b ~~|\nr: c ~~|", "model.mdl:3:1: the subscript range 'r' is defined twice"),
        ("r: s ~~|\ns: r ~~|", "model.mdl:2:1: the subscript range 'r' is defined in a circle"),
        (
            "r: a, b -> s ~~|\ns: c ~~|",
            "model.mdl:2:12: the mapping of 'r' (2 elements) to 's' needs as many elements, found 1",
        ),
        ("x = SUM(1) ~~|", "model.mdl:2:5: SUM needs a subscript range marked with '!' in its argument"),
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
        ("x = MIN(1) ~~|", "model.mdl:2:5: MIN takes 2 arguments, found 1"),
        ("x = IF THEN ELSE(1, 2) ~~|", "model.mdl:2:5: IF THEN ELSE takes 3 arguments, found 2"),
        ("x = y + 1 ~~|", "model.mdl:2:5: unknown variable 'y'"),
        ("x = 1 ~~|\nX = 2 ~~|", "model.mdl:3:1: 'X' is defined twice (names ignore case, spaces and underscores)"),
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
    assert_eq!(spec.outputs, ["Stock One", "birth flow", "Dec 1 Loss Rate"]);
    let out = at_start(&m);
    assert_eq!(out, [3.0, 1.0, 0.5]);
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
        ("ex", math::exp(a)),
        ("lg", math::ln(a)),
        ("sq", a.sqrt()),
        ("pw", math::powf(a, math::powf(2f64, 0.5))),
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
    let g = 1.0 - h + h * h / 2.0 - h * h * h / 6.0 + math::powi(h, 4) / 24.0;
    for (i, t) in times.iter().enumerate() {
        let x = out[2 * i]; // x, then the constant k
        assert!(
            (x - math::powi(g, i as i32)).abs() <= 1e-14 * math::powi(g, i as i32),
            "t = {t}: {x} vs {}",
            math::powi(g, i as i32)
        );
        // RK4's global error: about t·h⁴/120 relative (bounded here with a factor 2 to spare).
        assert!((x - math::exp(-t)).abs() <= (t * math::powi(h, 4) / 60.0) * math::exp(-t), "t = {t}: {x}");
    }
    // Euler on the same model: x_n = (1 - h)^n exactly.
    let euler = VensimModel::compile(&src, "decay.mdl", Some(Method::Euler)).unwrap();
    let out = run(&euler, &[1.0], &[f64::NAN], &[10.0]).unwrap();
    assert!((out[0] - math::powi(0.75f64, 40)).abs() < 1e-15);
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

/// GET TIME VALUE: the simulation's time (origin 0) or its initial time (origin 1), offset, in model units.
#[test]
fn get_time_value_from_the_time_or_the_initial_time() {
    let src = model_src("now = GET TIME VALUE(0, 2, 0) ~~|\nstart = GET TIME VALUE(1, -0.5, 0) ~~|")
        .replace("INITIAL TIME  = 0", "INITIAL TIME  = 3")
        .replace("FINAL TIME  = 10", "FINAL TIME  = 13");
    let m = VensimModel::compile(&src, "model.mdl", None).unwrap();
    assert_eq!(run(&m, &[], &[], &[3.0, 4.25]).unwrap(), [5.0, 2.5, 6.25, 2.5]);
}

/// Every constant is an output too, each cell, after the other variables (Vensim's `.tab` has them all), with
/// the value the run was given; a model of constants alone has outputs.
#[test]
fn constants_are_outputs_after_the_other_variables() {
    let m = compile("a = 1 ~~|\nr: x, y ~~|\nb[r] = 2, 3 ~~|\nc == 4 ~~|\nd = a * 10 ~~|").unwrap();
    let spec = m.spec();
    assert_eq!(names(&spec.outputs), ["c", "d", "a", "b[x]", "b[y]"]);
    assert_eq!(at_start(&m), [4.0, 10.0, 1.0, 2.0, 3.0]);
    let out = run(&m, &[5.0, 6.0, 7.0], &[], &[0.0, 10.0]).unwrap();
    assert_eq!(out, [4.0, 50.0, 5.0, 6.0, 7.0, 4.0, 50.0, 5.0, 6.0, 7.0]);
    let only = compile("a = 1 ~~|").unwrap();
    assert_eq!(names(&only.spec().outputs), ["a"]);
    assert_eq!(run(&only, &[2.5], &[], &[0.0, 0.25]).unwrap(), [2.5, 2.5]);
}

/// Initial values may be expressions of parameters, time and other stocks; inputs override them.
#[test]
fn initial_value_expressions() {
    let m = compile("k = 3 ~~|\na = INTEG(0, k * b) ~~|\nb = INTEG(0, Time + 2) ~~|").unwrap();
    assert_eq!(m.spec().inputs, ["a", "b"]);
    assert_eq!(at_start(&m), [6.0, 2.0, 3.0]);
    assert_eq!(run(&m, &[3.0], &[f64::NAN, 5.0], &[0.0]).unwrap(), [15.0, 5.0, 3.0]);
    assert_eq!(run(&m, &[1.0], &[4.0, f64::NAN], &[0.0]).unwrap(), [4.0, 2.0, 1.0]);
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

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// Ranges, numbered ranges, number lists in one and two dimensions, subscripted stocks and the vector
/// functions over `range!`.
#[test]
fn subscripts_expand_to_one_scalar_per_element() {
    let m = compile(
        "r: a, b, c ~~|\ns: (s1-s2) ~~|\nk[r] = 1, 2, 3 ~~|\nm[r, s] = 1, 2; 3, 4; 5, 6; ~~|\n\
         stock[r] = INTEG(k[r], m[r, s1]) ~~|\ntotal = SUM(stock[r!]) ~~|\npr = PROD(k[r!]) ~~|\n\
         lo = VMIN(m[r!, s!]) ~~|\nhi = VMAX(m[r!, s2]) ~~|\nn = ELMCOUNT(r) ~~|\nrow sum[r] = SUM(m[r, s!]) ~~|",
    )
    .unwrap();
    let spec = m.spec();
    let params: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(params, ["k[a]", "k[b]", "k[c]", "m[a,s1]", "m[a,s2]", "m[b,s1]", "m[b,s2]", "m[c,s1]", "m[c,s2]"]);
    assert_eq!(names(&spec.inputs), ["stock[a]", "stock[b]", "stock[c]"]);
    assert_eq!(
        names(&spec.outputs),
        [
            ["stock[a]", "stock[b]", "stock[c]", "total", "pr", "lo", "hi", "n", "row sum[a]", "row sum[b]"].as_slice(),
            &["row sum[c]"],
            &params, // the constants close the list, as in Vensim's `.tab`
        ]
        .concat()
    );
    let out = at_start(&m);
    assert_eq!(out[..11], [1.0, 3.0, 5.0, 9.0, 6.0, 1.0, 6.0, 3.0, 3.0, 7.0, 11.0]);
    assert_eq!(out[11..], [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let out = run(&m, &spec.defaults(), &[f64::NAN; 3], &[0.25]).unwrap();
    assert_eq!(out[..4], [1.25, 3.5, 5.75, 10.5]);
}

/// Equations per element and per subrange, `:EXCEPT:`, mappings (`->`) and equivalences (`<->`).
#[test]
fn subranges_exceptions_mappings_and_equivalences() {
    let m = compile(
        "age: infant, child, teen ~~|\nolder: child, teen ~~|\nprev: infant, child -> older ~~|\n\
         pop[infant] = INTEG(10 - aging[infant], 100) ~~|\npop[older] = INTEG(aging[prev] - aging[older], 50) ~~|\n\
         aging[age] = 1, 2, 3 ~~|\nx[age] :EXCEPT: [teen] = 7 ~~|\nx[teen] = 8 ~~|\ne2 <-> age ~~|\n\
         y[e2] = pop[e2] * 2 ~~|\nz[age] = y[age] + x[age] ~~|\nw[older] = pop[age] ~~|",
    )
    .unwrap();
    let spec = m.spec();
    assert_eq!(names(&spec.inputs), ["pop[infant]", "pop[child]", "pop[teen]"]);
    let params: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(params, ["aging[infant]", "aging[child]", "aging[teen]", "x[infant]", "x[child]", "x[teen]"]);
    let out = run(&m, &spec.defaults(), &[f64::NAN; 3], &[0.0, 1.0]).unwrap();
    let at = |row: usize, name: &str| out[row * spec.outputs.len() + spec.output_index(name).unwrap()];
    assert_eq!([at(0, "y[infant]"), at(0, "z[teen]"), at(0, "w[child]")], [200.0, 108.0, 50.0]);
    // Rates: infant 10 − 1, child aging[infant] − aging[child] = −1, teen aging[child] − aging[teen] = −1.
    assert_eq!([at(1, "pop[infant]"), at(1, "pop[child]"), at(1, "pop[teen]")], [109.0, 49.0, 49.0]);
}

/// Lookups: tables with or without a range, called by name, subscripted, and inline with WITH LOOKUP.
#[test]
fn lookups_by_name_subscripted_and_inline() {
    let m = compile(
        "tab([(0,0)-(2,2)], (0,0), (1,2), (2,2)) ~~|\nplain(0, 1, 10, 30) ~~|\nr: a, b ~~|\n\
         per[a]((0,1),(1,1)) ~~|\nper[b]((0,5),(1,7)) ~~|\n\
         f = tab(Time) ~~|\ng = plain(Time * 2) ~~|\nh[r] = per[r](Time) ~~|\n\
         i = WITH LOOKUP(Time, ([(0,0)-(1,1)], (0,1), (1,3))) ~~|\nj = tab(5) + tab(-1) ~~|",
    )
    .unwrap();
    assert_eq!(names(&m.spec().outputs), ["f", "g", "h[a]", "h[b]", "i", "j"]);
    let out = run(&m, &[], &[], &[0.25]).unwrap();
    assert_eq!(out, [0.5, 20.0, 1.0, 5.5, 1.5, 2.0]);
}

/// Macros, also used before their definition; every call has its own stocks, none of them an input or output.
#[test]
fn macros_are_instantiated_per_call() {
    let m = compile(
        "y = GROWTH(1, 0.5) ~~|\nz = GROWTH(2, rate) ~~|\nrate = 1 ~~|\n\
         :MACRO: GROWTH(x0, r)\nGROWTH = INTEG(r * GROWTH, x0) ~ units ~ a stock inside |\n:END OF MACRO:\n",
    )
    .unwrap();
    let spec = m.spec();
    assert!(spec.inputs.is_empty());
    assert_eq!(names(&spec.outputs), ["y", "z", "rate"]);
    let out = run(&m, &[1.0], &[], &[0.0, 0.25]).unwrap();
    assert_eq!(out, [1.0, 2.0, 1.0, 1.125, 2.5, 1.0]);
    let e = compile_err("y = GROWTH(1) ~~|\n:MACRO: GROWTH(x0, r)\nGROWTH = INTEG(r, x0) ~~|\n:END OF MACRO:\n");
    assert_eq!(e, "model.mdl:2:5: the macro GROWTH takes 2 arguments, found 1");
    let e = compile_err(":MACRO: M(a)\nM = a ~~|\n");
    assert_eq!(e, "model.mdl:2:1: the macro 'M' is not closed by :END OF MACRO:");
}

/// ACTIVE INITIAL, unchangeable constants and data equations.
#[test]
fn active_initial_unchangeable_and_data_equations() {
    let m = compile("s = INTEG(1, ai) ~~|\nai = ACTIVE INITIAL(s * 2, 5) ~~|\nu == 3 ~~|\nd := Time * u ~~|").unwrap();
    let spec = m.spec();
    assert!(spec.params.is_empty());
    assert_eq!(names(&spec.outputs), ["s", "ai", "u", "d"]);
    let out = run(&m, &[], &[f64::NAN], &[0.0, 0.5]).unwrap();
    assert_eq!(out, [5.0, 10.0, 3.0, 0.0, 5.5, 11.0, 3.0, 1.5]);
}

/// Control values computed from constants, SAVEPER apart from TIME STEP, a sketch marker with two
/// backslashes, no `{UTF-8}` header and an upper-case `.MDL`.
#[test]
fn file_variants_and_control_expressions() {
    let src = model_src("horizon = 5 ~~|\nx = INTEG(1, 0) ~~|")
        .replace("FINAL TIME  = 10", "FINAL TIME  = horizon * 2")
        .replace("SAVEPER  = TIME STEP", "SAVEPER  = 4 * TIME STEP")
        .replace("{UTF-8}\n", "")
        .replace("\\\\\\---///", "\\\\---///");
    let m = VensimModel::compile(&src, "dir/Model.MDL", None).unwrap();
    assert_eq!(m.spec().name, "Model");
    assert_eq!(m.control().final_time, 10.0);
    assert_eq!(m.save_times(), (0..=10).map(f64::from).collect::<Vec<_>>());
    let e = VensimModel::compile(
        &model_src("x = 1 ~~|").replace("FINAL TIME  = 10", "FINAL TIME  = x + Time"),
        "m.mdl",
        None,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "m.mdl:9:19: FINAL TIME must be computed from numbers and constants alone");
}

/// The JIT and the interpreter give the same bits; `"jit": false` chooses the interpreter.
#[test]
fn native_code_and_interpreter_agree_bit_for_bit() {
    let src = model_src(
        "r: a, b ~~|\nk[r] = 0.3, 0.7 ~~|\ns[r] = INTEG(-k[r] * s[r] + f[r], 2) ~~|\n\
         f[r] = IF THEN ELSE(s[r] > 1, 0.1, Time) * EXP(-Time) ~~|\ntot = SUM(s[r!]) ~~|",
    );
    let config = |jit: bool| serde_json::json!({ "source": src, "jit": jit }).to_string();
    let native = model_from_config("vensim", &config(true)).unwrap();
    let interpreted = model_from_config("vensim", &config(false)).unwrap();
    assert!(!interpreted.is_native());
    #[cfg(not(target_arch = "wasm32"))]
    assert!(native.is_native(), "{:?}", native.jit_fallback());
    let times: Vec<f64> = (0..=40).map(|i| i as f64 * 0.25).collect();
    let a = run(&native, &[0.3, 0.7], &[f64::NAN; 2], &times).unwrap();
    let b = run(&interpreted, &[0.3, 0.7], &[f64::NAN; 2], &times).unwrap();
    assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
}

/// `GET DIRECT CONSTANTS` gives parameters, `GET DIRECT DATA` a data variable read on time; the files come
/// from the configuration (here as text, as the browser gives them).
#[test]
fn data_files_from_the_configuration() {
    let src = model_src(
        "r: a, b ~~|\nk[r] = GET DIRECT CONSTANTS('c.csv', ',', 'B1') ~~|\n\
         d := GET DIRECT DATA('d.csv', ',', 'A', 'B2') ~~|\ne = d * 2 ~~|",
    );
    let files = serde_json::json!({ "c.csv": "x,1.5,2.5\n", "d.csv": "time,v\n0,1\n1,3\n" });
    let config = serde_json::json!({ "source": src, "data_files": files }).to_string();
    let m = model_from_config("vensim", &config).unwrap();
    let spec = m.spec();
    assert_eq!(
        spec.params.iter().map(|p| (p.name.as_str(), p.default)).collect::<Vec<_>>(),
        [("k[a]", 1.5), ("k[b]", 2.5)]
    );
    assert_eq!(names(&spec.outputs), ["d", "e", "k[a]", "k[b]"]);
    let out = run(&m, &spec.defaults(), &[], &[0.0, 0.25, 2.0]).unwrap();
    assert_eq!(out, [1.0, 2.0, 1.5, 2.5, 1.5, 3.0, 1.5, 2.5, 3.0, 6.0, 1.5, 2.5]);
    let missing = serde_json::json!({ "source": src, "data_files": { "c.csv": "x,1,2\n" } }).to_string();
    let e = model_from_config("vensim", &missing).unwrap_err();
    assert_eq!(e, "model.mdl:4:6: GET DIRECT DATA: d.csv: no such file among the model's data files");
}

/// Euler sensitivities are the exact derivatives of the discrete steps: they agree with central differences
/// of the simulation, through rates, initial values, lookups and auxiliaries.
#[test]
fn euler_sensitivities_match_finite_differences() {
    let src = model_src(
        "k = 0.3 ~~|\na = 2 ~~|\ntab((0,1),(5,3),(10,2)) ~~|\n\
         s = INTEG(-k * s + tab(Time) * a, a * 3) ~~|\nq = INTEG(s * k - q, 1) ~~|\no = s * k + MAX(q, a) ~~|",
    );
    assert!(!VensimModel::compile(&src, "m.mdl", None).unwrap().has_sensitivities());
    let config = serde_json::json!({ "source": src, "sensitivities": true }).to_string();
    let m = model_from_config("vensim", &config).unwrap();
    assert!(m.has_sensitivities());
    let times = [0.0, 2.5, 10.0];
    let params = [0.3, 2.0];
    let inputs = [f64::NAN, f64::NAN];
    let n_out = m.spec().outputs.len() * times.len();
    let mut ws = m.workspace();
    let (mut out, mut sens) = (vec![0.0; n_out], vec![0.0; n_out * 2]);
    m.simulate_sensitivities(&mut ws, &params, &inputs, &times, &mut out, &mut sens).unwrap();
    assert_eq!(out, run(&m, &params, &inputs, &times).unwrap());
    for p in 0..2 {
        let h = 1e-6;
        let (mut up, mut down) = (params, params);
        up[p] += h;
        down[p] -= h;
        let (hi, lo) = (run(&m, &up, &inputs, &times).unwrap(), run(&m, &down, &inputs, &times).unwrap());
        for k in 0..n_out {
            let fd = (hi[k] - lo[k]) / (2.0 * h);
            let exact = sens[k * 2 + p];
            assert!((exact - fd).abs() <= 1e-6 * fd.abs().max(1.0), "output {k}, parameter {p}: {exact} vs {fd}");
        }
    }
    let rk4 = serde_json::json!({ "source": src, "sensitivities": true, "method": "rk4" }).to_string();
    assert!(!model_from_config("vensim", &rk4).unwrap().has_sensitivities());
}

/// Random functions draw from streams keyed by the configuration's seed and the step: the same seed gives
/// the same bits on any thread, another seed other draws.
#[test]
fn random_draws_depend_on_the_seed_only() {
    let src = model_src("x = RANDOM UNIFORM(0, 1, 0) ~~|\ns = INTEG(x, 0) ~~|");
    let with_seed = |seed: u64| {
        model_from_config("vensim", &serde_json::json!({ "source": src, "seed": seed }).to_string()).unwrap()
    };
    let times: Vec<f64> = (0..=40).map(|i| i as f64 * 0.25).collect();
    let m = with_seed(7);
    let first = run(&m, &[], &[f64::NAN], &times).unwrap();
    assert!(first.iter().all(|v| v.is_finite()));
    // Other threads draw the same (wasm32 runs tests on one thread).
    #[cfg(not(target_arch = "wasm32"))]
    {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (m, times) = (m.clone(), times.clone());
                std::thread::spawn(move || run(&m, &[], &[f64::NAN], &times).unwrap())
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), first);
        }
    }
    assert_eq!(run(&with_seed(7), &[], &[f64::NAN], &times).unwrap(), first);
    assert_ne!(run(&with_seed(8), &[], &[f64::NAN], &times).unwrap(), first);
}

/// Reality checks (`:THE CONDITION:`, `:TEST INPUT:`) belong to Vensim's reality-check runs: a simulation
/// skips them.
#[test]
fn reality_checks_are_skipped() {
    let m = compile(
        "r: a, b ~~|\nx[r] = 1, 2 ~~|\ncheck[r] :THE CONDITION: x[r] = 0 :IMPLIES: y[r] = 0 ~~|\n\
         zero[r] :TEST INPUT: x[r] = 0 ~~|\ny[r] = x[r] * 2 ~~|",
    )
    .unwrap();
    assert_eq!(names(&m.spec().outputs), ["y[a]", "y[b]", "x[a]", "x[b]"]);
    assert_eq!(at_start(&m), [2.0, 4.0, 1.0, 2.0]);
}

/// A constant that sets a structure's size (here a DELAY FIXED's length) keeps its default: a simulation
/// with another value is refused, naming it.
#[test]
fn structural_parameters_keep_their_default() {
    let m = compile("d = 2 ~~|\nx = DELAY FIXED(Time, d, 0) ~~|").unwrap();
    assert!(run(&m, &[2.0], &[], &[0.0, 5.0]).is_ok());
    match run(&m, &[3.0], &[], &[0.0]) {
        Err(SimError::BadParameter { name, reason }) => {
            assert_eq!(name, "d");
            assert!(reason.contains("the model's structure depends on it, so it must stay 2"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// A data variable without an equation takes its values from a Vensim output file the configuration names
/// (a run of another model), read on time.
#[test]
fn data_variables_from_a_vensim_output_file() {
    let src = model_src("r: a, b ~~|\nd[r] ~~|\ne[r] = d[r] * 2 ~~|");
    let files = serde_json::json!({ "run.tab": "Time\td[a]\td[b]\n0\t1\t5\n1\t3\t5\n" });
    let config = serde_json::json!({ "source": src, "data_files": files, "data_outputs": ["run.tab"] });
    let m = model_from_config("vensim", &config.to_string()).unwrap();
    assert_eq!(names(&m.spec().outputs), ["d[a]", "d[b]", "e[a]", "e[b]"]);
    assert_eq!(run(&m, &[], &[], &[0.5]).unwrap(), [2.0, 5.0, 4.0, 10.0]);
    let e = compile_err("d ~~|");
    assert_eq!(
        e,
        "model.mdl:2:1: 'd' is a data variable without an equation, and no Vensim output file among the \
         configuration's \"data_outputs\" has its values"
    );
}

/// VECTOR RANK (from 1), VECTOR SORT ORDER (0-based indices) and VECTOR REORDER along the last subscript.
#[test]
fn vector_rank_sort_order_and_reorder() {
    let m = compile(
        "c: (c1-c4) -> s ~~|\ns: (s1-s4) -> c ~~|\nv[c] = 3, -1, 3, 0 ~~|\nrank[c] = VECTOR RANK(v[c], 1) ~~|\n\
         down[c] = VECTOR RANK(v[c], 0) ~~|\norder[s] = VECTOR SORT ORDER(v[c], 1) ~~|\n\
         sorted[s] = VECTOR REORDER(v[c], order[s]) ~~|",
    )
    .unwrap();
    let out = at_start(&m);
    assert_eq!(out[..4], [3.0, 1.0, 4.0, 2.0]);
    assert_eq!(out[4..8], [1.0, 4.0, 2.0, 3.0]);
    assert_eq!(out[8..12], [1.0, 3.0, 0.0, 2.0]);
    assert_eq!(out[12..16], [-1.0, 0.0, 3.0, 3.0]);
    assert_eq!(out[16..], [3.0, -1.0, 3.0, 0.0]);
    let e = compile_err("r: a, b ~~|\nx[r] = 1 ~~|\ny = VECTOR RANK(x[r!], 1) ~~|");
    assert_eq!(
        e,
        "model.mdl:4:5: VECTOR RANK runs along its argument's last subscript, which must be a range without '!'"
    );
}

/// INVERT MATRIX over the last two subscripts, also where elimination without pivoting would meet a zero.
#[test]
fn invert_matrix_over_the_last_two_subscripts() {
    let m = compile(
        "d: a, b, c ~~|\ne: a2, b2, c2 ~~|\nm[d, e] = 3, 0, 2; 2, 0, -2; 0, 1, 1; ~~|\n\
         inv[d, e] = INVERT MATRIX(m[d, e], 3) ~~|",
    )
    .unwrap();
    let out = at_start(&m);
    let want = [0.2, 0.2, 0.0, -0.2, 0.3, 1.0, 0.2, -0.3, 0.0];
    for (got, want) in out[..9].iter().zip(want) {
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    }
    assert_eq!(
        compile_err("d: a, b ~~|\nm[d, d] = 1 ~~|\ni[d] = INVERT MATRIX(m[d, d], 3) ~~|"),
        "model.mdl:4:8: INVERT MATRIX needs a square matrix whose size is given, 2"
    );
}

/// ALLOCATE BY PRIORITY clears the market on rectangular priority profiles: requests in full when they fit,
/// nothing without supply, and in between higher priorities first, overlapping within the width.
#[test]
fn allocate_by_priority_clears_the_market() {
    let m = compile(
        "d: a, b, c ~~|\nrequest[d] = 10, 6, 3 ~~|\npriority[d] = 2, 4, 3 ~~|\nsupply = 2.25 ~~|\n\
         got[d] = ALLOCATE BY PRIORITY(request[d], priority[d], ELMCOUNT(d), 3, supply) ~~|",
    )
    .unwrap();
    let spec = m.spec();
    let mut params = spec.defaults();
    // `got` first; the constants follow.
    let allocated = |params: &[f64]| run(&m, params, &[], &[0.0]).unwrap()[..3].to_vec();
    let got = allocated(&params);
    for (got, want) in got.iter().zip([0.0, 13.0 / 6.0, 1.0 / 12.0]) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    params[6] = 100.0;
    assert_eq!(allocated(&params), [10.0, 6.0, 3.0]);
    params[6] = 0.0;
    assert_eq!(allocated(&params), [0.0, 0.0, 0.0]);
}

/// ALLOCATE AVAILABLE reads each requester's profile from the profile range's elements (type, priority,
/// width): rectangular and triangular profiles clear the market where their integrals say.
#[test]
fn allocate_available_with_priority_profiles() {
    let m = compile(
        "branch: boston, dayton, fresno ~~|\npprofile: ptype, ppriority, pwidth, pextra ~~|\n\
         demand[branch] = 500, 300, 750 ~~|\navailable = 400 ~~|\n\
         rect[branch, pprofile] = 1, 5, 2, 0; 1, 7, 4, 0; 1, 3, 4, 0; ~~|\n\
         tri[branch, pprofile] = 2, 5, 2, 0; 2, 7, 4, 0; 2, 3, 4, 0; ~~|\n\
         by rect[branch] = ALLOCATE AVAILABLE(demand[branch], rect[branch, ptype], available) ~~|\n\
         by tri[branch] = ALLOCATE AVAILABLE(demand[branch], tri[branch, ptype], available) ~~|",
    )
    .unwrap();
    let out = at_start(&m);
    let b_tri = 250.0 * math::powi(11.0f64 / 17.0, 2);
    let want = [1750.0 / 13.0, 400.0 - 1750.0 / 13.0, 0.0, b_tri, 400.0 - b_tri, 0.0];
    for (got, want) in out.iter().zip(want) {
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
}

/// ALLOCATE AVAILABLE refuses the profile types whose Vensim results it cannot reproduce, and holds a
/// constant that gives a profile's type at its default.
#[test]
fn allocate_available_refuses_unsupported_profiles() {
    let src = |kind: &str| {
        format!(
            "b: x, y ~~|\np: ptype, ppriority, pwidth ~~|\ndemand[b] = 5, 3 ~~|\n\
             prof[b, p] = {kind}, 1, 1; 1, 2, 1; ~~|\ngot[b] = ALLOCATE AVAILABLE(demand[b], prof[b, ptype], 4) ~~|"
        )
    };
    assert_eq!(
        compile_err(&src("3")),
        "model.mdl:6:40: ALLOCATE AVAILABLE's priority profile type 3 (normal) is not supported (1 rectangular, 2 \
         triangular and 4 exponential are)"
    );
    let m = compile(&src("1")).unwrap();
    assert!(run(&m, &m.spec().defaults(), &[], &[0.0]).is_ok());
    let mut params = m.spec().defaults();
    params[2] = 2.0;
    assert!(
        matches!(run(&m, &params, &[], &[0.0]), Err(SimError::BadParameter { name, .. }) if name == "prof[x,ptype]")
    );
}

/// Hostile sizes and shapes end in a run or a clear error, quickly: `elapsed` bounds each (generous for a debug
/// build on a loaded machine; a hang or a pass per link takes minutes).
#[cfg(not(target_arch = "wasm32"))]
mod hostile {
    use super::*;
    use std::time::{Duration, Instant};

    fn timed<T>(limit: u64, what: &str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = f();
        assert!(started.elapsed() < Duration::from_secs(limit), "{what} took {:?}", started.elapsed());
        result
    }

    /// A million cells (`x[r, s]` over two 1000-element ranges) compile and run.
    #[test]
    fn a_million_cells_run() {
        let src = model_src("r: (r1-r1000) ~~|\ns: (s1-s1000) ~~|\nx[r, s] = 1 ~~|\ny[r, s] = x[r, s] * 2 ~~|");
        let options = parfit_vensim::Options { jit: false, ..Default::default() };
        let m = timed(120, "a million cells", || VensimModel::compile_with(&src, "model.mdl", &options)).unwrap();
        assert_eq!((m.spec().params.len(), m.spec().outputs.len()), (1_000_000, 2_000_000));
        assert_eq!(m.spec().outputs[999_999], "y[r1000,s1000]");
        let out = run(&m, &m.spec().defaults(), &[], &[0.25]).unwrap();
        assert!(out[..1_000_000].iter().all(|&v| v == 2.0) && out[1_000_000..].iter().all(|&v| v == 1.0));
    }

    /// A range used as a value in each of its 10⁴ cells: its elements' positions are worked out once (a
    /// fuzzed input with 1011 cells took 14 s: each cell compared the range's elements against each other).
    #[test]
    fn a_range_as_a_value_over_10_4_cells() {
        let m = timed(20, "positions of 10^4 elements", || compile("d: (A1-A10000) ~~|\nv[d] = d - 20 ~~|")).unwrap();
        let out = at_start(&m);
        assert_eq!((out[0], out[9999]), (-19.0, 9980.0));
    }

    /// SUM, VMIN … over a range of thousands of elements are one operation each, not thousands of nested ones
    /// (a SUM over 1000 elements was refused as nested deeper than 500 levels); the elements all cells unroll
    /// are charged to the memory budget at an equation's first cell, so 10⁴ cells each summing 10⁴ elements
    /// are refused at once.
    #[test]
    fn vector_functions_over_large_ranges() {
        let m = compile("r: (r1-r2000) ~~|\nx[r] = 1 ~~|\ny[r] = SUM(x[r!]) + VMIN(x[r!]) + VMAX(x[r!]) ~~|").unwrap();
        let out = at_start(&m);
        assert!(out[..2000].iter().all(|&y| y == 2002.0), "{:?}", &out[..3]);
        let e = timed(20, "SUM over 10^4 in 10^4 cells", || {
            compile_err("r: (r1-r10000) ~~|\nx[r] = 1 ~~|\ny[r] = SUM(x[r!]) ~~|")
        });
        assert!(
            e.starts_with(
                "model.mdl:4:1: vector functions over 100000000 elements in all (10000 in each of the 10000 cells \
                 of 'y')"
            ),
            "{e}"
        );
        assert!(e.contains("more than the limit"), "{e}");
    }

    /// VECTOR SORT ORDER over 10⁴ elements would lower to 10¹² nodes: refused by the memory budget at once.
    #[test]
    fn a_vector_sort_order_beyond_the_memory_budget_is_refused_quickly() {
        let e = timed(20, "VECTOR SORT ORDER over 10^4", || {
            compile_err("r: (r1-r10000) ~~|\nv[r] = 1 ~~|\no[r] = VECTOR SORT ORDER(v[r], 1) ~~|")
        });
        assert!(e.starts_with("model.mdl:4:8: VECTOR SORT ORDER along 10000 elements"), "{e}");
        assert!(e.contains("more than the limit"), "{e}");
    }

    /// A macro calling itself names its own result there, an error; macros calling each other in a circle are
    /// refused at the depth limit, also when each calls the other twice (the first path stops it: no 2³²
    /// instances).
    #[test]
    fn recursive_macros_are_refused() {
        let e = compile_err("y = F(1) ~~|\n:MACRO: F(x)\nF = F(x) + 1 ~~|\n:END OF MACRO:\n");
        assert_eq!(e, "model.mdl:4:5: 'F' is not a lookup, so it cannot be called");
        for body in ["G(x) + 1", "G(x) + G(x)"] {
            let eqs = format!(
                "y = F(1) ~~|\n:MACRO: F(x)\nF = {body} ~~|\n:END OF MACRO:\n:MACRO: G(x)\nG = F(x) ~~|\n:END OF MACRO:\n"
            );
            let e = timed(20, body, || compile_err(&eqs));
            assert!(e.contains("macros call each other more than 32 levels deep"), "{body}: {e}");
        }
    }

    /// Macros that each call the next twice are 2³⁰ instances: refused by their count, quickly.
    #[test]
    fn a_macro_bomb_is_refused() {
        let mut eqs = String::from("y = M0(1) ~~|\n");
        for k in 0..30 {
            eqs.push_str(&format!(":MACRO: M{k}(x)\nM{k} = M{}(x) + M{}(x) ~~|\n:END OF MACRO:\n", k + 1, k + 1));
        }
        eqs.push_str(":MACRO: M30(x)\nM30 = x ~~|\n:END OF MACRO:\n");
        let e = timed(20, "2^30 macro instances", || compile_err(&eqs));
        assert!(e.contains("macro instances"), "{e}");
    }

    /// Ranges defined in terms of themselves, directly or in a circle, are errors; a chain of 20,000 ranges
    /// defined last to first resolves in one pass.
    #[test]
    fn ranges_defined_in_terms_of_themselves() {
        assert_eq!(compile_err("r: a, r ~~|"), "model.mdl:2:7: the subscript range 'r' contains itself");
        assert_eq!(
            compile_err("r: s, a ~~|\ns: b, t ~~|\nt: r ~~|"),
            "model.mdl:2:1: the subscript range 'r' is defined in a circle"
        );
        let n = 20_000;
        let mut eqs: String = (0..n).map(|k| format!("r{k}: r{} ~~|\n", k + 1)).collect();
        eqs.push_str(&format!("r{n}: a, b ~~|\nx[r0] = 1, 2 ~~|\n"));
        let m = timed(20, "a chain of 20,000 ranges", || compile(&eqs)).unwrap();
        assert_eq!(names(&m.spec().outputs), ["x[a]", "x[b]"]);
    }
}

/// A subscripted model whose rates all read every stock (through `SUM`), with a lookup, `IF THEN ELSE`,
/// `MODULO`, `SMOOTH` and `INITIAL`: its exact Euler sensitivities at the save times, natively or interpreted.
fn dense_model_sensitivities(jit: bool) -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let src = model_src(
        "r: a, b, c ~~|\nk = 0.3 ~~|\ng[r] = 0.1, 0.2, 0.15 ~~|\ntab((0,1),(5,3),(10,2)) ~~|\n\
         w = IF THEN ELSE(MODULO(Time, 2) < 1, 1, 0.5) ~~|\n\
         s[r] = INTEG(g[r] * s[r] - k * s[r] * SUM(s[r!]) / 10 + tab(Time) * w, INITIAL(k * 10)) ~~|\n\
         sm = SMOOTH(SUM(s[r!]), 3) ~~|\no = sm + MAX(s[a], s[b]) ~~|",
    );
    let config = serde_json::json!({ "source": src, "sensitivities": true, "jit": jit }).to_string();
    let m = model_from_config("vensim", &config).unwrap();
    let spec = m.spec();
    let params = spec.defaults();
    let inputs = vec![f64::NAN; spec.inputs.len()];
    let times = [0.0, 2.5, 7.25, 10.0];
    let n_out = spec.output_len(times.len());
    let mut ws = m.workspace();
    let (mut out, mut sens) = (vec![0.0; n_out], vec![0.0; n_out * params.len()]);
    m.simulate_sensitivities(&mut ws, &params, &inputs, &times, &mut out, &mut sens).unwrap();
    assert_eq!(out, run(&m, &params, &inputs, &times).unwrap());
    (spec.params.iter().map(|p| p.name.clone()).collect(), out, sens)
}

/// The tangent code gives the sensitivities the Jacobian-based code (`J s + ∂F/∂p`, which it replaced) gave
/// on the same model, to rounding — recorded from commit 0ab1aef — and native and interpreted tangent code
/// agree bit for bit.
#[test]
fn tangent_sensitivities_are_the_jacobian_codes_and_native_equals_interpreted() {
    let (params, out, sens) = dense_model_sensitivities(true);
    assert_eq!(params, ["k", "g[a]", "g[b]", "g[c]"]);
    // Per time: the six outputs the recording had, then the four constants (outputs since), each of whose
    // derivative is 1 with respect to itself and 0 otherwise.
    let (np, recorded, per_time) = (params.len(), 6, 10);
    assert_eq!(sens.len(), 4 * per_time * np);
    for time in 0..4 {
        let row = &sens[time * per_time * np..(time + 1) * per_time * np];
        let want = &JACOBIAN_CODE[time * recorded * np..(time + 1) * recorded * np];
        for (k, (&got, &want)) in row.iter().zip(want).enumerate() {
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "time {time}, entry {k}: {got} vs {want}");
        }
        for (c, constant) in row[recorded * np..].chunks(np).enumerate() {
            let unit: Vec<f64> = (0..np).map(|p| if p == c { 1.0 } else { 0.0 }).collect();
            assert_eq!(constant, unit, "time {time}: the derivatives of constant {}", params[c]);
        }
    }
    let (_, out_interpreted, sens_interpreted) = dense_model_sensitivities(false);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!((bits(&out), bits(&sens)), (bits(&out_interpreted), bits(&sens_interpreted)));
}

/// [`dense_model_sensitivities`] by the Jacobian-based code of commit 0ab1aef (output × parameter, by time).
#[rustfmt::skip]
const JACOBIAN_CODE: [f64; 96] = [
    10.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 30.0, 0.0, 0.0, 0.0,
    40.0, 0.0, 0.0, 0.0, -2.9753114010448165, 6.019207345172022, -0.6692663667712577, -0.6237612088800939,
    -3.2920600529942705, -0.7065208420640405, 7.2875675690417125, -0.7577206856134276, -3.1342131935572253,
    -0.6409377635956567, -0.7375220807928301, 6.626392939311271, 0.0, 0.0, 0.0, 0.0, 16.622378198693514,
    1.726644065973526, 1.9909303874765973, 1.8542009149492578, 13.330318145699245, 1.0201232239094855,
    9.27849795651831, 1.09648022933583, -8.912277025335813, 9.776154401333532, -2.5595593393225156,
    -2.08286247515757, -13.465265298403072, -2.587227005350151, 13.8109009232729, -3.1354774706686084,
    -10.898265785361295, -2.091370811124882, -3.1141674129610237, 11.611417799216923, 0.0, 0.0, 0.0, 0.0,
    -18.9912864975816, 4.503406913372346, 6.6602905300954856, 5.454498445811881, -32.45655179598467,
    1.9161799080221948, 20.471191453368384, 2.3190209751432724, -8.190334685098383, 10.131716973103378,
    -2.8844099126083997, -2.2484489308039355, -13.712114900553992, -2.941425778637238, 15.079150607503735,
    -3.688896255844774, -10.502485728554664, -2.2685293919038543, -3.6490571586413103, 12.350620309997117, 0.0,
    0.0, 0.0, 0.0, -27.61007033386532, 4.808274923759031, 7.703984679486815, 6.037521825815143,
    -41.32218523441931, 1.866849145121793, 22.78313528699055, 2.3486255699703693,
];
