//! What a VMM and tools read from a backend: its settings, its region
//! name, its guest RAM (with or without an "in use" mark) and
//! `query-memdev`.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use qom::{Error, Object, ObjectTree, Result};
use serde::{Deserialize, Serialize};

use super::users::{MapError, Refused, Users};
use super::{nodes_of, seams, HostMemPolicy, HostMemory, MemoryBackendState};
use crate::host::Mapping;

/// A snapshot of a backend's `memory-backend` properties, for subclasses
/// (their `alloc` hook) and for tools.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendSettings {
    /// `size` in bytes (0 when not set).
    pub size: u64,
    /// `share`.
    pub share: bool,
    /// `reserve`.
    pub reserve: bool,
    /// `prealloc`.
    pub prealloc: bool,
    /// `prealloc-threads`.
    pub prealloc_threads: u32,
    /// `merge`.
    pub merge: bool,
    /// `dump`.
    pub dump: bool,
    /// `policy`.
    pub policy: HostMemPolicy,
    /// `host-nodes`, ascending.
    pub host_nodes: Vec<u16>,
    /// `x-use-canonical-path-for-ramblock-id`.
    pub use_canonical_path: bool,
}

/// The `memory-backend` properties of `obj`; `None` when it is not a
/// memory backend.
pub fn settings(obj: &Object) -> Option<BackendSettings> {
    let s = obj.try_state::<MemoryBackendState>()?;
    Some(BackendSettings {
        size: s.size,
        share: s.share,
        reserve: s.reserve,
        prealloc: s.prealloc,
        prealloc_threads: s.prealloc_threads,
        merge: s.merge,
        dump: s.dump,
        policy: s.policy,
        host_nodes: nodes_of(s.host_nodes),
        use_canonical_path: s.use_canonical_path,
    })
}

/// The name QEMU gives the backend's memory region (and uses in messages
/// and temporary file names): the id, or the canonical path when
/// `x-use-canonical-path-for-ramblock-id` is on. Empty outside a tree.
pub fn region_name(obj: &Object) -> String {
    let canonical = obj
        .try_state::<MemoryBackendState>()
        .is_some_and(|s| s.use_canonical_path);
    let name = if canonical {
        obj.canonical_path()
    } else {
        obj.name()
    };
    name.unwrap_or_default()
}

/// A handle on a backend's guest RAM: dereferences to the [`Mapping`]
/// (address, length, page size, fd, flags). It keeps the memory mapped
/// while it exists, even after the backend object is deleted; use
/// [`map`] to also keep the object from being deleted.
#[derive(Clone)]
pub struct BackendMemory(Arc<dyn HostMemory>);

impl BackendMemory {
    /// The memory as the subclass produced it (downcast with
    /// [`HostMemory::as_any`]).
    pub fn host_memory(&self) -> &dyn HostMemory {
        &*self.0
    }
}

impl Deref for BackendMemory {
    type Target = Mapping;
    fn deref(&self) -> &Mapping {
        self.0.mapping()
    }
}

impl fmt::Debug for BackendMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BackendMemory").field(&self.0).finish()
    }
}

/// The guest RAM of a created backend; `None` for other objects and for a
/// backend whose creation has not finished.
pub fn mapping(obj: &Object) -> Option<BackendMemory> {
    obj.try_state::<MemoryBackendState>()?
        .memory
        .clone()
        .map(BackendMemory)
}

/// A backend's guest RAM, marked in use: while any `MappedMemory` of a
/// backend exists, `object-del` refuses with "object 'ID' is in use, can
/// not be deleted" (QEMU's `host_memory_backend_set_mapped`).
pub struct MappedMemory {
    memory: BackendMemory,
    users: Arc<Users>,
}

impl Deref for MappedMemory {
    type Target = Mapping;
    fn deref(&self) -> &Mapping {
        &self.memory
    }
}

impl MappedMemory {
    /// The memory, as an unmarked handle.
    pub fn memory(&self) -> &BackendMemory {
        &self.memory
    }
}

impl Drop for MappedMemory {
    fn drop(&mut self) {
        self.users.release();
    }
}

