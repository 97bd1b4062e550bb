//! `parfit.project`: a projection configuration's run through `parfit_app::projection` (as `parfit run` on a
//! `[projection]` configuration) on this process's pool, off the GIL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use parfit_app::RunError;
use parfit_app::dispatch::Local;
use parfit_app::projection::{ProjectConfig, Projection};
use parfit_core::projection::Projector;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::inputs::Files;
use crate::{config, engine, errors, plugins};

/// Project every model point: `{"pv": {"columns", "ids", "values" (points × columns)}, "totals": totals.json's
/// text, "monthly": [{"name", "columns", "values" (months × columns)}], "audit": None or {"id", "columns",
/// "values"}}`. `model_points` is a CSV text replacing the model point table's file.
#[pyfunction]
#[pyo3(signature = (config, *, model_points=None, threads=None, plugins=Vec::new(), progress=None, files=BTreeMap::new()))]
pub fn project<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    model_points: Option<String>,
    threads: Option<usize>,
    plugins: Vec<PathBuf>,
    progress: Option<Bound<'py, PyAny>>,
    files: BTreeMap<String, String>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut given = files;
    let (path, text) = config::text(config, &Files::new(given.clone()))?;
    let mut project = ProjectConfig::parse(&path, &text).map_err(errors::config)?;
    if let Some(table) = model_points {
        project.projection.model_points = crate::config::give(&mut given, &path, "<model_points>", table);
    }
    let files = Files::new(given);
    let threads = config::threads_in(&path, &text, project.threads, threads)?;
    let p = &project.projection;
    let found = plugins::find(py, &plugins)?;
    let kind = p.resolve_kind(&path, |m| found.for_file(m).map(|(_, k)| k)).map_err(errors::config)?;
    let plugin = plugins::choose(&found, p.plugin.as_deref(), &kind)?;
    // Every table is read and checked (by the plugin, cell by cell) before any work.
    let projection = Projection::new(&project, &path, &files, &kind, &|json| {
        plugin.create_projection(&kind, json).map(|m| Box::new(m) as Box<dyn Projector>)
    })
    .map_err(errors::config)?;

    let start = Instant::now();
    let points = projection.ids.len();
    let n_cols = projection.columns.len();
    let (totals, pv) = engine::run(py, threads, progress.as_ref(), |control| {
        control.set_total(points as u64);
        let mut pv = Vec::with_capacity(points.saturating_mul(n_cols));
        let totals = projection.run(
            &Local,
            control.stop_flag(),
            &mut |done| {
                control.set_done(done as u64);
                control.stopped()
            },
            &mut |_, row| {
                pv.extend_from_slice(row);
                Ok(())
            },
        );
        (totals, pv)
    })?;
    let totals = totals.map_err(errors::run)?.ok_or_else(|| errors::failed("the projection gathered no results"))?;
    let seconds = start.elapsed().as_secs_f64();
    let mut report = projection.report(&totals, &plugin.info().name, threads, seconds);
    // One process: the CLI's totals.json says how many MPI ranks ran it.
    report["ranks"] = 1.into();
    let audit = projection.audit().map_err(|e| match e {
        RunError::Failed(m) | RunError::Interrupted(m) => errors::failed(m),
    })?;

    let out = PyDict::new(py);
    let table = PyDict::new(py);
    table.set_item("columns", &projection.columns)?;
    table.set_item("ids", &projection.ids)?;
    table.set_item("values", pv)?;
    out.set_item("pv", table)?;
    out.set_item("totals", serde_json::to_string(&report).unwrap_or_default())?;
    let monthly = projection
        .monthly_tables(&totals)
        .into_iter()
        .map(|t| {
            let d = PyDict::new(py);
            d.set_item("name", t.name)?;
            d.set_item("columns", t.columns)?;
            d.set_item("months", t.months)?;
            d.set_item("values", t.rows)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item("monthly", monthly)?;
    match audit {
        Some(a) => {
            let d = PyDict::new(py);
            d.set_item("id", a.id)?;
            d.set_item("columns", a.columns)?;
            d.set_item("values", a.rows)?;
            out.set_item("audit", d)?;
        }
        None => out.set_item("audit", py.None())?,
    }
    Ok(out)
}
