//! The parfit plugin ABI, version 3.
//!
//! A plugin is a `cdylib` exporting one `extern "C"` symbol, [`ENTRY_SYMBOL`], that returns a pointer to a
//! static [`PluginTable`]. The table starts with [`ABI_VERSION`]; a host reads that field first and refuses
//! the plugin when it differs, before touching anything else. Everything else crosses the boundary as plain C
//! data: UTF-8 byte strings, `f64` and `i64` arrays, opaque handles, status codes. Structured values (plugin
//! info, model and projection descriptions, errors) travel as JSON.
//!
//! A plugin crate implements [`Plugin`] and calls [`export_plugin!`]; nothing else is needed, which is why a
//! third-party plugin depends on this crate alone (it re-exports the core as [`core`]).
//!
//! With the `host` feature, [`host`] loads plugins and wraps their models as ordinary [`parfit_core::Model`]s,
//! their projections as [`parfit_core::projection::Projector`]s and their Monte Carlo models as
//! [`parfit_core::paths::PathRunner`]s.
//!
//! # The table, entry by entry
//!
//! Every function is `extern "C"`, never unwinds (a panic becomes [`status::PANIC`]), and may be called from
//! any thread; handles are used by one thread at a time except the model, projection and paths handles, which
//! are shared read-only. Lengths are element counts. A function that fails returns null or a [`status`] code and
//! leaves a message for [`PluginTable::last_error`] on the calling thread.
//!
//! - `abi_version`: [`ABI_VERSION`].
//! - `info()`: the plugin's [`PluginInfo`] as JSON: its name, version and kinds. Each kind says which entry
//!   point makes it ([`Entry`]): a *model* (`create`), a *projection* (`projection_new`) or *paths*
//!   (`paths_new`).
//!
//! **Models** (fits, runs, sampling): a model is a pure function of parameters, one case's inputs and output
//! times ([`parfit_core::Model`]).
//! - `create(kind, config)` → a model handle, or null. `describe(model)`: its [`parfit_core::ModelSpec`] as JSON.
//! - `workspace_new(model)` → a per-thread workspace; `workspace_free(workspace)`.
//! - `simulate(model, workspace, params, inputs, times, out)`: `out` holds `n_times × outputs` values (time
//!   series, row per time) or `outputs` (scalar models), as the spec's `output_kind` says.
//! - `has_sensitivities(model)`; `simulate_sensitivities(…, sens)`: also `∂out/∂params`, `n_out × n_params`.
//! - `stats(model, workspace, stats)`: the work counters of the last simulation ([`SimStats`], five `u64`).
//! - `model_free(model)`.
//!
//! **Projections** (portfolios of model points over a horizon of months, under scenarios): see
//! [`parfit_core::projection`].
//! - `projection_new(kind, config)` → a projection handle, or null. The configuration is the plugin's own JSON
//!   (parfit sends `{"tables": {role: {"name": file name, "text": CSV text}}, "constants": {name: value}}`,
//!   the model point table under the role `model_points`).
//! - `projection_describe(projection)`: its [`parfit_core::projection::ProjectionSpec`] as JSON — the number of
//!   points, the horizon in months, the scenario ids (the first the default), and the result tables: for each,
//!   a name, the column names and a scope: `"point"` (a row per point and scenario of the block),
//!   `"month"` (a row per month, summed over the block's points and scenarios) or `"point_month"` (a row per
//!   point, scenario and month). At most 64 tables, each with at least one column. Optionally `ids`: the points'
//!   ids (the first column of `model_points`), one per point in table order; without them the host reads the
//!   table a second time for them.
//! - `projection_workspace_new(projection)` → a per-thread workspace, freed with `workspace_free`.
//! - `projection_block(projection, workspace, first, count, scenarios, n_scenarios, mask, out, n_out)`:
//!   project points `first..first + count` under the scenario ids `scenarios`, writing the tables whose bit is
//!   set in `mask` (bit `t` for table `t`) into `out`, one after the other in table order, each in its scope's
//!   layout (points outermost, then scenarios, then months). `n_out` must equal the sum of those tables'
//!   lengths, or the call is a [`status::BAD_CALL`]. A block's values depend on its arguments alone, never on
//!   other blocks or on the thread; the host chooses the blocks and sums `"month"` tables over blocks in order.
//! - `projection_free(projection)`.
//!
//! **Paths** (Monte Carlo: many independent paths of a stochastic model over a number of periods): see
//! [`parfit_core::paths`].
//! - `paths_new(kind, config)` → a paths handle, or null. The configuration is the plugin's own JSON (parfit
//!   sends its model configuration: `{"source": model text, "source_name": file name, …options}`).
//! - `paths_describe(paths)`: its [`parfit_core::paths::PathsSpec`] as JSON — the model's name, its parameters
//!   (name, default, bounds: `{"name", "default", "lower", "upper", "log_scale"}`, infinite bounds as `null`)
//!   and the names of the outputs each path reports after its last period (at least one).
//! - `paths_workspace_new(paths)` → a per-thread workspace, freed with `workspace_free`.
//! - `paths_block(paths, workspace, params, n_params, seed, periods, first, count, out, n_out)`: run paths
//!   `first..first + count` (`u64` indices; `first + count` must not overflow) under the parameter vector
//!   `params` (in the description's order, `n_params` of them), the random streams keyed by `seed` and each
//!   path's index, each path stepped `periods` times, writing one row per path of the described outputs into
//!   `out` (`n_out` = `count × outputs`, or the call is a [`status::BAD_CALL`]). A path's row depends on
//!   (parameters, seed, periods, its index) alone — never on `first`, `count`, other blocks or the thread —
//!   so the host splits the paths as it likes and places rows by index. A non-finite output is a
//!   [`status::SIM_ERROR`] naming the path.
//! - `paths_free(paths)`.
//!
//! **All**: `last_error()`: the calling thread's last failure — a JSON [`parfit_core::SimError`] after
//! [`status::SIM_ERROR`], plain text otherwise.
//!
//! Nothing is encoded in floats, and the host never gives `times` another meaning (projections and Monte Carlo
//! runs have entry points of their own): what a call returns is what its description says.

