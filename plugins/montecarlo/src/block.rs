//! The compiled model text ([`parfit_expr::Program`]) run over a block of [`LANES`] paths at once.
//!
//! The register file holds [`LANES`] values per register (register `r`, lane `l` at `r * LANES + l`).
//! Each instruction is decoded once per block and applied to all lanes in a loop of fixed length, which the
//! compiler unrolls and vectorises for the arithmetic; a per-path interpreter would pay the dispatch for
//! every path. Every lane computes exactly what [`parfit_expr::run`] computes for one path (the same
//! [`Op`] definitions, operation by operation), so results do not depend on the lane a path ran in.

use parfit_core::math;
use parfit_expr::{Instr, Op, Program};

use crate::runner::{DrawKind, LANES, PathProgram};

/// A compiled Monte Carlo program and what the runner needs to know about it.
#[derive(Debug, Clone)]
pub struct BlockProgram {
    program: Program,
}

type Lanes = [f64; LANES];

/// Per-workspace scratch: the lane-wide register file (the block's state lives in the state registers), the
/// one-path registers of the parameter code, and room for the next state when it cannot be copied in place.
#[derive(Debug)]
pub struct BlockScratch {
    regs: Vec<f64>,
    scalar: Vec<f64>,
    y0: Vec<f64>,
    next: Vec<f64>,
}

impl BlockProgram {
    pub fn new(program: Program) -> Self {
        BlockProgram { program }
    }

    pub fn program(&self) -> &Program {
        &self.program
    }
}

fn lanes_of(regs: &[f64], r: usize) -> &Lanes {
    regs[r * LANES..(r + 1) * LANES].try_into().expect("a register is LANES wide")
}

/// Apply `op` lane by lane. The common operations get their own loops (vectorised where the hardware can);
/// the rest call [`Op::apply`], the single definition every interpreter shares.
#[inline(always)]
fn apply(op: Op, out: &mut Lanes, a: &Lanes, b: impl Fn() -> Lanes, c: impl Fn() -> Lanes, d: impl Fn() -> Lanes) {
    match op {
        Op::Add => {
            let b = b();
            (0..LANES).for_each(|l| out[l] = a[l] + b[l]);
        }
        Op::Sub => {
            let b = b();
            (0..LANES).for_each(|l| out[l] = a[l] - b[l]);
        }
        Op::Mul => {
            let b = b();
            (0..LANES).for_each(|l| out[l] = a[l] * b[l]);
        }
        Op::Div => {
            let b = b();
            (0..LANES).for_each(|l| out[l] = a[l] / b[l]);
        }
        Op::Neg => (0..LANES).for_each(|l| out[l] = -a[l]),
        Op::Exp => (0..LANES).for_each(|l| out[l] = math::exp(a[l])),
        Op::Log => (0..LANES).for_each(|l| out[l] = math::ln(a[l])),
        Op::Sqrt => (0..LANES).for_each(|l| out[l] = a[l].sqrt()),
        Op::Abs => (0..LANES).for_each(|l| out[l] = a[l].abs()),
        Op::Heaviside => (0..LANES).for_each(|l| out[l] = if a[l] >= 0.0 { 1.0 } else { 0.0 }),
        Op::Select => {
            let (b, c) = (b(), c());
            (0..LANES).for_each(|l| out[l] = if a[l] >= 0.0 { b[l] } else { c[l] });
        }
        Op::MulMulAdd => {
            let (b, c, d) = (b(), c(), d());
            (0..LANES).for_each(|l| out[l] = a[l] * b[l] + c[l] * d[l]);
        }
        Op::MulMulSub => {
            let (b, c, d) = (b(), c(), d());
            (0..LANES).for_each(|l| out[l] = a[l] * b[l] - c[l] * d[l]);
        }
        _ => {
            let (b, c) = (b(), c());
            (0..LANES).for_each(|l| out[l] = op.apply(a[l], b[l], c[l], 0.0));
        }
    }
}

