//! The compiled form of a model: straight-line register code over one flat `f64` register file.
//!
//! Every instruction writes a fresh register (no register reuse), so programs are plain SSA and each
//! result stays readable after its program ran.

use parfit_core::math;
use std::sync::Arc;

use crate::lookup::LookupTable;
use crate::system::LookupMode;

/// One operation. Binary ops read `a` and `b`; unary ops read `a` only; `Select` and `If` read all three.
/// Comparisons and logic give 1.0 for true and 0.0 for false; an operand is true when it is not 0 (NaN
/// included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    Copysign,
    Neg,
    Exp,
    Log,
    Log10,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Asin,
    Acos,
    Atan,
    Abs,
    /// Rounding toward zero (Vensim's `INTEGER`).
    Trunc,
    /// Rounding down (the projection language's `floor`).
    Floor,
    /// The remainder of `a / b` with the sign of `a` (C's `fmod`, exact): Vensim's `MODULO`, whose reference
    /// output gives `MODULO(-10, 3) = -1` (test-models' `tests/rounding`). NaN when `b = 0`.
    Modulo,
    /// `a`, or `b` when `a` is NaN.
    NanElse,
    /// `a == b` (false when either is NaN).
    Eq,
    /// `a != b` (true when either is NaN).
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    /// `a == 0`.
    Not,
    Sigmoid,
    /// The error function and its complement (`parfit_core::math`, the same bits on every target): the
    /// projection language's `erfc` and normal distribution function.
    Erf,
    Erfc,
    Heaviside,
    /// `if a >= 0 { b } else { c }` (DiffSL's `piecewise`).
    Select,
    /// `if a != 0 { b } else { c }` (Vensim's `IF THEN ELSE`; NaN counts as true).
    If,
    // Fused pairs made by `Program::finish` from a product read only by a sum: one dispatch instead of two,
    // rounded exactly as the pair (two roundings, not a fused multiply-add).
    /// `a * b + c`.
    MulAdd,
    /// `a * b - c`.
    MulSub,
    /// `c - a * b`.
    NegMulAdd,
    // A sum or difference of two products each read only by it (mass-action terms): one dispatch instead of
    // three, again rounded as the separate operations.
    /// `a * b + c * d`.
    MulMulAdd,
    /// `a * b - c * d`.
    MulMulSub,
    // Reads of the program's lookup table number `d` (see `lookup.rs` for each mode's edges): not functions of
    // their operands alone, so the interpreters and the JIT call `LookupTable::apply` for them.
    /// The table read at `a` in this mode.
    Lookup(LookupMode),
    /// The derivative of [`Op::Lookup`] in this mode at `a`.
    LookupSlope(LookupMode),
    /// The area under the table from `a` to `b`.
    LookupArea,
}

impl Op {
    pub fn is_commutative(self) -> bool {
        matches!(self, Op::Add | Op::Mul | Op::Min | Op::Max | Op::Eq | Op::Ne | Op::And | Op::Or)
    }

    /// Whether the operation reads a lookup table (the instruction's `d`).
    pub fn reads_table(self) -> bool {
        matches!(self, Op::Lookup(_) | Op::LookupSlope(_) | Op::LookupArea)
    }

    /// The one definition of each operation, shared by constant folding and the interpreters so that folded
    /// and run-time results are bit-identical. `d` is read by the two-product operations only. Table reads
    /// need their table ([`LookupTable::apply`]): here they are NaN.
    pub fn apply(self, a: f64, b: f64, c: f64, d: f64) -> f64 {
        self.apply_lazy(a, || b, || c, || d)
    }

