//! From parsed equations to a [`Program`]: classify variables, order them by dependency, and lower the
//! expressions to register code.
//!
//! - Literal constants (`x = 0.05`) become parameters; `INITIAL TIME`, `FINAL TIME`, `TIME STEP` and
//!   `SAVEPER` are the run's control values (constants of the program, not parameters).
//! - `INTEG` equations are stocks; everything else is an auxiliary (flows included).
//! - Code is split by what it depends on: pure-literal subexpressions are folded now, parameter-only ones
//!   run once per simulation (`setup`), stocks' initial values once (`init`), and the rest every time the
//!   rates are evaluated (`step`). Folding and hoisting never reorder arithmetic, so results stay
//!   bit-identical to evaluating each expression as written.

use std::collections::HashMap;

use crate::eval::{Code, Op, Reg, batch, binary, select, unary};
use crate::expr::{BinOp, Expr};
use crate::lexer::Located;
use crate::parser::{Equation, Rhs};

/// The run's time settings from the `.Control` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Control {
    pub initial_time: f64,
    pub final_time: f64,
    pub time_step: f64,
    /// How often Vensim saves output; informational (outputs are taken at the requested times).
    pub saveper: f64,
}

/// Register layout: `[time][params][inputs][stocks][constants and temporaries]`.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub n_regs: usize,
    pub n_params: usize,
    pub n_stocks: usize,
    /// Constant registers and their values, written before each run.
    pub consts: Vec<(Reg, f64)>,
    /// Parameter-only code.
    pub setup: Code,
    /// Stocks' starting values (inputs, or the file's initial expressions where an input is NaN).
    pub init: Code,
    /// Auxiliaries and rates from time and stocks, batched (see [`crate::eval::batch`]).
    pub step: Code,
    /// Where `step` leaves the stocks' net rates: `rate_base..rate_base + n_stocks`, above the stocks.
    pub rate_base: usize,
    /// Where each output is after `step`: the stocks, then the auxiliaries.
    pub out_regs: Vec<Reg>,
}

pub(crate) const TIME_REG: Reg = 0;

impl Program {
    pub fn param_reg(&self, i: usize) -> usize {
        1 + i
    }
    pub fn input_reg(&self, i: usize) -> usize {
        1 + self.n_params + i
    }
    pub fn stock_reg(&self, i: usize) -> usize {
        1 + self.n_params + self.n_stocks + i
    }
}

/// What `compile` produces besides the program: the names behind the registers.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub program: Program,
    pub control: Control,
    /// Constants: (name as written, value).
    pub params: Vec<(String, f64)>,
    pub stocks: Vec<String>,
    /// Stocks, then auxiliaries, in file order.
    pub outputs: Vec<String>,
}

const CONTROL: [&str; 4] = ["initial time", "final time", "time step", "saveper"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sym {
    Time,
    Control(f64),
    Param(usize),
    Stock(usize),
    Aux(usize),
}

/// What a value depends on, loosest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Param,
    Dynamic,
}

/// A compiled value: known now, or in a register.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Const(f64),
    Reg(Reg, Level),
}

