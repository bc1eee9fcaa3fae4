//! `complete` (QEMU's order: alloc, region, madvise, NUMA, preallocation,
//! commit) and the property accessors, some of which act on the memory of
//! a live backend.

use std::sync::Arc;

use qom::{Error, Object, Result, Size};

use super::{
    host_error, incompatible, no_alloc, nodes_of, region_name, state, BackendRef,
    MemoryBackendClass,
};
use crate::host::{HostError, Mapping, PreallocControl, PreallocOptions, MAX_NODES};
use crate::thread_context;

// ---- setters with side effects -------------------------------------------

pub(super) fn get_size(obj: &mut BackendRef<'_>) -> Result<Size> {
    Ok(Size(obj.state().size))
}

pub(super) fn set_size(obj: &mut BackendRef<'_>, v: Size) -> Result<()> {
    if v.0 == 0 {
        return Err(Error::PropertyValueRefused {
            name: "size".into(),
            type_name: obj.type_name().to_owned(),
            value: "0".into(),
        });
    }
    obj.state().size = v.0;
    Ok(())
}

pub(super) fn set_reserve(obj: &mut BackendRef<'_>, v: bool) -> Result<()> {
    let mut s = obj.state();
    if !v && s.prealloc {
        return Err(incompatible());
    }
    s.reserve = v;
    Ok(())
}

pub(super) fn set_prealloc_threads(obj: &mut BackendRef<'_>, v: u32) -> Result<()> {
    if v == 0 {
        return Err(Error::PropertyValueRefused {
            name: "prealloc-threads".into(),
            type_name: obj.type_name().to_owned(),
            value: "0".into(),
        });
    }
    obj.state().prealloc_threads = v;
    Ok(())
}

pub(super) fn set_merge(obj: &mut BackendRef<'_>, v: bool) -> Result<()> {
    let mut s = obj.state();
    if let Some(mem) = &s.memory {
        if v != s.merge {
            // QEMU ignores the outcome (a kernel without KSM refuses).
            let _ = mem.mapping().set_mergeable(v);
        }
    }
    s.merge = v;
    Ok(())
}

pub(super) fn set_dump(obj: &mut BackendRef<'_>, v: bool) -> Result<()> {
    let mut s = obj.state();
    if let Some(mem) = &s.memory {
        if v != s.dump {
            let _ = mem.mapping().set_dump(v);
        }
    }
    s.dump = v;
    Ok(())
}

pub(super) fn get_host_nodes(obj: &mut BackendRef<'_>) -> Result<Vec<u16>> {
    Ok(nodes_of(obj.state().host_nodes))
}

pub(super) fn set_host_nodes(obj: &mut BackendRef<'_>, nodes: Vec<u16>) -> Result<()> {
    let mut mask = 0u128;
    for n in nodes {
        if u32::from(n) >= MAX_NODES {
            return Err(host_error(HostError::NumaInvalidNode(n.into())));
        }
        mask |= 1u128 << n;
    }
    // QEMU ORs the nodes into the set; nothing ever clears it.
    obj.state().host_nodes |= mask;
    Ok(())
}

pub(super) fn set_prealloc(obj: &mut BackendRef<'_>, v: bool) -> Result<()> {
    let (memory, threads, context) = {
        let mut s = obj.state();
        if v && !s.reserve {
            return Err(incompatible());
        }
        match &s.memory {
            None => {
                s.prealloc = v;
                return Ok(());
            }
            // Once allocated, only false -> true does anything.
            Some(_) if !v || s.prealloc => return Ok(()),
            Some(m) => (
                m.clone(),
                s.prealloc_threads,
                s.prealloc_context.get().cloned(),
            ),
        }
    };
    let name = region_name(obj.object());
    prealloc(&name, memory.mapping(), threads, context.as_ref())?;
    obj.state().prealloc = true;
    Ok(())
}

/// Preallocates `mapping` with `threads` threads in the affinity of
/// `context` (a `thread-context`), reporting to the thread's or the
/// process's [`PreallocControl`] as `name`.
pub(super) fn prealloc(
    name: &str,
    mapping: &Mapping,
    threads: u32,
    context: Option<&Object>,
) -> Result<()> {
    let affinity = context.map(thread_context::affinity).transpose()?;
    let control = PreallocControl::current();
    let opts = PreallocOptions {
        threads: threads as usize,
        affinity: affinity.as_ref(),
        control: control.as_ref(),
        name,
        ..PreallocOptions::default()
    };
    mapping
        .prealloc_with(0, mapping.len(), &opts)
        .map_err(host_error)
}

// ---- complete ---------------------------------------------------------------

pub(super) fn complete(obj: &Object) -> Result<()> {
    let alloc = obj
        .class()
        .data::<MemoryBackendClass>()
        .and_then(|c| c.alloc.clone())
        .ok_or_else(|| no_alloc(obj.type_name()))?;
    let mut memory = alloc(obj)?;
    let attached = match obj
        .class()
        .data::<MemoryBackendClass>()
        .and_then(|c| c.region.clone())
    {
        Some(class) => crate::region::attach(
            &class,
            obj,
            &region_name(obj),
            memory.mapping().len() as u64,
        ),
        None => Ok(()),
    };
    let ready = attached
        .and_then(|()| setup(obj, memory.mapping()))
        .and_then(|()| memory.commit());
    match ready {
        Ok(()) => {
            state(obj).memory = Some(Arc::from(memory));
            Ok(())
        }
        Err(e) => {
            memory.abandon();
            Err(e)
        }
    }
}

/// Steps 2–4 of `complete`: madvise, NUMA, preallocation.
pub(super) fn setup(obj: &Object, mapping: &Mapping) -> Result<()> {
    let (merge, dump, policy, nodes, prealloc_on, threads, context) = {
        let s = state(obj);
        (
            s.merge,
            s.dump,
            s.policy,
            nodes_of(s.host_nodes),
            s.prealloc,
            s.prealloc_threads,
            s.prealloc_context.get().cloned(),
        )
    };
    // QEMU's ram_block_add gives every RAM block these two, before the
    // backend's own advice and, above all, before preallocation, so that
    // populating already uses huge pages.
    let _ = mapping.set_hugepage(true);
    let _ = mapping.set_fork(false);
    if merge {
        let _ = mapping.set_mergeable(true);
    }
    if !dump {
        let _ = mapping.set_dump(false);
    }
    mapping.bind_numa(policy, &nodes).map_err(host_error)?;
    if prealloc_on {
        prealloc(&region_name(obj), mapping, threads, context.as_ref())?;
    }
    Ok(())
}
