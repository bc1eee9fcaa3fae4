//! The malformed-input client: every kind of bad input QEMU's QMP
//! server must survive, each with the answers it must get, and
//! connections dropped mid-message.

use super::Shared;
use crate::soak::qmp::{clip, error, Qmp};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// One malformed input and the answers it must get: the first answer is
/// `allowed[0]`, every other one is in `allowed`.
struct Case {
    name: &'static str,
    input: Vec<u8>,
    allowed: Vec<Value>,
}

fn generic(desc: &str) -> Value {
    error("GenericError", desc)
}

fn cases() -> Vec<Case> {
    let big = "x".repeat(1 << 20);
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(2000), "}".repeat(2000));
    let expecting = generic("JSON parse error, expecting value");
    vec![
        Case {
            name: "bad JSON",
            input: b"{bad json}".to_vec(),
            allowed: vec![generic("JSON parse error, invalid keyword 'bad'")],
        },
        Case {
            name: "not an object",
            input: b"\"just a string\"".to_vec(),
            allowed: vec![generic("QMP input must be a JSON object")],
        },
        Case {
            name: "no execute",
            input: br#"{"arguments": {}}"#.to_vec(),
            allowed: vec![generic("QMP input lacks member 'execute'")],
        },
        Case {
            name: "execute not a string",
            input: br#"{"execute": 1}"#.to_vec(),
            allowed: vec![generic("QMP input member 'execute' must be a string")],
        },
        Case {
            name: "arguments not an object",
            input: br#"{"execute": "qom-list", "arguments": []}"#.to_vec(),
            allowed: vec![generic("QMP input member 'arguments' must be an object")],
        },
        Case {
            name: "unknown command",
            input: br#"{"execute": "no-such-command"}"#.to_vec(),
            allowed: vec![error("CommandNotFound", "The command no-such-command has not been found")],
        },
        Case {
            name: "wrong type: path",
            input: br#"{"execute": "qom-get", "arguments": {"path": 42, "property": "size"}}"#.to_vec(),
            allowed: vec![generic("Invalid parameter type for 'path', expected: string")],
        },
        Case {
            name: "wrong type: id",
            input: br#"{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": 5, "size": 1048576}}"#.to_vec(),
            allowed: vec![generic("Invalid parameter type for 'id', expected: string")],
        },
        Case {
            name: "wrong type: size",
            input: br#"{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "bad-size", "size": "big"}}"#.to_vec(),
            allowed: vec![generic("Parameter 'size' expects uint64")],
        },
        Case {
            name: "missing argument",
            input: br#"{"execute": "qom-list"}"#.to_vec(),
            allowed: vec![generic("Parameter 'path' is missing")],
        },
        Case {
            name: "unexpected argument",
            input: br#"{"execute": "query-memdev", "arguments": {"bogus": 1}}"#.to_vec(),
            allowed: vec![generic("Parameter 'bogus' is unexpected")],
        },
        Case {
            name: "2,000-deep arrays",
            input: deep.into_bytes(),
            // The nesting error; the parser starts again inside and finds
            // an array, then one error per closing bracket left over.
            allowed: vec![
                generic("JSON nesting depth limit exceeded"),
                generic("QMP input must be a JSON object"),
                expecting.clone(),
            ],
        },
        Case {
            name: "2,000-deep objects",
            input: deep_obj.into_bytes(),
            allowed: vec![
                generic("JSON nesting depth limit exceeded"),
                generic("QMP input must be a JSON object"),
                generic("QMP input member 'a' is unexpected"),
                expecting,
            ],
        },
        Case {
            name: "1 MiB command name",
            input: json!({"execute": big}).to_string().into_bytes(),
            allowed: vec![error("CommandNotFound", &format!("The command {big} has not been found"))],
        },
        Case {
            name: "1 MiB path",
            input: json!({"execute": "qom-get", "arguments": {"path": format!("/objects/{big}"), "property": "size"}})
                .to_string()
                .into_bytes(),
            allowed: vec![error("DeviceNotFound", &format!("Device '/objects/{big}' not found"))],
        },
    ]
}

/// The malformed-input client: every case gets errors (never a hang), and
/// every so often a half message and a disconnect, then a new connection.
pub fn malformed(shared: &Shared) -> Result<()> {
    let cases = cases();
    let mut q = reconnect(shared)?;
    let mut round = 0u64;
    while !shared.stopped() {
        for case in &cases {
            if shared.stopped() {
                break;
            }
            let answers = q
                .raw_step(&case.input)
                .with_context(|| format!("malformed input: {}", case.name))?;
            if answers.first() != Some(&case.allowed[0]) {
                bail!(
                    "malformed input: {}: expected {} first, got {}",
                    case.name,
                    clip(&case.allowed[0].to_string()),
                    clip(&format!("{answers:?}"))
                );
            }
            for a in &answers {
                if !case.allowed.contains(a) {
                    bail!(
                        "malformed input: {}: unexpected answer {}",
                        case.name,
                        clip(&a.to_string())
                    );
                }
            }
            shared.malformed_cases.fetch_add(1, Ordering::Relaxed);
        }
        // Half a message, then away; the next connection must work.
        q.send_raw(br#"{"execute": "qom-list", "argum"#)?;
        drop(q);
        q = reconnect(shared)?;
        round += 1;
        if round.is_multiple_of(8) {
            // Also go away in the middle of a 1 MiB string.
            q.send_raw(format!("{{\"execute\": \"{}", "y".repeat(1 << 19)).as_bytes())?;
            drop(q);
            q = reconnect(shared)?;
        }
    }
    Ok(())
}

/// A new connection: commands before negotiation are refused as QEMU does.
fn reconnect(shared: &Shared) -> Result<Qmp> {
    let mut q = Qmp::connect(&shared.socket)?;
    q.expect(
        json!({"execute": "query-memdev"}),
        error(
            "CommandNotFound",
            "Expecting capabilities negotiation with 'qmp_capabilities'",
        ),
    )?;
    q.expect(
        json!({"execute": "qmp_capabilities"}),
        json!({"return": {}}),
    )?;
    q.expect(
        json!({"execute": "qmp_capabilities"}),
        error(
            "CommandNotFound",
            "Capabilities negotiation is already complete, command ignored",
        ),
    )?;
    shared.reconnects.fetch_add(1, Ordering::Relaxed);
    Ok(q)
}
