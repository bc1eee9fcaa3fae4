//! [`Mapping`]: guest RAM mapped from a file descriptor or anonymous
//! memory, and how to ask for it ([`MapRequest`], [`SyncMode`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, MsyncFlags, ProtFlags};

use super::error::HostError;
use super::sys::{self, FlushKind, RawRegion, Reservation};
use super::util::{fd_page_size, fd_path, host_page_size};

/// The smallest alignment of a mapping: 2 MiB, the x86-64 huge page size,
/// so that file systems can use huge pages and populate quickly (QEMU's
/// page-aligned layout makes MADV_POPULATE_WRITE on ext4 ~25x slower).
pub const MIN_MAP_ALIGN: u64 = 2 << 20;

/// Whether to map with `MAP_SYNC`: QAPI's `OnOffAuto`, the very type of
/// the `sync` property of `memory-backend-file`, so that no conversion
/// stands between the property and the mapping.
///
/// - `Off`: never ask for `MAP_SYNC`.
/// - `Auto` (the default): ask for it when the mapping is shared; when the
///   kernel or the file refuses, map without it
///   ([`MapSyncOutcome::Refused`]).
/// - `On`: require it: fail without a system call when the mapping is not
///   shared, and fail when the kernel or the file refuses.
pub type SyncMode = qom::OnOffAuto;

/// What became of `MAP_SYNC` for a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapSyncOutcome {
    /// Not asked for (`sync=off`, or a private mapping under `sync=auto`).
    NotRequested,
    /// The mapping has `MAP_SYNC`.
    InEffect,
    /// `sync=auto` asked for it and mmap refused with this errno
    /// (`EOPNOTSUPP`: not a DAX file; `EINVAL`: kernel older than 4.15);
    /// the mapping is a plain shared one. With `pmem=on` this is where
    /// QEMU prints its "requesting persistence across crashes" warning.
    Refused(Errno),
}

/// How to map guest RAM from a file descriptor ([`MapRequest::new`]) or
/// anonymous memory ([`MapRequest::anonymous`]). Built with one of those
/// and the setter methods, consumed by [`Mapping::new`].
#[derive(Debug)]
pub struct MapRequest {
    /// `None`: anonymous memory.
    fd: Option<OwnedFd>,
    size: u64,
    offset: u64,
    align: u64,
    page_size: Option<usize>,
    shared: bool,
    readonly: bool,
    noreserve: bool,
    sync: SyncMode,
    pmem: bool,
}

impl MapRequest {
    /// Maps `size` bytes of `fd` (rounded up to the page size): private,
    /// writable, reserved, offset 0, alignment 2 MiB, `sync=auto`.
    pub fn new(fd: OwnedFd, size: u64) -> Self {
        Self::with_fd(Some(fd), size)
    }

    /// Maps `size` bytes (rounded up to the host page size) of anonymous
    /// memory, as QEMU allocates `memory-backend-ram` with `share=off`:
    /// zero-filled, no descriptor held, private unless
    /// [`MapRequest::shared`] says otherwise. Same defaults as
    /// [`MapRequest::new`]; [`MapRequest::offset`] must stay 0 and
    /// `MAP_SYNC` is never in effect (the kernel refuses it here).
    pub fn anonymous(size: u64) -> Self {
        Self::with_fd(None, size)
    }

    fn with_fd(fd: Option<OwnedFd>, size: u64) -> Self {
        MapRequest {
            fd,
            size,
            offset: 0,
            align: 0,
            page_size: None,
            shared: false,
            readonly: false,
            noreserve: false,
            sync: SyncMode::Auto,
            pmem: false,
        }
    }

    /// Offset into the file (a multiple of the page size).
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Requested alignment; 0 means the page size. The mapping address is
    /// aligned to max(page size, `align`, 2 MiB).
    pub fn align(mut self, align: u64) -> Self {
        self.align = align;
        self
    }

