//! From a read `.mdl` file to a [`System`] of scalar equations: subscripted variables are expanded to one
//! scalar per element combination ("cell"), references resolved to cells through the left-hand side's
//! subscripts (directly, through mappings and equivalences, or through subranges), vector functions
//! unrolled over their `range!`, macros instantiated per call, and every other built-in handed to
//! [`crate::builtins::lower_call`].
//!
//! - Literal constants (`x = 0.05`, `x[r] = 1, 2, 3`) are the model's parameters, element by element.
//! - Each top-level stock cell gets one more parameter, its case's initial value: the stock starts at
//!   `NanElse(input, the file's initial expression)`.
//! - Outputs are the stock cells, then every other non-constant, non-lookup cell, in file order.

mod allocation;
mod get;
mod vector;

use get::{Get, Read, get_args, get_call, get_kind};

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use parfit_expr::Op;
use parfit_expr::system::{Expr as S, LookupMode, State, System, Table, Update, Var};

use crate::builtins::{self, Arg};
use crate::data::{DataFiles, Files};
use crate::expr::{BinOp, Expr, Sub, UnOp};
use crate::lexer::Located;
use crate::mdl::{Macro, MdlFile};
use crate::parser::{DataMode, Entry, Equation, Members, Rhs};
use crate::subscripts::{Named, Subscripts};

/// The run's time settings from the `.Control` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Control {
    pub initial_time: f64,
    pub final_time: f64,
    pub time_step: f64,
    /// How often Vensim saves output.
    pub saveper: f64,
}

const CONTROL: [&str; 4] = ["initial time", "final time", "time step", "saveper"];

/// A lowered model.
#[derive(Debug)]
pub(crate) struct Lowered {
    /// Its parameters are the model's (`n_params` of them), then one input per stock.
    pub system: System,
    pub n_params: usize,
    pub control: Control,
    /// The stocks' names (the inputs), in order.
    pub inputs: Vec<String>,
    /// Parameters the model's structure depends on: (index, why).
    pub structural: Vec<(usize, String)>,
    /// Byte offset of the equation behind each var, state, output and table of the system.
    pub places: Places,
}

#[derive(Debug, Default)]
pub(crate) struct Places {
    pub vars: Vec<usize>,
    pub states: Vec<usize>,
    pub outputs: Vec<usize>,
    pub tables: Vec<usize>,
}

/// Where a cell's value lives in the system.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Param(usize),
    State(usize),
    Var(usize),
    Table(usize),
}

/// One scalar of a variable: the equation that defines it and the elements its left-hand side's ranges take.
#[derive(Debug, Clone)]
struct Cell {
    eq: usize,
    /// (range key, element key) for each range on the left-hand side.
    binding: Vec<(String, String)>,
    /// Its position in the equation's number list.
    number: usize,
    slot: Option<Slot>,
}

#[derive(Debug)]
struct Variable<'f> {
    name: String,
    at: usize,
    dims: Vec<usize>,
    eqs: Vec<(&'f Equation, usize)>,
    cells: Vec<Option<Cell>>,
}

/// A model or one instance of a macro.
#[derive(Debug, Default)]
struct Scope<'f> {
    vars: HashMap<String, usize>,
    variables: Vec<Variable<'f>>,
    /// A macro instance's inputs: their values in the caller.
    args: HashMap<String, S>,
    /// Macro instances are hidden: their constants are no parameters, their cells no outputs.
    hidden: bool,
    /// Prefix of the names of a macro instance's items.
    prefix: String,
}

/// The context an expression is lowered in.
#[derive(Debug, Clone)]
struct Env {
    scope: usize,
    /// (range key, element key); `range!` keys for the ranges vector functions run over.
    binding: Vec<(String, String)>,
    /// Names the cell, for the hidden items built-ins create.
    label: String,
}

/// What [`Lowerer::cell`] gives for a cell no equation defines: no slot.
static UNDEFINED: Cell = Cell { eq: 0, binding: Vec::new(), number: 0, slot: None };

/// How deeply macros may call macros.
const MAX_MACRO_DEPTH: usize = 32;
/// How many macro instances a model may make in all (macros that each call the next twice would make 2³²).
const MAX_MACRO_INSTANCES: usize = 100_000;

struct Lowerer<'f, 's> {
    /// Vensim output files holding the values of data variables without an equation.
    data_outputs: &'s [String],
    subs: Subscripts,
    macros: HashMap<String, &'f Macro>,
    scopes: Vec<Scope<'f>>,
    /// The system being built, and what built-ins keep while they add to it.
    lw: builtins::Lowering<'s>,
    control: Control,
    places: Places,
    /// Where each built-in call's label was lowered, to place what `builtins::finish` reports.
    labels: HashMap<String, usize>,
    /// The model's data files, when it has any.
    data: Option<DataFiles>,
    /// The market priority of each allocation call (see [`Lowerer::market_priority`]), by its arguments.
    markets: HashMap<String, S>,
    /// What each `GET …` equation read (by the equation's address), read once for all its cells.
    reads: HashMap<usize, Rc<Read>>,
    /// The equation being lowered, for the items built-ins add.
    at: usize,
    macro_depth: usize,
    instances: usize,
    /// Elements vector functions have unrolled so far, and charged to the memory budget (see
    /// [`Lowerer::charge_unrolled`]).
    unrolled: f64,
    unroll_total: f64,
    /// Each range's elements' positions as values (see [`Subscripts::positions`]), worked out once.
    positions: HashMap<usize, HashMap<String, f64>>,
    /// How many parameters the model has before the stocks' inputs.
    n_params: usize,
}