/// Run `code` over the lane-wide register file.
fn run_block(code: &[Instr], regs: &mut [f64]) {
    for i in code {
        let (d, a, b, c, e) = (i.dst as usize, i.a as usize, i.b as usize, i.c as usize, i.d as usize);
        // Operands are read only when the operation uses them; unused operand fields are never sliced.
        let needs_b = !matches!(
            i.op,
            Op::Neg
                | Op::Exp
                | Op::Log
                | Op::Log10
                | Op::Sqrt
                | Op::Sin
                | Op::Cos
                | Op::Tan
                | Op::Sinh
                | Op::Cosh
                | Op::Tanh
                | Op::Asinh
                | Op::Acosh
                | Op::Abs
                | Op::Sigmoid
                | Op::Heaviside
        );
        let needs_c = i.op == Op::Select;
        let needs_e = matches!(i.op, Op::MulMulAdd | Op::MulMulSub);
        if a < d && (!needs_b || b < d) && (!needs_c || c < d) && (!needs_e || (c < d && e < d)) {
            // The usual case (registers are numbered in the order they are written): operands below the
            // destination, so the file splits into a read part and a written part without copies.
            let (lo, hi) = regs.split_at_mut(d * LANES);
            let out: &mut Lanes = (&mut hi[..LANES]).try_into().expect("a register is LANES wide");
            let lo = &*lo;
            apply(i.op, out, lanes_of(lo, a), || *lanes_of(lo, b), || *lanes_of(lo, c), || *lanes_of(lo, e));
        } else {
            let mut out = [0.0; LANES];
            let src = &*regs;
            apply(i.op, &mut out, lanes_of(src, a), || *lanes_of(src, b), || *lanes_of(src, c), || *lanes_of(src, e));
            regs[d * LANES..(d + 1) * LANES].copy_from_slice(&out);
        }
    }
}

impl PathProgram for BlockProgram {
    type Scratch = BlockScratch;

    fn n_outputs(&self) -> usize {
        self.program.out_regs.len()
    }

    fn slots(&self) -> &[DrawKind] {
        &self.program.draws
    }

    fn scratch(&self) -> BlockScratch {
        let p = &self.program;
        BlockScratch {
            regs: vec![0.0; p.n_regs * LANES],
            scalar: vec![0.0; p.n_regs],
            y0: vec![0.0; p.n_states],
            next: vec![0.0; p.n_states * LANES],
        }
    }

    fn init(&self, s: &mut BlockScratch, params: &[f64]) {
        // The parameter code and constants are the same for every path: run them once and broadcast, then
        // put the initial state in every lane.
        self.program.start(&mut s.scalar, params, &mut s.y0);
        for (r, v) in s.scalar.iter().enumerate() {
            s.regs[r * LANES..(r + 1) * LANES].fill(*v);
        }
        for (k, y) in s.y0.iter().enumerate() {
            let r = Program::state_reg(k);
            s.regs[r * LANES..(r + 1) * LANES].fill(*y);
        }
    }

