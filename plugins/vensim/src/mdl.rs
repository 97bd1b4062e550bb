//! The layout of a Vensim `.mdl` file: entries `name = expr ~ units ~ comment |`, group headers
//! (`****\n.Control\n****~ … |`), macros (`:MACRO: NAME(args)` … `:END OF MACRO:`), then the sketch from
//! `\\\---///` (with any number of backslashes) on, which is skipped except for the settings block
//! (`:L<%^E!@`) whose `15:` line holds the integration method.

use crate::expr::Sub;
use crate::lexer::Located;
use crate::parser::{Entry, parse_entry, parse_macro_header};

/// The integration method a file's settings ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileMethod {
    Euler,
    Rk4,
    /// Runge–Kutta 2 (codes 3 and 4), which this plugin does not offer.
    Rk2 {
        at: usize,
    },
}

#[derive(Debug)]
pub(crate) struct MdlFile {
    pub entries: Vec<(Entry, usize)>,
    pub macros: Vec<Macro>,
    /// From the settings block; Euler when the file has none.
    pub method: FileMethod,
}

/// A macro definition: its name, inputs, extra outputs (after `:` in the header) and entries.
#[derive(Debug)]
pub(crate) struct Macro {
    pub name: Sub,
    pub inputs: Vec<Sub>,
    pub outputs: Vec<Sub>,
    pub entries: Vec<(Entry, usize)>,
}

/// Whether the sketch starts here: `\\\---///`, with one or more backslashes.
fn is_sketch(rest: &str) -> bool {
    let slashes = rest.len() - rest.trim_start_matches('\\').len();
    slashes > 0 && rest[slashes..].starts_with("---///")
}

fn starts_with_keyword(rest: &str, keyword: &str) -> bool {
    rest.get(..keyword.len()).is_some_and(|s| s.eq_ignore_ascii_case(keyword))
}

/// Read the entries (before the sketch), each with the offset where it starts, the macros and the
/// integration-method setting.
pub(crate) fn read(src: &str) -> Result<MdlFile, Located> {
    let mut entries = Vec::new();
    let mut macros: Vec<Macro> = Vec::new();
    let mut open_macro: Option<(Macro, usize)> = None;
    let mut at = 0;
    let sketch_at = loop {
        at = skip_blank(src, at);
        if at >= src.len() {
            break None;
        }
        if is_sketch(&src[at..]) {
            break Some(at);
        }
        if starts_with_keyword(&src[at..], ":MACRO:") {
            if let Some((_, opened)) = open_macro {
                return Err(Located::new(at, format!("a macro starts inside the macro opened at byte {opened}")));
            }
            let line_end = src[at..].find('\n').map_or(src.len(), |k| at + k);
            let (name, inputs, outputs) = parse_macro_header(src, at + ":MACRO:".len(), line_end)?;
            open_macro = Some((Macro { name, inputs, outputs, entries: Vec::new() }, at));
            at = line_end;
            continue;
        }
        if starts_with_keyword(&src[at..], ":END OF MACRO:") {
            let Some((m, _)) = open_macro.take() else {
                return Err(Located::new(at, ":END OF MACRO: without a macro open"));
            };
            macros.push(m);
            at += ":END OF MACRO:".len();
            continue;
        }
        let (end, terminator) = equation_end(src, at)?;
        let next = if terminator == '~' {
            // Units and comment: free text up to the `|` that ends the entry.
            match src[end..].find('|') {
                Some(k) => end + k + 1,
                None => return Err(Located::new(at, "this equation's units and comment are not closed by '|'")),
            }
        } else {
            end + 1
        };
        // A group header (`****` line, group name, `****` line) is not an equation.
        if !src[at..end].trim_start().starts_with('*') {
            let entry = (parse_entry(src, at, end)?, at);
            match &mut open_macro {
                Some((m, _)) => m.entries.push(entry),
                None => entries.push(entry),
            }
        }
        at = next;
    };
    if let Some((m, opened)) = open_macro {
        return Err(Located::new(opened, format!("the macro '{}' is not closed by :END OF MACRO:", m.name.text)));
    }
    let method = match sketch_at {
        Some(s) => settings_method(src, s),
        None => FileMethod::Euler,
    };
    Ok(MdlFile { entries, macros, method })
}

