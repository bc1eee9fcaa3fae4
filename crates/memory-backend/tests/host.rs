//! Integration tests of the host layer on real files (tmpfs in /dev/shm,
//! ext4 in /tmp) and on small tmpfs mounts (needs root to mount; those
//! tests print SKIPPED otherwise).

use qom_test_support as common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{allocated, Mount, TempDir};
use memory_backend::host::{
    prealloc_thread_count, Errno, HostError, HostMemPolicy, MapRequest, MapSyncOutcome, Mapping,
    PreallocMethod, PreallocOptions, SyncMode, MIN_MAP_ALIGN,
};

const MIB: u64 = 1 << 20;

fn new_file(path: &Path, len: u64) -> OwnedFd {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.set_len(len).unwrap();
    f.into()
}

fn map_shared(path: &Path, len: u64) -> Mapping {
    Mapping::new(MapRequest::new(new_file(path, len), len).shared(true)).unwrap()
}

#[test]
fn mapping_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Mapping>();
}

#[test]
fn mapping_is_aligned_with_one_guard_page() {
    let dir = TempDir::new_in("/tmp");
    let m = map_shared(&dir.join("f"), 3 * MIB);
    let addr = m.as_ptr() as usize;
    assert_eq!(
        addr % MIN_MAP_ALIGN as usize,
        0,
        "{addr:#x} not 2 MiB aligned"
    );
    assert_eq!(m.len(), 3 * MIB as usize);
    assert!(m.align() >= MIN_MAP_ALIGN as usize);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let end = addr + m.len();
    let guard = maps.lines().find(|l| {
        let range = l.split_whitespace().next().unwrap();
        let (a, _) = range.split_once('-').unwrap();
        usize::from_str_radix(a, 16).unwrap() == end
    });
    let guard = guard.expect("guard page after the mapping");
    assert!(guard.contains(" ---p "), "guard line: {guard}");
    let range = guard.split_whitespace().next().unwrap();
    let (a, b) = range.split_once('-').unwrap();
    let len = usize::from_str_radix(b, 16).unwrap() - usize::from_str_radix(a, 16).unwrap();
    assert_eq!(
        len,
        memory_backend::host::host_page_size(),
        "exactly one guard page"
    );
}

