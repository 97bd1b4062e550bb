//! From syntax tree to [`Program`]: check which tensors exist, work out every tensor's length, resolve names
//! to registers element by element, fold constants, and split the code by what it depends on (parameters
//! only → run once per simulation; `t` or the state → run at every right-hand-side evaluation).
//!
//! Vectors are unrolled: element `k` of `v_i { a_i * b }` becomes its own scalar code. Models are small
//! (tens to hundreds of states), and straight-line code lets constant folding, sharing and the symbolic
//! Jacobian work on single values.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::emit::{Emitter, Level, Val};
use crate::eval::{DrawKind, Instr, Op, Program};
use crate::lexer::{Located, Pos};
use crate::parser::{Ast, BinOp, Draw, Element, Expr, Func, Slice, Tensor, TensorRef, unsupported};

mod mass;

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
    /// The index letter of a vector; `None` for a scalar.
    index: Option<char>,
    role: Role,
}

/// What a name refers to: a whole tensor, or one (possibly ranged) element of one.
#[derive(Debug, Clone, Copy)]
enum Sym {
    Tensor(usize),
    Block(usize, usize),
}

/// Where each element of a tensor sits: `(start, len)`, and the total length.
#[derive(Debug)]
struct Layout {
    elems: Vec<(usize, usize)>,
    len: usize,
    /// How many levels of expressions and definitions generating its values recurses through (see
    /// [`MAX_DEPTH`]).
    depth: usize,
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
        let index = match index {
            None => None,
            Some(ix) if ix.len() == 1 => ix.chars().next(),
            Some(ix) => {
                return Err(unsupported(
                    t.pos,
                    &format!("{}-D tensor '{}'", ix.len(), t.name),
                    "only scalars and vectors (one index, as in 'v_i') are supported",
                ));
            }
        };
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
        if index.is_none() && t.elements.len() != 1 {
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
            if let Some(r) = el.range {
                if index.is_none() {
                    return Err(Located::new(r.pos, format!("scalar '{}' cannot have an element range", t.name)));
                }
                if r.dims != 1 {
                    return Err(unsupported(
                        r.pos,
                        &format!("{}-D element range", r.dims),
                        &format!("'{}' is a vector: write one range, as '(0:3): …'", t.name),
                    ));
                }
            }
        }
        defs.push(TDef { t, base, index, role });
    }
    Ok(defs)
}

