//! The QMP envelope over a socket pair: greeting, handshake, validation,
//! ids, malformed input (spec §8.6 and the recorded raw-frame scenarios),
//! framing and bounds.

mod common;

use common::{err, pair_server, Client};
use qom_qmp::{Limits, ProtocolConfig, ServerConfig, StopReason};
use serde_json::{json, Value};
use std::time::Duration;

fn ready() -> Client {
    let (mut c, _t) = pair_server(ServerConfig::default());
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities"})),
        json!({"return": {}})
    );
    c
}

#[test]
fn greeting_has_qemu_shape_and_our_version() {
    let (c, _t) = pair_server(ServerConfig::default());
    let g = &c.greeting;
    let qmp = g["QMP"].as_object().unwrap();
    assert_eq!(qmp.len(), 2);
    assert_eq!(qmp["capabilities"], json!(["oob"]));
    let v = qmp["version"].as_object().unwrap();
    assert_eq!(v["package"], json!(""));
    let mut want = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u64>().unwrap());
    assert_eq!(v["qemu"]["major"].as_u64(), want.next());
    assert_eq!(v["qemu"]["minor"].as_u64(), want.next());
    assert_eq!(v["qemu"]["micro"].as_u64(), want.next());
}

#[test]
fn greeting_without_oob_and_wire_text() {
    let config = ServerConfig {
        protocol: ProtocolConfig {
            capabilities: vec![],
            ..ProtocolConfig::default()
        },
        ..ServerConfig::default()
    };
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let server = qom_qmp::Server::with_config(common::test_commands(), config);
    let _t = std::thread::spawn(move || server.serve_unix_stream(b));
    use std::io::Read;
    let mut buf = [0u8; 256];
    let n = a.read(&mut buf).unwrap();
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    let v = qom_qmp::VersionInfo::default();
    assert_eq!(
        text,
        format!(
            "{{\"QMP\": {{\"version\": {{\"qemu\": {{\"micro\": {}, \"minor\": {}, \"major\": {}}}, \"package\": \"\"}}, \"capabilities\": []}}}}\r\n",
            v.micro, v.minor, v.major
        )
    );
}

#[test]
fn handshake_before_and_after() {
    let (mut c, _t) = pair_server(ServerConfig::default());
    let expecting = err(
        "CommandNotFound",
        "Expecting capabilities negotiation with 'qmp_capabilities'",
    );
    // Recorded scenario "before-caps".
    assert_eq!(
        c.cmd(json!({"execute": "qom-list", "arguments": {"path": "/objects"}})),
        expecting
    );
    assert_eq!(c.cmd(json!({"execute": "query-memdev"})), expecting);
    assert_eq!(c.cmd(json!({"execute": "no-such-command"})), expecting);
    assert_eq!(c.cmd(json!({"execute": "query-version", "id": 9})), {
        let mut e = expecting.clone();
        e["id"] = json!(9);
        e
    });
    // Validation errors keep their own text before the handshake.
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities", "bogus": 1})),
        err("GenericError", "QMP input member 'bogus' is unexpected")
    );
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities"})),
        json!({"return": {}})
    );
    assert_eq!(
        c.cmd(json!({"execute": "qom-list", "arguments": {"path": "/objects"}})),
        json!({"return": [{"name": "type", "type": "string"}]})
    );
    // Recorded scenario "caps-twice".
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities"})),
        err(
            "CommandNotFound",
            "Capabilities negotiation is already complete, command ignored"
        )
    );
}

#[test]
fn capabilities_argument_errors() {
    let (mut c, _t) = pair_server(ServerConfig::default());
    let cases = [
        (
            json!({"enable": ["nosuch"]}),
            "Parameter 'null' does not accept value 'nosuch'",
        ),
        (
            json!({"enable": "oob"}),
            "Invalid parameter type for 'enable', expected: array",
        ),
        (
            json!({"enable": null}),
            "Invalid parameter type for 'enable', expected: array",
        ),
        (
            json!({"enable": ["oob", 1]}),
            "Invalid parameter type for 'enable[1]', expected: string",
        ),
        (json!({"bogus": true}), "Parameter 'bogus' is unexpected"),
    ];
    for (args, desc) in cases {
        assert_eq!(
            c.cmd(json!({"execute": "qmp_capabilities", "arguments": args})),
            err("GenericError", desc),
            "{args}"
        );
    }
    // Still not negotiated after the failures.
    assert_eq!(
        c.cmd(json!({"execute": "query-version"}))["error"]["class"],
        json!("CommandNotFound")
    );
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})),
        json!({"return": {}})
    );
}

