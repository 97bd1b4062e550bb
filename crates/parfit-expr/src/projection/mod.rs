//! The projection language: actuarial models (lifelib's `BasicTerm_ME`, `CashValue_ME`) as model files.
//!
//! A model is a list of definitions, one a line (see `plugins/actuarial/LANGUAGE.md`): parameters, monthly
//! cells (`premiums = premium_pp * pols_if`), recursions (`av[0] = …`, `av[t+1] = …`), present values
//! (`pv pv_premiums = premiums * disc`) and per-policy results. It reads the policy's model-point row
//! (`mp.sum_assured`, text columns included) and assumption tables by key (`mort[age, duration]`,
//! `product[mp.spec_id].load_prem_rate`).
//!
//! [`compile_projection`] checks the model against the model-point columns and tables it is given (errors at
//! `file:line:column`) and compiles it with the crate's register-code emitter into two sections: the policy
//! code (everything that does not vary by month: attributes, parameters, start values, per-policy table
//! reads) run once per policy, and the month code run once per month. Parameters are constants of the
//! compiled program, folded into the code. Table reads become reads of the crate's lookup tables
//! ([`LookupTable`], `Backward` mode at a whole index, so each key is computed in register code and the read
//! is native), text values become numbered symbols. [`Projection::run`] then runs a policy without
//! allocating.

mod passes;
mod read;
mod syntax;

pub use read::{Points, numpy_normal_table, read_points, read_table, scenario_ids};
pub use syntax::{KeyDecl, Range, TableDecl};

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::emit::{Emitter, Level, Val};
use crate::eval::{Instr, Op, Program, run};
use crate::lexer::{Located, Pos};
use crate::lookup::LookupTable;
use crate::system::LookupMode;
use passes::{PROJ_LEN, Pass, run_length, stages, started_cells};
use syntax::{Expr, Kind, Node, Stmt, When};

/// What a value is: numbers take arithmetic, booleans conditions, text only comparison and table keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Number,
    Bool,
    Text,
}

impl ValueKind {
    fn word(self) -> &'static str {
        match self {
            ValueKind::Number => "a number",
            ValueKind::Bool => "a condition (true or false)",
            ValueKind::Text => "text",
        }
    }
}

/// A column of the model-point table the model may read as `mp.NAME`.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub kind: ValueKind,
}

/// One key (dimension) of a table: its values in order.
#[derive(Debug, Clone)]
pub enum Key {
    /// Whole-number keys, increasing. With `ultimate`, keys past the last read the last (a select-and-ultimate
    /// table's ultimate column).
    Ints { values: Vec<i64>, ultimate: bool },
    /// Text keys (product codes, column names), distinct.
    Texts(Vec<String>),
}

impl Key {
    fn len(&self) -> usize {
        match self {
            Key::Ints { values, .. } => values.len(),
            Key::Texts(v) => v.len(),
        }
    }
}

/// A table column's values, row-major over the keys (the last key fastest).
#[derive(Debug, Clone)]
pub enum ColumnData {
    Numbers(Vec<f64>),
    Bools(Vec<bool>),
    Texts(Vec<String>),
}

impl ColumnData {
    fn len(&self) -> usize {
        match self {
            ColumnData::Numbers(v) => v.len(),
            ColumnData::Bools(v) => v.len(),
            ColumnData::Texts(v) => v.len(),
        }
    }
}

/// An assumption table as the host read it. A read with a key outside the table gives `missing` (numbers;
/// false and no text for other columns); `None` makes such a read NaN.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub keys: Vec<(String, Key)>,
    pub columns: Vec<(String, ColumnData)>,
    pub missing: Option<f64>,
}

/// The value of one attribute of a policy.
#[derive(Debug, Clone, Copy)]
pub enum AttrValue<'a> {
    Number(f64),
    Text(&'a str),
}

/// A compiled projection model, ready to run policies.
#[derive(Debug)]
pub struct ProjectionProgram {
    attributes: Vec<Attribute>,
    /// The policy code as `setup`, the month code as `rhs` with `f` = the cells' registers then the
    /// recursions' and present values' next values; the state registers hold the recursions and the present
    /// values' running sums. So the month code runs interpreted or natively ([`Program::compile_native`])
    /// through [`Program::rhs`].
    program: Program,
    /// The cells that vary by month only: `rhs` computes them for month `t` into `f`, once per month of a run;
    /// the month code reads them from the input registers after the attributes.
    month_only: Program,
    /// The scenario attribute (index, kind), which the month-only cells may read.
    scenario: Option<(usize, ValueKind)>,
    /// The passes over the months before this one, in order: each sums the present values that monthly values
    /// of later passes read (see [`stages`]).
    pre_passes: Vec<Pass>,
    /// The register of the policy's projection length after the policy code, when the model has one.
    proj_len: Option<u32>,
    /// Where `proj_len` is defined (`file:line:column`), for a policy's bad length.
    proj_len_at: String,
    /// Run after the last month, with the state registers holding the final sums: the results.
    finish: Vec<Instr>,
    /// Where each state's start value is after the policy code.
    starts: Vec<u32>,
    cells: Vec<String>,
    /// Per cell, whether it is the policy's alone (no month changes it): the policy code leaves it in its
    /// register, so its value in month 0 needs no month run.
    policy_cells: Vec<bool>,
    pvs: Vec<String>,
    results: Vec<(String, u32)>,
    /// Each text's number, looked up for every text attribute of every point.
    symbols: FxHashMap<String, f64>,
    /// The model's `output NAME = cell [as "label"], …` declarations, in order: (name, [(cell, label)]).
    outputs: Vec<(String, Vec<(String, String)>)>,
    /// The month loop in native code, after [`ProjectionProgram::compile_native`].
    #[cfg(not(target_arch = "wasm32"))]
    native: Option<crate::jit::MonthLoop>,
    /// The policy code in native code, after [`ProjectionProgram::compile_native_setup`]: a program whose
    /// right-hand side is the policy code and whose results are the registers it writes that are read after
    /// it, in order.
    #[cfg(not(target_arch = "wasm32"))]
    native_setup: Option<(Program, Vec<u32>)>,
}

const T_REG: u32 = 0;

/// Functions of the language and their number of arguments.
const FUNCTIONS: [(&str, usize); 12] = [
    ("min", 2),
    ("max", 2),
    ("exp", 1),
    ("log", 1),
    ("atan", 1),
    ("sqrt", 1),
    ("abs", 1),
    ("floor", 1),
    ("round", 1),
    ("erfc", 1),
    ("norm_cdf", 1),
    ("has", 1),
];

struct Compiler<'a> {
    file: &'a str,
    stmts: &'a [Stmt],
    /// Cells and recursions by name: (statement of the value now or the start, statement of the next value).
    defs: HashMap<&'a str, (usize, Option<usize>)>,
    params: HashMap<String, f64>,
    attrs: HashMap<&'a str, (usize, ValueKind)>,
    tables: HashMap<&'a str, &'a Table>,
    /// Each table column's lookup table (numbers and conditions: made when first read, so a program holds only
    /// the columns it reads), and each non-arithmetic key's position and membership tables.
    columns: HashMap<(String, String), (Option<u32>, ValueKind)>,
    key_tables: HashMap<(String, usize), (u32, u32)>,
    symbols: FxHashMap<String, f64>,
    em: Emitter,
    state_regs: HashMap<&'a str, u32>,
    /// The registers holding last month's value of the cells and recursions read as `x[t-1]`.
    lag_regs: HashMap<&'a str, u32>,
    pv_regs: HashMap<&'a str, u32>,
    /// The present values monthly cells read: the input register of each, with its pass.
    pv_inputs: HashMap<&'a str, (u32, usize)>,
    /// The pass over the months being compiled (see [`stages`]).
    pass: usize,
    done: HashMap<(String, When), (Val, ValueKind)>,
    active: Vec<(String, When)>,
    /// While compiling results: month values are out of reach.
    in_results: bool,
    /// Cells that vary by month but not by policy, computed once per run for each month (the month-table
    /// program) and read from these input registers.
    month_inputs: HashMap<&'a str, (u32, ValueKind)>,
    /// Nesting of `expr` calls (through definitions read by definitions), bounded by [`MAX_DEPTH`].
    depth: usize,
    /// Whether cells that are functions of one table read become reads of a column of their values
    /// (`mort_rate_mth = 1 - (1 - mort[age, duration]) ^ (1/12)` is computed once per table cell).
    derive: bool,
    /// While deriving: the table read (by its position) that reads this value instead.
    substitute: Option<(Pos, Val)>,
    /// While emitting a derived read: the column (lookup table, kind, value for a missing key) read instead.
    derived_column: Option<(u32, ValueKind, f64)>,
    /// What each cell is a function of, once known.
    sources: HashMap<String, Source>,
    /// Set by `has(TABLE[keys])`: the next table read gives whether the table has the keys, not its value.
    membership: bool,
}

/// What a value is a function of: nothing that varies, one table read (by its position), or more.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Const,
    Read(Pos),
    Many,
}

fn combine(a: Source, b: Source) -> Source {
    match (a, b) {
        (Source::Const, x) | (x, Source::Const) => x,
        (Source::Read(p), Source::Read(q)) if p == q => a,
        _ => Source::Many,
    }
}

/// How deeply expressions may nest through the definitions they read (each definition has at most
/// [`syntax::MAX_NODES`] nodes): bounds the compiler's recursion.
const MAX_DEPTH: usize = 500;

fn err(file: &str, pos: Pos, message: impl std::fmt::Display) -> String {
    format!("{file}:{}:{}: {message}", pos.line, pos.col)
}

impl<'a> Compiler<'a> {
    fn e(&self, pos: Pos, message: impl std::fmt::Display) -> String {
        err(self.file, pos, message)
    }

    fn symbol(&mut self, s: &str) -> f64 {
        let n = self.symbols.len() as f64;
        *self.symbols.entry(s.to_string()).or_insert(n)
    }

    fn table(&mut self, points: Vec<(f64, f64)>) -> Result<u32, String> {
        let t = LookupTable::new(&points)?;
        self.em.tables.push(t);
        Ok((self.em.tables.len() - 1) as u32)
    }

    /// A lookup table read by position: `values[i]` at `i`.
    fn column(&mut self, values: Vec<f64>) -> Result<u32, String> {
        self.em.tables.push(LookupTable::from_values(values)?);
        Ok((self.em.tables.len() - 1) as u32)
    }

    /// A number or condition column's values (conditions as 1 and 0) and the value a read outside the table
    /// gives; `None` for a text column. Numbers are the host's, not a copy.
    fn column_values(&self, table: &str, col: &str) -> Option<(std::borrow::Cow<'a, [f64]>, f64)> {
        let t: &'a Table = self.tables.get(table)?;
        match &t.columns.iter().find(|(n, _)| n == col)?.1 {
            ColumnData::Numbers(v) => Some((v.as_slice().into(), t.missing.unwrap_or(f64::NAN))),
            ColumnData::Bools(v) => Some((v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect(), 0.0)),
            ColumnData::Texts(_) => None,
        }
    }

    /// The lookup table of a column, made on its first read.
    fn column_table(&mut self, table: &str, col: &str) -> Result<u32, String> {
        let key = (table.to_string(), col.to_string());
        match self.columns.get(&key) {
            Some(&(Some(id), _)) => return Ok(id),
            Some(_) => {}
            None => return Err(format!("internal: table '{table}' has no column '{col}'")),
        }
        let Some((values, _)) = self.column_values(table, col) else {
            return Err(format!("internal: column '{col}' of table '{table}' has no lookup table"));
        };
        let id = self.column(values.into_owned())?;
        if let Some(c) = self.columns.get_mut(&key) {
            c.0 = Some(id);
        }
        Ok(id)
    }

