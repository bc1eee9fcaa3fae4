//! Unit tests of the unsafe layer: alignment, guards, and what happens to
//! the reserved range when a `MAP_FIXED` fails.

use super::*;
use rustix::fs::{memfd_create, MemfdFlags};
use std::ffi::c_void;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr;

const MIB: usize = 1 << 20;

fn memfd(len: usize) -> OwnedFd {
    let fd = memfd_create("sys-test", MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, len as u64).unwrap();
    fd
}

/// The same file opened read-only, so that a shared writable mapping
/// of it fails (EACCES, before the kernel touches the target range).
fn read_only(fd: &OwnedFd) -> std::fs::File {
    use std::os::fd::AsRawFd;
    std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
}

/// Whether `addr` lies inside some mapping of this process.
fn is_mapped(addr: usize) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|r| r.split_once('-'))
        .map(|(a, b)| {
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            )
        })
        .any(|(a, b)| a <= addr && addr < b)
}

fn set_hook(f: impl FnMut(*mut c_void, usize) + 'static) {
    test_hooks::AFTER_FAILED_FIXED.with(|h| *h.borrow_mut() = Some(Box::new(f)));
}

fn clear_hook() {
    test_hooks::AFTER_FAILED_FIXED.with(|h| *h.borrow_mut() = None);
}

fn lost() -> usize {
    test_hooks::LOST.with(|n| n.get())
}

const RW: ProtFlags = ProtFlags::READ.union(ProtFlags::WRITE);

#[test]
fn maps_aligned_with_guard_of_any_size() {
    let page = rustix::param::page_size();
    let fd = memfd(4 * MIB);
    for guard in [0, page, 3 * page, 2 * MIB] {
        let resv = Reservation::new(4 * MIB, 2 * MIB, guard).unwrap();
        let region = resv
            .map_fixed(Some(fd.as_fd()), 0, RW, MapFlags::SHARED)
            .unwrap();
        assert_eq!(region.as_ptr() as usize % (2 * MIB), 0);
        region.fill(0, 4 * MIB, 7).unwrap();
        let mut b = [0u8; 1];
        region.read_into(4 * MIB - 1, &mut b).unwrap();
        assert_eq!(b[0], 7);
    }
}

#[test]
fn maps_anonymous_memory_aligned_with_guard() {
    let page = rustix::param::page_size();
    let resv = Reservation::new(4 * MIB, 2 * MIB, page).unwrap();
    let region = resv.map_fixed(None, 0, RW, MapFlags::PRIVATE).unwrap();
    let base = region.as_ptr() as usize;
    assert_eq!(base % (2 * MIB), 0);
    let mut b = [1u8; 1];
    region.read_into(4 * MIB - 1, &mut b).unwrap();
    assert_eq!(b[0], 0, "anonymous memory starts zeroed");
    region.fill(0, 4 * MIB, 9).unwrap();
    region.read_into(4 * MIB - 1, &mut b).unwrap();
    assert_eq!(b[0], 9);
    // Private anonymous memory has no file behind it. (The kernel may have
    // merged it with an anonymous neighbour: look for the range holding it.)
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| {
            let range = l.split_whitespace().next().and_then(|r| r.split_once('-'));
            range.is_some_and(|(a, b)| {
                let a = usize::from_str_radix(a, 16).unwrap();
                let b = usize::from_str_radix(b, 16).unwrap();
                (a..b).contains(&base)
            })
        })
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[1], "rw-p", "{line}");
    assert_eq!(fields[4], "0", "{line}");
}

#[test]
fn anonymous_probe_refuses_an_offset() {
    probe_map(None, 0, MIB, RW, MapFlags::PRIVATE).unwrap();
    assert_eq!(
        probe_map(None, 4096, MIB, RW, MapFlags::PRIVATE),
        Err(Errno::INVAL)
    );
}

#[test]
fn refuses_unaligned_sizes() {
    let page = rustix::param::page_size();
    for (len, align, guard) in [
        (0, 2 * MIB, page),
        (MIB + 1, 2 * MIB, page),
        (MIB, 2 * MIB, page + 1),
        (MIB, 3 * MIB, page),
        (MIB, page / 2, 0),
    ] {
        assert_eq!(
            Reservation::new(len, align, guard).err(),
            Some(Errno::INVAL),
            "{len} {align} {guard}"
        );
    }
}

#[test]
fn probe_reports_refusals_and_leaves_nothing() {
    let fd = memfd(MIB);
    // tmpfs has no DAX: MAP_SYNC is refused.
    let sync = MapFlags::SHARED_VALIDATE | MapFlags::SYNC;
    assert_eq!(
        probe_map(Some(fd.as_fd()), 0, MIB, RW, sync),
        Err(Errno::OPNOTSUPP)
    );
    let ro = read_only(&fd);
    assert_eq!(
        probe_map(Some(ro.as_fd()), 0, MIB, RW, MapFlags::SHARED),
        Err(Errno::ACCESS)
    );
    probe_map(Some(fd.as_fd()), 0, MIB, RW, MapFlags::SHARED).unwrap();
    assert_eq!(
        probe_map(
            Some(fd.as_fd()),
            0,
            MIB,
            RW,
            MapFlags::SHARED | MapFlags::FIXED
        ),
        Err(Errno::INVAL)
    );
}

