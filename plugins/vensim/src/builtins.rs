//! Vensim's scalar built-in functions, lowered to [`System`] expressions.
//!
//! A built-in becomes an expression over its (already lowered) arguments, plus the hidden stocks, slots and
//! auxiliaries it needs, pushed into the system: a DELAY3 is three integrated stocks and their rates, a
//! DELAY FIXED a pipeline of assigned slots, a SAMPLE IF TRUE one assigned state. Each follows the stock
//! structure and initialisation the Vensim reference manual documents, checked against Vensim's own output
//! in the SDXorg test-models.
//!
//! A few structures depend on values only known once every equation is lowered (a DELAY N's order, a DELAY
//! FIXED's delay time, both evaluated at the initial time): [`lower_call`] returns an auxiliary for them
//! and [`finish`] builds them.

use parfit_core::limits::check_allocation;
use parfit_expr::system::{Expr, LookupMode, State, System, Update, Var};
use parfit_expr::{DrawKind, LookupTable, Op};

/// An argument of a built-in call.
pub(crate) enum Arg {
    Value(Expr),
    /// A lookup named as an argument (`LOOKUP INVERT(table, y)`): its index in `System::tables`.
    Table(usize),
}

/// How a built-in is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BuiltinInfo {
    pub min_args: usize,
    pub max_args: usize,
    /// The positions of the arguments that name a lookup.
    pub table_args: &'static [usize],
}

/// What lowering needs besides the arguments: the system to add to and the `.Control` values.
pub(crate) struct Lowering<'a> {
    pub system: &'a mut System,
    /// The `.Control` values, known when the model is compiled.
    pub initial_time: f64,
    pub time_step: f64,
    /// Parameters whose value the model's structure depends on (a DELAY FIXED pipeline's length, a
    /// DELAY N's order): `(parameter index, why)`. The runner refuses other values than the default.
    pub structural: Vec<(usize, String)>,
    /// Structures built by [`finish`].
    deferred: Vec<Deferred>,
    /// The step's time and time plus, once a test input needs them.
    clock: Option<Clock>,
}

/// Auxiliaries holding the time at the start of the current step and that time plus TIME STEP / 2.
#[derive(Clone)]
struct Clock {
    time: Expr,
    plus: Expr,
}

impl<'a> Lowering<'a> {
    pub(crate) fn new(system: &'a mut System, initial_time: f64, time_step: f64) -> Self {
        Lowering { system, initial_time, time_step, structural: Vec::new(), deferred: Vec::new(), clock: None }
    }
}

/// A structure whose size is a value at the initial time, built once every equation is lowered: its output
/// is the auxiliary `out`, a placeholder until then.
#[derive(Clone)]
struct Deferred {
    out: usize,
    kind: DeferredKind,
    args: Vec<Expr>,
    label: String,
}

#[derive(Clone, Copy)]
enum DeferredKind {
    /// `DELAY N(input, delay time, initial value, order)`.
    DelayN,
    /// `SMOOTH N(input, delay time, initial value, order)`.
    SmoothN,
    /// `DELAY FIXED(input, delay time, initial value)`.
    DelayFixed,
}

/// Why a deferred structure cannot be built: the call site's label and a one-line message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FinishError {
    pub label: String,
    pub message: String,
}

const fn info(min_args: usize, max_args: usize) -> BuiltinInfo {
    BuiltinInfo { min_args, max_args, table_args: &[] }
}

const fn lookup(args: usize) -> BuiltinInfo {
    BuiltinInfo { min_args: args, max_args: args, table_args: &[0] }
}

/// Every built-in [`lower_call`] knows, with its arity.
const BUILTINS: &[(&str, BuiltinInfo)] = &[
    ("ABS", info(1, 1)),
    ("ARCCOS", info(1, 1)),
    ("ARCSIN", info(1, 1)),
    ("ARCTAN", info(1, 1)),
    ("COS", info(1, 1)),
    ("COSH", info(1, 1)),
    ("DELAY FIXED", info(3, 3)),
    ("DELAY N", info(4, 4)),
    ("DELAY1", info(2, 2)),
    ("DELAY1I", info(3, 3)),
    ("DELAY3", info(2, 2)),
    ("DELAY3I", info(3, 3)),
    ("EXP", info(1, 1)),
    ("FORECAST", info(3, 3)),
    ("GAME", info(1, 1)),
    ("IF THEN ELSE", info(3, 3)),
    ("INITIAL", info(1, 1)),
    ("INTEGER", info(1, 1)),
    ("LN", info(1, 1)),
    ("LOG", info(2, 2)),
    ("LOOKUP AREA", lookup(3)),
    ("LOOKUP BACKWARD", lookup(2)),
    ("LOOKUP EXTRAPOLATE", lookup(2)),
    ("LOOKUP FORWARD", lookup(2)),
    ("LOOKUP INVERT", lookup(2)),
    ("MAX", info(2, 2)),
    ("MIN", info(2, 2)),
    ("MODULO", info(2, 2)),
    ("NPV", info(4, 4)),
    ("POWER", info(2, 2)),
    ("PULSE", info(2, 2)),
    ("PULSE TRAIN", info(4, 4)),
    ("QUANTUM", info(2, 2)),
    ("RAMP", info(3, 3)),
    ("RANDOM 0 1", info(0, 0)),
    ("RANDOM EXPONENTIAL", info(5, 5)),
    ("RANDOM NORMAL", info(5, 5)),
    ("RANDOM TRIANGULAR", info(6, 6)),
    ("RANDOM UNIFORM", info(3, 3)),
    ("REINITIAL", info(1, 1)),
    ("SAMPLE IF TRUE", info(3, 3)),
    ("SIN", info(1, 1)),
    ("SINH", info(1, 1)),
    ("SMOOTH", info(2, 2)),
    ("SMOOTH N", info(4, 4)),
    ("SMOOTH3", info(2, 2)),
    ("SMOOTH3I", info(3, 3)),
    ("SMOOTHI", info(3, 3)),
    ("SQRT", info(1, 1)),
    ("STEP", info(2, 2)),
    ("TAN", info(1, 1)),
    ("TANH", info(1, 1)),
    ("TREND", info(3, 3)),
    ("XIDZ", info(3, 3)),
    ("ZIDZ", info(2, 2)),
];

/// Functions of Vensim's reference that this plugin does not lower (the vector, allocation and `GET …`
/// families are the reader's): a model calling one is refused with the function's name, not as an unknown
/// name.
const UNSUPPORTED: &[&str] = &[
    "DELAY BATCH",
    "DELAY CONVEYOR",
    "DELAY MATERIAL",
    "DELAY PROFILE",
    "DELAYP",
    "DEPRECIATE BY SCHEDULE",
    "DEPRECIATE STRAIGHTLINE",
    "FIND MARKET PRICE",
    "GAMMA LN",
    "MESSAGE",
    "NPVE",
    "QUEUE ATTRIB",
    "QUEUE CTFIFO",
    "QUEUE FIFO",
    "QUEUE FIFO ATTRIB",
    "QUEUE LIFO",
    "RANDOM BETA",
    "RANDOM BINOMIAL",
    "RANDOM GAMMA",
    "RANDOM LOOKUP",
    "RANDOM NEGATIVE BINOMIAL",
    "RANDOM PINK NOISE",
    "RANDOM POISSON",
    "RANDOM WEIBULL",
    "SHIFT IF TRUE",
    "SIMULTANEOUS",
    "TIME BASE",
];

/// Whether `name` is a function of Vensim's reference that this plugin refuses (see [`UNSUPPORTED`]).
pub(crate) fn is_unsupported(name: &str) -> bool {
    UNSUPPORTED.contains(&name)
}

/// Whether `name` is a built-in [`lower_call`] knows, and which of its arguments are lookups (by position).
pub(crate) fn builtin(name: &str) -> Option<BuiltinInfo> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, i)| *i)
}

/// 1/√π.
const FRAC_1_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI / 2.0;

/// Vensim's zero for ZIDZ, XIDZ and QUANTUM: a divisor smaller than this in magnitude counts as zero.
const SMALL: f64 = 1e-6;

/// Lower a call of the built-in `name` (upper case, words separated by one space: "DELAY FIXED",
/// "SMOOTH3I", "IF THEN ELSE") with its arguments already lowered (`Arg::Table` for an argument that names
/// a lookup). `label` names the call site for the hidden states and auxiliaries it creates (e.g.
/// "inventory[a1]"), which are not outputs. Errors are one-line messages; the caller adds file:line:column.
pub(crate) fn lower_call(l: &mut Lowering, name: &str, args: Vec<Arg>, label: &str) -> Result<Expr, String> {
    let Some(info) = builtin(name) else {
        return Err(format!("the Vensim function {name} is not supported"));
    };
    let (table, v) = split_args(name, info, args)?;
    let mut b = Builder { l, label, name };
    Ok(match name {
        "ABS" => un(Op::Abs, &v[0]),
        "ARCCOS" => un(Op::Acos, &v[0]),
        "ARCSIN" => un(Op::Asin, &v[0]),
        "ARCTAN" => un(Op::Atan, &v[0]),
        "COS" => un(Op::Cos, &v[0]),
        "COSH" => un(Op::Cosh, &v[0]),
        "EXP" => un(Op::Exp, &v[0]),
        "LN" => un(Op::Log, &v[0]),
        "SIN" => un(Op::Sin, &v[0]),
        "SINH" => un(Op::Sinh, &v[0]),
        "SQRT" => un(Op::Sqrt, &v[0]),
        "TAN" => un(Op::Tan, &v[0]),
        "TANH" => un(Op::Tanh, &v[0]),
        "INTEGER" => un(Op::Trunc, &v[0]),
        "GAME" => v[0].clone(),
        "POWER" => bin(Op::Pow, &v[0], &v[1]),
        "LOG" => bin(Op::Div, &un(Op::Log, &v[0]), &un(Op::Log, &v[1])),
        "IF THEN ELSE" => if_(&v[0], &v[1], &v[2]),
        "MIN" | "MAX" => b.min_max(name == "MIN", &v[0], &v[1]),
        // The remainder with the sign of x (Vensim: MODULO(-10, 3) = -1): `Op::Modulo` is C's fmod.
        "MODULO" => bin(Op::Modulo, &v[0], &v[1]),
        "QUANTUM" => b.quantum(&v[0], &v[1]),
        "ZIDZ" => b.xidz(&v[0], &v[1], &Expr::Num(0.0)),
        "XIDZ" => b.xidz(&v[0], &v[1], &v[2]),
        "INITIAL" | "REINITIAL" => Expr::Initial(Box::new(v[0].clone())),
        "STEP" => b.step(&v[0], &v[1]),
        "PULSE" => b.pulse(&v[0], &v[1]),
        "PULSE TRAIN" => b.pulse_train(&v[0], &v[1], &v[2], &v[3]),
        "RAMP" => b.ramp(&v[0], &v[1], &v[2]),
        "LOOKUP EXTRAPOLATE" => lookup_read(table, LookupMode::Extrapolate, &v[0]),
        "LOOKUP FORWARD" => lookup_read(table, LookupMode::Forward, &v[0]),
        "LOOKUP BACKWARD" => lookup_read(table, LookupMode::Backward, &v[0]),
        "LOOKUP INVERT" => lookup_read(table, LookupMode::Invert, &v[0]),
        "LOOKUP AREA" => Expr::LookupArea { table, from: Box::new(v[0].clone()), to: Box::new(v[1].clone()) },
        "DELAY1" => b.material_delay(&v[0], &v[1], &v[0], 1),
        "DELAY1I" => b.material_delay(&v[0], &v[1], &v[2], 1),
        "DELAY3" => b.material_delay(&v[0], &v[1], &v[0], 3),
        "DELAY3I" => b.material_delay(&v[0], &v[1], &v[2], 3),
        "SMOOTH" => b.smooth(&v[0], &v[1], &v[0], 1),
        "SMOOTHI" => b.smooth(&v[0], &v[1], &v[2], 1),
        "SMOOTH3" => b.smooth(&v[0], &v[1], &v[0], 3),
        "SMOOTH3I" => b.smooth(&v[0], &v[1], &v[2], 3),
        "DELAY N" => b.defer(DeferredKind::DelayN, v),
        "SMOOTH N" => b.defer(DeferredKind::SmoothN, v),
        "DELAY FIXED" => b.defer(DeferredKind::DelayFixed, v),
        "TREND" => b.trend(&v[0], &v[1], &v[2]),
        "FORECAST" => b.forecast(&v[0], &v[1], &v[2]),
        "SAMPLE IF TRUE" => b.sample_if_true(&v[0], &v[1], &v[2]),
        "RANDOM 0 1" => b.random_uniform(&Expr::Num(0.0), &Expr::Num(1.0)),
        "RANDOM UNIFORM" => b.random_uniform(&v[0], &v[1]),
        "RANDOM EXPONENTIAL" => b.random_exponential(&v[0], &v[1], &v[2], &v[3]),
        "RANDOM NORMAL" => b.random_normal(&v[0], &v[1], &v[2], &v[3]),
        "RANDOM TRIANGULAR" => b.random_triangular(&v[0], &v[1], &v[2], &v[3], &v[4]),
        "NPV" => b.npv(&v[0], &v[1], &v[2], &v[3]),
        _ => return Err(format!("the Vensim function {name} is not supported")),
    })
}

