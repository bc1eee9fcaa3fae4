//! [`Reservation`]: address space reserved with an anonymous `PROT_NONE`
//! mapping, and a file (or anonymous memory) mapped into it at an aligned
//! address.

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

#[cfg(test)]
use super::test_hooks;
use super::{mmap_from, RawRegion};

/// What we know about the aligned target range of a [`Reservation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Still our `PROT_NONE` reservation.
    Reserved,
    /// A `MAP_FIXED` into it failed and the range could not be taken back:
    /// the kernel may have unmapped it, and another thread may have been
    /// given part of it since. We must never unmap or map over it again;
    /// its address space is given up (leaked) for good.
    Lost,
}

/// Address space reserved with an anonymous `PROT_NONE` mapping, inside
/// which a file or anonymous memory is mapped with `MAP_FIXED` at an
/// aligned address.
///
/// A reservation is used for one attempt: [`Reservation::map_fixed`]
/// consumes it and returns the mapped region, or an error after cleaning
/// up. Dropping it unmaps what is provably still ours: everything, unless
/// a failed `MAP_FIXED` lost the target range, in which case only the
/// slack around it.
pub(crate) struct Reservation {
    start: NonNull<c_void>,
    total: usize,
    /// Distance from `start` to the first aligned address.
    skip: usize,
    len: usize,
    guard: usize,
    target: Target,
}

