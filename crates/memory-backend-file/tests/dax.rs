//! `memory-backend-file` on a real DAX file system. These tests run inside
//! the emulated-NVDIMM guest of `cargo xtask dax-vm` (docs/dax-vm.md), which
//! sets `DAX_DIR` (ext4 or xfs on /dev/pmem0, mounted `dax=always`) and
//! `NODAX_DIR` (tmpfs). Outside that guest `DAX_DIR` is unset and every test
//! returns at once, so `cargo test --workspace` on a host without
//! persistent memory stays green and quick.
//!
//! Everything goes through the real object model: `object_add_str` with the
//! same `-object` text a user would give, `qom_get`, `object_del`, and the
//! backend's mapping through `memory_backend::mapping`.
//!
//! The crash pairs (`crash_write_X` boots and crashes the guest, then
//! `crash_verify_X` checks the same NVDIMM on the next boot) are ignored
//! here and run by the runner one pair at a time.

use qom_test_support as common;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{allocated, guest_dir};
use memory_backend::host::{flush_kind, Errno, MapSyncOutcome};
use memory_backend_file::file::FileOrigin;
use qom::{Object, ObjectTree, TypeRegistry};
use serde_json::json;

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;
/// The crash tests' file: 64 MiB, 16384 pages, the size the reference
/// experiment used, so that the numbers compare.
const CRASH_SIZE: usize = 64 * MIB;
const CRASH_PAGES: usize = CRASH_SIZE / PAGE;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

/// A tree with the device types and QEMU's pc machine, for the nvdimm
/// label pairs.
fn device_tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    qom_devices::register(&types).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let memory = qom_devices::MemoryOptions::parse("512M,slots=4,maxmem=4G").unwrap();
    let machine = qom_devices::MachineOptions::parse("pc,nvdimm=on", memory).unwrap();
    qom_devices::create_machine(&tree, &machine).unwrap();
    tree
}

fn fs_name() -> String {
    std::env::var("DAXVM_FS").unwrap_or_else(|_| "?".into())
}

/// A file name in `dir` that no earlier boot or parallel test has used.
fn fresh(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn spec(path: &Path, rest: &str) -> String {
    let path = path.to_str().expect("a UTF-8 path");
    assert!(!path.contains(','), "keyval would split {path}");
    format!("memory-backend-file,mem-path={path},{rest}")
}

fn read_file(path: &Path, offset: usize, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; len];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, offset as u64)
        .unwrap();
    buf
}

/// 1. `sync=on,share=on` on DAX: created, `sync` reads back `on`, and the
///    mapping says MAP_SYNC is in effect; what we write and persist is in
///    the file.
#[test]
fn sync_on_maps_with_map_sync() {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = fresh(&dax, "sync-on.dat");
    let t = tree();
    let obj = t
        .object_add_str(&spec(&path, "id=m1,size=16M,share=on,sync=on"))
        .unwrap();
    assert_eq!(t.qom_get("m1", "sync").unwrap(), json!("on"));
    let info = memory_backend_file::file_info(&obj).unwrap();
    assert!(info.map_sync);
    assert_eq!(info.origin, FileOrigin::Created);
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    let ram = memory_backend::mapping(&obj).unwrap();
    assert!(ram.map_sync());
    assert_eq!(ram.map_sync_outcome(), MapSyncOutcome::InEffect);
    assert!(ram.shared());
    assert_eq!(ram.len(), 16 * MIB);

    let data = b"written through MAP_SYNC";
    ram.write_at(5 * PAGE + 17, data).unwrap();
    memory_backend_file::persist(&obj, 5 * PAGE + 17..5 * PAGE + 17 + data.len()).unwrap();
    assert_eq!(read_file(&path, 5 * PAGE + 17, data.len()), data);
    println!(
        "DAXVM-INFO fs={} sync=on share=on: MAP_SYNC in effect; persist() uses {:?} + sfence",
        fs_name(),
        flush_kind().0
    );
    drop(ram);
    t.object_del("m1").unwrap();
    std::fs::remove_file(&path).unwrap();
}

