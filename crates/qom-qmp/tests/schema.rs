//! `query-qmp-schema` answers from the registry as it is when asked: types
//! registered after the server started, and types of modules not loaded
//! yet, are object-add branches; abstract ones are not.

use qom::{ObjectTree, TypeInfo, TypeRegistry, TYPE_USER_CREATABLE};
use qom_qmp::schema::{generate, register_query_qmp_schema};
use qom_qmp::{register_qom_commands, Commands};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default)]
struct Late {
    count: u32,
    name: String,
}

fn index(v: &Value) -> BTreeMap<String, Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

/// The object-add branch for `case`, if any: member name → its entry.
fn branch(schema: &Value, case: &str) -> Option<BTreeMap<String, Value>> {
    let by = index(schema);
    let union = &by[by["object-add"]["arg-type"].as_str().unwrap()];
    let v = union["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["case"] == case)?;
    let members = by[v["type"].as_str().unwrap()]["members"].clone();
    Some(
        members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_owned(), m.clone()))
            .collect(),
    )
}

#[test]
fn object_add_follows_the_registry_at_call_time() {
    let types = Arc::new(TypeRegistry::with_builtins());
    let tree = Arc::new(ObjectTree::new(types.clone()).unwrap());
    let commands = Arc::new(Commands::new());
    register_qom_commands(&commands, tree).unwrap();
    register_query_qmp_schema(&commands).unwrap();
    commands.register("x-mystery", |_| Ok(json!(1))).unwrap();

    let before = generate(&commands).unwrap();
    assert!(branch(&before, "late-type").is_none());

    types
        .register(
            TypeInfo::new("late-base")
                .parent("object")
                .abstract_type(true)
                .interface_impl(TYPE_USER_CREATABLE),
        )
        .unwrap();
    types
        .register(
            TypeInfo::new("late-type")
                .parent("late-base")
                .state::<Late>()
                .class_init(|c| {
                    c.field("count", |s: &mut Late| &mut s.count);
                    c.field("name", |s: &mut Late| &mut s.name);
                    Ok(())
                }),
        )
        .unwrap();
    types.add_module("late-module-type", |t| {
        t.register(
            TypeInfo::new("late-module-type")
                .parent("object")
                .interface_impl(TYPE_USER_CREATABLE),
        )
    });

    let after = generate(&commands).unwrap();
    let late = branch(&after, "late-type").expect("registered after start, listed");
    assert_eq!(
        late["count"],
        json!({"name": "count", "type": "int", "default": null})
    );
    assert_eq!(late["name"]["type"], "str");
    assert!(branch(&after, "late-module-type").is_some());
    assert!(branch(&after, "late-base").is_none(), "abstract");

    // A command that declared nothing is described as taking and
    // answering anything, not as taking no arguments.
    let by = index(&after);
    assert_eq!(
        by["x-mystery"],
        json!({"name": "x-mystery", "meta-type": "command", "arg-type": "any", "ret-type": "any"})
    );
    // Every referenced type is defined.
    for e in by.values() {
        for key in ["arg-type", "ret-type", "element-type"] {
            if let Some(t) = e.get(key).and_then(Value::as_str) {
                assert!(
                    by.contains_key(t),
                    "{t} referenced by {} is undefined",
                    e["name"]
                );
            }
        }
    }
}
