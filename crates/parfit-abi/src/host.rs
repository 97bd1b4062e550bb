//! The host side of the ABI: find plugin libraries, load them, check their ABI version, and wrap their models,
//! projections and Monte Carlo paths as ordinary [`Model`]s, [`Projector`]s and [`PathRunner`]s.

use std::ffi::{CStr, c_char, c_void};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libloading::Library;
use parfit_core::model::downcast_workspace;
use parfit_core::paths::{PathRunner, PathsSpec};
use parfit_core::projection::{ProjectionSpec, Projector};
use parfit_core::{Model, ModelSpec, SimError, SimStats, Workspace};

use crate::{ABI_VERSION, ENTRY_SYMBOL, Entry, EntryFn, FILE_PREFIX, PluginInfo, PluginTable, status};

/// Why a plugin could not be loaded or used.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadError {
    /// The file is missing or is not a shared library this platform can load.
    NotLoadable { path: PathBuf, reason: String },
    /// A loadable library without the entry symbol.
    NotAPlugin { path: PathBuf },
    /// A plugin built against another ABI version.
    AbiMismatch { path: PathBuf, plugin: u32, host: u32 },
    /// The plugin's self-description is unreadable.
    BadInfo { path: PathBuf, reason: String },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotLoadable { path, reason } => {
                write!(f, "{}: not a loadable shared library ({reason})", path.display())
            }
            LoadError::NotAPlugin { path } => write!(
                f,
                "{}: not a parfit plugin (the library does not export the `{ENTRY_SYMBOL}` symbol)",
                path.display()
            ),
            LoadError::AbiMismatch { path, plugin, host } => write!(
                f,
                "{}: the plugin speaks plugin ABI version {plugin} but this parfit speaks version {host}; \
                 rebuild the plugin against a parfit-abi with ABI version {host}",
                path.display()
            ),
            LoadError::BadInfo { path, reason } => {
                write!(f, "{}: the plugin's description is unreadable ({reason})", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded plugin library.
pub struct LoadedPlugin {
    path: PathBuf,
    info: PluginInfo,
    table: &'static PluginTable,
    // Declared last: models and the table point into it, so it must outlive them (they hold clones).
    library: Arc<Library>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin").field("path", &self.path).field("info", &self.info).finish()
    }
}

/// Copy a NUL-terminated string owned by the plugin.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string valid for the duration of the call.
unsafe fn owned_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per the contract above.
    Some(unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

impl LoadedPlugin {
    /// Load the plugin at `path`, refusing it unless it speaks this host's ABI version.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        // SAFETY: loading a library runs its initialisers. We load only files the user named, or files named
        // like parfit plugins in the plugin directories; that is the trust model of every plugin host.
        let library = unsafe { Library::new(path) }
            .map_err(|e| LoadError::NotLoadable { path: path.to_path_buf(), reason: e.to_string() })?;
        // SAFETY: a parfit plugin exports the entry symbol with the `EntryFn` signature.
        let entry: EntryFn = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }
            .map(|symbol| *symbol)
            .map_err(|_| LoadError::NotAPlugin { path: path.to_path_buf() })?;
        // SAFETY: calling the entry function is part of the plugin contract; it returns a static table.
        let table_ptr = unsafe { entry() };
        if table_ptr.is_null() {
            return Err(LoadError::NotAPlugin { path: path.to_path_buf() });
        }
        // SAFETY: every ABI version starts its table with a `u32` version field; read only that first.
        let plugin_version = unsafe { table_ptr.cast::<u32>().read() };
        if plugin_version != ABI_VERSION {
            return Err(LoadError::AbiMismatch { path: path.to_path_buf(), plugin: plugin_version, host: ABI_VERSION });
        }
        // SAFETY: same version, so the table has this layout; it is static in the library, which we keep
        // alive (in `library`, and in every model) for as long as the reference is used.
        let table: &'static PluginTable = unsafe { &*table_ptr };
        // SAFETY: `info` returns a NUL-terminated string valid for the library's lifetime.
        let info_text = unsafe { owned_string((table.info)()) }.unwrap_or_default();
        let info: PluginInfo = serde_json::from_str(&info_text)
            .map_err(|e| LoadError::BadInfo { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(LoadedPlugin { path: path.to_path_buf(), info, table, library: Arc::new(library) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Whether the plugin offers `kind`.
    pub fn offers(&self, kind: &str) -> bool {
        self.info.kinds.iter().any(|k| k.kind == kind)
    }

    /// The entry point that makes `kind`, if the plugin offers it.
    pub fn entry(&self, kind: &str) -> Option<Entry> {
        self.info.kinds.iter().find(|k| k.kind == kind).map(|k| k.entry)
    }

    /// The plugin's last error on this thread.
    fn last_error(&self) -> String {
        table_error(self.table)
    }

    /// Create a model of `kind` from its JSON configuration.
    pub fn create(&self, kind: &str, config_json: &str) -> Result<PluginModel, String> {
        let t = self.table;
        let (instance, spec) = self.instantiate(
            t.create,
            t.describe,
            t.model_free,
            kind,
            config_json,
            "the model's spec",
            |s: ModelSpec| Ok(s.normalise()),
        )?;
        Ok(PluginModel { instance, spec })
    }

    /// Create a projection of `kind` (a kind made by the projection entry point) from its JSON configuration.
    pub fn create_projection(&self, kind: &str, config_json: &str) -> Result<PluginProjection, String> {
        let t = self.table;
        let (new, describe, free) = (t.projection_new, t.projection_describe, t.projection_free);
        let what = "the projection's description";
        let (instance, spec) =
            self.instantiate(new, describe, free, kind, config_json, what, |s: ProjectionSpec| s.check().map(|()| s))?;
        Ok(PluginProjection { instance, spec })
    }

    /// Create the Monte Carlo paths of `kind` (a kind made by the paths entry point) from its JSON configuration.
    pub fn create_paths(&self, kind: &str, config_json: &str) -> Result<PluginPaths, String> {
        let t = self.table;
        let (new, describe, free) = (t.paths_new, t.paths_describe, t.paths_free);
        let (instance, spec) =
            self.instantiate(new, describe, free, kind, config_json, "the paths' description", |s: PathsSpec| {
                let s = s.normalise();
                s.check().map(|()| s)
            })?;
        Ok(PluginPaths { instance, spec })
    }

    /// Make an object through one entry point (`new`, `describe`, `free`): the object, owned by an [`Instance`]
    /// (freed if its description is unreadable or fails `check`), and its description.
    #[allow(clippy::too_many_arguments)]
    fn instantiate<S: serde::de::DeserializeOwned>(
        &self,
        new: NewFn,
        describe: DescribeFn,
        free: FreeFn,
        kind: &str,
        config_json: &str,
        what: &str,
        check: impl FnOnce(S) -> Result<S, String>,
    ) -> Result<(Instance, S), String> {
        // SAFETY: the pointers and lengths describe live UTF-8 buffers for the duration of the call.
        let handle = unsafe { new(kind.as_ptr(), kind.len(), config_json.as_ptr(), config_json.len()) };
        if handle.is_null() {
            return Err(self.last_error());
        }
        let instance = Instance { handle, table: self.table, free, library: Arc::clone(&self.library) };
        // SAFETY: `describe` returns a NUL-terminated string owned by the live handle.
        let text = unsafe { owned_string(describe(handle)) }.unwrap_or_default();
        let spec = serde_json::from_str::<S>(&text)
            .map_err(|e| format!("{}: {what} is unreadable ({e})", self.path.display()))?;
        let spec = check(spec).map_err(|e| format!("{}: {e}", self.path.display()))?;
        Ok((instance, spec))
    }
}

/// An entry point's constructor, describer and destructor, and its workspace constructor (see [`PluginTable`]).
type NewFn =
    unsafe extern "C" fn(kind: *const u8, kind_len: usize, config: *const u8, config_len: usize) -> *mut c_void;
type DescribeFn = unsafe extern "C" fn(object: *const c_void) -> *const c_char;
type FreeFn = unsafe extern "C" fn(object: *mut c_void);
type WorkspaceNewFn = unsafe extern "C" fn(object: *const c_void) -> *mut c_void;

/// One object a plugin made — a model, a projection or Monte Carlo paths: its handle, freed exactly once when
/// dropped by its entry point's `free`, and the library, kept loaded while the object lives.
struct Instance {
    handle: *mut c_void,
    table: &'static PluginTable,
    free: FreeFn,
    library: Arc<Library>,
}

// SAFETY: the handle wraps a Rust `dyn Model`, `dyn Projector` or `dyn PathRunner`, each `Send + Sync` by its
// trait's bounds; it is only read concurrently (every call takes a per-thread workspace), and freed once in `Drop`.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the handle came from the `new` of the entry point whose `free` this is, and is freed exactly
        // once, here.
        unsafe { (self.free)(self.handle) };
    }
}

impl Instance {
    /// A fresh per-thread workspace made by `new`, the object's entry point's workspace constructor. A null one
    /// (a panic while making it) is reported by the next call as an error, not a panic here.
    fn workspace(&self, new: WorkspaceNewFn) -> Workspace {
        // SAFETY: the handle is live for `self`'s lifetime, and `new` belongs to the entry point that made it.
        let handle = unsafe { new(self.handle) };
        Box::new(PluginWorkspace { handle, table: self.table, _library: Arc::clone(&self.library) })
    }
}

/// Monte Carlo paths living in a plugin, usable wherever a core [`PathRunner`] is.
pub struct PluginPaths {
    instance: Instance,
    spec: PathsSpec,
}

impl PathRunner for PluginPaths {
    fn spec(&self) -> &PathsSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        self.instance.workspace(self.instance.table.paths_workspace_new)
    }

    fn run(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        seed: u64,
        periods: u64,
        first: u64,
        count: usize,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let ws = PluginWorkspace::live(ws, &self.spec.name)?;
        // SAFETY: live handles; every pointer/length pair describes a live buffer, and `out` is exclusive.
        let code = unsafe {
            (self.instance.table.paths_block)(
                self.instance.handle,
                ws.handle,
                params.as_ptr(),
                params.len(),
                seed,
                periods,
                first,
                count,
                out.as_mut_ptr(),
                out.len(),
            )
        };
        status_result(self.instance.table, code)
    }
}

/// A projection living in a plugin, usable wherever a core [`Projector`] is.
pub struct PluginProjection {
    instance: Instance,
    spec: ProjectionSpec,
}

impl Projector for PluginProjection {
    fn spec(&self) -> &ProjectionSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        self.instance.workspace(self.instance.table.projection_workspace_new)
    }

    fn project(
        &self,
        ws: &mut Workspace,
        first: usize,
        count: usize,
        scenarios: &[i64],
        mask: u64,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let ws = PluginWorkspace::live(ws, &self.spec.name)?;
        // SAFETY: live handles; every pointer/length pair describes a live buffer, and `out` is exclusive.
        let code = unsafe {
            (self.instance.table.projection_block)(
                self.instance.handle,
                ws.handle,
                first,
                count,
                scenarios.as_ptr(),
                scenarios.len(),
                mask,
                out.as_mut_ptr(),
                out.len(),
            )
        };
        status_result(self.instance.table, code)
    }
}

/// The plugin's last error on this thread.
fn table_error(table: &PluginTable) -> String {
    // SAFETY: `last_error` returns a NUL-terminated string valid until the next call on this thread.
    unsafe { owned_string((table.last_error)()) }.unwrap_or_else(|| "unknown plugin error".into())
}

/// A status code as a result, with the plugin's error message on failure.
fn status_result(table: &PluginTable, code: i32) -> Result<(), SimError> {
    match code {
        status::OK => Ok(()),
        status::SIM_ERROR => {
            let text = table_error(table);
            Err(serde_json::from_str(&text).unwrap_or(SimError::Other(text)))
        }
        _ => Err(SimError::Other(table_error(table))),
    }
}

/// A model living in a plugin, usable wherever a core [`Model`] is.
pub struct PluginModel {
    instance: Instance,
    spec: ModelSpec,
}

/// A workspace living in a plugin.
struct PluginWorkspace {
    handle: *mut c_void,
    table: &'static PluginTable,
    _library: Arc<Library>,
}

// SAFETY: the workspace is a plugin-side `Workspace` (`Box<dyn Any + Send>`), used by one thread at a time.
unsafe impl Send for PluginWorkspace {}

impl PluginWorkspace {
    /// The plugin workspace in `ws`, if the plugin could make one (a null one, from a panic while making it, is
    /// reported here as an error).
    fn live<'w>(ws: &'w mut Workspace, name: &str) -> Result<&'w mut PluginWorkspace, SimError> {
        let ws = downcast_workspace::<PluginWorkspace>(ws, name)?;
        if ws.handle.is_null() {
            return Err(SimError::Other(format!("the plugin could not make a workspace: {}", table_error(ws.table))));
        }
        Ok(ws)
    }
}