/// Check the arguments against `info`: the lookup (if any) apart, the values in order.
fn split_args(name: &str, info: BuiltinInfo, args: Vec<Arg>) -> Result<(usize, Vec<Expr>), String> {
    let n = args.len();
    if n < info.min_args || n > info.max_args {
        let wanted = match (info.min_args, info.max_args) {
            (0, 0) => "no arguments".to_string(),
            (1, 1) => "1 argument".to_string(),
            (a, b) if a == b => format!("{a} arguments"),
            (a, b) => format!("{a} to {b} arguments"),
        };
        return Err(format!("{name} takes {wanted}, not {n}"));
    }
    let mut table = 0;
    let mut values = Vec::with_capacity(n);
    for (k, arg) in args.into_iter().enumerate() {
        match (arg, info.table_args.contains(&k)) {
            (Arg::Table(t), true) => table = t,
            (Arg::Value(e), false) => values.push(e),
            (Arg::Value(_), true) => return Err(format!("argument {} of {name} must name a lookup", k + 1)),
            (Arg::Table(_), false) => {
                return Err(format!("argument {} of {name} is a value, not a lookup", k + 1));
            }
        }
    }
    Ok((table, values))
}

fn un(op: Op, a: &Expr) -> Expr {
    Expr::Op(op, vec![a.clone()])
}

fn bin(op: Op, a: &Expr, b: &Expr) -> Expr {
    Expr::Op(op, vec![a.clone(), b.clone()])
}

fn if_(cond: &Expr, then: &Expr, otherwise: &Expr) -> Expr {
    Expr::Op(Op::If, vec![cond.clone(), then.clone(), otherwise.clone()])
}

fn lookup_read(table: usize, mode: LookupMode, x: &Expr) -> Expr {
    Expr::Lookup { table, mode, x: Box::new(x.clone()) }
}

/// Whether an expression is a plain reference, cheap and safe to repeat (no random draw).
fn is_leaf(e: &Expr) -> bool {
    matches!(e, Expr::Num(_) | Expr::Time | Expr::Param(_) | Expr::State(_) | Expr::Var(_))
}

/// Whether an expression is the same at every step: numbers and parameters only.
fn is_static(e: &Expr) -> bool {
    match e {
        Expr::Num(_) | Expr::Param(_) | Expr::Initial(_) => true,
        Expr::Op(_, args) => args.iter().all(is_static),
        _ => false,
    }
}

/// One call's lowering: the call site names its hidden items.
struct Builder<'l, 'a> {
    l: &'l mut Lowering<'a>,
    label: &'l str,
    name: &'l str,
}

impl Builder<'_, '_> {
    /// A hidden item's name: the call site, the function, what it is, and its index (names stay unique
    /// when one equation calls the same function twice).
    fn hidden(&self, what: &str, index: usize) -> String {
        format!("{}~{} {what}#{index}", self.label, self.name)
    }

    /// A hidden auxiliary holding `value`.
    fn var(&mut self, what: &str, value: Expr) -> Expr {
        let k = self.l.system.vars.len();
        let name = self.hidden(what, k);
        self.l.system.vars.push(Var { name, value, initial: None });
        Expr::Var(k)
    }

    /// `e` where it is used more than once: as is when it is a plain reference, else through a hidden
    /// auxiliary, so it is computed once (and a random draw in it is one draw).
    fn shared(&mut self, what: &str, e: &Expr) -> Expr {
        if is_leaf(e) { e.clone() } else { self.var(what, e.clone()) }
    }

    /// A hidden state; its update is set by the caller once the states it reads exist.
    fn state(&mut self, what: &str, initial: Expr, kind: Update) -> usize {
        let k = self.l.system.states.len();
        let name = self.hidden(what, k);
        self.l.system.states.push(State { name, initial, update: Expr::Num(0.0), kind });
        k
    }

    fn set_update(&mut self, state: usize, update: Expr) {
        if let Some(s) = self.l.system.states.get_mut(state) {
            s.update = update;
        }
    }

    /// The time at the start of the current step, `INITIAL TIME + n × TIME STEP` as the runner computes
    /// Time, and that time plus TIME STEP / 2 (Vensim compares with it so that rounding never moves a step).
    /// An assigned state counts the steps, so the test inputs "do not change except at TIME STEP intervals
    /// regardless of the integration technique" (Vensim), RK4's stages included. One clock per model.
    fn clock(&mut self) -> Clock {
        if let Some(clock) = &self.l.clock {
            return clock.clone();
        }
        let system = &mut *self.l.system;
        let k = system.states.len();
        let update = bin(Op::Add, &Expr::State(k), &Expr::Num(1.0));
        system.states.push(State {
            name: "~step number".into(),
            initial: Expr::Num(0.0),
            update,
            kind: Update::Assign,
        });
        let elapsed = bin(Op::Mul, &Expr::State(k), &Expr::Num(self.l.time_step));
        let time = bin(Op::Add, &Expr::Num(self.l.initial_time), &elapsed);
        system.vars.push(Var { name: "~step time".into(), value: time, initial: None });
        let time = Expr::Var(system.vars.len() - 1);
        let plus = bin(Op::Add, &time, &Expr::Num(self.l.time_step / 2.0));
        system.vars.push(Var { name: "~time plus".into(), value: plus, initial: None });
        let clock = Clock { time, plus: Expr::Var(system.vars.len() - 1) };
        self.l.clock = Some(clock.clone());
        clock
    }

    /// numpy's `minimum`/`maximum` (what PySD computes): NaN if either operand is NaN, else the smaller
    /// (larger), `a` on a tie.
    fn min_max(&mut self, min: bool, a: &Expr, b: &Expr) -> Expr {
        let a = self.shared("operand", a);
        let b = self.shared("operand", b);
        let better = bin(if min { Op::Lt } else { Op::Gt }, &b, &a);
        let b_nan = bin(Op::Ne, &b, &b);
        if_(&better, &b, &if_(&b_nan, &b, &a))
    }

    /// `QUANTUM(a, q)`: `q × INTEGER(a / q)`, or `a` when q is below Vensim's zero.
    fn quantum(&mut self, a: &Expr, q: &Expr) -> Expr {
        let a = self.shared("operand", a);
        let q = self.shared("quantum", q);
        let steps = un(Op::Trunc, &bin(Op::Div, &a, &q));
        if_(&bin(Op::Lt, &q, &Expr::Num(SMALL)), &a, &bin(Op::Mul, &q, &steps))
    }

    /// `XIDZ(a, b, x)`: a / b, or x when |b| is below Vensim's zero (`ZIDZ`: x = 0).
    fn xidz(&mut self, a: &Expr, b: &Expr, x: &Expr) -> Expr {
        let b = self.shared("divisor", b);
        let zero = bin(Op::Lt, &un(Op::Abs, &b), &Expr::Num(SMALL));
        if_(&zero, x, &bin(Op::Div, a, &b))
    }

    /// `STEP(height, step time)`: height once `Time + TIME STEP/2 > step time`, else 0.
    fn step(&mut self, height: &Expr, at: &Expr) -> Expr {
        let tp = self.clock().plus;
        if_(&bin(Op::Gt, &tp, at), height, &Expr::Num(0.0))
    }

    /// `PULSE(start, width)`: 1 while `start < Time + TIME STEP/2 < start + width`, a width of 0 counting
    /// as TIME STEP (so a width below TIME STEP/2 gives no pulse, as Vensim's definition says).
    fn pulse(&mut self, start: &Expr, width: &Expr) -> Expr {
        let tp = self.clock().plus;
        let start = self.shared("start", start);
        let width = self.shared("width", width);
        let dt = Expr::Num(self.l.time_step);
        let width = if_(&bin(Op::Eq, &width, &Expr::Num(0.0)), &dt, &width);
        let on = bin(Op::And, &bin(Op::Gt, &tp, &start), &bin(Op::Lt, &tp, &bin(Op::Add, &start, &width)));
        if_(&on, &Expr::Num(1.0), &Expr::Num(0.0))
    }

    /// `PULSE TRAIN(start, width, between, end)`: 1 from `start < Time + TIME STEP/2` through the step at
    /// `end` while the time since start, modulo `between`, is below the width (at least one TIME STEP), or
    /// throughout when `between` is below the width (`between` = 0 included); else 0.
    fn pulse_train(&mut self, start: &Expr, width: &Expr, between: &Expr, end: &Expr) -> Expr {
        let tp = self.clock().plus;
        let start = self.shared("start", start);
        let dt = Expr::Num(self.l.time_step);
        let width = self.shared("width", &bin(Op::Max, width, &dt));
        let between = self.shared("between", between);
        let last = bin(Op::Add, end, &dt);
        let inside = bin(Op::And, &bin(Op::Gt, &tp, &start), &bin(Op::Lt, &tp, &last));
        let phase = bin(Op::Modulo, &bin(Op::Sub, &tp, &start), &between);
        let pulsing = bin(Op::Or, &bin(Op::Lt, &between, &width), &bin(Op::Lt, &phase, &width));
        if_(&bin(Op::And, &inside, &pulsing), &Expr::Num(1.0), &Expr::Num(0.0))
    }

    /// `RAMP(slope, start, end)`: 0 until `Time > start`, then `slope × (Time - start)` until `Time < end`
    /// fails, then `slope × (end - start)` (Vensim's definition, on the step's time).
    fn ramp(&mut self, slope: &Expr, start: &Expr, end: &Expr) -> Expr {
        let time = self.clock().time;
        let slope = self.shared("slope", slope);
        let start = self.shared("start", start);
        let end = self.shared("end", end);
        let rising = bin(Op::Mul, &slope, &bin(Op::Sub, &time, &start));
        let top = bin(Op::Mul, &slope, &bin(Op::Sub, &end, &start));
        let after = if_(&bin(Op::Lt, &time, &end), &rising, &top);
        if_(&bin(Op::Gt, &time, &start), &after, &Expr::Num(0.0))
    }

    /// DELAY1(I) and DELAY3(I): `order` stocks `LV_k` (initially `initial × DL`, DL = delay time / order),
    /// rates `RT_k = LV_k / DL`, `LV_1' = input - RT_1`, `LV_k' = RT_{k-1} - RT_k`; the value is the last
    /// rate. The delay time is read at every step.
    fn material_delay(&mut self, input: &Expr, delay: &Expr, initial: &Expr, order: usize) -> Expr {
        let dl = self.stage_time(delay, order);
        self.delay_chain(input, &vec![dl; order], initial, Update::Integrate)
    }

    /// A stage's time in a chain of `order` stages over `time`: `time / order`.
    fn stage_time(&mut self, time: &Expr, order: usize) -> Expr {
        let dl = if order == 1 { time.clone() } else { bin(Op::Div, time, &Expr::Num(order as f64)) };
        self.shared("stage time", &dl)
    }

    /// The stocks and rates of a material delay whose stage k empties with the time `stage_times[k]`: stocks
    /// integrated by the runner, or assigned their Euler step (`kind`).
    fn delay_chain(&mut self, input: &Expr, stage_times: &[Expr], initial: &Expr, kind: Update) -> Expr {
        let initial = self.shared("initial value", initial);
        let input = self.shared("input", input);
        let mut inflow = input;
        for (k, dl) in stage_times.iter().enumerate() {
            let stock = self.state(&format!("stock {}", k + 1), bin(Op::Mul, &initial, dl), kind);
            let rate = self.var(&format!("rate {}", k + 1), bin(Op::Div, &Expr::State(stock), dl));
            let net = bin(Op::Sub, &inflow, &rate);
            let update = match kind {
                Update::Integrate => net,
                Update::Assign => bin(Op::Add, &Expr::State(stock), &bin(Op::Mul, &net, &Expr::Num(self.l.time_step))),
            };
            self.set_update(stock, update);
            inflow = rate;
        }
        inflow
    }

    /// SMOOTH(I), SMOOTH3(I), SMOOTH N: `order` stocks starting at `initial`, each adjusting towards the
    /// one before (the first towards the input) over `smooth time / order`; the value is the last stock.
    fn smooth(&mut self, input: &Expr, time: &Expr, initial: &Expr, order: usize) -> Expr {
        let dl = self.stage_time(time, order);
        let initial = self.shared("initial value", initial);
        let mut target = self.shared("input", input);
        for k in 0..order {
            let stock = self.state(&format!("stock {}", k + 1), initial.clone(), Update::Integrate);
            self.set_update(stock, bin(Op::Div, &bin(Op::Sub, &target, &Expr::State(stock)), &dl));
            target = Expr::State(stock);
        }
        target
    }

