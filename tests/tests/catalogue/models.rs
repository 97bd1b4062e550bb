//! Model texts and plugins: DiffSL (`.ds`) and Monte Carlo (`.mc`) texts, the Vensim reader, the actuarial
//! tables, and plugin options. Each case once crashed, hung or misled; now it runs correctly or is refused
//! with exit 2 and the place of the problem.

use std::time::{Duration, Instant};

use parfit_tests::{Run, parfit_in, scratch};

use super::{nothing_written, refused};

/// Write `files` (name, text) into a fresh scratch directory and run `parfit args…` there.
fn run_with(name: &str, files: &[(&str, &str)], args: &[&str]) -> (Run, std::path::PathBuf) {
    let dir = scratch(&format!("catalogue-models-{name}"));
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("scratch file");
    }
    (parfit_in(&dir, args), dir)
}

/// A Monte Carlo configuration running `model.mc` over 10 paths and 3 periods.
const MC_RUN: &str = "[model]\nkind = \"montecarlo\"\nsource = \"model.mc\"\n\n[montecarlo]\npaths = 10\nperiods = 3\n\
                      statistics = [\"mean\", \"sd\"]\n";

/// The value printed for `column` at the row whose first field is `time`, from `parfit run`'s CSV.
fn value_at(stdout: &str, time: &str, column: &str) -> f64 {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let c = header.iter().position(|h| *h == column).unwrap_or_else(|| panic!("no column {column}:\n{stdout}"));
    let row = lines.find(|l| l.split(',').next() == Some(time)).unwrap_or_else(|| panic!("no t = {time}:\n{stdout}"));
    row.split(',').nth(c).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no value in {row}"))
}

#[test]
fn parentheses_nested_100000_deep_in_a_ds_model_are_refused_at_their_place() {
    let text = format!("u_i {{ x = 1 }}\nF_i {{ {}x{} }}\n", "(".repeat(100_000), ")".repeat(100_000));
    let (run, _) = run_with("parens", &[("deep.ds", &text)], &["run", "deep.ds", "--times", "0:1:2"]);
    refused(&run, 2, &["deep.ds:2:", "nesting deeper than 100 levels"]);
}

