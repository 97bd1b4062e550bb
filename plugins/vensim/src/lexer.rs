//! Tokens of one Vensim equation (the text before its `~`), positioned by byte offset in the whole file.

use std::fmt;

/// An error before it is given the source name: the byte offset where it is, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub at: usize,
    pub message: String,
}

impl Located {
    pub fn new(at: usize, message: impl Into<String>) -> Self {
        Located { at, message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    /// A variable or function name, bare or in double quotes.
    Name {
        /// Normalised (see [`normalise`]): how names are compared.
        key: String,
        /// As written, with whitespace runs collapsed and quotes removed: how names are shown.
        text: String,
    },
    /// `:WORD:` (upper-cased, spaces collapsed), e.g. `AND`, `NOT`, `MACRO`, `END OF MACRO`.
    Keyword(String),
    /// A single-quoted literal, as in `GET XLS DATA('file.xlsx', …)`: its text.
    Literal(String),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `:=`, a data equation.
    DataEq,
    /// `==`, an unchangeable constant.
    EqEq,
    /// `<->`, a subscript range equivalence.
    Equiv,
    /// `->`, a subscript mapping.
    Arrow,
    Colon,
    Bang,
    Semicolon,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offsets in the whole model text.
    pub start: usize,
    pub end: usize,
}

/// How a token is quoted in "found …" messages.
pub(crate) struct Shown<'a>(pub &'a Token, pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.tok {
            Tok::Eof => f.write_str("the end of the equation"),
            Tok::Name { text, .. } => write!(f, "'{text}'"),
            _ => write!(f, "'{}'", &self.1[self.0.start..self.0.end]),
        }
    }
}

