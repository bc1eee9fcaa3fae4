//! Objects: cheap, clonable, thread-safe handles to instances.

mod lifecycle;
mod properties;
mod state;

pub use state::StateGuard;

use crate::class::Class;
use crate::composition::{self, Place};
use crate::error::{Error, Result};
use crate::property::Property;
use crate::sync;
use crate::value::Input;
use indexmap::IndexMap;
use lifecycle::Lifecycle;
use state::StateSlot;
use std::fmt;
use std::sync::{Arc, RwLock, Weak};

pub(crate) struct ObjectInner {
    pub(crate) class: Arc<Class>,
    /// Root type first; only the levels that declare state.
    states: Box<[StateSlot]>,
    /// Properties added to this instance (children among them), in the
    /// order added.
    pub(crate) instance_props: RwLock<IndexMap<Arc<str>, Arc<Property>>>,
    pub(crate) place: Place,
    lifecycle: Lifecycle,
}

/// A handle to an object. Cloning it takes a reference; the object is
/// finalized when the last handle (including its parent's `child<>`
/// property and strong links) goes away.
#[derive(Clone)]
pub struct Object(pub(crate) Arc<ObjectInner>);

/// A handle that does not keep the object alive.
#[derive(Clone)]
pub struct WeakObject(pub(crate) Weak<ObjectInner>);

impl WeakObject {
    /// The object, if it still exists.
    pub fn upgrade(&self) -> Option<Object> {
        self.0.upgrade().map(Object)
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("type", &self.type_name())
            .field("path", &self.canonical_path())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Object {}

impl Object {
    pub(crate) fn instantiate(class: Arc<Class>, root: Option<&Object>) -> Result<Object> {
        if class.is_abstract {
            return Err(Error::AbstractType(class.name.to_string()));
        }
        let obj = Object(Arc::new(ObjectInner {
            class: class.clone(),
            states: state::new_slots(&class),
            instance_props: RwLock::new(IndexMap::new()),
            place: Place::new(root),
            lifecycle: Lifecycle::new(),
        }));
        // QEMU applies class defaults through the setters before any
        // instance_init runs, leaf class first.
        for prop in class.properties.values().rev() {
            if let (Some(dv), Some(set)) = (&prop.default, &prop.set) {
                set(&obj, Input::Json(dv))?;
            }
        }
        // A level's children exist before its instance_init, which may
        // configure them.
        for level in &class.levels {
            composition::create_children(&obj, &level.children, root)?;
            if let Some(init) = &level.instance_init {
                init(&obj);
            }
        }
        for level in &class.levels {
            if let Some(init) = &level.instance_post_init {
                init(&obj);
            }
        }
        Ok(obj)
    }

    /// Creates an instance of `class` outside any tree. With `context`,
    /// the new object resolves link paths in the tree `context` belongs to
    /// (use it for objects a type creates as its own children).
    pub fn new(class: Arc<Class>, context: Option<&Object>) -> Result<Object> {
        let root = context.and_then(Object::root);
        Object::instantiate(class, root.as_ref())
    }

    /// The object's class.
    pub fn class(&self) -> &Arc<Class> {
        &self.0.class
    }

    /// The object's type name.
    pub fn type_name(&self) -> &str {
        &self.0.class.name
    }

    /// Whether the object's class casts to `type_name` (an ancestor or an
    /// interface); see [`Class::is_a`].
    pub fn is_a(&self, type_name: &str) -> bool {
        self.0.class.is_a(type_name)
    }

    /// A handle that does not keep the object alive.
    pub fn downgrade(&self) -> WeakObject {
        WeakObject(Arc::downgrade(&self.0))
    }

    /// Identifies the object across threads without keeping it alive.
    fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl Drop for ObjectInner {
    fn drop(&mut self) {
        // Children are released first, so their unparent hooks run while
        // this object's state still exists.
        let props = std::mem::take(sync::recover(self.instance_props.get_mut()));
        composition::release_children(props);
        state::finalize(&self.class, &mut self.states);
    }
}
