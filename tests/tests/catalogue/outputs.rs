//! Output files and the run's environment: nothing is written unless the run succeeded, an output directory
//! belongs to one run at a time, a closed or full stdout is an error and not a panic, signals end even a run
//! stuck inside a plugin, plots never loop, and bad flags, thread counts and file encodings are refused with
//! the place and the value.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parfit_tests::{Run, parfit_bin, parfit_in, scratch};

use super::{nothing_written, refused};

/// y' = k y², which blows up at t = 1/k: with k in [100, 200] no candidate reaches the data at t = 1.
const BLOW_UP: &str = "in_i { k = 150.0 }\nu_i { y = 1.0 }\nF_i { k * y * y }\nout_i { y }\n";
/// y' = -k y, fitted in a few evaluations.
const DECAY: &str = "in_i { k = 0.5 }\nu_i { y = 1.0 }\nF_i { -k * y }\nout_i { y }\n";

/// A `fit`/`sample` configuration of `model` over `data` (CSV text), with `bounds` for k, written into `dir`.
fn problem(dir: &Path, model: &str, data: &str, bounds: &str) -> PathBuf {
    std::fs::write(dir.join("model.ds"), model).unwrap();
    std::fs::write(dir.join("data.csv"), data).unwrap();
    let config = format!(
        "seed = 1\n\n[model]\nkind = \"diffsl\"\nsource = \"model.ds\"\n\n[data]\npath = \"data.csv\"\ntime = \
         \"t\"\noutputs = [\"y\"]\n\n[parameters]\nk = {{ {bounds} }}\n\n[fit]\nalgorithm = \"nelder_mead\"\n\
         max_evaluations = 30\n\n[sample]\nalgorithm = \"nested\"\nsigma = 0.3\n\n[sample.nested]\nlive_points = \
         20\n"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn blow_up(dir: &Path) -> PathBuf {
    problem(dir, BLOW_UP, "t,y\n1,1\n2,2\n", "start = 150.0, lower = 100.0, upper = 200.0")
}

fn decay(dir: &Path) -> PathBuf {
    problem(dir, DECAY, "t,y\n0,1\n1,0.6\n2,0.37\n3,0.22\n", "start = 0.3, lower = 0.0, upper = 2.0")
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    parfit_in(dir, args)
}

/// Wait for `child` at most `limit`; kill it and fail when it takes longer (a hang).
fn wait_bounded(mut child: Child, limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("parfit still running after {limit:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap().into(), start.elapsed())
}

fn spawn_in(dir: &Path, args: &[&str]) -> Child {
    Command::new(parfit_bin())
        .current_dir(dir)
        .env_remove("PARFIT_PLUGIN_PATH")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_fit_that_simulates_no_candidate_exits_1_and_writes_nothing() {
    let dir = scratch("catalogue-outputs-fit-nothing");
    blow_up(&dir);
    let run = run_in(&dir, &["fit", "config.toml", "--output", "out"]);
    refused(&run, 1, &["no candidate could be simulated", "nothing was written"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_sample_whose_every_log_likelihood_is_minus_inf_exits_1_and_writes_nothing() {
    let dir = scratch("catalogue-outputs-sample-nothing");
    blow_up(&dir);
    let run = run_in(&dir, &["sample", "config.toml", "--output", "out"]);
    refused(&run, 1, &["every log-likelihood is -inf", "nothing was written"]);
    nothing_written(&dir.join("out"));
}

#[test]
fn a_full_disk_fails_the_run_with_no_partial_file() {
    let dir = scratch("catalogue-outputs-disk-full");
    decay(&dir);
    std::fs::create_dir(dir.join("full")).unwrap();
    // A 12 KiB tmpfs in a private mount namespace (as an unprivileged user through a user namespace): the
    // result files need more, so one write fails with ENOSPC. The listing is taken inside, before it vanishes.
    let script = format!(
        "mount -t tmpfs -o size=12k tmpfs full || exit 77; {} fit config.toml --output full; echo \"exit $?\"; ls -A \
         full",
        parfit_bin().display()
    );
    let out = Command::new("unshare").current_dir(&dir).args(["-rm", "sh", "-c", &script]).output();
    let out = match out {
        Ok(out) if out.status.code() != Some(77) => out,
        _ => {
            eprintln!("skipped: this machine cannot mount a tmpfs in a user namespace (unshare -rm)");
            return;
        }
    };
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let exit = stdout.lines().find_map(|l| l.strip_prefix("exit ")).unwrap_or("none");
    let listing: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("exit ")).skip(1).collect();
    assert_eq!(exit, "1", "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("No space left on device") && stderr.contains("cannot write"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(listing.is_empty(), "the full directory holds {listing:?}");
}

#[test]
fn a_second_run_into_a_directory_in_use_is_refused() {
    let dir = scratch("catalogue-outputs-lock");
    let config = parfit_tests::decay_problem(&dir, 3000);
    let config = config.to_str().unwrap();
    let first = spawn_in(&dir, &["fit-many", config, "--threads", "1", "--output", "out"]);
    let checkpoint = dir.join("out").join("checkpoint.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&checkpoint).map_or(0, |t| t.lines().count()) < 5 {
        assert!(Instant::now() < deadline, "the first run made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = std::fs::read_to_string(&checkpoint).unwrap().lines().count();
    let second = run_in(&dir, &["fit-many", config, "--output", "out"]);
    refused(&second, 1, &["out: another parfit run is using this output directory"]);
    let resumed = run_in(&dir, &["fit-many", config, "--resume", "--output", "out"]);
    refused(&resumed, 1, &["another parfit run is using this output directory"]);

    // The first run's checkpoint was neither truncated nor interleaved: stop it and resume it to the end.
    Command::new("kill").args(["-TERM", &first.id().to_string()]).status().unwrap();
    let (stopped, _) = wait_bounded(first, Duration::from_secs(30));
    assert_eq!(stopped.code, 130, "{}", stopped.stderr);
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    assert!(text.lines().count() >= before, "the checkpoint lost lines");
    let finished = run_in(&dir, &["fit-many", config, "--resume", "--output", "out", "--format", "json"]);
    let summary = finished.assert_ok().json();
    assert_eq!(summary["fitted"].as_u64().unwrap() + summary["resumed"].as_u64().unwrap(), 3000);
    assert_eq!(summary["failed"], 0);
}

#[test]
fn fit_many_where_every_case_fails_exits_1() {
    let dir = scratch("catalogue-outputs-all-failed");
    let config = parfit_tests::decay_problem(&dir, 4);
    // Every case now blows up long before its first observation at t = 1.
    std::fs::write(
        dir.join("decay.ds"),
        "in_i { k = 150.0, y0 = 1.0 }\nu_i { y = y0 }\nF_i { k * y * y }\nout_i { y }\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "k = { start = 0.5, lower = -1.0, upper = 2.0 }\ny0 = { start = 4.0, lower = 0.0, upper = 20.0 }",
        "k = { start = 150.0, lower = 100.0, upper = 200.0 }\ny0 = { start = 4.0, lower = 1.0, upper = 20.0 }",
    );
    std::fs::write(&config, text).unwrap();
    let run = run_in(&dir, &["fit-many", config.to_str().unwrap(), "--output", "out"]);
    refused(&run, 1, &["every one of the 4 cases failed", "checkpoint.jsonl"]);
    for name in ["results.csv", "summary.json", "histograms.svg"] {
        assert!(!dir.join("out").join(name).exists(), "{name} was written");
    }
}

#[test]
fn a_closed_stdout_pipe_ends_with_exit_1_and_no_panic() {
    let dir = scratch("catalogue-outputs-closed-pipe");
    decay(&dir);
    // 10^5 rows overflow any pipe buffer, so the write meets the closed pipe whatever the timing.
    let mut child = spawn_in(&dir, &["run", "model.ds", "--times", "0:1:100000"]);
    drop(child.stdout.take());
    let (run, _) = wait_bounded(child, Duration::from_secs(60));
    refused(&run, 1, &[]);
    assert!(run.stderr.trim().is_empty(), "a closed pipe ends quietly, as Unix tools do:\n{}", run.stderr);
}

#[test]
fn a_full_stdout_device_is_reported_with_exit_1() {
    let dir = scratch("catalogue-outputs-dev-full");
    decay(&dir);
    let out = Command::new(parfit_bin())
        .current_dir(&dir)
        .args(["run", "model.ds", "--times", "0:1:5"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    refused(&out.into(), 1, &["cannot write to stdout", "No space left on device"]);
}

#[test]
fn ten_thousand_threads_are_refused_with_the_allowed_range() {
    let dir = scratch("catalogue-outputs-threads");
    decay(&dir);
    let flag = run_in(&dir, &["run", "model.ds", "--times", "0:1:3", "--threads", "10000"]);
    refused(&flag, 2, &["--threads", "10000", "1..=1024"]);
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    std::fs::write(dir.join("config.toml"), format!("threads = 10000\n{text}")).unwrap();
    let key = run_in(&dir, &["fit", "config.toml"]);
    refused(&key, 2, &["config.toml:1:11: threads must be from 1 to 1024 (got 10000)"]);
}

#[test]
fn a_set_value_that_is_not_finite_or_names_no_parameter_is_refused() {
    let dir = scratch("catalogue-outputs-set");
    decay(&dir);
    for value in ["k=nan", "k=inf", "k=-inf"] {
        let run = run_in(&dir, &["run", "model.ds", "--times", "0:1:3", "--set", value]);
        refused(&run, 2, &[&format!("--set '{value}'"), "is not a finite number"]);
        let run = run_in(&dir, &["fit", "config.toml", "--set", value]);
        refused(&run, 2, &[&format!("--set '{value}'"), "is not a finite number"]);
    }
    let run = run_in(&dir, &["run", "model.ds", "--times", "0:1:3", "--set", "zeta=1"]);
    refused(&run, 2, &["--set", "no parameter named 'zeta'"]);
}

#[test]
fn times_that_are_not_finite_are_refused_naming_the_flag() {
    let dir = scratch("catalogue-outputs-times");
    decay(&dir);
    for times in ["0:inf:10", "nan", "0,nan,2"] {
        let run = run_in(&dir, &["run", "model.ds", "--times", times]);
        refused(&run, 2, &["--times", times]);
    }
}

#[test]
fn input_files_that_are_not_utf8_are_located_to_line_and_column() {
    let dir = scratch("catalogue-outputs-utf8");
    decay(&dir);
    let config = std::fs::read(dir.join("config.toml")).unwrap();
    let mut bad = b"# caf\xe9\n".to_vec();
    bad.extend(&config);
    std::fs::write(dir.join("latin1.toml"), &bad).unwrap();
    let run = run_in(&dir, &["fit", "latin1.toml"]);
    refused(&run, 2, &["latin1.toml:1:6: the file is not UTF-8 text (byte 5 is 0xe9)"]);

    std::fs::write(dir.join("data.csv"), b"t,y\n0,1\n1,0.6\xff\n").unwrap();
    let run = run_in(&dir, &["fit", "config.toml"]);
    refused(&run, 2, &["data.csv:3:6: the file is not UTF-8 text (byte 13 is 0xff)"]);

    std::fs::write(dir.join("model.ds"), b"in_i { k = 0.5 }\n\xc3(\n").unwrap();
    let run = run_in(&dir, &["run", "model.ds", "--times", "0:1:3"]);
    refused(&run, 2, &["model.ds:2:1: the file is not UTF-8 text (byte 17 is 0xc3)"]);
}

#[test]
fn a_fit_with_a_huge_data_value_plots_without_it_and_says_so() {
    // (Values near ±1e308 overflow the SSE, so such a fit now fails before plotting; plot.rs's unit tests draw
    // ±1e308, inf and NaN in every plot directly.)
    let dir = scratch("catalogue-outputs-huge-plot");
    problem(&dir, DECAY, "t,y\n0,1\n1,1e150\n2,0.37\n3,0.22\n", "start = 0.3, lower = 0.0, upper = 2.0");
    let child = spawn_in(&dir, &["fit", "config.toml", "--output", "out"]);
    let (run, _) = wait_bounded(child, Duration::from_secs(60));
    run.assert_ok();
    assert!(run.stderr.contains("fit.svg: 1 value(s) not finite or beyond ±1e100 are not drawn"), "{}", run.stderr);
    assert!(dir.join("out").join("fit.svg").is_file());
}

/// Wait until the run has locked (so created) its output directory `out`: its model is loaded and its
/// simulation about to start. Then give it a moment to get into the long task.
fn started(out: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.is_dir() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn sigterm_ends_a_task_stuck_in_a_plugin_with_exit_130_and_nothing_written() {
    let dir = scratch("catalogue-outputs-sigterm");
    let pi = parfit_tests::root().join("examples").join("pi").join("pi.mc");
    // One path of 10^12 periods: a single task that runs for hours inside the plugin.
    let config = format!(
        "seed = 1\n\n[model]\nkind = \"montecarlo\"\nsource = {:?}\n\n[montecarlo]\npaths = 1\nperiods = \
         1_000_000_000_000\nstatistics = [\"mean\"]\n",
        pi.display().to_string()
    );
    std::fs::write(dir.join("long.toml"), config).unwrap();
    let child = spawn_in(&dir, &["run", "long.toml", "--output", "out"]);
    started(&dir.join("out"));
    let sent = Instant::now();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let (run, _) = wait_bounded(child, Duration::from_secs(30));
    let waited = sent.elapsed();
    refused(&run, 130, &["interrupted"]);
    assert!(waited < Duration::from_secs(10), "took {waited:?} to stop");
    nothing_written(&dir.join("out"));

    // A second signal does not wait for the grace period.
    std::fs::remove_dir(dir.join("out")).unwrap();
    let child = spawn_in(&dir, &["run", "long.toml", "--output", "out"]);
    started(&dir.join("out"));
    let sent = Instant::now();
    for _ in 0..2 {
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let (run, _) = wait_bounded(child, Duration::from_secs(30));
    refused(&run, 130, &["interrupted (a second signal)"]);
    assert!(sent.elapsed() < Duration::from_secs(2), "took {:?} after a second signal", sent.elapsed());
    nothing_written(&dir.join("out"));
}
