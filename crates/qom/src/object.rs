//! Objects: cheap, clonable, thread-safe handles to instances.

use crate::builtins::UserCreatableClass;
use crate::class::{Class, ClassBuilder, ObjectClass};
use crate::error::{Error, Result};
use crate::path;
use crate::property::{Property, PropertyKind, PropertyType, TypedGet, TypedSet};
use crate::sync;
use crate::value::{Input, KeyvalValue};
use indexmap::IndexMap;
use serde_json::Value;
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};

/// Where an object is in its construction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Created, properties being set.
    New,
    /// `complete` has begun: locked properties refuse changes.
    Completing,
    /// `complete` succeeded.
    Complete,
}

/// The part of an object's lifecycle that locked-property writes and
/// `complete` must agree on, so both live under one mutex.
struct Lifecycle {
    stage: Stage,
    /// Locked-property setters admitted while the stage was `New` that
    /// have not returned yet; `complete` waits for this to reach zero
    /// before it runs the hook, so no such setter overlaps it.
    locked_writes: usize,
}

thread_local! {
    /// The objects (by address) whose locked-property setters this thread
    /// is inside of, innermost last. A `complete` of one of them from this
    /// thread would wait for its own caller to return.
    static IN_LOCKED_SETTER: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// One level's typed state inside an object.
struct StateSlot {
    type_id: TypeId,
    level: usize,
    cell: Mutex<Box<dyn Any + Send>>,
}

struct ParentRef {
    parent: Weak<ObjectInner>,
    name: Arc<str>,
}

pub(crate) struct ObjectInner {
    class: Arc<Class>,
    /// Root type first; only the levels that declare state.
    states: Box<[StateSlot]>,
    instance_props: RwLock<IndexMap<Arc<str>, Arc<Property>>>,
    parent: Mutex<Option<ParentRef>>,
    /// The root of the tree this object was created for, used to resolve
    /// link paths before the object itself is placed in the tree.
    root: Option<Weak<ObjectInner>>,
    is_root: AtomicBool,
    /// Never held while user code runs (setters, hooks), so no hook can
    /// deadlock on it; see `docs/architecture.md`.
    lifecycle: Mutex<Lifecycle>,
    /// Signalled when `locked_writes` drops to zero during `Completing`.
    drained: Condvar,
    /// Set while an `unparent` is in progress, so that two racing calls
    /// (two clients deleting the same object) detach it only once.
    unparenting: AtomicBool,
}

/// A handle to an object. Cloning it takes a reference; the object is
/// finalized when the last handle (including its parent's `child<>`
/// property and strong links) goes away.
#[derive(Clone)]
pub struct Object(pub(crate) Arc<ObjectInner>);

/// A handle that does not keep the object alive.
#[derive(Clone)]
pub struct WeakObject(Weak<ObjectInner>);

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

/// Exclusive access to one level's typed state; see [`Object::state`].
pub struct StateGuard<'a, S> {
    guard: MutexGuard<'a, Box<dyn Any + Send>>,
    _s: PhantomData<S>,
}

impl<S: Any> Deref for StateGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        self.guard.downcast_ref().expect("slot chosen by TypeId")
    }
}

impl<S: Any> DerefMut for StateGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        self.guard.downcast_mut().expect("slot chosen by TypeId")
    }
}

/// A locked-property write in progress: while it lives, `complete` waits.
struct LockedWrite<'a> {
    obj: &'a Object,
}

impl Drop for LockedWrite<'_> {
    fn drop(&mut self) {
        let me = self.obj.addr();
        IN_LOCKED_SETTER.with(|v| {
            let mut v = v.borrow_mut();
            if let Some(i) = v.iter().rposition(|&a| a == me) {
                v.remove(i);
            }
        });
        let mut lc = self.obj.lifecycle();
        lc.locked_writes -= 1;
        if lc.locked_writes == 0 && lc.stage == Stage::Completing {
            self.obj.0.drained.notify_all();
        }
    }
}

