//! Watching and stopping preallocations through `PreallocControl`: a
//! cancelled object-add leaves no object, file, mapping, descriptor or
//! thread behind; progress reports never go back and end at the total.
//!
//! The tests of this binary run one at a time (they count the process's
//! mappings, descriptors and threads).

use qom_test_support as common;

use common::{dir_entries, fd_count, maps_lines, settled_thread_count, thread_count, TempDir};
use memory_backend::{PreallocControl, PreallocProgress};
use qom::{ObjectTree, TypeRegistry};
use serde_json::{json, Value};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

fn add(tree: &ObjectTree, args: Value) -> qom::Result<qom::Object> {
    tree.object_add_args(args.as_object().unwrap())
}

fn backend(id: &str, size: u64, mem_path: &str, threads: u32) -> Value {
    json!({
        "qom-type": "memory-backend-file", "id": id, "size": size,
        "mem-path": mem_path, "share": true, "prealloc": true,
        "prealloc-threads": threads,
    })
}

/// Reports as (done, total, ended), in the order they came.
type Log = Arc<Mutex<Vec<(u64, u64, bool)>>>;

fn logging(interval: Duration) -> (PreallocControl, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let control = PreallocControl::with_interval(interval, move |p: &PreallocProgress<'_>| {
        sink.lock().unwrap().push((p.done, p.total, p.ended));
        ControlFlow::Continue(())
    });
    (control, log)
}

fn check_monotonic(reports: &[(u64, u64, bool)], total: u64) {
    assert!(!reports.is_empty(), "no report at all");
    for w in reports.windows(2) {
        assert!(w[0].0 <= w[1].0, "reports went back: {reports:?}");
    }
    assert!(
        reports.iter().all(|&(d, t, _)| t == total && d <= t),
        "{reports:?}"
    );
    // Only the last one says it ended, and it ends at the total.
    let ended: Vec<_> = reports.iter().filter(|r| r.2).collect();
    assert_eq!(ended, vec![&(total, total, true)], "{reports:?}");
    assert_eq!(reports.last(), Some(&(total, total, true)), "{reports:?}");
}

/// Preallocates 1 GiB under `mem_path` and cancels it from another thread
/// once a report says half of it is done; returns the error and what the
/// canceller saw.
fn cancel_halfway(tree: &ObjectTree, mem_path: &str) -> (qom::Error, u64, PreallocControl) {
    let (tx, rx) = mpsc::channel();
    let control = PreallocControl::with_interval(Duration::from_millis(5), move |p| {
        let _ = tx.send(p.done);
        ControlFlow::Continue(())
    });
    let canceller = {
        let control = control.clone();
        std::thread::spawn(move || {
            for done in rx {
                if done >= GIB / 2 {
                    control.cancel();
                    return done;
                }
            }
            0
        })
    };
    let err = control
        .scope(|| add(tree, backend("big", GIB, mem_path, 2)))
        .unwrap_err();
    let seen = canceller.join().unwrap();
    (err, seen, control)
}

#[test]
fn cancel_from_another_thread_halfway_leaves_nothing() {
    let _one = serial();
    let tree = tree();
    let dir = TempDir::new_in("/dev/shm");
    let file = dir.join("guest-ram");
    let mem_path = file.display().to_string();
    // A first round warms up what a second one must find unchanged: lazy
    // allocations, glibc's cache of thread stacks and its per-thread
    // malloc arenas (the callback allocates on the populating threads).
    cancel_halfway(&tree, &mem_path);
    let threads = settled_thread_count(thread_count());
    let (fds, maps) = (fd_count(), maps_lines());

    let (err, seen, control) = cancel_halfway(&tree, &mem_path);
    assert!(seen >= GIB / 2, "the canceller never saw half way");
    let msg = err.to_string();
    assert!(
        msg.starts_with("preallocation cancelled after ") && msg.ends_with(" of 1 GiB"),
        "{msg}"
    );
    assert!(control.is_cancelled());
    // Nothing is left: no object, no file, no mapping, no descriptor, no
    // thread.
    assert!(tree.objects().children().is_empty());
    assert!(!file.exists(), "the half-made file is there");
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
    assert_eq!(settled_thread_count(threads), threads, "threads left");
    assert_eq!(fd_count(), fds, "descriptors left");
    assert_eq!(maps_lines(), maps, "mappings left");
}

