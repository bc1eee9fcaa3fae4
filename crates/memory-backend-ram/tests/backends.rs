//! The three types through `qom::ObjectTree`: QEMU's defaults, share
//! semantics, memfd seals, QEMU's errors.

use std::os::fd::AsFd;

use memory_backend_ram::MEMFD_SEALS;
use qom::{ObjectTree, TypeRegistry};
use rustix::fs::{fcntl_get_seals, SealFlags};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    types.install(memory_backend_ram::register).unwrap();
    // A second registration is harmless.
    memory_backend_ram::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

fn add(tree: &ObjectTree, args: Value) -> qom::Result<qom::Object> {
    tree.object_add_args(args.as_object().unwrap())
}

/// Reads `fd` at `offset` with pread, i.e. not through our mapping.
fn pread(fd: impl AsFd, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let n = rustix::io::pread(fd, &mut buf, offset).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn defaults_read_back_as_in_qemu() {
    let t = tree();
    for (ty, id) in [
        ("memory-backend-ram", "r"),
        ("memory-backend-memfd", "m"),
        ("memory-backend-shm", "s"),
    ] {
        add(&t, json!({"qom-type": ty, "id": id, "size": MIB})).unwrap();
        // The base properties keep the base type's defaults.
        assert_eq!(t.qom_get(id, "size").unwrap(), json!(MIB));
        assert_eq!(t.qom_get(id, "reserve").unwrap(), json!(true));
        assert_eq!(t.qom_get(id, "prealloc").unwrap(), json!(false));
        assert_eq!(t.qom_get(id, "merge").unwrap(), json!(true));
        assert_eq!(t.qom_get(id, "policy").unwrap(), json!("default"));
    }
    // Values taken from QEMU 10.0.2 with qom-get after object-add.
    assert_eq!(t.qom_get("r", "share").unwrap(), json!(false));
    assert_eq!(t.qom_get("m", "share").unwrap(), json!(true));
    assert_eq!(t.qom_get("s", "share").unwrap(), json!(true));
    assert_eq!(t.qom_get("m", "seal").unwrap(), json!(true));
    assert_eq!(t.qom_get("m", "hugetlb").unwrap(), json!(false));
    assert_eq!(t.qom_get("m", "hugetlbsize").unwrap(), json!(0));
    // ram and shm add no properties of their own.
    assert!(t.qom_get("r", "seal").is_err());
    assert!(t.qom_get("s", "hugetlb").is_err());
    for id in ["r", "m", "s"] {
        t.object_del(id).unwrap();
    }
}

#[test]
fn after_creation_as_in_qemu() {
    let t = tree();
    add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "m", "size": MIB}),
    )
    .unwrap();
    let err = t.qom_set("m", "hugetlbsize", &json!(2 * MIB)).unwrap_err();
    assert_eq!(err.to_string(), "cannot change property value");
    let err = t.qom_set("m", "share", &json!(false)).unwrap_err();
    assert_eq!(err.to_string(), "cannot change property value");
    // QEMU accepts these and ignores them.
    t.qom_set("m", "seal", &json!(false)).unwrap();
    t.qom_set("m", "hugetlb", &json!(true)).unwrap();
    assert_eq!(t.qom_get("m", "seal").unwrap(), json!(false));
    let obj = t.object("m").unwrap();
    let ram = memory_backend::mapping(&obj).unwrap();
    assert_eq!(fcntl_get_seals(ram.fd().unwrap()).unwrap(), MEMFD_SEALS);
}

#[test]
fn share_on_is_visible_through_the_fd() {
    let t = tree();
    for (ty, id, extra) in [
        ("memory-backend-ram", "r", json!({"share": true})),
        ("memory-backend-memfd", "m", json!({})),
        ("memory-backend-shm", "s", json!({})),
    ] {
        let mut args = json!({"qom-type": ty, "id": id, "size": 2 * MIB});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let obj = add(&t, args).unwrap();
        let ram = memory_backend::mapping(&obj).unwrap();
        assert!(ram.shared(), "{ty}");
        assert_eq!(ram.len() as u64, 2 * MIB);
        ram.write_at(4096, b"guest data").unwrap();
        assert_eq!(pread(ram.fd().unwrap(), 4096, 10), b"guest data", "{ty}");
    }
}

#[test]
fn share_off_keeps_writes_private() {
    let t = tree();
    for ty in ["memory-backend-ram", "memory-backend-memfd"] {
        let obj = add(
            &t,
            json!({"qom-type": ty, "id": "p", "size": MIB, "share": false}),
        )
        .unwrap();
        let ram = memory_backend::mapping(&obj).unwrap();
        assert!(!ram.shared());
        ram.write_at(0, b"private").unwrap();
        let mut back = [0u8; 7];
        ram.read_at(0, &mut back).unwrap();
        assert_eq!(&back, b"private");
        match ram.fd() {
            // Copy-on-write: the file underneath still reads zeros.
            Some(fd) => assert_eq!(pread(fd, 0, 7), [0u8; 7], "{ty}"),
            // As in QEMU, ram with share=off is anonymous memory.
            None => assert_eq!(ty, "memory-backend-ram"),
        }
        drop(ram);
        t.object_del("p").unwrap();
    }
}

