//! From syntax tree to [`Program`]: check which tensors exist, work out every tensor's length, resolve names
//! to registers element by element, fold constants, and split the code by what it depends on (parameters
//! only → run once per simulation; `t` or the state → run at every right-hand-side evaluation).
//!
//! Vectors are unrolled: element `k` of `v_i { a_i * b }` becomes its own scalar code. Models are small
//! (tens to hundreds of states), and straight-line code lets constant folding, sharing and the symbolic
//! Jacobian work on single values.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::eval::{DrawKind, Instr, Op, Program};
use crate::lexer::{Located, Pos};
use crate::parser::{Ast, BinOp, Draw, Element, Expr, Func, Slice, Tensor, TensorRef, unsupported};

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
    /// A scalar named in `in = [ … ]`: a parameter whose default is the scalar's value.
    ListedInput(usize),
    /// `u_i`: the state, with its initial values.
    State,
    /// `F_i`: du/dt (ODE), or `next_i`: the state at the next period (Monte Carlo).
    Rhs,
    /// `out_i`.
    Out,
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
        let explicit = "parfit-ode solves explicit ODEs du/dt = F(u, p, t)";
        if dialect == Dialect::MonteCarlo && matches!(base, "F" | "dudt" | "M") {
            return Err(Located::new(
                t.pos,
                format!(
                    "'{}' belongs to ODE models (line {}); a Monte Carlo model gives the state at the next period \
                     with 'next_i {{ … }}'",
                    t.name, t.pos.line
                ),
            ));
        }
        match base {
            "M" => {
                return Err(unsupported(t.pos, "mass matrix", &format!("'{}' defines M·du/dt; {explicit}", t.name)));
            }
            "dudt" => {
                return Err(unsupported(
                    t.pos,
                    "mass matrix",
                    &format!("'{}' declares du/dt for a mass-matrix equation M_i; {explicit}", t.name),
                ));
            }
            "stop" => {
                return Err(unsupported(
                    t.pos,
                    "stop conditions",
                    &format!("'{}' ends or switches the solve at events; parfit-ode has no events", t.name),
                ));
            }
            "reset" => {
                return Err(unsupported(
                    t.pos,
                    "reset",
                    &format!("'{}' restarts the state at events; parfit-ode has no events", t.name),
                ));
            }
            _ => {}
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
    let mut defs = classify(ast, dialect)?;
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

    // Parameters: the elements of `in_i`, or the scalars listed in `in = [ … ]`.
    let input = find(&defs, Role::Input);
    match (input, &ast.inputs) {
        (Some(_), Some(list)) => {
            return Err(Located::new(list.pos, "inputs are declared both by 'in_i { … }' and 'in = [ … ]'; use one"));
        }
        (Some(tid), None) => {
            if let Some(el) = defs[tid].t.elements.iter().find(|el| el.name.is_none()) {
                return Err(Located::new(
                    el.pos,
                    format!("each element of '{}' needs a name and a default, as 'alpha = 1.1'", defs[tid].t.name),
                ));
            }
        }
        (None, Some(list)) => {
            for (k, (name, pos)) in list.names.iter().enumerate() {
                match syms.get(name.as_str()) {
                    Some(&(Sym::Tensor(tid), _)) if defs[tid].role == Role::Plain && defs[tid].index.is_none() => {
                        defs[tid].role = Role::ListedInput(k);
                    }
                    Some(&(Sym::Tensor(tid), _)) if matches!(defs[tid].role, Role::ListedInput(_)) => {
                        return Err(Located::new(*pos, format!("input '{name}' is listed twice in 'in'")));
                    }
                    Some(_) => {
                        return Err(Located::new(
                            *pos,
                            format!("input '{name}' must be a scalar tensor defined as '{name} {{ <default> }}'"),
                        ));
                    }
                    None => {
                        return Err(Located::new(
                            *pos,
                            format!("input '{name}' has no definition: add '{name} {{ <default> }}'"),
                        ));
                    }
                }
            }
        }
        (None, None) => {}
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
        n_states: 0,
        param_start: Vec::new(),
        n_regs: 0,
        const_regs: HashMap::new(),
        consts: Vec::new(),
        setup: Vec::new(),
        setup_cse: HashMap::new(),
        dynamic: Vec::new(),
        dynamic_cse: HashMap::new(),
        static_vals: Vec::new(),
        dynamic_vals: Vec::new(),
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
    g.n_states = g.len(u);
    let n_f = g.len(f);
    if n_f != g.n_states {
        return Err(Located::new(
            g.defs[f].t.pos,
            format!("'{}' has {} elements but '{}' has {} states", g.defs[f].t.name, n_f, g.defs[u].t.name, g.n_states),
        ));
    }

    // Parameter numbering and names.
    let mut param_names: Vec<String> = Vec::new();
    let mut param_defaults: Vec<(usize, usize)> = Vec::new(); // (tensor, element index within it)
    g.param_start = vec![usize::MAX; n_tensors];
    if let Some(tid) = input {
        g.param_start[tid] = 0;
        param_names = g.elem_names(tid);
        param_defaults = (0..g.len(tid)).map(|k| (tid, k)).collect();
    } else if let Some(list) = &ast.inputs {
        for (k, (name, _)) in list.names.iter().enumerate() {
            let tid = (0..n_tensors).find(|&tid| g.defs[tid].role == Role::ListedInput(k)).expect("classified above");
            g.param_start[tid] = k;
            param_names.push(name.clone());
            param_defaults.push((tid, 0));
        }
    }
    let n_params = param_names.len();
    g.n_regs = (1 + g.n_states + n_params) as u32;

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
                format!("the initial value of state '{name}' depends on t or the state, which is not supported"),
            ));
        }
        init.push(g.reg(v));
    }
    g.take_dynamic(); // anything dynamic above was rejected; drop it

    g.draws_refused = None;
    let fv = g.value(f)?;
    let f_regs: Vec<u32> = fv.iter().map(|&v| g.reg(v)).collect();
    let rhs = g.take_dynamic();
    let (jac, jac_entries) = match dialect {
        Dialect::Ode => {
            let entries = g.jacobian(&rhs, &f_regs).map_err(|m| Located::new(g.defs[f].t.pos, m))?;
            (g.take_dynamic(), entries)
        }
        Dialect::MonteCarlo => (Vec::new(), Vec::new()),
    };

    g.draws_refused = Some("outputs");
    let (outputs, out_regs) = match find(&g.defs, Role::Out) {
        Some(tid) => {
            let names = g.out_names(tid)?;
            let vals = g.value(tid)?;
            (names, vals.iter().map(|&v| g.reg(v)).collect())
        }
        None => (state_names.clone(), (0..g.n_states).map(|i| Program::state_reg(i) as u32).collect()),
    };
    let out = g.take_dynamic();
    g.draws_refused = None;

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
        ..Program::new(g.n_states, n_params)
    };
    if sensitivities {
        g.sensitivities(&mut program).map_err(|m| Located::new(g.defs[f].t.pos, m))?;
    }
    program.n_regs = g.n_regs as usize;
    program.consts = g.consts;
    program.setup = g.setup;
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