/// 2a. `sync=auto` asks for MAP_SYNC exactly when the mapping is shared.
#[test]
fn sync_auto_follows_share() {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let t = tree();
    let shared = fresh(&dax, "auto-shared.dat");
    let obj = t
        .object_add_str(&spec(&shared, "id=a1,size=4M,share=on,sync=auto"))
        .unwrap();
    assert_eq!(t.qom_get("a1", "sync").unwrap(), json!("on"));
    assert_eq!(
        memory_backend::mapping(&obj).unwrap().map_sync_outcome(),
        MapSyncOutcome::InEffect
    );

    // QEMU's own case, pmem=on,share=on: MAP_SYNC and no warnings on DAX.
    let pmem = fresh(&dax, "auto-pmem.dat");
    let obj = t
        .object_add_str(&spec(&pmem, "id=a2,size=4M,share=on,pmem=on"))
        .unwrap();
    assert_eq!(t.qom_get("a2", "sync").unwrap(), json!("on"));
    assert!(memory_backend_file::file_info(&obj)
        .unwrap()
        .warnings
        .is_empty());

    let private = fresh(&dax, "auto-private.dat");
    let obj = t
        .object_add_str(&spec(&private, "id=a3,size=4M,share=off,sync=auto"))
        .unwrap();
    assert_eq!(t.qom_get("a3", "sync").unwrap(), json!("off"));
    let ram = memory_backend::mapping(&obj).unwrap();
    assert!(!ram.shared());
    assert_eq!(ram.map_sync_outcome(), MapSyncOutcome::NotRequested);
    drop(ram);

    // sync=off never asks, even on DAX.
    let off = fresh(&dax, "off.dat");
    let obj = t
        .object_add_str(&spec(&off, "id=a4,size=4M,share=on,sync=off"))
        .unwrap();
    assert_eq!(t.qom_get("a4", "sync").unwrap(), json!("off"));
    assert_eq!(
        memory_backend::mapping(&obj).unwrap().map_sync_outcome(),
        MapSyncOutcome::NotRequested
    );

    for id in ["a1", "a2", "a3", "a4"] {
        t.object_del(id).unwrap();
    }
    for p in [shared, pmem, private, off] {
        std::fs::remove_file(p).unwrap();
    }
}