fn check_sync_refused(base: &str) {
    let dir = TempDir::new_in(base);
    let path = dir.join("sync");
    // on: refused, with the file name and the DAX explanation.
    let err = Mapping::new(
        MapRequest::new(new_file(&path, MIB), MIB)
            .shared(true)
            .sync(SyncMode::On),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            HostError::MapSyncUnsupported {
                errno: Errno::OPNOTSUPP,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    assert!(msg.contains("DAX"), "{msg}");
    assert!(msg.contains("Operation not supported"), "{msg}");
    // auto: falls back to a plain shared mapping and says so.
    let m = Mapping::new(
        MapRequest::new(new_file(&path, MIB), MIB)
            .shared(true)
            .sync(SyncMode::Auto),
    )
    .unwrap();
    assert!(!m.map_sync());
    assert_eq!(
        m.map_sync_outcome(),
        MapSyncOutcome::Refused(Errno::OPNOTSUPP)
    );
    assert!(m.shared());
    // auto with a private mapping does not ask.
    let m = Mapping::new(MapRequest::new(new_file(&path, MIB), MIB).sync(SyncMode::Auto)).unwrap();
    assert_eq!(m.map_sync_outcome(), MapSyncOutcome::NotRequested);
    // off never asks.
    let m = Mapping::new(
        MapRequest::new(new_file(&path, MIB), MIB)
            .shared(true)
            .sync(SyncMode::Off),
    )
    .unwrap();
    assert_eq!(m.map_sync_outcome(), MapSyncOutcome::NotRequested);
}

#[test]
fn map_sync_refused_on_tmpfs() {
    check_sync_refused("/dev/shm");
}

#[test]
fn map_sync_refused_on_ext4() {
    check_sync_refused("/tmp");
}

/// Inside a guest with a real DAX file system (see daxvm/), point
/// MEMORY_BACKEND_DAX_DIR at a directory on it: sync=on must then succeed.
#[test]
fn map_sync_on_dax_when_available() {
    let Ok(dir) = std::env::var("MEMORY_BACKEND_DAX_DIR") else {
        eprintln!("SKIPPED: MEMORY_BACKEND_DAX_DIR not set (no DAX file system here)");
        return;
    };
    let dir = TempDir::new_in(&dir);
    let path = dir.join("dax");
    let m = Mapping::new(
        MapRequest::new(new_file(&path, 4 * MIB), 4 * MIB)
            .shared(true)
            .sync(SyncMode::On),
    )
    .unwrap();
    assert!(m.map_sync());
    m.write_at(100, b"persistent").unwrap();
    m.persist(100, 10).unwrap();
}

#[test]
fn sync_on_private_fails_before_any_syscall() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("f");
    let fd = new_file(&path, 0);
    let err = Mapping::new(MapRequest::new(fd, MIB).sync(SyncMode::On)).unwrap_err();
    assert_eq!(err, HostError::MapSyncNeedsShared);
    assert!(err.to_string().contains("'sync' = 'on'"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn shared_writes_reach_the_file_after_drop() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("f");
    let m = map_shared(&path, 2 * MIB);
    m.fill(0, 2 * MIB as usize, 0x5a).unwrap();
    m.write_at(12345, b"hello, guest").unwrap();
    let mut back = [0u8; 12];
    m.read_at(12345, &mut back).unwrap();
    assert_eq!(&back, b"hello, guest");
    m.persist(12345, 12).unwrap();
    drop(m);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&data[12345..12357], b"hello, guest");
    assert_eq!(data[0], 0x5a);
    assert_eq!(data[2 * MIB as usize - 1], 0x5a);
}

#[test]
fn private_mapping_leaves_the_file_untouched() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("f");
    std::fs::write(&path, vec![7u8; MIB as usize]).unwrap();
    let fd: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap()
        .into();
    let m = Mapping::new(MapRequest::new(fd, MIB)).unwrap();
    let mut b = [0u8; 1];
    m.read_at(100, &mut b).unwrap();
    assert_eq!(b[0], 7, "private mapping shows the file");
    m.fill(0, MIB as usize, 1).unwrap();
    m.persist(0, MIB as usize).unwrap();
    drop(m);
    assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 7));
}

const CHILD_ENV: &str = "MEMORY_BACKEND_TEST_CHILD_FILE";

#[test]
fn shared_writes_survive_sigkill() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        // Child: write through a shared mapping, report, wait to be killed.
        let fd: OwnedFd = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap()
            .into();
        let m = Mapping::new(MapRequest::new(fd, MIB).shared(true)).unwrap();
        m.fill(0, MIB as usize, 0xa5).unwrap();
        m.write_at(4096, b"survives SIGKILL").unwrap();
        println!("CHILD-READY");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("killed");
    drop(new_file(&path, MIB));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "shared_writes_survive_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let ready = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("CHILD-READY"));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(ready, "child never got ready ({status})");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&data[4096..4112], b"survives SIGKILL");
    assert_eq!(data[0], 0xa5);
    assert_eq!(data[MIB as usize - 1], 0xa5);
}

fn check_discard(base: &str) {
    let dir = TempDir::new_in(base);
    let path = dir.join("d");
    let m = map_shared(&path, 4 * MIB);
    m.fill(0, 4 * MIB as usize, 0xff).unwrap();
    m.persist(0, 4 * MIB as usize).unwrap();
    assert!(
        allocated(&path) >= 4 * MIB,
        "blocks before: {}",
        allocated(&path)
    );
    m.discard().unwrap();
    assert_eq!(allocated(&path), 0, "blocks released on {base}");
    let mut b = [1u8; 1];
    m.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 0);
}

#[test]
fn discard_releases_blocks_on_tmpfs() {
    check_discard("/dev/shm");
}

