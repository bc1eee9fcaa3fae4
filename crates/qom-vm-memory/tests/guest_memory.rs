//! Guest memory built from each kind of backend, through vm-memory's
//! accessors against the backends' own; layouts that must be refused; the
//! in-use mark. The file backends need /tmp or /var/tmp on ext4 or xfs
//! and /dev/shm on tmpfs, the huge page test root (it adds two pages to
//! the pool): the tests fail, saying so, without them.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use memory_backend::host::host_page_size;
use qom::{Object, ObjectTree, TypeRegistry};
use qom_test_support::{ext4_or_xfs_dir, fs_type, TempDir};
use qom_vm_memory::{BackendGuestMemory, ExportError, LayoutError, KVM_MEM_READONLY};
use serde_json::{json, Value};
use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryBackend, GuestMemoryError, GuestMemoryRegion,
    Permissions,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_ram::register(&types).unwrap();
    memory_backend_file::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

fn add(tree: &ObjectTree, args: Value) -> Object {
    tree.object_add_args(args.as_object().unwrap())
        .unwrap_or_else(|e| panic!("object-add {args}: {e}"))
}

fn ext4_dir() -> TempDir {
    ext4_or_xfs_dir().unwrap_or_else(|why| {
        panic!("{why}: run the tests where /var/tmp or /tmp is on such a file system")
    })
}

fn tmpfs_dir() -> TempDir {
    let t = fs_type(Path::new("/dev/shm"));
    assert_eq!(
        t.as_deref(),
        Some("tmpfs"),
        "this test needs /dev/shm on tmpfs (mount -t tmpfs tmpfs /dev/shm)"
    );
    TempDir::new_in("/dev/shm")
}

/// The backends a test places: `(description, args without the id)`.
fn kinds(ext4: &TempDir, tmpfs: &TempDir) -> Vec<(String, Value)> {
    let mut v = Vec::new();
    for share in [true, false] {
        for (fs, dir) in [("ext4", ext4), ("tmpfs", tmpfs)] {
            v.push((
                format!("file on {fs}, share={share}"),
                json!({"qom-type": "memory-backend-file", "size": 2 * MIB,
                       "mem-path": dir.path(), "share": share}),
            ));
        }
        v.push((
            format!("ram, share={share}"),
            json!({"qom-type": "memory-backend-ram", "size": 2 * MIB, "share": share}),
        ));
    }
    v.push((
        "memfd".into(),
        json!({"qom-type": "memory-backend-memfd", "size": 2 * MIB}),
    ));
    v.push((
        "shm".into(),
        json!({"qom-type": "memory-backend-shm", "size": 2 * MIB}),
    ));
    v
}

fn with_id(args: &Value, id: &str) -> Value {
    let mut a = args.clone();
    a["id"] = json!(id);
    a
}

/// Inode identity of a descriptor.
fn identity(fd: impl AsFd) -> (u64, u64) {
    let st = rustix::fs::fstat(fd).unwrap();
    (st.st_dev, st.st_ino)
}

