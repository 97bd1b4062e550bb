//! parfit's application layer, shared by its front ends (the CLI, the Python package, the browser façade): the
//! TOML configuration and everything built from it — observations and case tables from CSV text, the objective,
//! the staged optimiser run (horizon stages and polishing), the per-case fits of `fit-many`, posterior sampling,
//! projections and Monte Carlo runs. The front ends run the same code, so a configuration gives the same
//! numbers in each.
//!
//! No I/O: a configuration names files (model source, CSV data) relative to itself, and the caller supplies a
//! [`Loader`] that returns their text — the CLI reads the file system, the browser a set of bundled or uploaded
//! texts.

pub mod cases;
#[cfg(feature = "files")]
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dispatch;
pub mod fit_many;
pub mod fit_result;
pub mod fitting;
pub mod montecarlo;
pub mod projection;
pub mod sampling;
pub mod simulate;

use std::fmt;
use std::path::Path;

/// Bad input: a configuration, data or model file the user must fix. The message names the file (and line,
/// column or key) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Shorthand for an input error.
pub fn input(message: impl Into<String>) -> InputError {
    InputError(message.into())
}

pub type Result<T> = std::result::Result<T, InputError>;

/// The most worker threads a run may ask for: far more than any machine's cores, far fewer than would exhaust
/// the process's thread or memory limits.
pub const MAX_THREADS: usize = 1024;

/// A configuration's `threads` key, unless the front end's own setting (`given`) overrides it: refused outside
/// 1–[`MAX_THREADS`] at `place()` (the key's `file:line:column`).
pub fn configured_threads(given: bool, key: Option<usize>, place: impl FnOnce() -> String) -> Result<Option<usize>> {
    match key {
        Some(n) if !given && !(1..=MAX_THREADS).contains(&n) => {
            Err(input(format!("{}: threads must be from 1 to {MAX_THREADS} (got {n})", place())))
        }
        _ => Ok(key),
    }
}

/// Why a run (Monte Carlo paths, a projection) produced no results once its input was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// A simulation failed; the message says where (sweep point and paths, or point and scenario).
    Failed(String),
    /// The caller asked to stop before everything ran.
    Interrupted(String),
}

/// `bytes` of the file at `path` as text, or an error at the first byte that is not UTF-8:
/// `path:line:column: …` (column counted in characters, as editors do) and the byte offset.
pub fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        // Everything before `at` is valid UTF-8, so this never fails.
        let (line, column) = line_column(std::str::from_utf8(&bytes[..at]).unwrap_or_default());
        input(format!(
            "{}:{line}:{column}: the file is not UTF-8 text (byte {at} is 0x{:02x}); save it as UTF-8",
            path.display(),
            bytes.get(at).copied().unwrap_or_default()
        ))
    })
}

/// The line and column (in characters, from 1) just after `before`, the text up to a place in a file.
pub fn line_column(before: &str) -> (usize, usize) {
    let line = before.matches('\n').count() + 1;
    (line, before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1)
}

/// Where the files a configuration names come from. `path` is already resolved against the configuration's
/// directory ([`config::LoadedConfig::resolve`]); a failure says which file could not be read and why.
pub trait Loader {
    fn read(&self, path: &Path) -> Result<String>;
}

/// A loader over texts held in memory, keyed by path (the browser's bundled examples and uploads; tests).
#[derive(Debug, Clone, Default)]
pub struct MemoryLoader {
    files: std::collections::BTreeMap<std::path::PathBuf, String>,
}

impl MemoryLoader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) the file at `path`.
    pub fn insert(&mut self, path: impl Into<std::path::PathBuf>, text: impl Into<String>) {
        self.files.insert(path.into(), text.into());
    }
}

impl Loader for MemoryLoader {
    fn read(&self, path: &Path) -> Result<String> {
        self.files.get(path).cloned().ok_or_else(|| {
            let known: Vec<String> = self.files.keys().map(|p| p.display().to_string()).collect();
            input(format!("{}: no such file (have: {})", path.display(), known.join(", ")))
        })
    }
}