    /// `TREND(input, average time, initial trend)`: a first-order average AV of the input, initially
    /// `input / (1 + initial trend × average time)`; the value is `ZIDZ(input - AV, average time × |AV|)`.
    fn trend(&mut self, input: &Expr, time: &Expr, initial_trend: &Expr) -> Expr {
        let input = self.shared("input", input);
        let time = self.shared("average time", time);
        let divisor = bin(Op::Add, &Expr::Num(1.0), &bin(Op::Mul, initial_trend, &time));
        let av = self.average(&input, &time, bin(Op::Div, &input, &divisor));
        let scale = bin(Op::Mul, &time, &un(Op::Abs, &av));
        self.xidz(&bin(Op::Sub, &input, &av), &scale, &Expr::Num(0.0))
    }

    /// `FORECAST(input, average time, horizon)`: a first-order average AV of the input (initially the
    /// input); the value is `input × (1 + ZIDZ(input - AV, average time × AV) × horizon)`.
    fn forecast(&mut self, input: &Expr, time: &Expr, horizon: &Expr) -> Expr {
        let input = self.shared("input", input);
        let time = self.shared("average time", time);
        let av = self.average(&input, &time, input.clone());
        let trend = self.xidz(&bin(Op::Sub, &input, &av), &bin(Op::Mul, &time, &av), &Expr::Num(0.0));
        bin(Op::Mul, &input, &bin(Op::Add, &Expr::Num(1.0), &bin(Op::Mul, &trend, horizon)))
    }

    /// The stock AV of TREND and FORECAST: `AV' = (input - AV) / time`.
    fn average(&mut self, input: &Expr, time: &Expr, initial: Expr) -> Expr {
        let av = self.state("average", initial, Update::Integrate);
        self.set_update(av, bin(Op::Div, &bin(Op::Sub, input, &Expr::State(av)), time));
        Expr::State(av)
    }

    /// `NPV(stream, rate, initial, factor)`, as Vensim defines it: a discount factor DF = INTEG(-DF × rate /
    /// (1 + rate × TIME STEP), 1) and ACCUM = INTEG(stream × DF, initial); the value is `(ACCUM + stream ×
    /// TIME STEP × DF) × factor` (the current step's stream undiscounted by the step).
    fn npv(&mut self, stream: &Expr, rate: &Expr, initial: &Expr, factor: &Expr) -> Expr {
        let stream = self.shared("stream", stream);
        let rate = self.shared("discount rate", rate);
        let dt = Expr::Num(self.l.time_step);
        let df = self.state("discount factor", Expr::Num(1.0), Update::Integrate);
        let per_step = bin(Op::Add, &Expr::Num(1.0), &bin(Op::Mul, &rate, &dt));
        let decay = bin(Op::Div, &bin(Op::Mul, &un(Op::Neg, &Expr::State(df)), &rate), &per_step);
        self.set_update(df, decay);
        let accum = self.state("accumulated value", initial.clone(), Update::Integrate);
        self.set_update(accum, bin(Op::Mul, &stream, &Expr::State(df)));
        let current = bin(Op::Mul, &bin(Op::Mul, &stream, &dt), &Expr::State(df));
        bin(Op::Mul, &bin(Op::Add, &Expr::State(accum), &current), factor)
    }

    /// `SAMPLE IF TRUE(condition, input, initial)`: the input while the condition holds, else the value
    /// held from the last step (initially `initial`). One assigned state holds the previous value.
    fn sample_if_true(&mut self, condition: &Expr, input: &Expr, initial: &Expr) -> Expr {
        let held = self.state("held value", initial.clone(), Update::Assign);
        let value = self.var("value", if_(condition, input, &Expr::State(held)));
        self.set_update(held, value.clone());
        value
    }

    /// `RANDOM UNIFORM(min, max, seed)`: `min + (max - min) × u`, u uniform on [0, 1).
    fn random_uniform(&mut self, min: &Expr, max: &Expr) -> Expr {
        let min = self.shared("min", min);
        let u = Expr::Draw(DrawKind::Uniform);
        self.var("draw", bin(Op::Add, &min, &bin(Op::Mul, &bin(Op::Sub, max, &min), &u)))
    }

    /// `RANDOM EXPONENTIAL(min, max, shift, stretch, seed)`: `shift + stretch × E`, E exponential with mean
    /// 1, truncated to [min, max] exactly by inverting the truncated distribution function:
    /// from `lo = max(min, shift)`, `lo - stretch × ln(1 - u (1 - exp(-(max - lo) / stretch)))`. NaN when
    /// stretch ≤ 0 or no value lies in [min, max].
    fn random_exponential(&mut self, min: &Expr, max: &Expr, shift: &Expr, stretch: &Expr) -> Expr {
        let stretch = self.shared("stretch", stretch);
        let lo = self.shared("lower end", &bin(Op::Max, min, shift));
        let width = self.shared("width", &bin(Op::Div, &bin(Op::Sub, max, &lo), &stretch));
        let mass = bin(Op::Sub, &Expr::Num(1.0), &un(Op::Exp, &un(Op::Neg, &width)));
        let u = Expr::Draw(DrawKind::Uniform);
        let tail = un(Op::Log, &bin(Op::Sub, &Expr::Num(1.0), &bin(Op::Mul, &u, &mass)));
        let value = bin(Op::Sub, &lo, &bin(Op::Mul, &stretch, &tail));
        let valid = bin(Op::And, &bin(Op::Gt, &stretch, &Expr::Num(0.0)), &bin(Op::Ge, &width, &Expr::Num(0.0)));
        self.var("draw", if_(&valid, &value, &Expr::Num(f64::NAN)))
    }

    /// `RANDOM NORMAL(min, max, mean, sd, seed)`: a normal of that mean and standard deviation truncated to
    /// [min, max] (Vensim redraws outside them), drawn exactly by inverting its distribution function: with
    /// `pa`, `pb` the standard normal's Φ at the bounds, `mean + sd × Φ⁻¹(pa + u (pb - pa))`. NaN when sd ≤ 0
    /// or no value lies in [min, max].
    fn random_normal(&mut self, min: &Expr, max: &Expr, mean: &Expr, sd: &Expr) -> Expr {
        let mean = self.shared("mean", mean);
        let sd = self.shared("standard deviation", sd);
        let standard = |bound: &Expr| bin(Op::Div, &bin(Op::Sub, bound, &mean), &sd);
        let pa = self.phi(&standard(min));
        let pb = self.phi(&standard(max));
        let pa = self.shared("mass below min", &pa);
        let pb = self.shared("mass below max", &pb);
        let u = Expr::Draw(DrawKind::Uniform);
        let p = bin(Op::Add, &pa, &bin(Op::Mul, &u, &bin(Op::Sub, &pb, &pa)));
        // p = 0 (u = 0 with nothing below min) has no finite quantile: the smallest positive double has.
        let p = self.shared("probability", &bin(Op::Max, &p, &Expr::Num(f64::MIN_POSITIVE)));
        let z = self.normal_quantile(&p);
        let value = bin(Op::Add, &mean, &bin(Op::Mul, &sd, &z));
        let valid = bin(Op::And, &bin(Op::Gt, &sd, &Expr::Num(0.0)), &bin(Op::Lt, &pa, &pb));
        self.var("draw", if_(&valid, &value, &Expr::Num(f64::NAN)))
    }

    /// `RANDOM TRIANGULAR(min, max, start, peak, end, seed)`: the triangular distribution on [start, end]
    /// with its mode at peak, truncated to [min, max], drawn exactly by inverting its distribution function
    /// F: `F⁻¹(F(lo) + u (F(hi) - F(lo)))` with lo, hi the bounds clamped to [start, end]. NaN unless
    /// start ≤ peak ≤ end, start < end and some value lies in [min, max].
    fn random_triangular(&mut self, min: &Expr, max: &Expr, start: &Expr, peak: &Expr, end: &Expr) -> Expr {
        let start = self.shared("start", start);
        let peak = self.shared("peak", peak);
        let end = self.shared("end", end);
        let left =
            self.shared("rising width", &bin(Op::Mul, &bin(Op::Sub, &end, &start), &bin(Op::Sub, &peak, &start)));
        let right =
            self.shared("falling width", &bin(Op::Mul, &bin(Op::Sub, &end, &start), &bin(Op::Sub, &end, &peak)));
        let one = Expr::Num(1.0);
        let zero = Expr::Num(0.0);
        let square = |x: &Expr| bin(Op::Mul, x, x);
        // F(v) for v in [start, end]: (v - start)² / left up to the peak, 1 - (end - v)² / right after it.
        let cdf = |s: &mut Self, bound: &Expr| {
            let v = bin(Op::Min, &bin(Op::Max, bound, &start), &end);
            let v = s.shared("bound", &v);
            let rising =
                if_(&bin(Op::Gt, &left, &zero), &bin(Op::Div, &square(&bin(Op::Sub, &v, &start)), &left), &zero);
            let falling = bin(Op::Sub, &one, &bin(Op::Div, &square(&bin(Op::Sub, &end, &v)), &right));
            s.shared("mass below", &if_(&bin(Op::Le, &v, &peak), &rising, &falling))
        };
        let lo = cdf(self, min);
        let hi = cdf(self, max);
        let u = Expr::Draw(DrawKind::Uniform);
        let p = self.shared("probability", &bin(Op::Add, &lo, &bin(Op::Mul, &u, &bin(Op::Sub, &hi, &lo))));
        let mode_mass = bin(Op::Div, &bin(Op::Sub, &peak, &start), &bin(Op::Sub, &end, &start));
        let rising = bin(Op::Add, &start, &un(Op::Sqrt, &bin(Op::Mul, &p, &left)));
        let falling = bin(Op::Sub, &end, &un(Op::Sqrt, &bin(Op::Mul, &bin(Op::Sub, &one, &p), &right)));
        let value = if_(&bin(Op::Lt, &p, &mode_mass), &rising, &falling);
        let ordered = bin(Op::And, &bin(Op::Le, &start, &peak), &bin(Op::Le, &peak, &end));
        let valid = bin(Op::And, &bin(Op::And, &ordered, &bin(Op::Lt, &start, &end)), &bin(Op::Lt, &lo, &hi));
        self.var("draw", if_(&valid, &value, &Expr::Num(f64::NAN)))
    }

    /// The standard normal distribution function Φ(x) = erfc(-x/√2) / 2, to about 1e-13 relative: erfc(y) is
    /// `1 - erf(y)` by erf's Taylor series (35 terms) for |y| < 2 and Laplace's continued fraction (80 levels)
    /// beyond, where the tail must keep its relative precision.
    fn phi(&mut self, x: &Expr) -> Expr {
        let y = self.shared("erfc argument", &bin(Op::Div, &un(Op::Neg, x), &Expr::Num(std::f64::consts::SQRT_2)));
        let a = self.shared("|erfc argument|", &un(Op::Abs, &y));
        // Taylor: erf(y) = 2/√π · y · Σ (-1)^n y^(2n) / (n! (2n + 1)), summed from the smallest term.
        let y2 = bin(Op::Mul, &y, &y);
        let y2 = self.shared("erfc argument squared", &y2);
        let mut sum = Expr::Num(0.0);
        let mut factorial = (1..=35u32).map(f64::from).product::<f64>();
        for n in (0..=35u32).rev() {
            let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
            let c = sign / (factorial * f64::from(2 * n + 1));
            sum = bin(Op::Add, &bin(Op::Mul, &sum, &y2), &Expr::Num(c));
            factorial /= f64::from(n.max(1));
        }
        let erf = bin(Op::Mul, &Expr::Num(std::f64::consts::FRAC_2_SQRT_PI), &bin(Op::Mul, &y, &sum));
        let near = bin(Op::Sub, &Expr::Num(1.0), &erf);
        // Continued fraction: erfc(a) = e^(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))), a ≥ 2.
        let mut f = a.clone();
        for k in (1..=80u32).rev() {
            f = bin(Op::Add, &a, &bin(Op::Div, &Expr::Num(f64::from(k) / 2.0), &f));
        }
        let scale = bin(Op::Mul, &un(Op::Exp, &un(Op::Neg, &bin(Op::Mul, &a, &a))), &Expr::Num(FRAC_1_SQRT_PI));
        let tail = self.shared("erfc tail", &bin(Op::Div, &scale, &f));
        let far = if_(&bin(Op::Ge, &y, &Expr::Num(0.0)), &tail, &bin(Op::Sub, &Expr::Num(2.0), &tail));
        let erfc = if_(&bin(Op::Lt, &a, &Expr::Num(2.0)), &near, &far);
        bin(Op::Mul, &Expr::Num(0.5), &erfc)
    }

