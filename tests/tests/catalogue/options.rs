//! Settings that reach an optimiser, a sampler, a stopping rule or a run's size: each case of issue 16 is refused
//! with exit 2 before any work, by a message at the setting's `file:line:column` that names the key, the allowed
//! range and the value given (or, for sizes, the size and the memory it would take), and nothing is written.

use std::path::{Path, PathBuf};

use parfit_tests::{Run, decay_problem, parfit_in, root, scratch};

use super::{nothing_written, refused};

const MODEL: &str = "in_i { k = 0.5, y0 = 1.0 }\nu_i { y = y0 }\nF_i { -k * y }\nout_i { y }\n";
const DATA: &str = "t,y\n0,1.0\n1,0.61\n2,0.37\n3,0.22\n4,0.14\n";
const CONFIG: &str = "[model]\nkind = \"diffsl\"\nsource = \"decay.ds\"\n\n[data]\npath = \"data.csv\"\noutputs = \
                      [\"y\"]\n\n[parameters]\nk = { start = 0.5, lower = 0.0, upper = 2.0 }\ny0 = { start = 1.0, \
                      lower = 0.0, upper = 5.0 }\n\n[output]\ndir = \"out\"\n\n";

/// A scratch directory holding the decay model, its data and `fit.toml`: the base configuration, then `extra`.
fn problem(name: &str, extra: &str) -> PathBuf {
    let dir = scratch(&format!("catalogue-options-{name}"));
    std::fs::write(dir.join("decay.ds"), MODEL).unwrap();
    std::fs::write(dir.join("data.csv"), DATA).unwrap();
    std::fs::write(dir.join("fit.toml"), format!("{CONFIG}{extra}")).unwrap();
    dir
}

/// `fit.toml:line:column:` of the value after the first `written` (e.g. `"mutation = "`) in `dir`'s fit.toml.
fn place(dir: &Path, written: &str) -> String {
    let text = std::fs::read_to_string(dir.join("fit.toml")).unwrap();
    let at = text.find(written).unwrap_or_else(|| panic!("fit.toml has no {written:?}")) + written.len();
    let line = text[..at].matches('\n').count() + 1;
    let column = text[..at].chars().rev().take_while(|&c| c != '\n').count() + 1;
    format!("fit.toml:{line}:{column}:")
}

/// Run `parfit <command> fit.toml` in `dir`.
fn run(dir: &Path, command: &str) -> Run {
    parfit_in(dir, &[command, "fit.toml"])
}

/// Each `(key, value, allowed)`, written alone in `table` after `preamble`, is refused by `parfit <command>` at its
/// place, with the allowed range's wording and the value as given (NaN as Rust prints it).
#[track_caller]
fn each_refused(command: &str, preamble: &str, table: &str, cases: &[(&str, &str, &str)]) {
    for (i, (key, value, allowed)) in cases.iter().enumerate() {
        let name = format!("{command}-{}-{key}-{i}", table.replace(['[', ']', '.'], ""));
        let dir = problem(&name, &format!("{preamble}{table}\n{key} = {value}\n"));
        let got = format!("(got {})", value.replace("nan", "NaN"));
        let needles = [&place(&dir, &format!("{key} = "))[..], &format!("{table} {key} "), allowed, &got];
        refused(&run(&dir, command), 2, &needles);
        nothing_written(&dir.join("out"));
    }
}

/// What `parfit sample` needs besides its sampler's settings.
const SAMPLE: &str = "[sample]\nsigma = 0.1\n";

#[test]
fn differential_evolution_options_out_of_range_are_refused_at_their_key() {
    each_refused(
        "fit",
        "",
        "[fit.differential_evolution]",
        &[
            ("mutation", "3.0", "must be in (0, 2]"),
            ("mutation", "nan", "must be in (0, 2]"),
            ("dither", "[0.0, 1.0]", "must be [lo, hi] with 0 < lo ≤ hi ≤ 2"),
            ("crossover", "1.5", "must be in [0, 1]"),
            ("init_spread", "-1.0", "must be a positive finite number"),
            ("population", "3", "must be at least 4"),
        ],
    );
}

#[test]
fn lbfgsb_memory_line_search_and_difference_steps_out_of_range_are_refused() {
    each_refused(
        "fit",
        "[fit]\nalgorithm = \"lbfgsb\"\n",
        "[fit.lbfgsb]",
        &[
            ("memory", "0", "must be at least 1"),
            ("max_line_search", "0", "must be at least 1"),
            ("diff_step", "0.0", "must be in (0, 1]"),
            ("diff_step", "nan", "must be in (0, 1]"),
            ("diff_step", "inf", "must be in (0, 1]"),
        ],
    );
}

