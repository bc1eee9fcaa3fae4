//! Plugins loaded at run time (`--plugin PATH`, `QOM_PLUGIN_PATH`), as
//! QEMU loads its modules: the binary's only unsafe code.
//!
//! A plugin is a library made with `qom::plugin_entry!` (see
//! `qom::plugin`). Its build stamp is read and compared first, through
//! the C ABI; its registration, a Rust call that passes our registry, runs
//! only when the stamps are equal. A loaded library is never unloaded: the
//! closures it registered live in the registry until the process exits.
#![allow(unsafe_code)]

use libloading::Library;
use qom::plugin::{build_stamp, RegisterFn, BUILD_STAMP_SYMBOL, REGISTER_SYMBOL};
use qom::TypeRegistry;
use std::collections::HashSet;
use std::env::consts::DLL_EXTENSION;
use std::ffi::{c_char, CStr, OsStr};
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable naming plugin directories (colon-separated,
/// as `PATH`); every `*.so` in each is loaded (the platform's extension
/// for shared libraries, elsewhere).
pub const PLUGIN_PATH_VAR: &str = "QOM_PLUGIN_PATH";

/// Why a plugin (or a plugin directory) could not be loaded: one line that
/// names the file.
#[derive(Debug)]
pub struct PluginError {
    path: PathBuf,
    what: &'static str,
    reason: String,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.what, self.path.display(), self.reason)
    }
}

impl std::error::Error for PluginError {}

fn plugin_error(path: &Path, reason: impl Into<String>) -> PluginError {
    PluginError {
        path: path.to_owned(),
        what: "plugin",
        reason: reason.into(),
    }
}

/// Loads the plugins of every directory in `QOM_PLUGIN_PATH` (each in file
/// name order), then those named on the command line, in order. A file
/// reached twice (by two names, or by the directory and `--plugin`) is
/// loaded once; the first failure stops everything.
pub fn load_all(
    types: &TypeRegistry,
    plugin_path: Option<&OsStr>,
    named: &[PathBuf],
) -> Result<(), PluginError> {
    let mut files = Vec::new();
    if let Some(dirs) = plugin_path {
        for dir in std::env::split_paths(dirs).filter(|d| !d.as_os_str().is_empty()) {
            files.extend(plugins_in(&dir)?);
        }
    }
    files.extend(named.iter().cloned());
    let mut loaded = HashSet::new();
    for file in files {
        // Canonical names make one file reached by two names load once;
        // a file that cannot be resolved is reported by the loader below.
        let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if loaded.insert(key) {
            load(types, &file)?;
        }
    }
    Ok(())
}

/// The shared libraries (`*.so`) of a plugin directory, sorted.
fn plugins_in(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let dir_error = |reason: String| PluginError {
        path: dir.to_owned(),
        what: "plugin directory",
        reason,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| dir_error(e.to_string()))? {
        let path = entry.map_err(|e| dir_error(e.to_string()))?.path();
        if path.extension() == Some(OsStr::new(DLL_EXTENSION)) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads one plugin into `types`.
pub fn load(types: &TypeRegistry, path: &Path) -> Result<(), PluginError> {
    // A bare name would be searched for in the system's library
    // directories; a plugin is always the file the user named.
    let file = if path.components().count() == 1 && path.is_relative() {
        Path::new(".").join(path)
    } else {
        path.to_owned()
    };
    if !file.is_file() {
        let reason = match std::fs::metadata(&file) {
            Err(e) => e.to_string(),
            Ok(_) => "not a regular file".to_owned(),
        };
        return Err(plugin_error(path, reason));
    }
    let library = open(&file).map_err(|e| {
        // dlerror() starts with the file name, which our message has already.
        let text = e.to_string();
        let prefix = format!("{}: ", file.display());
        plugin_error(path, text.strip_prefix(&prefix).unwrap_or(&text))
    })?;
    let result = register(types, path, &library);
    // Never unloaded, whether it registered or not: registration may have
    // failed halfway, after some of the plugin's closures were registered.
    std::mem::forget(library);
    result
}

#[cfg(unix)]
fn open(file: &Path) -> Result<Library, libloading::Error> {
    use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
    // RTLD_NOW: a library with a missing symbol fails here, with a
    // message, instead of aborting the process at its first call.
    // RTLD_LOCAL: two plugins' copies of qom do not resolve to each other.
    // SAFETY: loading runs the library's initialisers. The user named this
    // file as a plugin, which is the same trust QEMU gives its modules;
    // those of a qom plugin only link `inventory` nodes.
    unsafe { UnixLibrary::open(Some(file), RTLD_NOW | RTLD_LOCAL) }.map(Library::from)
}

#[cfg(not(unix))]
fn open(file: &Path) -> Result<Library, libloading::Error> {
    // SAFETY: as on unix, the user named this file as a plugin.
    unsafe { Library::new(file) }
}

fn register(types: &TypeRegistry, path: &Path, library: &Library) -> Result<(), PluginError> {
    // SAFETY: `qom::plugin_entry!` defines this symbol with exactly this C
    // signature; the name is qom's own, so a library that is not a qom
    // plugin does not have it (and is refused just below).
    let stamp_fn =
        unsafe { library.get::<extern "C" fn() -> *const c_char>(BUILD_STAMP_SYMBOL.as_bytes()) }
            .map_err(|_| {
            plugin_error(
                path,
                format!(
                    "not a qom plugin (it exports no '{BUILD_STAMP_SYMBOL}'; \
                     a plugin invokes qom::plugin_entry!)"
                ),
            )
        })?;
    let ptr = stamp_fn();
    if ptr.is_null() {
        return Err(plugin_error(path, "the plugin's build stamp is missing"));
    }
    // SAFETY: the function returns a pointer to a NUL-terminated string
    // that its library keeps alive, and the library is never unloaded.
    let plugin_stamp = unsafe { CStr::from_ptr(ptr) }.to_string_lossy();
    let ours = build_stamp();
    if plugin_stamp != ours {
        // Escaped so that whatever the library says stays on one line.
        let theirs = plugin_stamp.escape_debug();
        return Err(plugin_error(
            path,
            format!(
                "built from a different qom build (only plugins from the same build can be loaded): \
                 plugin stamp '{theirs}', qom stamp '{ours}'"
            ),
        ));
    }
    // SAFETY: the stamps are equal, so this library was built by the same
    // compiler from the same qom, whose plugin_entry! defines the symbol
    // as a `RegisterFn`; the types it passes have the same layout on both
    // sides. The function pointer stays valid: the library is never
    // unloaded.
    let register =
        unsafe { library.get::<RegisterFn>(REGISTER_SYMBOL.as_bytes()) }.map_err(|_| {
            plugin_error(
                path,
                format!("has a build stamp but no '{REGISTER_SYMBOL}' entry point"),
            )
        })?;
    register(types).map_err(|e| plugin_error(path, format!("registration failed: {e}")))
}