#[test]
fn oob_not_offered() {
    let config = ServerConfig {
        protocol: ProtocolConfig {
            capabilities: vec![],
            ..ProtocolConfig::default()
        },
        ..ServerConfig::default()
    };
    let (mut c, _t) = pair_server(config);
    assert_eq!(c.greeting["QMP"]["capabilities"], json!([]));
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})),
        err("GenericError", "Capability oob not available")
    );
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities", "arguments": {"enable": []}})),
        json!({"return": {}})
    );
}

#[test]
fn exec_oob_with_and_without_negotiation() {
    let mut plain = ready();
    assert_eq!(
        plain.cmd(json!({"exec-oob": "query-memdev"})),
        err("GenericError", "QMP input member 'exec-oob' is unexpected")
    );
    let (mut c, _t) = pair_server(ServerConfig::default());
    assert_eq!(
        c.cmd(json!({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})),
        json!({"return": {}})
    );
    assert_eq!(
        c.cmd(json!({"exec-oob": "query-memdev", "id": 1})),
        json!({"id": 1, "error": {"class": "GenericError", "desc": "The command query-memdev does not support OOB"}})
    );
    assert_eq!(
        c.cmd(json!({"exec-oob": "nosuch"})),
        err("CommandNotFound", "The command nosuch has not been found")
    );
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev", "exec-oob": "query-memdev"})),
        err(
            "GenericError",
            "QMP input member 'exec-oob' clashes with 'execute'"
        )
    );
    assert_eq!(
        c.cmd(json!({"exec-oob": 3})),
        err(
            "GenericError",
            "QMP input member 'exec-oob' must be a string"
        )
    );
}

#[test]
fn id_is_echoed_on_every_reply() {
    let mut c = ready();
    for id in [
        json!("cookie#1"),
        json!(2),
        json!({"a": [1, {"b": null}]}),
        json!(null),
        json!(1.5),
    ] {
        assert_eq!(
            c.cmd(json!({"execute": "query-memdev", "id": id})),
            json!({"return": [], "id": id})
        );
        assert_eq!(
            c.cmd(json!({"execute": "nosuch", "id": id})),
            json!({"id": id, "error": {"class": "CommandNotFound", "desc": "The command nosuch has not been found"}})
        );
        assert_eq!(
            c.cmd(json!({"id": id})),
            json!({"id": id, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}})
        );
        assert_eq!(
            c.cmd(json!({"execute": "qom-list", "arguments": {}, "id": id})),
            json!({"id": id, "error": {"class": "GenericError", "desc": "Parameter 'path' is missing"}})
        );
    }
    // A handler's error class carries over.
    assert_eq!(
        c.cmd(json!({"execute": "qom-list", "arguments": {"path": "/nope"}, "id": "x"})),
        json!({"id": "x", "error": {"class": "DeviceNotFound", "desc": "Device '/nope' not found"}})
    );
}