    /// [`Op::apply`] reading the operands after the first only when the operation uses them: the
    /// interpreter passes register loads, so a unary op loads one register.
    #[inline(always)]
    fn apply_lazy(self, a: f64, b: impl FnOnce() -> f64, c: impl FnOnce() -> f64, d: impl FnOnce() -> f64) -> f64 {
        match self {
            Op::Add => a + b(),
            Op::Sub => a - b(),
            Op::Mul => a * b(),
            Op::Div => a / b(),
            Op::Pow => math::powf(a, b()),
            // The other operand when `a` is NaN, else the smaller (larger); `a` when they are equal (so of two
            // zeros, `a`'s sign): what `f64::min`/`max` give on x86-64, written out so that every target and the
            // JIT, which computes them inline, agree to the bit.
            Op::Min => {
                let b = b();
                if b < a || a.is_nan() { b } else { a }
            }
            Op::Max => {
                let b = b();
                if b > a || a.is_nan() { b } else { a }
            }
            Op::Copysign => a.copysign(b()),
            Op::Neg => -a,
            Op::Exp => math::exp(a),
            Op::Log => math::ln(a),
            Op::Log10 => math::log10(a),
            Op::Sqrt => a.sqrt(),
            Op::Sin => math::sin(a),
            Op::Cos => math::cos(a),
            Op::Tan => math::tan(a),
            Op::Sinh => math::sinh(a),
            Op::Cosh => math::cosh(a),
            Op::Tanh => math::tanh(a),
            Op::Asinh => math::asinh(a),
            Op::Acosh => math::acosh(a),
            Op::Asin => math::asin(a),
            Op::Acos => math::acos(a),
            Op::Atan => math::atan(a),
            Op::Abs => a.abs(),
            Op::Trunc => a.trunc(),
            Op::Floor => a.floor(),
            Op::Modulo => a % b(),
            Op::NanElse => {
                if a.is_nan() {
                    b()
                } else {
                    a
                }
            }
            Op::Eq => truth(a == b()),
            Op::Ne => truth(a != b()),
            Op::Lt => truth(a < b()),
            Op::Le => truth(a <= b()),
            Op::Gt => truth(a > b()),
            Op::Ge => truth(a >= b()),
            Op::And => truth(a != 0.0 && b() != 0.0),
            Op::Or => truth(a != 0.0 || b() != 0.0),
            Op::Not => truth(a == 0.0),
            // As DiffSL defines them.
            Op::Sigmoid => 1.0 / (1.0 + math::exp(-a)),
            Op::Erf => math::erf(a),
            Op::Erfc => math::erfc(a),
            Op::Heaviside => {
                if a >= 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Op::Select => {
                if a >= 0.0 {
                    b()
                } else {
                    c()
                }
            }
            Op::If => {
                if a != 0.0 {
                    b()
                } else {
                    c()
                }
            }
            Op::MulAdd => a * b() + c(),
            Op::MulSub => a * b() - c(),
            Op::NegMulAdd => c() - a * b(),
            Op::MulMulAdd => a * b() + c() * d(),
            Op::MulMulSub => a * b() - c() * d(),
            Op::Lookup(_) | Op::LookupSlope(_) | Op::LookupArea => f64::NAN,
        }
    }
}

/// 1.0 for true, 0.0 for false.
#[inline(always)]
fn truth(x: bool) -> f64 {
    if x { 1.0 } else { 0.0 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instr {
    pub op: Op,
    pub dst: u32,
    /// Operand registers: unary operations repeat `a` in `b` and `c`, binary ones in `c`.
    pub a: u32,
    pub b: u32,
    pub c: u32,
    /// The fourth operand of the two-product operations, the table of a table read, else 0.
    pub d: u32,
}

/// Run a program over the register file, with the program's lookup tables. Register and table indices were
/// checked when the program was built, so indexing never fails for a register file of the model's size.
#[inline(always)]
pub fn run(code: &[Instr], r: &mut [f64], tables: &[LookupTable]) {
    for i in code {
        let v = match i.op {
            op @ (Op::Lookup(_) | Op::LookupSlope(_) | Op::LookupArea) => {
                tables[i.d as usize].apply(op, r[i.a as usize], r[i.b as usize])
            }
            op => op.apply_lazy(r[i.a as usize], || r[i.b as usize], || r[i.c as usize], || r[i.d as usize]),
        };
        r[i.dst as usize] = v;
    }
}

/// What a random-draw slot holds: the runner fills it with one draw of this kind before each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrawKind {
    /// A standard normal.
    Normal,
    /// Uniform on [0, 1).
    Uniform,
}

/// Everything a simulation needs, with all names resolved to register indices.
///
/// Register layout: `0` is `t`, `1..=n_states` the state, then the parameters, then the draw slots (Monte
/// Carlo models), then constants and temporaries.
#[derive(Debug, Clone)]
pub struct Program {
    pub n_states: usize,
    pub n_params: usize,
    pub n_regs: usize,
    /// The draw slots in order (call sites in source order; a call site inside a vector element of n
    /// entries is n slots). Empty for ODE models.
    pub draws: Vec<DrawKind>,
    /// Before [`Program::finish`]: the register of each draw slot; afterwards they are consecutive
    /// from [`Program::draw_reg`]`(0)` and this is cleared.
    pub draw_regs: Vec<u32>,
    /// Constant registers and their values, written before each simulation.
    pub consts: Vec<(u32, f64)>,
    /// Code depending on parameters only: run once per simulation.
    pub setup: Vec<Instr>,
    /// Registers holding the initial state after `setup`.
    pub init: Vec<u32>,
    /// Code for the right-hand side (Monte Carlo: the next state), after `t`, the state and the draws were
    /// written.
    pub rhs: Vec<Instr>,
    /// Registers holding `F` (Monte Carlo: `next`) after `rhs`.
    pub f: Vec<u32>,
    /// Code for the non-zero entries of the Jacobian ∂F/∂u, after `rhs` (it reads its results).
    pub jac: Vec<Instr>,
    /// `(row, column, register)` of each entry of ∂F/∂u that is not identically zero, after `jac`.
    pub jac_entries: Vec<(u32, u32, u32)>,
    /// Code for the outputs, after `t` and the state were written.
    pub out: Vec<Instr>,
    /// Registers holding the outputs after `out`.
    pub out_regs: Vec<u32>,
    /// `(row, column, register)` of each structurally non-zero entry of the mass matrix `M` of
    /// `M du/dt = F` (from `M_i` and `dudt_i`), whose registers hold the values after [`Program::start`]: `M`
    /// may depend on parameters, never on `t` or the state. Empty: `M` is the identity (no `M_i`).
    pub mass_entries: Vec<(u32, u32, u32)>,

    // Events (DiffSL's `N`, `stop` and `reset`; ODE models only, empty otherwise).
    /// The register of the model index `N`, when the model reads it: the runner writes the index there
    /// ([`Program::set_model_index`]) before running `rhs`, `out`, `stop` or `reset`; [`Program::start`]
    /// writes 0. Everything depending on it is dynamic code.
    pub model_index_reg: Option<u32>,
    /// Code for the stop functions, after `t`, the state and `N` were written (like `out`).
    pub stop: Vec<Instr>,
    /// Registers holding the stop functions after `stop`: an event is a zero of one of them.
    pub stop_regs: Vec<u32>,
    /// Code for the state after a reset, after `t`, the state before it and `N` were written.
    pub reset: Vec<Instr>,
    /// Registers holding the state after the reset (as many as states) after `reset`; empty without one.
    pub reset_regs: Vec<u32>,
    /// (With sensitivities.) Code for the stop functions' derivatives, after `stop`.
    pub dstop: Vec<Instr>,
    /// `(stop element, column, register)`: the non-zero derivatives of the stop functions after `dstop`,
    /// column `j < n` for the state `u_j`, `n + p` for the parameter `p`, `n + n_params` for `t`.
    pub dstop_entries: Vec<(u32, u32, u32)>,
    /// (With sensitivities.) Code for the reset's derivatives, after `reset`.
    pub dreset: Vec<Instr>,
    /// `(state, column, register)`: the non-zero derivatives of the reset after `dreset`, columns as
    /// `dstop_entries`'.
    pub dreset_entries: Vec<(u32, u32, u32)>,

    // The forward sensitivity equations' code (only with [`crate::compile_with_sensitivities`]).
    /// Whether the sections below were generated.
    pub sensitivities: bool,
    /// Parameter derivatives of parameter-level values: after `setup`, once per simulation.
    pub dsetup: Vec<Instr>,
    /// `(state, parameter, register)`: the non-zero ∂u0/∂p after `dsetup`.
    pub init_sens: Vec<(u32, u32, u32)>,
    /// Code for ∂F/∂p, after `rhs` and `jac`.
    pub pjac: Vec<Instr>,
    /// `(row, parameter, register)`: the non-zero entries of ∂F/∂p after `pjac`.
    pub pjac_entries: Vec<(u32, u32, u32)>,
    /// Code for the output derivatives, after `out`.
    pub dout: Vec<Instr>,
    /// `(output, state, register)`: the non-zero ∂out/∂u after `dout`.
    pub dout_dy: Vec<(u32, u32, u32)>,
    /// `(output, parameter, register)`: the non-zero ∂out/∂p after `dout`.
    pub dout_dp: Vec<(u32, u32, u32)>,

    // The tangent code (only with [`crate::system::Sensitivities::Tangent`]; `dsetup` and `init_sens` as
    // above): run once per parameter, it never forms ∂F/∂u.
    /// Whether the sections below were generated.
    pub tangent: bool,
    /// The tangent input register of each state: `∂u_j/∂p_k` for the parameter `k` being run.
    pub tan_state: Vec<u32>,
    /// The tangent input registers of the parameter-level values the dynamic code reads.
    pub tan_inputs: Vec<u32>,
    /// `(parameter, tangent input, register)`, sorted: the input's value for that parameter is the register's
    /// after `dsetup` (inputs not listed for a parameter are 0 for it).
    pub tan_seeds: Vec<(u32, u32, u32)>,
    /// Code for `Ḟ = ∂F/∂u·ṡ + ∂F/∂p_k`, after `rhs` and with the tangent inputs written.
    pub tan_rhs: Vec<Instr>,
    /// Registers holding `Ḟ` after `tan_rhs`.
    pub tan_f: Vec<u32>,
    /// Code for the outputs' tangents, after `out` and with the tangent inputs written.
    pub tan_out: Vec<Instr>,
    /// Registers holding the outputs' tangents after `tan_out`.
    pub tan_out_regs: Vec<u32>,

    /// The lookup tables the table operations read, shared by clones and the native code.
    pub tables: Arc<[LookupTable]>,

    /// Native code for `rhs`, `rhs` + `jac`, `out` and the sensitivity parts after [`Program::compile_native`],
    /// shared by clones (and threads). It gives the interpreter's results bit for bit.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) native: Option<std::sync::Arc<crate::jit::Native>>,
}

impl Program {
    pub const T: usize = 0;

    /// A program with no code yet, for the compilers to fill.
    pub(crate) fn new(n_states: usize, n_params: usize) -> Program {
        Program {
            n_states,
            n_params,
            n_regs: 1 + n_states + n_params,
            draws: Vec::new(),
            draw_regs: Vec::new(),
            consts: Vec::new(),
            setup: Vec::new(),
            init: Vec::new(),
            rhs: Vec::new(),
            f: Vec::new(),
            jac: Vec::new(),
            jac_entries: Vec::new(),
            out: Vec::new(),
            out_regs: Vec::new(),
            mass_entries: Vec::new(),
            model_index_reg: None,
            stop: Vec::new(),
            stop_regs: Vec::new(),
            reset: Vec::new(),
            reset_regs: Vec::new(),
            dstop: Vec::new(),
            dstop_entries: Vec::new(),
            dreset: Vec::new(),
            dreset_entries: Vec::new(),
            sensitivities: false,
            dsetup: Vec::new(),
            init_sens: Vec::new(),
            pjac: Vec::new(),
            pjac_entries: Vec::new(),
            dout: Vec::new(),
            dout_dy: Vec::new(),
            dout_dp: Vec::new(),
            tangent: false,
            tan_state: Vec::new(),
            tan_inputs: Vec::new(),
            tan_seeds: Vec::new(),
            tan_rhs: Vec::new(),
            tan_f: Vec::new(),
            tan_out: Vec::new(),
            tan_out_regs: Vec::new(),
            tables: Arc::from(Vec::new()),
            #[cfg(not(target_arch = "wasm32"))]
            native: None,
        }
    }

    pub fn state_reg(i: usize) -> usize {
        1 + i
    }

    pub fn param_reg(&self, i: usize) -> usize {
        1 + self.n_states + i
    }

    pub fn draw_reg(&self, i: usize) -> usize {
        1 + self.n_states + self.n_params + i
    }

    /// Drop code whose result nothing reads, then renumber the registers densely (after `t`, the state and
    /// the parameters, which keep their places, and the draw slots that are still read, which follow them
    /// in order) so the register file is as small as it can be.
    pub fn finish(&mut self) {
        let fixed = 1 + self.n_states + self.n_params;
        let mut live = vec![false; self.n_regs];
        live[..fixed].iter_mut().for_each(|l| *l = true);
        let event_regs = self.stop_regs.iter().chain(&self.reset_regs).chain(&self.model_index_reg);
        for &r in self.f.iter().chain(&self.out_regs).chain(&self.init).chain(event_regs) {
            live[r as usize] = true;
        }
        let entries = [
            &self.jac_entries,
            &self.mass_entries,
            &self.init_sens,
            &self.pjac_entries,
            &self.dout_dy,
            &self.dout_dp,
            &self.dstop_entries,
            &self.dreset_entries,
        ];
        for &(_, _, r) in entries.into_iter().flatten() {
            live[r as usize] = true;
        }
        let tangent_inputs = self.tan_state.iter().chain(&self.tan_inputs);
        for &r in self.tan_f.iter().chain(&self.tan_out_regs).chain(tangent_inputs) {
            live[r as usize] = true;
        }
        for &(_, _, r) in &self.tan_seeds {
            live[r as usize] = true;
        }
        // Derivative code reads the code it differentiates, and dynamic sections read parameter-level
        // results, so readers are swept first.
        sweep(&mut self.tan_rhs, &mut live);
        sweep(&mut self.tan_out, &mut live);
        sweep(&mut self.pjac, &mut live);
        sweep(&mut self.dout, &mut live);
        sweep(&mut self.dstop, &mut live);
        sweep(&mut self.dreset, &mut live);
        sweep(&mut self.jac, &mut live);
        sweep(&mut self.rhs, &mut live);
        sweep(&mut self.out, &mut live);
        sweep(&mut self.stop, &mut live);
        sweep(&mut self.reset, &mut live);
        sweep(&mut self.dsetup, &mut live);
        sweep(&mut self.setup, &mut live);
        self.consts.retain(|&(r, _)| live[r as usize]);
        self.fuse();
        // A draw nothing reads (e.g. in an unused tensor) is no slot: the runner need not draw it.
        let mut k = 0;
        self.draws.retain(|_| {
            k += 1;
            live[self.draw_regs[k - 1] as usize]
        });
        self.draw_regs.retain(|&r| live[r as usize]);

        let mut map = vec![u32::MAX; self.n_regs];
        let mut next = 0u32;
        let mut assign = |r: u32| {
            map[r as usize] = next;
            next += 1;
        };
        (0..fixed as u32).for_each(&mut assign);
        std::mem::take(&mut self.draw_regs).into_iter().for_each(&mut assign);
        self.consts.iter().for_each(|&(r, _)| assign(r));
        self.tan_state.iter().chain(&self.tan_inputs).chain(&self.model_index_reg).for_each(|&r| assign(r));
        let sections = [
            &mut self.setup,
            &mut self.rhs,
            &mut self.jac,
            &mut self.out,
            &mut self.dsetup,
            &mut self.pjac,
            &mut self.dout,
            &mut self.tan_rhs,
            &mut self.tan_out,
            &mut self.stop,
            &mut self.reset,
            &mut self.dstop,
            &mut self.dreset,
        ];
        sections.iter().flat_map(|s| s.iter()).for_each(|i| assign(i.dst));
        let m = |r: &mut u32| *r = map[*r as usize];
        for i in sections.into_iter().flatten() {
            for r in [&mut i.dst, &mut i.a, &mut i.b, &mut i.c] {
                m(r);
            }
            // `d` is a register only for the four-operand operations (a table index for table reads).
            if operand_count(i.op) == 4 {
                m(&mut i.d);
            }
        }
        self.consts.iter_mut().for_each(|(r, _)| m(r));
        self.init.iter_mut().chain(&mut self.f).chain(&mut self.out_regs).for_each(m);
        self.stop_regs.iter_mut().chain(&mut self.reset_regs).chain(&mut self.model_index_reg).for_each(m);
        let entries = [
            &mut self.jac_entries,
            &mut self.mass_entries,
            &mut self.init_sens,
            &mut self.pjac_entries,
            &mut self.dout_dy,
            &mut self.dout_dp,
            &mut self.dstop_entries,
            &mut self.dreset_entries,
        ];
        entries.into_iter().flatten().for_each(|(_, _, r)| m(r));
        self.tan_state.iter_mut().chain(&mut self.tan_inputs).for_each(m);
        self.tan_f.iter_mut().chain(&mut self.tan_out_regs).for_each(m);
        for (_, input, source) in &mut self.tan_seeds {
            m(input);
            m(source);
        }
        self.n_regs = next as usize;
    }

    /// Write constants and parameters, run the parameter-only code and read the initial state.
    pub fn start(&self, regs: &mut [f64], params: &[f64], y0: &mut [f64]) {
        for &(r, v) in &self.consts {
            regs[r as usize] = v;
        }
        let p0 = self.param_reg(0);
        regs[p0..p0 + self.n_params].copy_from_slice(params);
        self.set_model_index(regs, 0);
        run(&self.setup, regs, &self.tables);
        for (y, &r) in y0.iter_mut().zip(&self.init) {
            *y = regs[r as usize];
        }
    }

    /// The mass matrix's entries, in the order of [`Program::mass_entries`], after [`Program::start`].
    pub fn mass_values(&self, regs: &[f64], values: &mut [f64]) {
        for (v, &(_, _, r)) in values.iter_mut().zip(&self.mass_entries) {
            *v = regs[r as usize];
        }
    }

    /// Write the model index `N` (a no-op for a model that does not read it).
    pub fn set_model_index(&self, regs: &mut [f64], index: usize) {
        if let Some(r) = self.model_index_reg {
            regs[r as usize] = index as f64;
        }
    }

    /// The stop functions at `(t, y)` into `g` (as many as [`Program::stop_regs`]), with `N` as written.
    pub fn stop_values(&self, regs: &mut [f64], t: f64, y: &[f64], g: &mut [f64]) {
        self.load(regs, t, y);
        run(&self.stop, regs, &self.tables);
        for (g, &r) in g.iter_mut().zip(&self.stop_regs) {
            *g = regs[r as usize];
        }
    }

    /// The state after a reset at `(t, y)` into `y_new`, with `N` as written (already the new index).
    pub fn reset_state(&self, regs: &mut [f64], t: f64, y: &[f64], y_new: &mut [f64]) {
        self.load(regs, t, y);
        run(&self.reset, regs, &self.tables);
        for (v, &r) in y_new.iter_mut().zip(&self.reset_regs) {
            *v = regs[r as usize];
        }
    }

    /// (With sensitivities, after [`Program::start_sensitivities`].) The non-zero derivatives of the stop
    /// functions at `(t, y)` into `values`, in the order of [`Program::dstop_entries`].
    pub fn stop_derivatives(&self, regs: &mut [f64], t: f64, y: &[f64], values: &mut [f64]) {
        self.load(regs, t, y);
        run(&self.stop, regs, &self.tables);
        run(&self.dstop, regs, &self.tables);
        for (v, &(_, _, r)) in values.iter_mut().zip(&self.dstop_entries) {
            *v = regs[r as usize];
        }
    }

    /// (With sensitivities, after [`Program::start_sensitivities`].) The non-zero derivatives of the reset at
    /// `(t, y)` into `values`, in the order of [`Program::dreset_entries`].
    pub fn reset_derivatives(&self, regs: &mut [f64], t: f64, y: &[f64], values: &mut [f64]) {
        self.load(regs, t, y);
        run(&self.reset, regs, &self.tables);
        run(&self.dreset, regs, &self.tables);
        for (v, &(_, _, r)) in values.iter_mut().zip(&self.dreset_entries) {
            *v = regs[r as usize];
        }
    }

    /// Write `t` and the state into their registers.
    #[inline(always)]
    fn load(&self, regs: &mut [f64], t: f64, y: &[f64]) {
        let (rt, rest) = regs.split_first_mut().expect("the register file holds t");
        *rt = t;
        copy_small(&mut rest[..self.n_states], &y[..self.n_states]);
    }

    /// Compile the right-hand-side, Jacobian and output code to native code (once per model), which the
    /// evaluation methods then use. On failure (or on wasm32, where there is no JIT) the program keeps
    /// interpreting and the message says why.
    pub fn compile_native(&mut self) -> Result<(), String> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.native = Some(std::sync::Arc::new(crate::jit::compile(self)?));
            Ok(())
        }
        #[cfg(target_arch = "wasm32")]
        Err("no JIT on wasm32".into())
    }

