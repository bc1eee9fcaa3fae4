//! 1,000 object_add/object_del cycles of memory-backend-file, successful
//! and failing, must leave no file descriptor, mapping, thread or file
//! behind. Alone in its test binary so that no other test changes the
//! counts meanwhile.

use qom_test_support as common;

use common::{fd_count, maps_lines, settled_thread_count, thread_count, TempDir};
use qom::{ObjectTree, TypeRegistry};
use serde_json::{json, Value};

fn add(tree: &ObjectTree, v: Value) -> qom::Result<qom::Object> {
    tree.object_add_args(v.as_object().unwrap())
}

#[test]
fn thousand_object_cycles_leave_nothing_behind() {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let dir = TempDir::new_in("/dev/shm");
    let file = dir.join("cycle").display().to_string();
    let sub = TempDir::new_in("/dev/shm");
    let subdir = sub.path().display().to_string();
    let mb = |id: &str, extra: Value| {
        let mut a = json!({"qom-type": "memory-backend-file", "id": id, "size": 2 << 20});
        a.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        a
    };
    // One warm-up round of every kind first: lazy allocations, class
    // construction, and glibc's cache of thread stacks (threads that ended
    // leave their stack mapped for reuse).
    let allowed = rustix::thread::sched_getaffinity(None).unwrap();
    let cpu = (0..rustix::thread::CpuSet::MAX_CPU)
        .find(|&c| allowed.is_set(c))
        .unwrap();
    // Threads are counted before any was started: a count taken after
    // the warm-up could include a joined thread the kernel has not reaped.
    let threads = thread_count();
    let mut counts = None;
    for i in 0..1005u32 {
        if i == 5 {
            counts = Some((fd_count(), maps_lines()));
        }
        match i % 5 {
            0 => {
                let o = add(
                    &tree,
                    mb(
                        "m",
                        json!({"mem-path": file, "share": true, "discard-data": i % 10 == 0}),
                    ),
                )
                .unwrap();
                memory_backend::mapping(&o)
                    .unwrap()
                    .fill(0, 4096, i as u8)
                    .unwrap();
                drop(o);
                tree.object_del("m").unwrap();
            }
            1 => {
                add(
                    &tree,
                    mb("m", json!({"mem-path": subdir, "prealloc": true})),
                )
                .unwrap();
                tree.object_del("m").unwrap();
            }
            2 => {
                // Fails after open: MAP_SYNC refused on tmpfs.
                add(
                    &tree,
                    mb("m", json!({"mem-path": file, "share": true, "sync": "on"})),
                )
                .unwrap_err();
            }
            3 => {
                // Fails after mapping: NUMA policy without nodes.
                add(
                    &tree,
                    mb("m", json!({"mem-path": subdir, "policy": "bind"})),
                )
                .unwrap_err();
            }
            _ => {
                // A thread-context and a backend preallocating in it.
                add(
                    &tree,
                    json!({"qom-type": "thread-context", "id": "tc", "cpu-affinity": [cpu]}),
                )
                .unwrap();
                add(
                    &tree,
                    mb(
                        "m",
                        json!({"mem-path": subdir, "prealloc": true, "prealloc-context": "tc"}),
                    ),
                )
                .unwrap();
                tree.object_del("m").unwrap();
                tree.object_del("tc").unwrap();
            }
        }
        assert!(tree.objects().children().is_empty(), "cycle {i}");
    }
    let (fds, maps) = counts.unwrap();
    // Threads first: a thread still leaving can hold its stack mapping.
    assert_eq!(settled_thread_count(threads), threads, "threads leaked");
    assert_eq!(fd_count(), fds, "file descriptors leaked");
    assert_eq!(maps_lines(), maps, "mappings leaked");
    assert_eq!(std::fs::read_dir(sub.path()).unwrap().count(), 0);
}
