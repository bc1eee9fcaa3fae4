//! Preallocation of guest RAM (QEMU's `qemu_prealloc_mem`), without any
//! chance of a SIGBUS.

use rustix::fs::FallocateFlags;
use rustix::io::Errno;
use rustix::mm::Advice;
use rustix::thread::CpuSet;

use super::error::HostError;
use super::mapping::Mapping;
use super::progress::{PreallocControl, Tracker};
use super::util::{host_page_size, online_cpus};

/// At most this many preallocation threads (QEMU's limit).
pub const MAX_PREALLOC_THREADS: usize = 16;

/// Each thread gets at least this much memory to populate.
const MIN_BYTES_PER_THREAD: usize = 64 << 20;

/// Threads populate in chunks of this much (or one page, if larger), so
/// that they can report progress and see a cancellation in between.
const CHUNK_BYTES: usize = 16 << 20;

/// How pages are preallocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreallocMethod {
    /// `MADV_POPULATE_WRITE` when the kernel has it (Linux 5.14+), else
    /// [`PreallocMethod::Touch`].
    #[default]
    Auto,
    /// Allocate the file range (shared mappings) and then touch one byte per
    /// page, storing back the value read so that data is kept. Chosen
    /// automatically on old kernels; can be forced, e.g. for tests.
    Touch,
}

/// Options for [`Mapping::prealloc_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PreallocOptions<'a> {
    /// Requested number of threads (`prealloc-threads`); 0 counts as 1. The
    /// number used is min(online CPUs, 16, this), then at most the number
    /// of pages, then at most max(1, bytes / 64 MiB).
    pub threads: usize,
    /// Pin the threads to these CPUs (a `thread-context`'s affinity).
    pub affinity: Option<&'a CpuSet>,
    /// How to preallocate.
    pub method: PreallocMethod,
    /// Progress reports and cancellation; `None` for neither.
    pub control: Option<&'a PreallocControl>,
    /// The name progress reports give (a backend's id).
    pub name: &'a str,
}

/// The number of threads QEMU would use for `bytes` bytes in pages of
/// `page_size` when `requested` threads were asked for.
pub fn prealloc_thread_count(requested: usize, bytes: usize, page_size: usize) -> usize {
    let pages = bytes.div_ceil(page_size.max(1));
    let n = online_cpus()
        .min(MAX_PREALLOC_THREADS)
        .min(requested.max(1))
        .min(pages.max(1));
    n.min((bytes / MIN_BYTES_PER_THREAD).max(1))
}

impl Mapping {
    /// Preallocates all of guest RAM with `threads` threads, optionally
    /// pinned to `affinity`. See [`Mapping::prealloc_with`].
    pub fn prealloc(&self, threads: usize, affinity: Option<&CpuSet>) -> Result<(), HostError> {
        self.prealloc_with(
            0,
            self.len(),
            &PreallocOptions {
                threads,
                affinity,
                method: PreallocMethod::Auto,
                control: None,
                name: "",
            },
        )
    }