    /// Whether the evaluation methods run native code.
    pub fn is_native(&self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        return self.native.is_some();
        #[cfg(target_arch = "wasm32")]
        false
    }

    /// Go back to the interpreter.
    pub fn drop_native(&mut self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.native = None;
        }
    }

    #[inline]
    pub fn rhs(&self, regs: &mut [f64], t: f64, y: &[f64], dy: &mut [f64]) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(n) = &self.native {
            return n.rhs(regs, t, y, dy);
        }
        self.rhs_interpreted(regs, t, y, dy);
    }

    /// [`Program::rhs`] by the interpreter, which leaves every result in its register (the derivative
    /// code reads them).
    #[inline]
    fn rhs_interpreted(&self, regs: &mut [f64], t: f64, y: &[f64], dy: &mut [f64]) {
        self.load(regs, t, y);
        run(&self.rhs, regs, &self.tables);
        for (d, &r) in dy.iter_mut().zip(&self.f) {
            *d = regs[r as usize];
        }
    }

    /// [`Program::rhs`] at a state computed as it is stored: each item of `values` goes into `y` and
    /// straight into its register. An integrator's stage state is stored element by element; copying the
    /// whole vector into the registers right after would read it back with wider loads, which wait for those
    /// stores to reach the cache (no store forwarding), and the evaluation would wait on them.
    #[inline]
    pub fn rhs_from(&self, regs: &mut [f64], t: f64, y: &mut [f64], values: impl Iterator<Item = f64>, dy: &mut [f64]) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(n) = &self.native {
            // The native code loads the state element by element, so it reads `y` as stored.
            y.iter_mut().zip(values).for_each(|(y, v)| *y = v);
            return n.rhs(regs, t, y, dy);
        }
        let (rt, rest) = regs.split_first_mut().expect("the register file holds t");
        *rt = t;
        for ((r, y), v) in rest[..self.n_states].iter_mut().zip(y.iter_mut()).zip(values) {
            *r = v;
            *y = v;
        }
        run(&self.rhs, regs, &self.tables);
        for (d, &r) in dy.iter_mut().zip(&self.f) {
            *d = regs[r as usize];
        }
    }

    /// Monte Carlo: the next state from the state `y` at period `t` and the draw slots' values.
    pub fn step(&self, regs: &mut [f64], t: f64, y: &[f64], draws: &[f64], next: &mut [f64]) {
        let d0 = self.draw_reg(0);
        regs[d0..d0 + self.draws.len()].copy_from_slice(draws);
        self.rhs(regs, t, y, next);
    }

    /// ∂F/∂u at `(t, y)` into `jac` (column-major `n × n`, as nalgebra stores it). Runs the right-hand-side
    /// code too, since the derivative code reads its results.
    pub fn jacobian(&self, regs: &mut [f64], t: f64, y: &[f64], jac: &mut [f64]) {
        self.load(regs, t, y);
        run(&self.rhs, regs, &self.tables);
        run(&self.jac, regs, &self.tables);
        jac.fill(0.0);
        let n = self.n_states;
        for &(i, j, r) in &self.jac_entries {
            jac[j as usize * n + i as usize] = regs[r as usize];
        }
    }

    /// The entries of ∂F/∂u at `(t, y)` in the order of [`Program::jac_entries`], into `values`: only the
    /// structural non-zeros, for solvers that store `J` to suit its pattern.
    pub fn jacobian_values(&self, regs: &mut [f64], t: f64, y: &[f64], values: &mut [f64]) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(n) = &self.native
            && n.jacobian_values(regs, t, y, values)
        {
            return;
        }
        self.load(regs, t, y);
        run(&self.rhs, regs, &self.tables);
        run(&self.jac, regs, &self.tables);
        for (v, &(_, _, r)) in values.iter_mut().zip(&self.jac_entries) {
            *v = regs[r as usize];
        }
    }

    /// After [`Program::start`]: the initial sensitivities `s0[p·n + k]` = ∂u0_k/∂p_p, for the first
    /// `s0.len() / n` parameters.
    pub fn start_sensitivities(&self, regs: &mut [f64], s0: &mut [f64]) {
        run(&self.dsetup, regs, &self.tables);
        s0.fill(0.0);
        for &(k, p, r) in &self.init_sens {
            if let Some(s) = s0.get_mut(p as usize * self.n_states + k as usize) {
                *s = regs[r as usize];
            }
        }
    }

    /// The right-hand side `dy = F(t, y)` and of the sensitivity equations, `ds_p = J s_p + ∂F/∂p_p`
    /// for every parameter `p` (`s` and `ds` hold one block of `n` per parameter). `work` is scratch space for
    /// the native code's results.
    #[allow(clippy::too_many_arguments)]
    pub fn sensitivity_rhs(
        &self,
        regs: &mut [f64],
        work: &mut Vec<f64>,
        t: f64,
        y: &[f64],
        s: &[f64],
        dy: &mut [f64],
        ds: &mut [f64],
    ) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(native) = &self.native {
            let (n, nj) = (self.n_states, self.jac_entries.len());
            work.resize(n + nj + self.pjac_entries.len(), 0.0);
            if native.sensitivity_parts(regs, t, y, work) {
                let (f, rest) = work.split_at(n);
                let (jac, pjac) = rest.split_at(nj);
                dy.copy_from_slice(f);
                return self.assemble_sensitivity_rhs(|k, _| jac[k], |k, _| pjac[k], s, ds);
            }
        }
        let _ = work;
        self.rhs_interpreted(regs, t, y, dy);
        run(&self.jac, regs, &self.tables);
        run(&self.pjac, regs, &self.tables);
        let regs = &*regs;
        self.assemble_sensitivity_rhs(|_, r| regs[r as usize], |_, r| regs[r as usize], s, ds);
    }

    /// `ds_p = J s_p + ∂F/∂p_p` from the values of the Jacobian's and ∂F/∂p's entries (given the entry's index
    /// and register), in one order whether they come from native code or the interpreter, so both give the same
    /// bits.
    #[inline]
    fn assemble_sensitivity_rhs(
        &self,
        jac: impl Fn(usize, u32) -> f64,
        pjac: impl Fn(usize, u32) -> f64,
        s: &[f64],
        ds: &mut [f64],
    ) {
        let n = self.n_states;
        ds.fill(0.0);
        for (k, &(i, p, r)) in self.pjac_entries.iter().enumerate() {
            ds[p as usize * n + i as usize] = pjac(k, r);
        }
        for (dsp, sp) in ds.chunks_exact_mut(n).zip(s.chunks_exact(n)) {
            for (k, &(i, j, r)) in self.jac_entries.iter().enumerate() {
                dsp[i as usize] += jac(k, r) * sp[j as usize];
            }
        }
    }

    /// The outputs and their parameter derivatives `dout[o·n_params + p]` = ∂out_o/∂u · s_p + ∂out_o/∂p_p
    /// at `(t, y)` with sensitivities `s`.
    pub fn sensitivity_outputs(
        &self,
        regs: &mut [f64],
        t: f64,
        y: &[f64],
        s: &[f64],
        out: &mut [f64],
        dout: &mut [f64],
    ) {
        let (n, np) = (self.n_states, self.n_params);
        self.outputs_interpreted(regs, t, y, out);
        run(&self.dout, regs, &self.tables);
        dout.fill(0.0);
        for &(o, p, r) in &self.dout_dp {
            dout[o as usize * np + p as usize] = regs[r as usize];
        }
        for &(o, j, r) in &self.dout_dy {
            let d = regs[r as usize];
            for (p, sp) in s.chunks_exact(n).enumerate() {
                dout[o as usize * np + p] += d * sp[j as usize];
            }
        }
    }

    /// Write the tangent inputs for parameter `k`: the state's tangent `s_k` and the parameter-level values'
    /// tangents (after [`Program::start_sensitivities`], whose `dsetup` computed them).
    fn load_tangents(&self, regs: &mut [f64], k: usize, s_k: &[f64]) {
        for (&r, &v) in self.tan_state.iter().zip(s_k) {
            regs[r as usize] = v;
        }
        for &r in &self.tan_inputs {
            regs[r as usize] = 0.0;
        }
        let k = k as u32;
        let from = self.tan_seeds.partition_point(|e| e.0 < k);
        for &(_, input, source) in self.tan_seeds[from..].iter().take_while(|e| e.0 == k) {
            regs[input as usize] = regs[source as usize];
        }
    }

    /// Tangent mode: `dy = F(t, y)` and, one parameter `p` at a time, `ds_p = ∂F/∂u·s_p + ∂F/∂p_p` by the
    /// tangent code, never forming ∂F/∂u. `s` and `ds` hold one block of `n` per parameter, for the program's
    /// first `ds.len() / n` parameters (a caller may want fewer than all). `work` is scratch space for the
    /// native code's results.
    #[allow(clippy::too_many_arguments)]
    pub fn tangent_rhs(
        &self,
        regs: &mut [f64],
        work: &mut Vec<f64>,
        t: f64,
        y: &[f64],
        s: &[f64],
        dy: &mut [f64],
        ds: &mut [f64],
    ) {
        let n = self.n_states;
        let np = ds.len().checked_div(n).unwrap_or(0).min(self.n_params);
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(native) = &self.native
            && let Some(keep) = native.tangent_keep()
        {
            // The right-hand side, keeping the values the tangent code reads in their registers.
            work.resize(n + keep.len(), 0.0);
            native.tangent_primal(regs, t, y, work);
            dy.copy_from_slice(&work[..n]);
            for (&r, &v) in keep.iter().zip(&work[n..]) {
                regs[r as usize] = v;
            }
            for k in 0..np {
                self.load_tangents(regs, k, &s[k * n..(k + 1) * n]);
                native.tangent(regs, t, y, &mut ds[k * n..(k + 1) * n]);
            }
            return;
        }
        let _ = work;
        self.rhs_interpreted(regs, t, y, dy);
        for k in 0..np {
            self.load_tangents(regs, k, &s[k * n..(k + 1) * n]);
            run(&self.tan_rhs, regs, &self.tables);
            for (d, &r) in ds[k * n..(k + 1) * n].iter_mut().zip(&self.tan_f) {
                *d = regs[r as usize];
            }
        }
    }

    /// Tangent mode: the outputs and their parameter derivatives `dout[o·np + p]`, by the outputs' tangent
    /// code once per parameter, for the program's first `np = dout.len() / n_outputs` parameters (`s` as in
    /// [`Program::tangent_rhs`]).
    pub fn tangent_outputs(&self, regs: &mut [f64], t: f64, y: &[f64], s: &[f64], out: &mut [f64], dout: &mut [f64]) {
        let n = self.n_states;
        let np = dout.len().checked_div(self.out_regs.len()).unwrap_or(0).min(self.n_params);
        self.outputs_interpreted(regs, t, y, out);
        for k in 0..np {
            self.load_tangents(regs, k, &s[k * n..(k + 1) * n]);
            run(&self.tan_out, regs, &self.tables);
            for (o, &r) in self.tan_out_regs.iter().enumerate() {
                dout[o * np + k] = regs[r as usize];
            }
        }
    }

    pub fn outputs(&self, regs: &mut [f64], t: f64, y: &[f64], out: &mut [f64]) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(n) = &self.native
            && n.outputs(regs, t, y, out)
        {
            return;
        }
        self.outputs_interpreted(regs, t, y, out);
    }

    /// [`Program::outputs`] by the interpreter, which leaves every result in its register.
    fn outputs_interpreted(&self, regs: &mut [f64], t: f64, y: &[f64], out: &mut [f64]) {
        if self.out.is_empty() {
            // Outputs that are states, `t` or parameter-level values (the usual `out_i { x, y }`): read them
            // where they are, without loading the state.
            let n = self.n_states;
            for (o, &r) in out.iter_mut().zip(&self.out_regs) {
                let r = r as usize;
                *o = match r {
                    Self::T => t,
                    _ if r <= n => y[r - 1],
                    _ => regs[r],
                };
            }
            return;
        }
        self.load(regs, t, y);
        run(&self.out, regs, &self.tables);
        for (o, &r) in out.iter_mut().zip(&self.out_regs) {
            *o = regs[r as usize];
        }
    }
}

