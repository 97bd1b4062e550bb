//! The model compiler shared by parfit's ODE, Monte Carlo and Vensim plugins.
//!
//! Models are written in a subset of [DiffSL](https://martinjrobins.github.io/diffsl/): tensors of
//! expressions over parameters, states and `t`. [`compile`] parses the text and compiles it, for a
//! [`Dialect`], into straight-line register code ([`Program`]): the initial state, the update rule (ODE
//! right-hand side `F_i`, or the Monte Carlo `next_i`), the outputs and, for ODEs, the Jacobian ∂F/∂u
//! derived symbolically. The program is then run by a small interpreter over a flat `f64` register file,
//! without name lookups or allocation, or, on native targets after [`Program::compile_native`], as
//! Cranelift-generated machine code with bit-identical results.
//!
//! Monte Carlo models may call random draws (`normal()`, `uniform()`, `lognormal(mu, sigma)`,
//! `bernoulli(p)`); each call site becomes a numbered *draw slot* ([`Program::draws`]), an input register
//! that the runner fills with a standard normal or a uniform on [0, 1) before each step.
//!
//! Front ends with their own language (the Vensim reader) lower models to a [`system::System`] of scalar
//! equations instead, which [`system::compile_system`] compiles into the same kind of [`Program`], lookup
//! tables included. The crate does no I/O and builds for wasm32.

// Only `jit.rs` (calling generated code) may opt out; see ARCHITECTURE.md, invariant 7.
#![deny(unsafe_code)]
mod compile;
mod derive;
mod emit;
mod eval;
#[cfg(not(target_arch = "wasm32"))]
mod jit;
mod lexer;
mod lookup;
mod parser;
pub mod projection;
pub mod system;

pub use compile::{Compiled, Dialect, Files, no_files};
pub use eval::{DrawKind, Instr, Op, Program, run};
pub use lexer::{Located, Pos};
pub use lookup::LookupTable;

/// Parse and compile model text. Errors carry the line and column of the problem. A model that reads
/// files (`read('a.tns')`) needs [`compile_with`].
pub fn compile(source: &str, dialect: Dialect) -> Result<Compiled, Located> {
    compile_with(source, dialect, false, &no_files)
}

/// [`compile`] an ODE model together with the code of its forward sensitivity equations: ∂u0/∂p,
/// ∂F/∂p, ∂out/∂u and ∂out/∂p, all derived symbolically ([`Program::sensitivities`] is true). The
/// plain program is unchanged by it, so models compile twice rather than slow the plain one down.
pub fn compile_with_sensitivities(source: &str) -> Result<Compiled, Located> {
    compile_with(source, Dialect::Ode, true, &no_files)
}

/// [`compile`] (with the sensitivity code when `sensitivities`, ODE models only), reading the files
/// `read('…')` names through `files`: the front end decides where a name is looked up.
pub fn compile_with(
    source: &str,
    dialect: Dialect,
    sensitivities: bool,
    files: &Files<'_>,
) -> Result<Compiled, Located> {
    let ast = parser::parse(source)?;
    compile::compile(&ast, dialect, sensitivities, files)
}