    /// Turn a table's keys into lookup tables and check its columns (whose lookup tables are made when read).
    fn load(&mut self, t: &'a Table) -> Result<(), String> {
        let name = &t.name;
        let cells: usize = t.keys.iter().fold(1usize, |n, (_, k)| n.saturating_mul(k.len()));
        parfit_core::limits::check_allocation(&format!("table '{name}'"), cells as f64 * t.columns.len() as f64, 48.0)?;
        if t.keys.is_empty() || cells == 0 {
            return Err(format!("table '{name}': no keys or no rows"));
        }
        for (k, (kname, key)) in t.keys.iter().enumerate() {
            let values: Vec<f64> = match key {
                Key::Ints { values, .. } => {
                    if values.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!("table '{name}': the values of key '{kname}' must increase"));
                    }
                    if values.windows(2).all(|w| w[1] - w[0] == 1) {
                        continue;
                    }
                    values.iter().map(|&v| v as f64).collect()
                }
                Key::Texts(labels) => {
                    let mut seen = HashSet::new();
                    let mut ids = vec![];
                    for l in labels {
                        if !seen.insert(l) {
                            return Err(format!("table '{name}': key '{kname}' has '{l}' twice"));
                        }
                        ids.push(self.symbol(l));
                    }
                    ids
                }
            };
            let mut sorted: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, &v)| (v, i as f64)).collect();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            let position = self.table(sorted.clone())?;
            let member = self.table(sorted.iter().map(|&(v, _)| (v, v)).collect())?;
            self.key_tables.insert((name.clone(), k), (position, member));
        }
        for (cname, data) in &t.columns {
            if data.len() != cells {
                return Err(format!(
                    "table '{name}': column '{cname}' has {} values but the keys make {cells}",
                    data.len()
                ));
            }
            let key = (name.clone(), cname.clone());
            match data {
                ColumnData::Numbers(v) => {
                    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                        return Err(format!("table '{name}': column '{cname}', value {} is not finite", i + 1));
                    }
                    self.columns.insert(key, (None, ValueKind::Number));
                }
                ColumnData::Bools(_) => {
                    self.columns.insert(key, (None, ValueKind::Bool));
                }
                ColumnData::Texts(v) => {
                    // Numbered now, so that every program numbers the texts alike.
                    let ys: Vec<f64> = v.iter().map(|s| self.symbol(s)).collect();
                    let id = self.column(ys)?;
                    self.columns.insert(key, (Some(id), ValueKind::Text));
                }
            }
        }
        Ok(())
    }

    fn num(&mut self, node: &Node) -> Result<Val, String> {
        self.typed(node, ValueKind::Number)
    }

    fn typed(&mut self, node: &Node, want: ValueKind) -> Result<Val, String> {
        let (v, k) = self.expr(node)?;
        if k != want {
            let what = match &node.0 {
                Expr::Attr(n) if n == SCENARIO => format!("'scenario' is {}", k.word()),
                Expr::Attr(n) => format!("'mp.{n}' is {}", k.word()),
                Expr::Name(n, _) => format!("'{n}' is {}", k.word()),
                _ => format!("this is {}", k.word()),
            };
            return Err(self.e(node.1, format!("{what}, but {} is needed here", want.word())));
        }
        Ok(v)
    }

    fn op(&mut self, op: Op, a: Val, b: Val) -> Val {
        self.em.op(op, a, b)
    }

    fn expr(&mut self, node: &Node) -> Result<(Val, ValueKind), String> {
        self.depth += 1;
        let v = if self.depth > MAX_DEPTH {
            Err(self.e(node.1, format!("definitions read definitions more than {MAX_DEPTH} levels deep")))
        } else {
            self.expr_at(node)
        };
        self.depth -= 1;
        v
    }

    fn expr_at(&mut self, node: &Node) -> Result<(Val, ValueKind), String> {
        let (expr, pos) = node;
        let pos = *pos;
        use ValueKind::*;
        Ok(match expr {
            Expr::Num(v) => (Val::Const(*v), Number),
            Expr::Text(s) => (Val::Const(self.symbol(s)), Text),
            Expr::Attr(name) => match self.attrs.get(name.as_str()) {
                Some(&(i, kind)) => (Val::Reg((1 + self.em.n_states + i) as u32, Level::Param), kind),
                None if name == SCENARIO => {
                    return Err(self.e(pos, "'scenario' is the run's scenario id, which this run does not give"));
                }
                None => {
                    let mut known: Vec<&str> = self.attrs.keys().copied().filter(|a| *a != SCENARIO).collect();
                    known.sort();
                    return Err(self.e(
                        pos,
                        format!("unknown attribute 'mp.{name}' (the model points have: {})", known.join(", ")),
                    ));
                }
            },
            Expr::Name(name, when) => self.name(name, *when, pos)?,
            Expr::Table { name, keys, column } => {
                // `x[t]` on a cell is the cell now.
                if !self.tables.contains_key(name.as_str())
                    && self.defs.contains_key(name.as_str())
                    && column.is_none()
                    && matches!(keys.as_slice(), [(Expr::Name(t, When::Now), _)] if t == "t")
                {
                    return self.name(name, When::Now, pos);
                }
                let keys: Vec<Node> = keys.clone();
                self.lookup(name, &keys, column.as_deref(), pos)?
            }
            Expr::Call(f, args) => self.call(f, args, pos)?,
            Expr::Unary(op, e) => match *op {
                "-" => {
                    let v = self.num(e)?;
                    (self.op(Op::Neg, v, v), Number)
                }
                _ => {
                    let v = self.typed(e, Bool)?;
                    (self.op(Op::Not, v, v), Bool)
                }
            },
            Expr::Binary(op, l, r) => {
                let arith = match *op {
                    "+" => Some(Op::Add),
                    "-" => Some(Op::Sub),
                    "*" => Some(Op::Mul),
                    "/" => Some(Op::Div),
                    "^" => Some(Op::Pow),
                    _ => None,
                };
                if let Some(o) = arith {
                    let (a, b) = (self.num(l)?, self.num(r)?);
                    return Ok((self.op(o, a, b), Number));
                }
                match *op {
                    "and" | "or" => {
                        let (a, b) = (self.typed(l, Bool)?, self.typed(r, Bool)?);
                        (self.op(if *op == "and" { Op::And } else { Op::Or }, a, b), Bool)
                    }
                    "==" | "!=" => {
                        let (a, ka) = self.expr(l)?;
                        let b = self.typed(r, ka)?;
                        (self.op(if *op == "==" { Op::Eq } else { Op::Ne }, a, b), Bool)
                    }
                    _ => {
                        let (a, b) = (self.num(l)?, self.num(r)?);
                        let o = match *op {
                            "<" => Op::Lt,
                            "<=" => Op::Le,
                            ">" => Op::Gt,
                            _ => Op::Ge,
                        };
                        (self.op(o, a, b), Bool)
                    }
                }
            }
            Expr::If(c, a, b) => {
                let c = self.typed(c, Bool)?;
                let (a, ka) = self.expr(a)?;
                let b = self.typed(b, ka)?;
                (self.em.op3(Op::If, c, a, b), ka)
            }
        })
    }

    fn call(&mut self, f: &str, args: &[Node], pos: Pos) -> Result<(Val, ValueKind), String> {
        if f == "has" {
            // `has(TABLE[KEY, …])`: whether the table has a row for the keys (a condition).
            let [(Expr::Table { name, keys, column }, at)] = args else {
                return Err(self.e(pos, "has takes one table read, e.g. has(mort[mp.age_at_entry, 0])"));
            };
            self.membership = true;
            return self.lookup(name, keys, column.as_deref(), *at);
        }
        let Some(&(_, n)) = FUNCTIONS.iter().find(|(name, _)| *name == f) else {
            let names: Vec<&str> = FUNCTIONS.iter().map(|(n, _)| *n).collect();
            return Err(self.e(pos, format!("unknown function '{f}' (there are: {})", names.join(", "))));
        };
        if args.len() != n {
            return Err(
                self.e(pos, format!("{f} takes {n} argument{}, not {}", if n == 1 { "" } else { "s" }, args.len()))
            );
        }
        let a = self.num(&args[0])?;
        let v = match f {
            "min" | "max" => {
                let b = self.num(&args[1])?;
                self.op(if f == "min" { Op::Min } else { Op::Max }, a, b)
            }
            "exp" => self.op(Op::Exp, a, a),
            "log" => self.op(Op::Log, a, a),
            "atan" => self.op(Op::Atan, a, a),
            "sqrt" => self.op(Op::Sqrt, a, a),
            "abs" => self.op(Op::Abs, a, a),
            "erfc" => self.op(Op::Erfc, a, a),
            "norm_cdf" => {
                // The standard normal distribution function as scipy's `ndtr` (cephes) composes it: with
                // x = a/√2, ½ + ½ erf(x) near 0 (|x| < 1/√2), else ½ erfc(|x|), or one less that for x > 0.
                let half = Val::Const(0.5);
                let x = self.op(Op::Mul, a, Val::Const(std::f64::consts::FRAC_1_SQRT_2));
                let z = self.op(Op::Abs, x, x);
                let erf = self.op(Op::Erf, x, x);
                let half_erf = self.op(Op::Mul, half, erf);
                let near = self.op(Op::Add, half, half_erf);
                let erfc = self.op(Op::Erfc, z, z);
                let tail = self.op(Op::Mul, half, erfc);
                let upper = self.op(Op::Sub, Val::Const(1.0), tail);
                let positive = self.op(Op::Gt, x, Val::Const(0.0));
                let far = self.em.op3(Op::If, positive, upper, tail);
                let small = self.op(Op::Lt, z, Val::Const(std::f64::consts::FRAC_1_SQRT_2));
                self.em.op3(Op::If, small, near, far)
            }
            "floor" => self.op(Op::Floor, a, a),
            _ => {
                // Half to even (numpy's `around`): the whole part, one away from zero when the fraction is past
                // one half, or exactly one half from an odd whole part.
                let tr = self.op(Op::Trunc, a, a);
                let frac = self.op(Op::Sub, a, tr);
                let off = self.op(Op::Abs, frac, frac);
                let one = self.op(Op::Copysign, Val::Const(1.0), a);
                let up = self.op(Op::Add, tr, one);
                let odd = self.op(Op::Modulo, tr, Val::Const(2.0));
                let odd = self.op(Op::Ne, odd, Val::Const(0.0));
                let tie = self.em.op3(Op::If, odd, up, tr);
                let below = self.op(Op::Lt, off, Val::Const(0.5));
                let not_above = self.em.op3(Op::If, below, tr, tie);
                let above = self.op(Op::Gt, off, Val::Const(0.5));
                self.em.op3(Op::If, above, up, not_above)
            }
        };
        Ok((v, ValueKind::Number))
    }

    fn lookup(
        &mut self,
        name: &str,
        keys: &[Node],
        column: Option<&str>,
        pos: Pos,
    ) -> Result<(Val, ValueKind), String> {
        let membership = std::mem::take(&mut self.membership);
        let Some(&table) = self.tables.get(name) else {
            let what = if self.defs.contains_key(name) || self.params.contains_key(name) {
                format!(
                    "'{name}' is not a table; a cell is read as '{name}', '{name}[t]' or (a recursion) '{name}[t+1]'"
                )
            } else {
                let mut known: Vec<&str> = self.tables.keys().copied().collect();
                known.sort();
                format!("unknown table '{name}' (the tables are: {})", known.join(", "))
            };
            return Err(self.e(pos, what));
        };
        if keys.len() != table.keys.len() {
            let names: Vec<&str> = table.keys.iter().map(|(n, _)| n.as_str()).collect();
            return Err(self.e(
                pos,
                format!("table '{name}' has {} keys ({}), not {}", names.len(), names.join(", "), keys.len()),
            ));
        }
        let col = match column {
            Some(c) => c.to_string(),
            None if membership => table.columns.first().map_or(String::new(), |c| c.0.clone()),
            None if table.columns.len() == 1 => table.columns[0].0.clone(),
            None => {
                let names: Vec<&str> = table.columns.iter().map(|(n, _)| n.as_str()).collect();
                return Err(
                    self.e(pos, format!("table '{name}' has several columns; pick one with '.': {}", names.join(", ")))
                );
            }
        };
        if let Some((at, v)) = self.substitute
            && at == pos
            && let Some(&(_, kind)) = self.columns.get(&(name.to_string(), col.clone()))
        {
            return Ok((v, kind));
        }
        let derived = self.derived_column.take();
        let Some(&(_, kind)) = self.columns.get(&(name.to_string(), col.clone())) else {
            let names: Vec<&str> = table.columns.iter().map(|(n, _)| n.as_str()).collect();
            return Err(self.e(pos, format!("table '{name}' has no column '{col}' (it has: {})", names.join(", "))));
        };
        let mut index = Val::Const(0.0);
        let mut ok = Val::Const(1.0);
        for (k, ((kname, key), node)) in table.keys.iter().zip(keys).enumerate() {
            let want = if matches!(key, Key::Texts(_)) { ValueKind::Text } else { ValueKind::Number };
            let (v, got) = self.expr(node)?;
            if got != want {
                return Err(self.e(
                    node.1,
                    format!("key '{kname}' of table '{name}' is {}, but this is {}", want.word(), got.word()),
                ));
            }
            let (p, inside) = match (self.key_tables.get(&(name.to_string(), k)).copied(), key) {
                (Some((position, member)), _) => {
                    let p = self.em.table_op(Op::Lookup(LookupMode::Backward), position, v, v);
                    let m = self.em.table_op(Op::Lookup(LookupMode::Backward), member, v, v);
                    let found = self.op(Op::Eq, m, v);
                    match key {
                        Key::Ints { values, ultimate: true } => {
                            let last = values.last().copied().unwrap_or(0) as f64;
                            let past = self.op(Op::Gt, v, Val::Const(last));
                            (p, self.op(Op::Or, found, past))
                        }
                        _ => (p, found),
                    }
                }
                (None, Key::Ints { values, ultimate }) => {
                    let first = values.first().copied().unwrap_or(0) as f64;
                    let last = (values.len() - 1) as f64;
                    let p = self.op(Op::Sub, v, Val::Const(first));
                    let low = self.op(Op::Ge, p, Val::Const(0.0));
                    if *ultimate {
                        (self.op(Op::Min, p, Val::Const(last)), low)
                    } else {
                        let high = self.op(Op::Le, p, Val::Const(last));
                        (p, self.op(Op::And, low, high))
                    }
                }
                (None, Key::Texts(_)) => return Err(self.e(pos, "internal: text key without its table")),
            };
            let scaled = self.op(Op::Mul, index, Val::Const(key.len() as f64));
            index = self.op(Op::Add, scaled, p);
            ok = self.op(Op::And, ok, inside);
        }
        if membership {
            return Ok((ok, ValueKind::Bool));
        }
        let missing = match kind {
            ValueKind::Number => table.missing.unwrap_or(f64::NAN),
            ValueKind::Bool => 0.0,
            ValueKind::Text => -1.0,
        };
        let (col_table, kind, missing) = match derived {
            Some(d) => d,
            None => (self.column_table(name, &col).map_err(|m| self.e(pos, m))?, kind, missing),
        };
        let read = self.em.table_op(Op::Lookup(LookupMode::Backward), col_table, index, index);
        Ok((self.em.op3(Op::If, ok, read, Val::Const(missing)), kind))
    }

    fn name(&mut self, name: &str, when: When, pos: Pos) -> Result<(Val, ValueKind), String> {
        if name == "t" && when == When::Now {
            if self.in_results {
                return Err(self.e(pos, "'t' is a month; results are read after the last month"));
            }
            return Ok((Val::Reg(T_REG, Level::Dynamic), ValueKind::Number));
        }
        let month = if when == When::Next { "t+1" } else { "t-1" };
        if let Some(&v) = self.params.get(name) {
            if when != When::Now {
                return Err(self.e(pos, format!("'{name}' is a parameter; it has no value at {month}")));
            }
            return Ok((Val::Const(v), ValueKind::Number));
        }
        if let Some(&r) = self.pv_regs.get(name) {
            if when != When::Now {
                return Err(self
                    .e(pos, format!("'{name}' is a present value, one value per policy; it has no value at {month}")));
            }
            if self.in_results {
                return Ok((Val::Reg(r, Level::Dynamic), ValueKind::Number));
            }
            // A monthly value reading a present value: the present value was summed in an earlier pass.
            return match self.pv_inputs.get(name) {
                Some(&(reg, pass)) if pass < self.pass => Ok((Val::Reg(reg, Level::Param), ValueKind::Number)),
                _ => Err(self.e(pos, format!("internal: present value '{name}' read before its pass"))),
            };
        }
        if when != When::Now && self.tables.contains_key(name) {
            // `table[t+1]`, `table[t-1]`.
            let op = if when == When::Next { "+" } else { "-" };
            let key = (
                Expr::Binary(op, Box::new((Expr::Name("t".into(), When::Now), pos)), Box::new((Expr::Num(1.0), pos))),
                pos,
            );
            return self.lookup(name, &[key], None, pos);
        }
        let Some(&(now, next)) = self.defs.get(name) else {
            if self.tables.contains_key(name) {
                return Err(self.e(pos, format!("table '{name}' is read with its keys: '{name}[…]'")));
            }
            if self.attrs.contains_key(name) {
                return Err(self.e(pos, format!("unknown name '{name}'; the model-point column is 'mp.{name}'")));
            }
            return Err(self.e(pos, format!("unknown name '{name}'")));
        };
        if when == When::Prev {
            // Last month's value: a state the month code carries (its start is never read, see `check_lags`).
            let Some(&r) = self.lag_regs.get(name) else {
                return Err(self.e(pos, format!("internal: '{name}[t-1]' has no register")));
            };
            return self.check_result_level((Val::Reg(r, Level::Dynamic), ValueKind::Number), name, pos);
        }
        if when == When::Now
            && let Some(&(r, kind)) = self.month_inputs.get(name)
        {
            return self.check_result_level((Val::Reg(r, Level::Dynamic), kind), name, pos);
        }
        let key = (name.to_string(), when);
        if let Some(&v) = self.done.get(&key) {
            return self.check_result_level(v, name, pos);
        }
        if let Some(i) = self.active.iter().position(|k| *k == key) {
            let show = |(n, w): &(String, When)| if *w == When::Next { format!("{n}[t+1]") } else { n.clone() };
            let mut chain: Vec<String> = self.active[i..].iter().map(show).collect();
            chain.push(show(&key));
            return Err(self.e(pos, format!("circular definition: {}", chain.join(" reads "))));
        }
        let stmt = match (when, next) {
            (When::Now, Some(_)) => {
                // A recursion's value now is its state register.
                let Some(&r) = self.state_regs.get(name) else {
                    return Err(self.e(pos, format!("internal: recursion '{name}' has no state")));
                };
                let kind = self.stmt_kind(now)?;
                let v = (Val::Reg(r, Level::Dynamic), kind);
                self.done.insert(key, v);
                return self.check_result_level(v, name, pos);
            }
            (When::Now, None) => now,
            (When::Next, Some(n)) => n,
            (When::Next, None) | (When::Prev, _) => {
                return Err(
                    self.e(pos, format!("'{name}' is not a recursion (no '{name}[t+1] = …'); it has no value at t+1"))
                );
            }
        };
        self.active.push(key.clone());
        let expr = self.stmts[stmt].expr.clone();
        let derived = if when == When::Now && self.derive && self.substitute.is_none() {
            self.derived(name, &expr)
        } else {
            Ok(None)
        };
        let v = match derived {
            Ok(Some(v)) => Ok(v),
            Ok(None) => self.expr(&expr),
            Err(e) => Err(e),
        };
        self.active.pop();
        let v = v?;
        self.done.insert(key, v);
        self.check_result_level(v, name, pos)
    }

    /// What a value is a function of (a cell's: memoised).
    fn source(&mut self, (e, pos): &Node) -> Source {
        if self.depth > MAX_DEPTH {
            return Source::Many; // the compiler reports it
        }
        self.depth += 1;
        let s = match e {
            Expr::Num(_) | Expr::Text(_) => Source::Const,
            Expr::Attr(_) => Source::Many,
            Expr::Name(n, When::Now) => self.cell_source(n),
            Expr::Name(..) => Source::Many,
            Expr::Table { name, keys, column } => match keys.as_slice() {
                [(Expr::Name(t, When::Now), _)]
                    if t == "t" && column.is_none() && self.defs.contains_key(name.as_str()) =>
                {
                    self.cell_source(name)
                }
                _ if self.tables.contains_key(name.as_str()) => Source::Read(*pos),
                _ => Source::Many,
            },
            // A membership test is not a function of the value read.
            Expr::Call(f, _) if f == "has" => Source::Many,
            Expr::Call(_, args) => args.iter().fold(Source::Const, |v, a| {
                let s = self.source(a);
                combine(v, s)
            }),
            Expr::Unary(_, a) => self.source(a),
            Expr::Binary(_, a, b) => {
                let (a, b) = (self.source(a), self.source(b));
                combine(a, b)
            }
            Expr::If(c, a, b) => {
                let (c, a, b) = (self.source(c), self.source(a), self.source(b));
                combine(combine(c, a), b)
            }
        };
        self.depth -= 1;
        s
    }

    fn cell_source(&mut self, name: &str) -> Source {
        if self.params.contains_key(name) {
            return Source::Const;
        }
        if let Some(&s) = self.sources.get(name) {
            return s;
        }
        let Some(&(i, None)) = self.defs.get(name) else { return Source::Many };
        if name == "t" || self.month_inputs.contains_key(name) || self.pv_regs.contains_key(name) {
            return Source::Many;
        }
        self.sources.insert(name.to_string(), Source::Many);
        let expr = self.stmts[i].expr.clone();
        let s = self.source(&expr);
        self.sources.insert(name.to_string(), s);
        s
    }

    /// The table read at `pos` in the model: (table, keys, column).
    fn read_at(&self, pos: Pos) -> Option<(String, Vec<Node>, Option<String>)> {
        let mut stack: Vec<&Node> = self.stmts.iter().map(|s| &s.expr).collect();
        while let Some((e, p)) = stack.pop() {
            match e {
                Expr::Table { name, keys, column } => {
                    if *p == pos {
                        return Some((name.clone(), keys.clone(), column.clone()));
                    }
                    stack.extend(keys.iter());
                }
                Expr::Call(_, args) => stack.extend(args.iter()),
                Expr::Unary(_, a) => stack.push(a),
                Expr::Binary(_, a, b) => stack.extend([&**a, &**b]),
                Expr::If(c, a, b) => stack.extend([&**c, &**a, &**b]),
                _ => {}
            }
        }
        None
    }

    /// A cell that is a function of one table read, as a read of a column of its values (computed here with
    /// the operations the month code would have run); `None` when it is not such a cell (or is the read
    /// itself).
    fn derived(&mut self, name: &str, expr: &Node) -> Result<Option<(Val, ValueKind)>, String> {
        let Source::Read(at) = self.cell_source(name) else { return Ok(None) };
        if expr.1 == at {
            return Ok(None);
        }
        let Some((table, keys, column)) = self.read_at(at) else { return Ok(None) };
        let col = match (&column, self.tables.get(table.as_str())) {
            (Some(c), _) => c.clone(),
            (None, Some(t)) if t.columns.len() == 1 => t.columns[0].0.clone(),
            _ => return Ok(None),
        };
        let Some((values, missing)) = self.column_values(&table, &col) else { return Ok(None) };
        // The cell compiled once with the read as the input register of a program of its own (its code, folded
        // as far as the constants go), then run by the interpreter per value: the same operations constant
        // folding would have done per value, so the same bits.
        let saved = std::mem::take(&mut self.done);
        // Its registers after the model's, so that reading one of those (an attribute's, `t`'s) shows.
        let (tables, model_regs) = (std::mem::take(&mut self.em.tables), self.em.n_regs as usize);
        let main = std::mem::replace(&mut self.em, Emitter::new(0, model_regs - 1, tables));
        let input = self.em.fresh();
        self.substitute = Some((at, Val::Reg(input, Level::Param)));
        let compiled = self.expr(expr);
        self.substitute = None;
        self.done = saved;
        let small = std::mem::replace(&mut self.em, main);
        self.em.tables = small.tables;
        let (v, kind) = compiled?;
        if kind == ValueKind::Text || !small.dynamic.is_empty() {
            return Ok(None);
        }
        // Only the input, constants and what the code computed may be read (a register of the model's own
        // layout, such as `t`'s, means the cell is not a function of the read alone).
        let mut known: HashSet<u32> = small.consts.iter().map(|&(r, _)| r).chain([input]).collect();
        for i in &small.setup {
            // The emitter writes `d` only for a table read (its table) or a two-product operation (none here).
            let two_products = matches!(i.op, Op::MulMulAdd | Op::MulMulSub);
            if two_products || ![i.a, i.b, i.c].iter().all(|r| known.contains(r)) {
                return Ok(None);
            }
            known.insert(i.dst);
        }
        let result = match v {
            Val::Const(_) => return Ok(None),
            Val::Reg(r, _) if known.contains(&r) => r,
            Val::Reg(..) => return Ok(None),
        };
        let mut regs = vec![0.0; small.n_regs as usize];
        for &(r, c) in &small.consts {
            regs[r as usize] = c;
        }
        let mut out = Vec::with_capacity(values.len() + 1);
        for &v in values.iter().chain([&missing]) {
            regs[input as usize] = v;
            run(&small.setup, &mut regs, &self.em.tables);
            let x = regs[result as usize];
            if !(x.is_finite() || v.is_nan()) {
                return Ok(None);
            }
            out.push(x);
        }
        let missing = out.pop().unwrap_or(f64::NAN);
        let Ok(id) = self.column(out) else {
            return Ok(None);
        };
        self.derived_column = Some((id, kind, missing));
        let v = self.lookup(&table, &keys, column.as_deref(), at);
        self.derived_column = None;
        v.map(Some)
    }

    /// The kind of a recursion: its start value's.
    fn stmt_kind(&mut self, init: usize) -> Result<ValueKind, String> {
        let name = &self.stmts[init].name;
        let key = ("\0init".to_string() + name, When::Now);
        if let Some(&(_, k)) = self.done.get(&key) {
            return Ok(k);
        }
        if self.active.contains(&key) {
            return Err(self.e(self.stmts[init].pos, format!("the start value of '{name}' reads '{name}' itself")));
        }
        let expr = self.stmts[init].expr.clone();
        self.active.push(key.clone());
        let v = self.expr(&expr);
        self.active.pop();
        let v = v?;
        if v.0.level() == Some(Level::Dynamic) {
            return Err(self.e(
                self.stmts[init].pos,
                format!("the start value of '{}' reads a monthly value; it may read parameters, attributes and tables at policy-level keys", self.stmts[init].name),
            ));
        }
        self.done.insert(key, v);
        Ok(v.1)
    }

    fn check_result_level(&self, v: (Val, ValueKind), name: &str, pos: Pos) -> Result<(Val, ValueKind), String> {
        if self.in_results && v.0.level() == Some(Level::Dynamic) && !self.pv_regs.contains_key(name) {
            return Err(self.e(pos, format!("'{name}' changes by month; a result reads present values, parameters, attributes and per-policy values")));
        }
        Ok(v)
    }
}

