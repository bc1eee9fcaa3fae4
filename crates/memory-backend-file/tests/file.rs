//! The file side of memory-backend-file against real files: /tmp (ext4),
//! /dev/shm (tmpfs), and, as root, small tmpfs and hugetlbfs mounts (those
//! tests print SKIPPED when mounting is impossible).

use qom_test_support as common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{allocated, Mount, TempDir};
use memory_backend::host::{Errno, HostError, MapSyncOutcome, SyncMode};
use memory_backend_file::file::{
    resolve_rom, FileBacking, FileError, FileMapRequest, FileOrigin, FileWarning, RomMode,
};

const MIB: u64 = 1 << 20;

fn req(path: &Path, size: u64) -> FileMapRequest {
    FileMapRequest::new("mem0", path, size)
}

fn err(r: &FileMapRequest) -> String {
    FileBacking::open_and_map(r).unwrap_err().to_string()
}

#[test]
fn missing_file_is_created_sized_and_kept() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("new");
    let mut r = req(&path, 4 * MIB);
    r.offset = MIB;
    r.share = true;
    let b = FileBacking::open_and_map(&r).unwrap();
    assert_eq!(b.origin(), FileOrigin::Created);
    assert!(b.created());
    assert_eq!(b.page_size(), 4096);
    assert_eq!(b.mapping().as_ptr() as usize % (2 << 20), 0);
    b.mapping().write_at(0, b"at offset").unwrap();
    drop(b);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 5 * MIB);
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "created owner-only"
    );
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&data[MIB as usize..MIB as usize + 9], b"at offset");
}

#[test]
fn existing_files_larger_empty_smaller() {
    let dir = TempDir::new_in("/tmp");
    // Larger: used as is, never shrunk.
    let large = dir.join("large");
    std::fs::write(&large, vec![9u8; 8 * MIB as usize]).unwrap();
    let b = FileBacking::open_and_map(&req(&large, 4 * MIB)).unwrap();
    assert_eq!(b.origin(), FileOrigin::Existing);
    let mut x = [0u8; 1];
    b.mapping().read_at(4 * MIB as usize - 1, &mut x).unwrap();
    assert_eq!(x[0], 9);
    drop(b);
    assert_eq!(std::fs::metadata(&large).unwrap().len(), 8 * MIB);

    // Empty: extended to offset + size.
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let mut r = req(&empty, 4 * MIB);
    r.offset = 4 * MIB;
    drop(FileBacking::open_and_map(&r).unwrap());
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 8 * MIB);

    // Smaller, non-empty: QEMU's message with the region name.
    let small = dir.join("small");
    std::fs::write(&small, vec![1u8; 4 * MIB as usize]).unwrap();
    let mut r = FileMapRequest::new("small", &small, 4 * MIB);
    r.offset = 4 * MIB;
    assert_eq!(
        err(&r),
        "small backing store size 0x400000 is too small for 'size' option 0x400000 plus 'offset' option 0x400000"
    );
    assert_eq!(std::fs::metadata(&small).unwrap().len(), 4 * MIB);
}

