//! What the three backends share: checking the backing file's size the way
//! QEMU's `qemu_ram_alloc_from_fd` does, and mapping the descriptor.

use std::os::fd::OwnedFd;

use memory_backend::host::{host_page_size, strerror, Errno, MapRequest, Mapping, SyncMode};
use memory_backend::{host_error, BackendSettings, HostMemory};
use qom::{Error, Object, Result};

/// The base properties of `obj`, which must be a memory backend with a
/// size: QEMU's "can't create WHAT with size 0" otherwise (`what` is
/// "backend", or "shm backend").
pub(crate) fn base(obj: &Object, what: &str) -> Result<BackendSettings> {
    let s = memory_backend::settings(obj)
        .ok_or_else(|| Error::generic(format!("'{}' is not a memory backend", obj.type_name())))?;
    if s.size == 0 {
        return Err(Error::generic(format!("can't create {what} with size 0")));
    }
    Ok(s)
}

/// An error `what: strerror(errno)`, as QEMU's `error_setg_errno` words
/// it, with the errno as its `source()`.
pub(crate) fn errno_error(what: impl std::fmt::Display, e: Errno) -> Error {
    Error::caused_by(format!("{what}: {}", strerror(e)), e)
}

/// `size` rounded up to the host page size; `None` on overflow.
pub(crate) fn page_aligned(size: u64) -> Option<u64> {
    size.checked_next_multiple_of(host_page_size() as u64)
}

/// Maps `fd` (already sized) for the backend `obj`, shared or private as
/// `shared` says, with `MAP_NORESERVE` when `reserve` is off.
///
/// Like QEMU, a descriptor whose file is shorter than the page-aligned
/// `size` is refused with "NAME backing store size 0x.. is too small for
/// 'size' option 0x.. plus 'offset' option 0x0" rather than mapped past
/// its end.
pub(crate) fn map_fd(
    obj: &Object,
    fd: OwnedFd,
    s: &BackendSettings,
    shared: bool,
) -> Result<Box<dyn HostMemory>> {
    let aligned = page_aligned(s.size)
        .ok_or_else(|| host_error(memory_backend::host::HostError::Map(Errno::NOMEM)))?;
    let file_size = rustix::fs::fstat(&fd)
        .map_err(|e| errno_error("cannot stat backing store", e))?
        .st_size as u64;
    if file_size > 0 && file_size < aligned {
        return Err(Error::generic(format!(
            "{} backing store size {file_size:#x} is too small for 'size' option {aligned:#x} plus 'offset' option 0x0",
            memory_backend::region_name(obj)
        )));
    }
    let req = MapRequest::new(fd, s.size)
        .shared(shared)
        .noreserve(!s.reserve)
        .sync(SyncMode::Off);
    Ok(Box::new(Mapping::new(req).map_err(host_error)?))
}