    fn draws<'a>(&self, s: &'a mut BlockScratch) -> &'a mut [f64] {
        let p = &self.program;
        if p.draws.is_empty() {
            return &mut [];
        }
        let d0 = p.draw_reg(0) * LANES;
        &mut s.regs[d0..d0 + p.draws.len() * LANES]
    }

    fn step(&self, s: &mut BlockScratch, t: f64) {
        let p = &self.program;
        s.regs[Program::T * LANES..(Program::T + 1) * LANES].fill(t);
        run_block(&p.rhs, &mut s.regs);
        let states = Program::state_reg(0) as u32..Program::state_reg(p.n_states) as u32;
        if p.f.iter().any(|r| states.contains(r)) {
            // `next` reads a state register (e.g. `next_i { y, x }`): gather first, then write.
            for (k, &r) in p.f.iter().enumerate() {
                let r = r as usize * LANES;
                s.next[k * LANES..(k + 1) * LANES].copy_from_slice(&s.regs[r..r + LANES]);
            }
            let s0 = Program::state_reg(0) * LANES;
            s.regs[s0..s0 + p.n_states * LANES].copy_from_slice(&s.next);
        } else {
            for (k, &r) in p.f.iter().enumerate() {
                s.regs.copy_within(r as usize * LANES..(r as usize + 1) * LANES, Program::state_reg(k) * LANES);
            }
        }
    }

    fn outputs(&self, s: &mut BlockScratch, t: f64, out: &mut [f64]) {
        let p = &self.program;
        s.regs[Program::T * LANES..(Program::T + 1) * LANES].fill(t);
        run_block(&p.out, &mut s.regs);
        for (j, &r) in p.out_regs.iter().enumerate() {
            let r = r as usize * LANES;
            out[j * LANES..(j + 1) * LANES].copy_from_slice(&s.regs[r..r + LANES]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_expr::{Dialect, compile};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Every lane of the block interpreter equals the one-path interpreter, bit for bit, on a model that
    /// uses every operation.
    #[test]
    fn each_lane_matches_the_scalar_interpreter() {
        let src = "in_i { a = 0.7, b = -1.3 }
e1 { normal() }  e2 { uniform() }  e3 { lognormal(a, 0.5) }
u_i { x = 1, y = 0.5 }
g { pow(abs(x) + 0.1, a) / (1 + sqrt(abs(y))) - min(x, y) * max(x, b) + copysign(1, y) }
h { exp(-abs(x)) + log(1 + abs(y)) + log10(2 + x * x) + sin(x) * cos(y) + tan(0.1 * x) }
k { sinh(0.1 * y) + cosh(0.1 * x) + tanh(y) + arcsinh(x) + arccosh(1 + abs(y)) + sigmoid(x) }
m { heaviside(x - y) + piecewise(y - 0.2, x, -y) + bernoulli(0.3) - t / 1000 }
next_i { 0.5 * x + e1 + 0.01 * (g + h + k), 0.25 * y + e2 * m + 0.1 * e3 }
out_i { x, y, x * y }
";
        let c = compile(src, Dialect::MonteCarlo).unwrap_or_else(|e| panic!("{e}"));
        let block = BlockProgram::new(c.program.clone());
        let mut s = block.scratch();
        let params = [0.7, -1.3];
        let n_slots = block.slots().len();
        block.init(&mut s, &params);
        // Scalar reference, one path per lane.
        let p = &c.program;
        let mut scalar: Vec<(Vec<f64>, Vec<f64>)> = (0..LANES)
            .map(|_| {
                let mut regs = vec![0.0; p.n_regs];
                let mut y = vec![0.0; p.n_states];
                p.start(&mut regs, &params, &mut y);
                (regs, y)
            })
            .collect();
        for t in 0..20 {
            let mut draws = vec![0.0; n_slots * LANES];
            for l in 0..LANES {
                for k in 0..n_slots {
                    // Deterministic, varied draws: normals may be negative, uniforms in [0, 1).
                    let v = (((t * 131 + l * 17 + k * 7) % 97) as f64) / 97.0;
                    draws[k * LANES + l] = if block.slots()[k] == DrawKind::Normal { 3.0 * v - 1.5 } else { v };
                }
            }
            block.draws(&mut s).copy_from_slice(&draws);
            block.step(&mut s, t as f64);
            let states = &s.regs[LANES..];
            for (l, (regs, y)) in scalar.iter_mut().enumerate() {
                let d: Vec<f64> = (0..n_slots).map(|k| draws[k * LANES + l]).collect();
                let mut next = vec![0.0; p.n_states];
                p.step(regs, t as f64, y, &d, &mut next);
                *y = next;
                for k in 0..p.n_states {
                    assert_eq!(states[k * LANES + l].to_bits(), y[k].to_bits(), "t {t} lane {l} state {k}");
                }
            }
        }
        let mut out = vec![0.0; 3 * LANES];
        block.outputs(&mut s, 20.0, &mut out);
        for (l, (regs, y)) in scalar.iter_mut().enumerate() {
            let mut o = vec![0.0; 3];
            p.outputs(regs, 20.0, y, &mut o);
            for j in 0..3 {
                assert_eq!(out[j * LANES + l].to_bits(), o[j].to_bits(), "lane {l} output {j}");
            }
        }
        assert!(out.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn a_next_state_that_reads_other_states_is_gathered_before_it_is_written() {
        let c = compile("u_i { x = 1, y = 2 }\nnext_i { y, x }\nout_i { x, y }", Dialect::MonteCarlo).unwrap();
        let block = BlockProgram::new(c.program);
        let mut s = block.scratch();
        block.init(&mut s, &[]);
        let mut out = vec![0.0; 2 * LANES];
        for (t, want) in [(0.0, [2.0, 1.0]), (1.0, [1.0, 2.0]), (2.0, [2.0, 1.0])] {
            block.step(&mut s, t);
            block.outputs(&mut s, t + 1.0, &mut out);
            assert_eq!([out[0], out[LANES]], want, "after period {t}");
        }
    }
}
