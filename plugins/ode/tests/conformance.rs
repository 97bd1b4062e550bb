//! The upstream DiffSL corpus (`tests/upstream/`, see its `SOURCE.md`) against pydiffsol's solutions.
//!
//! Every model text of the diffsl, diffsol and pydiffsol repositories (`models/`, listed with its sources and
//! its run in `manifest.json`) is compiled and run at rtol 1e-8 (atol 1e-8, or the run's tighter atol) on its
//! run's parameters and output times, as native code and interpreted (the two must agree to the bit), and
//! each output at each time is compared with pydiffsol's reference (`references/`, made at rtol 1e-10 by
//! `make_references.py`). A model that DiffSL itself refuses (upstream's negative tests, and texts DiffSL
//! 0.12.4's parser or compiler rejects) must be refused. A model's status is `pass`, `mismatch` (the first
//! output and time that differ, or the failure), `refused` (parfit's message, which carries
//! `file:line:column`), `rejected` (DiffSL and parfit both refuse it: correct), `accepted` (DiffSL refuses it,
//! parfit runs it), `unchecked` (pydiffsol fails on it, parfit runs it: no reference) or `crash` (a panic,
//! caught per model). `tests/upstream/STATUS.md` holds the expected status of each model: the test fails when
//! any status differs from it, in either direction, and on any crash. `PARFIT_BLESS=1` rewrites that file and
//! the "Conformance" section of the plugin's README from the statuses found.
//!
//! Native only: it reads the corpus from disk and catches panics (wasm32 aborts on one).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use parfit_core::Model;
use parfit_ode::{OdeModel, SolverOptions};
use serde_json::Value;

#[path = "../../../tests/support/conformance_record.rs"]
mod conformance_record;
use conformance_record::{Outcome, README_END, Record, placed};

/// The tolerance parfit runs at, and the agreement required: |parfit − ref| ≤ LIMIT · (atol + RTOL · |ref|)
/// per output and time, the criterion of `tests/references.rs` (the tolerances are global-error targets, and
/// 10 of them leave room for the solvers' calibrated excess there). The references are 100× tighter: their
/// own error, checked against scipy where the model is a plain ODE, is below a tenth of one such unit.
const RTOL: f64 = 1e-8;
const LIMIT: f64 = 10.0;

/// The models' directory relative to the package root.
const MODELS: &str = "tests/upstream/models/";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream")
}

fn read_json(name: &str) -> Value {
    let path = corpus().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What DiffSL makes of a text, and so what parfit must.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// pydiffsol solves it: parfit must agree with its solution.
    Solves,
    /// An upstream negative test, or a text DiffSL's parser or compiler rejects: parfit must refuse it.
    Refuses,
    /// DiffSL compiles it but pydiffsol fails in the solve (or panics): there is no reference.
    Fails,
}

/// One model of the manifest, with what pydiffsol made of it.
struct Case {
    /// `repo/name.ds`, relative to `models/`.
    model: String,
    user_facing: bool,
    verdict: Verdict,
    times: Vec<f64>,
    atol: f64,
    params: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let manifest = read_json("manifest.json");
    let index = read_json("references/index.json");
    let models = manifest["models"].as_array().expect("manifest.json: models");
    models
        .iter()
        .map(|m| {
            let model = m["model"].as_str().expect("model").to_string();
            let reference = &index[&model];
            let numbers = |v: &Value| v.as_array().map_or(Vec::new(), |a| a.iter().filter_map(Value::as_f64).collect());
            Case {
                user_facing: m["user_facing"].as_bool() == Some(true),
                verdict: match reference["pydiffsol"].as_str() {
                    _ if m["negative"].as_bool() == Some(true) => Verdict::Refuses,
                    Some("solved") => Verdict::Solves,
                    Some("failed") => Verdict::Fails,
                    _ => Verdict::Refuses,
                },
                times: numbers(&m["run"]["times"]),
                atol: m["run"]["atol"].as_f64().expect("atol"),
                params: numbers(&reference["params"]),
                model,
            }
        })
        .collect()
}

/// pydiffsol's solution: row-major, `values[i * n_outputs + j]` is output `j` at the run's `i`-th time (NaN
/// after a stop without reset).
struct Reference {
    n_outputs: usize,
    values: Vec<f64>,
}