/// What a value varies with: the policy (attributes, recursions) and the month (`t`).
const POLICY: u8 = 1;
const MONTH: u8 = 2;

/// The cells that read `t` (themselves or through other cells) and nothing of the policy but the run's scenario
/// (a runner keeps their months per scenario).
fn month_only_cells<'a>(
    stmts: &'a [Stmt],
    defs: &HashMap<&'a str, (usize, Option<usize>)>,
    params: &HashMap<String, f64>,
) -> HashSet<&'a str> {
    struct Walk<'s, 'a> {
        stmts: &'a [Stmt],
        defs: &'s HashMap<&'a str, (usize, Option<usize>)>,
        params: &'s HashMap<String, f64>,
        memo: HashMap<&'a str, u8>,
        depth: usize,
    }
    impl<'a> Walk<'_, 'a> {
        fn cell(&mut self, name: &str, when: When) -> u8 {
            if name == "t" && when == When::Now {
                return MONTH;
            }
            if self.params.contains_key(name) {
                return 0;
            }
            let Some((&key, &(i, next))) = self.defs.get_key_value(name) else { return POLICY | MONTH };
            if next.is_some() || when != When::Now {
                return POLICY | MONTH;
            }
            if let Some(&v) = self.memo.get(key) {
                return v;
            }
            // While a cell is being walked it counts as varying with everything (a cycle is reported later).
            self.memo.insert(key, POLICY | MONTH);
            let stmts = self.stmts;
            let v = self.expr(&stmts[i].expr);
            self.memo.insert(key, v);
            v
        }
        fn expr(&mut self, node: &Node) -> u8 {
            if self.depth > MAX_DEPTH {
                return POLICY | MONTH; // the compiler reports it
            }
            self.depth += 1;
            let v = self.walk(node);
            self.depth -= 1;
            v
        }
        fn walk(&mut self, (e, _): &Node) -> u8 {
            match e {
                Expr::Num(_) | Expr::Text(_) => 0,
                Expr::Attr(a) if a == SCENARIO => 0,
                Expr::Attr(_) => POLICY,
                Expr::Name(n, when) => self.cell(n, *when),
                Expr::Table { name, keys, column } => match keys.as_slice() {
                    [(Expr::Name(t, When::Now), _)]
                        if t == "t" && column.is_none() && self.defs.contains_key(name.as_str()) =>
                    {
                        self.cell(name, When::Now)
                    }
                    _ => keys.iter().fold(0, |v, k| v | self.expr(k)),
                },
                Expr::Call(_, args) => args.iter().fold(0, |v, a| v | self.expr(a)),
                Expr::Unary(_, a) => self.expr(a),
                Expr::Binary(_, a, b) => self.expr(a) | self.expr(b),
                Expr::If(c, a, b) => self.expr(c) | self.expr(a) | self.expr(b),
            }
        }
    }
    let mut w = Walk { stmts, defs, params, memo: HashMap::new(), depth: 0 };
    let mut out = HashSet::new();
    for (&name, &(i, next)) in defs {
        if next.is_none() && stmts[i].kind == Kind::Cell && w.cell(name, When::Now) == MONTH {
            out.insert(name);
        }
    }
    out
}

/// The attribute a host gives for the run's scenario id, which the model reads as `scenario` (a model without a
/// scenario table runs the one scenario 1).
pub const SCENARIO: &str = "\0scenario";

/// The tables a model declares (`table NAME(…) …`), in order; the one named `mp` describes the model points.
pub fn table_declarations(file: &str, source: &str) -> Result<Vec<TableDecl>, String> {
    let stmts = syntax::parse(source).map_err(|Located { pos, message }| err(file, pos, message))?;
    let mut out: Vec<TableDecl> = vec![];
    for t in stmts.into_iter().filter_map(|s| s.table) {
        if let Some(first) = out.iter().find(|o| o.name == t.name) {
            return Err(err(
                file,
                t.pos,
                format!("table '{}' is declared twice (first at line {})", t.name, first.pos.line),
            ));
        }
        out.push(t);
    }
    if out.iter().filter(|t| t.keys.iter().any(|k| k.scenarios)).count() > 1 {
        let second =
            out.iter().filter(|t| t.keys.iter().any(|k| k.scenarios)).nth(1).map_or(Pos { line: 1, col: 1 }, |t| t.pos);
        return Err(err(file, second, "only one table can list the scenarios"));
    }
    Ok(out)
}

