//! The SDXorg test-models suite (`tests/test-models/`, see its `SOURCE.md`) against Vensim's own output.
//!
//! Every model that ships a Vensim reference (`output.tab` or `output.csv` beside it) is compiled with its
//! directory as the source of its data files and run on the times Vensim saved, as native code and
//! interpreted (the two must agree to the bit); every reference column is compared with the model's value of
//! the variable it names at every saved time (a constant's, or a control value's, is its value). A model's
//! status is `pass`, `mismatch` (the first column and time that differ), `refused` (the reader's message,
//! which carries `file:line:column`) or `crash` (a panic, caught per model). `tests/test-models/STATUS.md`
//! holds the expected status of each model: the test fails when any status differs from it, in either
//! direction, and on any crash. `PARFIT_BLESS=1` rewrites that file and the "Conformance" section of the
//! plugin's README from the statuses found.
//!
//! Native only: it reads the corpus from disk and catches panics (wasm32 aborts on one).
#![cfg(not(target_arch = "wasm32"))]

use parfit_core::math;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use parfit_core::Model;
use parfit_vensim::data::Files;
use parfit_vensim::{Options, VensimModel};

#[path = "../../../tests/support/conformance_record.rs"]
mod conformance_record;
use conformance_record::{Outcome, README_END, Record, placed};

/// Relative tolerance, of values and of times. Vensim writes 6 significant digits, so a reference value is
/// rounded by up to 5e-6 of itself (10.03125 is written 10.0312): 1e-5 is the tightest round tolerance above
/// that. Measured: at 1e-6, 49 models that agree to 1e-5 fail on that rounding alone.
const RTOL: f64 = 1e-5;

/// The floor, as a fraction of the column's largest magnitude, under which a value counts as that small
/// value: |got − ref| ≤ RTOL · max(|ref|, FLOOR · max |column|) (+ the file's resolution), never tighter than
/// 1e-6 of the column's scale. Many references come from Vensim's single-precision build, whose every
/// operation rounds by up to 6e-8 of its operands — of the column's size — so a value passing through zero
/// (an oscillator, a net flow, a difference that should vanish) carries there an error of some float32 ulps
/// of the column's scale, accumulated over the steps: relative to the small value itself, any error.
/// Measured (the floor each model needs): tests/arithmetics 0.0012 (Vensim writes 5.96046e-8, 2^-24, for
/// 0), tests/trig 0.011, tests/subscripted_delays 0.019, samples/simple_harmonic_oscillator 0.025, tests/exp
/// 0.06 (-0.200003 for -0.2); 0.1 is 1e-6 of the scale, 8 float32 ulps.
const FLOOR: f64 = 0.1;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test-models")
}

/// The models with a Vensim reference, as paths relative to the corpus (`tests/abs/test_abs.mdl`), sorted.
fn models() -> Vec<String> {
    let mut models = Vec::new();
    for group in ["tests", "samples"] {
        let Ok(dirs) = std::fs::read_dir(corpus().join(group)) else { continue };
        for dir in dirs.flatten() {
            let dir = dir.path();
            if reference_file(&dir).is_none() {
                continue;
            }
            for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if name.to_lowercase().ends_with(".mdl") {
                    let dir_name = dir.file_name().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
                    models.push(format!("{group}/{dir_name}/{name}"));
                }
            }
        }
    }
    models.sort();
    models
}

/// Other Vensim outputs beside a model (`.tab` files but the reference): where its data variables without an
/// equation take their values, as PySD's own tests give them (`tests/data_from_other_model/data.tab`).
fn vensim_outputs(dir: &Path) -> Vec<String> {
    let names = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let mut tabs: Vec<String> = names
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .filter(|name| name.to_lowercase().ends_with(".tab") && name != "output.tab")
        .collect();
    tabs.sort();
    tabs
}

fn reference_file(dir: &Path) -> Option<PathBuf> {
    ["output.tab", "output.csv"].iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

/// Vensim's saved output: variable names (after `Time`), the saved times, and each row's values (`None`
/// where Vensim left the cell empty: a constant is written at the first time only).
struct Reference {
    names: Vec<String>,
    times: Vec<f64>,
    rows: Vec<Vec<Option<Written>>>,
}

/// A value as the file writes it, and how far the value it stands for may be from it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Written {
    value: f64,
    resolution: f64,
}

