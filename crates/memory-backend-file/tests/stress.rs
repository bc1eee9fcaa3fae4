//! Guest RAM must never take memory that belongs to another thread.
//!
//! A VMM maps guest RAM while its other threads allocate. Each
//! memory-backend-file reserves address space and then maps the file at an
//! aligned address inside it with `MAP_FIXED`. When such a `MAP_FIXED`
//! fails after the kernel has already removed what was at the target (ext4
//! and xfs refuse `MAP_SYNC` only inside their `->mmap`, which every
//! `share=on` backend with the default `sync=auto` asks for; hugetlbfs runs
//! out of huge pages there), the range is free for a moment. If another
//! thread's `mmap` (a large `malloc`, a new thread's stack) lands in it and
//! the backend then retries there or unmaps its reservation, that thread
//! loses its memory: it reads guest RAM instead of its own data, or dies of
//! SIGSEGV.
//!
//! These tests run exactly that situation for a bounded time: one thread
//! creates and deletes backends through the object tree (`object-add` /
//! `object-del` as QMP does), on ext4 and on a hugetlbfs mount with too few
//! huge pages, while other threads allocate buffers of 128 KiB to 8 MiB,
//! write canaries spread over each of them, check them before freeing, and
//! start short-lived threads that check a canary on their own new stack
//! and in a buffer of their own. Any
//! changed canary, any unexpected `object-add` result (a preallocation
//! that suddenly fails with ENOMEM because part of the mapping was taken
//! away) or a SIGSEGV fails the test; at the end no descriptor, file,
//! object or (beyond a small allowance for the C library's caches) mapping
//! may be left behind.
//!
//! glibc serves a `malloc` of 128 KiB or more with its own `mmap` only until
//! the first `free` of such a block raises its threshold, after which large
//! blocks come from its arenas. So that the allocations keep exercising the
//! `mmap` path for the whole run, each test runs its body in a child
//! process of this test binary with `GLIBC_TUNABLES` pinning that
//! threshold at 128 KiB; the parent reports the child's output and how it
//! ended (a signal means a thread lost its memory).
//!
//! Needs root for the hugetlbfs variant (mount, `nr_hugepages`): without it
//! that test fails and says so; on a kernel without hugetlbfs it prints
//! SKIPPED. The ext4 variant needs a directory on ext4 or xfs (`/var/tmp`
//! or `/tmp`). `QOM_STRESS_SECS` lengthens (or shortens) both runs.

use qom_test_support as support;

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use qom::{ObjectTree, TypeRegistry};
use serde_json::{json, Value};
use support::{dir_entries, fd_count, maps_lines, HugePages, Mount, TempDir, XorShift};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Names the test whose body a child process runs.
const CHILD: &str = "QOM_STRESS_CHILD";
/// The directories the parent made for the child (a path list).
const CHILD_DIRS: &str = "QOM_STRESS_CHILD_DIRS";
/// Keeps every allocation of 128 KiB or more on glibc's `mmap` path.
const TUNABLE: &str = "glibc.malloc.mmap_threshold=131072";
/// Upper bound on backend cycles, whatever the time allows.
const MAX_CYCLES: u64 = 200_000;
/// Lines of `/proc/self/maps` that may stay after the run: thread stacks
/// that glibc caches for reuse and its per-thread arenas (about 32 lines
/// in practice). A mapping leaked per backend cycle exceeds it quickly.
const MAPS_ALLOWANCE: usize = 96;

/// Both tests use both CPUs; they run one after the other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The directories given to the child process that runs test `name`, or
/// `None` when this process is not that child.
fn child_dirs(name: &str) -> Option<Vec<PathBuf>> {
    if std::env::var(CHILD).as_deref() != Ok(name) {
        return None;
    }
    let dirs = std::env::var_os(CHILD_DIRS).expect("directories for the child");
    Some(std::env::split_paths(&dirs).collect())
}

