//! From syntax tree to [`Program`]: check which tensors exist, resolve names to registers, fold constants,
//! and split the code by what it depends on (parameters only → run once per simulation; `t` or the state
//! → run at every right-hand-side evaluation).

use std::collections::HashMap;

use crate::eval::{Instr, Op, Program};
use crate::lexer::{Located, Pos};
use crate::parser::{Ast, BinOp, Element, Expr, Func, Tensor};

/// A compiled model with the names the spec needs.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub program: Program,
    pub params: Vec<(String, f64)>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Def {
    Param(usize),
    State(usize),
    Scalar(usize),
}

/// When a value can be known. Ordered: combining values takes the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Param,
    Dynamic,
}

#[derive(Debug, Clone, Copy)]
enum Val {
    Const(f64),
    Reg(u32, Level),
}

impl Val {
    fn level(self) -> Option<Level> {
        match self {
            Val::Const(_) => None,
            Val::Reg(_, l) => Some(l),
        }
    }
}

/// The tensors of a model, sorted by role.
#[derive(Default)]
struct Roles<'a> {
    in_i: Option<&'a Tensor>,
    u_i: Option<&'a Tensor>,
    f_i: Option<&'a Tensor>,
    out_i: Option<&'a Tensor>,
    scalars: Vec<(&'a str, &'a Element, Pos)>,
}

fn classify(ast: &Ast) -> Result<Roles<'_>, Located> {
    let mut roles = Roles::default();
    for t in &ast.tensors {
        let (base, index) = match t.name.split_once('_') {
            Some((b, i)) => (b, Some(i)),
            None => (t.name.as_str(), None),
        };
        if let Some(ix) = index
            && (ix.is_empty() || !ix.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(Located::new(
                t.pos,
                format!("invalid tensor name '{}': '_' may only introduce index letters, as in 'u_i'", t.name),
            ));
        }
        let slot = match (base, index) {
            (_, Some(ix)) if ix.len() > 1 => {
                return Err(Located::new(
                    t.pos,
                    format!(
                        "{}-D tensor '{}' is not supported (only scalars and the vectors in_i, u_i, F_i, out_i)",
                        ix.len(),
                        t.name
                    ),
                ));
            }
            ("dudt", Some(_)) => {
                return Err(Located::new(
                    t.pos,
                    format!(
                        "'{}' is not supported: only explicit ODEs du/dt = F(u, t) (no dudt_i, no mass matrix M_i)",
                        t.name
                    ),
                ));
            }
            ("M", Some(_)) => {
                return Err(Located::new(
                    t.pos,
                    format!("mass matrix '{}' is not supported: only explicit ODEs du/dt = F(u, t)", t.name),
                ));
            }
            ("stop", Some(_)) => {
                return Err(Located::new(t.pos, format!("stop conditions '{}' are not supported", t.name)));
            }
            ("in", Some(_)) => &mut roles.in_i,
            ("u", Some(_)) => &mut roles.u_i,
            ("F", Some(_)) => &mut roles.f_i,
            ("out", Some(_)) => &mut roles.out_i,
            (_, Some(_)) => {
                return Err(Located::new(
                    t.pos,
                    format!(
                        "vector tensor '{}' is not supported (only in_i, u_i, F_i and out_i may be vectors)",
                        t.name
                    ),
                ));
            }
            ("in" | "u" | "F" | "out" | "dudt" | "M" | "stop", None) => {
                return Err(Located::new(
                    t.pos,
                    format!("'{0}' is a vector: write it with its index, as '{0}_i'", t.name),
                ));
            }
            (_, None) => {
                let [el] = t.elements.as_slice() else {
                    return Err(Located::new(
                        t.pos,
                        format!(
                            "tensor '{}' has {} elements: only scalars (exactly one element) are supported besides in_i, u_i, F_i and out_i",
                            t.name,
                            t.elements.len()
                        ),
                    ));
                };
                if let Some((_, p)) = &el.name {
                    return Err(Located::new(*p, format!("the element of scalar '{}' cannot be named", t.name)));
                }
                roles.scalars.push((t.name.as_str(), el, t.pos));
                continue;
            }
        };
        if let Some(first) = slot {
            return Err(Located::new(
                t.pos,
                format!("'{}' is defined twice (first at {}:{})", t.name, first.pos.line, first.pos.col),
            ));
        }
        *slot = Some(t);
    }
    Ok(roles)
}

