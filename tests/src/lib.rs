//! Helpers for the end-to-end tests: build the workspace binaries and out-of-workspace plugins once, run the
//! `parfit` binary, and locate bundled data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace root").to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn run_cargo(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    assert!(out.status.success(), "building {what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Build `parfit` and the workspace plugins (debug profile) once per test process; the binary's directory
/// then holds the plugin libraries, where `parfit` looks by default.
pub fn parfit_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = cargo();
        cmd.current_dir(root()).args([
            "build",
            "--quiet",
            "-p",
            "parfit-cli",
            "-p",
            "parfit-ode",
            "-p",
            "parfit-vensim",
            "-p",
            "parfit-montecarlo",
            "-p",
            "parfit-actuarial",
        ]);
        run_cargo(cmd, "parfit and its plugins");
        let bin = target_dir().join("debug").join(format!("parfit{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// `parfit` built with the `mpi` feature, copied to `debug/mpi/` so it does not replace the default binary
/// (the plugins stay in `debug/`: pass `--plugin` [`plugin_dir`]). Builds the default binary first and again
/// afterwards, so [`parfit_bin`] is the build without MPI.
#[cfg(feature = "mpi")]
pub fn parfit_mpi_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let plain = parfit_bin();
        let mut cmd = cargo();
        cmd.current_dir(root()).args(["build", "--quiet", "-p", "parfit-cli", "--features", "parfit-cli/mpi"]);
        run_cargo(cmd, "parfit with the mpi feature");
        let dir = plugin_dir().join("mpi");
        std::fs::create_dir_all(&dir).expect("a directory for the MPI build");
        let bin = dir.join(plain.file_name().expect("a file name"));
        std::fs::copy(plain, &bin).expect("copy the MPI build");
        let mut cmd = cargo();
        cmd.current_dir(root()).args(["build", "--quiet", "-p", "parfit-cli"]);
        run_cargo(cmd, "parfit without the mpi feature");
        bin
    })
}

/// Where the workspace's plugin libraries are built (beside the default `parfit`).
pub fn plugin_dir() -> PathBuf {
    parfit_bin().parent().expect("the binary's directory").to_path_buf()
}

