//! Running engine work from Python: off the GIL, on a rayon pool of the requested size, stoppable with Ctrl-C,
//! with progress reported to a Python callable.
//!
//! The work runs on a thread of its own while the calling thread, which holds the interpreter, waits for it in
//! short slices with the GIL released. Between slices it lets Python handle pending signals (a KeyboardInterrupt
//! sets the work's stop flag; the work then ends at its next check, so a fit-many keeps its checkpoint and
//! nothing is half-done) and calls the progress callback, so Python code only ever runs on the calling thread.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often the waiting thread looks at signals and progress.
const SLICE: Duration = Duration::from_millis(50);

/// What the work and the waiting thread share: the stop flag and the progress counters.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
}

impl Control {
    /// The flag the engine's runners poll; set by Ctrl-C or a progress callback that raised.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The number of units (iterations, cases, tasks, points) the run expects; 0 when unknown.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    pub fn set_done(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }

    pub fn advance(&self, by: u64) {
        self.done.fetch_add(by, Ordering::Relaxed);
    }

    fn progress(&self) -> (u64, u64) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

/// The number of threads a run uses when neither the call nor the configuration says: every core.
#[pyfunction]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The thread count to use: the call's, else the configuration's, else every core; 1–1024 as the CLI allows.
pub fn threads(given: Option<usize>, configured: Option<usize>) -> PyResult<usize> {
    let n = given.or(configured).unwrap_or_else(default_threads);
    if !(1..=1024).contains(&n) {
        return Err(crate::errors::ConfigError::new_err(format!("threads must be 1 to 1024 (got {n})")));
    }
    Ok(n)
}

/// One pool per thread count, kept for the life of the process (building one costs a thread spawn each).
fn pool(threads: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pool) = pools.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("parfit-{i}"))
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start {threads} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(threads, pool.clone());
    Ok(pool)
}

/// Run `work` on a pool of `threads` threads with the GIL released, reporting `(done, total)` to `progress`
/// (when given) whenever it changed, and turning Ctrl-C into a stop request. Returns the work's result, or the
/// KeyboardInterrupt (or the progress callback's exception) once the work has stopped.
pub fn run<T: Send>(
    py: Python<'_>,
    threads: usize,
    progress: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce(&Control) -> T + Send,
) -> PyResult<T> {
    let pool = pool(threads)?;
    let control = Control::default();
    let (sender, receiver) = channel();
    // `detach` moves the wait to a context without the GIL, which needs a `Sync` handle on the receiver.
    let receiver = Mutex::new(receiver);
    std::thread::scope(|scope| {
        let control = &control;
        scope.spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| pool.install(|| work(control))));
            // The receiver outlives this thread (the scope joins it), so the send cannot fail.
            let _ = sender.send(outcome);
        });
        let mut raised: Option<PyErr> = None;
        let mut shown = (u64::MAX, u64::MAX);
        loop {
            let received = py.detach(|| receiver.lock().unwrap_or_else(|p| p.into_inner()).recv_timeout(SLICE));
            if raised.is_none() {
                let now = control.progress();
                if let Some(callback) = progress
                    && now != shown
                {
                    shown = now;
                    if let Err(e) = callback.call1(now) {
                        raised = Some(e);
                    }
                }
                if raised.is_none()
                    && let Err(e) = py.check_signals()
                {
                    raised = Some(e);
                }
                if raised.is_some() {
                    control.stop.store(true, Ordering::Relaxed);
                }
            }
            match received {
                Ok(outcome) => {
                    return match (raised, outcome) {
                        (Some(e), _) => Err(e),
                        (None, Ok(value)) => Ok(value),
                        (None, Err(panic)) => Err(PyRuntimeError::new_err(format!(
                            "internal error in parfit (please report it): {}",
                            panic_message(&panic)
                        ))),
                    };
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("internal error in parfit: the run ended without a result"));
                }
            }
        }
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The optimisers' and samplers' [`parfit_core::optimise::Monitor`] for a run under [`run`]: a wall clock,
/// progress counted in iterations (out of `budget` when known), cancellation by the stop flag.
pub struct Monitor<'a> {
    control: &'a Control,
    start: std::time::Instant,
}

impl<'a> Monitor<'a> {
    pub fn new(control: &'a Control, budget: Option<usize>) -> Self {
        control.set_total(budget.unwrap_or(0) as u64);
        Monitor { control, start: std::time::Instant::now() }
    }
}

impl parfit_core::optimise::Monitor for Monitor<'_> {
    fn elapsed_seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn on_progress(&mut self, progress: &parfit_core::optimise::Progress) {
        self.control.set_done(progress.iteration as u64);
    }

    fn cancelled(&self) -> bool {
        self.control.stopped()
    }
}