    /// The standard normal quantile Φ⁻¹(p), 0 < p < 1: Acklam's rational approximation (relative error
    /// below 1.2e-9) refined by one Halley step on [`Builder::phi`].
    fn normal_quantile(&mut self, p: &Expr) -> Expr {
        const A: [f64; 6] = [
            -3.969683028665376e1,
            2.209460984245205e2,
            -2.759285104469687e2,
            1.38357751867269e2,
            -3.066479806614716e1,
            2.506628277459239,
        ];
        const B: [f64; 5] = [
            -5.447609879822406e1,
            1.615858368580409e2,
            -1.556989798598866e2,
            6.680131188771972e1,
            -1.328068155288572e1,
        ];
        const C: [f64; 6] = [
            -7.784894002430293e-3,
            -3.223964580411365e-1,
            -2.400758277161838,
            -2.549732539343734,
            4.374664141464968,
            2.938163982698783,
        ];
        const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
        const LOW: f64 = 0.02425;
        let horner = |cs: &[f64], x: &Expr| {
            cs.iter().fold(Expr::Num(0.0), |s, &c| bin(Op::Add, &bin(Op::Mul, &s, x), &Expr::Num(c)))
        };
        let one = Expr::Num(1.0);
        // The tails: q = √(-2 ln p) below LOW, √(-2 ln(1 - p)) above 1 - LOW.
        let tail = |s: &mut Self, mass: Expr, sign: f64| {
            let q = bin(Op::Mul, &Expr::Num(-2.0), &un(Op::Log, &mass));
            let q = s.shared("tail", &un(Op::Sqrt, &q));
            let den = bin(Op::Add, &bin(Op::Mul, &horner(&D, &q), &q), &one);
            bin(Op::Mul, &Expr::Num(sign), &bin(Op::Div, &horner(&C, &q), &den))
        };
        let low = tail(self, p.clone(), 1.0);
        let high = tail(self, bin(Op::Sub, &one, p), -1.0);
        let q = self.shared("centred", &bin(Op::Sub, p, &Expr::Num(0.5)));
        let r = self.shared("centred squared", &bin(Op::Mul, &q, &q));
        let den = bin(Op::Add, &bin(Op::Mul, &horner(&B, &r), &r), &one);
        let central = bin(Op::Div, &bin(Op::Mul, &horner(&A, &r), &q), &den);
        let upper = if_(&bin(Op::Gt, p, &Expr::Num(1.0 - LOW)), &high, &central);
        let x = self.shared("quantile estimate", &if_(&bin(Op::Lt, p, &Expr::Num(LOW)), &low, &upper));
        // Halley: e = Φ(x) - p, u = e √(2π) e^(x²/2), x - u / (1 + x u / 2).
        let e = bin(Op::Sub, &self.phi(&x), p);
        let density = un(Op::Exp, &bin(Op::Mul, &bin(Op::Mul, &x, &x), &Expr::Num(0.5)));
        let u = bin(Op::Mul, &bin(Op::Mul, &e, &Expr::Num((2.0 * std::f64::consts::PI).sqrt())), &density);
        let u = self.shared("Halley step", &u);
        let step = bin(Op::Div, &u, &bin(Op::Add, &one, &bin(Op::Mul, &bin(Op::Mul, &x, &u), &Expr::Num(0.5))));
        bin(Op::Sub, &x, &step)
    }

    /// A structure built by [`finish`]: its value is a placeholder auxiliary until then.
    fn defer(&mut self, kind: DeferredKind, args: Vec<Expr>) -> Expr {
        let out = self.l.system.vars.len();
        let value = self.var("value", Expr::Num(f64::NAN));
        self.l.deferred.push(Deferred { out, kind, args, label: self.label.to_string() });
        value
    }
}

/// Build the structures whose size is a value at the initial time (DELAY N and SMOOTH N orders, DELAY FIXED
/// pipelines), once every equation is lowered: call it before compiling the system. One whose size reads
/// another's value waits until that one is built.
pub(crate) fn finish(l: &mut Lowering) -> Result<(), FinishError> {
    while !l.deferred.is_empty() {
        let mut built = false;
        let mut i = 0;
        while i < l.deferred.len() {
            // It stays listed while it is built: reading its own value is reading a pending one.
            let Some(d) = l.deferred.get(i).cloned() else { break };
            match build_deferred(l, &d) {
                Ok(value) => {
                    if let Some(v) = l.system.vars.get_mut(d.out) {
                        v.value = value;
                    }
                    l.deferred.remove(i);
                    built = true;
                }
                Err(Unknown::Pending) => i += 1,
                Err(Unknown::Why(message)) => return Err(FinishError { label: d.label, message }),
            }
        }
        if !built {
            let d = l.deferred.remove(0);
            let message = format!("the size of {} depends on its own value", d.kind.name());
            return Err(FinishError { label: d.label, message });
        }
    }
    Ok(())
}

/// Why a value is not known when the model is compiled.
enum Unknown {
    /// It reads a deferred structure not built yet.
    Pending,
    Why(String),
}

impl DeferredKind {
    fn name(self) -> &'static str {
        match self {
            DeferredKind::DelayN => "DELAY N",
            DeferredKind::SmoothN => "SMOOTH N",
            DeferredKind::DelayFixed => "DELAY FIXED",
        }
    }
}

fn build_deferred(l: &mut Lowering, d: &Deferred) -> Result<Expr, Unknown> {
    let name = d.kind.name();
    let what = if let DeferredKind::DelayFixed = d.kind { "delay time" } else { "order" };
    let [input, time, initial, rest @ ..] = d.args.as_slice() else {
        return Err(Unknown::Why(format!("{name} takes {} arguments", d.args.len())));
    };
    let why = |message: String| Unknown::Why(format!("the {what} of {name} {message}"));
    let dt = l.time_step;
    match d.kind {
        DeferredKind::DelayFixed => {
            let (delay, params) = fold_initial(l, time, why)?;
            if delay.is_nan() {
                return Err(Unknown::Why(format!("the {what} of {name} is NaN at the initial time")));
            }
            // Vensim's pipeline has one slot per TIME STEP of delay, at least one (halves round up).
            let slots = ((delay / dt).max(1.0) + SMALL).round();
            let pipeline = format!("the pipeline of {name} in {} ({slots:?} slots)", d.label);
            check_allocation(&pipeline, slots, 256.0).map_err(Unknown::Why)?;
            structural(l, params, &format!("the {what} of {name} in {}", d.label));
            Ok(Builder { l, label: &d.label, name }.pipeline(input, initial, slots as usize))
        }
        DeferredKind::DelayN | DeferredKind::SmoothN => {
            let Some(order_expr) = rest.first() else {
                return Err(Unknown::Why(format!("{name} takes 4 arguments")));
            };
            let (order, params) = fold_initial(l, order_expr, why)?;
            if !(order >= 1.0 && order.fract() == 0.0) {
                let message = format!("the {what} of {name} must be a whole number of at least 1, not {order:?}");
                return Err(Unknown::Why(message));
            }
            let stocks = format!("the stocks of {name} in {} (order {order:?})", d.label);
            check_allocation(&stocks, order, 256.0).map_err(Unknown::Why)?;
            structural(l, params, &format!("the {what} of {name} in {}", d.label));
            let order = order as usize;
            let fits = if let DeferredKind::DelayN = d.kind {
                // Vensim lowers the order until order × TIME STEP fits in the initial delay time.
                let delay_why = |message: String| Unknown::Why(format!("the delay time of {name} {message}"));
                let (delay, delay_params) = fold_initial(l, time, delay_why)?;
                structural(l, delay_params, &format!("the delay time of {name} in {}", d.label));
                (1..=order).rev().find(|&n| n as f64 * dt <= delay).unwrap_or(1)
            } else {
                order
            };
            let mut b = Builder { l, label: &d.label, name };
            Ok(match d.kind {
                DeferredKind::SmoothN => b.smooth(input, time, initial, order),
                _ => b.delay_n(input, time, initial, fits),
            })
        }
    }
}

/// Record that the model's structure depends on these parameters' values.
fn structural(l: &mut Lowering, params: Vec<usize>, why: &str) {
    for p in params {
        if !l.structural.iter().any(|(q, _)| *q == p) {
            l.structural.push((p, why.to_string()));
        }
    }
}

impl Builder<'_, '_> {
    /// DELAY FIXED: `slots` assigned states, each taking the previous one's value at every step (the first
    /// the input's), all starting at `initial`; the value is the last slot.
    fn pipeline(&mut self, input: &Expr, initial: &Expr, slots: usize) -> Expr {
        let initial = self.shared("initial value", initial);
        let mut previous = self.shared("input", input);
        for k in 0..slots {
            let slot = self.state(&format!("slot {}", k + 1), initial.clone(), Update::Assign);
            self.set_update(slot, previous);
            previous = Expr::State(slot);
        }
        previous
    }

    /// DELAY N: a material delay of `order` stages in which stage k empties with the delay time of k - 1
    /// steps before (Vensim: "the output depends on delay time from the previous Time Step"): assigned
    /// states carry the older delay times down the chain, unless the delay time is constant. Vensim treats
    /// it as a discrete delay, constant through a step whatever the integration method, so its stocks are
    /// assigned states stepped by Euler (the runner's Euler step, operation for operation).
    fn delay_n(&mut self, input: &Expr, time: &Expr, initial: &Expr, order: usize) -> Expr {
        let stage_times = if is_static(time) {
            vec![self.stage_time(time, order); order]
        } else {
            let time = self.shared("delay time", time);
            let mut stage_times = vec![self.stage_time(&time, order)];
            let mut older = time;
            for k in 1..order {
                let past = self.state(&format!("delay time {k} steps before"), older.clone(), Update::Assign);
                self.set_update(past, older);
                older = Expr::State(past);
                stage_times.push(self.stage_time(&older, order));
            }
            stage_times
        };
        self.delay_chain(input, &stage_times, initial, Update::Assign)
    }
}

/// How deep [`fold_initial`] follows definitions before giving up (a guard for the stack, not a limit a
/// model meets).
const MAX_FOLD_DEPTH: usize = 200;

/// The value of `e` at the initial time with every parameter at its default, and the parameters it read;
/// or why it has none (`why` turns "depends on a random draw" into the caller's message).
fn fold_initial(l: &Lowering, e: &Expr, why: impl Fn(String) -> Unknown) -> Result<(f64, Vec<usize>), Unknown> {
    let pending: Vec<usize> = l.deferred.iter().map(|d| d.out).collect();
    let mut f = Fold { system: l.system, pending: &pending, params: Vec::new(), path: Vec::new() };
    match f.eval(e) {
        Ok(value) => Ok((value, f.params)),
        Err(Unknown::Why(message)) => Err(why(message)),
        Err(Unknown::Pending) => Err(Unknown::Pending),
    }
}

struct Fold<'s> {
    system: &'s System,
    /// The outputs of deferred structures not built yet.
    pending: &'s [usize],
    params: Vec<usize>,
    /// The auxiliaries and states being evaluated (`true`: a state), to find a cycle.
    path: Vec<(bool, usize)>,
}

impl Fold<'_> {
    fn eval(&mut self, e: &Expr) -> Result<f64, Unknown> {
        let why = |message: &str| Err(Unknown::Why(message.to_string()));
        match e {
            Expr::Num(x) => Ok(*x),
            Expr::Time => Ok(self.system.initial_time),
            Expr::Param(k) => {
                let Some((_, value)) = self.system.params.get(*k) else {
                    return why("refers to an unknown parameter");
                };
                if !self.params.contains(k) {
                    self.params.push(*k);
                }
                Ok(*value)
            }
            Expr::Var(k) if self.pending.contains(k) => Err(Unknown::Pending),
            Expr::Var(k) => match self.system.vars.get(*k) {
                Some(v) => self.enter((false, *k), v.initial.as_ref().unwrap_or(&v.value)),
                None => why("refers to an unknown variable"),
            },
            Expr::State(k) => match self.system.states.get(*k) {
                Some(s) => self.enter((true, *k), &s.initial),
                None => why("refers to an unknown stock"),
            },
            Expr::Initial(inner) => self.eval(inner),
            Expr::Op(op, args) => {
                let mut x = [0.0; 3];
                for (slot, arg) in x.iter_mut().zip(args) {
                    *slot = self.eval(arg)?;
                }
                // Unary operations repeat their operand, as the register code does.
                if args.len() == 1 {
                    x = [x[0]; 3];
                }
                Ok(op.apply(x[0], x[1], x[2], 0.0))
            }
            Expr::Lookup { table, mode, x } => {
                let x = self.eval(x)?;
                Ok(self.table(*table)?.read(*mode, x))
            }
            Expr::LookupArea { table, from, to } => {
                let (from, to) = (self.eval(from)?, self.eval(to)?);
                Ok(self.table(*table)?.area(from, to))
            }
            Expr::Draw(_) => why("must be known when the model is compiled, and depends on a random draw"),
        }
    }

    /// A table as the program reads it.
    fn table(&self, table: usize) -> Result<LookupTable, Unknown> {
        let t = self.system.tables.get(table).ok_or_else(|| Unknown::Why("refers to an unknown lookup".into()))?;
        LookupTable::new(&t.points).map_err(|e| Unknown::Why(format!("reads a lookup that is wrong: {e}")))
    }

    fn enter(&mut self, item: (bool, usize), definition: &Expr) -> Result<f64, Unknown> {
        if self.path.contains(&item) {
            let message = "must be known when the model is compiled, and its definition is circular";
            return Err(Unknown::Why(message.into()));
        }
        if self.path.len() >= MAX_FOLD_DEPTH {
            return Err(Unknown::Why(format!("depends on a chain of more than {MAX_FOLD_DEPTH} definitions")));
        }
        self.path.push(item);
        let value = self.eval(definition);
        self.path.pop();
        value
    }
}

