//! `cargo xtask bench python`: the Python package's benchmarks (BENCHMARKS.md, "The Python package"). The release
//! wheel (`python::build(true)`) and the release CLI; then (a) the PySD cookbook's county fit the cookbook's way —
//! PySD 3.14.3 + scipy's L-BFGS-B per county on a sample — against `parfit.fit_many` over every county in the
//! same Python process (`bench/python/counties.py`, in the PySD venv with the wheel installed there), and (b) the
//! Python layer's overhead over the CLI on the Lotka–Volterra fit (`bench/python/overhead.py`, in the package's
//! venv), on the requested threads and on one. Results into `target/bench/python.json`, a Markdown summary on stdout.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::bench::{machine, output_of, parse};
use crate::{Result, cargo, python, root, run, target_dir};

/// The value following `flag` in `args`, parsed, or `default`.
fn option(args: &[String], flag: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == flag) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag} needs a positive whole number")),
    }
}

/// `cargo xtask bench python [--counties N] [--runs N] [--threads N]`.
pub fn bench(args: &[String]) -> Result {
    let counties = option(args, "--counties", 10)?;
    let runs = option(args, "--runs", 20)?;
    let threads = option(args, "--threads", std::thread::available_parallelism().map_or(1, |n| n.get()))?;
    let wheel = python::build(true)?;
    run(cargo().args(["build", "--release", "-p", "parfit-cli", "--bins"]))?;
    let cli = target_dir().join("release").join(format!("parfit{}", std::env::consts::EXE_SUFFIX));

    let mut report = json!({
        "date": output_of(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC"))?.trim(),
        "machine": machine(),
        "command": format!("cargo xtask bench python --counties {counties} --runs {runs} --threads {threads}"),
        "wheel": wheel.file_name().map(|n| n.to_string_lossy().into_owned()),
    });

    eprintln!("\nthe Python layer over the CLI on the LV fit ({runs} runs each)…");
    let venv_python = python::venv().join("bin/python");
    // On the requested threads, and on one: with one pool thread the machine's other work cannot schedule the
    // two front ends' threads differently, so that run isolates the Python layer's own cost.
    let mut overheads = Vec::new();
    for n in if threads == 1 { vec![1] } else { vec![threads, 1] } {
        let mut overhead = Command::new(&venv_python);
        overhead.current_dir(root()).arg("bench/python/overhead.py").arg("--cli").arg(&cli);
        overhead.args(["--runs", &runs.to_string(), "--threads", &n.to_string(), "--output"]);
        overhead.arg(target_dir().join("bench/python-lv"));
        overheads.push(parse(&output_of(&mut overhead)?)?);
    }
    report["overhead"] = Value::Array(overheads);

    eprintln!("\nPySD + scipy on {counties} counties, parfit.fit_many on all, in one process…");
    let pysd = PathBuf::from(output_of(Command::new("bash").arg(root().join("bench/peers/pysd_venv.sh")))?.trim());
    run(Command::new(&pysd).args(["-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall"]).arg(&wheel))?;
    let thread_counts = if threads == 1 { "1".to_string() } else { format!("1,{threads}") };
    let mut counties_cmd = Command::new(&pysd);
    counties_cmd.current_dir(root()).arg("bench/python/counties.py");
    counties_cmd.args(["--counties", &counties.to_string(), "--threads", &thread_counts]);
    counties_cmd.args(["--workers", &threads.to_string()]);
    report["counties"] = parse(&output_of(&mut counties_cmd)?)?;

    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("python.json"), text).map_err(|e| format!("python.json: {e}"))?;
    print(&report);
    println!("\nfull results: {}", dir.join("python.json").display());
    Ok(())
}

