//! `read('file.tns')`: sparse tensors in the FROSTT text format (one entry per line: its 1-based
//! coordinates, then its value; `#` starts a comment), read through the front end's [`Files`](super::Files)
//! when shapes are worked out.

use super::Gen;
use super::tensor::{Tv, strides};
use crate::emit::Val;
use crate::lexer::{Located, Pos};

impl Gen<'_> {
    /// The tensor `file` holds, checked against the block it fills (`letters`, `extent`); errors are at
    /// the `read` and name the file's line and column.
    pub(super) fn read_tensor(
        &mut self,
        file: &str,
        pos: Pos,
        letters: &[char],
        extent: &[usize],
    ) -> Result<Tv, Located> {
        if !file.ends_with(".tns") {
            return Err(Located::new(
                pos,
                format!("read('{file}'): unsupported file extension; read(…) takes FROSTT '.tns' files"),
            ));
        }
        let text = (self.files)(file).map_err(|m| Located::new(pos, format!("read('{file}'): {m}")))?;
        let entries = parse_tns(&text, extent)
            .map_err(|(line, col, m)| Located::new(pos, format!("{file}:{line}:{col}: {m}")))?;
        Ok(Tv { letters: letters.to_vec(), shape: extent.to_vec(), entries })
    }
}

/// The entries of a FROSTT text for a tensor of shape `extent`, sorted, as `(flat index, value)`; an
/// error is `(line, column, message)`.
fn parse_tns(text: &str, extent: &[usize]) -> Result<Vec<(u64, Val)>, (usize, usize, String)> {
    let st = strides(extent);
    let mut entries: Vec<(u64, Val, usize)> = Vec::new();
    for (l, line) in text.lines().enumerate() {
        let line_no = l + 1;
        let data = line.split('#').next().unwrap_or("");
        // Fields with their 1-based columns.
        let mut fields = Vec::new();
        let mut start = None;
        for (c, ch) in data.chars().chain(std::iter::once(' ')).enumerate() {
            match (ch.is_whitespace(), start) {
                (false, None) => start = Some(c),
                (true, Some(s)) => {
                    fields.push((s + 1, data.chars().skip(s).take(c - s).collect::<String>()));
                    start = None;
                }
                _ => {}
            }
        }
        if fields.is_empty() {
            continue;
        }
        if fields.len() != extent.len() + 1 {
            return Err((
                line_no,
                1,
                format!("expected {} coordinates and a value, found {} fields", extent.len(), fields.len()),
            ));
        }
        let mut flat = 0u64;
        for (a, (col, f)) in fields[..extent.len()].iter().enumerate() {
            match f.parse::<usize>() {
                Ok(k) if k >= 1 && k <= extent[a] => flat += (k - 1) as u64 * st[a],
                Ok(k) => {
                    return Err((
                        line_no,
                        *col,
                        format!("coordinate {k} is out of range 1..={} (FROSTT counts from 1)", extent[a]),
                    ));
                }
                Err(_) => {
                    return Err((line_no, *col, format!("malformed coordinate '{f}': expected a whole number ≥ 1")));
                }
            }
        }
        let (col, v) = &fields[extent.len()];
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => entries.push((flat, Val::Const(x), line_no)),
            _ => return Err((line_no, *col, format!("malformed value '{v}': expected a finite number"))),
        }
    }
    entries.sort_by_key(|e| e.0);
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        let (first, again) = (w[0].2.min(w[1].2), w[0].2.max(w[1].2));
        return Err((again, 1, format!("duplicate coordinates (also on line {first})")));
    }
    Ok(entries.into_iter().map(|e| (e.0, e.1)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn vals(r: &[(u64, Val)]) -> Vec<(u64, f64)> {
        r.iter().map(|&(k, v)| (k, if let Val::Const(x) = v { x } else { f64::NAN })).collect()
    }

    #[test]
    fn entries_are_one_based_and_sorted() {
        let text = "# a 2 x 3 matrix\n2 3 -1.5  # last\n\n1 1 2\n1 3 4e-1\n";
        assert_eq!(vals(&parse_tns(text, &[2, 3]).unwrap()), [(0, 2.0), (2, 0.4), (5, -1.5)]);
    }

    #[test]
    fn bad_rows_are_placed() {
        let e = |t: &str| parse_tns(t, &[2, 2]).unwrap_err();
        assert_eq!(e("1 1 1\n 1 3 1"), (2, 4, "coordinate 3 is out of range 1..=2 (FROSTT counts from 1)".into()));
        assert_eq!(e("0 1 1"), (1, 1, "coordinate 0 is out of range 1..=2 (FROSTT counts from 1)".into()));
        assert_eq!(e("1 x 1"), (1, 3, "malformed coordinate 'x': expected a whole number ≥ 1".into()));
        assert_eq!(e("1 1 nan"), (1, 5, "malformed value 'nan': expected a finite number".into()));
        assert_eq!(e("1 1"), (1, 1, "expected 2 coordinates and a value, found 2 fields".into()));
        assert_eq!(e("1 2 1\n2 2 1\n1 2 3"), (3, 1, "duplicate coordinates (also on line 1)".into()));
    }
}
