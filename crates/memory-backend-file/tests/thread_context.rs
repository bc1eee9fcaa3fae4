//! `thread-context` and `prealloc-context`: the context thread gets the
//! requested affinity, and preallocation threads really run in it
//! (observed in `/proc/self/task/*/status` while they run).

use qom_test_support as common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{allocated, TempDir};
use qom::{ObjectTree, TypeRegistry};
use rustix::thread::CpuSet;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

fn add(tree: &ObjectTree, v: Value) -> qom::Result<qom::Object> {
    tree.object_add_args(v.as_object().unwrap())
}

fn allowed_cpus() -> Vec<usize> {
    let set = rustix::thread::sched_getaffinity(None).unwrap();
    (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
}

/// `Cpus_allowed_list` of a thread of this process.
fn cpus_allowed(tid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_owned())
}

/// The thread id and `Cpus_allowed_list` of every thread named `name` right
/// now.
fn threads_named(name: &str) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let tid = e.file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            let allowed = (comm.trim() == name).then(|| cpus_allowed(&tid))??;
            Some((tid, allowed))
        })
        .collect()
}

#[test]
fn context_thread_gets_the_affinity() {
    let cpus = allowed_cpus();
    let cpu = *cpus.last().unwrap();
    let t = tree();
    let tc = add(
        &t,
        json!({"qom-type": "thread-context", "id": "tc", "cpu-affinity": [cpu]}),
    )
    .unwrap();
    let tid = t.qom_get("tc", "thread-id").unwrap().as_i64().unwrap();
    assert!(tid > 0);
    assert_eq!(cpus_allowed(&tid.to_string()).unwrap(), cpu.to_string());
    assert_eq!(t.qom_get("tc", "cpu-affinity").unwrap(), json!([cpu]));
    // Changed after creation: applies to the context thread at once.
    let first = cpus[0];
    t.qom_set("tc", "cpu-affinity", &json!([first])).unwrap();
    assert_eq!(cpus_allowed(&tid.to_string()).unwrap(), first.to_string());
    // node-affinity is write-only, and selects the node's CPUs.
    let e = t.qom_get("tc", "node-affinity").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Property 'thread-context.node-affinity' is not readable"
    );
    if std::path::Path::new("/sys/devices/system/node/node0/cpulist").exists() {
        t.qom_set("tc", "node-affinity", &json!([0])).unwrap();
        let node0 = memory_backend::thread_context::node_cpus(0);
        let got: Vec<usize> =
            serde_json::from_value(t.qom_get("tc", "cpu-affinity").unwrap()).unwrap();
        assert!(
            !got.is_empty() && got.iter().all(|c| node0.contains(c)),
            "{got:?}"
        );
    }
    // thread-id is read-only.
    assert_eq!(
        t.qom_set("tc", "thread-id", &json!(1))
            .unwrap_err()
            .to_string(),
        "Property 'thread-context.thread-id' is not writable"
    );
    // The context thread ends with the object.
    drop(tc);
    t.object_del("tc").unwrap();
    // The thread is joined; the kernel reaps its /proc entry a moment
    // after the join returns, so give it a bounded while.
    let task = format!("/proc/self/task/{tid}");
    let gone = (0..200).any(|_| {
        let gone = !std::path::Path::new(&task).exists();
        if !gone {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        gone
    });
    assert!(gone, "{task} still exists");
}

