//! The Vensim reader (`plugins/vensim`): parse and compile `.mdl` text, then simulate the first steps of
//! the file's own time grid with both integration methods. `GET …` calls read from an empty in-memory file
//! map, so an input can never name a file on the disk. The program is interpreted: Cranelift takes seconds on
//! some test-models under the fuzzer's instrumentation (tests/allocate_by_priority: ~9 s), past its timeout;
//! native code is held to the interpreter bit for bit by the conformance test.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parfit_core::Model;
use parfit_vensim::data::Files;
use parfit_vensim::{Method, Options, VensimModel};

const STEPS: usize = 5;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for method in [None, Some(Method::Rk4)] {
        let options =
            Options { method, jit: false, files: Some(Files::Memory(Default::default())), ..Options::default() };
        let Ok(model) = VensimModel::compile_with(text, "fuzz.mdl", &options) else { return };
        let control = model.control();
        let times: Vec<f64> = (0..STEPS).map(|n| control.initial_time + n as f64 * control.time_step).collect();
        let spec = model.spec();
        let inputs = vec![f64::NAN; spec.inputs.len()];
        let mut out = vec![0.0; spec.output_len(times.len())];
        let _ = model.simulate(&mut model.workspace(), &spec.defaults(), &inputs, &times, &mut out);
    }
});