/// The power of ten of a written number's last digit, and whether it is written with an exponent (`0.02575`
/// → (-5, false), `9.10E-05` → (-7, true), `120` → (0, false)).
fn last_place(text: &str) -> (i32, bool) {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.parse::<i32>().unwrap_or(0))),
        None => (text, None),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    (exponent.unwrap_or(0) - decimals, exponent.is_some())
}

fn read_reference(path: &Path) -> Result<Reference, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Vensim on Windows writes Latin-1 (tests/unicode_characters).
    let text = String::from_utf8(bytes).unwrap_or_else(|e| e.into_bytes().iter().map(|&b| char::from(b)).collect());
    let separator = if path.extension().is_some_and(|e| e == "csv") { ',' } else { '\t' };
    parse_reference(&text, separator).map_err(|e| format!("{}:{e}", path.display()))
}

/// A reference's text; an error starts with its line number.
fn parse_reference(text: &str, separator: char) -> Result<Reference, String> {
    // Older files end lines with a lone CR.
    let mut lines = text.split(['\r', '\n']).filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("1: empty")?;
    let mut names = header.split(separator).map(str::to_string);
    if names.next().is_none_or(|t| !t.trim().eq_ignore_ascii_case("time")) {
        return Err("1: the first column is not Time".into());
    }
    let names: Vec<String> = names.map(|n| header_name(&n)).collect();
    // Each value's last written place. A number with an exponent keeps its mantissa's trailing zeros
    // (`9.10E-05`: three digits), so its last digit says how precise it is; one without drops them (`10` is
    // 10.0000), so only the file's widest run of decimals says that (tests/trend writes 5 decimals throughout).
    let (mut times, mut rows, mut decimals) = (Vec::new(), Vec::new(), i32::MIN);
    for (i, line) in lines.enumerate() {
        let mut row = Vec::new();
        for cell in line.split(separator).map(str::trim) {
            if cell.is_empty() {
                row.push(None);
                continue;
            }
            let value = cell.parse::<f64>().map_err(|_| format!("{}: not a number: '{cell}'", i + 2))?;
            let (place, scientific) = last_place(cell);
            if !scientific {
                decimals = decimals.max(-place);
            }
            row.push(Some((value, scientific.then_some(place))));
        }
        let mut row = row.into_iter();
        times.push(row.next().flatten().ok_or(format!("{}: no time", i + 2))?.0);
        rows.push(row.collect::<Vec<_>>());
    }
    let half_unit = |place: i32| 0.5 * math::powi(10f64, place.clamp(-300, 300));
    let rows = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| {
                    cell.map(|(value, place)| Written { value, resolution: half_unit(place.unwrap_or(-decimals)) })
                })
                .collect()
        })
        .collect();
    Ok(Reference { names, times, rows })
}

/// A name as Vensim compares names: a quoted name's quotes dropped (`\"` inside is a quote), case folded,
/// underscores as spaces, runs of spaces as one, and no spaces around a subscript's brackets and commas
/// (`Stock[ A1, b_2 ]` is `stock[a1,b 2]`).
fn canonical(name: &str) -> String {
    let name = name.trim();
    let unquoted = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\""),
        None => name.to_string(),
    };
    let folded = unquoted.replace('_', " ").to_lowercase();
    let words = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    words.replace(" [", "[").replace("[ ", "[").replace(" ]", "]").replace(" ,", ",").replace(", ", ",")
}

/// A header cell of Vensim's output as the name it stands for: a cell in double quotes is quoted as in CSV
/// (`"""a "" b"""` is the quoted name `"a " b"`).
fn header_name(cell: &str) -> String {
    let cell = cell.trim();
    match cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(inner) if cell.len() >= 2 => inner.replace("\"\"", "\""),
        _ => cell.to_string(),
    }
}

/// One model's outcome.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    Pass,
    Mismatch(String),
    Refused(String),
    Crash(String),
}

