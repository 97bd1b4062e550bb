//! The projection language's text: tokens and the statement/expression tree, every node with its position.

use super::ValueKind;
use crate::lexer::{Located, Pos};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Str(String),
    Sym(&'static str),
    Newline,
    End,
}

/// The punctuation, longest first so that `<=` is not read as `<` then `=`.
const SYMBOLS: [&str; 18] =
    ["==", "!=", "<=", ">=", "+", "-", "*", "/", "^", "(", ")", "[", "]", ",", ".", "=", "<", ">"];

fn lex(src: &str) -> Result<Vec<(Tok, Pos)>, Located> {
    let mut out = vec![];
    for (l, line) in src.lines().enumerate() {
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let mut k = 0;
        while let Some(&(byte, c)) = chars.get(k) {
            let pos = Pos { line: l + 1, col: k + 1 };
            if c == '#' {
                break;
            }
            if c.is_whitespace() {
                k += 1;
                continue;
            }
            if c.is_ascii_digit() || (c == '.' && chars.get(k + 1).is_some_and(|&(_, d)| d.is_ascii_digit())) {
                while chars.get(k).is_some_and(|&(_, d)| d.is_ascii_digit() || d == '.') {
                    k += 1;
                }
                if chars.get(k).is_some_and(|&(_, d)| d == 'e' || d == 'E') {
                    let mut j = k + 1;
                    if chars.get(j).is_some_and(|&(_, d)| d == '+' || d == '-') {
                        j += 1;
                    }
                    if chars.get(j).is_some_and(|&(_, d)| d.is_ascii_digit()) {
                        k = j;
                        while chars.get(k).is_some_and(|&(_, d)| d.is_ascii_digit()) {
                            k += 1;
                        }
                    }
                }
                let end = chars.get(k).map_or(line.len(), |&(b, _)| b);
                let text = &line[byte..end];
                let v: f64 = text.parse().map_err(|_| Located::new(pos, format!("'{text}' is not a number")))?;
                out.push((Tok::Num(v), pos));
                continue;
            }
            if c.is_alphabetic() || c == '_' {
                let start = byte;
                while chars.get(k).is_some_and(|&(_, d)| d.is_alphanumeric() || d == '_') {
                    k += 1;
                }
                let end = chars.get(k).map_or(line.len(), |&(b, _)| b);
                out.push((Tok::Ident(line[start..end].to_string()), pos));
                continue;
            }
            if c == '"' {
                let start = byte + 1;
                k += 1;
                while chars.get(k).is_some_and(|&(_, d)| d != '"') {
                    k += 1;
                }
                let Some(&(end, _)) = chars.get(k) else {
                    return Err(Located::new(pos, "the text starting here has no closing '\"'"));
                };
                out.push((Tok::Str(line[start..end].to_string()), pos));
                k += 1;
                continue;
            }
            let rest = &line[byte..];
            let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                return Err(Located::new(pos, format!("unexpected character '{c}'")));
            };
            out.push((Tok::Sym(sym), pos));
            k += sym.len();
        }
        out.push((Tok::Newline, Pos { line: l + 1, col: chars.len() + 1 }));
    }
    let end = Pos { line: src.lines().count().max(1), col: 1 };
    out.push((Tok::End, end));
    Ok(out)
}

/// A month reference on a cell: `x` or `x[t]` (this month), `x[t+1]` (a recursion's next value) or `x[t-1]`
/// (last month's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum When {
    Now,
    Next,
    Prev,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Text(String),
    /// A cell, parameter or `t`.
    Name(String, When),
    /// `mp.NAME`: a column of the policy's model-point row.
    Attr(String),
    /// `table[key, …]` or `table[key, …].column`.
    Table {
        name: String,
        keys: Vec<(Expr, Pos)>,
        column: Option<String>,
    },
    Call(String, Vec<(Expr, Pos)>),
    Unary(&'static str, Box<(Expr, Pos)>),
    Binary(&'static str, Box<(Expr, Pos)>, Box<(Expr, Pos)>),
    If(Box<(Expr, Pos)>, Box<(Expr, Pos)>, Box<(Expr, Pos)>),
}

pub type Node = (Expr, Pos);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `name = expr`: a value each month (or once per policy when it reads no month-varying value).
    Cell,
    /// `name[0] = expr`: a recursion's start.
    Init,
    /// `name[t+1] = expr`: a recursion's next value.
    Next,
    /// `pv name = expr`: the sum over the projected months.
    Pv,
    /// `result name = expr`: a figure of the policy from present values, parameters and attributes.
    Result,
    /// `param name = number`.
    Param,
    /// `table name(key, …) …`: what a CSV table the model reads looks like ([`Stmt::table`]).
    Table,
    /// `output name = cell, cell, …`: a list of cells the host reports together ([`Stmt::list`]).
    Output,
}

