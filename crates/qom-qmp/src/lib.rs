#![forbid(unsafe_code)]
//! qom-qmp: a server for the QEMU Machine Protocol (QMP) that existing QEMU
//! clients can drive unchanged.
//!
//! * [`json_stream`]: splits the input stream into JSON values with QEMU's
//!   parser behaviour (extensions, error texts, recovery, size bounds);
//! * [`protocol`]: greeting, handshake, request validation, replies,
//!   events, and the per-connection [`Session`];
//! * [`commands`]: the open command table ([`Commands`]) with the built-in
//!   `qmp_capabilities`, `query-version`, `query-commands` and `quit`;
//! * [`schema`]: `query-qmp-schema`, generated from the command table and
//!   the type registry at call time;
//! * [`server`]: stdio and Unix-socket transports ([`Server`]).
//!
//! # Example
//!
//! Register a command, serve one end of a socket pair, and talk QMP over
//! the other end:
//!
//! ```
//! use qom_qmp::{Commands, Server, StopReason};
//! use serde_json::{json, Value};
//! use std::io::{BufRead, BufReader, Write};
//! use std::os::unix::net::UnixStream;
//! use std::sync::Arc;
//!
//! let commands = Commands::new();
//! commands
//!     .register("x-add", |args| {
//!         let a = args.get("a").and_then(Value::as_i64).unwrap_or(0);
//!         let b = args.get("b").and_then(Value::as_i64).unwrap_or(0);
//!         Ok(json!(a + b))
//!     })
//!     .unwrap();
//! let server = Server::new(Arc::new(commands));
//!
//! let (ours, theirs) = UnixStream::pair().unwrap();
//! let worker = std::thread::spawn(move || server.serve_unix_stream(theirs));
//!
//! let mut lines = BufReader::new(ours.try_clone().unwrap()).lines();
//! let mut next = || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
//! let mut send = |text: &str| (&ours).write_all(text.as_bytes()).unwrap();
//!
//! assert!(next()["QMP"]["version"]["qemu"]["major"].is_u64());
//! send("{'execute': 'qmp_capabilities'}\n");
//! assert_eq!(next(), json!({"return": {}}));
//! send(r#"{"execute": "x-add", "arguments": {"a": 2, "b": 3}, "id": "sum"}"#);
//! assert_eq!(next(), json!({"return": 5, "id": "sum"}));
//! send(r#"{"execute": "quit"}"#);
//! assert_eq!(next()["event"], "SHUTDOWN");
//! assert_eq!(next(), json!({"return": {}}));
//! assert_eq!(worker.join().unwrap().unwrap(), StopReason::Quit);
//! ```
//!
//! # Compatibility notes
//!
//! Checked against QEMU 10.0.2's recorded transcripts (the protocol
//! scenarios match exactly) and its `tests/qtest/qmp-test.c` cases. Known
//! differences:
//! * the greeting offers `oob` by default, as QEMU 10 does; enabling it is
//!   accepted, but no command runs out of band (`exec-oob` gets QEMU's
//!   "does not support OOB" error). [`ProtocolConfig::capabilities`] can
//!   offer nothing instead (`"capabilities": []`);
//! * the stdio transport returns at end of input (QEMU keeps running);
//! * a Unix socket serves many clients at once (QEMU: one at a time);
//! * the default size and token-count bounds are smaller than QEMU's
//!   ([`Limits`]); the error texts are QEMU's;
//! * floating-point numbers are written in shortest form (QEMU: `%.17g`),
//!   and a number too large for a double saturates instead of becoming
//!   infinite;
//! * when several members of a request are wrong, the first in input order
//!   is reported (QEMU: hash-table order).

pub mod commands;
pub mod json_stream;
pub mod protocol;
pub mod qom_commands;
pub mod schema;
pub mod server;

pub use commands::{Commands, Handler, RegisterError};
pub use json_stream::{JsonError, JsonStream, Limits};
pub use protocol::{Capability, ProtocolConfig, Session, VersionInfo};
pub use qom_commands::register_qom_commands;
pub use server::{
    bind_unix, BoundSocket, Server, ServerConfig, ServerError, ServerHandle, StopReason,
};
