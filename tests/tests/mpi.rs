//! `parfit` under `mpirun` (feature `mpi` of this crate; `cargo xtask test` runs it): the county fits, the
//! 10K-policy projection and two of lifelib's models as model files on 1, 2 and 3 ranks give byte-identical files
//! to the plain build, whatever the threads per rank; a run whose ranks are killed resumes, on another rank count,
//! to identical results; one fit's or sample's batches spread over ranks give the single-process answer bit for
//! bit; only rank 0 reads inputs.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use parfit_tests::{Run, decay_problem, parfit, parfit_in, parfit_mpi_bin, plugin_dir, root, scratch};

/// `mpirun -np N parfit ARGS` with the MPI build: oversubscribed (3 ranks on 2 cores), unbound (each rank's
/// rayon threads may use every core), as root when CI is root, and without the shared-memory single-copy
/// mechanism that containers often forbid.
fn mpirun(np: usize, args: &[&str]) -> Command {
    let mut cmd = mpirun_with_options();
    cmd.current_dir(root()).args(["-np", &np.to_string()]).arg(parfit_mpi_bin()).arg("--plugin").arg(plugin_dir());
    cmd.args(args);
    cmd
}

fn mpirun_with_options() -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.env_remove("PARFIT_PLUGIN_PATH").args(["--oversubscribe", "--allow-run-as-root", "--bind-to", "none"]).args([
        "--mca",
        "btl_vader_single_copy_mechanism",
        "none",
    ]);
    cmd
}

/// `mpirun` in Open MPI's MPMD form: one rank of `parfit ARGS` per working directory, `dirs[0]` being rank 0's.
/// Relative paths in `args` then name different files on each rank.
fn mpirun_in(dirs: &[&Path], args: &[&str]) -> Run {
    let mut cmd = mpirun_with_options();
    for (k, dir) in dirs.iter().enumerate() {
        if k > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", "1", "-wdir"]).arg(dir).arg(parfit_mpi_bin()).arg("--plugin").arg(plugin_dir()).args(args);
    }
    spawn_within(cmd)
}

fn run_mpi(np: usize, args: &[&str]) -> Run {
    spawn_within(mpirun(np, args))
}

fn spawn_within(mut cmd: Command) -> Run {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("mpirun runs (install openmpi-bin)");
    output_within(child, Duration::from_secs(900)).into()
}

/// The child's output once it exits; a run still going after `limit` is killed and fails the test, so a hung
/// MPI job can never stall `cargo xtask test`.
fn output_within(mut child: std::process::Child, limit: Duration) -> Output {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mpirun still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn same_files(a: &Path, b: &Path, files: &[&str], what: &str) {
    for file in files {
        let (x, y) = (std::fs::read(a.join(file)), std::fs::read(b.join(file)));
        assert!(x.is_ok() && x.as_ref().ok() == y.as_ref().ok(), "{file}: {what} differs from the plain run");
    }
}

/// totals.json without what legitimately differs between runs (timing, threads, ranks).
fn totals(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("totals.json")).unwrap()).unwrap();
    for key in ["seconds", "threads", "ranks"] {
        v.as_object_mut().unwrap().remove(key);
    }
    v
}

#[test]
fn county_fits_on_1_2_3_ranks_match_the_plain_run_byte_for_byte() {
    let dir = scratch("mpi-counties");
    let config = "examples/counties/fit.toml";
    let plain = dir.join("plain");
    parfit(&["fit-many", config, "--threads", "2", "--output", plain.to_str().unwrap()]).assert_ok();
    for (np, threads) in [(1, "2"), (2, "1"), (3, "2")] {
        let out = dir.join(format!("np{np}"));
        let args = ["fit-many", config, "--threads", threads, "--format", "json", "--output", out.to_str().unwrap()];
        let summary = run_mpi(np, &args).assert_ok().json();
        assert_eq!(summary["ranks"].as_u64(), Some(np as u64), "ranks reported");
        same_files(&plain, &out, &["results.csv", "summary.json", "histograms.svg"], &format!("np {np}"));
    }
}

