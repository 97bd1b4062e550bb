//! A many-case fit (`parfit fit-many`) as every front end runs it: the cases a checkpoint lacks fitted through a
//! [`Dispatch`], each finished case saved (the front end's checkpoint) before it counts as done, then the
//! results table (`results.csv`) and summary (`summary.json`) in input order. The CLI and the Python package
//! run this same code, so one configuration gives the same table from both.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::RunError;
use crate::cases::CaseTable;
use crate::dispatch::Dispatch;
use crate::fitting::{CaseFitter, CaseRecord};

/// The cases of a run once it stopped: every case's record by index (`None` for a case not done), and how many
/// were fitted now rather than read back from a checkpoint.
#[derive(Debug)]
pub struct Gathered {
    pub records: Vec<Option<CaseRecord>>,
    pub fitted: usize,
    pub resumed: usize,
}

impl Gathered {
    /// How many cases are done (fitted now or before).
    pub fn done(&self) -> usize {
        self.records.iter().filter(|r| r.is_some()).count()
    }

    /// Every case's record in input order, or `None` when the run stopped before every case was done.
    pub fn complete(self) -> Option<Vec<CaseRecord>> {
        self.records.into_iter().collect()
    }
}

/// Why [`fit_cases`] stopped without gathering: the dispatch failed, or a finished case could not be saved.
#[derive(Debug)]
pub enum FitManyError<E> {
    Run(RunError),
    Save(E),
}

/// Fit every case of `job` that `done` (records read back from a checkpoint) lacks, through `dispatch`. In the
/// gathering process each finished record goes to `save` before it counts as done, then `counted` is called
/// (for progress). A failed save stops starting cases (through `stop`, which an interrupt also sets) and is
/// the error returned: without a checkpoint, finished work could be lost. Returns `None` in a process that
/// does not gather (an MPI job's other ranks).
pub fn fit_cases<D: Dispatch, E: Send>(
    job: &CaseFitter,
    dispatch: &D,
    done: BTreeMap<usize, CaseRecord>,
    stop: &std::sync::atomic::AtomicBool,
    save: &(dyn Fn(&CaseRecord) -> Result<(), E> + Sync),
    counted: &(dyn Fn() + Sync),
) -> Result<Option<Gathered>, FitManyError<E>> {
    let n = job.cases.len();
    let resumed = done.len();
    let todo: Vec<usize> = (0..n).filter(|i| !done.contains_key(i)).collect();
    let records: Mutex<Vec<Option<CaseRecord>>> = Mutex::new((0..n).map(|i| done.get(&i).cloned()).collect());
    let save_error: Mutex<Option<E>> = Mutex::new(None);
    let fitted = AtomicUsize::new(0);
    // Chunks of ~1/16 of a process's share: small enough to balance cases of uneven cost, large enough that a
    // request per chunk costs nothing next to its fits.
    let chunk = (todo.len() / (dispatch.processes().max(1) * 16)).clamp(1, 256);
    dispatch
        .for_each(&todo, chunk, stop, &|i| job.fit(i), &|i, record| {
            if let Err(e) = save(&record) {
                save_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                stop.store(true, Ordering::Relaxed);
            }
            if let Some(slot) = records.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
                *slot = Some(record);
            }
            fitted.fetch_add(1, Ordering::Relaxed);
            counted();
        })
        .map_err(FitManyError::Run)?;
    if !dispatch.gathers_here() {
        return Ok(None);
    }
    if let Some(e) = save_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(FitManyError::Save(e));
    }
    Ok(Some(Gathered {
        records: records.into_inner().unwrap_or_else(|p| p.into_inner()),
        fitted: fitted.into_inner(),
        resumed,
    }))
}

/// When every case failed, the message that says so (with the first case's error); `checkpoint` names where
/// each case's error is.
pub fn every_case_failed(records: &[CaseRecord], checkpoint: &str) -> Option<String> {
    let first = records.first()?;
    records.iter().all(|r| r.error.is_some()).then(|| {
        format!(
            "every one of the {} cases failed (case {}: {}); each case's error is in {checkpoint}; nothing else was \
             written",
            records.len(),
            first.index,
            first.error.as_deref().unwrap_or("")
        )
    })
}

