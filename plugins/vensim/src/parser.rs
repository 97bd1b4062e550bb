//! One Vensim equation (`name = expression`, or a stock `name = INTEG(rate, initial)`) from its tokens.
//!
//! Precedence, loosest first, as PySD parses Vensim: `:OR:`, `:AND:`, `:NOT:`, comparisons
//! (`= <> < > <= >=`), `+ -`, `* /`, unary `- +`, `^` (right-associative, so `-2^2` is -4 and `2^3^2`
//! is 512). Binary operators of one level associate to the left: `a - b - c` is `(a - b) - c`, which is
//! what makes an Euler step reproduce PySD bit for bit.

use crate::expr::{BinOp, Expr, UnOp};
use crate::lexer::{Located, Shown, Tok, Token, tokenize};

/// A parsed equation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Equation {
    /// The name as written (whitespace collapsed, quotes removed).
    pub name: String,
    /// The normalised name.
    pub key: String,
    /// Byte offset of the name.
    pub at: usize,
    pub rhs: Rhs,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rhs {
    /// `INTEG(rate, initial)`.
    Stock {
        rate: Expr,
        init: Expr,
    },
    Expr(Expr),
}

/// Vensim functions this plugin evaluates, by normalised name, with their arity.
const SUPPORTED: &[(&str, usize)] =
    &[("min", 2), ("max", 2), ("abs", 1), ("exp", 1), ("ln", 1), ("sqrt", 1), ("if then else", 3), ("integ", 2)];

