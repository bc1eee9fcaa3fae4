//! The only module of the memory-backend crates that contains `unsafe`.
//!
//! Everything here works on address space that this module reserved and
//! mapped itself ([`Reservation`], [`RawRegion`]). No Rust reference (`&[u8]`
//! or `&mut [u8]`) into that memory is ever created: guest RAM is shared,
//! mutable memory that the guest, other processes mapping the same file, or
//! the kernel may change at any time, so every access goes through raw
//! pointers with volatile loads and stores, like `vm-memory` does.
//!
//! Callers outside this module only see safe functions; every `unsafe`
//! block carries a `// SAFETY:` line that says why it is sound.
//!
//! - [`Reservation`] (`reservation.rs`): address space reserved
//!   `PROT_NONE`, a file or anonymous memory mapped into it with
//!   `MAP_FIXED`, and the careful take-back after a failed `MAP_FIXED`;
//! - [`RawRegion`] (`region.rs`): the mapped region, with volatile
//!   accesses, madvise, msync and mbind;
//! - [`flush_kind`] (`flush.rs`): CPUID and the cache write-back
//!   instructions behind `persist` with `MAP_SYNC`.
#![allow(unsafe_code)]

mod flush;
mod region;
mod reservation;
#[cfg(test)]
mod test_hooks;
#[cfg(test)]
mod tests;

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr;

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

pub use flush::{flush_kind, FlushKind};
pub(crate) use region::RawRegion;
pub(crate) use reservation::Reservation;

/// Maps `len` bytes of `fd` (anonymous memory when `fd` is `None`) at a
/// place the kernel chooses and unmaps them again at once: a dry run of a
/// mapping with `prot` and `flags`.
///
/// Every refusal that a file system or the kernel can give for these
/// arguments (`MAP_SYNC` on a file without DAX, a write mapping of a
/// read-only file, a misaligned offset on hugetlbfs, no free huge page,
/// overcommit limits on private memory...) surfaces here, where a failure
/// cannot unmap anything. Callers probe before they map over their own
/// reservation with `MAP_FIXED`, whose failure may already have removed
/// the reserved pages.
pub(crate) fn probe_map(
    fd: Option<BorrowedFd<'_>>,
    offset: u64,
    len: usize,
    prot: ProtFlags,
    flags: MapFlags,
) -> Result<(), Errno> {
    if len == 0 || flags.contains(MapFlags::FIXED) || flags.contains(MapFlags::FIXED_NOREPLACE) {
        return Err(Errno::INVAL);
    }
    // SAFETY: without MAP_FIXED (checked above) the kernel picks a free
    // range; it never replaces an existing mapping, ours or another
    // thread's, whether the call succeeds or fails.
    let got = unsafe { mmap_from(ptr::null_mut(), len, prot, flags, fd, offset)? };
    // SAFETY: [got, got + len) is the mapping just created by this call;
    // no other code knows its address, so nothing else can be using it.
    let _ = unsafe { rustix::mm::munmap(got, len) };
    Ok(())
}

/// `mmap(2)` of `fd` at `offset`, or of anonymous memory when `fd` is
/// `None` (`offset` must then be 0, as the kernel expects).
///
/// # Safety
///
/// The same as `mmap` itself: with `MAP_FIXED` in `flags`, every page of
/// `[addr, addr + len)` must be the caller's to replace.
unsafe fn mmap_from(
    addr: *mut c_void,
    len: usize,
    prot: ProtFlags,
    flags: MapFlags,
    fd: Option<BorrowedFd<'_>>,
    offset: u64,
) -> Result<*mut c_void, Errno> {
    match fd {
        // SAFETY: the only range this call can replace is [addr, addr +
        // len) with MAP_FIXED, which the caller guarantees is its own
        // (# Safety above); without MAP_FIXED the kernel picks free space.
        Some(fd) => unsafe { rustix::mm::mmap(addr, len, prot, flags, fd, offset) },
        None if offset != 0 => Err(Errno::INVAL),
        // SAFETY: as for a file: anonymous pages change what backs the
        // new mapping, not which address range it may replace, and that
        // range is the caller's (# Safety above).
        None => unsafe { rustix::mm::mmap_anonymous(addr, len, prot, flags) },
    }
}
