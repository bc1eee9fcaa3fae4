//! An NVDIMM's label area: a byte range inside a backend's guest RAM that
//! an embedder reads, writes and makes durable the way the backend is
//! mapped.
//!
//! QEMU keeps an nvdimm's namespace labels in the last `label-size` bytes
//! of its memory backend; the guest sees the rest, rounded down to the
//! region's alignment, as persistent memory. [`nvdimm_layout`] computes
//! that split with QEMU's checks and messages, [`LabelArea::at_end`]
//! builds the area from a created backend, and [`LabelArea::new`] takes
//! any range of a mapping a device already holds.
//!
//! How a write becomes durable depends on the mapping ([`Durability`]):
//! with `MAP_SYNC` in effect, writing the range's cache lines back and one
//! store fence is enough; any other shared mapping needs
//! `msync(MS_SYNC)` of the pages covering the range; a private mapping
//! (`share=off`) never reaches the file, so [`LabelArea::write_persistent`]
//! and [`LabelArea::persist`] refuse it with [`LabelError::NotDurable`]
//! rather than report a durability that does not exist. Plain
//! [`LabelArea::write`] works on every writable mapping (QEMU's own label
//! writes succeed with `share=off` too; they are lost at exit).
//!
//! ```
//! use memory_backend::label::{Durability, LabelArea, LabelError, MIN_LABEL_SIZE};
//! # use std::sync::Arc;
//! # use memory_backend::host::{MapRequest, Mapping};
//! # use memory_backend::{host_error, settings, HostMemory, MemoryBackendClass};
//! # use qom::{ObjectTree, TypeInfo, TypeRegistry};
//! # fn alloc(obj: &qom::Object) -> qom::Result<Box<dyn HostMemory>> {
//! #     let s = settings(obj).expect("a memory backend");
//! #     let p = format!("/dev/shm/mb-label-doc-{}", std::process::id());
//! #     let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p)
//! #         .map_err(|e| qom::Error::generic(e.to_string()))?;
//! #     std::fs::remove_file(&p).map_err(|e| qom::Error::generic(e.to_string()))?;
//! #     f.set_len(s.size).map_err(|e| qom::Error::generic(e.to_string()))?;
//! #     let req = MapRequest::new(f.into(), s.size).shared(s.share);
//! #     Ok(Box::new(Mapping::new(req).map_err(host_error)?))
//! # }
//! # let types = TypeRegistry::with_builtins();
//! # memory_backend::register(&types)?;
//! # types.register(TypeInfo::new("memory-backend-shm-demo").parent("memory-backend")
//! #     .class_init(|c| { c.data_mut::<MemoryBackendClass>().alloc = Some(Arc::new(alloc)); Ok(()) }))?;
//! # let tree = ObjectTree::new(types)?;
//! // A 4 MiB shared backend "nv0" (any memory backend type works).
//! # let args = serde_json::json!({"qom-type": "memory-backend-shm-demo", "id": "nv0",
//! #                               "size": 4 << 20, "share": true});
//! # tree.object_add_args(args.as_object().unwrap())?;
//! let backend = tree.object("nv0").unwrap();
//!
//! let labels = LabelArea::at_end(&backend, MIN_LABEL_SIZE)?;
//! assert_eq!(labels.offset(), (4 << 20) - (128 << 10)); // the last 128 KiB
//! assert_eq!(labels.len(), 128 << 10);
//! assert_eq!(labels.durability(), Durability::Msync);   // shared, no MAP_SYNC
//!
//! labels.write_persistent(0, b"NAMESPACE_INDEX")?;       // written, then msync
//! let mut back = [0u8; 15];
//! labels.read(0, &mut back)?;
//! assert_eq!(&back, b"NAMESPACE_INDEX");
//!
//! // Bounds are checked against the label area, not the whole backend.
//! assert!(matches!(labels.write(labels.len() - 1, b"xy"), Err(LabelError::OutOfRange { .. })));
//! // QEMU's minimum, with its message.
//! assert_eq!(LabelArea::at_end(&backend, 0x1000).unwrap_err().to_string(),
//!            "Property 'nvdimm.label-size' (0x1000) is required at least 0x20000");
//!
//! // The area holds the backend in use until it is dropped.
//! assert!(tree.object_del("nv0").is_err());
//! drop(labels);
//! tree.object_del("nv0")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::ops::{Bound, RangeBounds};