/// `results.csv`: the header, then one row per case in input order (a failed case's parameters left empty).
/// `names` are the fitted parameters, `cost` the cost's name.
pub fn results_table(
    table: &CaseTable,
    names: &[String],
    cost: &str,
    records: &[CaseRecord],
) -> (Vec<String>, Vec<Vec<String>>) {
    let cell = |v: f64| format!("{v:?}");
    let mut header: Vec<String> = table.id_columns.clone();
    header.extend(names.iter().cloned());
    header.extend([cost, "evaluations", "iterations", "termination", "error"].map(String::from));
    let rows = records
        .iter()
        .map(|r| {
            let mut row: Vec<String> = table.ids.get(r.index).cloned().unwrap_or_default();
            if r.error.is_none() {
                row.extend(r.x.iter().map(|v| cell(*v)));
            } else {
                row.extend(names.iter().map(|_| String::new()));
            }
            row.push(r.value.map_or(String::new(), cell));
            row.push(r.evaluations.to_string());
            row.push(r.iterations.to_string());
            row.push(r.termination.map_or(String::new(), |t| {
                serde_json::to_value(t).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            }));
            row.push(r.error.clone().unwrap_or_default());
            row
        })
        .collect();
    (header, rows)
}

/// `results.csv` as text, exactly as the CLI writes it.
pub fn results_csv(table: &CaseTable, names: &[String], cost: &str, records: &[CaseRecord]) -> String {
    let (header, rows) = results_table(table, names, cost, records);
    crate::montecarlo::csv_text(std::iter::once(header).chain(rows))
}

/// `summary.json`: the number of cases and failures (each failure's index and error), and the quantiles, min and
/// max of each fitted parameter, of the cost and of the evaluations over the cases that succeeded.
pub fn summary_json(names: &[String], records: &[CaseRecord], cost: &str) -> Value {
    let ok: Vec<&CaseRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let stats = |mut v: Vec<f64>| {
        let mut q = |p| parfit_core::statistics::quantile(&mut v, p);
        let (q05, q25, median, q75, q95) = (q(0.05), q(0.25), q(0.5), q(0.75), q(0.95));
        json!({
            "q05": q05, "q25": q25, "median": median, "q75": q75, "q95": q95,
            "min": v.iter().copied().min_by(f64::total_cmp), "max": v.iter().copied().max_by(f64::total_cmp),
        })
    };
    let parameters: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(k, name)| (name.clone(), stats(ok.iter().filter_map(|r| r.x.get(k).copied()).collect())))
        .collect();
    let failures: Vec<Value> =
        records.iter().filter_map(|r| r.error.as_ref().map(|e| json!({ "index": r.index, "error": e }))).collect();
    json!({
        "cases": records.len(),
        "failed": failures.len(),
        "failures": failures,
        "parameters": parameters,
        cost: stats(ok.iter().filter_map(|r| r.value).collect()),
        "evaluations": stats(ok.iter().map(|r| r.evaluations as f64).collect()),
    })
}

/// `summary.json` as text, exactly as the CLI writes it.
pub fn summary_file(summary: &Value) -> String {
    serde_json::to_string_pretty(summary).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_core::Termination;

    fn record(index: usize, x: Vec<f64>, error: Option<&str>) -> CaseRecord {
        CaseRecord {
            index,
            value: error.is_none().then_some(0.5 + index as f64),
            x,
            evaluations: 10 * index,
            iterations: index,
            termination: error.is_none().then_some(Termination::FunctionTolerance),
            error: error.map(String::from),
        }
    }

    #[test]
    fn the_results_table_keeps_input_order_and_leaves_a_failed_cases_values_empty() {
        let table = CaseTable {
            id_columns: vec!["id".into()],
            ids: vec![vec!["a".into()], vec!["b,c".into()]],
            observed: vec![],
            cases: vec![],
        };
        let names = vec!["k".to_string()];
        let records = vec![record(0, vec![0.1], None), record(1, vec![], Some("diverged"))];
        let text = results_csv(&table, &names, "sse", &records);
        assert_eq!(
            text,
            "id,k,sse,evaluations,iterations,termination,error\na,0.1,0.5,0,0,function_tolerance,\n\"b,c\",,,10,1,,diverged\n"
        );
        let summary = summary_json(&names, &records, "sse");
        assert_eq!((summary["cases"].as_u64(), summary["failed"].as_u64()), (Some(2), Some(1)));
        assert_eq!(summary["parameters"]["k"]["median"].as_f64(), Some(0.1));
        assert_eq!(summary["failures"][0]["index"].as_u64(), Some(1));
        assert!(every_case_failed(&records, "cp").is_none());
        let all = vec![record(1, vec![], Some("diverged"))];
        assert!(every_case_failed(&all, "cp").is_some_and(|m| m.contains("case 1: diverged") && m.contains("cp")));
    }
}
