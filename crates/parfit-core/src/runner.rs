//! Runners over many independent cases: work-stealing across cases (they differ in cost), cooperative
//! cancellation, and a completion callback so a front end can checkpoint and report progress as cases finish.
//!
//! Each case's result depends only on its index (seeds are keyed by it), never on which thread ran it or in
//! which order cases finished, so collecting results by index gives the same table for any thread count.

use std::sync::atomic::{AtomicBool, Ordering};

/// Run `work(i)` for every case `i < n` that `skip(i)` does not exclude, calling `done(i, result)` as each
/// finishes (from the worker thread, in completion order). Cases not yet started when `cancel` is set are
/// left undone. Returns how many cases were run.
pub fn for_each_case<T>(
    n: usize,
    skip: &(dyn Fn(usize) -> bool + Sync),
    cancel: &AtomicBool,
    work: &(dyn Fn(usize) -> T + Sync),
    done: &(dyn Fn(usize, T) + Sync),
) -> usize
where
    T: Send,
{
    let run_one = |i: usize| -> usize {
        if skip(i) || cancel.load(Ordering::Relaxed) {
            return 0;
        }
        let result = work(i);
        done(i, result);
        1
    };
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        // One task per case: rayon's work stealing then balances cases of very different cost.
        (0..n).into_par_iter().with_max_len(1).map(run_one).sum()
    }
    #[cfg(not(feature = "parallel"))]
    {
        (0..n).map(run_one).sum()
    }
}

/// A seed for case `index` derived from the run's seed: distinct per case, independent of scheduling.
pub fn case_seed(seed: u64, index: usize) -> u64 {
    // SplitMix64's finaliser spreads neighbouring indices over the whole range.
    let mut z = seed ^ (index as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_case_runs_once_and_results_land_by_index() {
        let results = Mutex::new(vec![None; 100]);
        let cancel = AtomicBool::new(false);
        let ran = for_each_case(
            100,
            &|i| i % 10 == 3,
            &cancel,
            &|i| (0..(i % 7) * 1000).fold(i as u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64)),
            &|i, r| {
                let mut slots = results.lock().unwrap();
                assert!(slots[i].is_none(), "case {i} ran twice");
                slots[i] = Some(r);
            },
        );
        assert_eq!(ran, 90);
        let slots = results.into_inner().unwrap();
        assert!(slots.iter().enumerate().all(|(i, s)| s.is_some() == (i % 10 != 3)));
    }

    #[test]
    fn cancelled_runs_start_nothing_new() {
        let cancel = AtomicBool::new(true);
        assert_eq!(for_each_case(50, &|_| false, &cancel, &|i| i, &|_, _| {}), 0);
    }

    #[test]
    fn case_seeds_differ_and_are_stable() {
        let seeds: Vec<u64> = (0..1000).map(|i| case_seed(42, i)).collect();
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_eq!(case_seed(42, 7), case_seed(42, 7));
        assert_ne!(case_seed(42, 7), case_seed(43, 7));
    }
}
