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
use parfit_expr::{DrawKind, Op};

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
    pub final_time: f64,
    pub time_step: f64,
    /// Parameters whose value the model's structure depends on (a DELAY FIXED pipeline's length, a
    /// DELAY N's order): `(parameter index, why)`. The runner refuses other values than the default.
    pub structural: Vec<(usize, String)>,
    /// Structures built by [`finish`].
    deferred: Vec<Deferred>,
}

impl<'a> Lowering<'a> {
    pub(crate) fn new(system: &'a mut System, initial_time: f64, final_time: f64, time_step: f64) -> Self {
        Lowering { system, initial_time, final_time, time_step, structural: Vec::new(), deferred: Vec::new() }
    }
}

/// A structure whose size is a value at the initial time, built once every equation is lowered: its output
/// is the auxiliary `out`, a placeholder until then.
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
    ("POWER", info(2, 2)),
    ("PULSE", info(2, 2)),
    ("PULSE TRAIN", info(4, 4)),
    ("QUANTUM", info(2, 2)),
    ("RAMP", info(3, 3)),
    ("RANDOM 0 1", info(0, 0)),
    ("RANDOM EXPONENTIAL", info(5, 5)),
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

/// Whether `name` is a built-in [`lower_call`] knows, and which of its arguments are lookups (by position).
pub(crate) fn builtin(name: &str) -> Option<BuiltinInfo> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, i)| *i)
}

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

    /// `Time + TIME STEP / 2`: Vensim compares times with this so that rounding never moves a step.
    fn time_plus(&self) -> Expr {
        bin(Op::Add, &Expr::Time, &Expr::Num(self.l.time_step / 2.0))
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
        if_(&bin(Op::Gt, &self.time_plus(), at), height, &Expr::Num(0.0))
    }

    /// `PULSE(start, width)`: 1 while `start < Time + TIME STEP/2 < start + width`, a width of 0 counting
    /// as TIME STEP (so a width below TIME STEP/2 gives no pulse, as Vensim's definition says).
    fn pulse(&mut self, start: &Expr, width: &Expr) -> Expr {
        let tp = self.var("time plus", self.time_plus());
        let start = self.shared("start", start);
        let width = self.shared("width", width);
        let dt = Expr::Num(self.l.time_step);
        let width = if_(&bin(Op::Eq, &width, &Expr::Num(0.0)), &dt, &width);
        let on = bin(Op::And, &bin(Op::Gt, &tp, &start), &bin(Op::Lt, &tp, &bin(Op::Add, &start, &width)));
        if_(&on, &Expr::Num(1.0), &Expr::Num(0.0))
    }

    /// `PULSE TRAIN(start, width, between, end)`: 1 while `start < Time + TIME STEP/2 < end` and the time
    /// since start, modulo `between`, is below the width (at least one TIME STEP); else 0.
    fn pulse_train(&mut self, start: &Expr, width: &Expr, between: &Expr, end: &Expr) -> Expr {
        let tp = self.var("time plus", self.time_plus());
        let start = self.shared("start", start);
        let width = bin(Op::Max, width, &Expr::Num(self.l.time_step));
        let phase = bin(Op::Modulo, &bin(Op::Sub, &tp, &start), between);
        let inside = bin(Op::And, &bin(Op::Gt, &tp, &start), &bin(Op::Lt, &tp, end));
        let on = bin(Op::And, &inside, &bin(Op::Lt, &phase, &width));
        if_(&on, &Expr::Num(1.0), &Expr::Num(0.0))
    }

    /// `RAMP(slope, start, end)`: 0 until `Time > start`, then `slope × (Time - start)` until `Time < end`
    /// fails, then `slope × (end - start)` (Vensim's definition, on Time itself).
    fn ramp(&mut self, slope: &Expr, start: &Expr, end: &Expr) -> Expr {
        let slope = self.shared("slope", slope);
        let start = self.shared("start", start);
        let end = self.shared("end", end);
        let rising = bin(Op::Mul, &slope, &bin(Op::Sub, &Expr::Time, &start));
        let top = bin(Op::Mul, &slope, &bin(Op::Sub, &end, &start));
        let after = if_(&bin(Op::Lt, &Expr::Time, &end), &rising, &top);
        if_(&bin(Op::Gt, &Expr::Time, &start), &after, &Expr::Num(0.0))
    }

    /// DELAY1(I) and DELAY3(I): `order` stocks `LV_k` (initially `initial × DL`, DL = delay time / order),
    /// rates `RT_k = LV_k / DL`, `LV_1' = input - RT_1`, `LV_k' = RT_{k-1} - RT_k`; the value is the last
    /// rate. The delay time is read at every step.
    fn material_delay(&mut self, input: &Expr, delay: &Expr, initial: &Expr, order: usize) -> Expr {
        let dl = if order == 1 { delay.clone() } else { bin(Op::Div, delay, &Expr::Num(order as f64)) };
        let dl = self.shared("stage time", &dl);
        self.delay_chain(input, &vec![dl; order], initial)
    }

    /// The stocks and rates of a material delay whose stage k empties with the time `stage_times[k]`.
    fn delay_chain(&mut self, input: &Expr, stage_times: &[Expr], initial: &Expr) -> Expr {
        let initial = self.shared("initial value", initial);
        let input = self.shared("input", input);
        let mut inflow = input;
        for (k, dl) in stage_times.iter().enumerate() {
            let stock = self.state(&format!("stock {}", k + 1), bin(Op::Mul, &initial, dl), Update::Integrate);
            let rate = self.var(&format!("rate {}", k + 1), bin(Op::Div, &Expr::State(stock), dl));
            self.set_update(stock, bin(Op::Sub, &inflow, &rate));
            inflow = rate;
        }
        inflow
    }

    /// SMOOTH(I), SMOOTH3(I), SMOOTH N: `order` stocks starting at `initial`, each adjusting towards the
    /// one before (the first towards the input) over `smooth time / order`; the value is the last stock.
    fn smooth(&mut self, input: &Expr, time: &Expr, initial: &Expr, order: usize) -> Expr {
        let dl = if order == 1 { time.clone() } else { bin(Op::Div, time, &Expr::Num(order as f64)) };
        let dl = self.shared("stage time", &dl);
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

    /// A structure built by [`finish`]: its value is a placeholder auxiliary until then.
    fn defer(&mut self, kind: DeferredKind, args: Vec<Expr>) -> Expr {
        let out = self.l.system.vars.len();
        let value = self.var("value", Expr::Num(f64::NAN));
        self.l.deferred.push(Deferred { out, kind, args, label: self.label.to_string() });
        value
    }
}