pub(crate) fn compile(equations: &[Equation]) -> Result<Compiled, Located> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, e) in equations.iter().enumerate() {
        if e.key == "time" {
            return Err(Located::new(e.at, "'Time' is built in and cannot be defined"));
        }
        if let Some(&first) = index.get(e.key.as_str()) {
            let prev = &equations[first];
            return Err(Located::new(
                e.at,
                format!(
                    "'{}' is defined twice (also as '{}'; names ignore case, spaces and underscores)",
                    e.name, prev.name
                ),
            ));
        }
        index.insert(&e.key, i);
    }

    let control = control(equations, &index)?;

    // Classify the rest.
    let mut syms: HashMap<&str, Sym> = HashMap::new();
    syms.insert("time", Sym::Time);
    let mut params = Vec::new();
    let mut stocks: Vec<(&Equation, &Expr, &Expr)> = Vec::new();
    let mut auxes: Vec<(&Equation, &Expr)> = Vec::new();
    for e in equations {
        if let Some(k) = CONTROL.iter().position(|c| *c == e.key) {
            let v = [control.initial_time, control.final_time, control.time_step, control.saveper][k];
            syms.insert(&e.key, Sym::Control(v));
            continue;
        }
        match &e.rhs {
            Rhs::Stock { rate, init } => {
                syms.insert(&e.key, Sym::Stock(stocks.len()));
                stocks.push((e, rate, init));
            }
            Rhs::Expr(x) => match x.as_literal() {
                Some(v) => {
                    syms.insert(&e.key, Sym::Param(params.len()));
                    params.push((e.name.clone(), v));
                }
                None => {
                    syms.insert(&e.key, Sym::Aux(auxes.len()));
                    auxes.push((e, x));
                }
            },
        }
    }

    // Every reference must name something.
    let mut unknown = None;
    let mut check = |x: &Expr| {
        x.visit_vars(&mut |key, at| {
            if unknown.is_none() && !syms.contains_key(key) {
                unknown = Some(Located::new(at, format!("unknown variable '{key}'")));
            }
        })
    };
    for (_, rate, init) in &stocks {
        check(rate);
        check(init);
    }
    for (_, x) in &auxes {
        check(x);
    }
    if let Some(e) = unknown {
        return Err(e);
    }

    let deps = |x: &Expr| {
        let mut v = Vec::new();
        x.visit_vars(&mut |key, _| v.push(syms[key]));
        v
    };

    // Auxiliaries in dependency order (stocks, time and parameters are given), and what each depends on.
    let aux_deps: Vec<Vec<Sym>> = auxes.iter().map(|(_, x)| deps(x)).collect();
    let aux_order = order(
        auxes.len(),
        |i| aux_deps[i].iter().filter_map(|s| aux_of(*s)).collect(),
        |cycle| {
            let names: Vec<&str> = cycle.iter().map(|&i| auxes[i].0.name.as_str()).collect();
            Located::new(
                auxes[cycle[0]].0.at,
                format!("circular definition without a stock (INTEG) to break it: {}", names.join(" -> ")),
            )
        },
    )?;
    let mut dynamic = vec![false; auxes.len()];
    for &i in &aux_order {
        dynamic[i] = aux_deps[i].iter().any(|s| match *s {
            Sym::Time | Sym::Stock(_) => true,
            Sym::Aux(j) => dynamic[j],
            Sym::Control(_) | Sym::Param(_) => false,
        });
    }

    // Initialisation: stocks' initial expressions and the dynamic auxiliaries they need, in dependency order.
    let n_aux = auxes.len();
    let init_deps: Vec<Vec<Sym>> = stocks.iter().map(|(_, _, init)| deps(init)).collect();
    let init_order = order(
        stocks.len() + n_aux,
        |node| {
            let ds = if node < stocks.len() { &init_deps[node] } else { &aux_deps[node - stocks.len()] };
            ds.iter()
                .filter_map(|s| match *s {
                    Sym::Stock(j) => Some(j),
                    Sym::Aux(j) if dynamic[j] => Some(stocks.len() + j),
                    _ => None,
                })
                .collect()
        },
        |cycle| {
            let name = |n: usize| if n < stocks.len() { &stocks[n].0.name } else { &auxes[n - stocks.len()].0.name };
            let names: Vec<&str> = cycle.iter().map(|&n| name(n).as_str()).collect();
            let at = if cycle[0] < stocks.len() { stocks[cycle[0]].0.at } else { auxes[cycle[0] - stocks.len()].0.at };
            Located::new(at, format!("circular initial values: {}", names.join(" -> ")))
        },
    )?;

    let n_params = params.len();
    let n_stocks = stocks.len();
    let mut b = Builder {
        n_regs: 1 + n_params + 2 * n_stocks,
        consts: Vec::new(),
        const_index: HashMap::new(),
        setup: Vec::new(),
        code: Vec::new(),
    };
    let stock_base = 1 + n_params + n_stocks;

    // Parameter-level auxiliaries once, shared by both phases.
    let mut static_vals: Vec<Option<Val>> = vec![None; n_aux];
    for &i in &aux_order {
        if !dynamic[i] {
            let v = b.expr(auxes[i].1, &Scope { syms: &syms, auxes: &static_vals, stock_base })?;
            static_vals[i] = Some(v);
        }
    }

    // Initial values: only the nodes stocks need, in order.
    let mut needed = vec![false; n_stocks + n_aux];
    needed[..n_stocks].fill(true);
    for &node in init_order.iter().rev() {
        if needed[node] {
            let ds = if node < n_stocks { &init_deps[node] } else { &aux_deps[node - n_stocks] };
            for s in ds {
                match *s {
                    Sym::Stock(j) => needed[j] = true,
                    Sym::Aux(j) if dynamic[j] => needed[n_stocks + j] = true,
                    _ => {}
                }
            }
        }
    }
    let mut vals = static_vals.clone();
    for &node in &init_order {
        if !needed[node] {
            continue;
        }
        if node < n_stocks {
            let v = b.expr(stocks[node].2, &Scope { syms: &syms, auxes: &vals, stock_base })?;
            let default = b.reg(v);
            let input = (1 + n_params + node) as Reg;
            b.code.push(Op::Pick((stock_base + node) as Reg, input, default));
        } else {
            let i = node - n_stocks;
            vals[i] = Some(b.expr(auxes[i].1, &Scope { syms: &syms, auxes: &vals, stock_base })?);
        }
    }
    let init = std::mem::take(&mut b.code);

    // Every evaluation of the rates: dynamic auxiliaries, then each stock's net rate.
    let mut vals = static_vals;
    for &i in &aux_order {
        if dynamic[i] {
            vals[i] = Some(b.expr(auxes[i].1, &Scope { syms: &syms, auxes: &vals, stock_base })?);
        }
    }
    let mut rate_regs = Vec::with_capacity(n_stocks);
    for (_, rate, _) in &stocks {
        let v = b.expr(rate, &Scope { syms: &syms, auxes: &vals, stock_base })?;
        rate_regs.push(b.reg(v));
    }
    let mut out_regs: Vec<Reg> = (0..n_stocks).map(|s| (stock_base + s) as Reg).collect();
    for v in &vals {
        let v = v.expect("every auxiliary was compiled");
        out_regs.push(b.reg(v));
    }
    let (mut step, mut end, renamed) = batch(&std::mem::take(&mut b.code), b.n_regs as Reg);
    let rename = |r: &mut Reg| *r = *renamed.get(r).unwrap_or(r);
    rate_regs.iter_mut().for_each(rename);
    out_regs.iter_mut().for_each(rename);
    // The update reads the rates as one slice above the stocks it writes; collect them if needed.
    let in_place = rate_regs.first().is_none_or(|&r| r as usize >= stock_base + n_stocks)
        && rate_regs.windows(2).all(|w| w[1] == w[0] + 1);
    let rate_base = if in_place {
        rate_regs.first().map_or(end, |&r| r) as usize
    } else {
        step.ops.push(Op::Gather { dst: end, from: step.gathered.len() as u32, n: n_stocks as u32 });
        step.gathered.extend(&rate_regs);
        end += n_stocks as Reg;
        (end as usize) - n_stocks
    };

    let program = Program {
        // A power of two, so the interpreter can mask indices instead of bounds-checking them.
        n_regs: (end as usize).next_power_of_two(),
        n_params,
        n_stocks,
        consts: b.consts,
        setup: Code::flat(b.setup),
        init: Code::flat(init),
        step,
        rate_base,
        out_regs,
    };
    let stock_names: Vec<String> = stocks.iter().map(|(e, _, _)| e.name.clone()).collect();
    let mut outputs = stock_names.clone();
    outputs.extend(auxes.iter().map(|(e, _)| e.name.clone()));
    // A run without requested times saves every SAVEPER from INITIAL TIME to FINAL TIME: that table must fit.
    let Control { initial_time, final_time, time_step, saveper } = control;
    let saves = ((final_time - initial_time) / time_step.max(saveper)).floor() + 1.0;
    let what = format!(
        "saving {outputs} outputs at {saves} times (FINAL TIME − INITIAL TIME over SAVEPER)",
        outputs = outputs.len()
    );
    parfit_core::limits::check_allocation(&what, saves, 8.0 * (1 + outputs.len()) as f64)
        .map_err(|m| Located::new(index.get("final time").map_or(0, |&i| equations[i].at), m))?;
    Ok(Compiled { program, control, params, stocks: stock_names, outputs })
}

