//! `memory-backend-file` through the object model, with JSON arguments as
//! QMP `object-add` gives them. Expected texts and read-back values are
//! QEMU 10.0.2's, recorded in the shared oracle
//! (`oracle/qemu-10.0.2.json`, `oracle/cli-qemu-10.0.2.tsv`); the rows
//! used are quoted next to each test.
//!
//! As root, small tmpfs mounts are made in temporary directories (tests
//! print SKIPPED otherwise). With `MEMORY_BACKEND_DAX_DIR` pointing at a
//! directory on a DAX file system (inside the daxvm guest), the MAP_SYNC
//! tests expect `sync=on` to succeed there.

use qom_test_support as common;

use std::path::Path;

use common::{allocated, Mount, TempDir};
use memory_backend_file::file::{FileOrigin, FileWarning};
use qom::{ErrorClass, Object, ObjectTree, TypeRegistry};
use serde_json::{json, Map, Value};

const MIB: u64 = 1 << 20;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

/// object-add of a memory-backend-file with `id` and extra arguments.
fn add(tree: &ObjectTree, id: &str, extra: Value) -> qom::Result<Object> {
    let mut a = args(json!({"qom-type": "memory-backend-file", "id": id}));
    a.extend(args(extra));
    tree.object_add_args(&a)
}

fn add_err(tree: &ObjectTree, id: &str, extra: Value) -> String {
    let e = add(tree, id, extra).unwrap_err();
    assert_eq!(e.class(), ErrorClass::GenericError, "{e}");
    assert!(tree.object(id).is_none(), "failed object-add left {id}");
    e.to_string()
}

/// Every readable non-child property of `/objects/ID`, as qom-list-get
/// reads them (the oracle leaves out the `ID[0]` region child too).
fn read_all(tree: &ObjectTree, id: &str) -> Map<String, Value> {
    let all = tree.qom_list_get(&[format!("/objects/{id}")]).unwrap();
    all[0]
        .properties
        .iter()
        .filter(|p| !p.qom_type.starts_with("child<"))
        .filter_map(|p| p.value.clone().map(|v| (p.name.clone(), v)))
        .collect()
}

