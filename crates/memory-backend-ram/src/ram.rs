//! `memory-backend-ram`: plain guest RAM, no properties of its own.
//!
//! As in QEMU, `share=off` (the default) is private anonymous memory
//! (`MAP_PRIVATE | MAP_ANONYMOUS`, rounded up to the page size, 2 MiB
//! aligned): no descriptor is held, so the number of backends is not
//! bounded by the open-file limit, and the kernel may back it with
//! transparent huge pages and merge it with KSM (`merge`).
//!
//! `share=on` must be memory another process can map: it comes from an
//! anonymous memfd (`MFD_CLOEXEC`, no seals) of the page-aligned size,
//! mapped `MAP_SHARED`. QEMU maps `MAP_SHARED | MAP_ANONYMOUS` there, which
//! is the same shmem to the guest; the descriptor lets another process
//! (vhost-user, for example) see the memory, which QEMU's anonymous
//! mapping cannot offer.

use memory_backend::host::{Errno, HostError, MapRequest, Mapping, SyncMode};
use memory_backend::{host_error, HostMemory, MemoryBackend, MemoryBackendImpl};
use qom::{ObjectRef, Result};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};

use crate::common::{base, errno_error, page_aligned};

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
        let name = memory_backend::region_name(obj);
        // QEMU's wording for any failure to get the memory.
        let failed = |e| errno_error(format_args!("cannot set up guest memory '{name}'"), e);
        let req = if s.share {
            // Named like QEMU's (after the region), as /proc/PID/maps shows.
            let fd = memfd_create(name.as_str(), MemfdFlags::CLOEXEC).map_err(failed)?;
            let len = page_aligned(s.size).ok_or(Errno::NOMEM).map_err(failed)?;
            ftruncate(&fd, len).map_err(failed)?;
            MapRequest::new(fd, s.size).shared(true)
        } else {
            MapRequest::anonymous(s.size)
        };
        match Mapping::new(req.noreserve(!s.reserve).sync(SyncMode::Off)) {
            Ok(m) => Ok(Box::new(m)),
            Err(HostError::Map(e)) => Err(failed(e)),
            Err(e) => Err(host_error(e)),
        }
    }
}
