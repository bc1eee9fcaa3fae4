//! Test helpers shared by the memory backend crates: temporary
//! directories and small tmpfs/hugetlbfs mounts (root needed for those).
//! With the feature `oracle`, the runner of the QEMU compatibility
//! fixtures of `tests/oracle/` (module `oracle`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(feature = "oracle")]
pub mod oracle;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under `base`.
    pub fn new_in(base: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = Path::new(base).join(format!("mbtest-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A path inside it, as text (for command lines and option strings).
    pub fn file(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }

    /// The names of its entries, sorted.
    pub fn entries(&self) -> Vec<String> {
        dir_entries(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file system mounted on a temporary directory, unmounted on drop.
pub struct Mount {
    dir: TempDir,
}

impl Mount {
    /// Mounts `fstype` with `opts`; `None` (after printing why) when that is
    /// impossible here, e.g. without root.
    pub fn new(fstype: &str, opts: &str) -> Option<Mount> {
        let dir = TempDir::new_in("/tmp");
        let out = Command::new("mount")
            .args(["-t", fstype, "-o", opts, "none"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Mount { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount {fstype} ({opts}): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    /// Its mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Allocated bytes of a file (st_blocks * 512).
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// How many file descriptors this process has open.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// How many mappings this process has (lines of `/proc/self/maps`).
pub fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

/// How many threads this process has.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The thread count once threads that were joined have left
/// `/proc/self/task`, or after 10 s if more than `expected` remain.
///
/// `pthread_join` returns when the kernel clears the thread's id, which
/// happens early in its exit; the task is reaped, and leaves
/// `/proc/self/task`, a little later. A count taken right after a join can
/// still include the thread, so a leak check waits for it to settle.
pub fn settled_thread_count(expected: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = thread_count();
        if n <= expected || std::time::Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `$NAME` as a directory when the tests run inside the dax-vm guest
/// (which sets `DAX_DIR` and `NODAX_DIR`); `None`, with a note, elsewhere.
pub fn guest_dir(name: &str) -> Option<PathBuf> {
    match std::env::var_os(name).filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            eprintln!("{name} is not set: not inside the dax-vm guest, nothing to do");
            None
        }
    }
}

/// Whether the running kernel knows the hugetlbfs file system (listed in
/// `/proc/filesystems`).
pub fn hugetlbfs_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|f| {
            f.lines()
                .any(|l| l.split_whitespace().last() == Some("hugetlbfs"))
        })
        .unwrap_or(false)
}

/// A value of `/proc/meminfo` (the number before any unit), e.g.
/// `meminfo("HugePages_Free")`.
pub fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.split_whitespace().next()?.parse().ok())?
    })
}

/// Huge pages of the default size added to the kernel's pool
/// (`/proc/sys/vm/nr_hugepages`) for the life of this value. On drop the
/// same number is taken away again from whatever the pool holds then, so
/// that other tests that add or remove pages meanwhile keep theirs.
pub struct HugePages {
    added: u64,
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

impl HugePages {
    /// Adds `n` pages to the pool. Fails, saying what is needed, without
    /// root or when the kernel could not find the memory.
    pub fn add(n: u64) -> Result<HugePages, String> {
        let now = read_nr_hugepages()?;
        std::fs::write(NR_HUGEPAGES, format!("{}", now + n)).map_err(|e| {
            format!(
                "cannot write {NR_HUGEPAGES} ({e}): this test needs root to reserve {n} huge pages"
            )
        })?;
        let after = read_nr_hugepages()?;
        let pages = HugePages {
            added: after.saturating_sub(now),
        };
        if pages.added < n {
            return Err(format!(
                "the kernel found only {} of {n} huge pages asked for in {NR_HUGEPAGES}",
                pages.added
            ));
        }
        Ok(pages)
    }
}

fn read_nr_hugepages() -> Result<u64, String> {
    let text = std::fs::read_to_string(NR_HUGEPAGES)
        .map_err(|e| format!("cannot read {NR_HUGEPAGES}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{NR_HUGEPAGES}: {e}"))
}

impl Drop for HugePages {
    fn drop(&mut self) {
        if let Ok(now) = read_nr_hugepages() {
            let _ = std::fs::write(NR_HUGEPAGES, format!("{}", now.saturating_sub(self.added)));
        }
    }
}

/// The names in a directory, sorted (empty when it cannot be read).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// How long a stress test runs: `$QOM_STRESS_SECS` seconds (fractions
/// allowed) when set, else `default`.
pub fn stress_duration(default: std::time::Duration) -> std::time::Duration {
    std::env::var("QOM_STRESS_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or(default)
}

/// A small xorshift generator for stress tests: reproducible from its
/// seed, no dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced by a fixed constant).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Heads or tails.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// The type of the file system that holds `path` (`"ext4"`, `"tmpfs"`...),
/// from the longest matching mount point in `/proc/self/mountinfo`.
pub fn fs_type(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let (mount, rest) = line.split_once(" - ")?;
        let point = mount.split(' ').nth(4)?.replace("\\040", " ");
        let fstype = rest.split(' ').next()?;
        let len = Path::new(&point).components().count();
        if path.starts_with(&point) && best.as_ref().is_none_or(|(l, _)| len >= *l) {
            best = Some((len, fstype.to_owned()));
        }
    }
    best.map(|(_, t)| t)
}

/// A new temporary directory on ext4 or xfs (under `/var/tmp` or `/tmp`),
/// where a `MAP_SYNC` mapping of an ordinary file is refused only inside
/// the file system's `->mmap`; an error saying what is needed when neither
/// is on such a file system.
pub fn ext4_or_xfs_dir() -> Result<TempDir, String> {
    for base in ["/var/tmp", "/tmp"] {
        if matches!(fs_type(Path::new(base)).as_deref(), Some("ext4" | "xfs")) {
            return Ok(TempDir::new_in(base));
        }
    }
    Err("this test needs /var/tmp or /tmp on ext4 or xfs".to_owned())
}

/// What every thread of a bounded stress run shares: when it ends (a
/// deadline, or the first problem), and the problems found.
pub struct StressRun {
    until: std::time::Instant,
    stop: std::sync::atomic::AtomicBool,
    problems: std::sync::Mutex<Vec<String>>,
}

impl StressRun {
    /// A run that lasts `length` unless a problem ends it first.
    pub fn new(length: std::time::Duration) -> StressRun {
        StressRun {
            until: std::time::Instant::now() + length,
            stop: std::sync::atomic::AtomicBool::new(false),
            problems: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Whether the threads should go on.
    pub fn going(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && std::time::Instant::now() < self.until
    }

    /// Ends the run for every thread.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Records a problem and ends the run for every thread.
    pub fn fail(&self, msg: String) {
        eprintln!("PROBLEM: {msg}");
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
        self.finish();
    }

    /// The problems recorded so far.
    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What `/proc/PID/smaps` says about one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmapsEntry {
    /// The mapping's first line (`start-end perms offset dev inode path`).
    pub header: String,
    /// The two-letter `VmFlags` (`rd`, `wr`, `sh`, `hg`, `dc`, `mg`...).
    pub vm_flags: Vec<String>,
    /// `AnonHugePages`, in kB.
    pub anon_huge_kb: u64,
}

impl SmapsEntry {
    /// Whether `VmFlags` holds `flag`.
    pub fn has(&self, flag: &str) -> bool {
        self.vm_flags.iter().any(|f| f == flag)
    }
}

/// The `/proc/PID/smaps` entry of the mapping that holds address `addr`
/// in process `pid` ("self" for this one); `None` when nothing is mapped
/// there. (The kernel may merge a mapping with a neighbour that has the
/// same flags, so the entry can start before the mapping's own start.)
pub fn smaps_entry(pid: &str, addr: usize) -> Option<SmapsEntry> {
    entries_of(pid)
        .into_iter()
        .find(|(s, e, _)| (*s..*e).contains(&addr))
        .map(|(_, _, e)| e)
}

/// The `/proc/PID/smaps` entries of the mappings of exactly `len` bytes.
pub fn smaps_entries_of_len(pid: &str, len: usize) -> Vec<SmapsEntry> {
    entries_of(pid)
        .into_iter()
        .filter(|(s, e, _)| e - s == len)
        .map(|(_, _, e)| e)
        .collect()
}

fn entries_of(pid: &str) -> Vec<(usize, usize, SmapsEntry)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut out: Vec<(usize, usize, SmapsEntry)> = Vec::new();
    for line in text.lines() {
        let range = line
            .split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| {
                Some((
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                ))
            });
        if let Some((s, e)) = range {
            out.push((
                s,
                e,
                SmapsEntry {
                    header: line.to_owned(),
                    vm_flags: Vec::new(),
                    anon_huge_kb: 0,
                },
            ));
        } else if let Some(cur) = out.last_mut() {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                cur.2.vm_flags = flags.split_whitespace().map(str::to_owned).collect();
            } else if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                cur.2.anon_huge_kb = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            }
        }
    }
    out
}