impl Status {
    fn word(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Mismatch(_) => "mismatch",
            Status::Refused(_) => "refused",
            Status::Crash(_) => "crash",
        }
    }

    fn reason(&self) -> &str {
        match self {
            Status::Pass => "",
            Status::Mismatch(r) | Status::Refused(r) | Status::Crash(r) => r,
        }
    }
}

/// A model's values at the saved times: each name (canonical) and its column over the times.
struct Run {
    columns: BTreeMap<String, Vec<f64>>,
}

/// Compile and run a model (path relative to the corpus) on `times`. `Err` is a refusal.
fn run(model: &str, times: &[f64]) -> Result<Result<Run, String>, String> {
    let path = corpus().join(model);
    let source = std::fs::read_to_string(&path).map_err(|e| format!("{model}: {e}"))?;
    let files = path.parent().map(|dir| Files::Dir(dir.to_path_buf()));
    let data_outputs = path.parent().map(vensim_outputs).unwrap_or_default();
    let compile = |jit: bool| {
        let options = Options { files: files.clone(), jit, data_outputs: data_outputs.clone(), ..Options::default() };
        VensimModel::compile_with(&source, model, &options).map_err(|e| e.to_string())
    };
    let m = compile(true)?;
    // Each of Vensim's times is one of the model's saved times: Vensim writes times to 6 significant digits
    // too (12.34375 as 12.3438), and some references leave out rows (tests/get_constants_incomplete_subscript
    // starts at time 1).
    let step = m.control().time_step;
    let schedule = m.save_times();
    let mut saved = Vec::with_capacity(times.len());
    for &t in times {
        match schedule.iter().find(|&&s| (s - t).abs() <= RTOL * t.abs().max(step)) {
            Some(&s) => saved.push(s),
            None => {
                let (first, last) = (schedule.first(), schedule.last());
                return Ok(Err(format!(
                    "Vensim saved time {t}, not among the model's {} saved times ({first:?} to {last:?})",
                    schedule.len()
                )));
            }
        }
    }
    let spec = m.spec();
    let simulate = |m: &VensimModel| {
        let mut out = vec![f64::NAN; spec.output_len(saved.len())];
        let inputs = vec![f64::NAN; spec.inputs.len()];
        m.simulate(&mut m.workspace(), &spec.defaults(), &inputs, &saved, &mut out).map(|()| out)
    };
    let out = match simulate(&m) {
        Ok(out) => out,
        Err(e) => return Ok(Err(format!("the simulation failed: {e}"))),
    };
    // The browser interprets what runs natively as machine code: the two must agree to the bit.
    let interpreted = compile(false)?;
    let n_out = spec.outputs.len();
    let same = |a: &f64, b: &f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    match simulate(&interpreted) {
        Err(e) => return Ok(Err(format!("the interpreted simulation failed: {e}"))),
        Ok(other) => {
            if let Some(i) = out.iter().zip(&other).position(|(a, b)| !same(a, b)) {
                let (name, t) = (&spec.outputs[i % n_out], saved[i / n_out]);
                return Ok(Err(format!(
                    "'{name}' at time {t}: native code {:e}, the interpreter {:e}",
                    out[i], other[i]
                )));
            }
        }
    }
    let mut columns = BTreeMap::new();
    for (k, name) in spec.outputs.iter().enumerate() {
        columns.insert(canonical(name), (0..saved.len()).map(|i| out[i * n_out + k]).collect());
    }
    // The control values are the model's too, constant in time (constants are outputs).
    let control = m.control();
    let constants = [
        ("initial time", control.initial_time),
        ("final time", control.final_time),
        ("time step", control.time_step),
        ("saveper", control.saveper),
    ];
    for (name, value) in constants {
        columns.entry(canonical(name)).or_insert_with(|| vec![value; saved.len()]);
    }
    Ok(Ok(Run { columns }))
}

/// Whether a value agrees with Vensim's `want` in a column whose largest magnitude is `scale`: to RTOL of
/// Vensim's value, which the file gives to within its resolution (NaN never agrees).
fn agrees(got: f64, want: Written, scale: f64) -> bool {
    (got - want.value).abs() <= RTOL * want.value.abs().max(FLOOR * scale) + want.resolution
}