// This crate is the project's only `unsafe` layer: every block carries a SAFETY comment.
#![allow(unsafe_code)]

pub mod export;
#[cfg(feature = "host")]
pub mod host;

use std::ffi::{c_char, c_void};

pub use parfit_core as core;
use parfit_core::SimStats;
use serde::{Deserialize, Serialize};

/// Version of the table layout and calling conventions. Bump on any change to [`PluginTable`] or to the
/// meaning of its functions.
///
/// History: version 2 added sensitivities and work counters; version 3 made projections (`projection_*`) and
/// Monte Carlo paths (`paths_*`) entry points of their own, and gave each kind in [`KindInfo`] its entry point.
/// Version 3 has not been released outside the parfit repository: the paths entry point joined it before any
/// release, so no published v3 plugin lacks it.
pub const ABI_VERSION: u32 = 3;

/// Whether [`SimStats`], which crosses the boundary as is, has the layout [`ABI_VERSION`] 3 fixes (as 2 did): five `u64`
/// counters in declaration order. Both sides assert it at compile time (`export.rs` in every plugin, `host.rs`
/// in the host), so a change to the struct stops the build until it comes with a new ABI version.
pub(crate) const fn sim_stats_has_abi_layout() -> bool {
    use std::mem::{align_of, offset_of, size_of};
    ABI_VERSION == 3
        && size_of::<SimStats>() == 40
        && align_of::<SimStats>() == 8
        && offset_of!(SimStats, steps) == 0
        && offset_of!(SimStats, rejected_steps) == 8
        && offset_of!(SimStats, rhs_evaluations) == 16
        && offset_of!(SimStats, jacobian_evaluations) == 24
        && offset_of!(SimStats, factorisations) == 32
}

/// The symbol every plugin exports: `extern "C" fn() -> *const PluginTable`.
pub const ENTRY_SYMBOL: &str = "parfit_plugin_entry";

/// A plugin's file name starts with this (after the platform's `lib` prefix), so directory scans load only
/// parfit plugins and never run the constructors of unrelated libraries. In full it is `parfit_<name>` for the
/// plugin named `<name>` in its [`PluginInfo`] (a `-` written `_`): a directory scan skips a library that
/// exports another plugin's entry (one linking a plugin crate as a dependency).
pub const FILE_PREFIX: &str = "parfit_";