#[test]
fn thread_context_errors() {
    let t = tree();
    let tc = |extra: Value| {
        let mut a = json!({"qom-type": "thread-context", "id": "tc"});
        a.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        add(&t, a).map(drop).map_err(|e| e.to_string())
    };
    assert_eq!(
        tc(json!({"cpu-affinity": []})).unwrap_err(),
        "CPU list is empty"
    );
    assert_eq!(
        tc(json!({"node-affinity": []})).unwrap_err(),
        "Node list is empty"
    );
    assert_eq!(
        tc(json!({"node-affinity": [999]})).unwrap_err(),
        "The nodes select no CPUs"
    );
    assert_eq!(
        tc(json!({"cpu-affinity": [0], "node-affinity": [0]})).unwrap_err(),
        "Mixing CPU and node affinity not supported"
    );
    assert!(tc(json!({"cpu-affinity": [5000]}))
        .unwrap_err()
        .starts_with("Invalid CPU number: 5000"));
    assert!(t.objects().children().is_empty());
    // A CPU the kernel refuses, after creation.
    tc(json!({})).unwrap();
    assert_eq!(
        t.qom_get("tc", "thread-id")
            .unwrap()
            .as_i64()
            .map(|x| x > 0),
        Some(true)
    );
    assert_eq!(
        t.qom_set("tc", "cpu-affinity", &json!([1000]))
            .unwrap_err()
            .to_string(),
        "Setting CPU affinity failed: Invalid argument"
    );
    // Before creation: no thread yet.
    let fresh = t.new_object("thread-context").unwrap();
    assert_eq!(fresh.get("thread-id").unwrap(), json!(-1));
    assert_eq!(
        fresh.get("cpu-affinity").unwrap_err().to_string(),
        "Object not initialized yet"
    );
    // prealloc-context must be a thread-context.
    let dir = TempDir::new_in("/dev/shm");
    add(
        &t,
        json!({"qom-type": "memory-backend-file", "id": "m", "size": 2 * MIB,
                    "mem-path": dir.path().display().to_string()}),
    )
    .unwrap();
    let e = add(
        &t,
        json!({"qom-type": "memory-backend-file", "id": "m2", "size": 2 * MIB,
                    "mem-path": dir.path().display().to_string(), "prealloc-context": "m"}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid parameter type for 'prealloc-context', expected: thread-context"
    );
}

/// Runs `work` while watching for `touch_pages` threads; returns the
/// last `Cpus_allowed_list` seen of each thread.
///
/// A thread names itself as it starts and pins itself right after, so on a
/// loaded machine it can be preempted in between and be seen unpinned for a
/// while; what counts is each thread's last sample, taken while it touched
/// pages (it pins itself before touching any).
fn watch_touch_threads(work: impl FnOnce()) -> Vec<String> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let watcher = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !d.load(Ordering::Acquire) {
            seen.extend(threads_named("touch_pages"));
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        seen
    });
    work();
    done.store(true, Ordering::Release);
    let samples: Vec<(String, String)> = watcher.join().unwrap();
    let mut last = std::collections::BTreeMap::new();
    for (tid, allowed) in samples {
        last.insert(tid, allowed);
    }
    last.into_values().collect()
}

#[test]
fn prealloc_threads_run_in_the_context_affinity() {
    let cpus = allowed_cpus();
    let cpu = *cpus.last().unwrap();
    if cpus.len() < 2 {
        eprintln!("NOTE: one allowed CPU only; the affinity cannot be told apart here");
    }
    let t = tree();
    add(
        &t,
        json!({"qom-type": "thread-context", "id": "tc", "cpu-affinity": [cpu]}),
    )
    .unwrap();
    let dir = TempDir::new_in("/dev/shm");
    let f = dir.join("ram");
    let fs = f.display().to_string();

    // At creation.
    add(
        &t,
        json!({"qom-type": "memory-backend-file", "id": "early", "size": 4 * MIB,
                    "mem-path": fs, "share": true, "prealloc": true, "prealloc-context": "tc"}),
    )
    .unwrap();
    assert_eq!(allocated(&f), 4 * MIB);
    assert_eq!(
        t.qom_get("early", "prealloc-context").unwrap(),
        json!("/objects/tc")
    );
    t.object_del("early").unwrap();
    std::fs::remove_file(&f).unwrap();

    // On a live backend, watched: big enough to take a while, retried when
    // the threads were too quick to be seen.
    let mut seen = Vec::new();
    for attempt in 0..5 {
        let id = format!("late{attempt}");
        add(
            &t,
            json!({"qom-type": "memory-backend-file", "id": id, "size": 256 * MIB,
                        "mem-path": dir.path().display().to_string(), "share": true,
                        "prealloc-threads": 2, "prealloc-context": "tc"}),
        )
        .unwrap();
        seen = watch_touch_threads(|| t.qom_set(&id, "prealloc", &json!(true)).unwrap());
        t.object_del(&id).unwrap();
        if !seen.is_empty() {
            break;
        }
    }
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    eprintln!(
        "observed {} touch_pages threads, last Cpus_allowed_list {distinct:?}",
        seen.len()
    );
    assert!(!seen.is_empty(), "no touch_pages thread observed");
    assert!(
        seen.iter().all(|s| *s == cpu.to_string()),
        "{seen:?} (wanted {cpu})"
    );
}