use qom::Object;

use crate::backend::{map, settings, MappedMemory};
use crate::host::{flush_kind, FlushKind, HostError};

/// The smallest label area QEMU accepts (`MIN_NAMESPACE_LABEL_SIZE`,
/// 128 KiB): room for the two namespace index blocks and a few labels.
pub const MIN_LABEL_SIZE: u64 = 0x20000;

/// The alignment QEMU gives anonymous guest RAM (`QEMU_VMALLOC_ALIGN` on
/// x86-64 and arm64 Linux), which is the region alignment of
/// `memory-backend-ram`.
const ANON_REGION_ALIGN: u64 = 2 << 20;

/// How an nvdimm splits its backend: the guest's persistent memory first,
/// the label area at the very end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvdimmLayout {
    /// Where the label area starts in the backend: `size - label_size`
    /// (not rounded: QEMU puts the labels in the exact last bytes).
    pub label_offset: u64,
    /// Length of the label area.
    pub label_size: u64,
    /// The memory the guest sees: `size - label_size` rounded down to the
    /// region alignment (the nvdimm's `size` property).
    pub pmem_size: u64,
}

/// QEMU's split of a backend of `size` bytes with region alignment
/// `align` (a power of two) into persistent memory and a label area of
/// `label_size` bytes, with its two refusals: a label area below
/// [`MIN_LABEL_SIZE`] ([`LabelError::LabelSizeTooSmall`]) and a backend
/// that leaves no aligned memory beside the labels
/// ([`LabelError::BackendTooSmall`], naming the backend `memdev`).
pub fn nvdimm_layout(
    memdev: &str,
    size: u64,
    align: u64,
    label_size: u64,
) -> Result<NvdimmLayout, LabelError> {
    if label_size < MIN_LABEL_SIZE {
        return Err(LabelError::LabelSizeTooSmall { label_size });
    }
    let rest = size.saturating_sub(label_size);
    let pmem_size = if align == 0 {
        rest
    } else {
        rest - rest % align
    };
    if size <= label_size || pmem_size == 0 {
        return Err(LabelError::BackendTooSmall {
            memdev: memdev.to_owned(),
            size,
            label_size,
            align,
        });
    }
    Ok(NvdimmLayout {
        label_offset: size - label_size,
        label_size,
        pmem_size,
    })
}

/// The region alignment QEMU would give `backend`'s memory: the page size
/// of the backing file, raised to the `align` property where the type has
/// one (`memory-backend-file`); 2 MiB for anonymous `memory-backend-ram`.
pub fn region_align(backend: &Object, memory: &MappedMemory) -> u64 {
    if backend.is_a("memory-backend-ram") {
        return ANON_REGION_ALIGN;
    }
    let page = memory.page_size() as u64;
    let align = backend
        .property("align")
        .and_then(|_| backend.get("align").ok())
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    page.max(align)
}

/// What [`LabelArea::persist`] does to make written bytes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `MAP_SYNC` is in effect: the range's cache lines are written back
    /// with this instruction, then one `sfence`. No system call.
    CacheLineWriteBack(FlushKind),
    /// A shared mapping without `MAP_SYNC` (or no user-space cache
    /// write-back on this CPU): `msync(MS_SYNC)` of the covering pages.
    Msync,
    /// A private mapping (`share=off`): writes never reach the backing
    /// file, nothing can make them durable.
    None,
}

impl Durability {
    /// Whether written bytes can be made durable at all.
    pub fn is_durable(self) -> bool {
        self != Durability::None
    }
}