/// `scenario` (unless the model defines that name) is the run's scenario id: the attribute [`SCENARIO`].
fn read_scenario(node: &mut Node) {
    match &mut node.0 {
        Expr::Name(n, When::Now) if n == "scenario" => node.0 = Expr::Attr(SCENARIO.into()),
        Expr::Num(_) | Expr::Text(_) | Expr::Attr(_) | Expr::Name(..) => {}
        Expr::Table { keys: args, .. } | Expr::Call(_, args) => args.iter_mut().for_each(read_scenario),
        Expr::Unary(_, a) => read_scenario(a),
        Expr::Binary(_, a, b) => {
            read_scenario(a);
            read_scenario(b);
        }
        Expr::If(c, a, b) => {
            read_scenario(c);
            read_scenario(a);
            read_scenario(b);
        }
    }
}

/// Compile a projection model. `file` names the source in errors; `attributes` are the model-point columns
/// the model may read (`mp.NAME`); `tables` the assumption tables; `params` overrides parameter defaults.
pub fn compile_projection(
    file: &str,
    source: &str,
    attributes: &[Attribute],
    tables: &[Table],
    params: &[(&str, f64)],
) -> Result<ProjectionProgram, String> {
    let mut stmts = syntax::parse(source).map_err(|Located { pos, message }| err(file, pos, message))?;
    // Declarations say how the host reads the tables; the model proper is the rest.
    stmts.retain(|s| s.kind != Kind::Table);
    let (output_stmts, rest): (Vec<Stmt>, Vec<Stmt>) = stmts.into_iter().partition(|s| s.kind == Kind::Output);
    let mut stmts = rest;
    if !stmts.iter().any(|s| s.name == "scenario") {
        stmts.iter_mut().for_each(|s| read_scenario(&mut s.expr));
    }
    let table_names: HashSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let (stmts, lagged) = started_cells(file, stmts, &table_names)?;
    let mut defs: HashMap<&str, (usize, Option<usize>)> = HashMap::new();
    let mut param_values = HashMap::new();
    let mut pvs = vec![];
    let mut results = vec![];
    let mut order = vec![];
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    let reserved = |n: &str| n == "t" || n == "mp" || FUNCTIONS.iter().any(|(f, _)| *f == n);
    for (i, s) in stmts.iter().enumerate() {
        let n = s.name.as_str();
        if reserved(n) {
            return Err(err(file, s.pos, format!("'{n}' is a name of the language; choose another")));
        }
        if tables.iter().any(|t| t.name == n) {
            return Err(err(file, s.pos, format!("'{n}' is the name of a table; choose another")));
        }
        let twice = || err(file, s.pos, format!("'{n}' is defined twice (first at line {})", seen[n].line));
        match s.kind {
            Kind::Next => match defs.get_mut(n) {
                Some((init, next @ None)) if stmts[*init].kind == Kind::Init => *next = Some(i),
                Some(_) => return Err(twice()),
                None => {
                    return Err(err(file, s.pos, format!("'{n}[t+1]' comes before its start value '{n}[0] = …'")));
                }
            },
            _ if seen.contains_key(n) => return Err(twice()),
            Kind::Param => {
                if let Expr::Num(v) = s.expr.0 {
                    param_values.insert(s.name.clone(), v);
                }
            }
            Kind::Pv => pvs.push(i),
            Kind::Result => results.push(i),
            Kind::Table | Kind::Output => {}
            Kind::Cell | Kind::Init => {
                defs.insert(n, (i, None));
                order.push(n);
            }
        }
        seen.entry(n).or_insert(s.pos);
    }
    for (n, &(init, next)) in &defs {
        if stmts[init].kind == Kind::Init && next.is_none() {
            return Err(err(
                file,
                stmts[init].pos,
                format!("'{n}[0]' starts a recursion but there is no '{n}[t+1] = …'"),
            ));
        }
    }
    if let Some(&(i, next)) = defs.get(PROJ_LEN)
        && (next.is_some() || stmts[i].kind != Kind::Cell)
    {
        return Err(err(
            file,
            stmts[i].pos,
            format!("'{PROJ_LEN}' is the projection length, a cell ('{PROJ_LEN} = …')"),
        ));
    }
    let mut outputs: Vec<(String, Vec<(String, String)>)> = vec![];
    for o in &output_stmts {
        if let Some((_, first)) = outputs.iter().zip(&output_stmts).find(|(x, _)| x.0 == o.name) {
            return Err(err(
                file,
                o.pos,
                format!("output '{}' is given twice (first at line {})", o.name, first.pos.line),
            ));
        }
        for (n, p, _) in &o.list {
            let result = stmts.iter().any(|s| s.kind == Kind::Result && s.name == *n);
            if n != "t" && !defs.contains_key(n.as_str()) && !result {
                return Err(err(file, *p, format!("output '{}': '{n}' is not a cell or result of the model", o.name)));
            }
        }
        let list = o.list.iter().map(|(n, _, l)| (n.clone(), l.clone().unwrap_or_else(|| n.clone()))).collect();
        outputs.push((o.name.clone(), list));
    }
    for &(name, v) in params {
        match param_values.get_mut(name) {
            Some(slot) => *slot = v,
            None => {
                let mut known: Vec<&String> = param_values.keys().collect();
                known.sort();
                let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                return Err(format!("{file}: unknown parameter '{name}' (the model has: {})", known.join(", ")));
            }
        }
    }
    let stage = stages(file, &stmts, &defs, &pvs, &table_names)?;
    let stage_of = |n: &str| stage.get(n).copied().unwrap_or(0);
    let last_pass = stage.values().copied().max().unwrap_or(0);
    if let Some(&(i, _)) = defs.get(PROJ_LEN)
        && stage_of(PROJ_LEN) > 0
    {
        return Err(err(
            file,
            stmts[i].pos,
            format!("'{PROJ_LEN}' reads a present value; it is known before the months"),
        ));
    }
    let recursions: Vec<&str> = order.iter().copied().filter(|n| defs[n].1.is_some()).collect();
    // Last month's values of the cells and recursions read as `x[t-1]` (others are refused by the compiler).
    let lags: Vec<&str> = lagged.iter().filter_map(|n| defs.get_key_value(n.as_str()).map(|(k, _)| *k)).collect();
    let n_states = recursions.len() + lags.len() + pvs.len();
    parfit_core::limits::check_allocation("the projection's registers", stmts.len() as f64 * 64.0, 8.0)?;
    let attrs: HashMap<&str, (usize, ValueKind)> =
        attributes.iter().enumerate().map(|(i, a)| (a.name.as_str(), (i, a.kind))).collect();
    let new_compiler = |n_states: usize, n_inputs: usize| -> Result<Compiler, String> {
        let mut c = Compiler {
            file,
            stmts: &stmts,
            defs: defs.clone(),
            params: param_values.clone(),
            attrs: attrs.clone(),
            tables: tables.iter().map(|t| (t.name.as_str(), t)).collect(),
            columns: HashMap::new(),
            key_tables: HashMap::new(),
            symbols: FxHashMap::default(),
            em: Emitter::new(n_states, n_inputs, vec![]),
            state_regs: HashMap::new(),
            lag_regs: HashMap::new(),
            pv_regs: HashMap::new(),
            pv_inputs: HashMap::new(),
            pass: 0,
            done: HashMap::new(),
            active: vec![],
            in_results: false,
            month_inputs: HashMap::new(),
            depth: 0,
            derive: false,
            substitute: None,
            derived_column: None,
            sources: HashMap::new(),
            membership: false,
        };
        for t in tables {
            c.load(t)?;
        }
        // Every text of the model numbered up front, so that every pass (and the month-only program) numbers
        // it alike.
        let mut stack: Vec<&Node> = stmts.iter().map(|s| &s.expr).collect();
        while let Some((e, _)) = stack.pop() {
            match e {
                Expr::Text(t) => {
                    c.symbol(t);
                }
                Expr::Table { keys, .. } | Expr::Call(_, keys) => stack.extend(keys.iter()),
                Expr::Unary(_, a) => stack.push(a),
                Expr::Binary(_, a, b) => stack.extend([&**a, &**b]),
                Expr::If(c, a, b) => stack.extend([&**c, &**a, &**b]),
                _ => {}
            }
        }
        Ok(c)
    };
    // The cells that vary by month only (discount and inflation factors, scenario returns): their own program,
    // run once per month of the run rather than once per policy-month.
    let month_only = month_only_cells(&stmts, &defs, &param_values);
    let month_names: Vec<&str> = order.iter().copied().filter(|n| month_only.contains(n)).collect();
    // Its registers 1..=attributes hold the attributes (of which it reads only the scenario).
    let mut m = new_compiler(0, attributes.len())?;
    let mut month_cells = vec![];
    for n in &month_names {
        let pos = stmts[m.defs[n].0].pos;
        month_cells.push(m.name(n, When::Now, pos)?);
    }
    let mut month_program = Program::new(0, attributes.len());
    month_program.f = month_cells.iter().map(|&(v, _)| m.em.reg(v)).collect();
    month_program.rhs = m.em.take_dynamic();
    month_program.setup = std::mem::take(&mut m.em.setup);
    month_program.n_regs = m.em.n_regs as usize;
    month_program.consts = std::mem::take(&mut m.em.consts);
    month_program.tables = std::mem::take(&mut m.em.tables).into();
    // Whether the month-only cells read the scenario (an operand naming its register; a table index or fourth
    // operand that happens to equal it only costs recomputing the months when the scenario changes).
    let month_scenario = attrs.get(SCENARIO).copied().filter(|&(i, _)| {
        let r = (1 + i) as u32;
        month_program.setup.iter().chain(&month_program.rhs).any(|x| [x.a, x.b, x.c, x.d].contains(&r))
    });

    // Inputs of every pass: the attributes, the month-only cells, then the present values (read by monthly
    // values of later passes). States: the recursions, last month's values, then the present values' sums.
    let n_inputs = attributes.len() + month_names.len() + pvs.len();
    let pv_input = |k: usize| (1 + n_states + attributes.len() + month_names.len() + k) as u32;
    let mut passes = vec![];
    for pass in 0..=last_pass {
        let last = pass == last_pass;
        let mut c = new_compiler(n_states, n_inputs)?;
        c.derive = true;
        c.pass = pass;
        for (k, (n, &(_, kind))) in month_names.iter().zip(&month_cells).enumerate() {
            c.month_inputs.insert(n, ((1 + n_states + attributes.len() + k) as u32, kind));
        }
        for (k, n) in recursions.iter().enumerate() {
            c.state_regs.insert(n, 1 + k as u32);
        }
        for (k, n) in lags.iter().enumerate() {
            c.lag_regs.insert(n, 1 + (recursions.len() + k) as u32);
        }
        let pv_base = 1 + recursions.len() + lags.len();
        for (k, &i) in pvs.iter().enumerate() {
            let name = stmts[i].name.as_str();
            c.pv_regs.insert(name, (pv_base + k) as u32);
            c.pv_inputs.insert(name, (pv_input(k), stage_of(name)));
        }
        // The last pass computes every cell (the monthly output); the earlier ones only what their present
        // values need. A state not computed in a pass keeps its start (0).
        let mut cells = vec![];
        if last {
            for n in &order {
                let pos = stmts[c.defs[n].0].pos;
                let (v, _) = c.name(n, When::Now, pos)?;
                cells.push((n.to_string(), v));
            }
        }
        let zero = Val::Const(0.0);
        let mut state_vals = vec![];
        for n in &recursions {
            let r = c.state_regs[n];
            if stage_of(n) > pass {
                state_vals.push((r, zero, Val::Reg(r, Level::Dynamic)));
                continue;
            }
            let (init, _) = c.defs[n];
            c.stmt_kind(init)?;
            let Some(&(start, _)) = c.done.get(&("\0init".to_string() + n, When::Now)) else {
                return Err(err(file, stmts[init].pos, format!("internal: no start value for '{n}'")));
            };
            let (next, _) = c.name(n, When::Next, stmts[init].pos)?;
            state_vals.push((r, start, next));
        }
        for n in &lags {
            let r = c.lag_regs[n];
            if stage_of(n) > pass {
                state_vals.push((r, zero, Val::Reg(r, Level::Dynamic)));
                continue;
            }
            let pos = stmts[c.defs[n].0].pos;
            let (now, kind) = c.name(n, When::Now, pos)?;
            if kind != ValueKind::Number {
                return Err(err(file, pos, format!("'{n}' is {}; only numbers are read as '{n}[t-1]'", kind.word())));
            }
            state_vals.push((r, zero, now));
        }
        let mut pv_terms = vec![];
        let mut sums = vec![];
        for (k, &i) in pvs.iter().enumerate() {
            let r = (pv_base + k) as u32;
            let name = &stmts[i].name;
            if !last && stage_of(name) != pass {
                state_vals.push((r, zero, Val::Reg(r, Level::Dynamic)));
                continue;
            }
            let v = c.num(&stmts[i].expr)?;
            let acc = c.em.op(Op::Add, Val::Reg(r, Level::Dynamic), v);
            state_vals.push((r, zero, acc));
            pv_terms.push(name.clone());
            sums.push(k);
        }
        let proj_len = match defs.get(PROJ_LEN) {
            Some(&(i, _)) => {
                let (v, kind) = c.name(PROJ_LEN, When::Now, stmts[i].pos)?;
                if kind != ValueKind::Number || v.level() == Some(Level::Dynamic) {
                    return Err(err(
                        file,
                        stmts[i].pos,
                        format!("'{PROJ_LEN}' must be a number known for the policy, not varying by month"),
                    ));
                }
                Some(c.em.reg(v))
            }
            None => None,
        };
        // Registers of the monthly values (constants get a register of their own).
        let cells: Vec<(String, u32)> = cells.into_iter().map(|(n, v)| (n, c.em.reg(v))).collect();
        let states: Vec<(u32, u32, u32)> =
            state_vals.into_iter().map(|(r, s, n)| (r, c.em.reg(s), c.em.reg(n))).collect();
        let month = c.em.take_dynamic();
        let mut result_regs = vec![];
        let mut finish = vec![];
        if last {
            c.in_results = true;
            for &i in &results {
                let v = c.num(&stmts[i].expr)?;
                result_regs.push((stmts[i].name.clone(), c.em.reg(v)));
            }
            finish = c.em.take_dynamic();
        }
        let mut program = Program::new(n_states, n_inputs);
        program.n_regs = c.em.n_regs as usize;
        parfit_core::limits::check_allocation("the projection's registers", program.n_regs as f64, 8.0)?;
        program.consts = c.em.consts.clone();
        program.setup = std::mem::take(&mut c.em.setup);
        program.rhs = month;
        program.f = cells.iter().map(|(_, r)| *r).chain(states.iter().map(|s| s.2)).collect();
        program.tables = std::mem::take(&mut c.em.tables).into();
        // State registers are 1..=n_states in order: recursions, last month's values, then present values.
        debug_assert!(states.iter().enumerate().all(|(k, s)| s.0 as usize == 1 + k));
        let pass = Pass { program, starts: states.iter().map(|s| s.1).collect(), proj_len, sums };
        if last {
            // A register the month code writes, `t`, a state or a month-only value changes by month.
            let month_written: HashSet<u32> = pass.program.rhs.iter().map(|i| i.dst).collect();
            let first_month_value = (1 + n_states + attributes.len()) as u32;
            let month_values = first_month_value..first_month_value + month_names.len() as u32;
            let policy_cells = cells
                .iter()
                .map(|&(_, r)| r > n_states as u32 && !month_values.contains(&r) && !month_written.contains(&r))
                .collect();
            return Ok(ProjectionProgram {
                attributes: attributes.to_vec(),
                program: pass.program,
                pre_passes: passes,
                proj_len: pass.proj_len,
                proj_len_at: defs
                    .get(PROJ_LEN)
                    .map_or(String::new(), |&(i, _)| format!("{file}:{}:{}", stmts[i].pos.line, stmts[i].pos.col)),
                month_only: month_program,
                scenario: month_scenario,
                finish,
                starts: pass.starts,
                cells: cells.into_iter().map(|(n, _)| n).collect(),
                policy_cells,
                pvs: pv_terms,
                results: result_regs,
                symbols: c.symbols,
                outputs,
                #[cfg(not(target_arch = "wasm32"))]
                native: None,
                #[cfg(not(target_arch = "wasm32"))]
                native_setup: None,
            });
        }
        passes.push(pass);
    }
    Err(format!("{file}: internal: no last pass"))
}