/// Runs test `name` again in a child process of this binary (see the
/// module documentation), handing it `dirs`, and fails if the child fails
/// in any way. The fixtures stay with this process so that they are
/// cleaned up even when the child dies of a signal.
fn run_child(name: &str, dirs: &[&Path]) {
    let _serial = one_at_a_time();
    let tunables = match std::env::var("GLIBC_TUNABLES") {
        Ok(t) if !t.is_empty() => format!("{t}:{TUNABLE}"),
        _ => TUNABLE.to_owned(),
    };
    let out = Command::new(std::env::current_exe().expect("own executable"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .env(
            CHILD_DIRS,
            std::env::join_paths(dirs).expect("paths without ':'"),
        )
        .env("GLIBC_TUNABLES", tunables)
        .output()
        .expect("the test binary starts again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "--- {name} in a child process: stdout ---\n{stdout}--- stderr ---\n{}---",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(sig) = out.status.signal() {
        let what = match sig {
            11 => " (SIGSEGV)",
            7 => " (SIGBUS)",
            6 => " (SIGABRT)",
            _ => "",
        };
        panic!(
            "{name}: the process died of signal {sig}{what}: a thread's memory was \
             unmapped or replaced under it"
        );
    }
    assert!(out.status.success(), "{name} failed ({})", out.status);
    assert!(
        stdout.contains("1 passed"),
        "the child process did not run {name}"
    );
}

/// What the threads of one run share.
struct Run {
    common: support::StressRun,
    buffers: AtomicU64,
    threads: AtomicU64,
}

impl Run {
    fn new(length: Duration) -> Run {
        Run {
            common: support::StressRun::new(length),
            buffers: AtomicU64::new(0),
            threads: AtomicU64::new(0),
        }
    }
}

impl std::ops::Deref for Run {
    type Target = support::StressRun;
    fn deref(&self) -> &support::StressRun {
        &self.common
    }
}

/// A heap buffer with canaries: word `i` holds `tag ^ i` for every `i` that
/// is a multiple of `stride` (16 words spread over the buffer, at least a
/// page apart), and the last word holds `!tag`. A mapping put over the
/// buffer, or an unmapping of it, covers whole pages from one end or the
/// other, so the first and the last word already see it; the others find
/// partial damage. Writing few words keeps the allocation rate high, which
/// is what makes a collision likely.
struct Canary {
    words: Vec<u64>,
    tag: u64,
    stride: usize,
}

impl Canary {
    fn new(bytes: usize, tag: u64) -> Canary {
        // Zeroed allocation: a fresh mmap needs no memset, so only the
        // canary writes below touch the pages.
        let mut words = vec![0u64; bytes / 8];
        let stride = (bytes / 8 / 16).max(4 * KIB / 8);
        for i in (0..words.len() - 1).step_by(stride) {
            words[i] = tag ^ i as u64;
        }
        let last = words.len() - 1;
        words[last] = !tag;
        Canary { words, tag, stride }
    }

    /// What word `i` must hold (only meaningful for the checked words).
    fn expected(&self, i: usize) -> u64 {
        if i == self.words.len() - 1 {
            !self.tag
        } else {
            self.tag ^ i as u64
        }
    }

    fn check(&self, who: &str) -> Result<(), String> {
        // The optimiser must read the memory, not recall what it wrote.
        let words = std::hint::black_box(&self.words);
        let n = words.len();
        let bad = (0..n - 1)
            .step_by(self.stride)
            .chain([n - 1])
            .find(|&i| words[i] != self.expected(i));
        match bad {
            None => Ok(()),
            Some(i) => Err(format!(
                "{who}: canary of the {} KiB buffer at {:p} changed at byte {:#x}: \
                 {:#018x} instead of {:#018x}",
                n * 8 / KIB,
                words.as_ptr(),
                i * 8,
                words[i],
                self.expected(i)
            )),
        }
    }
}

/// A size between 128 KiB and 8 MiB, in whole pages, more often small.
fn buffer_size(rng: &mut XorShift) -> usize {
    let base = (128 * KIB) << rng.below(6);
    base + rng.below((base / (4 * KIB)) as u64) as usize * 4 * KIB
}

/// Allocates, fills, checks and frees buffers, a few alive at a time, until
/// the run ends.
fn allocate(run: &Run, seed: u64) {
    let mut rng = XorShift::new(seed);
    let mut held: VecDeque<Canary> = VecDeque::new();
    while run.going() {
        held.push_back(Canary::new(buffer_size(&mut rng), rng.next_u64()));
        run.buffers.fetch_add(1, Ordering::Relaxed);
        if held.len() > 3 {
            let oldest = held.pop_front().expect("held buffer");
            if let Err(e) = oldest.check("allocator thread") {
                run.fail(e);
            }
        }
    }
    for b in held {
        if let Err(e) = b.check("allocator thread") {
            run.fail(e);
        }
    }
}

/// Body of a short-lived thread: a canary on its own (new) stack and one
/// in a fresh heap buffer, checked after giving way to other threads.
fn short_lived(tag: u64) -> Result<(), String> {
    let mut on_stack = [0u64; 2048];
    for (i, w) in on_stack.iter_mut().enumerate() {
        *w = tag ^ i as u64;
    }
    let heap = Canary::new(160 * KIB, tag.rotate_left(17));
    std::thread::yield_now();
    let on_stack = std::hint::black_box(&on_stack);
    if let Some(i) = (0..on_stack.len()).find(|&i| on_stack[i] != tag ^ i as u64) {
        return Err(format!(
            "short-lived thread: stack canary at {:p} changed at word {i}: {:#018x}",
            &on_stack[i], on_stack[i]
        ));
    }
    heap.check("short-lived thread")
}

/// Starts and joins groups of short-lived threads with stacks of varied
/// sizes until the run ends.
fn spawn_threads(run: &Run, seed: u64) {
    let mut rng = XorShift::new(seed);
    while run.going() {
        let group: Vec<_> = (0..3)
            .map(|_| {
                let stack = (128 * KIB) << rng.below(5);
                let tag = rng.next_u64();
                std::thread::Builder::new()
                    .stack_size(stack)
                    .spawn(move || short_lived(tag))
                    .expect("a thread starts")
            })
            .collect();
        for t in group {
            run.threads.fetch_add(1, Ordering::Relaxed);
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => run.fail(e),
                Err(_) => run.fail("a short-lived thread panicked".to_owned()),
            }
        }
    }
}

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).expect("memory-backend-file registers");
    ObjectTree::new(types).expect("object tree")
}

