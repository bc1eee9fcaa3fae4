//! The only `unsafe` of this crate: telling vm-memory about a mapping it
//! did not make.

#![allow(unsafe_code)]

use memory_backend::MappedMemory;
use vm_memory::mmap::{MmapRegionBuilder, MmapRegionError};
use vm_memory::{FileOffset, MmapRegion};

/// A vm-memory view of the whole of `guard`'s mapping, carrying
/// `file_offset`. The view does not own the mapping (it never unmaps it),
/// so it must not outlive `guard`: [`crate::BackendRegion`] keeps both
/// together, and drops the view first.
pub(crate) fn borrow_mapping(
    guard: &MappedMemory,
    file_offset: Option<FileOffset>,
) -> Result<MmapRegion, MmapRegionError> {
    let prot = if guard.readonly() {
        libc::PROT_READ
    } else {
        libc::PROT_READ | libc::PROT_WRITE
    };
    let flags = if guard.shared() {
        libc::MAP_SHARED
    } else {
        libc::MAP_PRIVATE
    };
    let mut builder = MmapRegionBuilder::new(guard.len())
        .with_mmap_prot(prot)
        .with_mmap_flags(flags)
        .with_hugetlbfs(guard.page_size() > memory_backend::host::host_page_size());
    if let Some(f) = file_offset {
        builder = builder.with_file_offset(f);
    }
    // SAFETY: `as_ptr()..as_ptr() + len()` is exactly the range the
    // backend's `Mapping` mapped, with the protection and sharing given
    // above, and it stays mapped for as long as `guard` lives: the
    // `MappedMemory` holds an `Arc` on the backend's memory, and the only
    // `munmap` of that range is in `Mapping`'s `Drop`, which runs when the
    // last `Arc` goes; deleting or finalizing the backend object drops
    // only the object's own `Arc`. No other code of the process can unmap
    // or remap the range through safe code: the memory-backend crate
    // never hands out the raw region, and a thread that munmaps or
    // `MAP_FIXED`s over memory it does not own is already unsound by
    // itself, whatever we do. The caller keeps the returned view next to
    // `guard` and drops it first, so the pointer is never used after the
    // range is unmapped. vm-memory only reaches the range through
    // volatile accesses, which is what shared guest memory needs, since
    // the guest and other processes may write it at any time.
    unsafe { builder.with_raw_mmap_pointer(guard.as_ptr()) }.build()
}
