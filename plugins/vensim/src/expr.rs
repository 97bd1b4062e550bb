//! The expression tree the parser builds and the compiler lowers to register code.
//!
//! Kept free of anything Vensim-specific beyond the operator set, so that a shared expression compiler
//! (ODE, Vensim, Monte Carlo plugins) can replace this module and [`crate::eval`] later.

/// A scalar expression. Variables are stored by their normalised name (see [`crate::lexer::normalise`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num(f64),
    /// A variable reference; `at` is the byte offset of its first character in the model text.
    Var {
        key: String,
        at: usize,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `first op₁ e₁ op₂ e₂ …` of left-associative operators of one precedence level, applied left to right.
    /// A long sum (thousands of terms in a generated model) stays flat, so no walk recurses once per term.
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
    /// `IF THEN ELSE(cond, then, else)`: both branches are evaluated (they are pure), one is kept.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UnOp {
    Neg,
    Not,
    Abs,
    Exp,
    Ln,
    Sqrt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl Expr {
    /// Call `f` on every variable reference, left to right.
    pub fn visit_vars<'e>(&'e self, f: &mut impl FnMut(&'e str, usize)) {
        match self {
            Expr::Num(_) => {}
            Expr::Var { key, at } => f(key, *at),
            Expr::Unary(_, a) => a.visit_vars(f),
            Expr::Binary(_, a, b) => {
                a.visit_vars(f);
                b.visit_vars(f);
            }
            Expr::Chain(first, rest) => {
                first.visit_vars(f);
                rest.iter().for_each(|(_, e)| e.visit_vars(f));
            }
            Expr::If(c, a, b) => {
                c.visit_vars(f);
                a.visit_vars(f);
                b.visit_vars(f);
            }
        }
    }

    /// The value of a literal number, possibly signed (`0.05`, `-3`): what Vensim calls a constant.
    pub fn as_literal(&self) -> Option<f64> {
        match self {
            Expr::Num(v) => Some(*v),
            Expr::Unary(UnOp::Neg, a) => a.as_literal().map(|v| -v),
            _ => None,
        }
    }
}
