//! From syntax tree to [`Program`]: check which tensors exist, work out every tensor's shape, resolve names
//! to registers element by element, fold constants, and split the code by what it depends on (parameters
//! only → run once per simulation; `t`, the state or `N` → run at every right-hand-side evaluation).
//!
//! Tensors are unrolled: each stored element of `v_i { A_ij * u_j }` becomes its own scalar code, and the
//! structural zeros of sparse and diagonal tensors generate none. Straight-line code lets constant folding,
//! sharing and the symbolic Jacobian work on single values.
//!
//! This module is the driver; `shape` works out tensor shapes and element blocks, `tensor` holds the tensor
//! values code is generated with, `expr` generates the code of expressions, and `frostt` reads `read(…)`
//! files.

mod expr;
mod frostt;
mod mass;
mod shape;
mod tensor;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::emit::{Emitter, Level, Val};
use crate::eval::{DrawKind, Instr, Program};
use crate::lexer::{Located, Pos};
use crate::parser::{Ast, Expr, Slice, Tensor};
use shape::Layout;
use tensor::Tv;

/// Reads a file a model names (`read('file.tns')`): its text, or why it cannot be read. parfit-expr does no
/// I/O itself; front ends decide where names are looked up.
pub type Files<'f> = dyn Fn(&str) -> Result<String, String> + 'f;

/// The reader for front ends that read no files.
pub fn no_files(name: &str) -> Result<String, String> {
    Err(format!("this front end reads no files (asked for '{name}')"))
}

/// Which kind of model the text describes. The language is the same; the dialects differ in the update rule
/// and in whether random draws are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// An ODE `du/dt = F(u, p, t)`: `F_i` is required, random draws are refused.
    Ode,
    /// A Monte Carlo model stepping over periods: `next_i` gives the state at the next period and may use
    /// random draws (`normal()`, `uniform()`, `lognormal(mu, sigma)`, `bernoulli(p)`); `F_i`, `dudt_i`
    /// and `M_i` are refused.
    MonteCarlo,
}

/// A compiled model with the names its spec needs.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub program: Program,
    /// Parameter names and defaults, in order.
    pub params: Vec<(String, f64)>,
    /// State names, in order.
    pub states: Vec<String>,
    /// Output names, in order.
    pub outputs: Vec<String>,
}

/// What a tensor is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `in_i { … }`: its elements are parameters, with their defaults.
    Input,
    /// `u_i`: the state, with its initial values.
    State,
    /// `F_i`: du/dt (ODE), or `next_i`: the state at the next period (Monte Carlo).
    Rhs,
    /// `out_i`.
    Out,
    /// `M_i`: M·du/dt (ODE), linear in the names of `dudt_i`.
    Mass,
    /// `dudt_i`: names du/dt for `M_i`; its values are placeholders.
    Dudt,
    /// `stop_i` (ODE): the stop functions, whose zeros are events.
    Stop,
    /// `reset_i` (ODE): the state after an event.
    Reset,
    /// Any other tensor.
    Plain,
}

struct TDef<'a> {
    t: &'a Tensor,
    base: &'a str,
    /// The index letters, one per axis: none for a scalar, `i` for a vector `v_i`, `ij` for `A_ij`.
    letters: Vec<char>,
    role: Role,
}

impl TDef<'_> {
    /// The letter of a vector's one axis (`i` when there is none, for messages).
    fn letter(&self) -> char {
        self.letters.first().copied().unwrap_or('i')
    }
}

/// What a name refers to: a whole tensor, or one (possibly ranged) element of one.
#[derive(Debug, Clone, Copy)]
enum Sym {
    Tensor(usize),
    Block(usize, usize),
}

/// The most levels of nested expressions and definitions (`c { b }` where `b { a }` …) a value may be
/// defined through. Generating code recurses once per level, so the bound keeps it within any thread's
/// stack; expressions alone are bounded tighter by the parser.
pub const MAX_DEPTH: usize = 500;

/// Roughly what one element of a tensor costs to compile (its register code, the compiler's tables and the
/// Jacobian's share), for the memory check before code is generated.
const BYTES_PER_ELEMENT: f64 = 256.0;

