//! Replays the protocol scenarios of QEMU 10.0.2's recorded transcript
//! (`tests/oracle/qemu-10.0.2/scenarios.json`, made by `cargo xtask oracle
//! record`) against the server in-process and compares every reply
//! exactly. A missing fixture fails the test.

mod common;

use common::{pair_server, Client};
use qom_qmp::ServerConfig;
use qom_test_support::oracle;
use serde_json::{json, Value};

/// Scenarios that need nothing but the protocol layer and the stand-ins
/// for `query-memdev` / `qom-list` of `common::test_commands`.
const PROTOCOL_SCENARIOS: [&str; 6] = [
    "greeting",
    "caps-twice",
    "before-caps",
    "unknown-command",
    "malformed-json",
    "bad-request-shape",
];

fn transcript() -> Value {
    let dir = oracle::recording_dir(oracle::REFERENCE_QEMU);
    oracle::read_fixture_json(&dir.join("scenarios.json"))
}

/// Reduce a greeting to the transcript's shape: scalar version leaves
/// become "<int>" / "<str>".
fn greeting_shape(v: &Value) -> Value {
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
            Value::Number(_) => json!("<int>"),
            Value::String(_) => json!("<str>"),
            other => other.clone(),
        }
    }
    json!({"QMP": {
        "capabilities": v["QMP"]["capabilities"],
        "version": shape(&v["QMP"]["version"]),
    }})
}

#[test]
fn recorded_protocol_scenarios_match() {
    let t = transcript();
    let scenarios = t["scenarios"].as_array().expect("scenarios");
    let mut compared = 0;
    for name in PROTOCOL_SCENARIOS {
        let sc = scenarios
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no scenario {name}"));
        let (mut c, _t): (Client, _) = pair_server(ServerConfig::default());
        if let Some(g) = sc.get("greeting") {
            assert_eq!(&greeting_shape(&c.greeting), g, "{name}: greeting");
        }
        for (i, step) in sc["steps"].as_array().unwrap().iter().enumerate() {
            if let Some(raw) = step.get("raw") {
                let got = c.raw_step(raw.as_str().unwrap().as_bytes());
                assert_eq!(
                    &Value::Array(got),
                    &step["responses"],
                    "{name} step {i}: {raw}"
                );
            } else {
                let got = c.cmd(step["request"].clone());
                assert_eq!(&got, &step["response"], "{name} step {i}");
            }
            compared += 1;
        }
    }
    assert!(compared >= 25, "only {compared} steps compared");
}