/// Status codes returned by table functions.
pub mod status {
    pub const OK: i32 = 0;
    /// The model reported an error; `last_error` holds a JSON [`parfit_core::SimError`].
    pub const SIM_ERROR: i32 = 1;
    /// The plugin panicked; `last_error` holds the panic message.
    pub const PANIC: i32 = 2;
    /// The arguments were inconsistent (buffer lengths, null handles); `last_error` says which.
    pub const BAD_CALL: i32 = 3;
    /// The model keeps no work counters.
    pub const NO_STATS: i32 = 4;
}

/// Signature of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;

/// The table a plugin exports. `abi_version` must stay the first field in every version.
#[repr(C)]
pub struct PluginTable {
    pub abi_version: u32,
    /// NUL-terminated JSON [`PluginInfo`], valid for the library's lifetime.
    pub info: unsafe extern "C" fn() -> *const c_char,
    /// Create a model of `kind` from a UTF-8 JSON configuration. Returns null on failure (see `last_error`).
    pub create:
        unsafe extern "C" fn(kind: *const u8, kind_len: usize, config: *const u8, config_len: usize) -> *mut c_void,
    /// NUL-terminated JSON [`parfit_core::ModelSpec`], owned by the model.
    pub describe: unsafe extern "C" fn(model: *const c_void) -> *const c_char,
    /// A fresh per-thread workspace for `model`; null on failure.
    pub workspace_new: unsafe extern "C" fn(model: *const c_void) -> *mut c_void,
    pub workspace_free: unsafe extern "C" fn(workspace: *mut c_void),
    /// Simulate; returns a [`status`] code. Buffer lengths are checked against the model's spec.
    #[allow(clippy::type_complexity)]
    pub simulate: unsafe extern "C" fn(
        model: *const c_void,
        workspace: *mut c_void,
        params: *const f64,
        n_params: usize,
        inputs: *const f64,
        n_inputs: usize,
        times: *const f64,
        n_times: usize,
        out: *mut f64,
        n_out: usize,
    ) -> i32,
    /// Non-zero when the model implements `simulate_sensitivities`.
    pub has_sensitivities: unsafe extern "C" fn(model: *const c_void) -> i32,
    /// Simulate and write `sens` (`n_out × n_params`, row per output value); returns a [`status`] code.
    #[allow(clippy::type_complexity)]
    pub simulate_sensitivities: unsafe extern "C" fn(
        model: *const c_void,
        workspace: *mut c_void,
        params: *const f64,
        n_params: usize,
        inputs: *const f64,
        n_inputs: usize,
        times: *const f64,
        n_times: usize,
        out: *mut f64,
        n_out: usize,
        sens: *mut f64,
        n_sens: usize,
    ) -> i32,
    /// Write the work counters of the workspace's last simulation into `stats`; returns [`status::OK`], or
    /// [`status::NO_STATS`] when the model keeps none.
    pub stats: unsafe extern "C" fn(model: *const c_void, workspace: *const c_void, stats: *mut SimStats) -> i32,
    /// NUL-terminated message of the last failure on the calling thread; valid until the next call on it.
    pub last_error: unsafe extern "C" fn() -> *const c_char,
    pub model_free: unsafe extern "C" fn(model: *mut c_void),
    /// Create a projection of `kind` from a UTF-8 JSON configuration. Returns null on failure (see `last_error`).
    pub projection_new:
        unsafe extern "C" fn(kind: *const u8, kind_len: usize, config: *const u8, config_len: usize) -> *mut c_void,
    /// NUL-terminated JSON [`parfit_core::projection::ProjectionSpec`], owned by the projection.
    pub projection_describe: unsafe extern "C" fn(projection: *const c_void) -> *const c_char,
    /// A fresh per-thread workspace for `projection` (freed by `workspace_free`); null on failure.
    pub projection_workspace_new: unsafe extern "C" fn(projection: *const c_void) -> *mut c_void,
    /// Project a block of points; returns a [`status`] code (see the crate documentation for the layout).
    #[allow(clippy::type_complexity)]
    pub projection_block: unsafe extern "C" fn(
        projection: *const c_void,
        workspace: *mut c_void,
        first: usize,
        count: usize,
        scenarios: *const i64,
        n_scenarios: usize,
        mask: u64,
        out: *mut f64,
        n_out: usize,
    ) -> i32,
    pub projection_free: unsafe extern "C" fn(projection: *mut c_void),
    /// Create the Monte Carlo paths of `kind` from a UTF-8 JSON configuration. Returns null on failure (see
    /// `last_error`).
    pub paths_new:
        unsafe extern "C" fn(kind: *const u8, kind_len: usize, config: *const u8, config_len: usize) -> *mut c_void,
    /// NUL-terminated JSON [`parfit_core::paths::PathsSpec`], owned by the paths handle.
    pub paths_describe: unsafe extern "C" fn(paths: *const c_void) -> *const c_char,
    /// A fresh per-thread workspace for `paths` (freed by `workspace_free`); null on failure.
    pub paths_workspace_new: unsafe extern "C" fn(paths: *const c_void) -> *mut c_void,
    /// Run a block of paths; returns a [`status`] code (see the crate documentation for the layout).
    #[allow(clippy::type_complexity)]
    pub paths_block: unsafe extern "C" fn(
        paths: *const c_void,
        workspace: *mut c_void,
        params: *const f64,
        n_params: usize,
        seed: u64,
        periods: u64,
        first: u64,
        count: usize,
        out: *mut f64,
        n_out: usize,
    ) -> i32,
    pub paths_free: unsafe extern "C" fn(paths: *mut c_void),
}

