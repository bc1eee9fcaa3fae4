//! The object tree: the root container, `/objects`, and user-creatable
//! objects added and deleted by id.

use crate::builtins::{TYPE_CONTAINER, TYPE_USER_CREATABLE};
use crate::composition::path::{self, Resolved};
use crate::error::{Error, Result};
use crate::id::is_valid_id;
use crate::object::Object;
use crate::registry::TypeRegistry;
use crate::value::{ObjectSpec, Props};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

/// The containers QEMU 10.0 has below the root without a machine
/// (`/audiodevs` appears only in later QEMU versions).
pub const TOP_CONTAINERS: &[&str] = &["chardevs", "objects", "backend"];

/// A tree of objects with a root container, as one QEMU process has.
///
/// Dropping the tree removes every object below `/objects` (newest first),
/// so their unparent hooks run, as QEMU's exit cleanup does.
pub struct ObjectTree {
    types: Arc<TypeRegistry>,
    root: Object,
    objects: Object,
    placed_hook: OnceLock<PlacedHook>,
}

type PlacedHook = Box<dyn Fn(&Object) + Send + Sync>;

impl std::fmt::Debug for ObjectTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectTree")
            .field("objects", &self.objects.children())
            .finish_non_exhaustive()
    }
}

impl ObjectTree {
    /// A tree over `types` with the root container and its top containers.
    pub fn new(types: impl Into<Arc<TypeRegistry>>) -> Result<Self> {
        let types = types.into();
        let root = Object::instantiate(types.class(TYPE_CONTAINER)?, None)?;
        root.mark_root();
        let mut objects = None;
        for name in TOP_CONTAINERS {
            let c = Object::instantiate(types.class(TYPE_CONTAINER)?, Some(&root))?;
            root.add_child(name, &c)?;
            if *name == "objects" {
                objects = Some(c);
            }
        }
        let objects = objects.expect("objects is in TOP_CONTAINERS");
        Ok(ObjectTree {
            types,
            root,
            objects,
            placed_hook: OnceLock::new(),
        })
    }

    /// The type registry.
    pub fn types(&self) -> &Arc<TypeRegistry> {
        &self.types
    }

    /// The root container (`/`).
    pub fn root(&self) -> &Object {
        &self.root
    }

    /// The `/objects` container, home of user-created objects.
    pub fn objects(&self) -> &Object {
        &self.objects
    }

    /// Creates an object of a concrete type, not yet placed in the tree;
    /// its link properties resolve paths in this tree.
    pub fn new_object(&self, type_name: &str) -> Result<Object> {
        let class = self.types.class(type_name)?;
        Object::instantiate(class, Some(&self.root))
    }

    /// Creates a user-creatable object as `/objects/ID`, with QEMU's checks
    /// in QEMU's order: id, type, interface, abstract; then (as QAPI does
    /// before any setter runs) missing, ill-typed and unexpected
    /// properties; then the properties are set **in the order given**
    /// (QEMU uses its hash order; for valid input the result is the same),
    /// the object is placed (duplicate ids fail here) and completed. On any
    /// failure nothing remains: no tree entry, and an object whose
    /// `complete` failed is unparented so its hooks can undo side effects.
    ///
    /// From the moment the object appears under `/objects` until its
    /// `complete` has finished, a concurrent [`ObjectTree::object_del`] of
    /// the id fails with `object 'ID' is in use, can not be deleted`.
    pub fn object_add(&self, type_name: &str, id: &str, props: &Props) -> Result<Object> {
        if !is_valid_id(id) {
            return Err(Error::InvalidId);
        }
        let class = self
            .types
            .find_class(type_name)?
            .ok_or_else(|| Error::InvalidObjectType(type_name.to_owned()))?;
        if !class.is_a(TYPE_USER_CREATABLE) {
            return Err(Error::NotUserCreatable(type_name.to_owned()));
        }
        if class.is_abstract() {
            return Err(Error::AbstractType(type_name.to_owned()));
        }
        let obj = Object::instantiate(class, Some(&self.root))?;
        validate_props(&obj, props)?;
        for (key, input) in props.iter() {
            obj.set(key, input)?;
        }
        // The object counts as being created (object-del finds it in use)
        // before anyone can see it under /objects, so there is no moment
        // where another client could delete it between placing and
        // completing. A failed placement (duplicate id) drops `completion`,
        // which returns the stage to new.
        let completion = obj.begin_complete()?;
        self.objects.add_child(id, &obj)?;
        // A hook that panics must not leave a half-made object in the tree
        // for the other clients to find: unwinding unparents it.
        let placed = UnparentOnUnwind(&obj);
        if let Some(hook) = self.placed_hook.get() {
            hook(&obj);
        }
        if let Err(e) = obj.run_complete_hook() {
            // Still completing, so no object-del can race this unparent:
            // the unparent hook runs exactly once, here.
            std::mem::forget(placed);
            obj.unparent();
            return Err(e);
        }
        std::mem::forget(placed);
        completion.finish();
        Ok(obj)
    }