impl Program {
    /// Fuse each product whose only reader is an addition or subtraction in the same section into that
    /// instruction (`MulAdd`, `MulSub`, `NegMulAdd`; `MulMulAdd`, `MulMulSub` when both operands are such
    /// products). The interpreter's cost is mostly one dispatch per
    /// instruction, and sums of products are what models are made of.
    fn fuse(&mut self) {
        let mut readers = vec![0u32; self.n_regs];
        let sections = [
            &mut self.setup,
            &mut self.dsetup,
            &mut self.rhs,
            &mut self.jac,
            &mut self.pjac,
            &mut self.out,
            &mut self.dout,
            &mut self.tan_rhs,
            &mut self.tan_out,
            &mut self.stop,
            &mut self.reset,
            &mut self.dstop,
            &mut self.dreset,
        ];
        for i in sections.iter().flat_map(|s| s.iter()) {
            for r in operands(i) {
                readers[r as usize] += 1;
            }
        }
        // Results read from outside the code stay.
        let entries = [
            &self.jac_entries,
            &self.init_sens,
            &self.pjac_entries,
            &self.dout_dy,
            &self.dout_dp,
            &self.dstop_entries,
            &self.dreset_entries,
        ];
        let event_regs = self.stop_regs.iter().chain(&self.reset_regs);
        for &r in self
            .f
            .iter()
            .chain(&self.out_regs)
            .chain(&self.init)
            .chain(event_regs)
            .chain(entries.into_iter().flatten().map(|e| &e.2))
        {
            readers[r as usize] += 2;
        }
        for &r in self.tan_f.iter().chain(&self.tan_out_regs).chain(self.tan_seeds.iter().map(|e| &e.2)) {
            readers[r as usize] += 2;
        }
        for code in sections {
            let mut product: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
            let mut dead = vec![false; code.len()];
            for k in 0..code.len() {
                let i = code[k];
                let single = |r: u32| readers[r as usize] == 1;
                let fused = match i.op {
                    Op::Add | Op::Sub => {
                        let pa = product.get(&i.a).copied().filter(|_| single(i.a));
                        let pb = product.get(&i.b).copied().filter(|_| single(i.b));
                        match (i.op, pa, pb) {
                            // p·q ± r·s: both products go.
                            (Op::Add, Some(ma), Some(mb)) => Some((ma, Some(mb), Op::MulMulAdd, 0)),
                            (Op::Sub, Some(ma), Some(mb)) => Some((ma, Some(mb), Op::MulMulSub, 0)),
                            // y ± p·q, preferring the second operand: c - a·b or a·b + c.
                            (Op::Add, _, Some(m)) => Some((m, None, Op::MulAdd, i.a)),
                            (Op::Sub, _, Some(m)) => Some((m, None, Op::NegMulAdd, i.a)),
                            (Op::Add, Some(m), None) => Some((m, None, Op::MulAdd, i.b)),
                            (Op::Sub, Some(m), None) => Some((m, None, Op::MulSub, i.b)),
                            _ => None,
                        }
                    }
                    Op::Mul => {
                        product.insert(i.dst, k);
                        None
                    }
                    _ => None,
                };
                match fused {
                    Some((m, None, op, c)) => {
                        let p = code[m];
                        code[k] = Instr { op, dst: i.dst, a: p.a, b: p.b, c, d: 0 };
                        dead[m] = true;
                    }
                    Some((ma, Some(mb), op, _)) => {
                        let (p, q) = (code[ma], code[mb]);
                        code[k] = Instr { op, dst: i.dst, a: p.a, b: p.b, c: q.a, d: q.b };
                        dead[ma] = true;
                        dead[mb] = true;
                    }
                    None => {}
                }
            }
            let mut k = 0;
            code.retain(|_| {
                k += 1;
                !dead[k - 1]
            });
        }
    }
}

