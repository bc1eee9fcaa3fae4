//! Creating and deleting backends leaves no file descriptor behind. Alone
//! in its test binary so no other test opens descriptors meanwhile.

use qom::{ObjectTree, TypeRegistry};
use qom_test_support::fd_count as open_fds;
use serde_json::json;

#[test]
fn two_hundred_add_del_cycles_keep_the_fd_count() {
    let types = TypeRegistry::with_builtins();
    types.install(memory_backend_ram::register).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let types = [
        "memory-backend-ram",
        "memory-backend-memfd",
        "memory-backend-shm",
    ];
    // One warm-up round, then count.
    let cycle = |i: usize| {
        let ty = types[i % types.len()];
        let args = json!({"qom-type": ty, "id": "mem", "size": 1 << 20, "prealloc": true});
        tree.object_add_args(args.as_object().unwrap()).unwrap();
        let obj = tree.object("mem").unwrap();
        memory_backend::mapping(&obj)
            .unwrap()
            .write_at(0, b"x")
            .unwrap();
        tree.object_del("mem").unwrap();
        // A failed creation must not leak either.
        let bad =
            json!({"qom-type": "memory-backend-shm", "id": "bad", "size": 1 << 20, "share": false});
        tree.object_add_args(bad.as_object().unwrap()).unwrap_err();
        let bad = json!({"qom-type": "memory-backend-memfd", "id": "bad", "size": 1000});
        tree.object_add_args(bad.as_object().unwrap()).unwrap_err();
    };
    cycle(0);
    let before = open_fds();
    for i in 0..200 {
        cycle(i);
    }
    assert_eq!(open_fds(), before);
}