/// The first difference between a run and Vensim's reference, if any.
fn compare(run: &Run, reference: &Reference) -> Option<String> {
    for (c, name) in reference.names.iter().enumerate() {
        let Some(got) = run.columns.get(&canonical(name)) else {
            return Some(format!("'{}' is not an output of the model", name.trim()));
        };
        let column = reference.rows.iter().map(|row| row.get(c).copied().flatten());
        let scale = column.clone().flatten().fold(0.0_f64, |m, v| m.max(v.value.abs()));
        for ((&t, want), &got) in reference.times.iter().zip(column).zip(got) {
            let Some(want) = want else { continue };
            if !agrees(got, want, scale) {
                return Some(format!("'{}' at time {t}: {got:e}, Vensim {:e}", name.trim(), want.value));
            }
        }
    }
    None
}

fn check(model: &str) -> Status {
    let dir = corpus().join(model);
    let reference = match dir.parent().and_then(reference_file).map(|p| read_reference(&p)) {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Status::Mismatch(format!("the reference does not read: {e}")),
        None => return Status::Mismatch("no reference".into()),
    };
    match catch_unwind(AssertUnwindSafe(|| run(model, &reference.times))) {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Status::Crash(format!("panic: {message}"))
        }
        Ok(Err(refusal)) => Status::Refused(refusal),
        Ok(Ok(Err(failure))) => Status::Mismatch(failure),
        Ok(Ok(Ok(run))) => compare(&run, &reference).map_or(Status::Pass, Status::Mismatch),
    }
}

const STATUS_FILE: &str = "STATUS.md";
const README_START: &str =
    "<!-- conformance: written by PARFIT_BLESS=1 cargo test -p parfit-vensim --test conformance -->";

/// Why a model that does not pass cannot, as far as it was traced: written after its reason when blessing.
const WHY: [(&str, &str); 7] = [
    (
        "samples/Query_file/Query_file.mdl",
        "only the columns computed from RANDOM UNIFORM differ (kWhPerStovePerDay from t = 0, then \
         EnergyConsumptionRate and TotalEnergyConsumption): Vensim's random stream cannot be reproduced; every other \
         column matches",
    ),
    ("samples/Roessler_Chaos/roessler_chaos.mdl", "chaotic: the single-precision reference's rounding grows"),
    (
        "tests/control_vars/test_control_vars.mdl",
        "Vensim evaluates control values at every step: TIME STEP 1 becomes 0.5 at t = 4, SAVEPER 5 at t = 10, so its \
         time grid is uneven (0, 1, …, 4, 4.5, …, 10, 15, …); a parfit model runs on one fixed grid",
    ),
    (
        "tests/data_from_other_model/model_to_generate_data.mdl",
        "its directory's reference is the run of the model that reads its data",
    ),
    (
        "tests/dynamic_final_time/test_dynamic_final_time.mdl",
        "Vensim ends the run once Time reaches FINAL TIME's current value (t = 28 here, of 100); a parfit model's end \
         and output times are fixed before it runs",
    ),
    (
        "tests/get_time_value/test_get_time_value.mdl",
        "its directory's reference is test_get_time_value_simple.mdl's run (INITIAL TIME −10, FINAL TIME 50), not this \
         model's (INITIAL TIME 50): nothing to hold its calendar measures to",
    ),
    (
        "tests/subscripted_trend/test_subscripted_trend.mdl",
        "Vensim's single-precision run: at t = 78 TREND's input − average cancels; the same equations in float32 give \
         −0.011155038 (Vensim writes −0.011155), in float64 −0.0111552510; TREND is Vensim's documented structure \
         (tests/trend passes)",
    ),
];

/// A model's reason on one table line, with why it cannot pass when that is known.
fn cell(model: &str, status: &Status) -> String {
    let reason = status.reason().replace('|', "\\|").replace('\n', " ");
    match WHY.iter().find(|(m, _)| *m == model) {
        Some((_, why)) if *status != Status::Pass => format!("{reason} — {why}"),
        _ => reason,
    }
}