/// Skip whitespace and `{…}` comments (the `{UTF-8}` header is one).
fn skip_blank(src: &str, mut at: usize) -> usize {
    loop {
        let rest = &src[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with('{') {
            match trimmed.find('}') {
                Some(k) => at += k + 1,
                None => return at, // reported by the lexer with its position
            }
        } else {
            return at;
        }
    }
}

/// The end of the equation part starting at `at`: the first `~` or `|` outside quotes and comments.
fn equation_end(src: &str, at: usize) -> Result<(usize, char), Located> {
    let mut quoted = false;
    let mut comment = false;
    let mut chars = src[at..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '\\' if quoted => {
                chars.next();
            }
            '"' if !comment => quoted = !quoted,
            '{' if !quoted => comment = true,
            '}' if !quoted => comment = false,
            '~' | '|' if !quoted && !comment => return Ok((at + k, c)),
            _ => {}
        }
    }
    Err(Located::new(at, "equation not terminated by '~' (units and comment) or '|'"))
}

/// The method in the settings block's `15:` line (4th comma-separated integer: 0/2 Euler, 1/5 RK4,
/// 3/4 RK2), as Vensim writes it after the sketch.
fn settings_method(src: &str, sketch_at: usize) -> FileMethod {
    let rest = &src[sketch_at..];
    let marker = rest.find(":L<%^E!@").or_else(|| rest.find(":L\u{7f}<%^E!@"));
    let Some(m) = marker else { return FileMethod::Euler };
    let block_at = sketch_at + m;
    let mut line_at = block_at;
    for line in src[block_at..].split_inclusive('\n') {
        let here = line_at;
        line_at += line.len();
        let Some(values) = line.trim_end().strip_prefix("15:") else { continue };
        let code = values.split(',').nth(3).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
        return match code {
            1 | 5 => FileMethod::Rk4,
            3 | 4 => FileMethod::Rk2 { at: here },
            _ => FileMethod::Euler,
        };
    }
    FileMethod::Euler
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn entries_groups_comments_and_sketch() {
        let src = "{UTF-8}\na = 1 ~ Year [0,?] ~ a comment with ~ tildes, \"quotes\" and {braces |\n\
                   \"odd | name\" = a ~~|\n\
                   ****\n\t.Control\n****~\n\tSimulation Control Parameters\n\t|\n\
                   c = 2 |\n\
                   \\\\\\---/// Sketch information\nV300\n10,1,a,1,1|(2,2)|\n///---\\\\\\\n:L<%^E!@\n15:0,0,0,1,0,0\n";
        let f = read(src).unwrap();
        let names: Vec<&str> = f
            .entries
            .iter()
            .map(|(e, _)| match e {
                Entry::Equation(e) => e.lhs.name.as_str(),
                Entry::Range(r) => r.name.as_str(),
                Entry::RealityCheck => "",
            })
            .collect();
        assert_eq!(names, ["a", "odd | name", "c"]);
        assert_eq!(f.method, FileMethod::Rk4);
    }

    #[test]
    fn integration_codes() {
        let with =
            |code: &str| read(&format!("a = 1 ~~|\n\\\\\\---///\n:L\u{7f}<%^E!@\n15:0,0,0,{code},0,0\n")).unwrap();
        assert_eq!(with("0").method, FileMethod::Euler);
        assert_eq!(with("2").method, FileMethod::Euler);
        assert_eq!(with("5").method, FileMethod::Rk4);
        assert!(matches!(with("3").method, FileMethod::Rk2 { .. }));
        assert_eq!(read("a = 1 ~~|").unwrap().method, FileMethod::Euler);
    }

    #[test]
    fn unterminated() {
        assert_eq!(
            read("a = 1 ~ units").unwrap_err().message,
            "this equation's units and comment are not closed by '|'"
        );
        assert!(read("a = 1").unwrap_err().message.starts_with("equation not terminated"));
    }
}