/// `dst.copy_from_slice(src)`, as fixed-size moves for up to 8 values: models have few states, and the
/// `memcpy` call a copy of unknown length becomes costs more than the copy itself.
#[inline(always)]
fn copy_small(dst: &mut [f64], src: &[f64]) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match src.len() {
                $($n => {
                    let d: &mut [f64; $n] = dst.try_into().expect("same length");
                    *d = *<&[f64; $n]>::try_from(src).expect("same length");
                })*
                _ => dst.copy_from_slice(src),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8)
}

/// The registers an instruction reads.
fn operands(i: &Instr) -> impl Iterator<Item = u32> {
    [i.a, i.b, i.c, i.d].into_iter().take(operand_count(i.op))
}

/// How many operands an operation reads.
pub(crate) fn operand_count(op: Op) -> usize {
    match op {
        Op::MulMulAdd | Op::MulMulSub => 4,
        Op::Select | Op::If | Op::MulAdd | Op::MulSub | Op::NegMulAdd => 3,
        Op::LookupArea => 2,
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Pow
        | Op::Min
        | Op::Max
        | Op::Copysign
        | Op::Modulo
        | Op::NanElse
        | Op::Eq
        | Op::Ne
        | Op::Lt
        | Op::Le
        | Op::Gt
        | Op::Ge
        | Op::And
        | Op::Or => 2,
        _ => 1,
    }
}