/// A `fit-many` problem with a known answer per case: `n` cases (two-row header) of y' = -k y from y0, observed
/// at t = 1 and 3; case i decays at rate 0.1 + 0.9 i/n. Writes the model, table and `many.toml` into `dir`.
pub fn decay_problem(dir: &Path, n: usize) -> PathBuf {
    const MODEL: &str = "in_i { k = 0.5, y0 = 1.0 }\nu_i { y = y0 }\nF_i { -k * y }\nout_i { y }\n";
    std::fs::write(dir.join("decay.ds"), MODEL).unwrap();
    let mut csv = String::from(",,y,y\nregion,site,t1,t3\n");
    for i in 0..n {
        let (k, y0) = (0.1 + 0.9 * (i as f64 / n as f64), 1.0 + (i % 7) as f64);
        csv += &format!("{},{},{},{}\n", i / 10, i % 10, y0 * (-k).exp(), y0 * (-3.0 * k).exp());
    }
    std::fs::write(dir.join("cases.csv"), csv).unwrap();
    let config = "seed = 3\n\n[model]\nkind = \"diffsl\"\nsource = \"decay.ds\"\n\n[model.options]\nt0 = 0.0\n\
                  rtol = 1e-10\natol = 1e-12\n\n[cases]\npath = \"cases.csv\"\nheader_rows = 2\n\
                  id = [\"region\", \"site\"]\n\n[[cases.observe]]\ntime = 1.0\ncolumns = { y = \"y t1\" }\n\n\
                  [[cases.observe]]\ntime = 3.0\ncolumns = { y = \"y t3\" }\n\n[parameters]\n\
                  k = { start = 0.5, lower = -1.0, upper = 2.0 }\ny0 = { start = 4.0, lower = 0.0, upper = 20.0 }\n\n\
                  [fit]\nalgorithm = \"nelder_mead\"\nmax_evaluations = 2000\nftol = 1e-14\nxtol = 1e-10\n";
    let path = dir.join("many.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Build an out-of-workspace plugin crate (relative to the root) and return its library's path.
pub fn build_external_plugin(crate_dir: &str, lib_name: &str) -> PathBuf {
    let dir = root().join(crate_dir);
    let target = target_dir().join("external-plugins");
    let mut cmd = cargo();
    cmd.current_dir(&dir).env_remove("CARGO_TARGET_DIR").args(["build", "--quiet", "--target-dir"]).arg(&target);
    run_cargo(cmd, crate_dir);
    let file = format!("{}{lib_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let path = target.join("debug").join(file);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The result of one `parfit` invocation.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "parfit failed:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Run `parfit` with `args` from the workspace root, without inheriting a plugin path.
pub fn parfit(args: &[&str]) -> Run {
    parfit_in(&root(), args)
}

/// Run `parfit` with `args` from `dir`, without inheriting a plugin path.
pub fn parfit_in(dir: &Path, args: &[&str]) -> Run {
    Command::new(parfit_bin())
        .current_dir(dir)
        .env_remove("PARFIT_PLUGIN_PATH")
        .args(args)
        .output()
        .expect("parfit runs")
        .into()
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Read a `t,a,b,…` CSV of numbers into (header, rows).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    parse_csv(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Parse CSV text of numbers with a header row.
pub fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").split(',').map(str::to_string).collect();
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|c| c.trim().parse::<f64>().expect("numeric cell")).collect())
        .collect();
    (header, rows)
}

/// Parse CSV text with a header into one map per row (column name → cell text).
pub fn read_csv_text(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(str::to_string)).collect())
        .collect()
}

/// `parfit fit CONFIG --threads THREADS --format json` with its files written to the scratch directory `name`
/// (tests run in parallel, and a directory in use is refused): the printed result.
pub fn fit_json(config: &str, threads: &str, name: &str) -> serde_json::Value {
    let out = scratch(name);
    let args = ["fit", config, "--threads", threads, "--format", "json", "--output", out.to_str().expect("UTF-8")];
    parfit(&args).assert_ok().json()
}

/// A fit of synthetic data against its reference `tests/data/EXAMPLE/optimum.json` (the least-squares optimum
/// found by scipy, and the standard errors of the estimate at the truth): the SSE within `sse_tol` relative of the
/// optimum's, each parameter within `x_tol` relative of the optimum and within three standard errors of `truth`.
#[track_caller]
pub fn assert_optimum_within_noise(
    result: &serde_json::Value,
    example: &str,
    truth: &[(&str, f64)],
    x_tol: f64,
    sse_tol: f64,
) {
    let path = root().join("tests/data").join(example).join("optimum.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let optimum: serde_json::Value = serde_json::from_str(&text).expect("optimum.json is JSON");
    let (sse, best) = (result["value"].as_f64().expect("value"), optimum["sse"].as_f64().expect("sse"));
    assert!((sse - best).abs() <= sse_tol * best, "{example}: SSE {sse} vs the optimum's {best}");
    for &(name, truth) in truth {
        let fitted = result["x"][name].as_f64().unwrap_or_else(|| panic!("{example}: no fitted {name}"));
        let best = optimum[name].as_f64().expect("the optimum's parameter");
        assert!((fitted - best).abs() <= x_tol * best, "{example}: {name} = {fitted}, the optimum {best}");
        let error = optimum["standard_errors_at_truth"][name].as_f64().expect("a standard error");
        assert!((fitted - truth).abs() <= 3.0 * error, "{example}: {name} = {fitted}, truth {truth} ± 3 × {error}");
    }
}

/// Two fits of the same configuration gave the same result, bit for bit.
#[track_caller]
pub fn assert_same_fit(one: &serde_json::Value, two: &serde_json::Value) {
    for key in ["x", "value", "evaluations", "iterations", "termination"] {
        assert_eq!(one[key], two[key], "{key} differs");
    }
}