#[test]
fn backend_has_its_memory_region_child() {
    let dir = TempDir::new_in("/tmp");
    let t = tree();
    t.object_add_str(&format!(
        "memory-backend-file,id=m0,size=4M,mem-path={}/f",
        dir.path().display()
    ))
    .unwrap();
    let list: Vec<(String, String)> = t
        .qom_list("/objects/m0/m0[0]")
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.qom_type))
        .collect();
    let want = [
        ("type", "string"),
        ("addr", "uint64"),
        ("container", "link<memory-region>"),
        ("priority", "uint32"),
        ("size", "uint64"),
    ];
    assert_eq!(list, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(
        t.qom_get("/objects/m0/m0[0]", "size").unwrap(),
        serde_json::json!(4194304)
    );
    assert_eq!(
        t.qom_get("/objects/m0", "m0[0]").unwrap(),
        serde_json::json!("/objects/m0/m0[0]")
    );
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// QEMU's read-back of a fresh 4 MiB backend, from the oracle's
/// `basic-share-on` CLI row, plus our `sync` (tmpfs/ext4: `off`).
fn qemu_defaults(mem_path: &str, share: bool, size: u64) -> Map<String, Value> {
    args(
        json!({"align": 0, "discard-data": false, "dump": true, "host-nodes": [],
        "mem-path": mem_path, "merge": true, "offset": 0, "pmem": false, "policy": "default",
        "prealloc": false, "prealloc-context": "", "prealloc-threads": 1, "readonly": false,
        "reserve": true, "rom": "off", "share": share, "size": size,
        "type": "memory-backend-file", "x-use-canonical-path-for-ramblock-id": false,
        "sync": "off"}),
    )
}

#[test]
fn defaults_read_back_as_qemu() {
    let dir = TempDir::new_in("/tmp");
    let t = tree();
    // cli-qemu-10.0.2.tsv `basic-share-on`.
    let f = p(&dir.join("f"));
    add(
        &t,
        "m",
        json!({"size": 4 * MIB, "mem-path": f, "share": true}),
    )
    .unwrap();
    assert_eq!(read_all(&t, "m"), qemu_defaults(&f, true, 4 * MIB));
    // `two-objects`.
    let t = tree();
    let (a, b) = (p(&dir.join("a")), p(&dir.join("b")));
    add(&t, "m0", json!({"size": 4 * MIB, "mem-path": a})).unwrap();
    add(
        &t,
        "m1",
        json!({"size": 2 * MIB, "mem-path": b, "share": true}),
    )
    .unwrap();
    assert_eq!(read_all(&t, "m0"), qemu_defaults(&a, false, 4 * MIB));
    assert_eq!(read_all(&t, "m1"), qemu_defaults(&b, true, 2 * MIB));
    // Before creation rom and sync read back auto.
    let fresh = t.new_object("memory-backend-file").unwrap();
    assert_eq!(fresh.get("rom").unwrap(), json!("auto"));
    assert_eq!(fresh.get("sync").unwrap(), json!("auto"));
}

#[test]
fn introspection_matches_qemu() {
    let t = tree();
    // qemu-10.0.2.json `list-props-memory-backend-file`, plus `sync`.
    let mut got: Vec<Value> = t
        .types()
        .list_properties("memory-backend-file")
        .unwrap()
        .into_iter()
        .map(|i| serde_json::to_value(i).unwrap())
        .collect();
    got.sort_by_key(|v| v["name"].as_str().unwrap().to_owned());
    let want = json!([
        {"name": "align", "type": "int"},
        {"name": "discard-data", "type": "bool"},
        {"description": "Set to 'off' to exclude from core dump", "name": "dump", "type": "bool"},
        {"description": "Binds memory to the list of NUMA host nodes", "name": "host-nodes", "type": "int"},
        {"name": "mem-path", "type": "string"},
        {"description": "Mark memory as mergeable", "name": "merge", "type": "bool"},
        {"description": "Offset into the target file (ex: 1G)", "name": "offset", "type": "int"},
        {"name": "pmem", "type": "bool"},
        {"description": "Set the NUMA policy", "name": "policy", "type": "HostMemPolicy"},
        {"description": "Preallocate memory", "name": "prealloc", "type": "bool"},
        {"description": "Context to use for creating CPU threads for preallocation", "name": "prealloc-context", "type": "link<thread-context>"},
        {"description": "Number of CPU threads to use for prealloc", "name": "prealloc-threads", "type": "int"},
        {"name": "readonly", "type": "bool"},
        {"description": "Reserve swap space (or huge pages) if applicable", "name": "reserve", "type": "bool"},
        {"description": "Whether to create Read Only Memory (ROM)", "name": "rom", "type": "OnOffAuto"},
        {"description": "Mark the memory as private to QEMU or shared", "name": "share", "type": "bool"},
        {"description": "Size of the memory region (ex: 500M)", "name": "size", "type": "int"},
        {"default-value": "auto", "description": memory_backend_file::SYNC_DESCRIPTION, "name": "sync", "type": "OnOffAuto"},
        {"name": "type", "type": "string"},
        {"name": "x-use-canonical-path-for-ramblock-id", "type": "bool"},
    ]);
    assert_eq!(Value::Array(got), want);
    let types: Vec<_> = t
        .types()
        .list_types(Some("memory-backend"), true)
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.is_abstract))
        .collect();
    assert!(types.contains(&("memory-backend".into(), true)));
    assert!(types.contains(&("memory-backend-file".into(), false)));
}

