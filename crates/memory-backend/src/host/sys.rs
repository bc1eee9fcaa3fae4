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
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};

use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, MsyncFlags, ProtFlags};

/// Maps `len` bytes of `fd` at a place the kernel chooses and unmaps them
/// again at once: a dry run of a mapping with `prot` and `flags`.
///
/// Every refusal that a file system or the kernel can give for these
/// arguments (`MAP_SYNC` on a file without DAX, a write mapping of a
/// read-only file, a misaligned offset on hugetlbfs, no free huge page...)
/// surfaces here, where a failure cannot unmap anything. Callers probe
/// before they map over their own reservation with `MAP_FIXED`, whose
/// failure may already have removed the reserved pages.
pub(crate) fn probe_map(
    fd: BorrowedFd<'_>,
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
    let got = unsafe { rustix::mm::mmap(ptr::null_mut(), len, prot, flags, fd, offset)? };
    // SAFETY: [got, got + len) is the mapping just created by this call;
    // no other code knows its address, so nothing else can be using it.
    let _ = unsafe { rustix::mm::munmap(got, len) };
    Ok(())
}

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
/// which a file is mapped with `MAP_FIXED` at an aligned address.
///
/// A reservation is used for one attempt: [`Reservation::map_file`]
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
    fn target(&self) -> *mut c_void {
        self.start
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(self.skip)
            .cast()
    }

    /// Maps `len` bytes of `fd` from file offset `offset` at the aligned
    /// address (`MAP_FIXED` is added to `flags`), then trims the
    /// reservation to the mapping plus its guard.
    ///
    /// Probe the same arguments with [`probe_map`] first: the refusals
    /// that are expected (`MAP_SYNC` on a non-DAX file) must never reach a
    /// `MAP_FIXED` call. The failures left (no memory, no free huge pages)
    /// may have unmapped the target range already; it is then taken back
    /// if no other thread was given any of it, and given up otherwise. A
    /// caller that wants to try again takes a new reservation.
    pub(crate) fn map_file(
        mut self,
        fd: BorrowedFd<'_>,
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
        let mapped = unsafe {
            rustix::mm::mmap(target, self.len, prot, flags | MapFlags::FIXED, fd, offset)
        };
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
        let region = RawRegion {
            base,
            len: self.len,
            guard: self.guard,
        };
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

/// Seams that let the unit tests play the other thread in the window
/// between a failed `MAP_FIXED` and the take-back. Empty outside tests.
mod test_hooks {
    use std::ffi::c_void;

    #[cfg(not(test))]
    #[inline(always)]
    pub(super) fn after_failed_fixed(_target: *mut c_void, _len: usize) {}

    #[cfg(not(test))]
    #[inline(always)]
    pub(super) fn target_lost() {}

    #[cfg(test)]
    thread_local! {
        /// How many target ranges this thread gave up.
        pub(super) static LOST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[cfg(test)]
    pub(super) fn target_lost() {
        LOST.with(|n| n.set(n.get() + 1));
    }

    #[cfg(test)]
    thread_local! {
        /// Called with the target range after a failed `MAP_FIXED`.
        pub(super) static AFTER_FAILED_FIXED: std::cell::RefCell<Option<Box<dyn FnMut(*mut c_void, usize)>>> =
            const { std::cell::RefCell::new(None) };
    }

    #[cfg(test)]
    pub(super) fn after_failed_fixed(target: *mut c_void, len: usize) {
        AFTER_FAILED_FIXED.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(target, len)
            }
        });
    }
}

/// A mapped region of `len` bytes followed by a `PROT_NONE` guard page,
/// owned exclusively by this value and unmapped on drop.
pub(crate) struct RawRegion {
    base: NonNull<u8>,
    len: usize,
    guard: usize,
}

// SAFETY: RawRegion only holds the address of memory that stays mapped until
// drop; all accesses are raw volatile accesses that are fine from any thread
// (concurrent writers see each other like any shared memory).
unsafe impl Send for RawRegion {}
// SAFETY: see Send: no method hands out references, so sharing is sound.
unsafe impl Sync for RawRegion {}