#[test]
fn every_kind_at_0_and_4_gib_sees_the_backends_bytes() {
    let (ext4, tmpfs) = (ext4_dir(), tmpfs_dir());
    for (what, args) in kinds(&ext4, &tmpfs) {
        let t = tree();
        let low = add(&t, with_id(&args, "low"));
        let high = add(&t, with_id(&args, "high"));
        let mem =
            BackendGuestMemory::new([(GuestAddress(0), &low), (GuestAddress(4 * GIB), &high)])
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(mem.physical_memory().unwrap().num_regions(), 2, "{what}");

        for (base, obj) in [(0, &low), (4 * GIB, &high)] {
            let ram = memory_backend::mapping(obj).unwrap();
            let len = ram.len() as u64;
            for off in [0, 0x1234, len / 2, len - 8] {
                let value = 0x0123_4567_89ab_cdef_u64 ^ (base + off);
                // vm-memory writes, the backend reads.
                mem.write_obj(value, GuestAddress(base + off)).unwrap();
                let mut got = [0u8; 8];
                ram.read_at(off as usize, &mut got).unwrap();
                assert_eq!(
                    u64::from_ne_bytes(got),
                    value,
                    "{what} at {base:#x}+{off:#x}"
                );
                // The backend writes, vm-memory reads.
                ram.write_at(off as usize, &(!value).to_ne_bytes()).unwrap();
                assert_eq!(
                    mem.read_obj::<u64>(GuestAddress(base + off)).unwrap(),
                    !value
                );
            }
            // One byte past the region is no guest memory.
            assert!(
                mem.read_obj::<u8>(GuestAddress(base + len)).is_err(),
                "{what}"
            );
            assert!(
                mem.write_obj(1u64, GuestAddress(base + len - 4)).is_err(),
                "{what}: a write across the end"
            );

            let region = mem
                .physical_memory()
                .unwrap()
                .find_region(GuestAddress(base))
                .unwrap();
            assert_eq!(region.id(), if base == 0 { "low" } else { "high" });
            assert_eq!(region.len(), len);
            // Private RAM may be anonymous memory without a descriptor;
            // every other kind has one.
            let may_lack_fd = what.starts_with("ram, share=false");
            match (region.fd(), region.file_offset()) {
                (Some(fd), Some(fo)) => {
                    assert_eq!(fo.start(), ram.offset(), "{what}");
                    assert_eq!(identity(fo.file()), identity(fd), "{what}");
                    assert_ne!(fo.file().as_raw_fd(), fd.as_raw_fd(), "{what}: a dup");
                    if ram.shared() {
                        // The file itself sees what the guest wrote
                        // (pread, not through any mapping).
                        let mut got = [0u8; 8];
                        rustix::io::pread(fo.file(), &mut got, fo.start() + 0x1234).unwrap();
                        let expected = !(0x0123_4567_89ab_cdef_u64 ^ (base + 0x1234));
                        assert_eq!(u64::from_ne_bytes(got), expected, "{what}");
                    }
                }
                (None, None) => assert!(may_lack_fd, "{what}: no descriptor"),
                (fd, fo) => panic!("{what}: descriptor {fd:?} but FileOffset {fo:?}"),
            }
        }

        let slots = mem.kvm_slots(3);
        assert_eq!(slots.len(), 2);
        for (slot, (n, base, obj)) in slots.iter().zip([(3, 0, &low), (4, 4 * GIB, &high)]) {
            let ram = memory_backend::mapping(obj).unwrap();
            assert_eq!(slot.slot, n);
            assert_eq!(slot.guest_phys_addr, base);
            assert_eq!(slot.memory_size, ram.len() as u64);
            assert_eq!(slot.userspace_addr, ram.as_ptr() as u64);
            assert_eq!(slot.flags, 0);
        }
        drop(mem);
        t.object_del("low").unwrap();
        t.object_del("high").unwrap();
    }
}

#[test]
fn a_file_offset_reaches_file_offset_and_the_tables() {
    let dir = tmpfs_dir();
    let t = tree();
    let path = dir.file("guest");
    let obj = add(
        &t,
        json!({"qom-type": "memory-backend-file", "id": "m", "size": 2 * MIB,
               "mem-path": path, "offset": 4 * MIB, "share": true}),
    );
    let mem = BackendGuestMemory::new([(GuestAddress(GIB), &obj)]).unwrap();
    mem.write_slice(b"past the offset", GuestAddress(GIB + 16))
        .unwrap();

    let region = mem.regions().next().unwrap();
    let fo = region.file_offset().unwrap();
    assert_eq!(fo.start(), 4 * MIB);
    let mut got = [0u8; 15];
    rustix::io::pread(fo.file(), &mut got, 4 * MIB + 16).unwrap();
    assert_eq!(&got, b"past the offset");

    let table = mem.vhost_user_table().unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].mmap_offset, 4 * MIB);
    assert_eq!(table[0].guest_phys_addr, GIB);
    assert_eq!(table[0].memory_size, 2 * MIB);
    assert_eq!(table[0].userspace_addr, region.host_addr());
    assert!(!table[0].readonly);
    assert_eq!(identity(table[0].fd), identity(fo.file()));
}