#[test]
fn memfd_seals() {
    let t = tree();
    let obj = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "sealed", "size": MIB}),
    )
    .unwrap();
    let ram = memory_backend::mapping(&obj).unwrap();
    let seals = fcntl_get_seals(ram.fd().unwrap()).unwrap();
    assert_eq!(seals, SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL);
    // The seals hold: the file can be neither shrunk nor grown.
    assert!(rustix::fs::ftruncate(ram.fd().unwrap(), 0).is_err());
    assert!(rustix::fs::ftruncate(ram.fd().unwrap(), 2 * MIB).is_err());

    let obj = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "open", "size": MIB, "seal": false}),
    )
    .unwrap();
    let ram = memory_backend::mapping(&obj).unwrap();
    // Without MFD_ALLOW_SEALING a memfd reports F_SEAL_SEAL only.
    assert_eq!(fcntl_get_seals(ram.fd().unwrap()).unwrap(), SealFlags::SEAL);
}

#[test]
fn memfd_flags_follow_qemu() {
    use rustix::fs::MemfdFlags;
    let f = memory_backend_ram::memfd_flags(false, 0, true).unwrap();
    assert_eq!(f, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING);
    let f = memory_backend_ram::memfd_flags(true, 2 * MIB, true).unwrap();
    assert_eq!(
        f,
        MemfdFlags::CLOEXEC
            | MemfdFlags::ALLOW_SEALING
            | MemfdFlags::HUGETLB
            | MemfdFlags::HUGE_2MB
    );
    // The size is only encoded with hugetlb, but always checked.
    let f = memory_backend_ram::memfd_flags(false, 2 * MIB, false).unwrap();
    assert_eq!(f, MemfdFlags::CLOEXEC);
    let err = memory_backend_ram::memfd_flags(false, 12288, false).unwrap_err();
    assert_eq!(err.to_string(), "Hugepage size must be a power of 2");
}

#[test]
fn errors_as_in_qemu() {
    let t = tree();
    let cases = [
        (
            json!({"qom-type": "memory-backend-shm", "id": "e", "size": MIB, "share": false}),
            "can't create shm backend with `share=off`",
        ),
        (
            json!({"qom-type": "memory-backend-memfd", "id": "e", "size": MIB, "hugetlbsize": 0}),
            "Property 'memory-backend-memfd.hugetlbsize' doesn't take value '0'",
        ),
        (
            json!({"qom-type": "memory-backend-memfd", "id": "e", "size": MIB,
                   "hugetlb": true, "hugetlbsize": 12288}),
            "Hugepage size must be a power of 2",
        ),
        (
            json!({"qom-type": "memory-backend-memfd", "id": "e", "size": 1000}),
            "e backing store size 0x3e8 is too small for 'size' option 0x1000 plus 'offset' option 0x0",
        ),
        (
            json!({"qom-type": "memory-backend-shm", "id": "e", "size": 1000}),
            "e backing store size 0x3e8 is too small for 'size' option 0x1000 plus 'offset' option 0x0",
        ),
    ];
    for (args, msg) in cases {
        let err = add(&t, args.clone()).unwrap_err();
        assert_eq!(err.to_string(), msg, "{args}");
        assert!(t.object("e").is_none(), "{args}");
    }
    // No 4 KiB huge pages anywhere (the errno depends on the kernel).
    let args = json!({"qom-type": "memory-backend-memfd", "id": "e", "size": MIB,
                      "hugetlb": true, "hugetlbsize": 4096});
    let err = add(&t, args).unwrap_err().to_string();
    assert!(
        err.starts_with("failed to create memfd with flags 0x30000007: "),
        "{err}"
    );
    // memory-backend-ram rounds the size up to the page size instead.
    add(
        &t,
        json!({"qom-type": "memory-backend-ram", "id": "ok", "size": 1000}),
    )
    .unwrap();
    assert_eq!(t.qom_get("ok", "size").unwrap(), json!(1000));
}

#[test]
fn shm_objects_are_numbered_as_in_qemu() {
    // Two trees of one process with a backend of the same id: QEMU's
    // numbered names keep them apart where names from the id would clash.
    let (a, b) = (tree(), tree());
    let args = json!({"qom-type": "memory-backend-shm", "id": "same", "size": MIB});
    let ra = memory_backend::mapping(&add(&a, args.clone()).unwrap()).unwrap();
    let rb = memory_backend::mapping(&add(&b, args).unwrap()).unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let prefix = format!("/dev/shm/qemu-{}-shm-", std::process::id());
    for ram in [&ra, &rb] {
        let start = format!("{:x}-", ram.as_ptr() as usize);
        let line = maps.lines().find(|l| l.starts_with(&start)).unwrap();
        let name = line.split_whitespace().nth(5).unwrap();
        let n = name
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line}"));
        assert!(n.parse::<u64>().is_ok(), "{line}");
        assert!(line.ends_with("(deleted)"), "{line}");
    }
}