#[test]
fn directory_gives_an_unnamed_temporary_file() {
    for base in ["/tmp", "/dev/shm"] {
        let dir = TempDir::new_in(base);
        let mut r = FileMapRequest::new("a/b", dir.path(), 2 * MIB);
        r.share = true;
        let b = FileBacking::open_and_map(&r).unwrap();
        assert_eq!(b.origin(), FileOrigin::Temporary);
        assert_eq!(b.path(), dir.path());
        b.mapping().fill(0, 2 * MIB as usize, 1).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{base}: dir stays empty"
        );
        drop(b);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[test]
fn readonly_and_rom_matrix() {
    let dir = TempDir::new_in("/tmp");
    let missing = dir.join("missing");
    let mut r = req(&missing, MIB);
    r.readonly = true;
    assert_eq!(
        err(&r),
        format!(
            "can't open backing store {} for guest RAM: No such file or directory",
            missing.display()
        )
    );
    assert!(!missing.exists(), "readonly never creates");

    let mut r = req(dir.path(), MIB);
    r.readonly = true;
    assert_eq!(
        err(&r),
        format!(
            "can't open backing store {} for guest RAM: Is a directory",
            dir.path().display()
        )
    );

    let file = dir.join("rom");
    std::fs::write(&file, vec![5u8; MIB as usize]).unwrap();
    // readonly + rom=auto: ROM.
    let mut r = req(&file, MIB);
    r.readonly = true;
    r.share = true;
    let b = FileBacking::open_and_map(&r).unwrap();
    assert!(b.rom());
    assert!(b.mapping().readonly());
    assert_eq!(b.mapping().write_at(0, b"x"), Err(HostError::ReadOnly));
    drop(b);
    // readonly + rom=off + share=off: writable private copy (VM templating).
    r.share = false;
    r.rom = RomMode::Off;
    let b = FileBacking::open_and_map(&r).unwrap();
    assert!(!b.rom());
    b.mapping().write_at(0, b"x").unwrap();
    drop(b);
    assert_eq!(std::fs::read(&file).unwrap()[0], 5);
    // readonly + rom=off + share=on: refused.
    r.share = true;
    assert_eq!(
        err(&r),
        "property 'rom' = 'off' is incompatible with 'readonly' = 'on' and 'share' = 'on'"
    );
    // rom=on without readonly: refused.
    let mut r = req(&file, MIB);
    r.rom = RomMode::On;
    assert_eq!(
        err(&r),
        "property 'rom' = 'on' is not supported with 'readonly' = 'off'"
    );
    // readonly=off, rom=auto: writable.
    let b = FileBacking::open_and_map(&req(&file, MIB)).unwrap();
    assert!(!b.rom());

    assert_eq!(resolve_rom(RomMode::Auto, true, false), Ok(true));
    assert_eq!(resolve_rom(RomMode::Auto, false, true), Ok(false));
    assert_eq!(resolve_rom(RomMode::On, true, true), Ok(true));
    assert_eq!(resolve_rom(RomMode::Off, true, false), Ok(false));
}

#[test]
fn size_align_offset_messages_match_qemu() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("f");
    let mut r = req(&path, 4 * MIB);
    r.align = 3 * MIB;
    assert_eq!(err(&r), "alignment 0x300000 must be a power of two");
    r.align = 12345;
    assert_eq!(
        err(&r),
        "alignment 0x3039 must be multiples of page size 0x1000"
    );
    r.align = 64 * MIB;
    drop(FileBacking::open_and_map(&r).unwrap());
    std::fs::remove_file(&path).unwrap();
    let mut r = req(&path, 4 * MIB);
    r.offset = 1000;
    assert_eq!(
        err(&r),
        "offset 0x3e8 must be multiples of page size 0x1000"
    );
    assert_eq!(
        err(&req(&path, u64::MAX)),
        "memory size 0x0 must be equal to or larger than page size 0x1000"
    );
    assert_eq!(
        err(&req(&path, 4097)),
        "backend 'memory-backend-file' memory size must be multiple of 4 KiB"
    );
    assert_eq!(err(&req(&path, 0)), "can't create backend with size 0");
    assert_eq!(err(&req(Path::new(""), MIB)), "mem-path property not set");
    assert!(!path.exists(), "every failure removed the file it created");
}

#[test]
fn huge_size_fails_like_qemu_and_leaves_nothing() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("eib");
    assert_eq!(
        err(&req(&path, 1 << 60)),
        "unable to map backing store for guest RAM: Cannot allocate memory"
    );
    assert!(!path.exists());
}