/// Build the structures whose size is a value at the initial time (DELAY N and SMOOTH N orders, DELAY FIXED
/// pipelines), once every equation is lowered: call it before compiling the system.
pub(crate) fn finish(l: &mut Lowering) -> Result<(), FinishError> {
    for d in std::mem::take(&mut l.deferred) {
        let value = build_deferred(l, &d).map_err(|message| FinishError { label: d.label.clone(), message })?;
        if let Some(v) = l.system.vars.get_mut(d.out) {
            v.value = value;
        }
    }
    Ok(())
}

fn build_deferred(l: &mut Lowering, d: &Deferred) -> Result<Expr, String> {
    let (name, what) = match d.kind {
        DeferredKind::DelayN => ("DELAY N", "order"),
        DeferredKind::SmoothN => ("SMOOTH N", "order"),
        DeferredKind::DelayFixed => ("DELAY FIXED", "delay time"),
    };
    let [input, time, initial, rest @ ..] = d.args.as_slice() else {
        return Err(format!("{name} takes {} arguments", d.args.len()));
    };
    let dt = l.time_step;
    let mut b = Builder { l: &mut *l, label: &d.label, name };
    match d.kind {
        DeferredKind::DelayFixed => {
            let (delay, params) = fold_initial(b.l, time).map_err(|why| format!("the {what} of {name} {why}"))?;
            if delay.is_nan() {
                return Err(format!("the {what} of {name} is NaN at the initial time"));
            }
            // Vensim's pipeline has one slot per TIME STEP of delay, at least one (halves round up).
            let slots = ((delay / dt).max(1.0) + SMALL).round();
            check_allocation(&format!("the pipeline of {name} in {} ({slots} slots)", d.label), slots, 256.0)?;
            structural(b.l, params, &format!("the {what} of {name} in {}", d.label));
            Ok(b.pipeline(input, initial, slots as usize))
        }
        DeferredKind::DelayN | DeferredKind::SmoothN => {
            let order_expr = rest.first().ok_or_else(|| format!("{name} takes 4 arguments"))?;
            let (order, params) = fold_initial(b.l, order_expr).map_err(|why| format!("the {what} of {name} {why}"))?;
            if !(order >= 1.0 && order.fract() == 0.0) {
                return Err(format!("the {what} of {name} must be a whole number of at least 1, not {order}"));
            }
            check_allocation(&format!("the stocks of {name} in {} (order {order})", d.label), order, 256.0)?;
            structural(b.l, params, &format!("the {what} of {name} in {}", d.label));
            let order = order as usize;
            match d.kind {
                DeferredKind::SmoothN => Ok(b.smooth(input, time, initial, order)),
                _ => {
                    // Vensim lowers the order until order × TIME STEP fits in the initial delay time.
                    let (delay, params) =
                        fold_initial(b.l, time).map_err(|why| format!("the delay time of {name} {why}"))?;
                    let fits = (1..=order).rev().find(|&n| n as f64 * dt <= delay).unwrap_or(1);
                    structural(b.l, params, &format!("the delay time of {name} in {}", d.label));
                    Ok(b.delay_n(input, time, initial, fits))
                }
            }
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
    /// states carry the older delay times down the chain.
    fn delay_n(&mut self, input: &Expr, time: &Expr, initial: &Expr, order: usize) -> Expr {
        let n = Expr::Num(order as f64);
        let time = self.shared("delay time", time);
        let mut stage_times = vec![self.shared("stage time", &bin(Op::Div, &time, &n))];
        let mut older = time;
        for k in 1..order {
            let past = self.state(&format!("delay time {k} steps before"), older.clone(), Update::Assign);
            self.set_update(past, older);
            older = Expr::State(past);
            stage_times.push(self.shared("stage time", &bin(Op::Div, &older, &n)));
        }
        self.delay_chain(input, &stage_times, initial)
    }
}

/// How deep [`fold_initial`] follows definitions before giving up (a guard for the stack, not a limit a
/// model meets).
const MAX_FOLD_DEPTH: usize = 200;

/// The value of `e` at the initial time with every parameter at its default, and the parameters it read;
/// or why it has none ("depends on a random draw").
fn fold_initial(l: &Lowering, e: &Expr) -> Result<(f64, Vec<usize>), String> {
    let mut f = Fold { system: l.system, params: Vec::new(), path: Vec::new() };
    let value = f.eval(e)?;
    Ok((value, f.params))
}

struct Fold<'s> {
    system: &'s System,
    params: Vec<usize>,
    /// The auxiliaries and states being evaluated (`true`: a state), to find a cycle.
    path: Vec<(bool, usize)>,
}

impl Fold<'_> {
    fn eval(&mut self, e: &Expr) -> Result<f64, String> {
        match e {
            Expr::Num(x) => Ok(*x),
            Expr::Time => Ok(self.system.initial_time),
            Expr::Param(k) => {
                let (_, value) = self.system.params.get(*k).ok_or("refers to an unknown parameter")?;
                if !self.params.contains(k) {
                    self.params.push(*k);
                }
                Ok(*value)
            }
            Expr::Var(k) => {
                let v = self.system.vars.get(*k).ok_or("refers to an unknown variable")?;
                self.enter((false, *k), v.initial.as_ref().unwrap_or(&v.value))
            }
            Expr::State(k) => {
                let s = self.system.states.get(*k).ok_or("refers to an unknown stock")?;
                self.enter((true, *k), &s.initial)
            }
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
            Expr::Lookup { table, mode: LookupMode::Interpolate, x } => {
                let x = self.eval(x)?;
                let t = self.system.tables.get(*table).ok_or("refers to an unknown lookup")?;
                Ok(interpolate(&t.points, x))
            }
            Expr::Lookup { .. } | Expr::LookupArea { .. } => {
                Err("must be known when the model is compiled, and a LOOKUP function's value is not".into())
            }
            Expr::Draw(_) => Err("must be known when the model is compiled, and depends on a random draw".into()),
        }
    }

    fn enter(&mut self, item: (bool, usize), definition: &Expr) -> Result<f64, String> {
        if self.path.contains(&item) {
            return Err("must be known when the model is compiled, and its definition is circular".into());
        }
        if self.path.len() >= MAX_FOLD_DEPTH {
            return Err(format!("depends on a chain of more than {MAX_FOLD_DEPTH} definitions"));
        }
        self.path.push(item);
        let value = self.eval(definition);
        self.path.pop();
        value
    }
}

/// A lookup's value at `x`: linear between points, the end values beyond them (Vensim's lookup call).
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return f64::NAN;
    };
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for w in points.windows(2) {
        if let [(x0, y0), (x1, y1)] = *w
            && x < x1
        {
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0);
        }
    }
    last.1
}