    /// The page size of the backing file, when the caller already knows it
    /// (otherwise it is found with `fstatfs`).
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// `MAP_SHARED` (true) or `MAP_PRIVATE` copy-on-write (false).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Map without `PROT_WRITE` (ROM).
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// `MAP_NORESERVE` (`reserve=off`).
    pub fn noreserve(mut self, noreserve: bool) -> Self {
        self.noreserve = noreserve;
        self
    }

    /// The `MAP_SYNC` policy.
    pub fn sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }

    /// Remember that the memory is persistent memory (`pmem=on`); this only
    /// sets [`Mapping::pmem`], it does not change how the file is mapped.
    pub fn pmem(mut self, pmem: bool) -> Self {
        self.pmem = pmem;
        self
    }
}

/// Guest RAM mapped from a file or anonymous memory: unmapped, and its
/// file descriptor (if any) closed, on drop.
///
/// The memory is shared and mutable: the guest, other mappings of the same
/// file and the kernel may change it at any time. This type therefore never
/// hands out `&[u8]`/`&mut [u8]` into it; use [`Mapping::read_at`],
/// [`Mapping::write_at`] and [`Mapping::fill`], which copy with volatile
/// accesses, or [`Mapping::as_ptr`] for raw access under your own rules.
/// Note that any access (also these) can raise SIGBUS if the file shrinks
/// behind the mapping or a shared file cannot allocate a block on a fault;
/// [`Mapping::prealloc`] turns the latter into an error up front.
#[derive(Debug)]
pub struct Mapping {
    // Field order matters: the region is unmapped before the fd is closed.
    region: RawRegion,
    fd: Option<OwnedFd>,
    page_size: usize,
    align: usize,
    offset: u64,
    shared: bool,
    readonly: bool,
    noreserve: bool,
    pmem: bool,
    sync: MapSyncOutcome,
}

impl std::fmt::Debug for RawRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawRegion({:p}, {:#x})", self.as_ptr(), self.len())
    }
}

impl Mapping {
    /// Reserves address space and maps the file (or anonymous memory) into
    /// it at an aligned address (QEMU's `qemu_ram_mmap` layout, used for
    /// both: a `PROT_NONE` reservation of length + alignment, the memory
    /// mapped `MAP_FIXED` at the first aligned address, the slack unmapped
    /// except one guard page after the end).
    ///
    /// `MAP_SYNC` follows [`SyncMode`]; with `On` and a private mapping this
    /// fails before any system call.
    ///
    /// Safe among threads: each attempt is first made as a dry run at an
    /// address the kernel picks, so an expected refusal (`MAP_SYNC` on a
    /// file without DAX, no free huge pages) never comes from a `MAP_FIXED`
    /// call, which could have removed the reserved range already and let
    /// another thread's allocation move in (see docs/map-sync.md).
    pub fn new(req: MapRequest) -> Result<Mapping, HostError> {
        if req.sync == SyncMode::On && !req.shared {
            return Err(HostError::MapSyncNeedsShared);
        }
        if req.align != 0 && !req.align.is_power_of_two() {
            return Err(HostError::AlignNotPowerOfTwo(req.align));
        }
        let host_page = host_page_size();
        let fd = req.fd.as_ref().map(|f| f.as_fd());
        let page_size = req
            .page_size
            .unwrap_or_else(|| fd.map_or(host_page, fd_page_size))
            .max(host_page);
        if !page_size.is_power_of_two() {
            return Err(HostError::Map(Errno::INVAL));
        }
        let len = usize::try_from(req.size)
            .ok()
            .filter(|&s| s > 0)
            .ok_or(HostError::Map(Errno::NOMEM))
            .and_then(|s| {
                s.checked_next_multiple_of(page_size)
                    .ok_or(HostError::Map(Errno::NOMEM))
            })?;
        let align = req.align.max(page_size as u64).max(MIN_MAP_ALIGN);
        let align = usize::try_from(align).map_err(|_| HostError::Map(Errno::NOMEM))?;

        if req.noreserve {
            check_noreserve(page_size > host_page, req.readonly, req.shared)?;
        }

        let mut prot = ProtFlags::READ;
        if !req.readonly {
            prot |= ProtFlags::WRITE;
        }
        let mut flags = if req.shared {
            MapFlags::SHARED
        } else {
            MapFlags::PRIVATE
        };
        if req.noreserve {
            flags |= MapFlags::NORESERVE;
        }

        let geometry = Geometry {
            offset: req.offset,
            len,
            align,
            guard: host_page,
            prot,
        };
        let mut sync = MapSyncOutcome::NotRequested;
        let mut region = None;
        if req.shared && req.sync != SyncMode::Off {
            let sync_flags =
                (flags - MapFlags::SHARED) | MapFlags::SHARED_VALIDATE | MapFlags::SYNC;
            match geometry.map(fd, sync_flags) {
                Ok(r) => {
                    region = Some(r);
                    sync = MapSyncOutcome::InEffect;
                }
                Err(e) if req.sync == SyncMode::On => {
                    return Err(if e == Errno::OPNOTSUPP || e == Errno::INVAL {
                        HostError::MapSyncUnsupported {
                            path: fd.map_or_else(|| "anonymous memory".to_owned(), fd_path),
                            errno: e,
                        }
                    } else {
                        HostError::Map(e)
                    });
                }
                // Like QEMU: any refusal leads to a retry without MAP_SYNC.
                Err(e) => sync = MapSyncOutcome::Refused(e),
            }
        }
        let region = match region {
            Some(r) => r,
            None => geometry.map(fd, flags).map_err(HostError::Map)?,
        };
        Ok(Mapping {
            region,
            fd: req.fd,
            page_size,
            align,
            offset: req.offset,
            shared: req.shared,
            readonly: req.readonly,
            noreserve: req.noreserve,
            pmem: req.pmem,
            sync,
        })
    }

