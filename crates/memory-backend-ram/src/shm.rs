//! `memory-backend-shm`: guest RAM in a POSIX shared memory object, always
//! shared.
//!
//! As in QEMU, the object is created with `shm_open("/qemu-PID-shm-N",
//! O_RDWR | O_CREAT | O_EXCL, 0)` (N counts the attempts of the process
//! from 0, as QEMU 10.0.2 shows in /proc/PID/maps), unlinked at
//! once so only our descriptor keeps it alive, sized with `ftruncate` and
//! mapped `MAP_SHARED`. `share` defaults to true and `share=off` is refused
//! at creation with "can't create shm backend with `share=off`".

use std::sync::atomic::{AtomicU64, Ordering};

use memory_backend::{HostMemory, MemoryBackend, MemoryBackendImpl};
use qom::{Error, ObjectRef, Result};
use rustix::fs::{ftruncate, Mode};
use rustix::shm;

use crate::common::{base, errno_error, map_fd};

/// Numbers the shared memory objects this process creates.
static SHM_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The QOM type name.
pub const TYPE_MEMORY_BACKEND_SHM: &str = <ShmBackend as qom::StaticType>::TYPE_NAME;

/// `memory-backend-shm` adds no state of its own.
#[derive(Default, qom::Object)]
#[qom(name = "memory-backend-shm", parent = MemoryBackend)]
pub(crate) struct ShmBackend {}

impl qom::ObjectImpl for ShmBackend {
    fn instance_init(obj: &mut ObjectRef<'_, Self>) {
        crate::share_by_default(obj.object());
    }
}

impl MemoryBackendImpl for ShmBackend {
    fn alloc(obj: &mut ObjectRef<'_, Self>) -> Result<Box<dyn HostMemory>> {
        let obj = obj.object();
        let s = base(obj, "shm backend")?;
        if !s.share {
            return Err(Error::generic("can't create shm backend with `share=off`"));
        }
        // A counter rather than the id: two object trees of one process
        // may both have a backend of that id.
        let n = SHM_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("/qemu-{}-shm-{n}", std::process::id());
        // Mode 0: nobody else may open it; we pass the descriptor on instead.
        let fd = shm::open(
            name.as_str(),
            shm::OFlags::RDWR | shm::OFlags::CREATE | shm::OFlags::EXCL,
            Mode::empty(),
        )
        .map_err(|e| errno_error("failed to create POSIX shared memory", e))?;
        // The descriptor keeps the object alive; the name is no longer needed.
        let _ = shm::unlink(name.as_str());
        ftruncate(&fd, s.size).map_err(|e| {
            errno_error(
                format_args!("failed to resize POSIX shared memory to {}", s.size),
                e,
            )
        })?;
        map_fd(obj, fd, &s, true)
    }
}