    /// QMP `object-add`: the arguments hold `qom-type`, `id` and the
    /// properties. Type errors are worded as QAPI words them
    /// (`Parameter 'qom-type' does not accept value 'X'`).
    pub fn object_add_args(&self, args: &Map<String, Value>) -> Result<Object> {
        self.object_add_spec(&ObjectSpec::from_json_map(args.clone())?)
    }

    /// Creates an object from an `-object` string: keyval
    /// (`memory-backend-file,id=m,size=1G,...`) or JSON (`{"qom-type": ...}`).
    pub fn object_add_str(&self, spec: &str) -> Result<Object> {
        let spec = ObjectSpec::parse(spec)?;
        self.object_add_spec(&spec)
    }

    /// Creates an object from a parsed `-object` spec.
    ///
    /// The checks QAPI makes come first, in its order: `qom-type` missing,
    /// `qom-type` not a creatable type (`Parameter 'qom-type' does not
    /// accept value 'X'`), `id` missing; then [`ObjectTree::object_add`].
    /// A spec asking for help ([`ObjectSpec::help`]) is the caller's to
    /// handle first; this does not look at the flag.
    pub fn object_add_spec(&self, spec: &ObjectSpec) -> Result<Object> {
        let (qom_type, id) = self.spec_type_and_id(spec)?;
        self.object_add(qom_type, id, &spec.props)
    }

    /// Checks a parsed `-object` spec as QEMU does while it parses the
    /// command line, without creating anything: the checks of
    /// [`ObjectTree::object_add_spec`] up to and including the property
    /// check (missing, ill-typed and unknown properties). Errors from here
    /// are the ones QEMU prefixes with the `-object` argument; errors that
    /// only [`ObjectTree::object_add_spec`] raises (setters, `complete`,
    /// duplicate ids in the tree) come without it.
    pub fn check_spec(&self, spec: &ObjectSpec) -> Result<()> {
        let (qom_type, id) = self.spec_type_and_id(spec)?;
        if !is_valid_id(id) {
            return Err(Error::InvalidId);
        }
        let class = self.types.class(qom_type)?;
        let obj = Object::instantiate(class, Some(&self.root))?;
        validate_props(&obj, &spec.props)
    }

