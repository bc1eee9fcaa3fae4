//! Shared helpers of the integration tests: a small QMP test client and a
//! server with stand-ins for the commands the recorded scenarios use.
#![allow(dead_code)]

use qom_qmp::qom_commands::decode;
use qom_qmp::{Commands, Server, ServerConfig, StopReason};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The sentinel request sent after raw input (as the oracle harness does).
pub const SYNC: &str = r#"{"execute":"__qmpo_sync__","id":"__qmpo_sync__"}"#;

/// Arguments of a command that takes none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// A command table with stand-ins for `query-memdev` and `qom-list` (enough
/// for the protocol scenarios) plus test helpers. Arguments are checked the
/// way the real commands check them, with [`decode`].
pub fn test_commands() -> Arc<Commands> {
    let c = Commands::new();
    c.register("query-memdev", |args| {
        let NoArgs {} = decode(args)?;
        Ok(json!([]))
    })
    .unwrap();
    c.register("qom-list", |args| {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            path: String,
        }
        let Args { path } = decode(args)?;
        match path.as_str() {
            "/objects" => Ok(json!([{"name": "type", "type": "string"}])),
            p => Err(qom::Error::DeviceNotFound(p.to_owned())),
        }
    })
    .unwrap();
    c.register("x-sleep", |args| {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            ms: u64,
        }
        let Args { ms } = decode(args)?;
        std::thread::sleep(Duration::from_millis(ms));
        Ok(json!({}))
    })
    .unwrap();
    c.register("x-wait", |args| {
        let NoArgs {} = decode(args)?;
        if GATE.wait_open(Duration::from_secs(30)) {
            Ok(json!({}))
        } else {
            Err(qom::Error::generic("x-wait: the gate stayed closed"))
        }
    })
    .unwrap();
    c.register("x-echo", |args| Ok(Value::Object(args.clone())))
        .unwrap();
    Arc::new(c)
}

/// A gate the `x-wait` command blocks on until a test opens it.
pub struct Gate {
    open: std::sync::Mutex<bool>,
    cond: std::sync::Condvar,
}

impl Gate {
    /// Opens the gate: every waiting `x-wait` returns.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }

    /// Waits until the gate is open; false if `limit` passed first.
    fn wait_open(&self, limit: Duration) -> bool {
        let guard = self.open.lock().unwrap();
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, limit, |open| !*open)
            .unwrap();
        *guard
    }
}

/// The gate of `x-wait` (one test uses it).
pub static GATE: Gate = Gate {
    open: std::sync::Mutex::new(false),
    cond: std::sync::Condvar::new(),
};

/// A QMP client over a Unix stream.
pub struct Client {
    pub stream: UnixStream,
    reader: BufReader<UnixStream>,
    pub greeting: Value,
}

impl Client {
    pub fn new(stream: UnixStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Client {
            stream,
            reader,
            greeting: Value::Null,
        };
        c.greeting = c.recv();
        c
    }

    pub fn connect(path: &Path) -> Client {
        Client::new(UnixStream::connect(path).unwrap())
    }

    /// Connect and negotiate.
    pub fn ready(path: &Path) -> Client {
        let mut c = Client::connect(path);
        assert_eq!(
            c.cmd(json!({"execute": "qmp_capabilities"})),
            json!({"return": {}})
        );
        c
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next line, which must end in CR LF.
    pub fn recv_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                assert!(line.ends_with("\r\n"), "line not CRLF-terminated: {line:?}");
                Some(line)
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    pub fn recv(&mut self) -> Value {
        let line = self.recv_line().expect("connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
    }

    /// Send one request, return the next message.
    pub fn cmd(&mut self, req: Value) -> Value {
        let mut text = serde_json::to_string(&req).unwrap();
        text.push('\n');
        self.send_raw(text.as_bytes());
        self.recv()
    }

    /// Send raw bytes plus a newline, then the sentinel; return every
    /// message that arrived before the sentinel's reply.
    pub fn raw_step(&mut self, raw: &[u8]) -> Vec<Value> {
        let mut bytes = raw.to_vec();
        bytes.push(b'\n');
        bytes.extend_from_slice(SYNC.as_bytes());
        bytes.push(b'\n');
        self.send_raw(&bytes);
        let mut out = Vec::new();
        loop {
            let m = self.recv();
            if m.get("id") == Some(&json!("__qmpo_sync__")) {
                return out;
            }
            out.push(m);
        }
    }

    /// Expect EOF from the server.
    pub fn expect_eof(&mut self) {
        assert_eq!(self.recv_line(), None);
    }
}

/// `{"error": {"class": CLASS, "desc": DESC}}`.
pub fn err(class: &str, desc: &str) -> Value {
    json!({"error": {"class": class, "desc": desc}})
}

/// Start a server on one end of a socket pair; return a client on the other.
pub fn pair_server(config: ServerConfig) -> (Client, JoinHandle<std::io::Result<StopReason>>) {
    let (a, b) = UnixStream::pair().unwrap();
    let server = Server::with_config(test_commands(), config);
    let t = std::thread::spawn(move || server.serve_unix_stream(b));
    (Client::new(a), t)
}

/// A fresh directory for sockets under the target dir's tmp.
pub fn temp_dir(name: &str) -> PathBuf {
    let base =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// Start a socket server at `path` in a thread; wait until it accepts.
pub fn socket_server(
    path: &Path,
    config: ServerConfig,
) -> (
    qom_qmp::ServerHandle,
    JoinHandle<Result<StopReason, qom_qmp::ServerError>>,
) {
    let server = Server::with_config(test_commands(), config);
    let handle = server.handle();
    let p = path.to_path_buf();
    let t = std::thread::spawn(move || server.serve_unix(&p));
    for _ in 0..500 {
        // Connectable means our server is up (a stale file may pre-exist).
        if let Ok(probe) = UnixStream::connect(path) {
            // The probe is a client like any other until the server has
            // seen it go: read its greeting (so it was accepted), close it
            // and wait until it no longer counts, or a test of the client
            // limit would find one slot taken.
            probe
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut greeting = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(&probe), &mut greeting)
                .unwrap();
            drop(probe);
            wait_for_clients(&handle, 0);
            return (handle, t);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("socket {} never appeared", path.display());
}

/// Wait (up to 5 s) until the server has exactly `n` clients.
pub fn wait_for_clients(handle: &qom_qmp::ServerHandle, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while handle.client_count() != n {
        assert!(
            std::time::Instant::now() < deadline,
            "clients: {}",
            handle.client_count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