fn print(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!("\n{} — {} — `{}`", text(&r["date"]), text(&r["machine"]), text(&r["command"]));
    for o in r["overhead"].as_array().into_iter().flatten() {
        println!(
            "\nLV fit (`examples/lotka_volterra/fit.toml`), {} threads, median of {} runs each; same SSE, point and \
             evaluations as the CLI in every run: {}\n",
            o["threads"], o["runs"], o["identical_to_cli"]
        );
        println!(
            "| measure | CLI median (fastest) | Python median (fastest) | Python ÷ CLI: medians, pairs, fastest \
             |\n|---|---|---|---|"
        );
        let ms = |key: &str| f(&o[key]) * 1e3;
        println!(
            "| wall: `parfit fit` process vs `parfit.fit(...)` call | {:.1} ms ({:.1}) | {:.1} ms ({:.1}) | {:.3}, {:.3}, \
             {:.3} |",
            ms("cli_wall_s_median"),
            ms("cli_wall_s_min"),
            ms("python_wall_s_median"),
            ms("python_wall_s_min"),
            f(&o["python_wall_over_cli_wall"]),
            f(&o["paired_python_wall_over_cli_wall_median"]),
            ms("python_wall_s_min") / ms("cli_wall_s_min")
        );
        println!(
            "| the fit's own `seconds` | {:.1} ms ({:.1}) | {:.1} ms ({:.1}) | {:.3}, {:.3}, {:.3} |",
            ms("cli_seconds_median"),
            ms("cli_seconds_min"),
            ms("python_seconds_median"),
            ms("python_seconds_min"),
            f(&o["python_seconds_over_cli_seconds"]),
            f(&o["paired_python_seconds_over_cli_seconds_median"]),
            ms("python_seconds_min") / ms("cli_seconds_min")
        );
        println!(
            "| CPU (user + system) | {:.1} ms | {:.1} ms | {:.3} (medians) |",
            ms("cli_cpu_s_median"),
            ms("python_cpu_s_median"),
            f(&o["python_cpu_over_cli_cpu"])
        );
        println!(
            "| wall: `parfit fit` process vs a fresh `python -c \"import parfit; parfit.fit(...)\"` | {:.1} ms ({:.1}) | \
             {:.1} ms ({:.1}) | {:.3} (medians; `python -c \"import parfit\"` alone: {:.1} ms) |",
            ms("cli_wall_s_median"),
            ms("cli_wall_s_min"),
            ms("python_process_wall_s_median"),
            ms("python_process_wall_s_min"),
            f(&o["python_process_over_cli_wall"]),
            ms("python_import_process_wall_s_median")
        );
    }
    let c = &r["counties"];
    let p = &c["pysd"];
    println!(
        "\nCounties: PySD {} + scipy {} L-BFGS-B on the first {} counties: {:.2} s per county ({:.2} s CPU), {} \
         evaluations median, extrapolated {:.1} h for all 3,137; median SSE {:.3e}\n",
        c["versions"]["pysd"].as_str().unwrap_or("?"),
        c["versions"]["scipy"].as_str().unwrap_or("?"),
        p["counties"],
        f(&p["seconds_per_county"]),
        f(&p["cpu_seconds_per_county"]),
        p["median_evaluations"],
        f(&p["extrapolated_seconds_all_counties"]) / 3600.0,
        f(&p["median_sse"])
    );
    let pool = &c["pysd_pool"];
    if pool.is_object() {
        println!(
            "The cookbook's parallel version (the sample split over a multiprocessing.Pool of {}): {:.2} s per \
             county, the same fits as serially: {}\n",
            pool["workers"],
            f(&pool["seconds_per_county"]),
            pool["same_fits_as_serial"]
        );
    }
    println!(
        "| parfit.fit_many, all 3,137 counties | threads | wall | per county | evaluations (median) | SSE on the \
         sample (median) | PySD serial ÷ parfit per county | PySD pool ÷ parfit per county |\n|---|---|---|---|---|---|---|---|"
    );
    for run in c["parfit"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} | {:.2} s | {:.3} ms | {} | {:.3e} | {:.0}× | {} |",
            run["algorithm"].as_str().unwrap_or(""),
            run["threads"],
            f(&run["wall_seconds"]),
            f(&run["seconds_per_county"]) * 1e3,
            run["median_evaluations"],
            f(&run["sample_median_sse"]),
            f(&run["pysd_over_parfit_per_county"]),
            run["pysd_pool_over_parfit_per_county"].as_f64().map_or("—".to_string(), |r| format!("{r:.0}×"))
        );
    }
}
