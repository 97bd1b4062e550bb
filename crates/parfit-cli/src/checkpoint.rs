//! The checkpoint of a many-case run: one JSON line per finished case, appended and flushed as cases finish,
//! so a run that is interrupted (a signal, a crash, a power cut) resumes without redoing finished cases.
//!
//! The first line fingerprints what was run (configuration, data, model source, seed); resuming with
//! anything else is refused. A torn last line (a crash mid-write) is dropped on resume.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{CliResult, failed, input};

const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    parfit_checkpoint: u32,
    fingerprint: String,
}

pub use parfit_config::fitting::CaseRecord;

pub struct Checkpoint {
    path: PathBuf,
    file: Mutex<File>,
}

impl Checkpoint {
    /// Open the checkpoint at `path`: fresh unless `resume`, in which case the records already there are
    /// returned (by case index) and new ones are appended after them.
    /// Each record read back must be one of `cases` cases with `params` fitted values (or a failure).
    pub fn open(
        path: &Path,
        fingerprint: &str,
        resume: bool,
        cases: usize,
        params: usize,
    ) -> CliResult<(Self, BTreeMap<usize, CaseRecord>)> {
        let io = |e: std::io::Error| failed(format!("{}: {e}", path.display()));
        let damaged = |line: usize, why: String| {
            input(format!("{}:{line}: {why}; run without --resume to start afresh", path.display()))
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
                            return Err(input(format!(
                                "{}: this checkpoint was made by a different configuration, data, model or seed; \
                                 run without --resume to start afresh (it will be replaced)",
                                path.display()
                            )));
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
        let text = serde_json::to_string(&header).map_err(|e| failed(e.to_string()))? + "\n";
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok((Checkpoint { path: path.to_path_buf(), file: Mutex::new(file) }, done))
    }

    /// Append one finished case, in one write, before the case counts as done.
    pub fn append(&self, record: &CaseRecord) -> CliResult<()> {
        let text = serde_json::to_string(record).map_err(|e| failed(e.to_string()))? + "\n";
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(text.as_bytes()).map_err(|e| failed(format!("{}: {e}", self.path.display())))
    }
}

/// A fingerprint of everything that determines a run's results.
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

    #[test]
    fn records_survive_a_torn_line_and_resume() {
        let dir = std::env::temp_dir().join(format!("parfit-checkpoint-{}", std::process::id()));
        let path = dir.join("checkpoint.jsonl");
        let (cp, done) = Checkpoint::open(&path, "abc", false, 10, 2).unwrap();
        assert!(done.is_empty());
        cp.append(&record(3)).unwrap();
        cp.append(&record(1)).unwrap();
        drop(cp);
        // A crash in the middle of writing a record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"index\":7,\"x\":[0.").unwrap();
        drop(f);

        let (cp, done) = Checkpoint::open(&path, "abc", true, 10, 2).unwrap();
        assert_eq!(done.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(done[&3], record(3), "floats round-trip exactly");
        cp.append(&record(7)).unwrap();
        drop(cp);
        let (_, done) = Checkpoint::open(&path, "abc", true, 10, 2).unwrap();
        assert_eq!(done.len(), 3);

        let err = Checkpoint::open(&path, "other", true, 10, 2).err().unwrap().to_string();
        assert!(err.contains("different configuration"), "{err}");
        let (_, done) = Checkpoint::open(&path, "other", false, 10, 2).unwrap();
        assert!(done.is_empty());
    }
}
