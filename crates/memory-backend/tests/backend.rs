//! The abstract `memory-backend` type through a small test subclass whose
//! `alloc` hook maps an unnamed file in /dev/shm and counts abandons.

use qom_test_support as common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::TempDir;
use memory_backend::host::{MapRequest, Mapping};
use memory_backend::{host_error, settings, HostMemory, MemoryBackendClass};
use qom::{ErrorClass, Object, ObjectTree, TypeInfo, TypeRegistry};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

static ABANDONED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct TestMemory(Mapping);

impl HostMemory for TestMemory {
    fn mapping(&self) -> &Mapping {
        &self.0
    }
    fn abandon(self: Box<Self>) {
        ABANDONED.fetch_add(1, Ordering::SeqCst);
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Drop for TestMemory {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

fn alloc(obj: &Object) -> qom::Result<Box<dyn HostMemory>> {
    let s = settings(obj).unwrap();
    let dir = TempDir::new_in("/dev/shm");
    let path = dir.join("ram");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| qom::Error::generic(e.to_string()))?;
    file.set_len(s.size)
        .map_err(|e| qom::Error::generic(e.to_string()))?;
    let req = MapRequest::new(file.into(), s.size)
        .shared(s.share)
        .noreserve(!s.reserve);
    Ok(Box::new(TestMemory(Mapping::new(req).map_err(host_error)?)))
}

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend::register(&types).unwrap();
    memory_backend::register(&types).unwrap(); // twice is fine
    types
        .register(
            TypeInfo::new("memory-backend-test")
                .parent("memory-backend")
                .class_init(|c| {
                    c.data_mut::<MemoryBackendClass>().alloc = Some(Arc::new(alloc));
                    Ok(())
                }),
        )
        .unwrap();
    types
        .register(TypeInfo::new("memory-backend-noalloc").parent("memory-backend"))
        .unwrap();
    ObjectTree::new(types).unwrap()
}

fn add(tree: &ObjectTree, ty: &str, id: &str, extra: Value) -> qom::Result<Object> {
    let mut a = json!({"qom-type": ty, "id": id});
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    tree.object_add_args(a.as_object().unwrap())
}

#[test]
fn abstract_type_and_its_class_properties() {
    let t = tree();
    assert_eq!(
        add(&t, "memory-backend", "m", json!({"size": MIB}))
            .unwrap_err()
            .to_string(),
        "Parameter 'qom-type' does not accept value 'memory-backend'"
    );
    assert_eq!(
        t.object_add("memory-backend", "m", &qom::Props::Json(Default::default()))
            .unwrap_err()
            .to_string(),
        "object type 'memory-backend' is abstract"
    );
    // qemu-10.0.2.json `list-props-memory-backend`.
    let mut got: Vec<Value> = t
        .types()
        .list_properties("memory-backend")
        .unwrap()
        .into_iter()
        .map(|i| serde_json::to_value(i).unwrap())
        .collect();
    got.sort_by_key(|v| v["name"].as_str().unwrap().to_owned());
    let want = json!([
        {"description": "Set to 'off' to exclude from core dump", "name": "dump", "type": "bool"},
        {"description": "Binds memory to the list of NUMA host nodes", "name": "host-nodes", "type": "int"},
        {"description": "Mark memory as mergeable", "name": "merge", "type": "bool"},
        {"description": "Set the NUMA policy", "name": "policy", "type": "HostMemPolicy"},
        {"description": "Preallocate memory", "name": "prealloc", "type": "bool"},
        {"description": "Context to use for creating CPU threads for preallocation", "name": "prealloc-context", "type": "link<thread-context>"},
        {"description": "Number of CPU threads to use for prealloc", "name": "prealloc-threads", "type": "int"},
        {"description": "Reserve swap space (or huge pages) if applicable", "name": "reserve", "type": "bool"},
        {"description": "Mark the memory as private to QEMU or shared", "name": "share", "type": "bool"},
        {"description": "Size of the memory region (ex: 500M)", "name": "size", "type": "int"},
        {"name": "type", "type": "string"},
        {"name": "x-use-canonical-path-for-ramblock-id", "type": "bool"},
    ]);
    assert_eq!(Value::Array(got), want);
    // thread-context comes with it.
    let mut tc: Vec<(String, String)> = t
        .types()
        .list_properties("thread-context")
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.qom_type))
        .collect();
    tc.sort();
    assert_eq!(
        tc,
        [
            ("cpu-affinity", "int"),
            ("node-affinity", "int"),
            ("thread-id", "int"),
            ("type", "string")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

/// The one test that counts abandons and drops (counters are global).
#[test]
fn failures_after_alloc_abandon_the_memory() {
    let t = tree();
    let a0 = ABANDONED.load(Ordering::SeqCst);
    let d0 = DROPPED.load(Ordering::SeqCst);
    // NUMA checks come after alloc: the memory is abandoned, not kept.
    let e = add(
        &t,
        "memory-backend-test",
        "m",
        json!({"size": 4 * MIB, "policy": "bind"}),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "host-nodes must be set for policy bind");
    assert_eq!(ABANDONED.load(Ordering::SeqCst), a0 + 1);
    assert!(t.object("m").is_none());
    // Success: kept until the object goes, then dropped (not abandoned).
    let o = add(
        &t,
        "memory-backend-test",
        "m",
        json!({"size": 4 * MIB, "share": true}),
    )
    .unwrap();
    assert!(memory_backend::mapping(&o).is_some());
    drop(o);
    t.object_del("m").unwrap();
    assert_eq!(ABANDONED.load(Ordering::SeqCst), a0 + 1);
    assert!(DROPPED.load(Ordering::SeqCst) >= d0 + 2);
}

#[test]
fn a_subclass_without_alloc_fails_cleanly() {
    let t = tree();
    let e = add(&t, "memory-backend-noalloc", "m", json!({"size": MIB})).unwrap_err();
    assert_eq!(e.class(), ErrorClass::GenericError);
    assert_eq!(
        e.to_string(),
        "memory backend type 'memory-backend-noalloc' has no alloc hook"
    );
    assert!(t.objects().children().is_empty());
}

#[test]
fn settings_rules_and_late_changes() {
    let t = tree();
    let o = add(
        &t,
        "memory-backend-test",
        "m",
        json!({"size": 8 * MIB, "share": true, "dump": false, "merge": false,
               "prealloc-threads": 2}),
    )
    .unwrap();
    let s = settings(&o).unwrap();
    assert_eq!(
        (s.size, s.share, s.dump, s.merge, s.prealloc_threads),
        (8 * MIB, true, false, false, 2)
    );
    assert_eq!(memory_backend::region_name(&o), "m");
    t.qom_set("m", "x-use-canonical-path-for-ramblock-id", &json!(true))
        .unwrap();
    assert_eq!(memory_backend::region_name(&o), "/objects/m");
    // merge and dump stay settable (madvise at once).
    for (p, v) in [
        ("merge", true),
        ("dump", true),
        ("merge", false),
        ("dump", false),
    ] {
        t.qom_set("m", p, &json!(v)).unwrap();
        assert_eq!(t.qom_get("m", p).unwrap(), json!(v));
    }
    // prealloc at run time, with threads.
    t.qom_set("m", "prealloc", &json!(true)).unwrap();
    assert!(memory_backend::query_memdev(&t)[0].prealloc);
    // reserve stays locked, with QEMU's wording.
    assert_eq!(
        t.qom_set("m", "reserve", &json!(false))
            .unwrap_err()
            .to_string(),
        "cannot change property value"
    );
    // A backend that is not created has no mapping; map() says so.
    let fresh = t.new_object("memory-backend-test").unwrap();
    assert!(memory_backend::mapping(&fresh).is_none());
    assert!(memory_backend::map(&fresh).is_err());
    // Non-backends.
    let tc = t.new_object("thread-context").unwrap();
    assert!(settings(&tc).is_none());
    assert!(!memory_backend::is_mapped(&tc));
    assert_eq!(
        memory_backend::map(&tc).unwrap_err().to_string(),
        "object type 'thread-context' is not a memory backend"
    );
}

#[test]
fn reserve_off_maps_noreserve_and_refuses_prealloc() {
    let t = tree();
    let o = add(
        &t,
        "memory-backend-test",
        "m",
        json!({"size": 4 * MIB, "share": true, "reserve": false}),
    )
    .unwrap();
    assert!(memory_backend::mapping(&o).unwrap().noreserve());
    assert_eq!(
        t.qom_set("m", "prealloc", &json!(true))
            .unwrap_err()
            .to_string(),
        "'prealloc=on' and 'reserve=off' are incompatible"
    );
}