/// Compile a parsed model; with `sensitivities`, also the code for the forward sensitivity equations
/// (ODE dialect only).
pub fn compile(ast: &Ast, dialect: Dialect, sensitivities: bool) -> Result<Compiled, Located> {
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
        draws_refused: None,
        draw_slots: HashMap::new(),
        defs,
        syms,
        layouts: Vec::new(),
        visiting: Vec::new(),
        level: 0,
        entry: 0,
        ref_depth: 0,
        param_start: Vec::new(),
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

    // Lengths of every tensor, in source order so that the first problem in the text is reported.
    for tid in 0..n_tensors {
        g.layout(tid, g.defs[tid].t.pos)?;
    }
    if let Some(largest) = (0..n_tensors).max_by_key(|&tid| (g.len(tid), std::cmp::Reverse(tid))) {
        let elements: usize = (0..n_tensors).map(|tid| g.len(tid)).sum();
        let what = format!("a model of {elements} tensor elements");
        parfit_core::limits::check_allocation(&what, elements as f64, BYTES_PER_ELEMENT)
            .map_err(|m| Located::new(g.defs[largest].t.pos, m))?;
    }
    g.e.n_states = g.len(u);
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
    let mut param_names: Vec<String> = Vec::new();
    let mut param_defaults: Vec<(usize, usize)> = Vec::new(); // (tensor, element index within it)
    g.param_start = vec![usize::MAX; n_tensors];
    if let Some(tid) = input {
        g.param_start[tid] = 0;
        param_names = g.elem_names(tid);
        param_defaults = (0..g.len(tid)).map(|k| (tid, k)).collect();
    }
    let n_params = param_names.len();
    g.e.n_regs = (1 + g.e.n_states + n_params) as u32;

    // Defaults: constant expressions.
    g.draws_refused = Some("parameter defaults");
    let mut defaults = Vec::new();
    for (p, &(tid, k)) in param_defaults.iter().enumerate() {
        match g.element_value(tid, k)? {
            Val::Const(v) => defaults.push((param_names[p].clone(), v)),
            Val::Reg(..) => {
                let (el, _) = g.element_at(tid, k);
                return Err(Located::new(
                    el.expr_pos,
                    format!("the default of input '{}' must be a constant expression", param_names[p]),
                ));
            }
        }
    }

    // Initial state: parameter-level code, run once per simulation.
    g.draws_refused = Some("initial values");
    let state_names = g.elem_names(u);
    let mut init = Vec::new();
    for (k, name) in state_names.iter().enumerate() {
        let v = g.element_value(u, k)?;
        if v.level() == Some(Level::Dynamic) {
            let (el, _) = g.element_at(u, k);
            return Err(Located::new(
                el.expr_pos,
                format!(
                    "the initial value of state '{name}' depends on t or the state (or the model index N), which is not supported"
                ),
            ));
        }
        init.push(g.e.reg(v));
    }
    g.take_dynamic(); // anything dynamic above was rejected; drop it

    g.draws_refused = None;
    let fv = g.value(f)?;
    let f_regs: Vec<u32> = fv.iter().map(|&v| g.e.reg(v)).collect();
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
            let vals = g.value(tid)?;
            (names, vals.iter().map(|&v| g.e.reg(v)).collect())
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
        init,
        rhs,
        f: f_regs,
        jac,
        jac_entries,
        out,
        out_regs,
        mass_entries,
        model_index_reg: g.e.model_index,
        ..events.into_program(Program::new(g.e.n_states, n_params))
    };
    if sensitivities {
        g.e.sensitivities(&mut program).map_err(|m| Located::new(g.defs[f].t.pos, m))?;
    }
    program.n_regs = g.e.n_regs as usize;
    program.consts = g.e.consts;
    program.setup = g.e.setup;
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
    /// Index of the first parameter of each input tensor (`usize::MAX` for the others).
    param_start: Vec<usize>,
    /// The register code being generated.
    e: Emitter,
    /// Tensor values already generated: parameter-level ones live for the whole model, dynamic ones for
    /// the current dynamic section only.
    static_vals: Vec<Option<Rc<[Val]>>>,
    dynamic_vals: Vec<Option<Rc<[Val]>>>,
    /// `dudt_i`, and the registers its elements stand for while `M_i` is generated (see `mass.rs`).
    dudt: Option<usize>,
    dudt_regs: Vec<u32>,
}

impl<'a> Gen<'a> {
    // ---- Lengths ----

    fn len(&self, tid: usize) -> usize {
        self.layouts[tid].as_ref().map_or(0, |l| l.len)
    }

    /// The layout of a tensor, worked out on first use. `at` is where it is needed from (for cycles).
    fn layout(&mut self, tid: usize, at: Pos) -> Result<Rc<Layout>, Located> {
        if let Some(l) = &self.layouts[tid] {
            return Ok(l.clone());
        }
        if let Some(k) = self.visiting.iter().position(|&j| j == tid) {
            let d = &self.defs[tid];
            return Err(match d.role {
                Role::Input => Located::new(at, "the defaults of inputs must be constant expressions"),
                Role::State => {
                    Located::new(at, format!("the initial values in '{}' cannot depend on the state", d.t.name))
                }
                _ => {
                    let mut chain: Vec<&str> =
                        self.visiting[k..].iter().map(|&j| self.defs[j].t.name.as_str()).collect();
                    chain.push(&d.t.name);
                    Located::new(at, format!("circular definition: {}", chain.join(" -> ")))
                }
            });
        }
        let too_deep =
            |at| Located::new(at, format!("definitions and expressions nested deeper than {MAX_DEPTH} levels"));
        if self.level > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let outer = (self.entry, std::mem::take(&mut self.ref_depth));
        self.entry = self.level;
        self.visiting.push(tid);
        let l = self.compute_layout(tid);
        self.visiting.pop();
        let depth = self.ref_depth + 1;
        (self.entry, self.ref_depth) = outer;
        let l = Rc::new(Layout { depth, ..l? });
        if depth > MAX_DEPTH {
            return Err(too_deep(self.defs[tid].t.pos));
        }
        self.layouts[tid] = Some(l.clone());
        Ok(l)
    }