pub(crate) fn compile(ast: &Ast) -> Result<Compiled, Located> {
    let roles = classify(ast)?;
    let u_i = roles.u_i.ok_or_else(|| Located::new(ast.end, "the model has no state tensor 'u_i'"))?;
    let f_i = roles.f_i.ok_or_else(|| Located::new(ast.end, "the model has no right-hand side 'F_i'"))?;
    if u_i.elements.is_empty() {
        return Err(Located::new(u_i.pos, "'u_i' has no states"));
    }
    if f_i.elements.len() != u_i.elements.len() {
        return Err(Located::new(
            f_i.pos,
            format!("'{}' has {} elements but 'u_i' has {} states", f_i.name, f_i.elements.len(), u_i.elements.len()),
        ));
    }

    let mut names: HashMap<&str, (Def, Pos)> = HashMap::new();
    // Parameters with the expressions of their defaults.
    let mut params: Vec<(&str, &Expr, Pos)> = Vec::new();
    let mut scalars = roles.scalars;
    match (roles.in_i, &ast.inputs) {
        (Some(_), Some(list)) => {
            return Err(Located::new(list.pos, "inputs are declared both by 'in_i { … }' and 'in = [ … ]'; use one"));
        }
        (Some(t), None) => {
            for el in &t.elements {
                let Some((name, pos)) = &el.name else {
                    return Err(Located::new(
                        el.pos,
                        "each element of 'in_i' needs a name and a default, as 'alpha = 1.1'",
                    ));
                };
                params.push((name.as_str(), &el.expr, *pos));
            }
        }
        (None, Some(list)) => {
            for (name, pos) in &list.names {
                // The scalar definition gives the default; the parameter replaces it.
                let Some(k) = scalars.iter().position(|(n, _, _)| n == name) else {
                    if params.iter().any(|(n, _, _)| n == name) {
                        return Err(Located::new(*pos, format!("input '{name}' is listed twice in 'in'")));
                    }
                    return Err(Located::new(
                        *pos,
                        format!("input '{name}' has no definition: add '{name} {{ <default> }}'"),
                    ));
                };
                let (_, el, _) = scalars.remove(k);
                params.push((name.as_str(), &el.expr, *pos));
            }
        }
        (None, None) => {}
    }
    for (i, (name, _, pos)) in params.iter().enumerate() {
        define(&mut names, name, Def::Param(i), *pos)?;
    }
    let mut state_names = Vec::new();
    for (i, el) in u_i.elements.iter().enumerate() {
        let Some((name, pos)) = &el.name else {
            return Err(Located::new(el.pos, "each state in 'u_i' needs a name, as 'x = <initial value>'"));
        };
        define(&mut names, name, Def::State(i), *pos)?;
        state_names.push(name.as_str());
    }
    for (i, (name, _, pos)) in scalars.iter().enumerate() {
        define(&mut names, name, Def::Scalar(i), *pos)?;
    }

    let n_states = u_i.elements.len();
    let mut g = Gen {
        names,
        scalars: scalars.iter().map(|(n, el, _)| (*n, &el.expr)).collect(),
        n_regs: (1 + n_states + params.len()) as u32,
        n_states,
        const_regs: HashMap::new(),
        consts: Vec::new(),
        setup: Vec::new(),
        setup_cse: HashMap::new(),
        dynamic: Vec::new(),
        dynamic_cse: HashMap::new(),
        scalar_static: vec![None; scalars.len()],
        scalar_dynamic: vec![None; scalars.len()],
        visiting: Vec::new(),
    };

    let mut defaults = Vec::new();
    for (name, expr, pos) in &params {
        match g.expr(expr)? {
            Val::Const(v) => defaults.push((name.to_string(), v)),
            Val::Reg(..) => {
                return Err(Located::new(*pos, format!("the default of input '{name}' must be a constant expression")));
            }
        }
    }
    let mut init = Vec::new();
    for (el, name) in u_i.elements.iter().zip(&state_names) {
        let v = g.expr(&el.expr)?;
        if v.level() == Some(Level::Dynamic) {
            return Err(Located::new(
                el.expr_pos,
                format!("the initial value of state '{name}' depends on t or the state, which is not supported"),
            ));
        }
        init.push(g.reg(v));
    }
    g.take_dynamic(); // anything dynamic above was rejected; drop it

    let mut f = Vec::new();
    for el in &f_i.elements {
        let v = g.expr(&el.expr)?;
        f.push(g.reg(v));
    }
    let rhs = g.take_dynamic();

    let mut outputs = Vec::new();
    let mut out_regs = Vec::new();
    match roles.out_i {
        Some(t) => {
            for (k, el) in t.elements.iter().enumerate() {
                let name = match (&el.name, &el.expr) {
                    (Some((n, _)), _) => n.clone(),
                    (None, Expr::Name(n, _)) => n.clone(),
                    (None, _) => format!("out_{k}"),
                };
                if outputs.contains(&name) {
                    return Err(Located::new(el.pos, format!("duplicate output name '{name}'")));
                }
                outputs.push(name);
                let v = g.expr(&el.expr)?;
                out_regs.push(g.reg(v));
            }
        }
        None => {
            outputs = state_names.iter().map(|s| s.to_string()).collect();
            out_regs = (0..n_states).map(|i| Program::state_reg(i) as u32).collect();
        }
    }
    let out = g.take_dynamic();

    // Check the scalars nothing used (unknown names, cycles), then forget the code that produced.
    let (setup_len, consts_len, n_regs) = (g.setup.len(), g.consts.len(), g.n_regs);
    for (i, (_, _, pos)) in scalars.iter().enumerate() {
        if g.scalar_static[i].is_none() {
            g.scalar(i, *pos)?;
        }
    }
    g.setup.truncate(setup_len);
    g.consts.truncate(consts_len);

    let program = Program {
        n_states,
        n_params: params.len(),
        n_regs: n_regs as usize,
        consts: g.consts,
        setup: g.setup,
        init,
        rhs,
        f,
        out,
        out_regs,
    };
    Ok(Compiled { program, params: defaults, outputs })
}

