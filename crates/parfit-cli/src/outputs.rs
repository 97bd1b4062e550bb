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

    /// Stage `name` as CSV of numbers: a header, then one row per slice of `rows`, led by its index (from 0) when
    /// `indexed` (a monthly table's `t`), each float written as [`FloatText`] writes it.
    pub fn write_numbers<'a>(
        &mut self,
        name: &str,
        header: &[&str],
        rows: impl IntoIterator<Item = &'a [f64]>,
        indexed: bool,
    ) -> CliResult<()> {
        let file = self.create(name)?;
        let path = file.path.clone();
        let mut csv = csv::Writer::from_writer(file);
        let mut text = FloatText::default();
        csv.write_record(header).map_err(|e| write_error(&path, e))?;
        for (i, row) in rows.into_iter().enumerate() {
            if indexed {
                csv.write_field(i.to_string()).map_err(|e| write_error(&path, e))?;
            }
            for &v in row {
                csv.write_field(text.format(v)).map_err(|e| write_error(&path, e))?;
            }
            csv.write_record(None::<&[u8]>).map_err(|e| write_error(&path, e))?;
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

/// Writes floats as Rust's `{:?}` does (the shortest text that reads back as the same number, with an exponent
/// below 1e-4 and from 1e16 in magnitude), without a `String` per value: a projection writes one float per point
/// and column, and `format!` cost the host more than reading every table. `zmij` (the float printer
/// `serde_json` uses, already among the dependencies; faster here than `ryu`, which prints the same) finds the
/// same shortest digits and writes the same text wherever `{:?}` has no exponent, with one difference: when two
/// candidates of the shortest length are exactly as near (a tie), it takes the even one and `{:?}` the one above
/// (`9655508.8837890625` is `…062` to `zmij`, `…063` to `{:?}`). So `{:?}` itself writes the values that could
/// tie, those it gives an exponent, NaN and the infinities.
#[derive(Default)]
pub struct FloatText {
    shortest: zmij::Buffer,
    other: String,
}

impl FloatText {
    /// `v` as `format!("{v:?}")` writes it, borrowed until the next call.
    pub fn format(&mut self, v: f64) -> &str {
        if (v == 0.0 || (1e-4..1e16).contains(&v.abs())) && !may_tie(v) {
            self.shortest.format_finite(v)
        } else {
            use std::fmt::Write as _;
            self.other.clear();
            let _ = write!(self.other, "{v:?}");
            &self.other
        }
    }
}

/// Whether a finite, normal `v` could lie exactly halfway between two candidates of its shortest length: its
/// exact decimal expansion would then have at most 18 significant digits (the shortest has at most 17), the
/// last a 5. With `v` = `odd` × 2^-k (`odd` odd, k > 0) that expansion is `odd` × 5^k shifted, so it has at
/// most 18 digits only when `odd` × 5^k < 10^18 (never for k > 26, 5^27 being above it). A whole `v` below 1e16
/// cannot tie: its own digits round-trip, and every shorter candidate is farther than half its spacing.
fn may_tie(v: f64) -> bool {
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let significand = (bits & ((1 << 52) - 1)) | (1 << 52);
    let zeros = significand.trailing_zeros() as i32;
    // v = odd × 2^-k.
    let (odd, k) = (significand >> zeros, 1075 - exponent - zeros);
    (1..=26).contains(&k) && u128::from(odd) * 5u128.pow(k as u32) < 10u128.pow(18)
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
    use parfit_core::math::powi;

    use super::*;

    #[test]
    fn float_text_is_rust_s_debug_text() {
        let mut text = FloatText::default();
        let mut check = |v: f64| assert_eq!(text.format(v), format!("{v:?}"), "bits {:#018x}", v.to_bits());
        // splitmix64: every bit pattern is as likely (all exponents, subnormals, NaNs, both signs).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for _ in 0..1_000_000 {
            let bits = next();
            check(f64::from_bits(bits));
            // Magnitudes a projection writes (1e-6 .. 1e18), where the fast path and its edges are.
            let scale = powi(10.0, (bits % 25) as i32 - 6);
            check(f64::from_bits(next() >> 12 | 0x3ff0_0000_0000_0000) * scale);
            check(-(((bits >> 11) % 1_000_000_000) as f64) / 100.0);
        }
        for i in -400..=400 {
            let p = powi(10.0, i);
            for v in [p, -p, p.next_up(), p.next_down(), 1.5 * p, 0.99999 * p] {
                check(v);
            }
        }
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.3,
            1e-4,
            9.999999999999999e-5,
            1e16,
            9999999999999998.0,
            123456789012345680.0,
            9007199254740992.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 3.0,
            f64::from_bits(1),
            f64::EPSILON,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            check(v);
        }
        for i in 0..100_000i64 {
            check(i as f64);
            check(i as f64 / 1000.0);
            // Few fraction bits, where ties happen (9655508.8837890625 → 9655508.883789063).
            let odd = (next() >> (11 + i % 40)) | 1;
            check(odd as f64 / (1u64 << (i % 40)) as f64);
        }
        check(9_887_241_097.0 / 1024.0);
    }

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
