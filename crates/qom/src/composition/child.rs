//! `child<T>` properties declared by a type: children every instance gets
//! at creation, as QEMU's `object_initialize_child` in an `instance_init`.

use super::Edge;
use crate::class::{Class, ClassBuilder};
use crate::error::{Error, Result};
use crate::object::{Object, StateGuard};
use crate::property::Property;
use crate::typed::StaticType;
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The field of a type's state that holds a child of type `T` created
/// with every instance (see [`ClassBuilder::child`](crate::ClassBuilder::child)
/// and the derive's `#[property(child)]`).
///
/// The tree holds the child through the owner's `child<T>` property; this
/// handle lets the owner's hooks reach the child without a path lookup.
/// It is empty only in a state value that no object owns yet.
pub struct Child<T> {
    object: Option<Object>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Default for Child<T> {
    fn default() -> Self {
        Child {
            object: None,
            _t: PhantomData,
        }
    }
}

impl<T> Clone for Child<T> {
    fn clone(&self) -> Self {
        Child {
            object: self.object.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Child<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Child").field(&self.object).finish()
    }
}

impl<T: StaticType> Child<T> {
    /// The child object; `None` only before its owner was created.
    pub fn get(&self) -> Option<&Object> {
        self.object.as_ref()
    }

    /// Exclusive access to the child's state `T`.
    ///
    /// The child's state has its own lock, so an owner hook may hold its
    /// own state while it calls this; the child's property accessors must
    /// not be reached through the owner meanwhile.
    pub fn state(&self) -> Option<StateGuard<'_, T>>
    where
        T: std::any::Any,
    {
        self.object.as_ref().and_then(|o| o.try_state::<T>())
    }

    pub(crate) fn set(&mut self, object: Object) {
        self.object = Some(object);
    }
}

/// Stores a new child into its owner's state field.
pub(crate) type StoreFn = Arc<dyn Fn(&Object, &Object) + Send + Sync>;

/// A child declared by one level of a class: created, stored and attached
/// for every instance before that level's `instance_init` runs.
#[derive(Clone)]
pub(crate) struct ChildDecl {
    pub(crate) name: Arc<str>,
    pub(crate) class: Arc<Class>,
    pub(crate) store: StoreFn,
}

/// The field type the derive accepts for `#[property(child)]`, and the
/// type name it makes a dependency of the owner's registration.
pub trait ChildField {
    /// The child's QOM type name.
    const TYPE_NAME: &'static str;
}

impl<T: StaticType> ChildField for Child<T> {
    const TYPE_NAME: &'static str = T::TYPE_NAME;
}

/// Creates the children `decls` declares and attaches them to `owner`.
pub(crate) fn create_children(
    owner: &Object,
    decls: &[ChildDecl],
    root: Option<&Object>,
) -> Result<()> {
    for decl in decls {
        let child = Object::instantiate(decl.class.clone(), root)?;
        (decl.store)(owner, &child);
        owner.add_child(&decl.name, &child)?;
    }
    Ok(())
}

/// The `child<TYPE>` property by which a parent holds `child`. Its value
/// is the child's canonical path, looked up through the parent so that
/// the property's edge stays the one record of the child.
pub(super) fn child_property(name: &str, child: &Object) -> Property {
    let mut p = Property::new(name, format!("child<{}>", child.type_name()));
    let pname = p.name.clone();
    p.get = Some(Arc::new(move |parent| {
        let path = parent
            .child(&pname)
            .and_then(|c| c.canonical_path())
            .unwrap_or_default();
        Ok(Value::String(path))
    }));
    p.schema = serde_json::json!({"type": "string", "readOnly": true});
    p.edge = Edge::Child(child.clone());
    p
}

/// The part of a [`ClassBuilder`] that declares children: present for a
/// `class_init`, absent for instance-property declarations.
pub(crate) struct ChildDecls<'a> {
    /// This level's declarations.
    pub(crate) decls: &'a mut Vec<ChildDecl>,
    /// Names of the children declared by ancestors.
    pub(crate) inherited: Vec<Arc<str>>,
    /// Builds (under the registry's build lock, which the caller holds)
    /// the class of a child type.
    pub(crate) resolve: &'a mut dyn FnMut(&str) -> Result<Arc<Class>>,
}

/// Declares, for [`ClassBuilder::child`], a child of type `type_name`
/// that `store` puts into its owner's state; a bad declaration is recorded
/// in the builder's error.
pub(crate) fn declare_child(
    builder: &mut ClassBuilder<'_>,
    name: &str,
    type_name: &str,
    store: StoreFn,
) {
    if builder.error.is_some() {
        return;
    }
    let owner = builder.name;
    let Some(children) = builder.children.as_mut() else {
        builder.error = Some(Error::InvalidRegistration(format!(
            "child '{name}' of '{owner}': children are declared in class_init"
        )));
        return;
    };
    let taken = builder.properties.contains_key(name)
        || children.inherited.iter().any(|n| **n == *name)
        || children.decls.iter().any(|d| *d.name == *name);
    if name.is_empty() || name.contains('/') {
        builder.error = Some(Error::InvalidRegistration(format!(
            "property name '{name}' of type '{owner}' is invalid"
        )));
        return;
    }
    if taken {
        builder.error = Some(Error::DuplicateProperty {
            name: name.to_owned(),
            owner_type: owner.to_owned(),
        });
        return;
    }
    let class = match (children.resolve)(type_name) {
        Ok(c) => c,
        Err(e) => {
            builder.error = Some(Error::InvalidRegistration(format!(
                "child '{name}' of '{owner}' cannot be created: {e}"
            )));
            return;
        }
    };
    if class.is_abstract() {
        builder.error = Some(Error::InvalidRegistration(format!(
            "child '{name}' of '{owner}' has abstract type '{}'",
            type_name
        )));
        return;
    }
    children.decls.push(ChildDecl {
        name: name.into(),
        class,
        store,
    });
}
