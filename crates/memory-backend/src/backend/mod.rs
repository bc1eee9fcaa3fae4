//! The abstract, user-creatable `memory-backend` type: the properties every
//! QEMU memory backend has, the `alloc` hook subclasses fill, and what a
//! VMM needs afterwards (the mapping, an "in use" mark, `query-memdev`).
//!
//! `complete` runs, in QEMU's order:
//!
//! 1. the subclass's [`MemoryBackendClass::alloc`] hook, which maps the
//!    memory and returns it as a [`HostMemory`];
//! 2. what QEMU's RAM block setup does for every RAM block:
//!    `madvise(MADV_HUGEPAGE)` and `madvise(MADV_DONTFORK)` over all of
//!    it; then the backend's own: `madvise(MADV_MERGEABLE)` when `merge`
//!    is on and `madvise(MADV_DONTDUMP)` when `dump` is off (failures
//!    ignored, as QEMU ignores them);
//! 3. the NUMA policy: `policy`/`host-nodes` consistency, then `mbind`;
//! 4. preallocation when `prealloc` is on, with `prealloc-threads` threads
//!    running in the affinity of the `prealloc-context` thread-context;
//! 5. [`HostMemory::commit`]: the subclass makes its side effects final
//!    (a file backend gives a file it created its name).
//!
//! When step 2–5 fails, the memory is handed back with
//! [`HostMemory::abandon`] (a file backend then removes a file it created)
//! and the error is returned.
//!
//! | property | QOM type | default | locked after creation | notes |
//! |---|---|---|---|---|
//! | `size` | `int` | (required) | `cannot change property size of TYPE ` | 0 is refused |
//! | `share` | `bool` | false | `cannot change property value` | |
//! | `reserve` | `bool` | true | `cannot change property value` | off is incompatible with prealloc |
//! | `prealloc` | `bool` | false | no | false→true on a live backend preallocates at once |
//! | `prealloc-threads` | `int` | 1 | no | 0 is refused |
//! | `prealloc-context` | `link<thread-context>` | `""` | no | |
//! | `merge` | `bool` | true | no | a change on a live backend applies madvise at once |
//! | `dump` | `bool` | true | no | a change on a live backend applies madvise at once |
//! | `policy` | `HostMemPolicy` | `default` | no | changes after creation have no effect (as QEMU) |
//! | `host-nodes` | `int` (a list of nodes) | `[]` | no | each node < 128; setting ORs into the set |
//! | `x-use-canonical-path-for-ramblock-id` | `bool` | false | no | region name: id or canonical path |
//!
//! The module is cut in three: the type and its class here, what a VMM
//! and tools read from a backend in `access` ([`settings`], [`mapping`],
//! [`map`], [`query_memdev`]), and `complete` with the setters that act
//! on live memory in `lifecycle`.

mod access;
mod lifecycle;
#[doc(hidden)]
pub mod seams;
mod users;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use qom::{
    Error, Link, LockStyle, Object, ObjectRef, ObjectType, Result, Size, StateGuard, TypeInfo,
    TypeRegistry,
};

pub use crate::host::HostMemPolicy;
use crate::host::{HostError, Mapping, MAX_NODES};
use crate::thread_context;

pub use access::{
    is_mapped, map, map_exclusive, mapping, query_memdev, region_name, settings, BackendMemory,
    BackendSettings, MappedMemory, Memdev,
};
use lifecycle::{
    complete, get_host_nodes, get_size, set_dump, set_host_nodes, set_merge, set_prealloc,
    set_prealloc_threads, set_reserve, set_size,
};
pub use users::MapError;

/// The QOM type name.
pub const TYPE_MEMORY_BACKEND: &str = "memory-backend";

/// Guest RAM as a subclass's `alloc` hook produced it: a [`Mapping`] plus
/// whatever the subclass keeps alongside (a file backend keeps its file's
/// origin, so that a failed creation can remove a file it created).
pub trait HostMemory: Any + Send + Sync + fmt::Debug {
    /// The mapping.
    fn mapping(&self) -> &Mapping;

    /// Called instead of a plain drop when creating the backend fails after
    /// `alloc` succeeded: undo side effects such as a created file.
    fn abandon(self: Box<Self>) {}

    /// Called when everything else in creating the backend has succeeded,
    /// the last step that may fail: a file backend gives a file it created
    /// its name here, so that no half-made file is ever seen under it. On
    /// failure the memory is abandoned as after any other failed step.
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }

    /// Upcast, so that a subclass can find its own type again.
    fn as_any(&self) -> &dyn Any;
}