#[test]
fn levenberg_marquardt_damping_is_refused_also_when_only_the_polish_uses_it() {
    let damping = "[fit.levenberg_marquardt]\ninitial_damping = -1.0\n";
    for (name, fit) in [("main", "[fit]\nalgorithm = \"levenberg_marquardt\"\n"), ("polish", "[fit]\npolish = true\n")]
    {
        let dir = problem(&format!("lm-{name}"), &format!("{fit}{damping}"));
        let needles =
            [&place(&dir, "initial_damping = ")[..], "initial_damping must be a positive finite", "(got -1.0)"];
        refused(&run(&dir, "fit"), 2, &needles);
        nothing_written(&dir.join("out"));
    }
}

#[test]
fn fit_many_refuses_bad_options_before_any_case_reaches_a_worker() {
    let dir = scratch("catalogue-options-fit-many");
    let config = decay_problem(&dir, 20);
    let text = std::fs::read_to_string(&config).unwrap()
        + "polish = \"levenberg_marquardt\"\n\n\
                                                             [fit.levenberg_marquardt]\ninitial_damping = nan\n";
    std::fs::write(&config, text).unwrap();
    let out = dir.join("out");
    let run = parfit_in(&dir, &["fit-many", "many.toml", "--output", "out"]);
    refused(&run, 2, &["many.toml:", "[fit.levenberg_marquardt] initial_damping", "(got NaN)"]);
    nothing_written(&out);
}

#[test]
fn sizes_that_would_exhaust_memory_are_refused_with_the_estimate() {
    let cases = [
        ("cmaes-population", "[fit.cmaes]\npopulation = 9223372036854775807\n", "population = "),
        ("cmaes-population-1e8", "[fit.cmaes]\npopulation = 100000000\n", "population = "),
        ("ipop", "[fit.cmaes]\nrestarts = { kind = \"ipop\", factor = 1e308 }\n", "factor = "),
        (
            "de-population",
            "[fit]\nalgorithm = \"differential_evolution\"\n[fit.differential_evolution]\npopulation = \
                           100000000000\n",
            "population = ",
        ),
        ("lbfgsb-memory", "[fit]\nalgorithm = \"lbfgsb\"\n[fit.lbfgsb]\nmemory = 1000000000000\n", "memory = "),
    ];
    for (name, extra, written) in cases {
        let dir = problem(name, extra);
        refused(&run(&dir, "fit"), 2, &[&place(&dir, written), "would need about", "more than the limit of 8.0 GiB"]);
        nothing_written(&dir.join("out"));
    }
    let cases = [
        ("walkers", "algorithm = \"mcmc\"\n[sample.mcmc]\nwalkers = 1000000000\n", "walkers = "),
        ("steps", "algorithm = \"mcmc\"\n[sample.mcmc]\nsteps = 10000000000000\n", "steps = "),
        ("live-points", "[sample.nested]\nlive_points = 1000000000000\n", "live_points = "),
        ("bootstrap", "[sample.nested]\nbootstrap = 1000000000000\n", "bootstrap = "),
    ];
    for (name, extra, written) in cases {
        let dir = problem(&format!("sample-{name}"), &format!("{SAMPLE}{extra}"));
        refused(&run(&dir, "sample"), 2, &[&place(&dir, written), "would need about"]);
        nothing_written(&dir.join("out"));
    }
}

#[test]
fn a_huge_sigma0_is_refused_instead_of_returning_the_box_corner() {
    let dir = problem("sigma0", "[fit.cmaes]\nsigma0 = 1e308\n");
    let needles =
        [&place(&dir, "sigma0 = ")[..], "sigma0 must be at most 1e6 × the widest side of the box, 5.0", "(got 1e308)"];
    refused(&run(&dir, "fit"), 2, &needles);
    nothing_written(&dir.join("out"));
}

#[test]
fn stopping_rules_that_are_zero_or_not_numbers_are_refused() {
    each_refused(
        "fit",
        "",
        "[fit]",
        &[
            ("max_iterations", "0", "must be at least 1"),
            ("max_evaluations", "0", "must be at least 1"),
            ("ftol", "nan", "must be a finite number ≥ 0"),
            ("xtol", "-1.0", "must be a finite number ≥ 0"),
            ("target_value", "nan", "must be a number"),
            ("max_seconds", "nan", "must be a positive finite number"),
            ("max_seconds", "-1.0", "must be a positive finite number"),
        ],
    );
}

