//! Where a many-case job's cases run: on this process's rayon threads, or — built with the `mpi` feature and
//! started by an MPI launcher — spread over MPI ranks, each using its own rayon threads.
//!
//! Commands call [`for_each_case`] the same way in both cases. Under MPI every rank runs the command (reads
//! the configuration, loads the model); rank 0 alone decides which cases remain, hands them out in chunks on
//! demand, receives every result and writes the outputs, so checkpoints and files have one owner. A case's
//! result depends only on its index, so outputs do not depend on the rank count, the thread count or which
//! rank ran which case.
//!
//! A single fit or sample spreads differently ([`spread`]): every rank runs the same ask–tell driver, each
//! evaluates its share of every batch and all of them receive every value, so all stay in step.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

#[cfg(feature = "mpi")]
pub mod mpi;

use crate::error::{CliError, CliResult};

/// A case's result in bytes, so it can travel from the rank that computed it to rank 0. Encodings must be
/// exact (floats by their bits, or shortest round-trip text): rank 0 writes what it decodes. Only the MPI
/// transport calls them.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub trait Wire: Sized + Send {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Result<Self, String>;
}

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

/// Results for every index in `cases`, in order, on rank 0 (`None` on the other ranks); an interruption
/// before every case finished is an error.
pub fn map<T: Wire>(
    cases: std::ops::Range<usize>,
    chunk: usize,
    cancel: &AtomicBool,
    work: &(dyn Fn(usize) -> T + Sync),
) -> CliResult<Option<Vec<T>>> {
    let start = cases.start;
    let slots: Mutex<Vec<Option<T>>> = Mutex::new(cases.clone().map(|_| None).collect());
    let list: Vec<usize> = cases.collect();
    for_each_case(&list, chunk, cancel, work, &|i, r| {
        slots.lock().unwrap_or_else(|p| p.into_inner())[i - start] = Some(r);
    })?;
    if !is_root() {
        return Ok(None);
    }
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    let finished = slots.iter().filter(|s| s.is_some()).count();
    if finished < slots.len() {
        return Err(CliError::Interrupted(format!("interrupted: {finished} of {} tasks finished", slots.len())));
    }
    Ok(Some(slots.into_iter().flatten().collect()))
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

/// Read a little-endian `u64` from the front of `bytes`.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub fn take_u64(bytes: &mut &[u8]) -> Result<u64, String> {
    let (head, rest) = bytes.split_first_chunk::<8>().ok_or("a truncated message between ranks")?;
    *bytes = rest;
    Ok(u64::from_le_bytes(*head))
}

/// Read `n` little-endian `f64`s (their exact bits) from the front of `bytes`.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub fn take_f64s(bytes: &mut &[u8], n: usize) -> Result<Vec<f64>, String> {
    if bytes.len() < n * 8 {
        return Err("a truncated message between ranks".into());
    }
    let (head, rest) = bytes.split_at(n * 8);
    *bytes = rest;
    Ok(head.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
}

/// Append `values`' count and their exact bits.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub fn put_f64s(out: &mut Vec<u8>, values: &[f64]) {
    out.extend((values.len() as u64).to_le_bytes());
    values.iter().for_each(|v| out.extend(v.to_le_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_bit_for_bit() {
        let values = [0.1, -0.0, f64::NAN, f64::INFINITY, 1e-310, f64::MAX];
        let mut out = Vec::new();
        put_f64s(&mut out, &values);
        let mut bytes = &out[..];
        let n = take_u64(&mut bytes).unwrap() as usize;
        let back = take_f64s(&mut bytes, n).unwrap();
        assert!(back.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(bytes.is_empty());
        assert!(take_u64(&mut bytes).is_err());
    }

    #[test]
    fn map_returns_results_in_order_without_mpi() {
        let cancel = AtomicBool::new(false);
        struct Square(u64);
        impl Wire for Square {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend(self.0.to_le_bytes());
            }
            fn decode(mut bytes: &[u8]) -> Result<Self, String> {
                take_u64(&mut bytes).map(Square)
            }
        }
        let out = map(5..50, 4, &cancel, &|i| Square((i * i) as u64)).unwrap().unwrap();
        assert_eq!(out.iter().map(|s| s.0).collect::<Vec<_>>(), (5..50u64).map(|i| i * i).collect::<Vec<_>>());
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        let err = map(0..3, 1, &cancel, &|i| Square(i as u64)).err().unwrap();
        assert_eq!(err.exit_code(), 130);
    }
}
