//! `memory_backend::label::LabelArea` over `memory-backend-file` objects on
//! tmpfs (/dev/shm) and ext4 or xfs (/var/tmp or /tmp): QEMU's layout and
//! checks, round trips, bounds, and which persistence path a mapping gets.
//! What reaches the file is read back through a separate descriptor. The
//! `MAP_SYNC` path and survival of a crash are in tests/dax.rs (the DAX
//! guest of `cargo xtask dax-vm`).

use qom_test_support as common;

use std::os::unix::fs::FileExt;
use std::path::Path;

use common::TempDir;
use memory_backend::host::HostError;
use memory_backend::label::{
    nvdimm_layout, Durability, LabelArea, LabelError, NvdimmLayout, MIN_LABEL_SIZE,
};
use qom::{ErrorClass, ObjectTree, TypeRegistry};

const MIB: usize = 1 << 20;
const KIB: usize = 1 << 10;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

fn add(t: &ObjectTree, id: &str, path: &Path, rest: &str) {
    let path = path.to_str().unwrap();
    t.object_add_str(&format!(
        "memory-backend-file,id={id},mem-path={path},{rest}"
    ))
    .unwrap();
}

/// The file's bytes, read through a descriptor of our own, not the mapping.
fn file_bytes(path: &Path, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, offset as u64)
        .unwrap();
    buf
}

