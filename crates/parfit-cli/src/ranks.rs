//! Where a many-case job's cases run: on this process's rayon threads, or — built with the `mpi` feature and
//! started by an MPI launcher — spread over MPI ranks, each using its own rayon threads.
//!
//! Commands call [`for_each_case`] the same way in both cases. Under MPI every rank runs the command (takes
//! the input files rank 0 read, see [`crate::inputs`], and loads the model); rank 0 alone decides which cases
//! remain, hands them out in chunks on demand, receives every result and writes the outputs, so checkpoints
//! and files have one owner. A case's
//! result depends only on its index, so outputs do not depend on the rank count, the thread count or which
//! rank ran which case.
//!
//! A single fit or sample spreads differently ([`spread`]): every rank runs the same ask–tell driver, each
//! evaluates its share of every batch and all of them receive every value, so all stay in step.

use std::sync::atomic::AtomicBool;

#[cfg(feature = "mpi")]
pub mod mpi;

use crate::error::{CliError, CliResult};

pub use parfit_app::dispatch::Wire;

/// This process's rank and the number of ranks (0 and 1 when not under MPI).
pub fn rank_and_size() -> (usize, usize) {
    #[cfg(feature = "mpi")]
    if let Some(world) = mpi::world() {
        return world;
    }
    (0, 1)
}

/// How one fit's or sample's batches spread over MPI ranks (see [`parfit_core::parallel::Spread`]): `Some` only
/// under MPI with more than one rank. The ranks must run the same generations in step, so a wall-clock limit
/// (`max_seconds` of the configuration's `section`), which each rank would read off its own clock, is refused.
pub fn spread(
    max_seconds: Option<f64>,
    origin: &str,
    section: &str,
) -> CliResult<Option<std::sync::Arc<dyn parfit_core::parallel::Spread>>> {
    #[cfg(feature = "mpi")]
    if rank_and_size().1 > 1 {
        if max_seconds.is_some() {
            return Err(crate::error::input(format!(
                "{origin}: {section} max_seconds cannot be used across MPI ranks (each rank would stop on its own \
                 clock); limit the evaluations or iterations instead"
            )));
        }
        return Ok(Some(std::sync::Arc::new(mpi::RankSpread)));
    }
    let _ = (max_seconds, origin, section);
    Ok(None)
}

/// Whether this process writes outputs and prints results: rank 0, or the only process.
pub fn is_root() -> bool {
    rank_and_size().0 == 0
}

/// Run `work(i)` for every case index in `cases`, calling `done(i, result)` on rank 0 as results arrive (in
/// no particular order). `cases` matters only on rank 0; other ranks compute what rank 0 hands them and never
/// call `done`. Cases not started once `cancel` is set are left undone. `chunk` is how many cases a rank
/// takes at a time under MPI.
pub fn for_each_case<T: Wire>(
    cases: &[usize],
    chunk: usize,
    cancel: &AtomicBool,
    work: &(dyn Fn(usize) -> T + Sync),
    done: &(dyn Fn(usize, T) + Sync),
) -> CliResult<()> {
    #[cfg(feature = "mpi")]
    if rank_and_size().1 > 1 {
        return mpi::for_each_case(cases, chunk.max(1), cancel, work, done);
    }
    let _ = chunk;
    run_here(cases, cancel, work, done);
    Ok(())
}

/// The runs shared with the browser (Monte Carlo paths, projection blocks) spread through this: over MPI ranks
/// under mpirun, else on this process's rayon pool.
pub struct Ranks;

impl parfit_app::dispatch::Dispatch for Ranks {
    fn gathers_here(&self) -> bool {
        is_root()
    }

    fn processes(&self) -> usize {
        rank_and_size().1
    }

    fn for_each<T: Wire>(
        &self,
        tasks: &[usize],
        chunk: usize,
        stop: &AtomicBool,
        work: &(dyn Fn(usize) -> T + Sync),
        done: &(dyn Fn(usize, T) + Sync),
    ) -> Result<(), parfit_app::RunError> {
        for_each_case(tasks, chunk, stop, work, done).map_err(|e| match e {
            CliError::Interrupted(m) => parfit_app::RunError::Interrupted(m),
            e => parfit_app::RunError::Failed(e.to_string()),
        })
    }
}

/// The cases of `cases` on this process's rayon pool, one task each (work stealing balances uneven cases).
fn run_here<T: Send>(
    cases: &[usize],
    cancel: &AtomicBool,
    work: &(dyn Fn(usize) -> T + Sync),
    done: &(dyn Fn(usize, T) + Sync),
) -> usize {
    parfit_core::runner::for_each_case(cases.len(), &|_| false, cancel, &|k| work(cases[k]), &|k, r| done(cases[k], r))
}
