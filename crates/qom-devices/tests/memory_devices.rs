//! Memory devices in the machine's window: first fit, slots, explicit
//! addresses, the machine options, nvdimm labels, and failures that leave
//! nothing behind.

use qom::{ObjectTree, TypeRegistry};
use qom_devices::{DeviceSpec, MachineOptions, MemoryOptions};
use serde_json::json;

fn tree(machine: &str, memory: &str) -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend::register(&types).unwrap();
    memory_backend_ram::register(&types).unwrap();
    memory_backend_file::register(&types).unwrap();
    qom_devices::register(&types).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let memory = MemoryOptions::parse(memory).unwrap();
    qom_devices::create_machine(&tree, &MachineOptions::parse(machine, memory).unwrap()).unwrap();
    tree
}

fn add(tree: &ObjectTree, spec: &str) -> qom::Result<qom::Object> {
    qom_devices::device_add(tree, &DeviceSpec::parse(spec), true)
}

fn ram(tree: &ObjectTree, id: &str, size: &str) {
    tree.object_add_str(&format!("memory-backend-ram,id={id},size={size}"))
        .unwrap();
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

#[test]
fn first_fit_reuses_the_gap_a_removed_device_leaves() {
    let tree = tree("pc,nvdimm=on", "512M,slots=4,maxmem=4G");
    for (id, size) in [("m0", "128M"), ("m1", "64M"), ("m2", "64M")] {
        ram(&tree, id, size);
    }
    add(&tree, "pc-dimm,id=d0,memdev=m0").unwrap();
    add(&tree, "pc-dimm,id=d1,memdev=m1").unwrap();
    qom_devices::device_del(&tree, "d0").unwrap();
    let d2 = add(&tree, "pc-dimm,id=d2,memdev=m2").unwrap();
    assert_eq!(d2.get("addr").unwrap(), json!(4 * GIB));
    assert_eq!(d2.get("slot").unwrap(), json!(0));
    let listed: Vec<_> = qom_devices::query_memory_devices(&tree)
        .into_iter()
        .map(|d| (d.data.id.unwrap(), d.data.addr, d.data.slot))
        .collect();
    assert_eq!(
        listed,
        [
            ("d2".to_owned(), 4 * GIB, 0),
            ("d1".to_owned(), 4 * GIB + 128 * MIB, 1)
        ]
    );
}

#[test]
fn slot_and_address_errors_change_nothing() {
    let tree = tree("pc", "512M,slots=2,maxmem=1G");
    for id in ["m0", "m1", "m2"] {
        ram(&tree, id, "128M");
    }
    add(&tree, "pc-dimm,id=d0,memdev=m0,slot=1").unwrap();
    let err = |spec: &str| add(&tree, spec).unwrap_err().to_string();
    assert_eq!(err("pc-dimm,id=x,memdev=m1,slot=1"), "slot 1 is busy");
    assert_eq!(
        err("pc-dimm,id=x,memdev=m1,slot=2"),
        "invalid slot number 2, valid range is [0-1]"
    );
    assert_eq!(
        err("nvdimm,id=x,memdev=m1"),
        "nvdimm is not enabled: add 'nvdimm=on' to '-M'"
    );
    assert_eq!(
        err("pc-dimm,id=x,memdev=m1,node=1"),
        "'DIMM property node has value 1' which exceeds the number of numa nodes: 1"
    );
    assert_eq!(err("pc-dimm,id=d0,memdev=m1"), "Duplicate device ID 'd0'");
    add(&tree, "pc-dimm,memdev=m1").unwrap();
    assert_eq!(err("pc-dimm,id=x,memdev=m2"), "no free slots available");
    // Nothing half-made: the failed ids are free and m2 is not in use.
    let peripheral = tree.resolve("/machine/peripheral", None).object().unwrap();
    assert_eq!(peripheral.children().len(), 1);
    tree.object_del("m2").unwrap();
    // Anonymous devices are numbered as QEMU numbers them: every attempt
    // takes a number.
    let anon = tree
        .resolve("/machine/peripheral-anon", None)
        .object()
        .unwrap();
    let names: Vec<String> = anon.children().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["device[0]"]);
}