fn totals(statuses: &BTreeMap<String, Status>) -> String {
    let count = |w: &str| statuses.values().filter(|s| s.word() == w).count();
    format!(
        "{} of {} models pass; {} mismatch, {} refused, {} crash",
        count("pass"),
        statuses.len(),
        count("mismatch"),
        count("refused"),
        count("crash")
    )
}

fn status_table(statuses: &BTreeMap<String, Status>) -> String {
    let mut text = format!(
        "# Expected status of each model\n\nWritten by `PARFIT_BLESS=1 cargo test -p parfit-vensim --test conformance`; \
         read by that test, which fails when a model's status differs. {}.\n\n| model | status | reason |\n|---|---|---|\n",
        totals(statuses)
    );
    for (model, status) in statuses {
        let _ = writeln!(text, "| {model} | {} | {} |", status.word(), cell(model, status));
    }
    text
}

/// The README's generated section: the totals and every model that does not pass.
fn readme_section(statuses: &BTreeMap<String, Status>) -> String {
    let mut text = format!(
        "{README_START}\n{} (Vensim's output to 1e-5 relative).\n\n| model | status | reason |\n|---|---|---|\n",
        totals(statuses)
    );
    for (model, status) in statuses.iter().filter(|(_, s)| **s != Status::Pass) {
        let _ = writeln!(text, "| {model} | {} | {} |", status.word(), cell(model, status));
    }
    text + README_END
}

#[test]
fn test_models_reproduce_vensims_output() {
    let models = models();
    assert_eq!(models.len(), 149, "the corpus has 149 models with a Vensim reference");
    let statuses: BTreeMap<String, Status> = models.iter().map(|m| (m.clone(), check(m))).collect();
    println!("test-models: {}", totals(&statuses));
    let section = readme_section(&statuses);
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
    record().check(&outcomes, &status_table(&statuses), &section);
}

fn record() -> Record {
    Record {
        status_file: corpus().join(STATUS_FILE),
        readme: Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"),
        readme_start: README_START,
    }
}

/// PySD's outputs (`bench/peers/pysd_conformance.py`: `<model>.tab`, or `<model>.error`) held to the same
/// references and tolerance as parfit's: the status PySD 3.14.3 gets.
fn pysd_status(outputs: &Path, model: &str) -> Status {
    let base = outputs.join(model);
    if let Ok(why) = std::fs::read_to_string(format!("{}.error", base.display())) {
        return Status::Refused(why);
    }
    let (reference, theirs) = match (
        corpus().join(model).parent().and_then(reference_file).map(|p| read_reference(&p)),
        read_reference(Path::new(&format!("{}.tab", base.display()))),
    ) {
        (Some(Ok(r)), Ok(t)) => (r, t),
        (r, t) => return Status::Mismatch(format!("unreadable: {:?} {:?}", r.map(|r| r.err()), t.err())),
    };
    // PySD's row for each of Vensim's times (Vensim writes times to 6 digits).
    let rows: Option<Vec<usize>> =
        reference.times.iter().map(|&t| theirs.times.iter().position(|&p| (p - t).abs() <= RTOL * t.abs())).collect();
    let Some(rows) = rows else { return Status::Mismatch("PySD saved other times".into()) };
    let columns = theirs
        .names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let column = rows.iter().map(|&r| theirs.rows[r].get(c).copied().flatten().map_or(f64::NAN, |w| w.value));
            (canonical(name), column.collect())
        })
        .collect();
    compare(&Run { columns }, &reference).map_or(Status::Pass, Status::Mismatch)
}