    /// Preallocates the pages covering `[offset, offset + len)`.
    ///
    /// With `MADV_POPULATE_WRITE`, the pages are split evenly over the
    /// threads (the first `pages % threads` threads take one more); a single
    /// thread without affinity populates in the calling thread. Failures
    /// (a full tmpfs, no free huge pages, out of memory) come back as
    /// [`HostError::Prealloc`]; the kernel reports them instead of raising
    /// SIGBUS. It reports a failed fault as `EFAULT` ("Bad address"); for a
    /// shared mapping the file range is then allocated to find the real
    /// cause, so a full tmpfs gives `ENOSPC` ("No space left on device").
    ///
    /// Without it (`EINVAL` from a one-page probe, or
    /// [`PreallocMethod::Touch`]): a shared mapping first gets its file
    /// range allocated with `fallocate(FALLOC_FL_KEEP_SIZE)` so that a full
    /// file system is an `ENOSPC` error rather than a SIGBUS, and then every
    /// page is touched, keeping its data. Cases where touching could still
    /// raise SIGBUS (file shorter than the mapping, file system without
    /// fallocate, private huge pages without reservation) are refused with
    /// an error instead.
    ///
    /// With a [`PreallocControl`] in `opts`, each thread works in chunks of
    /// 16 MiB (or one page, if larger), reports progress between them and
    /// stops at the first chunk boundary after a cancellation, which fails
    /// with [`HostError::PreallocCancelled`]. The pages populated before
    /// stay populated: the caller decides what to do with the mapping.
    pub fn prealloc_with(
        &self,
        offset: usize,
        len: usize,
        opts: &PreallocOptions<'_>,
    ) -> Result<(), HostError> {
        let page = self.page_size();
        let end =
            offset
                .checked_add(len)
                .filter(|&e| e <= self.len())
                .ok_or(HostError::OutOfRange {
                    offset,
                    len,
                    size: self.len(),
                })?;
        if len == 0 {
            return Ok(());
        }
        if self.readonly() {
            return Err(HostError::Prealloc(Errno::ACCESS));
        }
        let start = offset - offset % page;
        let end = end
            .checked_next_multiple_of(page)
            .unwrap_or(end)
            .min(self.len());
        let bytes = end - start;
        let pages = bytes / page;
        let threads = prealloc_thread_count(opts.threads, bytes, page);

        let region = self.region();
        let populate = match opts.method {
            PreallocMethod::Touch => false,
            PreallocMethod::Auto => match region.madvise(start, page, Advice::LinuxPopulateWrite) {
                Ok(()) => true,
                Err(Errno::INVAL) => false,
                Err(e) => return Err(HostError::Prealloc(e)),
            },
        };
        if !populate {
            self.prepare_touch(start, bytes)?;
        }

        let tracker = Tracker::new(opts.control, opts.name, bytes as u64);
        // Without a control nobody watches or stops it: one call per thread.
        let chunk_pages = match opts.control {
            Some(_) => (CHUNK_BYTES / page).max(1),
            None => pages.max(1),
        };
        let work = |first: usize, n: usize| -> Result<(), Errno> {
            let mut next = first;
            let end = first + n;
            while next < end {
                if tracker.cancelled() {
                    return Err(Errno::CANCELED);
                }
                let count = chunk_pages.min(end - next);
                let (off, len) = (start + next * page, count * page);
                if populate {
                    region.madvise(off, len, Advice::LinuxPopulateWrite)?;
                } else {
                    region.touch_pages(off, len, host_page_size().min(page))?;
                }
                tracker.advance(len as u64);
                next += count;
            }
            Ok(())
        };

        let result = if threads <= 1 && opts.affinity.is_none() {
            work(0, pages)
        } else {
            self.run_threads(threads, pages, opts.affinity, &work)
        };
        tracker.end(result.is_ok());
        match result {
            Ok(()) => Ok(()),
            Err(Errno::CANCELED) if tracker.cancelled() => Err(HostError::PreallocCancelled {
                done: tracker.done(),
                total: bytes as u64,
            }),
            // The kernel reports a failed fault (a full tmpfs, a file system
            // out of blocks) as EFAULT; for a shared file, allocating the
            // range names the real cause (ENOSPC) where there is one.
            Err(Errno::FAULT) if populate && self.shared() => {
                match self.allocate_file(start, bytes) {
                    Err(e) => Err(e),
                    Ok(()) => Err(HostError::Prealloc(Errno::FAULT)),
                }
            }
            Err(e) => Err(HostError::Prealloc(e)),
        }
    }