#[test]
fn argument_and_creation_errors_match_qemu() {
    let dir = TempDir::new_in("/tmp");
    let t = tree();
    let f = p(&dir.join("f"));
    let cases: Vec<(Value, String)> = vec![
        // object-add argument checking
        (json!({"mem-path": f}), "Parameter 'size' is missing".into()),
        (json!({"size": 4 * MIB}), "Parameter 'mem-path' is missing".into()),
        (json!({}), "Parameter 'size' is missing".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "sized": 1}), "Parameter 'sized' is unexpected".into()),
        (json!({"size": 0, "mem-path": f}), "property 'size' of memory-backend-file doesn't take value '0'".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "prealloc-threads": 0}),
            "property 'prealloc-threads' of memory-backend-file doesn't take value '0'".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "reserve": false, "prealloc": true}),
            "'prealloc=on' and 'reserve=off' are incompatible".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "prealloc": true, "reserve": false}),
            "'prealloc=on' and 'reserve=off' are incompatible".into()),
        // backend creation
        (json!({"size": 4 * MIB, "mem-path": f, "align": 3 * MIB}), "alignment 0x300000 must be a power of two".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "align": 12345}),
            "alignment 0x3039 must be multiples of page size 0x1000".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "offset": 1000}),
            "offset 0x3e8 must be multiples of page size 0x1000".into()),
        (json!({"size": 1, "mem-path": f}), "backend 'memory-backend-file' memory size must be multiple of 4 KiB".into()),
        (json!({"size": 4097, "mem-path": f}), "backend 'memory-backend-file' memory size must be multiple of 4 KiB".into()),
        (json!({"size": 3 * MIB + 1, "mem-path": f}), "backend 'memory-backend-file' memory size must be multiple of 4 KiB".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "rom": "on"}),
            "property 'rom' = 'on' is not supported with 'readonly' = 'off'".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "rom": "off", "readonly": true, "share": true}),
            "property 'rom' = 'off' is incompatible with 'readonly' = 'on' and 'share' = 'on'".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "readonly": true}),
            format!("can't open backing store {f} for guest RAM: No such file or directory")),
        (json!({"size": 4 * MIB, "mem-path": p(dir.path()), "readonly": true}),
            format!("can't open backing store {} for guest RAM: Is a directory", p(dir.path()))),
        (json!({"size": 4 * MIB, "mem-path": p(&dir.join("nodir/f"))}),
            format!("can't open backing store {} for guest RAM: No such file or directory", p(&dir.join("nodir/f")))),
        // NUMA (add-numa)
        (json!({"size": 4 * MIB, "mem-path": f, "policy": "bind"}), "host-nodes must be set for policy bind".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "host-nodes": [0]}),
            "host-nodes must be empty for policy default, or you should explicitly specify a policy other than default".into()),
        (json!({"size": 4 * MIB, "mem-path": f, "policy": "preferred", "host-nodes": [1000]}),
            "Invalid host-nodes value: 1000".into()),
        // our sync=on with share=off
        (json!({"size": 4 * MIB, "mem-path": f, "sync": "on"}),
            "property 'sync' = 'on' is not supported with 'share' = 'off': MAP_SYNC exists only for shared mappings".into()),
    ];
    for (extra, want) in cases {
        assert_eq!(add_err(&t, "m0", extra.clone()), want, "{extra}");
        assert!(!dir.join("f").exists(), "{extra}: file left behind");
    }
    assert!(t.objects().children().is_empty());
    assert!(memory_backend::query_memdev(&t).is_empty());

    // 1 EiB, new file: mmap fails.
    assert_eq!(
        add_err(&t, "m0", json!({"size": 1u64 << 60, "mem-path": f})),
        "unable to map backing store for guest RAM: Cannot allocate memory"
    );
    assert!(!dir.join("f").exists());

    // prealloc-context naming nothing: DeviceNotFound.
    let e = add(
        &t,
        "m0",
        json!({"size": 4 * MIB, "mem-path": f, "prealloc-context": "nosuch"}),
    )
    .unwrap_err();
    assert_eq!(e.class(), ErrorClass::DeviceNotFound);
    assert_eq!(e.to_string(), "Device 'nosuch' not found");

    // Duplicate id: the generic duplicate-property text; no ghost after.
    add(&t, "m0", json!({"size": 4 * MIB, "mem-path": f})).unwrap();
    assert_eq!(
        add_err_keep(&t, "m0", json!({"size": 4 * MIB, "mem-path": f})),
        "attempt to add duplicate property 'm0' to object (type 'container')"
    );
    t.object_del("m0").unwrap();
    assert_eq!(
        t.object_del("m0").unwrap_err().to_string(),
        "object 'm0' not found"
    );
    add(&t, "m0", json!({"size": 4 * MIB, "mem-path": f})).unwrap();
}

fn add_err_keep(tree: &ObjectTree, id: &str, extra: Value) -> String {
    add(tree, id, extra).unwrap_err().to_string()
}

