//! The actuarial projection benchmark of BENCHMARKS.md: parfit's `run` over lifelib's 10K and the 100K savings
//! model points and the 10K term-life points, one and two threads (wall, CPU, peak memory of the whole process,
//! median of several runs), and lifelib's own `result_pv()` of both models on their 10K points in the same run
//! (with `--peers`, or whenever the lifelib venv `target/peers/lifelib-venv` is there). It also measures a plain memory
//! bandwidth, to say whether the projection is bound by memory or by arithmetic, and the projection language's
//! models (what `parfit run` runs for the kinds) against the hand-written engine they replaced
//! (`plugins/actuarial/reference`), in the same process: the timing tests of `plugins/actuarial/tests/language.rs`.

use std::process::Command;

use serde_json::{Value, json};

use crate::bench::median;
use crate::{Result, root, target_dir};

const REPS: usize = 7;

/// Run `parfit run CONFIG --threads N --format json` under GNU time: (report, wall s, CPU s, peak RSS MB).
fn measure(config: &str, threads: usize) -> Result<(Value, f64, f64, f64)> {
    let parfit = target_dir().join("release/parfit");
    let stats = target_dir().join("bench/time.txt");
    std::fs::create_dir_all(target_dir().join("bench")).map_err(|e| e.to_string())?;
    let out = Command::new("/usr/bin/time")
        .current_dir(root())
        .args(["-f", "%e %U %S %M", "-o"])
        .arg(&stats)
        .arg(&parfit)
        .args(["run", config, "--format", "json", "--threads", &threads.to_string()])
        .output()
        .map_err(|e| format!("cannot run /usr/bin/time (install Debian's `time` package): {e}"))?;
    if !out.status.success() {
        return Err(format!("parfit run {config} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("parfit's JSON: {e}"))?;
    let text = std::fs::read_to_string(&stats).map_err(|e| format!("{}: {e}", stats.display()))?;
    let f: Vec<f64> = text.lines().last().unwrap_or("").split_whitespace().filter_map(|s| s.parse().ok()).collect();
    let [wall, user, sys, rss_kb] = f[..] else { return Err(format!("unexpected GNU time output: {text}")) };
    Ok((report, wall, user + sys, rss_kb / 1024.0))
}

fn parfit_runs(config: &str, threads: usize) -> Result<Value> {
    let mut runs = Vec::new();
    for _ in 0..REPS {
        runs.push(measure(config, threads)?);
    }
    let report = runs[0].0.clone();
    let point_months = report["point_months"].as_f64().unwrap_or(f64::NAN);
    let projection_s = median(runs.iter().map(|r| r.0["seconds"].as_f64().unwrap_or(f64::NAN)).collect());
    let cpu = median(runs.iter().map(|r| r.2).collect());
    Ok(json!({
        "config": config, "threads": threads, "reps": REPS, "points": report["points"],
        "point_months": point_months,
        "wall_s_median": median(runs.iter().map(|r| r.1).collect()),
        "wall_s_best": runs.iter().map(|r| r.1).fold(f64::INFINITY, f64::min),
        "cpu_s_median": cpu,
        // GNU time prints CPU seconds to 10 ms: the mean of the runs resolves a 10K run better than the median.
        "cpu_s_mean": runs.iter().map(|r| r.2).sum::<f64>() / REPS as f64,
        "peak_rss_mb_max": runs.iter().map(|r| r.3).fold(0.0, f64::max),
        "projection_s_median": projection_s,
        "point_months_per_cpu_s": point_months / cpu,
        "totals": report["totals"],
    }))
}

/// A plain streaming read of 512 MB (best of 5), in GB/s: what a projection that streamed its quantities
/// through memory could at most move.
fn read_bandwidth_gb_s() -> f64 {
    let data = vec![1.0f64; 64 << 20];
    let mut best = f64::INFINITY;
    let mut sink = 0.0;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        // Four accumulators so the adds are not the bottleneck.
        let mut acc = [0.0f64; 4];
        for chunk in data.chunks_exact(4) {
            for k in 0..4 {
                acc[k] += chunk[k];
            }
        }
        sink += acc.iter().sum::<f64>();
        best = best.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    (data.len() * 8) as f64 / best / 1e9
}

/// The number after `label` in `line` (up to the next space, comma, semicolon, `x` or parenthesis).
fn number_after(line: &str, label: &str) -> Option<f64> {
    let rest = &line[line.find(label)? + label.len()..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The engine against the native language model: CashValue_ME on the 100K points on 2 threads (issue 20's
/// acceptance measure) and both kinds' models on their 10K points on 1 thread, present values only, each pair in
/// the same process (best of three; CPU time per thread).
fn engine_vs_language() -> Result<Value> {
    let out = crate::cargo()
        .current_dir(root())
        .args(["test", "--release", "-p", "parfit-actuarial", "--test", "language", "--", "--ignored", "--nocapture"])
        .args(["--test-threads", "1", "cashvalue_me_100k_points_on_2_threads", "per_point_month_cost"])
        .output()
        .map_err(|e| format!("cargo test: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("the engine-vs-language timings failed:\n{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let missing = |what: &str| format!("no {what} in the timing tests' output:\n{text}");
    // A line's figures, from `marker` on (the test harness may print the test's name before them).
    let from = |marker: &str| text.lines().find_map(|l| l.find(marker).map(|i| l[i..].to_string()));
    let race = from("CashValue_ME, ").ok_or_else(|| missing("100K race"))?;
    let race = race.as_str();
    let get = |line: &str, label: &str| number_after(line, label).ok_or_else(|| missing(label));
    let mut r = json!({
        "cashvalue_100k_threads_2": {
            "point_months": get(race, "model_point_100K_ipp_demo.csv.gz, ")?,
            "wall_s_engine": get(race, "wall engine ")?,
            "wall_s_language": get(race, "language native ")?,
            "cpu_ns_per_point_month_engine": get(race, "CPU engine ")?,
            "cpu_ns_per_point_month_language": get(race, "point-month, language ")?,
        }
    });
    for kind in ["CashValue", "BasicTerm"] {
        let line = from(&format!("{kind}: ")).ok_or_else(|| missing(kind))?;
        let line = line.as_str();
        r[format!("{}_10k_threads_1", kind.to_lowercase())] = json!({
            "point_months": get(line, ": ")?,
            "ns_per_point_month_engine": get(line, "engine ")?,
            "ns_per_point_month_interpreted": get(line, "interpreted ")?,
            "ns_per_point_month_native": get(line, "native ")?,
        });
    }
    Ok(r)
}

/// lifelib's `result_pv()` of `model` (`cashvalue` or `basicterm`) on its 10K points (`bench/peers/lifelib_savings.sh`).
fn lifelib(model: &str) -> Result<Value> {
    let script = root().join("bench/peers/lifelib_savings.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--model", model])
        .current_dir(root())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("lifelib_savings.sh --model {model} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("lifelib's JSON: {e}\n{text}"))
}

/// Whether lifelib runs beside parfit: asked for (`--peers`, which installs it), or already installed.
fn with_lifelib(peers: bool) -> bool {
    peers || target_dir().join("peers/lifelib-venv/bin/python").exists()
}

pub fn run(peers: bool) -> Result<Value> {
    let mut r = json!({
        "parfit_10k_threads_1": parfit_runs("bench/actuarial/pv_10k.toml", 1)?,
        "parfit_10k_threads_2": parfit_runs("bench/actuarial/pv_10k.toml", 2)?,
        "parfit_100k_threads_1": parfit_runs("examples/savings/run_100k.toml", 1)?,
        "parfit_100k_threads_2": parfit_runs("examples/savings/run_100k.toml", 2)?,
        "parfit_basicterm_10k_threads_1": parfit_runs("bench/actuarial/basicterm_10k.toml", 1)?,
        "parfit_basicterm_10k_threads_2": parfit_runs("bench/actuarial/basicterm_10k.toml", 2)?,
        "read_bandwidth_gb_s": read_bandwidth_gb_s(),
        "engine_vs_language": engine_vs_language()?,
    });
    if with_lifelib(peers) {
        r["lifelib_10k"] = lifelib("cashvalue")?;
        r["lifelib_basicterm_10k"] = lifelib("basicterm")?;
    }
    Ok(r)
}

pub fn print(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "\n| actuarial projection (`result_pv`) | threads | wall s (median) | CPU s (median) | peak MB | point-months \
         per CPU s |\n|---|---|---|---|---|---|"
    );
    let rows = [
        ("parfit_10k_threads_1", "CashValue_ME"),
        ("parfit_10k_threads_2", "CashValue_ME"),
        ("parfit_100k_threads_1", "CashValue_ME"),
        ("parfit_100k_threads_2", "CashValue_ME"),
        ("parfit_basicterm_10k_threads_1", "BasicTerm_ME"),
        ("parfit_basicterm_10k_threads_2", "BasicTerm_ME"),
    ];
    for (key, model) in rows {
        let v = &r[key];
        println!(
            "| parfit {model}, {} points | {} | {:.3} | {:.3} | {:.0} | {:.3e} |",
            v["points"],
            v["threads"],
            f(&v["wall_s_median"]),
            f(&v["cpu_s_median"]),
            f(&v["peak_rss_mb_max"]),
            f(&v["point_months_per_cpu_s"])
        );
    }
    let peers = [("lifelib_10k", "parfit_10k_threads_1"), ("lifelib_basicterm_10k", "parfit_basicterm_10k_threads_1")];
    for (key, parfit) in peers {
        let Some(l) = r.get(key) else { continue };
        println!(
            "| lifelib {} {} `result_pv()`, {} points | 1 | {:.3} | {:.3} | {:.0} | {:.3e} |",
            l["versions"]["lifelib"].as_str().unwrap_or(""),
            l["model"].as_str().unwrap_or("CashValue_ME"),
            l["points"],
            f(&l["wall_s_median"]),
            f(&l["cpu_s_median"]),
            f(&l["peak_rss_mb"]),
            f(&r[parfit]["point_months"]) / f(&l["cpu_s_median"])
        );
    }
    for (key, parfit) in peers {
        let Some(l) = r.get(key) else { continue };
        let p = &r[parfit];
        // Like with like: whole process against whole process (lifelib's start, imports and model read; parfit's
        // start, tables read and code compiled), and `result_pv()` against the projection run (one thread, so
        // its wall seconds are its CPU seconds); and lifelib's `result_pv()` against parfit's whole process.
        println!(
            "lifelib CPU ÷ parfit CPU, {} on 10K, one thread (parfit's mean or median of {REPS} runs): whole process              ÷ whole process {:.0}×, result_pv() ÷ projection run {:.0}×, result_pv() ÷ whole process {:.0}×",
            l["model"].as_str().unwrap_or("CashValue_ME"),
            f(&l["process_cpu_s"]) / f(&p["cpu_s_mean"]),
            f(&l["cpu_s_median"]) / f(&p["projection_s_median"]),
            f(&l["cpu_s_median"]) / f(&p["cpu_s_mean"])
        );
    }
    println!("plain memory read bandwidth: {:.1} GB/s", f(&r["read_bandwidth_gb_s"]));
    let e = &r["engine_vs_language"];
    let race = &e["cashvalue_100k_threads_2"];
    println!(
        "\n| the language's native code against the hand-written engine (present values only) | engine | language \
         | ratio |\n|---|---|---|---|"
    );
    println!(
        "| CashValue_ME, 100K points, 2 threads, wall s | {:.3} | {:.3} | {:.2}× |",
        f(&race["wall_s_engine"]),
        f(&race["wall_s_language"]),
        f(&race["wall_s_language"]) / f(&race["wall_s_engine"])
    );
    println!(
        "| CashValue_ME, 100K points, 2 threads, CPU ns per point-month | {:.2} | {:.2} | {:.2}× |",
        f(&race["cpu_ns_per_point_month_engine"]),
        f(&race["cpu_ns_per_point_month_language"]),
        f(&race["cpu_ns_per_point_month_language"]) / f(&race["cpu_ns_per_point_month_engine"])
    );
    for (key, name) in [("cashvalue_10k_threads_1", "CashValue_ME"), ("basicterm_10k_threads_1", "BasicTerm_ME")] {
        let v = &e[key];
        println!(
            "| {name}, 10K points, 1 thread, ns per point-month | {:.1} | {:.1} | {:.2}× |",
            f(&v["ns_per_point_month_engine"]),
            f(&v["ns_per_point_month_native"]),
            f(&v["ns_per_point_month_native"]) / f(&v["ns_per_point_month_engine"])
        );
    }
}

/// `cargo xtask bench-savings`: build, run this section alone, print it and write target/bench/savings.json.
pub fn standalone(peers: bool) -> Result {
    crate::run(crate::cargo().args(["build", "--release", "-p", "parfit-cli", "-p", "parfit-actuarial"]))?;
    let r = run(peers)?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("savings.json"), text).map_err(|e| format!("savings.json: {e}"))?;
    print(&r);
    println!("\nfull results: {}", dir.join("savings.json").display());
    Ok(())
}