/// 2b. `sync=on` with `share=off` is refused on DAX too, before the file
///     is created.
#[test]
fn sync_on_private_refused_on_dax() {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = fresh(&dax, "sync-on-private.dat");
    let err = tree()
        .object_add_str(&spec(&path, "id=p,size=4M,share=off,sync=on"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "property 'sync' = 'on' is not supported with 'share' = 'off': \
         MAP_SYNC exists only for shared mappings"
    );
    assert!(!path.exists());
}

/// 2c. On the guest's tmpfs `sync=on` fails with the clear message and
///     leaves no file behind; `auto` falls back and records the refusal.
#[test]
fn sync_on_refused_on_tmpfs() {
    let Some(nodax) = guest_dir("NODAX_DIR") else {
        return;
    };
    let path = fresh(&nodax, "sync-on.dat");
    let t = tree();
    let err = t
        .object_add_str(&spec(&path, "id=n1,size=4M,share=on,sync=on"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "MAP_SYNC was requested (sync=on) but cannot be used for backend file {}: \
             Operation not supported; MAP_SYNC needs a file on a DAX file system \
             (ext4 or xfs mounted with -o dax on persistent memory) or a device DAX, \
             and Linux 4.15 or later",
            path.display()
        )
    );
    assert!(
        !path.exists(),
        "the file the backend created was not removed"
    );
    assert!(t.object("n1").is_none());

    let obj = t
        .object_add_str(&spec(&path, "id=n2,size=4M,share=on,sync=auto"))
        .unwrap();
    assert_eq!(t.qom_get("n2", "sync").unwrap(), json!("off"));
    assert_eq!(
        memory_backend::mapping(&obj).unwrap().map_sync_outcome(),
        MapSyncOutcome::Refused(Errno::OPNOTSUPP)
    );
    t.object_del("n2").unwrap();
    std::fs::remove_file(&path).unwrap();
}

/// 4a. `discard-data=on`: deleting the backend punches the file's blocks
///     out (MADV_REMOVE on a DAX file), so nothing stays allocated.
#[test]
fn discard_data_releases_dax_blocks() {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = fresh(&dax, "discard.dat");
    let t = tree();
    let obj = t
        .object_add_str(&spec(
            &path,
            "id=d,size=16M,share=on,sync=on,discard-data=on",
        ))
        .unwrap();
    let ram = memory_backend::mapping(&obj).unwrap();
    ram.fill(0, ram.len(), 0x5a).unwrap();
    memory_backend_file::persist(&obj, 0..ram.len()).unwrap();
    let before = allocated(&path);
    assert_eq!(before, 16 * MIB as u64, "every page written is allocated");
    drop(ram);
    drop(obj);
    t.object_del("d").unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    println!(
        "DAXVM-INFO fs={} discard-data: st_blocks {} -> {} after object_del (size stays {})",
        fs_name(),
        before / 512,
        meta.blocks(),
        meta.len()
    );
    assert_eq!(meta.blocks(), 0, "discard-data left blocks allocated");
    assert_eq!(meta.len(), 16 * MIB as u64);
    std::fs::remove_file(&path).unwrap();
}

/// 4b. `prealloc=on` on DAX allocates every block up front; the time is
///     printed for the docs, never asserted.
#[test]
fn prealloc_on_dax() {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = fresh(&dax, "prealloc.dat");
    let t = tree();
    let start = Instant::now();
    let obj = t
        .object_add_str(&spec(&path, "id=pa,size=64M,share=on,sync=on,prealloc=on"))
        .unwrap();
    let took = start.elapsed();
    assert_eq!(t.qom_get("pa", "prealloc").unwrap(), json!(true));
    assert_eq!(t.qom_get("pa", "sync").unwrap(), json!("on"));
    assert_eq!(allocated(&path), 64 * MIB as u64);
    // preallocation must not have changed the (zero) contents
    let ram = memory_backend::mapping(&obj).unwrap();
    let mut buf = vec![0xffu8; PAGE];
    ram.read_at(63 * MIB, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    println!(
        "DAXVM-INFO fs={} prealloc=on,sync=on 64 MiB: object_add took {:.3} s",
        fs_name(),
        took.as_secs_f64()
    );
    drop(ram);
    t.object_del("pa").unwrap();
    std::fs::remove_file(&path).unwrap();
}

// ---- crash consistency ---------------------------------------------------

/// How a crash pair writes its pages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CrashMode {
    /// `sync=on`, then `persist()`: clwb/clflushopt/clflush + sfence, the
    /// whole job when MAP_SYNC is in effect. Asserted: every page survives.
    On,
    /// The control: `sync=off`, the same stores, and the same cache-line
    /// write-back by hand, but no msync/fsync (which is what `persist()`
    /// would add without MAP_SYNC). Only reported.
    OffNoMsync,
    /// `sync=off`, then `persist()`, which without MAP_SYNC is
    /// `msync(MS_SYNC)`. Asserted: `persist()` is enough in both modes.
    OffPersist,
}

impl CrashMode {
    fn tag(self) -> &'static str {
        match self {
            CrashMode::On => "sync-on",
            CrashMode::OffNoMsync => "sync-off-no-msync",
            CrashMode::OffPersist => "sync-off-persist",
        }
    }

    fn sync(self) -> &'static str {
        match self {
            CrashMode::On => "on",
            _ => "off",
        }
    }

    fn file(self, dax: &Path) -> PathBuf {
        dax.join(format!("crash-{}.dat", self.tag()))
    }

    /// The bytes the pages are cut from: page `p` holds the 4 KiB that start
    /// at word `p`. Each word is a hash of its index and the mode, so every
    /// page differs from every other one (and from the other modes' pages),
    /// and writing or checking a page is one plain copy or comparison: the
    /// stores take a fraction of a second even in a debug build under TCG,
    /// well inside the file systems' periodic commit interval (5 s on ext4),
    /// which would otherwise commit the control's allocations by itself.
    fn source(self) -> Vec<u8> {
        let m = self as u64 + 1;
        (0..(CRASH_PAGES + PAGE / 8) as u64)
            .flat_map(|i| {
                let mut x =
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ m.wrapping_mul(0xd6e8_feb8_6659_fd93);
                x ^= x >> 31;
                x.wrapping_mul(0xbf58_476d_1ce4_e5b9).to_le_bytes()
            })
            .collect()
    }
}