/// Parse the equation in `src[start..end]` (the text before its `~`).
pub(crate) fn parse_equation(src: &str, start: usize, end: usize) -> Result<Equation, Located> {
    let toks = tokenize(src, start, end)?;
    let mut p = Parser { src, toks, i: 0, depth: 0 };
    p.equation()
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
        &self.toks[self.i]
    }

    fn peek_tok(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn found(&self) -> String {
        Shown(self.peek(), self.src).to_string()
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, Located> {
        if *self.peek_tok() == tok {
            Ok(self.bump())
        } else {
            Err(Located::new(self.peek().start, format!("expected {what}, found {}", self.found())))
        }
    }

    fn equation(&mut self) -> Result<Equation, Located> {
        let first = self.peek().clone();
        let (key, name) = match &first.tok {
            Tok::Name { key, text } => (key.clone(), text.clone()),
            Tok::Keyword(k) => return Err(keyword_error(k, first.start)),
            _ => return Err(Located::new(first.start, format!("expected a variable name, found {}", self.found()))),
        };
        self.bump();
        let rhs = match self.peek_tok().clone() {
            Tok::Eq => {
                self.bump();
                self.rhs()?
            }
            Tok::LBracket => return Err(subscripts(self.peek().start)),
            Tok::LParen => {
                return Err(Located::new(
                    self.peek().start,
                    format!("lookup (table function) definitions such as '{name}(...)' are not supported"),
                ));
            }
            Tok::DataEq => {
                return Err(Located::new(self.peek().start, "data equations (':=') are not supported"));
            }
            Tok::EqEq => {
                return Err(Located::new(self.peek().start, "unchangeable constants ('==') are not supported"));
            }
            Tok::Colon | Tok::Equiv => {
                return Err(Located::new(self.peek().start, "subscript range definitions are not supported"));
            }
            Tok::Keyword(k) => return Err(keyword_error(&k, self.peek().start)),
            Tok::Eof => {
                return Err(Located::new(
                    first.start,
                    format!("'{name}' has no equation: data variables are not supported"),
                ));
            }
            _ => {
                return Err(Located::new(
                    self.peek().start,
                    format!("expected '=' after '{name}', found {}", self.found()),
                ));
            }
        };
        Ok(Equation { name, key, at: first.start, rhs })
    }

    fn rhs(&mut self) -> Result<Rhs, Located> {
        let rhs = if matches!(self.peek_tok(), Tok::Name { key, .. } if key == "integ")
            && self.toks.get(self.i + 1).is_some_and(|t| t.tok == Tok::LParen)
        {
            self.bump();
            self.bump();
            let rate = self.expr()?;
            self.expect(Tok::Comma, "',' between the INTEG rate and initial value")?;
            let init = self.expr()?;
            self.expect(Tok::RParen, "')' closing INTEG")?;
            Rhs::Stock { rate, init }
        } else {
            Rhs::Expr(self.expr()?)
        };
        match self.peek_tok() {
            Tok::Eof => Ok(rhs),
            Tok::Comma | Tok::Semicolon => Err(Located::new(
                self.peek().start,
                "lists of numbers (values of a subscripted constant) are not supported: subscripts are not supported",
            )),
            _ => Err(Located::new(self.peek().start, format!("expected an operator, found {}", self.found()))),
        }
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
            Tok::Name { key, text } => match self.peek_tok() {
                Tok::LParen => self.call(&key, &text, t.start),
                Tok::LBracket => Err(subscripts(self.peek().start)),
                _ => Ok(Expr::Var { key, at: t.start }),
            },
            Tok::Keyword(k) if k == "NA" => Ok(Expr::Num(-1e38)),
            Tok::Keyword(k) => Err(keyword_error(&k, t.start)),
            Tok::Literal => {
                Err(Located::new(t.start, "quoted literals are only used by data functions, which are not supported"))
            }
            _ => {
                self.i = here;
                Err(Located::new(t.start, format!("expected a number, a name or '(', found {}", self.found())))
            }
        }
    }

    fn call(&mut self, key: &str, text: &str, at: usize) -> Result<Expr, Located> {
        let Some(&(_, arity)) = SUPPORTED.iter().find(|(k, _)| *k == key) else {
            return Err(Located::new(at, unsupported_function(key, text)));
        };
        if key == "integ" {
            return Err(Located::new(at, "INTEG must be the whole right-hand side of a stock's equation"));
        }
        let open = self.expect(Tok::LParen, "'('")?;
        let mut args = Vec::with_capacity(arity);
        if *self.peek_tok() != Tok::RParen {
            loop {
                args.push(self.expr()?);
                if *self.peek_tok() != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.expect(Tok::RParen, "',' or ')' in the argument list")?;
        if args.len() != arity {
            let upper = text.to_uppercase();
            return Err(Located::new(
                open.start,
                format!("{upper} takes {arity} argument{}, found {}", if arity == 1 { "" } else { "s" }, args.len()),
            ));
        }
        let mut args = args.into_iter();
        let mut next = || Box::new(args.next().expect("arity checked"));
        Ok(match key {
            "min" => Expr::Binary(BinOp::Min, next(), next()),
            "max" => Expr::Binary(BinOp::Max, next(), next()),
            "abs" => Expr::Unary(UnOp::Abs, next()),
            "exp" => Expr::Unary(UnOp::Exp, next()),
            "ln" => Expr::Unary(UnOp::Ln, next()),
            "sqrt" => Expr::Unary(UnOp::Sqrt, next()),
            _ => Expr::If(next(), next(), next()),
        })
    }
}

fn subscripts(at: usize) -> Located {
    Located::new(at, "subscripts ('[...]') are not supported")
}

fn keyword_error(keyword: &str, at: usize) -> Located {
    let what = match keyword {
        "MACRO" | "END OF MACRO" => "macros (:MACRO:) are not supported".to_string(),
        "EXCEPT" => "subscript exceptions (:EXCEPT:) are not supported: subscripts are not supported".to_string(),
        "INTERPOLATE" | "RAW" | "HOLD BACKWARD" | "LOOK FORWARD" => {
            format!("data variables (:{keyword}:) are not supported")
        }
        "AND" | "OR" => format!(":{keyword}: needs an operand on each side"),
        _ => format!(":{keyword}: is not supported"),
    };
    Located::new(at, what)
}

/// Why `name(...)` is refused: a known Vensim function this plugin lacks, or a lookup call.
fn unsupported_function(key: &str, text: &str) -> String {
    let upper = text.to_uppercase();
    let starts = |p: &str| key.starts_with(p);
    let kind = if starts("delay") || starts("smooth") || ["trend", "forecast", "npv", "npve"].contains(&key) {
        "a delay or smoothing function"
    } else if key == "with lookup" || starts("lookup") {
        "a lookup function"
    } else if ["step", "pulse", "pulse train", "ramp", "ramp from to"].contains(&key) {
        "a test input"
    } else if starts("random") {
        "a random-number function"
    } else if starts("get ") || key == "tabbed array" || key == "time base" {
        "a data-import function"
    } else if OTHER_VENSIM.contains(&key) || starts("vector ") || starts("allocate") || starts("queue") {
        "supported: MIN, MAX, ABS, EXP, LN, SQRT, IF THEN ELSE, INTEG"
    } else {
        return format!(
            "'{text}(...)': unknown function (supported: MIN, MAX, ABS, EXP, LN, SQRT, IF THEN ELSE, INTEG); \
             calling a variable as a lookup is not supported"
        );
    };
    format!("the Vensim function {upper} is not supported ({kind})")
}

/// Other Vensim built-ins, named as such when refused.
const OTHER_VENSIM: &[&str] = &[
    "initial",
    "active initial",
    "reinitial",
    "sample if true",
    "zidz",
    "xidz",
    "modulo",
    "integer",
    "log",
    "power",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "quantum",
    "sum",
    "prod",
    "vmin",
    "vmax",
    "elmcount",
    "game",
    "a function of",
];

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn eq(s: &str) -> Result<Equation, Located> {
        parse_equation(s, 0, s.len())
    }

    fn rhs(s: &str) -> Expr {
        match eq(&format!("x = {s}")).unwrap().rhs {
            Rhs::Expr(e) => e,
            Rhs::Stock { .. } => panic!("stock"),
        }
    }

    fn var(key: &str, at: usize) -> Box<Expr> {
        Box::new(Expr::Var { key: key.into(), at })
    }

    #[test]
    fn stock_equation_keeps_left_to_right_order() {
        let e = eq("dec 1= INTEG (\n\tbirths-bday10-dec 1 loss,\n\t\t10)").unwrap();
        assert_eq!(e.name, "dec 1");
        assert_eq!(e.key, "dec 1");
        let Rhs::Stock { rate, init } = e.rhs else { panic!() };
        let rest = vec![(BinOp::Sub, *var("bday10", 23)), (BinOp::Sub, *var("dec 1 loss", 30))];
        assert_eq!(rate, Expr::Chain(var("births", 16), rest));
        assert_eq!(init, Expr::Num(10.0));
    }

    #[test]
    fn precedence_follows_pysd() {
        let n = |v: f64| Box::new(Expr::Num(v));
        assert_eq!(rhs("-2^2"), Expr::Unary(UnOp::Neg, Box::new(Expr::Binary(BinOp::Pow, n(2.0), n(2.0)))));
        assert_eq!(rhs("2^3^2"), Expr::Binary(BinOp::Pow, n(2.0), Box::new(Expr::Binary(BinOp::Pow, n(3.0), n(2.0)))));
        assert_eq!(rhs("2^-1"), Expr::Binary(BinOp::Pow, n(2.0), Box::new(Expr::Unary(UnOp::Neg, n(1.0)))));
        assert_eq!(
            rhs("1 + 2 * 3"),
            Expr::Chain(n(1.0), vec![(BinOp::Add, Expr::Chain(n(2.0), vec![(BinOp::Mul, Expr::Num(3.0))]))])
        );
        // :NOT: binds looser than a comparison, :AND: tighter than :OR:.
        assert_eq!(
            rhs(":NOT: 1 = 1 :OR: 0 :AND: 1"),
            Expr::Chain(
                Box::new(Expr::Unary(UnOp::Not, Box::new(Expr::Chain(n(1.0), vec![(BinOp::Eq, Expr::Num(1.0))])))),
                vec![(BinOp::Or, Expr::Chain(n(0.0), vec![(BinOp::And, Expr::Num(1.0))]))]
            )
        );
        assert_eq!(rhs("+5").as_literal(), Some(5.0));
        assert_eq!(rhs("-0.5").as_literal(), Some(-0.5));
        assert_eq!(rhs("(1)").as_literal(), Some(1.0));
        assert_eq!(rhs("2*3").as_literal(), None);
    }

    #[test]
    fn nesting_is_bounded_and_long_sums_stay_flat() {
        for (open, close) in [("(", ")"), ("-", ""), (":NOT: ", ""), ("ABS(", ")"), ("2^", "")] {
            let deep = format!("x = {}1{}", open.repeat(100_000), close.repeat(100_000));
            let e = eq(&deep).unwrap_err();
            assert!(e.message.starts_with("expression nesting deeper than 100 levels"), "{open}: {}", e.message);
            assert!(e.at > 4 + 50 * open.len() && e.at <= 4 + 101 * open.len(), "{open}: at {}", e.at);
        }
        assert!(eq(&format!("x = {}1{}", "(".repeat(MAX_NESTING - 1), ")".repeat(MAX_NESTING - 1))).is_ok());
        let Expr::Chain(_, rest) = rhs(&vec!["y"; 100_000].join(" + ")) else { panic!("not a chain") };
        assert_eq!(rest.len(), 99_999);
    }

    #[test]
    fn refusals_name_the_construct() {
        let msg = |s: &str| eq(s).unwrap_err().message;
        assert!(msg("x[a] = 1").contains("subscripts"));
        assert!(msg("x = y[a]").contains("subscripts"));
        assert!(msg("x((0,0),(1,1))").contains("lookup"));
        assert!(msg("x = SMOOTH(y, 3)").contains("SMOOTH"));
        assert!(msg("x = table(y)").contains("'table(...)'"));
        assert!(msg(":MACRO: m(a)\nm = a").contains("macros"));
        assert!(msg("x = 1 + INTEG(y, 1)").contains("INTEG must be"));
        assert!(msg("x = MIN(1)").contains("MIN takes 2 arguments, found 1"));
        assert!(msg("x = 1, 2, 3").contains("subscripts"));
        assert!(msg("x").contains("data variables"));
    }
}
