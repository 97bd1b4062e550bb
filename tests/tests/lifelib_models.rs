//! `parfit run` on lifelib's models as model files (`examples/lifelib/<model>/run.toml`, each running the folder's
//! `.prj` over the points and tables lifelib ran it on) against the goldens lifelib 0.17.2 made
//! (`examples/lifelib/DATA.md`, `manifest.csv`): every point's present values (per scenario where lifelib's are),
//! their totals, the monthly portfolio vectors and every cell of the audit point, each within 1e-12 of the largest
//! value of its row; and the files written with 1 and 2 threads byte-identical.
//!
//! Scenarios: a run with `scenarios = "all"` reports the mean over the scenarios (`pv.csv`, the monthly tables)
//! and each scenario's totals (the JSON's `scenario_totals`). For a model of one point those totals are the point's
//! present values per scenario; for several points the test runs the model once per scenario (a copy of run.toml
//! with `scenarios = [k]`), or, where lifelib's monthly tables sum the scenarios and there are fewer points than
//! scenarios (EX4: 9 points × 1,000 scenarios), once per point (a copy reading a one-point file). The savings
//! examples run on every scenario of lifelib's (EX1 and EX2 10,000, EX4 1,000): their run.toml makes numpy's
//! draws. lifelib's monthly tables of the savings examples sum over the scenarios: they are compared with the
//! mean times the scenario count. EX2's simulations are its parameter `sim_id` (`[projection.constants]`), one
//! run each.
//!
//! Measured (debug build, 2026-12-07; the test prints each model's line): the worst difference relative to its
//! row is 1.2e-13 EX2 (on every scenario, with its means over 10,000 of them), 3.9e-14 EX1, 2.2e-14 EX4,
//! 8.7e-15 (BasicTerm_M and _S), 7.2e-15 BasicTerm_SE and _ME, 2.6e-15 CashValue_ME, 1.6e-16 CashValue_SE; most
//! values are lifelib's to the bit (EX4 89,716 of 89,721; CashValue_SE 166,679 of 166,682; BasicTerm_M 14,007 of
//! 55,306, whose present values numpy sums as matrix products).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use parfit_tests::{parfit, root, scratch};

/// A file of the repository as text, gunzipped when its name ends in `.gz`.
fn text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).expect("gzip text");
        s
    } else {
        String::from_utf8(bytes).expect("UTF-8")
    }
}

/// (header, rows) of a CSV without quoted cells.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn csv(path: &Path) -> Csv {
    let text = text(path);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let split = |l: &str| l.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>();
    let header = split(lines.next().unwrap_or(""));
    Csv { header, rows: lines.map(split).collect() }
}

impl Csv {
    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The rows whose column `name` (if the table has it) is `value`.
    fn filter(&self, name: &str, value: usize) -> Csv {
        let rows = match self.col(name) {
            Some(c) => self.rows.iter().filter(|r| num(&r[c]) as usize == value).cloned().collect(),
            None => self.rows.clone(),
        };
        Csv { header: self.header.clone(), rows }
    }
}

fn num(s: &str) -> f64 {
    match s {
        "True" => 1.0,
        "False" => 0.0,
        s => s.parse().unwrap_or_else(|_| panic!("'{s}' is not a number")),
    }
}

/// A model's folder and its manifest's files by name.
struct Folder {
    name: &'static str,
    dir: PathBuf,
    files: HashMap<String, PathBuf>,
}

fn folder(name: &'static str) -> Folder {
    let dir = root().join("examples/lifelib").join(name);
    let m = csv(&dir.join("manifest.csv"));
    let files = m.rows.iter().map(|r| (r[0].clone(), dir.join(&r[2]))).collect();
    Folder { name, dir, files }
}

impl Folder {
    fn golden(&self, name: &str) -> Csv {
        csv(self.files.get(name).unwrap_or_else(|| panic!("{}: no '{name}' in the manifest", self.name)))
    }
}

/// The worst difference seen, relative to its row's largest golden magnitude.
#[derive(Default)]
struct Worst {
    relative: f64,
    values: usize,
    same: usize,
}

