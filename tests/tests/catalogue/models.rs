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
fn the_memory_budget_from_the_environment_reaches_the_plugin_and_a_bad_one_is_refused() {
    // 10^5 elements fit in the default budget; with a 1 MB budget the ODE plugin's own check refuses them.
    let text = "a_i { (0:100000): 1 }\nu_i { x = 1 }\nF_i { -x }\n";
    let dir = scratch("catalogue-models-budget-env");
    std::fs::write(dir.join("m.ds"), text).expect("scratch file");
    let with = |limit: &str| -> Run {
        std::process::Command::new(parfit_tests::parfit_bin())
            .current_dir(&dir)
            .env_remove("PARFIT_PLUGIN_PATH")
            .env("PARFIT_MEMORY_LIMIT", limit)
            .args(["run", "m.ds", "--times", "0:1:2"])
            .output()
            .expect("parfit runs")
            .into()
    };
    assert_eq!(parfit_in(&dir, &["run", "m.ds", "--times", "0:1:2"]).code, 0);
    refused(&with("1000000"), 2, &["m.ds:1:1:", "more than the limit of 976.6 KiB"]);
    refused(&with("lots"), 2, &["PARFIT_MEMORY_LIMIT must be a whole number of bytes", "\"lots\""]);
    refused(&with("0"), 2, &["PARFIT_MEMORY_LIMIT", "(got \"0\")"]);
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
    let model = "in_i { r = 0.5 }\nu_i { w = 2 }\nnext_i { (1 + r) * w + 1 }\n";
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
    let model = "in_i { k = 1 }\nu_i { x = 1 }\nF_i { -k * x }\n";
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
        refused(&run, 2, &["fit.toml:5:1: ", needle]);
        assert!(!run.stderr.contains("model.ds"), "{options}: blamed on the model text:\n{}", run.stderr);
        nothing_written(&dir.join("out"));
    }
}

/// The counties example's Vensim model with `from` replaced by `to`.
fn aging_chain_with(from: &str, to: &str) -> String {
    let text =
        std::fs::read_to_string(parfit_tests::root().join("examples/counties/Aging_Chain.mdl")).expect("example");
    assert!(text.contains(from), "the example has no {from:?}");
    text.replace(from, to)
}

#[test]
fn a_vensim_final_time_before_the_initial_time_is_refused_at_its_place() {
    let model = aging_chain_with("FINAL TIME  = 2010", "FINAL TIME  = 1990");
    let (run, _) = run_with("vensim-final", &[("m.mdl", &model)], &["run", "m.mdl", "--times", "2000:2001:2"]);
    refused(&run, 2, &["m.mdl:197:1:", "FINAL TIME (1990) is before INITIAL TIME (2000)"]);
}

#[test]
fn a_vensim_time_step_that_is_not_positive_is_refused_at_its_place() {
    for step in ["0", "-0.125"] {
        let model = aging_chain_with("TIME STEP  = 0.125", &format!("TIME STEP  = {step}"));
        let (run, _) = run_with("vensim-step", &[("m.mdl", &model)], &["run", "m.mdl", "--times", "2000:2001:2"]);
        refused(
            &run,
            2,
            &["m.mdl:213:1:", &format!("TIME STEP must be positive, found {}", step.trim_start_matches('+'))],
        );
    }
}

#[test]
fn a_vensim_run_whose_saved_table_would_exceed_memory_is_refused() {
    let model = aging_chain_with("TIME STEP  = 0.125", "TIME STEP  = 1e-12");
    let (run, _) = run_with("vensim-steps", &[("m.mdl", &model)], &["run", "m.mdl"]);
    refused(&run, 2, &["m.mdl:197:1:", "saving 36 outputs at 10000000000001 times", "more than the limit"]);
}

#[test]
fn a_vensim_1e999_literal_is_refused_at_its_place() {
    let model = aging_chain_with("INITIAL TIME  = 2000", "INITIAL TIME  = 1e999");
    let (run, _) = run_with("vensim-inf", &[("m.mdl", &model)], &["run", "m.mdl", "--times", "2000:2001:2"]);
    refused(&run, 2, &["m.mdl:202:17:", "number 1e999 is too large"]);
}

