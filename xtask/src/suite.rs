//! The algorithm and ODE-solver benchmarks of `bench/suite.json`: parfit's side (the `parfit-bench` binary, and
//! `parfit sample` for the Lotka–Volterra posterior) and, with `--peers`, pycma, scipy, dynesty and pydiffsol
//! (`bench/peers/suite.sh`) in the same run, so the ratios compare like with like on a noisy machine.

use std::fmt::Write;
use std::process::Command;

use serde_json::{Value, json};

use crate::bench::{median, output_of, parse};
use crate::{Result, cargo, root, target_dir};

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn parfit_bench(section: &str) -> Result<Value> {
    eprintln!("parfit-bench {section}…");
    parse(&output_of(Command::new(target_dir().join("release/parfit-bench")).current_dir(root()).arg(section))?)
}

fn peer(section: &str) -> Result<Value> {
    eprintln!("peers: {section}…");
    let script = root().join("bench/peers/suite.sh");
    parse(&output_of(Command::new("bash").arg(script).current_dir(root()).arg(section))?)
}

/// `parfit sample` on the suite's Lotka–Volterra configuration, one thread, once per seed.
fn parfit_lv(suite: &Value) -> Result<Value> {
    let config = suite["nested_lv"]["config"].as_str().ok_or("suite: nested_lv.config must be a path")?;
    let seeds = suite["nested_lv"]["seeds"].as_array().ok_or("suite: nested_lv.seeds must be a list")?;
    let out = target_dir().join("bench/lv_sample");
    let mut runs = Vec::new();
    for seed in seeds {
        eprintln!("parfit sample {config} --seed {seed}…");
        let mut cmd = Command::new(target_dir().join("release/parfit"));
        cmd.current_dir(root()).args(["sample", config, "--format", "json", "--threads", "1", "--seed"]);
        cmd.arg(seed.to_string()).arg("--output").arg(&out);
        let r = parse(&output_of(&mut cmd)?)?;
        let params = r["parameters"].as_object().cloned().unwrap_or_default();
        runs.push(json!({
            "seed": seed, "log_z": r["log_z"], "log_z_err": r["log_z_err"], "calls": r["evaluations"],
            "seconds": r["seconds"],
            "means": params.iter().map(|(k, v)| (k.clone(), v["mean"].clone())).collect::<serde_json::Map<_, _>>(),
            "sds": params.iter().map(|(k, v)| (k.clone(), v["sd"].clone())).collect::<serde_json::Map<_, _>>(),
        }));
    }
    Ok(json!({ "tool": "parfit", "config": config, "threads": 1, "runs": runs }))
}

/// Every section on the parfit side, and the peers' when asked; a peer that fails is reported, not fatal.
pub fn run(peers: bool) -> Result<Value> {
    let path = root().join("bench/suite.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let suite: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = json!({ "load_average_start": load_average() });
    for (section, peer_name) in [("cmaes", "pycma"), ("lbfgsb", "scipy"), ("nested", "dynesty"), ("ode", "peers")] {
        out[section] = json!({ "parfit": parfit_bench(section)? });
        if peers {
            out[section][peer_name] = peer(section).unwrap_or_else(|e| json!({ "failed": e }));
        }
    }
    out["nested_lv"] = json!({ "parfit": parfit_lv(&suite)? });
    if peers {
        out["nested_lv"]["dynesty"] = peer("nested_lv").unwrap_or_else(|e| json!({ "failed": e }));
    }
    out["load_average_end"] = json!(load_average());
    Ok(out)
}

/// `cargo xtask bench ode [--peers]`: only the ODE solves, parfit's and (with `--peers`) pydiffsol's and
/// scipy's, in `ROUNDS` alternating rounds so that a change of the machine's load reaches both sides; the
/// rounds go to target/bench/ode.json and a table each to stdout.
pub fn ode_only(peers: bool) -> Result {
    const ROUNDS: usize = 2;
    crate::run(cargo().args(["build", "--release", "-p", "parfit-bench"]))?;
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("round {round} of {ROUNDS}");
        let mut r = json!({ "load_average_start": load_average() });
        r["parfit"] = parfit_bench("ode")?;
        if peers {
            r["peers"] = peer("ode").unwrap_or_else(|e| json!({ "failed": e }));
        }
        r["load_average_end"] = json!(load_average());
        rounds.push(r);
    }
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&json!({ "rounds": rounds })).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("ode.json"), text).map_err(|e| format!("ode.json: {e}"))?;
    for (i, r) in rounds.iter().enumerate() {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "round {}; load average (1, 5, 15 min) at its start: {}; at its end: {}\n",
            i + 1,
            r["load_average_start"].as_str().unwrap_or("?"),
            r["load_average_end"].as_str().unwrap_or("?")
        );
        ode_table(&mut t, r);
        println!("{t}");
    }
    Ok(())
}

