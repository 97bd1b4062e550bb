//! The model-text compiler shared by parfit's ODE and Monte Carlo plugins.
//!
//! Models are written in a subset of [DiffSL](https://martinjrobins.github.io/diffsl/): tensors of
//! expressions over parameters, states and `t`. [`compile`] parses the text and compiles it, for a
//! [`Dialect`], into straight-line register code ([`Program`]): the initial state, the update rule (ODE
//! right-hand side `F_i`, or the Monte Carlo `next_i`), the outputs and, for ODEs, the Jacobian ∂F/∂u
//! derived symbolically. The program is then run by a small interpreter over a flat `f64` register file,
//! without name lookups or allocation.
//!
//! Monte Carlo models may call random draws (`normal()`, `uniform()`, `lognormal(mu, sigma)`,
//! `bernoulli(p)`); each call site becomes a numbered *draw slot* ([`Program::draws`]), an input register
//! that the runner fills with a standard normal or a uniform on [0, 1) before each step. The crate does no
//! I/O and builds for wasm32.

mod compile;
mod eval;
mod lexer;
mod parser;

pub use compile::{Compiled, Dialect};
pub use eval::{DrawKind, Instr, Op, Program, run};
pub use lexer::{Located, Pos};

/// Parse and compile model text. Errors carry the line and column of the problem.
pub fn compile(source: &str, dialect: Dialect) -> Result<Compiled, Located> {
    let ast = parser::parse(source)?;
    compile::compile(&ast, dialect)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QuantEcon's household wealth: w' = R·s·w + y with R = (1 + r)·exp(v1·ξ), y = exp(v2·η).
    const WEALTH: &str = "in = [r, s, v1, v2]
r { 0.1 }  s { 0.3 }  v1 { 0.1 }  v2 { 1.0 }
R { (1 + r) * lognormal(0, v1) }
y { lognormal(0, v2) }
u_i { w = 1 }
next_i { R * s * w + y }
out_i { w }
";

    fn mc(src: &str) -> Compiled {
        compile(src, Dialect::MonteCarlo).unwrap_or_else(|e| panic!("{e}"))
    }

    fn mc_err(src: &str) -> Located {
        compile(src, Dialect::MonteCarlo).unwrap_err()
    }

    /// Start the program with `params` and return the registers and the initial state.
    fn start(c: &Compiled, params: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let p = &c.program;
        let mut regs = vec![0.0; p.n_regs];
        let mut y = vec![0.0; p.n_states];
        p.start(&mut regs, params, &mut y);
        (regs, y)
    }

    #[test]
    fn the_wealth_model_compiles_and_steps() {
        let c = mc(WEALTH);
        let names: Vec<&str> = c.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["r", "s", "v1", "v2"]);
        assert_eq!(c.params.iter().map(|p| p.1).collect::<Vec<_>>(), [0.1, 0.3, 0.1, 1.0]);
        assert_eq!(c.states, ["w"]);
        assert_eq!(c.outputs, ["w"]);
        // One normal slot per lognormal call, in source order.
        assert_eq!(c.program.draws, [DrawKind::Normal, DrawKind::Normal]);
        assert!(c.program.jac.is_empty() && c.program.jac_entries.is_empty());

        let params = [0.1, 0.3, 0.1, 1.0];
        let (mut regs, mut w) = start(&c, &params);
        assert_eq!(w, [1.0]);
        let mut next = [0.0];
        for (t, z) in [[0.3, -1.2], [-0.7, 0.4], [0.0, 0.0]].iter().enumerate() {
            c.program.step(&mut regs, t as f64, &w, z, &mut next);
            let want = (1.1 * (0.1 * z[0]).exp()) * 0.3 * w[0] + (1.0 * z[1]).exp();
            assert!((next[0] - want).abs() <= 1e-15 * want, "{} vs {want}", next[0]);
            w = next.to_vec();
        }
        let mut out = [0.0];
        c.program.outputs(&mut regs, 3.0, &w, &mut out);
        assert_eq!(out, [w[0]]);
    }

    #[test]
    fn slots_are_listed_in_source_order_and_read_their_own_draw() {
        // Slots are numbered by call site in the text, not by the order the compiler meets them (`a` is
        // used last but written first); a call site in a vector element of three entries is three slots.
        let src = "in_i { p = 0.25, m = 1, sd = 2 }
a { uniform() }
b_i { (0:3): normal() }
u_i { (0:3): x = 0, flag = 0, ln = 0 }
next_i { (0:3): x_i + b_i, bernoulli(p), lognormal(m, sd) + a }
";
        let c = mc(src);
        use DrawKind::{Normal as N, Uniform as U};
        assert_eq!(c.program.draws, [U, N, N, N, U, N]);
        let (mut regs, y) = start(&c, &[0.25, 1.0, 2.0]);
        let draws = [0.5, -1.0, 0.25, 3.0, 0.1, 0.7];
        let mut next = [0.0; 5];
        c.program.step(&mut regs, 0.0, &y, &draws, &mut next);
        assert_eq!(&next[..3], &[-1.0, 0.25, 3.0]);
        assert_eq!(next[3], 1.0, "u = 0.1 < p = 0.25 draws 1");
        assert_eq!(next[4], (1.0 + 2.0 * 0.7f64).exp() + 0.5);
        let draws = [0.5, -1.0, 0.25, 3.0, 0.25, 0.7];
        c.program.step(&mut regs, 0.0, &y, &draws, &mut next);
        assert_eq!(next[3], 0.0, "u = p draws 0 (u < p is false)");
    }

    #[test]
    fn draws_nothing_reads_are_no_slots() {
        let src = "unused { normal() }\nused { uniform() }\nu { x = 0 }\nnext { x + used }";
        let c = mc(src);
        assert_eq!(c.program.draws, [DrawKind::Uniform]);
        let (mut regs, y) = start(&c, &[]);
        let mut next = [0.0];
        c.program.step(&mut regs, 0.0, &y, &[0.75], &mut next);
        assert_eq!(next, [0.75]);
    }

    #[test]
    fn the_ode_dialect_refuses_draws_with_the_line() {
        let e = compile("in_i { k = 1 }\nu_i { x = 1 }\nF_i { -k * x + normal() }", Dialect::Ode).unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (3, 16));
        assert!(e.message.starts_with("random draws are only allowed in Monte Carlo models (line 3)"), "{e}");
        // Even in a tensor nothing uses.
        let e = compile("noise { uniform() }\nu { x = 1 }\nF { -x }", Dialect::Ode).unwrap_err();
        assert!(e.message.starts_with("random draws are only allowed in Monte Carlo models (line 1)"), "{e}");
        // And the ODE dialect is unchanged: `next_i` is an ordinary tensor there.
        assert!(compile("next { 2 }\nu { x = 1 }\nF { -next * x }", Dialect::Ode).is_ok());
    }

    #[test]
    fn the_monte_carlo_dialect_refuses_odes_and_misplaced_draws() {
        for (src, line, start) in [
            ("u { x = 1 }\nF { -x }", 2, "'F' belongs to ODE models (line 2)"),
            ("u_i { x = 1 }\n\ndudt_i { dx = 0 }\nnext_i { x }", 3, "'dudt_i' belongs to ODE models (line 3)"),
            ("u_i { x = 1 }\nM_i { x }\nnext_i { x }", 2, "'M_i' belongs to ODE models (line 2)"),
            ("u { x = normal() }\nnext { x }", 1, "random draws are not allowed in initial values (line 1)"),
            ("u { x = 1 }\nnext { x }\nout { x * uniform() }", 3, "random draws are not allowed in outputs (line 3)"),
            (
                "in_i { k = uniform() }\nu { x = 1 }\nnext { x }",
                1,
                "random draws are not allowed in parameter defaults",
            ),
            ("u { x = 1 }\nnext { x + normal(1) }", 2, "random draw 'normal' takes 0 arguments, found 1"),
            ("u { x = 1 }\nnext { x * lognormal(1) }", 2, "random draw 'lognormal' takes 2 arguments, found 1"),
        ] {
            let e = mc_err(src);
            assert_eq!(e.pos.line, line, "{src}: {e}");
            assert!(e.message.starts_with(start), "{src}: {e}");
        }
        let e = mc_err("in_i { k = 1 }\nu_i { x = 1 }");
        assert!(e.message.contains("no update rule 'next_i'"), "{e}");
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn parameter_code_is_hoisted_out_of_the_step() {
        // (1 + r) depends on parameters only: it runs once, not every period.
        let c = mc(WEALTH);
        assert_eq!(c.program.setup.len(), 1, "{:?}", c.program.setup);
        // v1·z, exp, (1 + r)·…, v2·z, exp, ·s, ·w, + y: eight instructions per path and period.
        assert_eq!(c.program.rhs.len(), 8, "{:?}", c.program.rhs);
    }
}
