//! `parfit run` on projection model files (`[projection] model = "….prj"`, the actuarial plugin's projection
//! language): the bundled models give the hand-written kinds' outputs byte for byte; a user's edited copy of a
//! model runs with no Rust change and changes the results as its formula says; bad models, tables and constants
//! exit 2 naming file, line and column, and write nothing.

use std::path::{Path, PathBuf};

use parfit_tests::{parfit, root, scratch};

fn run_ok(config: &Path, out: &Path) {
    let r = parfit(&["run", config.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}: {}\n{}", config.display(), r.stdout, r.stderr);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every output table of two runs, compared byte for byte.
fn assert_same_outputs(a: &Path, b: &Path) {
    for f in ["pv.csv", "result_cf.csv", "result_pols.csv", "audit.csv"] {
        assert!(read(&a.join(f)) == read(&b.join(f)), "{f} differs between {} and {}", a.display(), b.display());
    }
    let totals = |d: &Path| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&read(&d.join("totals.json"))).unwrap();
        serde_json::json!([v["totals"], v["scenario_totals"], v["horizon_months"], v["point_months"], v["points"]])
    };
    assert_eq!(totals(a), totals(b));
}

#[test]
fn bundled_models_as_model_files_give_the_kinds_outputs_byte_for_byte() {
    let dir = scratch("model-files-bundled");
    for example in ["examples/savings", "examples/basicterm"] {
        let (engine, model) =
            (dir.join(format!("{}-kind", &example[9..])), dir.join(format!("{}-model", &example[9..])));
        run_ok(&root().join(example).join("run.toml"), &engine);
        run_ok(&root().join(example).join("run_model.toml"), &model);
        assert_same_outputs(&engine, &model);
    }
}

/// A directory with the savings sample points, the savings tables and `model` (a copy of the bundled
/// CashValue_ME model passed through `edit_model`), and its configuration.
fn savings_copy(
    name: &str,
    edit_model: impl Fn(&str) -> String,
    edit_table: (&str, &dyn Fn(&str) -> String),
) -> PathBuf {
    let dir = scratch(&format!("model-files-{name}"));
    let savings = root().join("examples/savings");
    for f in [
        "model_point_samples.csv",
        "product_spec_table.csv",
        "mort_table.csv",
        "surr_charge_table.csv",
        "disc_rate_ann.csv",
        "std_norm_rand.csv",
    ] {
        let text = read(&savings.join(f));
        std::fs::write(dir.join(f), if f == edit_table.0 { edit_table.1(&text) } else { text }).unwrap();
    }
    let model = read(&root().join("plugins/actuarial/models/cashvalue_me.prj"));
    std::fs::write(dir.join("model.prj"), edit_model(&model)).unwrap();
    let config = read(&savings.join("run_model.toml"))
        .replace("../../plugins/actuarial/models/cashvalue_me.prj", "model.prj")
        .replace("model_point_10000.csv", "model_point_samples.csv");
    std::fs::write(dir.join("run.toml"), config).unwrap();
    dir
}

fn same(t: &str) -> String {
    t.to_string()
}

const LAPSE: &str = "lapse_rate = max(lapse_initial - lapse_decrement * duration, lapse_floor)";

/// Column `name` of a CSV of numbers (after its header).
fn column(path: &Path, name: &str) -> Vec<f64> {
    let text = read(path);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines.map(|l| l.split(',').nth(c).unwrap().parse().unwrap()).collect()
}

#[test]
fn an_edited_copy_of_a_model_runs_and_changes_the_results_as_written() {
    let original = savings_copy("original", same, ("", &same));
    run_ok(&original.join("run.toml"), &original.join("out"));
    // No lapses at all: no surrenders, no lapsed policies, and the policies that stay pay more premiums.
    assert!(read(&original.join("model.prj")).contains(LAPSE));
    let edited = savings_copy("no-lapse", |m| m.replace(LAPSE, "lapse_rate = 0"), ("", &same));
    run_ok(&edited.join("run.toml"), &edited.join("out"));
    let (a, b) = (original.join("out"), edited.join("out"));
    assert!(column(&a.join("pv.csv"), "Surrender").iter().any(|&v| v != 0.0));
    assert!(column(&b.join("pv.csv"), "Surrender").iter().all(|&v| v == 0.0));
    assert!(column(&b.join("result_pols.csv"), "pols_lapse").iter().all(|&v| v == 0.0));
    let premiums = |d: &Path| column(&d.join("pv.csv"), "Premiums");
    // Point 4 pays level premiums: without lapses more of them are paid; single premiums are unchanged.
    let (pa, pb) = (premiums(&a), premiums(&b));
    assert!(pb[3] > pa[3], "{pb:?} vs {pa:?}");
    assert_eq!(pb[0], pa[0]);
    // The same change made through a parameter: a floor and a start of 0 and no decrement.
    let config = read(&original.join("run.toml")) + "lapse_initial = 0\nlapse_floor = 0\n".trim_start();
    let config = config.replace("# [projection.constants]", "[projection.constants]");
    std::fs::write(original.join("zero.toml"), config).unwrap();
    run_ok(&original.join("zero.toml"), &original.join("zero"));
    assert_eq!(read(&original.join("zero/pv.csv")), read(&b.join("pv.csv")));
}