fn read_reference(model: &str) -> Result<Reference, String> {
    let path = corpus().join("references").join(model.replace(".ds", ".csv"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let n_outputs = lines.next().map_or(0, |h| h.split(',').count().saturating_sub(1));
    let mut values = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells: Result<Vec<f64>, _> = line.split(',').skip(1).map(str::parse::<f64>).collect();
        let cells = cells.map_err(|_| format!("{}:{}: not a number", path.display(), i + 2))?;
        values.extend(cells);
    }
    Ok(Reference { n_outputs, values })
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Pass,
    Mismatch(String),
    Refused(String),
    Rejected(String),
    Accepted(String),
    Unchecked,
    Crash(String),
}

impl Status {
    fn word(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Mismatch(_) => "mismatch",
            Status::Refused(_) => "refused",
            Status::Rejected(_) => "rejected",
            Status::Accepted(_) => "accepted",
            Status::Unchecked => "unchecked",
            Status::Crash(_) => "crash",
        }
    }

    fn reason(&self) -> &str {
        match self {
            Status::Pass => "",
            Status::Unchecked => "pydiffsol fails on it: no reference",
            Status::Mismatch(r) | Status::Refused(r) | Status::Rejected(r) | Status::Accepted(r) | Status::Crash(r) => {
                r
            }
        }
    }
}

/// A model's output names and its outputs at the run's times (row-major).
type Outputs = (Vec<String>, Vec<f64>);

/// The outcome of compiling and running a model: `Err` is parfit's refusal; `Ok(Err)` a run that failed
/// (or native code and the interpreter disagreeing).
fn run(case: &Case) -> Result<Result<Outputs, String>, String> {
    let source = std::fs::read_to_string(corpus().join("models").join(&case.model)).map_err(|e| e.to_string())?;
    // The model's path from the package root, where cargo runs tests: the plugin looks up the files a model
    // `read(…)`s in its directory. Messages name the model as the corpus does.
    let path = format!("{MODELS}{}", case.model);
    let compile = |jit: bool| {
        let options = SolverOptions { rtol: RTOL, atol: case.atol, jit, ..SolverOptions::default() };
        OdeModel::compile(&source, &path, options).map_err(|e| e.to_string().replacen(MODELS, "", 1))
    };
    let native = compile(true)?;
    let spec = native.spec();
    let params = if case.verdict == Verdict::Solves { case.params.clone() } else { spec.defaults() };
    if params.len() != spec.params.len() {
        return Ok(Err(format!("{} parameters, DiffSL's `in` has {}", spec.params.len(), params.len())));
    }
    let simulate = |m: &OdeModel| {
        let mut out = vec![f64::NAN; spec.output_len(case.times.len())];
        m.simulate(&mut m.workspace(), &params, &[], &case.times, &mut out).map(|()| out)
    };
    let out = match simulate(&native) {
        Ok(out) => out,
        Err(e) => return Ok(Err(format!("the simulation failed: {e}"))),
    };
    // The browser interprets what runs natively as machine code: the two must agree to the bit.
    let interpreted = compile(false)?;
    let same = |a: &f64, b: &f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    match simulate(&interpreted) {
        Err(e) => return Ok(Err(format!("the interpreted simulation failed: {e}"))),
        Ok(other) => {
            if let Some(i) = out.iter().zip(&other).position(|(a, b)| !same(a, b)) {
                let n = spec.outputs.len();
                let (name, t) = (&spec.outputs[i % n], case.times[i / n]);
                return Ok(Err(format!(
                    "'{name}' at t = {t}: native code {:e}, the interpreter {:e}",
                    out[i], other[i]
                )));
            }
        }
    }
    Ok(Ok((spec.outputs.clone(), out)))
}

/// Whether parfit's value agrees with pydiffsol's: within LIMIT tolerances, or both NaN (after a stop).
fn agrees(got: f64, want: f64, atol: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    (got - want).abs() <= LIMIT * (atol + RTOL * want.abs())
}

/// The first difference between parfit's outputs and the reference, if any.
fn compare(names: &[String], out: &[f64], reference: &Reference, times: &[f64], atol: f64) -> Option<String> {
    if names.len() != reference.n_outputs {
        return Some(format!("{} outputs, pydiffsol has {}", names.len(), reference.n_outputs));
    }
    if out.len() != reference.values.len() {
        return Some(format!("{} values, the reference has {}", out.len(), reference.values.len()));
    }
    let n = names.len().max(1);
    let i = out.iter().zip(&reference.values).position(|(&got, &want)| !agrees(got, want, atol))?;
    let (got, want) = (out[i], reference.values[i]);
    let units = (got - want).abs() / (atol + RTOL * want.abs());
    Some(format!("'{}' at t = {}: {got:e}, pydiffsol {want:e} ({units:.3e} tolerances)", names[i % n], times[i / n]))
}

