//! `cargo xtask soak [--seconds N] [--debug|--release]`: eight QMP clients
//! at once against one `qom -qmp unix:...` server.
//!
//! Six mixers create, query, change and delete their own memory backends
//! (ram, and file backends in a directory on /dev/shm) and check every
//! answer; one client sends malformed input and expects an error for each,
//! and goes away in the middle of messages; one races `object-del` against
//! the mixers' ids. Afterwards the server must answer, hold no object, have
//! as many descriptors open as before, and have left no file behind. Any
//! wrong answer, an answer that takes longer than 30 s, or the server's
//! death fails the run. It prints cycles per second, the server's peak
//! thread count and its RSS before and after.
//!
//! `cargo xtask soak` builds `qom` in release (realistic figures); `cargo
//! xtask ci` runs 60 s against the debug build it has already made, which
//! costs no build time and keeps debug assertions and overflow checks on
//! under load.

mod clients;
mod qmp;

use anyhow::{bail, Context, Result};
use clients::{Reference, Shared};
use qmp::Qmp;
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A client's body, run in its own thread.
type Client = dyn FnOnce(&Shared) -> Result<()> + Send;

/// How many mixers run (plus one malformed-input client and one racer).
const MIXERS: usize = 6;

/// Runs `cargo xtask soak`.
pub fn run(args: &[String]) -> Result<()> {
    let mut seconds = 60;
    let mut release = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().context("--seconds needs a value")?;
                seconds = v.parse().with_context(|| format!("--seconds {v}"))?;
            }
            "--release" => release = true,
            "--debug" => release = false,
            other => bail!("soak: unknown argument '{other}' (--seconds N, --debug, --release)"),
        }
    }
    soak(seconds, release)
}

/// What `cargo xtask ci` runs of it: 60 s on the debug build.
pub fn ci() -> Result<()> {
    soak(60, false)
}

fn soak(seconds: u64, release: bool) -> Result<()> {
    let qom = build_qom(release)?;
    let profile = if release { "release" } else { "debug" };
    let dir = PathBuf::from(format!("/dev/shm/qom-soak-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let mem_dir = dir.join("mem");
    fs::create_dir_all(&mem_dir).with_context(|| format!("creating {}", mem_dir.display()))?;
    let socket = dir.join("qmp.sock");
    let mut server = Server::start(&qom, &socket, &dir)?;
    let result = drive(&mut server, seconds, profile, &socket, &mem_dir);
    let result = result.and_then(|()| server.quit(&socket));
    if result.is_err() {
        server.kill();
        eprintln!("soak: FAILED; the server's stderr:\n{}", server.stderr());
    }
    let _ = fs::remove_dir_all(&dir);
    result
}

fn drive(
    server: &mut Server,
    seconds: u64,
    profile: &str,
    socket: &Path,
    mem_dir: &Path,
) -> Result<()> {
    let pid = server.pid();
    let fds_before = count_fds(pid)?;
    let before = status(pid)?;
    let reference = Reference::take(socket, mem_dir).context("taking the reference answers")?;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    eprintln!(
        "soak: {seconds} s against {profile} qom (pid {pid}): {MIXERS} mixers, 1 malformed-input client, 1 racer; seed {seed}"
    );
    let shared = Arc::new(Shared {
        socket: socket.to_path_buf(),
        mem_dir: mem_dir.to_path_buf(),
        stop: AtomicBool::new(false),
        ids: Mutex::new(Default::default()),
        reference,
        cycles: AtomicU64::new(0),
        racer_hits: AtomicU64::new(0),
        racer_misses: AtomicU64::new(0),
        racer_in_use: AtomicU64::new(0),
        raced_ops: AtomicU64::new(0),
        malformed_cases: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
    });
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    let spawn = |name: String, f: Box<Client>| {
        let (shared, failures) = (shared.clone(), failures.clone());
        let label = name.clone();
        thread::Builder::new()
            .name(name)
            .spawn(move || {
                if let Err(e) = f(&shared) {
                    failures
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{label}: {e:#}"));
                    shared.stop.store(true, Ordering::Release);
                }
            })
            .context("starting a client thread")
    };
    for n in 0..MIXERS {
        let s = seed.wrapping_add(n as u64 * 0x9e37_79b9);
        workers.push(spawn(
            format!("mixer-{n}"),
            Box::new(move |sh| clients::mixer(sh, n, s)),
        )?);
    }
    workers.push(spawn("malformed".into(), Box::new(clients::malformed))?);
    let s = seed ^ 0x5eed;
    workers.push(spawn(
        "racer".into(),
        Box::new(move |sh| clients::racer(sh, s)),
    )?);

    // Watch the server while the clients run.
    let start = Instant::now();
    let mut peak = before;
    let mut died = None;
    while !workers.iter().all(|w| w.is_finished()) {
        if start.elapsed() >= Duration::from_secs(seconds) {
            shared.stop.store(true, Ordering::Release);
        }
        if let Some(exit) = server.exited()? {
            died = Some(exit);
            shared.stop.store(true, Ordering::Release);
            break;
        }
        if let Ok(s) = status(pid) {
            peak.threads = peak.threads.max(s.threads);
            peak.rss_kib = peak.rss_kib.max(s.rss_kib);
        }
        thread::sleep(Duration::from_millis(50));
    }
    let elapsed = start.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.join();
    }
    if let Some(exit) = died {
        bail!("the server died during the soak: {exit}");
    }
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }

    // Afterwards: answers, holds nothing, as many descriptors as before.
    let mut q = Qmp::ready(socket).context("connecting after the soak")?;
    q.expect(
        json!({"execute": "qom-list", "arguments": {"path": "/objects"}}),
        json!({"return": [{"name": "type", "type": "string"}]}),
    )
    .context("after the soak")?;
    q.expect(json!({"execute": "query-memdev"}), json!({"return": []}))
        .context("after the soak")?;
    drop(q);
    let left: Vec<_> = fs::read_dir(mem_dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    if !left.is_empty() {
        bail!("files left in {}: {left:?}", mem_dir.display());
    }
    // The server's client threads close their sockets as they notice the
    // clients left: give them a moment.
    let settle = Instant::now();
    let fds_after = loop {
        let n = count_fds(pid)?;
        if n == fds_before || settle.elapsed() > Duration::from_secs(10) {
            break n;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let after = status(pid)?;

    let cycles = shared.cycles.load(Ordering::Relaxed);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "soak: {elapsed:.1} s, {profile} build: {cycles} mixer cycles ({:.1}/s; each 2 object-add, 17 checked queries and 2 object-del)",
        cycles as f64 / elapsed
    );
    println!(
        "soak: racer: {} deletes hit, {} missed, {} found the object still being created; mixers saw {} of their objects deleted under them",
        shared.racer_hits.load(Ordering::Relaxed),
        shared.racer_misses.load(Ordering::Relaxed),
        shared.racer_in_use.load(Ordering::Relaxed),
        shared.raced_ops.load(Ordering::Relaxed),
    );
    println!(
        "soak: malformed: {} inputs answered with errors, {} connections (half a message then a disconnect between rounds)",
        shared.malformed_cases.load(Ordering::Relaxed),
        shared.reconnects.load(Ordering::Relaxed),
    );
    println!(
        "soak: server threads: {} before, peak {}, {} after",
        before.threads, peak.threads, after.threads
    );
    println!(
        "soak: server RSS: {:.1} MiB before, peak {:.1} MiB, {:.1} MiB after",
        mib(before.rss_kib),
        mib(peak.rss_kib),
        mib(after.rss_kib)
    );
    println!("soak: server descriptors: {fds_before} before, {fds_after} after");
    if fds_after != fds_before {
        bail!(
            "the server holds {fds_after} descriptors after the soak, {fds_before} before:\n{}",
            list_fds(pid)
        );
    }
    Ok(())
}

/// Builds `qom` and returns its path.
fn build_qom(release: bool) -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root).args([
        "build",
        "--package",
        "qom-cli",
        "--bin",
        "qom",
        "--message-format",
        "json-render-diagnostics",
    ]);
    if release {
        cmd.arg("--release");
    }
    eprintln!(
        "soak: cargo build{} --bin qom",
        if release { " --release" } else { "" }
    );
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo build failed ({})", out.status);
    }
    crate::artifacts::executables(&out.stdout)
        .into_iter()
        .find(|e| e.name == "qom")
        .map(|e| e.path)
        .context("cargo reported no qom executable")
}