#[test]
fn rom_is_a_readonly_slot_and_refuses_writes() {
    let dir = ext4_dir();
    let path = dir.join("rom.img");
    let mut image = vec![0u8; 2 * MIB as usize];
    image[..8].copy_from_slice(b"firmware");
    std::fs::write(&path, &image).unwrap();
    let t = tree();
    let rom = add(
        &t,
        json!({"qom-type": "memory-backend-file", "id": "rom", "size": 2 * MIB,
               "mem-path": path, "readonly": true, "share": true}),
    );
    assert_eq!(t.qom_get("rom", "rom").unwrap(), json!("on"));
    let ram = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "ram", "size": 2 * MIB}),
    );
    let mem = BackendGuestMemory::new([(GuestAddress(0), &ram), (GuestAddress(0xffe0_0000), &rom)])
        .unwrap();

    let mut buf = [0u8; 8];
    mem.read_slice(&mut buf, GuestAddress(0xffe0_0000)).unwrap();
    assert_eq!(&buf, b"firmware");
    let err = mem
        .write_slice(b"x", GuestAddress(0xffe0_0004))
        .unwrap_err();
    match err {
        GuestMemoryError::IOError(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
            assert_eq!(
                e.to_string(),
                "guest memory at [0xffe00000, 0xffffffff] is read-only (memory backend 'rom')"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    mem.read_slice(&mut buf, GuestAddress(0xffe0_0000)).unwrap();
    assert_eq!(&buf, b"firmware", "the refused write changed nothing");
    assert!(mem.check_range(GuestAddress(0xffe0_0000), 8, Permissions::Read));
    assert!(!mem.check_range(GuestAddress(0xffe0_0000), 8, Permissions::Write));
    assert!(mem.check_range(GuestAddress(0), 8, Permissions::ReadWrite));
    mem.write_obj(7u8, GuestAddress(0)).unwrap();

    let slots = mem.kvm_slots(0);
    assert_eq!(slots[0].flags, 0);
    assert_eq!(slots[1].flags, KVM_MEM_READONLY);
    let table = mem.vhost_user_table().unwrap();
    assert!(table[1].readonly && !table[0].readonly);
}

#[test]
fn object_del_is_refused_while_the_guest_memory_lives() {
    let t = tree();
    let a = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "a", "size": 2 * MIB}),
    );
    let b = add(
        &t,
        json!({"qom-type": "memory-backend-ram", "id": "b", "size": 2 * MIB}),
    );
    let mem =
        BackendGuestMemory::new([(GuestAddress(0), &a), (GuestAddress(4 * GIB), &b)]).unwrap();
    drop((a, b));
    let copy = mem.clone();
    for id in ["a", "b"] {
        let err = t.object_del(id).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("object '{id}' is in use, can not be deleted")
        );
        assert!(t.object(id).is_some());
    }
    drop(mem);
    // The clone still holds the regions.
    assert!(t.object_del("a").is_err());
    copy.write_obj(5u32, GuestAddress(4 * GIB)).unwrap();
    drop(copy);
    t.object_del("a").unwrap();
    t.object_del("b").unwrap();
    assert!(t.object("a").is_none() && t.object("b").is_none());
}

/// A refused layout: its message, and every backend deletable afterwards
/// (nothing stayed marked in use).
fn refused(t: &ObjectTree, layout: &[(u64, &str)]) -> LayoutError {
    let layout: Vec<_> = layout
        .iter()
        .map(|&(a, id)| (GuestAddress(a), id))
        .collect();
    let err = BackendGuestMemory::from_ids(t, &layout).unwrap_err();
    for (_, id) in &layout {
        if let Some(obj) = t.object(id) {
            assert!(
                !memory_backend::is_mapped(&obj),
                "{id} still in use after: {err}"
            );
        }
    }
    err
}

#[test]
fn bad_layouts_are_refused_and_leave_the_backends_alone() {
    let t = tree();
    for id in ["a", "b"] {
        add(
            &t,
            json!({"qom-type": "memory-backend-memfd", "id": id, "size": 2 * MIB}),
        );
    }
    add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "big", "size": 4 * MIB}),
    );
    let page = host_page_size() as u64;

    let e = refused(&t, &[(0, "a"), (MIB, "b")]);
    assert!(matches!(e, LayoutError::Overlap { .. }));
    assert_eq!(
        e.to_string(),
        "memory backend 'b' at [0x100000, 0x2fffff] overlaps 'a' at [0x0, 0x1fffff]"
    );
    // Overlap found whatever the order given.
    let e = refused(&t, &[(4 * GIB + MIB, "b"), (4 * GIB, "a"), (0, "big")]);
    assert!(matches!(e, LayoutError::Overlap { .. }), "{e}");
    // Touching is fine.
    BackendGuestMemory::from_ids(&t, &[(GuestAddress(0), "a"), (GuestAddress(2 * MIB), "b")])
        .unwrap();

    let e = refused(&t, &[(page / 2, "a")]);
    assert_eq!(
        e.to_string(),
        format!("guest address {:#x} of memory backend 'a' is not a multiple of its page size {page:#x}", page / 2)
    );
    let e = refused(&t, &[(0, "a"), (u64::MAX - page + 1, "b")]);
    assert!(matches!(e, LayoutError::Overflow { .. }), "{e}");
    let e = refused(&t, &[(0, "a"), (4 * GIB, "a")]);
    assert_eq!(
        e.to_string(),
        "memory backend 'a' is placed twice, at 0x0 and 0x100000000"
    );
    let e = refused(&t, &[(0, "a"), (4 * GIB, "nope")]);
    assert_eq!(e.to_string(), "Memory backend 'nope' not found");
    let e = refused(&t, &[]);
    assert_eq!(e.to_string(), "no memory backend placed in guest memory");

    // Not a memory backend.
    add(&t, json!({"qom-type": "thread-context", "id": "tc"}));
    let e = refused(&t, &[(0, "a"), (4 * GIB, "tc")]);
    assert_eq!(
        e.to_string(),
        "object type 'thread-context' is not a memory backend"
    );

    // In use by another guest memory (or device).
    let first = BackendGuestMemory::from_ids(&t, &[(GuestAddress(0), "a")]).unwrap();
    let err = BackendGuestMemory::from_ids(&t, &[(GuestAddress(0), "b"), (GuestAddress(GIB), "a")])
        .unwrap_err();
    assert_eq!(err.to_string(), "can't use already busy memdev: a");
    assert!(!memory_backend::is_mapped(&t.object("b").unwrap()));
    drop(first);

    for id in ["a", "b", "big", "tc"] {
        t.object_del(id).unwrap();
    }
}