impl ProjectionProgram {
    /// The monthly cells in definition order: the columns of [`Projection::run`]'s monthly rows.
    pub fn cells(&self) -> impl Iterator<Item = &str> {
        self.cells.iter().map(String::as_str)
    }

    /// The present values in definition order.
    pub fn pvs(&self) -> impl Iterator<Item = &str> {
        self.pvs.iter().map(String::as_str)
    }

    /// The results in definition order.
    pub fn results(&self) -> impl Iterator<Item = &str> {
        self.results.iter().map(|(n, _)| n.as_str())
    }

    /// The model's outputs (`output NAME = cell [as "label"], …`): each name and its (cell or result, label)
    /// pairs (`t` is the month), in order.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, &[(String, String)])> {
        self.outputs.iter().map(|(n, c)| (n.as_str(), c.as_slice()))
    }

    /// Instructions per policy and per month (the cost of a month is about its instruction count).
    pub fn code_size(&self) -> (usize, usize) {
        (self.program.setup.len(), self.program.rhs.len())
    }

    /// Compile the month loop to native code (native targets; the same results to the bit). On failure the
    /// program keeps interpreting and the message says why.
    pub fn compile_native(&mut self) -> Result<(), String> {
        for pass in &mut self.pre_passes {
            pass.program.compile_native()?;
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let code = crate::jit::MonthCode {
                width: self.cells.len(),
                first_input: (1 + self.program.n_states + self.attributes.len()) as u32,
                n_inputs: self.month_only.f.len(),
            };
            self.native = Some(crate::jit::compile_month_loop(&self.program, code)?);
            Ok(())
        }
        #[cfg(target_arch = "wasm32")]
        Err("no JIT on wasm32".into())
    }

    /// Compile the policy code, which runs once per policy before its months, to native code as well (native
    /// targets; the same results to the bit). Compiling it costs about as much as interpreting it for a
    /// thousand policies, so a host calls this for runs of more. On failure the policy code keeps being
    /// interpreted and the message says why.
    pub fn compile_native_setup(&mut self) -> Result<(), String> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let p = &self.program;
            // Native code gives a register's first value as the result and embeds the constant registers, so
            // each register is written once and no constant is.
            let mut written = HashMap::new();
            let consts: HashSet<u32> = p.consts.iter().map(|c| c.0).collect();
            for (k, i) in p.setup.iter().enumerate() {
                if written.insert(i.dst, k).is_some() || consts.contains(&i.dst) {
                    return Err("the policy code writes a register twice or over a constant".into());
                }
            }
            // Its results are the registers read after it — by the month code and its results (a per-policy
            // cell is a register of the policy code), the results' code, the states' starts, the results, the
            // projection length — and any it reads before writing (none, as compiled; its value then is the
            // last policy's). Counting every operand field over-counts, which costs only a store.
            let operands = |i: &Instr| [i.a, i.b, i.c, i.d];
            let mut read: HashSet<u32> = p.rhs.iter().chain(&p.out).chain(&self.finish).flat_map(operands).collect();
            read.extend(p.f.iter().chain(&p.out_regs).chain(&self.starts).chain(&self.proj_len));
            read.extend(self.results.iter().map(|r| r.1));
            for (k, i) in p.setup.iter().enumerate() {
                read.extend(operands(i).into_iter().filter(|r| written.get(r).is_some_and(|&w| w >= k)));
            }
            let writes: Vec<u32> = p.setup.iter().map(|i| i.dst).filter(|r| read.contains(r)).collect();
            let mut code = Program::new(p.n_states, 0);
            code.n_regs = p.n_regs;
            code.consts = p.consts.clone();
            code.rhs = p.setup.clone();
            code.f = writes.clone();
            code.tables = Arc::clone(&p.tables);
            code.compile_native()?;
            self.native_setup = Some((code, writes));
            Ok(())
        }
        #[cfg(target_arch = "wasm32")]
        Err("no JIT on wasm32".into())
    }

    /// Run the policy code over `regs`: natively after [`ProjectionProgram::compile_native_setup`] (its
    /// results through `scratch`), else interpreted.
    #[inline]
    fn policy_code(&self, regs: &mut [f64], scratch: &mut Vec<f64>) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some((code, writes)) = &self.native_setup
            && let Some(native) = &code.native
        {
            scratch.resize(writes.len(), 0.0);
            let inputs: &[f64] = regs;
            native.rhs(inputs, inputs[0], &inputs[1..], scratch);
            for (&r, &v) in writes.iter().zip(scratch.iter()) {
                regs[r as usize] = v;
            }
            return;
        }
        let _ = scratch;
        run(&self.program.setup, regs, &self.program.tables);
    }

    pub fn is_native(&self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        return self.native.is_some();
        #[cfg(target_arch = "wasm32")]
        false
    }

    /// A runner with its own register file (one per thread).
    pub fn runner(&self) -> Projection<'_> {
        Runner::new(self)
    }

    /// A runner that holds the program (no borrow: one a thread may keep across calls).
    pub fn owned_runner(self: &Arc<Self>) -> OwnedProjection {
        Runner::new(Arc::clone(self))
    }
}

/// The most month-only values a runner keeps for scenarios other than its last (8 MB).
const MONTH_CACHE: usize = 1 << 20;

impl<P: Deref<Target = ProjectionProgram>> Runner<P> {
    fn new(program: P) -> Runner<P> {
        let pp = &*program;
        let p = &pp.program;
        let mut regs = vec![0.0; p.n_regs];
        for &(r, v) in &p.consts {
            regs[r as usize] = v;
        }
        let mut month_regs = vec![0.0; pp.month_only.n_regs];
        for &(r, v) in &pp.month_only.consts {
            month_regs[r as usize] = v;
        }
        run(&pp.month_only.setup, &mut month_regs, &pp.month_only.tables);
        let pre_regs = pp
            .pre_passes
            .iter()
            .map(|pass| {
                let mut regs = vec![0.0; pass.program.n_regs];
                for &(r, v) in &pass.program.consts {
                    regs[r as usize] = v;
                }
                regs
            })
            .collect();
        let (state, out) = (vec![0.0; p.n_states], vec![0.0; p.f.len()]);
        Runner {
            program,
            pre_regs,
            lane_regs: regs.clone(),
            lane_state: state.clone(),
            regs,
            state,
            out,
            month_regs,
            months: vec![],
            month_scenario: None,
            other_months: vec![],
            #[cfg(not(target_arch = "wasm32"))]
            scratch: vec![],
            setup_out: vec![],
        }
    }
}

/// Runs policies of one program, which it borrows ([`ProjectionProgram::runner`]) or holds
/// ([`ProjectionProgram::owned_runner`]).
pub struct Runner<P> {
    program: P,
    /// The register files of the passes before the last.
    pre_regs: Vec<Vec<f64>>,
    regs: Vec<f64>,
    state: Vec<f64>,
    /// The registers and state of the second policy of a pair ([`Runner::run_pair`]).
    lane_regs: Vec<f64>,
    lane_state: Vec<f64>,
    out: Vec<f64>,
    /// The month-only cells of months 0, 1, … computed so far, a row per month, and their program's registers.
    months: Vec<f64>,
    month_regs: Vec<f64>,
    /// The scenario (its bits) `months` are of, when the month-only cells read it, and the months of other
    /// scenarios run before (at most [`MONTH_CACHE`] values).
    month_scenario: Option<u64>,
    other_months: Vec<(u64, Vec<f64>)>,
    /// The native month loop's room.
    #[cfg(not(target_arch = "wasm32"))]
    scratch: Vec<f64>,
    /// The native policy code's results.
    setup_out: Vec<f64>,
}

/// Make `months` (the month-only values of scenario `from`) those of scenario `to`: kept from an earlier run of
/// it in `others`, else none yet (computed as months are asked for). `from`'s are kept while `others` holds at most
/// [`MONTH_CACHE`] values.
fn switch_scenario(months: &mut Vec<f64>, others: &mut Vec<(u64, Vec<f64>)>, from: Option<u64>, to: u64) {
    let old = std::mem::take(months);
    if let Some(k) = from
        && !old.is_empty()
    {
        let held: usize = others.iter().map(|(_, v)| v.len()).sum();
        if held + old.len() > MONTH_CACHE {
            others.clear();
        }
        if old.len() <= MONTH_CACHE {
            others.push((k, old));
        }
    }
    if let Some(j) = others.iter().position(|(k, _)| *k == to) {
        *months = others.swap_remove(j).1;
    }
}

/// A runner borrowing its program.
pub type Projection<'p> = Runner<&'p ProjectionProgram>;
/// A runner holding its program.
pub type OwnedProjection = Runner<Arc<ProjectionProgram>>;

impl<P: Deref<Target = ProjectionProgram>> Runner<P> {
    /// Project one policy for `months` months. `attrs` are its model-point values in the order of the
    /// attributes the program was compiled with; `monthly`, if given, receives `months` rows of
    /// [`ProjectionProgram::cells`] values. Present values and results are then in [`Projection::pvs`] and
    /// [`Projection::results`].
    pub fn run(&mut self, attrs: &[AttrValue], months: usize, mut monthly: Option<&mut [f64]>) -> Result<(), String> {
        let width = self.program.cells.len();
        if let Some(rows) = &monthly
            && rows.len() < months.saturating_mul(width)
        {
            return Err(format!(
                "the monthly buffer holds {} values, {months} months need {}",
                rows.len(),
                months * width
            ));
        }
        let n = self.prepare(attrs, months)?;
        let pp = &*self.program;
        let p = &pp.program;
        let base = 1 + p.n_states;
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(native) = &pp.native {
            let width_rows = monthly.as_deref_mut();
            native.run(&self.regs, &self.months, n, &mut self.state, width_rows, &mut self.scratch)?;
            // Months past the policy's projection length are not projected: their rows are zero.
            if let Some(rows) = monthly {
                rows[n * width..months * width].fill(0.0);
            }
            self.regs[1..base].copy_from_slice(&self.state);
            run(&pp.finish, &mut self.regs, &p.tables);
            return Ok(());
        }
        let n_month = pp.month_only.f.len();
        let inputs = base + pp.attributes.len();
        for t in 0..n {
            self.regs[inputs..inputs + n_month].copy_from_slice(&self.months[t * n_month..(t + 1) * n_month]);
            p.rhs(&mut self.regs, t as f64, &self.state, &mut self.out);
            let (cells, next) = self.out.split_at(width);
            if let Some(rows) = monthly.as_deref_mut() {
                rows[t * width..(t + 1) * width].copy_from_slice(cells);
            }
            self.state.copy_from_slice(next);
        }
        // Months past the policy's projection length are not projected: their rows are zero.
        if let Some(rows) = monthly {
            rows[n * width..months * width].fill(0.0);
        }
        self.regs[1..base].copy_from_slice(&self.state);
        run(&pp.finish, &mut self.regs, &p.tables);
        Ok(())
    }

    /// Month 0 of the policy with `attrs` as a one-month [`Runner::run`] gives it, at least the `cells` (indices
    /// into [`ProjectionProgram::cells`]) of `row`: when each of them is the policy's alone, only those, from the
    /// registers after the policy code, without running the month.
    pub fn first_month(&mut self, attrs: &[AttrValue], cells: &[usize], row: &mut [f64]) -> Result<(), String> {
        let pp = &*self.program;
        if !cells.iter().all(|&c| pp.policy_cells.get(c) == Some(&true)) || row.len() < pp.cells.len() {
            return self.run(attrs, 1, Some(row));
        }
        // A policy projected for no month has a row of zeros.
        let projected = self.prepare(attrs, 1)? > 0;
        let f = &self.program.program.f;
        for &c in cells {
            row[c] = if projected { self.regs[f[c] as usize] } else { 0.0 };
        }
        Ok(())
    }

    /// Project two policies, `a` and `b` (each its attribute values and months, as [`Runner::run`]'s), keeping
    /// only their present values and results: then [`Runner::pvs`] and [`Runner::results`] are `a`'s and
    /// [`Runner::lane_pvs`] and [`Runner::lane_results`] `b`'s, each to the bit what [`Runner::run`] gives for
    /// it. With the native month loop and the same scenario (the month-only values are shared) both run in the
    /// lanes of one loop for the months both are projected, the longer one alone after; else one after the
    /// other. An error names the policy it is of (0 for `a`, 1 for `b`).
    pub fn run_pair(&mut self, a: (&[AttrValue], usize), b: (&[AttrValue], usize)) -> Result<(), (usize, String)> {
        #[cfg(not(target_arch = "wasm32"))]
        if self.program.native.is_some()
            && let (Some(x), Some(y)) = (self.scenario_key(a.0), self.scenario_key(b.0))
            && x == y
        {
            return self.run_lanes(a, b);
        }
        self.run(b.0, b.1, None).map_err(|e| (1, e))?;
        std::mem::swap(&mut self.regs, &mut self.lane_regs);
        std::mem::swap(&mut self.state, &mut self.lane_state);
        self.run(a.0, a.1, None).map_err(|e| (0, e))
    }

