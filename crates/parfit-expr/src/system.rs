//! Models given as scalar equations rather than DiffSL text: what front ends other than DiffSL (the Vensim
//! reader) lower their models to, so that every model is compiled, interpreted, JIT-compiled and
//! differentiated by the same code.
//!
//! A [`System`] is a set of named scalar values over parameters, states and time: auxiliaries ([`Var`]),
//! states with their initial values and update rules ([`State`]), outputs, and lookup tables. It knows
//! nothing of the front end's syntax; a front end keeps its own map from each item back to its source text
//! to place a [`SystemError`] there.

use std::collections::HashMap;
use std::sync::Arc;

use crate::emit::{Emitter, Level, Val};
use crate::eval::{DrawKind, Instr, Op, Program, operand_count};
use crate::lookup::LookupTable;

/// A model as scalar equations.
#[derive(Debug, Clone, Default)]
pub struct System {
    /// Parameters, `Expr::Param(k)`: names and defaults, in the order a caller passes their values.
    pub params: Vec<(String, f64)>,
    /// Auxiliaries, `Expr::Var(k)`: defined in any order; a cycle among them is an error.
    pub vars: Vec<Var>,
    /// States, `Expr::State(k)`.
    pub states: Vec<State>,
    /// Outputs: names and values, computed from `t`, the state and the parameters.
    pub outputs: Vec<(String, Expr)>,
    /// Lookup tables, `Expr::Lookup { table: k, .. }`.
    pub tables: Vec<Table>,
    /// The value of `Expr::Time` where initial values are computed.
    pub initial_time: f64,
}

/// An auxiliary.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    /// Its value at any time.
    pub value: Expr,
    /// Its value where initial values are computed, when that differs (Vensim's `ACTIVE INITIAL`).
    pub initial: Option<Expr>,
}

/// A state and how it moves.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    /// Its value at the initial time (computed in the initial context: see [`Expr::Initial`]).
    pub initial: Expr,
    /// Its rate of change (an integrated stock) or its next value (an assigned state), by [`Update`]. The
    /// program's `f` registers hold these, in state order.
    pub update: Expr,
    pub kind: Update,
}

/// How a runner advances a state by one step; the program only computes [`State::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// `update` is the state's derivative: the runner integrates it (Euler, RK4, …).
    Integrate,
    /// `update` is the state's value at the next step (a sample-and-hold, a pipeline slot): the runner
    /// assigns it.
    Assign,
}

/// A piecewise-linear lookup table: at least one point, finite, with non-decreasing `x` (equal neighbours
/// are a jump); [`compile_system`] refuses others at [`Site::Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// How a table is read. Each mode's exact edges (before the first point, after the last, at a point, at a
/// jump, a one-point table) are documented in `lookup.rs` and its tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupMode {
    /// Linear interpolation, holding the end values outside the table (Vensim's lookup call).
    Interpolate,
    /// Linear interpolation, extended along the end segments outside the table (`LOOKUP EXTRAPOLATE`).
    Extrapolate,
    /// The `y` of the first point at or after `x` (`LOOKUP FORWARD`), the last `y` beyond the table.
    Forward,
    /// The `y` of the last point at or before `x` (`LOOKUP BACKWARD`), the first `y` before the table.
    Backward,
    /// The smallest `x` at which the interpolated table reaches `y` (`LOOKUP INVERT`).
    Invert,
}

/// A scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    /// `t`; in the initial context, [`System::initial_time`].
    Time,
    Param(usize),
    State(usize),
    Var(usize),
    /// An operation of the register code on its operands (`Op::Select` takes three, unary ops one, the
    /// others two).
    Op(Op, Vec<Expr>),
    /// A table read at `x` (for [`LookupMode::Invert`], `x` is the `y` sought).
    Lookup {
        table: usize,
        mode: LookupMode,
        x: Box<Expr>,
    },
    /// The area under a table between two `x` (`LOOKUP AREA`).
    LookupArea {
        table: usize,
        from: Box<Expr>,
        to: Box<Expr>,
    },
    /// The expression's value in the initial context: where states are their initial values, `t` is
    /// [`System::initial_time`] and auxiliaries take their `initial` form (Vensim's `INITIAL`). Computed once
    /// per simulation.
    Initial(Box<Expr>),
    /// A random draw of this kind, filled by the runner before each step: each `Draw` node is its own slot,
    /// numbered in the order [`System`] lists them (auxiliaries' values, then states' updates, then outputs;
    /// a slot nothing reads is dropped, so [`Program::draws`] lists the rest in that order). Not allowed in
    /// the initial context.
    Draw(DrawKind),
}

/// Which equation of a [`System`] a [`SystemError`] is about, so the front end can place it in its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Var(usize),
    StateInitial(usize),
    StateUpdate(usize),
    Output(usize),
    Table(usize),
}

/// Why a [`System`] does not compile.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemError {
    pub site: Site,
    pub message: String,
}

/// The deepest nesting of one expression [`compile_system`] accepts: code generation recurses once per
/// level, so the bound keeps it within a small thread stack (1 MiB).
pub const MAX_DEPTH: usize = 500;

/// Roughly what one expression node costs to compile (register code, the compiler's tables, the Jacobian's
/// share), for the memory check before any code is generated.
const BYTES_PER_NODE: f64 = 256.0;

/// Which derivative code [`compile_system`] adds to a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitivities {
    /// None: the plain program, without Jacobian code (the runners are explicit).
    Off,
    /// The Jacobian ∂F/∂u as sparse register code and the forward sensitivity sections
    /// ([`Program::sensitivity_rhs`]: `J s + ∂F/∂p`), as implicit solvers need.
    Jacobian,
    /// Tangent (forward-mode) code run once per parameter ([`Program::tangent_rhs`],
    /// [`Program::tangent_outputs`]): never forms ∂F/∂u, so its size and cost per parameter stay a small
    /// multiple of the right-hand side's however dense the Jacobian. For explicit integrators.
    Tangent,
}

