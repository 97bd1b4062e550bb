//! The `.mc` Monte Carlo dialect through the plugin's model: compile the text, then simulate a few paths over a
//! few periods (tiny sizes: the point is the compiler and the block interpreter, not the throughput).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parfit_core::Model;

const PATHS: [f64; 3] = [0.0, 1.0, 70.0]; // 70: a path in the second block of 64
const PERIODS: f64 = 3.0;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(model) = parfit_montecarlo::compile(text, "fuzz.mc", 7, None) else { return };
    let spec = model.spec();
    let mut out = vec![0.0; spec.output_len(PATHS.len())];
    let _ = model.simulate(&mut model.workspace(), &spec.defaults(), &[f64::NAN, PERIODS], &PATHS, &mut out);
});