fn classify(ast: &Ast, dialect: Dialect) -> Result<Vec<TDef<'_>>, Located> {
    let mut defs: Vec<TDef<'_>> = Vec::new();
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
        if dialect == Dialect::MonteCarlo && matches!(base, "F" | "dudt" | "M" | "stop" | "reset") {
            return Err(Located::new(
                t.pos,
                format!(
                    "'{}' belongs to ODE models (line {}); a Monte Carlo model gives the state at the next period \
                     with 'next_i {{ … }}'",
                    t.name, t.pos.line
                ),
            ));
        }
        let letters: Vec<char> = index.map_or(Vec::new(), |ix| ix.chars().collect());
        if let Some((k, &c)) = letters.iter().enumerate().find(|&(k, c)| letters[..k].contains(c)) {
            return Err(Located::new(
                t.pos,
                format!(
                    "tensor '{}' repeats the index letter '{c}' (position {}): each axis needs its own",
                    t.name,
                    k + 1
                ),
            ));
        }
        let role = match base {
            "in" => Role::Input,
            "u" => Role::State,
            "F" if dialect == Dialect::Ode => Role::Rhs,
            "next" if dialect == Dialect::MonteCarlo => Role::Rhs,
            "out" => Role::Out,
            "M" if dialect == Dialect::Ode => Role::Mass,
            "dudt" if dialect == Dialect::Ode => Role::Dudt,
            "stop" if dialect == Dialect::Ode => Role::Stop,
            "reset" if dialect == Dialect::Ode => Role::Reset,
            _ => Role::Plain,
        };
        if role != Role::Plain
            && let Some(first) = defs.iter().find(|d| d.role == role)
        {
            return Err(Located::new(
                t.pos,
                format!("'{}' is defined twice (first at {}:{})", t.name, first.t.pos.line, first.t.pos.col),
            ));
        }
        if letters.len() > 1 && !matches!(role, Role::Plain) {
            return Err(Located::new(
                t.pos,
                format!("'{}' must be a scalar or a vector (one index letter), not {}-D", t.name, letters.len()),
            ));
        }
        if letters.is_empty() && t.elements.len() != 1 {
            return Err(Located::new(
                t.pos,
                format!(
                    "tensor '{0}' has {1} elements: a tensor without an index is a scalar (exactly one element); \
                     write '{0}_i' for a vector",
                    t.name,
                    t.elements.len()
                ),
            ));
        }
        if t.elements.is_empty() {
            return Err(Located::new(t.pos, format!("'{}' has no elements", t.name)));
        }
        for el in &t.elements {
            if let Some(r) = &el.range {
                if letters.is_empty() {
                    return Err(Located::new(r.pos, format!("scalar '{}' cannot have an element range", t.name)));
                }
                if r.axes.len() != letters.len() {
                    return Err(Located::new(
                        r.pos,
                        format!(
                            "the range gives {} indices but '{}' has {} (one per index letter)",
                            r.axes.len(),
                            t.name,
                            letters.len()
                        ),
                    ));
                }
            }
        }
        defs.push(TDef { t, base, letters, role });
    }
    Ok(defs)
}

