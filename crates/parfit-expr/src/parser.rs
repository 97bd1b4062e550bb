//! Recursive-descent parser from tokens to a small syntax tree. Constructs outside the supported subset
//! are rejected here when they are visible in the syntax (powers with `^`, indexing, index ranges,
//! vector references); tensor-level checks (which tensors may exist) live in `compile`.

use crate::lexer::{Located, Pos, Tok, Token, tokenize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Exp,
    Log,
    Log10,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Arcsinh,
    Arccosh,
    Arctan,
    Abs,
    Sigmoid,
    Heaviside,
    Pow,
    Min,
    Max,
    Copysign,
    /// `piecewise(c0, v0, c1, v1, …, fallback)`: the first `v_k` whose `c_k >= 0`, else `fallback`.
    Piecewise,
    /// `interp1d(x_i, y_i, q)`: piecewise-linear interpolation through constant points, clamped at the ends.
    Interp1d,
}

impl Func {
    /// DiffSL's names for its element-wise functions.
    pub const ALL: [(&'static str, Func); 22] = [
        ("exp", Func::Exp),
        ("log", Func::Log),
        ("log10", Func::Log10),
        ("sqrt", Func::Sqrt),
        ("sin", Func::Sin),
        ("cos", Func::Cos),
        ("tan", Func::Tan),
        ("sinh", Func::Sinh),
        ("cosh", Func::Cosh),
        ("tanh", Func::Tanh),
        ("arcsinh", Func::Arcsinh),
        ("arccosh", Func::Arccosh),
        ("arctan", Func::Arctan),
        ("abs", Func::Abs),
        ("sigmoid", Func::Sigmoid),
        ("heaviside", Func::Heaviside),
        ("pow", Func::Pow),
        ("min", Func::Min),
        ("max", Func::Max),
        ("copysign", Func::Copysign),
        ("piecewise", Func::Piecewise),
        ("interp1d", Func::Interp1d),
    ];

    fn from_name(name: &str) -> Option<Func> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    /// The number of arguments, `None` for `piecewise` (odd, at least 3).
    pub fn arity(self) -> Option<usize> {
        match self {
            Func::Pow | Func::Min | Func::Max | Func::Copysign => Some(2),
            Func::Interp1d => Some(3),
            Func::Piecewise => None,
            _ => Some(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    /// A scalar by name: `k`, `x`, `t`.
    Name(String, Pos),
    /// A vector or part of one: `v_i`, `v_i[2]`, `v_i[1:3]`.
    Tensor(TensorRef),
    Neg(Box<Expr>),
    /// `first op₁ e₁ op₂ e₂ …`, applied left to right: a sum of `+`/`-` terms or a product of `*`/`/`
    /// factors. Long chains (a generated sum of 10⁶ terms) stay flat, so no walk over the tree recurses once
    /// per term.
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
    Call(Func, Vec<Expr>),
    /// A random draw (Monte Carlo models only): its kind, arguments, where it is, and its call site's number
    /// in source order.
    Draw(Draw, Vec<Expr>, Pos, usize),
    /// `read('file.tns')`: a sparse tensor imported from a FROSTT file, only ever a whole element.
    Read(String, Pos),
}

/// The random-draw functions of the Monte Carlo dialect. Each call site draws once per path and period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Draw {
    /// `normal()`: a standard normal.
    Normal,
    /// `uniform()`: uniform on [0, 1).
    Uniform,
    /// `lognormal(mu, sigma)`: `exp(mu + sigma · z)` for a standard normal `z`.
    Lognormal,
    /// `bernoulli(p)`: 1 with probability `p`, else 0.
    Bernoulli,
}

impl Draw {
    pub const ALL: [(&'static str, Draw); 4] = [
        ("normal", Draw::Normal),
        ("uniform", Draw::Uniform),
        ("lognormal", Draw::Lognormal),
        ("bernoulli", Draw::Bernoulli),
    ];

    fn from_name(name: &str) -> Option<Draw> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, d)| d)
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, d)| *d == self).map_or("", |(n, _)| n)
    }

    pub fn arity(self) -> usize {
        match self {
            Draw::Normal | Draw::Uniform => 0,
            Draw::Lognormal => 2,
            Draw::Bernoulli => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// The name without its index letters: `v` in `v_i`.
    pub base: String,
    /// The index letters: `i` in `v_i`.
    pub index: String,
    pub slice: Option<Slice>,
    pub pos: Pos,
}

impl TensorRef {
    pub fn full_name(&self) -> String {
        format!("{}_{}", self.base, self.index)
    }
}

/// `[k]`, `[a:b]` (`b` exclusive) or `[k]` with `k` depending on the model index `N`, after a vector
/// reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slice {
    At(usize),
    Range(usize, usize),
    /// An index computed from `N` at run time.
    Model(IntExpr),
    /// `[a:b]` with bounds computed from `N` at run time and a fixed length `b - a`: the start and length.
    ModelRange(IntExpr, usize),
}