impl RawRegion {
    /// Start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Length of the mapping in bytes (without the guard page).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Checks that `[off, off + len)` lies inside the mapping.
    fn check(&self, off: usize, len: usize) -> Result<*mut u8, Errno> {
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.base.as_ptr().wrapping_add(off)),
            _ => Err(Errno::FAULT),
        }
    }

    /// `madvise(2)` on a sub-range of the mapping.
    pub(crate) fn madvise(&self, off: usize, len: usize, advice: Advice) -> Result<(), Errno> {
        let p = self.check(off, len)?;
        // SAFETY: the range is inside our own mapping, which no Rust
        // reference points into; advice such as DONTNEED or REMOVE only
        // changes what later (volatile, raw) reads observe.
        unsafe { rustix::mm::madvise(p.cast(), len, advice) }
    }

    /// `msync(2)` on a sub-range; `off` must be page aligned.
    pub(crate) fn msync(&self, off: usize, len: usize, flags: MsyncFlags) -> Result<(), Errno> {
        let p = self.check(off, len)?;
        // SAFETY: the range is inside our own mapping; msync only writes
        // pages back and does not change memory contents.
        unsafe { rustix::mm::msync(p.cast(), len, flags) }
    }

    /// Copies guest memory at `off` into `dst` with volatile loads.
    pub(crate) fn read_into(&self, off: usize, dst: &mut [u8]) -> Result<(), Errno> {
        let src = self.check(off, dst.len())?;
        let mut i = 0;
        let n = dst.len();
        while i < n {
            let p = src.wrapping_add(i);
            if (p as usize) % 8 == 0 && n - i >= 8 {
                // SAFETY: p is 8-byte aligned and p..p+8 lies inside the
                // mapping (checked above); a volatile load of mapped,
                // readable memory is sound even if others write to it.
                let w = unsafe { ptr::read_volatile(p.cast::<u64>()) };
                dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
                i += 8;
            } else {
                // SAFETY: p lies inside the readable mapping (checked above).
                dst[i] = unsafe { ptr::read_volatile(p) };
                i += 1;
            }
        }
        Ok(())
    }

    /// Copies `src` into guest memory at `off` with volatile stores. The
    /// caller makes sure the mapping is writable.
    pub(crate) fn write_from(&self, off: usize, src: &[u8]) -> Result<(), Errno> {
        let dst = self.check(off, src.len())?;
        let mut i = 0;
        let n = src.len();
        while i < n {
            let p = dst.wrapping_add(i);
            if (p as usize) % 8 == 0 && n - i >= 8 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&src[i..i + 8]);
                // SAFETY: p is aligned, inside the mapping (checked) and the
                // mapping is writable (caller's check); no Rust reference
                // aliases it.
                unsafe { ptr::write_volatile(p.cast::<u64>(), u64::from_ne_bytes(w)) };
                i += 8;
            } else {
                // SAFETY: as above, for one byte.
                unsafe { ptr::write_volatile(p, src[i]) };
                i += 1;
            }
        }
        Ok(())
    }

    /// Sets `len` bytes at `off` to `byte`. The caller makes sure the
    /// mapping is writable.
    pub(crate) fn fill(&self, off: usize, len: usize, byte: u8) -> Result<(), Errno> {
        let dst = self.check(off, len)?;
        let word = u64::from_ne_bytes([byte; 8]);
        let mut i = 0;
        while i < len {
            let p = dst.wrapping_add(i);
            if (p as usize) % 8 == 0 && len - i >= 8 {
                // SAFETY: aligned, inside the writable mapping (checked).
                unsafe { ptr::write_volatile(p.cast::<u64>(), word) };
                i += 8;
            } else {
                // SAFETY: inside the writable mapping (checked).
                unsafe { ptr::write_volatile(p, byte) };
                i += 1;
            }
        }
        Ok(())
    }

    /// Faults in every `step`-sized page of `[off, off + len)` for writing
    /// by reading its first byte and storing the same value back, so the
    /// contents are kept. The caller makes sure the mapping is writable and
    /// that no fault can raise SIGBUS (file large enough, blocks allocated).
    pub(crate) fn touch_pages(&self, off: usize, len: usize, step: usize) -> Result<(), Errno> {
        let start = self.check(off, len)?;
        if step == 0 {
            return Err(Errno::INVAL);
        }
        let mut i = 0;
        while i < len {
            let p = start.wrapping_add(i);
            // SAFETY: p lies inside the writable mapping (checked above);
            // storing back the value just read keeps the data, apart from a
            // concurrent writer's store to this very byte in between, which
            // preallocation (done before the guest runs) does not race with.
            unsafe { ptr::write_volatile(p, ptr::read_volatile(p)) };
            i += step;
        }
        Ok(())
    }

    /// Writes the cache lines covering `[off, off + len)` back to memory
    /// and fences (see [`flush_kind`]). Returns `Err(NOSYS)` where the
    /// architecture has no user-space cache write-back that we support.
    pub(crate) fn flush_cache_lines(&self, off: usize, len: usize) -> Result<(), Errno> {
        let start = self.check(off, len)?;
        flush_range(start, len)
    }

    /// `mbind(2)` of a sub-range: `mode` is an `MPOL_*` value, `nodes` a
    /// node bitmap of `maxnode` bits (as the kernel counts them), `flags`
    /// `MPOL_MF_*`.
    pub(crate) fn mbind(
        &self,
        off: usize,
        len: usize,
        mode: i32,
        nodes: &[u64],
        maxnode: u64,
        flags: u32,
    ) -> Result<(), Errno> {
        let p = self.check(off, len)?;
        if maxnode > (nodes.len() as u64) * 64 + 1 {
            return Err(Errno::INVAL);
        }
        // SAFETY: mbind only changes the NUMA policy of our own range; the
        // node mask pointer is valid for the `maxnode - 1` bits the kernel
        // reads (checked above) and lives across the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                p as usize,
                len,
                mode as libc::c_long,
                nodes.as_ptr(),
                maxnode as libc::c_ulong,
                flags as libc::c_ulong,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            let raw = std::io::Error::last_os_error().raw_os_error();
            Err(Errno::from_raw_os_error(raw.unwrap_or(libc::EINVAL)))
        }
    }
}