    /// Start of guest RAM. Accesses through this pointer must follow the
    /// rules in the type documentation (shared memory; no references).
    pub fn as_ptr(&self) -> *mut u8 {
        self.region.as_ptr()
    }

    /// Length of the mapping in bytes (the requested size rounded up to the
    /// page size).
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Always false: mappings are never empty.
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// The page size of the mapping (the huge page size on hugetlbfs).
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The alignment the mapping address honours (at least 2 MiB).
    pub fn align(&self) -> usize {
        self.align
    }

    /// Offset of the mapping in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The backing file descriptor (closed when the mapping is dropped);
    /// `None` for anonymous memory ([`MapRequest::anonymous`]).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// True for `MAP_SHARED`, false for a private copy-on-write mapping.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// True when mapped without write permission (ROM).
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// True when mapped with `MAP_NORESERVE`.
    pub fn noreserve(&self) -> bool {
        self.noreserve
    }

    /// True when `MAP_SYNC` is in effect.
    pub fn map_sync(&self) -> bool {
        self.sync == MapSyncOutcome::InEffect
    }

    /// What became of `MAP_SYNC`, including the errno of a refusal under
    /// `sync=auto`.
    pub fn map_sync_outcome(&self) -> MapSyncOutcome {
        self.sync
    }

    /// True when the memory was declared persistent memory (`pmem=on`).
    pub fn pmem(&self) -> bool {
        self.pmem
    }