#[cfg(test)]
mod tests {
    //! Each built-in on the models of the SDXorg test-models suite that use it, rebuilt here through
    //! `lower_call`, compiled by `compile_system` and stepped with Euler; the expected rows are Vensim's own
    //! output (`tests/<model>/output.tab` or `.csv` of test-models, named at each test), printed by Vensim to
    //! six significant digits.

    use super::*;
    use parfit_core::math;
    use parfit_expr::system::{Sensitivities, compile_system};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A model under construction.
    struct Model {
        system: System,
        final_time: f64,
        dt: f64,
    }

    impl Model {
        fn new(final_time: f64, dt: f64) -> Self {
            Model { system: System { initial_time: 0.0, ..Default::default() }, final_time, dt }
        }

        /// Lower the calls `build` makes, then finish.
        fn build(&mut self, build: impl FnOnce(&mut Lowering)) -> Vec<(usize, String)> {
            let mut l = Lowering::new(&mut self.system, 0.0, self.dt);
            build(&mut l);
            finish(&mut l).expect("the deferred structures build");
            l.structural
        }

        /// Euler steps from time 0 to `final_time`: the outputs at every step.
        fn run(&self) -> Vec<Vec<f64>> {
            self.run_with_draws(|_, _| 0.5)
        }

        /// As [`Model::run`], the random draw of slot `k` at step `n` being `draw(n, k)`.
        fn run_with_draws(&self, draw: impl Fn(usize, usize) -> f64) -> Vec<Vec<f64>> {
            let compiled = compile_system(&self.system, Sensitivities::Off).expect("the system compiles");
            let p = &compiled.program;
            let mut regs = vec![0.0; p.n_regs];
            let params: Vec<f64> = self.system.params.iter().map(|(_, v)| *v).collect();
            let mut y = vec![0.0; p.n_states];
            let mut f = vec![0.0; p.n_states];
            let mut out = vec![0.0; self.system.outputs.len()];
            let steps = (self.final_time / self.dt).round() as usize;
            let mut rows = Vec::new();
            p.start(&mut regs, &params, &mut y);
            for n in 0..=steps {
                for k in 0..p.draws.len() {
                    regs[p.draw_reg(k)] = draw(n, k);
                }
                let t = n as f64 * self.dt;
                p.outputs(&mut regs, t, &y, &mut out);
                rows.push(out.clone());
                p.rhs(&mut regs, t, &y, &mut f);
                for ((y, f), s) in y.iter_mut().zip(&f).zip(&self.system.states) {
                    *y = match s.kind {
                        Update::Integrate => *y + self.dt * f,
                        Update::Assign => *f,
                    };
                }
            }
            rows
        }
    }

    fn num(x: f64) -> Expr {
        Expr::Num(x)
    }

    fn add(a: Expr, b: Expr) -> Expr {
        Expr::Op(Op::Add, vec![a, b])
    }

    fn mul(a: Expr, b: Expr) -> Expr {
        Expr::Op(Op::Mul, vec![a, b])
    }

    fn call(l: &mut Lowering, name: &str, args: Vec<Expr>) -> Expr {
        lower_call(l, name, args.into_iter().map(Arg::Value).collect(), "x").expect("the call lowers")
    }

    fn call_err(l: &mut Lowering, name: &str, args: Vec<Arg>) -> String {
        lower_call(l, name, args, "x").expect_err("the call is refused")
    }

    fn aux(l: &mut Lowering, name: &str, value: Expr) -> Expr {
        l.system.vars.push(Var { name: name.into(), value, initial: None });
        Expr::Var(l.system.vars.len() - 1)
    }

    fn param(l: &mut Lowering, name: &str, value: f64) -> Expr {
        l.system.params.push((name.into(), value));
        Expr::Param(l.system.params.len() - 1)
    }

    fn output(l: &mut Lowering, name: &str, value: Expr) {
        l.system.outputs.push((name.into(), value));
    }

    /// Compare the rows `(time, outputs…)` with the simulation, to 1e-5 relative or `abs`, whichever is
    /// larger (Vensim's six significant digits; coarser where a reference prints fewer).
    fn check(model: &Model, rows: &[Vec<f64>], expected: &[&[f64]], abs: f64) {
        for want in expected {
            let n = (want[0] / model.dt).round() as usize;
            for (k, (&got, &want_k)) in rows[n].iter().zip(&want[1..]).enumerate() {
                let tol = (1e-5 * want_k.abs()).max(abs);
                assert!(
                    (got - want_k).abs() <= tol,
                    "output {} ({}) at time {}: {got}, Vensim {want_k}",
                    k,
                    model.system.outputs[k].0,
                    want[0]
                );
            }
        }
    }