/// The kernel refused before touching the range: our reservation is
/// still there, but nothing can prove it, so the target is given up
/// (left mapped) while the slack around it is released.
#[test]
fn failure_before_unmap_gives_up_only_the_target() {
    let fd = memfd(2 * MIB);
    let ro = read_only(&fd);
    let before = lost();
    let resv = Reservation::new(2 * MIB, 2 * MIB, rustix::param::page_size()).unwrap();
    let target = resv.target() as usize;
    let err = resv.map_fixed(Some(ro.as_fd()), 0, RW, MapFlags::SHARED);
    assert_eq!(err.err(), Some(Errno::ACCESS));
    assert_eq!(lost(), before + 1);
    // Given up, not unmapped: whoever owns it now keeps it.
    assert!(is_mapped(target));
    assert!(is_mapped(target + 2 * MIB - 1));
    // SAFETY: the test knows this leaked range is its own reservation.
    let _ = unsafe { rustix::mm::munmap(target as *mut c_void, 2 * MIB) };
}

/// The kernel unmapped the range and then failed (ext4 refusing
/// MAP_SYNC, hugetlbfs out of pages): nobody took the hole, so the
/// take-back succeeds and the whole reservation is released.
#[test]
fn hole_nobody_took_is_taken_back() {
    let fd = memfd(2 * MIB);
    let ro = read_only(&fd);
    set_hook(|target, len| {
        // SAFETY: plays the kernel: the range is our test's reservation.
        unsafe { rustix::mm::munmap(target, len).unwrap() };
    });
    let before = lost();
    let resv = Reservation::new(2 * MIB, 2 * MIB, rustix::param::page_size()).unwrap();
    let err = resv.map_fixed(Some(ro.as_fd()), 0, RW, MapFlags::SHARED);
    clear_hook();
    assert_eq!(err.err(), Some(Errno::ACCESS));
    assert_eq!(lost(), before);
}

/// The kernel unmapped the range and failed, and another thread was
/// given part of the hole before we could take it back: its memory
/// must survive our failure and the reservation's drop.
#[test]
fn hole_another_thread_took_is_left_alone() {
    let fd = memfd(2 * MIB);
    let ro = read_only(&fd);
    let page = rustix::param::page_size();
    let foreign = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let f = foreign.clone();
    set_hook(move |target, len| {
        // SAFETY: plays the kernel, then the other thread: the range is
        // our test's reservation; the new page lands in the hole only.
        unsafe {
            rustix::mm::munmap(target, len).unwrap();
            let p = rustix::mm::mmap_anonymous(
                target.cast::<u8>().add(len / 2).cast(),
                page,
                RW,
                MapFlags::PRIVATE | MapFlags::FIXED_NOREPLACE,
            )
            .unwrap();
            ptr::write_volatile(p.cast::<u64>(), 0x5eed_cafe);
            f.set(p as usize);
        }
    });
    let before = lost();
    let resv = Reservation::new(2 * MIB, 2 * MIB, page).unwrap();
    let err = resv.map_fixed(Some(ro.as_fd()), 0, RW, MapFlags::SHARED);
    clear_hook();
    assert_eq!(err.err(), Some(Errno::ACCESS));
    assert_eq!(lost(), before + 1);
    let p = foreign.get() as *mut u64;
    // SAFETY: the foreign page is still mapped (reading it would
    // fault otherwise, failing the test) and holds what was written.
    assert_eq!(unsafe { ptr::read_volatile(p) }, 0x5eed_cafe);
    // SAFETY: the test's own page.
    unsafe { rustix::mm::munmap(p.cast(), page).unwrap() };
}

/// An expected refusal (MAP_SYNC on a file without DAX) is met by the
/// dry run, never by a MAP_FIXED that could open a hole; this holds on
/// every file system, so tmpfs shows it as well as ext4 would.
#[test]
fn map_sync_refusal_never_reaches_map_fixed() {
    use crate::host::{HostError, MapRequest, MapSyncOutcome, Mapping, SyncMode};
    let failed = std::rc::Rc::new(std::cell::Cell::new(0));
    let f = failed.clone();
    set_hook(move |_, _| f.set(f.get() + 1));
    let auto = Mapping::new(MapRequest::new(memfd(4 * MIB), 4 << 20).shared(true));
    let on = Mapping::new(
        MapRequest::new(memfd(4 * MIB), 4 << 20)
            .shared(true)
            .sync(SyncMode::On),
    );
    clear_hook();
    assert_eq!(
        auto.unwrap().map_sync_outcome(),
        MapSyncOutcome::Refused(Errno::OPNOTSUPP)
    );
    assert!(matches!(
        on.unwrap_err(),
        HostError::MapSyncUnsupported {
            errno: Errno::OPNOTSUPP,
            ..
        }
    ));
    assert_eq!(failed.get(), 0, "a MAP_FIXED call failed");
}