impl Reservation {
    /// Reserves room for an `align`-aligned mapping of `len` bytes
    /// followed by a guard of `guard` bytes: `len + align + guard` bytes of
    /// inaccessible address space. `len` and `guard` must be multiples of
    /// the host page size and `align` a power of two at least that size.
    pub(crate) fn new(len: usize, align: usize, guard: usize) -> Result<Self, Errno> {
        let page = rustix::param::page_size();
        if len == 0
            || len % page != 0
            || guard % page != 0
            || !align.is_power_of_two()
            || align < page
        {
            return Err(Errno::INVAL);
        }
        // The kernel returns a page-aligned start, so the first aligned
        // address is at most `align - page` bytes in: with `align + guard`
        // bytes of slack the mapping and its guard always fit, whatever
        // the guard's size.
        let total = len
            .checked_add(align)
            .and_then(|t| t.checked_add(guard))
            .ok_or(Errno::NOMEM)?;
        // SAFETY: an anonymous PROT_NONE mapping at an address the kernel
        // chooses (no MAP_FIXED) cannot overlap any existing mapping, so
        // nothing that this or any other thread uses is affected.
        let start = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                total,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )?
        };
        let start = NonNull::new(start).ok_or(Errno::NOMEM)?;
        let addr = start.as_ptr() as usize;
        let skip = addr.next_multiple_of(align) - addr;
        debug_assert!(skip + len + guard <= total);
        Ok(Reservation {
            start,
            total,
            skip,
            len,
            guard,
            target: Target::Reserved,
        })
    }

    /// The aligned address where the file is (or will be) mapped.
    pub(super) fn target(&self) -> *mut c_void {
        self.start
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(self.skip)
            .cast()
    }

    /// Maps `len` bytes of `fd` from file offset `offset` (anonymous
    /// memory when `fd` is `None`) at the aligned address (`MAP_FIXED` is
    /// added to `flags`), then trims the reservation to the mapping plus
    /// its guard.
    ///
    /// Probe the same arguments with [`probe_map`] first: the refusals
    /// that are expected (`MAP_SYNC` on a non-DAX file) must never reach a
    /// `MAP_FIXED` call. The failures left (no memory, no free huge pages)
    /// may have unmapped the target range already; it is then taken back
    /// if no other thread was given any of it, and given up otherwise. A
    /// caller that wants to try again takes a new reservation.
    pub(crate) fn map_fixed(
        mut self,
        fd: Option<BorrowedFd<'_>>,
        offset: u64,
        prot: ProtFlags,
        flags: MapFlags,
    ) -> Result<RawRegion, Errno> {
        debug_assert_eq!(self.target, Target::Reserved);
        let target = self.target();
        // SAFETY: [target, target + len) lies inside this reservation
        // (skip + len <= total) and is in state Reserved: every page of it
        // is the PROT_NONE mapping that `new` created for this value alone,
        // and nothing has been mapped over it since. No other thread holds
        // a reference into it or maps there without MAP_FIXED (the kernel
        // never hands out an occupied range), so MAP_FIXED replaces only
        // our own inaccessible pages.
        let mapped =
            unsafe { mmap_from(target, self.len, prot, flags | MapFlags::FIXED, fd, offset) };
        match mapped {
            Ok(got) if got == target => Ok(self.finish()),
            Ok(got) => {
                // Not possible with MAP_FIXED; if a kernel ever did it, the
                // new mapping is ours to remove, and the target is unknown.
                // SAFETY: [got, got + len) is the mapping this call created.
                let _ = unsafe { rustix::mm::munmap(got, self.len) };
                self.target = Target::Lost;
                Err(Errno::NOMEM)
            }
            Err(e) => {
                #[cfg(test)]
                test_hooks::after_failed_fixed(target, self.len);
                self.take_back();
                Err(e)
            }
        }
    }

    /// After a failed `MAP_FIXED`: claims the target range again with a
    /// mapping that fails rather than replace anything. Success proves the
    /// whole range is ours; anything else leaves it [`Target::Lost`].
    fn take_back(&mut self) {
        let target = self.target();
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping: it fails
        // with EEXIST if any page of the range is in use (by our old
        // reservation, if the kernel failed before unmapping it, or by
        // another thread that was given part of the hole).
        let got = unsafe {
            rustix::mm::mmap_anonymous(
                target,
                self.len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::FIXED_NOREPLACE,
            )
        };
        match got {
            Ok(p) if p == target => {}
            Ok(p) => {
                // A kernel before 4.17 treats the flag as a hint and may
                // place the mapping elsewhere: that one is ours to remove.
                // SAFETY: [p, p + len) is the mapping this call created.
                let _ = unsafe { rustix::mm::munmap(p, self.len) };
                self.target = Target::Lost;
            }
            Err(_) => self.target = Target::Lost,
        }
        #[cfg(test)]
        if self.target == Target::Lost {
            test_hooks::target_lost();
        }
    }

    /// Gives back the slack before the mapping and everything after its
    /// guard, and returns the mapped region.
    fn finish(self) -> RawRegion {
        let start = self.start.as_ptr().cast::<u8>();
        let keep = self.len + self.guard;
        let tail = self.total - (self.skip + keep);
        if self.skip > 0 {
            // SAFETY: [start, start + skip) is the part of our PROT_NONE
            // reservation before the target; the MAP_FIXED only touched
            // [target, target + len), so this is still ours alone.
            let _ = unsafe { rustix::mm::munmap(start.cast(), self.skip) };
        }
        if tail > 0 {
            // SAFETY: the range after the mapping and its guard is the end
            // of our reservation (skip + len + guard <= total, see `new`),
            // outside what MAP_FIXED touched: still ours alone.
            let _ =
                unsafe { rustix::mm::munmap(start.wrapping_add(self.skip + keep).cast(), tail) };
        }
        let base = NonNull::new(start.wrapping_add(self.skip)).unwrap_or(NonNull::dangling());
        // SAFETY: [base, base + len) is what the successful MAP_FIXED
        // mapped at the target, followed by `guard` bytes of our reserved
        // PROT_NONE pages; the rest of the reservation was given back
        // above, and `forget` below makes the region their only owner.
        let region = unsafe { RawRegion::from_raw_parts(base, self.len, self.guard) };
        std::mem::forget(self);
        region
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let start = self.start.as_ptr().cast::<u8>();
        match self.target {
            Target::Reserved => {
                // SAFETY: the whole reservation is still our own PROT_NONE
                // mapping (a failed MAP_FIXED was followed by a successful
                // MAP_FIXED_NOREPLACE over exactly the target range), and
                // no references into it exist.
                let _ = unsafe { rustix::mm::munmap(start.cast(), self.total) };
            }
            Target::Lost => {
                let after = self.skip + self.len;
                if self.skip > 0 {
                    // SAFETY: the slack before the target was never part of
                    // a MAP_FIXED call: still our reservation alone.
                    let _ = unsafe { rustix::mm::munmap(start.cast(), self.skip) };
                }
                // SAFETY: the slack after the target (after >= len > 0,
                // total - after >= align > 0) was never part of a MAP_FIXED
                // call either. The target range itself is left alone: part
                // of it may belong to another thread now.
                let _ = unsafe {
                    rustix::mm::munmap(start.wrapping_add(after).cast(), self.total - after)
                };
            }
        }
    }
}