/// A message's first line (parfit's refusals put the construct there).
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").to_string()
}

fn check(case: &Case) -> Status {
    let outcome = catch_unwind(AssertUnwindSafe(|| run(case)));
    let refuses = case.verdict == Verdict::Refuses;
    match (outcome, refuses) {
        (Err(panic), _) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Status::Crash(format!("panic: {message}"))
        }
        (Ok(Err(refusal)), true) => Status::Rejected(first_line(&refusal)),
        (Ok(Err(refusal)), false) => Status::Refused(first_line(&refusal)),
        (Ok(Ok(Err(failure))), true) => Status::Rejected(first_line(&failure)),
        (Ok(Ok(Ok(_))), true) => Status::Accepted("DiffSL refuses this text; parfit runs it".into()),
        (Ok(Ok(Ok(_))), false) if case.verdict == Verdict::Fails => Status::Unchecked,
        (Ok(Ok(Err(failure))), false) => Status::Mismatch(first_line(&failure)),
        (Ok(Ok(Ok((names, out)))), false) => match read_reference(&case.model) {
            Err(e) => Status::Mismatch(format!("no reference: {e}")),
            Ok(reference) => {
                compare(&names, &out, &reference, &case.times, case.atol).map_or(Status::Pass, Status::Mismatch)
            }
        },
    }
}

const STATUS_FILE: &str = "STATUS.md";
const README_START: &str =
    "<!-- conformance: written by PARFIT_BLESS=1 cargo test -p parfit-ode --test conformance -->";

/// The counts of a set of statuses, by what DiffSL makes of the texts.
fn totals<'a>(statuses: impl Iterator<Item = (&'a Case, &'a Status)>) -> String {
    let mut count = BTreeMap::<(&str, &str), usize>::new();
    for (case, status) in statuses {
        let verdict = match case.verdict {
            Verdict::Solves => "solves",
            Verdict::Refuses => "refuses",
            Verdict::Fails => "fails",
        };
        *count.entry((verdict, "all")).or_default() += 1;
        *count.entry((verdict, status.word())).or_default() += 1;
    }
    let n = |verdict, word| count.get(&(verdict, word)).copied().unwrap_or(0);
    let crashes = n("solves", "crash") + n("refuses", "crash") + n("fails", "crash");
    format!(
        "{} of {} models pydiffsol solves pass ({} mismatch, {} refused); {} of the {} texts DiffSL refuses are \
         refused ({} accepted); of the {} pydiffsol fails on, {} run and {} are refused; {crashes} crash",
        n("solves", "pass"),
        n("solves", "all"),
        n("solves", "mismatch"),
        n("solves", "refused"),
        n("refuses", "rejected"),
        n("refuses", "all"),
        n("refuses", "accepted"),
        n("fails", "all"),
        n("fails", "unchecked"),
        n("fails", "refused") + n("fails", "mismatch"),
    )
}

fn cell(status: &Status) -> String {
    status.reason().replace('|', "\\|").replace('\n', " ")
}

fn status_table(cases: &[Case], statuses: &BTreeMap<String, Status>) -> String {
    let all = cases.iter().map(|c| (c, &statuses[&c.model]));
    let mut text = format!(
        "# Expected status of each model\n\nWritten by `PARFIT_BLESS=1 cargo test -p parfit-ode --test conformance`; \
         read by that test, which fails when a model's status differs. {}.\n\n| model | status | reason |\n|---|---|---|\n",
        totals(all)
    );
    for case in cases {
        let status = &statuses[&case.model];
        let _ = writeln!(text, "| {} | {} | {} |", case.model, status.word(), cell(status));
    }
    text
}

/// The README's generated section: the totals, overall and for the user-facing models, and every model that
/// does not pass (or, for texts DiffSL refuses, is not refused).
fn readme_section(cases: &[Case], statuses: &BTreeMap<String, Status>) -> String {
    let all = cases.iter().map(|c| (c, &statuses[&c.model]));
    let user = cases.iter().filter(|c| c.user_facing).map(|c| (c, &statuses[&c.model]));
    let mut text = format!(
        "{README_START}\nAll {} texts: {}.\n\nUser-facing (READMEs, examples, books, benchmarks; {} texts): {}.\n\n\
         | model | user-facing | status | reason |\n|---|---|---|---|\n",
        cases.len(),
        totals(all),
        cases.iter().filter(|c| c.user_facing).count(),
        totals(user)
    );
    for case in cases {
        let status = &statuses[&case.model];
        if !matches!(status, Status::Pass | Status::Rejected(_) | Status::Unchecked) {
            let facing = if case.user_facing { "yes" } else { "" };
            let _ = writeln!(text, "| {} | {facing} | {} | {} |", case.model, status.word(), cell(status));
        }
    }
    text + README_END
}