/// The register fields an instruction holds (`a`, `b`, `c` always; `d` when it is an operand, not a table).
fn registers(i: &Instr) -> impl Iterator<Item = u32> {
    [i.a, i.b, i.c, i.d].into_iter().take(if operand_count(i.op) == 4 { 4 } else { 3 })
}

/// Remove the instructions of `code` whose result is not live, marking the operands of the rest live.
fn sweep(code: &mut Vec<Instr>, live: &mut [bool]) {
    let mut keep = vec![false; code.len()];
    for (k, i) in code.iter().enumerate().rev() {
        if live[i.dst as usize] {
            keep[k] = true;
            for r in registers(i) {
                live[r as usize] = true;
            }
        }
    }
    let mut k = 0;
    code.retain(|_| {
        k += 1;
        keep[k - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::Op::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn bits(v: f64) -> u64 {
        v.to_bits()
    }

    #[test]
    fn modulo_is_vensims_remainder_with_the_sign_of_the_dividend() {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        for (a, b, want) in [
            (5.0, 3.0, 2.0),
            (-10.0, 3.0, -1.0),
            (-3.0, 3.0, -0.0),
            (3.0, 3.0, 0.0),
            (5.0, -3.0, 2.0),
            (-5.0, -3.0, -2.0),
            (5.5, 2.0, 1.5),
            (-2.9, 3.0, -2.9),
            (3.0, inf, 3.0),
            (-3.0, -inf, -3.0),
        ] {
            assert_eq!(bits(Modulo.apply(a, b, 0.0, 0.0)), bits(want), "MODULO({a}, {b})");
        }
        for (a, b) in [(3.0, 0.0), (3.0, -0.0), (inf, 3.0), (nan, 3.0), (3.0, nan)] {
            assert!(Modulo.apply(a, b, 0.0, 0.0).is_nan(), "MODULO({a}, {b}) is NaN");
        }
    }

    #[test]
    fn comparisons_logic_and_choices_follow_the_agreed_truth_table() {
        let nan = f64::NAN;
        let t = |op: super::Op, a: f64, b: f64| op.apply(a, b, 0.0, 0.0);
        for op in [Eq, Lt, Le, Gt, Ge] {
            assert_eq!(t(op, nan, 1.0), 0.0, "{op:?} with NaN is false");
            assert_eq!(t(op, 1.0, nan), 0.0, "{op:?} with NaN is false");
        }
        assert_eq!((t(Ne, nan, nan), t(Ne, 1.0, 1.0), t(Eq, 0.0, -0.0)), (1.0, 0.0, 1.0));
        assert_eq!((t(Lt, 1.0, 2.0), t(Le, 2.0, 2.0), t(Gt, 2.0, 2.0), t(Ge, 2.0, 2.0)), (1.0, 1.0, 0.0, 1.0));
        // Operands are true when not 0: NaN is true, -0 false.
        assert_eq!((t(And, nan, 2.0), t(And, -0.0, 1.0), t(Or, 0.0, -0.0), t(Or, 0.0, nan)), (1.0, 0.0, 0.0, 1.0));
        assert_eq!((t(Not, 0.0, 0.0), t(Not, -0.0, 0.0), t(Not, nan, 0.0), t(Not, 3.0, 0.0)), (1.0, 1.0, 0.0, 0.0));
        assert_eq!(
            (If.apply(nan, 1.0, 2.0, 0.0), If.apply(-0.0, 1.0, 2.0, 0.0), If.apply(-3.0, 1.0, 2.0, 0.0)),
            (1.0, 2.0, 1.0)
        );
        assert_eq!((t(NanElse, nan, 4.0), t(NanElse, -0.0, 4.0)), (4.0, -0.0));
        assert_eq!(bits(t(NanElse, -0.0, 4.0)), bits(-0.0));
        assert_eq!((t(Trunc, -2.7, 0.0), t(Trunc, 2.7, 0.0)), (-2.0, 2.0));
        assert_eq!(bits(t(Trunc, -0.5, 0.0)), bits(-0.0));
        assert_eq!((t(Floor, -2.5, 0.0), t(Floor, 2.7, 0.0), t(Floor, -3.0, 0.0)), (-3.0, 2.0, -3.0));
        assert_eq!(bits(t(Floor, -0.0, 0.0)), bits(-0.0));
    }
}
