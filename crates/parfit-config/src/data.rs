//! Reading observations from CSV: one time column and one column per observed output. Empty cells are missing
//! observations; anything else that is not a number is an error naming file, line and column.

use std::path::Path;

use parfit_core::Case;

use crate::{Loader, Result as InputResult, input};

/// Read a time column and observed columns into a case with no inputs.
pub fn read_observations(loader: &dyn Loader, path: &Path, time_column: &str, columns: &[String]) -> InputResult<Case> {
    let shown = path.display();
    let text = loader.read(path)?;
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| input(format!("{shown}: {}", csv_reason(&e))))?.clone();
    let find = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            input(format!(
                "{shown}: no column named '{name}' (the header has: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let time_index = find(time_column)?;
    let indices = columns.iter().map(|c| find(c)).collect::<InputResult<Vec<_>>>()?;

    let mut times = Vec::new();
    let mut observations = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| input(format!("{shown}: {}", csv_reason(&e))))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |index: usize, name: &str, allow_empty: bool| -> InputResult<f64> {
            let text = record.get(index).unwrap_or("");
            if text.is_empty() && allow_empty {
                return Ok(f64::NAN);
            }
            text.parse::<f64>()
                .ok()
                .filter(|v| !v.is_infinite())
                .ok_or_else(|| input(format!("{shown}:{line}: column '{name}': '{text}' is not a number")))
        };
        times.push(cell(time_index, time_column, false)?);
        for (&index, name) in indices.iter().zip(columns) {
            observations.push(cell(index, name, true)?);
        }
    }
    if times.is_empty() {
        return Err(input(format!("{shown}: no data rows under the header")));
    }
    if let Some(i) = times.windows(2).position(|w| w[1] < w[0]) {
        return Err(input(format!(
            "{shown}: the time column '{time_column}' must be non-decreasing, but data row {} ({}) is followed by {}",
            i + 1,
            times[i],
            times[i + 1]
        )));
    }
    let id = path.file_name().map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Case { id, inputs: vec![], times, observations })
}

/// The csv crate's message, with its position rendered as a line number.
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos: Some(pos), expected_len, len } => {
            format!("line {}: {len} fields where the header has {expected_len}", pos.line())
        }
        csv::ErrorKind::Utf8 { pos: Some(pos), .. } => format!("line {}: not valid UTF-8", pos.line()),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryLoader;

    fn files() -> MemoryLoader {
        let mut files = MemoryLoader::new();
        files.insert("ok.csv", "t,x,y\n0,1,\n1, 2 ,3\n");
        files.insert("bad.csv", "t,x\n0,1\n1,abc\n");
        files.insert("ragged.csv", "t,x\n0,1\n1\n");
        files
    }

    #[test]
    fn reads_columns_and_missing_cells() {
        let case = read_observations(&files(), Path::new("ok.csv"), "t", &["y".into(), "x".into()]).unwrap();
        assert_eq!(case.times, vec![0.0, 1.0]);
        assert!(case.observations[0].is_nan());
        assert_eq!(&case.observations[1..], &[1.0, 3.0, 2.0]);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let (files, bad) = (files(), Path::new("bad.csv"));
        let e = read_observations(&files, bad, "t", &["x".into()]).unwrap_err().to_string();
        assert!(e.ends_with("bad.csv:3: column 'x': 'abc' is not a number"), "{e}");
        let e = read_observations(&files, bad, "t", &["z".into()]).unwrap_err().to_string();
        assert!(e.contains("no column named 'z'") && e.contains("t, x"), "{e}");
        let e = read_observations(&files, Path::new("ragged.csv"), "t", &["x".into()]).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = read_observations(&files, Path::new("missing.csv"), "t", &[]).unwrap_err().to_string();
        assert!(e.starts_with("missing.csv: no such file"), "{e}");
    }
}
