//! The kernel's view of each backend's memory (`VmFlags` in
//! /proc/self/smaps) matches what QEMU 10.0.2 shows for the same options
//! (docs/qemu-compat.md has both tables): `hg` (MADV_HUGEPAGE) and `dc`
//! (MADV_DONTFORK) on every backend, `mg` (MADV_MERGEABLE) per `merge` on
//! private anonymous memory, `dd` per `dump`, `sh`/`ms` for shared memory.

use std::collections::BTreeSet;

use qom::{ObjectTree, TypeRegistry};
use qom_test_support::smaps_entry;
use serde_json::{json, Value};

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    types.install(memory_backend_ram::register).unwrap();
    ObjectTree::new(types).unwrap()
}

/// The `VmFlags` of the backend made from `args`, after creation.
fn flags_of(t: &ObjectTree, args: Value) -> BTreeSet<String> {
    let obj = t.object_add_args(args.as_object().unwrap()).unwrap();
    let ram = memory_backend::mapping(&obj).unwrap();
    let entry = smaps_entry("self", ram.as_ptr() as usize).expect("the mapping is in smaps");
    assert!(!entry.vm_flags.is_empty(), "{entry:?}");
    // Soft-dirty tracking depends on the kernel's configuration, not on us.
    entry.vm_flags.into_iter().filter(|f| f != "sd").collect()
}

fn set(flags: &str) -> BTreeSet<String> {
    flags.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn ram_is_private_anonymous_memory_with_qemus_advice() {
    let t = tree();
    let got = flags_of(
        &t,
        json!({"qom-type": "memory-backend-ram", "id": "r", "size": 4 << 20, "prealloc": true}),
    );
    assert_eq!(got, set("rd wr mr mw me dc ac hg mg"));
    let got = flags_of(
        &t,
        json!({"qom-type": "memory-backend-ram", "id": "r2", "size": 4 << 20,
               "merge": false, "dump": false}),
    );
    assert_eq!(got, set("rd wr mr mw me dc ac dd hg"));
}

#[test]
fn shared_memory_has_qemus_flags() {
    let t = tree();
    for (ty, id, share) in [
        ("memory-backend-memfd", "m", None),
        ("memory-backend-shm", "s", None),
        ("memory-backend-ram", "rs", Some(true)),
    ] {
        let mut args = json!({"qom-type": ty, "id": id, "size": 4 << 20, "prealloc": true});
        if let Some(share) = share {
            args["share"] = json!(share);
        }
        // KSM leaves shared memory alone: `merge` (on) shows no `mg`.
        assert_eq!(
            flags_of(&t, args),
            set("rd wr sh mr mw me ms dc hg"),
            "{ty}"
        );
    }
}

#[test]
fn merge_changes_on_a_live_backend() {
    let t = tree();
    let got = flags_of(
        &t,
        json!({"qom-type": "memory-backend-ram", "id": "live", "size": 2 << 20}),
    );
    assert!(got.contains("mg"));
    t.qom_set("live", "merge", &json!(false)).unwrap();
    let obj = t.object("live").unwrap();
    let ram = memory_backend::mapping(&obj).unwrap();
    let entry = smaps_entry("self", ram.as_ptr() as usize).unwrap();
    assert!(!entry.has("mg"), "{entry:?}");
    assert!(entry.has("hg") && entry.has("dc"), "{entry:?}");
}
