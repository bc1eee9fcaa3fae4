//! [`RawRegion`]: a mapped region of guest RAM, accessed only through raw
//! pointers with volatile loads and stores.

use std::ptr::{self, NonNull};

use rustix::io::Errno;
use rustix::mm::{Advice, MsyncFlags};

use super::flush::flush_range;

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
    /// Takes ownership of `len` mapped bytes at `base` followed by `guard`
    /// bytes of `PROT_NONE` pages.
    ///
    /// # Safety
    ///
    /// `[base, base + len + guard)` must be mapped (the first `len` bytes
    /// readable), owned by nobody else, referenced by no Rust reference,
    /// and not unmapped or mapped over by anyone but the returned value,
    /// which unmaps it on drop.
    pub(super) unsafe fn from_raw_parts(base: NonNull<u8>, len: usize, guard: usize) -> Self {
        RawRegion { base, len, guard }
    }

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
    /// and fences (see [`flush_kind`](super::flush_kind)). Returns `Err(NOSYS)` where the
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
