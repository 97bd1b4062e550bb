//! Where a run's independent tasks execute. Runs written against [`Dispatch`] (Monte Carlo paths, projection
//! blocks) work the same on this process's rayon pool ([`Local`]) and, in the CLI built with MPI, spread over
//! MPI ranks: a task's result depends only on its index, and the gathering process places results by index,
//! so outputs do not depend on where tasks ran.
//!
//! A result may cross between processes, so it is a [`Wire`] value: exact bytes, floats by their bits.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use crate::RunError;

/// A task's result as bytes, so it can travel from the process that computed it to the one that gathers.
/// Encodings must be exact (floats by their bits): the gatherer writes what it decodes.
pub trait Wire: Sized + Send {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Result<Self, String>;
}

/// Runs independent tasks somewhere and hands their results to the process that gathers them.
pub trait Dispatch: Sync {
    /// Whether results arrive in this process (always, except on an MPI job's non-root ranks).
    fn gathers_here(&self) -> bool;

    /// How many processes share the work (1 unless under MPI).
    fn processes(&self) -> usize;

    /// Run `work(i)` for every `i` in `tasks`, calling `done(i, result)` in the gathering process as results
    /// arrive (in no particular order). Tasks not started once `stop` is set are left undone. `chunk` is how
    /// many tasks another process takes at a time.
    fn for_each<T: Wire>(
        &self,
        tasks: &[usize],
        chunk: usize,
        stop: &AtomicBool,
        work: &(dyn Fn(usize) -> T + Sync),
        done: &(dyn Fn(usize, T) + Sync),
    ) -> Result<(), RunError>;

    /// The results of every task in `tasks`, in order, where results are gathered (`None` elsewhere); a stop
    /// before every task finished is [`RunError::Interrupted`].
    fn map<T: Wire>(
        &self,
        tasks: std::ops::Range<usize>,
        chunk: usize,
        stop: &AtomicBool,
        work: &(dyn Fn(usize) -> T + Sync),
    ) -> Result<Option<Vec<T>>, RunError> {
        let first = tasks.start;
        let slots: Mutex<Vec<Option<T>>> = Mutex::new(tasks.clone().map(|_| None).collect());
        let list: Vec<usize> = tasks.collect();
        self.for_each(&list, chunk, stop, work, &|i, r| {
            slots.lock().unwrap_or_else(|p| p.into_inner())[i - first] = Some(r);
        })?;
        if !self.gathers_here() {
            return Ok(None);
        }
        let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
        let finished = slots.iter().filter(|s| s.is_some()).count();
        if finished < slots.len() {
            return Err(RunError::Interrupted(format!("interrupted: {finished} of {} tasks finished", slots.len())));
        }
        Ok(Some(slots.into_iter().flatten().collect()))
    }
}

/// This process's rayon pool, one task each (work stealing balances uneven tasks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Dispatch for Local {
    fn gathers_here(&self) -> bool {
        true
    }

    fn processes(&self) -> usize {
        1
    }

    fn for_each<T: Wire>(
        &self,
        tasks: &[usize],
        _chunk: usize,
        stop: &AtomicBool,
        work: &(dyn Fn(usize) -> T + Sync),
        done: &(dyn Fn(usize, T) + Sync),
    ) -> Result<(), RunError> {
        parfit_core::runner::for_each_case(tasks.len(), &|_| false, stop, &|k| work(tasks[k]), &|k, r| {
            done(tasks[k], r)
        });
        Ok(())
    }
}

/// Read a little-endian `u64` from the front of `bytes`.
pub fn take_u64(bytes: &mut &[u8]) -> Result<u64, String> {
    let (head, rest) = bytes.split_first_chunk::<8>().ok_or("a truncated message between processes")?;
    *bytes = rest;
    Ok(u64::from_le_bytes(*head))
}

/// Read `n` little-endian `f64`s (their exact bits) from the front of `bytes`.
pub fn take_f64s(bytes: &mut &[u8], n: usize) -> Result<Vec<f64>, String> {
    if bytes.len() < n * 8 {
        return Err("a truncated message between processes".into());
    }
    let (head, rest) = bytes.split_at(n * 8);
    *bytes = rest;
    Ok(head.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
}

/// Append `values`' count and their exact bits.
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

    struct Square(u64);

    impl Wire for Square {
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend(self.0.to_le_bytes());
        }
        fn decode(mut bytes: &[u8]) -> Result<Self, String> {
            take_u64(&mut bytes).map(Square)
        }
    }

    #[test]
    fn local_map_returns_results_in_order_and_reports_a_stop() {
        let stop = AtomicBool::new(false);
        let out = Local.map(5..50, 4, &stop, &|i| Square((i * i) as u64)).unwrap().unwrap();
        assert_eq!(out.iter().map(|s| s.0).collect::<Vec<_>>(), (5..50u64).map(|i| i * i).collect::<Vec<_>>());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(Local.map(0..3, 1, &stop, &|i| Square(i as u64)), Err(RunError::Interrupted(_))));
    }
}
