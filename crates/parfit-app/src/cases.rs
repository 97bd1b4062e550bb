//! Reading a table of cases (`[cases]`): one case per CSV row, with multi-row headers, id columns, model inputs
//! and observations at fixed times. Errors name the file, line and column.

use std::path::Path;

use parfit_core::{Case, ModelSpec};

use crate::config::CasesSection;
use crate::data::observation;
use crate::{Loader, Result as InputResult, input};

/// The cases of a table, their ids (one string per id column), and the observed outputs in column order.
pub struct CaseTable {
    pub id_columns: Vec<String>,
    pub ids: Vec<Vec<String>>,
    pub observed: Vec<String>,
    pub cases: Vec<Case>,
}

/// Read `[cases]` from `path` for a model with `spec`; `place` gives the `file:line:column` of a configuration key
/// (e.g. `["cases", "inputs", "x0"]`), where errors about that key are placed.
pub fn read_cases(
    loader: &dyn Loader,
    path: &Path,
    section: &CasesSection,
    spec: &ModelSpec,
    place: &dyn Fn(&[&str]) -> String,
) -> InputResult<CaseTable> {
    let shown = path.display();
    if section.header_rows == 0 {
        let at = place(&["cases", "header_rows"]);
        return Err(input(format!("{at}: [cases] header_rows must be at least 1 (got 0)")));
    }
    let text = loader.read(path)?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(false).trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut records = reader.records();
    let mut header_rows = Vec::new();
    for _ in 0..section.header_rows {
        match records.next() {
            Some(Ok(r)) => header_rows.push(r),
            Some(Err(e)) => return Err(input(format!("{shown}: {e}"))),
            None => return Err(input(format!("{shown}: fewer than {} header rows", section.header_rows))),
        }
    }
    let width = header_rows[0].len();
    let names: Vec<String> = (0..width)
        .map(|c| header_rows.iter().filter_map(|r| r.get(c)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "))
        .collect();
    let find = |name: &str, what: &str, keys: &[&str]| {
        let origin = place(keys);
        let mut at = names.iter().enumerate().filter(|(_, n)| *n == name).map(|(i, _)| i);
        match (at.next(), at.next()) {
            (Some(i), None) => Ok(i),
            (Some(i), Some(j)) => Err(input(format!(
                "{origin}: [cases] {what}: {shown} has two columns named '{name}' (columns {} and {}), so which one to \
                 read is unclear",
                i + 1,
                j + 1
            ))),
            (None, _) => Err(input(format!(
                "{origin}: [cases] {what}: {shown} has no column named '{name}' (columns are named by their header \
                 cells joined with a space: {})",
                names.iter().filter(|n| !n.is_empty()).take(12).cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    };
    let id_cols = section.id.iter().map(|n| find(n, "id", &["cases", "id"])).collect::<InputResult<Vec<_>>>()?;

    let mut input_cols = vec![None; spec.inputs.len()];
    for (name, column) in &section.inputs {
        let i = spec.input_index(name).ok_or_else(|| {
            input(format!(
                "{}: [cases.inputs]: the model has no input named '{name}' (it has: {})",
                place(&["cases", "inputs", name]),
                spec.inputs.join(", ")
            ))
        })?;
        input_cols[i] = Some(find(column, &format!("inputs.\"{name}\""), &["cases", "inputs", name])?);
    }

    // Observed outputs in the order they first appear; times sorted.
    let mut observed: Vec<String> = Vec::new();
    for o in &section.observe {
        if !o.time.is_finite() {
            let at = place(&["cases", "observe"]);
            return Err(input(format!("{at}: [[cases.observe]] time must be a finite number (got {:?})", o.time)));
        }
        for name in o.columns.keys() {
            if spec.output_index(name).is_none() {
                return Err(input(format!(
                    "{}: [[cases.observe]] at time {}: the model has no output named '{name}' (it has: {})",
                    place(&["cases", "observe"]),
                    o.time,
                    spec.outputs.join(", ")
                )));
            }
            if !observed.contains(name) {
                observed.push(name.clone());
            }
        }
    }
    if observed.is_empty() {
        return Err(input(format!(
            "{}: [cases] observes nothing: add a [[cases.observe]] table with at least one output column \
             (with nothing observed every case would score 0)",
            place(&["cases", "observe"])
        )));
    }
    let mut observe: Vec<(f64, Vec<Option<usize>>)> = Vec::new();
    for o in &section.observe {
        let cols = observed
            .iter()
            .map(|name| {
                let what = format!("observe at {}", o.time);
                o.columns.get(name).map(|c| find(c, &what, &["cases", "observe"])).transpose()
            })
            .collect::<InputResult<Vec<_>>>()?;
        observe.push((o.time, cols));
    }
    observe.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(w) = observe.windows(2).find(|w| w[0].0 == w[1].0) {
        let at = place(&["cases", "observe"]);
        return Err(input(format!("{at}: [[cases.observe]]: time {} appears twice", w[0].0)));
    }

    let mut table = CaseTable { id_columns: section.id.clone(), ids: Vec::new(), observed, cases: Vec::new() };
    let times: Vec<f64> = observe.iter().map(|o| o.0).collect();
    for record in records {
        let record = record.map_err(|e| input(format!("{shown}: {}", csv_reason(&e))))?;
        let line = record.position().map_or(0, |p| p.line());
        let number = |col: usize| -> InputResult<f64> {
            let text = record.get(col).unwrap_or("");
            if text.is_empty() {
                return Ok(f64::NAN);
            }
            text.parse::<f64>()
                .ok()
                .filter(|v| !v.is_infinite())
                .ok_or_else(|| input(format!("{shown}:{line}: column '{}': '{text}' is not a number", names[col])))
        };
        let observed = |col: usize| -> InputResult<f64> {
            let text = record.get(col).unwrap_or("");
            observation(text).map_err(|why| input(format!("{shown}:{line}: column '{}': {why}", names[col])))
        };
        let ids: Vec<String> = id_cols.iter().map(|&c| record.get(c).unwrap_or("").to_string()).collect();
        let inputs = input_cols.iter().map(|c| c.map_or(Ok(f64::NAN), number)).collect::<InputResult<Vec<f64>>>()?;
        let mut observations = Vec::with_capacity(times.len() * table.observed.len());
        for (_, cols) in &observe {
            for c in cols {
                observations.push(c.map_or(Ok(f64::NAN), observed)?);
            }
        }
        let id = if ids.is_empty() { format!("row {}", table.cases.len() + 1) } else { ids.join("/") };
        table.ids.push(ids);
        table.cases.push(Case { id, inputs, times: times.clone(), observations });
    }
    if table.cases.is_empty() {
        return Err(input(format!("{shown}: no case rows under the {} header rows", section.header_rows)));
    }
    Ok(table)
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos: Some(pos), expected_len, len } => {
            format!("line {}: {len} fields where the header has {expected_len}", pos.line())
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryLoader;

    #[test]
    fn a_column_named_twice_is_refused_where_it_is_read() {
        let spec: ModelSpec = serde_json::from_value(serde_json::json!({
            "name": "m", "params": [], "inputs": ["x0"], "outputs": ["x"], "output_kind": "time_series",
        }))
        .unwrap();
        let mut files = MemoryLoader::new();
        files.insert("cases.csv", "id,x0,x10,x10\na,1,2,3\n");
        let section = |observed: &str| -> CasesSection {
            toml::from_str(&format!(
                "path = \"cases.csv\"\nid = [\"id\"]\ninputs = {{ x0 = \"x0\" }}\n[[observe]]\ntime = 1.0\ncolumns = {{ x = \
                 \"{observed}\" }}\n"
            ))
            .unwrap()
        };
        let read = |s: &CasesSection| {
            read_cases(&files, Path::new("cases.csv"), s, &spec, &|_| "fit.toml".into()).map(|t| t.cases)
        };
        let e = read(&section("x10")).err().unwrap().to_string();
        assert_eq!(
            e,
            "fit.toml: [cases] observe at 1: cases.csv has two columns named 'x10' (columns 3 and 4), so which one to \
             read is unclear"
        );
        files.insert("cases.csv", "id,x0,x10,y\na,1,2,3\n");
        let read = |s: &CasesSection| {
            read_cases(&files, Path::new("cases.csv"), s, &spec, &|_| "fit.toml".into()).map(|t| t.cases)
        };
        assert_eq!(read(&section("x10")).unwrap()[0].observations, [2.0]);
    }
}
