//! The DiffSL compiler (ODE dialect): parse and compile model text, with and without the sensitivity equations,
//! then run the program's start, right-hand side, Jacobian and outputs once with the interpreter (the JIT is
//! left out: compiling machine code per input would make each execution ~100 times slower).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parfit_expr::{Dialect, compile, compile_with_sensitivities};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(compiled) = compile(text, Dialect::Ode) else { return };
    let program = &compiled.program;
    let params: Vec<f64> = compiled.params.iter().map(|(_, default)| *default).collect();
    let mut regs = vec![0.0; program.n_regs];
    let mut y = vec![0.0; program.n_states];
    program.start(&mut regs, &params, &mut y);
    // Defaults may be anything the text says (1e308 * 10 is inf); the evaluation is run on finite values.
    let y: Vec<f64> = y.iter().map(|v| if v.is_finite() { *v } else { 1.0 }).collect();
    let mut dy = vec![0.0; program.n_states];
    program.rhs(&mut regs, 0.5, &y, &mut dy);
    let mut jac = vec![0.0; program.jac_entries.len()];
    program.jacobian_values(&mut regs, 0.5, &y, &mut jac);
    let mut out = vec![0.0; program.out_regs.len()];
    program.outputs(&mut regs, 0.5, &y, &mut out);
    let _ = compile_with_sensitivities(text);
});