impl Drop for PluginWorkspace {
    fn drop(&mut self) {
        // SAFETY: the handle came from `workspace_new` and is freed exactly once, here.
        unsafe { (self.table.workspace_free)(self.handle) };
    }
}

impl Model for PluginModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        self.instance.workspace(self.instance.table.workspace_new)
    }

    fn simulate(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let ws = self.plugin_workspace(ws)?;
        // SAFETY: live handles; every pointer/length pair describes a live buffer, and `out` is exclusive.
        let code = unsafe {
            (self.instance.table.simulate)(
                self.instance.handle,
                ws,
                params.as_ptr(),
                params.len(),
                inputs.as_ptr(),
                inputs.len(),
                times.as_ptr(),
                times.len(),
                out.as_mut_ptr(),
                out.len(),
            )
        };
        status_result(self.instance.table, code)
    }

    fn has_sensitivities(&self) -> bool {
        // SAFETY: the model handle is live for `self`'s lifetime.
        unsafe { (self.instance.table.has_sensitivities)(self.instance.handle) != 0 }
    }

    fn simulate_sensitivities(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
        sens: &mut [f64],
    ) -> Result<(), SimError> {
        let ws = self.plugin_workspace(ws)?;
        // SAFETY: as in `simulate`; `sens` is exclusive too.
        let code = unsafe {
            (self.instance.table.simulate_sensitivities)(
                self.instance.handle,
                ws,
                params.as_ptr(),
                params.len(),
                inputs.as_ptr(),
                inputs.len(),
                times.as_ptr(),
                times.len(),
                out.as_mut_ptr(),
                out.len(),
                sens.as_mut_ptr(),
                sens.len(),
            )
        };
        status_result(self.instance.table, code)
    }

    fn stats(&self, ws: &Workspace) -> Option<SimStats> {
        let ws = ws.downcast_ref::<PluginWorkspace>().filter(|w| !w.handle.is_null())?;
        let mut stats = SimStats::default();
        // SAFETY: live handles; `stats` is a valid, writable `#[repr(C)]` value.
        let code = unsafe { (self.instance.table.stats)(self.instance.handle, ws.handle, &mut stats) };
        (code == status::OK).then_some(stats)
    }
}