#[test]
fn the_policy_projection_on_1_2_3_ranks_matches_the_plain_run_byte_for_byte() {
    let dir = scratch("mpi-savings");
    let config = "examples/savings/run.toml";
    let plain = dir.join("plain");
    parfit(&["run", config, "--threads", "2", "--output", plain.to_str().unwrap()]).assert_ok();
    let files = ["pv.csv", "result_cf.csv", "result_pols.csv", "audit.csv", "projection.svg"];
    for (np, threads) in [(1, "1"), (2, "2"), (3, "1")] {
        let out = dir.join(format!("np{np}"));
        let run =
            run_mpi(np, &["run", config, "--threads", threads, "--format", "json", "--output", out.to_str().unwrap()]);
        let report = run.assert_ok().json();
        assert_eq!(report["ranks"].as_u64(), Some(np as u64));
        same_files(&plain, &out, &files, &format!("np {np}"));
        assert_eq!(totals(&plain), totals(&out), "totals.json: np {np} differs from the plain run");
    }
}

/// lifelib's models as model files (examples/lifelib, checked against lifelib's goldens by lifelib_models.rs) on
/// 1–3 ranks: CashValue_SE (seriatim, every point over its own length, ten scenarios), BasicTerm_M (two passes:
/// the premium solved from the projection) and CashValue_ME_EX4 (numpy's draws made by every rank from the seed,
/// 1,000 scenarios) write the same files as the plain run.
#[test]
fn lifelib_model_files_on_1_2_3_ranks_match_the_plain_run_byte_for_byte() {
    for model in ["cashvalue_se", "basicterm_m", "cashvalue_me_ex4"] {
        let dir = scratch(&format!("mpi-lifelib-{model}"));
        let config = format!("examples/lifelib/{model}/run.toml");
        let plain = dir.join("plain");
        parfit(&["run", &config, "--threads", "2", "--output", plain.to_str().unwrap()]).assert_ok();
        // Every file the plain run wrote (BasicTerm_M has no policy counts, so no result_pols.csv or plot).
        let mut files: Vec<String> = std::fs::read_dir(&plain)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f != "totals.json")
            .collect();
        files.sort();
        assert!(["pv.csv", "result_cf.csv", "audit.csv"].iter().all(|f| files.iter().any(|x| x == f)), "{files:?}");
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        for (np, threads) in [(1, "2"), (2, "1"), (3, "2")] {
            let out = dir.join(format!("np{np}"));
            let args = ["run", &config, "--threads", threads, "--format", "json", "--output", out.to_str().unwrap()];
            let report = run_mpi(np, &args).assert_ok().json();
            assert_eq!(report["ranks"].as_u64(), Some(np as u64));
            same_files(&plain, &out, &files, &format!("{model}, np {np}"));
            assert_eq!(totals(&plain), totals(&out), "totals.json: {model}, np {np} differs from the plain run");
        }
    }
}

/// A Monte Carlo run (seeds × sweep, every path written) on 1–3 ranks: the tasks (blocks of paths through the
/// plugin's paths entry point) spread over ranks, the rows placed by path index, the same files as the plain run.
#[test]
fn a_monte_carlo_run_on_1_2_3_ranks_matches_the_plain_run_byte_for_byte() {
    let dir = scratch("mpi-montecarlo");
    let config = dir.join("run.toml");
    let text = format!(
        "seed = 3\n[model]\nkind = \"montecarlo\"\nsource = {:?}\n[montecarlo]\npaths = 2_001\nperiods = 60\n\
         per_path = true\nseeds = [3, 4]\nchunk = 97\nstatistics = [\"mean\", \"sd\", \"median\", \"q5\"]\n\
         [sweep]\ns = [0.2, 0.3]\n",
        root().join("examples/wealth/wealth.mc").display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let plain = dir.join("plain");
    parfit(&["run", config, "--threads", "2", "--output", plain.to_str().unwrap()]).assert_ok();
    let summary = |dir: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        for key in ["seconds", "threads"] {
            v.as_object_mut().unwrap().remove(key);
        }
        v
    };
    for (np, threads) in [(1, "1"), (2, "2"), (3, "1")] {
        let out = dir.join(format!("np{np}"));
        run_mpi(np, &["run", config, "--threads", threads, "--output", out.to_str().unwrap()]).assert_ok();
        same_files(&plain, &out, &["summary.csv", "paths.csv"], &format!("np {np}"));
        assert_eq!(summary(&plain), summary(&out), "summary.json: np {np} differs from the plain run");
    }
}