/// The entries of `section[key]` in the order the parfit side listed them (the suite's order).
fn ordered<'a>(section: &'a Value, key: &str) -> Vec<(String, &'a Value)> {
    let names: Vec<String> = match section["order"].as_array() {
        Some(order) => order.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
        None => section[key].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default(),
    };
    names.into_iter().map(|n| (n.clone(), &section[key][n.as_str()])).filter(|(_, v)| !v.is_null()).collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// `peer / parfit`, or "–" when either is missing.
fn ratio(peer: &Value, parfit: &Value) -> String {
    let r = num(peer) / num(parfit);
    if r.is_finite() { format!("{r:.2}×") } else { "–".into() }
}

/// Seconds in the most readable unit.
fn time(v: &Value) -> String {
    let s = num(v);
    if !s.is_finite() {
        "–".into()
    } else if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn count(v: &Value) -> String {
    let x = num(v);
    if x.is_finite() { format!("{x:.0}") } else { "–".into() }
}

/// Median evaluations with their quartiles, "median (q1–q3)"; the median alone when the quartiles are missing.
fn spread(summary: &Value) -> String {
    let median = count(&summary["evaluations_median"]);
    match (summary["evaluations_q1"].as_f64(), summary["evaluations_q3"].as_f64()) {
        (Some(q1), Some(q3)) => format!("{median} ({q1:.0}–{q3:.0})"),
        _ => median,
    }
}

/// Markdown tables of the suite's results, ready for BENCHMARKS.md.
pub fn tables(r: &Value) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "load average (1, 5, 15 min) at the start of these sections: {}; at the end: {}\n",
        r["load_average_start"].as_str().unwrap_or("?"),
        r["load_average_end"].as_str().unwrap_or("?")
    );
    cmaes_table(&mut t, &r["cmaes"]);
    lbfgsb_table(&mut t, &r["lbfgsb"]);
    nested_table(&mut t, &r["nested"]);
    lv_table(&mut t, &r["nested_lv"]);
    ode_table(&mut t, &r["ode"]);
    t
}

fn cmaes_table(t: &mut String, s: &Value) {
    let (pf, pc) = (&s["parfit"], &s["pycma"]);
    let _ = writeln!(
        t,
        "CMA-ES to f ≤ {} (10-D; successes, then medians over the successful seeds, evaluations with their \
         quartiles; evaluations include the whole generation that reached the target):\n",
        pf["target"]
    );
    let _ = writeln!(
        t,
        "| function | parfit solved | pycma solved | parfit evaluations | pycma evaluations | pycma ÷ parfit \
         evaluations | parfit time | pycma time | pycma ÷ parfit time |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (name, p) in ordered(pf, "problems") {
        let (a, b) = (&p["summary"], &pc["problems"][name.as_str()]["summary"]);
        let _ = writeln!(
            t,
            "| {name} | {}/{} | {}/{} | {} | {} | {} | {} | {} | {} |",
            a["successes"],
            a["runs"],
            b["successes"],
            b["runs"],
            spread(a),
            spread(b),
            ratio(&b["evaluations_median"], &a["evaluations_median"]),
            time(&a["seconds_median"]),
            time(&b["seconds_median"]),
            ratio(&b["seconds_median"], &a["seconds_median"]),
        );
    }
    let _ = writeln!(t);
}

