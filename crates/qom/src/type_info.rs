//! What a registration carries: [`TypeInfo`].

use crate::class::ClassBuilder;
use crate::error::Result;
use crate::object::Object;
use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// The hook that fills a class: properties and class data.
pub type ClassInitFn = Arc<dyn Fn(&mut ClassBuilder<'_>) -> Result<()> + Send + Sync>;
/// An instance hook (`instance_init`, `instance_post_init`).
pub type InstanceFn = Arc<dyn Fn(&Object) + Send + Sync>;
/// The finalize hook: runs on the level's own state, leaf to root, when the
/// last reference to the object goes.
pub type FinalizeFn = Arc<dyn Fn(&mut (dyn Any + Send)) + Send + Sync>;
/// Makes a fresh instance of a level's typed state.
pub type StateFactory = Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>;

/// The per-level state a type adds to its instances.
#[derive(Clone)]
pub(crate) struct StateDecl {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) factory: StateFactory,
}

/// A type registration: name, parent, flags, interfaces and hooks.
///
/// Built with chained calls and handed to
/// [`TypeRegistry::register`](crate::TypeRegistry::register):
///
/// ```
/// use qom::{TypeInfo, TypeRegistry};
/// let types = TypeRegistry::with_builtins();
/// types.register(TypeInfo::new("my-container").parent("container")).unwrap();
/// assert!(types.class("my-container").unwrap().is_a("object"));
/// ```
#[derive(Clone)]
pub struct TypeInfo {
    pub(crate) name: String,
    pub(crate) parent: Option<String>,
    pub(crate) is_abstract: bool,
    pub(crate) interfaces: Vec<String>,
    /// Types of the children `class_init` declares: loaded with the
    /// ancestry before the class is built.
    pub(crate) child_types: Vec<String>,
    pub(crate) class_init: Option<ClassInitFn>,
    pub(crate) state: Option<StateDecl>,
    pub(crate) instance_init: Option<InstanceFn>,
    pub(crate) instance_post_init: Option<InstanceFn>,
    pub(crate) finalize: Option<FinalizeFn>,
}

impl fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeInfo")
            .field("name", &self.name)
            .field("parent", &self.parent)
            .field("abstract", &self.is_abstract)
            .field("interfaces", &self.interfaces)
            .field("state", &self.state.as_ref().map(|s| s.type_name))
            .finish_non_exhaustive()
    }
}

impl TypeInfo {
    /// A registration for `name`; without [`parent`](Self::parent) only the
    /// built-in roots `object` and `interface` are accepted.
    pub fn new(name: impl Into<String>) -> Self {
        TypeInfo {
            name: name.into(),
            parent: None,
            is_abstract: false,
            interfaces: Vec::new(),
            child_types: Vec::new(),
            class_init: None,
            state: None,
            instance_init: None,
            instance_post_init: None,
            finalize: None,
        }
    }

    /// An interface type (parent `interface`, abstract, no instance state).
    pub fn interface(name: impl Into<String>) -> Self {
        TypeInfo::new(name).parent("interface").abstract_type(true)
    }

    /// The parent type's name.
    pub fn parent(mut self, parent: impl Into<String>) -> Self {
        self.parent = Some(parent.into());
        self
    }

    /// Marks the type abstract. Like QEMU, this is not inherited.
    pub fn abstract_type(mut self, is_abstract: bool) -> Self {
        self.is_abstract = is_abstract;
        self
    }

    /// Declares an implemented interface by name.
    pub fn interface_impl(mut self, interface: impl Into<String>) -> Self {
        self.interfaces.push(interface.into());
        self
    }

    /// Names the type of a child that `class_init` declares with
    /// [`ClassBuilder::child`], so that a type registered by a lazy module
    /// is loaded before this class is built. Types registered up front
    /// need not be listed.
    pub fn child_type(mut self, type_name: impl Into<String>) -> Self {
        self.child_types.push(type_name.into());
        self
    }

    /// The class initialiser: declares properties and overrides class data.
    pub fn class_init(
        mut self,
        f: impl Fn(&mut ClassBuilder<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.class_init = Some(Arc::new(f));
        self
    }

    /// The typed state this level adds to each instance, made with `Default`.
    pub fn state<S: Any + Send + Default>(self) -> Self {
        self.state_with(S::default)
    }

    /// The typed state this level adds to each instance, made by `make`.
    pub fn state_with<S: Any + Send>(
        mut self,
        make: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self {
        self.state = Some(StateDecl {
            type_id: TypeId::of::<S>(),
            type_name: std::any::type_name::<S>(),
            factory: Arc::new(move || Box::new(make()) as Box<dyn Any + Send>),
        });
        self
    }

    /// Runs after the defaults are applied, root type first.
    pub fn instance_init(mut self, f: impl Fn(&Object) + Send + Sync + 'static) -> Self {
        self.instance_init = Some(Arc::new(f));
        self
    }

    /// Runs after every `instance_init`, root type first (QEMU 10.1 order).
    pub fn instance_post_init(mut self, f: impl Fn(&Object) + Send + Sync + 'static) -> Self {
        self.instance_post_init = Some(Arc::new(f));
        self
    }

    /// Runs on this level's state when the object is finalized, leaf first.
    pub fn finalize(mut self, f: impl Fn(&mut (dyn Any + Send)) + Send + Sync + 'static) -> Self {
        self.finalize = Some(Arc::new(f));
        self
    }

    /// The type's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// QEMU's rule for type names: at least two characters from
/// `[A-Za-z0-9._-]`, the first a letter or a digit other than `0`.
pub fn is_valid_type_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && (b[0].is_ascii_alphabetic() || (b[0].is_ascii_digit() && b[0] != b'0'))
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::is_valid_type_name;

    #[test]
    fn type_names_follow_qemu_rules() {
        for ok in ["ab", "memory-backend-file", "x86_64-cpu", "1a", "a.b"] {
            assert!(is_valid_type_name(ok), "{ok}");
        }
        for bad in ["", "a", "0ab", "-ab", "a b", "a+b", "a/b", "é1"] {
            assert!(!is_valid_type_name(bad), "{bad}");
        }
    }
}