    fn range(&self, offset: usize, len: usize) -> Result<(), HostError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(HostError::OutOfRange {
                offset,
                len,
                size: self.len(),
            }),
        }
    }

    /// Copies guest RAM at `offset` into `buf`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), HostError> {
        self.range(offset, buf.len())?;
        self.region.read_into(offset, buf).map_err(HostError::Map)
    }

    /// Copies `data` into guest RAM at `offset`. Fails on a ROM mapping.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), HostError> {
        self.range(offset, data.len())?;
        if self.readonly {
            return Err(HostError::ReadOnly);
        }
        self.region.write_from(offset, data).map_err(HostError::Map)
    }

    /// Sets `len` bytes of guest RAM at `offset` to `byte`. Fails on a ROM
    /// mapping.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), HostError> {
        self.range(offset, len)?;
        if self.readonly {
            return Err(HostError::ReadOnly);
        }
        self.region.fill(offset, len, byte).map_err(HostError::Map)
    }

    /// Makes writes to `[offset, offset + len)` durable in the backing
    /// file, without libpmem:
    ///
    /// - with `MAP_SYNC` in effect (x86-64), the cache lines of the range
    ///   are written back with `clwb` when the CPU has it, else
    ///   `clflushopt`, else `clflush` (CPUID leaf 7 decides), followed by
    ///   one `sfence`. MAP_SYNC guarantees that the file-system metadata
    ///   for every written page is already durable, so this is all that
    ///   is needed on persistent memory;
    /// - otherwise (or on other architectures), `msync(MS_SYNC)` over the
    ///   page-aligned range, which writes dirty pages back and, on a DAX
    ///   file, flushes the CPU caches in the kernel.
    ///
    /// A private mapping has no durable backing: this does nothing and
    /// returns `Ok`.
    pub fn persist(&self, offset: usize, len: usize) -> Result<(), HostError> {
        self.range(offset, len)?;
        if !self.shared || len == 0 {
            return Ok(());
        }
        if self.map_sync() && sys::flush_kind().0 != FlushKind::None {
            return self
                .region
                .flush_cache_lines(offset, len)
                .map_err(HostError::Msync);
        }
        let page = host_page_size();
        let start = offset - offset % page;
        let end = (offset + len)
            .checked_next_multiple_of(page)
            .unwrap_or(self.len())
            .min(self.len());
        self.region
            .msync(start, end - start, MsyncFlags::SYNC)
            .map_err(HostError::Msync)
    }

    /// `MADV_MERGEABLE` (true) or `MADV_UNMERGEABLE` (false): the `merge`
    /// property. A kernel without KSM gives [`HostError::MergeUnsupported`].
    pub fn set_mergeable(&self, merge: bool) -> Result<(), HostError> {
        let (advice, name) = if merge {
            (Advice::LinuxMergeable, "MADV_MERGEABLE")
        } else {
            (Advice::LinuxUnmergeable, "MADV_UNMERGEABLE")
        };
        match self.region.madvise(0, self.len(), advice) {
            Ok(()) => Ok(()),
            Err(Errno::INVAL) => Err(HostError::MergeUnsupported),
            Err(errno) => Err(HostError::Madvise {
                advice: name,
                errno,
            }),
        }
    }

    /// `MADV_HUGEPAGE` (true) or `MADV_NOHUGEPAGE` (false). QEMU asks for
    /// transparent huge pages on every RAM block it sets up, whatever the
    /// backend; the kernel honours the advice where its THP settings allow
    /// (anonymous memory with `enabled` at `always` or `madvise`, shmem per
    /// `shmem_enabled`) and ignores it elsewhere; QEMU ignores a failure,
    /// and so does the backend's `complete`.
    pub fn set_hugepage(&self, hugepage: bool) -> Result<(), HostError> {
        let (advice, name) = if hugepage {
            (Advice::LinuxHugepage, "MADV_HUGEPAGE")
        } else {
            (Advice::LinuxNoHugepage, "MADV_NOHUGEPAGE")
        };
        self.region
            .madvise(0, self.len(), advice)
            .map_err(|errno| HostError::Madvise {
                advice: name,
                errno,
            })
    }

    /// `MADV_DONTFORK` (false) or `MADV_DOFORK` (true). QEMU keeps guest
    /// RAM out of child processes for every RAM block: a `fork` (of a
    /// helper, say) then neither copies the page tables of guest RAM nor
    /// makes its pages copy-on-write under a running guest.
    pub fn set_fork(&self, inherit: bool) -> Result<(), HostError> {
        let (advice, name) = if inherit {
            (Advice::LinuxDoFork, "MADV_DOFORK")
        } else {
            (Advice::LinuxDontFork, "MADV_DONTFORK")
        };
        self.region
            .madvise(0, self.len(), advice)
            .map_err(|errno| HostError::Madvise {
                advice: name,
                errno,
            })
    }

    /// `MADV_DODUMP` (true) or `MADV_DONTDUMP` (false): the `dump`
    /// property.
    pub fn set_dump(&self, dump: bool) -> Result<(), HostError> {
        let (advice, name) = if dump {
            (Advice::LinuxDoDump, "MADV_DODUMP")
        } else {
            (Advice::LinuxDontDump, "MADV_DONTDUMP")
        };
        match self.region.madvise(0, self.len(), advice) {
            Ok(()) => Ok(()),
            Err(Errno::INVAL) => Err(HostError::DumpUnsupported),
            Err(errno) => Err(HostError::Madvise {
                advice: name,
                errno,
            }),
        }
    }

    /// Drops the contents of guest RAM (`discard-data`): `MADV_REMOVE`,
    /// which frees the file's blocks (or huge pages) behind a shared
    /// mapping without writing anything back; where that advice is refused
    /// (private or read-only mapping, no hole punching), falls back to
    /// `MADV_DONTNEED`, which only drops this process's pages.
    ///
    /// Private anonymous memory goes straight to `MADV_DONTNEED`, as in
    /// QEMU's `ram_block_discard_range`: it frees the pages, and the next
    /// read sees zeroes.
    pub fn discard(&self) -> Result<(), HostError> {
        if self.fd.is_none() && !self.shared {
            return self
                .region
                .madvise(0, self.len(), Advice::LinuxDontNeed)
                .map_err(|errno| HostError::Madvise {
                    advice: "MADV_DONTNEED",
                    errno,
                });
        }
        match self.region.madvise(0, self.len(), Advice::LinuxRemove) {
            Ok(()) => Ok(()),
            Err(e @ (Errno::INVAL | Errno::OPNOTSUPP | Errno::ACCESS)) => self
                .region
                .madvise(0, self.len(), Advice::LinuxDontNeed)
                .map_err(|_| HostError::Madvise {
                    advice: "MADV_REMOVE",
                    errno: e,
                }),
            Err(errno) => Err(HostError::Madvise {
                advice: "MADV_REMOVE",
                errno,
            }),
        }
    }

    pub(crate) fn region(&self) -> &RawRegion {
        &self.region
    }
}

