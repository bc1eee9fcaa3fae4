//! Classes: the built, immutable description of a type. The builder a
//! type's `class_init` fills is in `builder`, the property declarations
//! it hands out in `property_builder`.

mod builder;
mod property_builder;

pub use builder::ClassBuilder;
pub use property_builder::{PropertyBuilder, RawPropertyBuilder};

use crate::composition::ChildDecl;
use crate::error::Result;
use crate::object::Object;
use crate::property::Property;
use crate::type_info::{FinalizeFn, InstanceFn, StateDecl};
use indexmap::IndexMap;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A value stored in a class: a "class struct" of virtual methods or
/// class-wide settings. Subclasses start from a copy of their parent's.
pub trait ClassData: Any + Send + Sync {
    /// A boxed copy, for handing the parent's data to a subclass.
    fn clone_box(&self) -> Box<dyn ClassData>;
    /// Upcast for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// Upcast for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> ClassData for T {
    fn clone_box(&self) -> Box<dyn ClassData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The `unparent` hook.
pub type UnparentFn = Arc<dyn Fn(&Object) + Send + Sync>;

/// The class data every class carries: hooks QEMU keeps in `ObjectClass`.
#[derive(Clone, Default)]
pub struct ObjectClass {
    /// Runs when the object is removed from its parent (object-del, tree
    /// teardown, a failed `complete`), before the parent lets go of it.
    pub unparent: Option<UnparentFn>,
}

/// A condition a class must meet to be instantiable; see
/// [`ClassBuilder::check_concrete`].
pub type ClassCheckFn = Arc<dyn Fn(&Class) -> Result<()> + Send + Sync>;

/// The checks declared by a class and its ancestors. Kept as class data so
/// that subclasses inherit them with the rest of the parent's class.
#[derive(Clone, Default)]
pub(super) struct ClassChecks(Vec<ClassCheckFn>);

/// Runs the inherited checks of a concrete class, once it is built: an
/// abstract type may leave a virtual method for its subclasses to fill, an
/// instantiable one may not.
pub(crate) fn check_concrete(class: &Class) -> Result<()> {
    if class.is_abstract {
        return Ok(());
    }
    if let Some(checks) = class.data::<ClassChecks>() {
        for check in &checks.0 {
            check(class)?;
        }
    }
    Ok(())
}

/// One level of the hierarchy as instances see it.
#[derive(Clone)]
pub(crate) struct Level {
    pub(crate) state: Option<StateDecl>,
    pub(crate) instance_init: Option<InstanceFn>,
    pub(crate) instance_post_init: Option<InstanceFn>,
    pub(crate) finalize: Option<FinalizeFn>,
    /// The children this level's `class_init` declared.
    pub(crate) children: Vec<ChildDecl>,
}

/// A built class: ancestry, interfaces, the flattened property table and
/// the class data.
///
/// Classes are built lazily, once, parent first, and never change after.
pub struct Class {
    pub(crate) name: Arc<str>,
    pub(crate) parent: Option<Arc<Class>>,
    pub(crate) is_abstract: bool,
    /// This type and its ancestors, nearest first.
    pub(crate) ancestors: Vec<Arc<str>>,
    /// One entry per implemented interface: that interface and its
    /// ancestors, nearest first.
    pub(crate) interfaces: Vec<Vec<Arc<str>>>,
    /// Ancestors' properties first, then this type's, in declaration order.
    pub(crate) properties: IndexMap<Arc<str>, Arc<Property>>,
    pub(crate) data: HashMap<TypeId, Box<dyn ClassData>>,
    /// Root first.
    pub(crate) levels: Vec<Level>,
}

impl fmt::Debug for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Class")
            .field("name", &self.name)
            .field("abstract", &self.is_abstract)
            .field("ancestors", &self.ancestors)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Class {
    /// The type name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The parent class (`None` for the roots `object` and `interface`).
    pub fn parent(&self) -> Option<&Arc<Class>> {
        self.parent.as_ref()
    }
    /// Whether instances can be created.
    pub fn is_abstract(&self) -> bool {
        self.is_abstract
    }
    /// Whether this is an interface type.
    pub fn is_interface(&self) -> bool {
        self.ancestors.iter().any(|a| &**a == "interface")
    }

    /// QEMU's dynamic class cast, as a predicate: the type itself, an
    /// ancestor, or an interface implemented exactly once (a cast to an
    /// interface that two implemented interfaces descend from is ambiguous
    /// and fails, as in QEMU).
    pub fn is_a(&self, type_name: &str) -> bool {
        if &*self.name == type_name {
            return true;
        }
        let via_interfaces = self
            .interfaces
            .iter()
            .filter(|chain| chain.iter().any(|t| &**t == type_name))
            .count();
        if via_interfaces > 0 {
            return via_interfaces == 1;
        }
        self.ancestors.iter().any(|a| &**a == type_name)
    }

    /// The names of the implemented interfaces (inherited ones included).
    pub fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.interfaces
            .iter()
            .filter_map(|c| c.first().map(|s| &**s))
    }

    /// The class properties: ancestors' first, then this type's, each
    /// table in declaration order.
    pub fn properties(&self) -> impl Iterator<Item = &Arc<Property>> {
        self.properties.values()
    }

    /// One class property by name.
    pub fn property(&self, name: &str) -> Option<&Arc<Property>> {
        self.properties.get(name)
    }

    /// Class data of type `T`, if this class (or an ancestor) installed it.
    pub fn data<T: ClassData>(&self) -> Option<&T> {
        self.data
            .get(&TypeId::of::<T>())
            .and_then(|d| (**d).as_any().downcast_ref())
    }
}
