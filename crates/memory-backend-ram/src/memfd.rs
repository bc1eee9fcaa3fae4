//! `memory-backend-memfd`: guest RAM in a memfd, optionally on huge pages
//! and sealed against resizing.
//!
//! | property | QOM type | default | after creation |
//! |---|---|---|---|
//! | `share` (inherited) | `bool` | **true** (the base type says false) | `cannot change property value` |
//! | `hugetlb` | `bool` | false | can be written; no effect |
//! | `hugetlbsize` | `int` | 0 (the default huge page size) | `cannot change property value` |
//! | `seal` | `bool` | true | can be written; no effect |
//!
//! Creation follows QEMU's `qemu_memfd_create`: `memfd_create` named
//! `memory-backend-memfd` with `MFD_CLOEXEC`, plus `MFD_ALLOW_SEALING` when
//! `seal` is on and `MFD_HUGETLB` with the page size encoded in the flags
//! when `hugetlb` is on; `ftruncate` to `size`; then `F_SEAL_GROW |
//! F_SEAL_SHRINK | F_SEAL_SEAL` when `seal` is on. Each failure has
//! QEMU's message.

use memory_backend::{HostMemory, MemoryBackend, MemoryBackendImpl};
use qom::{Error, LockStyle, Object, ObjectRef, Result, Size};
use rustix::fs::{fcntl_add_seals, ftruncate, memfd_create, MemfdFlags, SealFlags};

use crate::common::{base, errno_error, map_fd};

/// The QOM type name.
pub const TYPE_MEMORY_BACKEND_MEMFD: &str = <MemfdState as qom::StaticType>::TYPE_NAME;

/// The seals a `seal=on` backend gets: no growing, no shrinking, no more
/// seals.
pub const MEMFD_SEALS: SealFlags = SealFlags::GROW
    .union(SealFlags::SHRINK)
    .union(SealFlags::SEAL);

/// Where `memfd_create` expects log2 of the huge page size (`MFD_HUGE_SHIFT`).
const MFD_HUGE_SHIFT: u32 = 26;

/// The `memory-backend-memfd` level of an object's state, and the type.
#[derive(Debug, qom::Object)]
#[qom(name = "memory-backend-memfd", parent = MemoryBackend)]
pub(crate) struct MemfdState {
    #[property(description = "Use huge pages")]
    hugetlb: bool,
    #[property(
        set = set_hugetlbsize,
        locked = LockStyle::Value,
        lock_checked_first,
        description = "Huge pages size (ex: 2M, 1G)"
    )]
    hugetlbsize: Size,
    #[property(description = "Seal growing & shrinking")]
    seal: bool,
}

// `seal` starts on, but QEMU declares no default for it: introspection
// shows none, so it is set here rather than with `default = true`.
impl Default for MemfdState {
    fn default() -> Self {
        MemfdState {
            hugetlb: false,
            hugetlbsize: Size(0),
            seal: true,
        }
    }
}

impl qom::ObjectImpl for MemfdState {
    fn instance_init(obj: &mut ObjectRef<'_, Self>) {
        crate::share_by_default(obj.object());
    }
}

impl MemoryBackendImpl for MemfdState {
    fn alloc(obj: &mut ObjectRef<'_, Self>) -> Result<Box<dyn HostMemory>> {
        let (hugetlb, hugetlbsize, seal) = {
            let m = obj.state();
            (m.hugetlb, m.hugetlbsize.0, m.seal)
        };
        alloc(obj.object(), hugetlb, hugetlbsize, seal)
    }
}

/// The `memfd_create` flags for the given properties, or QEMU's error for
/// a huge page size that is not a power of two (checked even when
/// `hugetlb` is off, as QEMU does).
pub fn memfd_flags(hugetlb: bool, hugetlbsize: u64, seal: bool) -> Result<MemfdFlags> {
    let shift = if hugetlbsize == 0 {
        0
    } else {
        hugetlbsize.trailing_zeros()
    };
    if shift != 0 && 1u64 << shift != hugetlbsize {
        return Err(Error::generic("Hugepage size must be a power of 2"));
    }
    let mut flags = MemfdFlags::CLOEXEC;
    if seal {
        flags |= MemfdFlags::ALLOW_SEALING;
    }
    if hugetlb {
        flags |= MemfdFlags::HUGETLB | MemfdFlags::from_bits_retain(shift << MFD_HUGE_SHIFT);
    }
    Ok(flags)
}

fn alloc(obj: &Object, hugetlb: bool, hugetlbsize: u64, seal: bool) -> Result<Box<dyn HostMemory>> {
    let s = base(obj, "backend")?;
    let flags = memfd_flags(hugetlb, hugetlbsize, seal)?;
    let fd = memfd_create(TYPE_MEMORY_BACKEND_MEMFD, flags).map_err(|e| {
        errno_error(
            format_args!("failed to create memfd with flags {:#x}", flags.bits()),
            e,
        )
    })?;
    ftruncate(&fd, s.size)
        .map_err(|e| errno_error(format_args!("failed to resize memfd to {}", s.size), e))?;
    if seal {
        fcntl_add_seals(&fd, MEMFD_SEALS).map_err(|e| {
            errno_error(
                format_args!("failed to add seals {:#x}", MEMFD_SEALS.bits()),
                e,
            )
        })?;
    }
    map_fd(obj, fd, &s, s.share)
}

fn set_hugetlbsize(obj: &mut ObjectRef<'_, MemfdState>, v: Size) -> Result<()> {
    if v.0 == 0 {
        // QEMU's own wording here, not the base type's for `size`.
        return Err(Error::generic(format!(
            "Property '{}.hugetlbsize' doesn't take value '0'",
            obj.type_name()
        )));
    }
    obj.state().hugetlbsize = v;
    Ok(())
}
