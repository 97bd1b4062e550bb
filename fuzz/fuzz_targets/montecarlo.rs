//! The `.mc` Monte Carlo dialect through the plugin's paths entry: compile the text, then run a few paths over a
//! few periods (tiny sizes: the point is the compiler and the block interpreter, not the throughput).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parfit_core::paths::PathRunner;

/// 71 paths: the second block of 64 holds a few.
const PATHS: usize = 71;
const PERIODS: u64 = 3;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(model) = parfit_montecarlo::compile(text, "fuzz.mc") else { return };
    let spec = model.spec();
    let Some(len) = spec.block_len(PATHS) else { return };
    let mut out = vec![0.0; len];
    let _ = model.run(&mut model.workspace(), &spec.defaults(), 7, PERIODS, 0, PATHS, &mut out);
});