/// Lower a read file; `files` are where its `GET …` calls read (none: such calls are refused).
pub(crate) fn lower(file: &MdlFile, files: Option<Files>, data_outputs: &[String]) -> Result<Lowered, Located> {
    let mut data = files.map(DataFiles::new);
    let defs: Vec<_> = file
        .entries
        .iter()
        .filter_map(|(e, at)| match e {
            Entry::Range(r) => Some((r, *at)),
            _ => None,
        })
        .collect();
    let subs = Subscripts::new(&defs, |d| match &d.members {
        Members::Get(Expr::Call { key, text, args, at, .. }) if get_kind(key) == Some(Get::Subscript) => {
            let (data, args) = get_args(&mut data, text, args, *at, 5)?;
            let names = data
                .subscript(&args[0], &args[1], &args[2], &args[3], &args[4])
                .map_err(|m| Located::new(*at, format!("{}: {m}", text.to_uppercase())))?;
            Ok(names
                .into_iter()
                .map(|n| Sub { key: crate::lexer::normalise(&n), text: n, bang: false, at: *at })
                .collect())
        }
        _ => Err(Located::new(
            d.at,
            format!("the subscript range '{}' must be GET DIRECT SUBSCRIPT(…) or a list", d.name),
        )),
    })?;
    let equations = equations(&file.entries);
    let control = control(&equations)?;
    let final_time_at = equations.iter().find(|(e, _)| e.lhs.key == "final time").map_or(0, |(e, _)| e.lhs.at);
    let mut macros = HashMap::new();
    for m in &file.macros {
        macros.insert(m.name.key.clone(), m);
    }
    let mut system = System { initial_time: control.initial_time, ..System::default() };
    let lw = builtins::Lowering::new(&mut system, control.initial_time, control.time_step);
    let mut l = Lowerer {
        subs,
        macros,
        scopes: Vec::new(),
        lw,
        control,
        places: Places::default(),
        labels: HashMap::new(),
        data,
        data_outputs,
        markets: HashMap::new(),
        reads: HashMap::new(),
        at: 0,
        macro_depth: 0,
        instances: 0,
        unrolled: 0.0,
        unroll_total: 0.0,
        positions: HashMap::new(),
        n_params: 0,
    };
    let top: Vec<_> = equations.into_iter().filter(|(e, _)| !CONTROL.contains(&e.lhs.key.as_str())).collect();
    let scope = l.scope(&top, HashMap::new(), false, String::new())?;
    l.allocate_params(scope)?;
    let n_params = l.lw.system.params.len();
    l.n_params = n_params;
    let inputs = l.allocate_stocks(scope, true);
    l.allocate_rest(scope)?;
    l.lower_scope(scope)?;
    l.outputs(scope);
    builtins::finish(&mut l.lw).map_err(|e| Located::new(l.labels.get(&e.label).copied().unwrap_or(0), e.message))?;
    l.place_new_items();
    // A run without requested times saves every SAVEPER from INITIAL TIME to FINAL TIME: that table must fit.
    let Control { initial_time, final_time, time_step, saveper } = control;
    let saves = ((final_time - initial_time) / time_step.max(saveper)).floor() + 1.0;
    let outputs = l.lw.system.outputs.len();
    let what = format!("saving {outputs} outputs at {saves} times (FINAL TIME − INITIAL TIME over SAVEPER)");
    parfit_core::limits::check_allocation(&what, saves, 8.0 * (1 + outputs) as f64)
        .map_err(|m| Located::new(final_time_at, m))?;
    let structural = std::mem::take(&mut l.lw.structural);
    let places = l.places;
    Ok(Lowered { system, n_params, control, inputs, structural, places })
}

/// The equations among entries, with their offsets.
fn equations(entries: &[(Entry, usize)]) -> Vec<(&Equation, usize)> {
    entries
        .iter()
        .filter_map(|(e, at)| match e {
            Entry::Equation(q) => Some((q, *at)),
            _ => None,
        })
        .collect()
}