impl Drop for RawRegion {
    fn drop(&mut self) {
        // SAFETY: the mapping and its guard are what a successful MAP_FIXED
        // placed into our reservation plus the reserved page after it
        // (`Reservation::finish`); this value alone owns them, nothing
        // maps over them while it lives, and no references into them exist.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len + self.guard) };
    }
}

/// The instruction used to write a cache line back to memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushKind {
    /// `clwb`: writes the line back and may keep it cached (best).
    Clwb,
    /// `clflushopt`: writes back and evicts, weakly ordered.
    Clflushopt,
    /// `clflush`: writes back and evicts, strongly ordered (every x86-64).
    Clflush,
    /// No user-space cache write-back here (non-x86-64): use msync.
    None,
}

/// The best cache write-back instruction this CPU has (CPUID leaf 7:
/// EBX bit 24 = CLWB, bit 23 = CLFLUSHOPT; CLFLUSH is baseline x86-64),
/// and its cache line size (CPUID leaf 1, EBX bits 15:8, times 8).
pub fn flush_kind() -> (FlushKind, usize) {
    static KIND: std::sync::OnceLock<(FlushKind, usize)> = std::sync::OnceLock::new();
    *KIND.get_or_init(detect_flush_kind)
}

#[cfg(target_arch = "x86_64")]
#[allow(unused_unsafe)]
fn detect_flush_kind() -> (FlushKind, usize) {
    use std::arch::x86_64::{__cpuid, __cpuid_count, __get_cpuid_max};
    // SAFETY: CPUID exists on every x86-64 CPU and has no side effects.
    let (max, _) = unsafe { __get_cpuid_max(0) };
    // SAFETY: as above; leaf 1 always exists.
    let leaf1 = unsafe { __cpuid(1) };
    let line = (((leaf1.ebx >> 8) & 0xff) as usize) * 8;
    let line = if line.is_power_of_two() && line >= 16 {
        line
    } else {
        64
    };
    if max >= 7 {
        // SAFETY: leaf 7 exists (max >= 7).
        let leaf7 = unsafe { __cpuid_count(7, 0) };
        if leaf7.ebx & (1 << 24) != 0 {
            return (FlushKind::Clwb, line);
        }
        if leaf7.ebx & (1 << 23) != 0 {
            return (FlushKind::Clflushopt, line);
        }
    }
    (FlushKind::Clflush, line)
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_flush_kind() -> (FlushKind, usize) {
    (FlushKind::None, 64)
}

#[cfg(target_arch = "x86_64")]
fn flush_range(start: *mut u8, len: usize) -> Result<(), Errno> {
    use std::arch::asm;
    let (kind, line) = flush_kind();
    let first = (start as usize) & !(line - 1);
    let end = start as usize + len;
    let mut a = first;
    while a < end {
        let p = a as *const u8;
        // SAFETY: p lies on a cache line that overlaps our mapped range
        // (the line containing a mapped byte is mapped as well: pages are
        // larger than lines); the instruction was detected via CPUID and
        // only writes the line back, it never changes memory contents.
        unsafe {
            match kind {
                FlushKind::Clwb => asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags)),
                FlushKind::Clflushopt => {
                    asm!("clflushopt [{0}]", in(reg) p, options(nostack, preserves_flags))
                }
                _ => asm!("clflush [{0}]", in(reg) p, options(nostack, preserves_flags)),
            }
        }
        a += line;
    }
    // SAFETY: sfence only orders stores and cache write-backs.
    unsafe { asm!("sfence", options(nostack, preserves_flags)) };
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
fn flush_range(_start: *mut u8, _len: usize) -> Result<(), Errno> {
    Err(Errno::NOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{memfd_create, MemfdFlags};
    use std::os::fd::{AsFd, OwnedFd};

    const MIB: usize = 1 << 20;

    fn memfd(len: usize) -> OwnedFd {
        let fd = memfd_create("sys-test", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, len as u64).unwrap();
        fd
    }

    /// The same file opened read-only, so that a shared writable mapping
    /// of it fails (EACCES, before the kernel touches the target range).
    fn read_only(fd: &OwnedFd) -> std::fs::File {
        use std::os::fd::AsRawFd;
        std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    /// Whether `addr` lies inside some mapping of this process.
    fn is_mapped(addr: usize) -> bool {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|r| r.split_once('-'))
            .map(|(a, b)| {
                (
                    usize::from_str_radix(a, 16).unwrap(),
                    usize::from_str_radix(b, 16).unwrap(),
                )
            })
            .any(|(a, b)| a <= addr && addr < b)
    }

    fn set_hook(f: impl FnMut(*mut c_void, usize) + 'static) {
        test_hooks::AFTER_FAILED_FIXED.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }

    fn clear_hook() {
        test_hooks::AFTER_FAILED_FIXED.with(|h| *h.borrow_mut() = None);
    }

    fn lost() -> usize {
        test_hooks::LOST.with(|n| n.get())
    }

    const RW: ProtFlags = ProtFlags::READ.union(ProtFlags::WRITE);

    #[test]
    fn maps_aligned_with_guard_of_any_size() {
        let page = rustix::param::page_size();
        let fd = memfd(4 * MIB);
        for guard in [0, page, 3 * page, 2 * MIB] {
            let resv = Reservation::new(4 * MIB, 2 * MIB, guard).unwrap();
            let region = resv.map_file(fd.as_fd(), 0, RW, MapFlags::SHARED).unwrap();
            assert_eq!(region.as_ptr() as usize % (2 * MIB), 0);
            region.fill(0, 4 * MIB, 7).unwrap();
            let mut b = [0u8; 1];
            region.read_into(4 * MIB - 1, &mut b).unwrap();
            assert_eq!(b[0], 7);
        }
    }

    #[test]
    fn refuses_unaligned_sizes() {
        let page = rustix::param::page_size();
        for (len, align, guard) in [
            (0, 2 * MIB, page),
            (MIB + 1, 2 * MIB, page),
            (MIB, 2 * MIB, page + 1),
            (MIB, 3 * MIB, page),
            (MIB, page / 2, 0),
        ] {
            assert_eq!(
                Reservation::new(len, align, guard).err(),
                Some(Errno::INVAL),
                "{len} {align} {guard}"
            );
        }
    }

    #[test]
    fn probe_reports_refusals_and_leaves_nothing() {
        let fd = memfd(MIB);
        // tmpfs has no DAX: MAP_SYNC is refused.
        let sync = MapFlags::SHARED_VALIDATE | MapFlags::SYNC;
        assert_eq!(
            probe_map(fd.as_fd(), 0, MIB, RW, sync),
            Err(Errno::OPNOTSUPP)
        );
        let ro = read_only(&fd);
        assert_eq!(
            probe_map(ro.as_fd(), 0, MIB, RW, MapFlags::SHARED),
            Err(Errno::ACCESS)
        );
        probe_map(fd.as_fd(), 0, MIB, RW, MapFlags::SHARED).unwrap();
        assert_eq!(
            probe_map(fd.as_fd(), 0, MIB, RW, MapFlags::SHARED | MapFlags::FIXED),
            Err(Errno::INVAL)
        );
    }

    /// The kernel refused before touching the range: our reservation is
    /// still there, but nothing can prove it, so the target is given up
    /// (left mapped) while the slack around it is released.
    #[test]
    fn failure_before_unmap_gives_up_only_the_target() {
        let fd = memfd(2 * MIB);
        let ro = read_only(&fd);
        let before = lost();
        let resv = Reservation::new(2 * MIB, 2 * MIB, rustix::param::page_size()).unwrap();
        let target = resv.target() as usize;
        let err = resv.map_file(ro.as_fd(), 0, RW, MapFlags::SHARED);
        assert_eq!(err.err(), Some(Errno::ACCESS));
        assert_eq!(lost(), before + 1);
        // Given up, not unmapped: whoever owns it now keeps it.
        assert!(is_mapped(target));
        assert!(is_mapped(target + 2 * MIB - 1));
        // SAFETY: the test knows this leaked range is its own reservation.
        let _ = unsafe { rustix::mm::munmap(target as *mut c_void, 2 * MIB) };
    }

    /// The kernel unmapped the range and then failed (ext4 refusing
    /// MAP_SYNC, hugetlbfs out of pages): nobody took the hole, so the
    /// take-back succeeds and the whole reservation is released.
    #[test]
    fn hole_nobody_took_is_taken_back() {
        let fd = memfd(2 * MIB);
        let ro = read_only(&fd);
        set_hook(|target, len| {
            // SAFETY: plays the kernel: the range is our test's reservation.
            unsafe { rustix::mm::munmap(target, len).unwrap() };
        });
        let before = lost();
        let resv = Reservation::new(2 * MIB, 2 * MIB, rustix::param::page_size()).unwrap();
        let err = resv.map_file(ro.as_fd(), 0, RW, MapFlags::SHARED);
        clear_hook();
        assert_eq!(err.err(), Some(Errno::ACCESS));
        assert_eq!(lost(), before);
    }

    /// The kernel unmapped the range and failed, and another thread was
    /// given part of the hole before we could take it back: its memory
    /// must survive our failure and the reservation's drop.
    #[test]
    fn hole_another_thread_took_is_left_alone() {
        let fd = memfd(2 * MIB);
        let ro = read_only(&fd);
        let page = rustix::param::page_size();
        let foreign = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let f = foreign.clone();
        set_hook(move |target, len| {
            // SAFETY: plays the kernel, then the other thread: the range is
            // our test's reservation; the new page lands in the hole only.
            unsafe {
                rustix::mm::munmap(target, len).unwrap();
                let p = rustix::mm::mmap_anonymous(
                    target.cast::<u8>().add(len / 2).cast(),
                    page,
                    RW,
                    MapFlags::PRIVATE | MapFlags::FIXED_NOREPLACE,
                )
                .unwrap();
                ptr::write_volatile(p.cast::<u64>(), 0x5eed_cafe);
                f.set(p as usize);
            }
        });
        let before = lost();
        let resv = Reservation::new(2 * MIB, 2 * MIB, page).unwrap();
        let err = resv.map_file(ro.as_fd(), 0, RW, MapFlags::SHARED);
        clear_hook();
        assert_eq!(err.err(), Some(Errno::ACCESS));
        assert_eq!(lost(), before + 1);
        let p = foreign.get() as *mut u64;
        // SAFETY: the foreign page is still mapped (reading it would
        // fault otherwise, failing the test) and holds what was written.
        assert_eq!(unsafe { ptr::read_volatile(p) }, 0x5eed_cafe);
        // SAFETY: the test's own page.
        unsafe { rustix::mm::munmap(p.cast(), page).unwrap() };
    }

    /// An expected refusal (MAP_SYNC on a file without DAX) is met by the
    /// dry run, never by a MAP_FIXED that could open a hole; this holds on
    /// every file system, so tmpfs shows it as well as ext4 would.
    #[test]
    fn map_sync_refusal_never_reaches_map_fixed() {
        use crate::host::{HostError, MapRequest, MapSyncOutcome, Mapping, SyncMode};
        let failed = std::rc::Rc::new(std::cell::Cell::new(0));
        let f = failed.clone();
        set_hook(move |_, _| f.set(f.get() + 1));
        let auto = Mapping::new(MapRequest::new(memfd(4 * MIB), 4 << 20).shared(true));
        let on = Mapping::new(
            MapRequest::new(memfd(4 * MIB), 4 << 20)
                .shared(true)
                .sync(SyncMode::On),
        );
        clear_hook();
        assert_eq!(
            auto.unwrap().map_sync_outcome(),
            MapSyncOutcome::Refused(Errno::OPNOTSUPP)
        );
        assert!(matches!(
            on.unwrap_err(),
            HostError::MapSyncUnsupported {
                errno: Errno::OPNOTSUPP,
                ..
            }
        ));
        assert_eq!(failed.get(), 0, "a MAP_FIXED call failed");
    }
}
