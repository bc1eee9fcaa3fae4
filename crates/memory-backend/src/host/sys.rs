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

/// Address space reserved with an anonymous `PROT_NONE` mapping, inside
/// which a file is mapped with `MAP_FIXED` at an aligned address.
///
/// Dropping a reservation unmaps all of it, including a file mapping placed
/// inside it; [`Reservation::finish`] trims it to the mapping plus one guard
/// page instead.
pub(crate) struct Reservation {
    start: NonNull<c_void>,
    total: usize,
    /// Distance from `start` to the first aligned address.
    skip: usize,
    len: usize,
    guard: usize,
}

impl Reservation {
    /// Reserves `len + align` bytes of inaccessible address space, enough
    /// for an `align`-aligned mapping of `len` bytes followed by a guard
    /// page of `guard` bytes. `align` must be a power of two, at least
    /// `guard`, and `guard` a multiple of the host page size.
    pub(crate) fn new(len: usize, align: usize, guard: usize) -> Result<Self, Errno> {
        if len == 0 || !align.is_power_of_two() || align < guard {
            return Err(Errno::INVAL);
        }
        let total = len.checked_add(align).ok_or(Errno::NOMEM)?;
        // SAFETY: an anonymous PROT_NONE mapping at an address the kernel
        // chooses cannot overlap any existing mapping, so nothing that Rust
        // code relies on is affected.
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
        Ok(Reservation {
            start,
            total,
            skip,
            len,
            guard,
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
    /// address with `MAP_FIXED` added to `flags`. May be called again
    /// after a failure (QEMU's retry without `MAP_SYNC`).
    pub(crate) fn map_file(
        &mut self,
        fd: BorrowedFd<'_>,
        offset: u64,
        prot: ProtFlags,
        flags: MapFlags,
    ) -> Result<(), Errno> {
        // SAFETY: the target range [target, target + len) lies inside our
        // own reservation (skip < align, total = len + align), which holds
        // no Rust objects; MAP_FIXED only replaces pages of that
        // reservation. On kernels that leave the range unmapped after a
        // failed MAP_FIXED, the caller either retries at the same address
        // or drops the reservation, as QEMU does.
        let got = unsafe {
            rustix::mm::mmap(
                self.target(),
                self.len,
                prot,
                flags | MapFlags::FIXED,
                fd,
                offset,
            )?
        };
        if got != self.target() {
            return Err(Errno::NOMEM);
        }
        Ok(())
    }

    /// Gives back the slack before the mapping and everything after its
    /// guard page, and returns the mapped region.
    pub(crate) fn finish(self) -> RawRegion {
        let start = self.start.as_ptr().cast::<u8>();
        let keep = self.len + self.guard;
        let tail = self.total.saturating_sub(self.skip + keep);
        if self.skip > 0 {
            // SAFETY: [start, start + skip) is reserved PROT_NONE space of
            // ours before the mapping; nothing else lives there.
            let _ = unsafe { rustix::mm::munmap(start.cast(), self.skip) };
        }
        if tail > 0 {
            // SAFETY: the tail after the mapping and its guard page is the
            // rest of our PROT_NONE reservation (total = len + align, and
            // skip + len + guard <= total because guard <= align - skip
            // whenever skip > 0, while skip == 0 leaves align >= guard).
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
        // SAFETY: the whole reservation (and any file mapping placed into it)
        // belongs to this value, and no references into it exist.
        let _ = unsafe { rustix::mm::munmap(self.start.as_ptr(), self.total) };
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
        // SAFETY: the mapping and its guard page belong to this value alone
        // and no references into them exist; after drop nobody uses them.
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
