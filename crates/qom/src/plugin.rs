//! Plugins loaded at run time: the build stamp and the entry point a
//! plugin exports.
//!
//! A plugin is a `cdylib` crate that invokes
//! [`plugin_entry!`](crate::plugin_entry) with its registration function. A
//! host (the `qom` command's `--plugin`) opens the library, reads the
//! plugin's build stamp through a C function, compares it with its own
//! [`build_stamp`], and only when they are equal calls the registration
//! function with its `&TypeRegistry`. The stamp is read through the C ABI
//! because that is the one call that is sound before we know both sides
//! were built alike; the registration call is a Rust call that passes Rust
//! types, which is sound only after.
//!
//! # What the stamp covers
//!
//! The plugin carries its own statically linked copy of qom, so the two
//! copies must agree on the layout of every type that crosses (the
//! registry, `TypeInfo`, closures, errors, `serde_json::Value`) and on the
//! `TypeId`s that class data is looked up by. The stamp is
//! `qom VERSION src HASH; rustc VERSION; TARGET PROFILE panic=STRATEGY;
//! crate id ID`:
//! - the rustc version, because Rust promises no layout between releases;
//! - qom's version and a hash of its sources (computed by its build
//!   script), because a path dependency changes without a new version;
//! - target, profile and panic strategy, as QEMU insists on the same build;
//! - a hash of the `TypeId`s of qom's registry and of `serde_json::Value`,
//!   which rustc derives from each crate's identity (the `-C metadata`
//!   cargo gives it: package, version, source, enabled features and the
//!   identities of its dependencies). Equal ids mean the plugin's qom was
//!   compiled against the same dependency versions and features, which the
//!   other parts cannot see, and that `TypeId` lookups agree on both sides.
//!
//! In practice a plugin loads into the `qom` built by the same `cargo`
//! invocation, or by another invocation of the same workspace that enables
//! the same features; anything else is refused, never loaded on a guess.
//!
//! # What a plugin must know
//!
//! - Its code backs the closures it registered, so a loaded library is
//!   never unloaded: the host keeps it mapped until the process exits.
//! - Statics and thread-locals exist once per copy of qom: a plugin must
//!   use only the registry it is handed, never a global of its own.
//! - Memory allocated by the plugin is freed by the host and the other way
//!   round, so both must use the system allocator (Rust's default); a host
//!   with its own `#[global_allocator]` cannot take plugins.
//! - The plugin's own `register_linked!` registrations are in its copy of
//!   qom, not in the host's: a plugin made of several crates that register
//!   by being linked passes them on with a registration function that calls
//!   [`TypeRegistry::install_linked`] (which runs in the plugin's copy).
//! - A panic in registration is caught inside the plugin and returned as an
//!   error. Hooks the plugin registered should not panic: a panic
//!   unwinding from plugin code into the host crosses two copies of std.
//!
//! # Why the entry point needs no `allow(unsafe_code)`
//!
//! [`plugin_entry!`](crate::plugin_entry) generates `#[no_mangle]`
//! functions, which the `unsafe_code` lint reports when written by hand.
//! rustc does not report that lint (nor most others) in the expansion of a
//! macro defined in another crate, so the plugin crate may keep
//! `#![forbid(unsafe_code)]`; the example plugin does, and building it
//! proves it.

use crate::error::{Error, Result};
use crate::registry::TypeRegistry;
use std::any::TypeId;
use std::ffi::{CStr, CString};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

/// The C function (`extern "C" fn() -> *const c_char`) a plugin exports
/// that returns its build stamp as a NUL-terminated string.
pub const BUILD_STAMP_SYMBOL: &str = "qom_plugin_build_stamp";

/// The Rust function (a [`RegisterFn`]) a plugin exports that registers its
/// types; a host calls it only after the build stamps matched.
pub const REGISTER_SYMBOL: &str = "qom_plugin_register";

/// The signature behind [`REGISTER_SYMBOL`].
pub type RegisterFn = fn(&TypeRegistry) -> Result<()>;

