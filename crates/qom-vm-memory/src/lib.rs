#![deny(unsafe_code)]
//! qom-vm-memory: guest memory for a VMM from QOM memory backends.
//!
//! [`BackendGuestMemory`] places created memory backends
//! (`memory-backend-file`, `-ram`, `-memfd`, `-shm`) at guest physical
//! addresses and offers them to rust-vmm crates as vm-memory
//! [`GuestMemory`](vm_memory::GuestMemory), to KVM as memory slots
//! ([`KvmMemorySlot`]) and to a vhost-user back end as a memory table
//! ([`VhostUserRegion`], with the descriptors to send). Each region
//! exposes its file and offset as vm-memory's
//! [`FileOffset`](vm_memory::FileOffset).
//!
//! While the guest memory exists, every backend in it is marked in use:
//! `object-del` answers QEMU's "object 'ID' is in use, can not be
//! deleted", and the memory stays mapped.
//!
//! ```
//! use qom::{ObjectTree, TypeRegistry};
//! use qom_vm_memory::{BackendGuestMemory, KVM_MEM_READONLY};
//! use serde_json::json;
//! use vm_memory::{Bytes, GuestAddress, GuestMemory};
//!
//! let types = TypeRegistry::with_builtins();
//! memory_backend_ram::register(&types)?;
//! let tree = ObjectTree::new(types)?;
//! for id in ["low", "high"] {
//!     let args = json!({"qom-type": "memory-backend-memfd", "id": id, "size": 2 << 20});
//!     tree.object_add_args(args.as_object().unwrap())?;
//! }
//!
//! const GIB: u64 = 1 << 30;
//! let mem = BackendGuestMemory::from_ids(
//!     &tree,
//!     &[(GuestAddress(0), "low"), (GuestAddress(4 * GIB), "high")],
//! )?;
//! mem.write_obj(0x1234_5678_u32, GuestAddress(4 * GIB + 0x100))?;
//! assert_eq!(mem.read_obj::<u32>(GuestAddress(4 * GIB + 0x100))?, 0x1234_5678);
//! assert!(!mem.check_range(GuestAddress(2 << 20), 1, vm_memory::Permissions::Read));
//!
//! // What a VMM hands to KVM_SET_USER_MEMORY_REGION ...
//! let slots = mem.kvm_slots(0);
//! assert_eq!(slots[1].guest_phys_addr, 4 * GIB);
//! assert_eq!(slots[1].memory_size, 2 << 20);
//! assert_eq!(slots[1].flags & KVM_MEM_READONLY, 0);
//! // ... and to a vhost-user back end (the fds go with SCM_RIGHTS).
//! let table = mem.vhost_user_table()?;
//! assert_eq!(table[1].userspace_addr, slots[1].userspace_addr);
//!
//! let err = tree.object_del("high").unwrap_err();
//! assert_eq!(err.to_string(), "object 'high' is in use, can not be deleted");
//! drop(mem);
//! tree.object_del("high")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why not `GuestMemoryMmap`
//!
//! vm-memory's `GuestMemoryMmap` holds `GuestRegionMmap`s, each an
//! `MmapRegion` and a guest address: there is nowhere to keep the
//! backend's [`MappedMemory`](memory_backend::MappedMemory) guard, and an
//! `MmapRegion` wrapped around a mapping it did not make does not keep
//! that mapping alive. Without the guard the backend could be deleted,
//! and its memory unmapped, under the guest. So each region here is a
//! [`BackendRegion`]: a borrowed `MmapRegion` view (vm-memory's own
//! volatile accessors) stored together with the guard, dropped before it.
//! The collection is vm-memory's `GuestRegionCollection` of those
//! regions, the same container `GuestMemoryMmap` is made of.
//!
//! The top level implements vm-memory's access-checked
//! [`GuestMemory`](vm_memory::GuestMemory) itself, rather than the plain
//! `GuestMemoryBackend`, so that a write into a read-only backend (`rom`,
//! or a read-only file) is an error rather than a `SIGSEGV`.
//!
//! # Layout rules
//!
//! A region's size is the backend's mapped length (its `size` rounded up
//! to its page size). Its guest address must be a multiple of the
//! backend's page size (2 MiB for hugetlbfs), regions may not overlap nor
//! pass the top of the address space, and a backend may appear once and
//! must not be used by anything else (QEMU's "can't use already busy
//! memdev"). Each refusal is a [`LayoutError`] and leaves every backend as
//! it was.
//!
//! A backend is claimed with
//! [`memory_backend::map_exclusive`]: the busy check and the in-use mark
//! are one atomic step, so two layouts, or a layout and a `qom-devices`
//! memory device, built at the same moment from one backend never both get
//! it; one of them gets [`LayoutError::Busy`]. A backend that `object-del`
//! has already accepted is refused as being deleted.

mod error;
mod kvm;
mod memory;
mod raw;
mod region;
mod vhost_user;

pub use error::{ExportError, LayoutError};
pub use kvm::{KvmMemorySlot, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY};
pub use memory::BackendGuestMemory;
pub use region::BackendRegion;
pub use vhost_user::VhostUserRegion;
/// The vm-memory version this crate is built against.
pub use vm_memory;