#[test]
fn existing_files_larger_smaller_empty_and_directories() {
    let dir = TempDir::new_in("/tmp");
    let t = tree();
    // Larger: not shrunk.
    let large = dir.join("large");
    std::fs::write(&large, vec![1u8; 8 * MIB as usize]).unwrap();
    add(&t, "l", json!({"size": 4 * MIB, "mem-path": p(&large)})).unwrap();
    assert_eq!(std::fs::metadata(&large).unwrap().len(), 8 * MIB);
    // Empty: extended to offset + size.
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    add(
        &t,
        "e",
        json!({"size": 4 * MIB, "offset": MIB, "mem-path": p(&empty)}),
    )
    .unwrap();
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 5 * MIB);
    // Smaller, non-empty: QEMU's message, prefixed with the id; kept as is.
    let small = dir.join("small");
    std::fs::write(&small, vec![0u8; 4 * MIB as usize]).unwrap();
    assert_eq!(
        add_err(&t, "small", json!({"size": 4 * MIB, "offset": 4 * MIB, "mem-path": p(&small)})),
        "small backing store size 0x400000 is too small for 'size' option 0x400000 plus 'offset' option 0x400000"
    );
    assert_eq!(std::fs::metadata(&small).unwrap().len(), 4 * MIB);
    // New file: created 0600 (QEMU: 0644) with offset + size, kept after
    // object-del.
    let new = dir.join("new");
    add(&t, "n", json!({"size": 2 * MIB, "mem-path": p(&new)})).unwrap();
    assert_eq!(
        memory_backend_file::file_info(&t.object("n").unwrap())
            .unwrap()
            .origin,
        FileOrigin::Created
    );
    t.object_del("n").unwrap();
    assert_eq!(std::fs::metadata(&new).unwrap().len(), 2 * MIB);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&new).unwrap().permissions())
            & 0o777,
        0o600
    );
    // Directory: an unnamed temporary file; the directory stays empty and
    // mem-path reads back the directory.
    let sub = TempDir::new_in("/tmp");
    add(
        &t,
        "d",
        json!({"size": 2 * MIB, "mem-path": p(sub.path()), "share": true}),
    )
    .unwrap();
    assert_eq!(std::fs::read_dir(sub.path()).unwrap().count(), 0);
    assert_eq!(t.qom_get("d", "mem-path").unwrap(), json!(p(sub.path())));
    assert_eq!(
        memory_backend_file::file_info(&t.object("d").unwrap())
            .unwrap()
            .origin,
        FileOrigin::Temporary
    );
    // Two backends may map the same file.
    add(
        &t,
        "l2",
        json!({"size": 4 * MIB, "mem-path": p(&large), "share": true}),
    )
    .unwrap();
}

#[test]
fn readonly_and_rom_combinations() {
    let dir = TempDir::new_in("/tmp");
    let t = tree();
    let f = dir.join("ro");
    std::fs::write(&f, vec![7u8; 4 * MIB as usize]).unwrap();
    // readonly=on, rom=auto: ROM; reads back on.
    add(
        &t,
        "a",
        json!({"size": 4 * MIB, "mem-path": p(&f), "readonly": true}),
    )
    .unwrap();
    assert_eq!(t.qom_get("a", "rom").unwrap(), json!("on"));
    let ram = memory_backend::mapping(&t.object("a").unwrap()).unwrap();
    assert!(ram.readonly());
    assert!(ram.write_at(0, b"x").is_err());
    // readonly=on, rom=off, share=off: writable private copy (VM templating).
    add(
        &t,
        "b",
        json!({"size": 4 * MIB, "mem-path": p(&f), "readonly": true, "rom": "off"}),
    )
    .unwrap();
    assert_eq!(t.qom_get("b", "rom").unwrap(), json!("off"));
    let ram = memory_backend::mapping(&t.object("b").unwrap()).unwrap();
    assert!(!ram.readonly() && !ram.shared());
    ram.write_at(0, b"changed").unwrap();
    // readonly=on, rom=on, share=on: allowed.
    add(
        &t,
        "c",
        json!({"size": 4 * MIB, "mem-path": p(&f), "readonly": true, "rom": "on", "share": true}),
    )
    .unwrap();
    assert_eq!(t.qom_get("c", "rom").unwrap(), json!("on"));
    // readonly=off: rom reads back off (never auto).
    add(&t, "d", json!({"size": 4 * MIB, "mem-path": p(&f)})).unwrap();
    assert_eq!(t.qom_get("d", "rom").unwrap(), json!("off"));
    drop(t);
    assert!(std::fs::read(&f).unwrap().iter().all(|&b| b == 7));
}

#[test]
fn locked_properties_use_qemu_wordings() {
    // qemu-10.0.2.json `set-locked`.
    let dir = TempDir::new_in("/tmp");
    let f = dir.join("f");
    std::fs::write(&f, vec![0u8; 4 * MIB as usize]).unwrap();
    let t = tree();
    add(
        &t,
        "m0",
        json!({"size": 4 * MIB, "mem-path": p(&f), "align": 2 * MIB}),
    )
    .unwrap();
    let path = "/objects/m0";
    let cases = [
        (
            "size",
            json!(8 * MIB),
            "cannot change property size of memory-backend-file ",
        ),
        ("share", json!(true), "cannot change property value"),
        (
            "mem-path",
            json!(p(&dir.join("g"))),
            "cannot change property 'mem-path' of memory-backend-file",
        ),
        (
            "align",
            json!(4 * MIB),
            "cannot change property 'align' of memory-backend-file",
        ),
        (
            "offset",
            json!(4096),
            "cannot change property 'offset' of memory-backend-file",
        ),
        (
            "pmem",
            json!(true),
            "cannot change property 'pmem' of memory-backend-file.",
        ),
        (
            "readonly",
            json!(true),
            "cannot change property 'readonly' of memory-backend-file.",
        ),
        (
            "rom",
            json!("off"),
            "cannot change property 'rom' of memory-backend-file.",
        ),
        ("reserve", json!(false), "cannot change property value"),
        ("reserve", json!(true), "cannot change property value"),
        (
            "sync",
            json!("auto"),
            "cannot change property 'sync' of memory-backend-file",
        ),
        (
            "type",
            json!("x"),
            "Property 'memory-backend-file.type' is not writable",
        ),
        (
            "size",
            json!("bogus"),
            "cannot change property size of memory-backend-file ",
        ),
        (
            "nosuch",
            json!(1),
            "Property 'memory-backend-file.nosuch' not found",
        ),
    ];
    for (prop, value, want) in cases {
        let e = t.qom_set(path, prop, &value).unwrap_err();
        assert_eq!(e.to_string(), want, "{prop}");
    }
    let mut want = qemu_defaults(&p(&f), false, 4 * MIB);
    want.insert("align".into(), json!(2 * MIB));
    assert_eq!(read_all(&t, "m0"), want);
}

