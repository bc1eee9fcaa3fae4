//! `query-qmp-schema` through the real binary, compared with QEMU 10.0.2's
//! recorded answer (tests/oracle/qemu-10.0.2/qmp-schema.json, made by
//! `cargo xtask oracle record`).
//!
//! Type names other than commands and events are opaque numbers on both
//! sides, assigned differently, so the comparator resolves every name to
//! its structure before comparing: builtins by name, arrays by element,
//! enums by their values, objects by member name → (type, optional), and
//! unions by tag and branch. Feature flags and member order are ignored.

use qom_test_support::oracle;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Members ours has and QEMU's lacks, per object-add branch: each is a
/// documented difference (docs/qemu-compat.md).
const EXTRA_MEMBERS: &[(&str, &str)] = &[
    // MAP_SYNC control, qom-rs only.
    ("memory-backend-file", "sync"),
];

/// Members QEMU has and ours lacks, per object-add branch (none today).
const MISSING_MEMBERS: &[(&str, &str)] = &[];

/// QEMU's recorded answer, a fixture of the repository: missing is a
/// failure that says how to record it again.
fn qemu_schema() -> Value {
    let dir = oracle::recording_dir(oracle::REFERENCE_QEMU);
    oracle::read_fixture_json(&dir.join("qmp-schema.json"))
}