/// Compile a system into a program (with the derivative code `sensitivities` asks for): the program's
/// parameters are `system.params` in order, its states `system.states` in order, `f` their updates, its
/// outputs `system.outputs`. Draw slots are the `Expr::Draw` nodes of the auxiliaries' values, the states'
/// updates and the outputs, in that order (a slot nothing reads is dropped, as in DiffSL programs).
///
/// Values are computed in two contexts. The *initial* one runs once per simulation, in the setup code:
/// states are their initial values, `t` is [`System::initial_time`], an auxiliary takes its `initial` form
/// when it has one. The *dynamic* one runs at each evaluation: states and `t` are the runner's, and
/// `Initial(e)` is `e`'s value in the initial context. Auxiliaries and initial values may refer to each other
/// in any order; each context is ordered by an iterative topological sort (no recursion per variable), and
/// a cycle is an error naming it.
pub fn compile_system(system: &System, sensitivities: Sensitivities) -> Result<crate::Compiled, SystemError> {
    let scan = Scan::new(system)?;
    let order = dynamic_order(system, &scan.dynamic_deps)?;
    let initial_order = initial_order(system, &scan)?;
    parfit_core::limits::check_allocation(
        &format!("a system of {} expression nodes", scan.nodes),
        scan.nodes as f64,
        BYTES_PER_NODE,
    )
    .map_err(|message| SystemError { site: first_site(system), message })?;
    let tables = system
        .tables
        .iter()
        .enumerate()
        .map(|(k, t)| {
            LookupTable::new(&t.points)
                .map_err(|m| SystemError { site: Site::Table(k), message: format!("lookup '{}': {m}", t.name) })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (n_states, n_params) = (system.states.len(), system.params.len());
    let mut g = SystemGen {
        system,
        e: Emitter::new(n_states, n_params, tables.clone()),
        initial: vec![None; system.vars.len() + n_states],
        dynamic: vec![None; system.vars.len()],
        slots: HashMap::new(),
    };
    let mut draw_regs = Vec::with_capacity(scan.slots.len());
    let mut draws = Vec::with_capacity(scan.slots.len());
    for &(node, kind) in &scan.slots {
        let r = g.e.fresh();
        g.slots.insert(node, r);
        draw_regs.push(r);
        draws.push(kind);
    }

    // The initial context, in dependency order: parameter-level code.
    for &node in &initial_order {
        let (site, e) = initial_node(system, node);
        let v = g.expr(e, Ctx::Initial, site)?;
        g.initial[node] = Some(v);
    }
    let mut init = Vec::with_capacity(n_states);
    for j in 0..n_states {
        let v = g.initial_value(Initial::State(j));
        init.push(g.e.reg(v));
    }

    // The right-hand side, then its Jacobian.
    g.section(&order, &scan.dynamic_deps, &scan.update_vars)?;
    let mut f = Vec::with_capacity(n_states);
    for (j, s) in system.states.iter().enumerate() {
        let v = g.expr(&s.update, Ctx::Dynamic, Site::StateUpdate(j))?;
        f.push(g.e.reg(v));
    }
    let rhs = g.take_dynamic();
    // Only the sensitivity equations need ∂F/∂u: the runners are explicit.
    let whole = |message| SystemError { site: first_site(system), message };
    let (jac, jac_entries) = if sensitivities == Sensitivities::Jacobian {
        let entries = g.e.jacobian(&rhs, &f).map_err(whole)?;
        (g.take_dynamic(), entries)
    } else {
        (Vec::new(), Vec::new())
    };

    // The outputs.
    g.section(&order, &scan.dynamic_deps, &scan.output_vars)?;
    let mut out_regs = Vec::with_capacity(system.outputs.len());
    for (o, (_, e)) in system.outputs.iter().enumerate() {
        let v = g.expr(e, Ctx::Dynamic, Site::Output(o))?;
        out_regs.push(g.e.reg(v));
    }
    let out = g.take_dynamic();

    let mut program = Program {
        draws,
        draw_regs,
        init,
        rhs,
        f,
        jac,
        jac_entries,
        out,
        out_regs,
        tables: Arc::from(tables),
        ..Program::new(n_states, n_params)
    };
    match sensitivities {
        Sensitivities::Off => {}
        Sensitivities::Jacobian => g.e.sensitivities(&mut program).map_err(whole)?,
        Sensitivities::Tangent => g.e.tangents(&mut program).map_err(whole)?,
    }
    program.n_regs = g.e.n_regs as usize;
    program.consts = std::mem::take(&mut g.e.consts);
    program.setup = std::mem::take(&mut g.e.setup);
    program.finish();
    Ok(crate::Compiled {
        program,
        params: system.params.clone(),
        states: system.states.iter().map(|s| s.name.clone()).collect(),
        outputs: system.outputs.iter().map(|o| o.0.clone()).collect(),
    })
}

/// The first item of a system, where an error about the whole system is placed.
fn first_site(system: &System) -> Site {
    if !system.vars.is_empty() {
        Site::Var(0)
    } else if !system.states.is_empty() {
        Site::StateUpdate(0)
    } else {
        Site::Output(0)
    }
}

/// Where a value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Initial,
    Dynamic,
}

/// A node of the initial context: an auxiliary's or a state's initial value. Numbered auxiliaries first,
/// then states.
#[derive(Debug, Clone, Copy)]
enum Initial {
    Var(usize),
    State(usize),
}

impl Initial {
    fn index(self, system: &System) -> usize {
        match self {
            Initial::Var(k) => k,
            Initial::State(j) => system.vars.len() + j,
        }
    }
}

/// The site and expression of initial-context node `node`.
fn initial_node(system: &System, node: usize) -> (Site, &Expr) {
    match node.checked_sub(system.vars.len()) {
        None => {
            let v = &system.vars[node];
            (Site::Var(node), v.initial.as_ref().unwrap_or(&v.value))
        }
        Some(j) => (Site::StateInitial(j), &system.states[j].initial),
    }
}

fn initial_name(system: &System, node: usize) -> &str {
    match node.checked_sub(system.vars.len()) {
        None => &system.vars[node].name,
        Some(j) => &system.states[j].name,
    }
}

/// What a first pass over every expression finds: the structure checked (indices, operand counts, depth),
/// the references that order the two contexts, and the draw slots.
struct Scan {
    /// The auxiliaries each auxiliary's dynamic value reads (outside `Initial`).
    dynamic_deps: Vec<Vec<usize>>,
    /// The initial-context nodes each initial-context node reads.
    initial_deps: Vec<Vec<usize>>,
    /// The initial-context nodes read through `Initial(e)` in dynamic values.
    initial_roots: Vec<usize>,
    /// The auxiliaries the states' updates read, and those the outputs read.
    update_vars: Vec<usize>,
    output_vars: Vec<usize>,
    /// Draw slots in order: the node (by address) and its kind.
    slots: Vec<(*const Expr, DrawKind)>,
    /// Expression nodes in all.
    nodes: usize,
}

/// References found in one expression.
#[derive(Default)]
struct Refs {
    /// Auxiliaries read in the expression's own context.
    vars: Vec<usize>,
    /// Initial-context nodes read: everything in an initial-context expression, and what `Initial(e)`
    /// reads in a dynamic one.
    initial: Vec<usize>,
}

impl Scan {
    fn new(system: &System) -> Result<Scan, SystemError> {
        let mut scan = Scan {
            dynamic_deps: Vec::with_capacity(system.vars.len()),
            initial_deps: Vec::with_capacity(system.vars.len() + system.states.len()),
            initial_roots: Vec::new(),
            update_vars: Vec::new(),
            output_vars: Vec::new(),
            slots: Vec::new(),
            nodes: 0,
        };
        // Dynamic values, in the order draw slots are numbered.
        for (k, v) in system.vars.iter().enumerate() {
            let refs = scan.expr(system, &v.value, Ctx::Dynamic, Site::Var(k))?;
            scan.dynamic_deps.push(refs.vars);
            scan.initial_roots.extend(refs.initial);
        }
        for (j, s) in system.states.iter().enumerate() {
            let refs = scan.expr(system, &s.update, Ctx::Dynamic, Site::StateUpdate(j))?;
            scan.update_vars.extend(refs.vars);
            scan.initial_roots.extend(refs.initial);
        }
        for (o, (_, e)) in system.outputs.iter().enumerate() {
            let refs = scan.expr(system, e, Ctx::Dynamic, Site::Output(o))?;
            scan.output_vars.extend(refs.vars);
            scan.initial_roots.extend(refs.initial);
        }
        // Initial values (an auxiliary's value, scanned again for what it reads there, is counted once).
        for (k, v) in system.vars.iter().enumerate() {
            let (e, nodes) = (v.initial.as_ref().unwrap_or(&v.value), scan.nodes);
            let refs = scan.expr(system, e, Ctx::Initial, Site::Var(k))?;
            scan.initial_deps.push(refs.initial);
            if v.initial.is_none() {
                scan.nodes = nodes;
            }
        }
        for (j, s) in system.states.iter().enumerate() {
            let refs = scan.expr(system, &s.initial, Ctx::Initial, Site::StateInitial(j))?;
            scan.initial_deps.push(refs.initial);
        }
        Ok(scan)
    }

    /// Check one expression and collect its references.
    fn expr(&mut self, system: &System, e: &Expr, ctx: Ctx, site: Site) -> Result<Refs, SystemError> {
        let mut refs = Refs::default();
        self.walk(system, e, ctx, 0, &mut refs).map_err(|message| SystemError { site, message })?;
        Ok(refs)
    }

    fn walk(&mut self, system: &System, e: &Expr, ctx: Ctx, depth: usize, refs: &mut Refs) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            return Err(format!("the expression is nested deeper than {MAX_DEPTH} levels"));
        }
        self.nodes += 1;
        let check = |what: &str, k: usize, n: usize| {
            if k < n { Ok(()) } else { Err(format!("{what} {k} does not exist (the system has {n})")) }
        };
        match e {
            Expr::Num(_) | Expr::Time => {}
            Expr::Param(k) => check("parameter", *k, system.params.len())?,
            Expr::State(j) => {
                check("state", *j, system.states.len())?;
                if ctx == Ctx::Initial {
                    refs.initial.push(Initial::State(*j).index(system));
                }
            }
            Expr::Var(k) => {
                check("auxiliary", *k, system.vars.len())?;
                match ctx {
                    Ctx::Initial => refs.initial.push(*k),
                    Ctx::Dynamic => refs.vars.push(*k),
                }
            }
            Expr::Op(op, args) => {
                check_operands(*op, args.len())?;
                for a in args {
                    self.walk(system, a, ctx, depth + 1, refs)?;
                }
            }
            Expr::Lookup { table, x, .. } => {
                check("lookup table", *table, system.tables.len())?;
                self.walk(system, x, ctx, depth + 1, refs)?;
            }
            Expr::LookupArea { table, from, to } => {
                check("lookup table", *table, system.tables.len())?;
                self.walk(system, from, ctx, depth + 1, refs)?;
                self.walk(system, to, ctx, depth + 1, refs)?;
            }
            Expr::Initial(x) => {
                // What the initial context reads on behalf of a dynamic value.
                let mut inner = Refs::default();
                self.walk(system, x, Ctx::Initial, depth + 1, &mut inner)?;
                refs.initial.extend(inner.initial);
            }
            Expr::Draw(kind) => {
                if ctx == Ctx::Dynamic {
                    self.slots.push((e as *const Expr, *kind));
                }
            }
        }
        Ok(())
    }
}