#[test]
fn settable_properties_act_on_a_live_backend() {
    // qemu-10.0.2.json `set-settable`.
    let dir = TempDir::new_in("/tmp");
    let f = dir.join("f");
    let t = tree();
    add(
        &t,
        "m0",
        json!({"size": 4 * MIB, "mem-path": p(&f), "share": true}),
    )
    .unwrap();
    let path = "/objects/m0";
    for (prop, value) in [
        ("merge", json!(true)),
        ("merge", json!(false)),
        ("dump", json!(false)),
        ("prealloc-threads", json!(2)),
        ("discard-data", json!(true)),
        ("x-use-canonical-path-for-ramblock-id", json!(true)),
        ("policy", json!("interleave")),
        ("host-nodes", json!([0])),
        ("prealloc-context", json!("")),
    ] {
        t.qom_set(path, prop, &value).unwrap();
        assert_eq!(t.qom_get(path, prop).unwrap(), value, "{prop}");
    }
    assert_eq!(
        t.qom_set(path, "prealloc-threads", &json!(0))
            .unwrap_err()
            .to_string(),
        "property 'prealloc-threads' of memory-backend-file doesn't take value '0'"
    );
    let e = t
        .qom_set(path, "prealloc-context", &json!("nosuch"))
        .unwrap_err();
    assert_eq!(
        (e.class(), e.to_string()),
        (
            ErrorClass::DeviceNotFound,
            "Device 'nosuch' not found".into()
        )
    );
    // prealloc false -> true preallocates now; true -> false is ignored.
    assert_eq!(allocated(&f), 0);
    t.qom_set(path, "prealloc", &json!(true)).unwrap();
    assert_eq!(t.qom_get(path, "prealloc").unwrap(), json!(true));
    assert_eq!(allocated(&f), 4 * MIB);
    t.qom_set(path, "prealloc", &json!(false)).unwrap();
    assert_eq!(t.qom_get(path, "prealloc").unwrap(), json!(true));
    // host-nodes ORs into the set.
    t.qom_set(path, "host-nodes", &json!([3, 1])).unwrap();
    assert_eq!(t.qom_get(path, "host-nodes").unwrap(), json!([0, 1, 3]));
    t.qom_set(path, "host-nodes", &json!([])).unwrap();
    assert_eq!(t.qom_get(path, "host-nodes").unwrap(), json!([0, 1, 3]));
    assert_eq!(
        serde_json::to_value(memory_backend::query_memdev(&t)).unwrap(),
        json!([{"dump": false, "host-nodes": [0, 1, 3], "id": "m0", "merge": false,
                "policy": "interleave", "prealloc": true, "reserve": true, "share": true,
                "size": 4 * MIB}])
    );
    // reserve=off is refused while prealloc is on (before creation).
    let fresh = t.new_object("memory-backend-file").unwrap();
    fresh.set_json("prealloc", &json!(true)).unwrap();
    assert_eq!(
        fresh
            .set_json("reserve", &json!(false))
            .unwrap_err()
            .to_string(),
        "'prealloc=on' and 'reserve=off' are incompatible"
    );
}

