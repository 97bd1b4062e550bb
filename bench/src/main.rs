//! The parfit side of `cargo xtask bench`: parfit's optimisers, nested sampler and ODE solvers on the problems of
//! `bench/suite.json`, which the peer scripts in `bench/peers/` read too, so both sides run the same definitions,
//! bounds, starts and budgets.
//!
//! ```text
//! parfit-bench SECTION [SUITE.json]     SECTION: cmaes | lbfgsb | nested | ode
//! ```
//!
//! Prints one JSON object on stdout. Everything runs on one thread: the peers are sequential, and these are
//! comparisons of algorithms and per-evaluation cost, not of parallel speed-up.

mod functions;
mod nested;
mod ode;
mod optim;
mod timing;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

type Result<T> = std::result::Result<T, String>;

const USAGE: &str = "usage: parfit-bench cmaes|lbfgsb|nested|ode [SUITE.json]   (default bench/suite.json)";

/// The workspace root: the suite's relative paths (models, references) are relative to it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench sits in the workspace root").to_path_buf()
}

/// `suite[key]`, which must exist.
fn field<'a>(suite: &'a Value, key: &str) -> Result<&'a Value> {
    suite.get(key).ok_or_else(|| format!("the suite has no \"{key}\""))
}

fn f64_of(v: &Value, key: &str) -> Result<f64> {
    v.get(key).and_then(Value::as_f64).ok_or_else(|| format!("\"{key}\" must be a number in {v}"))
}

fn usize_of(v: &Value, key: &str) -> Result<usize> {
    v.get(key).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| format!("\"{key}\" must be a count in {v}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| format!("\"{key}\" must be a string in {v}"))
}

fn f64s_of(v: &Value, key: &str) -> Result<Vec<f64>> {
    let list = v.get(key).and_then(Value::as_array).ok_or_else(|| format!("\"{key}\" must be a list in {v}"))?;
    list.iter().map(|x| x.as_f64().ok_or_else(|| format!("\"{key}\": {x} is not a number"))).collect()
}

fn run(args: &[String]) -> Result<Value> {
    let section = args.first().ok_or(USAGE)?;
    let path = args.get(1).map_or_else(|| root().join("bench/suite.json"), PathBuf::from);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let suite: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match section.as_str() {
        "cmaes" => optim::cmaes(field(&suite, "cmaes")?),
        "lbfgsb" => optim::lbfgsb(field(&suite, "lbfgsb")?),
        "nested" => nested::gaussian(field(&suite, "nested_gaussian")?),
        "ode" => ode::problems(field(&suite, "ode")?),
        other => Err(format!("unknown section '{other}'\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("parfit-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