    #[test]
    fn delays_follow_vensim_with_a_changing_delay_time_and_order() {
        // test-models tests/delays: Delay Time = 4 + STEP(2, 15), Input = -1 + STEP(5, 5), Initial Value = 6,
        // Order Variable = 2 + STEP(1, 10) (DELAY N reads it at the initial time only), TIME STEP 1.
        let mut m = Model::new(30.0, 1.0);
        m.build(|l| {
            let step = call(l, "STEP", vec![num(2.0), num(15.0)]);
            let delay = aux(l, "Delay Time", add(num(4.0), step));
            let step = call(l, "STEP", vec![num(5.0), num(5.0)]);
            let input = aux(l, "Input", add(num(-1.0), step));
            let init = param(l, "Initial Value", 6.0);
            let step = call(l, "STEP", vec![num(1.0), num(10.0)]);
            let order = aux(l, "Order Variable", add(num(2.0), step));
            let d1 = call(l, "DELAY1", vec![input.clone(), delay.clone()]);
            let d1i = call(l, "DELAY1I", vec![input.clone(), delay.clone(), init.clone()]);
            let d3 = call(l, "DELAY3", vec![input.clone(), delay.clone()]);
            let d3i = call(l, "DELAY3I", vec![input.clone(), delay.clone(), init.clone()]);
            let dn = call(l, "DELAY N", vec![input, delay, init, order]);
            for (name, e) in [("d1", d1), ("d1i", d1i), ("d3", d3), ("d3i", d3i), ("dn", dn)] {
                output(l, name, e);
            }
        });
        let expected: &[&[f64]] = &[
            // time, DELAY1, DELAY1I, DELAY3, DELAY3I, DELAY N
            &[0.0, -1.0, 6.0, -1.0, 6.0, 6.0],
            &[1.0, -1.0, 4.25, -1.0, 6.0, 6.0],
            &[2.0, -1.0, 2.9375, -1.0, 6.0, 4.25],
            &[3.0, -1.0, 1.95312, -1.0, 3.04688, 2.5],
            &[5.0, -1.0, 0.661133, -1.0, -0.275391, 0.3125],
            &[6.0, 0.25, 1.49585, -1.0, -0.736816, -0.234375],
            &[8.0, 1.89062, 2.59142, 1.10938, 1.13896, 1.74609],
            &[14.0, 3.62458, 3.7493, 3.99329, 3.99331, 3.90875],
            &[15.0, 2.47896, 2.54132, 2.66528, 2.66528, 3.94971],
            &[16.0, 2.73246, 2.78443, 2.66592, 2.66593, 2.20442],
            &[17.0, 2.94372, 2.98703, 2.66627, 2.66627, 2.50596],
            &[20.0, 3.38873, 3.41379, 3.33327, 3.33327, 3.29333],
            &[30.0, 3.90128, 3.90532, 3.99508, 3.99508, 3.97249],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn delay_fixed_is_a_pipeline_of_whole_time_steps_read_at_the_initial_time() {
        // test-models tests/delay_fixed: DELAY FIXED(Time^2, delay, initial value), TIME STEP 1; the delays
        // 0.5, 1.2, 3.7 round to 1, 1, 4 slots, 2 + 2 SIN(Time) and Time/2 are read at time 0 (2 and 0).
        let mut m = Model::new(20.0, 1.0);
        let structural = m.build(|l| {
            let squared = aux(l, "time squared", Expr::Op(Op::Pow, vec![Expr::Time, num(2.0)]));
            let sin = call(l, "SIN", vec![Expr::Time]);
            let wavy = add(num(2.0), mul(num(2.0), sin));
            let half = Expr::Op(Op::Div, vec![Expr::Time, num(2.0)]);
            let p = param(l, "delay", 1.5);
            for (k, (delay, init)) in [
                (num(0.5), -10.0),
                (num(1.0), 10.0),
                (num(1.2), -4.0),
                (p, 20.0),
                (num(2.0), -3.0),
                (num(3.7), 4.0),
                (wavy, 7.0),
                (half, 4.0),
            ]
            .into_iter()
            .enumerate()
            {
                let d = call(l, "DELAY FIXED", vec![squared.clone(), delay, num(init)]);
                output(l, &format!("DF{k}"), d);
            }
        });
        assert_eq!(structural, vec![(0, "the delay time of DELAY FIXED in x".to_string())]);
        let expected: &[&[f64]] = &[
            // time, DF05, DF1, DF12, DF15, DF2, DF37, DST, DT2
            &[0.0, -10.0, 10.0, -4.0, 20.0, -3.0, 4.0, 7.0, 4.0],
            &[1.0, 0.0, 0.0, 0.0, 20.0, -3.0, 4.0, 7.0, 0.0],
            &[2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 4.0, 0.0, 1.0],
            &[3.0, 4.0, 4.0, 4.0, 1.0, 1.0, 4.0, 1.0, 4.0],
            &[4.0, 9.0, 9.0, 9.0, 4.0, 4.0, 0.0, 4.0, 9.0],
            &[5.0, 16.0, 16.0, 16.0, 9.0, 9.0, 1.0, 9.0, 16.0],
            &[20.0, 361.0, 361.0, 361.0, 324.0, 324.0, 256.0, 324.0, 361.0],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn pipelines_round_half_slots_up_and_delay_n_lowers_an_order_too_high_for_the_step() {
        // test-models tests/delay_pipeline, TIME STEP 0.5: Fractional Delay Time = 2.5 × TIME STEP (3
        // slots), Integer Delay Time = 5 × TIME STEP, Changing Delay Time = 4 + STEP(2, 15) (read once);
        // DELAY N of order 3 over 1.25 runs as order 2 (3 × 0.5 > 1.25), over 1.5 as order 3.
        let mut m = Model::new(10.0, 0.5);
        m.build(|l| {
            let step = call(l, "STEP", vec![num(5.0), num(5.0)]);
            let input = aux(l, "Input", add(num(-1.0), step));
            let init = param(l, "Initial Value", 6.0);
            let multiple = param(l, "Fractional Multiple", 2.5);
            let fractional = aux(l, "Fractional Delay Time", mul(multiple, num(0.5)));
            let whole = aux(l, "Integer Delay Time", mul(num(0.5), num(5.0)));
            let step = call(l, "STEP", vec![num(2.0), num(15.0)]);
            let changing = aux(l, "Changing Delay Time", add(num(4.0), step));
            let calls = [
                ("DELAY FIXED", vec![input.clone(), fractional.clone(), init.clone()]),
                ("DELAY FIXED", vec![input.clone(), whole, init.clone()]),
                ("DELAY FIXED", vec![input.clone(), changing, init.clone()]),
                ("DELAY N", vec![input.clone(), fractional.clone(), init.clone(), num(2.0)]),
                ("DELAY N", vec![input.clone(), fractional, init.clone(), num(3.0)]),
                ("DELAY N", vec![input, num(1.5), init, num(3.0)]),
            ];
            for (k, (name, args)) in calls.into_iter().enumerate() {
                let e = call(l, name, args);
                output(l, &format!("out{k}"), e);
            }
        });
        let expected: &[&[f64]] = &[
            // time, fractional pipeline, integer pipeline, changing pipeline, second order, third order
            // (lowered to second), third order over 1.5
            &[0.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0],
            &[0.5, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0],
            &[1.0, 6.0, 6.0, 6.0, 1.52, 1.52, 6.0],
            &[1.5, -1.0, 6.0, 6.0, -0.272, -0.272, -1.0],
            &[2.0, -1.0, 6.0, 6.0, -0.8096, -0.8096, -1.0],
            &[2.5, -1.0, -1.0, 6.0, -0.95296, -0.95296, -1.0],
            &[3.0, -1.0, -1.0, 6.0, -0.9888, -0.9888, -1.0],
            &[5.5, -1.0, -1.0, -1.0, -0.999994, -0.999994, -1.0],
            &[6.0, -1.0, -1.0, -1.0, 2.2, 2.2, -1.0],
            &[6.5, 4.0, -1.0, -1.0, 3.48, 3.48, 4.0],
            &[7.0, 4.0, -1.0, -1.0, 3.864, 3.864, 4.0],
            &[8.0, 4.0, 4.0, -1.0, 3.992, 3.992, 4.0],
            &[10.0, 4.0, 4.0, 4.0, 3.99998, 3.99998, 4.0],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn smooths_follow_vensim_with_a_changing_smoothing_time() {
        // test-models tests/smooth: Input = -1 + STEP(5, 5), Adjustment Time = 2 + STEP(2, 10), Initial
        // Value = 5, Variable Order = 2 + STEP(1, 10) (read at the initial time), TIME STEP 0.25.
        let mut m = Model::new(20.0, 0.25);
        m.build(|l| {
            let step = call(l, "STEP", vec![num(5.0), num(5.0)]);
            let input = aux(l, "Input", add(num(-1.0), step));
            let step = call(l, "STEP", vec![num(2.0), num(10.0)]);
            let time = aux(l, "Adjustment Time", add(num(2.0), step));
            let init = param(l, "Initial Value", 5.0);
            let step = call(l, "STEP", vec![num(1.0), num(10.0)]);
            let order = aux(l, "Variable Order", add(num(2.0), step));
            let calls = [
                ("SMOOTH", vec![input.clone(), time.clone()]),
                ("SMOOTHI", vec![input.clone(), time.clone(), init.clone()]),
                ("SMOOTH3", vec![input.clone(), time.clone()]),
                ("SMOOTH3I", vec![input.clone(), time.clone(), init.clone()]),
                ("SMOOTH N", vec![input, time, init, order]),
            ];
            for (name, args) in calls {
                let e = call(l, name, args);
                output(l, name, e);
            }
        });
        let expected: &[&[f64]] = &[
            // time, SMOOTH, SMOOTHI, SMOOTH3, SMOOTH3I, SMOOTH N
            &[0.0, -1.0, 5.0, -1.0, 5.0, 5.0],
            &[0.25, -1.0, 4.25, -1.0, 5.0, 5.0],
            &[0.5, -1.0, 3.59375, -1.0, 5.0, 4.625],
            &[1.0, -1.0, 2.51709, -1.0, 4.09033, 3.42969],
            &[5.0, -1.0, -0.584747, -1.0, -0.959601, -0.854124],
            &[5.25, -0.375, -0.011654, -1.0, -0.972331, -0.885836],
            &[5.5, 0.171875, 0.489803, -1.0, -0.981125, -0.59831],
            &[10.0, 3.65396, 3.6827, 3.96633, 3.96635, 3.8793],
            &[10.25, 3.67558, 3.70253, 3.97164, 3.97165, 3.89241],
            &[11.0, 3.73269, 3.75489, 3.98311, 3.98311, 3.92396],
            &[15.0, 3.90482, 3.91272, 3.99901, 3.99902, 3.98852],
            &[20.0, 3.97382, 3.97599, 3.99998, 3.99998, 3.99899],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    #[allow(clippy::approx_constant)] // the model's own literal, not π
    fn trend_follows_vensim() {
        // test-models tests/trend (output.csv, printed to 4 significant digits): input = 1 + 0.5 SIN(2 ×
        // 3.14159 × Time / 20), TREND(input, 6, 0), TIME STEP 1.
        let mut m = Model::new(100.0, 1.0);
        m.build(|l| {
            let angle = Expr::Op(Op::Div, vec![mul(mul(num(2.0), num(3.14159)), Expr::Time), num(20.0)]);
            let sin = call(l, "SIN", vec![angle]);
            let input = aux(l, "input", add(num(1.0), mul(num(0.5), sin)));
            let time = param(l, "average time", 6.0);
            let initial = param(l, "initial trend", 0.0);
            let trend = call(l, "TREND", vec![input, time, initial]);
            output(l, "TREND of input", trend);
        });
        let expected: &[&[f64]] =
            &[&[0.0, 0.0], &[1.0, 0.02575], &[2.0, 0.04357], &[10.0, -0.0358], &[50.0, -0.03177], &[100.0, 0.05134]];
        check(&m, &m.run(), expected, 5e-6);
    }

    #[test]
    #[allow(clippy::approx_constant)] // the model's own literal, not π
    fn forecast_follows_vensim_on_a_delayed_ramp() {
        // test-models tests/forecast: R = 10 + RAMP(1, 10, 60) + STEP(1, 70) × (1 - STEP(1, 90)) + STEP(2
        // SIN(6.28 Time / 20), 100), R Delayed = DELAY FIXED(R, 10, R), FORECAST(R Delayed, 5, 10), TIME
        // STEP 0.5.
        let mut m = Model::new(120.0, 0.5);
        m.build(|l| {
            let ramp = call(l, "RAMP", vec![num(1.0), num(10.0), num(60.0)]);
            let s70 = call(l, "STEP", vec![num(1.0), num(70.0)]);
            let s90 = call(l, "STEP", vec![num(1.0), num(90.0)]);
            let angle = Expr::Op(Op::Div, vec![mul(num(6.28), Expr::Time), num(20.0)]);
            let sin = call(l, "SIN", vec![angle]);
            let s100 = call(l, "STEP", vec![mul(num(2.0), sin), num(100.0)]);
            let pulse = mul(s70, Expr::Op(Op::Sub, vec![num(1.0), s90]));
            let r = aux(l, "R", add(add(add(num(10.0), ramp), pulse), s100));
            let delayed = call(l, "DELAY FIXED", vec![r.clone(), num(10.0), r.clone()]);
            let delayed = aux(l, "R Delayed", delayed);
            let forecast = call(l, "FORECAST", vec![delayed.clone(), num(5.0), num(10.0)]);
            output(l, "R", r);
            output(l, "R Delayed", delayed);
            output(l, "R forecast", forecast);
        });
        let expected: &[&[f64]] = &[
            // time, R, R Delayed, R forecast
            &[0.0, 10.0, 10.0, 10.0],
            &[10.0, 10.0, 10.0, 10.0],
            &[20.0, 20.0, 10.0, 10.0],
            &[21.0, 21.0, 11.0, 13.0796],
            &[22.0, 22.0, 12.0, 16.0142],
            &[30.0, 30.0, 20.0, 31.2561],
            &[60.0, 60.0, 50.0, 61.1084],
            &[70.0, 61.0, 60.0, 70.9088],
            &[71.0, 61.0, 60.0, 68.6861],
            &[95.0, 60.0, 61.0, 61.1365],
            &[100.0, 59.9682, 60.0, 58.0788],
            &[101.0, 60.5874, 60.0, 58.4391],
            &[120.0, 59.9618, 60.035, 57.911],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn sample_if_true_takes_the_input_while_true_and_holds_it_after() {
        // test-models tests/sample_if_true: oscilating var = SIN(EXP(0.5 Time)), time in seconds = Time ×
        // 60, TIME STEP 1.
        let mut m = Model::new(20.0, 1.0);
        m.build(|l| {
            let exp = call(l, "EXP", vec![mul(num(0.5), Expr::Time)]);
            let osc = call(l, "SIN", vec![exp]);
            let osc = aux(l, "oscilating var", osc);
            let seconds = aux(l, "time in seconds", mul(Expr::Time, num(60.0)));
            let negative = Expr::Op(Op::Lt, vec![osc.clone(), num(0.0)]);
            let positive = Expr::Op(Op::Gt, vec![osc, num(0.0)]);
            let simple = call(l, "SAMPLE IF TRUE", vec![negative, seconds.clone(), num(100.0)]);
            let var = call(l, "SAMPLE IF TRUE", vec![positive, seconds.clone(), seconds]);
            output(l, "sample simple", simple);
            output(l, "sample var", var);
        });
        let expected: &[&[f64]] = &[
            // time, sample simple, sample var
            &[0.0, 100.0, 0.0],
            &[1.0, 100.0, 60.0],
            &[2.0, 100.0, 120.0],
            &[3.0, 180.0, 120.0],
            &[4.0, 180.0, 240.0],
            &[5.0, 300.0, 240.0],
            &[8.0, 480.0, 420.0],
            &[12.0, 660.0, 720.0],
            &[19.0, 1080.0, 1140.0],
            &[20.0, 1200.0, 1140.0],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn test_inputs_switch_on_vensims_step_grid() {
        // test-models tests/input_functions (output.csv): PULSE(3, 2), PULSE TRAIN(7, 1, 2, 12), RAMP(1, 14,
        // 17), STEP(1, 1) and StockA = INTEG(their sum, 0), TIME STEP 0.0625.
        let mut m = Model::new(25.0, 0.0625);
        m.build(|l| {
            let pulse = call(l, "PULSE", vec![num(3.0), num(2.0)]);
            let train = call(l, "PULSE TRAIN", vec![num(7.0), num(1.0), num(2.0), num(12.0)]);
            let ramp = call(l, "RAMP", vec![num(1.0), num(14.0), num(17.0)]);
            let step = call(l, "STEP", vec![num(1.0), num(1.0)]);
            let sum = add(add(add(pulse.clone(), train.clone()), ramp.clone()), step.clone());
            l.system.states.push(State {
                name: "StockA".into(),
                initial: num(0.0),
                update: sum,
                kind: Update::Integrate,
            });
            let stock = Expr::State(l.system.states.len() - 1);
            for (name, e) in [("pulse", pulse), ("train", train), ("ramp", ramp), ("step", step), ("StockA", stock)] {
                output(l, name, e);
            }
        });
        let expected: &[&[f64]] = &[
            // time, PULSE, PULSE TRAIN, RAMP, STEP, StockA
            &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            &[0.9375, 0.0, 0.0, 0.0, 0.0, 0.0],
            &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            &[3.0, 1.0, 0.0, 0.0, 1.0, 2.0],
            &[4.9375, 1.0, 0.0, 0.0, 1.0, 5.875],
            &[5.0, 0.0, 0.0, 0.0, 1.0, 6.0],
            &[7.0, 0.0, 1.0, 0.0, 1.0, 8.0],
            &[7.9375, 0.0, 1.0, 0.0, 1.0, 9.875],
            &[8.0, 0.0, 0.0, 0.0, 1.0, 10.0],
            &[9.0, 0.0, 1.0, 0.0, 1.0, 11.0],
            &[11.9375, 0.0, 1.0, 0.0, 1.0, 15.875],
            &[12.0, 0.0, 0.0, 0.0, 1.0, 16.0],
            &[13.0, 0.0, 0.0, 0.0, 1.0, 17.0],
            &[14.0625, 0.0, 0.0, 0.0625, 1.0, 18.0625],
            &[16.9375, 0.0, 0.0, 2.9375, 1.0, 25.1602],
            &[17.0, 0.0, 0.0, 3.0, 1.0, 25.4062],
            &[25.0, 0.0, 0.0, 3.0, 1.0, 57.4062],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn pulses_shorter_than_a_step_follow_vensims_definition() {
        // Vensim's PULSE is 1 while start < Time + TIME STEP/2 < start + width, a width of 0 being TIME STEP;
        // a PULSE TRAIN's pulses last at least one TIME STEP, its end is the last step on. TIME STEP 1.
        let mut m = Model::new(6.0, 1.0);
        m.build(|l| {
            let zero = call(l, "PULSE", vec![num(2.0), num(0.0)]);
            let short = call(l, "PULSE", vec![num(2.0), num(0.25)]);
            let train = call(l, "PULSE TRAIN", vec![num(1.0), num(0.0), num(2.0), num(10.0)]);
            // test-models samples/Query_file: PULSE TRAIN(2, 2, 0, 4) is 1 from time 2 through 4 (its
            // SalesPattern uses PULSE TRAIN(30, 30, 0, 59), 1 at 30 … 59); PULSE TRAIN(1, 1, 2, 5) is 1 at 1,
            // 3 and 5 (its FixedCost: PULSE TRAIN(30, 1, 30, 571) is 1 at 30, 60, …, 570).
            let solid = call(l, "PULSE TRAIN", vec![num(2.0), num(2.0), num(0.0), num(4.0)]);
            let ends = call(l, "PULSE TRAIN", vec![num(1.0), num(1.0), num(2.0), num(5.0)]);
            output(l, "zero", zero);
            output(l, "short", short);
            output(l, "train", train);
            output(l, "solid", solid);
            output(l, "ends", ends);
        });
        let rows = m.run();
        let column = |k: usize| rows.iter().map(|r| r[k]).collect::<Vec<_>>();
        assert_eq!(column(0), [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(column(1), [0.0; 7]);
        assert_eq!(column(2), [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(column(3), [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(column(4), [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn test_inputs_hold_through_a_step_whatever_time_a_stage_evaluates_at() {
        // RK4 evaluates at t + TIME STEP/2: STEP(1, 0.75) must still be 0 there, as at t = 0.
        let mut m = Model::new(1.0, 1.0);
        m.build(|l| {
            let step = call(l, "STEP", vec![num(1.0), num(0.75)]);
            let ramp = call(l, "RAMP", vec![num(1.0), num(0.0), num(10.0)]);
            output(l, "step", step);
            output(l, "ramp", ramp);
        });
        let compiled = compile_system(&m.system, Sensitivities::Off).expect("compiles");
        let p = &compiled.program;
        let mut regs = vec![0.0; p.n_regs];
        let mut y = vec![0.0; p.n_states];
        p.start(&mut regs, &[], &mut y);
        let mut out = [f64::NAN; 2];
        p.outputs(&mut regs, 0.5, &y, &mut out);
        assert_eq!(out, [0.0, 0.0]);
        assert_eq!(m.run()[1], [1.0, 1.0]);
    }

    #[test]
    fn rounding_functions_follow_vensim() {
        // test-models tests/rounding: StockA = -10 + Time/10, INTEGER(StockA), MODULO(StockA, 3); and
        // tests/subscripted_round: MODULO(Time/2 - 10, 1.5 + Time/10), MODULO(-Time, 4), QUANTUM(Time/100 - 1,
        // 3), QUANTUM(-1, 1/(Time + 1)), QUANTUM(10 - Time/5, 3), QUANTUM(10 - Time/5, -3), INTEGER((1/(Time +
        // 1))/(-1)); TIME STEP 1.
        let mut m = Model::new(100.0, 1.0);
        m.build(|l| {
            let div = |a: Expr, b: f64| Expr::Op(Op::Div, vec![a, num(b)]);
            let stock = aux(l, "StockA", add(num(-10.0), div(Expr::Time, 10.0)));
            let integer = call(l, "INTEGER", vec![stock.clone()]);
            let modulo = call(l, "MODULO", vec![stock.clone(), num(3.0)]);
            let x = add(div(Expr::Time, 2.0), num(-10.0));
            let m1 = call(l, "MODULO", vec![x, add(num(1.5), div(Expr::Time, 10.0))]);
            let m2 = call(l, "MODULO", vec![Expr::Op(Op::Neg, vec![Expr::Time]), num(4.0)]);
            let q1 = call(l, "QUANTUM", vec![add(div(Expr::Time, 100.0), num(-1.0)), num(3.0)]);
            let reciprocal = Expr::Op(Op::Div, vec![num(1.0), add(Expr::Time, num(1.0))]);
            let q2 = call(l, "QUANTUM", vec![num(-1.0), reciprocal.clone()]);
            let falling = Expr::Op(Op::Sub, vec![num(10.0), div(Expr::Time, 5.0)]);
            let q3 = call(l, "QUANTUM", vec![falling.clone(), num(3.0)]);
            let q4 = call(l, "QUANTUM", vec![falling, num(-3.0)]);
            let i2 = call(l, "INTEGER", vec![div(reciprocal, -1.0)]);
            for (k, e) in [stock, integer, modulo, m1, m2, q1, q2, q3, q4, i2].into_iter().enumerate() {
                output(l, &format!("out{k}"), e);
            }
        });
        let expected: &[&[f64]] = &[
            // time, StockA, INTEGER, MODULO, then the seven of subscripted_round in the order above
            &[0.0, -10.0, -10.0, -1.0, -1.0, -0.0, 0.0, -1.0, 9.0, 10.0, -1.0],
            &[1.0, -9.9, -9.0, -0.9, -1.5, -1.0, 0.0, -1.0, 9.0, 9.8, 0.0],
            &[2.0, -9.8, -9.0, -0.8, -0.5, -2.0, 0.0, -1.0, 9.0, 9.6, 0.0],
            &[5.0, -9.5, -9.0, -0.5, -1.5, -1.0, 0.0, -1.0, 9.0, 9.0, 0.0],
            &[50.0, -5.0, -5.0, -2.0, 2.0, -2.0, 0.0, -1.0, 0.0, 0.0, 0.0],
            &[98.0, -0.2, 0.0, -0.2, 5.1, -2.0, 0.0, -0.989899, -9.0, -9.6, 0.0],
            &[99.0, -0.1, 0.0, -0.1, 5.3, -3.0, 0.0, -1.0, -9.0, -9.8, 0.0],
            &[100.0, 0.0, 0.0, 0.0, 5.5, 0.0, 0.0, -1.0, -9.0, -10.0, 0.0],
        ];
        check(&m, &m.run(), expected, 1e-12);
    }

    #[test]
    fn math_functions_follow_vensim() {
        // test-models tests/trig (StockA = -10 + Time, TIME STEP 0.125 there; the same values here on whole
        // times), tests/log (LOG(71, 3)), tests/xidz_zidz (ZIDZ(11, 0), XIDZ(11, 0, 4)), tests/builtin_min and
        // builtin_max (MIN(Time, 5), MAX(Time, 5)), tests/game (GAME(12)).
        let mut m = Model::new(10.0, 1.0);
        m.build(|l| {
            let stock = aux(l, "StockA", add(num(-10.0), Expr::Time));
            let sin = call(l, "SIN", vec![stock.clone()]);
            let cos = call(l, "COS", vec![stock.clone()]);
            let tan = call(l, "TAN", vec![stock]);
            let asin = call(l, "ARCSIN", vec![sin.clone()]);
            let acos = call(l, "ARCCOS", vec![cos.clone()]);
            let atan = call(l, "ARCTAN", vec![tan.clone()]);
            let log = call(l, "LOG", vec![num(71.0), num(3.0)]);
            let zidz = call(l, "ZIDZ", vec![num(11.0), num(0.0)]);
            let xidz = call(l, "XIDZ", vec![num(11.0), num(0.0), num(4.0)]);
            let min = call(l, "MIN", vec![Expr::Time, num(5.0)]);
            let max = call(l, "MAX", vec![Expr::Time, num(5.0)]);
            let game = call(l, "GAME", vec![num(12.0)]);
            let outs = [sin, cos, tan, asin, acos, atan, log, zidz, xidz, min, max, game];
            for (k, e) in outs.into_iter().enumerate() {
                output(l, &format!("out{k}"), e);
            }
        });
        let expected: &[&[f64]] = &[
            // time, sin, cos, tan, arcsin, arccos, arctan, LOG, ZIDZ, XIDZ, MIN, MAX, GAME
            &[0.0, 0.544021, -0.839072, -0.648361, 0.575222, 2.56637, -0.575222, 3.88006, 0.0, 4.0, 0.0, 5.0, 12.0],
            &[1.0, -0.412118, -0.91113, 0.452316, -0.424778, 2.71681, 0.424778, 3.88006, 0.0, 4.0, 1.0, 5.0, 12.0],
            &[10.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.88006, 0.0, 4.0, 5.0, 10.0, 12.0],
        ];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn the_remaining_math_functions_are_their_operations() {
        let mut m = Model::new(0.0, 1.0);
        m.build(|l| {
            let calls: [(&str, Vec<f64>); 11] = [
                ("ABS", vec![-2.5]),
                ("EXP", vec![1.0]),
                ("LN", vec![10.0]),
                ("SQRT", vec![2.0]),
                ("SINH", vec![0.5]),
                ("COSH", vec![0.5]),
                ("TANH", vec![0.5]),
                ("POWER", vec![-2.3, 3.0]),
                ("MIN", vec![f64::NAN, 1.0]),
                ("MAX", vec![1.0, f64::NAN]),
                ("IF THEN ELSE", vec![0.0, 1.0, 2.0]),
            ];
            for (name, args) in calls {
                let e = call(l, name, args.into_iter().map(num).collect());
                output(l, name, e);
            }
        });
        let row = &m.run()[0];
        let want = [
            2.5,
            math::exp(1f64),
            math::ln(10f64),
            2f64.sqrt(),
            math::sinh(0.5f64),
            math::cosh(0.5f64),
            math::tanh(0.5f64),
            -12.167,
        ];
        for (k, (got, want)) in row.iter().zip(want).enumerate() {
            assert!((got - want).abs() <= 1e-12 * want.abs(), "{}: {got} ≠ {want}", m.system.outputs[k].0);
        }
        // MIN and MAX propagate NaN as numpy's minimum and maximum (PySD's), and both IF branches exist.
        assert!(row[8].is_nan() && row[9].is_nan());
        assert_eq!(row[10], 2.0);
    }

    #[test]
    fn initial_holds_the_value_at_the_initial_time() {
        // test-models tests/initial_function (output.csv): InflowA = StockA, StockA = INTEG(InflowA, 10),
        // StockA Initial Value = INITIAL(InflowA), TIME STEP 1.
        let mut m = Model::new(5.0, 1.0);
        m.build(|l| {
            l.system.states.push(State {
                name: "StockA".into(),
                initial: num(10.0),
                update: Expr::Var(0),
                kind: Update::Integrate,
            });
            let inflow = aux(l, "InflowA", Expr::State(0));
            let initial = call(l, "INITIAL", vec![inflow.clone()]);
            let reinitial = call(l, "REINITIAL", vec![inflow]);
            output(l, "StockA", Expr::State(0));
            output(l, "StockA Initial Value", initial);
            output(l, "REINITIAL", reinitial);
        });
        let expected: &[&[f64]] = &[&[0.0, 10.0, 10.0, 10.0], &[1.0, 20.0, 10.0, 10.0], &[5.0, 320.0, 10.0, 10.0]];
        check(&m, &m.run(), expected, 0.0);
    }

    #[test]
    fn lookup_functions_read_the_named_table_in_their_mode() {
        let mut m = Model::new(0.0, 1.0);
        m.build(|l| {
            l.system.tables.push(parfit_expr::system::Table {
                name: "t".into(),
                points: vec![(0.0, 0.0), (1.0, 10.0), (3.0, 20.0)],
            });
            let reads = [
                ("LOOKUP EXTRAPOLATE", 4.0),
                ("LOOKUP EXTRAPOLATE", -1.0),
                ("LOOKUP FORWARD", 1.5),
                ("LOOKUP BACKWARD", 1.5),
                ("LOOKUP INVERT", 15.0),
            ];
            for (name, x) in reads {
                let e = lower_call(l, name, vec![Arg::Table(0), Arg::Value(num(x))], "x").expect("lowers");
                output(l, name, e);
            }
            let area =
                lower_call(l, "LOOKUP AREA", vec![Arg::Table(0), Arg::Value(num(0.0)), Arg::Value(num(3.0))], "x");
            output(l, "LOOKUP AREA", area.expect("lowers"));
        });
        // Extrapolation continues the end segments; FORWARD takes the next point's y, BACKWARD the last
        // one's; INVERT solves 15 on the segment (1, 10)–(3, 20); the area is 5 + 30 under the two segments.
        assert_eq!(m.run()[0], [25.0, -10.0, 20.0, 10.0, 2.0, 35.0]);
    }

    #[test]
    fn random_functions_map_the_runners_draws() {
        let mut m = Model::new(1.0, 1.0);
        m.build(|l| {
            let u = call(l, "RANDOM UNIFORM", vec![num(2.0), num(6.0), num(17.0)]);
            let u01 = call(l, "RANDOM 0 1", vec![]);
            let e = call(l, "RANDOM EXPONENTIAL", vec![num(0.0), num(1e38), num(1.0), num(2.0), num(0.0)]);
            let truncated = call(l, "RANDOM EXPONENTIAL", vec![num(3.0), num(5.0), num(1.0), num(2.0), num(0.0)]);
            let bad = call(l, "RANDOM EXPONENTIAL", vec![num(3.0), num(2.0), num(1.0), num(2.0), num(0.0)]);
            // One draw, read twice: the same value.
            let twice = Expr::Op(Op::Sub, vec![u.clone(), u.clone()]);
            for (k, e) in [u, u01, e, truncated, bad, twice].into_iter().enumerate() {
                output(l, &format!("out{k}"), e);
            }
        });
        let rows = m.run_with_draws(|n, k| [0.25, 0.75][n] * (k + 1) as f64 / 4.0);
        // Slot k draws (k + 1)/4 × 0.25 at step 0: 1/16, 2/16, 3/16, 4/16.
        let u = [1.0 / 16.0, 2.0 / 16.0, 3.0 / 16.0, 4.0 / 16.0];
        let row = &rows[0];
        assert_eq!(row[0], 2.0 + 4.0 * u[0]);
        assert_eq!(row[1], u[1]);
        // (ln through black_box: a constant call would be folded with the build machine's libm.)
        let ln = |x: f64| math::ln(std::hint::black_box(x));
        assert_eq!(row[2], 1.0 - 2.0 * ln(1.0 - u[2]));
        // Truncated to [3, 5]: from 3, with the mass of an exponential of mean 2 over a width of 2.
        let mass = 1.0 - math::exp(std::hint::black_box(-1.0f64));
        assert!((row[3] - (3.0 - 2.0 * ln(1.0 - u[3] * mass))).abs() < 1e-15);
        assert!(row[4].is_nan(), "no value in [3, 2]");
        assert_eq!(row[5], 0.0);
        assert!(rows[1][0] > row[0], "a new draw each step");
    }

    /// Each case is one call of `name` (its arguments but the seed, the draw fed to it, the value wanted,
    /// NaN included), checked to `tol` relative.
    fn check_draws<const N: usize>(name: &str, cases: &[([f64; N], f64, f64)], tol: f64) {
        let mut m = Model::new(0.0, 1.0);
        m.build(|l| {
            for (k, (args, _, _)) in cases.iter().enumerate() {
                let mut args: Vec<Expr> = args.iter().copied().map(num).collect();
                args.push(num(0.0));
                let e = call(l, name, args);
                output(l, &format!("out{k}"), e);
            }
        });
        let row = &m.run_with_draws(|_, k| cases[k].1)[0];
        for (k, (got, (_, _, want))) in row.iter().zip(cases).enumerate() {
            let close = (got - want).abs() <= tol * want.abs().max(1.0);
            assert!(close || (got.is_nan() && want.is_nan()), "{name} case {k}: {got}, not {want}");
        }
    }

    #[test]
    fn random_normal_inverts_the_truncated_distribution() {
        // Each output is one call, its draw slot fed `u` (slot k = output k).
        let cases: [([f64; 4], f64, f64); 8] = [
            // ([min, max, mean, sd], u, value): quantiles of the standard normal (from its exact inverse)
            ([-1e38, 1e38, 0.0, 1.0], 0.5, 0.0),
            ([-1e38, 1e38, 0.0, 1.0], 0.975, 1.959963984540054),
            ([-1e38, 1e38, 0.0, 1.0], 1e-10, -6.361340902404056),
            ([-1e38, 1e38, 10.0, 2.0], 0.841344746068543, 12.0),
            // Truncated to the upper half: p = 0.5 + u / 2.
            ([0.0, 1e38, 0.0, 1.0], 0.5, 0.6744897501960817),
            // Truncated to [-1, 1] (Φ(±1) = 0.5 ∓ 0.3413447460685429): u = 0 is the lower bound.
            ([-1.0, 1.0, 0.0, 1.0], 0.0, -1.0),
            // No mass: NaN.
            ([2.0, 1.0, 0.0, 1.0], 0.5, f64::NAN),
            ([-1.0, 1.0, 0.0, 0.0], 0.5, f64::NAN),
        ];
        check_draws("RANDOM NORMAL", &cases, 1e-12);
    }

    #[test]
    fn random_triangular_inverts_the_truncated_distribution() {
        // On [0, 3] with its mode at 1: F(v) = v²/3 up to 1, 1 - (3 - v)²/6 after.
        let cases: [([f64; 5], f64, f64); 5] = [
            ([-1e38, 1e38, 0.0, 1.0, 3.0], 0.12, 0.6),
            ([-1e38, 1e38, 0.0, 1.0, 3.0], 0.5, 3.0 - 1.7320508075688772),
            // Truncated to [0.5, 2]: u = 0 gives 0.5, u = 1 would give 2.
            ([0.5, 2.0, 0.0, 1.0, 3.0], 0.0, 0.5),
            ([0.5, 2.0, 0.0, 1.0, 3.0], 1.0, 2.0),
            // The peak beyond the end: NaN.
            ([-1e38, 1e38, 0.0, 4.0, 3.0], 0.5, f64::NAN),
        ];
        check_draws("RANDOM TRIANGULAR", &cases, 1e-15);
    }

    #[test]
    fn npv_discounts_each_step_as_vensim_defines_it() {
        // NPV(10, 0.1, 0, 1) with TIME STEP 1 is Σ 10 / 1.1^k over the steps so far (the current one
        // undiscounted by its own step); with factor 2, twice that.
        let mut m = Model::new(5.0, 1.0);
        m.build(|l| {
            let npv = call(l, "NPV", vec![num(10.0), num(0.1), num(0.0), num(1.0)]);
            let twice = call(l, "NPV", vec![num(10.0), num(0.1), num(0.0), num(2.0)]);
            output(l, "npv", npv);
            output(l, "twice", twice);
        });
        for (n, row) in m.run().iter().enumerate() {
            let want: f64 = (0..=n as i32).map(|k| 10.0 / math::powi(1.1f64, k)).sum();
            assert!((row[0] - want).abs() <= 1e-12 * want, "step {n}: {}, not {want}", row[0]);
            assert!((row[1] - 2.0 * want).abs() <= 2e-12 * want);
        }
    }

    #[test]
    fn wrong_calls_are_refused_by_name() {
        let mut s = System::default();
        let mut l = Lowering::new(&mut s, 0.0, 1.0);
        let v = |x: f64| Arg::Value(num(x));
        assert_eq!(call_err(&mut l, "FOO BAR", vec![]), "the Vensim function FOO BAR is not supported");
        assert_eq!(call_err(&mut l, "DELAY3", vec![v(1.0), v(2.0), v(3.0)]), "DELAY3 takes 2 arguments, not 3");
        assert_eq!(call_err(&mut l, "SIN", vec![]), "SIN takes 1 argument, not 0");
        assert_eq!(call_err(&mut l, "RANDOM 0 1", vec![v(1.0)]), "RANDOM 0 1 takes no arguments, not 1");
        assert_eq!(
            call_err(&mut l, "LOOKUP INVERT", vec![v(1.0), v(2.0)]),
            "argument 1 of LOOKUP INVERT must name a lookup"
        );
        assert_eq!(call_err(&mut l, "SIN", vec![Arg::Table(0)]), "argument 1 of SIN is a value, not a lookup");
        assert!(builtin("RANDOM POISSON").is_none(), "not exact on the runner's draws: refused as unknown");
        assert_eq!(
            call_err(&mut l, "RANDOM POISSON", vec![v(0.0), v(9.0), v(2.0), v(0.0), v(1.0), v(0.0)]),
            "the Vensim function RANDOM POISSON is not supported"
        );
        assert_eq!(builtin("LOOKUP AREA"), Some(BuiltinInfo { min_args: 3, max_args: 3, table_args: &[0] }));
    }

    /// The message `finish` gives for a DELAY N or SMOOTH N of this order, or a DELAY FIXED of this delay.
    fn finish_error(name: &str, value: Expr) -> String {
        let mut s = System::default();
        let mut l = Lowering::new(&mut s, 0.0, 1.0);
        let args = match name {
            "DELAY FIXED" => vec![num(1.0), value, num(0.0)],
            _ => vec![num(1.0), num(5.0), num(0.0), value],
        };
        lower_call(&mut l, name, args.into_iter().map(Arg::Value).collect(), "stock[a1]").expect("lowers");
        let e = finish(&mut l).expect_err("refused");
        assert_eq!(e.label, "stock[a1]");
        e.message
    }

    #[test]
    fn orders_and_fixed_delays_unknown_at_compile_time_are_refused() {
        let draw = Expr::Draw(DrawKind::Uniform);
        assert_eq!(
            finish_error("DELAY N", draw.clone()),
            "the order of DELAY N must be known when the model is compiled, and depends on a random draw"
        );
        assert_eq!(
            finish_error("SMOOTH N", num(2.5)),
            "the order of SMOOTH N must be a whole number of at least 1, not 2.5"
        );
        assert_eq!(
            finish_error("DELAY N", num(0.0)),
            "the order of DELAY N must be a whole number of at least 1, not 0.0"
        );
        assert_eq!(
            finish_error("DELAY FIXED", draw),
            "the delay time of DELAY FIXED must be known when the model is compiled, and depends on a random draw"
        );
        assert_eq!(
            finish_error("DELAY FIXED", num(f64::NAN)),
            "the delay time of DELAY FIXED is NaN at the initial time"
        );
        let huge = finish_error("DELAY FIXED", num(1e300));
        assert!(huge.starts_with("the pipeline of DELAY FIXED in stock[a1] (1e300 slots) would need about"), "{huge}");
        let huge = finish_error("SMOOTH N", num(1e300));
        assert!(huge.starts_with("the stocks of SMOOTH N in stock[a1] (order 1e300) would need about"), "{huge}");

        // DELAY N's delay time decides its order too.
        let mut s = System::default();
        let mut l = Lowering::new(&mut s, 0.0, 1.0);
        call(&mut l, "DELAY N", vec![num(1.0), Expr::Draw(DrawKind::Normal), num(0.0), num(3.0)]);
        let e = finish(&mut l).expect_err("refused");
        let why = "the delay time of DELAY N must be known when the model is compiled, and depends on a random draw";
        assert_eq!(e.message, why);

        // A lookup the program could not read either.
        let mut s = System::default();
        let mut l = Lowering::new(&mut s, 0.0, 1.0);
        l.system.tables.push(parfit_expr::system::Table { name: "t".into(), points: vec![] });
        call(&mut l, "DELAY FIXED", vec![num(1.0), lookup_read(0, LookupMode::Interpolate, &num(0.0)), num(0.0)]);
        let e = finish(&mut l).expect_err("refused");
        assert_eq!(
            e.message,
            "the delay time of DELAY FIXED reads a lookup that is wrong: the lookup table has no points"
        );

        // A chain of definitions deeper than the fold follows.
        let mut s = System::default();
        let mut l = Lowering::new(&mut s, 0.0, 1.0);
        let mut order = num(2.0);
        for k in 0..=MAX_FOLD_DEPTH {
            order = aux(&mut l, &format!("v{k}"), order);
        }
        call(&mut l, "DELAY N", vec![num(1.0), num(5.0), num(0.0), order]);
        let e = finish(&mut l).expect_err("refused");
        assert_eq!(e.message, "the order of DELAY N depends on a chain of more than 200 definitions");

        // An order defined through itself.
        let mut s = System::default();
        let mut l = Lowering::new(&mut s, 0.0, 1.0);
        let order = aux(&mut l, "order", Expr::Var(1));
        let d = call(&mut l, "DELAY N", vec![num(1.0), num(5.0), num(0.0), order]);
        l.system.vars[0].value = d;
        let e = finish(&mut l).expect_err("refused");
        assert_eq!(e.message, "the size of DELAY N depends on its own value");

        // A fixed delay whose delay time is another one's initial value, lowered before it: built after it.
        let mut m = Model::new(3.0, 1.0);
        m.build(|l| {
            let later = aux(l, "later", num(f64::NAN));
            let first = call(l, "DELAY FIXED", vec![Expr::Time, later.clone(), num(-1.0)]);
            let second = call(l, "DELAY FIXED", vec![Expr::Time, num(2.0), num(2.0)]);
            l.system.vars[0].value = second;
            output(l, "first", first);
        });
        let first: Vec<f64> = m.run().iter().map(|r| r[0]).collect();
        assert_eq!(first, [-1.0, -1.0, 0.0, 1.0]);
    }

    #[test]
    fn sizes_read_lookups_at_the_initial_time() {
        // A delay time from a table read at Time: 2 at time 0, so two slots.
        let mut m = Model::new(3.0, 1.0);
        m.build(|l| {
            let points = vec![(0.0, 2.0), (10.0, 4.0)];
            l.system.tables.push(parfit_expr::system::Table { name: "t".into(), points });
            let delay = lookup_read(0, LookupMode::Interpolate, &Expr::Time);
            let d = call(l, "DELAY FIXED", vec![Expr::Time, delay, num(-1.0)]);
            output(l, "d", d);
        });
        let d: Vec<f64> = m.run().iter().map(|r| r[0]).collect();
        assert_eq!(d, [-1.0, -1.0, 0.0, 1.0]);
    }

    #[test]
    fn parameters_that_fix_a_structure_are_recorded() {
        let mut m = Model::new(4.0, 1.0);
        let structural = m.build(|l| {
            let order = param(l, "order", 3.0);
            let time = param(l, "time", 6.0);
            let initial = param(l, "initial", 1.0);
            let delay = call(l, "DELAY N", vec![num(1.0), time.clone(), num(0.0), order.clone()]);
            let smooth = call(l, "SMOOTH N", vec![num(1.0), time.clone(), num(0.0), order]);
            let delay3 = call(l, "DELAY3I", vec![num(1.0), time, initial]);
            output(l, "delay", delay);
            output(l, "smooth", smooth);
            output(l, "delay3", delay3);
        });
        assert_eq!(
            structural,
            vec![(0, "the order of DELAY N in x".to_string()), (1, "the delay time of DELAY N in x".to_string()),]
        );
        // Three stocks for each, DELAY N's assigned (a discrete delay); its delay time is constant, so it
        // keeps no older delay times.
        let count = |kind| m.system.states.iter().filter(|s| s.kind == kind).count();
        assert_eq!((count(Update::Integrate), count(Update::Assign)), (6, 3));
    }
}