#[test]
fn query_memdev_shape_and_lifecycle() {
    // qemu-10.0.2.json `query-memdev-lifecycle`.
    let dir = TempDir::new_in("/tmp");
    let t = tree();
    assert_eq!(
        serde_json::to_value(memory_backend::query_memdev(&t)).unwrap(),
        json!([])
    );
    add(
        &t,
        "m0",
        json!({"size": 4 * MIB, "mem-path": p(&dir.join("a"))}),
    )
    .unwrap();
    add(
        &t,
        "m1",
        json!({"dump": false, "mem-path": p(&dir.join("b")), "merge": true,
                          "share": true, "size": 2 * MIB}),
    )
    .unwrap();
    add(
        &t,
        "m2",
        json!({"host-nodes": [0], "mem-path": p(&dir.join("c")), "policy": "bind",
                          "size": 4 * MIB}),
    )
    .unwrap();
    // A thread-context in /objects is not a memdev.
    t.object_add_args(&args(json!({"qom-type": "thread-context", "id": "tc"})))
        .unwrap();
    let m0 = json!({"dump": true, "host-nodes": [], "id": "m0", "merge": true, "policy": "default",
                    "prealloc": false, "reserve": true, "share": false, "size": 4 * MIB});
    let m1 = json!({"dump": false, "host-nodes": [], "id": "m1", "merge": true, "policy": "default",
                    "prealloc": false, "reserve": true, "share": true, "size": 2 * MIB});
    let m2 = json!({"dump": true, "host-nodes": [0], "id": "m2", "merge": true, "policy": "bind",
                    "prealloc": false, "reserve": true, "share": false, "size": 4 * MIB});
    let q = || serde_json::to_value(memory_backend::query_memdev(&t)).unwrap();
    assert_eq!(q(), json!([m0, m1, m2]));
    t.object_del("m1").unwrap();
    assert_eq!(q(), json!([m0, m2]));
    t.object_del("m0").unwrap();
    t.object_del("m2").unwrap();
    assert_eq!(q(), json!([]));
    // The struct parses QEMU's own answer back.
    let parsed: Vec<memory_backend::Memdev> = serde_json::from_value(json!([m0])).unwrap();
    assert_eq!(parsed[0].id.as_deref(), Some("m0"));
}

/// sync on/off/auto on a file system without DAX, with read-back.
fn check_sync_without_dax(base: &str) {
    let dir = TempDir::new_in(base);
    let f = dir.join("s");
    let fs = p(&f);
    let t = tree();
    // share=off + sync=on: refused before the file is touched.
    let msg = add_err(
        &t,
        "m",
        json!({"size": 2 * MIB, "mem-path": fs, "sync": "on"}),
    );
    assert!(msg.contains("'share' = 'off'"), "{msg}");
    assert!(!f.exists(), "{base}: file created");
    // share=on + sync=on: refused by the file; the message names the file
    // and says what MAP_SYNC needs; the created file is removed.
    let msg = add_err(
        &t,
        "m",
        json!({"size": 2 * MIB, "mem-path": fs, "share": true, "sync": "on"}),
    );
    assert!(msg.contains(&fs), "{msg}");
    assert!(msg.contains("DAX"), "{msg}");
    assert!(!f.exists(), "{base}: created file left behind");
    // auto: falls back to a plain shared mapping, reads back off.
    let o = add(
        &t,
        "auto",
        json!({"size": 2 * MIB, "mem-path": fs, "share": true}),
    )
    .unwrap();
    assert_eq!(t.qom_get("auto", "sync").unwrap(), json!("off"));
    let ram = memory_backend::mapping(&o).unwrap();
    assert!(ram.shared() && !ram.map_sync());
    assert!(matches!(
        ram.map_sync_outcome(),
        memory_backend::host::MapSyncOutcome::Refused(_)
    ));
    // off: never asks.
    let o = add(
        &t,
        "off",
        json!({"size": 2 * MIB, "mem-path": fs, "share": true, "sync": "off"}),
    )
    .unwrap();
    assert_eq!(t.qom_get("off", "sync").unwrap(), json!("off"));
    assert_eq!(
        memory_backend::mapping(&o).unwrap().map_sync_outcome(),
        memory_backend::host::MapSyncOutcome::NotRequested
    );
    // auto with share=off: not asked.
    let o = add(
        &t,
        "priv",
        json!({"size": 2 * MIB, "mem-path": fs, "sync": "auto"}),
    )
    .unwrap();
    assert_eq!(t.qom_get("priv", "sync").unwrap(), json!("off"));
    assert_eq!(
        memory_backend::mapping(&o).unwrap().map_sync_outcome(),
        memory_backend::host::MapSyncOutcome::NotRequested
    );
    // pmem=on, share=on, sync=auto: QEMU's two warnings (also on stderr).
    let o = add(
        &t,
        "pmem",
        json!({"size": 2 * MIB, "mem-path": fs, "share": true, "pmem": true}),
    )
    .unwrap();
    let info = memory_backend_file::file_info(&o).unwrap();
    assert_eq!(info.warnings.len(), 2, "{:?}", info.warnings);
    assert!(info.warnings[0]
        .to_string()
        .starts_with("Warning: requesting persistence across crashes for backend file "));
    assert_eq!(info.warnings[1], FileWarning::NonDaxPmemDeprecated);
    assert!(memory_backend::mapping(&o).unwrap().pmem());
    // pmem=on with share=off: no MAP_SYNC attempt, no warning.
    let o = add(
        &t,
        "pmem-priv",
        json!({"size": 2 * MIB, "mem-path": fs, "pmem": true}),
    )
    .unwrap();
    assert!(memory_backend_file::file_info(&o)
        .unwrap()
        .warnings
        .is_empty());
    // persist works either way (msync here).
    let o = t.object("auto").unwrap();
    memory_backend::mapping(&o)
        .unwrap()
        .write_at(0, b"durable")
        .unwrap();
    memory_backend_file::persist(&o, 0..7).unwrap();
    assert!(memory_backend_file::persist(&o, 0..(3 * MIB as usize)).is_err());
}