#[derive(Debug, Clone)]
pub struct Stmt {
    pub kind: Kind,
    pub name: String,
    pub pos: Pos,
    pub expr: Node,
    /// The declaration of a [`Kind::Table`] statement.
    pub table: Option<TableDecl>,
    /// The names of a [`Kind::Output`] statement, each with its label (`premiums as "Premiums"`).
    pub list: Vec<(String, Pos, Option<String>)>,
}

/// `table NAME(KEY [text] [ultimate] [across] [scenarios], …) [with COLUMN KIND, …] [missing NUMBER]`: the shape
/// of a CSV table the model reads (see LANGUAGE.md, "Tables").
#[derive(Debug, Clone, PartialEq)]
pub struct TableDecl {
    pub name: String,
    pub pos: Pos,
    pub keys: Vec<KeyDecl>,
    /// Value columns that are not numbers, with their kind (every other value column is a number).
    pub columns: Vec<(String, ValueKind, Pos)>,
    /// The value of a read at a key the table does not have.
    pub missing: Option<f64>,
    /// The ranges of number columns (`with policy_count number between 0 and 1e100`), checked where each cell is
    /// read.
    pub ranges: Vec<(String, Range)>,
}

/// The values a number column may hold: `between LOW and HIGH` (both included), or one or two bounds
/// (`> -1`, `>= 0 and < 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// The lower bound and whether it is included.
    pub low: Option<(f64, bool)>,
    /// The upper bound and whether it is included.
    pub high: Option<(f64, bool)>,
    /// Written `between … and …`.
    pub between: bool,
}

/// A bound as written in a model (`1e100`, `-2400`, `0.5`).
fn bound(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) { format!("{v:e}") } else { format!("{v}") }
}

impl Range {
    /// Whether `v` is within the range.
    pub fn contains(&self, v: f64) -> bool {
        let low = self.low.is_none_or(|(l, inc)| if inc { v >= l } else { v > l });
        let high = self.high.is_none_or(|(h, inc)| if inc { v <= h } else { v < h });
        low && high
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (true, Some((l, _)), Some((h, _))) = (self.between, self.low, self.high) {
            return write!(f, "between {} and {}", bound(l), bound(h));
        }
        let low = self.low.map(|(l, inc)| format!("{} {}", if inc { ">=" } else { ">" }, bound(l)));
        let high = self.high.map(|(h, inc)| format!("{} {}", if inc { "<=" } else { "<" }, bound(h)));
        let parts: Vec<String> = low.into_iter().chain(high).collect();
        write!(f, "{}", parts.join(" and "))
    }
}

/// One key of a declared table.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyDecl {
    pub name: String,
    pub pos: Pos,
    /// Text labels (else whole numbers).
    pub text: bool,
    /// Whole-number keys past the last read the last.
    pub ultimate: bool,
    /// The key's values are the labels of the header's value columns (a wide table).
    pub across: bool,
    /// The key's values are the run's scenario ids (read as `scenario`).
    pub scenarios: bool,
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
    /// Values and operators in the definition being read, bounded so that every walk over its tree (checking,
    /// compiling, dropping) recurses a bounded number of times.
    nodes: usize,
    /// Parentheses, calls and `if`s open around the current position, bounded by [`MAX_NESTING`].
    nesting: usize,
}

/// The deepest nesting of parentheses, calls, table keys and `if`s.
pub const MAX_NESTING: usize = 50;

/// The most values and operators one definition may have.
pub const MAX_NODES: usize = 1000;

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("the number {v}"),
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("the text \"{s}\""),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::Newline => "the end of the line".into(),
        Tok::End => "the end of the file".into(),
    }
}