/// A run of the savings copy with one edit that must fail with exit code 2, every `expected` piece in the
/// message, and no output.
#[track_caller]
fn refused(name: &str, edit_model: impl Fn(&str) -> String, table: (&str, &dyn Fn(&str) -> String), expected: &[&str]) {
    let dir = savings_copy(name, edit_model, table);
    let out = dir.join("out");
    let r = parfit(&["run", dir.join("run.toml").to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{name}: expected exit code 2\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
    for piece in expected {
        assert!(r.stderr.contains(piece), "{name}: '{piece}' not in the error:\n{}", r.stderr);
    }
    let left: Vec<_> = std::fs::read_dir(&out).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{name}: files were written: {left:?}");
}

#[test]
fn bad_models_tables_and_constants_are_refused_at_their_place() {
    refused(
        "attribute",
        |m| m.replace("net_amt_at_risk = max(mp.sum_assured", "net_amt_at_risk = max(mp.sum_insured"),
        ("", &same),
        &["model.prj:", ": unknown attribute 'mp.sum_insured' (the model points have: "],
    );
    refused(
        "future",
        |m| {
            m.replace(
                "pols_lapse = (pols_if_bef_decr - pols_death)",
                "pols_lapse = (pols_if_bef_mat[t+1] - pols_death)",
            )
        },
        ("", &same),
        &["model.prj:", "circular definition: "],
    );
    refused(
        "key",
        same,
        ("disc_rate_ann.csv", &|t: &str| t.replacen("year", "yr", 1)),
        &["disc_rate_ann.csv:1: no column 'year', which table 'disc_rate_ann' of the model declares"],
    );
    refused(
        "number",
        same,
        ("mort_table.csv", &|t: &str| t.replacen("0.0002310671048780701", "abc", 1)),
        &["mort_table.csv:2:2: column '0': expected a number, found 'abc'"],
    );
    refused(
        "point",
        same,
        ("model_point_samples.csv", &|t: &str| t.replace("2,B,50,M,20", "2,B,5O,M,20")),
        &["model_point_samples.csv:3:3: column 'age_at_entry': expected a number, found '5O'"],
    );
    // The model's checks of each point.
    refused(
        "product",
        same,
        ("model_point_samples.csv", &|t: &str| t.replace("3,C,20", "3,X,20")),
        &["model_point_samples.csv:4: policy 3: its spec_id is not a product of the product table", "'known_product'"],
    );
    refused(
        "age",
        same,
        ("model_point_samples.csv", &|t: &str| t.replace("2,B,50", "2,B,130")),
        &["model_point_samples.csv:3: policy 2: its age_at_entry is outside the mortality table"],
    );
    refused(
        "count",
        same,
        ("model_point_samples.csv", &|t: &str| t.replace("4,D,50,M,9999,100", "4,D,50,M,9999,-100")),
        &["model_point_samples.csv:5:6: column 'policy_count': -100 is not between 0 and 1e100"],
    );
    refused(
        "curve",
        same,
        ("disc_rate_ann.csv", &|t: &str| t.lines().take(20).map(|l| format!("{l}\n")).collect()),
        &["model_point_samples.csv:3: policy 2: the discount curve does not reach its last month"],
    );
    // A table the model does not declare, placed at its key.
    let dir = savings_copy("table", same, ("", &same));
    let config = read(&dir.join("run.toml")).replace("mort = \"mort_table.csv\"", "mortality = \"mort_table.csv\"");
    std::fs::write(dir.join("run.toml"), &config).unwrap();
    let r = parfit(&["run", dir.join("run.toml").to_str().unwrap(), "--output", dir.join("out").to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = config.lines().position(|l| l.starts_with("mortality =")).unwrap() + 1;
    let want = format!("run.toml:{line}:13: tables: 'mortality' is not a table of ");
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert!(!dir.join("out").exists());
    // A parameter the model does not have.
    let dir = savings_copy("constant", same, ("", &same));
    let config =
        read(&dir.join("run.toml")).replace("# [projection.constants]", "[projection.constants]\nlapse_flor = 0.03");
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let r = parfit(&["run", dir.join("run.toml").to_str().unwrap(), "--output", dir.join("out").to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = read(&dir.join("run.toml")).lines().position(|l| l.starts_with("lapse_flor")).unwrap() + 1;
    // Placed at the value, as every configuration error.
    let want = format!("run.toml:{line}:14: constants: unknown parameter 'lapse_flor' (the model has: ");
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert!(!dir.join("out").exists());
}
