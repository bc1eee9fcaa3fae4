//! The `qom` QMP server under load from several clients at once.
//!
//! In the server every client connection is a thread of its own, with a
//! new stack, and `object-add` of a `share=on` memory-backend-file on ext4
//! goes through the mapping path where a refused `MAP_SYNC` can leave a
//! hole in address space that the backend believes it owns. If another
//! connection's thread allocates into that hole, the backend maps guest
//! RAM over it or unmaps it later: requests then fail for no reason
//! (`qemu_prealloc_mem: preallocating memory failed: Cannot allocate
//! memory` when preallocation runs into a range that someone else
//! unmapped) or the server dies of SIGSEGV.
//!
//! This test starts the real `qom` binary serving a Unix socket and runs,
//! for a bounded time, two clients that each loop `object-add`
//! (memory-backend-file, share=on, prealloc=on, in a directory on ext4)
//! / `qom-get size` / `object-del` with their own ids, and two clients that
//! connect and disconnect over and over (half of the time after a
//! handshake and a large `qom-list-types`). Every reply must be exactly
//! the expected one. Afterwards the server must still answer, `/objects`
//! must be empty, the directory must hold no file, and `quit` must end the
//! server with exit status 0 and remove its socket.
//!
//! Runs about 12 seconds; `QOM_STRESS_SECS` sets another length (for
//! example 30 for an acceptance run). Needs `/var/tmp` or `/tmp` on ext4 or
//! xfs, where the bug showed.

use qom_test_support as support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{dir_entries, ext4_or_xfs_dir, TempDir};

const MIB: u64 = 1 << 20;
/// Upper bound on the rounds of each client, whatever the time allows.
const MAX_ROUNDS: u64 = 100_000;
/// How long a reply may take before the test gives up on the server.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `qom` server process; killed on drop if it is still running (when
/// the test fails half-way).
struct Server {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Server {
    fn start(socket: PathBuf, log: PathBuf) -> Server {
        let err = std::fs::File::create(&log).expect("server log file");
        let child = Command::new(env!("CARGO_BIN_EXE_qom"))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("qom starts");
        let mut server = Server { child, socket, log };
        let until = Instant::now() + Duration::from_secs(10);
        while !server.socket.exists() {
            if let Some(status) = server.exited() {
                panic!("qom exited before listening: {}", server.describe(status));
            }
            assert!(Instant::now() < until, "qom did not create its socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for qom")
    }

    /// How the server ended, with its standard error.
    fn describe(&self, status: ExitStatus) -> String {
        let how = match status.signal() {
            Some(11) => "died of SIGSEGV".to_owned(),
            Some(7) => "died of SIGBUS".to_owned(),
            Some(6) => "died of SIGABRT".to_owned(),
            Some(s) => format!("died of signal {s}"),
            None => format!("exited with {status}"),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("{how}; its stderr:\n{log}")
    }

    /// Waits up to `limit` for the server to end.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal QMP client: one JSON object per line each way.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Qmp {
    /// Connects and reads the greeting, without negotiating.
    fn connect(socket: &Path) -> Result<Qmp, String> {
        let stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            next_id: 0,
        };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            return Err(format!("greeting expected, got {greeting}"));
        }
        Ok(qmp)
    }

    /// Connects, reads the greeting and negotiates capabilities.
    fn open(socket: &Path) -> Result<Qmp, String> {
        let mut qmp = Qmp::connect(socket)?;
        qmp.expect("qmp_capabilities", None, json!({}))?;
        Ok(qmp)
    }

    /// The next object from the server, events skipped.
    fn read(&mut self) -> Result<Value, String> {
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err("the server closed the connection".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading from the server: {e}")),
            }
            let v: Value = serde_json::from_str(&line)
                .map_err(|e| format!("not JSON from the server ({e}): {line:?}"))?;
            if v.get("event").is_none() {
                return Ok(v);
            }
        }
    }

    /// Sends a command with a fresh `id` and returns the whole reply.
    fn execute(&mut self, command: &str, args: Option<Value>) -> Result<(u64, Value), String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut req = json!({"execute": command, "id": id});
        if let Some(a) = args {
            req["arguments"] = a;
        }
        let mut text = req.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|e| format!("sending {command}: {e}"))?;
        Ok((id, self.read()?))
    }

    /// Sends a command; the reply must be exactly `{"return": want, "id": N}`.
    fn expect(&mut self, command: &str, args: Option<Value>, want: Value) -> Result<(), String> {
        let shown = args.clone();
        let (id, got) = self.execute(command, args)?;
        let want = json!({"return": want, "id": id});
        if got != want {
            let shown = shown.map(|a| a.to_string()).unwrap_or_default();
            return Err(format!("{command} {shown}: got {got}, want {want}"));
        }
        Ok(())
    }
}

/// What the client threads share.
struct Run {
    common: support::StressRun,
    cycles: AtomicU64,
    connections: AtomicU64,
}

impl std::ops::Deref for Run {
    type Target = support::StressRun;
    fn deref(&self) -> &support::StressRun {
        &self.common
    }
}

/// Lets the object clients start each round together, so that their
/// `object-add`s run at the same moment in the server; a barrier that
/// gives up when the run ends.
struct Lockstep {
    /// Generation, and how many clients arrived in it.
    state: Mutex<(u64, usize)>,
    turn: Condvar,
    parties: usize,
}

