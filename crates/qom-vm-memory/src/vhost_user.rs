//! The regions as a vhost-user memory table (`VHOST_USER_SET_MEM_TABLE`
//! and `VHOST_USER_ADD_MEM_REG`).

use std::os::fd::BorrowedFd;

use vm_memory::GuestMemoryRegion;

use crate::error::ExportError;
use crate::BackendGuestMemory;

/// One entry of a vhost-user memory table: the fields of
/// `VhostUserMemoryRegion` and the descriptor sent with it (`SCM_RIGHTS`).
///
/// The back end maps `memory_size` bytes of `fd` at file offset
/// `mmap_offset` (shared, read-write unless the region is read-only) and
/// translates guest addresses with `guest_phys_addr` and the front end's
/// addresses (in vrings) with `userspace_addr`.
#[derive(Debug, Clone, Copy)]
pub struct VhostUserRegion<'a> {
    /// The memory's file descriptor.
    pub fd: BorrowedFd<'a>,
    /// First guest physical address.
    pub guest_phys_addr: u64,
    /// Length in bytes.
    pub memory_size: u64,
    /// The front end's (this process's) virtual address of the first byte.
    pub userspace_addr: u64,
    /// Offset of the first byte in `fd`.
    pub mmap_offset: u64,
    /// True for a read-only region (map it without `PROT_WRITE`).
    pub readonly: bool,
}

impl BackendGuestMemory {
    /// The vhost-user memory table, by ascending guest address. Refused
    /// for memory another process cannot share: a `share=off` backend, or
    /// one without a file descriptor.
    pub fn vhost_user_table(&self) -> Result<Vec<VhostUserRegion<'_>>, ExportError> {
        self.regions()
            .map(|r| {
                if !r.shared() {
                    return Err(ExportError::NotShared {
                        id: r.id().to_owned(),
                    });
                }
                let fd = r.fd().ok_or_else(|| ExportError::NoFd {
                    id: r.id().to_owned(),
                })?;
                Ok(VhostUserRegion {
                    fd,
                    guest_phys_addr: r.start_addr().0,
                    memory_size: r.len(),
                    userspace_addr: r.host_addr(),
                    mmap_offset: r.file_start(),
                    readonly: r.readonly(),
                })
            })
            .collect()
    }
}