/// Where and how one mapping goes: everything but the source and the
/// flags.
struct Geometry {
    offset: u64,
    len: usize,
    align: usize,
    guard: usize,
    prot: ProtFlags,
}

impl Geometry {
    /// One attempt at mapping with `flags`: a dry run of the whole mapping
    /// at a place the kernel picks, which meets every refusal the real one
    /// would meet (`MAP_SYNC` on a file without DAX, no free huge pages,
    /// overcommit limits, access modes) where a failure cannot unmap
    /// anything; then the real mapping into a fresh reservation.
    ///
    /// The dry run reserves but never populates, so it costs two system
    /// calls whatever the size. A `MAP_FIXED` failure can still happen when
    /// another thread takes memory or huge pages between the two calls; the
    /// reservation then takes its range back or gives it up, and a later
    /// attempt starts from a new reservation.
    fn map(&self, fd: Option<BorrowedFd<'_>>, flags: MapFlags) -> Result<RawRegion, Errno> {
        sys::probe_map(fd, self.offset, self.len, self.prot, flags)?;
        Reservation::new(self.len, self.align, self.guard)?.map_fixed(
            fd,
            self.offset,
            self.prot,
            flags,
        )
    }
}

/// QEMU's `map_noreserve_effective` check: skipping the reservation of
/// swap space only needs care for private, writable, non-huge-page memory,
/// and is impossible when the host forbids overcommit.
fn check_noreserve(huge: bool, readonly: bool, shared: bool) -> Result<(), HostError> {
    if huge || readonly || shared {
        return Ok(());
    }
    const PATH: &str = "/proc/sys/vm/overcommit_memory";
    match std::fs::read_to_string(PATH) {
        Ok(s) if s.trim() == "2" => Err(HostError::NoReserveUnsupported(format!(
            "Skipping reservation of swap space is not supported: \"{PATH}\" is \"2\""
        ))),
        Ok(_) => Ok(()),
        Err(_) => Err(HostError::NoReserveUnsupported(format!(
            "Skipping reservation of swap space is not supported: Could not read: \"{PATH}\""
        ))),
    }
}