impl Lockstep {
    fn new(parties: usize) -> Lockstep {
        Lockstep {
            state: Mutex::new((0, 0)),
            turn: Condvar::new(),
            parties,
        }
    }

    /// Waits for the other clients; false when the run ended meanwhile.
    fn arrive(&self, run: &Run) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let generation = state.0;
        state.1 += 1;
        if state.1 == self.parties {
            *state = (generation + 1, 0);
            self.turn.notify_all();
            return true;
        }
        while state.0 == generation {
            if !run.going() {
                return false;
            }
            state = self
                .turn
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// `object-add` / `qom-get size` / `object-del` in a loop, ids `c{client}-N`;
/// each `object-add` starts together with the other object client's.
/// Client 0 makes larger backends than client 1: a hole left by the
/// larger one can take in the smaller one's reservation.
fn object_client(
    run: &Run,
    lockstep: &Lockstep,
    socket: &Path,
    dir: &Path,
    client: u64,
) -> Result<(), String> {
    const SIZES: [[u64; 4]; 2] = [[6, 8, 5, 7], [1, 2, 3, 2]];
    let mut qmp = Qmp::open(socket)?;
    let dir = dir.display().to_string();
    let mut round = 0;
    while run.going() && round < MAX_ROUNDS && lockstep.arrive(run) {
        let id = format!("c{client}-{round}");
        let size = SIZES[client as usize % 2][round as usize % 4] * MIB;
        qmp.expect(
            "object-add",
            Some(json!({
                "qom-type": "memory-backend-file", "id": id, "size": size,
                "mem-path": dir, "share": true, "prealloc": true,
            })),
            json!({}),
        )?;
        qmp.expect(
            "qom-get",
            Some(json!({"path": format!("/objects/{id}"), "property": "size"})),
            json!(size),
        )?;
        qmp.expect("object-del", Some(json!({"id": id})), json!({}))?;
        run.cycles.fetch_add(1, Ordering::Relaxed);
        round += 1;
    }
    Ok(())
}

/// Connects and disconnects in a loop; every other time after a handshake
/// and a `qom-list-types`, whose large reply the server builds on the
/// connection's thread.
fn churn_client(run: &Run, socket: &Path) -> Result<(), String> {
    let mut round = 0;
    while run.going() && round < MAX_ROUNDS {
        if round % 2 == 0 {
            drop(Qmp::connect(socket)?);
        } else {
            let mut qmp = Qmp::open(socket)?;
            let (id, reply) = qmp.execute("qom-list-types", None)?;
            let ok = reply["id"] == json!(id)
                && reply["return"]
                    .as_array()
                    .is_some_and(|types| types.iter().any(|t| t["name"] == "memory-backend-file"));
            if !ok {
                let text: String = reply.to_string().chars().take(300).collect();
                return Err(format!("qom-list-types: unexpected reply {text}"));
            }
        }
        run.connections.fetch_add(1, Ordering::Relaxed);
        round += 1;
    }
    Ok(())
}

#[test]
fn object_add_and_connections_from_several_clients() {
    let dir = ext4_or_xfs_dir().unwrap_or_else(|e| panic!("{e}"));
    let work = TempDir::new_in("/tmp");
    let socket = work.join("qmp.sock");
    let mut server = Server::start(socket.clone(), work.join("qom.log"));
    let length = support::stress_duration(Duration::from_secs(12));
    let run = Run {
        common: support::StressRun::new(length),
        cycles: AtomicU64::new(0),
        connections: AtomicU64::new(0),
    };
    let lockstep = &Lockstep::new(2);
    let started = Instant::now();
    std::thread::scope(|s| {
        let (run, socket, dir) = (&run, &socket, dir.path());
        for client in 0..2 {
            s.spawn(move || {
                if let Err(e) = object_client(run, lockstep, socket, dir, client) {
                    run.fail(format!("object client {client}: {e}"));
                }
            });
        }
        for client in 0..2 {
            s.spawn(move || {
                if let Err(e) = churn_client(run, socket) {
                    run.fail(format!("connecting client {client}: {e}"));
                }
            });
        }
    });
    println!(
        "{} object cycles and {} connections in {:.1?}",
        run.cycles.load(Ordering::Relaxed),
        run.connections.load(Ordering::Relaxed),
        started.elapsed()
    );
    let problems = run.problems();
    if !problems.is_empty() {
        let how = match server.wait(Duration::from_millis(500)) {
            Some(status) => format!("the server {}", server.describe(status)),
            None => "the server is still running".to_owned(),
        };
        panic!("{}\n{how}", problems.join("\n"));
    }

    // The server still answers, and nothing is left.
    let mut qmp = Qmp::open(&socket).unwrap_or_else(|e| panic!("after the run: {e}"));
    qmp.expect(
        "qom-list",
        Some(json!({"path": "/objects"})),
        json!([{"name": "type", "type": "string"}]),
    )
    .unwrap_or_else(|e| panic!("after the run: {e}"));
    assert_eq!(
        dir_entries(dir.path()),
        Vec::<String>::new(),
        "files left in the memory directory"
    );
    qmp.expect("quit", None, json!({}))
        .unwrap_or_else(|e| panic!("quit: {e}"));
    drop(qmp);
    let status = server
        .wait(Duration::from_secs(10))
        .expect("the server ends after quit");
    assert!(status.success(), "the server {}", server.describe(status));
    assert!(!socket.exists(), "the server left its socket behind");
}