    fn compute_layout(&mut self, tid: usize) -> Result<Layout, Located> {
        let (t, index) = (self.defs[tid].t, self.defs[tid].index);
        let mut elems = Vec::with_capacity(t.elements.len());
        let mut at = 0;
        for el in &t.elements {
            let n = self.expr_len(&el.expr, index, el.expr_pos)?;
            let len = match el.range {
                Some(r) => {
                    if r.start > at {
                        return Err(unsupported(
                            r.pos,
                            "sparse vectors",
                            &format!(
                                "the range ({}:{}) leaves indices {at}..{} of '{}' undefined; give every element in order",
                                r.start, r.end, r.start, t.name
                            ),
                        ));
                    }
                    if r.start < at {
                        return Err(Located::new(
                            r.pos,
                            format!(
                                "the range ({}:{}) overlaps the elements before it, which end at index {at}",
                                r.start, r.end
                            ),
                        ));
                    }
                    let len = r.end - r.start;
                    if len == 0 {
                        return Err(Located::new(r.pos, format!("the range ({}:{}) is empty", r.start, r.end)));
                    }
                    if n != 1 && n != len {
                        return Err(Located::new(
                            el.expr_pos,
                            format!(
                                "cannot fit a vector of {n} elements into the range ({}:{}) of {len} elements",
                                r.start, r.end
                            ),
                        ));
                    }
                    len
                }
                None => n,
            };
            if index.is_none() && len != 1 {
                return Err(Located::new(
                    el.expr_pos,
                    format!("scalar '{0}' cannot hold a vector of {len} elements; write '{0}_i'", t.name),
                ));
            }
            elems.push((at, len));
            at += len;
        }
        Ok(Layout { elems, len: at, depth: 0 })
    }

    /// The tensor, offset and length a name refers to. While layouts are worked out this also records how
    /// deep the reference reaches.
    fn resolve(&mut self, name: &str, pos: Pos) -> Result<(usize, usize, usize), Located> {
        let Some(&(sym, _)) = self.syms.get(name) else {
            return Err(Located::new(pos, format!("unknown name '{name}'")));
        };
        let (tid, block) = match sym {
            Sym::Tensor(tid) => (tid, None),
            Sym::Block(tid, e) => (tid, Some(e)),
        };
        let layout = self.layout(tid, pos)?;
        self.ref_depth = self.ref_depth.max(self.level - self.entry + layout.depth);
        Ok(match block {
            None => (tid, 0, layout.len),
            Some(e) => (tid, layout.elems[e].0, layout.elems[e].1),
        })
    }

    /// The length of an expression (1 for scalars) in a tensor with index letter `index`.
    fn expr_len(&mut self, e: &Expr, index: Option<char>, at: Pos) -> Result<usize, Located> {
        self.level += 1;
        let n = self.expr_len_inner(e, index, at);
        self.level -= 1;
        n
    }

    fn expr_len_inner(&mut self, e: &Expr, index: Option<char>, at: Pos) -> Result<usize, Located> {
        Ok(match e {
            Expr::Num(_) => 1,
            Expr::Name(name, pos) => {
                if name == "t" || name == "N" {
                    return Ok(1);
                }
                let (_, _, len) = self.resolve(name, *pos)?;
                if len != 1 {
                    let ix = index.unwrap_or('i');
                    return Err(Located::new(
                        *pos,
                        format!("'{name}' is a vector of {len} elements: refer to it as '{name}_{ix}'"),
                    ));
                }
                1
            }
            Expr::Tensor(r) => self.ref_len(r, index)?,
            Expr::Neg(x) => self.expr_len(x, index, at)?,
            Expr::Chain(first, rest) => {
                let mut n = self.expr_len(first, index, at)?;
                for (_, e) in rest {
                    let m = self.expr_len(e, index, at)?;
                    n = broadcast(n, m, at)?;
                }
                n
            }
            Expr::Call(_, args) | Expr::Draw(_, args, ..) => {
                let mut n = 1;
                for a in args {
                    let m = self.expr_len(a, index, at)?;
                    n = broadcast(n, m, at)?;
                }
                n
            }
        })
    }