impl HostMemory for Mapping {
    fn mapping(&self) -> &Mapping {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The `alloc` hook: maps the memory for a backend whose properties are
/// set. Read the base properties with [`settings`].
pub type AllocFn = Arc<dyn Fn(&Object) -> Result<Box<dyn HostMemory>> + Send + Sync>;

/// The class data of `memory-backend` (QEMU's `HostMemoryBackendClass`).
/// A concrete subclass installs `alloc` in its `class_init`:
/// `class.data_mut::<MemoryBackendClass>().alloc = Some(...)`.
#[derive(Clone, Default)]
pub struct MemoryBackendClass {
    /// Maps the memory; called first by `complete`.
    pub alloc: Option<AllocFn>,
    /// The class of the `memory-region` child added at creation.
    region: Option<Arc<qom::Class>>,
}

impl fmt::Debug for MemoryBackendClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackendClass")
            .field("alloc", &self.alloc.is_some())
            .finish()
    }
}

/// The virtual method of a concrete memory backend, with typed access to
/// the subclass's own state. Read the base properties with [`settings`].
pub trait MemoryBackendImpl: qom::ObjectType {
    /// Maps the memory for a backend whose properties are set; the first
    /// step of `complete`.
    fn alloc(obj: &mut qom::ObjectRef<'_, Self>) -> Result<Box<dyn HostMemory>>;
}

impl<T: MemoryBackendImpl> qom::SubclassInit<T> for MemoryBackend {
    fn subclass_init(class: &mut qom::ClassBuilder<'_>) -> Result<()> {
        class.data_mut::<MemoryBackendClass>().alloc =
            Some(Arc::new(|obj| T::alloc(&mut qom::ObjectRef::assume(obj))));
        Ok(())
    }
}

/// The abstract `memory-backend` type and the state of its level (the
/// fields are private: read them with [`settings`]). Subclasses declared
/// with `#[derive(qom::Object)]` name it as their parent,
/// `#[qom(name = "...", parent = MemoryBackend)]`, and the compiler then
/// requires [`MemoryBackendImpl`], whose `alloc` fills
/// [`MemoryBackendClass::alloc`].
///
/// ```
/// use memory_backend::{settings, HostMemory, MemoryBackend, MemoryBackendImpl};
/// use memory_backend::host::{MapRequest, Mapping};
/// use qom::{ObjectRef, ObjectTree, TypeRegistry};
///
/// #[derive(Default, qom::Object)]
/// #[qom(name = "memory-backend-doc", parent = MemoryBackend)]
/// struct DocBackend {}
/// impl qom::ObjectImpl for DocBackend {}
/// impl MemoryBackendImpl for DocBackend {
///     fn alloc(obj: &mut ObjectRef<'_, Self>) -> qom::Result<Box<dyn HostMemory>> {
///         let s = settings(obj.object()).expect("a memory backend");
///         let fd = rustix::fs::memfd_create("doc", rustix::fs::MemfdFlags::CLOEXEC)
///             .map_err(|e| qom::Error::generic(e.to_string()))?;
///         rustix::fs::ftruncate(&fd, s.size).map_err(|e| qom::Error::generic(e.to_string()))?;
///         let req = MapRequest::new(fd, s.size).shared(s.share);
///         Ok(Box::new(Mapping::new(req).map_err(memory_backend::host_error)?))
///     }
/// }
///
/// let types = TypeRegistry::with_builtins();
/// memory_backend::register(&types)?;
/// types.register_type::<DocBackend>()?;
/// let tree = ObjectTree::new(types)?;
/// let obj = tree.object_add_str("memory-backend-doc,id=m0,size=2M")?;
/// assert_eq!(memory_backend::mapping(&obj).unwrap().len(), 2 << 20);
/// # Ok::<(), qom::Error>(())
/// ```
#[derive(qom::Object)]
#[qom(
    name = "memory-backend",
    abstract,
    interfaces(qom::UserCreatable),
    manual_subclass_init,
    class_init = MemoryBackend::check_alloc
)]
pub struct MemoryBackend {
    #[property(
        ty = Size,
        get = get_size,
        set = set_size,
        locked = LockStyle::Unquoted,
        lock_checked_first,
        required,
        description = "Size of the memory region (ex: 500M)"
    )]
    size: u64,
    #[property(
        locked = LockStyle::Value,
        description = "Mark the memory as private to QEMU or shared"
    )]
    share: bool,
    #[property(
        set = set_reserve,
        locked = LockStyle::Value,
        description = "Reserve swap space (or huge pages) if applicable"
    )]
    reserve: bool,
    /// Settable after creation: false -> true preallocates at once.
    #[property(set = set_prealloc, description = "Preallocate memory")]
    prealloc: bool,
    #[property(
        set = set_prealloc_threads,
        qom_type = "int",
        description = "Number of CPU threads to use for prealloc"
    )]
    prealloc_threads: u32,
    #[property(
        link = "thread-context",
        description = "Context to use for creating CPU threads for preallocation"
    )]
    prealloc_context: Link,
    #[property(set = set_merge, description = "Mark memory as mergeable")]
    merge: bool,
    #[property(set = set_dump, description = "Set to 'off' to exclude from core dump")]
    dump: bool,
    #[property(description = "Set the NUMA policy")]
    policy: HostMemPolicy,
    /// Bit n set: node n (n < 128 = MAX_NODES).
    #[property(
        ty = Vec<u16>,
        qom_type = "int",
        get = get_host_nodes,
        set = set_host_nodes,
        description = "Binds memory to the list of NUMA host nodes"
    )]
    host_nodes: u128,
    #[property(rename = "x-use-canonical-path-for-ramblock-id")]
    use_canonical_path: bool,
    memory: Option<Arc<dyn HostMemory>>,
    /// Users and the deletion mark, one atomic (see `users`).
    users: Arc<users::Users>,
}