/// An object in the `Completing` stage (see [`Object::begin_complete`]).
/// [`Completion::finish`] makes it complete; dropping it otherwise (the
/// hook failed, the object could not be placed, a hook panicked) returns
/// it to `New`, so its locked properties open again.
pub(crate) struct Completion<'a> {
    obj: &'a Object,
    done: bool,
}

impl Completion<'_> {
    /// The hook succeeded: the object is complete for good.
    pub(crate) fn finish(mut self) {
        self.obj.lifecycle().stage = Stage::Complete;
        self.done = true;
    }
}

impl Drop for Completion<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.obj.lifecycle().stage = Stage::New;
        }
    }
}

impl Object {
    pub(crate) fn instantiate(class: Arc<Class>, root: Option<&Object>) -> Result<Object> {
        if class.is_abstract {
            return Err(Error::AbstractType(class.name.to_string()));
        }
        let states = class
            .levels
            .iter()
            .enumerate()
            .filter_map(|(level, l)| {
                l.state.as_ref().map(|d| StateSlot {
                    type_id: d.type_id,
                    level,
                    cell: Mutex::new((d.factory)()),
                })
            })
            .collect();
        let obj = Object(Arc::new(ObjectInner {
            class: class.clone(),
            states,
            instance_props: RwLock::new(IndexMap::new()),
            parent: Mutex::new(None),
            root: root.map(|r| Arc::downgrade(&r.0)),
            is_root: AtomicBool::new(false),
            unparenting: AtomicBool::new(false),
            lifecycle: Mutex::new(Lifecycle {
                stage: Stage::New,
                locked_writes: 0,
            }),
            drained: Condvar::new(),
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
            crate::child::create_children(&obj, &level.children, root)?;
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

    pub(crate) fn mark_root(&self) {
        self.0.is_root.store(true, Ordering::Release);
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

    /// Exclusive access to the typed state of the level that declared `S`.
    ///
    /// # Panics
    /// When no level of this object's type declared state `S`: a
    /// programming error in a type's own code, never a user input. Use
    /// [`try_state`](Self::try_state) where the type is not known.
    pub fn state<S: Any>(&self) -> StateGuard<'_, S> {
        self.try_state::<S>().unwrap_or_else(|| {
            panic!(
                "type '{}' has no state {}",
                self.type_name(),
                std::any::type_name::<S>()
            )
        })
    }

    /// Exclusive access to the typed state `S`, if a level declared it.
    ///
    /// Each level's state has its own lock: a setter may hold its own level
    /// and read an ancestor's, but must not ask for the level it holds.
    pub fn try_state<S: Any>(&self) -> Option<StateGuard<'_, S>> {
        let id = TypeId::of::<S>();
        let slot = self.0.states.iter().find(|s| s.type_id == id)?;
        let guard = sync::lock(&slot.cell);
        Some(StateGuard {
            guard,
            _s: PhantomData,
        })
    }

    /// The type names of the levels that hold state, root first (for
    /// diagnostics).
    pub fn state_levels(&self) -> Vec<&str> {
        self.0
            .states
            .iter()
            .map(|s| &*self.0.class.levels[s.level].type_name)
            .collect()
    }

    // ---- properties ------------------------------------------------------

    fn with_property<R>(&self, name: &str, f: impl FnOnce(&Property) -> Result<R>) -> Result<R> {
        if let Some(p) = self.0.class.properties.get(name) {
            return f(p);
        }
        let p = self
            .instance_property(name)
            .ok_or_else(|| Error::PropertyNotFound {
                type_name: self.type_name().to_owned(),
                name: name.to_owned(),
            })?;
        f(&p)
    }

    fn instance_property(&self, name: &str) -> Option<Arc<Property>> {
        sync::read(&self.0.instance_props).get(name).cloned()
    }

    /// A property by name: the class's first, then the instance's.
    pub fn property(&self, name: &str) -> Option<Arc<Property>> {
        self.0
            .class
            .properties
            .get(name)
            .cloned()
            .or_else(|| self.instance_property(name))
    }

    /// Every property: class properties (ancestors first, each in
    /// declaration order), then instance properties in the order added.
    pub fn properties(&self) -> Vec<Arc<Property>> {
        let mut v: Vec<Arc<Property>> = self.0.class.properties.values().cloned().collect();
        v.extend(sync::read(&self.0.instance_props).values().cloned());
        v
    }

    /// Reads a property as JSON (`qom-get`).
    pub fn get(&self, name: &str) -> Result<Value> {
        self.with_property(name, |p| match &p.get {
            Some(get) => get(self),
            None => Err(Error::NotReadable {
                type_name: self.type_name().to_owned(),
                name: name.to_owned(),
            }),
        })
    }

    /// Writes a property from either input source, applying the lock policy.
    pub fn set(&self, name: &str, input: Input<'_>) -> Result<()> {
        self.with_property(name, |p| {
            let Some(set) = &p.set else {
                return Err(Error::NotWritable {
                    type_name: self.type_name().to_owned(),
                    name: name.to_owned(),
                });
            };
            let _admitted = match self.admit_write(p, name) {
                Ok(admitted) => admitted,
                Err(locked) => {
                    // QEMU reports a bad value before the lock, except for
                    // properties that check the lock first.
                    if !p.lock_first {
                        if let Some(check) = &p.check {
                            check(input)?;
                        }
                    }
                    return Err(locked);
                }
            };
            set(self, input)
        })
    }

    /// Reads a property as its Rust type, without going through JSON.
    /// Fails with `Invalid parameter type` when the property was not
    /// declared with type `V` (or has no typed getter).
    pub fn get_typed<V: PropertyType>(&self, name: &str) -> Result<V> {
        self.with_property(name, |p| {
            let Some(get) = &p.typed_get else {
                return match &p.get {
                    None => Err(Error::NotReadable {
                        type_name: self.type_name().to_owned(),
                        name: name.to_owned(),
                    }),
                    Some(get) => Input::Json(&get(self)?).deserialize(name),
                };
            };
            match get.downcast_ref::<TypedGet<V>>() {
                Some(get) => (get.0)(self),
                None => Err(Error::InvalidParameterType {
                    name: name.to_owned(),
                    expected: p.qom_type.clone(),
                }),
            }
        })
    }

    /// Writes a property from its Rust type, without going through JSON;
    /// the lock policy applies as for every other write.
    pub fn set_typed<V: PropertyType>(&self, name: &str, value: V) -> Result<()> {
        self.with_property(name, |p| {
            let Some(set) = &p.typed_set else {
                return match &p.set {
                    None => Err(Error::NotWritable {
                        type_name: self.type_name().to_owned(),
                        name: name.to_owned(),
                    }),
                    Some(_) => {
                        let v = serde_json::to_value(value)
                            .map_err(|e| Error::generic(e.to_string()))?;
                        self.set(name, Input::Json(&v))
                    }
                };
            };
            let _admitted = self.admit_write(p, name)?;
            match set.downcast_ref::<TypedSet<V>>() {
                Some(set) => (set.0)(self, value),
                None => Err(Error::InvalidParameterType {
                    name: name.to_owned(),
                    expected: p.qom_type.clone(),
                }),
            }
        })
    }

    /// Applies the lock policy to a write of `p`. Unlocked properties pass
    /// without touching the lifecycle mutex. A locked property is admitted
    /// only while the stage is `New`, and stays registered (so `complete`
    /// waits for it) until the returned guard drops after the setter.
    fn admit_write(&self, p: &Property, name: &str) -> Result<Option<LockedWrite<'_>>> {
        let Some(style) = p.lock else {
            return Ok(None);
        };
        {
            let mut lc = self.lifecycle();
            if lc.stage != Stage::New {
                return Err(Error::Locked {
                    name: name.to_owned(),
                    type_name: self.type_name().to_owned(),
                    style,
                });
            }
            lc.locked_writes += 1;
        }
        IN_LOCKED_SETTER.with(|v| v.borrow_mut().push(self.addr()));
        Ok(Some(LockedWrite { obj: self }))
    }

    fn lifecycle(&self) -> MutexGuard<'_, Lifecycle> {
        sync::lock(&self.0.lifecycle)
    }

    fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Writes a property from strict JSON (`qom-set`).
    pub fn set_json(&self, name: &str, value: &Value) -> Result<()> {
        self.set(name, Input::Json(value))
    }

    /// Writes a property from a string with the keyval rules (`on`, `64M`,
    /// `0x10`...), like QEMU's `object_property_parse`.
    pub fn parse(&self, name: &str, text: &str) -> Result<()> {
        self.set(name, Input::Keyval(&KeyvalValue::String(text.to_owned())))
    }

    /// Checks an input against a property's rules without storing it.
    pub fn check(&self, name: &str, input: Input<'_>) -> Result<()> {
        self.with_property(name, |p| match (&p.set, &p.check) {
            (None, _) => Err(Error::NotWritable {
                type_name: self.type_name().to_owned(),
                name: name.to_owned(),
            }),
            (Some(_), Some(check)) => check(input),
            (Some(_), None) => Ok(()),
        })
    }

    /// Reads an enum property as its index in `E::VALUES`, checking that
    /// the property really is of that enum type (QEMU's
    /// `object_property_get_enum`).
    pub fn get_enum<E: crate::EnumType>(&self, name: &str) -> Result<usize> {
        let p = self.property(name).ok_or_else(|| Error::PropertyNotFound {
            type_name: self.type_name().to_owned(),
            name: name.to_owned(),
        })?;
        if p.qom_type != E::NAME {
            return Err(Error::NotEnumType {
                name: name.to_owned(),
                type_name: self.type_name().to_owned(),
                enum_name: E::NAME.to_owned(),
            });
        }
        let v = self.get(name)?;
        let e: E = crate::value::Input::Json(&v).deserialize(name)?;
        Ok(e.index())
    }

    /// Adds instance properties, declared with the same builder a class
    /// uses. Names must be unique across the class and the instance.
    pub fn add_properties(&self, declare: impl FnOnce(&mut ClassBuilder<'_>)) -> Result<()> {
        // `declare` is user code: it runs on a snapshot, without the
        // instance-property lock (it may well read this object's
        // properties), and the result is merged under the lock.
        let mut scratch: IndexMap<Arc<str>, Arc<Property>> = self.0.class.properties.clone();
        scratch.extend(
            sync::read(&self.0.instance_props)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let before = scratch.len();
        let mut data = HashMap::new();
        let mut builder = ClassBuilder {
            name: self.type_name(),
            properties: &mut scratch,
            data: &mut data,
            error: None,
            children: None,
        };
        declare(&mut builder);
        if let Some(e) = builder.error.take() {
            return Err(e);
        }
        let added: Vec<_> = scratch.into_iter().skip(before).collect();
        let mut props = sync::write(&self.0.instance_props);
        // Another thread may have added (or a child been placed under) one
        // of these names since the snapshot.
        if let Some((name, _)) = added.iter().find(|(k, _)| props.contains_key(k)) {
            return Err(Error::DuplicateProperty {
                name: name.to_string(),
                owner_type: self.type_name().to_owned(),
            });
        }
        props.extend(added);
        Ok(())
    }

    /// Removes an instance property (class properties cannot be removed).
    /// Removing a `child<>` property unparents the child.
    pub fn del_property(&self, name: &str) -> Result<()> {
        let prop = self
            .instance_property(name)
            .ok_or_else(|| Error::PropertyNotFound {
                type_name: self.type_name().to_owned(),
                name: name.to_owned(),
            })?;
        match &prop.kind {
            PropertyKind::Child => {
                if let Some(child) = path::child_of(&prop) {
                    child.unparent();
                }
            }
            _ => {
                // Dropped after the lock: a property's closures may hold
                // user values whose drop runs user code.
                let removed = sync::write(&self.0.instance_props).shift_remove(name);
                drop(removed);
            }
        }
        Ok(())
    }

    // ---- lifecycle -------------------------------------------------------

    /// Whether `complete` has succeeded.
    pub fn is_complete(&self) -> bool {
        self.lifecycle().stage == Stage::Complete
    }

    /// Whether `complete` is running right now (another thread may see an
    /// object in the tree whose creation has not finished yet).
    pub fn is_completing(&self) -> bool {
        self.lifecycle().stage == Stage::Completing
    }

    /// The second construction stage: runs the `user-creatable` `complete`
    /// hook (if the type has one), once.
    ///
    /// From the start of this call locked properties refuse changes; the
    /// hook runs only after every locked-property setter that was admitted
    /// before that has returned, so nothing it reads changes under it. If
    /// the hook fails, locked properties are open again and `complete` may
    /// be called again.
    ///
    /// Errors: the hook's error; an object that is already complete or
    /// being completed; a call from inside a setter of a locked property of
    /// this same object on this thread (it would wait for itself).
    pub fn complete(&self) -> Result<()> {
        let completion = self.begin_complete()?;
        self.run_complete_hook()?;
        completion.finish();
        Ok(())
    }

    /// Moves the object from `New` to `Completing` and waits until the
    /// locked-property setters already admitted have returned. The stage
    /// goes back to `New` when the returned guard drops unfinished.
    pub(crate) fn begin_complete(&self) -> Result<Completion<'_>> {
        let me = self.addr();
        if IN_LOCKED_SETTER.with(|v| v.borrow().contains(&me)) {
            return Err(Error::generic(format!(
                "cannot complete an object of type '{}' from one of its own setters",
                self.type_name()
            )));
        }
        let mut lc = self.lifecycle();
        match lc.stage {
            Stage::New => {}
            Stage::Completing => {
                return Err(Error::generic(format!(
                    "object of type '{}' is being completed",
                    self.type_name()
                )))
            }
            Stage::Complete => {
                return Err(Error::generic(format!(
                    "object of type '{}' is already complete",
                    self.type_name()
                )))
            }
        }
        lc.stage = Stage::Completing;
        while lc.locked_writes > 0 {
            lc = sync::wait(&self.0.drained, lc);
        }
        Ok(Completion {
            obj: self,
            done: false,
        })
    }

    /// Runs the `user-creatable` `complete` hook, if the type has one; the
    /// caller holds a [`Completion`].
    pub(crate) fn run_complete_hook(&self) -> Result<()> {
        match self
            .0
            .class
            .data::<UserCreatableClass>()
            .and_then(|uc| uc.complete.as_ref())
        {
            Some(complete) => complete(self),
            None => Ok(()),
        }
    }

    /// Whether the `user-creatable` `can_be_deleted` hook allows deletion.
    pub fn can_be_deleted(&self) -> bool {
        self.0
            .class
            .data::<UserCreatableClass>()
            .and_then(|uc| uc.can_be_deleted.as_ref())
            .is_none_or(|f| f(self))
    }

    // ---- the tree ----------------------------------------------------------

    /// Adds `child` as `child<TYPE>` property `name` of this object.
    pub fn add_child(&self, name: &str, child: &Object) -> Result<()> {
        if child.parent().is_some() {
            return Err(Error::generic(format!(
                "object of type '{}' already has a parent",
                child.type_name()
            )));
        }
        if Arc::ptr_eq(&self.0, &child.0) || child.0.is_root.load(Ordering::Acquire) {
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
        let prop = path::child_property(name, child);
        let pname = prop.name.clone();
        props.insert(pname.clone(), Arc::new(prop));
        *sync::lock(&child.0.parent) = Some(ParentRef {
            parent: Arc::downgrade(&self.0),
            name: pname,
        });
        Ok(())
    }

    /// The parent in the composition tree.
    pub fn parent(&self) -> Option<Object> {
        sync::lock(&self.0.parent)
            .as_ref()
            .and_then(|p| p.parent.upgrade())
            .map(Object)
    }

    /// The name of the `child<>` property the parent holds this object by.
    pub fn name(&self) -> Option<String> {
        sync::lock(&self.0.parent)
            .as_ref()
            .map(|p| p.name.to_string())
    }

    /// The children, in the order they were added.
    pub fn children(&self) -> Vec<(String, Object)> {
        sync::read(&self.0.instance_props)
            .values()
            .filter_map(|p| path::child_of(p).map(|c| (p.name.to_string(), c)))
            .collect()
    }

    /// A child by property name.
    pub fn child(&self, name: &str) -> Option<Object> {
        self.instance_property(name)
            .and_then(|p| path::child_of(&p))
    }

    /// Removes this object from its parent: runs the class `unparent` hook,
    /// then the parent lets go of its reference. Nothing happens without a
    /// parent. Returns whether this call detached the object: when several
    /// threads unparent the same object at once, exactly one does.
    pub fn unparent(&self) -> bool {
        if self.parent().is_none()
            || self
                .0
                .unparenting
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return false;
        }
        // Another caller may have finished detaching between the check and
        // the claim.
        let Some(parent) = self.parent() else {
            self.0.unparenting.store(false, Ordering::Release);
            return false;
        };
        if let Some(hook) = self
            .0
            .class
            .data::<ObjectClass>()
            .and_then(|c| c.unparent.clone())
        {
            hook(self);
        }
        let name = sync::lock(&self.0.parent).take().map(|p| p.name);
        if let Some(name) = name {
            let removed = sync::write(&parent.0.instance_props).shift_remove(&name);
            drop(removed);
        }
        self.0.unparenting.store(false, Ordering::Release);
        true
    }

    /// The canonical path (`/objects/mem0`), or `None` when the object is
    /// not attached to a tree's root.
    pub fn canonical_path(&self) -> Option<String> {
        if self.0.is_root.load(Ordering::Acquire) {
            return Some("/".to_owned());
        }
        let mut parts = Vec::new();
        let mut cur = self.clone();
        loop {
            let (parent, name) = {
                let guard = sync::lock(&cur.0.parent);
                match guard.as_ref() {
                    None => return None,
                    Some(p) => (p.parent.upgrade().map(Object)?, p.name.clone()),
                }
            };
            parts.push(name);
            if parent.0.is_root.load(Ordering::Acquire) {
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
        if self.0.is_root.load(Ordering::Acquire) {
            return Some(self.clone());
        }
        self.0.root.as_ref().and_then(|w| w.upgrade()).map(Object)
    }

    /// Follows one path component: a `child<>` or `link<>` property.
    pub fn resolve_component(&self, name: &str) -> Option<Object> {
        if let Some(p) = self.0.class.properties.get(name) {
            return p.resolve.as_ref().and_then(|r| r(self));
        }
        let p = self.instance_property(name)?;
        path::child_of(&p).or_else(|| p.resolve.as_ref().and_then(|r| r(self)))
    }

    pub(crate) fn resolve_link_target(
        &self,
        prop: &str,
        target_path: &str,
        target_type: &str,
    ) -> Result<Object> {
        let root = self
            .root()
            .ok_or_else(|| Error::DeviceNotFound(target_path.to_owned()))?;
        match path::resolve(&root, target_path, Some(target_type)) {
            path::Resolved::One(o) => Ok(o),
            path::Resolved::Ambiguous => Err(Error::PathNotUnique(target_path.to_owned())),
            path::Resolved::None => match path::resolve(&root, target_path, None) {
                path::Resolved::None => Err(Error::DeviceNotFound(target_path.to_owned())),
                _ => Err(Error::InvalidParameterType {
                    name: prop.to_owned(),
                    expected: target_type.to_owned(),
                }),
            },
        }
    }
}

impl Drop for ObjectInner {
    fn drop(&mut self) {
        // Release the instance properties first: children are unparented
        // (their unparent hooks run) while this object's state still exists.
        let props = std::mem::take(sync::recover(self.instance_props.get_mut()));
        for (_, prop) in props.into_iter().rev() {
            if let Some(child) = path::child_of(&prop) {
                if let Some(hook) = child
                    .0
                    .class
                    .data::<ObjectClass>()
                    .and_then(|c| c.unparent.clone())
                {
                    hook(&child);
                }
                *sync::lock(&child.0.parent) = None;
            }
        }
        // Finalize leaf to root, each hook on its own level's state.
        for slot in self.states.iter_mut().rev() {
            if let Some(fin) = &self.class.levels[slot.level].finalize {
                let state = sync::recover(slot.cell.get_mut());
                fin(state.as_mut());
            }
        }
        // Drop the states leaf first as well (links they hold go with them).
        let states = std::mem::take(&mut self.states).into_vec();
        for slot in states.into_iter().rev() {
            drop(slot);
        }
    }
}