#[test]
fn the_window_follows_the_pc_layout() {
    let tree = tree("pc", "512M,slots=1,maxmem=768M");
    ram(&tree, "m0", "512M");
    assert_eq!(
        add(&tree, "pc-dimm,id=d,memdev=m0")
            .unwrap_err()
            .to_string(),
        "not enough space, currently 0x0 in use of total space for memory devices 0x10000000"
    );
    assert_eq!(
        MemoryOptions::parse("512M,slots=1")
            .unwrap_err()
            .to_string(),
        "slots specified but no max-size"
    );
    let tree = self::tree("pc", "512M");
    ram(&tree, "m0", "128M");
    assert_eq!(
        add(&tree, "pc-dimm,id=d,memdev=m0")
            .unwrap_err()
            .to_string(),
        "no slots where allocated, please specify the 'slots' option"
    );
    let tree = self::tree("pc", "512M,slots=1,maxmem=4G");
    ram(&tree, "m0", "128M");
    assert_eq!(
        add(&tree, "pc-dimm,id=d,memdev=m0,addr=0x100000000")
            .unwrap()
            .get("addr")
            .unwrap(),
        json!(4 * GIB)
    );
    // RAM above 3.5 GiB moves the window past the RAM above 4 GiB.
    let config = qom_devices::MachineConfig {
        memory: MemoryOptions::parse("6G,slots=1,maxmem=8G").unwrap(),
        nvdimm: false,
    };
    let window = config.device_memory().unwrap();
    assert_eq!((window.base, window.size), (7 * GIB, 2 * GIB));
}

#[test]
fn machine_and_memory_options_have_qemu_errors() {
    let e = |r: qom::Result<MemoryOptions>| r.unwrap_err().to_string();
    assert_eq!(
        e(MemoryOptions::parse("x")),
        "Parameter 'size' expects a non-negative number below 2^64"
    );
    assert_eq!(
        e(MemoryOptions::parse("1G,bogus=1")),
        "Invalid parameter 'bogus'"
    );
    assert_eq!(
        e(MemoryOptions::parse("1G,slots=x,maxmem=2G")),
        "Parameter 'slots' expects a number"
    );
    assert_eq!(
        e(MemoryOptions::parse("1G,slots=999,maxmem=2G")),
        "unsupported amount of memory slots: 999"
    );
    assert_eq!(MemoryOptions::parse("512").unwrap().size, 512 * MIB);
    let m = MemoryOptions::default();
    let e = |r: qom::Result<MachineOptions>| r.unwrap_err().to_string();
    assert_eq!(
        e(MachineOptions::parse("pc,nvdimm=x", m)),
        "Parameter 'nvdimm' expects 'on' or 'off'"
    );
    assert_eq!(
        e(MachineOptions::parse("pc,bogus=1", m)),
        "Property 'pc-i440fx-10.0-machine.bogus' not found"
    );
    assert_eq!(
        e(MachineOptions::parse("nosuch", m)),
        "unsupported machine type: \"nosuch\""
    );
}