#[test]
fn unary_minus_nested_100000_deep_in_an_mc_model_is_refused_at_its_place() {
    let text = format!("u_i {{ w = 1 }}\nnext_i {{ {}w }}\n", "-".repeat(100_000));
    let (run, dir) = run_with("negs", &[("model.mc", &text), ("run.toml", MC_RUN)], &["run", "run.toml"]);
    refused(&run, 2, &["model.mc:2:", "nesting deeper than 100 levels"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_sum_of_a_million_terms_compiles_and_adds_up() {
    // F = 10⁶ × 0.5, so x(t) = 1 + 500000 t.
    let text = format!("u_i {{ x = 1 }}\nF_i {{ {} }}\n", vec!["0.5"; 1_000_000].join(" + "));
    let (run, _) = run_with("sum", &[("sum.ds", &text)], &["run", "sum.ds", "--times", "0:1:3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(value_at(&run.stdout, "1.0", "x"), 500_001.0);
}

#[test]
fn a_diffsl_range_of_four_billion_elements_is_refused_at_the_range() {
    let text = "u_i {\n  (0:4000000000): x = 1 }\nF_i { -x_i }\n";
    let (run, _) = run_with("range", &[("big.ds", text)], &["run", "big.ds", "--times", "0:1:2"]);
    refused(&run, 2, &["big.ds:2:6:", "index 4000000000 is out of range", "at most 10000000 elements"]);
}

#[test]
fn a_model_too_large_for_the_memory_budget_is_refused_before_compiling() {
    let v = |name: &str| format!("{name}_i {{ (0:10000000): 1 }}\n");
    let text = format!("{}{}{}{}u_i {{ x = 1 }}\nF_i {{ -x }}\n", v("a"), v("b"), v("c"), v("d"));
    let (run, _) = run_with("budget", &[("huge.ds", &text)], &["run", "huge.ds", "--times", "0:1:2"]);
    refused(&run, 2, &["huge.ds:1:1:", "a model of 40000002 tensor elements would need about", "8.0 GiB"]);
}

#[test]
fn a_1e999_literal_is_refused_at_its_place() {
    let (run, _) =
        run_with("inf", &[("inf.ds", "u_i { x = 1 }\nF_i { -x * 1e999 }\n")], &["run", "inf.ds", "--times", "0:1:2"]);
    refused(&run, 2, &["inf.ds:2:12:", "number 1e999 is too large"]);
    let (run, _) = run_with(
        "inf-mc",
        &[("model.mc", "u_i { w = 1e999 }\nnext_i { w }\n"), ("run.toml", MC_RUN)],
        &["run", "run.toml"],
    );
    refused(&run, 2, &["model.mc:1:11:", "number 1e999 is too large"]);
}

#[test]
fn a_jit_compiled_model_of_30000_states_takes_seconds_not_minutes() {
    // Compile time was quadratic in the model: 10⁴ states took 11 s, 10⁵ over a minute; now ~0.1 s per 10⁴.
    let start = Instant::now();
    let (run, _) = run_with(
        "jit",
        &[("wide.ds", "u_i { (0:30000): x = 1 }\nF_i { -x_i }\n")],
        &["run", "wide.ds", "--times", "0:1:2"],
    );
    let took = start.elapsed();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("interpreter"), "{}", run.stderr);
    assert!((value_at(&run.stdout, "1.0", "x_29999") - (-1f64).exp()).abs() < 1e-5, "{}", &run.stdout[..200]);
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn a_model_too_large_for_the_jit_runs_in_the_interpreter_and_says_so() {
    let text = format!("u_i {{ x = 1 }}\nF_i {{ {} }}\n", vec!["x"; 300_000].join(" - "));
    let (run, _) = run_with("interp", &[("long.ds", &text)], &["run", "long.ds", "--times", "0:1:2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("note: long.ds: the model has") && run.stderr.contains("runs in the interpreter"));
}

#[test]
fn an_mc_model_without_random_draws_runs_deterministically() {
    // w' = 1.5 w + 1 from w = 2: 2 → 4 → 7 → 11.5 on every path.
    let model = "in = [r]\nr { 0.5 }\nu_i { w = 2 }\nnext_i { (1 + r) * w + 1 }\n";
    let (run, _) = run_with("nodraws", &[("model.mc", model), ("run.toml", MC_RUN)], &["run", "run.toml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = run.stdout.lines().find(|l| l.trim_start().starts_with("w ")).unwrap_or_default();
    let values: Vec<f64> = row.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    assert_eq!(values, [11.5, 0.0], "{}", run.stdout);
}

/// A fit configuration for `model.ds` with `options` in `[model.options]`.
fn fit_with_options(options: &str) -> String {
    format!(
        "[model]\nkind = \"diffsl\"\nsource = \"model.ds\"\n\n[model.options]\n{options}\n\n[data]\npath = \
         \"data.csv\"\ntime = \"t\"\noutputs = [\"x\"]\n\n[parameters]\nk = {{ start = 1.0, lower = 0.1, upper = \
         2.0 }}\n"
    )
}

#[test]
fn bad_model_options_are_blamed_on_the_configuration_with_the_value() {
    let model = "in = [k]\nk { 1 }\nu_i { x = 1 }\nF_i { -k * x }\n";
    let data = "t,x\n0,1\n1,0.37\n2,0.14\n";
    for (options, needle) in [
        ("rtol = -1", "invalid diffsl solver option rtol = -1.0: must be a finite number ≥ 0"),
        ("solver = \"x\"", "unknown variant `x`, expected one of `dopri5`, `bdf`, `auto`"),
        ("max_steps = 0", "max_steps = 0: must be at least 1"),
        ("h0 = -1.0", "h0 = -1.0: must be a finite number > 0"),
    ] {
        let config = fit_with_options(options);
        let files = [("model.ds", model), ("data.csv", data), ("fit.toml", config.as_str())];
        let (run, dir) = run_with("options", &files, &["fit", "fit.toml", "--output", "out"]);
        refused(&run, 2, &["fit.toml: ", needle]);
        assert!(!run.stderr.contains("model.ds"), "{options}: blamed on the model text:\n{}", run.stderr);
        nothing_written(&dir.join("out"));
    }
}