/// The server process.
struct Server {
    child: Child,
    stderr_path: PathBuf,
}

impl Server {
    fn start(qom: &Path, socket: &Path, dir: &Path) -> Result<Server> {
        let stderr_path = dir.join("server.stderr");
        let stderr = fs::File::create(&stderr_path)?;
        let child = Command::new(qom)
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", qom.display()))?;
        let mut server = Server { child, stderr_path };
        let start = Instant::now();
        while !socket.exists() {
            if let Some(exit) = server.exited()? {
                bail!("qom exited at start ({exit}): {}", server.stderr());
            }
            if start.elapsed() > Duration::from_secs(30) {
                server.kill();
                bail!("{} did not appear within 30 s", socket.display());
            }
            thread::sleep(Duration::from_millis(10));
        }
        // Let the accept loop settle before descriptors are counted.
        thread::sleep(Duration::from_millis(200));
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `quit`: the server answers, exits 0 and removes its socket.
    fn quit(&mut self, socket: &Path) -> Result<()> {
        let mut q = Qmp::ready(socket)?;
        q.send_raw(b"{\"execute\": \"quit\"}\n")?;
        // The SHUTDOWN event and the answer, in either order.
        let mut got = vec![q.recv()?, q.recv()?];
        got.sort_by_key(|m| m.get("event").is_some());
        if got[0] != json!({"return": {}}) || got[1]["event"] != json!("SHUTDOWN") {
            bail!("quit: unexpected answers {got:?}");
        }
        let start = Instant::now();
        let exit = loop {
            if let Some(exit) = self.exited()? {
                break exit;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the server did not exit within 30 s of quit");
            }
            thread::sleep(Duration::from_millis(20));
        };
        if !exit.success() {
            bail!("the server exited with {exit} after quit");
        }
        if socket.exists() {
            bail!("the server left its socket {} behind", socket.display());
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

#[derive(Clone, Copy)]
struct Status {
    threads: u64,
    rss_kib: u64,
}

/// Threads and VmRSS from /proc/PID/status.
fn status(pid: u32) -> Result<Status> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok(Status {
        threads: field("Threads:")?,
        rss_kib: field("VmRSS:")?,
    })
}

fn count_fds(pid: u32) -> Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .count())
}

fn list_fds(pid: u32) -> String {
    let mut out = String::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            let target = fs::read_link(e.path()).unwrap_or_default();
            out.push_str(&format!(
                "  {} -> {}\n",
                e.file_name().to_string_lossy(),
                target.display()
            ));
        }
    }
    out
}
