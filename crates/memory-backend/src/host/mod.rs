//! The host side of guest RAM: mapping a file descriptor at an aligned
//! address, MAP_SYNC, madvise, NUMA binding, preallocation and persistence.
//!
//! [`Mapping::new`] takes a [`MapRequest`] and gives an RAII [`Mapping`];
//! errors are [`HostError`]s whose texts follow QEMU's. All `unsafe` code of
//! the memory-backend crates lives in the private `sys` module.

mod error;
mod mapping;
mod numa;
mod prealloc;
mod progress;
mod sys;
mod util;

pub use error::HostError;
pub use mapping::{MapRequest, MapSyncOutcome, Mapping, SyncMode, MIN_MAP_ALIGN};
pub use numa::{HostMemPolicy, MAX_NODES};
pub use prealloc::{prealloc_thread_count, PreallocMethod, PreallocOptions, MAX_PREALLOC_THREADS};
pub use progress::{PreallocControl, PreallocProgress, ProgressFn, DEFAULT_REPORT_INTERVAL};
pub use rustix::io::Errno;
pub use rustix::thread::CpuSet;
pub use sys::{flush_kind, FlushKind};
pub use util::{
    fd_page_size, fd_path, host_page_size, online_cpus, size_to_str, strerror, HUGETLBFS_MAGIC,
};