/// Values' bits, with every NaN the same: Rust leaves a NaN's sign and payload unspecified (the compiler
/// may swap the operands of `a + b`, and x86 returns the first operand's NaN), so no two compilations of an
/// operation agree on them; everything else must match bit for bit.
#[cfg(test)]
pub(crate) fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// QuantEcon's household wealth: w' = R·s·w + y with R = (1 + r)·exp(v1·ξ), y = exp(v2·η).
    const WEALTH: &str = "in_i { r = 0.1, s = 0.3, v1 = 0.1, v2 = 1.0 }
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
            let want = (1.1 * math::exp(0.1 * z[0])) * 0.3 * w[0] + math::exp(1.0 * z[1]);
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
        assert_eq!(next[4], math::exp(1.0 + 2.0 * 0.7f64) + 0.5);
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
        // v1·z, exp, (1 + r)·…, ·s, v2·z, exp, and ·w + y fused: seven instructions per path and period.
        assert_eq!(c.program.rhs.len(), 7, "{:?}", c.program.rhs);
    }

    /// Definitions chained deeper than the compiler recurses are refused at the definition; the deepest
    /// model it accepts (nested expressions at every link of the chain) compiles on a thread with a 1 MiB stack.
    #[test]
    fn deep_definitions_are_refused_and_the_deepest_accepted_fit_a_small_stack() {
        let chain = |links: usize, nest: usize| {
            let mut src = String::from("a0 { 1 }\n");
            for k in 1..links {
                src += &format!("a{k} {{ {}a{} + 1{} }}\n", "(".repeat(nest), k - 1, ")".repeat(nest));
            }
            src + &format!("u_i {{ x = 1 }}\nF_i {{ a{} * x }}\n", links - 1)
        };
        let e = compile(&chain(2000, 0), Dialect::Ode).unwrap_err();
        assert!(e.message.contains("nested deeper than 500 levels"), "{e}");
        // Defined in reverse order, the layouts themselves recurse; still refused, not overflowed.
        let mut reversed: Vec<&str> = Vec::new();
        let text = chain(100_000, 0);
        reversed.extend(text.lines().rev());
        assert!(compile(&reversed.join("\n"), Dialect::Ode).unwrap_err().message.contains("nested deeper"));
        // Every level of the deepest accepted chains costs stack in each pass; all fit in 1 MiB.
        let accepted = [chain(160, 0), chain(6, 60), chain(2, parser::MAX_NESTING - 2)];
        let compile_all = move || {
            accepted.iter().map(|src| compile(src, Dialect::Ode).map(|c| c.program.n_states)).collect::<Vec<_>>()
        };
        #[cfg(not(target_arch = "wasm32"))]
        let results =
            std::thread::Builder::new().stack_size(1 << 20).spawn(compile_all).unwrap().join().expect("no overflow");
        #[cfg(target_arch = "wasm32")]
        let results = compile_all();
        assert!(results.iter().all(|r| r == &Ok(1)), "{results:?}");
    }

    /// A sum of 10⁵ terms compiles without recursion per term, to the left-to-right sum.
    #[test]
    fn a_long_sum_compiles_flat_and_adds_left_to_right() {
        let terms: Vec<String> = (0..100_000).map(|k| format!("{}.5 * x", k % 7)).collect();
        let src = format!("u_i {{ x = 1 }}\nF_i {{ {} }}\n", terms.join(" + "));
        let c = compile(&src, Dialect::Ode).unwrap_or_else(|e| panic!("{e}"));
        let (mut regs, y) = start(&c, &[]);
        let mut dy = [0.0];
        c.program.rhs(&mut regs, 0.0, &y, &mut dy);
        let want = (0..100_000).fold(0.0, |acc, k| if k == 0 { 0.5 } else { acc + ((k % 7) as f64 + 0.5) });
        assert_eq!(dy[0].to_bits(), want.to_bits());
    }

    /// Tensor lengths are checked against the memory budget before any code is generated.
    #[test]
    fn a_model_too_large_for_memory_is_refused_before_code_is_generated() {
        let v = |name: &str| format!("{name}_i {{ (0:{}): 1 }}\n", parser::MAX_INDEX);
        let src = format!("{}{}{}{}u_i {{ x = 1 }}\nF_i {{ x }}\n", v("a"), v("b"), v("c"), v("d"));
        let e = compile(&src, Dialect::Ode).unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 1 });
        assert!(e.message.contains("a model of 40000002 tensor elements would need about"), "{e}");
    }
}