#[test]
fn sync_modes_on_tmpfs_and_ext4() {
    for base in ["/dev/shm", "/tmp"] {
        let dir = TempDir::new_in(base);
        let path = dir.join("s");
        // on + share=off: refused before the file is touched.
        let mut r = req(&path, 2 * MIB);
        r.sync = SyncMode::On;
        let e = FileBacking::open_and_map(&r).unwrap_err();
        assert_eq!(e, FileError::Host(HostError::MapSyncNeedsShared));
        assert!(!path.exists(), "{base}: file untouched");
        // on + share=on: refused by the file system, created file removed.
        r.share = true;
        let msg = err(&r);
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("DAX"), "{msg}");
        assert!(!path.exists(), "{base}: created file removed");
        // auto: falls back, reads back off; pmem=on adds QEMU's warnings.
        r.sync = SyncMode::Auto;
        r.pmem = true;
        let b = FileBacking::open_and_map(&r).unwrap();
        assert!(!b.map_sync());
        assert_eq!(
            b.mapping().map_sync_outcome(),
            MapSyncOutcome::Refused(Errno::OPNOTSUPP)
        );
        assert_eq!(b.warnings().len(), 2);
        let w0 = b.warnings()[0].to_string();
        assert!(w0.starts_with("Warning: requesting persistence across crashes for backend file "));
        assert!(w0.contains(&path.display().to_string()), "{w0}");
        assert_eq!(b.warnings()[1], FileWarning::NonDaxPmemDeprecated);
        drop(b);
        // auto without pmem, and pmem with share=off: silent.
        r.pmem = false;
        assert!(FileBacking::open_and_map(&r).unwrap().warnings().is_empty());
        r.pmem = true;
        r.share = false;
        let b = FileBacking::open_and_map(&r).unwrap();
        assert!(b.warnings().is_empty());
        assert_eq!(b.mapping().map_sync_outcome(), MapSyncOutcome::NotRequested);
        // off: never asks.
        r.share = true;
        r.sync = SyncMode::Off;
        let b = FileBacking::open_and_map(&r).unwrap();
        assert_eq!(b.mapping().map_sync_outcome(), MapSyncOutcome::NotRequested);
        assert!(b.warnings().is_empty());
    }
}

#[test]
fn discard_data_releases_blocks_and_share_off_keeps_file() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("d");
    let mut r = req(&path, 4 * MIB);
    r.share = true;
    let b = FileBacking::open_and_map(&r).unwrap();
    b.mapping().prealloc(1, None).unwrap();
    assert!(allocated(&path) >= 4 * MIB);
    b.discard_data().unwrap();
    drop(b);
    assert_eq!(allocated(&path), 0);

    std::fs::write(&path, vec![4u8; 4 * MIB as usize]).unwrap();
    r.share = false;
    let b = FileBacking::open_and_map(&r).unwrap();
    b.mapping().fill(0, 4 * MIB as usize, 0).unwrap();
    b.discard_data().unwrap();
    drop(b);
    assert!(std::fs::read(&path).unwrap().iter().all(|&x| x == 4));
}

#[test]
fn prealloc_on_full_tmpfs_fails_and_leaves_no_file() {
    let Some(mnt) = Mount::new("tmpfs", "size=8m") else {
        return;
    };
    let path = mnt.join("guest-ram");
    let mut r = req(&path, 64 * MIB);
    r.share = true;
    let b = FileBacking::open_and_map(&r).unwrap();
    let e = b.mapping().prealloc(2, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "qemu_prealloc_mem: preallocating memory failed: No space left on device"
    );
    b.abandon();
    assert!(!path.exists(), "created file removed");
    assert_eq!(std::fs::read_dir(mnt.path()).unwrap().count(), 0);
}

