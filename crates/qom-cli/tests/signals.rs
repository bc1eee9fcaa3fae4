//! Black-box tests of how `qom` ends on SIGTERM, SIGINT and SIGHUP: the
//! real binary, a real QMP client, and memory backend files in /dev/shm
//! with `discard-data=on`, whose allocated blocks show whether the teardown
//! ran.

use qom_test_support::{allocated, TempDir};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const QOM: &str = env!("CARGO_BIN_EXE_qom");
const SIZE: u64 = 8 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);

fn spawn(args: &[String], stdio_qmp: bool) -> Child {
    let mut cmd = Command::new(QOM);
    cmd.args(args).stderr(Stdio::piped());
    if stdio_qmp {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    } else {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
    }
    cmd.spawn().expect("spawn qom")
}

fn file_backend(path: &Path, extra: &str) -> String {
    format!(
        "memory-backend-file,id=m0,size={SIZE},mem-path={},share=on,discard-data=on{extra}",
        path.display()
    )
}

fn send_signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -s {name} failed");
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the child with a bound, and returns its status and stderr.
fn finish(mut child: Child) -> (ExitStatus, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("qom did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// Reads QMP lines until an event arrives (or the stream ends).
fn next_event(reader: &mut impl BufRead) -> Option<Value> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read from qom") == 0 {
            return None;
        }
        let v: Value = serde_json::from_str(&line).expect("QMP output is JSON");
        if v.get("event").is_some() {
            return Some(v);
        }
    }
}

fn read_reply(reader: &mut impl BufRead) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read from qom");
    serde_json::from_str(&line).expect("QMP output is JSON")
}

/// A client past the handshake on the socket at `sock`.
fn connect(sock: &Path) -> (BufReader<UnixStream>, UnixStream) {
    wait_until("the QMP socket", || sock.exists());
    let stream = UnixStream::connect(sock).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    assert!(read_reply(&mut reader).get("QMP").is_some(), "greeting");
    writer
        .write_all(b"{\"execute\": \"qmp_capabilities\"}\n")
        .expect("write");
    assert_eq!(read_reply(&mut reader), serde_json::json!({"return": {}}));
    (reader, writer)
}

/// The event QEMU sends on a signal, with its timestamp.
fn assert_host_signal_shutdown(event: Option<Value>) {
    let event = event.expect("a SHUTDOWN event before the connection ends");
    assert_eq!(event["event"], "SHUTDOWN");
    assert_eq!(
        event["data"],
        serde_json::json!({"guest": false, "reason": "host-signal"})
    );
    assert!(event["timestamp"]["seconds"].as_u64().is_some());
    assert!(event["timestamp"]["microseconds"].as_u64().is_some());
}

struct Run {
    status: ExitStatus,
    stderr: String,
    event: Option<Value>,
}

/// Starts `qom` with one file backend and a socket, connects a client,
/// sends `signal` once the backend's blocks are allocated, and collects
/// what the client and the exit tell.
fn unix_run(dir: &TempDir, mem_path: &Path, signal: &str) -> (Run, PathBuf) {
    let sock = dir.join("qmp.sock");
    let child = spawn(
        &[
            "-object".into(),
            file_backend(mem_path, ",prealloc=on"),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", sock.display()),
        ],
        false,
    );
    let (mut reader, _writer) = connect(&sock);
    assert_eq!(allocated(mem_path), SIZE, "prealloc allocated the file");
    send_signal(&child, signal);
    let event = next_event(&mut reader);
    let (status, stderr) = finish(child);
    (
        Run {
            status,
            stderr,
            event,
        },
        sock,
    )
}

#[test]
fn sigterm_sends_shutdown_discards_removes_socket_and_exits_143() {
    let dir = TempDir::new_in("/dev/shm");
    // A file that qom did not create: it must stay, with its blocks freed.
    let mem = dir.join("guest-ram");
    std::fs::File::create(&mem).expect("pre-create");
    let (run, sock) = unix_run(&dir, &mem, "TERM");
    assert_host_signal_shutdown(run.event);
    assert_eq!(run.status.code(), Some(143), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("qom: terminating on signal 15"));
    assert!(!sock.exists(), "the socket file is removed");
    assert!(mem.exists(), "a file qom did not create is kept");
    assert_eq!(allocated(&mem), 0, "discard-data released the blocks");
}

#[test]
fn sigint_with_a_file_qom_created_exits_130() {
    let dir = TempDir::new_in("/dev/shm");
    let mem = dir.join("created-by-qom");
    let (run, sock) = unix_run(&dir, &mem, "INT");
    assert_host_signal_shutdown(run.event);
    assert_eq!(run.status.code(), Some(130), "stderr: {}", run.stderr);
    assert!(!sock.exists());
    // A named file that qom created stays after a successful creation, as
    // with QEMU; its contents are gone.
    assert_eq!(allocated(&mem), 0, "discard-data released the blocks");
}