#[test]
fn share_off_memory_is_refused_for_export() {
    let t = tree();
    let shared = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "s", "size": 2 * MIB}),
    );
    let private = add(
        &t,
        json!({"qom-type": "memory-backend-ram", "id": "p", "size": 2 * MIB, "share": false}),
    );
    let mem = BackendGuestMemory::new([(GuestAddress(0), &shared), (GuestAddress(GIB), &private)])
        .unwrap();
    let err = mem.vhost_user_table().unwrap_err();
    assert_eq!(err, ExportError::NotShared { id: "p".into() });
    assert_eq!(
        err.to_string(),
        "memory backend 'p' has share=off: its guest memory cannot be shared with another process (use share=on)"
    );
    // Still usable in this process.
    mem.write_obj(1u8, GuestAddress(GIB)).unwrap();
    assert_eq!(mem.kvm_slots(0).len(), 2);
}

#[test]
fn shared_between_threads_as_an_address_space() {
    fn address_space<A: vm_memory::GuestAddressSpace + Send + Sync + 'static>(a: A) -> A {
        a
    }
    let t = tree();
    let obj = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "m", "size": 2 * MIB}),
    );
    let mem = address_space(std::sync::Arc::new(
        BackendGuestMemory::new([(GuestAddress(4 * GIB), &obj)]).unwrap(),
    ));
    drop(obj);
    let writers: Vec<_> = (0..4u64)
        .map(|i| {
            let mem = mem.clone();
            std::thread::spawn(move || {
                let m = vm_memory::GuestAddressSpace::memory(&mem);
                for n in 0..1000u64 {
                    m.write_obj(n, GuestAddress(4 * GIB + i * 4096)).unwrap();
                }
            })
        })
        .collect();
    // Deletion keeps being refused while any thread holds the memory.
    for _ in 0..100 {
        assert!(t.object_del("m").is_err());
    }
    for w in writers {
        w.join().unwrap();
    }
    for i in 0..4u64 {
        assert_eq!(
            mem.read_obj::<u64>(GuestAddress(4 * GIB + i * 4096))
                .unwrap(),
            999
        );
    }
    drop(mem);
    t.object_del("m").unwrap();
}

