//! The composition tree: parents and their `child<>` properties, `link<>`
//! properties, and paths through both.
//!
//! A parent holds each child through exactly one thing, the child's
//! property's [`Edge::Child`]; the child points back with a weak
//! [`Place::parent`], so the tree never keeps itself alive.

mod child;
mod link;
pub mod path;

pub(crate) use child::{create_children, declare_child, ChildDecl, ChildDecls};
pub use child::{Child, ChildField};
pub(crate) use link::link_property;
pub use link::Link;

use crate::class::ObjectClass;
use crate::error::{Error, Result};
use crate::object::{Object, ObjectInner};
use crate::property::{Property, PropertyKind};
use crate::sync;
use indexmap::IndexMap;
use link::FollowFn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// What a property is in the composition tree.
#[derive(Clone)]
pub(crate) enum Edge {
    /// An ordinary value.
    None,
    /// `child<T>`: the parent's reference to its child, the only strong
    /// one the tree holds.
    Child(Object),
    /// `link<T>`: reads the target from the owner's state.
    Link {
        /// Always [`PropertyKind::Link`], kept for [`Property::kind`].
        kind: PropertyKind,
        follow: FollowFn,
    },
}

impl Edge {
    /// How introspection describes this edge.
    pub(crate) fn kind(&self) -> &PropertyKind {
        match self {
            Edge::None => &PropertyKind::Value,
            Edge::Child(_) => &PropertyKind::Child,
            Edge::Link { kind, .. } => kind,
        }
    }

    /// The object at the other end, if any.
    fn follow(&self, owner: &Object) -> Option<Object> {
        match self {
            Edge::None => None,
            Edge::Child(child) => Some(child.clone()),
            Edge::Link { follow, .. } => follow(owner),
        }
    }
}

/// The back reference from a child to the parent that holds it.
struct ParentRef {
    parent: Weak<ObjectInner>,
    name: Arc<str>,
}

/// Where an object sits in the composition tree.
pub(crate) struct Place {
    parent: Mutex<Option<ParentRef>>,
    /// The root of the tree this object was created for, used to resolve
    /// link paths before the object itself is placed in the tree.
    root: Option<Weak<ObjectInner>>,
    is_root: AtomicBool,
    /// Set while an `unparent` is in progress, so that two racing calls
    /// (two clients deleting the same object) detach it only once.
    unparenting: AtomicBool,
}

impl Place {
    /// Not in a tree yet; `root` is the tree the object was created for.
    pub(crate) fn new(root: Option<&Object>) -> Self {
        Place {
            parent: Mutex::new(None),
            root: root.map(|r| Arc::downgrade(&r.0)),
            is_root: AtomicBool::new(false),
            unparenting: AtomicBool::new(false),
        }
    }
}

/// Lets go of the children among a dying object's instance properties,
/// newest first: each child's unparent hook runs and its back reference
/// is cleared before the property (and the child with it) is dropped.
pub(crate) fn release_children(props: IndexMap<Arc<str>, Arc<Property>>) {
    for (_, prop) in props.into_iter().rev() {
        if let Edge::Child(child) = &prop.edge {
            child.run_unparent_hook();
            *sync::lock(&child.0.place.parent) = None;
        }
    }
}

impl Object {
    pub(crate) fn mark_root(&self) {
        self.0.place.is_root.store(true, Ordering::Release);
    }

    fn is_root(&self) -> bool {
        self.0.place.is_root.load(Ordering::Acquire)
    }

    /// Adds `child` as `child<TYPE>` property `name` of this object.
    pub fn add_child(&self, name: &str, child: &Object) -> Result<()> {
        if child.parent().is_some() {
            return Err(Error::generic(format!(
                "object of type '{}' already has a parent",
                child.type_name()
            )));
        }
        if Arc::ptr_eq(&self.0, &child.0) || child.is_root() {
            return Err(Error::generic(
                "an object cannot be its own child or a child of the root's child",
            ));
        }
        let mut props = sync::write(&self.0.instance_props);
        if self.0.class.properties.contains_key(name) || props.contains_key(name) {
            return Err(Error::DuplicateProperty {
                name: name.to_owned(),
                owner_type: self.type_name().to_owned(),
            });
        }
        if name.is_empty() || name.contains('/') {
            return Err(Error::generic(format!("invalid child name '{name}'")));
        }
        let prop = child::child_property(name, child);
        let pname = prop.name.clone();
        props.insert(pname.clone(), Arc::new(prop));
        *sync::lock(&child.0.place.parent) = Some(ParentRef {
            parent: Arc::downgrade(&self.0),
            name: pname,
        });
        Ok(())
    }

    /// The parent in the composition tree.
    pub fn parent(&self) -> Option<Object> {
        sync::lock(&self.0.place.parent)
            .as_ref()
            .and_then(|p| p.parent.upgrade())
            .map(Object)
    }

    /// The name of the `child<>` property the parent holds this object by.
    pub fn name(&self) -> Option<String> {
        sync::lock(&self.0.place.parent)
            .as_ref()
            .map(|p| p.name.to_string())
    }

    /// The children, in the order they were added.
    pub fn children(&self) -> Vec<(String, Object)> {
        sync::read(&self.0.instance_props)
            .values()
            .filter_map(|p| match &p.edge {
                Edge::Child(c) => Some((p.name.to_string(), c.clone())),
                _ => None,
            })
            .collect()
    }

    /// A child by property name.
    pub fn child(&self, name: &str) -> Option<Object> {
        match &self.instance_property(name)?.edge {
            Edge::Child(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// Removes this object from its parent: runs the class `unparent` hook,
    /// then the parent lets go of its reference. Nothing happens without a
    /// parent. Returns whether this call detached the object: when several
    /// threads unparent the same object at once, exactly one does.
    pub fn unparent(&self) -> bool {
        let place = &self.0.place;
        if self.parent().is_none()
            || place
                .unparenting
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return false;
        }
        // Another caller may have finished detaching between the check and
        // the claim.
        let Some(parent) = self.parent() else {
            place.unparenting.store(false, Ordering::Release);
            return false;
        };
        self.run_unparent_hook();
        let name = sync::lock(&place.parent).take().map(|p| p.name);
        if let Some(name) = name {
            // Dropped after the lock: the child's finalize hooks may run.
            let removed = sync::write(&parent.0.instance_props).shift_remove(&name);
            drop(removed);
        }
        place.unparenting.store(false, Ordering::Release);
        true
    }

    fn run_unparent_hook(&self) {
        if let Some(hook) = self
            .0
            .class
            .data::<ObjectClass>()
            .and_then(|c| c.unparent.clone())
        {
            hook(self);
        }
    }
}
