//! A type registered from outside the core is used through object-add,
//! eagerly and through the lazy module table.

use qom::{ErrorClass, ObjectTree, TypeRegistry};
use serde_json::json;

#[test]
fn plugin_type_works_through_object_add() {
    let types = TypeRegistry::with_builtins();
    types.install(qom_toy_plugin::register).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    tree.object_add_args(
        json!({"qom-type": "toy-rng", "id": "r", "seed": 5})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(tree.qom_get("/objects/r", "next").unwrap(), json!(5));
    assert_ne!(tree.qom_get("/objects/r", "next").unwrap(), json!(5));
    let e = tree.qom_set("r", "seed", &json!(1)).unwrap_err();
    assert_eq!(e.to_string(), "cannot change property 'seed' of toy-rng");
    let e = tree.qom_set("r", "next", &json!(1)).unwrap_err();
    assert_eq!(e.to_string(), "Property 'toy-rng.next' is not writable");
    let e = tree
        .object_add_str(&format!("toy-rng,id=bad,seed={}", u64::MAX))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "property 'seed' of toy-rng doesn't take value '18446744073709551615'"
    );
    assert_eq!(e.class(), ErrorClass::GenericError);
    assert!(tree.object("bad").is_none());
    tree.object_del("r").unwrap();
}

#[test]
fn plugin_type_loads_lazily_on_first_use() {
    let types = TypeRegistry::with_builtins();
    qom_toy_plugin::register_lazily(&types);
    assert!(!types.contains("toy-rng"));
    let tree = ObjectTree::new(types).unwrap();
    tree.object_add_str("toy-rng,id=r,seed=9").unwrap();
    assert!(tree.types().contains("toy-rng"));
    let listed: Vec<String> = tree
        .types()
        .list_types(Some("user-creatable"), false)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(listed.contains(&"toy-rng".to_owned()));
}