/// DiffSL's integer index expressions: whole numbers and the model index `N` under `+ - * / %` (`/`
/// truncates, `%` keeps the sign of the dividend, as integer arithmetic does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntExpr {
    Int(i64),
    N,
    Neg(Box<IntExpr>),
    Bin(IntOp, Box<IntExpr>, Box<IntExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl IntExpr {
    /// The value at model index `n`; `None` on overflow or division by zero.
    pub fn eval(&self, n: i64) -> Option<i64> {
        Some(match self {
            IntExpr::Int(k) => *k,
            IntExpr::N => n,
            IntExpr::Neg(x) => x.eval(n)?.checked_neg()?,
            IntExpr::Bin(op, a, b) => {
                let (a, b) = (a.eval(n)?, b.eval(n)?);
                match op {
                    IntOp::Add => a.checked_add(b)?,
                    IntOp::Sub => a.checked_sub(b)?,
                    IntOp::Mul => a.checked_mul(b)?,
                    IntOp::Div => a.checked_div(b)?,
                    IntOp::Rem => a.checked_rem(b)?,
                }
            }
        })
    }

    fn reads_n(&self) -> bool {
        match self {
            IntExpr::Int(_) => false,
            IntExpr::N => true,
            IntExpr::Neg(x) => x.reads_n(),
            IntExpr::Bin(_, a, b) => a.reads_n() || b.reads_n(),
        }
    }
}

/// An element's index range: one `(start, end)` per axis (`end` exclusive) from `(a)`, `(a:b)` or
/// `(a..b)`; `..` on every axis of a 2-D range makes it a diagonal (in 1-D `a..b` is `a:b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElemRange {
    pub axes: Vec<(usize, usize)>,
    pub diagonal: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub range: Option<ElemRange>,
    /// `name = expr` names the element; a bare expression leaves it unnamed.
    pub name: Option<(String, Pos)>,
    pub expr: Expr,
    /// Where the element starts (its range or name, when given).
    pub pos: Pos,
    pub expr_pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The full name as written, e.g. `u_i` or `x0`.
    pub name: String,
    pub pos: Pos,
    pub elements: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ast {
    pub tensors: Vec<Tensor>,
    /// Where the input ends, for errors about something missing.
    pub end: Pos,
}

/// How deeply expressions may nest (parentheses, signs, calls, index expressions). Every pass over the tree
/// recurses once per level, so the bound keeps them within any thread's stack; real models nest a few levels.
pub const MAX_NESTING: usize = 100;

/// The largest index (and so vector length) an element range or slice may give: 10⁷ elements already
/// compile to gigabytes of register code.
pub const MAX_INDEX: usize = 10_000_000;

pub fn parse(src: &str) -> Result<Ast, Located> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, at: 0, draw_sites: 0, depth: 0 };
    p.model()
}

