//! One entry of a Vensim model (the text before its `~`) from its tokens: an equation (`name[subs] = …`,
//! `INTEG`, a number list, a lookup table, `==`, `:=`, a data variable) or a subscript range definition
//! (`r: a, b -> s`, `r <-> s`).
//!
//! Precedence, loosest first, as PySD parses Vensim: `:OR:`, `:AND:`, `:NOT:`, comparisons
//! (`= <> < > <= >=`), `+ -`, `* /`, unary `- +`, `^` (right-associative, so `-2^2` is -4 and `2^3^2`
//! is 512). Binary operators of one level associate to the left: `a - b - c` is `(a - b) - c`, which is
//! what makes an Euler step reproduce PySD bit for bit.

use crate::expr::{BinOp, Expr, Sub, UnOp};
use crate::lexer::{Located, Shown, Tok, Token, tokenize};

/// A variable's name and the subscripts its equation defines it for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lhs {
    /// The name as written (whitespace collapsed, quotes removed).
    pub name: String,
    /// The normalised name.
    pub key: String,
    /// Byte offset of the name.
    pub at: usize,
    pub subs: Vec<Sub>,
    /// `:EXCEPT:` lists: element combinations left out.
    pub except: Vec<Vec<Sub>>,
}

/// How a data variable is read between its points (`:INTERPOLATE:` and its kin after the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataMode {
    Interpolate,
    HoldBackward,
    LookForward,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rhs {
    /// `= expression`.
    Expr(Expr),
    /// `= INTEG(rate, initial)`.
    Stock { rate: Expr, init: Expr },
    /// `= 1, 2, 3` or `= 1, 2; 3, 4;`: values in row-major order over the left-hand side's ranges.
    Numbers(Vec<f64>),
    /// `name( [(x0,y0)-(x1,y1)], (x,y), … )`: a lookup table's points.
    Lookup(Vec<(f64, f64)>),
    /// `name( GET … LOOKUPS(…) )`: a lookup table read from a data file.
    LookupGet(Expr),
    /// `== expression`: an unchangeable constant.
    Unchangeable(Expr),
    /// `== 1, 2, 3` or `== TABBED ARRAY(…)`: unchangeable constants' values.
    UnchangeableNumbers(Vec<f64>),
    /// A data variable: `:= expression`, or no equation at all (its values come from outside).
    Data { expr: Option<Expr>, mode: DataMode },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Equation {
    pub lhs: Lhs,
    pub rhs: Rhs,
}

/// `name: members -> mappings` or `name <-> other`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RangeDef {
    pub name: String,
    pub key: String,
    pub at: usize,
    pub members: Members,
    /// `-> target` (positional) or `-> (target: e1, e2, …)`.
    pub mappings: Vec<Mapping>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Members {
    /// Elements and ranges (whose elements are taken in), numeric ranges `(a1-a9)` already expanded.
    List(Vec<Sub>),
    /// `<-> other`: the same elements as another range.
    Equivalent(Sub),
    /// `GET DIRECT SUBSCRIPT(…)`.
    Get(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mapping {
    pub target: Sub,
    /// The target's elements (or ranges) each of this range's elements maps to, when not positional.
    pub elements: Option<Vec<Sub>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    Equation(Equation),
    Range(RangeDef),
    /// A reality check's condition or test input (`name :THE CONDITION: …`, `name :TEST INPUT: …`): used by
    /// Vensim's reality-check runs only, so a simulation skips it.
    RealityCheck,
}

/// Parse the entry in `src[start..end]` (the text before its `~`).
pub(crate) fn parse_entry(src: &str, start: usize, end: usize) -> Result<Entry, Located> {
    let toks = tokenize(src, start, end)?;
    let mut p = Parser { src, toks, i: 0, depth: 0 };
    p.entry()
}

/// Parse a macro header's text, `NAME(input, … : output, …)`: the name, its inputs and extra outputs.
pub(crate) fn parse_macro_header(src: &str, start: usize, end: usize) -> Result<(Sub, Vec<Sub>, Vec<Sub>), Located> {
    let toks = tokenize(src, start, end)?;
    let mut p = Parser { src, toks, i: 0, depth: 0 };
    let name = p.name("the macro's name")?;
    p.expect(Tok::LParen, "'(' after the macro's name")?;
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    let mut into_outputs = false;
    loop {
        let arg = p.name("a macro argument")?;
        if into_outputs {
            outputs.push(arg)
        } else {
            inputs.push(arg)
        }
        match p.bump().tok {
            Tok::Comma => {}
            Tok::Colon if !into_outputs => into_outputs = true,
            Tok::RParen => break,
            _ => return Err(p.error_before("',' or ')' in the macro's arguments")),
        }
    }
    p.expect(Tok::Eof, "the end of the macro header")?;
    Ok((name, inputs, outputs))
}

/// How deeply expressions may nest; real models nest a few levels.
pub(crate) const MAX_NESTING: usize = 100;

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    i: usize,
    /// Levels open around the current token (see [`MAX_NESTING`]).
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek_tok(&self) -> &Tok {
        &self.peek().tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.i + k).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn found(&self) -> String {
        Shown(self.peek(), self.src).to_string()
    }

    fn error_before(&self, what: &str) -> Located {
        let t = &self.toks[self.i.saturating_sub(1)];
        Located::new(t.start, format!("expected {what}, found {}", Shown(t, self.src)))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, Located> {
        if *self.peek_tok() == tok {
            Ok(self.bump())
        } else {
            Err(Located::new(self.peek().start, format!("expected {what}, found {}", self.found())))
        }
    }

    fn name(&mut self, what: &str) -> Result<Sub, Located> {
        match self.peek_tok().clone() {
            Tok::Name { key, text } => {
                let at = self.bump().start;
                Ok(Sub { key, text, bang: false, at })
            }
            _ => Err(Located::new(self.peek().start, format!("expected {what}, found {}", self.found()))),
        }
    }

    fn entry(&mut self) -> Result<Entry, Located> {
        let first = self.peek().clone();
        let (key, name) = match &first.tok {
            Tok::Name { key, text } => (key.clone(), text.clone()),
            Tok::Keyword(k) => return Err(keyword_error(k, first.start)),
            _ => return Err(Located::new(first.start, format!("expected a variable name, found {}", self.found()))),
        };
        self.bump();
        match self.peek_tok() {
            Tok::Colon => {
                self.bump();
                return self.range_def(name, key, first.start);
            }
            Tok::Equiv => {
                self.bump();
                let other = self.name("the name of an equivalent subscript range")?;
                self.expect(Tok::Eof, "the end of the equivalence")?;
                let members = Members::Equivalent(other);
                return Ok(Entry::Range(RangeDef { name, key, at: first.start, members, mappings: Vec::new() }));
            }
            _ => {}
        }
        let subs = if *self.peek_tok() == Tok::LBracket { self.subscripts()? } else { Vec::new() };
        let mut except = Vec::new();
        if matches!(self.peek_tok(), Tok::Keyword(k) if k == "EXCEPT") {
            self.bump();
            loop {
                except.push(self.subscripts()?);
                if *self.peek_tok() != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        if matches!(self.peek_tok(), Tok::Keyword(k) if k == "THE CONDITION" || k == "TEST INPUT") {
            return Ok(Entry::RealityCheck);
        }
        let mut mode = DataMode::Interpolate;
        if let Tok::Keyword(k) = self.peek_tok() {
            mode = match k.as_str() {
                "INTERPOLATE" | "RAW" => DataMode::Interpolate,
                "HOLD BACKWARD" => DataMode::HoldBackward,
                "LOOK FORWARD" => DataMode::LookForward,
                k => return Err(keyword_error(k, self.peek().start)),
            };
            self.bump();
        }
        let lhs = Lhs { name, key, at: first.start, subs, except };
        let rhs = match self.peek_tok().clone() {
            Tok::Eq => {
                self.bump();
                self.rhs()?
            }
            Tok::EqEq => {
                self.bump();
                match self.rhs()? {
                    Rhs::Expr(e) => Rhs::Unchangeable(e),
                    Rhs::Numbers(values) => Rhs::UnchangeableNumbers(values),
                    _ => return Err(Located::new(first.start, "an unchangeable constant ('==') cannot be a stock")),
                }
            }
            Tok::DataEq => {
                self.bump();
                Rhs::Data { expr: Some(self.whole_expr()?), mode }
            }
            Tok::LParen => {
                self.bump();
                if matches!(self.peek_tok(), Tok::Name { key, .. } if key.starts_with("get ")) {
                    let get = self.expr()?;
                    self.expect(Tok::RParen, "')' closing the lookup")?;
                    self.expect(Tok::Eof, "the end of the lookup table")?;
                    Rhs::LookupGet(get)
                } else {
                    let points = self.table_body()?;
                    self.expect(Tok::Eof, "the end of the lookup table")?;
                    Rhs::Lookup(points)
                }
            }
            Tok::Eof => Rhs::Data { expr: None, mode },
            Tok::Keyword(k) => return Err(keyword_error(&k, self.peek().start)),
            _ => {
                return Err(Located::new(
                    self.peek().start,
                    format!("expected '=' after '{}', found {}", lhs.name, self.found()),
                ));
            }
        };
        Ok(Entry::Equation(Equation { lhs, rhs }))
    }

    /// `[sub, sub!, …]`.
    fn subscripts(&mut self) -> Result<Vec<Sub>, Located> {
        self.expect(Tok::LBracket, "'['")?;
        let mut subs = Vec::new();
        loop {
            let mut sub = self.name("a subscript")?;
            if *self.peek_tok() == Tok::Bang {
                self.bump();
                sub.bang = true;
            }
            subs.push(sub);
            match self.bump().tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok(subs),
                _ => return Err(self.error_before("',' or ']' in the subscripts")),
            }
        }
    }

    fn range_def(&mut self, name: String, key: String, at: usize) -> Result<Entry, Located> {
        let members = if matches!(self.peek_tok(), Tok::Name { key, .. } if key.starts_with("get "))
            && *self.peek_at(1) == Tok::LParen
        {
            Members::Get(self.expr()?)
        } else {
            let mut list = Vec::new();
            loop {
                if *self.peek_tok() == Tok::LParen {
                    self.bump();
                    list.extend(self.numbered_range()?);
                } else {
                    list.push(self.name("a subscript element")?);
                }
                if *self.peek_tok() != Tok::Comma {
                    break;
                }
                self.bump();
            }
            Members::List(list)
        };
        let mut mappings = Vec::new();
        if *self.peek_tok() == Tok::Arrow {
            self.bump();
            loop {
                if *self.peek_tok() == Tok::LParen {
                    self.bump();
                    let target = self.name("the range mapped to")?;
                    self.expect(Tok::Colon, "':' after the range mapped to")?;
                    let mut elements = Vec::new();
                    loop {
                        elements.push(self.name("an element mapped to")?);
                        if *self.peek_tok() != Tok::Comma {
                            break;
                        }
                        self.bump();
                    }
                    self.expect(Tok::RParen, "')' closing the mapping")?;
                    mappings.push(Mapping { target, elements: Some(elements) });
                } else {
                    mappings.push(Mapping { target: self.name("the range mapped to")?, elements: None });
                }
                if *self.peek_tok() != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.expect(Tok::Eof, "',' or the end of the subscript range")?;
        Ok(Entry::Range(RangeDef { name, key, at, members, mappings }))
    }

    /// `a1-a9)` after its `(`: the elements `a1` … `a9`.
    fn numbered_range(&mut self) -> Result<Vec<Sub>, Located> {
        let from = self.name("the first element of a numbered range")?;
        self.expect(Tok::Minus, "'-' in a numbered range")?;
        let to = self.name("the last element of a numbered range")?;
        self.expect(Tok::RParen, "')' closing a numbered range")?;
        let split = |s: &str| {
            let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            let (prefix, number) = s.split_at(s.len() - digits);
            (prefix.to_string(), number.to_string())
        };
        let ((p1, n1), (p2, n2)) = (split(&from.text), split(&to.text));
        let bad = || {
            Located::new(
                from.at,
                format!(
                    "a numbered range goes from a name ending in a number to one with the same prefix, found '({}-{})'",
                    from.text, to.text
                ),
            )
        };
        let (Ok(a), Ok(b)) = (n1.parse::<u64>(), n2.parse::<u64>()) else { return Err(bad()) };
        if p1 != p2 || a > b {
            return Err(bad());
        }
        if b - a >= 1_000_000 {
            return Err(Located::new(from.at, format!("a numbered range of {} elements is too long", b - a + 1)));
        }
        let width = if n1.starts_with('0') { n1.len() } else { 0 };
        Ok((a..=b)
            .map(|k| {
                let text = format!("{p1}{k:0width$}");
                Sub { key: crate::lexer::normalise(&text), text, bang: false, at: from.at }
            })
            .collect())
    }

    /// An expression that must be all that is left.
    fn whole_expr(&mut self) -> Result<Expr, Located> {
        let e = self.expr()?;
        self.end_of_expression()?;
        Ok(e)
    }

    fn end_of_expression(&mut self) -> Result<(), Located> {
        match self.peek_tok() {
            Tok::Eof => Ok(()),
            _ => Err(Located::new(self.peek().start, format!("expected an operator, found {}", self.found()))),
        }
    }

    fn rhs(&mut self) -> Result<Rhs, Located> {
        if matches!(self.peek_tok(), Tok::Name { key, .. } if key == "integ") && *self.peek_at(1) == Tok::LParen {
            self.bump();
            self.bump();
            let rate = self.expr()?;
            self.expect(Tok::Comma, "',' between the INTEG rate and initial value")?;
            let init = self.expr()?;
            self.expect(Tok::RParen, "')' closing INTEG")?;
            self.end_of_expression()?;
            return Ok(Rhs::Stock { rate, init });
        }
        // `TABBED ARRAY(1 2 3 \n 4 5 6)`: a number list separated by white space, rows by line breaks.
        if matches!(self.peek_tok(), Tok::Name { key, .. } if key == "tabbed array") && *self.peek_at(1) == Tok::LParen
        {
            self.bump();
            self.bump();
            let mut values = Vec::new();
            while *self.peek_tok() != Tok::RParen {
                values.push(self.signed_number()?);
            }
            self.bump();
            self.end_of_expression()?;
            return Ok(Rhs::Numbers(values));
        }
        let start = self.i;
        let e = self.expr()?;
        if e.as_literal().is_some() && matches!(self.peek_tok(), Tok::Comma | Tok::Semicolon) {
            self.i = start;
            return self.numbers().map(Rhs::Numbers);
        }
        self.end_of_expression()?;
        Ok(Rhs::Expr(e))
    }

    /// A number list: signed numbers separated by `,` (and `;` between rows), a `;` at the end allowed.
    fn numbers(&mut self) -> Result<Vec<f64>, Located> {
        let mut values = Vec::new();
        loop {
            values.push(self.signed_number()?);
            match self.peek_tok() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::Semicolon => {
                    self.bump();
                    if *self.peek_tok() == Tok::Eof {
                        return Ok(values);
                    }
                }
                Tok::Eof => return Ok(values),
                _ => {
                    return Err(Located::new(
                        self.peek().start,
                        format!("expected ',' or ';' in a list of numbers, found {}", self.found()),
                    ));
                }
            }
        }
    }

    fn signed_number(&mut self) -> Result<f64, Located> {
        let sign = match self.peek_tok() {
            Tok::Minus => {
                self.bump();
                -1.0
            }
            Tok::Plus => {
                self.bump();
                1.0
            }
            _ => 1.0,
        };
        match self.peek_tok() {
            Tok::Num(v) => {
                let v = *v;
                self.bump();
                Ok(sign * v)
            }
            Tok::Keyword(k) if k == "NA" => {
                self.bump();
                Ok(sign * NA)
            }
            _ => Err(Located::new(self.peek().start, format!("expected a number, found {}", self.found()))),
        }
    }

    /// A table's points after its opening `(`, through the closing `)`: an optional range
    /// `[(x0,y0)-(x1,y1)]` (with any reference points after it), then `(x, y)` pairs; or the xs then the
    /// ys as one flat list.
    fn table_body(&mut self) -> Result<Vec<(f64, f64)>, Located> {
        let at = self.peek().start;
        if *self.peek_tok() == Tok::LBracket {
            self.bump();
            let mut depth = 1;
            while depth > 0 {
                match self.bump().tok {
                    Tok::LBracket => depth += 1,
                    Tok::RBracket => depth -= 1,
                    Tok::Eof => return Err(Located::new(at, "the lookup's range '[…]' is not closed")),
                    _ => {}
                }
            }
            if *self.peek_tok() == Tok::Comma {
                self.bump();
            }
        }
        let mut points = Vec::new();
        if *self.peek_tok() == Tok::LParen {
            loop {
                self.expect(Tok::LParen, "'(' opening a lookup point (x, y)")?;
                let x = self.signed_number()?;
                self.expect(Tok::Comma, "',' between a lookup point's x and y")?;
                let y = self.signed_number()?;
                self.expect(Tok::RParen, "')' closing a lookup point")?;
                points.push((x, y));
                match self.bump().tok {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    _ => return Err(self.error_before("',' or ')' after a lookup point")),
                }
            }
        } else {
            let mut flat = Vec::new();
            loop {
                flat.push(self.signed_number()?);
                match self.bump().tok {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    _ => return Err(self.error_before("',' or ')' in a lookup's list of values")),
                }
            }
            if flat.len() % 2 != 0 {
                return Err(Located::new(
                    at,
                    format!("a lookup given as xs then ys needs an even count of numbers, found {}", flat.len()),
                ));
            }
            let n = flat.len() / 2;
            points = (0..n).map(|k| (flat[k], flat[n + k])).collect();
        }
        if points.is_empty() {
            return Err(Located::new(at, "a lookup table needs at least one point"));
        }
        // Vensim reads the points in order of x (a stable sort keeps equal xs as written: a jump).
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(points)
    }

    pub fn expr(&mut self) -> Result<Expr, Located> {
        self.or()
    }

    fn or(&mut self) -> Result<Expr, Located> {
        self.chain(Self::and, |t| matches!(t, Tok::Keyword(k) if k == "OR").then_some(BinOp::Or))
    }

    fn and(&mut self) -> Result<Expr, Located> {
        self.chain(Self::not, |t| matches!(t, Tok::Keyword(k) if k == "AND").then_some(BinOp::And))
    }

    fn not(&mut self) -> Result<Expr, Located> {
        if matches!(self.peek_tok(), Tok::Keyword(k) if k == "NOT") {
            self.bump();
            return self.nested(|p| Ok(Expr::Unary(UnOp::Not, Box::new(p.not()?))));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, Located> {
        self.chain(Self::sum, |t| match t {
            Tok::Eq => Some(BinOp::Eq),
            Tok::Ne => Some(BinOp::Ne),
            Tok::Lt => Some(BinOp::Lt),
            Tok::Le => Some(BinOp::Le),
            Tok::Gt => Some(BinOp::Gt),
            Tok::Ge => Some(BinOp::Ge),
            _ => None,
        })
    }

    fn sum(&mut self) -> Result<Expr, Located> {
        self.chain(Self::product, |t| match t {
            Tok::Plus => Some(BinOp::Add),
            Tok::Minus => Some(BinOp::Sub),
            _ => None,
        })
    }

    fn product(&mut self) -> Result<Expr, Located> {
        self.chain(Self::unary, |t| match t {
            Tok::Star => Some(BinOp::Mul),
            Tok::Slash => Some(BinOp::Div),
            _ => None,
        })
    }

    /// `operand (op operand)*` for one level of left-associative operators, as one flat [`Expr::Chain`] (or
    /// the operand alone).
    fn chain(
        &mut self,
        operand: fn(&mut Self) -> Result<Expr, Located>,
        op: fn(&Tok) -> Option<BinOp>,
    ) -> Result<Expr, Located> {
        let first = operand(self)?;
        let mut rest = Vec::new();
        while let Some(op) = op(self.peek_tok()) {
            self.bump();
            rest.push((op, operand(self)?));
        }
        Ok(if rest.is_empty() { first } else { Expr::Chain(Box::new(first), rest) })
    }

    /// Run `f` one level deeper, refusing expressions nested beyond [`MAX_NESTING`]: every parenthesis,
    /// call, sign, `:NOT:` and `^` passes through here, and every walk over the tree recurses once per level.
    fn nested(&mut self, f: impl FnOnce(&mut Self) -> Result<Expr, Located>) -> Result<Expr, Located> {
        if self.depth == MAX_NESTING {
            return Err(Located::new(
                self.peek().start,
                format!("expression nesting deeper than {MAX_NESTING} levels (parentheses, signs, calls and powers)"),
            ));
        }
        self.depth += 1;
        let e = f(self);
        self.depth -= 1;
        e
    }

    fn unary(&mut self) -> Result<Expr, Located> {
        self.nested(|p| match p.peek_tok() {
            Tok::Minus => {
                p.bump();
                Ok(Expr::Unary(UnOp::Neg, Box::new(p.unary()?)))
            }
            Tok::Plus => {
                p.bump();
                p.unary()
            }
            _ => p.power(),
        })
    }

    fn power(&mut self) -> Result<Expr, Located> {
        let base = self.primary()?;
        if *self.peek_tok() == Tok::Caret {
            self.bump();
            // The exponent may carry its own sign (`2^-1`) and chains to the right (`2^3^2` = 2^9).
            let exponent = self.unary()?;
            return Ok(Expr::Binary(BinOp::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, Located> {
        let here = self.i;
        let t = self.bump();
        match t.tok {
            Tok::Num(v) => Ok(Expr::Num(v)),
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::Name { key, text } => {
                let subs = if *self.peek_tok() == Tok::LBracket { self.subscripts()? } else { Vec::new() };
                if *self.peek_tok() == Tok::LParen {
                    self.call(key, text, subs, t.start)
                } else {
                    Ok(Expr::Var { key, text, subs, at: t.start })
                }
            }
            Tok::Keyword(k) if k == "NA" => Ok(Expr::Num(NA)),
            Tok::Keyword(k) => Err(keyword_error(&k, t.start)),
            Tok::Literal(s) => Ok(Expr::Literal(s)),
            _ => {
                self.i = here;
                Err(Located::new(t.start, format!("expected a number, a name or '(', found {}", self.found())))
            }
        }
    }

    fn call(&mut self, key: String, text: String, subs: Vec<Sub>, at: usize) -> Result<Expr, Located> {
        if key == "integ" {
            return Err(Located::new(at, "INTEG must be the whole right-hand side of a stock's equation"));
        }
        if key == "tabbed array" {
            return Err(Located::new(at, "TABBED ARRAY must be the whole right-hand side of a constant's equation"));
        }
        self.expect(Tok::LParen, "'('")?;
        let mut args = Vec::new();
        if *self.peek_tok() != Tok::RParen {
            loop {
                // WITH LOOKUP's table is written inline: `WITH LOOKUP(x, ([(0,0)-(1,1)], (0,0), (1,1)))`.
                if key == "with lookup" && args.len() == 1 && *self.peek_tok() == Tok::LParen {
                    self.bump();
                    args.push(Expr::Table(self.table_body()?));
                } else {
                    args.push(self.expr()?);
                }
                if *self.peek_tok() != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.expect(Tok::RParen, "',' or ')' in the argument list")?;
        Ok(Expr::Call { key, text, subs, args, at })
    }
}

/// Vensim's `:NA:`.
pub(crate) const NA: f64 = -1e38;

fn keyword_error(keyword: &str, at: usize) -> Located {
    let what = match keyword {
        "MACRO" | "END OF MACRO" => "a macro header or end must start its own entry".to_string(),
        "EXCEPT" => ":EXCEPT: belongs after a subscripted variable's name on the left-hand side".to_string(),
        "AND" | "OR" => format!(":{keyword}: needs an operand on each side"),
        _ => format!(":{keyword}: is not supported"),
    };
    Located::new(at, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn entry(s: &str) -> Result<Entry, Located> {
        parse_entry(s, 0, s.len())
    }

    fn eq(s: &str) -> Equation {
        match entry(s).unwrap() {
            Entry::Equation(e) => e,
            other => panic!("not an equation: {other:?}"),
        }
    }

    fn rhs(s: &str) -> Expr {
        match eq(&format!("x = {s}")).rhs {
            Rhs::Expr(e) => e,
            other => panic!("{other:?}"),
        }
    }

    fn var(key: &str, at: usize) -> Expr {
        Expr::Var { key: key.into(), text: key.into(), subs: Vec::new(), at }
    }

    #[test]
    fn stock_equation_keeps_left_to_right_order() {
        let e = eq("dec 1= INTEG (\n\tbirths-bday10-dec 1 loss,\n\t\t10)");
        assert_eq!((e.lhs.name.as_str(), e.lhs.key.as_str()), ("dec 1", "dec 1"));
        let Rhs::Stock { rate, init } = e.rhs else { panic!() };
        let rest = vec![(BinOp::Sub, var("bday10", 23)), (BinOp::Sub, var("dec 1 loss", 30))];
        assert_eq!(rate, Expr::Chain(Box::new(var("births", 16)), rest));
        assert_eq!(init, Expr::Num(10.0));
    }

    #[test]
    fn precedence_follows_pysd() {
        let n = |v: f64| Box::new(Expr::Num(v));
        assert_eq!(rhs("-2^2"), Expr::Unary(UnOp::Neg, Box::new(Expr::Binary(BinOp::Pow, n(2.0), n(2.0)))));
        assert_eq!(rhs("2^3^2"), Expr::Binary(BinOp::Pow, n(2.0), Box::new(Expr::Binary(BinOp::Pow, n(3.0), n(2.0)))));
        assert_eq!(
            rhs(":NOT: 1 = 1 :OR: 0 :AND: 1"),
            Expr::Chain(
                Box::new(Expr::Unary(UnOp::Not, Box::new(Expr::Chain(n(1.0), vec![(BinOp::Eq, Expr::Num(1.0))])))),
                vec![(BinOp::Or, Expr::Chain(n(0.0), vec![(BinOp::And, Expr::Num(1.0))]))]
            )
        );
        assert_eq!(rhs("-0.5").as_literal(), Some(-0.5));
        assert_eq!(rhs("2*3").as_literal(), None);
    }

    #[test]
    fn nesting_is_bounded_and_long_sums_stay_flat() {
        for (open, close) in [("(", ")"), ("-", ""), (":NOT: ", ""), ("ABS(", ")"), ("2^", "")] {
            let deep = format!("x = {}1{}", open.repeat(100_000), close.repeat(100_000));
            let e = entry(&deep).unwrap_err();
            assert!(e.message.starts_with("expression nesting deeper than 100 levels"), "{open}: {}", e.message);
        }
        let Expr::Chain(_, rest) = rhs(&vec!["y"; 100_000].join(" + ")) else { panic!("not a chain") };
        assert_eq!(rest.len(), 99_999);
    }

    #[test]
    fn subscripts_lists_tables_and_ranges() {
        let e = eq("x[a, r!] :EXCEPT: [a, b1] = 1, -2; 3, :NA:;");
        assert_eq!(
            e.lhs.subs.iter().map(|s| (s.key.as_str(), s.bang)).collect::<Vec<_>>(),
            [("a", false), ("r", true)]
        );
        assert_eq!(e.lhs.except.len(), 1);
        assert_eq!(e.rhs, Rhs::Numbers(vec![1.0, -2.0, 3.0, NA]));
        assert_eq!(eq("t([(0,0)-(2,2)],(0,1),(2,-1))").rhs, Rhs::Lookup(vec![(0.0, 1.0), (2.0, -1.0)]));
        assert_eq!(eq("t(0, 1, 5, 6)").rhs, Rhs::Lookup(vec![(0.0, 5.0), (1.0, 6.0)]));
        let Entry::Range(r) = entry("r: (a08-a10), b -> (s: x, y, z, w), q").unwrap() else { panic!() };
        let Members::List(m) = r.members else { panic!() };
        assert_eq!(m.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["a08", "a09", "a10", "b"]);
        assert_eq!(r.mappings.len(), 2);
        assert!(matches!(entry("a <-> b").unwrap(), Entry::Range(RangeDef { members: Members::Equivalent(_), .. })));
        let Expr::Call { args, .. } = rhs("WITH LOOKUP(Time, ([(0,0)-(1,1)], (0,0), (1,1)))") else { panic!() };
        assert_eq!(args[1], Expr::Table(vec![(0.0, 0.0), (1.0, 1.0)]));
        assert_eq!(eq("d").rhs, Rhs::Data { expr: None, mode: DataMode::Interpolate });
        assert!(matches!(eq("d :HOLD BACKWARD: := 1").rhs, Rhs::Data { mode: DataMode::HoldBackward, .. }));
        assert!(matches!(eq("u == 3").rhs, Rhs::Unchangeable(_)));
    }

    #[test]
    fn malformed_entries_are_refused_with_the_place() {
        let err = |s: &str| entry(s).unwrap_err();
        assert_eq!(err("x = 1 + INTEG(y, 1)").message, "INTEG must be the whole right-hand side of a stock's equation");
        assert_eq!(eq("t((1,0),(0,1))").rhs, Rhs::Lookup(vec![(0.0, 1.0), (1.0, 0.0)]));
        assert_eq!(err("x = 1, 2 3").at, 9);
        assert!(err("r: (a3-a1)").message.starts_with("a numbered range goes from"));
        assert!(err("x[a = 1").message.starts_with("expected ',' or ']'"));
    }
}