/// The rest of this file predates the derive and calls the state by this
/// name.
type MemoryBackendState = MemoryBackend;

type BackendRef<'a> = ObjectRef<'a, MemoryBackend>;

impl MemoryBackend {
    /// A concrete backend without alloc is refused when its class is
    /// built, so it never shows up as creatable.
    fn check_alloc(c: &mut qom::ClassBuilder<'_>) -> Result<()> {
        c.check_concrete(|class| {
            match class
                .data::<MemoryBackendClass>()
                .and_then(|d| d.alloc.as_ref())
            {
                Some(_) => Ok(()),
                None => Err(no_alloc(class.name())),
            }
        });
        Ok(())
    }
}

impl qom::ObjectImpl for MemoryBackend {}

impl qom::UserCreatableImpl for MemoryBackend {
    fn complete(obj: &mut BackendRef<'_>) -> Result<()> {
        complete(obj.object())
    }

    /// Not only a question: a yes also stops new users (`map` answers
    /// "is being deleted"), in the same atomic step, so that no device can
    /// take the memory between this answer and `object_del`'s unparent.
    fn can_be_deleted(obj: &mut BackendRef<'_>) -> bool {
        access::accept_delete(obj.object())
    }
}

impl Default for MemoryBackendState {
    /// The values QEMU 10.0.2 reads back from a fresh backend (`-machine
    /// none`, one vCPU, a host with KSM).
    fn default() -> Self {
        MemoryBackendState {
            size: 0,
            share: false,
            reserve: true,
            prealloc: false,
            prealloc_threads: 1,
            prealloc_context: Link::default(),
            merge: true,
            dump: true,
            policy: HostMemPolicy::Default,
            host_nodes: 0,
            use_canonical_path: false,
            memory: None,
            users: Arc::default(),
        }
    }
}

fn state(obj: &Object) -> StateGuard<'_, MemoryBackendState> {
    obj.state::<MemoryBackendState>()
}

fn nodes_of(mask: u128) -> Vec<u16> {
    (0..MAX_NODES as u16)
        .filter(|&n| mask & (1u128 << n) != 0)
        .collect()
}

/// A [`HostError`] as the object model reports it: QEMU's text, class
/// GenericError, and the `HostError` itself (errno included) as the
/// error's `source()`.
pub fn host_error(e: HostError) -> Error {
    Error::with_cause(e)
}

fn no_alloc(type_name: &str) -> Error {
    Error::generic(format!(
        "memory backend type '{type_name}' has no alloc hook"
    ))
}

fn incompatible() -> Error {
    Error::generic("'prealloc=on' and 'reserve=off' are incompatible")
}

/// The registration, with the class of the `memory-region` child that each
/// backend gets at creation (QEMU's `ID[0]`).
fn type_info_with_region(region: Option<Arc<qom::Class>>) -> TypeInfo {
    // The region's class belongs to one registry, so it is handed in here
    // rather than found by the derived class_init.
    MemoryBackend::type_info().class_init(move |c| {
        <MemoryBackend as ObjectType>::class_init(c)?;
        c.data_mut::<MemoryBackendClass>().region = region.clone();
        Ok(())
    })
}

/// Registers `thread-context` and the abstract `memory-backend` (each only
/// when not registered yet, so several backend crates may call this).
pub fn register(types: &TypeRegistry) -> Result<()> {
    thread_context::register(types)?;
    let region = crate::region::register(types)?;
    types.register_once(type_info_with_region(Some(region)))
}

#[cfg(test)]
mod tests {
    use qom::{TypeInfo, TypeRegistry};

    /// A concrete backend without `alloc` is refused when its class is
    /// built, with the message object-add used to give; an abstract one
    /// may leave `alloc` to its subclasses.
    #[test]
    fn a_concrete_backend_without_alloc_is_refused_at_class_build() {
        let types = TypeRegistry::with_builtins();
        super::register(&types).unwrap();
        types
            .register(TypeInfo::new("memory-backend-noalloc").parent("memory-backend"))
            .unwrap();
        types
            .register(
                TypeInfo::new("memory-backend-abstract-noalloc")
                    .parent("memory-backend")
                    .abstract_type(true),
            )
            .unwrap();
        let e = types.class("memory-backend-noalloc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory backend type 'memory-backend-noalloc' has no alloc hook"
        );
        assert!(types.class("memory-backend-abstract-noalloc").is_ok());
        // Like any other registration error, it surfaces in type listings.
        let e = types.list_types(Some("memory-backend"), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory backend type 'memory-backend-noalloc' has no alloc hook"
        );
    }
}