fn page_of(source: &[u8], page: usize) -> &[u8] {
    &source[page * 8..page * 8 + PAGE]
}

fn fsync_path(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

/// Write cache lines back without msync: what `persist()` does under
/// MAP_SYNC, done by hand for the control's plain shared mapping.
fn flush_cache_lines(obj: &Object) {
    let ram = memory_backend::mapping(obj).unwrap();
    #[cfg(target_arch = "x86_64")]
    {
        let base = ram.as_ptr();
        for off in (0..ram.len()).step_by(64) {
            // SAFETY: the address lies inside the live mapping that `ram`
            // keeps mapped; clflush only writes the line back.
            unsafe { std::arch::x86_64::_mm_clflush(base.add(off)) };
        }
        // SAFETY: a store fence has no memory operands.
        unsafe { std::arch::x86_64::_mm_sfence() };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ram;
}

/// Boot 1: a new sparse file made by the backend, one distinct pattern per
/// page stored through the mapping, made durable as the mode says, then an
/// abrupt crash: no msync, fsync, sync or unmount after the stores.
///
/// Before the stores, the empty file is made durable (fsync of the file
/// and of its directory, as the reference experiment did): the test is
/// about the data blocks that the stores allocate, not about whether the
/// file's creation made it into the journal.
fn crash_write(mode: CrashMode) {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = fresh(&dax, &format!("crash-{}.dat", mode.tag()));
    fsync_path(&dax);
    let t = device_tree();
    let obj = t
        .object_add_str(&spec(
            &path,
            &format!(
                "id=crash,size={CRASH_SIZE},share=on,pmem=on,sync={}",
                mode.sync()
            ),
        ))
        .unwrap();
    assert_eq!(t.qom_get("crash", "sync").unwrap(), json!(mode.sync()));
    let info = memory_backend_file::file_info(&obj).unwrap();
    assert_eq!(info.origin, FileOrigin::Created);
    assert_eq!(allocated(&path), 0, "a new file starts sparse");
    // the empty file and its size, durable before the stores
    fsync_path(&path);
    fsync_path(&dax);

    let ram = memory_backend::mapping(&obj).unwrap();
    let source = mode.source();
    let start = Instant::now();
    for page in 0..CRASH_PAGES {
        ram.write_at(page * PAGE, page_of(&source, page)).unwrap();
    }
    let stores = start.elapsed();
    match mode {
        CrashMode::On | CrashMode::OffPersist => {
            memory_backend_file::persist(&obj, 0..CRASH_SIZE).unwrap()
        }
        CrashMode::OffNoMsync => flush_cache_lines(&obj),
    }
    println!(
        "DAXVM-WRITE fs={} mode={} pages={CRASH_PAGES} map_sync={} allocated_kib={} stores_s={:.3} total_s={:.3}",
        fs_name(),
        mode.tag(),
        ram.map_sync(),
        allocated(&path) / 1024,
        stores.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    crash_the_guest();
}

/// sysrq `c`: a kernel panic, and with the guest's `panic=-1` an immediate
/// reset. Nothing is synced or unmounted on that path.
fn crash_the_guest() -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let _ = rustix::termios::tcdrain(std::io::stdout());
    let _ = rustix::termios::tcdrain(std::io::stderr());
    std::fs::write("/proc/sysrq-trigger", "c").unwrap();
    panic!("the guest is still running after sysrq c");
}

/// Boot 2: counts the pages that hold their pattern after the crash
/// (journal replay or log recovery happened at mount). With `strict`,
/// every page must.
fn crash_verify(mode: CrashMode, strict: bool) {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    assert_eq!(
        std::env::var("DAXVM_PMEM_STATE").as_deref(),
        Ok("existing"),
        "must run on the NVDIMM image that the write boot crashed"
    );
    let path = mode.file(&dax);
    let (mut intact, mut zero, mut other) = (0, 0, 0);
    let mut allocated_kib = 0;
    let mut size = 0;
    match File::open(&path) {
        Ok(mut f) => {
            let meta = f.metadata().unwrap();
            size = meta.len();
            allocated_kib = meta.blocks() / 2;
            let source = mode.source();
            let mut buf = vec![0u8; PAGE];
            for page in 0..CRASH_PAGES {
                if f.read_exact(&mut buf).is_err() {
                    break; // short file: the rest counts as lost
                }
                if buf == page_of(&source, page) {
                    intact += 1;
                } else if buf.iter().all(|&b| b == 0) {
                    zero += 1;
                } else {
                    other += 1;
                }
            }
        }
        Err(e) => println!("DAXVM-VERIFY {}: {e}", path.display()),
    }
    println!(
        "DAXVM-RESULT fs={} mode={} intact={intact}/{CRASH_PAGES} zero={zero} other={other} \
         size={size} allocated_kib={allocated_kib}",
        fs_name(),
        mode.tag()
    );
    if strict {
        assert_eq!(size, CRASH_SIZE as u64, "file size after the crash");
        assert_eq!(intact, CRASH_PAGES, "pages lost in the crash");
    }
}

#[test]
#[ignore = "crash pair: crashes the machine; run by `cargo xtask dax-vm`"]
fn crash_write_sync_on() {
    crash_write(CrashMode::On);
}

#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm` after crash_write_sync_on"]
fn crash_verify_sync_on() {
    crash_verify(CrashMode::On, true);
}

#[test]
#[ignore = "crash pair: crashes the machine; run by `cargo xtask dax-vm`"]
fn crash_write_sync_off_control() {
    crash_write(CrashMode::OffNoMsync);
}

/// The control only reports: it shows what the test would see if MAP_SYNC
/// did nothing.
#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm` after crash_write_sync_off_control"]
fn crash_verify_sync_off_control() {
    crash_verify(CrashMode::OffNoMsync, false);
}

#[test]
#[ignore = "crash pair: crashes the machine; run by `cargo xtask dax-vm`"]
fn crash_write_sync_off_persist() {
    crash_write(CrashMode::OffPersist);
}

#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm` after crash_write_sync_off_persist"]
fn crash_verify_sync_off_persist() {
    crash_verify(CrashMode::OffPersist, true);
}

// ---- nvdimm label area ---------------------------------------------------

/// The label tests' backend: 16 MiB with QEMU's smallest label area, the
/// last 128 KiB.
const LABEL_BACKEND: usize = 16 * MIB;
const LABEL_SIZE: usize = 128 << 10;
/// One namespace label slot (the size of a v1.2 label).
const LABEL_SLOT: usize = 256;

/// The bytes of label slot `slot` for a given mode: distinct per slot and
/// per mode, never all zero.
fn label_slot(tag: &str, slot: usize) -> Vec<u8> {
    let seed = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (0..LABEL_SLOT / 8)
        .flat_map(|i| {
            let mut x = (slot * LABEL_SLOT / 8 + i) as u64 ^ seed;
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (x ^ (x >> 29) | 1).to_le_bytes()
        })
        .collect()
}

/// 5. A label area on DAX with `sync=on`: the area persists by cache-line
///    write-back (no msync), and what it wrote is in the file's last
///    128 KiB; `sync=off` on the same file system takes the msync path.
#[test]
fn label_area_on_dax() {
    use memory_backend::label::{Durability, LabelArea};
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let t = tree();
    for (id, sync) in [("l-on", "on"), ("l-off", "off")] {
        let path = fresh(&dax, &format!("{id}.dat"));
        let obj = t
            .object_add_str(&spec(
                &path,
                &format!("id={id},size={LABEL_BACKEND},share=on,pmem=on,sync={sync}"),
            ))
            .unwrap();
        let area = LabelArea::at_end(&obj, LABEL_SIZE as u64).unwrap();
        let expected = if sync == "on" {
            Durability::CacheLineWriteBack(flush_kind().0)
        } else {
            Durability::Msync
        };
        assert_eq!(area.durability(), expected);
        let label = label_slot(id, 3);
        area.write_persistent(3 * LABEL_SLOT, &label).unwrap();
        assert_eq!(
            read_file(
                &path,
                LABEL_BACKEND - LABEL_SIZE + 3 * LABEL_SLOT,
                LABEL_SLOT
            ),
            label
        );
        println!(
            "DAXVM-INFO fs={} label area sync={sync}: persists by {:?}",
            fs_name(),
            area.durability()
        );
        drop(area);
        t.object_del(id).unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}

/// How a label crash pair makes its labels durable.
#[derive(Clone, Copy)]
enum LabelCrash {
    /// `sync=on`: MAP_SYNC, `write_persistent` writes cache lines back.
    SyncOn,
    /// `sync=off`: `write_persistent` calls msync(MS_SYNC).
    SyncOff,
    /// The control: `sync=off` and plain `write`, nothing persisted. Only
    /// reported: it shows that the pair can tell lost labels from kept
    /// ones.
    Control,
}

impl LabelCrash {
    fn tag(self) -> &'static str {
        match self {
            LabelCrash::SyncOn => "label-sync-on",
            LabelCrash::SyncOff => "label-sync-off",
            LabelCrash::Control => "label-control",
        }
    }

    fn sync(self) -> &'static str {
        match self {
            LabelCrash::SyncOn => "on",
            LabelCrash::SyncOff | LabelCrash::Control => "off",
        }
    }

    fn file(self, dax: &Path) -> PathBuf {
        dax.join(format!("crash-{}.dat", self.tag()))
    }
}

/// Boot 1: a new backend file, every label slot of the area written with
/// `write_persistent` one slot at a time (as a guest's label updates
/// come; the control uses plain `write`), then the crash. Nothing but the
/// API's own persistence runs after the stores: no msync of the whole
/// file, no fsync, no unmount.
fn crash_write_label(mode: LabelCrash) {
    use memory_backend::label::{Durability, LabelArea};
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let path = fresh(&dax, &format!("crash-{}.dat", mode.tag()));
    fsync_path(&dax);
    let t = device_tree();
    let obj = t
        .object_add_str(&spec(
            &path,
            &format!(
                "id=nv,size={LABEL_BACKEND},share=on,pmem=on,sync={}",
                mode.sync()
            ),
        ))
        .unwrap();
    // the empty file and its size, durable before the stores (as above)
    fsync_path(&path);
    fsync_path(&dax);
    // The two real pairs reach the area as a VMM does, through an nvdimm
    // plugged on the backend; the control takes the backend's last bytes
    // directly (the same range).
    let area = match mode {
        LabelCrash::Control => LabelArea::at_end(&obj, LABEL_SIZE as u64).unwrap(),
        LabelCrash::SyncOn | LabelCrash::SyncOff => {
            let spec = format!("nvdimm,id=nvdimm0,memdev=nv,label-size={LABEL_SIZE}");
            let dev =
                qom_devices::device_add(&t, &qom_devices::DeviceSpec::parse(&spec), false).unwrap();
            qom_devices::nvdimm_label_area(&dev).unwrap()
        }
    };
    assert_eq!(area.offset(), LABEL_BACKEND - LABEL_SIZE);
    match mode {
        LabelCrash::SyncOn => assert!(matches!(
            area.durability(),
            Durability::CacheLineWriteBack(_)
        )),
        LabelCrash::SyncOff | LabelCrash::Control => {
            assert_eq!(area.durability(), Durability::Msync)
        }
    }
    let start = Instant::now();
    for slot in 0..LABEL_SIZE / LABEL_SLOT {
        let label = label_slot(mode.tag(), slot);
        match mode {
            LabelCrash::Control => area.write(slot * LABEL_SLOT, &label),
            _ => area.write_persistent(slot * LABEL_SLOT, &label),
        }
        .unwrap();
    }
    println!(
        "DAXVM-WRITE fs={} mode={} slots={} durability={:?} allocated_kib={} total_s={:.3}",
        fs_name(),
        mode.tag(),
        LABEL_SIZE / LABEL_SLOT,
        area.durability(),
        allocated(&path) / 1024,
        start.elapsed().as_secs_f64()
    );
    crash_the_guest();
}

/// Boot 2: the file keeps its size, and (with `strict`) every label slot
/// holds what boot 1 wrote, read through the file after journal replay or
/// log recovery.
fn crash_verify_label(mode: LabelCrash, strict: bool) {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    assert_eq!(
        std::env::var("DAXVM_PMEM_STATE").as_deref(),
        Ok("existing"),
        "must run on the NVDIMM image that the write boot crashed"
    );
    let path = mode.file(&dax);
    let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        meta.len(),
        LABEL_BACKEND as u64,
        "file size after the crash"
    );
    let area = read_file(&path, LABEL_BACKEND - LABEL_SIZE, LABEL_SIZE);
    let slots = LABEL_SIZE / LABEL_SLOT;
    let intact = (0..slots)
        .filter(|&s| area[s * LABEL_SLOT..][..LABEL_SLOT] == label_slot(mode.tag(), s)[..])
        .count();
    let zero = area.iter().all(|&b| b == 0);
    println!(
        "DAXVM-RESULT fs={} mode={} intact={intact}/{slots} all_zero={zero} allocated_kib={}",
        fs_name(),
        mode.tag(),
        meta.blocks() / 2
    );
    if strict {
        assert_eq!(intact, slots, "label slots lost in the crash");
    }
}

#[test]
#[ignore = "crash pair: crashes the machine; run by `cargo xtask dax-vm`"]
fn crash_write_label_sync_on() {
    crash_write_label(LabelCrash::SyncOn);
}

#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm` after crash_write_label_sync_on"]
fn crash_verify_label_sync_on() {
    crash_verify_label(LabelCrash::SyncOn, true);
}

#[test]
#[ignore = "crash pair: crashes the machine; run by `cargo xtask dax-vm`"]
fn crash_write_label_sync_off() {
    crash_write_label(LabelCrash::SyncOff);
}

#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm` after crash_write_label_sync_off"]
fn crash_verify_label_sync_off() {
    crash_verify_label(LabelCrash::SyncOff, true);
}

#[test]
#[ignore = "crash pair: crashes the machine; run by `cargo xtask dax-vm`"]
fn crash_write_label_control() {
    crash_write_label(LabelCrash::Control);
}

/// The control only reports what plain writes leave after a crash.
#[test]
#[ignore = "crash pair: run by `cargo xtask dax-vm` after crash_write_label_control"]
fn crash_verify_label_control() {
    crash_verify_label(LabelCrash::Control, false);
}
