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

fn text(path: &Path, bytes: Result<Vec<u8>, String>) -> parfit_app::Result<String> {
    parfit_app::utf8(path, bytes.map_err(|e| parfit_app::input(format!("{}: cannot read ({e})", path.display())))?)
}

/// `path:line:column` of the top-level `key`'s value in the TOML configuration at `path`, for a value found
/// wrong after parsing; just `path` if the file or the key cannot be found again.
pub fn locate_key(path: &Path, key: &str) -> String {
    let text = read_text(path).ok();
    let located = text.as_deref().and_then(|text| {
        let table = toml::de::DeTable::parse(text).ok()?;
        let (_, value) = table.get_ref().iter().find(|(name, _)| name.get_ref() == key)?;
        Some(parfit_app::line_column(text.get(..value.span().start)?))
    });
    match located {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

/// The CLI's [`parfit_app::Loader`]: files named by a configuration, read as [`read_bytes`] does.
pub struct FsLoader;

impl parfit_app::Loader for FsLoader {
    fn read(&self, path: &Path) -> parfit_app::Result<String> {
        text(path, read_bytes(path))
    }
}