impl fmt::Debug for MappedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MappedMemory").field(&self.memory).finish()
    }
}

/// Takes a backend's guest RAM for use by a device, alongside any other
/// users: the backend cannot be deleted until the returned value is
/// dropped. Fails when `obj` is not a memory backend, is not created yet,
/// or is being deleted (an `object-del` that has already accepted it wins;
/// see the `users` module for the protocol).
pub fn map(obj: &Object) -> Result<MappedMemory> {
    claim(obj, false).map_err(Error::from)
}

/// Takes a backend's guest RAM as its only user, as a device or a guest
/// memory layout that owns a memdev must (QEMU: "can't use already busy
/// memdev: ID"). Checking for other users and becoming one is a single
/// atomic step: of any number of threads claiming an unused backend, one
/// wins and the others get [`MapError::Busy`]. Once claimed, [`map`]
/// still lets further users share the memory (a label area, a dump).
pub fn map_exclusive(obj: &Object) -> std::result::Result<MappedMemory, MapError> {
    claim(obj, true)
}

fn claim(obj: &Object, exclusive: bool) -> std::result::Result<MappedMemory, MapError> {
    let id = || obj.name().unwrap_or_default();
    // The state lock is released before the claim: the claim itself is the
    // atomic, and a test hook may map the same backend from here.
    let (memory, users) = {
        let s = obj
            .try_state::<MemoryBackendState>()
            .ok_or_else(|| MapError::NotBackend {
                type_name: obj.type_name().to_owned(),
            })?;
        let memory = s
            .memory
            .clone()
            .ok_or_else(|| MapError::NoMemory { id: id() })?;
        (memory, s.users.clone())
    };
    seams::before_claim(obj);
    users.claim(exclusive).map_err(|r| match r {
        Refused::Busy => MapError::Busy { id: id() },
        Refused::Deleting => MapError::Deleting { id: id() },
    })?;
    Ok(MappedMemory {
        memory: BackendMemory(memory),
        users,
    })
}

/// Whether a device maps the backend (see [`map`]). Only a snapshot: to
/// become the only user, call [`map_exclusive`] rather than this then
/// [`map`].
pub fn is_mapped(obj: &Object) -> bool {
    obj.try_state::<MemoryBackendState>()
        .is_some_and(|s| s.users.in_use())
}

/// The backend's `can_be_deleted`: agrees only when nobody maps it, and
/// from the same atomic step on refuses every new user.
pub(super) fn accept_delete(obj: &Object) -> bool {
    let Some(users) = obj
        .try_state::<MemoryBackendState>()
        .map(|s| s.users.clone())
    else {
        return true;
    };
    let accepted = users.begin_delete();
    if accepted {
        seams::delete_accepted(obj);
    }
    accepted
}

/// One element of `query-memdev` (QAPI's `Memdev`), serialized in QEMU's
/// shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memdev {
    /// The backend's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `size` in bytes.
    pub size: u64,
    /// `merge`.
    pub merge: bool,
    /// `dump`.
    pub dump: bool,
    /// `prealloc`: true after a successful preallocation, also a late one.
    pub prealloc: bool,
    /// `share`.
    pub share: bool,
    /// `reserve` (QEMU reports it on Linux builds, as here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<bool>,
    /// `host-nodes`, ascending.
    #[serde(rename = "host-nodes")]
    pub host_nodes: Vec<u16>,
    /// `policy`.
    pub policy: HostMemPolicy,
}

/// `query-memdev`: one [`Memdev`] per memory backend below `/objects`, in
/// creation order (QEMU lists them in hash order; clients sort).
pub fn query_memdev(tree: &ObjectTree) -> Vec<Memdev> {
    tree.objects()
        .children()
        .into_iter()
        .filter_map(|(id, obj)| {
            let s = settings(&obj)?;
            Some(Memdev {
                id: Some(id),
                size: s.size,
                merge: s.merge,
                dump: s.dump,
                prealloc: s.prealloc,
                share: s.share,
                reserve: Some(s.reserve),
                host_nodes: s.host_nodes,
                policy: s.policy,
            })
        })
        .collect()
}