    /// [`Runner::run_pair`] in the native month loop's lanes.
    #[cfg(not(target_arch = "wasm32"))]
    fn run_lanes(&mut self, a: (&[AttrValue], usize), b: (&[AttrValue], usize)) -> Result<(), (usize, String)> {
        let n_b = self.prepare(b.0, b.1).map_err(|e| (1, e))?;
        std::mem::swap(&mut self.regs, &mut self.lane_regs);
        std::mem::swap(&mut self.state, &mut self.lane_state);
        let n_a = self.prepare(a.0, a.1).map_err(|e| (0, e))?;
        let pp = &*self.program;
        let Some(native) = &pp.native else { return Err((0, "internal: no native month loop".into())) };
        let both = n_a.min(n_b);
        let (regs, states) = ([&self.regs[..], &self.lane_regs[..]], [&mut self.state[..], &mut self.lane_state[..]]);
        native.run_lanes(regs, &self.months, both, states, &mut self.scratch).map_err(|e| (0, e))?;
        // The longer policy's months after the shorter's end, alone.
        if n_a > both {
            native.run_from(&self.regs, &self.months, both, n_a, &mut self.state, None, &mut self.scratch)
        } else if n_b > both {
            native.run_from(&self.lane_regs, &self.months, both, n_b, &mut self.lane_state, None, &mut self.scratch)
        } else {
            Ok(())
        }
        .map_err(|e| (0, e))?;
        let base = 1 + pp.program.n_states;
        for (regs, state) in [(&mut self.regs, &self.state), (&mut self.lane_regs, &self.lane_state)] {
            regs[1..base].copy_from_slice(state);
            run(&pp.finish, regs, &pp.program.tables);
        }
        Ok(())
    }

    /// What the month-only values of a policy with `attrs` depend on: its scenario (as bits) when they read
    /// it, else nothing (`Some(0)`); `None` for a scenario given as text (then no two policies share them).
    #[cfg(not(target_arch = "wasm32"))]
    fn scenario_key(&self, attrs: &[AttrValue]) -> Option<u64> {
        let pp = &*self.program;
        match pp.scenario {
            Some((i, _)) if !pp.month_only.f.is_empty() => match attrs.get(i) {
                Some(AttrValue::Number(x)) => Some(x.to_bits()),
                _ => None,
            },
            _ => Some(0),
        }
    }

    /// Set up one policy for `months` months: its registers after the passes before the last and the policy
    /// code, its start state, and the month-only values of its scenario up to `months`. Returns the months it
    /// is projected (its projection length, at most `months`).
    fn prepare(&mut self, attrs: &[AttrValue], months: usize) -> Result<usize, String> {
        let pp = &*self.program;
        let p = &pp.program;
        if attrs.len() != pp.attributes.len() {
            return Err(format!(
                "{} attribute values given, the model points have {}",
                attrs.len(),
                pp.attributes.len()
            ));
        }
        let base = 1 + p.n_states;
        let mut unknown = -1.0;
        for (i, (a, v)) in pp.attributes.iter().zip(attrs).enumerate() {
            self.regs[base + i] = match (a.kind, v) {
                (ValueKind::Text, AttrValue::Text(s)) => match pp.symbols.get(*s) {
                    Some(&id) => id,
                    // Text no table or literal has, equal only to itself: the id of an earlier attribute with the
                    // same text, else a new one of −2, −3, … (−1 is a missing text).
                    None => match attrs[..i].iter().position(|a| matches!(a, AttrValue::Text(e) if e == s)) {
                        Some(j) => self.regs[base + j],
                        None => {
                            unknown -= 1.0;
                            unknown
                        }
                    },
                },
                (ValueKind::Number | ValueKind::Bool, AttrValue::Number(x)) => *x,
                (kind, _) => return Err(format!("attribute '{}' must be {}", a.name, kind.word())),
            };
        }
        let m = &pp.month_only;
        let n_month = m.f.len();
        if n_month > 0
            && let Some(&(i, _)) = pp.scenario.as_ref()
        {
            let key = self.regs[base + i].to_bits();
            if self.month_scenario != Some(key) {
                switch_scenario(&mut self.months, &mut self.other_months, self.month_scenario, key);
                for &(r, v) in &m.consts {
                    self.month_regs[r as usize] = v;
                }
                self.month_regs[1 + i] = f64::from_bits(key);
                run(&m.setup, &mut self.month_regs, &m.tables);
                self.month_scenario = Some(key);
            }
        }
        if n_month > 0 && self.months.len() < months * n_month {
            parfit_core::limits::check_allocation("the month-only values", (months * n_month) as f64, 8.0)?;
            let mut row = vec![0.0; n_month];
            for t in self.months.len() / n_month..months {
                m.rhs(&mut self.month_regs, t as f64, &[], &mut row);
                self.months.extend_from_slice(&row);
            }
        }
        let inputs = base + pp.attributes.len();
        let n_attrs = pp.attributes.len();
        let pv_inputs = inputs + n_month;
        let first_pv = p.n_states - pp.pvs.len();
        for k in 0..pp.pre_passes.len() {
            let pass = &pp.pre_passes[k];
            let q = &pass.program;
            let Some((regs, later)) = self.pre_regs[k..].split_first_mut() else { break };
            regs[base..base + n_attrs].copy_from_slice(&self.regs[base..base + n_attrs]);
            run(&q.setup, regs, &q.tables);
            for (s, &r) in self.state.iter_mut().zip(&pass.starts) {
                *s = regs[r as usize];
            }
            let n = run_length(regs, pass.proj_len, months, &pp.proj_len_at)?;
            for t in 0..n {
                regs[inputs..inputs + n_month].copy_from_slice(&self.months[t * n_month..(t + 1) * n_month]);
                q.rhs(regs, t as f64, &self.state, &mut self.out[..p.n_states]);
                self.state.copy_from_slice(&self.out[..p.n_states]);
            }
            for &j in &pass.sums {
                let v = self.state[first_pv + j];
                self.regs[pv_inputs + j] = v;
                for r in later.iter_mut() {
                    r[pv_inputs + j] = v;
                }
            }
        }
        pp.policy_code(&mut self.regs, &mut self.setup_out);
        for (s, &r) in self.state.iter_mut().zip(&pp.starts) {
            *s = self.regs[r as usize];
        }
        run_length(&self.regs, pp.proj_len, months, &pp.proj_len_at)
    }