fn aux_of(s: Sym) -> Option<usize> {
    if let Sym::Aux(j) = s { Some(j) } else { None }
}

/// The control values, computed now: each may be a number or an expression of the other control values
/// (`SAVEPER = TIME STEP`). `SAVEPER` defaults to `TIME STEP`.
fn control(equations: &[Equation], index: &HashMap<&str, usize>) -> Result<Control, Located> {
    fn value(
        key: &str,
        equations: &[Equation],
        index: &HashMap<&str, usize>,
        visiting: &mut Vec<String>,
    ) -> Result<Option<f64>, Located> {
        let Some(&i) = index.get(key) else { return Ok(None) };
        let e = &equations[i];
        let Rhs::Expr(x) = &e.rhs else {
            return Err(Located::new(e.at, format!("{} cannot be a stock", e.name)));
        };
        if visiting.iter().any(|v| v == key) {
            return Err(Located::new(e.at, format!("{} is defined in terms of itself", e.name)));
        }
        visiting.push(key.to_string());
        let v = eval_const(x, &mut |k, at| {
            if CONTROL.contains(&k) {
                value(k, equations, index, visiting)?
                    .ok_or_else(|| Located::new(at, format!("'{k}' is not defined in the .Control section")))
            } else {
                Err(Located::new(
                    at,
                    format!("{} may only use numbers and the other control values, not '{k}'", e.name),
                ))
            }
        })?;
        visiting.pop();
        Ok(Some(v))
    }
    let get = |key: &str| value(key, equations, index, &mut Vec::new());
    let missing = |what: &str| Located::new(0, format!("the .Control section must define {what}"));
    let initial_time = get("initial time")?.ok_or_else(|| missing("INITIAL TIME"))?;
    let final_time = get("final time")?.ok_or_else(|| missing("FINAL TIME"))?;
    let time_step = get("time step")?.ok_or_else(|| missing("TIME STEP"))?;
    let saveper = get("saveper")?.unwrap_or(time_step);
    let at = |key: &str| index.get(key).map_or(0, |&i| equations[i].at);
    if !initial_time.is_finite() || !final_time.is_finite() {
        return Err(Located::new(at("initial time"), "INITIAL TIME and FINAL TIME must be finite"));
    }
    if !(time_step.is_finite() && time_step > 0.0) {
        return Err(Located::new(at("time step"), format!("TIME STEP must be positive, found {time_step}")));
    }
    if !(saveper.is_finite() && saveper > 0.0) {
        return Err(Located::new(at("saveper"), format!("SAVEPER must be positive, found {saveper}")));
    }
    if final_time < initial_time {
        return Err(Located::new(
            at("final time"),
            format!("FINAL TIME ({final_time}) is before INITIAL TIME ({initial_time})"),
        ));
    }
    Ok(Control { initial_time, final_time, time_step, saveper })
}

