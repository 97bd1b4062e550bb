//! Recursive-descent parser from tokens to a small syntax tree. Constructs outside the supported subset
//! are rejected here when they are visible in the syntax (powers with `^`, indexing, index ranges,
//! vector references); tensor-level checks (which tensors may exist) live in `compile`.

use crate::lexer::{Located, Pos, Tok, Token, tokenize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Func {
    Exp,
    Log,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Abs,
    Pow,
    Min,
    Max,
}

impl Func {
    pub const ALL: [(&'static str, Func); 13] = [
        ("exp", Func::Exp),
        ("log", Func::Log),
        ("sqrt", Func::Sqrt),
        ("sin", Func::Sin),
        ("cos", Func::Cos),
        ("tan", Func::Tan),
        ("sinh", Func::Sinh),
        ("cosh", Func::Cosh),
        ("tanh", Func::Tanh),
        ("abs", Func::Abs),
        ("pow", Func::Pow),
        ("min", Func::Min),
        ("max", Func::Max),
    ];

    fn from_name(name: &str) -> Option<Func> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    pub fn arity(self) -> usize {
        match self {
            Func::Pow | Func::Min | Func::Max => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num(f64),
    Name(String, Pos),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Element {
    /// `name = expr` names the element; a bare expression leaves it unnamed.
    pub name: Option<(String, Pos)>,
    pub expr: Expr,
    /// Where the element starts (its name, when named).
    pub pos: Pos,
    pub expr_pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    /// The full name as written, e.g. `u_i` or `x0`.
    pub name: String,
    pub pos: Pos,
    pub elements: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputList {
    pub names: Vec<(String, Pos)>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ast {
    /// The `in = [a, b]` declaration, if any.
    pub inputs: Option<InputList>,
    pub tensors: Vec<Tensor>,
    /// Where the input ends, for errors about something missing.
    pub end: Pos,
}

pub(crate) fn parse(src: &str) -> Result<Ast, Located> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, at: 0 };
    p.model()
}

struct Parser<'s> {
    toks: Vec<Token<'s>>,
    at: usize,
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
        let mut inputs: Option<InputList> = None;
        let mut tensors = Vec::new();
        loop {
            let t = self.peek();
            match t.tok {
                Tok::Eof => return Ok(Ast { inputs, tensors, end: t.pos }),
                Tok::Ident if t.text == "in" && self.peek_at(1).tok == Tok::Eq => {
                    let list = self.input_list()?;
                    if let Some(first) = &inputs {
                        return Err(Located::new(
                            list.pos,
                            format!("'in' is declared twice (first at {}:{})", first.pos.line, first.pos.col),
                        ));
                    }
                    inputs = Some(list);
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

    /// `in = [a, b, c]`
    fn input_list(&mut self) -> Result<InputList, Located> {
        let pos = self.bump().pos;
        self.bump(); // '='
        self.expect(Tok::LBracket, "'[' after 'in ='")?;
        let mut names = Vec::new();
        loop {
            let t = self.peek();
            match t.tok {
                Tok::RBracket => {
                    self.bump();
                    return Ok(InputList { names, pos });
                }
                Tok::Ident => {
                    self.bump();
                    names.push((t.text.to_string(), t.pos));
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
            let hint =
                if head.text == "in" { " (inputs are written 'in_i { name = default }' or 'in = [a, b]')" } else { "" };
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
        let first = self.peek();
        let name = if first.tok == Tok::Ident && self.peek_at(1).tok == Tok::Eq {
            self.bump();
            self.bump();
            Some((first.text.to_string(), first.pos))
        } else {
            None
        };
        let expr_pos = self.peek().pos;
        let expr = self.expr()?;
        if name.is_none() && self.peek().tok == Tok::Colon {
            return Err(Located::new(first.pos, "element index specifiers like '(0:2): …' are not supported"));
        }
        Ok(Element { name, expr, pos: first.pos, expr_pos })
    }

    fn expr(&mut self) -> Result<Expr, Located> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.term()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn term(&mut self) -> Result<Expr, Located> {
        let mut lhs = self.factor()?;
        loop {
            let op = match self.peek().tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.factor()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    /// A signed primary. The sign binds tighter than `*` and `/`, as in DiffSL's grammar; since negation is
    /// exact this gives the same value as binding it looser.
    fn factor(&mut self) -> Result<Expr, Located> {
        let t = self.peek();
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
                    Tok::Colon | Tok::DotDot | Tok::Comma => Err(Located::new(
                        t.pos,
                        "element index specifiers like '(0:2): …' are not supported (only scalar elements)",
                    )),
                    _ => Err(Located::new(close.pos, format!("expected ')', found {close}"))),
                }
            }
            Tok::Ident => {
                self.bump();
                match self.peek().tok {
                    Tok::LParen => self.call(t),
                    Tok::LBracket => Err(Located::new(
                        t.pos,
                        format!("tensor indexing '{}[…]' is not supported; refer to elements by name", t.text),
                    )),
                    _ if t.text.contains('_') => Err(Located::new(
                        t.pos,
                        format!("indexed tensor reference '{}' is not supported; refer to elements by name", t.text),
                    )),
                    _ => Ok(Expr::Name(t.text.to_string(), t.pos)),
                }
            }
            _ => Err(Located::new(t.pos, format!("expected an expression, found {t}"))),
        }
    }

    fn call(&mut self, name: Token<'s>) -> Result<Expr, Located> {
        let Some(func) = Func::from_name(name.text) else {
            let known: Vec<&str> = Func::ALL.iter().map(|(n, _)| *n).collect();
            return Err(Located::new(
                name.pos,
                format!("unknown function '{}' (supported: {})", name.text, known.join(", ")),
            ));
        };
        self.bump(); // '('
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
        if args.len() != func.arity() {
            let s = if func.arity() == 1 { "" } else { "s" };
            return Err(Located::new(
                name.pos,
                format!("function '{}' takes {} argument{s}, found {}", name.text, func.arity(), args.len()),
            ));
        }
        Ok(Expr::Call(func, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> (usize, usize, String) {
        let e = parse(src).unwrap_err();
        (e.pos.line, e.pos.col, e.message)
    }

    #[test]
    fn precedence_is_left_associative_with_mul_over_add() {
        let ast = parse("a { 1 - 2 * 3 - 4 / 5 }").unwrap();
        let e = &ast.tensors[0].elements[0].expr;
        let n = |v| Box::new(Expr::Num(v));
        let want = Expr::Bin(
            BinOp::Sub,
            Box::new(Expr::Bin(BinOp::Sub, n(1.0), Box::new(Expr::Bin(BinOp::Mul, n(2.0), n(3.0))))),
            Box::new(Expr::Bin(BinOp::Div, n(4.0), n(5.0))),
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
        assert_eq!(err(", a { 1 }").2, "expected a tensor definition like 'name { … }', found ','");
    }

    #[test]
    fn unsupported_syntax_is_named() {
        assert!(err("F_i { (0:2): 1 }").2.contains("index specifiers"));
        assert!(err("F_i { -k * u_i }").2.contains("indexed tensor reference 'u_i'"));
        assert!(err("F_i { x[0] }").2.contains("tensor indexing 'x[…]'"));
        let (l, c, m) = err("a {\n foo(1) }");
        assert_eq!((l, c), (2, 2));
        assert!(m.starts_with("unknown function 'foo'"), "{m}");
        assert_eq!(err("a { pow(1) }").2, "function 'pow' takes 2 arguments, found 1");
        assert_eq!(err("a { exp(1, 2) }").2, "function 'exp' takes 1 argument, found 2");
    }
}
