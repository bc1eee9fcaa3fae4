//! The open-file limit: `qom` raises its soft `RLIMIT_NOFILE` to the hard
//! limit at start, as servers that hold a descriptor per object do.
//!
//! Backends that must be shareable (`share=on`, memfd, shm, file) each
//! keep a descriptor open for as long as they live; with the common soft
//! limit of 1,024, a few hundred of them plus the QMP connections would
//! otherwise fail with "Too many open files" long before memory runs out.
//! The soft limit exists to protect programs that pass descriptors to
//! `select(2)`; `qom` never does.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// Where the kernel caps the number of descriptors of one process, used
/// when the hard limit is unlimited (a soft limit above it is refused).
const NR_OPEN: &str = "/proc/sys/fs/nr_open";

/// Raises the soft open-file limit to the hard limit. Returns the soft
/// limit now in effect, or `None` when it could not be read or changed
/// (the process then runs with what it was given).
pub fn raise_nofile() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let target = if hard == RLIM_INFINITY {
        std::fs::read_to_string(NR_OPEN)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())?
    } else {
        hard
    };
    if soft != RLIM_INFINITY && soft >= target {
        return Some(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, target, hard).ok()?;
    Some(target)
}