/// Evaluate an expression whose variables `var` can value now.
fn eval_const(x: &Expr, var: &mut impl FnMut(&str, usize) -> Result<f64, Located>) -> Result<f64, Located> {
    Ok(match x {
        Expr::Num(v) => *v,
        Expr::Var { key, at } => var(key, *at)?,
        Expr::Unary(op, a) => unary(*op, eval_const(a, var)?),
        Expr::Binary(op, a, b) => binary(*op, eval_const(a, var)?, eval_const(b, var)?),
        Expr::Chain(first, rest) => {
            let mut acc = eval_const(first, var)?;
            for (op, e) in rest {
                acc = binary(*op, acc, eval_const(e, var)?);
            }
            acc
        }
        Expr::If(c, a, b) => select(eval_const(c, var)?, eval_const(a, var)?, eval_const(b, var)?),
    })
}

/// A topological order of nodes `0..n` (dependencies first), visiting nodes and their dependencies in
/// index order so the result is deterministic. A cycle is reported through `cycle_error` (the nodes on it,
/// in dependency order, the first repeated at the end).
fn order(
    n: usize,
    deps: impl Fn(usize) -> Vec<usize>,
    cycle_error: impl Fn(&[usize]) -> Located,
) -> Result<Vec<usize>, Located> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; n];
    let mut out = Vec::with_capacity(n);
    for root in 0..n {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (node, its dependencies, next one to visit).
        let mut stack = vec![(root, deps(root), 0usize)];
        mark[root] = Mark::Open;
        while let Some((node, ds, k)) = stack.last_mut() {
            if let Some(&d) = ds.get(*k) {
                *k += 1;
                match mark[d] {
                    Mark::Done => {}
                    Mark::New => {
                        mark[d] = Mark::Open;
                        let dd = deps(d);
                        stack.push((d, dd, 0));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|(m, _, _)| *m == d).expect("open nodes are on the stack");
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|(m, _, _)| *m).collect();
                        cycle.push(d);
                        return Err(cycle_error(&cycle));
                    }
                }
            } else {
                mark[*node] = Mark::Done;
                out.push(*node);
                stack.pop();
            }
        }
    }
    Ok(out)
}