/// An error of [`LabelArea`] or [`nvdimm_layout`]. `Display` gives QEMU's
/// text where QEMU has one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LabelError {
    /// `label-size` below [`MIN_LABEL_SIZE`] (QEMU's nvdimm property check).
    LabelSizeTooSmall {
        /// The requested label size.
        label_size: u64,
    },
    /// The backend cannot hold the label area and at least one aligned
    /// block of persistent memory (QEMU's nvdimm realize check).
    BackendTooSmall {
        /// The backend's id.
        memdev: String,
        /// The backend's size.
        size: u64,
        /// The requested label size.
        label_size: u64,
        /// The region alignment.
        align: u64,
    },
    /// [`LabelArea::new`] was given a range that leaves the mapping.
    OutsideMapping {
        /// Start of the requested area in the mapping.
        offset: usize,
        /// Its length.
        len: usize,
        /// The mapping's length.
        mapping_len: usize,
    },
    /// A read, write or persist that leaves the label area.
    OutOfRange {
        /// Start of the access inside the label area.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// The label area's length.
        label_len: usize,
    },
    /// [`LabelArea::persist`] was given a range that ends before it starts.
    InvertedRange {
        /// The range's start.
        start: usize,
        /// The range's end (exclusive).
        end: usize,
    },
    /// `write_persistent` or `persist` on a private mapping
    /// (`share=off`): nothing was written.
    NotDurable,
    /// The backend could not be taken for use (not a memory backend, or
    /// not created yet).
    Backend(qom::Error),
    /// The mapping refused the access (read-only mapping) or persisting
    /// failed (`msync`).
    Host(HostError),
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::LabelSizeTooSmall { label_size } => write!(
                f,
                "Property 'nvdimm.label-size' (0x{label_size:x}) is required at least 0x{MIN_LABEL_SIZE:x}"
            ),
            LabelError::BackendTooSmall {
                memdev,
                size,
                label_size,
                align,
            } => write!(
                f,
                "the size of memdev {memdev} (0x{size:x}) is too small to contain nvdimm label \
                 (0x{label_size:x}) and aligned PMEM (0x{align:x})"
            ),
            LabelError::OutsideMapping {
                offset,
                len,
                mapping_len,
            } => write!(
                f,
                "label area of 0x{len:x} bytes at offset 0x{offset:x} does not fit in guest RAM \
                 of 0x{mapping_len:x} bytes"
            ),
            LabelError::OutOfRange {
                offset,
                len,
                label_len,
            } => write!(
                f,
                "label access of 0x{len:x} bytes at offset 0x{offset:x} is outside the label \
                 area of 0x{label_len:x} bytes"
            ),
            LabelError::InvertedRange { start, end } => write!(
                f,
                "invalid label range 0x{start:x}..0x{end:x}: it ends before it starts"
            ),
            LabelError::NotDurable => f.write_str(
                "the label area cannot be made durable: its memory backend is a private \
                 mapping (share=off)",
            ),
            LabelError::Backend(e) => e.fmt(f),
            LabelError::Host(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LabelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabelError::Backend(e) => Some(e),
            LabelError::Host(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HostError> for LabelError {
    fn from(e: HostError) -> Self {
        LabelError::Host(e)
    }
}

/// The object model's view of a [`LabelError`]: its text, class
/// GenericError, the `LabelError` as `source()`.
impl From<LabelError> for qom::Error {
    fn from(e: LabelError) -> Self {
        match e {
            LabelError::Backend(e) => e,
            other => qom::Error::with_cause(other),
        }
    }
}

/// A byte range of a backend's guest RAM used as an nvdimm label area.
/// It holds the backend in use ([`MappedMemory`]): `object-del` of the
/// backend is refused while the area exists.
///
/// Offsets given to its methods count from the start of the area. Every
/// access is bounds-checked and copies with the mapping's volatile
/// accessors, so concurrent use from several threads is memory-safe (the
/// bytes of overlapping concurrent writes are unspecified, as for the
/// guest's own stores).
#[derive(Debug)]
pub struct LabelArea {
    memory: MappedMemory,
    offset: usize,
    len: usize,
}

impl LabelArea {
    /// The label area at `offset..offset + len` of `memory`.
    pub fn new(memory: MappedMemory, offset: usize, len: usize) -> Result<Self, LabelError> {
        match offset.checked_add(len) {
            Some(end) if end <= memory.len() => Ok(LabelArea {
                memory,
                offset,
                len,
            }),
            _ => Err(LabelError::OutsideMapping {
                offset,
                len,
                mapping_len: memory.len(),
            }),
        }
    }

    /// The label area QEMU's nvdimm uses with `label-size` = `label_size`
    /// on `backend`: its last `label_size` bytes, after the checks of
    /// [`nvdimm_layout`] (with the backend's `size` and
    /// [`region_align`]). Marks the backend in use.
    pub fn at_end(backend: &Object, label_size: u64) -> Result<Self, LabelError> {
        // QEMU checks the property before it looks at the backend.
        if label_size < MIN_LABEL_SIZE {
            return Err(LabelError::LabelSizeTooSmall { label_size });
        }
        let memory = map(backend).map_err(LabelError::Backend)?;
        let size = settings(backend).map_or(memory.len() as u64, |s| s.size);
        let align = region_align(backend, &memory);
        let memdev = backend.name().unwrap_or_default();
        let layout = nvdimm_layout(&memdev, size, align, label_size)?;
        let too_big = || LabelError::OutsideMapping {
            offset: usize::MAX,
            len: usize::MAX,
            mapping_len: memory.len(),
        };
        let offset = usize::try_from(layout.label_offset).map_err(|_| too_big())?;
        let len = usize::try_from(layout.label_size).map_err(|_| too_big())?;
        LabelArea::new(memory, offset, len)
    }

    /// Length of the label area in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the area is empty (only possible through [`LabelArea::new`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the area starts in the backend's guest RAM.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The backend memory the area lies in.
    pub fn memory(&self) -> &MappedMemory {
        &self.memory
    }

    /// How [`persist`](Self::persist) makes bytes durable on this mapping.
    pub fn durability(&self) -> Durability {
        if !self.memory.shared() {
            Durability::None
        } else if self.memory.map_sync() && flush_kind().0 != FlushKind::None {
            Durability::CacheLineWriteBack(flush_kind().0)
        } else {
            Durability::Msync
        }
    }

    /// `offset..offset + len` of the area as a range of the mapping.
    fn locate(&self, offset: usize, len: usize) -> Result<usize, LabelError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.offset + offset),
            _ => Err(LabelError::OutOfRange {
                offset,
                len,
                label_len: self.len,
            }),
        }
    }

    /// Copies `buf.len()` bytes at `offset` of the area into `buf`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), LabelError> {
        let at = self.locate(offset, buf.len())?;
        Ok(self.memory.read_at(at, buf)?)
    }

    /// Copies `data` to `offset` of the area. Not durable by itself: see
    /// [`persist`](Self::persist). Fails on a read-only mapping.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), LabelError> {
        let at = self.locate(offset, data.len())?;
        Ok(self.memory.write_at(at, data)?)
    }

    /// Writes `data` at `offset` and makes it durable before returning.
    /// Refused before anything is written when the access leaves the area
    /// or the mapping is private ([`LabelError::NotDurable`]).
    pub fn write_persistent(&self, offset: usize, data: &[u8]) -> Result<(), LabelError> {
        let at = self.locate(offset, data.len())?;
        if !self.durability().is_durable() {
            return Err(LabelError::NotDurable);
        }
        self.memory.write_at(at, data)?;
        Ok(self.memory.persist(at, data.len())?)
    }

    /// Makes earlier writes to `range` of the area durable, as
    /// [`durability`](Self::durability) says (`..` is the whole area).
    /// Fails with [`LabelError::NotDurable`] on a private mapping.
    pub fn persist(&self, range: impl RangeBounds<usize>) -> Result<(), LabelError> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => self.len,
        };
        let len = end
            .checked_sub(start)
            .ok_or(LabelError::InvertedRange { start, end })?;
        let at = self.locate(start, len)?;
        if !self.durability().is_durable() {
            return Err(LabelError::NotDurable);
        }
        Ok(self.memory.persist(at, len)?)
    }
}
