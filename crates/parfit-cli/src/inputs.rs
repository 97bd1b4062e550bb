//! Reading a command's input files: configurations, model sources, observation and case tables, actuarial
//! tables. A plain process reads them from disk. Under MPI with more than one rank, rank 0 alone reads each
//! file and hands its bytes — or its read error — to every other rank ([`crate::ranks::mpi::read_shared`]), so
//! the other ranks never touch the disk for inputs and every rank fails, if it fails, with the same message.
//!
//! Invariant: every rank reads the same files in the same order. They run the same command on the same
//! arguments and read their inputs before anything depends on the rank; code that runs on rank 0 alone (the
//! checkpoint, its fingerprint) reads the disk directly and never through here. A rank that asks for a
//! different file than rank 0 sent ends the job with both paths named.

use std::path::Path;

use crate::error::CliResult;

/// The bytes of the input file at `path`, or why it cannot be read (an I/O error's text).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let from_disk = || std::fs::read(path).map_err(|e| e.to_string());
    #[cfg(feature = "mpi")]
    if crate::ranks::rank_and_size().1 > 1 {
        return crate::ranks::mpi::read_shared(path, from_disk);
    }
    from_disk()
}

/// The input file at `path` as UTF-8 text; errors name the file.
pub fn read_text(path: &Path) -> CliResult<String> {
    Ok(text(path, read_bytes(path))?)
}

fn text(path: &Path, bytes: Result<Vec<u8>, String>) -> parfit_config::Result<String> {
    utf8(path, bytes.map_err(|e| parfit_config::input(format!("{}: cannot read ({e})", path.display())))?)
}

/// `bytes` of the file at `path` as text, or an error at the first byte that is not UTF-8:
/// `path:line:column: …` (column counted in characters, as editors do) and the byte offset.
pub fn utf8(path: &Path, bytes: Vec<u8>) -> parfit_config::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        // Everything before `at` is valid UTF-8, so this never fails.
        let (line, column) = line_column(std::str::from_utf8(&bytes[..at]).unwrap_or_default());
        parfit_config::input(format!(
            "{}:{line}:{column}: the file is not UTF-8 text (byte {at} is 0x{:02x}); save it as UTF-8",
            path.display(),
            bytes.get(at).copied().unwrap_or_default()
        ))
    })
}

/// The line and column (in characters, from 1) just after `before`, the text up to a place in a file.
fn line_column(before: &str) -> (usize, usize) {
    let line = before.matches('\n').count() + 1;
    (line, before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1)
}

/// `path:line:column` of the top-level `key`'s value in the TOML configuration at `path`, for a value found
/// wrong after parsing; just `path` if the file or the key cannot be found again.
pub fn locate_key(path: &Path, key: &str) -> String {
    let text = read_text(path).ok();
    let located = text.as_deref().and_then(|text| {
        let table = toml::de::DeTable::parse(text).ok()?;
        let (_, value) = table.get_ref().iter().find(|(name, _)| name.get_ref() == key)?;
        Some(line_column(text.get(..value.span().start)?))
    });
    match located {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

/// The CLI's [`parfit_config::Loader`]: files named by a configuration, read as [`read_bytes`] does.
pub struct FsLoader;

impl parfit_config::Loader for FsLoader {
    fn read(&self, path: &Path) -> parfit_config::Result<String> {
        text(path, read_bytes(path))
    }
}
