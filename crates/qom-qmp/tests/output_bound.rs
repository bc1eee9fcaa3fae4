//! What one socket client that sends but never reads may cost the server:
//! it must not stall the other clients (their requests nor events sent to
//! everyone), and the output the server holds for it stays bounded.

mod common;

use common::{socket_server, temp_dir, wait_for_clients, Client};
use qom_qmp::{ServerConfig, StopReason};
use serde_json::json;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// The "no hang" deadline of every wait below.
const DEADLINE: Duration = Duration::from_secs(30);

const LIMIT: usize = 64 << 10;

/// One request whose answer is about 1 KiB (it echoes its arguments).
fn echo_request() -> Vec<u8> {
    let filler = "x".repeat(1000);
    let mut r = serde_json::to_vec(&json!({"execute": "x-echo", "arguments": {"s": filler}}))
        .expect("serialise");
    r.push(b'\n');
    r
}

/// How a flood ended.
struct Flood {
    /// Bytes the server's socket accepted.
    written: usize,
    /// Whether the server closed the connection (else the deadline came).
    disconnected: bool,
}

/// Connects, negotiates, then writes requests without ever reading,
/// until the server disconnects it or `stop` is set or the deadline passes.
/// `written` follows the bytes written so far.
fn flood(path: &Path, stop: Arc<AtomicBool>, written: Arc<AtomicUsize>) -> Flood {
    let mut c = Client::ready(path);
    c.stream.set_nonblocking(true).expect("nonblocking");
    let request = echo_request();
    let start = Instant::now();
    let mut at = 0;
    loop {
        if stop.load(Ordering::Acquire) || start.elapsed() > DEADLINE {
            return Flood {
                written: written.load(Ordering::Acquire),
                disconnected: false,
            };
        }
        match c.stream.write(&request[at..]) {
            Ok(n) => {
                written.fetch_add(n, Ordering::AcqRel);
                at = (at + n) % request.len();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                return Flood {
                    written: written.load(Ordering::Acquire),
                    disconnected: true,
                }
            }
        }
    }
}