#[test]
fn the_100k_projection_over_many_waves_matches_the_plain_run() {
    // 1,563 blocks: several waves, so released ranks start the next wave while others still hold blocks.
    let dir = scratch("mpi-savings-100k");
    let config = "examples/savings/run_100k.toml";
    let plain = dir.join("plain");
    parfit(&["run", config, "--threads", "2", "--output", plain.to_str().unwrap()]).assert_ok();
    for (np, threads) in [(2, "1"), (3, "1")] {
        let out = dir.join(format!("np{np}"));
        run_mpi(np, &["run", config, "--threads", threads, "--output", out.to_str().unwrap()]).assert_ok();
        same_files(&plain, &out, &["pv.csv"], &format!("100K on {np} ranks"));
        assert_eq!(totals(&plain), totals(&out), "totals.json: np {np} differs from the plain run");
    }
}

/// Start `mpirun -np N fit-many` on the decay problem and wait until its checkpoint holds `lines` records.
fn start_and_wait(np: usize, config: &Path, out: &Path, lines: usize) -> std::process::Child {
    let mut child = mpirun(np, &["fit-many", config.to_str().unwrap(), "--threads", "1"])
        .args(["--output", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = out.join("checkpoint.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&checkpoint).map_or(0, |t| t.lines().count()) < lines {
        assert!(Instant::now() < deadline, "no progress in the checkpoint");
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// The rank processes mpirun started (its children running parfit).
fn ranks_of(mpirun: u32) -> Vec<u32> {
    let out = Command::new("pgrep").args(["-P", &mpirun.to_string()]).output().expect("pgrep (procps)");
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn rank_pid(mpirun: u32, rank: usize) -> u32 {
    // Open MPI sets OMPI_COMM_WORLD_RANK in each rank's environment.
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for pid in ranks_of(mpirun) {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if env.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "rank {rank} of mpirun {mpirun} not found");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(pid: u32, signal: &str) {
    assert!(Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success());
}

fn results(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results.csv")).unwrap()
}

fn problem(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    let config = decay_problem(&dir, 3000);
    let whole = dir.join("whole");
    parfit(&["fit-many", config.to_str().unwrap(), "--output", whole.to_str().unwrap()]).assert_ok();
    (config, whole, dir.join("killed"))
}

/// Resume the interrupted run in `killed` on `np` ranks (`None`: the plain build, no mpirun): every case is
/// fitted exactly once, at least `saved` come from the checkpoint, and results.csv is the uninterrupted one.
fn resume_matches(np: Option<usize>, config: &Path, whole: &Path, killed: &Path, saved: u64) {
    let args =
        ["fit-many", config.to_str().unwrap(), "--resume", "--format", "json", "--output", killed.to_str().unwrap()];
    let run = match np {
        Some(np) => run_mpi(np, &args),
        None => parfit(&args),
    };
    let summary = run.assert_ok().json();
    let (fitted, from_checkpoint) = (summary["fitted"].as_u64().unwrap(), summary["resumed"].as_u64().unwrap());
    assert!(from_checkpoint >= saved, "resumed only {from_checkpoint} cases");
    assert_eq!(fitted + from_checkpoint, 3000, "every case is fitted exactly once");
    assert_eq!(results(whole), results(killed), "resumed results differ from an uninterrupted run");
}

#[test]
fn killing_rank_0_mid_run_then_resuming_on_2_ranks_gives_the_uninterrupted_results() {
    let (config, whole, killed) = problem("mpi-kill-root");
    let job = start_and_wait(3, &config, &killed, 200);
    // The checkpoint's writer dies without warning (as an OOM kill would); mpirun ends the other ranks.
    kill(rank_pid(job.id(), 0), "-KILL");
    let out = output_within(job, Duration::from_secs(900));
    assert!(!out.status.success(), "the job must fail when a rank dies");
    assert!(!killed.join("results.csv").exists(), "an interrupted run must not leave results behind");
    resume_matches(Some(2), &config, &whole, &killed, 199);
}

#[test]
fn a_dying_worker_is_reported_with_its_cases_and_the_checkpoint_keeps_the_rest() {
    let (config, whole, killed) = problem("mpi-kill-worker");
    let job = start_and_wait(2, &config, &killed, 200);
    kill(rank_pid(job.id(), 1), "-KILL");
    let out = output_within(job, Duration::from_secs(900));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the job must fail when a rank dies:\n{stderr}");
    assert!(stderr.contains("rank 1 holds cases"), "the dead rank's cases are not reported:\n{stderr}");
    resume_matches(Some(3), &config, &whole, &killed, 199);
}

#[test]
fn sigterm_to_mpirun_stops_every_rank_cleanly_and_resume_on_1_rank_finishes() {
    let (config, whole, killed) = problem("mpi-sigterm");
    let mut job = start_and_wait(3, &config, &killed, 100);
    let ranks: Vec<u32> = (0..3).map(|r| rank_pid(job.id(), r)).collect();
    // What Slurm's scancel does first: SIGTERM, which mpirun forwards to every rank.
    kill(job.id(), "-TERM");
    // Open MPI 4.1's mpirun now and then never reaps ranks that ended after a forwarded SIGTERM (seen once here:
    // the ranks zombies, mpirun asleep). What is tested is parfit's ranks, so once every rank has
    // ended, mpirun gets 20 s before it is killed as Slurm would after its KillWait.
    let (mut ended_at, signalled) = (None, Instant::now());
    while job.try_wait().unwrap().is_none() && signalled.elapsed() < Duration::from_secs(900) {
        let all_ended = ranks.iter().all(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        });
        match (all_ended, ended_at) {
            (false, _) => ended_at = None,
            (true, None) => ended_at = Some(Instant::now()),
            (true, Some(at)) if at.elapsed() > Duration::from_secs(20) => {
                let _ = job.kill();
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = output_within(job, Duration::from_secs(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--resume"), "rank 0 says how to finish:\n{stderr}");
    resume_matches(None, &config, &whole, &killed, 99);
}

/// One decay curve observed at eight times, for `fit` and `sample` spread over ranks (small: the debug build).
fn single_problem(dir: &Path) -> PathBuf {
    decay_problem(dir, 1);
    let data: String =
        (0..8).map(|i| format!("{i},{}\n", 3.0 * (-0.4 * i as f64).exp() + 0.01 * (i % 3) as f64)).collect();
    std::fs::write(dir.join("data.csv"), format!("t,y\n{data}")).unwrap();
    let config = "seed = 5\n\n[model]\nkind = \"diffsl\"\nsource = \"decay.ds\"\n\n[data]\npath = \"data.csv\"\n\
                  time = \"t\"\noutputs = [\"y\"]\n\n[parameters]\nk = { start = 0.5, lower = 0.0, upper = 2.0 }\n\
                  y0 = { start = 4.0, lower = 0.0, upper = 20.0 }\n\n[fit]\nmax_iterations = 40\n\n[sample]\n\
                  algorithm = \"nested\"\nsigma = 0.05\n\n[sample.nested]\nlive_points = 40\ndlogz = 0.5\n\n\
                  [sample.nested.dynamic]\nmax_batches = 1\nn_effective = 200\n";
    let path = dir.join("single.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// A JSON report without what legitimately differs between runs.
fn without_timing(mut v: serde_json::Value) -> serde_json::Value {
    for key in ["seconds", "threads", "ranks"] {
        v.as_object_mut().map(|o| o.remove(key));
    }
    v
}

#[test]
fn one_fit_and_one_sample_spread_over_ranks_match_the_plain_run() {
    let dir = scratch("mpi-single");
    let config = single_problem(&dir);
    let config = config.to_str().unwrap();
    for algorithm in ["cmaes", "differential_evolution", "levenberg_marquardt"] {
        let args = ["fit", config, "--algorithm", algorithm, "--format", "json"];
        let plain = without_timing(parfit(&args).assert_ok().json());
        assert!(plain["value"].as_f64().unwrap() < 1e-2, "{algorithm} did not fit: {plain}");
        for np in [2, 3] {
            let spread = without_timing(run_mpi(np, &args).assert_ok().json());
            assert_eq!(plain, spread, "{algorithm}: {np} ranks differ from one process");
        }
    }
    let plain = dir.join("sample-plain");
    parfit(&["sample", config, "--threads", "1", "--output", plain.to_str().unwrap()]).assert_ok();
    for np in [2, 3] {
        let out = dir.join(format!("sample-np{np}"));
        run_mpi(np, &["sample", config, "--threads", "1", "--output", out.to_str().unwrap()]).assert_ok();
        same_files(&plain, &out, &["samples.csv", "corner.svg"], &format!("sample on {np} ranks"));
    }
}

/// The one-fit problem with a wall-clock limit, which a fit spread over ranks refuses.
fn wall_clock_problem(dir: &Path) -> String {
    let config = single_problem(dir);
    let text = std::fs::read_to_string(&config).unwrap().replace("[fit]\n", "[fit]\nmax_seconds = 5.0\n");
    std::fs::write(&config, text).unwrap();
    config.to_str().unwrap().to_string()
}

const WALL_CLOCK_REFUSED: &str = "max_seconds cannot be used across MPI ranks";

#[test]
fn a_wall_clock_limit_is_refused_across_ranks() {
    let config = wall_clock_problem(&scratch("mpi-max-seconds"));
    for np in [2, 3] {
        let run = run_mpi(np, &["fit", &config]);
        assert_eq!(run.code, 2, "{np} ranks: {}", run.stderr);
        assert_eq!(run.stderr.matches(WALL_CLOCK_REFUSED).count(), 1, "{np} ranks, one report:\n{}", run.stderr);
    }
    parfit(&["fit", &config]).assert_ok();
}

/// An error every rank meets reaches the user even when rank 0 meets it last: the other ranks wait for rank 0's
/// report instead of aborting the job before it is out. `PARFIT_TEST_ERROR_DELAY` (read by `ranks::mpi::fail`,
/// for tests only) holds rank 0 back 3 s; another rank delayed changes nothing.
#[test]
fn an_error_is_printed_once_even_when_rank_0_reports_it_last() {
    let config = wall_clock_problem(&scratch("mpi-error-race"));
    for (np, delayed) in [(2, "0:3"), (3, "0:3"), (3, "2:1")] {
        let mut cmd = mpirun(np, &["fit", &config]);
        cmd.env("PARFIT_TEST_ERROR_DELAY", delayed);
        let run = spawn_within(cmd);
        assert_eq!(run.code, 2, "{np} ranks, delay {delayed}: {}", run.stderr);
        assert_eq!(
            run.stderr.matches(WALL_CLOCK_REFUSED).count(),
            1,
            "{np} ranks, delay {delayed}: one report, from rank 0:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("error on rank"), "{np} ranks, delay {delayed}: {}", run.stderr);
    }
}

#[test]
fn monte_carlo_paths_over_ranks_match_the_plain_run() {
    let dir = scratch("mpi-montecarlo");
    let config = dir.join("run.toml");
    let model = root().join("examples/wealth/wealth.mc").display().to_string();
    let text = format!(
        "seed = 1\n\n[model]\nkind = \"montecarlo\"\nsource = {model:?}\n\n[montecarlo]\npaths = 3_001\nperiods = 120\n\
         statistics = [\"mean\", \"median\", \"q99\"]\nper_path = true\n\n[sweep]\ns = [0.25, 0.35]\n"
    );
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let plain = dir.join("plain");
    parfit(&["run", config, "--threads", "2", "--output", plain.to_str().unwrap()]).assert_ok();
    for (np, threads) in [(2, "1"), (3, "2")] {
        let out = dir.join(format!("np{np}"));
        run_mpi(np, &["run", config, "--threads", threads, "--output", out.to_str().unwrap()]).assert_ok();
        same_files(&plain, &out, &["summary.csv", "paths.csv"], &format!("Monte Carlo on {np} ranks"));
    }
}

/// Rank 0 reads every input and hands it to the others: with the inputs in rank 0's working directory only and
/// relative paths on the command line, a second rank started in an empty directory cannot read them itself, yet
/// the job runs and matches the plain run — fit-many (configuration, model source, cases table), fit (its data
/// table) and a projection (actuarial tables, gzipped model points). A missing input fails every rank the same
/// way instead of hanging.
#[test]
fn only_rank_0_reads_the_inputs() {
    let dir = scratch("mpi-inputs-on-rank-0");
    let (inputs, elsewhere) = (dir.join("inputs"), dir.join("elsewhere"));
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&inputs).unwrap();
    decay_problem(&inputs, 60);
    single_problem(&inputs);
    let savings = root().join("examples/savings");
    for file in ["product_spec_table.csv", "mort_table.csv", "surr_charge_table.csv", "disc_rate_ann.csv"] {
        std::fs::copy(savings.join(file), inputs.join(file)).unwrap();
    }
    std::fs::copy(savings.join("std_norm_rand.csv"), inputs.join("std_norm_rand.csv")).unwrap();
    let points = std::fs::read(savings.join("model_point_samples.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &points).unwrap();
    std::fs::write(inputs.join("points.csv.gz"), gz.finish().unwrap()).unwrap();
    let projection = std::fs::read_to_string(savings.join("samples.toml"))
        .unwrap()
        .replace("model_point_samples.csv", "points.csv.gz");
    std::fs::write(inputs.join("project.toml"), projection).unwrap();

    let both: [&Path; 2] = [&inputs, &elsewhere];
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let in_inputs = |args: &[&str]| parfit_in(&inputs, args);

    // The second rank's directory really lacks the inputs.
    let alone = parfit_in(&elsewhere, &["fit-many", "many.toml", "--output", &out("alone")]);
    assert_eq!(alone.code, 2, "{}", alone.stderr);

    in_inputs(&["fit-many", "many.toml", "--threads", "1", "--output", &out("many-plain")]).assert_ok();
    let many =
        mpirun_in(&both, &["fit-many", "many.toml", "--threads", "1", "--format", "json", "--output", &out("many")]);
    assert_eq!(many.assert_ok().json()["ranks"].as_u64(), Some(2));
    same_files(
        &dir.join("many-plain"),
        &dir.join("many"),
        &["results.csv", "summary.json"],
        "fit-many, inputs on rank 0",
    );

    let fit = ["fit", "single.toml", "--algorithm", "cmaes", "--format", "json"];
    let plain = without_timing(in_inputs(&fit).assert_ok().json());
    assert_eq!(plain, without_timing(mpirun_in(&both, &fit).assert_ok().json()), "fit, inputs on rank 0");

    in_inputs(&["run", "project.toml", "--output", &out("project-plain")]).assert_ok();
    mpirun_in(&both, &["run", "project.toml", "--output", &out("project")]).assert_ok();
    let files = ["pv.csv", "result_cf.csv", "result_pols.csv", "audit.csv"];
    same_files(&dir.join("project-plain"), &dir.join("project"), &files, "projection, inputs on rank 0");

    std::fs::remove_file(inputs.join("cases.csv")).unwrap();
    let missing = mpirun_in(&both, &["fit-many", "many.toml", "--output", &out("missing")]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert_eq!(
        missing.stderr.matches("cases.csv: cannot read").count(),
        1,
        "one report, from rank 0:\n{}",
        missing.stderr
    );
}
