//! Registration by linking: a crate that defines types says so once, with
//! [`register_linked!`](crate::register_linked), and every program that
//! links the crate finds its types in [`TypeRegistry::with_linked_types`]
//! without a central list.
//!
//! The registrations are collected by the `inventory` crate: each
//! invocation adds a static node to a list that the platform's startup
//! code links together before `main` (no allocation, no user code: the
//! registration functions themselves run only when asked for). `linkme`
//! would avoid that pre-main step but needs a proc-macro and the `syn`
//! tree to build, and neither gives an order, so the order is ours to fix.
//!
//! Order: registrations run sorted by their name, which is the module that
//! invoked the macro followed by the function's path, so that the result
//! does not depend on the linker. Registration order only decides the
//! order of listings (`qom-list-types`): parents are looked up when a
//! class is first built, so a type may be registered before its parent.
//!
//! A crate that nothing refers to is not linked at all (rustc drops an
//! unused dependency), and neither are its registrations: a program that
//! wants a crate's types only for their registration names it, e.g.
//! `use memory_backend_file as _;`.

use crate::error::{Error, Result};
use crate::registry::TypeRegistry;
use std::collections::HashSet;
use std::fmt;

/// One registration submitted with [`register_linked!`](crate::register_linked).
pub struct LinkedRegistration {
    name: &'static str,
    register: fn(&TypeRegistry) -> Result<()>,
}

impl LinkedRegistration {
    /// Used by [`register_linked!`](crate::register_linked); not meant to
    /// be called directly.
    #[doc(hidden)]
    pub const fn new(name: &'static str, register: fn(&TypeRegistry) -> Result<()>) -> Self {
        LinkedRegistration { name, register }
    }

    /// `module::path: function::path` of the invocation, which sorts the
    /// registrations and names one in errors.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the registration into `types`.
    pub fn register(&self, types: &TypeRegistry) -> Result<()> {
        (self.register)(types)
    }
}

impl fmt::Debug for LinkedRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedRegistration")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

inventory::collect!(LinkedRegistration);

/// Registers a function `fn(&TypeRegistry) -> qom::Result<()>` to run in
/// every [`TypeRegistry::with_linked_types`] of a program that links the
/// invoking crate.
///
/// Invoke it at module level, once per function. It expands to no code a
/// lint would stop: the static node it needs is declared inside
/// `inventory`'s own macro, and rustc does not report lints such as
/// `unsafe_code` in the expansion of another crate's macro, so a crate
/// with `#![forbid(unsafe_code)]` may use it.
///
/// ```
/// fn register(types: &qom::TypeRegistry) -> qom::Result<()> {
///     types.register(qom::TypeInfo::new("linked-doc-example").parent("object"))
/// }
/// qom::register_linked!(register);
///
/// let types = qom::TypeRegistry::with_linked_types()?;
/// assert!(types.contains("linked-doc-example"));
/// # Ok::<(), qom::LinkedError>(())
/// ```
#[macro_export]
macro_rules! register_linked {
    ($register:path) => {
        $crate::__inventory::submit! {
            $crate::LinkedRegistration::new(
                ::core::concat!(::core::module_path!(), ": ", ::core::stringify!($register)),
                $register,
            )
        }
    };
}

/// Every registration linked into this program, in the order
/// [`TypeRegistry::with_linked_types`] runs them: sorted by name, each
/// function once even when several crates submitted it.
pub fn linked_registrations() -> Vec<&'static LinkedRegistration> {
    let mut all: Vec<&'static LinkedRegistration> =
        inventory::iter::<LinkedRegistration>.into_iter().collect();
    all.sort_by_key(|r| r.name);
    let mut names = HashSet::new();
    // The same function submitted from two places (its own crate, and a
    // program that wants to be sure) would register its types twice. Code
    // addresses are compared as integers: comparing function pointers
    // directly is what rustc warns about, since identical functions may be
    // merged, and merged ones would register the same types anyway.
    let mut functions = HashSet::new();
    all.retain(|r| names.insert(r.name) && functions.insert(r.register as usize));
    all
}

/// A linked registration that failed, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedError {
    /// [`LinkedRegistration::name`] of the registration.
    pub registration: &'static str,
    /// What it returned.
    pub error: Error,
}

impl fmt::Display for LinkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registration {}: {}", self.registration, self.error)
    }
}

impl std::error::Error for LinkedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<LinkedError> for Error {
    /// For callers that only deal in [`Error`]: the message keeps the
    /// registration's name.
    fn from(e: LinkedError) -> Error {
        Error::generic(e.to_string())
    }
}

impl TypeRegistry {
    /// The built-in types plus every registration linked into the program
    /// (see [`register_linked!`](crate::register_linked)), run in the order
    /// of [`linked_registrations`]. The first failure stops it and names
    /// the registration.
    pub fn with_linked_types() -> std::result::Result<TypeRegistry, LinkedError> {
        let types = TypeRegistry::with_builtins();
        types.install_linked()?;
        Ok(types)
    }

    /// Runs every linked registration into this registry, for embedders
    /// that start from their own registry. Running it twice on one
    /// registry fails on the first type that is not registered with
    /// [`register_once`](TypeRegistry::register_once).
    pub fn install_linked(&self) -> std::result::Result<(), LinkedError> {
        for r in linked_registrations() {
            r.register(self).map_err(|error| LinkedError {
                registration: r.name,
                error,
            })?;
        }
        Ok(())
    }
}
