//! The Unix-socket transport: permissions, several clients, events, a
//! client vanishing mid-command, quit and stop.

mod common;

use common::{err, socket_server, temp_dir, Client};
use qom_qmp::{bind_unix, ServerConfig, ServerError, StopReason};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

#[test]
fn socket_is_private_and_removed_on_quit() {
    let dir = temp_dir("mode");
    let path = dir.join("qmp.sock");
    let (_h, t) = socket_server(&path, ServerConfig::default());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    // No temporary directory is left next to it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("qmp.sock")]);

    let mut c = Client::ready(&path);
    c.send_raw(b"{\"execute\": \"quit\"}\n");
    assert_eq!(c.recv()["event"], "SHUTDOWN");
    assert_eq!(c.recv(), json!({"return": {}}));
    c.expect_eof();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Quit);
    assert!(!path.exists());
}

#[test]
fn several_clients_each_with_its_own_handshake() {
    let dir = temp_dir("multi");
    let path = dir.join("qmp.sock");
    let (handle, t) = socket_server(&path, ServerConfig::default());
    let mut a = Client::ready(&path);
    let mut b = Client::connect(&path);
    let mut c = Client::ready(&path);
    common::wait_for_clients(&handle, 3);
    // b has not negotiated: refused, while a and c work.
    assert_eq!(
        b.cmd(json!({"execute": "query-memdev"})),
        err(
            "CommandNotFound",
            "Expecting capabilities negotiation with 'qmp_capabilities'"
        )
    );
    assert_eq!(
        a.cmd(json!({"execute": "query-memdev", "id": "a"})),
        json!({"return": [], "id": "a"})
    );
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev", "id": "c"})),
        json!({"return": [], "id": "c"})
    );
    assert_eq!(
        a.cmd(json!({"execute": "qmp_capabilities"})),
        err(
            "CommandNotFound",
            "Capabilities negotiation is already complete, command ignored"
        )
    );

    // Events reach negotiated clients only.
    handle.emit_event("X-TEST", Some(json!({"n": 1})));
    assert_eq!(a.recv()["event"], "X-TEST");
    assert_eq!(c.recv()["data"], json!({"n": 1}));
    assert_eq!(
        b.cmd(json!({"execute": "qmp_capabilities"})),
        json!({"return": {}})
    );

    // Many clients in parallel threads.
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let p = path.clone();
            std::thread::spawn(move || {
                let mut cl = Client::ready(&p);
                for k in 0..50 {
                    let id = json!([i, k]);
                    let r = cl
                        .cmd(json!({"execute": "x-echo", "arguments": {"i": i, "k": k}, "id": id}));
                    assert_eq!(r, json!({"return": {"i": i, "k": k}, "id": id}));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }

    // quit from c: SHUTDOWN goes to every negotiated client, then c gets
    // its return, and everybody is disconnected.
    c.send_raw(b"{\"execute\": \"quit\", \"id\": 1}\n");
    assert_eq!(c.recv()["event"], "SHUTDOWN");
    assert_eq!(c.recv(), json!({"return": {}, "id": 1}));
    assert_eq!(a.recv()["event"], "SHUTDOWN");
    assert_eq!(b.recv()["event"], "SHUTDOWN");
    a.expect_eof();
    b.expect_eof();
    c.expect_eof();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Quit);
    assert!(!path.exists());
    assert!(handle.quit_requested());
}

#[test]
fn a_slow_command_does_not_block_other_clients() {
    let dir = temp_dir("slow");
    let path = dir.join("qmp.sock");
    let (handle, t) = socket_server(&path, ServerConfig::default());
    let mut slow = Client::ready(&path);
    // x-wait blocks until the gate opens; the gate opens only after the
    // other client got its answer. A server that served one client at a
    // time would answer `fast` only after x-wait gave up with an error.
    slow.send_raw(b"{\"execute\": \"x-wait\", \"id\": \"slow\"}\n");
    let mut fast = Client::ready(&path);
    assert_eq!(
        fast.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
    common::GATE.open();
    assert_eq!(slow.recv(), json!({"return": {}, "id": "slow"}));
    handle.stop();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
    fast.expect_eof();
    assert!(!path.exists());
}

#[test]
fn a_client_vanishing_mid_command_ends_only_that_client() {
    let dir = temp_dir("vanish");
    let path = dir.join("qmp.sock");
    let (handle, t) = socket_server(&path, ServerConfig::default());
    let mut stay = Client::ready(&path);
    {
        let mut gone = Client::ready(&path);
        gone.send_raw(b"{\"execute\": \"x-sleep\", \"arguments\": {\"ms\": 300}}\n{\"execute\": \"query-memdev\"}\n");
        // Half a request, then the client disappears.
        gone.send_raw(b"{\"execute\": \"query-");
    }
    {
        // A client that goes away before reading the greeting.
        drop(UnixStream::connect(&path).unwrap());
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        stay.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
    common::wait_for_clients(&handle, 1);
    let mut again = Client::ready(&path);
    assert_eq!(
        again.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
    handle.stop();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
}

#[test]
fn stale_live_and_foreign_paths() {
    let dir = temp_dir("paths");
    // A stale socket (nobody listening) is replaced.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let (h, t) = socket_server(&stale, ServerConfig::default());
    let _c = Client::ready(&stale);
    // A live one is refused.
    match bind_unix(&stale) {
        Err(ServerError::InUse(p)) => assert_eq!(p, stale),
        other => panic!("{other:?}"),
    }
    h.stop();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
    assert!(!stale.exists());
    // A regular file is left alone.
    let file = dir.join("file");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(bind_unix(&file), Err(ServerError::NotASocket(_))));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn serve_an_existing_listener() {
    let dir = temp_dir("listener");
    let path = dir.join("qmp.sock");
    let bound = bind_unix(&path).unwrap();
    assert_eq!(bound.path(), path);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let server = qom_qmp::Server::new(common::test_commands());
    let handle = server.handle();
    let t = std::thread::spawn(move || server.serve_bound(bound));
    let mut c = Client::ready(&path);
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
    handle.stop();
    c.expect_eof();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
    assert!(!path.exists());

    // A listener bound by the caller.
    let other = dir.join("own.sock");
    let listener = UnixListener::bind(&other).unwrap();
    let server = qom_qmp::Server::new(common::test_commands());
    let handle = server.handle();
    let t = std::thread::spawn(move || server.serve_unix_listener(listener));
    let mut c = Client::ready(&other);
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
    handle.stop();
    c.expect_eof();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
    assert!(!other.exists());
}

#[test]
fn client_limit() {
    let dir = temp_dir("limit");
    let path = dir.join("qmp.sock");
    let config = ServerConfig {
        max_clients: 2,
        ..ServerConfig::default()
    };
    let (handle, t) = socket_server(&path, config);
    let _a = Client::ready(&path);
    let _b = Client::ready(&path);
    let mut extra = UnixStream::connect(&path).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    use std::io::Read;
    assert_eq!(
        extra.read(&mut buf).unwrap(),
        0,
        "over-limit client is closed"
    );
    handle.stop();
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Stopped);
}