/// Whether `op` may be written with `n` operands in a [`System`] expression.
fn check_operands(op: Op, n: usize) -> Result<(), String> {
    let chain = matches!(op, Op::Add | Op::Mul | Op::Min | Op::Max | Op::And | Op::Or);
    if op.reads_table() || matches!(op, Op::MulAdd | Op::MulSub | Op::NegMulAdd | Op::MulMulAdd | Op::MulMulSub) {
        return Err(format!("Op::{op:?} is made by the compiler and cannot be written in a system"));
    }
    let want = operand_count(op);
    if chain && n >= 2 || !chain && n == want {
        Ok(())
    } else if chain {
        Err(format!("Op::{op:?} takes at least 2 operands, found {n}"))
    } else {
        Err(format!("Op::{op:?} takes {want} operand{}, found {n}", if want == 1 { "" } else { "s" }))
    }
}

/// The auxiliaries in an order where each comes after those its dynamic value reads (a depth-first search
/// with an explicit stack, so long chains cost no recursion).
fn dynamic_order(system: &System, deps: &[Vec<usize>]) -> Result<Vec<usize>, SystemError> {
    topological(deps, 0..deps.len()).map_err(|cycle| {
        let names: Vec<&str> = cycle.iter().map(|&k| system.vars[k].name.as_str()).collect();
        SystemError { site: Site::Var(cycle[0]), message: format!("circular definition: {}", names.join(" -> ")) }
    })
}

