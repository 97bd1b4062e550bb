//! The Lotka–Volterra example end to end: the fit reaches the accurate least-squares optimum, results do not
//! depend on the thread count, the ODE solution matches a high-accuracy reference, and bad input is refused
//! with a clear message and exit code 2.

use parfit_tests::{parfit, parse_csv, read_csv, root, scratch};

/// The least-squares optimum of the accurate model on `examples/lotka_volterra/data.csv`, as stated in the
/// foundation issue and confirmed independently with scipy `least_squares` on DOP853 solutions at rtol = atol
/// = 1e-12 (`tests/data/lotka_volterra/make_reference.py`, results in `optimum.json`).
const OPTIMUM_SSE: f64 = 328.52;
const OPTIMUM: [(&str, f64); 4] = [("alpha", 1.1164), ("beta", 0.4242), ("delta", 0.09451), ("gamma", 0.3891)];

#[test]
fn the_reference_optimum_agrees_with_the_issue_figures() {
    let text = std::fs::read_to_string(root().join("tests/data/lotka_volterra/optimum.json")).unwrap();
    let optimum: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!((optimum["sse"].as_f64().unwrap() - OPTIMUM_SSE).abs() < 0.005);
    for (name, value) in OPTIMUM {
        let found = optimum[name].as_f64().unwrap();
        assert!((found - value).abs() <= 0.5e-4 * value.abs().max(1.0), "{name}: {found} vs {value}");
    }
}

/// The accurate optimum (`optimum.json`: SSE and parameters to about 1e-9). A fit of the example evaluates the
/// model at its rtol = atol = 1e-8, which moves the SSE it reports by about 1e-7 relative (measured: 3.4e-5 below
/// the accurate SSE) but its minimiser far less (measured within 2e-9 relative), so the fits are held to 1e-6
/// relative in the SSE and 1e-7 in each parameter.
fn assert_at_the_optimum(result: &serde_json::Value, what: &str) {
    let text = std::fs::read_to_string(root().join("tests/data/lotka_volterra/optimum.json")).unwrap();
    let optimum: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (sse, best) = (result["value"].as_f64().unwrap(), optimum["sse"].as_f64().unwrap());
    assert!((sse - best).abs() <= 1e-6 * best, "{what}: SSE {sse} vs {best}");
    for (name, _) in OPTIMUM {
        let (fitted, value) = (result["x"][name].as_f64().unwrap(), optimum[name].as_f64().unwrap());
        assert!((fitted - value).abs() <= 1e-7 * value, "{what}: {name} {fitted} vs {value}");
    }
}