#[test]
fn the_nvdimm_label_area_is_at_the_end_of_the_backend() {
    let tree = tree("pc,nvdimm=on", "512M,slots=4,maxmem=4G");
    let dir = std::env::temp_dir().join(format!("qom-devices-label-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    tree.object_add_str(&format!(
        "memory-backend-file,id=n0,size=128M,share=on,mem-path={}",
        dir.join("n0").display()
    ))
    .unwrap();
    let nv = add(&tree, "nvdimm,id=nv0,memdev=n0,label-size=262144").unwrap();
    assert_eq!(nv.get("size").unwrap(), json!(128 * MIB - 256 * 1024));
    let (backend, offset, len) = qom_devices::nvdimm_label_range(&nv).unwrap();
    assert_eq!(backend.name().as_deref(), Some("n0"));
    assert_eq!((offset, len), (128 * MIB - 256 * 1024, 256 * 1024));
    assert_eq!(
        nv.set_json("label-size", &json!(1 << 20))
            .unwrap_err()
            .to_string(),
        "cannot change property value"
    );
    // The label area through the API: what it writes lands at the end of
    // the backend file, and the area keeps the backend in use.
    let area = qom_devices::nvdimm_label_area(&nv).unwrap();
    assert_eq!(
        (area.offset(), area.len()),
        ((128 << 20) - (256 << 10), 256 << 10)
    );
    area.write_persistent(16, b"namespace-label").unwrap();
    let mut back = [0u8; 15];
    area.read(16, &mut back).unwrap();
    assert_eq!(&back, b"namespace-label");
    let file = std::fs::read(dir.join("n0")).unwrap();
    let at = (128 << 20) - (256 << 10) + 16;
    assert_eq!(&file[at..at + 15], b"namespace-label");
    assert!(
        area.write(256 << 10, b"x").is_err(),
        "past the end of the area"
    );
    assert!(qom_devices::nvdimm_label_area(&tree.object("n0").unwrap()).is_err());
    drop(area);
    // uuid stays writable, as in QEMU.
    nv.set_json("uuid", &json!("12345678-9abc-def0-1234-56789abcdef0"))
        .unwrap();
    assert_eq!(
        nv.get("uuid").unwrap(),
        json!("12345678-9abc-def0-1234-56789abcdef0")
    );
    assert_eq!(
        nv.set_json("uuid", &json!("x")).unwrap_err().to_string(),
        "Property 'nvdimm.uuid' has invalid value"
    );
    drop(nv);
    drop(tree);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn concurrent_adds_get_distinct_slots_and_addresses() {
    let tree = std::sync::Arc::new(tree("pc", "512M,slots=4,maxmem=4G"));
    for i in 0..8 {
        ram(&tree, &format!("m{i}"), "64M");
    }
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let tree = tree.clone();
            std::thread::spawn(move || add(&tree, &format!("pc-dimm,id=d{i},memdev=m{i}")).is_ok())
        })
        .collect();
    let added = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(added, 4);
    let devices = qom_devices::query_memory_devices(&tree);
    let mut slots: Vec<i64> = devices.iter().map(|d| d.data.slot).collect();
    slots.sort();
    assert_eq!(slots, [0, 1, 2, 3]);
    let addrs: Vec<u64> = devices.iter().map(|d| d.data.addr).collect();
    assert_eq!(
        addrs,
        (0..4).map(|i| 4 * GIB + i * 64 * MIB).collect::<Vec<_>>()
    );
    // The four backends that lost are free.
    let free = (0..8)
        .filter(|i| tree.object_del(&format!("m{i}")).is_ok())
        .count();
    assert_eq!(free, 4);
}

/// A VMM's guest memory (qom-vm-memory claims the same way) takes the
/// backend inside the device's window between finding its memdev and
/// claiming it: the device is refused with QEMU's wording and nothing of
/// it remains; the machine lock alone could not see that claim.
#[test]
fn a_claim_from_outside_the_machine_in_the_window_refuses_the_device() {
    let tree = tree("pc", "512M,slots=2,maxmem=1G");
    ram(&tree, "m0", "128M");
    let other = std::rc::Rc::new(std::cell::RefCell::new(None));
    let put = other.clone();
    memory_backend::backend::seams::set_before_claim(Some(Box::new(move |o: &qom::Object| {
        *put.borrow_mut() = Some(memory_backend::map_exclusive(o));
    })));
    let err = add(&tree, "pc-dimm,id=d0,memdev=m0");
    memory_backend::backend::seams::set_before_claim(None);
    let other = other
        .take()
        .expect("the hook ran")
        .expect("first claim wins");
    assert_eq!(
        err.unwrap_err().to_string(),
        "can't use already busy memdev: m0"
    );
    assert!(qom_devices::query_memory_devices(&tree).is_empty());
    drop(other);
    add(&tree, "pc-dimm,id=d0,memdev=m0").unwrap();
}

/// device_add and another user claiming the same backend from two
/// threads, round after round: exactly one of them gets it.
#[test]
fn device_add_racing_another_claim_has_one_winner() {
    let tree = tree("pc", "512M,slots=2,maxmem=1G");
    ram(&tree, "m0", "128M");
    let m0 = tree.object("m0").unwrap();
    for round in 0..200 {
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let claimer = {
            let (m0, start) = (m0.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                memory_backend::map_exclusive(&m0).ok()
            })
        };
        start.wait();
        let plugged = add(&tree, "pc-dimm,id=d0,memdev=m0").is_ok();
        let claimed = claimer.join().unwrap();
        assert!(plugged != claimed.is_some(), "round {round}");
        if plugged {
            qom_devices::device_del(&tree, "d0").unwrap();
        }
    }
}