fn backend_args(id: &str, mem_path: &Path, size: usize, extra: Value) -> Value {
    let mut a = json!({
        "qom-type": "memory-backend-file",
        "id": id,
        "size": size,
        "mem-path": mem_path.display().to_string(),
    });
    let a_map = a.as_object_mut().expect("object");
    a_map.extend(extra.as_object().expect("object").clone());
    a
}

/// One backend that must be created: checks its size and `sync`, writes
/// and reads back both ends of its guest RAM, deletes it.
fn create_use_delete(tree: &ObjectTree, args: &Value, sync: &str) -> Result<(), String> {
    let id = args["id"].as_str().expect("id");
    let size = args["size"].as_u64().expect("size") as usize;
    let obj = tree
        .object_add_args(args.as_object().expect("object"))
        .map_err(|e| format!("object-add {args} failed: {e}"))?;
    let path = format!("/objects/{id}");
    let got = tree.qom_get(&path, "size").map_err(|e| e.to_string())?;
    if got != json!(size) {
        return Err(format!("{id}: size reads back {got}, not {size}"));
    }
    let got = tree.qom_get(&path, "sync").map_err(|e| e.to_string())?;
    if got != json!(sync) {
        return Err(format!("{id}: sync reads back {got}, not {sync:?}"));
    }
    let mem = memory_backend::mapping(&obj).ok_or(format!("{id} has no memory"))?;
    let stamp = format!("{id} was here");
    for at in [0, size - 4 * KIB] {
        mem.write_at(at, stamp.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut back = vec![0u8; stamp.len()];
        mem.read_at(at, &mut back).map_err(|e| e.to_string())?;
        if back != stamp.as_bytes() {
            return Err(format!("{id}: guest RAM at {at:#x} reads back {back:?}"));
        }
    }
    drop(mem);
    drop(obj);
    tree.object_del(id)
        .map_err(|e| format!("object-del {id}: {e}"))?;
    if tree.object(id).is_some() {
        return Err(format!("{id} is still in the tree after object-del"));
    }
    Ok(())
}

/// One backend that must fail: `object-add` gives an error starting with
/// `want`, and leaves neither the object nor a created file behind.
fn must_fail(tree: &ObjectTree, args: &Value, want: &str) -> Result<(), String> {
    let id = args["id"].as_str().expect("id");
    match tree.object_add_args(args.as_object().expect("object")) {
        Ok(_) => Err(format!("object-add {args} succeeded; it must fail")),
        Err(e) if !e.to_string().starts_with(want) => Err(format!(
            "object-add {args} failed with {e:?}, not with {want:?}"
        )),
        Err(_) if tree.object(id).is_some() => {
            Err(format!("failed object-add left {id} in the tree"))
        }
        Err(_) => Ok(()),
    }
}

/// A directory on ext4 or xfs: where a `MAP_SYNC` mapping of an ordinary
/// file is refused only after the old mapping at the target is gone.
fn ext4_dir() -> TempDir {
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    for base in ["/var/tmp", "/tmp"] {
        if let Ok(s) = rustix::fs::statfs(base) {
            #[allow(clippy::unnecessary_cast)]
            let kind = s.f_type as i64;
            if kind == EXT4 || kind == XFS {
                return TempDir::new_in(base);
            }
        }
    }
    panic!("this test needs /var/tmp or /tmp on ext4 or xfs (a file system with MAP_SYNC support that refuses it for ordinary files)");
}

/// Runs `cycle` for each iteration in this thread while two allocator
/// threads and a thread spawner run, then checks that nothing leaked.
fn stress(
    name: &str,
    default: Duration,
    dirs: &[&Path],
    mut cycle: impl FnMut(u64) -> Result<(), String>,
) {
    let length = support::stress_duration(default);
    let fds = fd_count();
    let maps = maps_lines();
    let run = Run::new(length);
    let started = Instant::now();
    let mut cycles = 0;
    std::thread::scope(|s| {
        s.spawn(|| allocate(&run, 0x5eed_0001));
        s.spawn(|| allocate(&run, 0x5eed_0002));
        s.spawn(|| spawn_threads(&run, 0x5eed_0003));
        while run.going() && cycles < MAX_CYCLES {
            if let Err(e) = cycle(cycles) {
                run.fail(format!("cycle {cycles}: {e}"));
            }
            cycles += 1;
        }
        run.finish();
    });
    println!(
        "{name}: {cycles} backend cycles, {} buffers and {} threads checked in {:.1?}",
        run.buffers.load(Ordering::Relaxed),
        run.threads.load(Ordering::Relaxed),
        started.elapsed()
    );
    let problems = run.problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for dir in dirs {
        assert_eq!(
            dir_entries(dir),
            Vec::<String>::new(),
            "files left in {dir:?}"
        );
    }
    assert_eq!(fd_count(), fds, "file descriptors left open");
    let now = maps_lines();
    println!("{name}: {maps} lines in /proc/self/maps before, {now} after");
    assert!(
        now <= maps + MAPS_ALLOWANCE,
        "mappings left behind: {maps} lines in /proc/self/maps before, {now} after"
    );
}

/// `dir` for temporary files, `files` for a named one.
fn ext4_body(dir: &Path, files: &Path) {
    let file: PathBuf = files.join("ram");
    let t = tree();
    stress("ext4", Duration::from_secs(7), &[dir, files], |i| {
        let id = format!("ram{i}");
        // Mostly cheap backends (every one takes the MAP_SYNC path),
        // now and then one that preallocates or maps a named file.
        let share = json!({"share": true});
        let args = match i % 8 {
            0 | 4 => backend_args(&id, dir, 2 * MIB, share),
            1 => backend_args(&id, dir, 4 * MIB, json!({"share": true, "prealloc": true})),
            2 | 6 => backend_args(&id, dir, (1 + i as usize % 5) * MIB, share),
            3 => backend_args(
                &id,
                &file,
                6 * MIB,
                json!({"share": true, "prealloc": i % 16 == 3}),
            ),
            5 => backend_args(&id, &file, 3 * MIB, share),
            _ => backend_args(&id, dir, 3 * MIB, json!({"share": true, "align": 4 * MIB})),
        };
        let done = create_use_delete(&t, &args, "off");
        if file.exists() {
            std::fs::remove_file(&file).map_err(|e| format!("{file:?}: {e}"))?;
        }
        done
    });
    assert!(
        t.objects().children().is_empty(),
        "objects left in the tree"
    );
}

/// `mnt`: a hugetlbfs mount that may use two 2 MiB pages, no more.
fn hugetlbfs_body(mnt: &Path) {
    let file = mnt.join("ram");
    let t = tree();
    const NO_MAP: &str = "unable to map backing store for guest RAM: Cannot allocate memory";
    stress("hugetlbfs", Duration::from_secs(5), &[mnt], |i| {
        let id = format!("huge{i}");
        // Alternate between a created file and a temporary one in the
        // directory: a failure must remove the file it created.
        let path: &Path = if (i / 4) % 2 == 0 { &file } else { mnt };
        let big = (8 + 2 * (i % 3) as usize) * MIB;
        let done = match i % 4 {
            0 => create_use_delete(
                &t,
                &backend_args(&id, mnt, 2 * MIB, json!({"share": true})),
                "off",
            ),
            1 => must_fail(
                &t,
                &backend_args(&id, path, big, json!({"share": true})),
                NO_MAP,
            ),
            2 => must_fail(
                &t,
                &backend_args(&id, path, big, json!({"share": false})),
                NO_MAP,
            ),
            _ => must_fail(
                &t,
                &backend_args(&id, path, big, json!({"share": true, "prealloc": true})),
                NO_MAP,
            ),
        };
        if file.exists() {
            return Err(format!("{file:?} left behind by cycle {i}"));
        }
        done
    });
    assert!(
        t.objects().children().is_empty(),
        "objects left in the tree"
    );
}

/// share=on backends on ext4 (the default `sync=auto` tries `MAP_SYNC`
/// first), created and deleted while other threads allocate.
#[test]
fn ext4_backends_leave_other_threads_memory_alone() {
    const NAME: &str = "ext4_backends_leave_other_threads_memory_alone";
    if let Some(dirs) = child_dirs(NAME) {
        return ext4_body(&dirs[0], &dirs[1]);
    }
    let dir = ext4_dir();
    let files = ext4_dir();
    run_child(NAME, &[dir.path(), files.path()]);
}

/// Backends on hugetlbfs that do not fit the free huge pages fail cleanly
/// while other threads allocate.
#[test]
fn hugetlbfs_exhaustion_leaves_other_threads_memory_alone() {
    const NAME: &str = "hugetlbfs_exhaustion_leaves_other_threads_memory_alone";
    if let Some(dirs) = child_dirs(NAME) {
        return hugetlbfs_body(&dirs[0]);
    }
    if !support::hugetlbfs_supported() {
        println!("SKIPPED: this kernel has no hugetlbfs");
        return;
    }
    // Two huge pages in the pool, held for a mount that may use at most
    // those two (size=4M, min_size=4M): a 2 MiB backend fits, anything
    // larger does not, whatever other processes do with the pool meanwhile.
    // Another test that resets the pool between our two steps makes the
    // mount fail for want of pages: try again a few times.
    let mut attempts = 0;
    let (_pages, mnt) = loop {
        let pages = HugePages::add(2).unwrap_or_else(|e| panic!("{e}"));
        if let Some(mnt) = Mount::new("hugetlbfs", "pagesize=2M,size=4M,min_size=4M") {
            break (pages, mnt);
        }
        attempts += 1;
        assert!(
            attempts < 5,
            "this test needs to mount hugetlbfs with two reserved 2 MiB pages \
             (as root; see the messages above)"
        );
        drop(pages);
        std::thread::sleep(Duration::from_millis(200));
    };
    run_child(NAME, &[mnt.path()]);
}