/// PySD 3.14.3 on the same references and tolerance: run `bench/peers/pysd_conformance.py CORPUS DIR` with
/// PySD's venv (`bench/peers/pysd_vensim.sh` makes it), then `PARFIT_PYSD_OUTPUTS=DIR cargo test -p
/// parfit-vensim --test conformance -- --ignored --nocapture`. Prints PySD's totals, the models PySD does not
/// pass and those only PySD passes.
#[test]
#[ignore = "needs PySD's outputs: bench/peers/pysd_conformance.py"]
fn pysd_on_the_same_references() {
    let outputs = std::env::var_os("PARFIT_PYSD_OUTPUTS").map(PathBuf::from).expect("PARFIT_PYSD_OUTPUTS");
    let models = models();
    let pysd: BTreeMap<String, Status> = models.iter().map(|m| (m.clone(), pysd_status(&outputs, m))).collect();
    let ours = record().expected();
    println!("PySD 3.14.3: {}", totals(&pysd));
    for (model, status) in pysd.iter().filter(|(_, s)| **s != Status::Pass) {
        let our = ours.get(model).map_or("?", String::as_str);
        println!("{model}: PySD {} {}; parfit {our}", status.word(), status.reason());
    }
    for (model, _) in pysd.iter().filter(|(m, s)| **s == Status::Pass && ours.get(*m).is_some_and(|o| o != "pass")) {
        println!("{model}: PySD pass; parfit {}", ours[model]);
    }
    assert!(
        pysd.values().all(|s| !s.reason().starts_with("unreadable")),
        "PySD's outputs are incomplete: run bench/peers/pysd_conformance.py again"
    );
}

