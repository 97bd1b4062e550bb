//! The parfit plugin ABI.
//!
//! A plugin is a `cdylib` exporting one `extern "C"` symbol, [`ENTRY_SYMBOL`], that returns a pointer to a
//! static [`PluginTable`]. The table starts with [`ABI_VERSION`]; a host reads that field first and refuses
//! the plugin when it differs, before touching anything else. Everything else crosses the boundary as plain C
//! data: UTF-8 byte strings, `f64` arrays, opaque handles, status codes. Structured values (plugin info, model
//! specs, errors) travel as JSON.
//!
//! A plugin crate implements [`Plugin`] and calls [`export_plugin!`]; nothing else is needed, which is why a
//! third-party plugin depends on this crate alone (it re-exports the core as [`core`]).
//!
//! With the `host` feature, [`host`] loads plugins and wraps their models as ordinary [`parfit_core::Model`]s.

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
/// meaning of its functions. Version 2 added sensitivities and work counters.
pub const ABI_VERSION: u32 = 2;

/// Whether [`SimStats`], which crosses the boundary as is, has the layout [`ABI_VERSION`] 2 fixes: five `u64`
/// counters in declaration order. Both sides assert it at compile time (`export.rs` in every plugin, `host.rs`
/// in the host), so a change to the struct stops the build until it comes with a new ABI version.
pub(crate) const fn sim_stats_has_abi_layout() -> bool {
    use std::mem::{align_of, offset_of, size_of};
    ABI_VERSION == 2
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
/// parfit plugins and never run the constructors of unrelated libraries.
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