#[test]
fn sighup_exits_129() {
    let dir = TempDir::new_in("/dev/shm");
    let mem = dir.join("ram");
    std::fs::File::create(&mem).expect("pre-create");
    let (run, sock) = unix_run(&dir, &mem, "HUP");
    assert_host_signal_shutdown(run.event);
    assert_eq!(run.status.code(), Some(129), "stderr: {}", run.stderr);
    assert!(!sock.exists());
    assert_eq!(allocated(&mem), 0);
}

#[test]
fn every_connected_client_gets_the_event() {
    let dir = TempDir::new_in("/dev/shm");
    let mem = dir.join("ram");
    let sock = dir.join("qmp.sock");
    let child = spawn(
        &[
            "-object".into(),
            file_backend(&mem, ""),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", sock.display()),
        ],
        false,
    );
    let mut clients: Vec<_> = (0..3).map(|_| connect(&sock)).collect();
    send_signal(&child, "TERM");
    for (reader, _) in &mut clients {
        assert_host_signal_shutdown(next_event(reader));
    }
    let (status, stderr) = finish(child);
    assert_eq!(status.code(), Some(143), "stderr: {stderr}");
}

#[test]
fn stdio_server_stops_while_waiting_for_input() {
    let dir = TempDir::new_in("/dev/shm");
    let mem = dir.join("ram");
    std::fs::File::create(&mem).expect("pre-create");
    let mut child = spawn(
        &[
            "-object".into(),
            file_backend(&mem, ",prealloc=on"),
            "-qmp".into(),
            "stdio".into(),
        ],
        true,
    );
    // stdin stays open until the end: the server must not need more input
    // (or its end) to notice the signal.
    let mut stdin = child.stdin.take().expect("stdin");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    assert!(read_reply(&mut reader).get("QMP").is_some());
    stdin
        .write_all(b"{\"execute\": \"qmp_capabilities\"}\n")
        .expect("write");
    assert_eq!(read_reply(&mut reader), serde_json::json!({"return": {}}));
    assert_eq!(allocated(&mem), SIZE);
    send_signal(&child, "TERM");
    assert_host_signal_shutdown(next_event(&mut reader));
    let (status, stderr) = finish(child);
    assert_eq!(status.code(), Some(143), "stderr: {stderr}");
    assert_eq!(allocated(&mem), 0);
    drop(stdin);
}

/// A signal while `-object` is still creating (a long preallocation):
/// the preallocation is cancelled, the backend is not created (with
/// `discard-data=on` the blocks it populated in the existing file are given
/// back), and nothing is served.
#[test]
fn signal_during_creation_tears_down_without_serving() {
    const BIG: u64 = 256 << 20;
    let dir = TempDir::new_in("/dev/shm");
    let mem = dir.join("ram");
    std::fs::File::create(&mem).expect("pre-create");
    let sock = dir.join("qmp.sock");
    let child = spawn(
        &[
            "-object".into(),
            format!(
                "memory-backend-file,id=m0,size={BIG},mem-path={},share=on,discard-data=on,prealloc=on",
                mem.display()
            ),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", sock.display()),
        ],
        false,
    );
    // The handlers are installed before any object is created, so once
    // blocks appear a signal is ours to handle.
    wait_until("the preallocation to start", || allocated(&mem) > 0);
    send_signal(&child, "TERM");
    let (status, stderr) = finish(child);
    assert_eq!(status.code(), Some(143), "stderr: {stderr}");
    assert!(
        stderr.contains("qom: preallocation cancelled after "),
        "stderr: {stderr}"
    );
    assert_eq!(allocated(&mem), 0, "the populated blocks were given back");
    assert!(!sock.exists());
}

/// A signal cuts a long preallocation short instead of waiting for it
/// (1 GiB takes seconds here): the process ends with the signal's status
/// long before the preallocation could have finished, having populated
/// only part of the file, and gives those blocks back (`discard-data=on`).
/// Before cancellation existed, the blocks were all allocated first.
#[test]
fn a_signal_cuts_a_long_preallocation_short() {
    const BIG: u64 = 1 << 30;
    let dir = TempDir::new_in("/dev/shm");
    let mem = dir.join("ram");
    std::fs::File::create(&mem).expect("pre-create");
    let child = spawn(
        &[
            "-object".into(),
            format!(
                "memory-backend-file,id=m0,size={BIG},mem-path={},share=on,discard-data=on,prealloc=on",
                mem.display()
            ),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display()),
        ],
        false,
    );
    wait_until("the preallocation to start", || allocated(&mem) > 0);
    send_signal(&child, "INT");
    let (status, stderr) = finish(child);
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    let cancelled = stderr
        .lines()
        .find_map(|l| l.strip_prefix("qom: preallocation cancelled after "))
        .unwrap_or_else(|| panic!("not cancelled: {stderr}"));
    assert!(cancelled.ends_with(" of 1 GiB"), "{cancelled}");
    assert_eq!(allocated(&mem), 0, "the populated blocks were given back");
}
