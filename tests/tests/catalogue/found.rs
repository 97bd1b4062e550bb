//! Cases found by mutating the example inputs and by hand after the listed cases were fixed (the red-team pass
//! of issue 16): each hung, misled or gave no place; now it runs or is refused with exit 2 and where.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use parfit_tests::{Run, parfit_bin, parfit_in, root, scratch};

use super::{nothing_written, refused};

/// A scratch directory holding the files of `examples/{example}`, with `edits` applied: (file, text to find,
/// replacement).
fn example(name: &str, example: &str, edits: &[(&str, &str, &str)]) -> PathBuf {
    let dir = scratch(&format!("catalogue-found-{name}"));
    for entry in std::fs::read_dir(root().join("examples").join(example)).expect("example directory") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    for (file, find, replace) in edits {
        let text = std::fs::read_to_string(dir.join(file)).expect("example file");
        assert!(text.contains(find), "{file} has no {find:?}");
        std::fs::write(dir.join(file), text.replacen(find, replace, 1)).expect("edited file");
    }
    dir
}

/// The line (1-based) of `file` in `dir` that contains `needle`.
fn line_of(dir: &Path, file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(dir.join(file)).expect("file");
    1 + text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{file} has no {needle:?}"))
}

#[test]
fn an_output_range_of_100000_elements_compiles_in_seconds() {
    // Checking output names against every earlier one took 56 s (release) at 10^5 elements, 0.4 s at 10^4.
    let dir = scratch("catalogue-found-wide-outputs");
    let text = "u_i { x = 1 }\nF_i { -x }\nz_i { (0:100000): x }\nout_i { z_i }\n";
    std::fs::write(dir.join("wide.ds"), text).unwrap();
    let started = Instant::now();
    let run = parfit_in(&dir, &["run", "wide.ds", "--times", "0:1:2", "--format", "json"]);
    let took = started.elapsed();
    run.assert_ok();
    assert_eq!(run.json()["outputs"]["z_99999"][1].as_f64(), run.json()["outputs"]["z_0"][1].as_f64());
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn a_times_span_that_overflows_is_refused_naming_the_flag() {
    let dir = example("times-span", "lotka_volterra", &[]);
    let run = parfit_in(&dir, &["run", "lotka_volterra.ds", "--times", "-1e308:1e308:3"]);
    refused(&run, 2, &["--times: times '-1e308:1e308:3'", "the span stop − start overflows", "-1e308"]);
}

#[test]
fn times_by_outputs_beyond_the_memory_budget_are_refused_before_simulating() {
    let dir = scratch("catalogue-found-times-outputs");
    std::fs::write(dir.join("ten.ds"), "u_i { x = 1 }\nF_i { -x }\nz_i { (0:10): x }\nout_i { z_i }\n").unwrap();
    // 50,000 times pass alone (16 bytes each); × 10 outputs they need 4 MB of a 1 MB budget.
    let run: Run = Command::new(parfit_bin())
        .current_dir(&dir)
        .env("PARFIT_MEMORY_LIMIT", "1000000")
        .args(["run", "ten.ds", "--times", "0:1:50000", "--output", "out"])
        .output()
        .expect("parfit runs")
        .into();
    refused(&run, 2, &["--times 0:1:50000: 50000 times × 10 outputs", "would need about"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn an_observation_of_1e308_is_refused_at_its_cell() {
    // Its squared residual overflowed: every candidate cost +inf, and 40 s later the fit said no candidate could
    // be simulated.
    let row = "0.20040080160320642,8.36420426259907,5.9913630626577925";
    let dir = example("huge-observation", "lotka_volterra", &[("data.csv", row, "0.20040080160320642,1e308,5.99")]);
    let run = parfit_in(&dir, &["fit", "tutorial.toml", "--output", "out"]);
    refused(&run, 2, &["data.csv:3: column 'prey': '1e308' is beyond ±1e150"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn an_observation_of_1e308_in_a_cases_table_is_refused_at_its_cell() {
    let dir = example("huge-case-observation", "counties", &[]);
    let csv = std::fs::read_to_string(dir.join("Males_by_decade_and_county.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().take(6).map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[4].split(',').collect();
    cells[12] = "-1e308"; // 2010 dec_2 of the second county
    lines[4] = cells.join(",");
    std::fs::write(dir.join("Males_by_decade_and_county.csv"), lines.join("\n") + "\n").unwrap();
    let run = parfit_in(&dir, &["fit-many", "fit.toml", "--output", "out"]);
    refused(&run, 2, &["Males_by_decade_and_county.csv:5: column '2010 dec_2': '-1e308' is beyond ±1e150"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_start_outside_its_bounds_is_placed_at_the_parameter() {
    let dir = example(
        "start-outside",
        "lotka_volterra",
        &[("tutorial.toml", "beta = { start = 0.3", "beta = { start = 1e12")],
    );
    let run = parfit_in(&dir, &["fit", "tutorial.toml", "--output", "out"]);
    let line = line_of(&dir, "tutorial.toml", "beta = {");
    refused(
        &run,
        2,
        &[&format!("tutorial.toml:{line}:8: parameter 'beta': start 1000000000000 lies outside its bounds")],
    );
    // A --set start is blamed on the flag.
    let run = parfit_in(&dir, &["fit", "fit.toml", "--set", "alpha=7", "--output", "out"]);
    refused(&run, 2, &["--set alpha: parameter 'alpha': start 7 lies outside its bounds [0, 5]"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn an_unknown_case_input_is_placed_at_its_key() {
    let dir =
        example("case-input", "counties", &[("fit.toml", "\"dec 9\" = \"2000 dec_9\"", "\"dec 10\" = \"2000 dec_9\"")]);
    let run = parfit_in(&dir, &["fit-many", "fit.toml", "--output", "out"]);
    let line = line_of(&dir, "fit.toml", "\"dec 10\" =");
    refused(&run, 2, &[&format!("fit.toml:{line}:12: [cases.inputs]: the model has no input named 'dec 10'")]);
    nothing_written(&dir.join("out"));
}

#[test]
fn monte_carlo_statistics_and_seeds_are_refused_at_their_keys() {
    let dir = example("mc-statistic", "wealth", &[("run.toml", "\"q95\"", "\"q9x\"")]);
    let run = parfit_in(&dir, &["run", "run.toml", "--output", "out"]);
    let line = line_of(&dir, "run.toml", "statistics =");
    refused(&run, 2, &[&format!("run.toml:{line}:14: [montecarlo] statistics unknown statistic 'q9x'")]);
    let dir = example("mc-seed", "wealth", &[("run.toml", "seed = 1", "seed = 9223372036854775807")]);
    let run = parfit_in(&dir, &["run", "run.toml", "--output", "out"]);
    let line = line_of(&dir, "run.toml", "seed =");
    refused(&run, 2, &[&format!("run.toml:{line}:8: the seed must be at most 2^53"), "9223372036854775807"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_negative_initial_account_value_is_refused_at_its_cell() {
    // It gave NaN for every present value of the portfolio, with exit 0.
    let first = "1,A,20,M,10,100,500000,0,500000,0,0";
    let dir = example(
        "negative-av",
        "savings",
        &[("model_point_samples.csv", first, "1,A,20,M,10,100,500000,0,500000,-1e308,0")],
    );
    let run = parfit_in(&dir, &["run", "samples.toml", "--output", "out"]);
    refused(&run, 2, &["model_point_samples.csv:2:10: column 'av_pp_init': -1e308 is not between 0 and 1e100"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_spot_rate_of_minus_one_is_refused_at_its_cell() {
    // (1 + rate)^(-t) has no value: every present value was NaN, with exit 0.
    let dir = example("spot-rate", "savings", &[("disc_rate_ann.csv", "3,0.00788", "3,-1")]);
    let run = parfit_in(&dir, &["run", "samples.toml", "--output", "out"]);
    refused(&run, 2, &["disc_rate_ann.csv:5:2: column 'zero_spot': -1 is not > -1"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_model_option_of_the_wrong_type_is_placed_at_the_options_table() {
    // serde's message names neither the key nor the line: the [model.options] table is the place.
    let dir = example("option-type", "lotka_volterra", &[("tutorial.toml", "atol = 1e-8", "atol = true")]);
    let run = parfit_in(&dir, &["fit", "tutorial.toml", "--output", "out"]);
    let line = line_of(&dir, "tutorial.toml", "[model.options]");
    refused(
        &run,
        2,
        &[&format!("tutorial.toml:{line}:1: invalid diffsl solver options: invalid type: boolean `true`")],
    );
    nothing_written(&dir.join("out"));
}

#[test]
fn nested_sampling_stopped_by_max_calls_says_it_did_not_converge() {
    // 20 live points and max_calls = 1: no iteration ran, and the table said "completed" beside ln Z.
    let edits = [
        ("sample.toml", "live_points = 100", "live_points = 20\nmax_calls = 1"),
        ("sample.toml", "max_batches = 4", "max_batches = 0"),
    ];
    let dir = example("max-calls", "lotka_volterra", &edits);
    let run = parfit_in(&dir, &["sample", "sample.toml", "--output", "out"]);
    run.assert_ok();
    assert!(run.stdout.contains("(completed: max_calls reached, not converged)"), "{}", run.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["nested"]["stop"], "max_calls");
}

#[test]
fn times_a_model_refuses_are_bad_input_naming_the_model_file() {
    // They were "simulation failed" with exit 1, as if the run had gone wrong.
    let dir = example("off-grid", "counties", &[]);
    let run = parfit_in(&dir, &["run", "Aging_Chain.mdl", "--times", "1999:2010:3"]);
    refused(&run, 2, &["Aging_Chain.mdl: bad input: time 1999 is not on the model's step grid"]);
    // A Monte Carlo model has no times: it runs as paths from a [montecarlo] configuration, which is named.
    let dir = example("mc-file", "pi", &[]);
    let run = parfit_in(&dir, &["run", "pi.mc", "--times", "0:1:2"]);
    refused(
        &run,
        2,
        &["pi.mc: model kind 'montecarlo' is a Monte Carlo model: it runs as paths, from a configuration \
                        with a [montecarlo] section (paths, periods)"],
    );
}

#[test]
fn a_projection_audit_point_and_scenarios_are_refused_at_their_keys() {
    let dir = example("audit-point", "savings", &[("samples.toml", "audit_point = 1", "audit_point = 99")]);
    let run = parfit_in(&dir, &["run", "samples.toml", "--output", "out"]);
    let line = line_of(&dir, "samples.toml", "audit_point =");
    refused(&run, 2, &[&format!("samples.toml:{line}:15: [projection] audit_point: no point has id '99'")]);
    nothing_written(&dir.join("out"));
    let dir =
        example("scenario-list", "savings", &[("samples.toml", "monthly = true", "monthly = true\nscenarios = [0]")]);
    let run = parfit_in(&dir, &["run", "samples.toml", "--output", "out"]);
    let line = line_of(&dir, "samples.toml", "scenarios = [0]");
    refused(&run, 2, &[&format!("samples.toml:{line}:13: [projection] scenarios: 0 is not in the scenario table")]);
    nothing_written(&dir.join("out"));
}

#[test]
fn an_empty_data_file_is_called_empty() {
    // It was "no column named 't' (the header has: )".
    let dir = example("empty-data", "lotka_volterra", &[]);
    std::fs::write(dir.join("data.csv"), "").unwrap();
    let run = parfit_in(&dir, &["fit", "tutorial.toml", "--output", "out"]);
    refused(&run, 2, &["data.csv: the file is empty (a header row naming 't' is needed)"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn sampling_without_finite_bounds_or_sigma_is_refused_at_the_key() {
    let dir = example("prior-bounds", "lotka_volterra", &[("sample.toml", "upper = 0.11", "upper = inf")]);
    let run = parfit_in(&dir, &["sample", "sample.toml", "--output", "out"]);
    let line = line_of(&dir, "sample.toml", "delta = {");
    refused(
        &run,
        2,
        &[&format!("sample.toml:{line}:9: [parameters] delta: the default uniform prior needs finite bounds")],
    );
    let dir = example("no-sigma", "lotka_volterra", &[("sample.toml", "sigma = 0.3 ", "# no sigma ")]);
    let run = parfit_in(&dir, &["sample", "sample.toml", "--output", "out"]);
    let line = line_of(&dir, "sample.toml", "[sample]");
    refused(&run, 2, &[&format!("sample.toml:{line}:1: [sample] needs sigma")]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_case_observed_at_a_nan_time_is_refused_at_the_observe_table() {
    let dir = example("observe-nan", "counties", &[("fit.toml", "time = 2010.0", "time = nan")]);
    let run = parfit_in(&dir, &["fit-many", "fit.toml", "--output", "out"]);
    let line = line_of(&dir, "fit.toml", "[[cases.observe]]");
    refused(&run, 2, &[&format!("fit.toml:{line}:"), "[[cases.observe]] time must be a finite number (got NaN)"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn cases_that_cannot_be_simulated_say_why() {
    // An observation before the model's INITIAL TIME: every case failed with "every candidate failed to evaluate".
    let dir = example("observe-early", "counties", &[("fit.toml", "time = 2010.0", "time = 1999.0")]);
    let csv = std::fs::read_to_string(dir.join("Males_by_decade_and_county.csv")).unwrap();
    let head: Vec<&str> = csv.lines().take(5).collect();
    std::fs::write(dir.join("Males_by_decade_and_county.csv"), head.join("\n") + "\n").unwrap();
    let run = parfit_in(&dir, &["fit-many", "fit.toml", "--output", "out"]);
    refused(
        &run,
        1,
        &["every one of the 2 cases failed", "at the start: bad input: time 1999 is not on the model's step grid"],
    );
}

#[test]
fn an_empty_list_of_run_times_or_sweep_values_is_refused_at_its_key() {
    // `[run] times = []` printed a header and exited 0; an empty sweep ran no point at all.
    let run_times = "[fit]\ncost = \"sse\"";
    let dir = example(
        "empty-times",
        "lotka_volterra",
        &[("tutorial.toml", run_times, "[run]\ntimes = []\n\n[fit]\ncost = \"sse\"")],
    );
    let run = parfit_in(&dir, &["run", "tutorial.toml"]);
    let line = line_of(&dir, "tutorial.toml", "times = []");
    refused(&run, 2, &[&format!("tutorial.toml:{line}:9: [run] times: the list is empty")]);
    let dir = example("empty-sweep", "wealth", &[("sweep.toml", "s = [0.2, 0.3, 0.4]", "s = []")]);
    let run = parfit_in(&dir, &["run", "sweep.toml", "--output", "out"]);
    let line = line_of(&dir, "sweep.toml", "s = []");
    refused(&run, 2, &[&format!("sweep.toml:{line}:5: [sweep] s the list is empty")]);
    nothing_written(&dir.join("out"));
}

#[test]
fn an_empty_output_directory_is_bad_input() {
    // It was exit 1, ": cannot open to lock it".
    let dir = example("empty-output", "lotka_volterra", &[("tutorial.toml", "dir = \"results\"", "dir = \"\"")]);
    let run = parfit_in(&dir, &["fit", "tutorial.toml"]);
    refused(&run, 2, &["the output directory is an empty path"]);
}

#[test]
fn a_damaged_checkpoint_is_refused_at_its_line_on_resume() {
    // A record of case 99999999999 was counted as done ("5 from the checkpoint" of 3 cases); one with no fitted
    // values failed writing results.csv with a CSV error (exit 1).
    let dir = example("checkpoint", "counties", &[]);
    let csv = std::fs::read_to_string(dir.join("Males_by_decade_and_county.csv")).unwrap();
    let head: Vec<&str> = csv.lines().take(6).collect();
    std::fs::write(dir.join("Males_by_decade_and_county.csv"), head.join("\n") + "\n").unwrap();
    // One thread: the records are in case order, so the damaged lines below are known.
    parfit_in(&dir, &["fit-many", "fit.toml", "--output", "out", "--threads", "1"]).assert_ok();
    let checkpoint = dir.join("out/checkpoint.jsonl");
    let good = std::fs::read_to_string(&checkpoint).unwrap();
    let resume = || parfit_in(&dir, &["fit-many", "fit.toml", "--output", "out", "--resume"]);
    std::fs::write(&checkpoint, good.replacen("\"index\":1,", "\"index\":99999999999,", 1)).unwrap();
    refused(&resume(), 2, &["checkpoint.jsonl:3: case index 99999999999 is beyond the table's 3 cases"]);
    let first_x = good.find("\"x\":[").expect("a fitted case");
    let end = first_x + good[first_x..].find(']').expect("x ends");
    std::fs::write(&checkpoint, format!("{}\"x\":[{}", &good[..first_x], &good[end..])).unwrap();
    refused(&resume(), 2, &["checkpoint.jsonl:2: case 0 has 0 fitted values, not 9"]);
    std::fs::write(&checkpoint, good.replacen("\"index\":1,", "\"index\":\u{0}x,", 1)).unwrap();
    refused(&resume(), 2, &["checkpoint.jsonl:3: unreadable record"]);
}

#[test]
fn a_policy_count_of_1e308_or_a_premium_load_above_one_is_refused_at_its_cell() {
    // Each gave NaN present values with exit 0.
    let first = "1,A,20,M,10,100,500000,0,500000,0,0";
    let dir = example(
        "huge-count",
        "savings",
        &[("model_point_samples.csv", first, "1,A,20,M,10,1e308,500000,0,500000,0,0")],
    );
    let run = parfit_in(&dir, &["run", "samples.toml", "--output", "out"]);
    refused(&run, 2, &["model_point_samples.csv:2:6: column 'policy_count': 1e308 is not between 0 and 1e100"]);
    nothing_written(&dir.join("out"));
    let dir = example(
        "premium-load",
        "savings",
        &[("product_spec_table.csv", "A,SINGLE,False,,0.1,", "A,SINGLE,False,,-1e308,")],
    );
    let run = parfit_in(&dir, &["run", "samples.toml", "--output", "out"]);
    refused(&run, 2, &["product_spec_table.csv:2:5: column 'load_prem_rate': -1e308 is not between 0 and 1"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_monte_carlo_path_that_overflows_fails_naming_the_path_and_output() {
    // s = -1e308 made every path's wealth ±inf or NaN: the table printed NaN statistics with exit 0.
    let dir = example("mc-overflow", "wealth", &[("run.toml", "paths = 50_000", "paths = 100\n")]);
    let text = std::fs::read_to_string(dir.join("run.toml")).unwrap();
    std::fs::write(dir.join("run.toml"), text + "\n[parameters]\ns = -1e308\n").unwrap();
    let run = parfit_in(&dir, &["run", "run.toml", "--output", "out"]);
    refused(&run, 1, &["(sweep point 1, paths 0–63): path 0: output 'w' is inf after 1000 periods"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn the_sd_of_paths_near_1e300_is_finite() {
    // The sum of squared deviations overflowed: sd = inf beside a finite mean, with exit 0.
    let edits = [("run.toml", "paths = 50_000", "paths = 200"), ("run.toml", "periods = 1_000", "periods = 3")];
    let dir = example("mc-huge-sd", "wealth", &edits);
    let model = std::fs::read_to_string(dir.join("wealth.mc")).unwrap().replace("u_i { w = 1 }", "u_i { w = 1e300 }");
    std::fs::write(dir.join("wealth.mc"), model).unwrap();
    let run = parfit_in(&dir, &["run", "run.toml", "--format", "json"]);
    run.assert_ok();
    let text = run.stdout.clone();
    let sd = run.json()["points"][0]["statistics"]["w"]["sd"].as_f64().unwrap_or_else(|| panic!("no sd in {text}"));
    assert!(sd.is_finite() && sd > 1e296, "sd = {sd:e}");
}