#[test]
fn sync_on_tmpfs() {
    check_sync_without_dax("/dev/shm");
}

#[test]
fn sync_on_ext4() {
    check_sync_without_dax("/tmp");
}

/// Inside a guest with a real DAX file system (daxvm), point
/// MEMORY_BACKEND_DAX_DIR at a directory on it.
#[test]
fn sync_on_dax_when_available() {
    let Ok(base) = std::env::var("MEMORY_BACKEND_DAX_DIR") else {
        eprintln!("SKIPPED: MEMORY_BACKEND_DAX_DIR not set (no DAX file system here)");
        return;
    };
    let dir = TempDir::new_in(&base);
    let t = tree();
    let f = p(&dir.join("on"));
    let o = add(
        &t,
        "on",
        json!({"size": 2 * MIB, "mem-path": f, "share": true, "sync": "on"}),
    )
    .unwrap();
    assert_eq!(t.qom_get("on", "sync").unwrap(), json!("on"));
    let ram = memory_backend::mapping(&o).unwrap();
    assert!(ram.map_sync());
    ram.write_at(0, b"persistent").unwrap();
    memory_backend_file::persist(&o, 0..10).unwrap();
    drop(ram);
    let f2 = p(&dir.join("auto"));
    add(
        &t,
        "auto",
        json!({"size": 2 * MIB, "mem-path": f2, "share": true, "pmem": true}),
    )
    .unwrap();
    assert_eq!(t.qom_get("auto", "sync").unwrap(), json!("on"));
    assert!(memory_backend_file::file_info(&t.object("auto").unwrap())
        .unwrap()
        .warnings
        .is_empty());
    // share=off still refuses sync=on, and auto does not ask.
    add_err(
        &t,
        "x",
        json!({"size": 2 * MIB, "mem-path": p(&dir.join("x")), "sync": "on"}),
    );
    add(
        &t,
        "priv",
        json!({"size": 2 * MIB, "mem-path": p(&dir.join("p"))}),
    )
    .unwrap();
    assert_eq!(t.qom_get("priv", "sync").unwrap(), json!("off"));
    drop(t);
    assert_eq!(&std::fs::read(dir.join("on")).unwrap()[..10], b"persistent");
}

fn check_discard(base: &str) {
    let dir = TempDir::new_in(base);
    let f = dir.join("d");
    let t = tree();
    // share=on + discard-data: blocks released on object-del.
    add(
        &t,
        "d",
        json!({"size": 4 * MIB, "mem-path": p(&f), "share": true,
                         "prealloc": true, "discard-data": true}),
    )
    .unwrap();
    assert!(allocated(&f) >= 4 * MIB, "{base}: preallocated");
    t.object_del("d").unwrap();
    assert_eq!(allocated(&f), 0, "{base}: discarded");
    assert_eq!(
        std::fs::metadata(&f).unwrap().len(),
        4 * MIB,
        "{base}: size kept"
    );
    // switched on after creation.
    add(
        &t,
        "d",
        json!({"size": 4 * MIB, "mem-path": p(&f), "share": true, "prealloc": true}),
    )
    .unwrap();
    assert!(allocated(&f) >= 4 * MIB);
    t.qom_set("d", "discard-data", &json!(true)).unwrap();
    t.object_del("d").unwrap();
    assert_eq!(allocated(&f), 0, "{base}: discarded after late switch");
    // without discard-data: data stays.
    add(
        &t,
        "k",
        json!({"size": 4 * MIB, "mem-path": p(&f), "share": true}),
    )
    .unwrap();
    memory_backend::mapping(&t.object("k").unwrap())
        .unwrap()
        .fill(0, 4096, 5)
        .unwrap();
    t.object_del("k").unwrap();
    assert_eq!(std::fs::read(&f).unwrap()[..4096], [5u8; 4096]);
    // share=off + discard-data: the file is untouched.
    std::fs::write(&f, vec![4u8; 4 * MIB as usize]).unwrap();
    add(
        &t,
        "p",
        json!({"size": 4 * MIB, "mem-path": p(&f), "discard-data": true}),
    )
    .unwrap();
    memory_backend::mapping(&t.object("p").unwrap())
        .unwrap()
        .fill(0, 4 * MIB as usize, 0)
        .unwrap();
    t.object_del("p").unwrap();
    assert!(std::fs::read(&f).unwrap().iter().all(|&x| x == 4), "{base}");
    // dropping the tree (process exit cleanup) also runs discard-data.
    add(
        &t,
        "z",
        json!({"size": 4 * MIB, "mem-path": p(&f), "share": true, "prealloc": true,
                         "discard-data": true}),
    )
    .unwrap();
    drop(t);
    assert_eq!(allocated(&f), 0, "{base}: discarded at teardown");
}

