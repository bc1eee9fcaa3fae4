//! What can go wrong building guest memory from backends, and exporting
//! it to another process.

/// Why [`BackendGuestMemory`](crate::BackendGuestMemory) could not be
/// built. Nothing stays marked in use after one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The layout names no backend: a guest needs some memory.
    #[error("no memory backend placed in guest memory")]
    Empty,
    /// No object has that id (QEMU's `-machine memory-backend=` wording).
    #[error("Memory backend '{id}' not found")]
    NotFound {
        /// The id looked up.
        id: String,
    },
    /// No region starts at that guest address (hot-unplug).
    #[error("no memory backend starts at guest address {addr:#x}")]
    NoRegion {
        /// The address given.
        addr: u64,
    },
    /// The object is not a created memory backend, or could not be mapped.
    #[error("{0}")]
    Backend(#[from] qom::Error),
    /// Another user maps the backend already (QEMU's wording when a
    /// memdev is given to a second device or node).
    #[error("can't use already busy memdev: {id}")]
    Busy {
        /// The backend's id.
        id: String,
    },
    /// The same backend is placed twice in one layout.
    #[error("memory backend '{id}' is placed twice, at {first:#x} and {second:#x}")]
    Duplicate {
        /// The backend's id.
        id: String,
        /// Its first guest address.
        first: u64,
        /// Its second guest address.
        second: u64,
    },
    /// A guest address is not a multiple of the backend's page size (KVM
    /// and huge pages need it).
    #[error("guest address {addr:#x} of memory backend '{id}' is not a multiple of its page size {page_size:#x}")]
    Misaligned {
        /// The backend's id.
        id: String,
        /// The guest address asked for.
        addr: u64,
        /// The backend's page size.
        page_size: usize,
    },
    /// The region would end past the top of the guest address space.
    #[error(
        "memory backend '{id}' at {addr:#x} ({size:#x} bytes) ends beyond the guest address space"
    )]
    Overflow {
        /// The backend's id.
        id: String,
        /// The guest address asked for.
        addr: u64,
        /// The backend's mapped size.
        size: u64,
    },
    /// Two backends cover some of the same guest addresses.
    #[error("memory backend '{second}' at [{second_start:#x}, {second_end:#x}] overlaps '{first}' at [{first_start:#x}, {first_end:#x}]")]
    Overlap {
        /// The backend with the lower start address.
        first: String,
        /// Its first guest address.
        first_start: u64,
        /// Its last guest address (inclusive).
        first_end: u64,
        /// The other backend.
        second: String,
        /// Its first guest address.
        second_start: u64,
        /// Its last guest address (inclusive).
        second_end: u64,
    },
    /// Duplicating the backend's file descriptor for vm-memory's
    /// `FileOffset` failed (out of descriptors, typically).
    #[error("cannot duplicate the file descriptor of memory backend '{id}': {source}")]
    Dup {
        /// The backend's id.
        id: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// vm-memory refused to wrap the mapping.
    #[error("memory backend '{id}': {source}")]
    Wrap {
        /// The backend's id.
        id: String,
        /// vm-memory's error.
        source: vm_memory::mmap::MmapRegionError,
    },
}

/// Why guest memory cannot be handed to another process (a vhost-user
/// back end).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A `share=off` backend is a private copy-on-write mapping: what the
    /// guest writes there is invisible to any other mapping of its file.
    #[error("memory backend '{id}' has share=off: its guest memory cannot be shared with another process (use share=on)")]
    NotShared {
        /// The backend's id.
        id: String,
    },
    /// The backend's memory has no file descriptor to pass (anonymous
    /// memory).
    #[error("memory backend '{id}' has no file descriptor: its guest memory cannot be shared with another process")]
    NoFd {
        /// The backend's id.
        id: String,
    },
}