#[test]
fn the_example_fit_reaches_the_least_squares_optimum() {
    let out = scratch("lv-fit");
    let run =
        parfit(&["fit", "examples/lotka_volterra/fit.toml", "--format", "json", "--output", out.to_str().unwrap()]);
    let result = run.assert_ok().json();
    assert_at_the_optimum(&result, "cmaes");
    for file in ["result.json", "fitted.csv", "fit.svg", "convergence.svg"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let svg = std::fs::read_to_string(out.join("fit.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("prey (data)"), "fit.svg lacks its content");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(written["x"], result["x"]);
    assert!(written["history"].as_array().is_some_and(|h| !h.is_empty()));
}

#[test]
fn every_local_and_gradient_optimiser_reaches_the_optimum_in_horizon_stages() {
    for algorithm in ["nelder_mead", "lbfgsb", "levenberg_marquardt"] {
        // Tests run in parallel: each writes to its own directory (a directory in use is refused).
        let out = scratch(&format!("lv-stages-{algorithm}"));
        let args = ["fit", "examples/lotka_volterra/fit.toml", "--algorithm", algorithm, "--format", "json"];
        let run = parfit(&[&args[..], &["--output", out.to_str().unwrap()]].concat());
        let result = run.assert_ok().json();
        assert_eq!(result["algorithm"], algorithm);
        assert_at_the_optimum(&result, algorithm);
    }
}

#[test]
fn the_fit_is_identical_for_one_and_two_threads() {
    let fit = |threads: &str| {
        let out = scratch(&format!("lv-threads-{threads}"));
        let args = ["fit", "examples/lotka_volterra/fit.toml", "--seed", "7", "--threads", threads, "--format", "json"];
        parfit(&[&args[..], &["--output", out.to_str().unwrap()]].concat()).assert_ok().json()
    };
    let (one, two) = (fit("1"), fit("2"));
    assert_eq!(one["threads"], 1);
    assert_eq!(two["threads"], 2);
    for key in ["x", "value", "evaluations", "iterations", "termination"] {
        assert_eq!(one[key], two[key], "{key} differs between 1 and 2 threads");
    }
}

#[test]
fn the_solution_matches_a_dop853_reference_to_1e_6() {
    // scipy solve_ivp(method="DOP853", rtol=atol=1e-10) at the generating parameters (make_reference.py).
    let (header, reference) = read_csv(&root().join("tests/data/lotka_volterra/reference_dop853.csv"));
    assert_eq!(header, vec!["t", "prey", "predator"]);
    let times: Vec<String> = reference.iter().map(|r| format!("{:?}", r[0])).collect();
    let times = times.join(",");
    let run = parfit(&[
        "run",
        "examples/lotka_volterra/lotka_volterra.ds",
        "--rtol",
        "1e-9",
        "--atol",
        "1e-9",
        "--set",
        "alpha=1.1",
        "--times",
        &times,
    ]);
    let (header, rows) = parse_csv(&run.assert_ok().stdout);
    assert_eq!(header, vec!["time", "prey", "predator"]);
    assert_eq!(rows.len(), 500);
    let mut worst = 0.0f64;
    for (row, reference) in rows.iter().zip(&reference) {
        assert_eq!(row[0], reference[0]);
        for j in 1..3 {
            worst = worst.max((row[j] - reference[j]).abs() / reference[j].abs());
        }
    }
    assert!(worst <= 1e-6, "max relative error {worst:e}");
}

/// Write a fit configuration into a scratch directory, pointing at the example's model and data.
fn config(dir: &std::path::Path, parameters: &str, data_path: &str, columns: &str) -> String {
    let example = root().join("examples/lotka_volterra");
    let text = format!(
        "[model]\nkind = \"diffsl\"\nsource = \"{}\"\n\n[data]\npath = \"{data_path}\"\noutputs = [\"prey\", \
         \"predator\"]\n{columns}\n\n[parameters]\n{parameters}\n\n[fit]\nmax_iterations = 2\n",
        example.join("lotka_volterra.ds").display()
    );
    let path = dir.join("fit.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[track_caller]
fn assert_input_error(args: &[&str], expected: &[&str]) {
    let run = parfit(args);
    assert_eq!(run.code, 2, "expected exit code 2: {run:?}");
    for text in expected {
        assert!(run.stderr.contains(text), "stderr lacks {text:?}:\n{}", run.stderr);
    }
}

#[test]
fn bad_input_is_refused_with_where_and_what() {
    let dir = scratch("lv-bad-input");
    let data = root().join("examples/lotka_volterra/data.csv");
    let data = data.to_str().unwrap();

    // A DiffSL syntax error: file, line and column.
    let model = dir.join("broken.ds");
    std::fs::write(&model, "in_i { a = 1 }\nu_i { y = 1 }\nF_i { -a * y + }\n").unwrap();
    assert_input_error(&["run", model.to_str().unwrap(), "--times", "0:1:3"], &["broken.ds:3:"]);

    // An unknown parameter in the configuration.
    let cfg = config(&dir, "zeta = { start = 1.0 }", data, "");
    assert_input_error(&["fit", &cfg], &["zeta", "no parameter named", "alpha, beta, delta, gamma"]);

    // A data column that is not in the file.
    let cfg = config(&dir, "", data, "columns = { predator = \"wolves\" }");
    assert_input_error(&["fit", &cfg], &["data.csv", "no column named 'wolves'"]);

    // A non-numeric cell: file and line.
    let text = std::fs::read_to_string(data).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[4] = "0.8,abc,6.3".into();
    let bad_data = dir.join("bad.csv");
    std::fs::write(&bad_data, lines.join("\n")).unwrap();
    let cfg = config(&dir, "", bad_data.to_str().unwrap(), "");
    assert_input_error(&["fit", &cfg], &["bad.csv:5:", "'abc' is not a number"]);

    // A start outside its bounds.
    let cfg = config(&dir, "alpha = { start = 6.0, lower = 0.0, upper = 5.0 }", data, "");
    assert_input_error(&["fit", &cfg], &["alpha", "outside its bounds"]);

    // A misspelt key: file, line and column.
    let cfg = config(&dir, "alpha = { strat = 1.0 }", data, "");
    assert_input_error(&["fit", &cfg], &["fit.toml:11:11:", "unknown field `strat`"]);

    // An unknown parameter on the command line.
    assert_input_error(
        &["run", "examples/lotka_volterra/lotka_volterra.ds", "--times", "0:1:2", "--set", "omega=1"],
        &["omega", "alpha, beta, delta, gamma"],
    );
}

#[test]
fn run_reports_solver_work_and_stiffness() {
    let run = parfit(&["run", "examples/lotka_volterra/lotka_volterra.ds", "--times", "0:100:500", "--format", "json"]);
    let json = run.assert_ok().json();
    assert!(json["stats"]["steps"].as_u64().unwrap() > 100, "{}", json["stats"]);
    assert!(json["stats"]["rhs_evaluations"].as_u64().unwrap() > json["stats"]["steps"].as_u64().unwrap());

    // Van der Pol with μ = 1000: the explicit solver gives up quickly and says why; the default switches.
    let vdp = "tests/data/ode_problems/van_der_pol.ds";
    let dir = scratch("ode-stiff");
    let config = dir.join("vdp.toml");
    let text = format!(
        "[model]\nkind = \"diffsl\"\nsource = \"{}\"\n[model.options]\nsolver = \"dopri5\"\n[run]\ntimes = \"0:3000:31\"\n",
        root().join(vdp).display()
    );
    std::fs::write(&config, text).unwrap();
    let explicit = parfit(&["run", config.to_str().unwrap()]);
    assert_eq!(explicit.code, 1, "{explicit:?}");
    assert!(explicit.stderr.contains("stiff"), "{}", explicit.stderr);
    let auto = parfit(&["run", vdp, "--times", "0:3000:31", "--format", "json"]).assert_ok().json();
    assert!(auto["stats"]["factorisations"].as_u64().unwrap() > 0, "the implicit solver took over");

    // A mass matrix runs; one that changes with t (which DiffSL allows but parfit's BDF does not take) is
    // refused by name and line.
    let model = dir.join("mass.ds");
    std::fs::write(&model, "in_i { k = 1 }\nu_i { y = 1 }\ndudt_i { dydt = 0 }\nM_i { 2 * dydt }\nF_i { -k * y }\n")
        .unwrap();
    let run = parfit(&["run", model.to_str().unwrap(), "--times", "0:2:3", "--format", "json"]).assert_ok().json();
    assert!(run["stats"]["factorisations"].as_u64().unwrap() > 0, "a model with M_i is solved by the BDF");
    std::fs::write(
        &model,
        "in_i { k = 1 }\nu_i { y = 1 }\ndudt_i { dydt = 0 }\nM_i { (1 + t) * dydt }\nF_i { -k * y }\n",
    )
    .unwrap();
    let refused = parfit(&["run", model.to_str().unwrap(), "--times", "0:1:2"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("not supported: a mass matrix that changes with t"), "{}", refused.stderr);
    assert!(refused.stderr.contains("mass.ds:4:"), "{}", refused.stderr);
}

#[test]
fn every_optimiser_gives_the_same_answer_on_one_and_two_threads() {
    for algorithm in ["differential_evolution", "lbfgsb", "levenberg_marquardt", "nelder_mead"] {
        let fit = |threads: &str| {
            let args = ["fit", "examples/lotka_volterra/tutorial.toml", "--algorithm", algorithm, "--seed", "3"];
            let out = scratch(&format!("lv-optimiser-{algorithm}-{threads}"));
            let more = ["--threads", threads, "--format", "json", "--output", out.to_str().unwrap()];
            parfit(&[&args[..], &more[..]].concat()).assert_ok().json()
        };
        let (one, two) = (fit("1"), fit("2"));
        for key in ["x", "value", "evaluations", "iterations", "termination"] {
            assert_eq!(one[key], two[key], "{algorithm}: {key} differs between 1 and 2 threads");
        }
    }
}

/// A copy of the example configuration in a scratch folder `name`, edited by `edit` (which must change it),
/// with its model and data paths made absolute.
fn edited_example(name: &str, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let example = root().join("examples/lotka_volterra/fit.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the example changed: the edit for {name} no longer applies");
    let edited = edited
        .replace(
            "source = \"lotka_volterra.ds\"",
            &format!("source = {:?}", example.with_file_name("lotka_volterra.ds")),
        )
        .replace("path = \"data.csv\"", &format!("path = {:?}", example.with_file_name("data.csv")));
    let path = scratch(name).join("fit.toml");
    std::fs::write(&path, edited).unwrap();
    path
}

/// Levenberg–Marquardt on the example takes its Jacobians from the ODE plugin's forward sensitivities: one
/// model evaluation per Jacobian instead of one per parameter, and the same optimum as with finite
/// differences.
#[test]
fn levenberg_marquardt_uses_exact_jacobians_from_sensitivities() {
    let fit = |name: &str, sensitivities: bool| {
        let path = edited_example(name, |text| {
            text.replace("atol = 1e-8\n", &format!("atol = 1e-8\nsensitivities = {sensitivities}\n"))
        });
        let out = path.with_file_name("out");
        let run = parfit(&[
            "fit",
            path.to_str().unwrap(),
            "--algorithm",
            "levenberg_marquardt",
            "--format",
            "json",
            "--output",
            out.to_str().unwrap(),
        ]);
        run.assert_ok().json()
    };
    let exact = fit("lv-lm-exact", true);
    let differences = fit("lv-lm-differences", false);
    let evaluations = |r: &serde_json::Value| r["evaluations"].as_u64().unwrap();
    println!(
        "Levenberg–Marquardt model evaluations: {} with sensitivities, {} with finite differences",
        evaluations(&exact),
        evaluations(&differences)
    );
    assert!(evaluations(&exact) < evaluations(&differences), "{exact}\n{differences}");
    let (a, b) = (exact["value"].as_f64().unwrap(), differences["value"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-6 * b, "SSE {a} vs {b}");
    assert_at_the_optimum(&exact, "levenberg_marquardt with sensitivities");
    for (name, _) in OPTIMUM {
        let (x, y) = (exact["x"][name].as_f64().unwrap(), differences["x"][name].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-6 * y.abs(), "{name}: {x} vs {y}");
    }
}

/// `polish = true` on a model with sensitivities polishes with Levenberg–Marquardt: far fewer evaluations than
/// Nelder–Mead, and the same optimum — the two agree to the solver's accuracy, not merely the test's.
#[test]
fn the_polish_uses_exact_jacobians_and_agrees_with_nelder_mead() {
    let polished = |name: &str, polish: &str| {
        let path = edited_example(name, |text| text.replace("polish = true", &format!("polish = {polish}")));
        let out = path.with_file_name("out");
        parfit(&["fit", path.to_str().unwrap(), "--format", "json", "--output", out.to_str().unwrap()])
            .assert_ok()
            .json()
    };
    let unpolished = polished("lv-polish-off", "false");
    let auto = polished("lv-polish-auto", "\"levenberg_marquardt\"");
    let simplex = polished("lv-polish-nm", "\"nelder_mead\"");
    let evaluations =
        |r: &serde_json::Value| r["evaluations"].as_u64().unwrap() - unpolished["evaluations"].as_u64().unwrap();
    println!("polish evaluations: {} Levenberg–Marquardt, {} Nelder–Mead", evaluations(&auto), evaluations(&simplex));
    assert!(3 * evaluations(&auto) < evaluations(&simplex), "{auto}\n{simplex}");
    let (a, b) = (auto["value"].as_f64().unwrap(), simplex["value"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-10 * b, "SSE {a} vs {b}");
    assert!(a < unpolished["value"].as_f64().unwrap(), "the polish did not improve on CMA-ES");
    for (name, _) in OPTIMUM {
        let (x, y) = (auto["x"][name].as_f64().unwrap(), simplex["x"][name].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-6 * y.abs(), "{name}: {x} vs {y}");
    }
    let out = scratch("lv-polish-example");
    let example =
        parfit(&["fit", "examples/lotka_volterra/fit.toml", "--format", "json", "--output", out.to_str().unwrap()])
            .assert_ok()
            .json();
    assert_eq!(example["x"], auto["x"], "`polish = true` did not pick Levenberg–Marquardt for the ODE model");
}
