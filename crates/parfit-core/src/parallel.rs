//! The one place the core touches threads: indexed loops that run on rayon's pool when the `parallel`
//! feature is on and sequentially otherwise. Results land in input order either way, and each item's result
//! depends only on its index, so outputs are identical for any thread count.

/// Spreads a batch's rows over processes — the CLI's MPI ranks — on top of each process's own threads. The
/// core only calls it; the transport lives with the front end. Every process runs the same ask–tell driver and
/// calls `fill_rows` with the same batch, so each must end with every row, bit for bit.
pub trait Spread: Send + Sync + std::fmt::Debug {
    /// Fill `out` (rows of `width` values): call `local(first, share)` once to compute this process's rows
    /// `first .. first + share.len() / width` into `share`, then make `out` whole on every process.
    fn fill_rows(&self, width: usize, out: &mut [f64], local: &mut dyn FnMut(usize, &mut [f64]));
}

/// Compute `out[i] = f(scratch, i)` for every `i`. Each worker thread gets its own scratch from `make_scratch`.
#[cfg(feature = "parallel")]
pub fn fill_with<T, S>(
    parallel: bool,
    out: &mut [T],
    make_scratch: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize) -> T + Sync + Send,
) where
    T: Send,
{
    use rayon::prelude::*;
    if parallel && out.len() > 1 && rayon::current_num_threads() > 1 {
        out.par_iter_mut().enumerate().for_each_init(make_scratch, |scratch, (i, slot)| *slot = f(scratch, i));
    } else {
        fill_sequential(out, make_scratch, f);
    }
}

/// Compute `out[i] = f(scratch, i)` for every `i`, sequentially (the `parallel` feature is off).
#[cfg(not(feature = "parallel"))]
pub fn fill_with<T, S>(_parallel: bool, out: &mut [T], make_scratch: impl Fn() -> S, f: impl Fn(&mut S, usize) -> T) {
    fill_sequential(out, make_scratch, f);
}

/// Call `f(scratch, i, row)` for every row `i` of `out` split into rows of `width`, in parallel when the
/// `parallel` feature is on. Each row is written by exactly one call, so no locking is needed.
#[cfg(feature = "parallel")]
pub fn fill_rows_with<S>(
    parallel: bool,
    out: &mut [f64],
    width: usize,
    make_scratch: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [f64]) + Sync + Send,
) {
    use rayon::prelude::*;
    if width == 0 {
        return;
    }
    if parallel && out.len() > width && rayon::current_num_threads() > 1 {
        out.par_chunks_exact_mut(width).enumerate().for_each_init(make_scratch, |scratch, (i, row)| f(scratch, i, row));
    } else {
        let mut scratch = make_scratch();
        out.chunks_exact_mut(width).enumerate().for_each(|(i, row)| f(&mut scratch, i, row));
    }
}

/// Call `f(scratch, i, row)` for every row `i` of `out`, sequentially (the `parallel` feature is off).
#[cfg(not(feature = "parallel"))]
pub fn fill_rows_with<S>(
    _parallel: bool,
    out: &mut [f64],
    width: usize,
    make_scratch: impl Fn() -> S,
    f: impl Fn(&mut S, usize, &mut [f64]),
) {
    if width == 0 {
        return;
    }
    let mut scratch = make_scratch();
    out.chunks_exact_mut(width).enumerate().for_each(|(i, row)| f(&mut scratch, i, row));
}

fn fill_sequential<T, S>(out: &mut [T], make_scratch: impl Fn() -> S, f: impl Fn(&mut S, usize) -> T) {
    let mut scratch = make_scratch();
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = f(&mut scratch, i);
    }
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
        fill_with(false, &mut seq, || 0u64, |_, i| (i as u64).wrapping_mul(2654435761));
        fill_with(true, &mut par, || 0u64, |_, i| (i as u64).wrapping_mul(2654435761));
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