fn lbfgsb_table(t: &mut String, s: &Value) {
    let (pf, sp) = (&s["parfit"], &s["scipy"]);
    let _ = writeln!(
        t,
        "L-BFGS-B on 10-D Rosenbrock in [−5, 5]¹⁰ from {} random starts (evaluations count every function value, \
         finite-difference points included; medians over the starts that reached f ≤ {}):\n",
        pf["gradients"]["forward"]["summary"]["runs"], pf["target"]
    );
    let _ = writeln!(
        t,
        "| gradient | tool | reached | evaluations to target | time to target | final value (median) | evaluations \
         to stop |\n|---|---|---|---|---|---|---|"
    );
    for (gradient, p) in ordered(pf, "gradients") {
        let gradient = gradient.as_str();
        for (tool, v) in [("parfit", &p["summary"]), ("scipy", &sp["gradients"][gradient]["summary"])] {
            let _ = writeln!(
                t,
                "| {gradient} | {tool} | {}/{} | {} | {} | {:.1e} | {} |",
                v["successes"],
                v["runs"],
                spread(v),
                time(&v["seconds_median"]),
                num(&v["final_value_median"]),
                count(&v["evaluations_total_median"]),
            );
        }
        let b = &sp["gradients"][gradient]["summary"];
        let _ = writeln!(
            t,
            "| {gradient} | scipy ÷ parfit | | {} | {} | | {} |",
            ratio(&b["evaluations_median"], &p["summary"]["evaluations_median"]),
            ratio(&b["seconds_median"], &p["summary"]["seconds_median"]),
            ratio(&b["evaluations_total_median"], &p["summary"]["evaluations_total_median"]),
        );
    }
    let _ = writeln!(t);
}

fn nested_table(t: &mut String, s: &Value) {
    let (pf, dy) = (&s["parfit"], &s["dynesty"]);
    let _ = writeln!(
        t,
        "Nested sampling, Gaussian likelihood with a uniform prior on [−5, 5]^d, static runs (500 live points, \
         dlogz 0.01, multi-ellipsoid bounds); medians over seeds:\n"
    );
    let _ = writeln!(
        t,
        "| d | ln Z (exact) | tool | abs. error of ln Z | reported error | within 3 errors | likelihood calls | time \
         |\n|---|---|---|---|---|---|---|---|"
    );
    for (key, p) in ordered(pf, "problems") {
        let q = &dy["problems"][key.as_str()];
        for (tool, v) in [("parfit", &p["summary"]), ("dynesty", &q["summary"])] {
            let _ = writeln!(
                t,
                "| {} | {:.4} | {tool} | {:.3} | {:.3} | {}/{} | {} | {} |",
                p["d"],
                num(&p["truth"]),
                num(&v["abs_error_median"]),
                num(&v["log_z_err_median"]),
                v["within_3_err"],
                v["runs"],
                count(&v["calls_median"]),
                time(&v["seconds_median"]),
            );
        }
        let _ = writeln!(
            t,
            "| {} | | dynesty ÷ parfit | | | | {} | {} |",
            p["d"],
            ratio(&q["summary"]["calls_median"], &p["summary"]["calls_median"]),
            ratio(&q["summary"]["seconds_median"], &p["summary"]["seconds_median"]),
        );
    }
    let _ = writeln!(t);
}

