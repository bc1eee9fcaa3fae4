//! Small host helpers: error texts, page sizes, file names, CPU counts.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::io::Errno;

/// `f_type` of a hugetlbfs file system (`HUGETLBFS_MAGIC`).
pub const HUGETLBFS_MAGIC: u64 = 0x9584_58f6;

/// The C library's `strerror` text for `errno`, e.g. "Cannot allocate memory".
pub fn strerror(errno: Errno) -> String {
    let code = errno.raw_os_error();
    let text = std::io::Error::from_raw_os_error(code).to_string();
    // std renders "<strerror> (os error N)"; keep only the C text.
    let suffix = format!(" (os error {code})");
    match text.strip_suffix(&suffix) {
        Some(s) => s.to_owned(),
        None => text,
    }
}

/// The host's base page size.
pub fn host_page_size() -> usize {
    rustix::param::page_size()
}

/// The page size of memory mapped from `fd`: the huge page size when the
/// file is on hugetlbfs, the base page size otherwise (QEMU's
/// `qemu_fd_getpagesize`). Never fails: if `fstatfs` fails, the base page
/// size is assumed.
pub fn fd_page_size(fd: BorrowedFd<'_>) -> usize {
    loop {
        match rustix::fs::fstatfs(fd) {
            Ok(st) if st.f_type as u64 & 0xffff_ffff == HUGETLBFS_MAGIC && st.f_bsize > 0 => {
                return st.f_bsize as usize;
            }
            Err(Errno::INTR) => continue,
            _ => return host_page_size(),
        }
    }
}

/// The name of the file behind `fd`, read back from `/proc/self/fd/N`
/// (as QEMU does for its MAP_SYNC warning), or `fd N` when unknown.
pub fn fd_path(fd: impl AsFd) -> String {
    let raw = fd.as_fd().as_raw_fd();
    match std::fs::read_link(format!("/proc/self/fd/{raw}")) {
        Ok(p) => p.to_string_lossy().into_owned(),
        Err(_) => format!("fd {raw}"),
    }
}

/// A size in QEMU's human form (`size_to_str`): three significant digits
/// and an IEC suffix, e.g. `4 KiB`, `2 MiB`, `1.5 GiB`, `512 B`. The one
/// implementation is qom's, which the option parsers' messages use too.
pub use qom::value::format_size_iec as size_to_str;

/// The number of online CPUs (`/sys/devices/system/cpu/online`, like
/// `sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
pub fn online_cpus() -> usize {
    if let Ok(s) = std::fs::read_to_string("/sys/devices/system/cpu/online") {
        let mut n = 0usize;
        for part in s.trim().split(',').filter(|p| !p.is_empty()) {
            let mut it = part.splitn(2, '-');
            let a = it.next().and_then(|x| x.parse::<usize>().ok());
            let b = it.next().and_then(|x| x.parse::<usize>().ok());
            n += match (a, b) {
                (Some(a), Some(b)) if b >= a => b - a + 1,
                (Some(_), None) => 1,
                _ => 0,
            };
        }
        if n > 0 {
            return n;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_qemu() {
        assert_eq!(size_to_str(4096), "4 KiB");
        assert_eq!(size_to_str(2 << 20), "2 MiB");
        assert_eq!(size_to_str(1 << 30), "1 GiB");
        assert_eq!(size_to_str(3 << 29), "1.5 GiB");
        assert_eq!(size_to_str(512), "512 B");
        assert_eq!(size_to_str(1000), "0.977 KiB");
    }

    #[test]
    fn strerror_is_the_c_text() {
        assert_eq!(strerror(Errno::NOMEM), "Cannot allocate memory");
        assert_eq!(strerror(Errno::NOSPC), "No space left on device");
    }
}
