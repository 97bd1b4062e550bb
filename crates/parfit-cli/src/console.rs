//! stdout and stderr through handles, never `println!`: a closed pipe or a full device is an error to report
//! (exit 1), not a panic.

use std::io::Write;

use crate::error::{CliError, CliResult, failed};

/// Write `text` to stdout and flush it. A closed pipe (`parfit … | head -c1`) ends the run with exit 1 and no
/// message, as Unix tools end quietly on SIGPIPE; any other failure (e.g. `/dev/full`) is reported.
pub fn print(text: &str) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => CliError::StdoutClosed,
        _ => failed(format!("cannot write to stdout ({e})")),
    })
}

/// A line on stderr; a stderr that cannot be written to is ignored, since there is nowhere left to say so.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