fn define<'a>(names: &mut HashMap<&'a str, (Def, Pos)>, name: &'a str, def: Def, pos: Pos) -> Result<(), Located> {
    if name == "t" {
        return Err(Located::new(pos, "'t' is reserved for time"));
    }
    if let Some((_, first)) = names.get(name) {
        return Err(Located::new(pos, format!("'{name}' is defined twice (first at {}:{})", first.line, first.col)));
    }
    names.insert(name, (def, pos));
    Ok(())
}

type CseKey = (Op, u32, u32);

struct Gen<'a> {
    names: HashMap<&'a str, (Def, Pos)>,
    scalars: Vec<(&'a str, &'a Expr)>,
    n_regs: u32,
    n_states: usize,
    /// Constant registers by the bits of their value.
    const_regs: HashMap<u64, u32>,
    consts: Vec<(u32, f64)>,
    setup: Vec<Instr>,
    setup_cse: HashMap<CseKey, u32>,
    /// The program being built for the current dynamic section (right-hand side or outputs).
    dynamic: Vec<Instr>,
    dynamic_cse: HashMap<CseKey, u32>,
    /// Scalars already generated: parameter-level ones live for the whole model, dynamic ones for the
    /// current dynamic section only.
    scalar_static: Vec<Option<Val>>,
    scalar_dynamic: Vec<Option<Val>>,
    visiting: Vec<usize>,
}

impl<'a> Gen<'a> {
    fn fresh(&mut self) -> u32 {
        let r = self.n_regs;
        self.n_regs += 1;
        r
    }