#[test]
fn discard_data_on_ext4() {
    check_discard("/tmp");
}

#[test]
fn discard_data_on_tmpfs() {
    check_discard("/dev/shm");
}

#[test]
fn prealloc_on_full_tmpfs_is_an_error_and_leaves_nothing() {
    let Some(mnt) = Mount::new("tmpfs", "size=8m") else {
        return;
    };
    let t = tree();
    let f = p(&mnt.join("ram"));
    for threads in [1, 2] {
        let msg = add_err(
            &t,
            "big",
            json!({"size": 64 * MIB, "mem-path": f, "share": true,
                                            "prealloc": true, "prealloc-threads": threads}),
        );
        assert_eq!(
            msg,
            "qemu_prealloc_mem: preallocating memory failed: No space left on device"
        );
        assert_eq!(
            std::fs::read_dir(mnt.path()).unwrap().count(),
            0,
            "file left behind"
        );
    }
    // Late prealloc on a live backend fails the same way and changes nothing.
    add(
        &t,
        "late",
        json!({"size": 64 * MIB, "mem-path": f, "share": true}),
    )
    .unwrap();
    let e = t.qom_set("late", "prealloc", &json!(true)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "qemu_prealloc_mem: preallocating memory failed: No space left on device"
    );
    assert_eq!(t.qom_get("late", "prealloc").unwrap(), json!(false));
    t.object_del("late").unwrap();
    std::fs::remove_file(mnt.join("ram")).unwrap();
    // The process lives on and later backends work.
    add(
        &t,
        "small",
        json!({"size": 4 * MIB, "mem-path": f, "share": true, "prealloc": true}),
    )
    .unwrap();
    assert_eq!(allocated(&mnt.join("ram")), 4 * MIB);
}

#[test]
fn in_use_backend_cannot_be_deleted() {
    let dir = TempDir::new_in("/dev/shm");
    let t = tree();
    let o = add(
        &t,
        "m",
        json!({"size": 2 * MIB, "mem-path": p(dir.path()), "share": true}),
    )
    .unwrap();
    let ram = memory_backend::map(&o).unwrap();
    assert!(memory_backend::is_mapped(&o));
    assert_eq!(ram.as_ptr() as usize % (2 * MIB as usize), 0);
    assert_eq!(ram.len(), 2 * MIB as usize);
    assert!(std::os::fd::AsRawFd::as_raw_fd(&ram.fd().unwrap()) >= 0);
    assert_eq!(
        t.object_del("m").unwrap_err().to_string(),
        "object 'm' is in use, can not be deleted"
    );
    drop(ram);
    assert!(!memory_backend::is_mapped(&o));
    // A plain handle keeps the memory mapped after deletion.
    let handle = memory_backend::mapping(&o).unwrap();
    drop(o);
    t.object_del("m").unwrap();
    handle.write_at(0, b"still mapped").unwrap();
}

#[test]
fn canonical_path_names_the_temporary_file_region() {
    // x-use-canonical-path-for-ramblock-id changes the region name used in
    // messages: the id, or /objects/ID.
    let dir = TempDir::new_in("/tmp");
    let small = dir.join("small");
    std::fs::write(&small, vec![0u8; 4096]).unwrap();
    let t = tree();
    let msg = add_err(
        &t,
        "s",
        json!({"size": 8192, "mem-path": p(&small),
        "x-use-canonical-path-for-ramblock-id": true}),
    );
    assert!(
        msg.starts_with("/objects/s backing store size 0x1000"),
        "{msg}"
    );
}