#[test]
fn reports_never_go_back_and_end_at_the_total() {
    let _one = serial();
    let tree = tree();
    let dir = TempDir::new_in("/dev/shm");
    let mem_path = dir.path().display().to_string();
    let allowed = rustix::thread::sched_getaffinity(None).unwrap();
    let cpu = (0..rustix::thread::CpuSet::MAX_CPU)
        .find(|&c| allowed.is_set(c))
        .unwrap();
    add(
        &tree,
        json!({"qom-type": "thread-context", "id": "tc", "cpu-affinity": [cpu]}),
    )
    .unwrap();
    for (i, (threads, context)) in [(1, false), (4, false), (2, true)].into_iter().enumerate() {
        // Every chunk reports: the most reports, the most chances to go back.
        let (control, log) = logging(Duration::ZERO);
        let mut args = backend(&format!("m{i}"), 256 * MIB, &mem_path, threads);
        if context {
            args["prealloc-context"] = json!("tc");
        }
        control.scope(|| add(&tree, args)).unwrap();
        let reports = log.lock().unwrap().clone();
        check_monotonic(&reports, 256 * MIB);
        // 16 MiB chunks, plus the final report.
        assert!(reports.len() >= 2, "{reports:?}");
    }
    // At the default rate: at most one report per 100 ms, plus the last.
    let (control, log) = logging(memory_backend::host::DEFAULT_REPORT_INTERVAL);
    let start = Instant::now();
    control
        .scope(|| add(&tree, backend("rated", 512 * MIB, &mem_path, 2)))
        .unwrap();
    let elapsed = start.elapsed();
    let reports = log.lock().unwrap().clone();
    check_monotonic(&reports, 512 * MIB);
    let bound = elapsed.as_millis() / 100 + 1;
    assert!(
        reports.len() as u128 <= bound,
        "{} reports in {elapsed:?}",
        reports.len()
    );
}

#[test]
fn the_callback_can_cancel_and_a_cancelled_control_stays_so_until_reset() {
    let _one = serial();
    let tree = tree();
    let dir = TempDir::new_in("/dev/shm");
    let mem_path = dir.path().display().to_string();
    let log: Log = Arc::default();
    let sink = log.clone();
    let control = PreallocControl::with_interval(Duration::ZERO, move |p| {
        sink.lock().unwrap().push((p.done, p.total, p.ended));
        if p.done >= p.total / 4 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let err = control
        .scope(|| add(&tree, backend("q", 256 * MIB, &mem_path, 1)))
        .unwrap_err();
    assert!(err.to_string().ends_with(" of 256 MiB"), "{err}");
    assert!(tree.object("q").is_none());
    // The last report says it ended, short of the total.
    let &(done, total, ended) = log.lock().unwrap().last().unwrap();
    assert!(
        ended && done < total && done >= total / 4,
        "{:?}",
        log.lock().unwrap()
    );

    // Still cancelled: the next preallocation stops before its first chunk.
    let quiet = PreallocControl::new();
    quiet.cancel();
    let err = quiet
        .scope(|| add(&tree, backend("q", 64 * MIB, &mem_path, 1)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "preallocation cancelled after 0 B of 64 MiB"
    );
    quiet.reset();
    quiet
        .scope(|| add(&tree, backend("q", 64 * MIB, &mem_path, 1)))
        .unwrap();
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn a_cancelled_qom_set_prealloc_leaves_the_backend_as_it_was() {
    let _one = serial();
    let tree = tree();
    let dir = TempDir::new_in("/dev/shm");
    let args = json!({
        "qom-type": "memory-backend-file", "id": "live", "size": 64 * MIB,
        "mem-path": dir.path().display().to_string(), "share": true,
    });
    add(&tree, args).unwrap();
    let control = PreallocControl::new();
    control.cancel();
    let err = control
        .scope(|| tree.qom_set("live", "prealloc", &json!(true)))
        .unwrap_err();
    assert!(
        err.to_string().starts_with("preallocation cancelled"),
        "{err}"
    );
    assert_eq!(tree.qom_get("live", "prealloc").unwrap(), json!(false));
    // Without the scope, the same request goes through.
    tree.qom_set("live", "prealloc", &json!(true)).unwrap();
    assert_eq!(tree.qom_get("live", "prealloc").unwrap(), json!(true));
}

#[test]
fn the_process_default_applies_where_no_scope_does() {
    let _one = serial();
    let tree = tree();
    let dir = TempDir::new_in("/dev/shm");
    let mem_path = dir.path().display().to_string();
    let (control, log) = logging(Duration::ZERO);
    PreallocControl::set_process_default(Some(control));
    let added = add(&tree, backend("d", 32 * MIB, &mem_path, 1));
    // An inner scope wins over the default.
    let (inner, inner_log) = logging(Duration::ZERO);
    let added_inner = inner.scope(|| add(&tree, backend("e", 32 * MIB, &mem_path, 1)));
    PreallocControl::set_process_default(None);
    added.unwrap();
    added_inner.unwrap();
    check_monotonic(&log.lock().unwrap(), 32 * MIB);
    check_monotonic(&inner_log.lock().unwrap(), 32 * MIB);
    assert_eq!(
        log.lock().unwrap().len(),
        3,
        "a report after each 16 MiB chunk, then the end"
    );
}
