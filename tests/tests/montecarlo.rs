//! `parfit run` on Monte Carlo configurations, end to end: the QuantEcon wealth median and π within their
//! statistical bands, results bit-identical for any thread count and chunk size, clean interruption, and
//! input errors that name the file and place.

use std::path::{Path, PathBuf};

use parfit_tests::{parfit, read_csv_text, root, scratch};

/// The stationary median of the wealth model (QuantEcon's parameters), computed by a deterministic
/// fixed-point method, and the 3σ band of the median of 50,000 households around it (issue 7).
const STATIONARY_MEDIAN: f64 = 1.835241;
const BAND_50K: f64 = 0.021;

fn wealth_model() -> PathBuf {
    root().join("examples/wealth/wealth.mc")
}

/// Write a configuration of the wealth model into `dir` with the given `[montecarlo]` body and extra sections.
fn wealth_config(dir: &Path, montecarlo: &str, extra: &str) -> String {
    let text = format!(
        "seed = 1\n\n[model]\nkind = \"montecarlo\"\nsource = {:?}\n\n[montecarlo]\n{montecarlo}\n{extra}",
        wealth_model().display().to_string()
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn stat(point: &serde_json::Value, output: &str, name: &str) -> f64 {
    point["statistics"][output][name].as_f64().unwrap_or_else(|| panic!("no {output}.{name} in {point}"))
}

#[test]
fn wealth_median_of_50000_households_over_1000_periods_is_in_the_band_for_every_seed() {
    // The acceptance run: 20 seeds (each a case) of 50,000 households × 1,000 periods in one invocation.
    let dir = scratch("mc-wealth-seeds");
    let config =
        wealth_config(&dir, "paths = 50_000\nperiods = 1_000\nstatistics = [\"median\"]\nseeds = \"1:20:20\"\n", "");
    let report = parfit(&["run", &config, "--format", "json"]).assert_ok().json();
    let points = report["points"].as_array().unwrap();
    let medians: Vec<f64> = points.iter().map(|p| stat(p, "w", "median")).collect();
    assert_eq!(medians.len(), 20);
    assert_eq!(points.iter().map(|p| p["seed"].as_u64().unwrap()).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    for (seed, m) in medians.iter().enumerate() {
        assert!((m - STATIONARY_MEDIAN).abs() < BAND_50K, "seed {}: median {m}", seed + 1);
    }
    let mean = medians.iter().sum::<f64>() / 20.0;
    assert!((mean - STATIONARY_MEDIAN).abs() < 0.005, "mean of 20 medians {mean} ({medians:?})");
    // Different seeds are different samples.
    assert!(medians.windows(2).all(|w| w[0] != w[1]));
}

#[test]
fn pi_from_a_hundred_million_points_is_within_three_standard_errors() {
    let report = parfit(&["run", "examples/pi/run.toml", "--format", "json"]).assert_ok().json();
    assert_eq!(report["paths"].as_u64().unwrap() * report["periods"].as_u64().unwrap(), 100_000_000);
    let estimate = stat(&report["points"][0], "pi", "mean");
    // 3 × 4·sqrt(p(1 − p)/10^8) with p = π/4 is 4.9e-4.
    assert!((estimate - std::f64::consts::PI).abs() < 4.9e-4, "π ≈ {estimate}");
}

#[test]
fn results_are_bit_identical_for_any_thread_count_and_chunk_size() {
    let dir = scratch("mc-determinism");
    let body = |chunk: &str| {
        format!(
            "paths = 3_001\nperiods = 120\nstatistics = [\"mean\", \"sd\", \"median\", \"q1\", \"q99\", \"min\", \
             \"max\"]\nper_path = true\n{chunk}"
        )
    };
    let sweep = "[sweep]\ns = [0.25, 0.35]\n";
    let mut runs = Vec::new();
    for (threads, chunk) in [("1", ""), ("2", ""), ("2", "chunk = 7"), ("1", "chunk = 3001"), ("2", "chunk = 64")] {
        let case = dir.join(format!("t{threads}-{}", chunk.replace([' ', '='], "")));
        std::fs::create_dir_all(&case).unwrap();
        let config = wealth_config(&case, &body(chunk), sweep);
        let out = case.join("out");
        parfit(&["run", &config, "--threads", threads, "--output", out.to_str().unwrap(), "--format", "csv"])
            .assert_ok();
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        runs.push((format!("--threads {threads} {chunk}"), read("summary.csv"), read("paths.csv")));
    }
    let (_, summary, paths) = &runs[0];
    for (what, s, p) in &runs[1..] {
        assert_eq!(s, summary, "summary differs with {what}");
        assert!(p == paths, "per-path values differ with {what}");
    }
    // Two sweep points × 3,001 paths, and the points differ.
    let rows = read_csv_text(paths);
    assert_eq!(rows.len(), 6002);
    assert_eq!(rows[3001]["s"], "0.35");
    assert_eq!(rows[3001]["path"], "0");
    assert_ne!(rows[0]["w"], rows[3001]["w"]);
}

#[test]
fn bad_configurations_are_explained_with_file_and_place() {
    let dir = scratch("mc-errors");
    let config = wealth_config(&dir, "paths = 10\nperiods = 5\nstatistics = [\"mode\"]\n", "");
    let run = parfit(&["run", &config]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("run.toml:10:14: [montecarlo] statistics unknown statistic 'mode'"), "{}", run.stderr);

    let config = wealth_config(&dir, "paths = 10\nperiods = 5\n", "[sweep]\nbeta = [1, 2]\n");
    let run = parfit(&["run", &config]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("run.toml:12:8: [sweep] the model has no parameter 'beta' (it has: r, s, v1, v2)"),
        "{}",
        run.stderr
    );

    let config = wealth_config(&dir, "paths = 10\nperiod = 5\n", "");
    let run = parfit(&["run", &config]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("run.toml:9:1: unknown field `period`"), "{}", run.stderr);

    std::fs::write(dir.join("bad.mc"), "u_i { w = 1 }\nnext_i { w * normal(2) }\n").unwrap();
    let text = "[model]\nkind = \"montecarlo\"\nsource = \"bad.mc\"\n\n[montecarlo]\npaths = 10\nperiods = 5\n";
    std::fs::write(dir.join("bad.toml"), text).unwrap();
    let run = parfit(&["run", dir.join("bad.toml").to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("bad.mc:2:"), "{}", run.stderr);
    assert!(run.stderr.contains("random draw 'normal' takes 0 arguments"), "{}", run.stderr);
}

/// A Monte Carlo model runs only as paths: `parfit run` on the model file, and a fit, a sample or a simulation at
/// times of a `[model]` naming it, are refused (exit 2) at the file or at `[model] kind`, naming `[montecarlo]`.
#[test]
fn a_monte_carlo_model_is_refused_where_a_model_is_simulated_at_times_or_fitted() {
    let dir = scratch("mc-not-a-model");
    let model = wealth_model().display().to_string();
    let run = parfit(&["run", &model, "--times", "0:9:10"]);
    assert_eq!(run.code, 2, "{run:?}");
    let message = "model kind 'montecarlo' is a Monte Carlo model: it runs as paths, from a configuration with a \
                   [montecarlo] section (paths, periods), not as a model simulated at times, fitted or sampled";
    assert!(run.stderr.contains(&format!("{model}: {message}")), "{}", run.stderr);

    std::fs::write(dir.join("data.csv"), "t,w\n0,1\n1,2\n").unwrap();
    let config = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("seed = 1\n[model]\nkind = \"montecarlo\"\nsource = {model:?}\n{text}")).unwrap();
        path.to_str().unwrap().to_string()
    };
    let times = config("times.toml", "[model.options]\nperiods = 40\n");
    let fit = config(
        "fit.toml",
        "[data]\npath = \"data.csv\"\ntime = \"t\"\noutputs = [\"w\"]\n[parameters]\ns = { start = 0.3, lower = 0.0, \
         upper = 1.0 }\n",
    );
    for (command, path, args) in
        [("run", &times, &["--times", "0:9:10"][..]), ("fit", &fit, &[]), ("sample", &fit, &[])]
    {
        let run = parfit(&[&[command, path.as_str()][..], args].concat());
        assert_eq!(run.code, 2, "{command}: {run:?}");
        assert!(run.stderr.contains(&format!("{path}:3:8: {message}")), "{command}: {}", run.stderr);
    }
}

#[cfg(unix)]
#[test]
fn an_interrupted_run_writes_nothing() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = scratch("mc-interrupt");
    let config = wealth_config(&dir, "paths = 1_000_000\nperiods = 10_000\nper_path = true\nchunk = 256\n", "");
    let out = dir.join("out");
    let mut child = Command::new(parfit_tests::parfit_bin())
        .current_dir(root())
        .args(["run", &config, "--threads", "2", "--output", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be interrupted");
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(60), "the run did not stop promptly");
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing was written"));
    let left: Vec<_> = std::fs::read_dir(&out).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "an interrupted run left {left:?}");
}