/// Compile a parsed model; with `sensitivities`, also the code for the forward sensitivity equations
/// (ODE dialect only). `files` reads the files `read(…)` names.
pub fn compile(ast: &Ast, dialect: Dialect, sensitivities: bool, files: &Files<'_>) -> Result<Compiled, Located> {
    let sensitivities = sensitivities && dialect == Dialect::Ode;
    let defs = classify(ast, dialect)?;
    mass::check_pairing(&defs)?;
    let find = |defs: &[TDef<'_>], role| defs.iter().position(|d| d.role == role);
    let u = find(&defs, Role::State).ok_or_else(|| Located::new(ast.end, "the model has no state tensor 'u_i'"))?;
    let missing = match dialect {
        Dialect::Ode => "the model has no right-hand side 'F_i'",
        Dialect::MonteCarlo => "the model has no update rule 'next_i' (the state at the next period)",
    };
    let f = find(&defs, Role::Rhs).ok_or_else(|| Located::new(ast.end, missing))?;

    // Symbols: tensors by their base name, named elements by their name.
    let mut syms: HashMap<&str, (Sym, Pos)> = HashMap::new();
    for (tid, d) in defs.iter().enumerate() {
        define(&mut syms, d.base, Sym::Tensor(tid), d.t.pos)?;
        for (e, el) in d.t.elements.iter().enumerate() {
            if let Some((name, pos)) = &el.name {
                define(&mut syms, name, Sym::Block(tid, e), *pos)?;
            }
        }
    }

    // Parameters: the elements of `in_i`, each named.
    let input = find(&defs, Role::Input);
    if let Some(tid) = input
        && let Some(el) = defs[tid].t.elements.iter().find(|el| el.name.is_none())
    {
        return Err(Located::new(
            el.pos,
            format!("each element of '{}' needs a name and a default, as 'alpha = 1.1'", defs[tid].t.name),
        ));
    }

    let mut g = Gen {
        dialect,
        files,
        reads: HashMap::new(),
        draw_block: (Vec::new(), Vec::new()),
        at: Pos { line: 1, col: 1 },
        draws_refused: None,
        draw_slots: HashMap::new(),
        defs,
        syms,
        layouts: Vec::new(),
        visiting: Vec::new(),
        level: 0,
        entry: 0,
        ref_depth: 0,
        e: Emitter::new(0, 0, Vec::new()),
        static_vals: Vec::new(),
        dynamic_vals: Vec::new(),
        dudt: None,
        dudt_regs: Vec::new(),
    };
    let n_tensors = g.defs.len();
    g.layouts = (0..n_tensors).map(|_| None).collect();
    g.static_vals = vec![None; n_tensors];
    g.dynamic_vals = vec![None; n_tensors];

    // Shapes of every tensor, in source order so that the first problem in the text is reported.
    for tid in 0..n_tensors {
        g.layout(tid, g.defs[tid].t.pos)?;
    }
    if let Some(largest) = (0..n_tensors).max_by_key(|&tid| (g.stored(tid), std::cmp::Reverse(tid))) {
        let elements: u64 = (0..n_tensors).map(|tid| g.stored(tid)).sum();
        let what = format!("a model of {elements} tensor elements");
        parfit_core::limits::check_allocation(&what, elements as f64, BYTES_PER_ELEMENT)
            .map_err(|m| Located::new(g.defs[largest].t.pos, m))?;
    }
    g.e.n_states = g.len(u);
    if g.defs[f].letters.len() != g.defs[u].letters.len() {
        let rank = |d: &TDef<'_>| if d.letters.is_empty() { "a scalar" } else { "a vector" };
        return Err(Located::new(
            g.defs[f].t.pos,
            format!(
                "'{}' and '{}' must have the same shape, but '{}' is {} and '{}' {} (as DiffSL requires)",
                g.defs[f].t.name,
                g.defs[u].t.name,
                g.defs[f].t.name,
                rank(&g.defs[f]),
                g.defs[u].t.name,
                rank(&g.defs[u])
            ),
        ));
    }
    let n_f = g.len(f);
    if n_f != g.e.n_states {
        return Err(Located::new(
            g.defs[f].t.pos,
            format!(
                "'{}' has {} elements but '{}' has {} states",
                g.defs[f].t.name, n_f, g.defs[u].t.name, g.e.n_states
            ),
        ));
    }

    g.dudt = mass::check_shapes(&g, u)?;

    // Parameter numbering and names.
    let param_names = input.map_or(Vec::new(), |tid| g.elem_names(tid));
    let n_params = param_names.len();
    g.e.n_regs = (1 + g.e.n_states + n_params) as u32;

    // Defaults: constant expressions.
    g.draws_refused = Some("parameter defaults");
    let mut defaults = Vec::new();
    if let Some(tid) = input {
        for (k, v) in g.generate(tid)?.to_dense().into_iter().enumerate() {
            match v {
                Val::Const(v) => defaults.push((param_names[k].clone(), v)),
                Val::Reg(..) => {
                    return Err(Located::new(
                        g.element_at(tid, k).expr_pos,
                        format!("the default of input '{}' must be a constant expression", param_names[k]),
                    ));
                }
            }
        }
    }

    // Initial state: parameter-level code, run once per simulation.
    g.draws_refused = Some("initial values");
    let state_names = g.elem_names(u);
    let mut init = Vec::new();
    for (k, v) in g.generate(u)?.to_dense().into_iter().enumerate() {
        if v.level() == Some(Level::Dynamic) {
            return Err(Located::new(
                g.element_at(u, k).expr_pos,
                format!(
                    "the initial value of state '{}' depends on t or the state (or the model index N), which is not \
                     supported",
                    state_names[k]
                ),
            ));
        }
        init.push(g.e.reg(v));
    }
    g.take_dynamic(); // anything dynamic above was rejected; drop it

    g.draws_refused = None;
    let f_regs: Vec<u32> = g.value(f)?.to_dense().into_iter().map(|v| g.e.reg(v)).collect();
    let rhs = g.take_dynamic();
    let (jac, jac_entries) = match dialect {
        Dialect::Ode => {
            let entries = g.e.jacobian(&rhs, &f_regs).map_err(|m| Located::new(g.defs[f].t.pos, m))?;
            (g.take_dynamic(), entries)
        }
        Dialect::MonteCarlo => (Vec::new(), Vec::new()),
    };

    let mass_entries = match find(&g.defs, Role::Mass) {
        Some(m) => g.mass_matrix(m, sensitivities)?,
        None => Vec::new(),
    };

    g.draws_refused = Some("outputs");
    let (outputs, out_regs) = match find(&g.defs, Role::Out) {
        Some(tid) => {
            let names = g.out_names(tid)?;
            let vals = g.value(tid)?.to_dense();
            (names, vals.into_iter().map(|v| g.e.reg(v)).collect())
        }
        None => (state_names.clone(), (0..g.e.n_states).map(|i| Program::state_reg(i) as u32).collect()),
    };
    let out = g.take_dynamic();
    g.draws_refused = None;
    let events = g.events(u)?;

    // Everything else is checked by generating it; dead-code elimination below drops what nothing uses.
    for tid in 0..n_tensors {
        if g.defs[tid].role == Role::Plain {
            g.value(tid)?;
        }
    }
    g.take_dynamic();

    // Draw slots in source order: by call site, then element.
    let mut slots: Vec<((usize, usize), (DrawKind, u32))> = std::mem::take(&mut g.draw_slots).into_iter().collect();
    slots.sort_unstable_by_key(|s| s.0);
    let mut program = Program {
        draws: slots.iter().map(|s| s.1.0).collect(),
        draw_regs: slots.iter().map(|s| s.1.1).collect(),
        model_index_reg: g.e.model_index,
        init,
        rhs,
        f: f_regs,
        jac,
        jac_entries,
        out,
        out_regs,
        mass_entries,
        ..events.into_program(Program::new(g.e.n_states, n_params))
    };
    if sensitivities {
        g.e.sensitivities(&mut program).map_err(|m| Located::new(g.defs[f].t.pos, m))?;
    }
    program.n_regs = g.e.n_regs as usize;
    program.consts = g.e.consts;
    program.setup = g.e.setup;
    program.tables = g.e.tables.into();
    program.finish();
    Ok(Compiled { program, params: defaults, states: state_names, outputs })
}

fn define<'a>(syms: &mut HashMap<&'a str, (Sym, Pos)>, name: &'a str, sym: Sym, pos: Pos) -> Result<(), Located> {
    match name {
        "t" => return Err(Located::new(pos, "'t' is reserved for time")),
        "N" => return Err(Located::new(pos, "'N' is reserved (DiffSL's model index)")),
        _ => {}
    }
    if let Some((_, first)) = syms.get(name) {
        return Err(Located::new(pos, format!("'{name}' is defined twice (first at {}:{})", first.line, first.col)));
    }
    syms.insert(name, (sym, pos));
    Ok(())
}

