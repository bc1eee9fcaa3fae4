//! [`HostError`]: what can go wrong while mapping and managing guest RAM.

use std::fmt;

use rustix::io::Errno;

use super::util::{size_to_str, strerror};

/// An error of the host layer. `Display` gives QEMU's text for the same
/// condition where QEMU has one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// Reserving address space or mapping the file failed.
    /// `unable to map backing store for guest RAM: <strerror>`
    Map(Errno),
    /// `sync=on` with a private mapping: refused before any system call.
    MapSyncNeedsShared,
    /// `sync=on` and the kernel or the file refused `MAP_SYNC`.
    MapSyncUnsupported {
        /// The backing file, as `/proc/self/fd/N` names it.
        path: String,
        /// What mmap returned (`EOPNOTSUPP` for a file not on DAX,
        /// `EINVAL` on kernels older than 4.15).
        errno: Errno,
    },
    /// `reserve=off` on a private, writable, non-huge-page mapping while the
    /// host does not allow overcommit. Carries QEMU's explanation.
    NoReserveUnsupported(String),
    /// The requested alignment is not a power of two.
    AlignNotPowerOfTwo(u64),
    /// Preallocation failed (`qemu_prealloc_mem: preallocating memory
    /// failed: <strerror>`).
    Prealloc(Errno),
    /// A [`PreallocControl`](super::PreallocControl) stopped the
    /// preallocation (QEMU cannot).
    PreallocCancelled {
        /// Bytes populated when it stopped.
        done: u64,
        /// Bytes it was to populate.
        total: u64,
    },
    /// `MADV_MERGEABLE` is not available (kernel built without KSM).
    MergeUnsupported,
    /// `MADV_DONTDUMP` is not available.
    DumpUnsupported,
    /// Another madvise failed.
    Madvise {
        /// The advice, e.g. "MADV_REMOVE".
        advice: &'static str,
        /// What madvise returned.
        errno: Errno,
    },
    /// `msync(2)` failed while persisting a range.
    Msync(Errno),
    /// NUMA: nodes given while the policy is `default`.
    NumaNodesWithDefaultPolicy,
    /// NUMA: a policy other than `default` but no nodes.
    NumaNodesMissing(&'static str),
    /// NUMA: a node number of 128 or more.
    NumaInvalidNode(u32),
    /// `mbind(2)` failed.
    Numa(Errno),
    /// The memory size is not a multiple of the page size (QEMU's check
    /// in the generic backend `complete`).
    SizeNotMultiple {
        /// The QOM type name, e.g. `memory-backend-file`.
        type_name: String,
        /// The page size the size must be a multiple of.
        page_size: u64,
    },
    /// An access outside the mapping.
    OutOfRange {
        /// Start of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// Length of the mapping.
        size: usize,
    },
    /// A write to a read-only (ROM) mapping.
    ReadOnly,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Map(e) => write!(
                f,
                "unable to map backing store for guest RAM: {}",
                strerror(*e)
            ),
            HostError::MapSyncNeedsShared => f.write_str(
                "property 'sync' = 'on' is not supported with 'share' = 'off': \
                 MAP_SYNC exists only for shared mappings",
            ),
            HostError::MapSyncUnsupported { path, errno } => write!(
                f,
                "MAP_SYNC was requested (sync=on) but cannot be used for backend file {path}: {}; \
                 MAP_SYNC needs a file on a DAX file system (ext4 or xfs mounted with -o dax \
                 on persistent memory) or a device DAX, and Linux 4.15 or later",
                strerror(*errno)
            ),
            HostError::NoReserveUnsupported(why) => f.write_str(why),
            HostError::AlignNotPowerOfTwo(a) => {
                write!(f, "alignment 0x{a:x} must be a power of two")
            }
            HostError::Prealloc(e) => write!(
                f,
                "qemu_prealloc_mem: preallocating memory failed: {}",
                strerror(*e)
            ),
            HostError::PreallocCancelled { done, total } => write!(
                f,
                "preallocation cancelled after {} of {}",
                size_to_str(*done),
                size_to_str(*total)
            ),
            HostError::MergeUnsupported => {
                f.write_str("Memory merging is not supported on this host")
            }
            HostError::DumpUnsupported => {
                f.write_str("Dumping guest memory cannot be disabled on this host")
            }
            HostError::Madvise { advice, errno } => {
                write!(f, "madvise({advice}) failed: {}", strerror(*errno))
            }
            HostError::Msync(e) => write!(
                f,
                "unable to write guest RAM back to its backing store: {}",
                strerror(*e)
            ),
            HostError::NumaNodesWithDefaultPolicy => f.write_str(
                "host-nodes must be empty for policy default, or you should explicitly \
                 specify a policy other than default",
            ),
            HostError::NumaNodesMissing(p) => write!(f, "host-nodes must be set for policy {p}"),
            HostError::NumaInvalidNode(n) => write!(f, "Invalid host-nodes value: {n}"),
            HostError::Numa(e) => write!(
                f,
                "cannot bind memory to host NUMA nodes: {}",
                strerror(*e)
            ),
            HostError::SizeNotMultiple {
                type_name,
                page_size,
            } => write!(
                f,
                "backend '{type_name}' memory size must be multiple of {}",
                size_to_str(*page_size)
            ),
            HostError::OutOfRange { offset, len, size } => write!(
                f,
                "access of 0x{len:x} bytes at offset 0x{offset:x} is outside guest RAM of 0x{size:x} bytes"
            ),
            HostError::ReadOnly => f.write_str("guest RAM is mapped read-only"),
        }
    }
}

impl std::error::Error for HostError {}

impl HostError {
    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            HostError::Map(e)
            | HostError::Prealloc(e)
            | HostError::Msync(e)
            | HostError::Numa(e)
            | HostError::MapSyncUnsupported { errno: e, .. }
            | HostError::Madvise { errno: e, .. } => Some(*e),
            _ => None,
        }
    }
}
