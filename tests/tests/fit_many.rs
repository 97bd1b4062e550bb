//! `parfit fit-many` end to end on a model with a known answer per case: every case recovers its parameters,
//! results do not depend on the thread count, and a killed run resumes to byte-identical results without
//! refitting finished cases.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parfit_tests::{decay_problem, parfit, parfit_bin, root, scratch};

fn results(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results.csv")).unwrap()
}

#[test]
fn every_case_recovers_its_parameters_for_any_thread_count() {
    let dir = scratch("fit-many-basic");
    let config = decay_problem(&dir, 60);
    let config = config.to_str().unwrap();
    let (one, two) = (dir.join("one"), dir.join("two"));
    let run = parfit(&["fit-many", config, "--threads", "1", "--output", one.to_str().unwrap(), "--format", "json"]);
    let summary = run.assert_ok().json();
    assert_eq!((summary["cases"].as_u64(), summary["failed"].as_u64()), (Some(60), Some(0)));
    parfit(&["fit-many", config, "--threads", "2", "--output", two.to_str().unwrap()]).assert_ok();
    assert_eq!(results(&one), results(&two), "results differ between 1 and 2 threads");

    let text = results(&one);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("region,site,k,y0,sse,evaluations,iterations,termination,error"));
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[..2], [(i / 10).to_string(), (i % 10).to_string()], "rows in input order");
        let k: f64 = cells[2].parse().unwrap();
        let exact = 0.1 + 0.9 * (i as f64 / 60.0);
        assert!((k - exact).abs() < 1e-6, "case {i}: k = {k}, expected {exact}");
    }
    for file in ["summary.json", "histograms.svg", "checkpoint.jsonl"] {
        assert!(one.join(file).is_file(), "{file} missing");
    }
}

#[test]
fn a_killed_run_resumes_to_identical_results_without_refitting() {
    let dir = scratch("fit-many-resume");
    let config = decay_problem(&dir, 3000);
    let config = config.to_str().unwrap();
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    parfit(&["fit-many", config, "--output", whole.to_str().unwrap()]).assert_ok();

    let mut child = Command::new(parfit_bin())
        .current_dir(root())
        .args(["fit-many", config, "--threads", "2", "--output", killed.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some cases are checkpointed, then kill without warning (as a crash or OOM kill would).
    let checkpoint = killed.join("checkpoint.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = std::fs::read_to_string(&checkpoint).map_or(0, |t| t.lines().count());
        if lines > 100 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress in the checkpoint");
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("results.csv").exists(), "an interrupted run must not leave results behind");

    let resumed = parfit(&["fit-many", config, "--resume", "--output", killed.to_str().unwrap(), "--format", "json"]);
    let summary = resumed.assert_ok().json();
    let (fitted, from_checkpoint) = (summary["fitted"].as_u64().unwrap(), summary["resumed"].as_u64().unwrap());
    assert!(from_checkpoint >= 100, "resumed only {from_checkpoint} cases");
    assert_eq!(fitted + from_checkpoint, 3000, "every case is fitted exactly once");
    assert_eq!(results(&whole), results(&killed), "resumed results differ from an uninterrupted run");
}

#[test]
fn sigterm_stops_cleanly_and_resume_finishes() {
    let dir = scratch("fit-many-sigterm");
    let config = decay_problem(&dir, 3000);
    let out = dir.join("out");
    let mut child = Command::new(parfit_bin())
        .current_dir(root())
        .args(["fit-many", config.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = out.join("checkpoint.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&checkpoint).map_or(0, |t| t.lines().count()) < 50 {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "no progress to interrupt");
        std::thread::sleep(Duration::from_millis(5));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--resume"));
    let summary = parfit(&[
        "fit-many",
        config.to_str().unwrap(),
        "--resume",
        "--output",
        out.to_str().unwrap(),
        "--format",
        "json",
    ])
    .assert_ok()
    .json();
    assert_eq!(summary["fitted"].as_u64().unwrap() + summary["resumed"].as_u64().unwrap(), 3000);
}