fn index(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .expect("a SchemaInfo list")
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

/// A type name resolved to its structure, comparable across servers.
fn resolve(by: &BTreeMap<String, Value>, name: &str) -> Value {
    let e = by
        .get(name)
        .unwrap_or_else(|| panic!("type {name} is referenced but not defined"));
    match e["meta-type"].as_str().unwrap() {
        "builtin" => json!({"builtin": name}),
        "array" => json!({"array": resolve(by, e["element-type"].as_str().unwrap())}),
        "enum" => {
            let values: BTreeSet<&str> = e["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            json!({"enum": values})
        }
        "alternate" => {
            let members: Vec<Value> = e["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| resolve(by, m["type"].as_str().unwrap()))
                .collect();
            json!({"alternate": members})
        }
        "object" => {
            let mut out = Map::new();
            out.insert("members".into(), Value::Object(members(by, e)));
            if let Some(tag) = e.get("tag") {
                out.insert("tag".into(), tag.clone());
                let mut variants = Map::new();
                for v in e["variants"].as_array().unwrap() {
                    variants.insert(
                        v["case"].as_str().unwrap().to_owned(),
                        resolve(by, v["type"].as_str().unwrap()),
                    );
                }
                out.insert("variants".into(), Value::Object(variants));
            }
            Value::Object(out)
        }
        other => panic!("{name} is a {other}, not a type"),
    }
}

/// An object's members: name → {type, optional}; optional means the
/// `default` key is present, whatever its value.
fn members(by: &BTreeMap<String, Value>, e: &Value) -> Map<String, Value> {
    e["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap().to_owned();
            let ty = resolve(by, m["type"].as_str().unwrap());
            (
                name,
                json!({"type": ty, "optional": m.get("default").is_some()}),
            )
        })
        .collect()
}

fn query_schema(plugin: Option<&Path>) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qom"));
    if let Some(p) = plugin {
        cmd.arg("--plugin").arg(p);
    }
    let mut child = cmd
        .args(["-qmp", "stdio"])
        .env_remove("QOM_PLUGIN_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qom runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"query-qmp-schema\", \"id\": 1}\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let reply: Value = serde_json::from_str(text.lines().nth(2).expect("a reply")).unwrap();
    assert_eq!(reply["id"], 1, "{reply}");
    reply["return"].clone()
}

#[test]
fn commands_and_object_add_branches_match_qemu() {
    let qemu = index(&qemu_schema()["return"]);
    let ours = index(&query_schema(None));

    // Every name a type refers to is defined (resolve panics otherwise),
    // and the builtins are QEMU's.
    for name in ["str", "int", "bool", "number", "null", "any"] {
        assert_eq!(ours[name], qemu[name], "builtin {name}");
    }

    let mut compared = Vec::new();
    for (name, e) in &ours {
        let kind = e["meta-type"].as_str().unwrap();
        if kind != "command" && kind != "event" {
            continue;
        }
        let Some(q) = qemu.get(name) else {
            // qom-list-get is QEMU 10.1's; 10.0.2 does not have it.
            assert_eq!(name, "qom-list-get", "{name} is ours alone");
            continue;
        };
        assert_eq!(q["meta-type"], e["meta-type"], "{name}");
        if name == "object-add" {
            continue; // below, branch by branch
        }
        for key in ["arg-type", "ret-type"] {
            if let (Some(a), Some(b)) = (e[key].as_str(), q[key].as_str()) {
                assert_eq!(
                    resolve(&ours, a),
                    resolve(&qemu, b),
                    "{name}'s {key} differs"
                );
            }
        }
        compared.push(name.clone());
    }
    assert!(compared.len() >= 13, "compared only {compared:?}");

    let union = |by: &BTreeMap<String, Value>| {
        let arg = by["object-add"]["arg-type"].as_str().unwrap().to_owned();
        by[&arg].clone()
    };
    let (ou, qu) = (union(&ours), union(&qemu));
    assert_eq!(ou["tag"], "qom-type");
    assert_eq!(qu["tag"], "qom-type");
    // The base: qom-type (an enum of the creatable types) and id.
    let (ob, qb) = (members(&ours, &ou), members(&qemu, &qu));
    assert_eq!(ob["id"], qb["id"]);
    let creatable = |m: &Map<String, Value>| -> BTreeSet<String> {
        m["qom-type"]["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        creatable(&ob).is_subset(&creatable(&qb)),
        "types QEMU cannot create: {:?}",
        creatable(&ob)
            .difference(&creatable(&qb))
            .collect::<Vec<_>>()
    );

    let branches = |by: &BTreeMap<String, Value>, u: &Value| -> BTreeMap<String, Value> {
        u["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let ty = v["type"].as_str().unwrap();
                (
                    v["case"].as_str().unwrap().to_owned(),
                    Value::Object(members(by, &by[ty])),
                )
            })
            .collect()
    };
    let (obr, qbr) = (branches(&ours, &ou), branches(&qemu, &qu));
    let mut seen = Vec::new();
    for (case, om) in &obr {
        let qm = qbr
            .get(case)
            .unwrap_or_else(|| panic!("QEMU has no object-add branch {case}"));
        let (om, qm) = (om.as_object().unwrap(), qm.as_object().unwrap());
        for (member, m) in om {
            match qm.get(member) {
                Some(q) => assert_eq!(m, q, "object-add {case}: member {member} differs"),
                None => assert!(
                    EXTRA_MEMBERS.contains(&(case.as_str(), member.as_str())),
                    "object-add {case}: {member} is ours alone"
                ),
            }
        }
        for member in qm.keys() {
            assert!(
                om.contains_key(member)
                    || MISSING_MEMBERS.contains(&(case.as_str(), member.as_str())),
                "object-add {case}: QEMU's {member} is missing"
            );
        }
        seen.push(case.as_str());
    }
    for case in [
        "memory-backend-file",
        "memory-backend-ram",
        "memory-backend-memfd",
        "thread-context",
    ] {
        assert!(seen.contains(&case), "{case} not compared: {seen:?}");
    }
}

#[test]
fn a_plugin_type_appears_in_object_add_after_loading() {
    let exe = std::env::current_exe().unwrap();
    let so = exe.parent().unwrap().join("libqom_plugin_example.so");
    assert!(so.is_file(), "{} is missing", so.display());

    let without = index(&query_schema(None));
    let with = index(&query_schema(Some(&so)));
    let branch = |by: &BTreeMap<String, Value>, case: &str| -> Option<Map<String, Value>> {
        let u = &by[by["object-add"]["arg-type"].as_str().unwrap()];
        u["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["case"] == case)
            .map(|v| members(by, &by[v["type"].as_str().unwrap()]))
    };
    assert!(branch(&without, "example-greeter").is_none());
    let greeter = branch(&with, "example-greeter").expect("the plugin's type is listed");
    assert_eq!(
        greeter["greeting"],
        json!({"type": {"builtin": "str"}, "optional": true})
    );
    assert_eq!(greeter["repeat"]["type"], json!({"builtin": "int"}));
    // Read-only properties are not arguments.
    assert!(!greeter.contains_key("text"));
}