/// Emits register code, folding literal-only operations and hoisting parameter-only ones into `setup`.
struct Builder {
    n_regs: usize,
    consts: Vec<(Reg, f64)>,
    /// Constant registers by value bits, so each distinct constant is stored once.
    const_index: HashMap<u64, Reg>,
    setup: Vec<Op>,
    /// The phase being built (`init` or `step`).
    code: Vec<Op>,
}

impl Builder {
    fn fresh(&mut self) -> Reg {
        self.n_regs += 1;
        (self.n_regs - 1) as Reg
    }

    /// A register holding `v`.
    fn reg(&mut self, v: Val) -> Reg {
        match v {
            Val::Reg(r, _) => r,
            Val::Const(c) => {
                if let Some(&r) = self.const_index.get(&c.to_bits()) {
                    return r;
                }
                let r = self.fresh();
                self.consts.push((r, c));
                self.const_index.insert(c.to_bits(), r);
                r
            }
        }
    }

    /// Emit `make(dst, operand registers…)` where the operands' levels say it belongs.
    fn emit(&mut self, operands: &[Val], make: impl FnOnce(Reg, &[Reg]) -> Op) -> Val {
        let level = operands
            .iter()
            .map(|v| match v {
                Val::Const(_) => Level::Param,
                Val::Reg(_, l) => *l,
            })
            .max()
            .unwrap_or(Level::Param);
        let regs: Vec<Reg> = operands.iter().map(|v| self.reg(*v)).collect();
        let dst = self.fresh();
        let op = make(dst, &regs);
        if level == Level::Param {
            self.setup.push(op)
        } else {
            self.code.push(op)
        }
        Val::Reg(dst, level)
    }

    /// `a op b`, folded when both are literals.
    fn binary(&mut self, op: BinOp, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Const(a), Val::Const(b)) => Val::Const(binary(op, a, b)),
            (a, b) => self.emit(&[a, b], |d, r| Op::binary(op, d, r[0], r[1])),
        }
    }

    fn expr(&mut self, x: &Expr, cx: &Scope) -> Result<Val, Located> {
        Ok(match x {
            Expr::Num(v) => Val::Const(*v),
            Expr::Var { key, .. } => match cx.syms[key.as_str()] {
                Sym::Time => Val::Reg(TIME_REG, Level::Dynamic),
                Sym::Control(v) => Val::Const(v),
                Sym::Param(i) => Val::Reg((1 + i) as Reg, Level::Param),
                Sym::Stock(i) => Val::Reg((cx.stock_base + i) as Reg, Level::Dynamic),
                Sym::Aux(i) => cx.auxes[i].expect("auxiliaries are compiled in dependency order"),
            },
            Expr::Unary(op, a) => match self.expr(a, cx)? {
                Val::Const(c) => Val::Const(unary(*op, c)),
                a => self.emit(&[a], |d, r| Op::unary(*op, d, r[0])),
            },
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.expr(a, cx)?, self.expr(b, cx)?);
                self.binary(*op, a, b)
            }
            Expr::Chain(first, rest) => {
                let mut acc = self.expr(first, cx)?;
                for (op, e) in rest {
                    let b = self.expr(e, cx)?;
                    acc = self.binary(*op, acc, b);
                }
                acc
            }
            Expr::If(c, a, b) => match (self.expr(c, cx)?, self.expr(a, cx)?, self.expr(b, cx)?) {
                (Val::Const(c), Val::Const(a), Val::Const(b)) => Val::Const(select(c, a, b)),
                (c, a, b) => self.emit(&[c, a, b], |d, r| Op::Select(d, r[0], r[1], r[2])),
            },
        })
    }
}

