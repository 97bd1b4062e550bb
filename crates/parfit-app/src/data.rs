//! Reading observations from CSV: one time column and one column per observed output. Empty cells are missing
//! observations; anything else that is not a number is an error naming file, line and column.

use std::path::Path;

use parfit_core::Case;

use crate::{Loader, Result as InputResult, input};

/// The largest magnitude an observation may have: its residual's square must stay finite, or every candidate
/// would cost +inf and a fit would end as if no candidate could be simulated.
pub const OBSERVATION_LIMIT: f64 = 1e150;

/// One observation cell: empty or `nan` is missing (NaN), anything else a number within ±[`OBSERVATION_LIMIT`];
/// `Err` says what is wrong with the text.
pub fn observation(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Ok(f64::NAN);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_nan() || v.abs() <= OBSERVATION_LIMIT => Ok(v),
        Ok(_) => Err(format!("'{text}' is beyond ±{OBSERVATION_LIMIT:e}, where squared residuals overflow")),
        Err(_) => Err(format!("'{text}' is not a number")),
    }
}

/// Read a time column and observed columns into a case with no inputs.
pub fn read_observations(loader: &dyn Loader, path: &Path, time_column: &str, columns: &[String]) -> InputResult<Case> {
    let shown = path.display();
    let text = loader.read(path)?;
    if text.trim().is_empty() {
        return Err(input(format!("{shown}: the file is empty (a header row naming '{time_column}' is needed)")));
    }
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| input(format!("{shown}: {}", csv_reason(&e))))?.clone();
    let find = |name: &str| {
        let mut at = headers.iter().enumerate().filter(|(_, h)| *h == name).map(|(i, _)| i);
        match (at.next(), at.next()) {
            (Some(i), None) => Ok(i),
            (Some(i), Some(j)) => Err(input(format!(
                "{shown}:1: the header names column '{name}' twice (columns {} and {}), so which one to read is unclear",
                i + 1,
                j + 1
            ))),
            (None, _) => Err(input(format!(
                "{shown}: no column named '{name}' (the header has: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))),
        }
    };
    let time_index = find(time_column)?;
    let indices = columns.iter().map(|c| find(c)).collect::<InputResult<Vec<_>>>()?;

    let mut times = Vec::new();
    let mut observations = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| input(format!("{shown}: {}", csv_reason(&e))))?;
        let line = record.position().map_or(0, |p| p.line());
        let text = |index: usize| record.get(index).unwrap_or("");
        let at = |name: &str, why: String| input(format!("{shown}:{line}: column '{name}': {why}"));
        // A time must be a finite number.
        let t = text(time_index).parse::<f64>().ok().filter(|t| t.is_finite());
        times.push(t.ok_or_else(|| at(time_column, format!("'{}' is not a number", text(time_index))))?);
        for (&index, name) in indices.iter().zip(columns) {
            observations.push(observation(text(index)).map_err(|why| at(name, why))?);
        }
    }
    if times.is_empty() {
        return Err(input(format!("{shown}: no data rows under the header")));
    }
    // With nothing observed every fit would score 0 at its start and report convergence.
    if !columns.is_empty() && observations.iter().all(|v| v.is_nan()) {
        let named: Vec<String> = columns.iter().map(|c| format!("'{c}'")).collect();
        return Err(input(format!(
            "{shown}: no observation in the data: every cell of column{} {} is empty",
            if columns.len() > 1 { "s" } else { "" },
            named.join(", ")
        )));
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

    #[test]
    fn refuses_duplicate_columns_empty_observations_and_non_finite_times() {
        let mut files = files();
        files.insert("twice.csv", "t,x,x\n0,1,2\n");
        files.insert("empty.csv", "t,x,y\n0,,\n1,,\n");
        files.insert("nan.csv", "t,x\n0,1\nnan,2\n");
        let read = |file: &str, columns: &[&str]| {
            let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            read_observations(&files, Path::new(file), "t", &columns).map_err(|e| e.to_string())
        };
        let e = read("twice.csv", &["x"]).unwrap_err();
        assert_eq!(
            e,
            "twice.csv:1: the header names column 'x' twice (columns 2 and 3), so which one to read is unclear"
        );
        assert!(read("twice.csv", &[]).is_ok(), "an unused duplicate is harmless");
        let e = read("empty.csv", &["x", "y"]).unwrap_err();
        assert_eq!(e, "empty.csv: no observation in the data: every cell of columns 'x', 'y' is empty");
        assert!(read("ok.csv", &["y"]).is_ok(), "one observation is enough");
        assert_eq!(read("nan.csv", &["x"]).unwrap_err(), "nan.csv:3: column 't': 'nan' is not a number");
    }
}