#[test]
fn a_client_that_never_reads_stalls_nobody_and_is_bounded_then_dropped() {
    let dir = temp_dir("bound-flood");
    let path = dir.join("qmp.sock");
    let config = ServerConfig {
        max_pending_output: LIMIT,
        write_timeout: Some(Duration::from_secs(3)),
        ..ServerConfig::default()
    };
    let (handle, t) = socket_server(&path, config);
    let mut other = Client::ready(&path);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let flooder = {
        let (path, stop, written) = (path.clone(), stop.clone(), written.clone());
        thread::spawn(move || flood(&path, stop, written))
    };

    // While the flood goes on, the other client is answered (each answer
    // within Client's read timeout) and the server never holds much more
    // than the limit for anyone.
    let start = Instant::now();
    let mut peak = 0;
    let mut answers = 0;
    while !flooder.is_finished() && start.elapsed() < DEADLINE {
        assert_eq!(
            other.cmd(json!({"execute": "x-echo", "arguments": {"n": answers}})),
            json!({"return": {"n": answers}})
        );
        answers += 1;
        peak = peak.max(handle.max_pending_output());
        thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Release);
    let flood = flooder.join().expect("flooder");
    assert!(
        flood.disconnected,
        "the flooding client was still connected after {DEADLINE:?} ({} bytes written)",
        flood.written
    );
    // Without a bound the server would read (and answer into memory)
    // everything; with it, it stops at the socket buffers plus the limit.
    assert!(
        flood.written < 16 << 20,
        "the server took {} bytes from a client that never read",
        flood.written
    );
    assert!(
        peak <= LIMIT + 2048,
        "{peak} bytes pending for one client (limit {LIMIT}, no events)"
    );
    assert!(answers > 0);
    wait_for_clients(&handle, 1);
    assert_eq!(
        other.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
    handle.stop();
    other.expect_eof();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
}

#[test]
fn an_event_does_not_wait_for_a_client_that_never_reads() {
    let dir = temp_dir("bound-event");
    let path = dir.join("qmp.sock");
    // A write timeout longer than the deadline: only the pending-output
    // limit can keep the event from waiting for the flooder.
    let config = ServerConfig {
        max_pending_output: LIMIT,
        write_timeout: Some(Duration::from_secs(120)),
        ..ServerConfig::default()
    };
    let (handle, t) = socket_server(&path, config);

    // The flooder connects first, so that events reach it first.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let flooder = {
        let (path, stop, written) = (path.clone(), stop.clone(), written.clone());
        thread::spawn(move || flood(&path, stop, written))
    };
    wait_for_clients(&handle, 1);
    let mut other = Client::ready(&path);

    // Wait until the server holds more than the limit for the flooder:
    // its socket is full and its thread waits for it to read.
    let start = Instant::now();
    while handle.max_pending_output() <= LIMIT {
        assert!(
            start.elapsed() < DEADLINE,
            "the flooder's output never filled ({} bytes written, {} pending)",
            written.load(Ordering::Acquire),
            handle.max_pending_output()
        );
        thread::sleep(Duration::from_millis(5));
    }

    // Events go out to both without waiting for the flooder: the other
    // client gets them, the flooder's pile up behind its answers until
    // they pass the limit and it is dropped.
    let (done, finished) = mpsc::channel();
    let events = 200;
    {
        let handle = handle.clone();
        thread::spawn(move || {
            let filler = "z".repeat(1000);
            for n in 0..events {
                handle.emit_event("X-TEST", Some(json!({"n": n, "s": filler})));
            }
            let _ = done.send(());
        });
    }
    for n in 0..events {
        let event = other.recv();
        assert_eq!(event["event"], json!("X-TEST"));
        assert_eq!(event["data"]["n"], json!(n));
    }
    assert!(
        finished.recv_timeout(DEADLINE).is_ok(),
        "emitting events waited {DEADLINE:?} for a client that does not read"
    );

    let flood = flooder.join().expect("flooder");
    assert!(flood.disconnected, "the flooder was not disconnected");
    wait_for_clients(&handle, 1);
    assert_eq!(handle.max_pending_output(), 0);
    stop.store(true, Ordering::Release);
    assert_eq!(
        other.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );

    handle.stop();
    other.expect_eof();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
}

#[test]
fn a_slow_reader_gets_every_answer_and_event() {
    // A client that reads late (not never) loses nothing: the server stops
    // reading it while its answers wait, an event queues among them, and
    // all arrive once it reads.
    let dir = temp_dir("bound-slow");
    let path = dir.join("qmp.sock");
    let config = ServerConfig {
        max_pending_output: LIMIT,
        ..ServerConfig::default()
    };
    let (handle, t) = socket_server(&path, config);
    let mut slow = Client::ready(&path);
    let filler = "y".repeat(1000);
    let n = 300;
    let mut batch = Vec::new();
    for i in 0..n {
        let r = json!({"execute": "x-echo", "arguments": {"i": i, "s": filler}, "id": i});
        batch.extend_from_slice(&serde_json::to_vec(&r).expect("serialise"));
        batch.push(b'\n');
    }
    let writer = {
        let mut stream = slow.stream.try_clone().expect("clone");
        thread::spawn(move || stream.write_all(&batch))
    };
    // Let the server run ahead into its limit (no timing is asserted).
    thread::sleep(Duration::from_millis(300));
    handle.emit_event("X-LATE", None);
    let mut next = 0;
    let mut events = 0;
    for _ in 0..=n {
        let m = slow.recv();
        if m.get("event").is_some() {
            assert_eq!(m["event"], json!("X-LATE"));
            events += 1;
        } else {
            assert_eq!(m, json!({"return": {"i": next, "s": filler}, "id": next}));
            next += 1;
        }
    }
    assert_eq!((next, events), (n, 1));
    writer.join().expect("writer").expect("write");
    handle.stop();
    slow.expect_eof();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
}
