//! The JavaScript face of the façade (wasm32 only). Results cross as plain JS objects (JSON-shaped: a
//! non-finite number becomes `null`); errors as exceptions whose message names the file and the problem.
//!
//! Call `initThreadPool(n)` first (a promise) where the page is cross-origin isolated; without it everything
//! runs on the calling thread. Call the fitting functions from a dedicated web worker: the pool's workers
//! block while they wait, which a page's main thread may not do.

use parfit_core::math;
use std::path::PathBuf;

use js_sys::{Function, JSON, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::Files;
use crate::throttle::{PROGRESS_INTERVAL, Throttle};

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))?;
    JSON::parse(&text).map_err(|_| JsError::new("could not hand the result to JavaScript"))
}

/// `{ path: text, … }` as the files a configuration may name.
fn files_from(object: &Object) -> Result<Files, JsError> {
    let mut files = Files::new();
    for entry in Object::entries(object).iter() {
        let pair = js_sys::Array::from(&entry);
        let path = pair.get(0).as_string().unwrap_or_default();
        let text = pair.get(1).as_string().ok_or_else(|| JsError::new(&format!("files[{path:?}] is not a string")))?;
        files.insert(crate::lexical(&PathBuf::from(path)), text);
    }
    Ok(files)
}

/// A whole number option (`seed`, `limit`) from the options object, if given.
fn whole(options: &JsValue, key: &str) -> Result<Option<u64>, JsError> {
    if !options.is_object() {
        return Ok(None);
    }
    let value = Reflect::get(options, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= math::powi(2f64, 53) => Ok(Some(v as u64)),
        _ => Err(JsError::new(&format!("options.{key} must be a whole number ≥ 0"))),
    }
}

fn seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Call `callback(argument)`; a truthy return asks to stop. A callback that throws also stops the run.
fn ask_stop(callback: &Option<Function>, argument: &JsValue) -> bool {
    callback.as_ref().is_some_and(|f| f.call1(&JsValue::NULL, argument).map_or(true, |r| r.is_truthy()))
}

/// The model kinds built in: `[{ plugin, version, kind, extensions, description }]`.
#[wasm_bindgen]
pub fn models() -> Result<JsValue, JsError> {
    to_js(&crate::models())
}

/// Rayon's thread count (the pool's size after `initThreadPool`; 1 without it).
#[wasm_bindgen]
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Fit the problem configured at `configPath` (a key of `files`) as `parfit fit` does. `options.seed` overrides
/// the configuration's seed. `onProgress({ iteration, evaluations, best_value })` runs after the first
/// iteration and then at most every 100 ms; returning `true` cancels (the result is then the best point so far,
/// `termination: "cancelled"`).
#[wasm_bindgen]
pub fn fit(
    config_path: &str,
    files: &Object,
    options: JsValue,
    on_progress: Option<Function>,
) -> Result<JsValue, JsError> {
    let files = files_from(files)?;
    let seed = whole(&options, "seed")?;
    let mut throttle = Throttle::new(&seconds, PROGRESS_INTERVAL);
    let mut progress = |p: &parfit_core::optimise::Progress| {
        if !throttle.due(false) {
            return false;
        }
        let o = Object::new();
        let _ = Reflect::set(&o, &"iteration".into(), &(p.iteration as f64).into());
        let _ = Reflect::set(&o, &"evaluations".into(), &(p.evaluations as f64).into());
        let _ = Reflect::set(&o, &"best_value".into(), &p.best_value.into());
        ask_stop(&on_progress, &o)
    };
    let report = crate::fit(config_path, &files, seed, &seconds, &mut progress).map_err(|e| JsError::new(&e))?;
    to_js(&report)
}

/// Fit every case of the `[cases]` table configured at `configPath` as `parfit fit-many` does (nothing is
/// written). `options.seed` overrides the seed, `options.limit` fits only the first rows.
/// `onProgress({ done, total, rows })` runs as cases finish, at most every 100 ms and after the last (`rows`: the
/// cases finished since the previous call); returning `true` stops starting new cases.
#[wasm_bindgen(js_name = fitMany)]
pub fn fit_many(
    config_path: &str,
    files: &Object,
    options: JsValue,
    on_progress: Option<Function>,
) -> Result<JsValue, JsError> {
    let files = files_from(files)?;
    let seed = whole(&options, "seed")?;
    let limit = whole(&options, "limit")?.map(|l| l as usize);
    let mut throttle = Throttle::new(&seconds, PROGRESS_INTERVAL);
    let mut unreported: Vec<crate::CaseRow> = Vec::new();
    let mut progress = |done: usize, total: usize, rows: &[crate::CaseRow]| {
        unreported.extend_from_slice(rows);
        if !throttle.due(done == total) {
            return false;
        }
        let o = Object::new();
        let _ = Reflect::set(&o, &"done".into(), &(done as f64).into());
        let _ = Reflect::set(&o, &"total".into(), &(total as f64).into());
        let _ = Reflect::set(&o, &"rows".into(), &to_js(&unreported).unwrap_or(JsValue::NULL));
        unreported.clear();
        ask_stop(&on_progress, &o)
    };
    let report =
        crate::fit_many(config_path, &files, seed, limit, &seconds, &mut progress).map_err(|e| JsError::new(&e))?;
    to_js(&report)
}

/// Run the Monte Carlo configuration at `configPath` (a `[montecarlo]` section) as `parfit run` does (nothing is
/// written): the report of `parfit run --format json` plus `summary` (summary.csv's columns and rows) and `work`.
/// `options.seed` overrides the seed. `onProgress({ done, total })` (paths) runs as tasks finish, at most every
/// 100 ms and after the last; returning `true` stops the run (it then throws "interrupted …").
#[wasm_bindgen(js_name = runPaths)]
pub fn run_paths(
    config_path: &str,
    files: &Object,
    options: JsValue,
    on_progress: Option<Function>,
) -> Result<JsValue, JsError> {
    let files = files_from(files)?;
    let seed = whole(&options, "seed")?;
    let mut throttle = Throttle::new(&seconds, PROGRESS_INTERVAL);
    let mut progress = |done: u64, total: u64| {
        throttle.due(done == total) && ask_stop(&on_progress, &done_of(done as f64, total as f64))
    };
    let report = crate::run_paths(config_path, &files, seed, &seconds, &mut progress).map_err(|e| JsError::new(&e))?;
    to_js(&report)
}

/// Project every model point of the projection configuration at `configPath` (a `[projection]` table) as
/// `parfit run` does (nothing is written): totals.json's report plus `monthly` (column → monthly portfolio
/// values) and `work`. `onProgress({ done, total })` (points) runs after a wave, at most every 100 ms and after
/// the last; returning `true` stops.
#[wasm_bindgen]
pub fn project(
    config_path: &str,
    files: &Object,
    _options: JsValue,
    on_progress: Option<Function>,
) -> Result<JsValue, JsError> {
    let files = files_from(files)?;
    let mut throttle = Throttle::new(&seconds, PROGRESS_INTERVAL);
    let mut progress = |done: usize, total: usize| {
        throttle.due(done == total) && ask_stop(&on_progress, &done_of(done as f64, total as f64))
    };
    let report = crate::project(config_path, &files, &seconds, &mut progress).map_err(|e| JsError::new(&e))?;
    to_js(&report)
}

/// `{ done, total }` for a progress callback.
fn done_of(done: f64, total: f64) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"done".into(), &done.into());
    let _ = Reflect::set(&o, &"total".into(), &total.into());
    o.into()
}