/// This copy of qom's build stamp (see the module documentation): a host
/// and a plugin can share types only when theirs are equal.
pub fn build_stamp() -> &'static str {
    static STAMP: OnceLock<String> = OnceLock::new();
    STAMP.get_or_init(|| {
        let mut h = DefaultHasher::new();
        TypeId::of::<TypeRegistry>().hash(&mut h);
        TypeId::of::<serde_json::Value>().hash(&mut h);
        format!("{}; crate id {:016x}", env!("QOM_BUILD_STAMP"), h.finish())
    })
}

/// [`build_stamp`] as a C string, for the entry point
/// [`plugin_entry!`](crate::plugin_entry) generates.
#[doc(hidden)]
pub fn __build_stamp_cstr() -> &'static CStr {
    static STAMP: OnceLock<CString> = OnceLock::new();
    // The stamp is built from text without NUL bytes; an empty stamp, which
    // matches no host, is the answer if that ever changed.
    STAMP.get_or_init(|| CString::new(build_stamp()).unwrap_or_default())
}

/// Runs a plugin's registration for the entry point
/// [`plugin_entry!`](crate::plugin_entry) generates. A panic is caught
/// here, inside the plugin, so that it never unwinds into the host.
#[doc(hidden)]
pub fn __register(types: &TypeRegistry, register: RegisterFn) -> Result<()> {
    match panic::catch_unwind(AssertUnwindSafe(|| register(types))) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            Err(Error::generic(format!(
                "the plugin panicked while registering its types: {what}"
            )))
        }
    }
}

/// Exports a plugin's entry point: invoke it once, at the root of a
/// `cdylib` crate, with the plugin's registration function
/// (`fn(&TypeRegistry) -> qom::Result<()>`).
///
/// It defines two exported functions, named by [`BUILD_STAMP_SYMBOL`]
/// and [`REGISTER_SYMBOL`] (see the [module documentation](crate::plugin)
/// for how a host uses them). The crate may forbid unsafe code.
///
/// ```
/// #![forbid(unsafe_code)]
/// fn register(types: &qom::TypeRegistry) -> qom::Result<()> {
///     types.register(qom::TypeInfo::new("plugin-doc-example").parent("object"))
/// }
/// qom::plugin_entry!(register);
/// # fn main() {
/// # let types = qom::TypeRegistry::with_builtins();
/// # qom_plugin_register(&types).unwrap();
/// # assert!(types.contains("plugin-doc-example"));
/// # }
/// ```
#[macro_export]
macro_rules! plugin_entry {
    ($register:path) => {
        /// The build stamp of the qom this plugin was built with, which a
        /// host compares with its own before anything else.
        #[unsafe(no_mangle)]
        pub extern "C" fn qom_plugin_build_stamp() -> *const ::core::ffi::c_char {
            $crate::plugin::__build_stamp_cstr().as_ptr()
        }

        /// Registers the plugin's types into the host's registry; a host
        /// calls it only when the build stamps are equal.
        #[unsafe(no_mangle)]
        pub fn qom_plugin_register(types: &$crate::TypeRegistry) -> $crate::Result<()> {
            $crate::plugin::__register(types, $register)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_names_everything_it_covers() {
        let s = build_stamp();
        for part in [
            concat!("qom ", env!("CARGO_PKG_VERSION"), " src "),
            "rustc ",
            "panic=",
            "crate id ",
        ] {
            assert!(s.contains(part), "{s:?} lacks {part:?}");
        }
        assert_eq!(__build_stamp_cstr().to_str().unwrap(), s);
    }

    #[test]
    fn a_panicking_registration_is_an_error() {
        fn boom(_: &TypeRegistry) -> Result<()> {
            panic!("no types today")
        }
        let types = TypeRegistry::with_builtins();
        let err = __register(&types, boom).unwrap_err();
        assert!(err.to_string().contains("no types today"), "{err}");
    }
}
