//! Paths in the composition tree: canonical paths, and QEMU's absolute
//! and partial path resolution through `child<>` and `link<>` properties.

use crate::object::Object;
use crate::sync;

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

impl Object {
    /// The canonical path (`/objects/mem0`), or `None` when the object is
    /// not attached to a tree's root.
    pub fn canonical_path(&self) -> Option<String> {
        if self.is_root() {
            return Some("/".to_owned());
        }
        let mut parts = Vec::new();
        let mut cur = self.clone();
        loop {
            let (parent, name) = {
                let guard = sync::lock(&cur.0.place.parent);
                match guard.as_ref() {
                    None => return None,
                    Some(p) => (p.parent.upgrade().map(Object)?, p.name.clone()),
                }
            };
            parts.push(name);
            if parent.is_root() {
                break;
            }
            cur = parent;
        }
        parts.reverse();
        let mut s = String::new();
        for p in parts {
            s.push('/');
            s.push_str(&p);
        }
        Some(s)
    }

    /// The root of the tree this object belongs to or was created for.
    pub fn root(&self) -> Option<Object> {
        if self.is_root() {
            return Some(self.clone());
        }
        self.0
            .place
            .root
            .as_ref()
            .and_then(|w| w.upgrade())
            .map(Object)
    }

    /// Follows one path component: a `child<>` or `link<>` property.
    pub fn resolve_component(&self, name: &str) -> Option<Object> {
        self.property(name).and_then(|p| p.edge.follow(self))
    }
}
