//! Reading the model's CSV tables, with errors that name the file, the line (and data row) and the column.

use serde::Deserialize;

/// A table's text and the name it came from (the file path as the user wrote it), as the host passes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextFile {
    pub name: String,
    pub text: String,
}

/// One data row of a CSV table being read.
pub struct Row<'a> {
    file: &'a str,
    headers: &'a [String],
    record: &'a csv::StringRecord,
    /// The whole text and the byte offset of the row in it (the line number is counted only for errors: the
    /// csv reader's own line counter skips blank lines).
    text: &'a str,
    byte: u64,
    /// 1-based data row (the first row after the header is row 1).
    row: usize,
}

impl Row<'_> {
    /// 1-based line of the row in the file (the header is line 1).
    pub fn line(&self) -> usize {
        let bytes = self.text.as_bytes();
        let mut at = (self.byte as usize).min(bytes.len());
        // The reader's position of a record after blank lines is the start of those lines.
        while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
            at += 1;
        }
        bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// An error about column `col` of this row.
    pub fn error(&self, col: usize, message: impl std::fmt::Display) -> String {
        let name = self.headers.get(col).map_or("?", String::as_str);
        format!("{}:{} (row {}), column '{name}': {message}", self.file, self.line(), self.row)
    }

    /// An error about this row as a whole.
    pub fn row_error(&self, message: impl std::fmt::Display) -> String {
        format!("{}:{} (row {}): {message}", self.file, self.line(), self.row)
    }

    /// 1-based data row.
    pub fn row(&self) -> usize {
        self.row
    }

    pub fn text(&self, col: usize) -> &str {
        self.record.get(col).unwrap_or("").trim()
    }

    /// A finite number.
    pub fn number(&self, col: usize) -> Result<f64, String> {
        let cell = self.text(col);
        if cell.is_empty() {
            return Err(self.error(col, "empty cell; a number is needed"));
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(col, format!("'{cell}' is not a finite number"))),
        }
    }

    /// A whole number (written as an integer or as a float with no fraction, e.g. `47` or `47.0`).
    pub fn integer(&self, col: usize) -> Result<i64, String> {
        let cell = self.text(col);
        if let Ok(v) = cell.parse::<i64>() {
            return Ok(v);
        }
        match cell.parse::<f64>() {
            Ok(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(v as i64),
            _ if cell.is_empty() => Err(self.error(col, "empty cell; a whole number is needed")),
            _ => Err(self.error(col, format!("'{cell}' is not a whole number"))),
        }
    }

    /// `True`/`False` as pandas writes booleans (also `true`/`false`, `1`/`0`).
    pub fn boolean(&self, col: usize) -> Result<bool, String> {
        match self.text(col) {
            "True" | "true" | "TRUE" | "1" => Ok(true),
            "False" | "false" | "FALSE" | "0" => Ok(false),
            other => Err(self.error(col, format!("'{other}' is not True or False"))),
        }
    }
}

/// The columns of a table's header, looked up by name.
pub struct Header<'a> {
    file: &'a str,
    pub names: &'a [String],
}

impl Header<'_> {
    /// The index of a required column.
    pub fn column(&self, name: &str) -> Result<usize, String> {
        self.names.iter().position(|h| h.trim() == name).ok_or_else(|| {
            format!("{}:1: missing column '{name}' (the header has: {})", self.file, self.names.join(", "))
        })
    }
}

/// Read `file` as CSV with a header row: `columns` picks the columns from the header, then `row` is called for
/// every data row in order; returns what `columns` made. Blank lines are skipped; a row with a different number
/// of cells is an error.
pub fn read<C>(
    file: &TextFile,
    columns: impl FnOnce(&Header) -> Result<C, String>,
    mut row: impl FnMut(&C, &Row) -> Result<(), String>,
) -> Result<C, String> {
    let text = file.text.strip_prefix('\u{feff}').unwrap_or(&file.text);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{}:1: cannot read the header ({e})", file.name))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(format!("{}: the file is empty (a header row is needed)", file.name));
    }
    let header = Header { file: &file.name, names: &headers };
    let cols = columns(&header)?;
    let mut record = csv::StringRecord::new();
    let mut n = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map_or(0, |p| p.byte() as usize).min(text.len());
                let line = text.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(format!("{}:{line}: {}", file.name, csv_problem(&e)));
            }
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        n += 1;
        let byte = record.position().map_or(0, |p| p.byte());
        row(&cols, &Row { file: &file.name, headers: &headers, record: &record, text, byte, row: n })?;
    }
    if n == 0 {
        return Err(format!("{}: the table has a header but no data rows", file.name));
    }
    Ok(cols)
}

fn csv_problem(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("the row has {len} cells but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the text is not valid UTF-8".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn file(text: &str) -> TextFile {
        TextFile { name: "t.csv".into(), text: text.into() }
    }

    #[test]
    fn errors_name_file_line_row_and_column() {
        let f = file("a,b\n1,2\n\n3,x\n");
        let mut seen = vec![];
        let e = read(
            &f,
            |h| Ok((h.column("a")?, h.column("b")?)),
            |&(a, b), r| {
                seen.push(r.integer(a)?);
                r.number(b).map(|_| ())
            },
        )
        .unwrap_err();
        assert_eq!(e, "t.csv:4 (row 2), column 'b': 'x' is not a finite number");
        assert_eq!(seen, vec![1, 3]);
        let e = read(&f, |h| h.column("c"), |_, _| Ok(())).unwrap_err();
        assert_eq!(e, "t.csv:1: missing column 'c' (the header has: a, b)");
        let e = read(&file("a,b\n1\n"), |_| Ok(()), |_, _| Ok(())).unwrap_err();
        assert!(e.starts_with("t.csv:2: the row has 1 cells"), "{e}");
    }

    #[test]
    fn integers_and_booleans_parse_as_pandas_writes_them() {
        let f = file("n,b\n47.0,True\n-3,False\n");
        let mut got = vec![];
        read(
            &f,
            |_| Ok(()),
            |_, r| {
                got.push((r.integer(0)?, r.boolean(1)?));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, vec![(47, true), (-3, false)]);
    }
}