struct Gen<'a> {
    dialect: Dialect,
    /// Reads the files `read(…)` names.
    files: &'a Files<'a>,
    /// The tensors read from files, by (tensor, element), read while shapes are worked out.
    reads: HashMap<(usize, usize), Rc<Tv>>,
    /// The letters and extent of the element being generated: each random draw in it draws once per entry.
    draw_block: (Vec<char>, Vec<usize>),
    /// Where the element being generated starts, for errors found while generating it.
    at: Pos,
    /// What is being generated when random draws are not allowed there (Monte Carlo draws are per period
    /// and path, so parameter-level code and the outputs cannot use them).
    draws_refused: Option<&'static str>,
    /// The register and kind of each draw slot, by (call site, element).
    draw_slots: HashMap<(usize, usize), (DrawKind, u32)>,
    defs: Vec<TDef<'a>>,
    syms: HashMap<&'a str, (Sym, Pos)>,
    layouts: Vec<Option<Rc<Layout>>>,
    /// Tensors whose layout is being worked out, for cycle detection.
    visiting: Vec<usize>,
    /// Levels of expressions open while working out layouts (nested layouts included), `entry` its value
    /// when the innermost layout began, and `ref_depth` the deepest reference seen in that layout so far.
    level: usize,
    entry: usize,
    ref_depth: usize,
    /// The register code being generated.
    e: Emitter,
    /// Tensor values already generated: parameter-level ones live for the whole model, dynamic ones for
    /// the current dynamic section only.
    static_vals: Vec<Option<Rc<Tv>>>,
    dynamic_vals: Vec<Option<Rc<Tv>>>,
    /// `dudt_i`, and the registers its elements stand for while `M_i` is generated (see `mass.rs`).
    dudt: Option<usize>,
    dudt_regs: Vec<u32>,
}