type CseKey = (Op, u32, u32, u32);

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
    n_states: usize,
    /// Index of the first parameter of each input tensor (`usize::MAX` for the others).
    param_start: Vec<usize>,
    n_regs: u32,
    /// Constant registers by the bits of their value.
    const_regs: HashMap<u64, u32>,
    consts: Vec<(u32, f64)>,
    setup: Vec<Instr>,
    setup_cse: HashMap<CseKey, u32>,
    /// The program being built for the current dynamic section (right-hand side or outputs).
    dynamic: Vec<Instr>,
    dynamic_cse: HashMap<CseKey, u32>,
    /// Tensor values already generated: parameter-level ones live for the whole model, dynamic ones for
    /// the current dynamic section only.
    static_vals: Vec<Option<Rc<[Val]>>>,
    dynamic_vals: Vec<Option<Rc<[Val]>>>,
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
            if name == "N" {
                return Err(unsupported(
                    pos,
                    "model index 'N'",
                    "hybrid models (N, stop, reset) are DiffSL features parfit does not have",
                ));
            }
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
                if name == "t" {
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

    // ---- Code ----

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
        self.dynamic_vals.iter_mut().for_each(|s| *s = None);
        std::mem::take(&mut self.dynamic)
    }

    /// Emit `op(a, b, c)` (unary ops pass `b = c = a`, binary ones `c = a`): folded when constant, shared
    /// when already computed.
    fn op3(&mut self, op: Op, a: Val, b: Val, c: Val) -> Val {
        if let (Val::Const(x), Val::Const(y), Val::Const(z)) = (a, b, c) {
            return Val::Const(op.apply(x, y, z, 0.0));
        }
        let level = a.level().max(b.level()).max(c.level()).unwrap_or(Level::Param);
        let (mut ra, mut rb, rc) = (self.reg(a), self.reg(b), self.reg(c));
        if op.is_commutative() && ra > rb {
            std::mem::swap(&mut ra, &mut rb);
        }
        let key = (op, ra, rb, rc);
        let cached = match level {
            Level::Param => self.setup_cse.get(&key),
            Level::Dynamic => self.dynamic_cse.get(&key),
        };
        if let Some(&r) = cached {
            return Val::Reg(r, level);
        }
        let dst = self.fresh();
        let instr = Instr { op, dst, a: ra, b: rb, c: rc, d: 0 };
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

    fn op(&mut self, op: Op, a: Val, b: Val) -> Val {
        // For a unary op `b == a`, so `c = a` adds no new operand.
        self.op3(op, a, b, a)
    }

    /// The values of all elements of a tensor, generated once per section where they are used.
    fn value(&mut self, tid: usize) -> Result<Rc<[Val]>, Located> {
        if let Some(v) = self.static_vals[tid].clone().or_else(|| self.dynamic_vals[tid].clone()) {
            return Ok(v);
        }
        let len = self.len(tid);
        let vals: Rc<[Val]> = match self.defs[tid].role {
            Role::State => (0..len).map(|k| Val::Reg(Program::state_reg(k) as u32, Level::Dynamic)).collect(),
            Role::Input | Role::ListedInput(_) => {
                let p0 = 1 + self.n_states + self.param_start[tid];
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
                self.op(Op::Neg, x, x)
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
                    acc = self.op(op, acc, b);
                }
                acc
            }
            Expr::Draw(draw, args, pos, site) => self.draw(*draw, args, *pos, (*site, k))?,
            Expr::Call(Func::Piecewise, args) => {
                // piecewise(c0, v0, c1, v1, …, fallback), built from the fallback outwards.
                let mut acc = self.expr(&args[args.len() - 1], k)?;
                for pair in args[..args.len() - 1].chunks(2).rev() {
                    let (c, v) = (self.expr(&pair[0], k)?, self.expr(&pair[1], k)?);
                    acc = self.op3(Op::Select, c, v, acc);
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
                        Val::Const(e) => match self.small_power(a, e) {
                            Some(v) => return Ok(v),
                            None => Op::Pow,
                        },
                        _ => Op::Pow,
                    },
                    Func::Piecewise => unreachable!("handled above"),
                };
                self.op(op, a, b)
            }
        })
    }
}