const KEYWORDS: [&str; 9] = ["if", "then", "else", "and", "or", "not", "param", "pv", "result"];

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.at).map_or(&Tok::End, |t| &t.0)
    }
    fn pos(&self) -> Pos {
        self.toks.get(self.at).or(self.toks.last()).map_or(Pos { line: 1, col: 1 }, |t| t.1)
    }
    fn bump(&mut self) -> (Tok, Pos) {
        let t = self.toks.get(self.at).cloned().unwrap_or((Tok::End, self.pos()));
        if self.at < self.toks.len() {
            self.at += 1;
        }
        t
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x == w)
    }
    /// Count a node of the tree being built.
    fn node(&mut self, pos: Pos) -> Result<(), Located> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Located::new(
                pos,
                format!("the definition has more than {MAX_NODES} values and operations; split it"),
            ));
        }
        Ok(())
    }

    fn unexpected<T>(&self, wanted: &str) -> Result<T, Located> {
        Err(Located::new(self.pos(), format!("expected {wanted}, found {}", describe(self.peek()))))
    }
    fn expect_sym(&mut self, s: &str) -> Result<Pos, Located> {
        if self.is_sym(s) { Ok(self.bump().1) } else { self.unexpected(&format!("'{s}'")) }
    }
    fn expect_word(&mut self, w: &str) -> Result<(), Located> {
        if self.is_word(w) {
            self.bump();
            Ok(())
        } else {
            self.unexpected(&format!("'{w}'"))
        }
    }
    fn name(&mut self, what: &str) -> Result<(String, Pos), Located> {
        match self.peek().clone() {
            Tok::Ident(s) if !KEYWORDS.contains(&s.as_str()) => {
                let p = self.bump().1;
                Ok((s, p))
            }
            _ => self.unexpected(what),
        }
    }

    /// `table NAME(` starts a table declaration (`table` alone stays an ordinary name).
    fn at_table(&self) -> bool {
        self.is_word("table")
            && matches!(self.toks.get(self.at + 1), Some((Tok::Ident(_), _)))
            && matches!(self.toks.get(self.at + 2), Some((Tok::Sym("("), _)))
    }

    fn table_decl(&mut self) -> Result<Stmt, Located> {
        let at = self.bump().1;
        let (name, pos) = self.name("a table name")?;
        self.expect_sym("(")?;
        let mut keys: Vec<KeyDecl> = vec![];
        loop {
            let (key, kpos) = self.name("a key column's name")?;
            let mut k = KeyDecl { name: key, pos: kpos, text: false, ultimate: false, across: false, scenarios: false };
            while let Tok::Ident(w) = self.peek().clone() {
                let p = self.bump().1;
                let flag = match w.as_str() {
                    "text" => &mut k.text,
                    "ultimate" => &mut k.ultimate,
                    "across" => &mut k.across,
                    "scenarios" => &mut k.scenarios,
                    _ => {
                        return Err(Located::new(
                            p,
                            format!("'{w}' is not a key option (text, ultimate, across, scenarios)"),
                        ));
                    }
                };
                if *flag {
                    return Err(Located::new(p, format!("'{w}' is given twice")));
                }
                *flag = true;
            }
            if k.text && (k.ultimate || k.scenarios) {
                return Err(Located::new(kpos, "a text key cannot be 'ultimate' or 'scenarios' (whole numbers only)"));
            }
            if keys.iter().any(|o| o.name == k.name) {
                return Err(Located::new(kpos, format!("key '{}' is given twice", k.name)));
            }
            keys.push(k);
            if self.is_sym(",") {
                self.bump();
                continue;
            }
            self.expect_sym(")")?;
            break;
        }
        if keys.iter().filter(|k| k.across).count() > 1 {
            return Err(Located::new(pos, "only one key can be 'across' (the header's labels)"));
        }
        if keys.iter().filter(|k| k.scenarios).count() > 1 {
            return Err(Located::new(pos, "only one key can list the 'scenarios'"));
        }
        let mut columns: Vec<(String, ValueKind, Pos)> = vec![];
        let mut ranges = vec![];
        if self.is_word("with") {
            self.bump();
            loop {
                let (col, cpos) = self.name("a column name")?;
                let kind = match self.bump() {
                    (Tok::Ident(w), _) if w == "text" => ValueKind::Text,
                    (Tok::Ident(w), _) if w == "bool" => ValueKind::Bool,
                    (Tok::Ident(w), _) if w == "number" => ValueKind::Number,
                    (_, p) => return Err(Located::new(p, "expected the column's kind: text, bool or number")),
                };
                if columns.iter().any(|c| c.0 == col) || keys.iter().any(|k| k.name == col) {
                    return Err(Located::new(cpos, format!("column '{col}' is given twice")));
                }
                // A wide table's one value column is named after the table and holds numbers: `with` may give
                // only its range.
                if keys.iter().any(|k| k.across) && (col != name || kind != ValueKind::Number) {
                    return Err(Located::new(
                        cpos,
                        format!(
                            "table '{name}' runs across the header: its one value column is '{name}', a number \
                             ('with {name} number RANGE')"
                        ),
                    ));
                }
                if kind == ValueKind::Number
                    && let Some(range) = self.range()?
                {
                    ranges.push((col.clone(), range));
                }
                columns.push((col, kind, cpos));
                if !self.is_sym(",") {
                    break;
                }
                self.bump();
            }
        }
        let mut missing = None;
        if self.is_word("missing") {
            self.bump();
            let neg = self.is_sym("-");
            if neg {
                self.bump();
            }
            match self.bump() {
                (Tok::Num(v), _) => missing = Some(if neg { -v } else { v }),
                (_, p) => return Err(Located::new(p, "'missing' is followed by a number")),
            }
        }
        match self.peek() {
            Tok::Newline | Tok::End => {}
            _ => return self.unexpected("'with', 'missing' or the end of the line"),
        }
        let decl = TableDecl { name: name.clone(), pos, keys, columns, missing, ranges };
        Ok(Stmt { kind: Kind::Table, name, pos, expr: (Expr::Num(0.0), at), table: Some(decl), list: vec![] })
    }

    /// A number, perhaps negative (a range's bound).
    fn signed_number(&mut self) -> Result<f64, Located> {
        let neg = self.is_sym("-");
        if neg {
            self.bump();
        }
        match self.peek().clone() {
            Tok::Num(v) => {
                self.bump();
                Ok(if neg { -v } else { v })
            }
            _ => self.unexpected("a number"),
        }
    }

    /// A number column's range after its kind: `between LOW and HIGH`, or `> LOW`, `>= LOW`, `< HIGH`, `<= HIGH`,
    /// two of them joined by `and` (`None`: no range).
    fn range(&mut self) -> Result<Option<Range>, Located> {
        let at = self.pos();
        if self.is_word("between") {
            self.bump();
            let low = self.signed_number()?;
            self.expect_word("and")?;
            let high = self.signed_number()?;
            if low > high {
                return Err(Located::new(at, format!("the range is empty: {} is above {}", bound(low), bound(high))));
            }
            return Ok(Some(Range { low: Some((low, true)), high: Some((high, true)), between: true }));
        }
        let mut range = Range { low: None, high: None, between: false };
        loop {
            let (low, inclusive) = match self.peek() {
                Tok::Sym(">") => (true, false),
                Tok::Sym(">=") => (true, true),
                Tok::Sym("<") => (false, false),
                Tok::Sym("<=") => (false, true),
                _ if range.low.is_none() && range.high.is_none() => return Ok(None),
                _ => return self.unexpected("'>', '>=', '<' or '<=' and a bound"),
            };
            let p = self.bump().1;
            let v = self.signed_number()?;
            let side = if low { &mut range.low } else { &mut range.high };
            if side.is_some() {
                return Err(Located::new(
                    p,
                    format!("the column's {} bound is given twice", if low { "lower" } else { "upper" }),
                ));
            }
            *side = Some((v, inclusive));
            // `and` joins a second bound; a column's `,` or the line's end closes the range.
            if self.is_word("and") && matches!(self.toks.get(self.at + 1), Some((Tok::Sym(">" | ">=" | "<" | "<="), _)))
            {
                self.bump();
                continue;
            }
            break;
        }
        if let (Some((l, li)), Some((h, hi))) = (range.low, range.high)
            && (l > h || (l == h && !(li && hi)))
        {
            return Err(Located::new(at, format!("the range is empty: {range}")));
        }
        Ok(Some(range))
    }

    /// `output NAME = NAME [as "LABEL"], …`
    fn output_decl(&mut self) -> Result<Stmt, Located> {
        let at = self.bump().1;
        // Any word names an output (`output pv = …`), keywords included.
        let (name, pos) = match self.bump() {
            (Tok::Ident(n), p) => (n, p),
            (_, p) => return Err(Located::new(p, "expected the output's name")),
        };
        self.expect_sym("=")?;
        let mut list = vec![];
        loop {
            let (n, p) = self.name("a cell's name")?;
            let mut label = None;
            if self.is_word("as") {
                self.bump();
                match self.bump() {
                    (Tok::Str(l), _) => label = Some(l),
                    (_, p) => return Err(Located::new(p, "'as' is followed by the column's label in quotes")),
                }
            }
            list.push((n, p, label));
            if !self.is_sym(",") {
                break;
            }
            self.bump();
        }
        match self.peek() {
            Tok::Newline | Tok::End => {}
            _ => return self.unexpected("',' or the end of the line"),
        }
        Ok(Stmt { kind: Kind::Output, name, pos, expr: (Expr::Num(0.0), at), table: None, list })
    }

    fn statement(&mut self) -> Result<Stmt, Located> {
        if self.at_table() {
            return self.table_decl();
        }
        if self.is_word("output")
            && matches!(self.toks.get(self.at + 1), Some((Tok::Ident(_), _)))
            && matches!(self.toks.get(self.at + 2), Some((Tok::Sym("="), _)))
        {
            return self.output_decl();
        }
        let kind = if self.is_word("param") {
            self.bump();
            Kind::Param
        } else if self.is_word("pv") {
            self.bump();
            Kind::Pv
        } else if self.is_word("result") {
            self.bump();
            Kind::Result
        } else {
            Kind::Cell
        };
        let (name, pos) = self.name("a name to define")?;
        let mut kind = kind;
        if kind == Kind::Cell && self.is_sym("[") {
            self.bump();
            match self.bump() {
                (Tok::Num(0.0), _) => kind = Kind::Init,
                (Tok::Ident(t), _) if t == "t" => {
                    self.expect_sym("+")?;
                    match self.bump() {
                        (Tok::Num(1.0), _) => kind = Kind::Next,
                        (_, p) => {
                            return Err(Located::new(p, "a recursion defines 'name[t+1]' (or its start, 'name[0]')"));
                        }
                    }
                }
                (_, p) => return Err(Located::new(p, "a recursion defines 'name[0]' or 'name[t+1]'")),
            }
            self.expect_sym("]")?;
        }
        self.expect_sym("=")?;
        let expr = if kind == Kind::Param {
            let p = self.pos();
            let neg = self.is_sym("-");
            if neg {
                self.bump();
            }
            match self.bump() {
                (Tok::Num(v), _) => (Expr::Num(if neg { -v } else { v }), p),
                (_, p) => return Err(Located::new(p, "a parameter's default is a number")),
            }
        } else {
            self.expr()?
        };
        match self.peek() {
            Tok::Newline | Tok::End => Ok(Stmt { kind, name, pos, expr, table: None, list: vec![] }),
            _ => self.unexpected("the end of the line"),
        }
    }

    fn expr(&mut self) -> Result<Node, Located> {
        self.nesting += 1;
        let e = if self.nesting > MAX_NESTING {
            Err(Located::new(self.pos(), format!("expressions nest more than {MAX_NESTING} levels deep here")))
        } else {
            self.expr_in()
        };
        self.nesting -= 1;
        e
    }

    fn expr_in(&mut self) -> Result<Node, Located> {
        if self.is_word("if") {
            let p = self.bump().1;
            self.node(p)?;
            let c = self.expr()?;
            self.expect_word("then")?;
            let a = self.expr()?;
            self.expect_word("else")?;
            let b = self.expr()?;
            return Ok((Expr::If(Box::new(c), Box::new(a), Box::new(b)), p));
        }
        self.or()
    }

    fn or(&mut self) -> Result<Node, Located> {
        let mut l = self.and()?;
        while self.is_word("or") {
            let p = self.bump().1;
            self.node(p)?;
            let r = self.and()?;
            l = (Expr::Binary("or", Box::new(l), Box::new(r)), p);
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Node, Located> {
        let mut l = self.not()?;
        while self.is_word("and") {
            let p = self.bump().1;
            self.node(p)?;
            let r = self.not()?;
            l = (Expr::Binary("and", Box::new(l), Box::new(r)), p);
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Node, Located> {
        if self.is_word("not") {
            let p = self.bump().1;
            self.node(p)?;
            let e = self.not()?;
            return Ok((Expr::Unary("not", Box::new(e)), p));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, Located> {
        let l = self.sum()?;
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.is_sym(op) {
                let p = self.bump().1;
                self.node(p)?;
                let r = self.sum()?;
                return Ok((Expr::Binary(op, Box::new(l), Box::new(r)), p));
            }
        }
        Ok(l)
    }

    fn sum(&mut self) -> Result<Node, Located> {
        let mut l = self.product()?;
        loop {
            let op = if self.is_sym("+") {
                "+"
            } else if self.is_sym("-") {
                "-"
            } else {
                return Ok(l);
            };
            let p = self.bump().1;
            self.node(p)?;
            let r = self.product()?;
            l = (Expr::Binary(op, Box::new(l), Box::new(r)), p);
        }
    }

    fn product(&mut self) -> Result<Node, Located> {
        let mut l = self.unary()?;
        loop {
            let op = if self.is_sym("*") {
                "*"
            } else if self.is_sym("/") {
                "/"
            } else {
                return Ok(l);
            };
            let p = self.bump().1;
            self.node(p)?;
            let r = self.unary()?;
            l = (Expr::Binary(op, Box::new(l), Box::new(r)), p);
        }
    }

    fn unary(&mut self) -> Result<Node, Located> {
        if self.is_sym("-") {
            let p = self.bump().1;
            self.node(p)?;
            let e = self.unary()?;
            return Ok((Expr::Unary("-", Box::new(e)), p));
        }
        self.power()
    }

    /// `a ^ b`, right-associative, binding tighter than unary minus (`-x^2` is `-(x^2)`).
    fn power(&mut self) -> Result<Node, Located> {
        let base = self.atom()?;
        if self.is_sym("^") {
            let p = self.bump().1;
            self.node(p)?;
            let e = self.unary()?;
            return Ok((Expr::Binary("^", Box::new(base), Box::new(e)), p));
        }
        Ok(base)
    }

    fn args(&mut self, close: &str) -> Result<Vec<Node>, Located> {
        let mut v = vec![self.expr()?];
        while self.is_sym(",") {
            self.bump();
            v.push(self.expr()?);
        }
        self.expect_sym(close)?;
        Ok(v)
    }

    fn atom(&mut self) -> Result<Node, Located> {
        let pos = self.pos();
        self.node(pos)?;
        match self.peek().clone() {
            Tok::Num(v) => {
                self.bump();
                Ok((Expr::Num(v), pos))
            }
            Tok::Str(s) => {
                self.bump();
                Ok((Expr::Text(s), pos))
            }
            Tok::Sym("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Ident(w) if w == "mp" => {
                self.bump();
                self.expect_sym(".")?;
                let (col, p) = self.name("a model-point column after 'mp.'")?;
                Ok((Expr::Attr(col), p))
            }
            Tok::Ident(_) => {
                let (name, _) = self.name("a value")?;
                if self.is_sym("(") {
                    self.bump();
                    let args = self.args(")")?;
                    return Ok((Expr::Call(name, args), pos));
                }
                if self.is_sym("[") {
                    self.bump();
                    // `x[t]`, `x[t+1]` and `x[t-1]` are month references; anything else indexes a table.
                    let save = self.at;
                    if self.is_word("t") {
                        self.bump();
                        if self.is_sym("]") {
                            self.bump();
                            return Ok((Expr::Name(name, When::Now), pos));
                        }
                        for (sign, when) in [("+", When::Next), ("-", When::Prev)] {
                            if self.is_sym(sign)
                                && matches!(self.toks.get(self.at + 1), Some((Tok::Num(o), _)) if *o == 1.0)
                                && matches!(self.toks.get(self.at + 2), Some((Tok::Sym("]"), _)))
                            {
                                self.at += 3;
                                return Ok((Expr::Name(name, when), pos));
                            }
                        }
                        self.at = save;
                    }
                    let keys = self.args("]")?;
                    let column = if self.is_sym(".") {
                        self.bump();
                        Some(self.name("a column name after '.'")?.0)
                    } else {
                        None
                    };
                    return Ok((Expr::Table { name, keys, column }, pos));
                }
                Ok((Expr::Name(name, When::Now), pos))
            }
            _ => self.unexpected("a value"),
        }
    }
}

/// Parse a model into its statements, in order.
pub fn parse(src: &str) -> Result<Vec<Stmt>, Located> {
    let mut p = Parser { toks: lex(src)?, at: 0, nodes: 0, nesting: 0 };
    let mut out = vec![];
    loop {
        while matches!(p.peek(), Tok::Newline) {
            p.bump();
        }
        if matches!(p.peek(), Tok::End) {
            return Ok(out);
        }
        p.nodes = 0;
        out.push(p.statement()?);
    }
}
