//! Runs inside the dax-vm guest (`cargo xtask dax-vm`): checks that MAP_SYNC
//! works on the DAX mount and is refused on tmpfs, and that data stored
//! through a MAP_SYNC mapping survives a guest crash. Outside the guest
//! (no `DAX_DIR`) every test passes without doing anything, so that
//! `cargo test --workspace` on the host stays green.

use rustix::fs::{fsync, ftruncate, open, Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

const PAGE: usize = 4096;
/// 16 MiB: 8 huge-page-sized extents, enough to span several allocations.
const PAGES: usize = 4096;
const CRASH_FILE: &str = "daxvm-selftest-crash.dat";

fn guest_dir(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            eprintln!("{var} is not set: not inside the dax-vm guest, nothing to test");
            None
        }
    }
}

fn create(path: &PathBuf, len: usize) -> OwnedFd {
    let fd = open(
        path,
        OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    ftruncate(&fd, len as u64).expect("ftruncate");
    fd
}

fn map_sync(fd: &OwnedFd, len: usize) -> Result<*mut u8, Errno> {
    // SAFETY: a fresh shared mapping of a file we own; nothing else aliases it.
    let p = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED_VALIDATE | MapFlags::SYNC,
            fd,
            0,
        )
    }?;
    Ok(p.cast())
}

#[test]
fn map_sync_works_on_dax() {
    let Some(dir) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = dir.join("map-sync-probe");
    let fd = create(&path, 2 << 20);
    let p = map_sync(&fd, 2 << 20).expect("MAP_SHARED_VALIDATE|MAP_SYNC on the DAX mount");
    // SAFETY: p maps 2 MiB of the file, read-write.
    unsafe {
        p.write_bytes(0xa5, PAGE);
        assert_eq!(*p.add(PAGE - 1), 0xa5);
        munmap(p.cast(), 2 << 20).expect("munmap");
    }
    std::fs::remove_file(&path).expect("remove");
}

#[test]
fn map_sync_refused_on_tmpfs() {
    let Some(dir) = guest_dir("NODAX_DIR") else {
        return;
    };
    let path = dir.join("map-sync-probe");
    let fd = create(&path, 1 << 20);
    assert_eq!(map_sync(&fd, 1 << 20).err(), Some(Errno::OPNOTSUPP));
}

fn pattern(page: usize, word: usize) -> u64 {
    (page as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (word as u64) ^ 0x5d41_5856_4d21_0001
}

/// Boot 1 of a crash pair: stores through MAP_SYNC, then crashes the guest
/// with no msync, fsync or unmount.
#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm`, crashes the machine"]
fn crash_write_map_sync() {
    let Some(dir) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = dir.join(CRASH_FILE);
    let len = PAGES * PAGE;
    let fd = create(&path, len);
    // Make the (empty, sparse) file and its size durable first, so that the
    // test measures the data stores, not the file's creation.
    fsync(&fd).expect("fsync file");
    fsync(open(&dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open dir"))
        .expect("fsync dir");
    let p = map_sync(&fd, len).expect("MAP_SYNC on the DAX mount");
    let words = p.cast::<u64>();
    for page in 0..PAGES {
        for w in 0..PAGE / 8 {
            // SAFETY: in bounds of the len-byte mapping.
            unsafe {
                words
                    .add(page * PAGE / 8 + w)
                    .write_volatile(pattern(page, w))
            };
        }
    }
    // Push the stores out of the CPU caches, as real pmem needs (TCG has no
    // caches, so this is a no-op there, but the test should be right).
    #[cfg(target_arch = "x86_64")]
    for line in (0..len).step_by(64) {
        // SAFETY: the address lies inside the mapping.
        unsafe { std::arch::x86_64::_mm_clflush(p.add(line)) };
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a plain store fence.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
    println!("crash_write: stored {PAGES} pages through MAP_SYNC; crashing the guest");
    let _ = rustix::termios::tcdrain(std::io::stdout());
    let _ = rustix::termios::tcdrain(std::io::stderr());
    std::fs::write("/proc/sysrq-trigger", "c").expect("sysrq");
    // the kernel panics inside that write; getting here means it did not
    panic!("the guest is still running after sysrq c");
}

/// Boot 2 of the crash pair: every page must hold its pattern.
#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm` after crash_write_map_sync"]
fn crash_verify_map_sync() {
    let Some(dir) = guest_dir("DAX_DIR") else {
        return;
    };
    assert_eq!(
        std::env::var("DAXVM_PMEM_STATE").as_deref(),
        Ok("existing"),
        "verify must run on the image the write boot crashed on"
    );
    let data = std::fs::read(dir.join(CRASH_FILE)).expect("the crash file survived");
    assert_eq!(data.len(), PAGES * PAGE);
    let mut intact = 0;
    let mut zero = 0;
    for (page, bytes) in data.chunks_exact(PAGE).enumerate() {
        let ok = bytes
            .chunks_exact(8)
            .enumerate()
            .all(|(w, b)| u64::from_ne_bytes(b.try_into().unwrap()) == pattern(page, w));
        if ok {
            intact += 1;
        } else if bytes.iter().all(|&b| b == 0) {
            zero += 1;
        }
    }
    println!(
        "crash_verify: fs={} intact {intact}/{PAGES} pages (zero {zero}, other {})",
        std::env::var("DAXVM_FS").unwrap_or_default(),
        PAGES - intact - zero
    );
    assert_eq!(intact, PAGES, "MAP_SYNC data lost in the crash");
}
