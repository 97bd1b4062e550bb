//! SIGINT, SIGTERM and SIGHUP. The first asks for a clean stop ([`stop_requested`]): no new case, task or
//! generation starts, finished work is saved where the command saves it, and the command exits 130 with
//! nothing half-written. A plugin call cannot be interrupted (the ABI has no cancellation), so if the run has
//! not stopped after [`GRACE`], or on a second signal, the process exits 130 at once: staged result files
//! are removed first ([`crate::outputs::remove_staged`]), and fit-many's checkpoint holds only whole lines
//! (each written in one call; a torn last line is dropped on resume).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How long a run may take to stop cleanly after the first signal.
pub const GRACE: Duration = Duration::from_secs(3);

/// Set by the first signal (and by a command that must stop, e.g. after a failed checkpoint write).
pub static STOP: AtomicBool = AtomicBool::new(false);

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Whether a stop was asked for.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Install the handler; the process keeps the default behaviour if another handler is already installed.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
            STOP.store(true, Ordering::SeqCst);
            std::thread::spawn(|| {
                std::thread::sleep(GRACE);
                exit_now("the run did not stop within a few seconds");
            });
        } else {
            exit_now("a second signal");
        }
    });
}

/// Leave at once with exit code 130, removing staged files; finished and committed files stay.
fn exit_now(why: &str) -> ! {
    crate::outputs::remove_staged();
    let _ = writeln!(std::io::stderr(), "error: interrupted ({why}); stopped without finishing, nothing half-written");
    std::process::exit(130)
}