#[test]
fn discard_releases_blocks_on_ext4() {
    check_discard("/tmp");
}

#[test]
fn prealloc_allocates_blocks_with_threads() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("p");
    let m = map_shared(&path, 8 * MIB);
    assert_eq!(allocated(&path), 0);
    m.prealloc(2, None).unwrap();
    assert!(allocated(&path) >= 8 * MIB);
}

#[test]
fn prealloc_touch_fallback_keeps_data() {
    let dir = TempDir::new_in("/dev/shm");
    let path = dir.join("t");
    let m = map_shared(&path, 4 * MIB);
    m.write_at(0, b"keep me").unwrap();
    m.write_at(3 * MIB as usize + 5, b"and me").unwrap();
    let opts = PreallocOptions {
        threads: 2,
        affinity: None,
        method: PreallocMethod::Touch,
        ..PreallocOptions::default()
    };
    m.prealloc_with(0, m.len(), &opts).unwrap();
    assert!(allocated(&path) >= 4 * MIB);
    let mut b = [0u8; 7];
    m.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"keep me");
    let mut b = [0u8; 6];
    m.read_at(3 * MIB as usize + 5, &mut b).unwrap();
    assert_eq!(&b, b"and me");
}

#[test]
fn prealloc_with_affinity() {
    let dir = TempDir::new_in("/dev/shm");
    let m = map_shared(&dir.join("a"), 2 * MIB);
    // Pin to the first CPU this process may use.
    let allowed = rustix::thread::sched_getaffinity(None).unwrap();
    let cpu = (0..memory_backend::host::CpuSet::MAX_CPU)
        .find(|&c| allowed.is_set(c))
        .unwrap();
    let mut set = memory_backend::host::CpuSet::new();
    set.set(cpu);
    m.prealloc(1, Some(&set)).unwrap();
    m.prealloc(3, Some(&allowed)).unwrap();
}

#[test]
fn prealloc_on_full_tmpfs_is_an_error_not_sigbus() {
    let Some(mnt) = Mount::new("tmpfs", "size=8m") else {
        return;
    };
    for method in [PreallocMethod::Auto, PreallocMethod::Touch] {
        let path = mnt.join("big");
        let m = map_shared(&path, 64 * MIB);
        let opts = PreallocOptions {
            threads: 2,
            affinity: None,
            method,
            ..PreallocOptions::default()
        };
        let err = m.prealloc_with(0, m.len(), &opts).unwrap_err();
        let msg = err.to_string();
        eprintln!("{method:?}: {msg}");
        assert!(matches!(err, HostError::Prealloc(_)), "{err:?}");
        assert!(
            msg.starts_with("qemu_prealloc_mem: preallocating memory failed: "),
            "{msg}"
        );
        assert_eq!(err.errno(), Some(Errno::NOSPC));
        drop(m);
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn prealloc_thread_count_follows_qemu() {
    // Small areas get one thread whatever was asked.
    assert_eq!(prealloc_thread_count(8, 8 << 20, 4096), 1);
    assert_eq!(prealloc_thread_count(0, 1 << 30, 4096), 1);
    let cpus = memory_backend::host::online_cpus();
    assert_eq!(prealloc_thread_count(64, 1 << 40, 4096), cpus.min(16));
    // Never more threads than pages.
    assert_eq!(prealloc_thread_count(16, 2 << 20, 2 << 20), 1);
}

#[test]
fn readonly_mapping_refuses_writes() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("ro");
    std::fs::write(&path, vec![3u8; MIB as usize]).unwrap();
    let fd: OwnedFd = File::open(&path).unwrap().into();
    let m = Mapping::new(MapRequest::new(fd, MIB).shared(true).readonly(true)).unwrap();
    assert!(m.readonly());
    let mut b = [0u8; 4];
    m.read_at(10, &mut b).unwrap();
    assert_eq!(b, [3; 4]);
    assert_eq!(m.write_at(0, b"x"), Err(HostError::ReadOnly));
    assert_eq!(m.fill(0, 1, 0), Err(HostError::ReadOnly));
    assert!(matches!(m.prealloc(1, None), Err(HostError::Prealloc(_))));

    // A read-only fd with a writable private mapping: VM templating.
    let fd: OwnedFd = File::open(&path).unwrap().into();
    let m = Mapping::new(MapRequest::new(fd, MIB)).unwrap();
    m.write_at(0, b"cow").unwrap();
    drop(m);
    assert_eq!(std::fs::read(&path).unwrap()[0], 3);

    // A read-only fd cannot back a writable shared mapping.
    let fd: OwnedFd = File::open(&path).unwrap().into();
    let err = Mapping::new(MapRequest::new(fd, MIB).shared(true)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to map backing store for guest RAM: Permission denied"
    );
}

#[test]
fn bad_requests_are_errors() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("b");
    let m = map_shared(&path, MIB);
    let mut buf = [0u8; 16];
    assert!(matches!(
        m.read_at(MIB as usize - 8, &mut buf),
        Err(HostError::OutOfRange { .. })
    ));
    assert!(matches!(
        m.write_at(usize::MAX, b"x"),
        Err(HostError::OutOfRange { .. })
    ));
    assert!(m.persist(0, MIB as usize + 1).is_err());
    let err = Mapping::new(MapRequest::new(new_file(&path, MIB), MIB).align(3 * MIB)).unwrap_err();
    assert_eq!(err.to_string(), "alignment 0x300000 must be a power of two");
    let err = Mapping::new(MapRequest::new(new_file(&path, MIB), 1 << 62)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to map backing store for guest RAM: Cannot allocate memory"
    );
    let err = Mapping::new(MapRequest::new(new_file(&path, MIB), 0)).unwrap_err();
    assert!(matches!(err, HostError::Map(_)));
}

