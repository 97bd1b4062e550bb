//! `cargo xtask bench`: the Lotka–Volterra and county benchmarks of BENCHMARKS.md, and (with `--peers`) diffid and
//! PySD on the same fits in the same run, so ratios compare like with like on a noisy shared machine; then the
//! algorithm and ODE-solver suite of `bench/suite.json` (see `suite.rs`).

use std::process::Command;

use serde_json::{Value, json};

use crate::{Result, cargo, root, run, suite, target_dir};

/// Seeds of the repeated tutorial fits; diffid's script uses the same count (its seeds 0..9).
const SEEDS: u64 = 10;
const MODEL: &str = "examples/lotka_volterra/lotka_volterra.ds";

pub(crate) fn output_of(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{shown}` failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The JSON object a tool printed last (installers may print before it; it may span several lines).
pub(crate) fn parse(text: &str) -> Result<Value> {
    let starts = text.match_indices('{').map(|(i, _)| i).filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n');
    let starts: Vec<usize> = starts.collect();
    starts
        .iter()
        .rev()
        .find_map(|&i| serde_json::from_str::<Value>(text[i..].trim()).ok().filter(Value::is_object))
        .ok_or_else(|| format!("no JSON object in the output:\n{text}"))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// One LV solve at the true parameters, 500 output times.
fn solve(rtol: &str) -> Result<Value> {
    let example = target_dir().join("release/examples/solve_timing");
    parse(&output_of(Command::new(example).current_dir(root()).args([MODEL, rtol, rtol, "0:100:500"]))?)
}

/// A configuration fitted once per seed; wall seconds are parfit's own (model built, data read, then timed).
fn fits(config: &str, threads: usize, seeds: u64, extra: &[&str]) -> Result<Value> {
    let parfit = target_dir().join("release/parfit");
    let mut runs = Vec::new();
    for seed in 0..seeds {
        let mut cmd = Command::new(&parfit);
        cmd.current_dir(root()).args(["fit", config, "--format", "json", "--threads"]).arg(threads.to_string());
        cmd.args(["--seed", &seed.to_string()]).args(extra);
        runs.push(parse(&output_of(&mut cmd)?)?);
    }
    let walls: Vec<f64> = runs.iter().map(|r| r["seconds"].as_f64().unwrap_or(f64::NAN)).collect();
    let evals: Vec<f64> = runs.iter().map(|r| r["evaluations"].as_f64().unwrap_or(f64::NAN)).collect();
    let sse: Vec<f64> = runs.iter().map(|r| r["value"].as_f64().unwrap_or(f64::NAN)).collect();
    Ok(json!({
        "config": config, "threads": threads, "seeds": seeds, "extra_flags": extra,
        "wall_s_median": median(walls.clone()),
        "wall_s_total": walls.iter().sum::<f64>(),
        "evaluations_median": median(evals.clone()),
        "s_per_evaluation_overall": walls.iter().sum::<f64>() / evals.iter().sum::<f64>(),
        "final_sse_median": median(sse.clone()),
        "final_sse_best": sse.iter().copied().fold(f64::INFINITY, f64::min),
        "final_sse_all": sse,
    }))
}

/// All 3,137 counties of the PySD cookbook's workload; best of three runs (the machine is shared).
fn fit_many(threads: usize) -> Result<Value> {
    let parfit = target_dir().join("release/parfit");
    let out = target_dir().join("bench/counties");
    let mut best: Option<Value> = None;
    for _ in 0..3 {
        let mut cmd = Command::new(&parfit);
        cmd.current_dir(root()).args(["fit-many", "examples/counties/fit.toml", "--format", "json", "--output"]);
        cmd.arg(&out).args(["--threads", &threads.to_string()]);
        let run = parse(&output_of(&mut cmd)?)?;
        if best.as_ref().is_none_or(|b| run["seconds"].as_f64() < b["seconds"].as_f64()) {
            best = Some(run);
        }
    }
    let best = best.unwrap_or_default();
    Ok(json!({ "threads": threads, "cases": best["cases"], "failed": best["failed"], "seconds": best["seconds"] }))
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

/// Rounds of `cargo xtask bench lv`: each round runs parfit's and diffid's fits back to back, so a change in the
/// machine's load hits both tools of a round alike.
const LV_ROUNDS: usize = 3;

/// `cargo xtask bench lv [--peers]`: the Lotka–Volterra comparison alone (one solve, the tutorial fit at matched
/// accuracy on 1 and 2 threads, and with `--peers` diffid's fit), in alternating rounds; per-round ratios and
/// their medians into target/bench/lv.json.
pub fn lv(peers: bool) -> Result {
    run(cargo().args(["build", "--release", "-p", "parfit-cli", "-p", "parfit-ode", "--examples", "--bins"]))?;
    // Target selection above builds the ODE crate only as the examples' rlib; the CLI loads its cdylib.
    run(cargo().args(["build", "--release", "-p", "parfit-ode", "--lib"]))?;
    let tutorial = "examples/lotka_volterra/tutorial.toml";
    let matched = ["--rtol", "1e-6", "--atol", "1e-6"];
    let per_eval = |v: &Value| v["s_per_evaluation_overall"].as_f64().unwrap_or(f64::NAN) * 1e6;
    let mut rounds = Vec::new();
    for round in 0..LV_ROUNDS {
        eprintln!("LV round {} of {LV_ROUNDS}…", round + 1);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let mut r = json!({
            "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            "solve_rtol_1e-6": solve("1e-6")?,
            "parfit_threads_1": fits(tutorial, 1, SEEDS, &matched)?,
            "parfit_threads_2": fits(tutorial, 2, SEEDS, &matched)?,
        });
        if peers {
            let script = root().join("bench/peers/diffid_lv.sh");
            let args = ["--reps", &SEEDS.to_string(), "--solve-reps", "300"];
            let diffid = parse(&output_of(Command::new("bash").arg(script).current_dir(root()).args(args))?)?;
            r["ratio_threads_1"] = json!(per_eval(&diffid["sequential"]) / per_eval(&r["parfit_threads_1"]));
            r["ratio_threads_2"] = json!(per_eval(&diffid["parallel"]) / per_eval(&r["parfit_threads_2"]));
            r["diffid"] = diffid;
        }
        rounds.push(r);
    }
    let med = |f: &dyn Fn(&Value) -> f64| median(rounds.iter().map(f).collect());
    let report = json!({
        "date": output_of(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC"))?.trim(),
        "machine": machine(),
        "command": format!("cargo xtask bench lv{}", if peers { " --peers" } else { "" }),
        "median_parfit_us_per_eval_threads_1": med(&|r| per_eval(&r["parfit_threads_1"])),
        "median_parfit_us_per_eval_threads_2": med(&|r| per_eval(&r["parfit_threads_2"])),
        "median_diffid_us_per_eval_threads_1": med(&|r| per_eval(&r["diffid"]["sequential"])),
        "median_diffid_us_per_eval_threads_2": med(&|r| per_eval(&r["diffid"]["parallel"])),
        "median_ratio_threads_1": med(&|r| r["ratio_threads_1"].as_f64().unwrap_or(f64::NAN)),
        "median_ratio_threads_2": med(&|r| r["ratio_threads_2"].as_f64().unwrap_or(f64::NAN)),
        "rounds": rounds,
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("lv.json"), text).map_err(|e| format!("lv.json: {e}"))?;
    println!(
        "\n{} — {} — `{}`\n",
        report["date"].as_str().unwrap_or(""),
        report["machine"].as_str().unwrap_or(""),
        report["command"].as_str().unwrap_or("")
    );
    println!(
        "| round | load average | one solve, median µs | parfit µs/eval 1 / 2 threads | diffid µs/eval 1 / 2 threads | diffid ÷ parfit 1 / 2 threads |"
    );
    println!("|---|---|---|---|---|---|");
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    for (i, r) in report["rounds"].as_array().into_iter().flatten().enumerate() {
        println!(
            "| {} | {} | {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} |",
            i + 1,
            r["load_average"].as_str().unwrap_or(""),
            f(&r["solve_rtol_1e-6"]["median_us"]),
            per_eval(&r["parfit_threads_1"]),
            per_eval(&r["parfit_threads_2"]),
            per_eval(&r["diffid"]["sequential"]),
            per_eval(&r["diffid"]["parallel"]),
            f(&r["ratio_threads_1"]),
            f(&r["ratio_threads_2"]),
        );
    }
    println!(
        "| median | | | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} |",
        f(&report["median_parfit_us_per_eval_threads_1"]),
        f(&report["median_parfit_us_per_eval_threads_2"]),
        f(&report["median_diffid_us_per_eval_threads_1"]),
        f(&report["median_diffid_us_per_eval_threads_2"]),
        f(&report["median_ratio_threads_1"]),
        f(&report["median_ratio_threads_2"]),
    );
    println!("full results: {}", dir.join("lv.json").display());
    Ok(())
}

pub fn bench(peers: bool) -> Result {
    run(cargo().args(["build", "--release", "-p", "parfit-cli", "-p", "parfit-ode", "--examples", "--bins"]))?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "parfit-ode",
        "-p",
        "parfit-vensim",
        "-p",
        "parfit-actuarial",
        "-p",
        "parfit-bench",
    ]))?;
    crate::bench_mc::build()?;
    crate::bench_vensim::build()?;
    eprintln!("\nbenchmarking (a few minutes; with --peers about a quarter of an hour)…");

    let mut report = json!({
        "date": output_of(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC"))?.trim(),
        "machine": machine(),
        "command": format!("cargo xtask bench{}", if peers { " --peers" } else { "" }),
    });
    report["solve"] = json!({
        "rtol_1e-6": solve("1e-6")?, "rtol_1e-7": solve("1e-7")?, "rtol_1e-8": solve("1e-8")?,
    });
    // The tutorial's fit at the example's tolerance (1e-8), and at 1e-6, where parfit's SSE error at the
    // generating parameters (0.08) is already below diffid's at its defaults (0.31): matched accuracy.
    let tutorial = "examples/lotka_volterra/tutorial.toml";
    let matched = ["--rtol", "1e-6", "--atol", "1e-6"];
    report["tutorial_fit"] = json!({
        "threads_1": fits(tutorial, 1, SEEDS, &[])?,
        "threads_2": fits(tutorial, 2, SEEDS, &[])?,
        "matched_threads_1": fits(tutorial, 1, SEEDS, &matched)?,
        "matched_threads_2": fits(tutorial, 2, SEEDS, &matched)?,
    });
    report["example_fit"] = json!({
        "threads_1": fits("examples/lotka_volterra/fit.toml", 1, 3, &[])?,
        "threads_2": fits("examples/lotka_volterra/fit.toml", 2, 3, &[])?,
    });
    report["counties"] = json!({
        "threads_1": fit_many(1)?,
        "threads_2": fit_many(2)?,
    });
    report["savings"] = crate::savings_bench::run(peers)?;
    if peers {
        let script = root().join("bench/peers/pysd_counties.sh");
        let text = output_of(Command::new("bash").arg(script).current_dir(root()).args(["--counties", "10"]))?;
        report["pysd_counties"] = parse(&text)?;
    }
    if peers {
        let script = root().join("bench/peers/diffid_lv.sh");
        let text =
            output_of(Command::new("bash").arg(script).current_dir(root()).args(["--reps", &SEEDS.to_string()]))?;
        let diffid = parse(&text)?;
        let per_eval = |v: &Value| v["s_per_evaluation_overall"].as_f64().unwrap_or(f64::NAN);
        let ratios = json!({
            "diffid_over_parfit_per_evaluation_sequential":
                per_eval(&diffid["sequential"]) / per_eval(&report["tutorial_fit"]["matched_threads_1"]),
            "diffid_over_parfit_per_evaluation_parallel":
                per_eval(&diffid["parallel"]) / per_eval(&report["tutorial_fit"]["matched_threads_2"]),
            "diffid_over_parfit_single_solve":
                diffid["single_solve"]["median_s"].as_f64().unwrap_or(f64::NAN) * 1e6
                    / report["solve"]["rtol_1e-6"]["median_us"].as_f64().unwrap_or(f64::NAN),
        });
        report["diffid"] = diffid;
        report["ratios"] = ratios;
    }
    report["suite"] = suite::run(peers)?;
    report["montecarlo"] = crate::bench_mc::bench(peers)?;
    report["vensim"] = crate::bench_vensim::bench(peers)?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), &text).map_err(|e| format!("results.json: {e}"))?;
    print_report(&report);
    crate::bench_mc::print(&report["montecarlo"]);
    crate::bench_vensim::print(&report["vensim"]);
    let tables = suite::tables(&report["suite"]);
    std::fs::write(dir.join("suite.md"), &tables).map_err(|e| format!("suite.md: {e}"))?;
    println!("\n{tables}");
    println!(
        "full results: {}; the suite's tables also in {}",
        dir.join("results.json").display(),
        dir.join("suite.md").display()
    );
    Ok(())
}

/// Print the report of the last run again, from `target/bench/results.json` (`cargo xtask bench --report`).
pub fn reprint() -> Result {
    let path = target_dir().join("bench/results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (run `cargo xtask bench` first)", path.display()))?;
    let report: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    print_report(&report);
    if report.get("montecarlo").is_some() {
        crate::bench_mc::print(&report["montecarlo"]);
    }
    if report.get("vensim").is_some() {
        crate::bench_vensim::print(&report["vensim"]);
    }
    println!("\n{}", suite::tables(&report["suite"]));
    Ok(())
}

fn print_report(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "\n{} — {} — `{}`\n",
        r["date"].as_str().unwrap_or(""),
        r["machine"].as_str().unwrap_or(""),
        r["command"].as_str().unwrap_or("")
    );
    if let Some(savings) = r.get("savings") {
        crate::savings_bench::print(savings);
    }
    println!("| one LV solve, 500 outputs, true parameters | best µs | median µs |\n|---|---|---|");
    for key in ["rtol_1e-6", "rtol_1e-7", "rtol_1e-8"] {
        let s = &r["solve"][key];
        println!(
            "| parfit DOPRI5, rtol = atol = {} | {:.1} | {:.1} |",
            &key[5..],
            f(&s["best_us"]),
            f(&s["median_us"])
        );
    }
    if let Some(d) = r.get("diffid") {
        println!(
            "| diffid BDF (rtol 1e-6, atol 1e-8) | {:.1} | {:.1} |",
            f(&d["single_solve"]["min_s"]) * 1e6,
            f(&d["single_solve"]["median_s"]) * 1e6
        );
    }
    println!(
        "\n| LV fit ({} seeds) | threads | median s | median evals | µs per eval (total/total) | median SSE | best SSE |",
        SEEDS
    );
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, v: &Value| {
        println!(
            "| {name} | {} | {:.3} | {} | {:.1} | {:.1} | {:.2} |",
            v["threads"],
            f(&v["wall_s_median"]),
            f(&v["evaluations_median"]),
            f(&v["s_per_evaluation_overall"]) * 1e6,
            f(&v["final_sse_median"]),
            f(&v["final_sse_best"])
        )
    };
    for key in ["threads_1", "threads_2", "matched_threads_1", "matched_threads_2"] {
        let name = if key.starts_with("matched") {
            "parfit tutorial.toml, rtol 1e-6"
        } else {
            "parfit tutorial.toml, rtol 1e-8"
        };
        row(name, &r["tutorial_fit"][key]);
    }
    for key in ["threads_1", "threads_2"] {
        row("parfit fit.toml (horizons + polish)", &r["example_fit"][key]);
    }
    println!(
        "\n| all 3,137 counties (fit-many, Levenberg–Marquardt) | threads | wall s (best of 3) | ms per county |\n|---|---|---|---|"
    );
    for key in ["threads_1", "threads_2"] {
        let c = &r["counties"][key];
        println!("| parfit | {} | {:.3} | {:.3} |", c["threads"], f(&c["seconds"]), f(&c["seconds"]) * 1e3 / 3137.0);
    }
    if let Some(p) = r.get("pysd_counties") {
        for mode in ["serial", "pool2"] {
            let v = &p[mode];
            println!(
                "| PySD + scipy L-BFGS-B ({} counties, extrapolated) | {} | {:.0} | {:.0} |",
                v["counties"],
                v["workers"],
                f(&v["extrapolated_seconds_all_counties"]),
                f(&v["seconds_per_county"]) * 1e3
            );
        }
    }
    if let Some(d) = r.get("diffid") {
        for (mode, threads) in [("sequential", 1), ("parallel", 2)] {
            let v = &d[mode];
            println!(
                "| diffid {} CMA-ES (BDF 1e-6/1e-8) | {threads} | {:.3} | {} | {:.1} | {:.1} | {:.2} |",
                d["diffid_version"].as_str().unwrap_or(""),
                f(&v["wall_s_median"]),
                801,
                f(&v["s_per_evaluation_overall"]) * 1e6,
                f(&v["final_sse_median"]),
                f(&v["best"]["sse"])
            );
        }
        println!("\nratios (diffid ÷ parfit at matched accuracy): {}", r["ratios"]);
    }
}
