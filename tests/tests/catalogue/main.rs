//! The catalogue of bad inputs (issue 16): every case a user or a fuzzer found that crashed, hung, gave a wrong
//! answer or lost files, run against the release-like debug binary. Each ends with exit 2 (bad input) or 1
//! (the run failed) and a message that names where the problem is, or is refused before any work starts —
//! and no result file is left behind.
//!
//! One module per area, so each can grow on its own: optimiser and sampler settings, model texts and their
//! runs, command-line flags, and output files.

mod found;
mod models;
mod options;
mod outputs;

use std::path::Path;

use parfit_tests::Run;

/// Assert that `run` was refused with `code` (2: bad input, 1: the run failed) and that stderr contains every
/// one of `needles`; no panic, no abort, no signal.
#[track_caller]
pub fn refused(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("panicked"), "a panic:\n{}", run.stderr);
    for needle in needles {
        assert!(run.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", run.stderr);
    }
}

/// Assert that `dir` holds no files (or does not exist): nothing was written by a refused run.
#[track_caller]
pub fn nothing_written(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{} holds {left:?}", dir.display());
}