/// Which entry point of the table makes a kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// `create`: a [`parfit_core::Model`].
    #[default]
    Model,
    /// `projection_new`: a [`parfit_core::projection::Projector`].
    Projection,
    /// `paths_new`: a [`parfit_core::paths::PathRunner`].
    Paths,
}

/// A model kind a plugin offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindInfo {
    /// The name configurations use (`kind = "diffsl"`).
    pub kind: String,
    /// Model-file extensions (without the dot) that select this kind, e.g. `["ds"]`.
    #[serde(default)]
    pub extensions: Vec<String>,
    pub description: String,
    /// The entry point that makes it (a model when absent).
    #[serde(default)]
    pub entry: Entry,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kinds: Vec<KindInfo>,
}

/// What a plugin crate implements; [`export_plugin!`] turns it into the C table.
pub trait Plugin {
    fn info() -> PluginInfo;

    /// Build a model of `kind` from its JSON configuration. The error says what was wrong and where.
    fn create(kind: &str, config_json: &str) -> Result<Box<dyn parfit_core::Model>, String>;

    /// Build a projection of `kind` (a kind whose [`KindInfo::entry`] is [`Entry::Projection`]) from its JSON
    /// configuration. A plugin without projections keeps this default, which refuses every kind.
    fn create_projection(kind: &str, config_json: &str) -> Result<Box<dyn parfit_core::projection::Projector>, String> {
        let _ = config_json;
        Err(format!("this plugin makes no projection of kind '{kind}'"))
    }

    /// Build the Monte Carlo paths of `kind` (a kind whose [`KindInfo::entry`] is [`Entry::Paths`]) from its
    /// JSON configuration. A plugin without Monte Carlo models keeps this default, which refuses every kind.
    fn create_paths(kind: &str, config_json: &str) -> Result<Box<dyn parfit_core::paths::PathRunner>, String> {
        let _ = config_json;
        Err(format!("this plugin makes no Monte Carlo paths of kind '{kind}'"))
    }
}

/// Export `$plugin` (a type implementing [`Plugin`]) as this library's parfit plugin.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // A browser cannot load libraries: there the plugins are linked into one module (parfit-wasm), where
        // every plugin's entry symbol would collide.
        #[cfg(not(target_family = "wasm"))]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn parfit_plugin_entry() -> *const $crate::PluginTable {
            extern "C" fn info() -> *const ::std::ffi::c_char {
                static INFO: ::std::sync::OnceLock<::std::ffi::CString> = ::std::sync::OnceLock::new();
                INFO.get_or_init(|| $crate::export::info_json::<$plugin>()).as_ptr()
            }
            static TABLE: $crate::PluginTable = $crate::export::table::<$plugin>(info);
            &TABLE
        }
    };
}

/// Treat a `(pointer, length)` pair from the other side as a slice; a null pointer is only allowed with length 0.
///
/// # Safety
/// `ptr` must be valid for reads of `len` values for the returned lifetime.
unsafe fn slice_from<'a, T>(ptr: *const T, len: usize) -> Option<&'a [T]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller guarantees `len` readable values.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Keep the compiler honest about the opaque handle type used throughout.
type Handle = *mut c_void;
