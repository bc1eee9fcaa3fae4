//! `prealloc-ref`: the physical reference for the preallocation benchmark
//! (`cargo xtask bench prealloc`). It does the least a file backend has to
//! do and nothing else:
//!
//! 1. `open(PATH, O_RDWR | O_CREAT | O_EXCL, 0644)` and `ftruncate` to the
//!    size;
//! 2. reserve size + 2 MiB of address space and map the file `MAP_SHARED`
//!    at the first 2 MiB boundary inside it (slack given back);
//! 3. `madvise(MADV_POPULATE_WRITE)`, the pages split evenly over THREADS
//!    threads (one thread: the main thread does it);
//! 4. `munmap`, `close`, and with `--unlink` remove the file (used to warm
//!    the machine; the benchmark removes the timed files itself).
//!
//! Prints one line: `setup_s=... populate_s=... teardown_s=... total_s=...`.
//!
//! Usage: `prealloc-ref PATH SIZE_MIB THREADS [--unlink]`

use std::process::ExitCode;
use std::time::Instant;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, ProtFlags};

const ALIGN: usize = 2 << 20;
const PAGE: usize = 4096;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("prealloc-ref: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let usage = "usage: prealloc-ref PATH SIZE_MIB THREADS [--unlink]";
    let (path, mib, threads) = match args {
        [p, m, t] | [p, m, t, _] => (p, m, t),
        _ => return Err(usage.into()),
    };
    let unlink = match args.get(3).map(String::as_str) {
        None => false,
        Some("--unlink") => true,
        Some(_) => return Err(usage.into()),
    };
    let size = mib
        .parse::<usize>()
        .ok()
        .filter(|&m| m > 0)
        .map(|m| m << 20)
        .ok_or("SIZE_MIB must be a positive number")?;
    let threads = threads
        .parse::<usize>()
        .ok()
        .filter(|&t| t > 0)
        .ok_or("THREADS must be a positive number")?;

    let t0 = Instant::now();
    let fd = rustix::fs::open(
        path.as_str(),
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| format!("open {path}: {e}"))?;
    rustix::fs::ftruncate(&fd, size as u64).map_err(|e| format!("ftruncate: {e}"))?;

    // SAFETY: a fresh PROT_NONE reservation chosen by the kernel; no Rust
    // object refers to that address range.
    let resv = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            size + ALIGN,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )
    }
    .map_err(|e| format!("mmap (reserve): {e}"))?;
    let resv_start = resv as usize;
    let start = resv_start.next_multiple_of(ALIGN);
    // SAFETY: [start, start + size) lies inside our own reservation, so
    // MAP_FIXED replaces only memory this program owns and nothing uses.
    let addr = unsafe {
        rustix::mm::mmap(
            start as *mut _,
            size,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED | MapFlags::FIXED,
            &fd,
            0,
        )
    }
    .map_err(|e| format!("mmap (file): {e}"))?;
    // Give back the slack on both sides of the file mapping.
    let head = start - resv_start;
    let tail = ALIGN - head;
    // SAFETY: both ranges are parts of the reservation outside the file
    // mapping; nothing refers to them.
    unsafe {
        if head > 0 {
            rustix::mm::munmap(resv, head).map_err(|e| format!("munmap: {e}"))?;
        }
        if tail > 0 {
            rustix::mm::munmap((start + size) as *mut _, tail)
                .map_err(|e| format!("munmap: {e}"))?;
        }
    }
    let t1 = Instant::now();

    let pages = size / PAGE;
    let per = pages / threads;
    let extra = pages % threads;
    let populate = |first: usize, n: usize| -> Result<(), Errno> {
        // SAFETY: the range is inside the file mapping; MADV_POPULATE_WRITE
        // only faults pages in (the file is new, so nothing is lost).
        unsafe {
            rustix::mm::madvise(
                (start + first * PAGE) as *mut _,
                n * PAGE,
                Advice::LinuxPopulateWrite,
            )
        }
    };
    let result = if threads == 1 {
        populate(0, pages)
    } else {
        std::thread::scope(|s| {
            let mut first = 0;
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let n = per + usize::from(i < extra);
                    let f = first;
                    first += n;
                    let populate = &populate;
                    s.spawn(move || populate(f, n))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Errno::FAULT)))
                .fold(Ok(()), Result::and)
        })
    };
    result.map_err(|e| format!("madvise(MADV_POPULATE_WRITE): {e}"))?;
    let t2 = Instant::now();

    // SAFETY: the file mapping is ours and no reference into it exists.
    unsafe { rustix::mm::munmap(addr, size) }.map_err(|e| format!("munmap: {e}"))?;
    drop(fd);
    if unlink {
        std::fs::remove_file(path).map_err(|e| format!("unlink {path}: {e}"))?;
    }
    let t3 = Instant::now();
    let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
    Ok(format!(
        "setup_s={:.6} populate_s={:.6} teardown_s={:.6} total_s={:.6}",
        s(t0, t1),
        s(t1, t2),
        s(t2, t3),
        s(t0, t3)
    ))
}