#[test]
fn hot_plug_and_unplug_share_the_regions() {
    let t = tree();
    let a = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "a", "size": 2 * MIB}),
    );
    let b = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "b", "size": 2 * MIB}),
    );
    let c = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "c", "size": 2 * MIB}),
    );
    let before = BackendGuestMemory::new([(GuestAddress(0), &a)]).unwrap();
    before.write_obj(0xaa_u8, GuestAddress(0)).unwrap();

    // Refusals leave both the old memory and the backend as they were.
    let e = before.with_backend(GuestAddress(MIB), &b).unwrap_err();
    assert!(matches!(e, LayoutError::Overlap { .. }), "{e}");
    assert!(!memory_backend::is_mapped(&b));
    let e = before.with_backend(GuestAddress(GIB), &a).unwrap_err();
    assert!(matches!(e, LayoutError::Duplicate { .. }), "{e}");

    let with_b = before.with_backend(GuestAddress(4 * GIB), &b).unwrap();
    let after = with_b.with_backend(GuestAddress(2 * GIB), &c).unwrap();
    drop(with_b);
    let starts: Vec<u64> = after.regions().map(|r| r.start_addr().0).collect();
    assert_eq!(starts, [0, 2 * GIB, 4 * GIB]);
    // Same memory, not a second mapping.
    assert_eq!(after.read_obj::<u8>(GuestAddress(0)).unwrap(), 0xaa);
    assert_eq!(
        after.regions().next().unwrap().host_addr(),
        before.regions().next().unwrap().host_addr()
    );
    drop(before);
    assert!(t.object_del("a").is_err(), "still in the new memory");

    let (smaller, removed) = after.without_region(GuestAddress(4 * GIB)).unwrap();
    assert_eq!(removed.id(), "b");
    assert!(smaller.read_obj::<u8>(GuestAddress(4 * GIB)).is_err());
    assert_eq!(
        after
            .without_region(GuestAddress(GIB))
            .unwrap_err()
            .to_string(),
        "no memory backend starts at guest address 0x40000000"
    );
    drop(after);
    assert!(t.object_del("b").is_err(), "the removed region holds it");
    drop(removed);
    t.object_del("b").unwrap();
    drop(smaller);
    drop((a, c));
    t.object_del("a").unwrap();
    t.object_del("c").unwrap();
}

#[test]
fn huge_pages_need_aligned_guest_addresses() {
    let _pages = qom_test_support::HugePages::add(2).unwrap_or_else(|why| panic!("{why}"));
    let t = tree();
    let obj = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "h", "size": 2 * MIB, "hugetlb": true}),
    );
    let huge = memory_backend::mapping(&obj).unwrap().page_size();
    assert!(huge > host_page_size(), "hugetlb=on gave {huge}-byte pages");
    let e = BackendGuestMemory::new([(GuestAddress(huge as u64 / 2), &obj)]).unwrap_err();
    assert!(
        matches!(e, LayoutError::Misaligned { page_size, .. } if page_size == huge),
        "{e}"
    );
    let mem = BackendGuestMemory::new([(GuestAddress(huge as u64), &obj)]).unwrap();
    let region = mem.regions().next().unwrap();
    assert_eq!(region.is_hugetlbfs(), Some(true));
    mem.write_obj(3u64, GuestAddress(huge as u64 + 8)).unwrap();
    assert_eq!(
        mem.read_obj::<u64>(GuestAddress(huge as u64 + 8)).unwrap(),
        3
    );
    drop(mem);
    drop(obj);
    t.object_del("h").unwrap();
}

/// Another layout claims the backend inside this one's window between
/// finding it and claiming it (the seam runs it there): one layout gets
/// the backend, the other is refused as busy and holds nothing.
#[test]
fn a_claim_made_inside_the_window_leaves_the_layout_busy() {
    let t = tree();
    let a = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "a", "size": 2 * MIB}),
    );
    let won = std::rc::Rc::new(std::cell::RefCell::new(None));
    let put = won.clone();
    memory_backend::backend::seams::set_before_claim(Some(Box::new(move |o: &Object| {
        *put.borrow_mut() = Some(BackendGuestMemory::new([(GuestAddress(GIB), o)]));
    })));
    let outer = BackendGuestMemory::new([(GuestAddress(0), &a)]);
    memory_backend::backend::seams::set_before_claim(None);
    let inner = won
        .take()
        .expect("the hook ran")
        .expect("the first claim wins");
    let err = outer.unwrap_err();
    assert!(matches!(err, LayoutError::Busy { .. }), "{err}");
    assert_eq!(err.to_string(), "can't use already busy memdev: a");
    drop(inner);
    assert!(!memory_backend::is_mapped(&a));
    t.object_del("a").unwrap();
}

/// Two threads build a guest memory from the same backend at once, round
/// after round: exactly one succeeds each time.
#[test]
fn racing_layouts_of_one_backend_have_one_winner() {
    let t = tree();
    let a = add(
        &t,
        json!({"qom-type": "memory-backend-memfd", "id": "a", "size": 2 * MIB}),
    );
    for round in 0..300 {
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let done = std::sync::Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (a, start, done) = (a.clone(), start.clone(), done.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let mem = BackendGuestMemory::new([(GuestAddress(0), &a)]);
                    done.wait();
                    mem.is_ok()
                })
            })
            .collect();
        let winners = racers
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|&won| won)
            .count();
        assert_eq!(winners, 1, "round {round}");
    }
    t.object_del("a").unwrap();
}