/// The initial-context nodes the states' initial values and the dynamic values' `Initial(e)` need, each
/// after those it reads.
fn initial_order(system: &System, scan: &Scan) -> Result<Vec<usize>, SystemError> {
    let states = (0..system.states.len()).map(|j| Initial::State(j).index(system));
    topological(&scan.initial_deps, states.chain(scan.initial_roots.iter().copied())).map_err(|cycle| {
        let names: Vec<&str> = cycle.iter().map(|&n| initial_name(system, n)).collect();
        let (site, _) = initial_node(system, cycle[0]);
        SystemError { site, message: format!("circular initial values: {}", names.join(" -> ")) }
    })
}

/// The nodes reachable from `roots` in post-order (each after every node it depends on), or a cycle: the
/// chain of nodes from one back to itself.
fn topological(deps: &[Vec<usize>], roots: impl Iterator<Item = usize>) -> Result<Vec<usize>, Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    let mut order = Vec::new();
    // The path being explored: each node with the position of the next dependency to visit.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for root in roots {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        path.push((root, 0));
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            match deps[node].get(*next) {
                Some(&d) => {
                    *next += 1;
                    match mark[d] {
                        Mark::New => {
                            mark[d] = Mark::Open;
                            path.push((d, 0));
                        }
                        Mark::Open => {
                            let from = path.iter().position(|&(n, _)| n == d).unwrap_or(0);
                            let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                            cycle.push(d);
                            return Err(cycle);
                        }
                        Mark::Done => {}
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    order.push(node);
                    path.pop();
                }
            }
        }
    }
    Ok(order)
}

/// Code generation for a system over the shared [`Emitter`].
struct SystemGen<'s> {
    system: &'s System,
    e: Emitter,
    /// Initial-context values by node (auxiliaries, then states), once computed.
    initial: Vec<Option<Val>>,
    /// Dynamic values of the auxiliaries in the current section (parameter-level ones for all sections).
    dynamic: Vec<Option<Val>>,
    /// The register of each draw slot, by its node's address.
    slots: HashMap<*const Expr, u32>,
}

