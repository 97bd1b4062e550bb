//! The compiled form of a model: straight-line register code over one flat `f64` register file.
//!
//! Every instruction writes a fresh register (no register reuse), so programs are plain SSA and each
//! result stays readable after its program ran.

/// One operation. Binary ops read `a` and `b`; unary ops read `a` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    Neg,
    Exp,
    Log,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Abs,
}

impl Op {
    pub fn is_commutative(self) -> bool {
        matches!(self, Op::Add | Op::Mul | Op::Min | Op::Max)
    }

    /// The one definition of each operation, shared by constant folding and the interpreter so that folded
    /// and run-time results are bit-identical.
    #[inline(always)]
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
            Op::Pow => a.powf(b),
            Op::Min => a.min(b),
            Op::Max => a.max(b),
            Op::Neg => -a,
            Op::Exp => a.exp(),
            Op::Log => a.ln(),
            Op::Sqrt => a.sqrt(),
            Op::Sin => a.sin(),
            Op::Cos => a.cos(),
            Op::Tan => a.tan(),
            Op::Sinh => a.sinh(),
            Op::Cosh => a.cosh(),
            Op::Tanh => a.tanh(),
            Op::Abs => a.abs(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instr {
    pub op: Op,
    pub dst: u32,
    pub a: u32,
    pub b: u32,
}

/// Run a program over the register file. Register indices were checked against the file's size when the
/// program was built, so indexing never fails for a register file of the model's size.
#[inline]
pub(crate) fn run(code: &[Instr], r: &mut [f64]) {
    for i in code {
        let a = r[i.a as usize];
        let b = r[i.b as usize];
        r[i.dst as usize] = i.op.apply(a, b);
    }
}

/// Everything `simulate` needs, with all names resolved to register indices.
///
/// Register layout: `0` is `t`, `1..=n_states` the state, then the parameters, then constants and
/// temporaries.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub n_states: usize,
    pub n_params: usize,
    pub n_regs: usize,
    /// Constant registers and their values, written before each simulation.
    pub consts: Vec<(u32, f64)>,
    /// Code depending on parameters only: run once per simulation.
    pub setup: Vec<Instr>,
    /// Registers holding the initial state after `setup`.
    pub init: Vec<u32>,
    /// Code for the right-hand side, after `t` and the state were written.
    pub rhs: Vec<Instr>,
    /// Registers holding `F` after `rhs`.
    pub f: Vec<u32>,
    /// Code for the outputs, after `t` and the state were written.
    pub out: Vec<Instr>,
    /// Registers holding the outputs after `out`.
    pub out_regs: Vec<u32>,
}

impl Program {
    pub const T: usize = 0;

    pub fn state_reg(i: usize) -> usize {
        1 + i
    }

    pub fn param_reg(&self, i: usize) -> usize {
        1 + self.n_states + i
    }

    /// Write constants and parameters, run the parameter-only code and read the initial state.
    pub fn start(&self, regs: &mut [f64], params: &[f64], y0: &mut [f64]) {
        for &(r, v) in &self.consts {
            regs[r as usize] = v;
        }
        let p0 = self.param_reg(0);
        regs[p0..p0 + self.n_params].copy_from_slice(params);
        run(&self.setup, regs);
        for (y, &r) in y0.iter_mut().zip(&self.init) {
            *y = regs[r as usize];
        }
    }

    #[inline]
    pub fn rhs(&self, regs: &mut [f64], t: f64, y: &[f64], dy: &mut [f64]) {
        regs[Self::T] = t;
        regs[1..1 + self.n_states].copy_from_slice(y);
        run(&self.rhs, regs);
        for (d, &r) in dy.iter_mut().zip(&self.f) {
            *d = regs[r as usize];
        }
    }

    pub fn outputs(&self, regs: &mut [f64], t: f64, y: &[f64], out: &mut [f64]) {
        regs[Self::T] = t;
        regs[1..1 + self.n_states].copy_from_slice(y);
        run(&self.out, regs);
        for (o, &r) in out.iter_mut().zip(&self.out_regs) {
            *o = regs[r as usize];
        }
    }
}
