//! One backend placed at a guest physical address: a vm-memory
//! [`GuestMemoryRegion`] that keeps the backend marked in use.

use std::fmt;
use std::os::fd::BorrowedFd;

use memory_backend::host::Mapping;
use memory_backend::MappedMemory;
use vm_memory::bitmap::BS;
use vm_memory::volatile_memory::VolatileMemory;
use vm_memory::{
    FileOffset, GuestAddress, GuestMemoryError, GuestMemoryRegion, GuestMemoryRegionBytes,
    GuestUsize, MemoryRegionAddress, MmapRegion, VolatileSlice,
};

/// The file descriptor of a backend's memory; `None` for anonymous memory
/// (a private `memory-backend-ram`). Every use of the descriptor in this
/// crate goes through here.
pub(crate) fn region_fd(m: &Mapping) -> Option<BorrowedFd<'_>> {
    m.fd()
}

/// A memory backend's guest RAM at a guest physical address.
///
/// While a region exists its backend is marked in use (`object-del`
/// answers "object 'ID' is in use, can not be deleted") and its memory
/// stays mapped.
///
/// Its `Bytes` implementation (region-relative addresses) knows no access
/// modes, like every vm-memory region: writing a read-only region there
/// raises `SIGSEGV`. [`BackendGuestMemory`](crate::BackendGuestMemory)'s
/// accessors check.
pub struct BackendRegion {
    // Field order matters: the borrowed view goes before the guard that
    // keeps its memory mapped.
    view: MmapRegion,
    guard: MappedMemory,
    id: String,
    start: GuestAddress,
}

impl BackendRegion {
    pub(crate) fn new(
        id: String,
        start: GuestAddress,
        guard: MappedMemory,
        view: MmapRegion,
    ) -> BackendRegion {
        BackendRegion {
            view,
            guard,
            id,
            start,
        }
    }

    /// The backend's id (its region name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The backend's memory, as the backend's own accessors see it.
    pub fn mapping(&self) -> &MappedMemory {
        &self.guard
    }

    /// Host virtual address of the region's first byte.
    #[inline]
    pub fn host_addr(&self) -> u64 {
        self.guard.as_ptr() as u64
    }

    /// Offset of the region's first byte in its file.
    pub fn file_start(&self) -> u64 {
        self.guard.offset()
    }

    /// True when the guest may not write the region (`rom`, or a
    /// read-only file).
    pub fn readonly(&self) -> bool {
        self.guard.readonly()
    }

    /// True when the memory is a shared mapping (`share=on`).
    pub fn shared(&self) -> bool {
        self.guard.shared()
    }

    /// The file descriptor of the memory, if it has one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        region_fd(&self.guard)
    }

    /// One past the last guest address.
    #[inline]
    pub(crate) fn end(&self) -> u64 {
        self.start.0 + self.view.size() as u64
    }
}

impl fmt::Debug for BackendRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendRegion")
            .field("id", &self.id)
            .field("start", &format_args!("{:#x}", self.start.0))
            .field("len", &format_args!("{:#x}", self.view.size()))
            .field("memory", &self.guard)
            .finish()
    }
}

// Accesses go through these for every guest memory access: `#[inline]`
// lets them inline into vm-memory's generic code instantiated in the
// caller's crate, as the generic GuestRegionMmap's methods do (without it
// a u64 access was several times slower, see benches/access.rs).
impl GuestMemoryRegion for BackendRegion {
    type B = ();

    #[inline]
    fn len(&self) -> GuestUsize {
        self.view.size() as GuestUsize
    }

    #[inline]
    fn start_addr(&self) -> GuestAddress {
        self.start
    }

    #[inline]
    fn bitmap(&self) -> BS<'_, ()> {}

    #[inline]
    fn get_host_address(&self, addr: MemoryRegionAddress) -> vm_memory::GuestMemoryResult<*mut u8> {
        let offset = self
            .check_address(addr)
            .ok_or(GuestMemoryError::InvalidBackendAddress)?
            .0;
        // In range (checked above), so the result stays inside the mapping.
        Ok(self.view.as_ptr().wrapping_add(offset as usize))
    }

    #[inline]
    fn file_offset(&self) -> Option<&FileOffset> {
        self.view.file_offset()
    }

    #[inline]
    fn get_slice(
        &self,
        offset: MemoryRegionAddress,
        count: usize,
    ) -> vm_memory::GuestMemoryResult<VolatileSlice<'_, BS<'_, ()>>> {
        Ok(self.view.get_slice(offset.0 as usize, count)?)
    }

    #[inline]
    fn is_hugetlbfs(&self) -> Option<bool> {
        self.view.is_hugetlbfs()
    }
}

impl GuestMemoryRegionBytes for BackendRegion {}