    /// The spec's type and id, after QAPI's checks on them.
    fn spec_type_and_id<'s>(&self, spec: &'s ObjectSpec) -> Result<(&'s str, &'s str)> {
        let qom_type = spec
            .qom_type
            .as_deref()
            .ok_or_else(|| Error::MissingParameter("qom-type".into()))?;
        let creatable = self
            .types
            .find_class(qom_type)?
            .is_some_and(|c| !c.is_abstract() && c.is_a(TYPE_USER_CREATABLE));
        if !creatable {
            return Err(Error::ValueNotAccepted {
                name: "qom-type".into(),
                value: qom_type.to_owned(),
            });
        }
        let id = spec
            .id
            .as_deref()
            .ok_or_else(|| Error::MissingParameter("id".into()))?;
        Ok((qom_type, id))
    }

    /// Deletes `/objects/ID` (QMP `object-del`).
    ///
    /// Once the type's `can_be_deleted` hook has said yes the object is
    /// unparented without any further check that could fail, so a hook may
    /// treat its yes as the start of the deletion (see
    /// [`Object::can_be_deleted`]).
    pub fn object_del(&self, id: &str) -> Result<()> {
        let obj = self
            .objects
            .child(id)
            .ok_or_else(|| Error::ObjectNotFound(id.to_owned()))?;
        // object_add makes an object `completing` before it is visible here
        // and `complete` after its hook succeeded, so an object found here
        // is either still being created (in use) or complete for good: the
        // answer cannot change between this check and the unparent.
        if obj.is_completing() || !obj.can_be_deleted() {
            return Err(Error::ObjectInUse(id.to_owned()));
        }
        // A `can_be_deleted` hook may make its yes final (memory-backend
        // refuses new users from then on), so nothing below may fail and
        // leave the object alive: the unparent only reports that a
        // concurrent object-del of the same id won, and the object is gone
        // either way.
        if obj.unparent() {
            Ok(())
        } else {
            Err(Error::ObjectNotFound(id.to_owned()))
        }
    }

    /// A test seam: `hook` runs inside every later [`ObjectTree::object_add`]
    /// right after the object became visible under `/objects` and before
    /// its `complete` hook, so that a test can stop a creation exactly
    /// there. Only the first call has an effect.
    #[doc(hidden)]
    pub fn set_placed_hook(&self, hook: impl Fn(&Object) + Send + Sync + 'static) {
        let _ = self.placed_hook.set(Box::new(hook));
    }

    /// `/objects/ID`, if it exists.
    pub fn object(&self, id: &str) -> Option<Object> {
        self.objects.child(id)
    }

    /// Resolves a path (absolute, or partial with QEMU's search), keeping
    /// only objects of type `ty` when given.
    pub fn resolve(&self, path: &str, ty: Option<&str>) -> Resolved {
        path::resolve(&self.root, path, ty)
    }

    /// Resolution as `qom-list` reports it: ambiguity is its own error.
    pub fn resolve_strict(&self, path: &str) -> Result<Object> {
        match self.resolve(path, None) {
            Resolved::One(o) => Ok(o),
            Resolved::Ambiguous => Err(Error::PathAmbiguous(path.to_owned())),
            Resolved::None => Err(Error::DeviceNotFound(path.to_owned())),
        }
    }

    /// Resolution as `qom-get`/`qom-set` report it: ambiguous is not found.
    pub fn resolve_lenient(&self, path: &str) -> Result<Object> {
        self.resolve(path, None)
            .object()
            .ok_or_else(|| Error::DeviceNotFound(path.to_owned()))
    }
}

/// Unparents an object placed by `object_add` if its creation unwinds
/// (a panicking hook); forgotten on every normal path.
struct UnparentOnUnwind<'a>(&'a Object);

impl Drop for UnparentOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.unparent();
    }
}

/// The QAPI-style check before any setter runs: required properties are
/// present and well-typed (class order), then no key is unexpected.
fn validate_props(obj: &Object, props: &Props) -> Result<()> {
    let mut known: HashSet<&str> = HashSet::new();
    for prop in obj.class().properties() {
        if prop.set.is_none() {
            continue;
        }
        known.insert(prop.name());
        match props.get(prop.name()) {
            None if prop.required => return Err(Error::MissingParameter(prop.name().to_owned())),
            None => {}
            Some(input) => {
                if let Some(check) = &prop.check {
                    check(input)?;
                }
            }
        }
    }
    for (key, input) in props.iter() {
        if known.contains(key) {
            continue;
        }
        match obj.property(key) {
            Some(p) if p.is_writable() => obj.check(key, input)?,
            _ => return Err(props.unexpected_key_error(key)),
        }
    }
    Ok(())
}

impl Drop for ObjectTree {
    fn drop(&mut self) {
        // What an embedder added below the root (a machine and its
        // devices) goes first: devices use the objects below /objects.
        let mut added: Vec<_> = self
            .root
            .children()
            .into_iter()
            .filter(|(name, _)| !TOP_CONTAINERS.contains(&name.as_str()))
            .collect();
        added.reverse();
        for (_, child) in added {
            child.unparent();
        }
        let mut children = self.objects.children();
        children.reverse();
        for (_, child) in children {
            child.unparent();
        }
    }
}