#[test]
fn madvise_helpers_and_noreserve() {
    let dir = TempDir::new_in("/tmp");
    let fd = new_file(&dir.join("m"), 4 * MIB);
    let m = Mapping::new(MapRequest::new(fd, 4 * MIB).noreserve(true)).unwrap();
    assert!(m.noreserve());
    match m.set_mergeable(true) {
        Ok(()) | Err(HostError::MergeUnsupported) => {}
        Err(e) => panic!("{e}"),
    }
    m.set_mergeable(false).ok();
    m.set_dump(false).unwrap();
    m.set_dump(true).unwrap();
    m.discard().unwrap(); // private: falls back to MADV_DONTNEED
}

#[test]
fn numa_policy_checks_and_bind() {
    let dir = TempDir::new_in("/dev/shm");
    let m = map_shared(&dir.join("n"), 2 * MIB);
    assert_eq!(
        m.bind_numa(HostMemPolicy::Default, &[0]).unwrap_err().to_string(),
        "host-nodes must be empty for policy default, or you should explicitly specify a policy other than default"
    );
    assert_eq!(
        m.bind_numa(HostMemPolicy::Bind, &[])
            .unwrap_err()
            .to_string(),
        "host-nodes must be set for policy bind"
    );
    assert_eq!(
        m.bind_numa(HostMemPolicy::Interleave, &[1000])
            .unwrap_err()
            .to_string(),
        "Invalid host-nodes value: 1000"
    );
    m.bind_numa(HostMemPolicy::Default, &[]).unwrap();
    for p in [
        HostMemPolicy::Bind,
        HostMemPolicy::Preferred,
        HostMemPolicy::Interleave,
    ] {
        m.bind_numa(p, &[0]).unwrap();
    }
    m.fill(0, m.len(), 1).unwrap();
}

#[test]
fn persist_uses_cache_flush_or_msync() {
    let (kind, line) = memory_backend::host::flush_kind();
    eprintln!("cache write-back: {kind:?}, line {line} bytes");
    assert!(line.is_power_of_two());
    let dir = TempDir::new_in("/dev/shm");
    let m = map_shared(&dir.join("p"), MIB);
    m.write_at(5000, b"x").unwrap();
    m.persist(5000, 1).unwrap();
    m.persist(0, m.len()).unwrap();
}

