//! Paths in the composition tree: `child<>` properties, absolute and
//! partial path resolution.

use crate::object::Object;
use crate::property::{Property, PropertyKind};
use serde_json::Value;
use std::any::Any;
use std::sync::Arc;

/// The child a `child<>` property holds (its only strong reference from
/// the tree).
struct ChildSlot(Object);

/// Builds the `child<TYPE>` property that holds `child`.
pub(crate) fn child_property(name: &str, child: &Object) -> Property {
    let mut p = Property::new(name, format!("child<{}>", child.type_name()));
    p.kind = PropertyKind::Child;
    let holder: Arc<dyn Any + Send + Sync> = Arc::new(ChildSlot(child.clone()));
    let weak = child.downgrade();
    p.get = Some(Arc::new(move |_| {
        let path = weak
            .upgrade()
            .and_then(|c| c.canonical_path())
            .unwrap_or_default();
        Ok(Value::String(path))
    }));
    let held = holder.clone();
    p.resolve = Some(Arc::new(move |_| {
        held.downcast_ref::<ChildSlot>().map(|c| c.0.clone())
    }));
    p.schema = serde_json::json!({"type": "string", "readOnly": true});
    p.child = Some(holder);
    p
}

/// The child object of a `child<>` property.
pub(crate) fn child_of(p: &Property) -> Option<Object> {
    p.child
        .as_ref()
        .and_then(|h| h.downcast_ref::<ChildSlot>())
        .map(|c| c.0.clone())
}

/// The outcome of a path lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Exactly one object matches.
    One(Object),
    /// A partial path matched more than one object.
    Ambiguous,
    /// Nothing matches.
    None,
}

impl Resolved {
    /// The object, when exactly one matched.
    pub fn object(self) -> Option<Object> {
        match self {
            Resolved::One(o) => Some(o),
            _ => None,
        }
    }
}

/// Follows `parts` from `start` through child and link properties.
fn walk(start: &Object, parts: &[&str]) -> Option<Object> {
    let mut cur = start.clone();
    for part in parts {
        cur = cur.resolve_component(part)?;
    }
    Some(cur)
}

fn type_ok(o: &Object, ty: Option<&str>) -> bool {
    ty.is_none_or(|t| o.is_a(t))
}

/// QEMU's `object_resolve_path_type`: an absolute path (leading `/`) is
/// walked from `root`; a partial path is tried below every object of the
/// composition tree and must match exactly one (of type `ty`, if given).
pub fn resolve(root: &Object, path: &str, ty: Option<&str>) -> Resolved {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if path.starts_with('/') {
        return match walk(root, &parts) {
            Some(o) if type_ok(&o, ty) => Resolved::One(o),
            _ => Resolved::None,
        };
    }
    let mut found: Option<Object> = None;
    let mut ambiguous = false;
    partial(root, &parts, ty, &mut found, &mut ambiguous);
    match (ambiguous, found) {
        (true, _) => Resolved::Ambiguous,
        (false, Some(o)) => Resolved::One(o),
        (false, None) => Resolved::None,
    }
}

fn partial(
    node: &Object,
    parts: &[&str],
    ty: Option<&str>,
    found: &mut Option<Object>,
    ambiguous: &mut bool,
) {
    if *ambiguous {
        return;
    }
    if let Some(o) = walk(node, parts) {
        if type_ok(&o, ty) {
            match found {
                Some(prev) if *prev != o => {
                    *ambiguous = true;
                    return;
                }
                _ => *found = Some(o),
            }
        }
    }
    for (_, child) in node.children() {
        partial(&child, parts, ty, found, ambiguous);
        if *ambiguous {
            return;
        }
    }
}

/// Resolves `path` relative to `parent` without searching (a leading `/`
/// makes it absolute from the tree's root).
pub fn resolve_at(parent: &Object, path: &str) -> Option<Object> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if path.starts_with('/') {
        return walk(&parent.root()?, &parts);
    }
    walk(parent, &parts)
}