    /// The register holding a value, making a constant register if needed.
    fn reg(&mut self, v: Val) -> u32 {
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
    fn take_dynamic(&mut self) -> Vec<Instr> {
        self.dynamic_cse.clear();
        self.scalar_dynamic.iter_mut().for_each(|s| *s = None);
        std::mem::take(&mut self.dynamic)
    }

    /// Emit `op(a, b)` (unary ops pass `b = a`): folded when constant, shared when already computed.
    fn op(&mut self, op: Op, a: Val, b: Val) -> Val {
        if let (Val::Const(x), Val::Const(y)) = (a, b) {
            return Val::Const(op.apply(x, y));
        }
        let level = a.level().max(b.level()).unwrap_or(Level::Param);
        let (mut ra, mut rb) = (self.reg(a), self.reg(b));
        if op.is_commutative() && ra > rb {
            std::mem::swap(&mut ra, &mut rb);
        }
        let key = (op, ra, rb);
        let cached = match level {
            Level::Param => self.setup_cse.get(&key),
            Level::Dynamic => self.dynamic_cse.get(&key),
        };
        if let Some(&r) = cached {
            return Val::Reg(r, level);
        }
        let dst = self.fresh();
        let instr = Instr { op, dst, a: ra, b: rb };
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

    fn expr(&mut self, e: &'a Expr) -> Result<Val, Located> {
        Ok(match e {
            Expr::Num(v) => Val::Const(*v),
            Expr::Name(name, pos) => self.name(name, *pos)?,
            Expr::Neg(x) => {
                let x = self.expr(x)?;
                self.op(Op::Neg, x, x)
            }
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                let op = match op {
                    BinOp::Add => Op::Add,
                    BinOp::Sub => Op::Sub,
                    BinOp::Mul => Op::Mul,
                    BinOp::Div => Op::Div,
                };
                self.op(op, a, b)
            }
            Expr::Call(func, args) => {
                let a = self.expr(&args[0])?;
                let b = match args.get(1) {
                    Some(b) => self.expr(b)?,
                    None => a,
                };
                let op = match func {
                    Func::Exp => Op::Exp,
                    Func::Log => Op::Log,
                    Func::Sqrt => Op::Sqrt,
                    Func::Sin => Op::Sin,
                    Func::Cos => Op::Cos,
                    Func::Tan => Op::Tan,
                    Func::Sinh => Op::Sinh,
                    Func::Cosh => Op::Cosh,
                    Func::Tanh => Op::Tanh,
                    Func::Abs => Op::Abs,
                    Func::Min => Op::Min,
                    Func::Max => Op::Max,
                    // A square is common in models and a multiply is much cheaper than `powf`.
                    Func::Pow if matches!(b, Val::Const(e) if e == 2.0) => return Ok(self.op(Op::Mul, a, a)),
                    Func::Pow => Op::Pow,
                };
                self.op(op, a, b)
            }
        })
    }

    fn name(&mut self, name: &str, pos: Pos) -> Result<Val, Located> {
        if name == "t" {
            return Ok(Val::Reg(Program::T as u32, Level::Dynamic));
        }
        match self.names.get(name) {
            None => Err(Located::new(pos, format!("unknown name '{name}'"))),
            Some(&(Def::Param(i), _)) => Ok(Val::Reg((1 + self.n_states + i) as u32, Level::Param)),
            Some(&(Def::State(i), _)) => Ok(Val::Reg(Program::state_reg(i) as u32, Level::Dynamic)),
            Some(&(Def::Scalar(i), _)) => self.scalar(i, pos),
        }
    }

    /// A named scalar, generated once per section where it is used (so definition order does not matter).
    fn scalar(&mut self, i: usize, pos: Pos) -> Result<Val, Located> {
        if let Some(v) = self.scalar_static[i].or(self.scalar_dynamic[i]) {
            return Ok(v);
        }
        if let Some(k) = self.visiting.iter().position(|&j| j == i) {
            let mut chain: Vec<&str> = self.visiting[k..].iter().map(|&j| self.scalars[j].0).collect();
            chain.push(self.scalars[i].0);
            return Err(Located::new(pos, format!("circular definition: {}", chain.join(" -> "))));
        }
        self.visiting.push(i);
        let v = self.expr(self.scalars[i].1);
        self.visiting.pop();
        let v = v?;
        match v.level() {
            Some(Level::Dynamic) => self.scalar_dynamic[i] = Some(v),
            _ => self.scalar_static[i] = Some(v),
        }
        Ok(v)
    }
}
