//! The one place the core touches threads: indexed loops that run on rayon's pool when the `parallel`
//! feature is on and sequentially otherwise. Results land in input order either way, and each item's result
//! depends only on its index, so outputs are identical for any thread count.

use std::sync::Mutex;

/// Spreads a batch's rows over processes — the CLI's MPI ranks — on top of each process's own threads. The
/// core only calls it; the transport lives with the front end. Every process runs the same ask–tell driver and
/// calls `fill_rows` with the same batch, so each must end with every row, bit for bit.
pub trait Spread: Send + Sync + std::fmt::Debug {
    /// Fill `out` (rows of `width` values): call `local(first, share)` once to compute this process's rows
    /// `first .. first + share.len() / width` into `share`, then make `out` whole on every process.
    fn fill_rows(&self, width: usize, out: &mut [f64], local: &mut dyn FnMut(usize, &mut [f64]));
}

/// Scratch kept across batches: a worker takes an idle one (or makes one) and gives it back when done, so there
/// are as many as ever ran at once, whichever pool or thread ran them — not one per rayon split or per batch.
/// Whatever a scratch holds, a result must depend on its arguments alone (the models' workspace contract).
#[derive(Debug)]
pub struct Pool<S>(Mutex<Vec<S>>);

impl<S> Default for Pool<S> {
    fn default() -> Self {
        Pool(Mutex::new(Vec::new()))
    }
}

impl<S> Pool<S> {
    /// `f` on an idle scratch, or a new one from `make`, given back after (not if `f` panics).
    pub fn with<T>(&self, make: impl FnOnce() -> S, f: impl FnOnce(&mut S) -> T) -> T {
        let mut s = self.idle().pop().unwrap_or_else(make);
        let result = f(&mut s);
        self.idle().push(s);
        result
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<S>> {
        // A panic elsewhere while holding the lock leaves the list whole: a push or a pop either happened or not.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Compute `out[i] = f(scratch, i)` for every `i`, each call on a scratch of `scratches` (a new one from `make`
/// when none is idle).
#[cfg(feature = "parallel")]
pub fn fill_with<T: Send, S: Send>(
    parallel: bool,
    out: &mut [T],
    scratches: &Pool<S>,
    make: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize) -> T + Sync + Send,
) {
    use rayon::prelude::*;
    if parallel && out.len() > 1 && rayon::current_num_threads() > 1 {
        out.par_iter_mut().enumerate().for_each(|(i, slot)| *slot = scratches.with(&make, |s| f(s, i)));
    } else {
        fill_sequential(out, scratches, make, f);
    }
}

/// Compute `out[i] = f(scratch, i)` for every `i`, sequentially (the `parallel` feature is off).
#[cfg(not(feature = "parallel"))]
pub fn fill_with<T, S>(
    _parallel: bool,
    out: &mut [T],
    scratches: &Pool<S>,
    make: impl Fn() -> S,
    f: impl Fn(&mut S, usize) -> T,
) {
    fill_sequential(out, scratches, make, f);
}

/// Call `f(scratch, i, row)` for every row `i` of `out` split into rows of `width`, in parallel when the
/// `parallel` feature is on, each call on a scratch of `scratches` (a new one from `make` when none is idle).
/// Each row is written by exactly one call, so no locking is needed.
#[cfg(feature = "parallel")]
pub fn fill_rows_with<S: Send>(
    parallel: bool,
    out: &mut [f64],
    width: usize,
    scratches: &Pool<S>,
    make: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [f64]) + Sync + Send,
) {
    use rayon::prelude::*;
    if width == 0 {
        return;
    }
    if parallel && out.len() > width && rayon::current_num_threads() > 1 {
        out.par_chunks_exact_mut(width).enumerate().for_each(|(i, row)| scratches.with(&make, |s| f(s, i, row)));
    } else {
        scratches.with(make, |s| out.chunks_exact_mut(width).enumerate().for_each(|(i, row)| f(s, i, row)));
    }
}

/// Call `f(scratch, i, row)` for every row `i` of `out`, sequentially (the `parallel` feature is off).
#[cfg(not(feature = "parallel"))]
pub fn fill_rows_with<S>(
    _parallel: bool,
    out: &mut [f64],
    width: usize,
    scratches: &Pool<S>,
    make: impl Fn() -> S,
    f: impl Fn(&mut S, usize, &mut [f64]),
) {
    if width == 0 {
        return;
    }
    scratches.with(make, |s| out.chunks_exact_mut(width).enumerate().for_each(|(i, row)| f(s, i, row)));
}

fn fill_sequential<T, S>(out: &mut [T], scratches: &Pool<S>, make: impl Fn() -> S, f: impl Fn(&mut S, usize) -> T) {
    scratches.with(make, |s| {
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = f(s, i);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn results_are_in_input_order_with_or_without_threads() {
        let mut seq = vec![0u64; 1000];
        let mut par = vec![0u64; 1000];
        let pool = Pool::default();
        fill_with(false, &mut seq, &pool, || 0u64, |_, i| (i as u64).wrapping_mul(2654435761));
        fill_with(true, &mut par, &pool, || 0u64, |_, i| (i as u64).wrapping_mul(2654435761));
        assert_eq!(seq, par);
        assert_eq!(seq[3], 3 * 2654435761);
    }

    #[test]
    fn rows_are_filled_by_index_with_or_without_threads() {
        let fill = |parallel: bool| {
            let mut out = vec![0.0; 300];
            fill_rows_with(
                parallel,
                &mut out,
                3,
                &Pool::default(),
                || (),
                |_, i, row| row.iter_mut().enumerate().for_each(|(j, v)| *v = (i * 3 + j) as f64),
            );
            out
        };
        let (seq, par) = (fill(false), fill(true));
        assert_eq!(seq, par);
        assert!(seq.iter().enumerate().all(|(k, v)| *v == k as f64));
    }
}
