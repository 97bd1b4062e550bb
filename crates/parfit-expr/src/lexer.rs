//! Tokens of the DiffSL subset, each with the line and column where it starts.

use std::fmt;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// An error before it is given the source name: where, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    pub message: String,
}

impl Located {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Located { pos, message: message.into() }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.col, self.message)
    }
}

impl std::error::Error for Located {}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tok {
    Ident,
    Num(f64),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    Colon,
    DotDot,
    Percent,
    /// A single-quoted string, `'file.tns'` (its text includes the quotes).
    Str,
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub struct Token<'s> {
    pub tok: Tok,
    /// The source text of the token (empty at end of input).
    pub text: &'s str,
    pub pos: Pos,
}

impl fmt::Display for Token<'_> {
    /// How a token is quoted in "found …" messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tok == Tok::Eof { f.write_str("end of input") } else { write!(f, "'{}'", self.text) }
    }
}

struct Cursor<'s> {
    src: &'s str,
    /// Byte offset of the next character.
    at: usize,
    pos: Pos,
}

impl<'s> Cursor<'s> {
    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.at..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn eat_digits(&mut self) -> usize {
        let mut n = 0;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            n += 1;
        }
        n
    }

    /// Skip whitespace and `//` / `/* */` comments.
    fn skip_trivia(&mut self) -> Result<(), Located> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos;
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(), self.peek2()) {
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => return Err(Located::new(start, "unterminated block comment '/*'")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Split the source into tokens; the last one is always `Tok::Eof`.
pub fn tokenize(src: &str) -> Result<Vec<Token<'_>>, Located> {
    let mut cur = Cursor { src, at: 0, pos: Pos { line: 1, col: 1 } };
    let mut out = Vec::new();
    loop {
        cur.skip_trivia()?;
        let pos = cur.pos;
        let start = cur.at;
        let Some(c) = cur.bump() else {
            out.push(Token { tok: Tok::Eof, text: "", pos });
            return Ok(out);
        };
        let tok = match c {
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '=' => Tok::Eq,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '^' => Tok::Caret,
            ':' => Tok::Colon,
            '%' => Tok::Percent,
            '\'' => {
                while cur.peek().is_some_and(|c| c != '\'') {
                    cur.bump();
                }
                if cur.bump().is_none() {
                    return Err(Located::new(pos, "unterminated string: a file name is written 'name.tns'"));
                }
                Tok::Str
            }
            ';' => return Err(Located::new(pos, "';' is not DiffSL: elements are separated by ','")),
            '.' if cur.peek() == Some('.') => {
                cur.bump();
                Tok::DotDot
            }
            c if c.is_ascii_alphabetic() => {
                while cur.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    cur.bump();
                }
                Tok::Ident
            }
            c if c.is_ascii_digit() => lex_number(&mut cur, start, pos)?,
            c => return Err(Located::new(pos, format!("unexpected character '{c}'"))),
        };
        out.push(Token { tok, text: &src[start..cur.at], pos });
    }
}

/// `digits ('.' digits*)? ([eE] [+-]? digits)?`; the first digit is already consumed.
fn lex_number(cur: &mut Cursor<'_>, start: usize, pos: Pos) -> Result<Tok, Located> {
    cur.eat_digits();
    // A '.' followed by another '.' is a range `1..3`, not a decimal point.
    if cur.peek() == Some('.') && cur.peek2() != Some('.') {
        cur.bump();
        cur.eat_digits();
    }
    if cur.peek() == Some('E') {
        return Err(Located::new(cur.pos, "DiffSL writes exponents with a lowercase 'e', as in '1.5e3'"));
    }
    if cur.peek() == Some('e') {
        cur.bump();
        if matches!(cur.peek(), Some('+' | '-')) {
            cur.bump();
        }
        if cur.eat_digits() == 0 {
            return Err(Located::new(
                pos,
                format!("malformed number '{}': no digits in the exponent", &cur.src[start..cur.at]),
            ));
        }
    }
    let text = &cur.src[start..cur.at];
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Tok::Num(v)),
        Ok(_) => Err(Located::new(pos, format!("number {text} is too large: the largest is about 1.8e308"))),
        Err(_) => Err(Located::new(pos, format!("malformed number '{text}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_and_ranges() {
        assert_eq!(kinds("1.5e-3"), vec![Tok::Num(1.5e-3), Tok::Eof]);
        assert_eq!(kinds("2. 7e+2 3"), vec![Tok::Num(2.0), Tok::Num(700.0), Tok::Num(3.0), Tok::Eof]);
        let e = tokenize("a { 7E+2 }").unwrap_err();
        assert_eq!((e.pos.col, e.message.as_str()), (6, "DiffSL writes exponents with a lowercase 'e', as in '1.5e3'"));
        let e = tokenize("u { 1 };").unwrap_err();
        assert_eq!((e.pos.col, e.message.as_str()), (8, "';' is not DiffSL: elements are separated by ','"));
        assert_eq!(
            kinds("read('a b.tns') N % 2"),
            vec![Tok::Ident, Tok::LParen, Tok::Str, Tok::RParen, Tok::Ident, Tok::Percent, Tok::Num(2.0), Tok::Eof]
        );
        assert!(tokenize("read('never closed").unwrap_err().message.starts_with("unterminated string"));
        assert_eq!(kinds("0..2"), vec![Tok::Num(0.0), Tok::DotDot, Tok::Num(2.0), Tok::Eof]);
        assert!(tokenize("1e+").is_err());
        let e = tokenize("a\n  1e999").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 3 });
        assert_eq!(e.message, "number 1e999 is too large: the largest is about 1.8e308");
        assert!(tokenize(&"9".repeat(400)).unwrap_err().message.contains("too large"));
    }

    #[test]
    fn comments_and_positions() {
        let toks = tokenize("// c\n  a /* x\n y */ b_i").unwrap();
        assert_eq!(toks[0].text, "a");
        assert_eq!(toks[0].pos, Pos { line: 2, col: 3 });
        assert_eq!(toks[1].text, "b_i");
        assert_eq!(toks[1].pos, Pos { line: 3, col: 7 });
        let err = tokenize("a /* never closed").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, col: 3 });
        let err = tokenize("a\n  # b").unwrap_err();
        assert_eq!((err.pos, err.message.as_str()), (Pos { line: 2, col: 3 }, "unexpected character '#'"));
    }
}
