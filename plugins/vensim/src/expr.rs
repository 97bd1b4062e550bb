//! The syntax tree of Vensim equations, as the parser reads them: names are kept as written and normalised
//! (see [`crate::lexer::normalise`]), each with its byte offset in the file for error messages. Lowering
//! (`lower.rs`) turns it into `parfit_expr::system` scalar equations.

/// A subscript in a reference or on a left-hand side: an element, a range, or `range!` (a range a vector
/// function runs over).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sub {
    pub key: String,
    pub text: String,
    pub bang: bool,
    pub at: usize,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num(f64),
    /// A variable reference, `name` or `name[sub, …]`.
    Var {
        key: String,
        text: String,
        subs: Vec<Sub>,
        at: usize,
    },
    /// `name(args)` or `name[subs](args)`: a built-in, a macro, or a lookup called by name.
    Call {
        key: String,
        text: String,
        subs: Vec<Sub>,
        args: Vec<Expr>,
        at: usize,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `first op₁ e₁ op₂ e₂ …` of left-associative operators of one precedence level, applied left to right.
    /// A long sum (thousands of terms in a generated model) stays flat, so no walk recurses once per term.
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
    /// An inline lookup table (`WITH LOOKUP`'s second argument): its points.
    Table(Vec<(f64, f64)>),
    /// A single-quoted literal (a file, sheet or cell name of a `GET …` call).
    Literal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
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
    /// The value of a literal number, possibly signed (`0.05`, `-3`): what Vensim calls a constant.
    pub fn as_literal(&self) -> Option<f64> {
        match self {
            Expr::Num(v) => Some(*v),
            Expr::Unary(UnOp::Neg, a) => a.as_literal().map(|v| -v),
            _ => None,
        }
    }

    /// Call `f` on every subscript of every reference, calls' own included.
    pub fn visit_subs<'e>(&'e self, f: &mut impl FnMut(&'e Sub)) {
        match self {
            Expr::Num(_) | Expr::Table(_) | Expr::Literal(_) => {}
            Expr::Var { subs, .. } => subs.iter().for_each(f),
            Expr::Call { subs, args, .. } => {
                subs.iter().for_each(&mut *f);
                args.iter().for_each(|a| a.visit_subs(f));
            }
            Expr::Unary(_, a) => a.visit_subs(f),
            Expr::Binary(_, a, b) => {
                a.visit_subs(f);
                b.visit_subs(f);
            }
            Expr::Chain(first, rest) => {
                first.visit_subs(f);
                rest.iter().for_each(|(_, e)| e.visit_subs(f));
            }
        }
    }
}
