//! Result files. A run's output directory is locked for as long as the run uses it, so a second run into the
//! same directory is refused instead of interleaving its files with the first's. Every result file is staged
//! as `name.partial` and renamed into place by [`OutputDir::commit`] once the run has succeeded; a run that
//! fails, is interrupted or is forced to exit leaves no staged file behind (see [`remove_staged`]).
//!
//! The lock ([`parfit_app::checkpoint::lock_directory`], which the Python package takes too) is an advisory
//! `flock` on the directory itself, so it adds no file to the directory and the operating system releases it
//! when the process ends, however it ends.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{CliError, CliResult, failed, input};

/// Every staged file not yet committed or removed, in any output directory: what a forced exit removes.
static STAGED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn staged() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    STAGED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remove every staged file of this process. Called before a forced exit, which skips destructors.
pub fn remove_staged() {
    for path in staged().drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

/// `path: cannot write (why)`: the failure of any output file.
pub fn write_error(path: &Path, e: impl std::fmt::Display) -> CliError {
    failed(format!("{}: cannot write ({e})", path.display()))
}

/// A locked output directory and the files staged in it.
pub struct OutputDir {
    dir: PathBuf,
    /// Held open for the lock; closing it (or the process ending) releases the lock.
    _lock: File,
    /// (staged, final) paths in the order created.
    files: Vec<(PathBuf, PathBuf)>,
}

impl OutputDir {
    /// Create `dir` if needed and lock it, or refuse when another run holds it.
    pub fn open(dir: &Path) -> CliResult<OutputDir> {
        if dir.as_os_str().is_empty() {
            return Err(input("the output directory is an empty path: give --output DIR or [output] dir = \"DIR\""));
        }
        let lock = parfit_app::checkpoint::lock_directory(dir, "--output")?;
        Ok(OutputDir { dir: dir.to_path_buf(), _lock: lock, files: vec![] })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The final path of `name` in this directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Stage `name`: the path to write it to (`name.partial`), for writers that open files themselves.
    pub fn stage(&mut self, name: &str) -> PathBuf {
        let (tmp, fin) = (self.dir.join(format!("{name}.partial")), self.dir.join(name));
        staged().push(tmp.clone());
        self.files.push((tmp.clone(), fin));
        tmp
    }

    /// Stage `name` and open it for writing.
    pub fn create(&mut self, name: &str) -> CliResult<Staged> {
        let path = self.join(name);
        let file = File::create(self.stage(name)).map_err(|e| write_error(&path, e))?;
        Ok(Staged { path, out: BufWriter::new(file) })
    }

    /// Stage `name` with the whole of `bytes`.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> CliResult<()> {
        let mut file = self.create(name)?;
        file.write_all(bytes).map_err(|e| write_error(&file.path, e))?;
        file.finish()
    }

    /// Stage `name` as CSV: a header, then rows (quoted where a cell needs it).
    pub fn write_csv<R, I>(&mut self, name: &str, header: &[&str], rows: R) -> CliResult<()>
    where
        R: IntoIterator<Item = I>,
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let file = self.create(name)?;
        let path = file.path.clone();
        let mut csv = csv::Writer::from_writer(file);
        csv.write_record(header).map_err(|e| write_error(&path, e))?;
        for row in rows {
            csv.write_record(row).map_err(|e| write_error(&path, e))?;
        }
        csv.into_inner().map_err(|e| write_error(&path, e.error()))?.finish()
    }

    /// Rename every staged file into place; returns their final paths. On a failure the files not yet renamed
    /// are removed (by the drop).
    pub fn commit(mut self) -> CliResult<Vec<PathBuf>> {
        for (tmp, fin) in &self.files {
            std::fs::rename(tmp, fin).map_err(|e| write_error(fin, e))?;
            staged().retain(|p| p != tmp);
        }
        Ok(std::mem::take(&mut self.files).into_iter().map(|f| f.1).collect())
    }
}

impl Drop for OutputDir {
    /// Uncommitted: the run did not succeed, so its staged files go.
    fn drop(&mut self) {
        let mut all = staged();
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
            all.retain(|p| p != tmp);
        }
    }
}

/// A staged file being written (buffered); [`Staged::finish`] flushes it and reports any error.
pub struct Staged {
    /// The final path, which errors name.
    path: PathBuf,
    out: BufWriter<File>,
}

impl Staged {
    pub fn finish(mut self) -> CliResult<()> {
        self.out.flush().map_err(|e| write_error(&self.path, e))
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_is_refused_and_staged_files_appear_only_on_commit() {
        let dir = std::env::temp_dir().join(format!("parfit-outputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut out = OutputDir::open(&dir).unwrap();
        let err = OutputDir::open(&dir).err().unwrap().to_string();
        assert!(err.contains("another parfit run is using this output directory"), "{err}");

        out.write("a.txt", b"a\n").unwrap();
        out.write_csv("b.csv", &["name", "x"], [["p, q", "1.5"]]).unwrap();
        assert!(!dir.join("a.txt").exists() && dir.join("a.txt.partial").exists());
        out.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("b.csv")).unwrap(), "name,x\n\"p, q\",1.5\n");
        assert!(!dir.join("a.txt.partial").exists());

        let mut out = OutputDir::open(&dir).unwrap();
        out.write("c.txt", b"c\n").unwrap();
        drop(out);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["a.txt", "b.csv"], "an uncommitted file is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
