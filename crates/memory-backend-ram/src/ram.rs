//! `memory-backend-ram`: plain guest RAM, no properties of its own.
//!
//! QEMU maps anonymous memory (`MAP_ANONYMOUS`, shared or private). Here
//! the memory comes from an anonymous memfd (`MFD_CLOEXEC`, no seals)
//! sized to `size` rounded up to the page size and mapped `MAP_SHARED`
//! with `share=on`, `MAP_PRIVATE` with `share=off`. What a user observes
//! is the same: zero-filled memory of the given size that nothing else
//! names. The descriptor is a bonus: with `share=on` it lets another
//! process (vhost-user, for example) see the memory, which QEMU's
//! anonymous mapping cannot offer.

use memory_backend::{HostMemory, MemoryBackend, MemoryBackendImpl};
use qom::{ObjectRef, Result};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};

use crate::common::{base, errno_error, map_fd, page_aligned};

/// The QOM type name.
pub const TYPE_MEMORY_BACKEND_RAM: &str = <RamBackend as qom::StaticType>::TYPE_NAME;

/// `memory-backend-ram` adds no state of its own.
#[derive(Default, qom::Object)]
#[qom(name = "memory-backend-ram", parent = MemoryBackend)]
pub(crate) struct RamBackend {}

impl qom::ObjectImpl for RamBackend {}

impl MemoryBackendImpl for RamBackend {
    fn alloc(obj: &mut ObjectRef<'_, Self>) -> Result<Box<dyn HostMemory>> {
        let obj = obj.object();
        let s = base(obj, "backend")?;
        let fd = memfd_create(TYPE_MEMORY_BACKEND_RAM, MemfdFlags::CLOEXEC)
            .map_err(|e| errno_error("cannot allocate guest RAM", e))?;
        let len = page_aligned(s.size).unwrap_or(s.size);
        ftruncate(&fd, len).map_err(|e| errno_error("cannot allocate guest RAM", e))?;
        map_fd(obj, fd, &s, s.share)
    }
}
