//! Cache write-back for `persist` with `MAP_SYNC`: which instruction this
//! CPU has, and the loop that writes a range's cache lines back.

use rustix::io::Errno;

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
pub(super) fn flush_range(start: *mut u8, len: usize) -> Result<(), Errno> {
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
pub(super) fn flush_range(_start: *mut u8, _len: usize) -> Result<(), Errno> {
    Err(Errno::NOSYS)
}