#[test]
fn data_with_no_observation_at_all_is_refused_naming_file_and_columns() {
    let dir = problem("empty-data", "");
    std::fs::write(dir.join("data.csv"), "t,y\n0,\n1,\n2,\n").unwrap();
    refused(&run(&dir, "fit"), 2, &["data.csv: no observation in the data: every cell of column 'y' is empty"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_fit_that_observes_no_output_is_refused_not_a_panic() {
    // Found by the config fuzz target: an empty list of observed outputs panicked in the cost (exit 101).
    let dir = problem("no-outputs", "");
    let text = std::fs::read_to_string(dir.join("fit.toml")).unwrap().replace("outputs = [\"y\"]", "outputs = []");
    std::fs::write(dir.join("fit.toml"), text).unwrap();
    refused(&run(&dir, "fit"), 2, &[&place(&dir, "outputs = "), "[data] outputs is empty"]);
    nothing_written(&dir.join("out"));

    let dir = scratch("catalogue-options-no-observe");
    decay_problem(&dir, 3);
    let text = std::fs::read_to_string(dir.join("many.toml")).unwrap();
    let text = text
        .replace("[[cases.observe]]\ntime = 1.0\ncolumns = { y = \"y t1\" }\n", "")
        .replace("[[cases.observe]]\ntime = 3.0\ncolumns = { y = \"y t3\" }\n", "");
    assert!(!text.contains("observe"), "{text}");
    std::fs::write(dir.join("many.toml"), text).unwrap();
    let run = parfit_in(&dir, &["fit-many", "many.toml", "--output", "out"]);
    refused(&run, 2, &["many.toml:12:1: [cases] observes nothing"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_column_named_twice_is_refused_in_observations_and_in_case_tables() {
    let dir = problem("duplicate-data", "");
    std::fs::write(dir.join("data.csv"), "t,y,y\n0,1.0,2.0\n1,0.6,0.5\n").unwrap();
    refused(&run(&dir, "fit"), 2, &["data.csv:1: the header names column 'y' twice (columns 2 and 3)"]);
    nothing_written(&dir.join("out"));

    let dir = scratch("catalogue-options-duplicate-cases");
    decay_problem(&dir, 3);
    let table = std::fs::read_to_string(dir.join("cases.csv")).unwrap();
    let table = table.replacen("region,site,t1,t3", "region,site,t1,t1", 1);
    std::fs::write(dir.join("cases.csv"), table).unwrap();
    let run = parfit_in(&dir, &["fit-many", "many.toml", "--output", "out"]);
    refused(&run, 2, &["cases.csv has two columns named 'y t1'"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn nested_sampling_with_no_calls_or_iterations_is_refused_not_reported_complete() {
    each_refused(
        "sample",
        SAMPLE,
        "[sample.nested]",
        &[("max_calls", "0", "must be at least 1"), ("max_iterations", "0", "must be at least 1")],
    );
}

#[test]
fn every_sampler_setting_and_prior_out_of_range_is_refused_at_its_key() {
    let mcmc = format!("{SAMPLE}algorithm = \"mcmc\"\n");
    let dir = problem("sample-sigma", "[sample]\nsigma = -0.1\n");
    refused(&run(&dir, "sample"), 2, &[&place(&dir, "sigma = "), "[sample] sigma must be a positive", "(got -0.1)"]);
    for (i, (extra, written, allowed)) in [
        ("[sample.mcmc]\nwalkers = 5\n", "walkers = ", "must be even and at least"),
        ("[sample.mcmc]\nsteps = 100\nburn_in = 100\n", "burn_in = ", "must be below steps = 100"),
        ("[sample.mcmc]\nthin = 0\n", "thin = ", "must be in 1..=steps − burn_in = 1500"),
        ("[sample.mcmc]\nsteps = 10\nburn_in = 5\nthin = 6\n", "thin = ", "so that every walker keeps a draw"),
        ("[sample.mcmc]\nstretch = 1.0\n", "stretch = ", "must be a finite number above 1"),
        ("start_spread = 0.0\n", "start_spread = ", "must be a positive finite number"),
    ]
    .iter()
    .enumerate()
    {
        let dir = problem(&format!("mcmc-{i}"), &format!("{mcmc}{extra}"));
        refused(&run(&dir, "sample"), 2, &[&place(&dir, written), allowed]);
        nothing_written(&dir.join("out"));
    }
    each_refused(
        "sample",
        SAMPLE,
        "[sample.nested]",
        &[
            ("live_points", "3", "must be at least 4"),
            ("replace", "0", "must be in 1..=live_points/2"),
            ("dlogz", "0.0", "must be a positive finite number"),
            ("enlarge", "0.5", "must be a finite number ≥ 1"),
            ("walks", "0", "must be at least 1"),
            ("update_interval", "nan", "must be a positive finite number"),
        ],
    );
    each_refused(
        "sample",
        SAMPLE,
        "[sample.nested]",
        &[
            ("dynamic.n_effective", "nan", "must be a number ≥ 0"),
            ("dynamic.posterior_fraction", "1.5", "must be in [0, 1]"),
        ],
    );
    for (i, (prior, written, allowed)) in [
        ("{ kind = \"normal\", mu = 0.5, sigma = -1.0 }", "sigma = ", "sigma must be a positive finite number"),
        ("{ kind = \"uniform\", lower = 1.0, upper = 0.5 }", "upper = ", "upper must be finite and above lower"),
        ("{ kind = \"log_normal\", mu = nan, sigma = 1.0 }", "mu = ", "mu must be a finite number"),
    ]
    .iter()
    .enumerate()
    {
        let dir = problem(&format!("prior-{i}"), SAMPLE);
        let config = std::fs::read_to_string(dir.join("fit.toml")).unwrap();
        let config =
            config.replace("k = { start = 0.5, lower = 0.0, upper = 2.0 }", &format!("k = {{ prior = {prior} }}"));
        std::fs::write(dir.join("fit.toml"), config).unwrap();
        refused(&run(&dir, "sample"), 2, &[&place(&dir, written), "[parameters.k.prior]", allowed]);
        nothing_written(&dir.join("out"));
    }
}

#[test]
fn non_finite_plugin_options_are_refused_at_their_key_not_as_null() {
    let dir = problem("model-options", "");
    let config = std::fs::read_to_string(dir.join("fit.toml")).unwrap();
    let config = config.replace("source = \"decay.ds\"\n", "source = \"decay.ds\"\n\n[model.options]\nrtol = nan\n");
    std::fs::write(dir.join("fit.toml"), config).unwrap();
    let run = run(&dir, "fit");
    refused(&run, 2, &[&place(&dir, "rtol = "), "[model.options] rtol must be a finite number (got NaN)"]);
    assert!(!run.stderr.contains("null"), "{}", run.stderr);
}

#[test]
fn output_times_that_are_not_finite_or_too_many_are_refused_naming_the_flag() {
    let dir = problem("times", "");
    for (times, needle) in [
        ("0:inf:10", "start and stop must be finite numbers"),
        ("nan", "every time must be a finite number"),
        ("0:1e9:1000000000", "a count of 1000000000 would need about 14.9 GiB"),
    ] {
        refused(&parfit_in(&dir, &["run", "fit.toml", "--times", times]), 2, &["--times", times, needle]);
    }
    nothing_written(&dir.join("out"));
}

#[test]
fn monte_carlo_plans_beyond_the_memory_budget_are_refused_before_any_path_runs() {
    let dir = scratch("catalogue-options-montecarlo");
    std::fs::copy(root().join("examples/wealth/wealth.mc"), dir.join("wealth.mc")).unwrap();
    let base = "[model]\nkind = \"montecarlo\"\nsource = \"wealth.mc\"\n\n[output]\ndir = \"out\"\n\n[montecarlo]\n\
                periods = 10\n";
    for extra in [
        "paths = 1000000000000\n",
        "paths = 100000\nseeds = \"0:999999:1000000\"\n",
        "paths = 1000\n[sweep]\ns = \"0:1:100000000\"\n",
    ] {
        std::fs::write(dir.join("run.toml"), format!("{base}{extra}")).unwrap();
        let run = parfit_in(&dir, &["run", "run.toml"]);
        refused(&run, 2, &["run.toml:10:9: [montecarlo] paths", "would need about", "more than the limit"]);
        nothing_written(&dir.join("out"));
    }
}

#[test]
fn parameter_settings_and_the_likelihood_sigma_are_refused_at_their_place() {
    let dir = problem("bound-nan", "");
    let config = std::fs::read_to_string(dir.join("fit.toml")).unwrap();
    std::fs::write(dir.join("fit.toml"), config.replace("lower = 0.0, upper = 2.0", "lower = nan, upper = 2.0"))
        .unwrap();
    refused(&run(&dir, "fit"), 2, &["fit.toml:10:5: [parameters] k:", "bounds must be numbers or ±inf (got lower NaN"]);
    nothing_written(&dir.join("out"));

    let dir = problem("nll-sigma", "[fit]\ncost = \"gaussian_nll\"\nsigma = -1.0\n");
    refused(
        &run(&dir, "fit"),
        2,
        &[&place(&dir, "sigma = "), "[fit] sigma must be a positive finite number (got -1.0)"],
    );
    nothing_written(&dir.join("out"));
}

#[test]
fn horizons_that_are_not_finite_are_refused_at_their_key() {
    let dir = problem("horizons", "[fit]\nhorizons = [1.0, nan]\n");
    refused(&run(&dir, "fit"), 2, &[&place(&dir, "horizons = "), "[fit] horizons must be finite numbers (got NaN)"]);
    nothing_written(&dir.join("out"));
}
