//! `parfit sample` on the Lotka–Volterra example: nested sampling and ensemble MCMC agree on the posterior
//! (issue 4's acceptance: means within 3 posterior sd), the posterior sits at the least-squares optimum, the
//! evidence is finite with a positive error, the results do not depend on the thread count, and bad priors
//! are refused by parameter name.

use std::path::{Path, PathBuf};

use parfit_tests::{parfit, read_csv, root, scratch};

/// The least-squares optimum (see `lotka_volterra.rs`): with uniform priors around it, the posterior mode.
const OPTIMUM: [(&str, f64); 4] = [("alpha", 1.1164), ("beta", 0.4242), ("delta", 0.09451), ("gamma", 0.3891)];

/// The example's configuration with smaller budgets (the test runs the debug build), written to `dir`.
fn config(dir: &Path, algorithm: &str, parameters: &str) -> PathBuf {
    let example = root().join("examples/lotka_volterra");
    let text = format!(
        r#"seed = 3

[model]
kind = "diffsl"
source = "{model}"

[model.options]
rtol = 1e-8
atol = 1e-8

[data]
path = "{data}"
outputs = ["prey", "predator"]

[parameters]
{parameters}

[sample]
algorithm = "{algorithm}"
sigma = 0.3

[sample.nested]
live_points = 60
dlogz = 0.1

[sample.nested.dynamic]
max_batches = 1
n_effective = 1000

[sample.mcmc]
steps = 500
burn_in = 200
"#,
        model = example.join("lotka_volterra.ds").display(),
        data = example.join("data.csv").display(),
    );
    let path = dir.join(format!("{algorithm}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

const BOX: &str = "alpha = { start = 1.1164, lower = 1.0, upper = 1.25 }
beta = { start = 0.4242, lower = 0.35, upper = 0.5 }
delta = { start = 0.09451, lower = 0.08, upper = 0.11 }
gamma = { start = 0.3891, lower = 0.33, upper = 0.45 }";

/// Run the sampler with `threads` into `out`, returning the JSON summary printed on stdout.
fn sample(config: &Path, threads: &str, out: &Path) -> serde_json::Value {
    let run = parfit(&[
        "sample",
        config.to_str().unwrap(),
        "--threads",
        threads,
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ]);
    run.assert_ok().json()
}

#[test]
fn nested_sampling_and_mcmc_agree_on_the_lotka_volterra_posterior() {
    let dir = scratch("sample-lv");
    let mut summaries = Vec::new();
    for algorithm in ["nested", "mcmc"] {
        let cfg = config(&dir, algorithm, BOX);
        let (one, two) = (dir.join(format!("{algorithm}-1")), dir.join(format!("{algorithm}-2")));
        let summary = sample(&cfg, "1", &one);
        let again = sample(&cfg, "2", &two);
        assert_eq!(summary["threads"], 1);
        assert_eq!(again["threads"], 2);
        for file in ["samples.csv", "summary.json", "corner.svg"] {
            assert!(one.join(file).is_file(), "{algorithm}: {file} missing");
        }
        let csv = std::fs::read(one.join("samples.csv")).unwrap();
        assert_eq!(csv, std::fs::read(two.join("samples.csv")).unwrap(), "{algorithm}: samples differ by threads");
        assert_eq!(summary["parameters"], again["parameters"], "{algorithm}: summaries differ by threads");

        // samples.csv: the parameters, weight and log-likelihood; weights sum to one.
        let (header, rows) = read_csv(&one.join("samples.csv"));
        assert_eq!(header, ["alpha", "beta", "delta", "gamma", "weight", "log_likelihood"]);
        assert_eq!(rows.len() as u64, summary["samples"].as_u64().unwrap());
        let total: f64 = rows.iter().map(|r| r[4]).sum();
        assert!((total - 1.0).abs() < 1e-9, "{algorithm}: weights sum to {total}");

        // summary.json holds what stdout printed.
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(one.join("summary.json")).unwrap()).unwrap();
        assert_eq!(written["parameters"], summary["parameters"]);
        let svg = std::fs::read_to_string(one.join("corner.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("alpha"), "{algorithm}: corner.svg lacks its content");

        for (name, optimum) in OPTIMUM {
            let p = &summary["parameters"][name];
            let (mean, sd) = (p["mean"].as_f64().unwrap(), p["sd"].as_f64().unwrap());
            assert!(sd > 0.0 && sd < 0.05 * optimum, "{algorithm}: {name} sd {sd}");
            assert!((mean - optimum).abs() < 2.0 * sd, "{algorithm}: {name} mean {mean} ± {sd} vs optimum {optimum}");
            let q = &p["quantiles"];
            let median = q["50%"].as_f64().unwrap();
            assert!(q["2.5%"].as_f64().unwrap() < median && median < q["97.5%"].as_f64().unwrap());
        }
        summaries.push(summary);
    }
    let (nested, mcmc) = (&summaries[0], &summaries[1]);
    let log_z = nested["log_z"].as_f64().unwrap();
    let log_z_err = nested["log_z_err"].as_f64().unwrap();
    assert!(log_z.is_finite() && log_z_err > 0.0 && log_z_err.is_finite(), "ln Z = {log_z} ± {log_z_err}");
    assert!(mcmc.get("log_z").is_none());
    for (name, _) in OPTIMUM {
        let (n, m) = (&nested["parameters"][name], &mcmc["parameters"][name]);
        let (mean_n, mean_m) = (n["mean"].as_f64().unwrap(), m["mean"].as_f64().unwrap());
        let sd = n["sd"].as_f64().unwrap().max(m["sd"].as_f64().unwrap());
        assert!((mean_n - mean_m).abs() < 3.0 * sd, "{name}: nested {mean_n} vs mcmc {mean_m} (sd {sd})");
        let r_hat = m["r_hat"].as_f64().unwrap();
        assert!(r_hat.is_finite() && r_hat < 1.5, "{name}: R-hat {r_hat}");
        assert!(m["ess"].as_f64().unwrap() > 10.0, "{name}: ESS {}", m["ess"]);
    }
}

#[test]
fn a_fitted_sigma_is_sampled_as_a_parameter() {
    let dir = scratch("sample-lv-sigma");
    let cfg = config(&dir, "nested", BOX);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("sigma = 0.3", "sigma = \"fitted\"\nsigma_prior = { kind = \"uniform\", lower = 0.1, upper = 1.0 }");
    std::fs::write(&cfg, text).unwrap();
    let summary = sample(&cfg, "2", &dir.join("out"));
    let sigma = &summary["parameters"]["sigma"];
    let (mean, sd) = (sigma["mean"].as_f64().unwrap(), sigma["sd"].as_f64().unwrap());
    // The data's noise is 0.3; the least-squares residual sd is √(328.52/1000) ≈ 0.573.
    assert!((mean - 0.573).abs() < 4.0 * sd + 0.02, "sigma {mean} ± {sd}");
    let (header, _) = read_csv(&dir.join("out/samples.csv"));
    assert_eq!(header[4], "sigma");
}

#[test]
fn priors_without_finite_bounds_are_refused_by_name() {
    let dir = scratch("sample-bad-prior");
    let unbounded =
        BOX.replace("delta = { start = 0.09451, lower = 0.08, upper = 0.11 }", "delta = { start = 0.09451 }");
    let cfg = config(&dir, "nested", &unbounded);
    let run = parfit(&["sample", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("delta") && run.stderr.contains("finite bounds"), "{}", run.stderr);

    let bad = BOX.replace("lower = 0.35, upper = 0.5", "prior = { kind = \"normal\", mu = 0.42, sigma = -1.0 }");
    let cfg = config(&dir, "nested", &bad);
    let run = parfit(&["sample", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("beta") && run.stderr.contains("sigma"), "{}", run.stderr);
}
