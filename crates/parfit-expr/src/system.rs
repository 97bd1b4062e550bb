//! Models given as scalar equations rather than DiffSL text: what front ends other than DiffSL (the Vensim
//! reader) lower their models to, so that every model is compiled, interpreted, JIT-compiled and
//! differentiated by the same code.
//!
//! A [`System`] is a set of named scalar values over parameters, states and time: auxiliaries ([`Var`]),
//! states with their initial values and update rules ([`State`]), outputs, and lookup tables. It knows
//! nothing of the front end's syntax; a front end keeps its own map from each item back to its source text
//! to place a [`SystemError`] there.

use crate::eval::{DrawKind, Op};

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

/// A piecewise-linear lookup table: points with increasing `x` (equal neighbours allowed: a jump).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// How a table is read.
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
    /// numbered in the order [`System`] lists them (auxiliaries, then states' updates, then outputs).
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
