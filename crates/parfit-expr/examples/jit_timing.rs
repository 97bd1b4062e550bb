//! How long parsing, compiling and JIT-compiling take as a model grows: `u_i { (0:N): x = 1 }` with
//! `F_i { -x_i }`, for each N given (`cargo run --release -p parfit-expr --example jit_timing 1000 10000`).
use std::time::Instant;

fn main() {
    for arg in std::env::args().skip(1) {
        let Ok(n) = arg.parse::<usize>() else {
            eprintln!("not a size: {arg}");
            std::process::exit(2);
        };
        let src = format!("u_i {{ (0:{n}): x = 1 }}\nF_i {{ -x_i }}\n");
        let start = Instant::now();
        let mut compiled = match parfit_expr::compile(&src, parfit_expr::Dialect::Ode) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("N = {n}: {e}");
                std::process::exit(2);
            }
        };
        let compiled_at = Instant::now();
        if let Err(e) = compiled.program.compile_native() {
            eprintln!("N = {n}: the JIT failed: {e}");
            std::process::exit(1);
        }
        let (c, j) = ((compiled_at - start).as_secs_f64(), compiled_at.elapsed().as_secs_f64());
        println!("N = {n}: compile {c:.3} s, JIT {j:.3} s");
    }
}