/// Vensim's name identity: case-insensitive, and spaces and underscores are the same character, with
/// runs of them counting as one and leading/trailing ones ignored (`Dec_1  Loss` is `dec 1 loss`).
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars() {
        if c.is_whitespace() || c == '_' {
            gap = !out.is_empty();
        } else {
            if gap {
                out.push(' ');
                gap = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A name as shown in specs and messages: as written, whitespace runs (line breaks included) made one space.
fn display_name(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn starts_name(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn continues_name(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '$' | '\'')
}

/// Tokenise `src[start..end]` (one equation), keeping offsets relative to the whole of `src`.
pub(crate) fn tokenize(src: &str, start: usize, end: usize) -> Result<Vec<Token>, Located> {
    let mut toks = Vec::new();
    let mut at = start;
    let text = &src[..end];
    let peek = |i: usize| text[i..].chars().next();
    while let Some(i) = skip_space(text, at)? {
        at = i;
        let c = peek(at).unwrap_or('\0');
        let one = |tok: Tok| (tok, at + c.len_utf8());
        let (tok, next) = match c {
            '+' => one(Tok::Plus),
            '*' => one(Tok::Star),
            '/' => one(Tok::Slash),
            '^' => one(Tok::Caret),
            '(' => one(Tok::LParen),
            ')' => one(Tok::RParen),
            '[' => one(Tok::LBracket),
            ']' => one(Tok::RBracket),
            ',' => one(Tok::Comma),
            '!' => one(Tok::Bang),
            ';' => one(Tok::Semicolon),
            '-' if text[at..].starts_with("->") => (Tok::Arrow, at + 2),
            '-' => one(Tok::Minus),
            '=' if text[at..].starts_with("==") => (Tok::EqEq, at + 2),
            '=' => one(Tok::Eq),
            '<' if text[at..].starts_with("<->") => (Tok::Equiv, at + 3),
            '<' if text[at..].starts_with("<>") => (Tok::Ne, at + 2),
            '<' if text[at..].starts_with("<=") => (Tok::Le, at + 2),
            '<' => one(Tok::Lt),
            '>' if text[at..].starts_with(">=") => (Tok::Ge, at + 2),
            '>' => one(Tok::Gt),
            ':' => colon(text, at),
            '\'' => {
                let close = text[at + 1..]
                    .find('\'')
                    .ok_or_else(|| Located::new(at, "unterminated quoted literal (missing closing ')"))?;
                (Tok::Literal(text[at + 1..at + 1 + close].to_string()), at + 1 + close + 1)
            }
            '"' => quoted_name(text, at)?,
            c if c.is_ascii_digit() || (c == '.' && peek(at + 1).is_some_and(|d| d.is_ascii_digit())) => {
                number(text, at)?
            }
            c if starts_name(c) => bare_name(text, at)?,
            c => return Err(Located::new(at, format!("unexpected character '{c}'"))),
        };
        toks.push(Token { tok, start: at, end: next });
        at = next;
    }
    toks.push(Token { tok: Tok::Eof, start: end, end });
    Ok(toks)
}

/// Skip whitespace, `{comments}` and `\`-newline continuations; the offset of the next token, if any.
fn skip_space(text: &str, mut at: usize) -> Result<Option<usize>, Located> {
    loop {
        let Some(c) = text[at..].chars().next() else { return Ok(None) };
        if c.is_whitespace() {
            at += c.len_utf8();
        } else if c == '{' {
            let close = text[at..].find('}').ok_or_else(|| Located::new(at, "unterminated {comment}"))?;
            at += close + 1;
        } else if c == '\\' && text[at + 1..].trim_start_matches([' ', '\t', '\r']).starts_with('\n') {
            at += 1;
        } else {
            return Ok(Some(at));
        }
    }
}

/// `:WORD:` keywords, `:=`, or a lone `:`.
fn colon(text: &str, at: usize) -> (Tok, usize) {
    let rest = &text[at + 1..];
    if rest.starts_with('=') {
        return (Tok::DataEq, at + 2);
    }
    let word_len = rest.find(|c: char| !(c.is_ascii_alphabetic() || c == ' ')).unwrap_or(rest.len());
    if word_len > 0 && rest[word_len..].starts_with(':') && rest[..word_len].trim() == &rest[..word_len] {
        let word = rest[..word_len].split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
        return (Tok::Keyword(word), at + 1 + word_len + 1);
    }
    (Tok::Colon, at + 1)
}

fn number(text: &str, at: usize) -> Result<(Tok, usize), Located> {
    let b = text.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(at);
    if i < b.len() && b[i] == b'.' {
        i = digits(i + 1);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = digits(j);
        }
    }
    let s = &text[at..i];
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok((Tok::Num(v), i)),
        Ok(_) => Err(Located::new(at, format!("number {s} is too large: the largest is about 1.8e308"))),
        Err(_) => Err(Located::new(at, format!("invalid number '{s}'"))),
    }
}

/// A bare name: words of letters, digits, `_`, `$` and `'`, joined by single or repeated whitespace
/// (including `\`-newline continuations), as in `dec 1 loss rate` or `IF THEN ELSE`.
fn bare_name(text: &str, at: usize) -> Result<(Tok, usize), Located> {
    let mut end = at;
    let mut i = at;
    loop {
        match text[i..].chars().next() {
            Some(c) if continues_name(c) => {
                i += c.len_utf8();
                end = i;
            }
            Some(c) if c.is_whitespace() || c == '\\' => {
                // Whitespace belongs to the name only if another word follows it.
                let mut j = i;
                while let Some(c) = text[j..].chars().next() {
                    if c.is_whitespace() {
                        j += c.len_utf8();
                    } else if c == '\\' && text[j + 1..].trim_start_matches([' ', '\t', '\r']).starts_with('\n') {
                        j += 1;
                    } else {
                        break;
                    }
                }
                match text[j..].chars().next() {
                    Some(c) if continues_name(c) => i = j,
                    _ => break,
                }
            }
            _ => break,
        }
    }
    let raw = text[at..end].replace('\\', " ");
    Ok((Tok::Name { key: normalise(&raw), text: display_name(&raw) }, end))
}

/// `"any text"`, with `\"` for a quote inside.
fn quoted_name(text: &str, at: usize) -> Result<(Tok, usize), Located> {
    let mut inner = String::new();
    let mut chars = text[at + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => {
                let end = at + 1 + k + 1;
                if normalise(&inner).is_empty() {
                    return Err(Located::new(at, "empty quoted name"));
                }
                return Ok((Tok::Name { key: normalise(&inner), text: display_name(&inner) }, end));
            }
            '\\' if text[at + 1 + k + 1..].starts_with('"') => {
                inner.push('"');
                chars.next();
            }
            c => inner.push(c),
        }
    }
    Err(Located::new(at, "unterminated quoted name (missing closing \")"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s, 0, s.len()).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn name(key: &str, text: &str) -> Tok {
        Tok::Name { key: key.into(), text: text.into() }
    }

    #[test]
    fn names_with_spaces_end_at_operators() {
        assert_eq!(
            toks("births-bday10-dec 1 loss"),
            [
                name("births", "births"),
                Tok::Minus,
                name("bday10", "bday10"),
                Tok::Minus,
                name("dec 1 loss", "dec 1 loss"),
                Tok::Eof
            ]
        );
        assert_eq!(toks("dec 8/10"), [name("dec 8", "dec 8"), Tok::Slash, Tok::Num(10.0), Tok::Eof]);
        assert_eq!(toks("INTEG (\n\tx,\n\t\t10)")[0], name("integ", "INTEG"));
        assert_eq!(toks("Dec_1 \\\n   LOSS ")[0], name("dec 1 loss", "Dec_1 LOSS"));
        assert_eq!(
            toks("\"a \\\"b\\\" c\" {note} + 1.5e-3")[..3],
            [name("a \"b\" c", "a \"b\" c"), Tok::Plus, Tok::Num(1.5e-3)]
        );
    }

    #[test]
    fn keywords_and_compound_operators() {
        assert_eq!(
            toks("a :AND: :not: b <> c <= d >= e := f == g <-> h -> :END OF MACRO:"),
            [
                name("a", "a"),
                Tok::Keyword("AND".into()),
                Tok::Keyword("NOT".into()),
                name("b", "b"),
                Tok::Ne,
                name("c", "c"),
                Tok::Le,
                name("d", "d"),
                Tok::Ge,
                name("e", "e"),
                Tok::DataEq,
                name("f", "f"),
                Tok::EqEq,
                name("g", "g"),
                Tok::Equiv,
                name("h", "h"),
                Tok::Arrow,
                Tok::Keyword("END OF MACRO".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise("  Dec__1   Loss_ "), "dec 1 loss");
        assert_eq!(normalise("TIME STEP"), "time step");
        assert_eq!(normalise("Übergang"), "übergang");
    }
}