    /// The present values of the last run, in [`ProjectionProgram::pvs`] order.
    pub fn pvs(&self) -> impl Iterator<Item = f64> + '_ {
        let n = self.program.pvs.len();
        self.state[self.state.len() - n..].iter().copied()
    }

    /// The results of the last run, in [`ProjectionProgram::results`] order.
    pub fn results(&self) -> impl Iterator<Item = f64> + '_ {
        self.program.results.iter().map(|&(_, r)| self.regs[r as usize])
    }

    /// The present values of the second policy of the last [`Runner::run_pair`].
    pub fn lane_pvs(&self) -> impl Iterator<Item = f64> + '_ {
        let n = self.program.pvs.len();
        self.lane_state[self.lane_state.len() - n..].iter().copied()
    }

    /// The results of the second policy of the last [`Runner::run_pair`].
    pub fn lane_results(&self) -> impl Iterator<Item = f64> + '_ {
        self.program.results.iter().map(|&(_, r)| self.lane_regs[r as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn attrs() -> Vec<Attribute> {
        vec![
            Attribute { name: "count".into(), kind: ValueKind::Number },
            Attribute { name: "product".into(), kind: ValueKind::Text },
        ]
    }

    /// Rates by age 40..=41 × year 0..=1 (ultimate), 0 outside; a charge by product code.
    fn tables() -> Vec<Table> {
        vec![
            Table {
                name: "mort".into(),
                keys: vec![
                    ("age".into(), Key::Ints { values: vec![40, 41], ultimate: false }),
                    ("year".into(), Key::Ints { values: vec![0, 1], ultimate: true }),
                ],
                columns: vec![("q".into(), ColumnData::Numbers(vec![0.1, 0.2, 0.3, 0.4]))],
                missing: Some(0.0),
            },
            Table {
                name: "spec".into(),
                keys: vec![("code".into(), Key::Texts(vec!["A".into(), "B".into()]))],
                columns: vec![
                    ("charge".into(), ColumnData::Numbers(vec![5.0, 7.0])),
                    ("kind".into(), ColumnData::Texts(vec!["SINGLE".into(), "LEVEL".into()])),
                    ("flag".into(), ColumnData::Bools(vec![true, false])),
                ],
                missing: None,
            },
            Table {
                name: "terms".into(),
                keys: vec![("term".into(), Key::Ints { values: vec![10, 15, 20], ultimate: false })],
                columns: vec![("rate".into(), ColumnData::Numbers(vec![1.0, 1.5, 2.0]))],
                missing: Some(-1.0),
            },
        ]
    }

    fn compile(src: &str) -> Result<ProjectionProgram, String> {
        compile_projection("m.prj", src, &attrs(), &tables(), &[])
    }

    fn error(src: &str) -> String {
        compile(src).map(|_| ()).unwrap_err()
    }

    /// Run a model on one policy for `months` months: (cell rows, results).
    fn run_model(src: &str, count: f64, product: &str, months: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
        let p = compile(src).unwrap_or_else(|e| panic!("{e}"));
        let width = p.cells().count();
        let mut rows = vec![0.0; months * width];
        let mut r = p.runner();
        r.run(&[AttrValue::Number(count), AttrValue::Text(product)], months, Some(&mut rows)).unwrap();
        (rows.chunks(width.max(1)).map(<[f64]>::to_vec).collect(), r.results().collect())
    }

    /// A policy's own cells in month 0 come from its registers, bit for bit what a month's run gives, zero when
    /// it is projected for no month; a cell that varies by month runs the month.
    #[test]
    fn first_month_reads_the_policys_own_cells_as_a_one_month_run_gives_them() {
        let src = "charge = spec[mp.product].charge * mp.count / 3
term = mp.count - 2
proj_len = max(term, 0)
n[0] = mp.count
n[t+1] = n * 0.5
now = n + t
";
        let mut p = compile(src).unwrap();
        let at = |name: &str| p.cells().position(|c| c == name).unwrap();
        let (charge, term, now) = (at("charge"), at("term"), at("now"));
        assert!(p.policy_cells[charge] && p.policy_cells[term] && !p.policy_cells[now]);
        for native in [false, true] {
            if native && p.compile_native().is_err() {
                continue;
            }
            let width = p.cells().count();
            let mut r = p.runner();
            for (count, product) in [(7.0, "A"), (2.0, "B"), (1.0, "A"), (5.5, "Z")] {
                let attrs = [AttrValue::Number(count), AttrValue::Text(product)];
                let mut want = vec![0.0; width];
                let ran = r.run(&attrs, 1, Some(&mut want));
                for cells in [vec![charge, term], vec![term, now]] {
                    let mut row = vec![f64::NAN; width];
                    let read = r.first_month(&attrs, &cells, &mut row);
                    // A bad projection length is the same error.
                    assert_eq!(ran.as_ref().err(), read.as_ref().err());
                    if ran.is_err() {
                        continue;
                    }
                    for &c in &cells {
                        assert_eq!(row[c].to_bits(), want[c].to_bits(), "{count} {product}: cell {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_recursion_with_present_values_runs() {
        let src = "param rate = 0.5
# policies decrease by the rate each month
n[0] = mp.count
dead = n * rate
n[t+1] = n - dead
pv pv_dead = dead * 2
result total = pv_dead + 1
";
        let (rows, results) = run_model(src, 8.0, "A", 3);
        assert_eq!(rows, vec![vec![8.0, 4.0], vec![4.0, 2.0], vec![2.0, 1.0]]);
        assert_eq!(results, vec![(4.0 + 2.0 + 1.0) * 2.0 + 1.0]);
    }

    #[test]
    fn a_next_value_may_read_other_next_values_when_acyclic() {
        let src = "a[0] = 1\nb[0] = 10\nb[t+1] = b + a[t+1]\na[t+1] = a * 2\nsum = a + b\n";
        let (rows, _) = run_model(src, 0.0, "A", 3);
        assert_eq!(rows, vec![vec![1.0, 10.0, 11.0], vec![2.0, 12.0, 14.0], vec![4.0, 16.0, 20.0]]);
    }

    #[test]
    fn tables_read_by_number_and_text_keys_with_ultimate_and_missing_cells() {
        let src = "age = 40 + floor(t / 2)
q = mort[age, t]
c = spec[mp.product].charge
single = if spec[mp.product].kind == \"SINGLE\" then 1 else 0
flag = if spec[mp.product].flag then 1 else 0
r = terms[10 + 5 * t]
";
        let (rows, _) = run_model(src, 0.0, "B", 5);
        // t = 0..4: ages 40, 40, 41, 41, 42 (outside: 0); years 0, 1, 2 → 1 (ultimate), …; terms 10, 15, 20, then
        // missing (−1).
        let q: Vec<f64> = rows.iter().map(|r| r[1]).collect();
        assert_eq!(q, [0.1, 0.2, 0.4, 0.4, 0.0]);
        assert!(rows.iter().all(|r| r[2] == 7.0 && r[3] == 0.0 && r[4] == 0.0));
        let terms: Vec<f64> = rows.iter().map(|r| r[5]).collect();
        assert_eq!(terms, [1.0, 1.5, 2.0, -1.0, -1.0]);
        // Text no table has equals only the same text.
        let two = [
            Attribute { name: "a".into(), kind: ValueKind::Text },
            Attribute { name: "b".into(), kind: ValueKind::Text },
            Attribute { name: "c".into(), kind: ValueKind::Text },
        ];
        let p = compile_projection(
            "m.prj",
            "result ab = if mp.a == mp.b then 1 else 0\nresult ac = if mp.a == mp.c then 1 else 0\n",
            &two,
            &tables(),
            &[],
        )
        .unwrap();
        let mut run = p.runner();
        run.run(&[AttrValue::Text("X"), AttrValue::Text("Y"), AttrValue::Text("X")], 0, None).unwrap();
        assert_eq!(run.results().collect::<Vec<_>>(), [0.0, 1.0]);
        // A product no table has reads nothing.
        let p = compile("c = spec[mp.product].charge\n").unwrap();
        let mut run = p.runner();
        let mut row = [0.0];
        run.run(&[AttrValue::Number(0.0), AttrValue::Text("Z")], 1, Some(&mut row)).unwrap();
        assert!(row[0].is_nan());
    }

    #[test]
    fn has_tells_whether_a_table_has_the_keys() {
        let src = "in_mort = has(mort[40 + t, 5])\nin_spec = has(spec[mp.product])\nin_terms = has(terms[10 + t])\n";
        let (rows, _) = run_model(src, 0.0, "B", 3);
        // Ages 40, 41 then none (a year past the last is ultimate); product B; term 10 only.
        assert_eq!(rows, vec![vec![1.0, 1.0, 1.0], vec![1.0, 1.0, 0.0], vec![0.0, 1.0, 0.0]]);
        let (rows, _) = run_model("x = has(spec[mp.product])\n", 0.0, "Z", 1);
        assert_eq!(rows, vec![vec![0.0]]);
        assert_eq!(error("x = has(1)\n"), "m.prj:1:5: has takes one table read, e.g. has(mort[mp.age_at_entry, 0])");
    }

    #[test]
    fn round_is_half_to_even_and_floor_goes_down() {
        for (x, want) in [(2.5, 2.0), (3.5, 4.0), (-2.5, -2.0), (-3.5, -4.0), (0.49, 0.0), (1.51, 2.0), (-0.4, -0.0)] {
            let (_, r) = run_model(&format!("x = 0\nresult r = round({x})\n"), 0.0, "A", 0);
            assert_eq!(r[0].to_bits(), f64::round_ties_even(want).to_bits(), "round({x})");
        }
        for (x, want) in [(2.5, 2.0), (-2.5, -3.0), (-3.0, -3.0), (0.0, 0.0)] {
            let (_, r) = run_model(&format!("x = 0\nresult r = floor({x})\n"), 0.0, "A", 0);
            assert_eq!(r[0], want, "floor({x})");
        }
    }

    #[test]
    fn names_and_tables_unknown_to_the_model_are_errors_at_their_place() {
        assert_eq!(
            error("x = 1\ny = mp.foo + 1\n"),
            "m.prj:2:8: unknown attribute 'mp.foo' (the model points have: count, product)"
        );
        assert_eq!(error("y = rates[1]\n"), "m.prj:1:5: unknown table 'rates' (the tables are: mort, spec, terms)");
        assert_eq!(error("y = x + 1\n"), "m.prj:1:5: unknown name 'x'");
        assert_eq!(error("y = count\n"), "m.prj:1:5: unknown name 'count'; the model-point column is 'mp.count'");
        assert_eq!(
            error("y = spec[mp.product]\n").split(';').next(),
            Some("m.prj:1:5: table 'spec' has several columns")
        );
        assert!(error("y = spec[mp.product].price\n").starts_with("m.prj:1:5: table 'spec' has no column 'price'"));
        assert_eq!(error("y = mort[40]\n"), "m.prj:1:5: table 'mort' has 2 keys (age, year), not 1");
        assert!(error("y = sin(1)\n").starts_with("m.prj:1:5: unknown function 'sin'"));
    }

    #[test]
    fn reading_the_future_is_an_error_unless_it_is_acyclic() {
        assert_eq!(error("x[0] = 1\nx[t+1] = x[t+1] + 1\n"), "m.prj:2:10: circular definition: x[t+1] reads x[t+1]");
        assert_eq!(
            error("x[0] = 1\ny = x[t+1]\nx[t+1] = y + 1\n"),
            "m.prj:3:10: circular definition: y reads x[t+1] reads y"
        );
        assert_eq!(error("a = b\nb = a * 2\n"), "m.prj:2:5: circular definition: a reads b reads a");
        assert_eq!(
            error("y = 1\nz = y[t+1]\n"),
            "m.prj:2:5: 'y' is not a recursion (no 'y[t+1] = …'); it has no value at t+1"
        );
        assert_eq!(
            error("x[0] = t\nx[t+1] = x\n").split(';').next(),
            Some("m.prj:1:1: the start value of 'x' reads a monthly value")
        );
        assert_eq!(error("x[0] = 1\n"), "m.prj:1:1: 'x[0]' starts a recursion but there is no 'x[t+1] = …'");
        assert_eq!(error("x[t+1] = 1\n"), "m.prj:1:1: 'x[t+1]' comes before its start value 'x[0] = …'");
        assert_eq!(error("x = 1\nx = 2\n"), "m.prj:2:1: 'x' is defined twice (first at line 1)");
    }

    #[test]
    fn text_used_as_a_number_and_other_type_errors_are_refused() {
        assert_eq!(error("y = mp.product * 2\n"), "m.prj:1:8: 'mp.product' is text, but a number is needed here");
        assert_eq!(
            error("y = if mp.count then 1 else 0\n"),
            "m.prj:1:11: 'mp.count' is a number, but a condition (true or false) is needed here"
        );
        assert_eq!(error("y = mp.product == 1\n"), "m.prj:1:19: this is a number, but text is needed here");
        assert_eq!(
            error("y = mort[mp.product, 0]\n"),
            "m.prj:1:13: key 'age' of table 'mort' is a number, but this is text"
        );
        assert_eq!(
            error("pv p = y\ny = p * 2\n"),
            "m.prj:1:4: circular definition: present value 'p' is summed from values that read it"
        );
        assert!(error("y = t\nresult r = y\n").starts_with("m.prj:2:12: 'y' changes by month"));
    }

    #[test]
    fn long_definitions_and_deep_chains_are_refused_not_overflowed() {
        let long = format!("y = 1{}\n", " + 1".repeat(600));
        assert!(error(&long).starts_with("m.prj:1:"), "{}", error(&long));
        assert!(error(&long).contains("more than 1000 values and operations"));
        let deep = format!("y = {}1{}\n", "(".repeat(1200), ")".repeat(1200));
        assert!(error(&deep).contains("nest more than 50 levels"), "{}", error(&deep));
        let deep = format!("y = {}1\n", "-".repeat(1200));
        assert!(error(&deep).contains("more than 1000 values and operations"), "{}", error(&deep));
        // 3000 cells, each reading the next: 3000 levels of definitions, each a few expression levels.
        let chain: String = (0..3000).map(|i| format!("c{i} = c{} + 1\n", i + 1)).collect::<String>() + "c3000 = t\n";
        assert!(error(&chain).contains("levels deep"), "{}", error(&chain));
        let ok: String = (0..100).map(|i| format!("c{i} = c{} + 1\n", i + 1)).collect::<String>() + "c100 = t\n";
        let (rows, _) = run_model(&ok, 0.0, "A", 2);
        assert_eq!(rows[1][0], 101.0);
    }

    #[test]
    fn functions_of_one_table_read_read_a_column_of_their_values() {
        let src = "dm = mp.count + t
duration = floor(dm / 12)
age = 40 + duration
q = mort[age, duration]
q2 = 1 - (1 - q) ^ (1 / 12)
q3 = q2 * 2 + spec[mp.product].charge
";
        let (rows, _) = run_model(src, 10.0, "B", 30);
        let rows: Vec<Vec<f64>> = rows.into_iter().map(|r| r[3..].to_vec()).collect();
        assert_eq!(
            rows.iter().map(|r| r[0]).collect::<Vec<_>>()[..16],
            [0.1, 0.1, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.0, 0.0]
        );
        // q, q2, q3 of each month: q2 and q3 computed once per table cell give what the month code would.
        for r in &rows {
            let q2 = 1.0 - math::powf(1.0 - r[0], 1.0 / 12.0);
            assert_eq!(r[1].to_bits(), q2.to_bits(), "{r:?}");
            assert_eq!(r[2].to_bits(), (q2 * 2.0 + 7.0).to_bits(), "{r:?}");
        }
        let p = compile(src).unwrap();
        assert!(!p.program.rhs.iter().any(|i| i.op == Op::Pow), "the power is taken per table cell, not per month");
    }

    /// Run a model interpreted and natively on one policy: the same bits, returned as (rows, pvs, results). (On
    /// wasm32, which has no JIT, both runs interpret.)
    fn run_both(src: &str, count: f64, months: usize) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
        let mut out = vec![];
        for native in [false, true] {
            #[allow(unused_mut)]
            let mut p = compile(src).unwrap_or_else(|e| panic!("{e}"));
            if native {
                #[cfg(not(target_arch = "wasm32"))]
                {
                    p.compile_native().unwrap();
                    p.compile_native_setup().unwrap();
                }
            }
            let width = p.cells().count();
            let mut rows = vec![f64::NAN; months * width];
            let mut r = p.runner();
            r.run(&[AttrValue::Number(count), AttrValue::Text("A")], months, Some(&mut rows)).unwrap();
            let rows: Vec<Vec<f64>> = rows.chunks(width.max(1)).map(<[f64]>::to_vec).collect();
            out.push((rows, r.pvs().collect::<Vec<_>>(), r.results().collect::<Vec<_>>()));
        }
        let bits = |(r, p, s): &(Vec<Vec<f64>>, Vec<f64>, Vec<f64>)| {
            r.iter().flatten().chain(p).chain(s).map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(&out[0]), bits(&out[1]), "interpreted and native differ");
        out.swap_remove(0)
    }

    #[test]
    fn last_months_values_are_read_in_cells_with_a_start() {
        // lifelib's `pols_if(t) = pols_if(t-1) - pols_lapse(t-1)` with `pols_if(0) = pols_if_init()`.
        let src = "n[0] = mp.count
n = n[t-1] - out[t-1]
out = n * 0.5
d[0] = 0
d = n - n[t-1]
";
        let (rows, _, _) = run_both(src, 8.0, 4);
        assert_eq!(rows, vec![vec![8.0, 4.0, 0.0], vec![4.0, 2.0, -4.0], vec![2.0, 1.0, -2.0], vec![1.0, 0.5, -1.0]]);
        // Of a recursion, too.
        let (rows, _, _) = run_both("a[0] = 1\na[t+1] = a * 3\nb[0] = -1\nb = a[t-1] + a\n", 0.0, 3);
        assert_eq!(rows, vec![vec![1.0, -1.0], vec![3.0, 4.0], vec![9.0, 12.0]]);
        // Anywhere it would be read at t = 0: an error at its place.
        let e = error("n[0] = 1\nn = n[t-1] + 1\ny = n[t-1]\n");
        assert!(e.starts_with("m.prj:3:5: 'n[t-1]' has no value at t = 0"), "{e}");
        let e = error("n[0] = n[t-1]\nn = 1\n");
        assert!(e.starts_with("m.prj:1:8: 'n[t-1]' has no value at t = 0"), "{e}");
        assert_eq!(
            error("param p = 1\nn[0] = 1\nn = p[t-1]\n"),
            "m.prj:3:5: 'p' is a parameter; it has no value at t-1"
        );
        assert_eq!(error("n[0] = 1\nn = z[t-1]\n"), "m.prj:2:5: unknown name 'z'");
        assert_eq!(error("n[0] = 1\nn = 2\nn = 3\n"), "m.prj:3:1: 'n' is defined twice (first at line 2)");
    }

    #[test]
    fn a_present_value_feeds_monthly_values_in_a_second_pass() {
        // BasicTerm_M's premium: solved from the present values of claims and policies, then paid monthly.
        let src = "n[0] = mp.count
n[t+1] = n * 0.5
claims = n * 3
pv pv_claims = claims
pv pv_n = n
premium = round(1.5 * pv_claims / pv_n * 100) / 100
premiums = premium * n
pv pv_premiums = premiums
result net = pv_premiums - pv_claims
";
        let (rows, pvs, results) = run_both(src, 8.0, 3);
        // pv_claims = 3 × 14, pv_n = 14: premium 4.5.
        assert_eq!(pvs, [42.0, 14.0, 63.0]);
        assert_eq!(results, [21.0]);
        assert_eq!(rows.iter().map(|r| r[3]).collect::<Vec<_>>(), [36.0, 18.0, 9.0]);
        // Three passes: a premium read by a present value read by a monthly value.
        let src3 = format!("{src}pv pv_prem2 = premiums * 2\nextra = pv_prem2 + n\npv pv_extra = extra\n");
        let (_, pvs, _) = run_both(&src3, 8.0, 3);
        assert_eq!(pvs, [42.0, 14.0, 63.0, 126.0, 126.0 * 3.0 + 14.0]);
    }

    #[test]
    fn atan_for_an_arctan_dynamic_lapse() {
        // The arctan lapse form: base × (a + b · atan(m · (crediting − fund return) − n)), here over a spread.
        let (rows, _, _) = run_both("s = t / 4 - 2\nk = 0.5 + atan(3 * s - 1) / 3.25\n", 0.0, 17);
        for r in &rows {
            assert_eq!(
                r[1].to_bits(),
                (0.5 + parfit_core::math::atan(3.0 * r[0] - 1.0) / 3.25).to_bits(),
                "s = {}",
                r[0]
            );
        }
        assert!(error("y = atan(1, 2)\n").starts_with("m.prj:1:5: atan takes 1 argument, not 2"));
    }

    #[test]
    fn erfc_and_the_normal_distribution_function() {
        let (rows, _, _) = run_both("z = t / 4 - 2\ne = erfc(z)\np = norm_cdf(z)\n", 0.0, 17);
        for r in &rows {
            let (z, e, p) = (r[0], r[1], r[2]);
            assert_eq!(e.to_bits(), parfit_core::math::erfc(z).to_bits(), "erfc({z})");
            // Φ(z) = ½ erfc(−z/√2), within an ulp or two of that composition.
            let want = 0.5 * parfit_core::math::erfc(-z / std::f64::consts::SQRT_2);
            assert!((p - want).abs() <= 4.0 * f64::EPSILON * want, "norm_cdf({z}) = {p}, not {want}");
        }
        assert_eq!(rows[8][2], 0.5, "Φ(0)");
        assert!(rows[0][2] < rows[1][2] && rows[15][2] < rows[16][2] && rows[16][2] < 1.0);
        assert!(error("y = norm_cdf(1, 2)\n").starts_with("m.prj:1:5: norm_cdf takes 1 argument, not 2"));
        // Special values, interpreted and native alike (run_both compares the bits).
        let special = "z = if t == 0 then 0 else if t == 1 then -0 * 1 else if t == 2 then 1 / 0 else if t == 3 \
                       then -1 / 0 else if t == 4 then 0 / 0 else if t == 5 then 40 else if t == 6 then -40 else \
                       if t == 7 then 1e-300 else 27\ne = erfc(z)\np = norm_cdf(z)\n";
        let (rows, _, _) = run_both(special, 0.0, 9);
        let want = [(0.0, 0.5), (-0.0, 0.5), (f64::INFINITY, 1.0), (f64::NEG_INFINITY, 0.0)];
        for (r, (z, p)) in rows.iter().zip(want) {
            assert_eq!((r[0].to_bits(), r[2]), (z.to_bits(), p), "{r:?}");
        }
        assert!(rows[4][1].is_nan() && rows[4][2].is_nan());
        assert_eq!((rows[5][2], rows[6][2]), (1.0, 0.0));
        assert_eq!(rows[6][1], 2.0);
    }

    /// Every model one character short of a model using the new constructs (last month's values, present values
    /// read by monthly values, a projection length, erfc) is refused with its place or runs: never a panic.
    #[test]
    fn damaged_models_are_refused_at_their_place_or_run() {
        let src = "proj_len = mp.count + 3
n[0] = mp.count
n = n[t-1] - out[t-1]
out = n * 0.25 + erfc(n) * 0
pv pv_n = n
pv pv_out = out
premium = round(1.5 * pv_out / pv_n * 100) / 100
paid = premium * n
pv pv_paid = paid
result r = pv_paid - pv_out
";
        let (mut refused, mut ran) = (0, 0);
        for (k, _) in src.char_indices() {
            let mut damaged = src.to_string();
            damaged.remove(k);
            match compile(&damaged) {
                Err(e) => {
                    assert!(e.starts_with("m.prj:"), "{damaged:?}: {e}");
                    refused += 1;
                }
                Ok(p) => {
                    let width = p.cells().count();
                    let mut rows = vec![0.0; 8 * width];
                    for count in [2.0, -1.5, f64::NAN] {
                        let _ = p.runner().run(&[AttrValue::Number(count), AttrValue::Text("A")], 8, Some(&mut rows));
                    }
                    ran += 1;
                }
            }
        }
        assert!(refused > 50 && ran > 20, "refused {refused}, ran {ran}");
    }

    #[test]
    fn a_projection_length_ends_the_months_of_a_policy() {
        let src = "proj_len = mp.count + 1
x = t + 1
pv s = x
result r = s
";
        let (rows, pvs, _) = run_both(src, 2.0, 5);
        assert_eq!(pvs, [6.0]);
        assert_eq!(rows, vec![vec![3.0, 1.0], vec![3.0, 2.0], vec![3.0, 3.0], vec![0.0, 0.0], vec![0.0, 0.0]]);
        // Shorter runs stop first.
        let (_, pvs, _) = run_both(src, 2.0, 2);
        assert_eq!(pvs, [3.0]);
        assert!(error("proj_len = t\n").starts_with("m.prj:1:1: 'proj_len' must be a number known for the policy"));
        let p = compile("proj_len = mp.count - 0.5\nx = 1\n").unwrap();
        let e = p.runner().run(&[AttrValue::Number(2.0), AttrValue::Text("A")], 3, None).unwrap_err();
        assert!(e.starts_with("m.prj:1:1: the projection length 'proj_len' of this policy is 1.5, not a whole"), "{e}");
    }

    /// The native month loop (cells stored or not; calls remembered across months) gives the interpreter's
    /// Cells of the month and the scenario only are computed once per month and scenario: right whichever
    /// scenario ran before, on a borrowed and an owned runner alike.
    #[test]
    fn month_cells_of_the_scenario_follow_the_scenario() {
        let mut with_scenario = attrs();
        with_scenario.push(Attribute { name: SCENARIO.into(), kind: ValueKind::Number });
        let src = "g = 1 + scenario / 100 * (t + 1)\nd = 0.5 ^ t\nn[0] = mp.count\nn[t+1] = n * g\npv v = n * d\n";
        let p = Arc::new(compile_projection("m.prj", src, &with_scenario, &tables(), &[]).unwrap());
        assert!(p.scenario.is_some(), "the month-only cells read the scenario");
        let expect = |s: f64, months: usize| {
            let (mut n, mut v) = (3.0, 0.0);
            for t in 0..months {
                v += n * math::powi(0.5f64, t as i32);
                n *= 1.0 + s / 100.0 * (t as f64 + 1.0);
            }
            v
        };
        let (mut borrowed, mut owned) = (p.runner(), p.owned_runner());
        for (s, months) in [(1.0, 4), (2.0, 6), (1.0, 7), (3.0, 2), (2.0, 3), (1.0, 7)] {
            let a = [AttrValue::Number(3.0), AttrValue::Text("A"), AttrValue::Number(s)];
            borrowed.run(&a, months, None).unwrap();
            owned.run(&a, months, None).unwrap();
            let want = expect(s, months);
            assert_eq!(borrowed.pvs().collect::<Vec<_>>(), [want], "scenario {s}, {months} months");
            assert_eq!(owned.pvs().collect::<Vec<_>>(), [want], "scenario {s}, {months} months");
        }
        // Without a month-only cell reading it, the scenario does not key the months.
        let p = compile_projection("m.prj", "d = 0.5 ^ t\nn = mp.count * d\n", &with_scenario, &tables(), &[]).unwrap();
        assert!(p.scenario.is_none());
    }

    /// cells, present values and results to the bit.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_native_month_loop_matches_the_interpreter_to_the_bit() {
        let src = "param rate = 0.25
year = floor((mp.count + t) / 12)
age = 40 + year
q = mort[age, year]
q_mth = 1 - (1 - q) ^ (1 / 12)
lapse = max(0.1 - 0.02 * year, 0.02) ^ (1 / 12)
grow = (1 + rate) ^ (t / 12)
n[0] = mp.count
n[t+1] = n * (1 - q_mth) * (1 - lapse) + min(t, 3) * 0.5
v[0] = 1
v[t+1] = exp(log(v + 1) / 3) + terms[10 + 5 * year] + spec[mp.product].charge
out = n * v * grow - max(n, -0.0)
pv total = out * grow
pv count = n
result r = total / (count + 1)
";
        let interp = compile(src).unwrap();
        let mut native = compile(src).unwrap();
        native.compile_native().unwrap();
        assert!(native.is_native() && !interp.is_native());
        let width = interp.cells().count();
        for (count, product, months) in [(0.0, "A", 40), (7.0, "B", 300), (11.0, "Z", 1), (3.0, "A", 0)] {
            let attrs = [AttrValue::Number(count), AttrValue::Text(product)];
            let (mut a, mut b) = (interp.runner(), native.runner());
            let (mut rows_a, mut rows_b) = (vec![0.0; months * width], vec![1.0; months * width]);
            a.run(&attrs, months, Some(&mut rows_a)).unwrap();
            b.run(&attrs, months, Some(&mut rows_b)).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&rows_a), bits(&rows_b), "cells of {count}, {product}");
            let got = |r: &Projection| (bits(&r.pvs().collect::<Vec<_>>()), bits(&r.results().collect::<Vec<_>>()));
            let want = got(&a);
            assert_eq!(got(&b), want, "present values and results of {count}, {product}");
            // Without the cells: the same present values and results, also after another policy.
            b.run(&attrs, months, None).unwrap();
            assert_eq!(got(&b), want, "present values and results of {count}, {product}, no cells");
        }
    }

    /// Two policies run as a pair (in the native loop's lanes when they have the same scenario, the longer one
    /// alone after the shorter ends) give each the present values and results of its own run, to the bit: with
    /// different lengths, texts, missing and NaN values, calls and table reads that depend on the state.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_pair_of_policies_gives_each_its_own_run_to_the_bit() {
        let mut with_scenario = attrs();
        with_scenario.push(Attribute { name: SCENARIO.into(), kind: ValueKind::Number });
        let src = "param rate = 0.25
proj_len = 5 + mp.count * 7
year = floor((mp.count + t) / 12)
age = 40 + year
q = mort[age, year]
q_mth = 1 - (1 - q) ^ (1 / 12)
g = 1 + scenario / 100 * (t + 1) + rate
h = exp(mp.count * t / 100) + log(1 + min(t, 5))
n[0] = mp.count
n[t+1] = n * (1 - q_mth) * g + min(t, 3) * 0.5 + h
v[0] = 1
v[t+1] = exp(log(v + 1) / 3) + terms[10 + 5 * floor(v)] + spec[mp.product].charge
w[0] = mp.count - 5
w[t+1] = if w > 0 and not (n < 2) or w != w then max(w, n / (w - w)) - sqrt(abs(n)) else min(w + 1, 0 / (n - n)) + round(w * 10) / 10
k = if n >= 3 and has(mort[age, 0]) then 1 else 0
out = n * v * g - max(n, -0.0)
pv total = out * g + k
pv count = n + w
pv wild = max(w, v) + min(v, w)
result r = total / (count + 1)
";
        let interp = compile_projection("m.prj", src, &with_scenario, &tables(), &[]).unwrap();
        let mut native = compile_projection("m.prj", src, &with_scenario, &tables(), &[]).unwrap();
        native.compile_native().unwrap();
        assert!(native.is_native() && native.scenario.is_some());
        let bits = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let points: Vec<(f64, &str, f64, usize)> = vec![
            (0.0, "A", 1.0, 40),
            (3.0, "B", 1.0, 40),
            (6.0, "Z", 1.0, 40),
            (1.0, "B", 2.0, 12),
            (2.0, "A", 1.0, 0),
            (5.0, "Z", 2.0, 60),
            (4.0, "A", 1.0, 60),
        ];
        fn attrs_of<'a>(&(count, product, s, _): &(f64, &'a str, f64, usize)) -> [AttrValue<'a>; 3] {
            [AttrValue::Number(count), AttrValue::Text(product), AttrValue::Number(s)]
        }
        // Each point alone, interpreted and native: the same bits.
        let mut want = vec![];
        for pt in &points {
            let (mut a, mut b) = (interp.runner(), native.runner());
            a.run(&attrs_of(pt), pt.3, None).unwrap();
            b.run(&attrs_of(pt), pt.3, None).unwrap();
            let got = |r: &Projection| (bits(r.pvs().collect()), bits(r.results().collect()));
            assert_eq!(got(&a), got(&b), "point {pt:?} interpreted and native");
            want.push(got(&a));
        }
        // Every ordered pair, on one runner (scenarios changing between pairs), native and interpreted.
        for program in [&native, &interp] {
            let mut r = program.runner();
            for (i, pa) in points.iter().enumerate() {
                for (j, pb) in points.iter().enumerate() {
                    r.run_pair((&attrs_of(pa), pa.3), (&attrs_of(pb), pb.3)).unwrap();
                    assert_eq!((bits(r.pvs().collect()), bits(r.results().collect())), want[i], "{pa:?} with {pb:?}");
                    let lane = (bits(r.lane_pvs().collect()), bits(r.lane_results().collect()));
                    assert_eq!(lane, want[j], "{pb:?} after {pa:?}");
                }
            }
        }
        // An error names the policy it is of.
        let mut r = native.runner();
        let bad = [AttrValue::Text("A"), AttrValue::Text("A"), AttrValue::Number(1.0)];
        let good = attrs_of(&points[0]);
        assert_eq!(r.run_pair((&good, 4), (&bad, 4)).unwrap_err().0, 1);
        assert_eq!(r.run_pair((&bad, 4), (&good, 4)).unwrap_err().0, 0);
    }

    /// Calls that do not depend on the state keep their values across policies in caches (`jit::CallCache`):
    /// a runner that ran other policies before gives each policy the bits of its own interpreted run, alone and
    /// in pairs, with more operand pairs than a cache has entries (entries replaced) and calls of one and two
    /// operands.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn cached_calls_give_every_policy_its_own_bits() {
        let src = "year = floor((mp.count + t) / 12)