    fn ref_len(&mut self, r: &TensorRef, index: Option<char>) -> Result<usize, Located> {
        let name = r.full_name();
        if r.index.len() > 1 {
            return Err(unsupported(
                r.pos,
                &format!("{}-D tensor '{name}'", r.index.len()),
                "only scalars and vectors (one index, as in 'v_i') are supported",
            ));
        }
        let (_, _, len) = self.resolve(&r.base, r.pos)?;
        let n = match r.slice {
            Some(Slice::At(k)) => {
                if k >= len {
                    return Err(Located::new(r.pos, format!("index {k} is out of range: '{name}' has {len} elements")));
                }
                return Ok(1);
            }
            Some(Slice::Range(a, b)) => {
                if b > len {
                    return Err(Located::new(
                        r.pos,
                        format!("index range {a}:{b} is out of range: '{name}' has {len} elements"),
                    ));
                }
                b - a
            }
            None => len,
        };
        let letter = r.index.chars().next();
        match index {
            None => Err(unsupported(
                r.pos,
                "sums over an index (contractions)",
                &format!("'{name}' is a vector inside a scalar: pick one element, as '{name}[0]'"),
            )),
            Some(ix) if letter != Some(ix) => Err(unsupported(
                r.pos,
                "sums over an index (contractions)",
                &format!("'{name}' has index '{}' but the tensor's index is '{ix}'; write '{}_{ix}'", r.index, r.base),
            )),
            Some(_) => Ok(n),
        }
    }

    // ---- Names ----

    /// Display names of a tensor's elements: `x` for a named scalar element, `x_0`, `x_1`, … for a named
    /// range, `v_3` (by position in the tensor) for an unnamed element of a vector, `k` for a scalar.
    fn elem_names(&self, tid: usize) -> Vec<String> {
        let d = &self.defs[tid];
        let layout = self.layouts[tid].as_ref().expect("layouts are computed first");
        let mut names = Vec::with_capacity(layout.len);
        for (el, &(start, len)) in d.t.elements.iter().zip(&layout.elems) {
            for k in 0..len {
                names.push(match (&el.name, d.index) {
                    (Some((n, _)), _) if len == 1 => n.clone(),
                    (Some((n, _)), _) => format!("{n}_{k}"),
                    (None, None) => d.base.to_string(),
                    (None, Some(_)) => format!("{}_{}", d.base, start + k),
                });
            }
        }
        names
    }