/// A model's outputs at its saved times, its `GET …` files read from `files`.
fn outputs_with(model: &str, files: Files) -> Result<Vec<f64>, String> {
    let source = std::fs::read_to_string(corpus().join(model)).map_err(|e| e.to_string())?;
    let data_outputs = corpus().join(model).parent().map(vensim_outputs).unwrap_or_default();
    let options = Options { files: Some(files), data_outputs, ..Options::default() };
    let m = VensimModel::compile_with(&source, model, &options).map_err(|e| e.to_string())?;
    let (spec, times) = (m.spec(), m.save_times());
    let mut out = vec![f64::NAN; spec.output_len(times.len())];
    let inputs = vec![f64::NAN; spec.inputs.len()];
    m.simulate(&mut m.workspace(), &spec.defaults(), &inputs, &times, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The browser hands a model its data files by name: each model that reads files runs the same from them.
#[test]
fn data_files_given_by_name_read_as_from_the_directory() {
    let mut checked = 0;
    for model in models() {
        let dir = corpus().join(&model).parent().map(Path::to_path_buf).unwrap_or_default();
        let data: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .filter(|name| [".xls", ".xlsx", ".csv", ".tab"].iter().any(|ext| name.to_lowercase().ends_with(ext)))
            .filter(|name| !name.starts_with("output"))
            .map(|name| (name.clone(), std::fs::read(dir.join(&name)).unwrap()))
            .collect();
        if data.is_empty() {
            continue;
        }
        let from_dir = outputs_with(&model, Files::Dir(dir.clone()));
        let from_memory = outputs_with(&model, Files::Memory(data));
        let same = match (&from_dir, &from_memory) {
            (Ok(a), Ok(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan())
            }
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        assert!(same, "{model}: from the directory {from_dir:?}, from memory {from_memory:?}");
        checked += usize::from(from_dir.is_ok());
    }
    assert!(checked >= 10, "{checked} models with data files ran");
}

/// The whole path — reading Vensim's file, running, comparing — catches a value 2e-5 off on a real model.
#[test]
fn a_real_model_two_parts_in_1e5_off_is_a_mismatch() {
    let model = "samples/teacup/teacup.mdl";
    let reference = read_reference(&corpus().join("samples/teacup/output.csv")).unwrap();
    let mut run = run(model, &reference.times).unwrap().unwrap();
    assert_eq!(compare(&run, &reference), None);
    let temperature = run.columns.get_mut("teacup temperature").unwrap();
    temperature[10] *= 1.0 + 2e-5;
    let found = compare(&run, &reference).unwrap();
    assert!(found.starts_with("'Teacup Temperature' at time"), "{found}");
}

#[test]
fn names_compare_as_vensim_compares_them() {
    assert_eq!(canonical("\"Dec_1  LOSS\""), "dec 1 loss");
    assert_eq!(canonical(&header_name(r#""""a \""b\"" c""""#)), r#"a "b" c"#);
    assert_eq!(canonical(r#""a \"B\" c""#), r#"a "b" c"#);
    assert_eq!(canonical("Stock[ A1, b_2 ]"), "stock[a1,b 2]");
    assert_eq!(canonical("stock [a1,b2]"), "stock[a1,b2]");
}

#[test]
fn a_file_written_to_fewer_digits_is_read_to_its_resolution() {
    assert_eq!((last_place("0.02575"), last_place("120"), last_place("3.")), ((-5, false), (0, false), (0, false)));
    assert_eq!((last_place("9.10E-05"), last_place("-2.25e+03")), ((-7, true), (1, true)));
    // tests/trend's output.csv writes 5 decimals: 0.02575 stands for anything in [0.025745, 0.025755].
    let trend = parse_reference("Time,input,TREND of input\r0,1,0\r1,1.15451,0.02575\r", ',').unwrap();
    let written = |value, resolution| Some(Written { value, resolution });
    assert_eq!(
        (&trend.times, &trend.rows[1]),
        (&vec![0.0, 1.0], &vec![written(1.15451, 5e-6), written(0.02575, 5e-6)])
    );
    // tests/subscript_numeric_range writes 9.10E-05 among six-digit values: three digits there.
    let mixed = parse_reference("Time\tx\n0\t0.000245874\n1\t9.10E-05\n2\t\n", '\t').unwrap();
    assert_eq!(mixed.rows, [vec![written(0.000245874, 5e-10)], vec![written(9.1e-5, 5e-8)], vec![None]]);
    assert_eq!(parse_reference("Time\tx\n0\tx\n", '\t').err().as_deref(), Some("2: not a number: 'x'"));
    let want = Written { value: 0.02575, resolution: 5e-6 };
    assert!(agrees(0.0257514, want, 0.5));
    assert!(agrees(0.0257552, want, 0.5), "RTOL of Vensim's value, given to within the resolution");
    assert!(!agrees(0.025756, want, 0.5));
    assert!(!agrees(0.0257514, Written { resolution: 5e-10, ..want }, 0.5));
}

#[test]
fn refusals_carry_the_model_s_place() {
    assert!(placed("tests/a/m.mdl", "tests/a/m.mdl:3:14: the Vensim function X is not supported"));
    assert!(!placed("tests/a/m.mdl", "tests/a/m.mdl: cannot read"));
    assert!(!placed("tests/a/m.mdl", "tests/a/m.mdl:3: no column"));
    assert!(!placed("tests/a/m.mdl", "input.xls: sheet 'x', cell B2: not a number"));
}

#[test]
fn a_wrong_value_or_a_missing_column_is_a_mismatch() {
    let written = |value| Some(Written { value, resolution: 5e-7 });
    let reference = Reference {
        names: vec!["x".into(), "Big_One".into()],
        times: vec![0.0, 1.0],
        rows: vec![vec![written(0.0), written(1000.0)], vec![None, written(2000.0)]],
    };
    let mut run =
        Run { columns: BTreeMap::from([("x".into(), vec![0.0, 7.0]), ("big one".into(), vec![1000.0, 2000.0])]) };
    assert_eq!(compare(&run, &reference), None, "an empty reference cell is not compared");
    run.columns.insert("big one".into(), vec![1000.0, 2000.03]);
    assert_eq!(compare(&run, &reference).as_deref(), Some("'Big_One' at time 1: 2.00003e3, Vensim 2e3"));
    run.columns.insert("big one".into(), vec![1000.0, 2000.019]);
    assert_eq!(compare(&run, &reference), None);
    run.columns.insert("big one".into(), vec![f64::NAN, 2000.0]);
    assert!(compare(&run, &reference).is_some(), "NaN never matches");
    run.columns.remove("big one");
    assert_eq!(compare(&run, &reference).as_deref(), Some("'Big_One' is not an output of the model"));
}

#[test]
fn a_value_that_should_be_zero_is_held_to_1e_6_of_its_column() {
    let (zero, scale) = (Written { value: 0.0, resolution: 0.0 }, 1000.0);
    assert!(agrees(0.0, zero, 0.0));
    assert!(!agrees(1e-300, zero, 0.0));
    assert!(agrees(9e-4, zero, scale), "1e-6 of the column's largest value");
    assert!(!agrees(2e-3, zero, scale));
    assert!(!agrees(-2e-3, zero, scale));
}
