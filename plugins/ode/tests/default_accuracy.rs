//! Default tolerances honour the documented accuracy on the upstream models: every model of the conformance
//! corpus (`tests/upstream/`) that passes there at rtol 1e-8 is solved at the default `rtol = atol = 1e-6`
//! (or 100× the run's tighter atol) with `auto` and with `bdf`, and must stay within 10 tolerances
//! (`|y − ref| / (atol + rtol·|ref|)`) of pydiffsol's reference at 1e-10 at every output and time.
//!
//! Native only: it reads the corpus from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use parfit_core::Model;
use parfit_ode::{Method, OdeModel, SolverOptions};
use serde_json::Value;

const LIMIT: f64 = 10.0;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream")
}

fn read(name: &str) -> String {
    let path = corpus().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The models STATUS.md lists as passing, e.g. `| diffsol/robertson_ode.ds | pass |  |`.
fn passing() -> Vec<String> {
    read("STATUS.md")
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 2 && cells[2] == "pass").then(|| cells[1].to_string())
        })
        .collect()
}

#[test]
fn passing_upstream_models_are_within_10_tolerances_at_default_tolerances() {
    let manifest: Value = serde_json::from_str(&read("manifest.json")).expect("manifest.json");
    let index: Value = serde_json::from_str(&read("references/index.json")).expect("index.json");
    let models = passing();
    assert!(models.len() >= 40, "only {} passing models in STATUS.md", models.len());
    let (mut worst, mut at) = (0.0, String::new());
    for model in &models {
        let entry = manifest["models"].as_array().and_then(|m| m.iter().find(|e| e["model"] == model.as_str()));
        let run = &entry.unwrap_or_else(|| panic!("{model}: not in manifest.json"))["run"];
        let numbers = |v: &Value| -> Vec<f64> {
            v.as_array().map_or(Vec::new(), |a| a.iter().filter_map(Value::as_f64).collect())
        };
        let times = numbers(&run["times"]);
        let params = numbers(&index[model.as_str()]["params"]);
        let atol = (100.0 * run["atol"].as_f64().expect("atol")).min(1e-6);
        let reference: Vec<f64> = read(&format!("references/{}", model.replace(".ds", ".csv")))
            .lines()
            .skip(1)
            .flat_map(|l| l.split(',').skip(1).map(|c| c.parse::<f64>().expect("a number")).collect::<Vec<_>>())
            .collect();
        for solver in [Method::Auto, Method::Bdf] {
            let opts = SolverOptions { rtol: 1e-6, atol, solver, ..SolverOptions::default() };
            // Named by its path, so the files a model `read(…)`s are found next to it.
            let path = corpus().join("models").join(model);
            let m = OdeModel::compile(&read(&format!("models/{model}")), &path.to_string_lossy(), opts)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut ws = m.workspace();
            let mut out = vec![f64::NAN; m.spec().output_len(times.len())];
            m.simulate(&mut ws, &params, &[], &times, &mut out).unwrap_or_else(|e| panic!("{model} ({solver:?}): {e}"));
            assert_eq!(out.len(), reference.len(), "{model}: outputs");
            for (k, (y, r)) in out.iter().zip(&reference).enumerate() {
                let e = if y.is_nan() && r.is_nan() { 0.0 } else { (y - r).abs() / (atol + 1e-6 * r.abs()) };
                assert!(e <= LIMIT, "{model} ({solver:?}): {e} tolerances off at output {k}: {y} vs {r}");
                if e > worst {
                    (worst, at) = (e, format!("{model} ({solver:?})"));
                }
            }
        }
    }
    println!("{} models: largest error {worst:.3} tolerances ({at})", models.len());
}