    /// Output names: an element's name, or the name(s) of what it refers to, else `out_<position>`.
    fn out_names(&mut self, tid: usize) -> Result<Vec<String>, Located> {
        let layout = self.layouts[tid].clone().expect("layouts are computed first");
        let t = self.defs[tid].t;
        let mut names: Vec<String> = Vec::with_capacity(layout.len);
        // A set beside the list, so the duplicate check stays linear in the number of outputs.
        let mut seen: HashSet<String> = HashSet::with_capacity(layout.len);
        for (el, &(start, len)) in t.elements.iter().zip(&layout.elems) {
            let referred: Option<Vec<String>> = match (&el.name, &el.expr) {
                (Some((n, _)), _) if len == 1 => Some(vec![n.clone()]),
                (Some((n, _)), _) => Some((0..len).map(|k| format!("{n}_{k}")).collect()),
                (None, Expr::Name(n, _)) if len == 1 => Some(vec![n.clone()]),
                (None, Expr::Tensor(r)) => {
                    let (rt, off, n) = self.resolve(&r.base, r.pos)?;
                    let all = self.elem_names(rt);
                    let (a, b) = match r.slice {
                        Some(Slice::At(k)) => (off + k, off + k + 1),
                        Some(Slice::Range(a, b)) => (off + a, off + b),
                        None => (off, off + n),
                    };
                    (b - a == len).then(|| all[a..b].to_vec())
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

    /// The values of all elements of a tensor, generated once per section where they are used.
    fn value(&mut self, tid: usize) -> Result<Rc<[Val]>, Located> {
        if let Some(v) = self.static_vals[tid].clone().or_else(|| self.dynamic_vals[tid].clone()) {
            return Ok(v);
        }
        let len = self.len(tid);
        let vals: Rc<[Val]> = match self.defs[tid].role {
            Role::State => (0..len).map(|k| Val::Reg(Program::state_reg(k) as u32, Level::Dynamic)).collect(),
            Role::Dudt => self.dudt_regs.iter().map(|&r| Val::Reg(r, Level::Dynamic)).collect(),
            Role::Input => {
                let p0 = 1 + self.e.n_states + self.param_start[tid];
                (0..len).map(|k| Val::Reg((p0 + k) as u32, Level::Param)).collect()
            }
            _ => {
                let mut v = Vec::with_capacity(len);
                for k in 0..len {
                    v.push(self.element_value(tid, k)?);
                }
                v.into()
            }
        };
        if vals.iter().any(|v| v.level() == Some(Level::Dynamic)) {
            self.dynamic_vals[tid] = Some(vals.clone());
        } else {
            self.static_vals[tid] = Some(vals.clone());
        }
        Ok(vals)
    }

    /// The element holding flat index `k` of a tensor, and `k`'s position inside it.
    fn element_at(&self, tid: usize, k: usize) -> (&'a Element, usize) {
        let layout = self.layouts[tid].as_ref().expect("layouts are computed first");
        // Elements are laid out in order: the last one starting at or before `k` holds it.
        let e = layout.elems.partition_point(|&(s, _)| s <= k) - 1;
        let t: &'a Tensor = self.defs[tid].t;
        (&t.elements[e], k - layout.elems[e].0)
    }

    /// Flat element `k` of a tensor as its expression defines it (for inputs: the default; for the state:
    /// the initial value).
    fn element_value(&mut self, tid: usize, k: usize) -> Result<Val, Located> {
        let (el, local) = self.element_at(tid, k);
        self.expr(&el.expr, local)
    }

    /// Element `k` of an expression whose length was checked by `expr_len` (scalars ignore `k`; vectors of
    /// length 1 broadcast).
    fn expr(&mut self, e: &Expr, k: usize) -> Result<Val, Located> {
        Ok(match e {
            Expr::Num(v) => Val::Const(*v),
            Expr::Name(name, pos) => {
                if name == "t" {
                    return Ok(Val::Reg(Program::T as u32, Level::Dynamic));
                }
                if name == "N" {
                    return Ok(self.e.model_index());
                }
                let (tid, off, _) = self.resolve(name, *pos)?;
                self.value(tid)?[off]
            }
            Expr::Tensor(r) => {
                let (tid, off, len) = self.resolve(&r.base, r.pos)?;
                let at = match r.slice {
                    Some(Slice::At(j)) => off + j,
                    Some(Slice::Range(a, b)) => off + a + if b - a == 1 { 0 } else { k },
                    None => off + if len == 1 { 0 } else { k },
                };
                self.value(tid)?[at]
            }
            Expr::Neg(x) => {
                let x = self.expr(x, k)?;
                self.e.op(Op::Neg, x, x)
            }
            Expr::Chain(first, rest) => {
                let mut acc = self.expr(first, k)?;
                for (op, e) in rest {
                    let b = self.expr(e, k)?;
                    let op = match op {
                        BinOp::Add => Op::Add,
                        BinOp::Sub => Op::Sub,
                        BinOp::Mul => Op::Mul,
                        BinOp::Div => Op::Div,
                    };
                    acc = self.e.op(op, acc, b);
                }
                acc
            }
            Expr::Draw(draw, args, pos, site) => self.draw(*draw, args, *pos, (*site, k))?,
            Expr::Call(Func::Piecewise, args) => {
                // piecewise(c0, v0, c1, v1, …, fallback), built from the fallback outwards.
                let mut acc = self.expr(&args[args.len() - 1], k)?;
                for pair in args[..args.len() - 1].chunks(2).rev() {
                    let (c, v) = (self.expr(&pair[0], k)?, self.expr(&pair[1], k)?);
                    acc = self.e.op3(Op::Select, c, v, acc);
                }
                acc
            }
            Expr::Call(func, args) => {
                let a = self.expr(&args[0], k)?;
                let b = match args.get(1) {
                    Some(b) => self.expr(b, k)?,
                    None => a,
                };
                let op = match func {
                    Func::Exp => Op::Exp,
                    Func::Log => Op::Log,
                    Func::Log10 => Op::Log10,
                    Func::Sqrt => Op::Sqrt,
                    Func::Sin => Op::Sin,
                    Func::Cos => Op::Cos,
                    Func::Tan => Op::Tan,
                    Func::Sinh => Op::Sinh,
                    Func::Cosh => Op::Cosh,
                    Func::Tanh => Op::Tanh,
                    Func::Arcsinh => Op::Asinh,
                    Func::Arccosh => Op::Acosh,
                    Func::Abs => Op::Abs,
                    Func::Sigmoid => Op::Sigmoid,
                    Func::Heaviside => Op::Heaviside,
                    Func::Min => Op::Min,
                    Func::Max => Op::Max,
                    Func::Copysign => Op::Copysign,
                    Func::Pow => match b {
                        Val::Const(e) => match self.e.small_power(a, e) {
                            Some(v) => return Ok(v),
                            None => Op::Pow,
                        },
                        _ => Op::Pow,
                    },
                    Func::Piecewise => unreachable!("handled above"),
                };
                self.e.op(op, a, b)
            }
        })
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
                    if n > 1 && self.defs[tid].index.is_none() { "; a vector state needs 'reset_i'" } else { "" };
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
        let vals = self.value(tid)?;
        let regs = vals.iter().map(|&v| self.e.reg(v)).collect();
        Ok((self.take_dynamic(), regs))
    }

    /// The value of a random draw: a normal or uniform slot, transformed as the function asks.
    fn draw(&mut self, draw: Draw, args: &[Expr], pos: Pos, slot: (usize, usize)) -> Result<Val, Located> {
        let name = draw.name();
        if self.dialect != Dialect::MonteCarlo {
            return Err(Located::new(
                pos,
                format!("random draws are only allowed in Monte Carlo models (line {}): '{name}(…)'", pos.line),
            ));
        }
        if let Some(what) = self.draws_refused {
            return Err(Located::new(
                pos,
                format!(
                    "random draws are not allowed in {what} (line {}): '{name}(…)' draws once per path and period",
                    pos.line
                ),
            ));
        }
        let kind = match draw {
            Draw::Normal | Draw::Lognormal => DrawKind::Normal,
            Draw::Uniform | Draw::Bernoulli => DrawKind::Uniform,
        };
        let reg = match self.draw_slots.get(&slot) {
            Some(&(_, r)) => r,
            None => {
                let r = self.e.fresh();
                self.draw_slots.insert(slot, (kind, r));
                r
            }
        };
        let z = Val::Reg(reg, Level::Dynamic);
        let k = slot.1;
        Ok(match draw {
            Draw::Normal | Draw::Uniform => z,
            Draw::Lognormal => {
                let (mu, sigma) = (self.expr(&args[0], k)?, self.expr(&args[1], k)?);
                let sz = self.e.op(Op::Mul, sigma, z);
                // exp(0 + x) = exp(x) exactly, so a zero mean costs nothing.
                let x = if matches!(mu, Val::Const(m) if m == 0.0) { sz } else { self.e.op(Op::Add, mu, sz) };
                self.e.op(Op::Exp, x, x)
            }
            Draw::Bernoulli => {
                // 1 when u < p, i.e. when u - p < 0.
                let p = self.expr(&args[0], k)?;
                let d = self.e.op(Op::Sub, z, p);
                self.e.op3(Op::Select, d, Val::Const(0.0), Val::Const(1.0))
            }
        })
    }
}

/// The length of an element-wise combination: equal lengths, or one side of length 1 (a scalar).
fn broadcast(a: usize, b: usize, at: Pos) -> Result<usize, Located> {
    if a == b || b == 1 {
        Ok(a)
    } else if a == 1 {
        Ok(b)
    } else {
        Err(Located::new(at, format!("cannot combine vectors of {a} and {b} elements element-wise")))
    }
}
