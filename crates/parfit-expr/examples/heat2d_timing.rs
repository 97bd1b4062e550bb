//! How long compiling a 2-D heat equation takes: an `m × m` grid (`m²` states) whose 5-point Laplacian is a
//! sparse matrix written entry by entry (`cargo run --release -p parfit-expr --example heat2d_timing 100`).
use std::time::Instant;

/// The model text: `L_ij` lists the stencil's entries, `F_i { D * L_ij * u_j }`.
pub fn heat2d(m: usize) -> String {
    let n = m * m;
    let mut entries = Vec::with_capacity(5 * n);
    for r in 0..m {
        for c in 0..m {
            let k = r * m + c;
            entries.push(format!("({k}, {k}): -4"));
            for (dr, dc) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                let (rr, cc) = (r as i64 + dr, c as i64 + dc);
                if (0..m as i64).contains(&rr) && (0..m as i64).contains(&cc) {
                    entries.push(format!("({k}, {}): 1", rr as usize * m + cc as usize));
                }
            }
        }
    }
    format!(
        "in_i {{ D = 0.1 }}\nL_ij {{\n{}\n}}\nu_i {{ (0:{n}): y = 1 }}\nF_i {{ D * L_ij * u_j }}\n",
        entries.join(",\n")
    )
}

fn main() {
    for arg in std::env::args().skip(1) {
        let Ok(m) = arg.parse::<usize>() else {
            eprintln!("not a size: {arg}");
            std::process::exit(2);
        };
        let src = heat2d(m);
        let start = Instant::now();
        let compiled = match parfit_expr::compile(&src, parfit_expr::Dialect::Ode) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("m = {m}: {e}");
                std::process::exit(2);
            }
        };
        let took = start.elapsed().as_secs_f64();
        let p = &compiled.program;
        println!(
            "{m} x {m} grid: {} states, {} Jacobian entries, {} right-hand-side instructions: compile {took:.3} s",
            p.n_states,
            p.jac_entries.len(),
            p.rhs.len()
        );
    }
}
