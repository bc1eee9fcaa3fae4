#![forbid(unsafe_code)]
//! memory-backend-ram: QEMU's `memory-backend-ram`, `memory-backend-memfd`
//! and `memory-backend-shm`, as subclasses of the abstract
//! [`memory_backend`] type. Each only fills the `alloc` hook (and adds its
//! own properties); sizes, `share`, `prealloc`, NUMA and the rest come
//! from the base type.
//!
//! | type | memory | `share` default | own properties |
//! |---|---|---|---|
//! | [`memory-backend-ram`](ram) | private anonymous memory; a memfd with `share=on` (as QEMU) | false | none |
//! | [`memory-backend-memfd`](memfd) | a memfd, optionally hugetlb, sealed by default | true | `hugetlb`, `hugetlbsize`, `seal` |
//! | [`memory-backend-shm`](shm) | a POSIX shared memory object, unlinked at once | true (`off` refused) | none |
//!
//! Register all three with [`register`] (also a [`qom::Plugin`] for
//! `TypeRegistry::install`), then create objects through
//! [`qom::ObjectTree`]:
//!
//! ```
//! use qom::{ObjectTree, TypeRegistry};
//! use serde_json::json;
//!
//! let types = TypeRegistry::with_builtins();
//! types.install(memory_backend_ram::register)?;   // also memory-backend itself
//! let tree = ObjectTree::new(types)?;
//!
//! let args = json!({"qom-type": "memory-backend-memfd", "id": "mem0", "size": 2 << 20});
//! tree.object_add_args(args.as_object().unwrap())?;
//! assert_eq!(tree.qom_get("mem0", "share")?, json!(true));   // memfd shares by default
//! assert_eq!(tree.qom_get("mem0", "seal")?, json!(true));
//!
//! let ram = memory_backend::mapping(&tree.object("mem0").unwrap()).unwrap();
//! ram.write_at(0, b"guest")?;
//! assert_eq!(ram.len(), 2 << 20);
//! drop(ram);
//!
//! // share=off is not an option for memory-backend-shm, with QEMU's message.
//! let args = json!({"qom-type": "memory-backend-shm", "id": "shm0",
//!                   "size": 2 << 20, "share": false});
//! let err = tree.object_add_args(args.as_object().unwrap()).unwrap_err();
//! assert_eq!(err.to_string(), "can't create shm backend with `share=off`");
//!
//! tree.object_del("mem0")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod common;
pub mod memfd;
pub mod ram;
pub mod shm;

use qom::{Object, ObjectType, Result, TypeRegistry};

pub use memfd::{memfd_flags, MEMFD_SEALS, TYPE_MEMORY_BACKEND_MEMFD};
pub use ram::TYPE_MEMORY_BACKEND_RAM;
pub use shm::TYPE_MEMORY_BACKEND_SHM;

/// Registers `memory-backend-ram`, `memory-backend-memfd` and
/// `memory-backend-shm` in that order (QEMU's), after `memory-backend` and
/// `thread-context` when they are missing. Calling it twice is harmless.
pub fn register(types: &TypeRegistry) -> Result<()> {
    memory_backend::register(types)?;
    types.register_once(ram::RamBackend::type_info())?;
    types.register_once(memfd::MemfdState::type_info())?;
    types.register_once(shm::ShmBackend::type_info())
}

// Linking this crate is enough for `TypeRegistry::with_linked_types` to
// know the three types.
qom::register_linked!(register);

/// `instance_init` of the memfd and shm types: `share` starts out true
/// (QEMU's `m->share = true`).
fn share_by_default(obj: &Object) {
    obj.set_typed("share", true)
        .expect("memory-backend declares a writable bool `share`");
}