#[test]
fn builtin_commands() {
    let mut c = ready();
    let v = qom_qmp::VersionInfo::default();
    assert_eq!(
        c.cmd(json!({"execute": "query-version"})),
        json!({"return": {"qemu": {"micro": v.micro, "minor": v.minor, "major": v.major}, "package": ""}})
    );
    let r = c.cmd(json!({"execute": "query-commands"}));
    let names: Vec<&str> = r["return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for n in [
        "qmp_capabilities",
        "query-version",
        "query-commands",
        "quit",
        "query-memdev",
        "qom-list",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for cmd in ["query-version", "query-commands", "quit"] {
        assert_eq!(
            c.cmd(json!({"execute": cmd, "arguments": {"x": 1}})),
            err("GenericError", "Parameter 'x' is unexpected")
        );
    }
    assert_eq!(
        c.cmd(json!({"execute": "x-sleep", "arguments": {"ms": "1"}})),
        err("GenericError", "Parameter 'ms' expects uint64")
    );
}

/// The recorded scenario "unknown-command".
#[test]
fn unknown_commands() {
    let mut c = ready();
    assert_eq!(
        c.cmd(json!({"execute": "no-such-command"})),
        err(
            "CommandNotFound",
            "The command no-such-command has not been found"
        )
    );
    assert_eq!(
        c.cmd(json!({"execute": "no-such-command", "arguments": {"a": 1}})),
        err(
            "CommandNotFound",
            "The command no-such-command has not been found"
        )
    );
    assert_eq!(
        c.cmd(json!({"execute": "query-cpus"})),
        err(
            "CommandNotFound",
            "The command query-cpus has not been found"
        )
    );
}

/// The recorded scenario "malformed-json", step by step.
#[test]
fn recorded_malformed_json() {
    let mut c = ready();
    assert_eq!(
        c.raw_step(br#"{"execute": qom-list}"#),
        vec![
            err("GenericError", "JSON parse error, stray '-l'"),
            err("GenericError", "JSON parse error, expecting value")
        ]
    );
    assert_eq!(
        c.raw_step(br#"{"execute": "query-memdev"} {"execute": "no-such"}"#),
        vec![
            json!({"return": []}),
            err("CommandNotFound", "The command no-such has not been found")
        ]
    );
    assert_eq!(
        c.raw_step(b"{'execute': 'query-memdev'}"),
        vec![json!({"return": []})]
    );
    assert_eq!(
        c.raw_step(b"[1, 2, 3]"),
        vec![err("GenericError", "QMP input must be a JSON object")]
    );
    assert_eq!(
        c.raw_step(br#""just a string""#),
        vec![err("GenericError", "QMP input must be a JSON object")]
    );
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
}

/// The recorded scenario "bad-request-shape".
#[test]
fn recorded_bad_request_shape() {
    let mut c = ready();
    let cases: [(&[u8], &str); 8] = [
        (b"{}", "QMP input lacks member 'execute'"),
        (br#"{"arguments": {}}"#, "QMP input lacks member 'execute'"),
        (
            br#"{"execute": 1}"#,
            "QMP input member 'execute' must be a string",
        ),
        (
            br#"{"execute": "qom-list", "arguments": []}"#,
            "QMP input member 'arguments' must be an object",
        ),
        (
            br#"{"execute": "qom-list", "arguments": {"path": "/"}, "bogus": 1}"#,
            "QMP input member 'bogus' is unexpected",
        ),
        (
            br#"{"execute": "query-memdev", "arguments": null}"#,
            "QMP input member 'arguments' must be an object",
        ),
        (
            br#"{"exec-oob": "query-memdev"}"#,
            "QMP input member 'exec-oob' is unexpected",
        ),
        (
            br#"{"execute": "query-memdev", "exec-oob": "query-memdev"}"#,
            "QMP input member 'exec-oob' is unexpected",
        ),
    ];
    for (raw, desc) in cases {
        assert_eq!(
            c.raw_step(raw),
            vec![err("GenericError", desc)],
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// QEMU's tests/qtest/qmp-test.c `test_malformed`: each bad input gives one
/// GenericError and the session recovers.
#[test]
fn qemu_qmp_test_malformed() {
    let mut c = ready();
    let cases: [(&[u8], &str); 6] = [
        (b"{]\n", "JSON parse error, expecting value"),
        (b"{\xFF", "JSON parse error, stray '\u{FFFD}'"),
        (b"{\x01", "JSON parse error, stray '\u{1}'"),
        (b"{'bad \xFF", "JSON parse error, stray ''bad \u{FFFD}'"),
        (
            b"{'execute': 'nonexistent', 'id':'\n",
            "JSON parse error, stray ''\n'",
        ),
        (b"%p", "JSON parse error, stray '%'"),
    ];
    for (raw, desc) in cases {
        c.send_raw(raw);
        assert_eq!(
            c.recv(),
            err("GenericError", desc),
            "{}",
            String::from_utf8_lossy(raw)
        );
        // assert_recovered
        assert_eq!(
            c.cmd(json!({"execute": "no-such-cmd"})),
            err(
                "CommandNotFound",
                "The command no-such-cmd has not been found"
            )
        );
    }
    let shapes: [(&[u8], &str); 5] = [
        (b"null", "QMP input must be a JSON object"),
        (b"{}", "QMP input lacks member 'execute'"),
        (
            b"{ 'execute': true }",
            "QMP input member 'execute' must be a string",
        ),
        (
            b"{ 'execute': 'no-such-cmd', 'arguments': [] }",
            "QMP input member 'arguments' must be an object",
        ),
        (
            b"{ 'execute': 'no-such-cmd', 'extra': true }",
            "QMP input member 'extra' is unexpected",
        ),
    ];
    for (raw, desc) in shapes {
        assert_eq!(c.raw_step(raw), vec![err("GenericError", desc)]);
    }
}

#[test]
fn more_lexical_and_grammar_errors() {
    let mut c = ready();
    let cases: [(&[u8], &[&str]); 8] = [
        (
            b"{\"a\": 01}",
            &[
                "JSON parse error, stray '01'",
                "JSON parse error, expecting value",
            ],
        ),
        (
            b"{\"a\": tru}",
            &["JSON parse error, invalid keyword 'tru'"],
        ),
        (
            b"{\"execute\": \"x\",}",
            &["JSON parse error, expecting value"],
        ),
        (
            b"{\"a\" 1}",
            &["JSON parse error, missing : in object pair"],
        ),
        (
            b"{\"a\": 1, \"a\": 2}",
            &["JSON parse error, duplicate key"],
        ),
        (
            b"[\"\\ud800\"]",
            &["JSON parse error, \\ud800 is not a valid Unicode character"],
        ),
        (
            b"{\"a\": \"\\q\"}",
            &["JSON parse error, invalid escape sequence in string"],
        ),
        (b"]", &["JSON parse error, expecting value"]),
    ];
    for (raw, descs) in cases {
        let want: Vec<Value> = descs.iter().map(|d| err("GenericError", d)).collect();
        assert_eq!(c.raw_step(raw), want, "{}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn batched_and_split_frames() {
    let mut c = ready();
    // Several values in one write, no separators needed between objects.
    c.send_raw(b"{\"execute\":\"x-echo\",\"arguments\":{\"n\":1}}{\"execute\":\"x-echo\",\"arguments\":{\"n\":2}} \"s\" 7\n");
    assert_eq!(c.recv(), json!({"return": {"n": 1}}));
    assert_eq!(c.recv(), json!({"return": {"n": 2}}));
    assert_eq!(
        c.recv(),
        err("GenericError", "QMP input must be a JSON object")
    );
    assert_eq!(
        c.recv(),
        err("GenericError", "QMP input must be a JSON object")
    );
    // One value in many writes, split inside strings, escapes and numbers.
    let text =
        br#"{"execute": "x-echo", "arguments": {"s": "a\u00e9\"b", "n": -12.5e1}, "id": 12345}"#;
    for chunk in text.chunks(3) {
        c.send_raw(chunk);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        c.recv(),
        json!({"return": {"s": "a\u{e9}\"b", "n": -125.0}, "id": 12345})
    );
}

#[test]
fn non_ascii_output_is_escaped() {
    let mut c = ready();
    c.send_raw("{'execute': 'x-echo', 'arguments': {'s': 'é😀\\u0001'}}\n".as_bytes());
    assert_eq!(
        c.recv_line().unwrap(),
        "{\"return\": {\"s\": \"\\u00E9\\uD83D\\uDE00\\u0001\"}}\r\n"
    );
}

fn small_limits() -> ServerConfig {
    ServerConfig {
        limits: Limits {
            max_bytes: 1024,
            max_tokens: 64,
            max_depth: 8,
        },
        ..ServerConfig::default()
    }
}

fn all_generic(msgs: &[Value]) -> bool {
    msgs.iter().all(|m| m["error"]["class"] == "GenericError")
}

#[test]
fn size_bound() {
    let (mut c, _t) = pair_server(small_limits());
    c.cmd(json!({"execute": "qmp_capabilities"}));
    let big = format!(
        "{{\"execute\": \"x-echo\", \"arguments\": {{\"s\": \"{}\"}}}}",
        "A".repeat(5000)
    );
    let got = c.raw_step(big.as_bytes());
    assert_eq!(
        got[0],
        err("GenericError", "JSON token size limit exceeded")
    );
    assert!(all_generic(&got), "{got:?}");
    // Many small tokens adding up.
    let many = format!("[{}]", vec!["\"0123456789\""; 60].join(","));
    let got = c.raw_step(many.as_bytes());
    // As in QEMU, the rest of the input is read afresh after the error:
    // more (harmless) errors follow.
    assert_eq!(
        got[0],
        err("GenericError", "JSON token count limit exceeded")
    );
    assert!(all_generic(&got));
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
}

#[test]
fn depth_bound() {
    let (mut c, _t) = pair_server(small_limits());
    c.cmd(json!({"execute": "qmp_capabilities"}));
    // Eight levels are fine.
    let ok = format!("{}{}", "[".repeat(8), "]".repeat(8));
    assert_eq!(
        c.raw_step(ok.as_bytes()),
        vec![err("GenericError", "QMP input must be a JSON object")]
    );
    // Nine are not; like QEMU, the rest of the input is then read afresh,
    // and every unmatched ']' is an error of its own.
    let deep = format!("{}{}", "[".repeat(9), "]".repeat(9));
    let got = c.raw_step(deep.as_bytes());
    assert_eq!(
        got,
        vec![
            err("GenericError", "JSON nesting depth limit exceeded"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
            err("GenericError", "JSON parse error, expecting value"),
        ]
    );
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
}

#[test]
fn default_depth_bound_is_1024() {
    let mut c = ready();
    let ok = format!("{}{}", "[".repeat(1024), "]".repeat(1024));
    assert_eq!(
        c.raw_step(ok.as_bytes()),
        vec![err("GenericError", "QMP input must be a JSON object")]
    );
    let deep = format!(
        "{{\"execute\": \"x-echo\", \"arguments\": {{\"a\": {}",
        "[".repeat(5000)
    );
    c.send_raw(deep.as_bytes());
    // Like QEMU, the input after the error is read afresh, so 903 brackets
    // are still open at the end: a byte that can never be valid resets the
    // lexer and the splitter.
    let got = resync(&mut c);
    assert_eq!(
        got[0],
        err("GenericError", "JSON nesting depth limit exceeded")
    );
    assert!(got.len() >= 4, "{got:?}");
    assert!(all_generic(&got));
}

/// Send 0xFF (which resets the parser whatever state it is in) and a probe;
/// return what arrived before the probe's reply.
fn resync(c: &mut Client) -> Vec<Value> {
    c.send_raw(b"\xff\n{\"execute\": \"query-memdev\", \"id\": \"probe\"}\n");
    let mut out = Vec::new();
    loop {
        let m = c.recv();
        if m.get("id") == Some(&json!("probe")) {
            assert_eq!(m, json!({"return": [], "id": "probe"}));
            return out;
        }
        out.push(m);
    }
}

#[test]
fn binary_garbage_never_kills_the_session() {
    let mut c = ready();
    let mut x: u32 = 12345;
    let mut junk = Vec::new();
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    c.send_raw(&junk);
    let got = resync(&mut c);
    assert!(got.len() > 100);
    assert!(all_generic(&got));
}

#[test]
fn quit_sends_shutdown_then_return_and_stops() {
    let (mut c, t) = pair_server(ServerConfig::default());
    c.cmd(json!({"execute": "qmp_capabilities"}));
    c.send_raw(b"{\"execute\": \"quit\", \"id\": \"bye\"}\n{\"execute\": \"query-memdev\"}\n");
    let ev = c.recv();
    assert_eq!(ev["event"], "SHUTDOWN");
    assert_eq!(
        ev["data"],
        json!({"guest": false, "reason": "host-qmp-quit"})
    );
    let ts = ev["timestamp"].as_object().unwrap();
    assert!(ts["seconds"].as_u64().unwrap() > 1_600_000_000);
    assert!(ts["microseconds"].as_u64().unwrap() < 1_000_000);
    assert_eq!(c.recv(), json!({"return": {}, "id": "bye"}));
    assert_eq!(t.join().unwrap().unwrap(), StopReason::Quit);
    // Nothing is answered after quit.
    c.expect_eof();
}

#[test]
fn quit_needs_negotiation_and_no_arguments() {
    let (mut c, _t) = pair_server(ServerConfig::default());
    assert_eq!(
        c.cmd(json!({"execute": "quit"})),
        err(
            "CommandNotFound",
            "Expecting capabilities negotiation with 'qmp_capabilities'"
        )
    );
    c.cmd(json!({"execute": "qmp_capabilities"}));
    assert_eq!(
        c.cmd(json!({"execute": "quit", "arguments": {"now": true}})),
        err("GenericError", "Parameter 'now' is unexpected")
    );
    assert_eq!(
        c.cmd(json!({"execute": "query-memdev"})),
        json!({"return": []})
    );
}

#[test]
fn stdio_style_stream_ends_at_eof() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::new(Mutex::new(Vec::new())));
    let server = qom_qmp::Server::new(common::test_commands());
    let input = "{'execute': 'qmp_capabilities'}\n{'execute': 'query-memdev', 'id': 1}\n{'execute'"
        .to_string();
    let r = server
        .serve_stream(std::io::Cursor::new(input.into_bytes()), sink.clone())
        .unwrap();
    assert_eq!(r, StopReason::EndOfInput);
    let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0]["QMP"].is_object());
    assert_eq!(lines[1], json!({"return": {}}));
    assert_eq!(lines[2], json!({"return": [], "id": 1}));
}
