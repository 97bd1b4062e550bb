//! The register-code builder every compiler shares: constant folding, shared subexpressions and the split
//! into parameter-level code (run once per simulation) and dynamic sections. The DiffSL compiler
//! (`compile.rs`) and the [`System`](crate::system::System) compiler (`system.rs`) drive it; `derive.rs`
//! adds the symbolic derivatives of the code it builds.

use std::collections::HashMap;

use crate::eval::{Instr, Op};
use crate::lookup::LookupTable;

/// When a value can be known. Ordered: combining values takes the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Param,
    Dynamic,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Val {
    Const(f64),
    Reg(u32, Level),
}

impl Val {
    pub fn level(self) -> Option<Level> {
        match self {
            Val::Const(_) => None,
            Val::Reg(_, l) => Some(l),
        }
    }
}

type CseKey = (Op, u32, u32, u32, u32);

/// Register code under construction. Register layout as [`Program`](crate::Program)'s: `t`, the state, the parameters, then
/// whatever the compiler allocates.
pub(crate) struct Emitter {
    pub n_states: usize,
    pub n_regs: u32,
    /// Constant registers by the bits of their value.
    const_regs: HashMap<u64, u32>,
    pub consts: Vec<(u32, f64)>,
    /// Parameter-level code, in order.
    pub setup: Vec<Instr>,
    setup_cse: HashMap<CseKey, u32>,
    /// The code being built for the current dynamic section (right-hand side or outputs).
    pub dynamic: Vec<Instr>,
    dynamic_cse: HashMap<CseKey, u32>,
    /// The lookup tables table operations read (by their `d` field).
    pub tables: Vec<LookupTable>,
    /// The register of DiffSL's model index `N`, made on first use: an input the runner writes (0 at the
    /// start, the stop element's index after a reset), so everything reading it is dynamic code.
    pub model_index: Option<u32>,
}

impl Emitter {
    /// An emitter for a program of `n_states` states and `n_params` parameters.
    pub fn new(n_states: usize, n_params: usize, tables: Vec<LookupTable>) -> Emitter {
        Emitter {
            n_states,
            n_regs: (1 + n_states + n_params) as u32,
            const_regs: HashMap::new(),
            consts: Vec::new(),
            setup: Vec::new(),
            setup_cse: HashMap::new(),
            dynamic: Vec::new(),
            dynamic_cse: HashMap::new(),
            tables,
            model_index: None,
        }
    }

    /// The model index `N` as a value: a dynamic input register (never hoisted into parameter-level code).
    pub fn model_index(&mut self) -> Val {
        let r = match self.model_index {
            Some(r) => r,
            None => {
                let r = self.fresh();
                self.model_index = Some(r);
                r
            }
        };
        Val::Reg(r, Level::Dynamic)
    }

    pub fn fresh(&mut self) -> u32 {
        let r = self.n_regs;
        self.n_regs += 1;
        r
    }

    /// The register holding a value, making a constant register if needed.
    pub fn reg(&mut self, v: Val) -> u32 {
        match v {
            Val::Reg(r, _) => r,
            Val::Const(c) => {
                if let Some(&r) = self.const_regs.get(&c.to_bits()) {
                    return r;
                }
                let r = self.fresh();
                self.const_regs.insert(c.to_bits(), r);
                self.consts.push((r, c));
                r
            }
        }
    }

    /// Finish the current dynamic section and start a new one.
    pub fn take_dynamic(&mut self) -> Vec<Instr> {
        self.dynamic_cse.clear();
        std::mem::take(&mut self.dynamic)
    }

    /// Emit `op(a, b, c)` (unary ops pass `b = c = a`, binary ones `c = a`): folded when constant, shared
    /// when already computed.
    pub fn op3(&mut self, op: Op, a: Val, b: Val, c: Val) -> Val {
        self.emit(op, a, b, c, 0)
    }

    /// Read table `table` with a table operation (`Lookup`, `LookupSlope` at `x`; `LookupArea` from `x`
    /// to `y`; pass `y = x` otherwise).
    pub fn table_op(&mut self, op: Op, table: u32, x: Val, y: Val) -> Val {
        self.emit(op, x, y, x, table)
    }

    /// [`Emitter::op3`] with the fourth field `d` (a lookup's table).
    fn emit(&mut self, op: Op, a: Val, b: Val, c: Val, d: u32) -> Val {
        if let (Val::Const(x), Val::Const(y), Val::Const(z)) = (a, b, c) {
            return Val::Const(match self.tables.get(d as usize) {
                Some(table) if op.reads_table() => table.apply(op, x, y),
                _ => op.apply(x, y, z, 0.0),
            });
        }
        let level = a.level().max(b.level()).max(c.level()).unwrap_or(Level::Param);
        let (mut ra, mut rb, rc) = (self.reg(a), self.reg(b), self.reg(c));
        if op.is_commutative() && ra > rb {
            std::mem::swap(&mut ra, &mut rb);
        }
        let key = (op, ra, rb, rc, d);
        let cached = match level {
            Level::Param => self.setup_cse.get(&key),
            Level::Dynamic => self.dynamic_cse.get(&key),
        };
        if let Some(&r) = cached {
            return Val::Reg(r, level);
        }
        let dst = self.fresh();
        let instr = Instr { op, dst, a: ra, b: rb, c: rc, d };
        match level {
            Level::Param => {
                self.setup.push(instr);
                self.setup_cse.insert(key, dst);
            }
            Level::Dynamic => {
                self.dynamic.push(instr);
                self.dynamic_cse.insert(key, dst);
            }
        }
        Val::Reg(dst, level)
    }

    pub fn op(&mut self, op: Op, a: Val, b: Val) -> Val {
        // For a unary op `b == a`, so `c = a` adds no new operand.
        self.op3(op, a, b, a)
    }

    /// `a^e` as multiplications for the small whole exponents models use (`pow(x, 2)` …), which are much
    /// cheaper than `powf` and agree with it to rounding; `None` for other exponents.
    pub fn small_power(&mut self, a: Val, e: f64) -> Option<Val> {
        match e {
            2.0 => Some(self.op(Op::Mul, a, a)),
            3.0 => {
                let sq = self.op(Op::Mul, a, a);
                Some(self.op(Op::Mul, sq, a))
            }
            4.0 => {
                let sq = self.op(Op::Mul, a, a);
                Some(self.op(Op::Mul, sq, sq))
            }
            _ => None,
        }
    }

    /// Let the code being generated reuse the results of `code`, a dynamic section that runs before it
    /// (derivative code reads what the code it differentiates already computed, e.g. `exp(x)`).
    pub fn share(&mut self, code: &[Instr]) {
        for i in code {
            self.dynamic_cse.insert((i.op, i.a, i.b, i.c, i.d), i.dst);
        }
    }
}