#[test]
fn anonymous_memory_maps_aligned_without_a_descriptor() {
    let m = Mapping::new(MapRequest::anonymous(3 * MIB + 1)).unwrap();
    assert!(m.fd().is_none());
    assert!(!m.shared());
    let page = memory_backend::host::host_page_size();
    assert_eq!(m.len(), 3 * MIB as usize + page);
    assert_eq!(m.page_size(), page);
    assert_eq!(m.as_ptr() as usize % MIN_MAP_ALIGN as usize, 0);
    assert_eq!(m.map_sync_outcome(), MapSyncOutcome::NotRequested);
    m.prealloc(2, None).unwrap();
    m.prealloc_with(
        0,
        m.len(),
        &PreallocOptions {
            threads: 1,
            method: PreallocMethod::Touch,
            ..Default::default()
        },
    )
    .unwrap();
    m.write_at(MIB as usize, b"guest").unwrap();
    m.set_hugepage(true).unwrap();
    m.set_fork(false).unwrap();
    m.set_fork(true).unwrap();
    m.set_hugepage(false).unwrap();
    // Discarding private anonymous memory (MADV_DONTNEED) reads back zeroes.
    m.discard().unwrap();
    let mut back = [1u8; 5];
    m.read_at(MIB as usize, &mut back).unwrap();
    assert_eq!(back, [0; 5]);
    // Nothing for persist to write back to.
    m.persist(0, m.len()).unwrap();
}

#[test]
fn anonymous_shared_memory_discards_its_pages() {
    let m = Mapping::new(MapRequest::anonymous(2 * MIB).shared(true)).unwrap();
    assert!(m.shared() && m.fd().is_none());
    m.write_at(0, b"shared").unwrap();
    m.discard().unwrap(); // MADV_REMOVE on shmem
    let mut back = [1u8; 6];
    m.read_at(0, &mut back).unwrap();
    assert_eq!(back, [0; 6]);
}

#[test]
fn anonymous_memory_refuses_an_offset_and_sync_on() {
    let err = Mapping::new(MapRequest::anonymous(2 * MIB).offset(4096)).unwrap_err();
    assert!(matches!(err, HostError::Map(Errno::INVAL)), "{err}");
    let err = Mapping::new(MapRequest::anonymous(2 * MIB).sync(SyncMode::On)).unwrap_err();
    assert!(matches!(err, HostError::MapSyncNeedsShared), "{err}");
    let err = Mapping::new(
        MapRequest::anonymous(2 * MIB)
            .shared(true)
            .sync(SyncMode::On),
    )
    .unwrap_err();
    assert!(
        matches!(err, HostError::MapSyncUnsupported { ref path, .. } if path == "anonymous memory"),
        "{err}"
    );
}

/// Threads mapping, filling, checking and unmapping anonymous memory at
/// once, with heap allocations big enough for glibc to mmap them in
/// between: no mapping ever lands on another's range (each sees only its
/// own bytes) and the reservations never take anything from the heap.
#[test]
fn anonymous_mappings_among_threads() {
    std::thread::scope(|s| {
        for t in 0..4u8 {
            s.spawn(move || {
                let mut rng = common::XorShift::new(u64::from(t) + 1);
                for _ in 0..200 {
                    let len = (1 + rng.below(8)) * MIB / 2;
                    let m = Mapping::new(MapRequest::anonymous(len)).unwrap();
                    let heap = vec![t; 256 << 10];
                    // The first and last page: where a neighbour would show.
                    let ends = [0, m.len() - 4096];
                    for at in ends {
                        m.fill(at, 4096, t + 1).unwrap();
                    }
                    std::thread::yield_now();
                    for at in ends {
                        let mut back = [0u8; 4096];
                        m.read_at(at, &mut back).unwrap();
                        assert!(back.iter().all(|&b| b == t + 1));
                    }
                    assert!(heap.iter().all(|&b| b == t));
                }
            });
        }
    });
}