fn lv_table(t: &mut String, s: &Value) {
    let _ = writeln!(
        t,
        "Lotka–Volterra posterior (`{}`: dynamic nested sampling, one thread), per seed; dynesty's likelihood solves \
         the model with pydiffsol (Tsit45 at rtol = atol = {}, matched to parfit's accuracy):\n",
        s["parfit"]["config"].as_str().unwrap_or("?"),
        s["dynesty"]["pydiffsol_tolerance"]
    );
    let _ = writeln!(
        t,
        "| tool | seed | ln Z | reported error | likelihood calls | time | posterior mean α, β, δ, γ |\n|---|---|---|---|---|---|---|"
    );
    let mut medians = Vec::new();
    for tool in ["parfit", "dynesty"] {
        let runs = s[tool]["runs"].as_array().cloned().unwrap_or_default();
        for run in &runs {
            let means = run["means"].as_object().map(|m| {
                ["alpha", "beta", "delta", "gamma"].iter().map(|k| format!("{:.4}", num(&m[*k]))).collect::<Vec<_>>()
            });
            let _ = writeln!(
                t,
                "| {tool} | {} | {:.3} | {:.3} | {} | {} | {} |",
                run["seed"],
                num(&run["log_z"]),
                num(&run["log_z_err"]),
                count(&run["calls"]),
                time(&run["seconds"]),
                means.map(|m| m.join(", ")).unwrap_or_default(),
            );
        }
        let col = |key: &str| json!(median(runs.iter().map(|r| num(&r[key])).collect()));
        medians.push((col("log_z"), col("calls"), col("seconds")));
    }
    if let [(za, ca, sa), (zb, cb, sb)] = &medians[..] {
        let _ = writeln!(
            t,
            "\nMedians: ln Z parfit {:.3}, dynesty {:.3} (difference {:.3}); dynesty ÷ parfit: {} likelihood calls, {} \
             time.\n",
            num(za),
            num(zb),
            num(zb) - num(za),
            ratio(cb, ca),
            ratio(sb, sa)
        );
    }
}

fn ode_table(t: &mut String, s: &Value) {
    let (pf, peers) = (&s["parfit"], &s["peers"]);
    for (accuracy, _) in pf["problems"]
        .as_object()
        .and_then(|p| p.values().next())
        .and_then(|p| p["matched"].as_object())
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            t,
            "ODE solves at matched accuracy {accuracy} (error = max |y − ref| / (floor + |ref|) over all outputs and \
             times ≤ {accuracy}; each tool at the loosest rung of the same tolerance ladder that meets it; time per \
             solve is the median of repeated solves; pydiffsol {} reports no work counters):\n",
            peers["pydiffsol_version"].as_str().unwrap_or("?"),
        );
        let _ = writeln!(
            t,
            "| problem | tool (method) | rtol | error ÷ accuracy | RHS evaluations | time per solve (median) | fastest \
             solve | ÷ parfit (median) | ÷ parfit (fastest) |\n|---|---|---|---|---|---|---|---|---|"
        );
        for (name, p) in ordered(pf, "problems") {
            let name = name.as_str();
            let (base, base_best) = (&p["matched"][accuracy]["median_s"], &p["matched"][accuracy]["best_s"]);
            let rows = [
                ("parfit", p),
                ("pydiffsol", &peers["problems"]["pydiffsol"][name]),
                ("scipy", &peers["problems"]["scipy"][name]),
            ];
            for (tool, v) in rows {
                let m = &v["matched"][accuracy];
                if let Some(why) = v["unavailable"].as_str() {
                    let _ = writeln!(t, "| {name} | {tool} | | {why} | | | | | |");
                    continue;
                }
                if v.is_null() {
                    continue;
                }
                let shown = if m.is_null() {
                    "not reached on the ladder".to_string()
                } else {
                    format!("{:.2}", num(&m["error"]))
                };
                let _ = writeln!(
                    t,
                    "| {name} | {tool} ({}) | {} | {shown} | {} | {} | {} | {} | {} |",
                    v["solver"].as_str().unwrap_or("?"),
                    m["rtol"],
                    count(&m["stats"]["rhs_evaluations"]),
                    time(&m["median_s"]),
                    time(&m["best_s"]),
                    if tool == "parfit" { String::new() } else { ratio(&m["median_s"], base) },
                    if tool == "parfit" { String::new() } else { ratio(&m["best_s"], base_best) },
                );
            }
        }
        let _ = writeln!(t);
    }
}