lapse = max(0.1 - 0.02 * year, 0) ^ (1 / 12)
r = (mp.count / 1000 + year / 7) ^ (year / 3)
e = exp(mp.count * year / 5000)
n[0] = 1
n[t+1] = n * (1 - lapse) * e + r
pv total = n
";
        let interp = compile(src).unwrap();
        let mut native = compile(src).unwrap();
        native.compile_native().unwrap();
        let bits = |r: &Projection| r.pvs().map(f64::to_bits).collect::<Vec<_>>();
        let mut shared = native.runner();
        let point = |k: usize| ((k * 37 % 2000) as f64, 1 + k % 90);
        for k in 0..3000 {
            let (count, months) = point(k);
            let attrs = [AttrValue::Number(count), AttrValue::Text("A")];
            let mut alone = interp.runner();
            alone.run(&attrs, months, None).unwrap();
            if k % 2 == 0 {
                shared.run(&attrs, months, None).unwrap();
                assert_eq!(bits(&shared), bits(&alone), "count {count}, {months} months");
            } else {
                let (other, other_months) = point(k + 1);
                let b = [AttrValue::Number(other), AttrValue::Text("A")];
                shared.run_pair((&attrs, months), (&b, other_months)).unwrap();
                assert_eq!(bits(&shared), bits(&alone), "count {count}, {months} months, in a pair");
            }
        }
    }

    #[test]
    fn syntax_errors_and_bad_parameters_name_their_place() {
        assert_eq!(error("y = (1 + \n"), "m.prj:1:10: expected a value, found the end of the line");
        assert_eq!(error("y = 1 $ 2\n"), "m.prj:1:7: unexpected character '$'");
        assert_eq!(error("y = \"abc\n"), "m.prj:1:5: the text starting here has no closing '\"'");
        assert_eq!(error("x[t+2] = 1\n"), "m.prj:1:5: a recursion defines 'name[t+1]' (or its start, 'name[0]')");
        assert_eq!(error("param p = mp.count\n"), "m.prj:1:11: a parameter's default is a number");
        assert_eq!(error("t = 1\n"), "m.prj:1:1: 't' is a name of the language; choose another");
        assert_eq!(error("mort = 1\n"), "m.prj:1:1: 'mort' is the name of a table; choose another");
        let e = compile_projection("m.prj", "param p = 1\ny = p\n", &attrs(), &tables(), &[("q", 2.0)]).unwrap_err();
        assert_eq!(e, "m.prj: unknown parameter 'q' (the model has: p)");
        let p = compile_projection("m.prj", "param p = 1\nresult y = p\n", &attrs(), &tables(), &[("p", 2.0)]).unwrap();
        let mut r = p.runner();
        r.run(&[AttrValue::Number(0.0), AttrValue::Text("A")], 0, None).unwrap();
        assert_eq!(r.results().collect::<Vec<_>>(), [2.0]);
        assert!(
            r.run(&[AttrValue::Text("A"), AttrValue::Text("A")], 0, None)
                .unwrap_err()
                .contains("'count' must be a number")
        );
    }
}