#[cfg(test)]
mod sensitivity_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Parameters reach the right-hand side directly, through parameter-level tensors (hoisted into the
    /// setup code), through the initial state and through the outputs.
    const MODEL: &str = "in_i { a = 0.7, b = 1.3, c = 0.4 }
ab { a * b }
w_i { exp(c), pow(b, 2) + a }
u_i { x = a * c, y = sqrt(b), z = 2 }
F_i {
  -ab * x + sin(y) * w_i[0],
  pow(x, c) - w_i[1] * y / (1 + z),
  piecewise(x - 0.1, c * z, -z) + max(a, y) * t,
}
out_i { x * b, y + z, c * t, total = x + y + z }";

    pub(crate) fn fd(f: impl Fn(&[f64]) -> Vec<f64>, p: &[f64], k: usize) -> Vec<f64> {
        let h = 1e-6 * p[k].abs().max(1.0);
        let (mut pp, mut pm) = (p.to_vec(), p.to_vec());
        pp[k] += h;
        pm[k] -= h;
        f(&pp).iter().zip(f(&pm)).map(|(a, b)| (a - b) / (2.0 * h)).collect()
    }

    pub(crate) fn close(got: f64, want: f64, what: &str) {
        assert!((got - want).abs() <= 1e-7 * want.abs().max(1.0), "{what}: {got} vs differences {want}");
    }

    #[test]
    fn parameter_derivatives_match_finite_differences() {
        let c = compile_with_sensitivities(MODEL).unwrap();
        let plain = compile(MODEL, Dialect::Ode).unwrap();
        let p = &c.program;
        assert!(p.sensitivities && !plain.program.sensitivities);
        let (params, t, y) = ([0.7, 1.3, 0.4], 0.8, [0.5, 1.1, 2.0]);
        // The plain program computes the same right-hand side, bit for bit (its products may fuse
        // differently, as the sensitivity code reads some of them).
        let rhs = |p: &Program| {
            let mut regs = vec![0.0; p.n_regs];
            p.start(&mut regs, &params, &mut vec![0.0; p.n_states]);
            let mut dy = vec![0.0; p.n_states];
            p.rhs(&mut regs, t, &y, &mut dy);
            dy
        };
        assert_eq!(rhs(&plain.program), rhs(p));
        check_against_differences(p, &params, t, &y);
    }

    /// A program's derivative code against central differences of its plain code: the initial
    /// sensitivities, the sensitivity right-hand side `∂F/∂u·s + ∂F/∂p` (by `J s + ∂F/∂p`, or by the tangent
    /// code in a program compiled for tangents) and the output derivatives, at `(t, y)` with some
    /// sensitivities `s`; and the Jacobian itself where the program has one.
    pub(crate) fn check_against_differences(p: &Program, params: &[f64], t: f64, y: &[f64]) {
        let (n, np, no) = (p.n_states, p.n_params, p.out_regs.len());
        let s: Vec<f64> = (0..n * np).map(|k| 0.1 * k as f64 - 0.3).collect();
        let [s0, _, ds, _, dout] = derivatives(p, params, t, y, &s);
        let mut regs = vec![0.0; p.n_regs];
        p.start(&mut regs, params, &mut vec![0.0; n]);
        let eval = |params: &[f64], what: u8| {
            let mut regs = vec![0.0; p.n_regs];
            let mut y0 = vec![0.0; n];
            p.start(&mut regs, params, &mut y0);
            let mut v = vec![0.0; n.max(no)];
            match what {
                0 => y0,
                1 => {
                    p.rhs(&mut regs, t, y, &mut v[..n]);
                    v[..n].to_vec()
                }
                _ => {
                    p.outputs(&mut regs, t, y, &mut v[..no]);
                    v[..no].to_vec()
                }
            }
        };
        // ∂F/∂u by differences, column by column.
        let jfd: Vec<Vec<f64>> = (0..n)
            .map(|j| {
                let rhs_at = |yy: &[f64]| {
                    let mut regs = vec![0.0; p.n_regs];
                    p.start(&mut regs, params, &mut vec![0.0; n]);
                    let mut v = vec![0.0; n];
                    p.rhs(&mut regs, t, yy, &mut v);
                    v
                };
                fd(rhs_at, y, j)
            })
            .collect();
        for k in 0..np {
            let du0 = fd(|q| eval(q, 0), params, k);
            let df = fd(|q| eval(q, 1), params, k);
            let dout_dp = fd(|q| eval(q, 2), params, k);
            for i in 0..n {
                close(s0[k * n + i], du0[i], &format!("du0_{i}/dp_{k}"));
                // ds_k = ∂F/∂u s_k + ∂F/∂p_k
                let js: f64 = (0..n).map(|j| jfd[j][i] * s[k * n + j]).sum();
                close(ds[k * n + i], js + df[i], &format!("ds_{k}[{i}]"));
            }
            // dout_k = ∂out/∂u s_k + ∂out/∂p_k, with ∂out/∂u by differences in the state.
            for o in 0..no {
                let mut want = dout_dp[o];
                for j in 0..n {
                    let h = 1e-6;
                    let mut v = vec![0.0; no];
                    let (mut yp, mut ym) = (y.to_vec(), y.to_vec());
                    yp[j] += h;
                    ym[j] -= h;
                    p.outputs(&mut regs, t, &yp, &mut v);
                    let a = v[o];
                    p.outputs(&mut regs, t, &ym, &mut v);
                    want += (a - v[o]) / (2.0 * h) * s[k * n + j];
                }
                close(dout[o * np + k], want, &format!("dout_{o}/dp_{k}"));
            }
        }
        if p.sensitivities {
            let mut jac = vec![0.0; n * n];
            p.jacobian(&mut regs, t, y, &mut jac);
            for (j, col) in jfd.iter().enumerate() {
                for i in 0..n {
                    close(jac[j * n + i], col[i], &format!("J[{i}][{j}]"));
                }
            }
        }
    }
}