// The host side of the check that the `SimStats` written across the boundary has the ABI's layout.
const _: () = assert!(crate::sim_stats_has_abi_layout(), "SimStats changed: bump ABI_VERSION and its layout check");

impl PluginModel {
    /// The plugin-side workspace handle inside a host workspace, or why there is none.
    fn plugin_workspace(&self, ws: &mut Workspace) -> Result<*mut c_void, SimError> {
        let ws = PluginWorkspace::live(ws, &self.spec.name)?;
        Ok(ws.handle)
    }
}

/// Whether a file name looks like a parfit plugin library on this platform.
pub fn is_plugin_file_name(name: &str) -> bool {
    let stem = name.strip_prefix(std::env::consts::DLL_PREFIX).unwrap_or(name);
    stem.starts_with(FILE_PREFIX) && name.ends_with(std::env::consts::DLL_SUFFIX)
}

/// The file name of plugin `name`'s library on this platform: `libparfit_<name>.so` and the like, a `-` in the
/// name written `_` (as Cargo names the library of a crate `parfit-<name>`).
pub fn plugin_file_name(name: &str) -> String {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    format!("{DLL_PREFIX}{FILE_PREFIX}{}{DLL_SUFFIX}", name.replace('-', "_"))
}

/// Where plugins are looked for, in order: explicit paths (files or directories), then each directory in
/// `PARFIT_PLUGIN_PATH`, then the directory of the running executable.
pub fn search_path(explicit: &[PathBuf], env_value: Option<&std::ffi::OsStr>, exe: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = explicit.to_vec();
    if let Some(v) = env_value {
        dirs.extend(std::env::split_paths(v).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(dir) = exe.and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
    }
    dirs
}

/// The result of a plugin scan: plugins in search order (first of a name wins) and what failed to load.
#[derive(Debug, Default)]
pub struct Discovery {
    pub plugins: Vec<LoadedPlugin>,
    /// Files that look like plugins but could not be loaded.
    pub problems: Vec<String>,
    /// Plugins skipped because one of the same name came earlier on the search path (overriding a plugin that
    /// way is normal, so this is information for `parfit plugins`, not a problem).
    pub shadowed: Vec<String>,
    /// Libraries found in a directory that export a plugin not named by their file (the entry symbol of a
    /// plugin they link as a dependency, as a native build of the browser façade would): not that plugin's
    /// library, so skipped — information for `parfit plugins`, not a problem.
    pub ignored: Vec<String>,
}

impl Discovery {
    /// The plugin to use for `kind`, optionally restricted to the plugin named `name`; otherwise what was
    /// wanted and the kinds there are. Front ends add how to point them at more plugins.
    pub fn choose(&self, name: Option<&str>, kind: &str) -> Result<&LoadedPlugin, String> {
        let mut candidates = self.plugins.iter().filter(|p| name.is_none_or(|n| p.info().name == n));
        if let Some(plugin) = candidates.find(|p| p.offers(kind)) {
            return Ok(plugin);
        }
        let available: Vec<String> = self
            .plugins
            .iter()
            .flat_map(|p| p.info().kinds.iter().map(move |k| format!("{} ({})", k.kind, p.info().name)))
            .collect();
        let wanted = match name {
            Some(n) => format!("plugin '{n}' with model kind '{kind}'"),
            None => format!("plugin offering model kind '{kind}'"),
        };
        Err(format!(
            "found no {wanted}; available kinds: {}",
            if available.is_empty() { "none".to_string() } else { available.join(", ") },
        ))
    }

    /// The plugin and kind that read files with `path`'s extension; otherwise the extensions there are.
    pub fn for_file(&self, path: &Path) -> Result<(&LoadedPlugin, String), String> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        for plugin in &self.plugins {
            if let Some(k) = plugin.info().kinds.iter().find(|k| k.extensions.iter().any(|e| e == ext)) {
                return Ok((plugin, k.kind.clone()));
            }
        }
        let known: Vec<String> =
            self.plugins.iter().flat_map(|p| p.info().kinds.iter().flat_map(|k| k.extensions.clone())).collect();
        Err(format!(
            "{}: no plugin reads '.{ext}' files (known extensions: {})",
            path.display(),
            if known.is_empty() { "none".into() } else { known.join(", ") },
        ))
    }
}