impl<'a> Gen<'a> {
    /// The number of elements of a tensor (its length, for a vector).
    fn len(&self, tid: usize) -> usize {
        self.layouts[tid].as_ref().map_or(0, |l| l.len() as usize)
    }

    /// At most how many entries a tensor stores (its blocks' sizes; for a read, the file's entries).
    fn stored(&self, tid: usize) -> u64 {
        let from_files: u64 =
            self.reads.iter().filter(|((t, _), _)| *t == tid).map(|(_, tv)| tv.entries.len() as u64).sum();
        self.layouts[tid].as_ref().map_or(0, |l| l.stored()) + from_files
    }

    // ---- Names ----

    /// Display names of a vector's elements: `x` for a named scalar element, `x_0`, `x_1`, … for a named
    /// range, `v_3` (by position in the tensor) for an unnamed element of a vector, `k` for a scalar.
    fn elem_names(&self, tid: usize) -> Vec<String> {
        let d = &self.defs[tid];
        let layout = self.layouts[tid].as_ref().expect("layouts are computed first");
        let mut names = Vec::with_capacity(layout.len() as usize);
        for (e, el) in d.t.elements.iter().enumerate() {
            let (start, len) = layout.span(e);
            for k in 0..len {
                names.push(match (&el.name, d.letters.is_empty()) {
                    (Some((n, _)), _) if len == 1 => n.clone(),
                    (Some((n, _)), _) => format!("{n}_{k}"),
                    (None, true) => d.base.to_string(),
                    (None, false) => format!("{}_{}", d.base, start + k),
                });
            }
        }
        names
    }