/// The initial sensitivities, `F`, its derivatives `∂F/∂u·s + ∂F/∂p`, the outputs and theirs at `(t, y)` with
/// sensitivities `s`, by the program's mode of derivative code (Jacobian or tangent).
#[cfg(test)]
pub(crate) fn derivatives(p: &Program, params: &[f64], t: f64, y: &[f64], s: &[f64]) -> [Vec<f64>; 5] {
    let (n, np, no) = (p.n_states, p.n_params, p.out_regs.len());
    let mut regs = vec![0.0; p.n_regs];
    let mut s0 = vec![f64::NAN; n * np];
    p.start(&mut regs, params, &mut vec![0.0; n]);
    p.start_sensitivities(&mut regs, &mut s0);
    let (mut dy, mut ds, mut out, mut dout) = (vec![0.0; n], vec![0.0; n * np], vec![0.0; no], vec![0.0; no * np]);
    if p.tangent {
        p.tangent_rhs(&mut regs, &mut Vec::new(), t, y, s, &mut dy, &mut ds);
        p.tangent_outputs(&mut regs, t, y, s, &mut out, &mut dout);
    } else {
        p.sensitivity_rhs(&mut regs, &mut Vec::new(), t, y, s, &mut dy, &mut ds);
        p.sensitivity_outputs(&mut regs, t, y, s, &mut out, &mut dout);
    }
    [s0, dy, ds, out, dout]
}

#[cfg(test)]
mod speed_tests {
    use super::*;
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn small_whole_powers_are_products_and_agree_with_powf() {
        let c = compile(
            "in_i { a = 1.7 }\nu_i { x = 0.3 }\nF_i { pow(x, 2) + pow(x, 3) * a - pow(a, 4) + pow(x, 2.5) }",
            Dialect::Ode,
        )
        .unwrap();
        let p = &c.program;
        // Only pow(x, 2.5) (and its derivative's pow(x, 1.5)) call powf.
        let pows = p.rhs.iter().chain(&p.jac).chain(&p.setup).filter(|i| i.op == Op::Pow).count();
        assert_eq!(pows, 2, "{:?}", p.rhs);
        let mut regs = vec![0.0; p.n_regs];
        let mut y = [0.0];
        p.start(&mut regs, &[1.7], &mut y);
        let x = 1.3f64;
        let mut dy = [0.0];
        p.rhs(&mut regs, 0.0, &[x], &mut dy);
        let want = math::powf(x, 2.0) + math::powf(x, 3.0) * 1.7 - math::powf(1.7f64, 4.0) + math::powf(x, 2.5);
        assert!((dy[0] - want).abs() <= 4.0 * f64::EPSILON * want.abs(), "{} vs {want}", dy[0]);
    }

    #[test]
    fn fused_sums_of_products_round_as_the_separate_operations() {
        // Every product here has one reader, a sum: all fuse, and the results are bit for bit those of the
        // same operations written out.
        let src = "in_i { a = 0.1, b = 0.7, c = 3 }\nu_i { x = 1, y = 2, z = 0, w = 0 }
F_i { a * x + b * y, c - a * y * x, x * y - b, x * x - y * b }
out_i { p = x * y + a * b * x, q = c - x * x }";
        let cp = compile(src, Dialect::Ode).unwrap();
        let p = &cp.program;
        for code in [&p.rhs, &p.out] {
            assert!(code.iter().any(|i| matches!(i.op, Op::MulAdd | Op::MulSub | Op::NegMulAdd)), "{code:?}");
            assert!(code.iter().any(|i| i.op == Op::MulMulAdd), "{code:?}");
        }
        assert!(p.rhs.iter().any(|i| i.op == Op::MulMulSub), "{:?}", p.rhs);
        let (a, b, c) = (0.1f64, 0.7f64, 3.0f64);
        let mut regs = vec![0.0; p.n_regs];
        let mut y0 = [0.0; 4];
        p.start(&mut regs, &[a, b, c], &mut y0);
        let (x, y) = (1.0 / 3.0, 2.0f64.sqrt());
        let (mut dy, mut out) = ([0.0; 4], [0.0; 2]);
        p.rhs(&mut regs, 0.0, &[x, y, 0.0, 0.0], &mut dy);
        p.outputs(&mut regs, 0.0, &[x, y, 0.0, 0.0], &mut out);
        assert_eq!(dy, [a * x + b * y, c - (a * y) * x, x * y - b, x * x - y * b]);
        assert_eq!(out, [x * y + (a * b) * x, c - x * x]);
    }
}
