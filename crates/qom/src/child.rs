//! `child<T>` properties declared by a type: children every instance gets
//! at creation, as QEMU's `object_initialize_child` in an `instance_init`.

use crate::class::Class;
use crate::object::{Object, StateGuard};
use crate::typed::StaticType;
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
) -> crate::Result<()> {
    for decl in decls {
        let child = Object::instantiate(decl.class.clone(), root)?;
        (decl.store)(owner, &child);
        owner.add_child(&decl.name, &child)?;
    }
    Ok(())
}