fn ext4_dir() -> TempDir {
    common::ext4_or_xfs_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// QEMU's layout: a 128 MiB backend with a 128 KiB label gives the guest
/// 134086656 bytes (QEMU 10.0.2's answer for `nvdimm.size`), and the label
/// is the last 128 KiB.
#[test]
fn layout_matches_qemu() {
    let l = nvdimm_layout("n1", 128 * MIB as u64, 4096, 128 * KIB as u64).unwrap();
    assert_eq!(
        l,
        NvdimmLayout {
            label_offset: 128 * MIB as u64 - 128 * KIB as u64,
            label_size: 128 * KIB as u64,
            pmem_size: 134086656,
        }
    );
    // The labels keep the exact last bytes; only the guest's part is
    // rounded down.
    let l = nvdimm_layout("n1", 4 * MIB as u64 + 4096, 2 * MIB as u64, 0x30000).unwrap();
    assert_eq!(l.label_offset, 4 * MIB as u64 + 4096 - 0x30000);
    assert_eq!(l.pmem_size, 2 * MIB as u64);
}

/// QEMU's two refusals, word for word (tests/oracle's devices transcript).
#[test]
fn qemu_checks_and_messages() {
    for small in [0, 0x1000, MIN_LABEL_SIZE - 1] {
        let e = nvdimm_layout("n2", 128 * MIB as u64, 4096, small).unwrap_err();
        assert_eq!(e, LabelError::LabelSizeTooSmall { label_size: small });
    }
    assert_eq!(
        nvdimm_layout("n2", 128 * MIB as u64, 4096, 0x1000)
            .unwrap_err()
            .to_string(),
        "Property 'nvdimm.label-size' (0x1000) is required at least 0x20000"
    );
    assert_eq!(
        nvdimm_layout("n3", 2 * MIB as u64, 4096, 4 * MIB as u64)
            .unwrap_err()
            .to_string(),
        "the size of memdev n3 (0x200000) is too small to contain nvdimm label (0x400000) \
         and aligned PMEM (0x1000)"
    );
    // Equal sizes, and a remainder smaller than one aligned block.
    assert!(matches!(
        nvdimm_layout("n", 0x20000, 4096, 0x20000),
        Err(LabelError::BackendTooSmall { .. })
    ));
    assert!(matches!(
        nvdimm_layout("n", 0x20800, 4096, 0x20000),
        Err(LabelError::BackendTooSmall { .. })
    ));
    assert!(nvdimm_layout("n", 0x21000, 4096, 0x20000).is_ok());
}

/// `at_end` on real backends: the same checks with the backend's id, size
/// and alignment (its `align` property counts), nothing held on failure.
#[test]
fn at_end_checks_the_backend() {
    let dir = TempDir::new_in("/dev/shm");
    let t = tree();
    add(&t, "n3", &dir.join("n3"), "size=2M,share=on");
    let n3 = t.object("n3").unwrap();
    let e = LabelArea::at_end(&n3, 4 * MIB as u64).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the size of memdev n3 (0x200000) is too small to contain nvdimm label (0x400000) \
         and aligned PMEM (0x1000)"
    );
    let e = LabelArea::at_end(&n3, 0x1000).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Property 'nvdimm.label-size' (0x1000) is required at least 0x20000"
    );
    // As a QMP error: the same text, GenericError.
    let q: qom::Error = e.into();
    assert_eq!(q.class(), ErrorClass::GenericError);
    assert_eq!(
        q.to_string(),
        "Property 'nvdimm.label-size' (0x1000) is required at least 0x20000"
    );

    // align=2M: 3 MiB minus the label leaves less than one aligned block.
    add(&t, "al", &dir.join("al"), "size=3M,share=on,align=2M");
    let al = t.object("al").unwrap();
    assert_eq!(
        LabelArea::at_end(&al, 2 * MIB as u64)
            .unwrap_err()
            .to_string(),
        "the size of memdev al (0x300000) is too small to contain nvdimm label (0x200000) \
         and aligned PMEM (0x200000)"
    );
    assert!(LabelArea::at_end(&al, MIN_LABEL_SIZE).is_ok());

    // Failed attempts hold nothing: the backends can go.
    t.object_del("n3").unwrap();
    t.object_del("al").unwrap();

    // Not a created backend: the object model's error.
    let other = t.object_add_str("thread-context,id=tc").unwrap();
    let e = LabelArea::at_end(&other, MIN_LABEL_SIZE).unwrap_err();
    assert!(matches!(e, LabelError::Backend(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "object type 'thread-context' is not a memory backend"
    );
}

/// A label written through the area on tmpfs: the msync path, the bytes
/// in the file's last `label-size` bytes, the backend held while in use.
#[test]
fn tmpfs_round_trip_reaches_the_file() {
    let dir = TempDir::new_in("/dev/shm");
    let path = dir.join("nv");
    round_trip(&path, 16 * MIB);
}

/// The same on ext4 or xfs, where msync writes the page cache back to
/// the disk.
#[test]
fn ext4_round_trip_reaches_the_file() {
    let dir = ext4_dir();
    round_trip(&dir.join("nv"), 8 * MIB);
}

fn round_trip(path: &Path, size: usize) {
    let t = tree();
    add(&t, "nv", path, &format!("size={size},share=on"));
    let obj = t.object("nv").unwrap();
    let label_size = 256 * KIB;
    let area = LabelArea::at_end(&obj, label_size as u64).unwrap();
    assert_eq!(area.len(), label_size);
    assert_eq!(area.offset(), size - label_size);
    assert_eq!(area.durability(), Durability::Msync);

    // An index block at the start of the area, a label near its end.
    area.write_persistent(0, b"NAMESPACE_INDEX\0").unwrap();
    let label = [0xa5u8; 128];
    area.write(label_size - 128, &label).unwrap();
    area.persist(label_size - 128..).unwrap();
    area.persist(..).unwrap();

    let mut back = [0u8; 16];
    area.read(0, &mut back).unwrap();
    assert_eq!(&back, b"NAMESPACE_INDEX\0");
    assert_eq!(
        file_bytes(path, size - label_size, 16),
        b"NAMESPACE_INDEX\0"
    );
    assert_eq!(file_bytes(path, size - 128, 128), label);
    // Nothing before the area was touched.
    assert!(file_bytes(path, 0, size - label_size)
        .iter()
        .all(|&b| b == 0));

    assert_eq!(
        t.object_del("nv").unwrap_err().to_string(),
        "object 'nv' is in use, can not be deleted"
    );
    drop(area);
    t.object_del("nv").unwrap();
    // The label outlives the backend in the file.
    assert_eq!(file_bytes(path, size - 128, 128), label);
}

/// Every access that leaves the area fails with a typed error and changes
/// nothing, also where offset + length overflows.
#[test]
fn bounds_are_checked_and_change_nothing() {
    let dir = TempDir::new_in("/dev/shm");
    let path = dir.join("b");
    let t = tree();
    add(&t, "b", &path, "size=1M,share=on");
    let area = LabelArea::at_end(&t.object("b").unwrap(), MIN_LABEL_SIZE).unwrap();
    let len = area.len();
    let base = MIB - len;

    let out = |offset, l| LabelError::OutOfRange {
        offset,
        len: l,
        label_len: len,
    };
    assert_eq!(area.write(len - 1, b"xy"), Err(out(len - 1, 2)));
    assert_eq!(area.write_persistent(len, b"x"), Err(out(len, 1)));
    assert_eq!(area.write(usize::MAX, b"x"), Err(out(usize::MAX, 1)));
    let mut buf = [0u8; 8];
    assert_eq!(area.read(len - 7, &mut buf), Err(out(len - 7, 8)));
    assert_eq!(
        area.read(usize::MAX - 3, &mut buf),
        Err(out(usize::MAX - 3, 8))
    );
    assert_eq!(area.persist(0..len + 1), Err(out(0, len + 1)));
    assert_eq!(area.persist(..=len), Err(out(0, len + 1)));
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = 9..3;
    assert_eq!(
        area.persist(inverted),
        Err(LabelError::InvertedRange { start: 9, end: 3 })
    );
    assert_eq!(
        out(len - 1, 2).to_string(),
        "label access of 0x2 bytes at offset 0x1ffff is outside the label area of 0x20000 bytes"
    );
    assert!(file_bytes(&path, base, len).iter().all(|&b| b == 0));

    // Empty accesses at the very end are fine.
    area.write(len, b"").unwrap();
    area.persist(len..len).unwrap();

    // `new`: a range that leaves the mapping.
    let mem = memory_backend::map(&t.object("b").unwrap()).unwrap();
    let e = LabelArea::new(mem, MIB - 4096, 8192).unwrap_err();
    assert_eq!(
        e.to_string(),
        "label area of 0x2000 bytes at offset 0xff000 does not fit in guest RAM of 0x100000 bytes"
    );
    // ... and it gave its hold on the backend back.
    drop(area);
    t.object_del("b").unwrap();
}

/// `share=off`: writes and reads work (as QEMU's label writes do), but
/// nothing can be made durable, so `write_persistent` and `persist` refuse
/// before writing anything, and the file never changes.
#[test]
fn private_mapping_is_never_durable() {
    let dir = TempDir::new_in("/dev/shm");
    let path = dir.join("p");
    let t = tree();
    add(&t, "p", &path, "size=1M,share=off");
    let area = LabelArea::at_end(&t.object("p").unwrap(), MIN_LABEL_SIZE).unwrap();
    assert_eq!(area.durability(), Durability::None);
    assert!(!area.durability().is_durable());

    assert_eq!(
        area.write_persistent(0, b"lost"),
        Err(LabelError::NotDurable)
    );
    let mut buf = [0u8; 4];
    area.read(0, &mut buf).unwrap();
    assert_eq!(buf, [0; 4], "a refused write_persistent wrote nothing");

    area.write(0, b"kept in memory").unwrap();
    area.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"kept");
    assert_eq!(area.persist(..), Err(LabelError::NotDurable));
    assert_eq!(
        LabelError::NotDurable.to_string(),
        "the label area cannot be made durable: its memory backend is a private mapping \
         (share=off)"
    );
    assert!(file_bytes(&path, 0, MIB).iter().all(|&b| b == 0));
    drop(area);
    t.object_del("p").unwrap();
}

