//! The files a run reads: from disk as the CLI reads them (UTF-8 checked at its `file:line:column`, `.gz`
//! unpacked), or from texts handed over from Python — a configuration given as a dict, data given as a
//! DataFrame or arrays — under the names the Python layer gave them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use parfit_app::{Loader, input, utf8};

/// A [`Loader`] over the disk and the texts given from Python (which take precedence).
#[derive(Debug, Default)]
pub struct Files {
    given: BTreeMap<PathBuf, String>,
}

impl Files {
    pub fn new(given: BTreeMap<String, String>) -> Self {
        Files { given: given.into_iter().map(|(path, text)| (PathBuf::from(path), text)).collect() }
    }

    /// The raw bytes of a file on disk (the checkpoint's fingerprint reads them as the CLI does).
    pub fn bytes(&self, path: &Path) -> parfit_app::Result<Vec<u8>> {
        match self.given.get(path) {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => std::fs::read(path).map_err(|e| input(format!("{}: cannot read ({e})", path.display()))),
        }
    }
}

impl Loader for Files {
    fn read(&self, path: &Path) -> parfit_app::Result<String> {
        if let Some(text) = self.given.get(path) {
            return Ok(text.clone());
        }
        let bytes = self.bytes(path)?;
        if path.extension().is_some_and(|e| e == "gz") {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut text)
                .map_err(|e| input(format!("{}: not gzip-compressed ({e})", path.display())))?;
            utf8(path, text)
        } else {
            utf8(path, bytes)
        }
    }
}