/// The control values: numbers, or expressions of numbers, other control values and constants.
fn control(equations: &[(&Equation, usize)]) -> Result<Control, Located> {
    let index: HashMap<&str, &Equation> = equations.iter().map(|(e, _)| (e.lhs.key.as_str(), *e)).collect();
    let get = |key: &str| -> Result<Option<f64>, Located> {
        match index.get(key) {
            None => Ok(None),
            Some(e) => const_value(e, &index, 0).map(Some),
        }
    };
    let missing = |what: &str| Located::new(0, format!("the .Control section must define {what}"));
    let initial_time = get("initial time")?.ok_or_else(|| missing("INITIAL TIME"))?;
    let final_time = get("final time")?.ok_or_else(|| missing("FINAL TIME"))?;
    let time_step = get("time step")?.ok_or_else(|| missing("TIME STEP"))?;
    let saveper = get("saveper")?.unwrap_or(time_step);
    let at = |key: &str| index.get(key).map_or(0, |e| e.lhs.at);
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

/// The value of a scalar equation computed from numbers and other such equations alone (a control value).
fn const_value(e: &Equation, index: &HashMap<&str, &Equation>, depth: usize) -> Result<f64, Located> {
    let not_constant = |at: usize| {
        Located::new(at, format!("{} must be computed from numbers and constants alone", e.lhs.name.to_uppercase()))
    };
    if depth > 50 || !e.lhs.subs.is_empty() {
        return Err(not_constant(e.lhs.at));
    }
    let (Rhs::Expr(x) | Rhs::Unchangeable(x)) = &e.rhs else { return Err(not_constant(e.lhs.at)) };
    fn eval(
        x: &Expr,
        index: &HashMap<&str, &Equation>,
        depth: usize,
        bad: &dyn Fn(usize) -> Located,
    ) -> Result<f64, Located> {
        Ok(match x {
            Expr::Num(v) => *v,
            Expr::Var { key, subs, at, .. } if subs.is_empty() => match index.get(key.as_str()) {
                Some(e) => const_value(e, index, depth + 1)?,
                None => return Err(bad(*at)),
            },
            Expr::Unary(UnOp::Neg, a) => -eval(a, index, depth, bad)?,
            Expr::Binary(op, a, b) => binary(*op, eval(a, index, depth, bad)?, eval(b, index, depth, bad)?),
            Expr::Chain(first, rest) => {
                let mut acc = eval(first, index, depth, bad)?;
                for (op, e) in rest {
                    acc = binary(*op, acc, eval(e, index, depth, bad)?);
                }
                acc
            }
            Expr::Var { at, .. } | Expr::Call { at, .. } => return Err(bad(*at)),
            _ => return Err(bad(0)),
        })
    }
    eval(x, index, depth, &not_constant)
}

fn binary(op: BinOp, a: f64, b: f64) -> f64 {
    bin_op(op).apply(a, b, 0.0, 0.0)
}

fn bin_op(op: BinOp) -> Op {
    match op {
        BinOp::Add => Op::Add,
        BinOp::Sub => Op::Sub,
        BinOp::Mul => Op::Mul,
        BinOp::Div => Op::Div,
        BinOp::Pow => Op::Pow,
        BinOp::Eq => Op::Eq,
        BinOp::Ne => Op::Ne,
        BinOp::Lt => Op::Lt,
        BinOp::Le => Op::Le,
        BinOp::Gt => Op::Gt,
        BinOp::Ge => Op::Ge,
        BinOp::And => Op::And,
        BinOp::Or => Op::Or,
    }
}

fn op2(op: Op, a: S, b: S) -> S {
    S::Op(op, vec![a, b])
}

/// `acc op b` as the left-to-right chain it continues: `((a + b) + c)` is one n-ary `Add` of `[a, b, c]`
/// (the same operations in the same order), so a sum of thousands of terms — or a SUM, VMIN … over a range of
/// thousands of elements — does not nest.
fn chain(op: Op, acc: S, b: S) -> S {
    match acc {
        S::Op(o, mut terms) if o == op && matches!(op, Op::Add | Op::Mul | Op::Min | Op::Max) => {
            terms.push(b);
            S::Op(o, terms)
        }
        acc => op2(op, acc, b),
    }
}

/// A cell's display name: `name` or `name[e1,e2]`.
fn cell_name(subs: &Subscripts, v: &Variable, index: usize) -> String {
    if v.dims.is_empty() {
        return v.name.clone();
    }
    let mut rest = index;
    let mut parts = vec![""; v.dims.len()];
    for (p, &d) in v.dims.iter().enumerate().rev() {
        let n = subs.ranges[d].elements.len();
        parts[p] = subs.element_text(&subs.ranges[d].elements[rest % n]);
        rest /= n;
    }
    format!("{}[{}]", v.name, parts.join(","))
}

impl<'f> Lowerer<'f, '_> {
    /// Group equations into variables and expand each to its cells.
    fn scope(
        &mut self,
        equations: &[(&'f Equation, usize)],
        args: HashMap<String, S>,
        hidden: bool,
        prefix: String,
    ) -> Result<usize, Located> {
        let mut scope = Scope { args, hidden, prefix, ..Scope::default() };
        for &(e, at) in equations {
            let key = &e.lhs.key;
            if key == "time" {
                return Err(Located::new(e.lhs.at, "'Time' is built in and cannot be defined"));
            }
            if self.subs.named(key).is_some_and(|n| matches!(n, Named::Range(_))) {
                return Err(Located::new(e.lhs.at, format!("'{}' is a subscript range, not a variable", e.lhs.name)));
            }
            match scope.vars.get(key) {
                Some(&v) => scope.variables[v].eqs.push((e, at)),
                None => {
                    scope.vars.insert(key.clone(), scope.variables.len());
                    scope.variables.push(Variable {
                        name: e.lhs.name.clone(),
                        at: e.lhs.at,
                        dims: Vec::new(),
                        eqs: vec![(e, at)],
                        cells: Vec::new(),
                    });
                }
            }
        }
        for v in &mut scope.variables {
            self.expand(v)?;
        }
        self.scopes.push(scope);
        Ok(self.scopes.len() - 1)
    }

    /// A variable's dimensions and its cells, each from the one equation that defines it.
    fn expand(&self, v: &mut Variable<'f>) -> Result<(), Located> {
        let n_dims = v.eqs[0].0.lhs.subs.len();
        if let Some((e, _)) = v.eqs.iter().find(|(e, _)| e.lhs.subs.len() != n_dims) {
            return Err(Located::new(
                e.lhs.at,
                format!("'{}' has {} subscripts here and {n_dims} in its first equation", e.lhs.name, e.lhs.subs.len()),
            ));
        }
        if v.eqs.len() > 1 && n_dims == 0 {
            let (e, _) = v.eqs[1];
            return Err(Located::new(
                e.lhs.at,
                format!("'{}' is defined twice (names ignore case, spaces and underscores)", e.lhs.name),
            ));
        }
        // Each equation's element lists per position.
        let mut lists: Vec<Vec<(Option<&str>, Vec<String>)>> = Vec::new();
        for (e, _) in &v.eqs {
            let mut per = Vec::new();
            for s in &e.lhs.subs {
                per.push(self.lhs_elements(s)?);
            }
            lists.push(per);
        }
        for p in 0..n_dims {
            let mut used: Vec<String> = Vec::new();
            let mut named = Vec::new();
            for per in &lists {
                if let Some(range) = per[p].0 {
                    named.push(self.subs.named(range).and_then(as_range).unwrap_or(0));
                }
                for e in &per[p].1 {
                    if !used.contains(e) {
                        used.push(e.clone());
                    }
                }
            }
            let dim = self.subs.dimension(&used, &named).ok_or_else(|| {
                let (e, _) = v.eqs[0];
                Located::new(
                    e.lhs.subs[p].at,
                    format!(
                        "no subscript range holds all the elements '{}' is defined for at position {}",
                        v.name,
                        p + 1
                    ),
                )
            })?;
            v.dims.push(dim);
        }
        let sizes: Vec<usize> = v.dims.iter().map(|&d| self.subs.ranges[d].elements.len()).collect();
        let count: f64 = sizes.iter().map(|&n| n as f64).product();
        parfit_core::limits::check_allocation(&format!("the {count} cells of '{}'", v.name), count, 256.0)
            .map_err(|e| Located::new(v.at, e))?;
        let total: usize = sizes.iter().product();
        v.cells = vec![None; total];
        for (k, ((e, _), per)) in v.eqs.iter().zip(&lists).enumerate() {
            let excluded: Vec<Vec<Vec<String>>> = e
                .lhs
                .except
                .iter()
                .map(|list| list.iter().map(|s| self.lhs_elements(s).map(|(_, els)| els)).collect())
                .collect::<Result<_, _>>()?;
            let mut tuple = vec![0usize; n_dims];
            let count: usize = per.iter().map(|(_, els)| els.len()).product();
            if let Rhs::Numbers(values) | Rhs::UnchangeableNumbers(values) = &e.rhs
                && values.len() != count
            {
                return Err(Located::new(
                    e.lhs.at,
                    format!("'{}' needs {count} numbers here, found {}", e.lhs.name, values.len()),
                ));
            }
            for number in 0..count {
                let elements: Vec<&String> = (0..n_dims).map(|p| &per[p].1[tuple[p]]).collect();
                let skip = excluded.iter().any(|ex| ex.iter().zip(&elements).all(|(set, e)| set.contains(e)));
                if !skip {
                    let mut index = 0;
                    for (p, el) in elements.iter().enumerate() {
                        let pos = self.subs.ranges[v.dims[p]].elements.iter().position(|x| x == *el).unwrap_or(0);
                        index = index * sizes[p] + pos;
                    }
                    let binding =
                        (0..n_dims).filter_map(|p| per[p].0.map(|r| (r.to_string(), elements[p].clone()))).collect();
                    if v.cells[index].is_some() {
                        return Err(Located::new(
                            e.lhs.at,
                            format!("{} is defined twice", cell_name(&self.subs, v, index)),
                        ));
                    }
                    v.cells[index] = Some(Cell { eq: k, binding, number, slot: None });
                }
                for p in (0..n_dims).rev() {
                    tuple[p] += 1;
                    if tuple[p] < per[p].1.len() {
                        break;
                    }
                    tuple[p] = 0;
                }
            }
        }
        // Cells no equation defines are no outputs; a reference to one is an error (see `slot_of`).
        Ok(())
    }

    /// The elements a left-hand side subscript stands for, with the range it names (if it names one).
    fn lhs_elements<'s>(&'s self, s: &'s Sub) -> Result<(Option<&'s str>, Vec<String>), Located> {
        match self.subs.named(&s.key) {
            Some(Named::Range(r)) => Ok((Some(s.key.as_str()), self.subs.ranges[r].elements.clone())),
            Some(Named::Element(e)) => Ok((None, vec![e.to_string()])),
            None => Err(Located::new(s.at, format!("'{}' is neither a subscript range nor an element", s.text))),
        }
    }

    /// A defined cell (see [`Lowerer::each_cell`]).
    fn cell(&self, scope: usize, v: usize, k: usize) -> &Cell {
        let cell = self.scopes[scope].variables[v].cells[k].as_ref();
        cell.unwrap_or(&UNDEFINED)
    }

    fn eq_of(&self, scope: usize, v: usize, k: usize) -> (&'f Equation, usize) {
        let var = &self.scopes[scope].variables[v];
        var.eqs[self.cell(scope, v, k).eq.min(var.eqs.len() - 1)]
    }

    /// The defined cells of a scope, variable by variable.
    fn each_cell(&self, scope: usize) -> Vec<(usize, usize)> {
        let vars = &self.scopes[scope].variables;
        (0..vars.len())
            .flat_map(|v| (0..vars[v].cells.len()).filter(move |&k| vars[v].cells[k].is_some()).map(move |k| (v, k)))
            .collect()
    }

    /// Where the value of cell `k` of variable `v` lives; an error naming it when no equation defines it.
    fn slot_of(&self, scope: usize, v: usize, k: usize, at: usize) -> Result<Slot, Located> {
        self.cell(scope, v, k).slot.ok_or_else(|| {
            let name = cell_name(&self.subs, &self.scopes[scope].variables[v], k);
            Located::new(at, format!("{name} has no equation"))
        })
    }

    fn set_slot(&mut self, scope: usize, v: usize, k: usize, slot: Slot) {
        if let Some(c) = self.scopes[scope].variables[v].cells[k].as_mut() {
            c.slot = Some(slot);
        }
    }

    fn name_of(&self, scope: usize, v: usize, k: usize) -> String {
        let s = &self.scopes[scope];
        format!("{}{}", s.prefix, cell_name(&self.subs, &s.variables[v], k))
    }

    /// Literal constants become parameters (of the model's scope) in file order.
    fn allocate_params(&mut self, scope: usize) -> Result<(), Located> {
        for (v, k) in self.each_cell(scope) {
            let (e, _) = self.eq_of(scope, v, k);
            let number = self.cell(scope, v, k).number;
            let value = match (&e.rhs, get_call(&e.rhs)) {
                (_, Some((Get::Constants, ..))) => match self.read(e)?.as_ref() {
                    Read::Values(values) => values.get(number).copied(),
                    Read::Series(_) => None,
                },
                (Rhs::Expr(x), _) => x.as_literal(),
                (Rhs::Numbers(values), _) => values.get(number).copied(),
                (Rhs::UnchangeableNumbers(values), _) => values.get(number).copied(),
                _ => None,
            };
            if let Some(value) = value {
                // Unchangeable constants and a macro's constants are no parameters.
                if self.scopes[scope].hidden || matches!(e.rhs, Rhs::UnchangeableNumbers(_)) {
                    let index = self.push_var(self.name_of(scope, v, k), S::Num(value), e.lhs.at);
                    self.set_slot(scope, v, k, Slot::Var(index));
                } else {
                    self.lw.system.params.push((self.name_of(scope, v, k), value));
                    self.set_slot(scope, v, k, Slot::Param(self.lw.system.params.len() - 1));
                }
            }
        }
        Ok(())
    }

    /// Stocks become states; with `inputs`, each gets an input parameter too. Returns the stocks' names.
    fn allocate_stocks(&mut self, scope: usize, inputs: bool) -> Vec<String> {
        let mut names = Vec::new();
        for (v, k) in self.each_cell(scope) {
            let (e, _) = self.eq_of(scope, v, k);
            if !matches!(e.rhs, Rhs::Stock { .. }) {
                continue;
            }
            let name = self.name_of(scope, v, k);
            if inputs {
                self.lw.system.params.push((name.clone(), f64::NAN));
            }
            self.lw.system.states.push(State {
                name: name.clone(),
                initial: S::Num(f64::NAN),
                update: S::Num(0.0),
                kind: Update::Integrate,
            });
            self.places.states.push(e.lhs.at);
            self.set_slot(scope, v, k, Slot::State(self.lw.system.states.len() - 1));
            names.push(name);
        }
        names
    }

    /// Every other cell: lookups become tables, the rest auxiliaries.
    fn allocate_rest(&mut self, scope: usize) -> Result<(), Located> {
        for (v, k) in self.each_cell(scope) {
            if self.cell(scope, v, k).slot.is_some() {
                continue;
            }
            let (e, _) = self.eq_of(scope, v, k);
            let name = self.name_of(scope, v, k);
            let number = self.cell(scope, v, k).number;
            let slot = match (&e.rhs, get_call(&e.rhs)) {
                (_, Some((Get::Lookups, ..))) => {
                    let points = self.read_points(e, number)?;
                    Slot::Table(self.push_table(name, points, e.lhs.at))
                }
                // A data variable: its series read on time.
                (rhs, Some((Get::Data, ..))) => {
                    let points = self.read_points(e, number)?;
                    let table = self.push_table(format!("{name} (data)"), points, e.lhs.at);
                    let mode = match rhs {
                        Rhs::Data { mode: DataMode::HoldBackward, .. } => LookupMode::Backward,
                        Rhs::Data { mode: DataMode::LookForward, .. } => LookupMode::Forward,
                        _ => LookupMode::Interpolate,
                    };
                    let value = S::Lookup { table, mode, x: Box::new(S::Time) };
                    Slot::Var(self.push_var(name, value, e.lhs.at))
                }
                (Rhs::Lookup(points), _) => Slot::Table(self.push_table(name, points.clone(), e.lhs.at)),
                (Rhs::Data { expr: None, mode }, _) => {
                    let points = self.output_points(&name, e)?;
                    let table = self.push_table(format!("{name} (data)"), points, e.lhs.at);
                    let mode = match mode {
                        DataMode::HoldBackward => LookupMode::Backward,
                        DataMode::LookForward => LookupMode::Forward,
                        DataMode::Interpolate => LookupMode::Interpolate,
                    };
                    let value = S::Lookup { table, mode, x: Box::new(S::Time) };
                    Slot::Var(self.push_var(name, value, e.lhs.at))
                }
                _ => Slot::Var(self.push_var(name, S::Num(f64::NAN), e.lhs.at)),
            };
            self.set_slot(scope, v, k, slot);
        }
        Ok(())
    }

    fn push_var(&mut self, name: String, value: S, at: usize) -> usize {
        self.lw.system.vars.push(Var { name, value, initial: None });
        self.places.vars.push(at);
        self.lw.system.vars.len() - 1
    }

    fn push_table(&mut self, name: String, points: Vec<(f64, f64)>, at: usize) -> usize {
        self.lw.system.tables.push(Table { name, points });
        self.places.tables.push(at);
        self.lw.system.tables.len() - 1
    }

    /// Lower every cell's equation.
    fn lower_scope(&mut self, scope: usize) -> Result<(), Located> {
        let mut charged = HashSet::new();
        for (v, k) in self.each_cell(scope) {
            let (e, _) = self.eq_of(scope, v, k);
            let cell = self.cell(scope, v, k).clone();
            let unrolled = self.unrolled;
            let env = Env { scope, binding: cell.binding.clone(), label: self.name_of(scope, v, k) };
            self.at = e.lhs.at;
            if get_call(&e.rhs).is_some() {
                continue; // read when allocated
            }
            match (&e.rhs, cell.slot) {
                (Rhs::Stock { rate, init }, Some(Slot::State(s))) => {
                    let update = self.expr(rate, &env)?;
                    let initial = self.expr(init, &env)?;
                    let initial = match self.scopes[scope].hidden {
                        true => initial,
                        // The input parameter sits right after the model's own parameters, in stock order.
                        false => S::Op(Op::NanElse, vec![S::Param(self.input_param(s)), initial]),
                    };
                    let st = &mut self.lw.system.states[s];
                    st.update = update;
                    st.initial = initial;
                }
                (Rhs::Expr(x) | Rhs::Unchangeable(x) | Rhs::Data { expr: Some(x), .. }, Some(Slot::Var(i))) => {
                    let (value, initial) = match x {
                        Expr::Call { key, args, at, .. } if key == "active initial" => {
                            let [value, initial] = args.as_slice() else {
                                return Err(Located::new(
                                    *at,
                                    format!("ACTIVE INITIAL takes 2 arguments, found {}", args.len()),
                                ));
                            };
                            (self.expr(value, &env)?, Some(self.expr(initial, &env)?))
                        }
                        x => (self.expr(x, &env)?, None),
                    };
                    self.lw.system.vars[i].value = value;
                    self.lw.system.vars[i].initial = initial;
                }
                _ => {} // parameters and tables are complete
            }
            if charged.insert((v, cell.eq)) {
                self.charge_unrolled(scope, v, cell.eq, self.unrolled - unrolled)?;
            }
        }
        Ok(())
    }

    /// After the first cell of an equation: the elements its vector functions unrolled, as many for each of
    /// the equation's cells, charged with every equation's before against the memory budget — so a SUM over
    /// 10⁴ elements in each of 10⁴ cells is refused at its first cell, not after 10⁸ terms.
    fn charge_unrolled(&mut self, scope: usize, v: usize, eq: usize, per_cell: f64) -> Result<(), Located> {
        if per_cell == 0.0 {
            return Ok(());
        }
        let var = &self.scopes[scope].variables[v];
        let cells = var.cells.iter().flatten().filter(|c| c.eq == eq).count() as f64;
        self.unroll_total += per_cell * cells;
        let what = format!(
            "vector functions over {} elements in all ({per_cell} in each of the {cells} cells of '{}')",
            self.unroll_total, var.name
        );
        parfit_core::limits::check_allocation(&what, self.unroll_total, 256.0).map_err(|m| Located::new(var.at, m))
    }

    /// The input parameter of top-level state `s`: top-level stocks are the first states, and their
    /// inputs follow the model's parameters in the same order.
    fn input_param(&self, s: usize) -> usize {
        self.n_params + s
    }

    /// Stocks, then the other cells that are not lookups, then the literal constants (the parameters), each
    /// group in file order: every column of Vensim's `.tab` but its lookups.
    fn outputs(&mut self, scope: usize) {
        let (mut stocks, mut rest, mut constants) = (Vec::new(), Vec::new(), Vec::new());
        for (v, k) in self.each_cell(scope) {
            let at = self.scopes[scope].variables[v].at;
            let name = self.name_of(scope, v, k);
            match self.cell(scope, v, k).slot {
                Some(Slot::State(s)) => stocks.push((name, S::State(s), at)),
                Some(Slot::Var(i)) => rest.push((name, S::Var(i), at)),
                Some(Slot::Param(p)) => constants.push((name, S::Param(p), at)),
                Some(Slot::Table(_)) | None => {}
            }
        }
        for (name, value, at) in stocks.into_iter().chain(rest).chain(constants) {
            self.lw.system.outputs.push((name, value));
            self.places.outputs.push(at);
        }
    }

    /// Lower an expression in `env`.
    fn expr(&mut self, x: &Expr, env: &Env) -> Result<S, Located> {
        Ok(match x {
            Expr::Num(v) => S::Num(*v),
            Expr::Var { key, text, subs, at } => self.reference(key, text, subs, *at, env)?,
            Expr::Call { key, text, subs, args, at } => self.call(key, text, subs, args, *at, env)?,
            Expr::Unary(UnOp::Neg, a) => S::Op(Op::Neg, vec![self.expr(a, env)?]),
            Expr::Unary(UnOp::Not, a) => S::Op(Op::Not, vec![self.expr(a, env)?]),
            Expr::Binary(op, a, b) => op2(bin_op(*op), self.expr(a, env)?, self.expr(b, env)?),
            Expr::Chain(first, rest) => {
                let mut acc = self.expr(first, env)?;
                for (op, e) in rest {
                    acc = chain(bin_op(*op), acc, self.expr(e, env)?);
                }
                acc
            }
            Expr::Table(_) => {
                return Err(Located::new(self.at, "a lookup table is only allowed as WITH LOOKUP's second argument"));
            }
            Expr::Literal(s) => {
                return Err(Located::new(self.at, format!("the quoted literal '{s}' is only allowed in GET … calls")));
            }
        })
    }

    fn reference(&mut self, key: &str, text: &str, subs: &[Sub], at: usize, env: &Env) -> Result<S, Located> {
        let scope = &self.scopes[env.scope];
        if subs.is_empty()
            && let Some(value) = scope.args.get(key)
        {
            return Ok(value.clone());
        }
        if let Some(&v) = scope.vars.get(key) {
            let k = self.cell_index(env, v, text, subs, at)?;
            return match self.slot_of(env.scope, v, k, at)? {
                Slot::Param(p) => Ok(S::Param(p)),
                Slot::State(s) => Ok(S::State(s)),
                Slot::Var(i) => Ok(S::Var(i)),
                Slot::Table(_) => {
                    Err(Located::new(at, format!("'{text}' is a lookup: call it with an argument, '{text}(…)'")))
                }
            };
        }
        if !subs.is_empty() {
            return Err(Located::new(at, format!("unknown variable '{text}'")));
        }
        match key {
            "time" => Ok(S::Time),
            "initial time" => Ok(S::Num(self.control.initial_time)),
            "final time" => Ok(S::Num(self.control.final_time)),
            "time step" => Ok(S::Num(self.control.time_step)),
            "saveper" => Ok(S::Num(self.control.saveper)),
            _ => match self.subs.named(key) {
                // A range as a value: the position (from 1) of its element in the equation's context, counted
                // in the widest range holding the range (Vensim counts a subrange's elements in its parent).
                Some(Named::Range(r)) => {
                    let sub = Sub { key: key.to_string(), text: text.to_string(), bang: false, at };
                    let e = self.element(env, &sub)?;
                    let positions = self.positions.entry(r).or_insert_with(|| self.subs.positions(r));
                    Ok(S::Num(positions.get(&e).copied().unwrap_or(f64::NAN)))
                }
                // An element as a value: its position in the widest range holding it.
                Some(Named::Element(e)) => Ok(S::Num(self.subs.position(e, &[e.to_string()]))),
                None => Err(Located::new(at, format!("unknown variable '{text}'"))),
            },
        }
    }

    /// The cell of variable `v` a reference with subscripts `subs` names in `env`.
    fn cell_index(&self, env: &Env, v: usize, text: &str, subs: &[Sub], at: usize) -> Result<usize, Located> {
        let var = &self.scopes[env.scope].variables[v];
        if subs.len() != var.dims.len() {
            return Err(Located::new(
                at,
                format!(
                    "'{text}' has {} subscript{}, found {}",
                    var.dims.len(),
                    if var.dims.len() == 1 { "" } else { "s" },
                    subs.len()
                ),
            ));
        }
        let mut index = 0;
        for (sub, &dim) in subs.iter().zip(&var.dims) {
            let e = self.element(env, sub)?;
            let range = &self.subs.ranges[dim];
            let pos = range.elements.iter().position(|x| *x == e).ok_or_else(|| {
                Located::new(
                    sub.at,
                    format!(
                        "'{}' is not an element of '{}', the range of '{text}' there",
                        self.subs.element_text(&e),
                        range.text
                    ),
                )
            })?;
            index = index * range.elements.len() + pos;
        }
        Ok(index)
    }

    /// The element a written subscript stands for in `env`.
    fn element(&self, env: &Env, sub: &Sub) -> Result<String, Located> {
        // The latest binding of a range wins (vector functions rebind the range they run along).
        let bound = |key: &str| env.binding.iter().rfind(|(r, _)| r == key).map(|(_, e)| e.clone());
        if sub.bang {
            return bound(&format!("{}!", sub.key)).ok_or_else(|| {
                Located::new(
                    sub.at,
                    format!("'{}!' is only allowed inside a vector function (SUM, PROD, VMIN, VMAX, …)", sub.text),
                )
            });
        }
        match self.subs.named(&sub.key) {
            Some(Named::Element(e)) => Ok(e.to_string()),
            Some(Named::Range(r)) => {
                if let Some(e) = bound(&sub.key) {
                    return Ok(e);
                }
                // A range mapped to (or from, or equivalent to) one on the left-hand side.
                for (key, e) in &env.binding {
                    if let Some(Named::Range(b)) = self.subs.named(key)
                        && let Some(m) = self.subs.map_element(b, e, r)
                    {
                        return Ok(m);
                    }
                }
                // A subrange or superrange of one on the left-hand side.
                for (key, e) in &env.binding {
                    if !key.ends_with('!') && self.subs.ranges[r].elements.contains(e) {
                        return Ok(e.clone());
                    }
                }
                Err(Located::new(
                    sub.at,
                    format!(
                        "the subscript range '{}' is not on the left-hand side (nor mapped to a range there)",
                        sub.text
                    ),
                ))
            }
            None => Err(Located::new(sub.at, format!("'{}' is neither a subscript range nor an element", sub.text))),
        }
    }

    /// The table a lookup argument names: a lookup variable (with its subscripts) or an inline table.
    fn table_arg(&mut self, x: &Expr, env: &Env, function: &str) -> Result<usize, Located> {
        match x {
            Expr::Var { key, text, subs, at } => {
                let scope = &self.scopes[env.scope];
                if let Some(&v) = scope.vars.get(key.as_str()) {
                    let k = self.cell_index(env, v, text, subs, *at)?;
                    if let Slot::Table(t) = self.slot_of(env.scope, v, k, *at)? {
                        return Ok(t);
                    }
                }
                Err(Located::new(*at, format!("{function} needs the name of a lookup here, found '{text}'")))
            }
            Expr::Table(points) => Ok(self.push_table(format!("{} (table)", env.label), points.clone(), self.at)),
            _ => Err(Located::new(self.at, format!("{function} needs the name of a lookup here"))),
        }
    }

    fn call(&mut self, key: &str, text: &str, subs: &[Sub], args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        let upper = key.to_uppercase();
        // A lookup called by name.
        if let Some(&v) = self.scopes[env.scope].vars.get(key) {
            let k = self.cell_index(env, v, text, subs, at)?;
            let Slot::Table(table) = self.slot_of(env.scope, v, k, at)? else {
                return Err(Located::new(at, format!("'{text}' is not a lookup, so it cannot be called")));
            };
            let [x] = args else {
                return Err(Located::new(at, format!("the lookup '{text}' takes 1 argument, found {}", args.len())));
            };
            let x = self.expr(x, env)?;
            return Ok(S::Lookup { table, mode: LookupMode::Interpolate, x: Box::new(x) });
        }
        if !subs.is_empty() {
            return Err(Located::new(at, format!("unknown lookup '{text}'")));
        }
        if let Some(m) = self.macros.get(key).copied() {
            return self.instantiate(m, args, at, env);
        }
        let arity = |n: usize| -> Result<(), Located> {
            if args.len() == n {
                Ok(())
            } else {
                Err(Located::new(
                    at,
                    format!("{upper} takes {n} argument{}, found {}", if n == 1 { "" } else { "s" }, args.len()),
                ))
            }
        };
        match key {
            "sum" | "prod" | "vmin" | "vmax" => {
                arity(1)?;
                let op = match key {
                    "sum" => Op::Add,
                    "prod" => Op::Mul,
                    "vmin" => Op::Min,
                    _ => Op::Max,
                };
                let values = self.unroll(&args[0], env, &upper, at)?;
                Ok(values.into_iter().reduce(|a, b| chain(op, a, b)).unwrap_or(S::Num(0.0)))
            }
            "elmcount" => {
                arity(1)?;
                match &args[0] {
                    Expr::Var { key, text, subs, at } if subs.is_empty() => match self.subs.named(key) {
                        Some(Named::Range(r)) => Ok(S::Num(self.subs.ranges[r].elements.len() as f64)),
                        _ => Err(Located::new(*at, format!("ELMCOUNT needs a subscript range, found '{text}'"))),
                    },
                    _ => Err(Located::new(at, "ELMCOUNT needs a subscript range")),
                }
            }
            "vector select" => self.vector_select(args, at, env),
            "vector elm map" => self.vector_elm_map(args, at, env),
            "vector rank" | "vector sort order" => {
                arity(2)?;
                self.vector_rank(key == "vector rank", &args[0], &args[1], &upper, at, env)
            }
            "vector reorder" => {
                arity(2)?;
                self.vector_reorder(&args[0], &args[1], at, env)
            }
            "invert matrix" => self.invert_matrix(args, at, env),
            "allocate by priority" => self.allocate_by_priority(args, at, env),
            "allocate available" => self.allocate_available(args, at, env),
            "with lookup" => {
                arity(2)?;
                let x = self.expr(&args[0], env)?;
                let table = self.table_arg(&args[1], env, "WITH LOOKUP")?;
                Ok(S::Lookup { table, mode: LookupMode::Interpolate, x: Box::new(x) })
            }
            "active initial" => {
                Err(Located::new(at, "ACTIVE INITIAL must be the whole right-hand side of an auxiliary"))
            }
            // The simulation's time (origin 0) or its initial time (1) in model units (measure 0), offset;
            // calendar measures and the computer's clock (origin 2) are not supported.
            "get time value" => {
                arity(3)?;
                let origin = match (args[0].as_literal(), args[2].as_literal()) {
                    (Some(origin), Some(measure)) if origin == 0.0 && measure == 0.0 => S::Time,
                    (Some(origin), Some(measure)) if origin == 1.0 && measure == 0.0 => {
                        S::Num(self.control.initial_time)
                    }
                    _ => {
                        return Err(Located::new(
                            at,
                            "GET TIME VALUE is supported for the simulation's time or its initial time in model \
                             units only: GET TIME VALUE(0 or 1, offset, 0)",
                        ));
                    }
                };
                Ok(op2(Op::Add, origin, self.expr(&args[1], env)?))
            }
            k if get_kind(k).is_some() => Err(Located::new(
                at,
                format!("the Vensim function {upper} is supported only as the whole right-hand side of an equation"),
            )),
            k if k.starts_with("vector ") || k.starts_with("allocate") || k.starts_with("get ") || k == "find zero" => {
                Err(Located::new(at, format!("the Vensim function {upper} is not supported")))
            }
            _ => self.builtin(&upper, text, args, at, env),
        }
    }

    fn builtin(&mut self, upper: &str, text: &str, args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        let Some(info) = builtins::builtin(upper) else {
            if builtins::is_unsupported(upper) {
                return Err(Located::new(at, format!("the Vensim function {upper} is not supported")));
            }
            return Err(Located::new(
                at,
                format!("'{text}(…)' is not a Vensim function this plugin knows, nor a lookup or macro of the model"),
            ));
        };
        if args.len() < info.min_args || args.len() > info.max_args {
            let range = if info.min_args == info.max_args {
                format!("{}", info.min_args)
            } else {
                format!("{} to {}", info.min_args, info.max_args)
            };
            return Err(Located::new(at, format!("{upper} takes {range} arguments, found {}", args.len())));
        }
        let mut lowered = Vec::with_capacity(args.len());
        for (k, a) in args.iter().enumerate() {
            lowered.push(if info.table_args.contains(&k) {
                Arg::Table(self.table_arg(a, env, upper)?)
            } else {
                Arg::Value(self.expr(a, env)?)
            });
        }
        self.labels.entry(env.label.clone()).or_insert(self.at);
        let result = builtins::lower_call(&mut self.lw, upper, lowered, &env.label);
        self.place_new_items();
        result.map_err(|m| Located::new(at, m))
    }

    /// Place the items built-ins added at the equation being lowered.
    fn place_new_items(&mut self) {
        let at = self.at;
        let p = &mut self.places;
        p.vars.resize(self.lw.system.vars.len(), at);
        p.states.resize(self.lw.system.states.len(), at);
        p.tables.resize(self.lw.system.tables.len(), at);
    }

    /// One instance of a macro: its own copy of every variable, inputs bound to the call's arguments.
    fn instantiate(&mut self, m: &'f Macro, args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        if args.len() != m.inputs.len() {
            return Err(Located::new(
                at,
                format!("the macro {} takes {} arguments, found {}", m.name.text, m.inputs.len(), args.len()),
            ));
        }
        if let Some(out) = m.outputs.first() {
            return Err(Located::new(
                out.at,
                format!("the macro {}'s extra outputs (after ':') are not supported", m.name.text),
            ));
        }
        if self.macro_depth == MAX_MACRO_DEPTH {
            return Err(Located::new(at, format!("macros call each other more than {MAX_MACRO_DEPTH} levels deep")));
        }
        if self.instances == MAX_MACRO_INSTANCES {
            return Err(Located::new(
                at,
                format!("more than {MAX_MACRO_INSTANCES} macro instances (macros calling macros)"),
            ));
        }
        self.instances += 1;
        let prefix = format!("{}.{}#{}.", env.label, m.name.text, self.instances);
        let mut bound = HashMap::new();
        for (input, a) in m.inputs.iter().zip(args) {
            let value = self.expr(a, env)?;
            // The argument is computed once, whatever the macro does with it.
            let index = self.push_var(format!("{prefix}{}", input.text), value, self.at);
            bound.insert(input.key.clone(), S::Var(index));
        }
        if let Some((Entry::Range(r), _)) = m.entries.iter().find(|(e, _)| matches!(e, Entry::Range(_))) {
            return Err(Located::new(r.at, "subscript ranges inside macros are not supported"));
        }
        let equations = equations(&m.entries);
        if let Some((e, _)) = equations.iter().find(|(e, _)| !e.lhs.subs.is_empty()) {
            return Err(Located::new(e.lhs.at, "subscripted variables inside macros are not supported"));
        }
        let outer_at = self.at;
        self.macro_depth += 1;
        let scope = self.scope(&equations, bound, true, prefix)?;
        self.allocate_params(scope)?;
        self.allocate_stocks(scope, false);
        self.allocate_rest(scope)?;
        self.lower_scope(scope)?;
        self.macro_depth -= 1;
        self.at = outer_at;
        let Some(&v) = self.scopes[scope].vars.get(&m.name.key) else {
            return Err(Located::new(m.name.at, format!("the macro {} has no equation named after it", m.name.text)));
        };
        Ok(match self.cell(scope, v, 0).slot {
            Some(Slot::State(s)) => S::State(s),
            Some(Slot::Var(i)) => S::Var(i),
            Some(Slot::Param(p)) => S::Param(p),
            _ => return Err(Located::new(m.name.at, format!("the macro {}'s result is a lookup", m.name.text))),
        })
    }
}

fn as_range(n: Named) -> Option<usize> {
    match n {
        Named::Range(r) => Some(r),
        Named::Element(_) => None,
    }
}