/// A read-only backend: reads work, writes fail with the host layer's
/// error and leave the file as it was.
#[test]
fn read_only_backend_refuses_writes() {
    let dir = TempDir::new_in("/dev/shm");
    let path = dir.join("ro");
    let mut content = vec![0u8; MIB];
    content[MIB - MIN_LABEL_SIZE as usize..][..5].copy_from_slice(b"label");
    std::fs::write(&path, &content).unwrap();
    let t = tree();
    add(&t, "ro", &path, "size=1M,share=on,readonly=on");
    let area = LabelArea::at_end(&t.object("ro").unwrap(), MIN_LABEL_SIZE).unwrap();
    let mut buf = [0u8; 5];
    area.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"label");
    assert_eq!(
        area.write(0, b"other"),
        Err(LabelError::Host(HostError::ReadOnly))
    );
    assert_eq!(
        area.write_persistent(0, b"other"),
        Err(LabelError::Host(HostError::ReadOnly))
    );
    assert_eq!(std::fs::read(&path).unwrap(), content);
    drop(area);
    t.object_del("ro").unwrap();
}

/// Several threads write their own labels through one area and persist
/// them; every label ends up in the file.
#[test]
fn threads_share_one_area() {
    let dir = TempDir::new_in("/dev/shm");
    let path = dir.join("th");
    let t = tree();
    add(&t, "th", &path, "size=2M,share=on");
    let area = LabelArea::at_end(&t.object("th").unwrap(), MIN_LABEL_SIZE).unwrap();
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let area = &area;
            s.spawn(move || {
                for slot in 0..64usize {
                    let off = (usize::from(i) * 64 + slot) * 128;
                    area.write_persistent(off, &[i + 1; 128]).unwrap();
                }
            });
        }
    });
    let bytes = file_bytes(&path, 2 * MIB - MIN_LABEL_SIZE as usize, 4 * 64 * 128);
    for (n, chunk) in bytes.chunks(64 * 128).enumerate() {
        assert!(chunk.iter().all(|&b| b == n as u8 + 1), "thread {n}");
    }
    drop(area);
    t.object_del("th").unwrap();
}
