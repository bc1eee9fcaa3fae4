//! The storage behind a `link<T>` property.

use crate::object::Object;

/// A strong reference to another object, held in a type's state and
/// exposed as a `link<T>` property (see
/// [`ClassBuilder::link`](crate::ClassBuilder::link)). The target stays
/// alive while linked.
#[derive(Clone, Default, Debug)]
pub struct Link {
    target: Option<Object>,
}

impl Link {
    /// The linked object, if any.
    pub fn get(&self) -> Option<&Object> {
        self.target.as_ref()
    }

    /// Points the link elsewhere (or nowhere), returning the old target.
    pub fn replace(&mut self, target: Option<Object>) -> Option<Object> {
        std::mem::replace(&mut self.target, target)
    }
}