    /// Output names: an element's name, or the name(s) of what it refers to, else `out_<position>`.
    fn out_names(&mut self, tid: usize) -> Result<Vec<String>, Located> {
        let layout = self.layouts[tid].clone().expect("layouts are computed first");
        let t = self.defs[tid].t;
        let mut names: Vec<String> = Vec::with_capacity(layout.len() as usize);
        // A set beside the list, so the duplicate check stays linear in the number of outputs.
        let mut seen: HashSet<String> = HashSet::with_capacity(layout.len() as usize);
        for (e, el) in t.elements.iter().enumerate() {
            let (start, len) = layout.span(e);
            let referred: Option<Vec<String>> = match (&el.name, &el.expr) {
                (Some((n, _)), _) if len == 1 => Some(vec![n.clone()]),
                (Some((n, _)), _) => Some((0..len).map(|k| format!("{n}_{k}")).collect()),
                (None, Expr::Name(n, _)) if len == 1 => Some(vec![n.clone()]),
                (None, Expr::Tensor(r)) => {
                    let (rt, block) = self.symbol(&r.base, r.pos)?;
                    let (off, n) = match block {
                        Some(b) => self.layouts[rt].as_ref().map_or((0, 0), |l| l.span(b)),
                        None => (0, self.len(rt)),
                    };
                    let range = match r.slice {
                        Some(Slice::At(k)) => Some((off + k, off + k + 1)),
                        Some(Slice::Range(a, b)) => Some((off + a, off + b)),
                        Some(Slice::Model(_) | Slice::ModelRange(..)) => None,
                        None => Some((off, off + n)),
                    };
                    match range {
                        Some((a, b)) if b - a == len && self.defs[rt].letters.len() <= 1 => {
                            self.elem_names(rt).get(a..b).map(|s| s.to_vec())
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let referred = referred.unwrap_or_else(|| (start..start + len).map(|k| format!("out_{k}")).collect());
            for name in referred {
                if !seen.insert(name.clone()) {
                    return Err(Located::new(el.pos, format!("duplicate output name '{name}'")));
                }
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Finish the current dynamic section and start a new one.
    fn take_dynamic(&mut self) -> Vec<Instr> {
        self.dynamic_vals.iter_mut().for_each(|s| *s = None);
        self.e.take_dynamic()
    }
}

/// The event sections of an ODE model: the stop functions and the reset, each code with its result registers.
#[derive(Default)]
struct Events {
    stop: (Vec<Instr>, Vec<u32>),
    reset: (Vec<Instr>, Vec<u32>),
}

impl Events {
    fn into_program(self, p: Program) -> Program {
        let Events { stop: (stop, stop_regs), reset: (reset, reset_regs) } = self;
        Program { stop, stop_regs, reset, reset_regs, ..p }
    }
}

impl Gen<'_> {
    /// The code of `stop_i` and `reset_i` (state tensor `u`), each its own dynamic section run after `t`, the
    /// state and `N` were written. The reset gives the whole state, so it has the state's length.
    fn events(&mut self, u: usize) -> Result<Events, Located> {
        let find = |role| self.defs.iter().position(|d| d.role == role);
        let (stop, reset) = (find(Role::Stop), find(Role::Reset));
        let mut events = Events::default();
        if let Some(tid) = stop {
            events.stop = self.section(tid)?;
        }
        if let Some(tid) = reset {
            let (name, state, at) = (&self.defs[tid].t.name, &self.defs[u].t.name, self.defs[tid].t.pos);
            if stop.is_none() {
                return Err(Located::new(
                    at,
                    format!(
                        "'{name}' needs 'stop': a reset happens at a zero of a stop function (DiffSL refuses a \
                         reset without one)"
                    ),
                ));
            }
            let (len, n) = (self.len(tid), self.len(u));
            if len != n {
                let hint =
                    if n > 1 && self.defs[tid].letters.is_empty() { "; a vector state needs 'reset_i'" } else { "" };
                return Err(Located::new(
                    at,
                    format!(
                        "'{name}' has {len} elements but '{state}' has {n} states: a reset gives the whole state{hint}"
                    ),
                ));
            }
            events.reset = self.section(tid)?;
        }
        Ok(events)
    }

    /// A tensor's values as a dynamic section of their own: its code and the registers holding them.
    fn section(&mut self, tid: usize) -> Result<(Vec<Instr>, Vec<u32>), Located> {
        let vals = self.value(tid)?.to_dense();
        let regs = vals.into_iter().map(|v| self.e.reg(v)).collect();
        Ok((self.take_dynamic(), regs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ode(src: &str) -> Compiled {
        compile(&parse(src).unwrap(), Dialect::Ode, false, &no_files).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `F` at `t = 0` and the state's initial values, with `N` set to `n`.
    fn rhs_at(c: &Compiled, n: f64) -> Vec<f64> {
        let p = &c.program;
        let mut regs = vec![0.0; p.n_regs];
        let mut y = vec![0.0; p.n_states];
        let params: Vec<f64> = c.params.iter().map(|p| p.1).collect();
        p.start(&mut regs, &params, &mut y);
        if let Some(r) = p.model_index_reg {
            regs[r as usize] = n;
        }
        let mut f = vec![0.0; p.n_states];
        p.rhs(&mut regs, 0.0, &y, &mut f);
        f
    }

    #[test]
    fn a_sparse_matrix_generates_code_for_its_entries_only() {
        // Three stored entries of a 3 × 3 matrix: three products, and the Jacobian has exactly those entries
        // (its values are parameter-level, so no Jacobian code runs per evaluation).
        let c = ode(
            "in_i { k = 2 }\nA_ij { (0, 1): k, (1, 2): 3, (2, 0): 0.0, (2, 2): -1 }\nu_i { (0:3): x = 1 }\nF_i { A_ij * x_j }",
        );
        let mut entries: Vec<(u32, u32)> = c.program.jac_entries.iter().map(|e| (e.0, e.1)).collect();
        entries.sort_unstable();
        assert_eq!(entries, [(0, 1), (1, 2), (2, 2)]);
        assert!(c.program.jac.is_empty());
        assert_eq!(rhs_at(&c, 0.0), [2.0, 3.0, -1.0]);
        // A diagonal is n entries; `(0..3, 1..4)` is the one above the main diagonal of a 3 × 4 matrix.
        let c = ode("A_ij { (0..3, 1..4): 2 }\nu_i { (0:4): x = 1 }\nF_i { (0:3): A_ij * x_j, 0 }");
        assert_eq!(c.program.jac_entries.len(), 3);
        assert_eq!(rhs_at(&c, 0.0), [2.0, 2.0, 2.0, 0.0]);
    }

    #[test]
    fn n_selects_elements_at_run_time() {
        let c = ode("g_i { 1, 2, 3 }\nu_i { y = 2 }\nF_i { g_i[N] * y + g_i[(N + 1) % 3] }");
        assert!(c.program.model_index_reg.is_some());
        assert_eq!(rhs_at(&c, 0.0), [2.0 + 2.0]);
        assert_eq!(rhs_at(&c, 1.0), [4.0 + 3.0]);
        assert_eq!(rhs_at(&c, 2.0), [6.0 + 1.0]);
        assert!(rhs_at(&c, 3.0)[0].is_nan(), "an N beyond the vector selects nothing");
        // A range whose bounds move with N keeps its length: `amp_i[N:N+2]` (diffsl's own test model).
        let c = ode("amp_i { 0, 10, 20 }\nu_i { x = 1, y = 1 }\nF_i { amp_i[N:N+2] - u_i }");
        assert_eq!(rhs_at(&c, 0.0), [-1.0, 9.0]);
        assert_eq!(rhs_at(&c, 1.0), [9.0, 19.0]);
        assert!(rhs_at(&c, 2.0)[1].is_nan());
        // A model that never reads N has no register for it.
        assert_eq!(ode("u_i { y = 1 }\nF_i { -y }").program.model_index_reg, None);
    }

    #[test]
    fn the_interpreter_and_the_jit_agree_on_the_new_forms() {
        let src =
            "xs_i { 0, 1, 3 }\nys_i { 2, -1, 5 }\ng_i { 0.5, 1.5 }\nA_ij { (0, 0): -1, (0, 1): 2, (1, 0:2): 0.25 }
u_i { (0:2): x = 1 }
F_i { A_ij * x_j + g_i[N % 2] * interp1d(xs_i, ys_i, x_i + t) }";
        let c = ode(src);
        let plain: Vec<u64> = rhs_at(&c, 1.0).iter().map(|v| v.to_bits()).collect();
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut c = c.clone();
            c.program.compile_native().unwrap();
            let native: Vec<u64> = rhs_at(&c, 1.0).iter().map(|v| v.to_bits()).collect();
            assert_eq!(plain, native);
        }
        // x = (1, 1): A·x = (1, 0.5); interp1d at 1 is -1; g[1] = 1.5; the sum over j adds the second term
        // twice (the whole expression is summed, as in DiffSL).
        let f: Vec<f64> = plain.iter().map(|&b| f64::from_bits(b)).collect();
        assert_eq!(f, [1.0 - 3.0, 0.5 - 3.0]);
    }

    #[test]
    fn a_large_sparse_model_compiles_with_its_stencil_pattern() {
        // A 20 × 20 heat equation (400 states): the 5-point Laplacian as listed entries.
        let m: usize = 20;
        let mut entries = Vec::new();
        for k in 0..m * m {
            let (r, c) = (k / m, k % m);
            entries.push(format!("({k}, {k}): -4"));
            for (ok, j) in
                [(r > 0, k.wrapping_sub(m)), (r + 1 < m, k + m), (c > 0, k.wrapping_sub(1)), (c + 1 < m, k + 1)]
            {
                if ok {
                    entries.push(format!("({k}, {j}): 1"));
                }
            }
        }
        let src = format!("L_ij {{ {} }}\nu_i {{ (0:{}): y = 1 }}\nF_i {{ L_ij * u_j }}", entries.join(", "), m * m);
        let c = ode(&src);
        assert_eq!(c.program.jac_entries.len(), 5 * m * m - 4 * m);
        let f = rhs_at(&c, 0.0);
        assert_eq!((f[0], f[1], f[m + 1]), (-2.0, -1.0, 0.0));
    }
}