impl Worst {
    /// `got` against `want`: within 1e-12 of the largest |want|.
    #[track_caller]
    fn row(&mut self, what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0f64, f64::max);
        assert!(worst <= 1e-12 * scale, "{what}: off by {worst:e} (scale {scale:e})\n got {got:?}\nwant {want:?}");
        if scale > 0.0 {
            self.relative = self.relative.max(worst / scale);
        }
        self.values += got.len();
        self.same += got.iter().zip(want).filter(|(g, w)| g == w).count();
    }
}

/// `parfit run CONFIG --threads N --format json --output OUT`: the printed report.
fn run(config: &Path, out: &Path, threads: &str) -> serde_json::Value {
    parfit(&[
        "run",
        config.to_str().unwrap(),
        "--threads",
        threads,
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ])
    .assert_ok()
    .json()
}

/// totals.json without what legitimately differs between runs.
fn totals_json(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&text(&dir.join("totals.json"))).unwrap();
    for key in ["seconds", "threads", "ranks"] {
        v.as_object_mut().unwrap().remove(key);
    }
    v
}

/// Run `config` with 1 and 2 threads into `scratch(name)/{1,2}`: every file written byte-identical (totals.json
/// but its timing). The one-thread run's folder and report.
fn run_twice(name: &str, config: &Path) -> (PathBuf, serde_json::Value) {
    let dir = scratch(name);
    let (one, two) = (dir.join("1"), dir.join("2"));
    let report = run(config, &one, "1");
    run(config, &two, "2");
    let mut files: Vec<String> =
        std::fs::read_dir(&one).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    for f in ["pv.csv", "result_cf.csv", "audit.csv", "totals.json"] {
        assert!(files.iter().any(|x| x == f), "{name}: no {f} written ({files:?})");
    }
    for f in &files {
        if f == "totals.json" {
            assert_eq!(totals_json(&one), totals_json(&two), "{name}: totals.json differs with 2 threads");
        } else {
            let (a, b) = (std::fs::read(one.join(f)).unwrap(), std::fs::read(two.join(f)).unwrap());
            assert!(a == b, "{name}: {f} differs with 2 threads");
        }
    }
    (one, report)
}

/// A copy of `folder`'s run.toml in `dir` with its paths made absolute, `scenarios = …` replaced by
/// `scenarios` (when given) and `append` added at the end.
fn variant(f: &Folder, dir: &Path, name: &str, scenarios: Option<&str>, append: &str) -> PathBuf {
    variant_of_points(f, dir, name, scenarios, None, append)
}

