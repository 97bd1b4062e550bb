//! The checkpoint of a many-case run (feature `files`; the browser has no files): one JSON line per finished
//! case, appended as cases finish, so a run that is interrupted (a signal, a crash, a power cut) resumes without
//! redoing finished cases. The CLI and the Python package write and read the same file.
//!
//! The first line fingerprints what was run (configuration, cases, model source, seed and overrides); resuming
//! with anything else is refused. A torn last line (a crash mid-write) is dropped on resume.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::InputError;
pub use crate::fitting::CaseRecord;

const FORMAT: u32 = 1;

/// Why a checkpoint could not be used: it is not this run's (or was damaged), which the user must settle, or
/// the file system failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// A checkpoint of another run, or a damaged one; the message says where and what to do.
    Input(InputError),
    /// Reading or writing failed; the message names the file.
    Io(String),
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Input(e) => e.fmt(f),
            CheckpointError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CheckpointError {}

type Result<T> = std::result::Result<T, CheckpointError>;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    parfit_checkpoint: u32,
    fingerprint: String,
}

/// An open checkpoint, appended to as cases finish.
pub struct Checkpoint {
    path: PathBuf,
    file: Mutex<File>,
}

impl Checkpoint {
    /// Open the checkpoint at `path`: fresh unless `resume`, in which case the records already there are
    /// returned (by case index) and new ones are appended after them.
    /// Each record read back must be one of `cases` cases with `params` fitted values (or a failure).
    /// `again` says how to start afresh in the front end's words (e.g. "run without --resume").
    pub fn open(
        path: &Path,
        fingerprint: &str,
        resume: bool,
        cases: usize,
        params: usize,
        again: &str,
    ) -> Result<(Self, BTreeMap<usize, CaseRecord>)> {
        let io = |e: std::io::Error| CheckpointError::Io(format!("{}: {e}", path.display()));
        let damaged = |line: usize, why: String| {
            CheckpointError::Input(InputError(format!("{}:{line}: {why}; {again} to start afresh", path.display())))
        };
        let mut done = BTreeMap::new();
        if resume && path.exists() {
            let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
            let mut reader = BufReader::new(&mut file);
            let mut line = String::new();
            let mut good_end = 0u64;
            let mut first = true;
            let mut number = 0;
            loop {
                number += 1;
                let read = reader.read_line(&mut line).map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => damaged(number, "the record is not UTF-8 text".into()),
                    _ => io(e),
                })?;
                if read == 0 {
                    break;
                }
                let complete = line.ends_with('\n');
                if first {
                    let header: Option<Header> = serde_json::from_str(line.trim()).ok();
                    match header {
                        Some(h) if h.parfit_checkpoint == FORMAT && h.fingerprint == fingerprint => {}
                        _ => {
                            return Err(CheckpointError::Input(InputError(format!(
                                "{}: this checkpoint was made by a different configuration, data, model or seed; \
                                 {again} to start afresh (it will be replaced)",
                                path.display()
                            ))));
                        }
                    }
                    first = false;
                } else {
                    match (serde_json::from_str::<CaseRecord>(line.trim()), complete) {
                        // A torn last line: everything from here is rewritten.
                        (_, false) => break,
                        (Ok(r), true) => {
                            if let Some(why) = misfit(&r, cases, params) {
                                return Err(damaged(number, why));
                            }
                            done.insert(r.index, r);
                        }
                        (Err(e), true) => return Err(damaged(number, format!("unreadable record ({e})"))),
                    }
                }
                good_end += line.len() as u64;
                line.clear();
            }
            if !first {
                file.set_len(good_end).map_err(io)?;
                file.seek(SeekFrom::End(0)).map_err(io)?;
                return Ok((Checkpoint { path: path.to_path_buf(), file: Mutex::new(file) }, done));
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = File::create(path).map_err(io)?;
        let header = Header { parfit_checkpoint: FORMAT, fingerprint: fingerprint.to_string() };
        let text = serde_json::to_string(&header).map_err(|e| CheckpointError::Io(e.to_string()))? + "\n";
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok((Checkpoint { path: path.to_path_buf(), file: Mutex::new(file) }, done))
    }