impl Gen<'_> {
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
                let r = self.fresh();
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
                let sz = self.op(Op::Mul, sigma, z);
                // exp(0 + x) = exp(x) exactly, so a zero mean costs nothing.
                let x = if matches!(mu, Val::Const(m) if m == 0.0) { sz } else { self.op(Op::Add, mu, sz) };
                self.op(Op::Exp, x, x)
            }
            Draw::Bernoulli => {
                // 1 when u < p, i.e. when u - p < 0.
                let p = self.expr(&args[0], k)?;
                let d = self.op(Op::Sub, z, p);
                self.op3(Op::Select, d, Val::Const(0.0), Val::Const(1.0))
            }
        })
    }
}

impl Gen<'_> {
    /// `a^e` as multiplications for the small whole exponents models use (`pow(x, 2)` …), which are much
    /// cheaper than `powf` and agree with it to rounding; `None` for other exponents.
    fn small_power(&mut self, a: Val, e: f64) -> Option<Val> {
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
}

/// A sparse row of derivatives with respect to the states: `(state index, value)`, sorted by state.
type Grad = Vec<(u32, Val)>;

impl Gen<'_> {
    // ---- The Jacobian ∂F/∂u, by differentiating the right-hand side's code ----

    /// Generate code for the non-zero entries of `∂F/∂u` as a new dynamic section that runs after `rhs`
    /// (so it may read every right-hand-side result), and return the entries as `(row, column,
    /// register)`. Derivatives propagate forward through the straight-line code as sparse rows, so the
    /// sparsity pattern comes out exact and derivatives that depend only on parameters (all of them, for a
    /// linear model) are computed once per simulation in the setup code.
    fn jacobian(&mut self, rhs: &[Instr], f: &[u32]) -> Result<Vec<(u32, u32, u32)>, String> {
        // Let the derivative code reuse what the right-hand side already computed, e.g. `exp(x)`.
        for i in rhs {
            self.dynamic_cse.insert((i.op, i.a, i.b, i.c), i.dst);
        }
        let mut dynamic: HashSet<u32> = rhs.iter().map(|i| i.dst).collect();
        dynamic.insert(Program::T as u32);
        let mut grads: HashMap<u32, Grad> = HashMap::new();
        for j in 0..self.n_states {
            let r = Program::state_reg(j) as u32;
            dynamic.insert(r);
            grads.insert(r, vec![(j as u32, Val::Const(1.0))]);
        }
        self.derive(rhs, &dynamic, &mut grads)?;
        Ok(self.entries(&grads, f))
    }

    /// Propagate sparse derivative rows forward through `code`: `grads` holds the rows of the registers
    /// derived so far (the seeds) and receives one for every result that depends on them. `dynamic` holds
    /// the registers whose values change within a simulation (the rest are parameter-level), so each
    /// derivative lands in the right section.
    ///
    /// Every intermediate value keeps its row, so a dense model (each value depending on many states) holds
    /// many entries: their count is checked against the memory budget as they grow.
    fn derive(&mut self, code: &[Instr], dynamic: &HashSet<u32>, grads: &mut HashMap<u32, Grad>) -> Result<(), String> {
        let entry_bytes = std::mem::size_of::<(u32, Val)>() as f64;
        let budget = parfit_core::limits::memory_limit() as f64 / entry_bytes;
        let mut held: f64 = grads.values().map(|g| g.len() as f64).sum();
        let consts: HashMap<u32, f64> = self.consts.iter().copied().collect();
        let val = |r: u32| match consts.get(&r) {
            Some(&c) => Val::Const(c),
            None if dynamic.contains(&r) => Val::Reg(r, Level::Dynamic),
            None => Val::Reg(r, Level::Param),
        };
        let none = Grad::new();
        for i in code {
            let (a, b) = (val(i.a), val(i.b));
            let dst = val(i.dst);
            let da = grads.get(&i.a).unwrap_or(&none).clone();
            // Unary ops repeat `a` as `b` and `c`; only binary ops and `Select` have a second gradient.
            let db = match i.op {
                Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Pow
                | Op::Min
                | Op::Max
                | Op::Modulo
                | Op::NanElse
                | Op::Select
                | Op::If => grads.get(&i.b).unwrap_or(&none).clone(),
                _ => Grad::new(),
            };
            if da.is_empty() && db.is_empty() && !matches!(i.op, Op::Select | Op::If) {
                continue;
            }
            let one = Val::Const(1.0);
            let g = match i.op {
                Op::Add => self.lin(one, &da, one, &db),
                Op::Sub => self.lin(one, &da, Val::Const(-1.0), &db),
                Op::Mul => self.lin(b, &da, a, &db),
                Op::Div => {
                    // d(a/b) = (da - (a/b) db) / b
                    let inv = self.d_div(one, b);
                    let cb = if db.is_empty() { Val::Const(0.0) } else { self.d_mul(dst, inv) };
                    let cb = self.d_neg(cb);
                    self.lin(inv, &da, cb, &db)
                }
                Op::Pow => {
                    // d(a^b) = b a^(b-1) da + a^b ln(a) db
                    let ca = match b {
                        Val::Const(2.0) => self.d_mul(Val::Const(2.0), a),
                        Val::Const(e) => {
                            let p = match self.small_power(a, e - 1.0) {
                                Some(p) => p,
                                None => self.op(Op::Pow, a, Val::Const(e - 1.0)),
                            };
                            self.d_mul(b, p)
                        }
                        _ => {
                            let bm1 = self.d_sub(b, one);
                            let p = self.op(Op::Pow, a, bm1);
                            self.d_mul(b, p)
                        }
                    };
                    let cb = if db.is_empty() {
                        Val::Const(0.0)
                    } else {
                        let ln = self.op(Op::Log, a, a);
                        self.d_mul(dst, ln)
                    };
                    self.lin(ca, &da, cb, &db)
                }
                // The derivative of the branch taken (ties go to `a`).
                Op::Min => {
                    let cond = self.op(Op::Sub, b, a);
                    self.choose(Op::Select, cond, &da, &db)
                }
                Op::Max => {
                    let cond = self.op(Op::Sub, a, b);
                    self.choose(Op::Select, cond, &da, &db)
                }
                Op::Select | Op::If => {
                    let dc = grads.get(&i.c).unwrap_or(&none).clone();
                    if db.is_empty() && dc.is_empty() {
                        continue;
                    }
                    self.choose(i.op, a, &db, &dc)
                }
                Op::NanElse => {
                    // The derivative of the value taken: `b`'s where `a` is NaN.
                    let nan = self.op(Op::Ne, a, a);
                    self.choose(Op::If, nan, &db, &da)
                }
                Op::Modulo => {
                    // a mod b = a - q·b with q = trunc(a / b), a whole number: d = da - q·db, with the q
                    // this remainder implies.
                    let cb = if db.is_empty() {
                        Val::Const(0.0)
                    } else {
                        let diff = self.op(Op::Sub, a, dst);
                        let q = self.op(Op::Div, diff, b);
                        self.d_neg(q)
                    };
                    self.lin(one, &da, cb, &db)
                }
                // Piecewise constant: no derivative.
                Op::Heaviside
                | Op::Trunc
                | Op::Eq
                | Op::Ne
                | Op::Lt
                | Op::Le
                | Op::Gt
                | Op::Ge
                | Op::And
                | Op::Or
                | Op::Not => continue,
                Op::Copysign => {
                    // |a| sign(b): the sign of a times the sign of b (b's own derivative is zero almost
                    // everywhere).
                    let sa = self.op(Op::Copysign, one, a);
                    let sb = self.op(Op::Copysign, one, b);
                    let s = self.d_mul(sa, sb);
                    self.lin(s, &da, Val::Const(0.0), &none)
                }
                op => {
                    let k = self.unary_derivative(op, a, dst);
                    self.lin(k, &da, Val::Const(0.0), &none)
                }
            };
            held += g.len() as f64;
            if held > budget {
                let what = "the derivatives of the model's code (for its Jacobian or sensitivities)";
                parfit_core::limits::check_allocation(what, held, entry_bytes)?;
            }
            if !g.is_empty() {
                grads.insert(i.dst, g);
            }
        }
        Ok(())
    }

    /// `(row, column, register)` of the non-zero derivatives of the registers `rows`.
    fn entries(&mut self, grads: &HashMap<u32, Grad>, rows: &[u32]) -> Vec<(u32, u32, u32)> {
        let mut entries = Vec::new();
        for (row, r) in rows.iter().enumerate() {
            for &(col, v) in grads.get(r).map_or(&[][..], |g| &g[..]) {
                if !matches!(v, Val::Const(z) if z == 0.0) {
                    let reg = self.reg(v);
                    entries.push((row as u32, col, reg));
                }
            }
        }
        entries
    }

    /// Code for the parameter derivatives the forward sensitivity equations need, run only when they are
    /// wanted: ∂(parameter-level values)/∂p (once per simulation; gives ∂u0/∂p), ∂F/∂p (after the
    /// right-hand side and the Jacobian code, whose results it may reuse), and ∂out/∂u and ∂out/∂p (after
    /// the output code).
    fn sensitivities(&mut self, p: &mut Program) -> Result<(), String> {
        let n = self.n_states as u32;
        let mark = self.setup.len();
        let setup = self.setup.clone();
        let mut pgrads: HashMap<u32, Grad> = HashMap::new();
        for k in 0..p.n_params {
            pgrads.insert(p.param_reg(k) as u32, vec![(k as u32, Val::Const(1.0))]);
        }
        self.derive(&setup, &HashSet::new(), &mut pgrads)?;
        p.init_sens = self.entries(&pgrads, &p.init);

        // ∂F/∂p with the state held fixed: parameter-level values are the only seeds.
        self.take_dynamic();
        for i in p.rhs.iter().chain(&p.jac) {
            self.dynamic_cse.insert((i.op, i.a, i.b, i.c), i.dst);
        }
        let mut dynamic: HashSet<u32> = p.rhs.iter().chain(&p.jac).map(|i| i.dst).collect();
        dynamic.insert(Program::T as u32);
        dynamic.extend((0..n).map(|j| Program::state_reg(j as usize) as u32));
        let mut grads = pgrads.clone();
        self.derive(&p.rhs, &dynamic, &mut grads)?;
        p.pjac_entries = self.entries(&grads, &p.f);
        p.pjac = self.take_dynamic();

        // Outputs: columns 0..n are the states, n.. the parameters.
        for i in &p.out {
            self.dynamic_cse.insert((i.op, i.a, i.b, i.c), i.dst);
        }
        let mut dynamic: HashSet<u32> = p.out.iter().map(|i| i.dst).collect();
        dynamic.insert(Program::T as u32);
        let mut grads: HashMap<u32, Grad> =
            pgrads.into_iter().map(|(r, g)| (r, g.into_iter().map(|(c, v)| (c + n, v)).collect())).collect();
        for j in 0..n {
            let r = Program::state_reg(j as usize) as u32;
            dynamic.insert(r);
            grads.insert(r, vec![(j, Val::Const(1.0))]);
        }
        self.derive(&p.out, &dynamic, &mut grads)?;
        let (dy, dp): (Vec<_>, Vec<_>) =
            self.entries(&grads, &p.out_regs).into_iter().partition(|&(_, col, _)| col < n);
        p.dout_dy = dy;
        p.dout_dp = dp.into_iter().map(|(row, col, r)| (row, col - n, r)).collect();
        p.dout = self.take_dynamic();
        p.dsetup = self.setup.split_off(mark);
        p.sensitivities = true;
        Ok(())
    }

    /// `d op(a) / da` for the one-argument functions, given `dst = op(a)`.
    fn unary_derivative(&mut self, op: Op, a: Val, dst: Val) -> Val {
        let one = Val::Const(1.0);
        match op {
            Op::Neg => Val::Const(-1.0),
            Op::Exp => dst,
            Op::Log => self.d_div(one, a),
            Op::Log10 => {
                let x = self.d_mul(a, Val::Const(std::f64::consts::LN_10));
                self.d_div(one, x)
            }
            Op::Sqrt => {
                let x = self.d_mul(Val::Const(2.0), dst);
                self.d_div(one, x)
            }
            Op::Sin => self.op(Op::Cos, a, a),
            Op::Cos => {
                let s = self.op(Op::Sin, a, a);
                self.d_neg(s)
            }
            Op::Tan => {
                let sq = self.op(Op::Mul, dst, dst);
                self.op(Op::Add, one, sq)
            }
            Op::Sinh => self.op(Op::Cosh, a, a),
            Op::Cosh => self.op(Op::Sinh, a, a),
            Op::Tanh => {
                let sq = self.op(Op::Mul, dst, dst);
                self.op(Op::Sub, one, sq)
            }
            Op::Asinh => {
                let sq = self.op(Op::Mul, a, a);
                let x = self.op(Op::Add, sq, one);
                let r = self.op(Op::Sqrt, x, x);
                self.d_div(one, r)
            }
            Op::Acosh => {
                // 1 / (sqrt(a - 1) sqrt(a + 1)): accurate near a = 1, unlike sqrt(a² - 1).
                let (m, p) = (self.op(Op::Sub, a, one), self.op(Op::Add, a, one));
                let (m, p) = (self.op(Op::Sqrt, m, m), self.op(Op::Sqrt, p, p));
                let x = self.op(Op::Mul, m, p);
                self.d_div(one, x)
            }
            Op::Asin | Op::Acos => {
                // ±1 / sqrt(1 - a²)
                let sq = self.op(Op::Mul, a, a);
                let x = self.op(Op::Sub, one, sq);
                let r = self.op(Op::Sqrt, x, x);
                let sign = if op == Op::Asin { one } else { Val::Const(-1.0) };
                self.d_div(sign, r)
            }
            Op::Atan => {
                let sq = self.op(Op::Mul, a, a);
                let x = self.op(Op::Add, one, sq);
                self.d_div(one, x)
            }
            Op::Abs => self.op(Op::Copysign, one, a),
            Op::Sigmoid => {
                let x = self.op(Op::Sub, one, dst);
                self.op(Op::Mul, dst, x)
            }
            _ => unreachable!("not a one-argument function: {op:?}"),
        }
    }

    /// `ca · da + cb · db` on sparse rows.
    fn lin(&mut self, ca: Val, da: &[(u32, Val)], cb: Val, db: &[(u32, Val)]) -> Grad {
        let mut out = Grad::with_capacity(da.len().max(db.len()));
        let (mut i, mut j) = (0, 0);
        while i < da.len() || j < db.len() {
            let ka = da.get(i).map_or(u32::MAX, |e| e.0);
            let kb = db.get(j).map_or(u32::MAX, |e| e.0);
            let k = ka.min(kb);
            let x = if ka == k {
                i += 1;
                self.d_mul(ca, da[i - 1].1)
            } else {
                Val::Const(0.0)
            };
            let v = if kb == k {
                j += 1;
                match cb {
                    // `x - dy` rather than `x + (-dy)`: one instruction fewer.
                    Val::Const(-1.0) => self.d_sub(x, db[j - 1].1),
                    _ => {
                        let y = self.d_mul(cb, db[j - 1].1);
                        self.d_add(x, y)
                    }
                }
            } else {
                x
            };
            out.push((k, v));
        }
        out
    }

    /// Element-wise `if cond >= 0 { dx } else { dy }` (`op` = `Select`) or `if cond != 0 { dx } else { dy }`
    /// (`If`) on sparse rows.
    fn choose(&mut self, op: Op, cond: Val, dx: &[(u32, Val)], dy: &[(u32, Val)]) -> Grad {
        let zero = Val::Const(0.0);
        let (mut i, mut j, mut out) = (0, 0, Grad::new());
        while i < dx.len() || j < dy.len() {
            let ka = dx.get(i).map_or(u32::MAX, |e| e.0);
            let kb = dy.get(j).map_or(u32::MAX, |e| e.0);
            let k = ka.min(kb);
            let x = if ka == k {
                i += 1;
                dx[i - 1].1
            } else {
                zero
            };
            let y = if kb == k {
                j += 1;
                dy[j - 1].1
            } else {
                zero
            };
            out.push((k, self.op3(op, cond, x, y)));
        }
        out
    }

    // Arithmetic for derivative code: like `op`, but also dropping additions of 0 and multiplications by
    // 0 and ±1, which chain-rule products are full of. (Not used for the model's own code, where `0 · x`
    // must stay NaN for an infinite `x`.)

    fn d_add(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Const(0.0), x) | (x, Val::Const(0.0)) => x,
            _ => self.op(Op::Add, a, b),
        }
    }

    fn d_sub(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (x, Val::Const(0.0)) => x,
            (Val::Const(0.0), x) => self.d_neg(x),
            _ => self.op(Op::Sub, a, b),
        }
    }

    fn d_mul(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Const(0.0), _) | (_, Val::Const(0.0)) => Val::Const(0.0),
            (Val::Const(1.0), x) | (x, Val::Const(1.0)) => x,
            (Val::Const(-1.0), x) | (x, Val::Const(-1.0)) => self.d_neg(x),
            _ => self.op(Op::Mul, a, b),
        }
    }

    fn d_div(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Const(0.0), _) => Val::Const(0.0),
            (x, Val::Const(1.0)) => x,
            _ => self.op(Op::Div, a, b),
        }
    }

    fn d_neg(&mut self, a: Val) -> Val {
        self.op(Op::Neg, a, a)
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