#[test]
fn upstream_models_reproduce_pydiffsol() {
    let cases = cases();
    assert_eq!(cases.len(), 126, "the corpus has 126 texts (manifest.json)");
    let statuses: BTreeMap<String, Status> = cases.iter().map(|c| (c.model.clone(), check(c))).collect();
    println!("upstream DiffSL corpus: {}", totals(cases.iter().map(|c| (c, &statuses[&c.model]))));
    let section = readme_section(&cases, &statuses);
    let outcomes = statuses
        .iter()
        .map(|(model, status)| {
            let outcome = Outcome {
                word: status.word(),
                reason: status.reason().to_string(),
                crashed: matches!(status, Status::Crash(_)),
                refusal: if let Status::Refused(m) = status { Some(m.clone()) } else { None },
            };
            (model.clone(), outcome)
        })
        .collect();
    record().check(&outcomes, &status_table(&cases, &statuses), &section);
}

fn record() -> Record {
    Record {
        status_file: corpus().join(STATUS_FILE),
        readme: Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"),
        readme_start: README_START,
    }
}

/// The whole path — running a real model, reading pydiffsol's reference, comparing — catches a value 11
/// tolerances off, and passes one 9 off.
#[test]
fn a_real_model_eleven_tolerances_off_is_a_mismatch() {
    let case = cases().into_iter().find(|c| c.model == "pydiffsol/diffsol_lotka_volterra.ds").expect("in the corpus");
    let reference = read_reference(&case.model).unwrap();
    let (names, mut out) = run(&case).unwrap().unwrap();
    assert_eq!(compare(&names, &out, &reference, &case.times, case.atol), None);
    let (k, want) = (2 * names.len() + 1, reference.values[2 * names.len() + 1]);
    out[k] = want + 9.0 * (case.atol + RTOL * want.abs());
    assert_eq!(compare(&names, &out, &reference, &case.times, case.atol), None);
    out[k] = want + 11.0 * (case.atol + RTOL * want.abs());
    let found = compare(&names, &out, &reference, &case.times, case.atol).unwrap();
    assert!(found.starts_with(&format!("'{}' at t = {}", names[1], case.times[2])), "{found}");
}

#[test]
fn after_a_stop_only_nan_agrees_with_nan() {
    assert!(agrees(f64::NAN, f64::NAN, 1e-8));
    assert!(!agrees(0.0, f64::NAN, 1e-8));
    assert!(!agrees(f64::NAN, 0.0, 1e-8));
    assert!(agrees(1.0 + 1.9e-7, 1.0, 1e-8), "within 10 · (1e-8 + 1e-8 · 1) = 2e-7");
    assert!(!agrees(1.0 + 2.1e-7, 1.0, 1e-8));
    assert!(!agrees(-1.0 + 2.1e-7, -1.0, 1e-8));
}

#[test]
fn refusals_carry_the_model_s_place() {
    assert!(placed("diffsl/a.ds", "diffsl/a.ds:3:14: not supported: mass matrix (line 3)"));
    assert!(!placed("diffsl/a.ds", "diffsl/a.ds: cannot read"));
    assert!(!placed("diffsl/a.ds", "other.ds:3:14: x"));
}

/// The models on disk are the manifest's, each with its reference or pydiffsol's verdict: a refreshed corpus
/// left no stale file behind and misses none.
#[test]
fn the_corpus_on_disk_is_the_manifest_s() {
    let listed: Vec<String> = cases().into_iter().map(|c| c.model).collect();
    let mut on_disk = Vec::new();
    for repo in std::fs::read_dir(corpus().join("models")).unwrap().flatten() {
        for file in std::fs::read_dir(repo.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".ds") {
                on_disk.push(format!("{}/{name}", repo.file_name().to_string_lossy()));
            }
        }
    }
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted);
    let index = read_json("references/index.json");
    for case in cases() {
        assert!(index[&case.model]["pydiffsol"].is_string(), "{}: no pydiffsol verdict", case.model);
        if case.verdict == Verdict::Solves {
            assert!(read_reference(&case.model).is_ok(), "{}: no reference", case.model);
        }
    }
}