/// Load every plugin on the search path, each directory once. A plugin-like file that fails to load is an error
/// when it is, or lies in, a path the user named (`explicit`); elsewhere on the search path it is reported in
/// `problems` and skipped. In a directory, a library is a plugin only if its file is named for the plugin it
/// exports ([`plugin_file_name`]); a file the user names is loaded whatever its name.
pub fn discover(explicit: &[PathBuf], search: &[PathBuf]) -> Result<Discovery, LoadError> {
    discover_until(explicit, search, &|_| false)
}

/// [`discover`], opening no more libraries beside the paths the user named once `enough` says the plugins found
/// so far answer what the caller asks (each plugin library loaded costs milliseconds: its code is mapped and
/// relocated). Plugins are chosen by the first in search order that fits ([`Discovery::choose`],
/// [`Discovery::for_file`]), so a question answered by the plugins found so far has the answer a full scan
/// gives; one that is not answered scans everything, and its error lists every plugin. A library never opened
/// is not reported in `problems`.
pub fn discover_until(
    explicit: &[PathBuf],
    search: &[PathBuf],
    enough: &dyn Fn(&Discovery) -> bool,
) -> Result<Discovery, LoadError> {
    let mut found = Discovery::default();
    let add = |plugin: LoadedPlugin, found: &mut Discovery| {
        if let Some(first) = found.plugins.iter().find(|p| p.info.name == plugin.info.name) {
            found.shadowed.push(format!(
                "{}: plugin '{}' is shadowed by {}",
                plugin.path.display(),
                plugin.info.name,
                first.path.display()
            ));
        } else {
            found.plugins.push(plugin);
        }
    };
    let mut scanned: Vec<PathBuf> = Vec::new();
    for path in search {
        // The same directory twice (`--plugin` naming the executable's own) would shadow each plugin by itself.
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if scanned.contains(&canonical) {
            continue;
        }
        scanned.push(canonical);
        let named = explicit.contains(path);
        if !named && enough(&found) {
            continue;
        }
        if path.is_file() || (named && !path.is_dir()) {
            add(LoadedPlugin::load(path)?, &mut found);
            continue;
        }
        let Ok(entries) = std::fs::read_dir(path) else { continue };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(is_plugin_file_name))
            .collect();
        files.sort(); // a stable order, whatever the file system returns
        for file in files {
            if !named && enough(&found) {
                break;
            }
            match LoadedPlugin::load(&file) {
                Ok(plugin) if file.file_name().is_some_and(|n| *n != *plugin_file_name(&plugin.info.name)) => {
                    found.ignored.push(format!(
                        "{}: exports plugin '{}', whose library is named {}: a library linking that plugin, not \
                         the plugin",
                        file.display(),
                        plugin.info.name,
                        plugin_file_name(&plugin.info.name)
                    ));
                }
                Ok(plugin) => add(plugin, &mut found),
                Err(e) if named => return Err(e),
                Err(e) => found.problems.push(e.to_string()),
            }
        }
    }
    Ok(found)
}