#[test]
fn vensim_expressions_nested_100000_deep_are_refused_and_long_sums_run() {
    let deep = format!("births=\n\t{}0{}", "(".repeat(100_000), ")".repeat(100_000));
    let model = aging_chain_with("births=\n\t0", &deep);
    let (run, _) = run_with("vensim-deep", &[("m.mdl", &model)], &["run", "m.mdl", "--times", "2000:2001:2"]);
    refused(&run, 2, &["m.mdl:43:", "expression nesting deeper than 100 levels"]);
    // A sum of 10⁵ zeros in place of the 0 births: the run is unchanged.
    let model = aging_chain_with("births=\n\t0", &format!("births=\n\t{}", vec!["0"; 100_000].join(" + ")));
    let (long, _) = run_with("vensim-long", &[("m.mdl", &model)], &["run", "m.mdl", "--times", "2000:2001:2"]);
    let (plain, _) =
        run_with("vensim-plain", &[("m.mdl", &aging_chain_with("", ""))], &["run", "m.mdl", "--times", "2000:2001:2"]);
    assert_eq!(long.code, 0, "{}", long.stderr);
    // The sum is an auxiliary now (a literal was a parameter), so compare the stocks.
    for stock in ["dec 1", "dec 9"] {
        assert_eq!(value_at(&long.stdout, "2001.0", stock), value_at(&plain.stdout, "2001.0", stock), "{stock}");
    }
    assert_eq!(value_at(&long.stdout, "2001.0", "births"), 0.0);
}

/// A Vensim model of constants alone prints a row per time with every constant, as Vensim's `.tab` has them
/// (it once printed the `time` header alone, with exit 0); a model of control values alone prints the times.
#[test]
fn a_vensim_model_of_constants_prints_rows() {
    let control = "INITIAL TIME = 0 ~~|\nFINAL TIME = 1 ~~|\nTIME STEP = 0.5 ~~|\n";
    let model = format!("a = 1.5 ~~|\nr: x, y ~~|\nb[r] = 2, 3 ~~|\n{control}");
    let (run, _) = run_with("vensim-constants", &[("m.mdl", &model)], &["run", "m.mdl", "--times", "0:1:3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "time,a,b[x],b[y]\n0.0,1.5,2.0,3.0\n0.5,1.5,2.0,3.0\n1.0,1.5,2.0,3.0\n");
    let (run, _) = run_with("vensim-control", &[("m.mdl", control)], &["run", "m.mdl", "--times", "0:1:3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "time\n0.0\n0.5\n1.0\n");
}

/// A BasicTerm projection of the model points `points` (rows after the header) on the example's tables, with
/// `constants` in `[projection.constants]`.
fn basic_term(name: &str, points: &str, constants: &str) -> (Run, std::path::PathBuf) {
    let examples = parfit_tests::root().join("examples");
    let table = |path: &str| examples.join(path).display().to_string().replace('\\', "/");
    let config = format!(
        "[projection]\nkind = \"basicterm\"\nmodel_points = \"mp.csv\"\n\n[projection.tables]\npremium = \"{}\"\n\
         mortality = \"{}\"\ndiscount = \"{}\"\n\n[projection.constants]\n{constants}\n",
        table("basicterm/basicterm_premium_table.csv"),
        table("savings/mort_table.csv"),
        table("savings/disc_rate_ann.csv"),
    );
    let points = format!("policy_id,age_at_entry,policy_term,policy_count,sum_assured,duration_mth\n{points}");
    run_with(name, &[("mp.csv", &points), ("run.toml", &config)], &["run", "run.toml", "--output", "out"])
}

#[test]
fn an_actuarial_duration_beyond_200_years_is_refused_at_its_cell() {
    let (run, dir) = basic_term("act-duration", "1,47,10,86,622000,1\n2,29,20,56,752000,9223372036854775807\n", "");
    refused(&run, 2, &["mp.csv:3:6: column 'duration_mth': 9223372036854775807 is not between -2400 and 2400"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_negative_lapse_floor_is_refused_with_its_range() {
    let (run, dir) = basic_term("act-lapse", "1,47,10,86,622000,1\n", "lapse_floor = -5");
    refused(&run, 2, &["run.toml: constants: lapse_floor = -5: must be between 0 and 1"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn duplicate_policy_ids_are_refused_naming_both_rows() {
    let (run, dir) = basic_term("act-ids", "1,47,10,86,622000,1\n2,29,20,56,752000,3\n1,30,10,5,1000,0\n", "");
    refused(&run, 2, &["mp.csv:4:1: column 'policy_id': the policy id '1' is also row 1 (line 2)"]);
    nothing_written(&dir.join("out"));
}