    /// The checkpoint's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one finished case, in one write, before the case counts as done.
    pub fn append(&self, record: &CaseRecord) -> Result<()> {
        let text = serde_json::to_string(record).map_err(|e| CheckpointError::Io(e.to_string()))? + "\n";
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(text.as_bytes()).map_err(|e| CheckpointError::Io(format!("{}: {e}", self.path.display())))
    }
}

/// Why a record read back cannot be one of this run's `cases` cases with `params` fitted values. The fingerprint
/// matched, so only an edited or damaged file gets here.
fn misfit(record: &CaseRecord, cases: usize, params: usize) -> Option<String> {
    if record.index >= cases {
        return Some(format!("case index {} is beyond the table's {cases} cases", record.index));
    }
    if record.error.is_none() && record.x.len() != params {
        return Some(format!("case {} has {} fitted values, not {params}", record.index, record.x.len()));
    }
    None
}

/// A fingerprint of everything that determines a run's results.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: stable for a given parfit build, which is what resuming needs.
    let mut hasher = std::hash::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    for part in parts {
        part.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// What a many-case run's results depend on besides its files: the seed and the overrides of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides<'a> {
    pub seed: u64,
    /// Parameter starts set for the run, as `NAME=VALUE` (the CLI's `--set`).
    pub sets: &'a [String],
    pub rtol: Option<f64>,
    pub atol: Option<f64>,
    /// The optimiser chosen over the configuration's.
    pub algorithm: Option<crate::config::Algorithm>,
}

/// The fingerprint of a many-case run: the configuration's text, the cases table's and the model source's bytes,
/// and the overrides.
pub fn run_fingerprint(config: &[u8], cases: &[u8], source: &[u8], overrides: &Overrides) -> String {
    let Overrides { seed, sets, rtol, atol, algorithm } = overrides;
    let mut settings = format!("{seed} {sets:?} {rtol:?} {atol:?}");
    // Written only when chosen, so a run without one keeps the fingerprint it always had.
    if let Some(algorithm) = algorithm {
        settings += &format!(" {}", algorithm.name());
    }
    fingerprint(&[config, cases, source, settings.as_bytes()])
}