impl SystemGen<'_> {
    fn initial_value(&self, node: Initial) -> Val {
        // Every node the initial context reads was computed first (`initial_order`); NaN is unreachable.
        self.initial[node.index(self.system)].unwrap_or(Val::Const(f64::NAN))
    }

    /// Finish the current dynamic section: its code, and its auxiliaries' values forgotten (parameter-level
    /// ones stay: their code is in the setup).
    fn take_dynamic(&mut self) -> Vec<Instr> {
        for v in &mut self.dynamic {
            if v.and_then(|v| v.level()) == Some(Level::Dynamic) {
                *v = None;
            }
        }
        self.e.take_dynamic()
    }

    /// Generate the auxiliaries `roots` and those they read, in `order`.
    fn section(&mut self, order: &[usize], deps: &[Vec<usize>], roots: &[usize]) -> Result<(), SystemError> {
        let mut needed = vec![false; self.system.vars.len()];
        let mut stack = roots.to_vec();
        while let Some(k) = stack.pop() {
            if !std::mem::replace(&mut needed[k], true) {
                stack.extend(deps[k].iter().copied());
            }
        }
        for &k in order {
            if needed[k] && self.dynamic[k].is_none() {
                let v = self.expr(&self.system.vars[k].value, Ctx::Dynamic, Site::Var(k))?;
                self.dynamic[k] = Some(v);
            }
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr, ctx: Ctx, site: Site) -> Result<Val, SystemError> {
        self.value(e, ctx).map_err(|message| SystemError { site, message })
    }

    /// The value of an expression whose references were computed first (their order guarantees it).
    fn value(&mut self, e: &Expr, ctx: Ctx) -> Result<Val, String> {
        Ok(match e {
            Expr::Num(v) => Val::Const(*v),
            Expr::Time => match ctx {
                Ctx::Initial => Val::Const(self.system.initial_time),
                Ctx::Dynamic => Val::Reg(Program::T as u32, Level::Dynamic),
            },
            Expr::Param(k) => Val::Reg((1 + self.system.states.len() + k) as u32, Level::Param),
            Expr::State(j) => match ctx {
                Ctx::Initial => self.initial_value(Initial::State(*j)),
                Ctx::Dynamic => Val::Reg(Program::state_reg(*j) as u32, Level::Dynamic),
            },
            Expr::Var(k) => match ctx {
                Ctx::Initial => self.initial_value(Initial::Var(*k)),
                Ctx::Dynamic => self.dynamic[*k].unwrap_or(Val::Const(f64::NAN)),
            },
            Expr::Op(op, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.value(a, ctx)?);
                }
                match (operand_count(*op), &vals[..]) {
                    (1, &[a]) => self.e.op(*op, a, a),
                    (3, &[a, b, c]) => self.e.op3(*op, a, b, c),
                    // Two operands, or a chain folded from the left: ((a + b) + c) + d.
                    (_, &[first, ref rest @ ..]) => rest.iter().fold(first, |acc, &v| self.e.op(*op, acc, v)),
                    _ => return Err(format!("Op::{op:?} has no operands")),
                }
            }
            Expr::Lookup { table, mode, x } => {
                let x = self.value(x, ctx)?;
                self.e.table_op(Op::Lookup(*mode), *table as u32, x, x)
            }
            Expr::LookupArea { table, from, to } => {
                let (a, b) = (self.value(from, ctx)?, self.value(to, ctx)?);
                self.e.table_op(Op::LookupArea, *table as u32, a, b)
            }
            Expr::Initial(x) => self.value(x, Ctx::Initial)?,
            Expr::Draw(_) => match (ctx, self.slots.get(&(e as *const Expr))) {
                (Ctx::Dynamic, Some(&r)) => Val::Reg(r, Level::Dynamic),
                _ => return Err("random draws are not allowed in initial values".into()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derivatives;
    use crate::sensitivity_tests::check_against_differences;
    use Expr as E;
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn op(op: Op, args: Vec<Expr>) -> Expr {
        Expr::Op(op, args)
    }

    fn var(name: &str, value: Expr) -> Var {
        Var { name: name.into(), value, initial: None }
    }

    fn state(name: &str, initial: Expr, update: Expr) -> State {
        State { name: name.into(), initial, update, kind: Update::Integrate }
    }

    fn outputs(exprs: Vec<Expr>) -> Vec<(String, Expr)> {
        exprs.into_iter().enumerate().map(|(k, e)| (format!("out{k}"), e)).collect()
    }

    fn compile(system: &System) -> crate::Compiled {
        compile_system(system, Sensitivities::Off).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// `(y0, f(t, y), outputs(t, y))` by the interpreter, and the same by native code where there is one.
    fn run(p: &Program, params: &[f64], t: f64, y: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut regs = vec![0.0; p.n_regs];
        let mut y0 = vec![0.0; p.n_states];
        p.start(&mut regs, params, &mut y0);
        let (mut f, mut out) = (vec![0.0; p.n_states], vec![0.0; p.out_regs.len()]);
        p.rhs(&mut regs, t, y, &mut f);
        p.outputs(&mut regs, t, y, &mut out);
        (y0, f, out)
    }

    /// Interpreter and native code give the same bits (NaNs as NaN).
    fn run_both(p: &Program, params: &[f64], t: f64, y: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let interpreted = run(p, params, t, y);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut native = p.clone();
            native.compile_native().expect("the JIT compiles the system");
            let n = run(&native, params, t, y);
            use crate::bits;
            let i = &interpreted;
            assert_eq!((bits(&i.0), bits(&i.1), bits(&i.2)), (bits(&n.0), bits(&n.1), bits(&n.2)));
        }
        interpreted
    }

    /// States initialised from each other through auxiliaries, in any order; an ACTIVE INITIAL auxiliary;
    /// `Initial(e)` of values that move with `t` and the state.
    #[test]
    fn the_initial_context_computes_initial_values_in_dependency_order() {
        let system = System {
            params: vec![("k".into(), 2.0)],
            vars: vec![
                // a = x · 3: at the start x's initial value.
                var("a", op(Op::Mul, vec![E::State(1), E::Num(3.0)])),
                // b = t, but 100 in the initial context.
                Var { name: "b".into(), value: E::Time, initial: Some(E::Num(100.0)) },
                // c = INITIAL(t · k) = 5 · 2, d = INITIAL(y) = y's initial value.
                var("c", E::Initial(Box::new(op(Op::Mul, vec![E::Time, E::Param(0)])))),
                var("d", E::Initial(Box::new(E::State(0)))),
            ],
            states: vec![
                // y starts from a and b, which read x's initial value, defined after it.
                state("y", op(Op::Add, vec![E::Var(0), E::Var(1)]), op(Op::Add, vec![E::Var(2), E::Var(3), E::Var(1)])),
                state("x", op(Op::Add, vec![E::Param(0), E::Num(1.0)]), E::Var(0)),
            ],
            outputs: outputs(vec![E::Var(0), E::Var(1), E::Var(2), E::Var(3), E::State(0), E::State(1)]),
            tables: vec![],
            initial_time: 5.0,
        };
        let c = compile(&system);
        assert_eq!((c.states, c.outputs.len()), (vec!["y".to_string(), "x".into()], 6));
        let (y0, f, out) = run_both(&c.program, &[2.0], 7.0, &[1.0, 2.0]);
        assert_eq!(y0, [9.0 + 100.0, 3.0]);
        assert_eq!(f, [10.0 + 109.0 + 7.0, 6.0]);
        assert_eq!(out, [6.0, 7.0, 10.0, 109.0, 1.0, 2.0]);
        // Initial values depend on the parameters, through everything above.
        let (y0, f, _) = run_both(&c.program, &[0.5], 7.0, &[1.0, 2.0]);
        assert_eq!((y0, f), (vec![4.5 + 100.0, 1.5], vec![2.5 + 104.5 + 7.0, 6.0]));
    }

    #[test]
    fn cycles_are_refused_with_the_chain() {
        let mut system = System {
            vars: vec![
                var("a", op(Op::Add, vec![E::Var(1), E::Num(1.0)])),
                var("b", E::Var(2)),
                var("c", op(Op::Mul, vec![E::Var(0), E::State(0)])),
            ],
            states: vec![state("s", E::Num(1.0), E::Var(0))],
            ..System::default()
        };
        let e = compile_system(&system, Sensitivities::Off).unwrap_err();
        assert_eq!((e.site, e.message.as_str()), (Site::Var(0), "circular definition: a -> b -> c -> a"));
        // A state breaks the loop; but the initial values then go round it.
        system.vars[1].value = E::State(0);
        system.states[0].initial = E::Var(0);
        let e = compile_system(&system, Sensitivities::Off).unwrap_err();
        assert_eq!((e.site, e.message.as_str()), (Site::StateInitial(0), "circular initial values: s -> a -> b -> s"));
        // An ACTIVE INITIAL form cuts it.
        system.vars[1].initial = Some(E::Num(4.0));
        let (y0, ..) = run(&compile(&system).program, &[], 0.0, &[2.0]);
        assert_eq!(y0, [5.0]);
    }

    /// 10⁵ auxiliaries chained in both contexts, listed last-first, compile on a 1 MiB stack.
    #[test]
    fn a_long_chain_of_auxiliaries_compiles_without_recursion() {
        const N: usize = 100_000;
        // Auxiliary k of each chain sits at index N - 1 - k: every reference points forwards in the list.
        let chain = |offset: usize, start: Expr| {
            (0..N).rev().map(move |k| {
                let value = if k == 0 { start.clone() } else { op(Op::Add, vec![E::Var(offset + N - k), E::Num(1.0)]) };
                var(&format!("v{offset}_{k}"), value)
            })
        };
        let mut vars: Vec<Var> = chain(0, E::Param(0)).collect();
        vars.extend(chain(N, E::State(0)));
        let system = System {
            params: vec![("p".into(), 0.5)],
            vars,
            // x0 = p + N - 1; x' = x + N - 1.
            states: vec![state("x", E::Var(0), E::Var(N))],
            outputs: outputs(vec![E::Var(N)]),
            ..System::default()
        };
        let compile_it =
            move || compile_system(&system, Sensitivities::Jacobian).map(|c| run(&c.program, &[0.5], 0.0, &[2.0]));
        #[cfg(not(target_arch = "wasm32"))]
        let result =
            std::thread::Builder::new().stack_size(1 << 20).spawn(compile_it).unwrap().join().expect("no overflow");
        #[cfg(target_arch = "wasm32")]
        let result = compile_it();
        let (y0, f, out) = result.unwrap_or_else(|e| panic!("{e:?}"));
        let last = (N - 1) as f64;
        assert_eq!((y0, f, out), (vec![0.5 + last], vec![2.0 + last], vec![2.0 + last]));
    }

    /// Lookups in every mode, `If`, `Modulo`, `NanElse` and the inverse trigonometric functions: the Jacobian,
    /// the initial sensitivities, ∂F/∂p and the output derivatives against finite differences, and native code
    /// against the interpreter.
    #[test]
    fn derivatives_of_lookups_choices_and_remainders_match_finite_differences() {
        let (x, y, p0, p1) = (|| E::State(0), || E::State(1), || E::Param(0), || E::Param(1));
        let mul = |a, b| op(Op::Mul, vec![a, b]);
        let add = |a, b| op(Op::Add, vec![a, b]);
        let lookup = |mode, x| E::Lookup { table: 0, mode, x: Box::new(x) };
        let system = System {
            params: vec![("p0".into(), 0.7), ("p1".into(), 1.3)],
            vars: vec![
                var("l", lookup(LookupMode::Interpolate, mul(x(), p0()))),
                var("e", lookup(LookupMode::Extrapolate, add(y(), p1()))),
                var("i", op(Op::If, vec![op(Op::Gt, vec![x(), E::Num(1.0)]), mul(y(), p1()), mul(x(), x())])),
                var("m", op(Op::Modulo, vec![add(mul(y(), E::Num(3.0)), p0()), p1()])),
                var("inv", lookup(LookupMode::Invert, add(mul(x(), E::Num(0.5)), E::Num(0.3)))),
                var("area", E::LookupArea { table: 0, from: Box::new(x()), to: Box::new(add(y(), p0())) }),
                var(
                    "ne",
                    op(Op::NanElse, vec![op(Op::Log, vec![op(Op::Sub, vec![x(), E::Num(5.0)])]), mul(p1(), y())]),
                ),
                var(
                    "trig",
                    op(
                        Op::Add,
                        vec![
                            op(Op::Asin, vec![mul(x(), E::Num(0.3))]),
                            op(Op::Atan, vec![mul(y(), p0())]),
                            op(Op::Acos, vec![mul(E::Num(0.2), y())]),
                        ],
                    ),
                ),
                var("step", op(Op::Add, vec![lookup(LookupMode::Forward, x()), lookup(LookupMode::Backward, y())])),
                // INITIAL(x · p1) = 2 p0 p1, and an ACTIVE INITIAL auxiliary y starts from.
                var("init", E::Initial(Box::new(mul(x(), p1())))),
                Var { name: "active".into(), value: E::Time, initial: Some(mul(p0(), p1())) },
            ],
            states: vec![
                state("x", mul(p0(), E::Num(2.0)), op(Op::Sub, vec![add(E::Var(0), E::Var(2)), mul(E::Var(3), x())])),
                state(
                    "y",
                    add(lookup(LookupMode::Interpolate, p1()), E::Var(10)),
                    op(Op::Add, vec![mul(E::Var(1), E::Var(4)), E::Var(5), E::Var(6), E::Var(7), E::Var(8), E::Var(9)]),
                ),
            ],
            outputs: outputs(vec![add(mul(x(), y()), E::Var(0)), add(E::Var(3), mul(p0(), E::Var(5)))]),
            tables: vec![Table { name: "tab".into(), points: vec![(0.0, 0.0), (1.0, 2.0), (2.0, 2.5), (4.0, 1.0)] }],
            initial_time: 0.0,
        };
        let c = compile_system(&system, Sensitivities::Jacobian).unwrap_or_else(|e| panic!("{e:?}"));
        let (params, t, at) = ([0.7, 1.3], 0.4, [1.3, 0.8]);
        check_against_differences(&c.program, &params, t, &at);
        // Each value as its definition says: the F entries written out.
        let (_, f, _) = run_both(&c.program, &params, t, &at);
        let (xv, yv) = (1.3f64, 0.8f64);
        let l = 2.0 * (xv * 0.7);
        let e = 2.5 + (1.0 - 2.5) / 2.0 * (yv + 1.3 - 2.0);
        let m = (yv * 3.0 + 0.7) % 1.3;
        let inv = (xv * 0.5 + 0.3) * 0.5;
        let area = |x: f64| if x <= 1.0 { x * x } else { 1.0 + (x - 1.0) * (2.0 + (2.0 + 0.5 * (x - 1.0))) / 2.0 };
        let trig = math::asin(xv * 0.3) + math::atan(yv * 0.7) + math::acos(0.2 * yv);
        let want_y = e * inv + (area(yv + 0.7) - area(xv)) + 1.3 * yv + trig + (2.5 + 0.0) + 2.0 * 0.7 * 1.3;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        assert!(close(f[0], l + yv * 1.3 - m * xv), "{} vs {}", f[0], l + yv * 1.3 - m * xv);
        assert!(close(f[1], want_y), "{} vs {want_y}", f[1]);
        // Native code also for the sensitivity sections.
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut native = c.program.clone();
            native.compile_native().expect("the JIT compiles the sensitivity code");
            let (n, np) = (2, 2);
            let s: Vec<f64> = (0..n * np).map(|k| k as f64 - 1.5).collect();
            let mut results = Vec::new();
            for p in [&c.program, &native] {
                let mut regs = vec![0.0; p.n_regs];
                p.start(&mut regs, &params, &mut vec![0.0; n]);
                let (mut dy, mut ds) = (vec![0.0; n], vec![0.0; n * np]);
                p.sensitivity_rhs(&mut regs, &mut Vec::new(), t, &at, &s, &mut dy, &mut ds);
                let mut jac = vec![0.0; p.jac_entries.len()];
                p.jacobian_values(&mut regs, t, &at, &mut jac);
                results.push((dy, ds, jac));
            }
            assert_eq!(results[0], results[1]);
        }
        // The tangent code: the same derivatives (to rounding), one parameter at a time, and native code
        // bit-identical to the interpreter.
        let tangent = compile_system(&system, Sensitivities::Tangent).unwrap_or_else(|e| panic!("{e:?}"));
        let p = &tangent.program;
        assert!(p.tangent && !p.sensitivities && p.jac.is_empty() && p.pjac.is_empty() && p.dout_dy.is_empty());
        check_against_differences(p, &params, t, &at);
        let s: Vec<f64> = (0..4).map(|k| 0.3 * k as f64 - 0.7).collect();
        let (want, got) = (derivatives(&c.program, &params, t, &at, &s), derivatives(p, &params, t, &at, &s));
        for (w, g) in want.iter().zip(&got) {
            for (&w, &g) in w.iter().zip(g) {
                assert!((w - g).abs() <= 1e-13 * w.abs().max(1.0), "tangent {g} vs Jacobian mode {w}");
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut native = p.clone();
            native.compile_native().expect("the JIT compiles the tangent code");
            let interpreted: Vec<_> = got.iter().map(|v| crate::bits(v)).collect();
            let compiled: Vec<_> = derivatives(&native, &params, t, &at, &s).iter().map(|v| crate::bits(v)).collect();
            assert_eq!(interpreted, compiled);
        }
    }

    /// Sums of many terms are one left-to-right chain of IEEE additions, nothing reordered; operand counts
    /// are checked.
    #[test]
    fn long_operations_chain_from_the_left_and_operand_counts_are_checked() {
        let params = vec![("a".into(), 0.0), ("b".into(), 0.0), ("c".into(), 0.0), ("d".into(), 0.0)];
        let all = || (0..4).map(E::Param).collect::<Vec<_>>();
        let system = System {
            params,
            outputs: outputs(vec![
                op(Op::Add, all()),
                op(Op::Min, all()),
                op(Op::Max, all()),
                op(Op::Mul, all()),
                op(Op::And, all()),
                op(Op::Or, all()),
            ]),
            ..System::default()
        };
        let c = compile(&system);
        let p = [1e16, 1.0, 1.0, -1e16];
        let (_, _, out) = run_both(&c.program, &p, 0.0, &[]);
        // ((1e16 + 1) + 1) - 1e16 = 0: each addition rounds; any other grouping gives 2.
        assert_eq!(out, [0.0, -1e16, 1e16, -1e32, 1.0, 1.0]);
        let (_, _, out) = run_both(&c.program, &[0.0, 2.0, f64::NAN, 3.0], 0.0, &[]);
        assert_eq!(&out[4..], [0.0, 1.0]);

        for (expr, message) in [
            (op(Op::Add, vec![E::Num(1.0)]), "Op::Add takes at least 2 operands, found 1"),
            (op(Op::Sub, vec![E::Num(1.0), E::Num(2.0), E::Num(3.0)]), "Op::Sub takes 2 operands, found 3"),
            (op(Op::Neg, vec![E::Num(1.0), E::Num(2.0)]), "Op::Neg takes 1 operand, found 2"),
            (op(Op::If, vec![E::Num(1.0), E::Num(2.0)]), "Op::If takes 3 operands, found 2"),
            (
                op(Op::MulAdd, vec![E::Num(1.0), E::Num(2.0), E::Num(3.0)]),
                "Op::MulAdd is made by the compiler and cannot be written in a system",
            ),
            (
                op(Op::LookupArea, vec![E::Num(1.0), E::Num(2.0)]),
                "Op::LookupArea is made by the compiler and cannot be written in a system",
            ),
            (E::Var(3), "auxiliary 3 does not exist (the system has 0)"),
            (E::Param(4), "parameter 4 does not exist (the system has 4)"),
            (
                E::Lookup { table: 0, mode: LookupMode::Forward, x: Box::new(E::Time) },
                "lookup table 0 does not exist (the system has 0)",
            ),
        ] {
            let system = System {
                params: system.params.clone(),
                outputs: outputs(vec![E::Num(0.0), expr]),
                ..System::default()
            };
            let e = compile_system(&system, Sensitivities::Off).unwrap_err();
            assert_eq!((e.site, e.message.as_str()), (Site::Output(1), message));
        }
    }

    #[test]
    fn each_draw_is_a_slot_in_system_order_and_none_is_allowed_initially() {
        use crate::DrawKind::{Normal as N, Uniform as U};
        let system = System {
            vars: vec![var("unused", E::Draw(U)), var("n", E::Draw(N))],
            states: vec![State {
                name: "x".into(),
                initial: E::Num(0.0),
                update: op(Op::Add, vec![E::Var(1), E::Draw(U)]),
                kind: Update::Assign,
            }],
            outputs: outputs(vec![E::Var(1), op(Op::Mul, vec![E::Num(2.0), E::Draw(N)])]),
            ..System::default()
        };
        let c = compile(&system);
        assert_eq!(c.program.draws, [N, U, N], "the unused auxiliary's slot is dropped");
        let p = &c.program;
        let mut regs = vec![0.0; p.n_regs];
        let mut y = [0.0];
        p.start(&mut regs, &[], &mut y);
        let mut next = [0.0];
        p.step(&mut regs, 0.0, &y, &[0.5, 0.25, -1.0], &mut next);
        let mut out = [0.0; 2];
        p.outputs(&mut regs, 0.0, &y, &mut out);
        assert_eq!((next, out), ([0.75], [0.5, -2.0]), "outputs read the step's draws");

        let mut bad = system.clone();
        bad.states[0].initial = E::Var(1);
        let e = compile_system(&bad, Sensitivities::Off).unwrap_err();
        assert_eq!((e.site, e.message.as_str()), (Site::Var(1), "random draws are not allowed in initial values"));
        let mut bad = system;
        bad.outputs[0].1 = E::Initial(Box::new(E::Draw(N)));
        let e = compile_system(&bad, Sensitivities::Off).unwrap_err();
        assert_eq!((e.site, e.message.as_str()), (Site::Output(0), "random draws are not allowed in initial values"));
    }

    /// The deepest expression accepted compiles (with sensitivities and native code) on a 1 MiB stack; one
    /// level more is refused.
    #[test]
    fn nesting_is_bounded_and_the_deepest_accepted_fits_a_small_stack() {
        let nested = |depth: usize| {
            let mut e = Expr::State(0);
            for k in 1..depth {
                e = if k % 2 == 0 { op(Op::Neg, vec![e]) } else { op(Op::Sin, vec![e]) };
            }
            System { states: vec![state("x", Expr::Num(0.5), e)], ..System::default() }
        };
        let e = compile_system(&nested(MAX_DEPTH + 1), Sensitivities::Off).unwrap_err();
        assert_eq!(
            (e.site, e.message),
            (Site::StateUpdate(0), format!("the expression is nested deeper than {MAX_DEPTH} levels"))
        );
        let deepest = nested(MAX_DEPTH);
        let compile_it = move || {
            #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
            let mut c = compile_system(&deepest, Sensitivities::Jacobian).map_err(|e| e.message)?;
            #[cfg(not(target_arch = "wasm32"))]
            c.program.compile_native()?;
            Ok::<_, String>(run(&c.program, &[], 0.0, &[0.5]).1)
        };
        #[cfg(not(target_arch = "wasm32"))]
        let f = std::thread::Builder::new().stack_size(1 << 20).spawn(compile_it).unwrap().join().expect("no overflow");
        #[cfg(target_arch = "wasm32")]
        let f = compile_it();
        assert!(f.unwrap()[0].is_finite());
    }

    /// Every table read through the program, interpreted and native, is the table's own read, at the edges
    /// `lookup.rs` documents (and NaN, infinities).
    #[test]
    fn programs_read_tables_as_the_tables_do() {
        use LookupMode::*;
        let points = vec![(0.0, 1.0), (1.0, 3.0), (1.0, 5.0), (2.0, 4.0), (3.0, 4.0)];
        let modes = [Interpolate, Extrapolate, Forward, Backward, Invert];
        let mut exprs: Vec<Expr> =
            modes.iter().map(|&mode| E::Lookup { table: 0, mode, x: Box::new(E::State(0)) }).collect();
        exprs.push(E::LookupArea { table: 0, from: Box::new(E::Num(0.5)), to: Box::new(E::State(0)) });
        let system = System {
            states: vec![state("x", E::Num(0.0), E::Num(0.0))],
            outputs: outputs(exprs),
            tables: vec![Table { name: "t".into(), points: points.clone() }],
            ..System::default()
        };
        let c = compile(&system);
        let table = LookupTable::new(&points).expect("a valid table");
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        for x in [-inf, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, inf, nan] {
            let (_, _, out) = run_both(&c.program, &[], 0.0, &[x]);
            let mut want: Vec<f64> = modes.iter().map(|&mode| table.read(mode, x)).collect();
            want.push(table.area(0.5, x));
            assert_eq!(crate::bits(&out), crate::bits(&want), "at {x}");
        }
    }

    #[test]
    fn bad_tables_are_refused_at_the_table() {
        let system = System {
            outputs: outputs(vec![Expr::Lookup { table: 1, mode: LookupMode::Interpolate, x: Box::new(Expr::Time) }]),
            tables: vec![
                Table { name: "ok".into(), points: vec![(0.0, 1.0)] },
                Table { name: "falling".into(), points: vec![(1.0, 1.0), (0.0, 2.0)] },
            ],
            ..System::default()
        };
        let e = compile_system(&system, Sensitivities::Off).unwrap_err();
        assert_eq!(e.site, Site::Table(1));
        assert_eq!(
            e.message,
            "lookup 'falling': the x values of a lookup table must not decrease, but point 2 has x = 0 after x = 1"
        );
    }

    /// Tables are shared by clones and native code: a clone outliving the program it came from reads them.
    #[test]
    fn a_clone_with_native_code_outlives_the_original() {
        let system = System {
            outputs: outputs(vec![Expr::Lookup { table: 0, mode: LookupMode::Extrapolate, x: Box::new(Expr::Time) }]),
            tables: vec![Table { name: "t".into(), points: vec![(0.0, 1.0), (1.0, 3.0)] }],
            ..System::default()
        };
        #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
        let mut original = compile(&system).program;
        #[cfg(not(target_arch = "wasm32"))]
        original.compile_native().expect("the JIT compiles lookups");
        let clone = original.clone();
        drop(original);
        drop(system);
        assert_eq!(run(&clone, &[], 2.5, &[]).2, [6.0]);
    }
}