/// [`variant`] with the model points read from `points` (when given; then without the audit point).
fn variant_of_points(
    f: &Folder,
    dir: &Path,
    name: &str,
    scenarios: Option<&str>,
    points: Option<&Path>,
    append: &str,
) -> PathBuf {
    let mut out = String::new();
    for line in text(&f.dir.join("run.toml")).lines() {
        let line = match line.split_once(" = ") {
            Some(("scenarios", _)) if scenarios.is_some() => format!("scenarios = {}", scenarios.unwrap()),
            Some(("model_points", _)) if points.is_some() => format!("model_points = '{}'", points.unwrap().display()),
            // Another point file may not have the audit point.
            Some(("audit_point", _)) if points.is_some() => continue,
            Some((k, v)) if v.starts_with('"') && [".prj\"", ".csv\"", ".gz\""].iter().any(|e| v.ends_with(e)) => {
                format!("{k} = '{}'", f.dir.join(v.trim_matches('"')).display())
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(append);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, out).unwrap();
    path
}

/// The golden's value columns (every column but the ids) present in ours: (golden column, our column).
fn pairs(ours: &Csv, golden: &Csv, ids: &[&str]) -> Vec<(usize, usize)> {
    golden
        .header
        .iter()
        .enumerate()
        .filter(|(_, h)| !ids.contains(&h.as_str()))
        .map(|(g, h)| {
            let o = ours.col(h).unwrap_or_else(|| panic!("no column '{h}' in ours: {:?}", ours.header));
            (g, o)
        })
        .collect()
}

/// Our `pv.csv` against the golden's rows (of one scenario), point by point.
fn check_pv(what: &str, ours: &Path, golden: &Csv, worst: &mut Worst) {
    let ours = csv(ours);
    let cols = pairs(&ours, golden, &["point_id", "poind_id", "policy_id", "scen_id"]);
    assert_eq!(ours.rows.len(), golden.rows.len(), "{what}: points");
    let by_id: HashMap<&str, &Vec<String>> = ours.rows.iter().map(|r| (r[0].as_str(), r)).collect();
    for g in &golden.rows {
        let o = by_id.get(g[0].as_str()).unwrap_or_else(|| panic!("{what}: no point {}", g[0]));
        let got: Vec<f64> = cols.iter().map(|&(_, o_)| num(&o[o_])).collect();
        let want: Vec<f64> = cols.iter().map(|&(g_, _)| num(&g[g_])).collect();
        worst.row(&format!("{what}: point {}", g[0]), &got, &want);
    }
}

/// The report's per-scenario totals of a one-point run against the golden's rows of that point.
fn check_scenario_totals(what: &str, report: &serde_json::Value, golden: &Csv, worst: &mut Worst) {
    let scen = golden.col("scen_id").expect("scen_id");
    let per = report["scenario_totals"].as_array().expect("scenario_totals");
    assert_eq!(per.len(), golden.rows.len(), "{what}: scenarios");
    for g in &golden.rows {
        let s = num(&g[scen]) as u64;
        let t = per.iter().find(|x| x["scenario"].as_u64() == Some(s)).unwrap_or_else(|| panic!("{what}: no {s}"));
        let (mut got, mut want) = (vec![], vec![]);
        for (c, h) in golden.header.iter().enumerate().skip(2) {
            got.push(t["totals"][h].as_f64().unwrap_or_else(|| panic!("{what}: no total '{h}'")));
            want.push(num(&g[c]));
        }
        worst.row(&format!("{what}: scenario {s}"), &got, &want);
    }
}

/// The report's totals (times `factor`: lifelib sums the scenarios) against `result_pv_totals`.
fn check_totals(what: &str, report: &serde_json::Value, golden: &Csv, factor: f64, worst: &mut Worst) {
    let got: Vec<f64> = golden
        .rows
        .iter()
        .map(|r| report["totals"][&r[0]].as_f64().unwrap_or_else(|| panic!("{what}: no total '{}'", r[0])) * factor)
        .collect();
    let want: Vec<f64> = golden.rows.iter().map(|r| num(&r[1])).collect();
    worst.row(&format!("{what}: totals"), &got, &want);
}

/// A monthly table of ours (times `factor`) against the golden's rows, month by month.
fn check_monthly(what: &str, ours: &Path, golden: &Csv, factor: f64, worst: &mut Worst) {
    let ours = csv(ours);
    let cols = pairs(&ours, golden, &["t", "scen_id", "sim_id"]);
    assert_eq!(ours.rows.len(), golden.rows.len(), "{what}: months");
    let t = golden.col("t").expect("t");
    for (o, g) in ours.rows.iter().zip(&golden.rows) {
        assert_eq!(num(&o[0]), num(&g[t]), "{what}: month");
        let got: Vec<f64> = cols.iter().map(|&(_, c)| num(&o[c]) * factor).collect();
        let want: Vec<f64> = cols.iter().map(|&(c, _)| num(&g[c])).collect();
        worst.row(&format!("{what}: month {}", g[t]), &got, &want);
    }
}

/// Our audit.csv against lifelib's cells of the audit point, cell by cell over the months lifelib has a value.
/// Every model labels its audit columns as lifelib's audit trail names them (`pols_if_bef_mat` as
/// `pols_if_at(BEF_MAT)`), so a column lifelib has under another name is an error; the folder's own models list
/// every cell lifelib evaluated (`every`), the bundled ME models some.
fn check_audit(what: &str, ours: &Path, golden: &Csv, every: bool, worst: &mut Worst) {
    let ours = csv(ours);
    let cell = |h: &str| h.replace("_at(", "_").replace('(', "_").replace(')', "").to_lowercase();
    for h in &golden.header {
        let renamed = cell(h);
        assert!(
            renamed == *h || ours.col(&renamed).is_none(),
            "{what}: the audit names '{renamed}' where lifelib's says '{h}'"
        );
    }
    assert!(ours.col("claims_total").is_none(), "{what}: the audit names 'claims_total' where lifelib's says 'claims'");
    let cols: Vec<(usize, usize)> = golden
        .header
        .iter()
        .enumerate()
        .filter_map(|(g, h)| {
            let o = ours.col(h);
            assert!(o.is_some() || !every, "{what}: the audit has no '{h}' ({:?})", ours.header);
            o.map(|o| (g, o))
        })
        .collect();
    assert!(cols.len() > 15 && ours.rows.len() >= golden.rows.len(), "{what}: audit {} cells", cols.len());
    let months = golden.rows.len();
    assert!(months >= 12, "{what}: the audit point runs {months} months");
    for (g, o) in cols {
        let (got, want): (Vec<f64>, Vec<f64>) = golden
            .rows
            .iter()
            .zip(&ours.rows)
            .take(months)
            .filter(|(r, _)| !r[g].is_empty())
            .map(|(r, x)| (num(&x[o]), num(&r[g])))
            .unzip();
        worst.row(&format!("{what}: audit '{}'", golden.header[g]), &got, &want);
    }
}

/// Whether the folder runs its own model (else the bundled one).
fn own_model(f: &Folder) -> bool {
    f.dir.join(format!("{}.prj", f.name)).is_file()
}

fn report(name: &str, worst: &Worst) {
    eprintln!(
        "{name}: {} values, {} bit-identical to lifelib's, the rest within {:.1e} of their row",
        worst.values, worst.same, worst.relative
    );
}

/// A model without scenarios: one run (twice), every output against its golden.
fn plain(name: &'static str, pols: bool) {
    let f = folder(name);
    let (out, report_) = run_twice(name, &f.dir.join("run.toml"));
    let mut worst = Worst::default();
    check_pv(name, &out.join("pv.csv"), &f.golden("result_pv"), &mut worst);
    check_totals(name, &report_, &f.golden("result_pv_totals"), 1.0, &mut worst);
    check_monthly(name, &out.join("result_cf.csv"), &f.golden("result_cf"), 1.0, &mut worst);
    if pols {
        check_monthly(name, &out.join("result_pols.csv"), &f.golden("result_pols"), 1.0, &mut worst);
    }
    check_audit(name, &out.join("audit.csv"), &f.golden("audit_point1"), own_model(&f), &mut worst);
    report(name, &worst);
}

#[test]
fn basicterm_m_reproduces_lifelib() {
    plain("basicterm_m", false);
}

#[test]
fn basicterm_s_reproduces_lifelib() {
    plain("basicterm_s", false);
}

#[test]
fn basicterm_se_reproduces_lifelib() {
    plain("basicterm_se", true);
}

/// The scenario count of a `scenarios = "all"` report.
fn scenario_count(report: &serde_json::Value) -> usize {
    report["scenarios"].as_array().expect("scenarios").len()
}

/// A model over its scenarios: the run of every scenario (twice) for the audit point, the totals and, where
/// lifelib sums the scenarios, the monthly tables; each point's present values per scenario, from the report
/// for one point, else from one run per scenario (with the monthly tables where lifelib's are per scenario).
fn over_scenarios(name: &'static str) {
    let f = folder(name);
    let (out, all) = run_twice(name, &f.dir.join("run.toml"));
    let n = scenario_count(&all);
    let mut worst = Worst::default();
    check_audit(name, &out.join("audit.csv"), &f.golden("audit_point1"), own_model(&f), &mut worst);
    check_totals(name, &all, &f.golden("result_pv_totals"), n as f64, &mut worst);
    let pv = f.golden("result_pv");
    let (cf, pols) = (f.golden("result_cf"), f.golden("result_pols"));
    let per_scenario = cf.col("scen_id").is_some();
    if !per_scenario {
        check_monthly(name, &out.join("result_cf.csv"), &cf, n as f64, &mut worst);
        check_monthly(name, &out.join("result_pols.csv"), &pols, n as f64, &mut worst);
    }
    if all["points"].as_u64() == Some(1) && !per_scenario {
        check_scenario_totals(name, &all, &pv, &mut worst);
    } else if !per_scenario && all["points"].as_u64().is_some_and(|p| (p as usize) < n) {
        // Fewer points than scenarios (EX4: 9 × 1,000): a run per point, whose per-scenario totals are its
        // present values per scenario.
        let dir = scratch(&format!("{name}-points"));
        let points = csv(&model_points(&f));
        for row in &points.rows {
            let file = dir.join(format!("point{}.csv", row[0]));
            std::fs::write(&file, format!("{}\n{}\n", points.header.join(","), row.join(","))).unwrap();
            let config = variant_of_points(&f, &dir, &format!("point{}", row[0]), None, Some(&file), "");
            let report_ = run(&config, &dir.join(format!("out{}", row[0])), "1");
            let what = format!("{name}, point {}", row[0]);
            check_scenario_totals(&what, &report_, &pv.filter(&pv.header[0], num(&row[0]) as usize), &mut worst);
        }
    } else {
        let dir = scratch(&format!("{name}-scenarios"));
        for k in 1..=n {
            let config = variant(&f, &dir, &format!("scenario{k}"), Some(&format!("[{k}]")), "");
            let out = dir.join(format!("out{k}"));
            run(&config, &out, "1");
            let what = format!("{name}, scenario {k}");
            check_pv(&what, &out.join("pv.csv"), &pv.filter("scen_id", k), &mut worst);
            if per_scenario {
                check_monthly(&what, &out.join("result_cf.csv"), &cf.filter("scen_id", k), 1.0, &mut worst);
                check_monthly(&what, &out.join("result_pols.csv"), &pols.filter("scen_id", k), 1.0, &mut worst);
            }
        }
    }
    report(name, &worst);
}

/// The model point file a folder's run.toml names.
fn model_points(f: &Folder) -> PathBuf {
    let config = text(&f.dir.join("run.toml"));
    let line = config.lines().find_map(|l| l.strip_prefix("model_points = ")).expect("model_points in run.toml");
    f.dir.join(line.trim_matches('"'))
}

/// The bundled models (plugins/actuarial/models) against lifelib's ME goldens.
#[test]
fn basicterm_me_reproduces_lifelib() {
    plain("basicterm_me", true);
}

#[test]
fn cashvalue_me_reproduces_lifelib_per_scenario() {
    over_scenarios("cashvalue_me");
}

#[test]
fn cashvalue_se_reproduces_lifelib_per_scenario() {
    over_scenarios("cashvalue_se");
}

/// The savings examples on every scenario of lifelib's runs: their draws are numpy's `default_rng(1234)`, which
/// run.toml generates (`[projection.tables] std_norm_rand = { generate = "numpy.standard_normal", … }`).
#[test]
fn cashvalue_me_ex1_reproduces_lifelib_on_every_scenario() {
    over_scenarios("cashvalue_me_ex1");
}

#[test]
fn cashvalue_me_ex4_reproduces_lifelib_on_every_scenario() {
    over_scenarios("cashvalue_me_ex4");
}

/// EX2 simulation by simulation (its parameter `sim_id`, 1 in run.toml, 2–5 by `[projection.constants]`): the
/// one point's present values per scenario, the totals, the monthly tables, the audit point (simulation 1) and
/// `Summary.result()`'s means over the scenarios of the guarantees' costs and the fees (the report's totals).
#[test]
fn cashvalue_me_ex2_reproduces_lifelib_on_every_scenario() {
    let name = "cashvalue_me_ex2";
    let f = folder(name);
    let dir = scratch(&format!("{name}-sims"));
    let (cf, pols, summary) = (f.golden("result_cf"), f.golden("result_pols"), f.golden("summary_result"));
    let mut worst = Worst::default();
    for sim in 1..=5 {
        let (out, report_) = if sim == 1 {
            run_twice(name, &f.dir.join("run.toml"))
        } else {
            let config =
                variant(&f, &dir, &format!("sim{sim}"), None, &format!("\n[projection.constants]\nsim_id = {sim}\n"));
            let out = dir.join(format!("out{sim}"));
            let report_ = run(&config, &out, "1");
            (out, report_)
        };
        let n = scenario_count(&report_) as f64;
        let what = format!("{name}, simulation {sim}");
        if sim == 1 {
            check_audit(&what, &out.join("audit.csv"), &f.golden("audit_point1"), true, &mut worst);
        }
        let pv = f.golden(&format!("result_pv_sim{sim}"));
        check_scenario_totals(&what, &report_, &pv, &mut worst);
        check_totals(&what, &report_, &f.golden(&format!("result_pv_totals_sim{sim}")), n, &mut worst);
        check_monthly(&what, &out.join("result_cf.csv"), &cf.filter("sim_id", sim), n, &mut worst);
        check_monthly(&what, &out.join("result_pols.csv"), &pols.filter("sim_id", sim), n, &mut worst);
        let row = &summary.filter("sim_id", sim).rows[0];
        let cols = ["GMDB", "GMAB", "PV Fees"];
        let got: Vec<f64> = cols.iter().map(|c| report_["totals"][c].as_f64().expect("a total")).collect();
        let want: Vec<f64> = cols.iter().map(|c| num(&row[summary.col(c).unwrap()])).collect();
        worst.row(&format!("{what}: summary"), &got, &want);
    }
    report(name, &worst);
}

/// A generated table's request is checked where run.toml writes it: `file:line:column`, what is allowed and
/// what was given; a size beyond the memory budget is refused before anything is drawn.
#[test]
fn generated_draws_are_checked_where_they_are_written() {
    let f = folder("cashvalue_me_ex4");
    let dir = scratch("numpy-draws-errors");
    let base = text(&variant(&f, &dir, "base", None, ""));
    let line = base.lines().position(|l| l.starts_with("std_norm_rand = ")).expect("the draws' line") + 1;
    // The error is placed at the value of key `at` within the request (at the request itself without one).
    let fails = |name: &str, value: &str, at: Option<&str>, message: &str| {
        let prefix = "std_norm_rand = ".len() + 1;
        let column = at.map_or(prefix, |k| prefix + value.find(&format!("{k} = ")).expect("the key") + k.len() + 3);
        let config = dir.join(format!("{name}.toml"));
        let text: Vec<String> = base
            .lines()
            .map(|l| if l.starts_with("std_norm_rand = ") { format!("std_norm_rand = {value}") } else { l.into() })
            .collect();
        std::fs::write(&config, text.join("\n")).unwrap();
        let out = parfit(&["run", config.to_str().unwrap(), "--output", dir.join(name).to_str().unwrap()]);
        assert_ne!(out.code, 0, "{name}: parfit accepted it");
        let place = format!("error: {}:{line}:{column}: ", config.display());
        assert!(
            out.stderr.starts_with(&place) && out.stderr.contains(message),
            "{name}: expected {place}…{message}\ngot: {}",
            out.stderr
        );
    };
    let g = r#"generate = "numpy.standard_normal""#;
    fails(
        "generator",
        r#"{ generate = "numpy.uniform", seed = 1, size = [1000, 242] }"#,
        Some("generate"),
        "generate = \"numpy.uniform\": the generator is \"numpy.standard_normal\"",
    );
    fails(
        "seed",
        &format!("{{ {g}, seed = -1, size = [1000, 242] }}"),
        Some("seed"),
        "seed must be a whole number from 0 up, not -1",
    );
    fails(
        "size",
        &format!("{{ {g}, seed = 1, size = [1000, 0] }}"),
        Some("size"),
        "size must be a whole number from 1 up, not 0",
    );
    fails(
        "memory",
        &format!("{{ {g}, seed = 1, size = [100000000, 100000000] }}"),
        Some("size"),
        "more than the limit",
    );
    fails(
        "start",
        &format!("{{ {g}, seed = 1, size = [1000, 242], start = [1] }}"),
        Some("start"),
        "start has 1 values but size has 2 (one per key)",
    );
    fails("key", &format!("{{ {g}, seeds = 1, size = [1000, 242] }}"), Some("seeds"), "unknown key 'seeds'");
    fails("no seed", &format!("{{ {g}, size = [1000, 242] }}"), None, "numpy.standard_normal needs seed");
    fails("not a table", "5", None, "a table is a file name");
    // What only the model's declaration can tell (its keys) is placed at the request, naming the declaration.
    fails(
        "keys",
        &format!("{{ {g}, seed = 1, size = [10, 242, 3], start = [1, 0, 0] }}"),
        None,
        "cashvalue_me_ex4.prj:19:7) has 2 keys, so the draws need 2 extents in size and start; given 3 and 3",
    );
}