/// Create `dir` if needed and lock it for this run, or refuse when another run (in any process) holds it: the
/// lock is an advisory `flock` on the directory itself, so it adds no file to the directory and the operating
/// system releases it when the returned handle is dropped or the process ends, however it ends. `another` names
/// how the front end chooses another directory (`--output`, `output=`).
pub fn lock_directory(dir: &Path, another: &str) -> Result<File> {
    let failed = |what: &str, e: &dyn fmt::Display| CheckpointError::Io(format!("{}: {what} ({e})", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| failed("cannot create", &e))?;
    let lock = File::open(dir).map_err(|e| failed("cannot open to lock it", &e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(CheckpointError::Io(format!(
            "{}: another parfit run is using this output directory; wait for it to finish or choose another {another}",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(failed("cannot lock", &e)),
    }
}

/// Write `files` (name, contents) into `dir`: each staged as `NAME.partial`, then all renamed into place, so a
/// reader never sees a half-written file. A failure removes what it staged.
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> Result<Vec<PathBuf>> {
    let io = |path: &Path, e: std::io::Error| CheckpointError::Io(format!("{}: cannot write ({e})", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let staged: Vec<(PathBuf, PathBuf)> =
        files.iter().map(|(name, _)| (dir.join(format!("{name}.partial")), dir.join(name))).collect();
    let remove = |staged: &[(PathBuf, PathBuf)]| staged.iter().for_each(|(tmp, _)| drop(std::fs::remove_file(tmp)));
    for ((tmp, _), (_, bytes)) in staged.iter().zip(files) {
        if let Err(e) = std::fs::write(tmp, bytes) {
            remove(&staged);
            return Err(io(tmp, e));
        }
    }
    for (k, (tmp, fin)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, fin) {
            remove(&staged[k..]);
            return Err(io(fin, e));
        }
    }
    Ok(staged.into_iter().map(|(_, fin)| fin).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: usize) -> CaseRecord {
        CaseRecord {
            index,
            x: vec![0.1 * index as f64, 1.0 / 3.0],
            value: Some(2.0f64.sqrt()),
            evaluations: 10,
            iterations: 2,
            termination: Some(parfit_core::Termination::FunctionTolerance),
            error: None,
        }
    }

    const AGAIN: &str = "run without --resume";

    #[test]
    fn records_survive_a_torn_line_and_resume() {
        let dir = std::env::temp_dir().join(format!("parfit-checkpoint-{}", std::process::id()));
        let path = dir.join("checkpoint.jsonl");
        let (cp, done) = Checkpoint::open(&path, "abc", false, 10, 2, AGAIN).unwrap();
        assert!(done.is_empty());
        cp.append(&record(3)).unwrap();
        cp.append(&record(1)).unwrap();
        drop(cp);
        // A crash in the middle of writing a record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"index\":7,\"x\":[0.").unwrap();
        drop(f);

        let (cp, done) = Checkpoint::open(&path, "abc", true, 10, 2, AGAIN).unwrap();
        assert_eq!(done.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(done[&3], record(3), "floats round-trip exactly");
        cp.append(&record(7)).unwrap();
        drop(cp);
        let (_, done) = Checkpoint::open(&path, "abc", true, 10, 2, AGAIN).unwrap();
        assert_eq!(done.len(), 3);

        let err = Checkpoint::open(&path, "other", true, 10, 2, AGAIN).err().unwrap().to_string();
        assert!(err.contains("different configuration") && err.contains(AGAIN), "{err}");
        let (_, done) = Checkpoint::open(&path, "other", false, 10, 2, AGAIN).unwrap();
        assert!(done.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_fingerprint_covers_every_override_and_keeps_its_old_form_without_an_algorithm() {
        let sets = ["alpha=1".to_string()];
        let base = Overrides { seed: 1, sets: &sets, ..Default::default() };
        let print = |o: &Overrides| run_fingerprint(b"c", b"d", b"s", o);
        let old = fingerprint(&[b"c", b"d", b"s", format!("1 {:?} None None", sets).as_bytes()]);
        assert_eq!(print(&base), old);
        let changed = [
            Overrides { seed: 2, ..base.clone() },
            Overrides { sets: &[], ..base.clone() },
            Overrides { rtol: Some(1e-6), ..base.clone() },
            Overrides { algorithm: Some(crate::config::Algorithm::NelderMead), ..base.clone() },
        ];
        for o in &changed {
            assert_ne!(print(o), old, "{o:?}");
        }
    }

    #[test]
    fn a_locked_directory_is_refused_until_its_lock_is_dropped() {
        let dir = std::env::temp_dir().join(format!("parfit-lock-{}", std::process::id()));
        let held = lock_directory(&dir, "output=").unwrap();
        let err = lock_directory(&dir, "output=").err().unwrap().to_string();
        assert!(err.contains("another parfit run") && err.ends_with("choose another output="), "{err}");
        drop(held);
        assert!(lock_directory(&dir, "output=").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_are_written_whole_and_a_failure_leaves_nothing_staged() {
        let dir = std::env::temp_dir().join(format!("parfit-write-{}", std::process::id()));
        let written = write_files(&dir, &[("a.csv", b"x\n1\n"), ("b.json", b"{}\n")]).unwrap();
        assert_eq!(std::fs::read(&written[0]).unwrap(), b"x\n1\n");
        assert_eq!(std::fs::read(dir.join("b.json")).unwrap(), b"{}\n");
        // A directory where a file should go cannot be replaced by the rename.
        std::fs::create_dir_all(dir.join("c.csv")).unwrap();
        assert!(write_files(&dir, &[("c.csv", b"1\n")]).is_err());
        assert!(!dir.join("c.csv.partial").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