/// hugetlbfs: needs root to mount it and to reserve 2 MiB pages. The
/// number of reserved pages is restored afterwards.
#[test]
fn hugetlbfs_page_size_alignment_and_exhaustion() {
    const NR: &str = "/proc/sys/vm/nr_hugepages";
    let Ok(prev) = std::fs::read_to_string(NR) else {
        eprintln!("SKIPPED: no {NR}");
        return;
    };
    let prev: u64 = prev.trim().parse().unwrap_or(0);
    if std::fs::write(NR, format!("{}", prev + 4)).is_err() {
        eprintln!("SKIPPED: cannot reserve huge pages");
        return;
    }
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write("/proc/sys/vm/nr_hugepages", format!("{}", self.0));
        }
    }
    let _restore = Restore(prev);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let free: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if free < 4 {
        eprintln!("SKIPPED: only {free} free huge pages");
        return;
    }
    let Some(mnt) = Mount::new("hugetlbfs", "pagesize=2M") else {
        return;
    };
    let path = mnt.join("hp");
    let mut r = req(&path, 4 * MIB);
    r.share = true;
    let b = FileBacking::open_and_map(&r).unwrap();
    assert_eq!(b.page_size(), 2 << 20);
    assert_eq!(b.mapping().as_ptr() as usize % (2 << 20), 0);
    b.mapping().prealloc(2, None).unwrap();
    b.mapping().write_at(3 * MIB as usize, b"huge").unwrap();
    drop(b);
    std::fs::remove_file(&path).unwrap();

    // Directory mode works too.
    let mut d = req(mnt.path(), 2 * MIB);
    d.share = true;
    assert_eq!(
        FileBacking::open_and_map(&d).unwrap().origin(),
        FileOrigin::Temporary
    );

    let msg = |f: &dyn Fn(&mut FileMapRequest)| {
        let mut r = req(&path, 4 * MIB);
        r.share = true;
        f(&mut r);
        err(&r)
    };
    assert_eq!(
        msg(&|r| r.size = 3 * MIB),
        "backend 'memory-backend-file' memory size must be multiple of 2 MiB"
    );
    assert_eq!(
        msg(&|r| r.align = 4096),
        "alignment 0x1000 must be multiples of page size 0x200000"
    );
    assert_eq!(
        msg(&|r| r.offset = 4096),
        "offset 0x1000 must be multiples of page size 0x200000"
    );
    assert_eq!(
        msg(&|r| r.size = MIB),
        "memory size 0x100000 must be equal to or larger than page size 0x200000"
    );
    // More than the reserved pages: mmap refuses with reserve=on ...
    assert_eq!(
        msg(&|r| r.size = 64 * MIB),
        "unable to map backing store for guest RAM: Cannot allocate memory"
    );
    assert!(!path.exists());
    // ... and with reserve=off, preallocation fails cleanly (no SIGBUS).
    let mut r = req(&path, 64 * MIB);
    r.share = true;
    r.reserve = false;
    let b = FileBacking::open_and_map(&r).unwrap();
    let e = b.mapping().prealloc(2, None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("qemu_prealloc_mem: preallocating memory failed: "),
        "{e}"
    );
    eprintln!("hugetlbfs exhaustion: {e}");
    b.abandon();
    assert!(!path.exists());
}

const HINT_CHILD: &str = "MEMORY_BACKEND_FILE_TEST_HINT";

/// QEMU's EACCES hint: a private writable backend on a file it may only
/// read. Runs the check in a child process as `nobody` (root bypasses file
/// permissions).
#[test]
fn eacces_hint_for_read_only_files() {
    if let Ok(path) = std::env::var(HINT_CHILD) {
        let e = FileBacking::open_and_map(&req(Path::new(&path), MIB)).unwrap_err();
        println!("MSG={e}");
        println!("HINT={}", e.hint().unwrap_or("none"));
        let mut r = req(Path::new(&path), MIB);
        r.share = true;
        let e = FileBacking::open_and_map(&r).unwrap_err();
        println!("SHARED-HINT={}", e.hint().unwrap_or("none"));
        return;
    }
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new_in("/tmp");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("ro");
    std::fs::write(&path, vec![0u8; MIB as usize]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "eacces_hint_for_read_only_files", "--nocapture"])
        .env(HINT_CHILD, &path)
        .uid(65534)
        .gid(65534)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            eprintln!(
                "SKIPPED: child as nobody failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot run a child as nobody: {e}");
            return;
        }
    };
    let line = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .to_owned()
    };
    assert_eq!(
        line("MSG="),
        format!(
            "can't open backing store {} for guest RAM: Permission denied",
            path.display()
        )
    );
    assert_eq!(line("HINT="), memory_backend_file::file::EACCES_HINT);
    assert_eq!(line("SHARED-HINT="), "none");
}