/// What names mean while compiling one phase.
struct Scope<'a> {
    syms: &'a HashMap<&'a str, Sym>,
    /// The auxiliaries compiled so far in this phase (parameter-level ones in every phase).
    auxes: &'a [Option<Val>],
    stock_base: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Kind, lanes};
    use crate::expr::{BinOp, UnOp};
    use crate::lexer::normalise;
    use crate::mdl;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn compiled(src: &str) -> Compiled {
        compile(&mdl::read(src).unwrap().equations).unwrap()
    }

    const CONTROL_EQS: &str =
        "INITIAL TIME = 0 ~~|\nFINAL TIME = 10 ~~|\nTIME STEP = 0.25 ~~|\nSAVEPER = TIME STEP ~~|\n";

    /// Every register read was written earlier (or is time, a parameter, an input, a stock or a constant).
    fn assert_well_formed(p: &Program) {
        let mut written = vec![false; p.n_regs];
        written[..1 + p.n_params + 2 * p.n_stocks].fill(true);
        for &(r, _) in &p.consts {
            written[r as usize] = true;
        }
        for (dst, reads) in [&p.setup, &p.init, &p.step].into_iter().flat_map(lanes) {
            for r in reads {
                assert!(written[r as usize], "r{dst} reads r{r} before it is written");
            }
            written[dst as usize] = true;
        }
        assert!(p.rate_base >= 1 + p.n_params + 2 * p.n_stocks);
        for r in (p.rate_base..p.rate_base + p.n_stocks).chain(p.out_regs.iter().map(|&r| r as usize)) {
            assert!(r < p.n_regs && written[r]);
        }
    }

    fn is_gathered(p: &Program, reg: Reg) -> bool {
        p.step.ops.iter().any(|op| matches!(*op, Op::Gather { dst, n, .. } if (dst..dst + n).contains(&reg)))
    }

    #[test]
    fn aging_chain_compiles_to_one_instruction_per_operator() {
        // Compiled in, so the test also runs on wasm32 (no file system there).
        let c = compiled(include_str!("../../../tests/data/aging_chain/Aging_Chain.mdl"));
        let p = &c.program;
        assert_well_formed(p);
        // 8 ageing flows, 9 losses, 2 subtractions in each of dec 1..8's rates and 1 in dec 9's…
        assert_eq!(lanes(&p.step).iter().filter(|(d, _)| !is_gathered(p, *d)).count(), 8 + 9 + 8 * 2 + 1);
        // … in four batches: flows, losses, and the two rounds of subtractions (whose first round gathers
        // its operands: `births, bday10, …` and `bday10, …, bday80, dec 9 loss` are not contiguous).
        assert_eq!(p.step.batches.len(), 4);
        // Plus the gather of the nine rates into one block for the update.
        assert_eq!(p.step.ops.len(), 4 + 2 + 1);
        assert!(p.setup.ops.is_empty());
        assert_eq!(p.init.ops.len(), 9); // one Pick per stock
        assert_eq!(c.control, Control { initial_time: 2000.0, final_time: 2010.0, time_step: 0.125, saveper: 0.125 });
    }

    #[test]
    fn literals_fold_and_parameter_code_is_hoisted() {
        let c = compiled(&format!(
            "k = 2 ~~|\nc = EXP(0) * 3 ~~|\nkc = k * c ~~|\ny = INTEG(-kc * y + c * Time, kc) ~~|\n{CONTROL_EQS}"
        ));
        let p = &c.program;
        assert_well_formed(p);
        assert_eq!(p.setup.ops.len(), 2); // k * c and its negation
        assert_eq!(p.step.ops.len(), 3); // (-kc) * y, c * Time and their sum, which is the rate
        assert_eq!(c.params, [("k".to_string(), 2.0)]);
        assert_eq!(c.outputs, ["y", "c", "kc"]);
    }

    /// Evaluate an expression tree directly (the reference for the compiled, batched code).
    fn walk(x: &Expr, var: &dyn Fn(&str) -> f64) -> f64 {
        match x {
            Expr::Num(v) => *v,
            Expr::Var { key, .. } => var(key),
            Expr::Unary(op, a) => unary(*op, walk(a, var)),
            Expr::Binary(op, a, b) => binary(*op, walk(a, var), walk(b, var)),
            Expr::Chain(first, rest) => {
                rest.iter().fold(walk(first, var), |acc, (op, e)| binary(*op, acc, walk(e, var)))
            }
            Expr::If(c, a, b) => select(walk(c, var), walk(a, var), walk(b, var)),
        }
    }

    /// Every operation, batched or not, on stock-dependent values: the program's outputs and rates equal
    /// a direct evaluation of the equations bit for bit.
    #[test]
    fn batched_code_equals_direct_evaluation() {
        let mut eqs = String::from("k = 0.3 ~~|\nj = -2 ~~|\n");
        for i in 1..=4 {
            let (s, t) = (format!("s{i}"), format!("s{}", i % 4 + 1));
            eqs += &format!(
                "{s} = INTEG(c{i} - e{i} * k + n{i} - m{i}, {i}) ~~|\n\
                 a{i} = {s} * 2 + {t} / 3 - j ~~|\n\
                 b{i} = MIN({s}, {t}) + MAX({t}, k) ~~|\n\
                 c{i} = IF THEN ELSE({s} > {t} :AND: {s} <> 0 :OR: {t} <= 1, a{i}, b{i}) ~~|\n\
                 e{i} = EXP(-{s} / 10) + LN({s}) - SQRT(ABS({s} - {t})) ~~|\n\
                 n{i} = (:NOT: {s} >= 1) + ({s} = {t}) + ({s} < {t}) ~~|\n\
                 m{i} = -{s} ^ 2 ^ 0.5 + {t} ^ k + Time * TIME STEP ~~|\n"
            );
        }
        let src = format!("{eqs}{CONTROL_EQS}");
        let equations = mdl::read(&src).unwrap().equations;
        let c = compile(&equations).unwrap();
        let p = &c.program;
        assert_well_formed(p);
        // Every kind of operation runs batched here, IF THEN ELSE included.
        let kinds: std::collections::HashSet<Kind> = p.step.batches.iter().map(|b| b.kind).collect();
        for k in [Kind::Select, Kind::Un(UnOp::Exp), Kind::Un(UnOp::Not), Kind::Bin(BinOp::Pow), Kind::Bin(BinOp::Min)]
        {
            assert!(kinds.contains(&k), "{k:?} not batched: {kinds:?}");
        }
        let mut regs = vec![0.0; p.n_regs];
        for &(r, v) in &p.consts {
            regs[r as usize] = v;
        }
        let params: Vec<f64> = c.params.iter().map(|(_, v)| *v).collect();
        regs[1..1 + params.len()].copy_from_slice(&params);
        let stocks = [0.7, 1.9, 1.9, 2.6];
        let (time, dt) = (1.25, c.control.time_step);
        regs[TIME_REG as usize] = time;
        regs[p.stock_reg(0)..p.stock_reg(0) + 4].copy_from_slice(&stocks);
        crate::eval::exec(&p.setup, &mut regs);
        crate::eval::exec(&p.step, &mut regs);

        fn find<'e>(equations: &'e [Equation], key: &str) -> &'e Equation {
            equations.iter().find(|e| e.key == key).unwrap()
        }
        fn value(key: &str, equations: &[Equation], base: &dyn Fn(&str) -> Option<f64>) -> f64 {
            base(key).unwrap_or_else(|| match &find(equations, key).rhs {
                Rhs::Expr(x) => walk(x, &|k| value(k, equations, base)),
                Rhs::Stock { .. } => unreachable!("stocks are given"),
            })
        }
        let base = |key: &str| -> Option<f64> {
            match key {
                "time" => Some(time),
                "time step" => Some(dt),
                "k" => Some(params[0]),
                "j" => Some(params[1]),
                _ => key.strip_prefix('s').and_then(|i| i.parse::<usize>().ok()).map(|i| stocks[i - 1]),
            }
        };
        for (name, &r) in c.outputs.iter().zip(&p.out_regs) {
            let expected = value(&normalise(name), &equations, &base);
            assert_eq!(regs[r as usize].to_bits(), expected.to_bits(), "{name}: {} vs {expected}", regs[r as usize]);
        }
        for i in 0..4 {
            let Rhs::Stock { rate, .. } = &find(&equations, &format!("s{}", i + 1)).rhs else { panic!() };
            let expected = walk(rate, &|k| value(k, &equations, &base));
            assert_eq!(regs[p.rate_base + i].to_bits(), expected.to_bits(), "rate of s{}", i + 1);
        }
    }

    #[test]
    fn initial_values_follow_their_dependencies() {
        let c = compiled(&format!(
            "a = INTEG(0, b * 2) ~~|\nb = INTEG(0, h) ~~|\nh = Time + 1 ~~|\nunused = a + 1 ~~|\n{CONTROL_EQS}"
        ));
        assert_well_formed(&c.program);
        // h (for b), b's Pick, a's product and Pick; `unused` is not needed to start the stocks.
        assert_eq!(c.program.init.ops.len(), 4);
    }
}
