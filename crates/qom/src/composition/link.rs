//! `link<T>` properties: a strong reference to another object, held in a
//! type's state and set by path.

use super::path::{self, Resolved};
use super::Edge;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::property::{Property, PropertyKind};
use serde_json::Value;
use std::any::Any;
use std::sync::Arc;

/// Reads where a link points from its owner's state.
pub(crate) type FollowFn = Arc<dyn Fn(&Object) -> Option<Object> + Send + Sync>;

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

/// The `link<target>` property of [`ClassBuilder::link`].
pub(crate) fn link_property<S: Any + Send>(
    name: &str,
    target: &str,
    access: impl Fn(&mut S) -> &mut Link + Send + Sync + Copy + 'static,
) -> Property {
    let pname: Arc<str> = name.into();
    let target_owned = target.to_owned();
    let mut prop = Property::new(name, format!("link<{target}>"));
    prop.schema = serde_json::json!({"type": "string"});
    prop.get = Some(Arc::new(move |obj| {
        let path = access(&mut obj.state::<S>())
            .get()
            .and_then(|t| t.canonical_path());
        Ok(Value::String(path.unwrap_or_default()))
    }));
    let set_name = pname.clone();
    prop.set = Some(Arc::new(move |obj, input| {
        let path: String = input.deserialize(&set_name)?;
        let new = if path.is_empty() {
            None
        } else {
            Some(obj.resolve_link_target(&set_name, &path, &target_owned)?)
        };
        access(&mut obj.state::<S>()).replace(new);
        Ok(())
    }));
    let check_name = pname;
    prop.check = Some(Arc::new(move |input| {
        input.deserialize::<String>(&check_name).map(drop)
    }));
    prop.edge = Edge::Link {
        kind: PropertyKind::Link {
            target: target.to_owned(),
        },
        follow: Arc::new(move |obj| access(&mut obj.state::<S>()).get().cloned()),
    };
    prop
}

impl Object {
    /// The object a link property of this object is to point to: `target_path`
    /// resolved in this object's tree, refused unless it is a `target_type`.
    fn resolve_link_target(
        &self,
        prop: &str,
        target_path: &str,
        target_type: &str,
    ) -> Result<Object> {
        let root = self
            .root()
            .ok_or_else(|| Error::DeviceNotFound(target_path.to_owned()))?;
        match path::resolve(&root, target_path, Some(target_type)) {
            Resolved::One(o) => Ok(o),
            Resolved::Ambiguous => Err(Error::PathNotUnique(target_path.to_owned())),
            Resolved::None => match path::resolve(&root, target_path, None) {
                Resolved::None => Err(Error::DeviceNotFound(target_path.to_owned())),
                _ => Err(Error::InvalidParameterType {
                    name: prop.to_owned(),
                    expected: target_type.to_owned(),
                }),
            },
        }
    }
}