    /// Runs `work(first_page, pages)` on `threads` threads, splitting the
    /// pages evenly (the first `pages % threads` threads take one more).
    ///
    /// With an affinity, a launcher thread takes it first and starts the
    /// workers, which inherit it from birth: no worker ever runs a single
    /// instruction outside the requested CPUs (QEMU starts them from the
    /// thread-context's thread for the same reason).
    fn run_threads(
        &self,
        threads: usize,
        pages: usize,
        affinity: Option<&CpuSet>,
        work: &(dyn Fn(usize, usize) -> Result<(), Errno> + Sync),
    ) -> Result<(), Errno> {
        let Some(set) = affinity else {
            return spawn_workers(threads, pages, work);
        };
        std::thread::scope(|s| {
            let launcher = std::thread::Builder::new()
                .name("prealloc_launch".into())
                .spawn_scoped(s, move || {
                    rustix::thread::sched_setaffinity(None, set)?;
                    spawn_workers(threads, pages, work)
                });
            match launcher {
                Ok(h) => h.join().unwrap_or(Err(Errno::FAULT)),
                Err(e) => Err(e
                    .raw_os_error()
                    .map_or(Errno::AGAIN, Errno::from_raw_os_error)),
            }
        })
    }

    /// Makes sure touching `[start, start + bytes)` cannot raise SIGBUS.
    fn prepare_touch(&self, start: usize, bytes: usize) -> Result<(), HostError> {
        let file_start = self
            .offset()
            .checked_add(start as u64)
            .ok_or(HostError::Prealloc(Errno::FAULT))?;
        let file_end = file_start
            .checked_add(bytes as u64)
            .ok_or(HostError::Prealloc(Errno::FAULT))?;
        // Anonymous memory has no file to outgrow or to allocate blocks in:
        // a fault can only fail for lack of memory, which no check here
        // could rule out (QEMU touches it the same way).
        let Some(fd) = self.fd() else {
            return Ok(());
        };
        let st = rustix::fs::fstat(fd).map_err(HostError::Prealloc)?;
        let is_file = rustix::fs::FileType::from_raw_mode(st.st_mode).is_file();
        // A page beyond the end of a regular file raises SIGBUS on access.
        if is_file && (st.st_size as u64) < file_end {
            return Err(HostError::Prealloc(Errno::FAULT));
        }
        if self.shared() {
            self.allocate_file(start, bytes)
        } else if self.noreserve() && self.page_size() > host_page_size() {
            // Private huge pages without a reservation can run out at fault
            // time, which only SIGBUS reports.
            Err(HostError::Prealloc(Errno::NOTSUP))
        } else {
            Ok(())
        }
    }

    /// Allocates the file blocks behind `[start, start + bytes)` of a
    /// shared mapping (`fallocate(FALLOC_FL_KEEP_SIZE)`).
    fn allocate_file(&self, start: usize, bytes: usize) -> Result<(), HostError> {
        let file_start = self
            .offset()
            .checked_add(start as u64)
            .ok_or(HostError::Prealloc(Errno::FAULT))?;
        // Anonymous memory: nothing to allocate ahead of the faults.
        let Some(fd) = self.fd() else {
            return Ok(());
        };
        rustix::fs::fallocate(fd, FallocateFlags::KEEP_SIZE, file_start, bytes as u64)
            .map_err(HostError::Prealloc)
    }
}

/// Starts the worker threads (they inherit the caller's affinity) and
/// waits for all of them; the first failure wins.
fn spawn_workers(
    threads: usize,
    pages: usize,
    work: &(dyn Fn(usize, usize) -> Result<(), Errno> + Sync),
) -> Result<(), Errno> {
    let per = pages / threads;
    let extra = pages % threads;
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        let mut result = Ok(());
        let mut first = 0;
        for i in 0..threads {
            let n = per + usize::from(i < extra);
            let spawned = std::thread::Builder::new()
                .name("touch_pages".into())
                .spawn_scoped(s, move || work(first, n));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    result = Err(e
                        .raw_os_error()
                        .map_or(Errno::AGAIN, Errno::from_raw_os_error));
                    break;
                }
            }
            first += n;
        }
        for h in handles {
            let r = h.join().unwrap_or(Err(Errno::FAULT));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}