struct Parser<'s> {
    toks: Vec<Token<'s>>,
    at: usize,
    /// Random-draw call sites seen so far.
    draw_sites: usize,
    /// How many factors are open around the current token (see [`MAX_NESTING`]).
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Token<'s> {
        self.toks[self.at]
    }

    fn peek_at(&self, ahead: usize) -> Token<'s> {
        self.toks[(self.at + ahead).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token<'s> {
        let t = self.toks[self.at];
        if t.tok != Tok::Eof {
            self.at += 1;
        }
        t
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token<'s>, Located> {
        let t = self.peek();
        if t.tok == tok { Ok(self.bump()) } else { Err(Located::new(t.pos, format!("expected {what}, found {t}"))) }
    }

    fn model(&mut self) -> Result<Ast, Located> {
        let mut tensors = Vec::new();
        loop {
            let t = self.peek();
            match t.tok {
                Tok::Eof => return Ok(Ast { tensors, end: t.pos }),
                Tok::Ident if t.text == "in" && self.peek_at(1).tok == Tok::Eq => {
                    // DiffSL parses the old input list, then refuses it.
                    let list = self.input_list()?;
                    return Err(Located::new(
                        list,
                        "input list is no longer supported: define the inputs as 'in_i { a = …, b = … }'",
                    ));
                }
                Tok::Ident => tensors.push(self.tensor()?),
                _ => {
                    return Err(Located::new(
                        t.pos,
                        format!("expected a tensor definition like 'name {{ … }}', found {t}"),
                    ));
                }
            }
        }
    }

    /// `in = [a, b, c]`, checked as DiffSL's grammar has it; where it starts.
    fn input_list(&mut self) -> Result<Pos, Located> {
        let pos = self.bump().pos;
        self.bump(); // '='
        self.expect(Tok::LBracket, "'[' after 'in ='")?;
        loop {
            let t = self.peek();
            match t.tok {
                Tok::RBracket => {
                    self.bump();
                    return Ok(pos);
                }
                Tok::Ident => {
                    self.bump();
                    let sep = self.peek();
                    match sep.tok {
                        Tok::Comma => {
                            self.bump();
                        }
                        Tok::RBracket => {}
                        _ => {
                            return Err(Located::new(
                                sep.pos,
                                format!("expected ',' or ']' in the 'in' list, found {sep}"),
                            ));
                        }
                    }
                }
                _ => return Err(Located::new(t.pos, format!("expected an input name or ']', found {t}"))),
            }
        }
    }

    /// `name { element, element, … }` with an optional trailing comma.
    fn tensor(&mut self) -> Result<Tensor, Located> {
        let head = self.bump();
        let brace = self.peek();
        if brace.tok != Tok::LBrace {
            let hint = if head.text == "in" { " (inputs are written 'in_i { name = default }')" } else { "" };
            return Err(Located::new(
                brace.pos,
                format!("expected '{{' after tensor name {head}, found {brace}{hint}"),
            ));
        }
        self.bump();
        let mut elements = Vec::new();
        loop {
            if self.peek().tok == Tok::RBrace {
                self.bump();
                break;
            }
            elements.push(self.element()?);
            let sep = self.peek();
            match sep.tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBrace => {}
                _ => return Err(Located::new(sep.pos, format!("expected ',' or '}}' after element, found {sep}"))),
            }
        }
        Ok(Tensor { name: head.text.to_string(), pos: head.pos, elements })
    }

    fn element(&mut self) -> Result<Element, Located> {
        let pos = self.peek().pos;
        let range = if self.at_range_spec() { Some(self.range_spec()?) } else { None };
        let first = self.peek();
        let name = if first.tok == Tok::Ident && self.peek_at(1).tok == Tok::Eq {
            self.bump();
            self.bump();
            if first.text.contains('_') {
                return Err(Located::new(
                    first.pos,
                    format!("element name '{}' cannot contain '_' (DiffSL names are letters and digits)", first.text),
                ));
            }
            Some((first.text.to_string(), first.pos))
        } else {
            None
        };
        let expr_pos = self.peek().pos;
        let read = self.peek();
        let expr = if read.text == "read" && self.peek_at(1).tok == Tok::LParen && self.peek_at(2).tok == Tok::Str {
            self.bump();
            self.bump();
            let file = self.bump().text;
            self.expect(Tok::RParen, "')' after the file name")?;
            Expr::Read(file[1..file.len() - 1].to_string(), read.pos)
        } else {
            self.expr()?
        };
        Ok(Element { range, name, expr, pos, expr_pos })
    }

    /// Whether the next tokens are an element range `(int[:int], …):` rather than a parenthesised expression.
    fn at_range_spec(&self) -> bool {
        if self.peek().tok != Tok::LParen {
            return false;
        }
        let mut k = 1;
        loop {
            if !is_integer(&self.peek_at(k)) {
                return false;
            }
            k += 1;
            if matches!(self.peek_at(k).tok, Tok::Colon | Tok::DotDot) {
                if !is_integer(&self.peek_at(k + 1)) {
                    return false;
                }
                k += 2;
            }
            match self.peek_at(k).tok {
                // No expression has a comma inside parentheses, so this can only be a range.
                Tok::Comma => k += 1,
                Tok::RParen => return self.peek_at(k + 1).tok == Tok::Colon,
                _ => return false,
            }
        }
    }

    /// `(a): `, `(a:b): ` or `(a..b): `, with one comma-separated range per axis.
    fn range_spec(&mut self) -> Result<ElemRange, Located> {
        let pos = self.bump().pos; // '('
        let mut axes = Vec::new();
        let (mut colons, mut dots) = (0, 0);
        loop {
            let a = self.integer()?;
            let b = if matches!(self.peek().tok, Tok::Colon | Tok::DotDot) {
                if self.bump().tok == Tok::DotDot {
                    dots += 1
                } else {
                    colons += 1
                }
                let t = self.peek();
                let b = self.integer()?;
                if b < a {
                    return Err(Located::new(t.pos, format!("range end {b} is before its start {a}")));
                }
                b
            } else {
                a + 1
            };
            axes.push((a, b));
            if self.bump().tok == Tok::RParen {
                break;
            }
        }
        self.bump(); // ':'
        if dots > 0 && dots < axes.len() {
            return Err(Located::new(
                pos,
                "a diagonal range uses '..' on every axis, as '(0..3, 0..3)'; mix ':' ranges and single indices \
                 only without '..'",
            ));
        }
        let diagonal = dots > 1 && colons == 0;
        Ok(ElemRange { axes, diagonal, pos })
    }

    /// A non-negative integer literal (checked by `at_range_spec`) no larger than [`MAX_INDEX`].
    fn integer(&mut self) -> Result<usize, Located> {
        let t = self.bump();
        if !is_integer(&t) {
            return Err(Located::new(t.pos, format!("expected an index (a whole number), found {t}")));
        }
        match t.text.parse::<usize>() {
            Ok(k) if k <= MAX_INDEX => Ok(k),
            _ => Err(Located::new(
                t.pos,
                format!("index {} is out of range: vectors have at most {MAX_INDEX} elements", t.text),
            )),
        }
    }

    fn expr(&mut self) -> Result<Expr, Located> {
        self.chain(Self::term, |t| match t {
            Tok::Plus => Some(BinOp::Add),
            Tok::Minus => Some(BinOp::Sub),
            _ => None,
        })
    }

    fn term(&mut self) -> Result<Expr, Located> {
        self.chain(Self::factor, |t| match t {
            Tok::Star => Some(BinOp::Mul),
            Tok::Slash => Some(BinOp::Div),
            _ => None,
        })
    }

    /// `operand (op operand)*` as one flat [`Expr::Chain`] (or the operand alone).
    fn chain(
        &mut self,
        operand: fn(&mut Self) -> Result<Expr, Located>,
        op: fn(Tok) -> Option<BinOp>,
    ) -> Result<Expr, Located> {
        let first = operand(self)?;
        let mut rest = Vec::new();
        while let Some(op) = op(self.peek().tok) {
            self.bump();
            rest.push((op, operand(self)?));
        }
        Ok(if rest.is_empty() { first } else { Expr::Chain(Box::new(first), rest) })
    }

    /// A signed primary. The sign binds tighter than `*` and `/`, as in DiffSL's grammar; since negation is
    /// exact this gives the same value as binding it looser. Every nested expression passes through here,
    /// so this is where nesting is counted.
    fn factor(&mut self) -> Result<Expr, Located> {
        let t = self.peek();
        if self.depth == MAX_NESTING {
            return Err(Located::new(
                t.pos,
                format!("expression nesting deeper than {MAX_NESTING} levels (parentheses, signs and calls)"),
            ));
        }
        self.depth += 1;
        let e = self.signed(t);
        self.depth -= 1;
        e
    }

    fn signed(&mut self, t: Token<'s>) -> Result<Expr, Located> {
        let e = match t.tok {
            Tok::Minus => {
                self.bump();
                Expr::Neg(Box::new(self.factor()?))
            }
            Tok::Plus => {
                self.bump();
                self.factor()?
            }
            _ => self.primary()?,
        };
        let next = self.peek();
        if next.tok == Tok::Caret {
            return Err(Located::new(next.pos, "'^' is not DiffSL: write pow(base, exponent)"));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, Located> {
        let t = self.peek();
        match t.tok {
            Tok::Num(v) => {
                self.bump();
                Ok(Expr::Num(v))
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                let close = self.peek();
                match close.tok {
                    Tok::RParen => {
                        self.bump();
                        Ok(e)
                    }
                    _ => Err(Located::new(close.pos, format!("expected ')', found {close}"))),
                }
            }
            Tok::Ident => {
                self.bump();
                let next = self.peek().tok;
                if next == Tok::LParen {
                    return self.call(t);
                }
                let Some((base, index)) = t.text.split_once('_') else {
                    if next == Tok::LBracket {
                        return Err(Located::new(
                            t.pos,
                            format!("only vectors can be indexed: write '{0}_i[…]' if '{0}' is a vector", t.text),
                        ));
                    }
                    return Ok(Expr::Name(t.text.to_string(), t.pos));
                };
                if index.is_empty() || !index.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(Located::new(
                        t.pos,
                        format!("invalid name '{}': '_' may only introduce index letters, as in 'u_i'", t.text),
                    ));
                }
                let slice = if next == Tok::LBracket { Some(self.slice()?) } else { None };
                Ok(Expr::Tensor(TensorRef { base: base.to_string(), index: index.to_string(), slice, pos: t.pos }))
            }
            _ => Err(Located::new(t.pos, format!("expected an expression, found {t}"))),
        }
    }

    /// `[k]`, `[a:b]` or `[a..b]` after a vector reference; the bounds are DiffSL's integer expressions, and
    /// only a single index may depend on the model index `N`.
    fn slice(&mut self) -> Result<Slice, Located> {
        self.bump(); // '['
        let a_pos = self.peek().pos;
        let a = self.int_expr()?;
        let slice = if matches!(self.peek().tok, Tok::Colon | Tok::DotDot) {
            self.bump();
            let at = self.peek().pos;
            let b = self.int_expr()?;
            if a.reads_n() || b.reads_n() {
                self.expect(Tok::RBracket, "']' after the index")?;
                return model_range(a, b, at);
            }
            let (a, b) = (index_value(&a, a_pos)?, index_value(&b, at)?);
            if b < a {
                return Err(Located::new(at, format!("index range end {b} is before its start {a}")));
            }
            Slice::Range(a, b)
        } else if a.reads_n() {
            Slice::Model(a)
        } else {
            Slice::At(index_value(&a, a_pos)?)
        };
        self.expect(Tok::RBracket, "']' after the index")?;
        Ok(slice)
    }

    /// `int_term (('+' | '-') int_term)*`
    fn int_expr(&mut self) -> Result<IntExpr, Located> {
        let mut acc = self.int_term()?;
        while let Some(op) = match self.peek().tok {
            Tok::Plus => Some(IntOp::Add),
            Tok::Minus => Some(IntOp::Sub),
            _ => None,
        } {
            self.bump();
            acc = IntExpr::Bin(op, Box::new(acc), Box::new(self.int_term()?));
        }
        Ok(acc)
    }

    /// `int_factor (('*' | '/' | '%') int_factor)*`
    fn int_term(&mut self) -> Result<IntExpr, Located> {
        let mut acc = self.int_factor()?;
        while let Some(op) = match self.peek().tok {
            Tok::Star => Some(IntOp::Mul),
            Tok::Slash => Some(IntOp::Div),
            Tok::Percent => Some(IntOp::Rem),
            _ => None,
        } {
            self.bump();
            acc = IntExpr::Bin(op, Box::new(acc), Box::new(self.int_factor()?));
        }
        Ok(acc)
    }

    /// `sign? (integer | 'N' | '(' int_expr ')')`, nesting counted as [`Parser::factor`] counts it.
    fn int_factor(&mut self) -> Result<IntExpr, Located> {
        let t = self.peek();
        if self.depth == MAX_NESTING {
            return Err(Located::new(t.pos, format!("index expression nesting deeper than {MAX_NESTING} levels")));
        }
        self.depth += 1;
        let e = self.int_signed(t);
        self.depth -= 1;
        e
    }

    fn int_signed(&mut self, t: Token<'s>) -> Result<IntExpr, Located> {
        self.bump();
        match t.tok {
            Tok::Minus => Ok(IntExpr::Neg(Box::new(self.int_factor()?))),
            Tok::Plus => self.int_factor(),
            Tok::Num(_) if is_integer(&t) => match t.text.parse::<i64>() {
                Ok(k) => Ok(IntExpr::Int(k)),
                Err(_) => Err(Located::new(t.pos, format!("index {} is out of range", t.text))),
            },
            Tok::Ident if t.text == "N" => Ok(IntExpr::N),
            Tok::LParen => {
                let e = self.int_expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            _ => Err(Located::new(
                t.pos,
                format!("expected an index (a whole number, 'N', or them under + - * / %), found {t}"),
            )),
        }
    }

    fn call(&mut self, name: Token<'s>) -> Result<Expr, Located> {
        if let Some(draw) = Draw::from_name(name.text) {
            let args = self.args(name)?;
            let n = draw.arity();
            if args.len() != n {
                let s = if n == 1 { "" } else { "s" };
                return Err(Located::new(
                    name.pos,
                    format!("random draw '{}' takes {n} argument{s}, found {}", name.text, args.len()),
                ));
            }
            self.draw_sites += 1;
            return Ok(Expr::Draw(draw, args, name.pos, self.draw_sites - 1));
        }
        let Some(func) = Func::from_name(name.text) else {
            return Err(match name.text {
                "read" => Located::new(
                    name.pos,
                    "read('file.tns') is only valid as a whole element of a constant tensor, as '(0:3, 0:3): read('a.tns')'",
                ),
                _ => {
                    let known: Vec<&str> = Func::ALL.iter().map(|(n, _)| *n).collect();
                    Located::new(
                        name.pos,
                        format!("unknown function '{}' (supported: {})", name.text, known.join(", ")),
                    )
                }
            });
        };
        let args = self.args(name)?;
        match func.arity() {
            Some(n) if args.len() != n => {
                let s = if n == 1 { "" } else { "s" };
                Err(Located::new(
                    name.pos,
                    format!("function '{}' takes {n} argument{s}, found {}", name.text, args.len()),
                ))
            }
            None if args.len() < 3 || args.len() % 2 == 0 => Err(Located::new(
                name.pos,
                format!(
                    "piecewise takes an odd number (at least 3) of arguments, (check, value) pairs and a fallback; found {}",
                    args.len()
                ),
            )),
            _ => Ok(Expr::Call(func, args)),
        }
    }

    /// The arguments of a call, from its '(' to its ')'.
    fn args(&mut self, name: Token<'s>) -> Result<Vec<Expr>, Located> {
        self.bump(); // '('
        if self.peek().tok == Tok::RParen {
            self.bump();
            return Ok(Vec::new());
        }
        let mut args = vec![self.expr()?];
        loop {
            let t = self.peek();
            match t.tok {
                Tok::Comma => {
                    self.bump();
                    args.push(self.expr()?);
                }
                Tok::RParen => {
                    self.bump();
                    break;
                }
                _ => {
                    return Err(Located::new(
                        t.pos,
                        format!("expected ',' or ')' in call to {}, found {t}", name.text),
                    ));
                }
            }
        }
        Ok(args)
    }
}

/// `[a:b]` with `N` in its bounds: its length must not depend on `N` (checked over the first model indices,
/// which is where a hybrid model's few states lie).
fn model_range(a: IntExpr, b: IntExpr, at: Pos) -> Result<Slice, Located> {
    let width = |n| Some(b.eval(n)? - a.eval(n)?);
    let w = width(0);
    match w {
        Some(w) if (0..=MAX_INDEX as i64).contains(&w) && (1..64).all(|n| width(n) == Some(w)) => {
            Ok(Slice::ModelRange(a, w as usize))
        }
        _ => Err(unsupported(
            at,
            "index ranges whose length depends on 'N'",
            "a range's length must be fixed, as in 'v_i[N:N+2]'",
        )),
    }
}

/// A constant index expression's value, checked to be a valid index.
fn index_value(e: &IntExpr, pos: Pos) -> Result<usize, Located> {
    match e.eval(0) {
        Some(k) if (0..=MAX_INDEX as i64).contains(&k) => Ok(k as usize),
        Some(k) if k < 0 => Err(Located::new(pos, format!("an index must be a whole number ≥ 0, found {k}"))),
        Some(k) => {
            Err(Located::new(pos, format!("index {k} is out of range: vectors have at most {MAX_INDEX} elements")))
        }
        None => Err(Located::new(pos, "the index divides by zero or overflows")),
    }
}

fn is_integer(t: &Token<'_>) -> bool {
    matches!(t.tok, Tok::Num(_)) && t.text.bytes().all(|b| b.is_ascii_digit())
}

/// The value of a constant expression; `Err` with the first name it meets, or `None` for a vector.
#[cfg(test)]
fn const_value(e: &Expr) -> Result<f64, Option<(String, Pos)>> {
    Ok(match e {
        Expr::Num(v) => *v,
        Expr::Name(n, p) => return Err(Some((n.clone(), *p))),
        Expr::Tensor(_) | Expr::Call(..) | Expr::Draw(..) | Expr::Read(..) => return Err(None),
        Expr::Neg(x) => -const_value(x)?,
        Expr::Chain(first, rest) => {
            let mut acc = const_value(first)?;
            for (op, e) in rest {
                let b = const_value(e)?;
                acc = match op {
                    BinOp::Add => acc + b,
                    BinOp::Sub => acc - b,
                    BinOp::Mul => acc * b,
                    BinOp::Div => acc / b,
                };
            }
            acc
        }
    })
}

/// The error for a DiffSL construct parfit does not support: `not supported: <what> (line N): <detail>`.
pub fn unsupported(pos: Pos, what: &str, detail: &str) -> Located {
    Located::new(pos, format!("not supported: {what} (line {}): {detail}", pos.line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn err(src: &str) -> (usize, usize, String) {
        let e = parse(src).unwrap_err();
        (e.pos.line, e.pos.col, e.message)
    }

    #[test]
    fn precedence_is_left_associative_with_mul_over_add() {
        let ast = parse("a { 1 - 2 * 3 - 4 / 5 }").unwrap();
        let e = &ast.tensors[0].elements[0].expr;
        let n = Expr::Num;
        let want = Expr::Chain(
            Box::new(n(1.0)),
            vec![
                (BinOp::Sub, Expr::Chain(Box::new(n(2.0)), vec![(BinOp::Mul, n(3.0))])),
                (BinOp::Sub, Expr::Chain(Box::new(n(4.0)), vec![(BinOp::Div, n(5.0))])),
            ],
        );
        assert_eq!(e, &want);
    }

    #[test]
    fn errors_have_positions() {
        assert_eq!(err("a {\n  1,\n  2 x }"), (3, 5, "expected ',' or '}' after element, found 'x'".into()));
        assert_eq!(err("a { (1 + 2 }"), (1, 12, "expected ')', found '}'".into()));
        assert_eq!(err("a { 1 + }"), (1, 9, "expected an expression, found '}'".into()));
        assert_eq!(err("a 1"), (1, 3, "expected '{' after tensor name 'a', found '1'".into()));
        assert_eq!(err("a { 1"), (1, 6, "expected ',' or '}' after element, found end of input".into()));
        assert_eq!(err("a { x^2 }"), (1, 6, "'^' is not DiffSL: write pow(base, exponent)".into()));
        assert_eq!(err("in = [a b]"), (1, 9, "expected ',' or ']' in the 'in' list, found 'b'".into()));
        let refused = "input list is no longer supported: define the inputs as 'in_i { a = …, b = … }'";
        assert_eq!(err("u { 1 }\n in = [a, b]\na { 1 }"), (2, 2, refused.into()));
        assert_eq!(err(", a { 1 }").2, "expected a tensor definition like 'name { … }', found ','");
    }

    #[test]
    fn ranges_slices_and_calls() {
        let ast = parse("v_i { (0:2): x = 1, (2): 2, 3 }").unwrap();
        let els = &ast.tensors[0].elements;
        assert_eq!(els[0].range.as_ref().map(|r| (r.axes.clone(), r.diagonal)), Some((vec![(0, 2)], false)));
        assert_eq!(els[0].name.as_ref().map(|n| n.0.as_str()), Some("x"));
        assert_eq!(els[1].range.as_ref().map(|r| r.axes.clone()), Some(vec![(2, 3)]));
        assert_eq!(els[2].range, None);
        // A parenthesised expression is not a range, with or without a following ':'.
        let ast = parse("v_i { (1) * 2, (0..3, 0..3): 1 }").unwrap();
        assert_eq!(ast.tensors[0].elements[0].range, None);
        let r = ast.tensors[0].elements[1].range.clone().unwrap();
        assert_eq!((r.axes, r.diagonal), (vec![(0, 3), (0, 3)], true));
        let r = parse("A_ij { (1, 0:3): 1 }").unwrap().tensors[0].elements[0].range.clone().unwrap();
        assert_eq!((r.axes, r.diagonal), (vec![(1, 2), (0, 3)], false));
        assert!(err("A_ij { (0..2, 0:2): 1 }").2.starts_with("a diagonal range uses '..' on every axis"));
        let e = &parse("A_ij { (0:3, 0:3): read('a.tns') }").unwrap().tensors[0].elements[0].expr;
        assert!(matches!(e, Expr::Read(f, p) if f == "a.tns" && p.col == 20));
        let ast = parse("a_i { u_i[1], u_i[2 * 2:6], w_j[0..1] }").unwrap();
        let slices: Vec<Option<Slice>> = ast.tensors[0]
            .elements
            .iter()
            .map(|e| match &e.expr {
                Expr::Tensor(r) => r.slice.clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(slices, [Some(Slice::At(1)), Some(Slice::Range(4, 6)), Some(Slice::Range(0, 1))]);
        // DiffSL's integer index expressions: `/` truncates, `%` is the remainder; `N` is read at run time.
        let ast = parse("a_i { u_i[7 / 2], u_i[7 % 4], u_i[-1 + 2 * (3 - 1)], u_i[(N + 1) % 2] }").unwrap();
        let slices: Vec<Slice> = ast.tensors[0]
            .elements
            .iter()
            .map(|e| match &e.expr {
                Expr::Tensor(r) => r.slice.clone().unwrap(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(slices[..3], [Slice::At(3), Slice::At(3), Slice::At(3)]);
        let Slice::Model(k) = &slices[3] else { panic!("{:?}", slices[3]) };
        assert_eq!((k.eval(0), k.eval(1), k.eval(4)), (Some(1), Some(0), Some(1)));
        assert!(
            matches!(&parse("a { piecewise(t, 1, 2) }").unwrap().tensors[0].elements[0].expr, Expr::Call(Func::Piecewise, a) if a.len() == 3)
        );
    }

    #[test]
    fn nesting_is_bounded_where_it_goes_too_deep() {
        let deep = |open: &str, close: &str, n: usize| format!("a {{\n {}x{} }}", open.repeat(n), close.repeat(n));
        // Each parenthesis, sign or call opens one factor; the atom inside is one more.
        assert!(parse(&deep("(", ")", MAX_NESTING - 1)).is_ok());
        let want = format!("expression nesting deeper than {MAX_NESTING} levels (parentheses, signs and calls)");
        for (open, close) in [("(", ")"), ("-", ""), ("exp(", ")"), ("-(", ")")] {
            let (line, col, message) = err(&deep(open, close, 100_000));
            assert_eq!((line, message.as_str()), (2, want.as_str()), "{open}");
            assert!(col > MAX_NESTING && col <= open.len() * MAX_NESTING + 2, "{open}: column {col}");
        }
    }

    #[test]
    fn long_sums_and_products_stay_flat() {
        let n = 100_000;
        let sum = format!("a {{ {} }}", vec!["x"; n].join(" + "));
        let Expr::Chain(first, rest) = &parse(&sum).unwrap().tensors[0].elements[0].expr else { panic!("not a chain") };
        assert!(matches!(**first, Expr::Name(..)) && rest.len() == n - 1);
        assert_eq!(
            const_value(
                &parse(&format!("a {{ {} }}", vec!["2"; 1000].join(" * "))).unwrap().tensors[0].elements[0].expr
            ),
            Ok(math::powi(2f64, 1000))
        );
    }

    #[test]
    fn ranges_beyond_the_language_bound_are_refused_where_written() {
        assert_eq!(
            err("u_i {\n  (0:4000000000): x = 1 }"),
            (2, 6, format!("index 4000000000 is out of range: vectors have at most {MAX_INDEX} elements"))
        );
        assert!(err("u_i { (18446744073709551615): x = 1 }").2.contains("out of range"));
        assert!(err("u_i { (99999999999999999999999): x = 1 }").2.contains("out of range"));
        assert!(parse(&format!("u_i {{ (0:{MAX_INDEX}): x = 1 }}")).is_ok());
    }

    #[test]
    fn unsupported_syntax_is_named() {
        assert!(err("F_i { x[0] }").2.contains("only vectors can be indexed: write 'x_i[…]'"));
        assert!(matches!(
            &parse("F_i { u_i[N:N+2] }").unwrap().tensors[0].elements[0].expr,
            Expr::Tensor(r) if matches!(r.slice, Some(Slice::ModelRange(_, 2)))
        ));
        let e = err("F_i { u_i[N:2*N] }");
        assert_eq!(
            (e.1, e.2.starts_with("not supported: index ranges whose length depends on 'N' (line 1)")),
            (13, true)
        );
        assert_eq!(err("F_i { u_i[2 - 3] }"), (1, 11, "an index must be a whole number ≥ 0, found -1".into()));
        assert_eq!(err("F_i { u_i[1 / 0] }"), (1, 11, "the index divides by zero or overflows".into()));
        assert!(err("F_i { u_i[0.5] }").2.starts_with("expected an index (a whole number, 'N'"));
        assert!(err("F_i { u_i[k] }").2.starts_with("expected an index (a whole number, 'N'"));
        assert!(err("F_i { (3:1): 1 }").2.contains("range end 1 is before its start 3"));
        assert!(err("F_i { 2 * read('a.tns') }").2.starts_with("read('file.tns') is only valid as a whole element"));
        assert!(err("a { x_1 }").2.contains("invalid name 'x_1'"));
        assert!(err("a { x = 1, y_z = 2 }").2.contains("element name 'y_z' cannot contain '_'"));
        let (l, c, m) = err("a {\n foo(1) }");
        assert_eq!((l, c), (2, 2));
        assert!(m.starts_with("unknown function 'foo'"), "{m}");
        assert_eq!(err("a { pow(1) }").2, "function 'pow' takes 2 arguments, found 1");
        assert_eq!(err("a { exp(1, 2) }").2, "function 'exp' takes 1 argument, found 2");
        assert!(err("a { piecewise(1, 2) }").2.starts_with("piecewise takes an odd number"));
    }
}
