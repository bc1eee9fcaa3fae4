//! What operators see of `toy-rng` does not depend on how the type is
//! declared: these answers were recorded from the hand-written declaration
//! that the derive replaced.

use qom::{ObjectTree, TypeRegistry};
use serde_json::json;

#[test]
fn toy_rng_introspection_is_unchanged() {
    let types = TypeRegistry::with_builtins();
    types.install(qom_toy_plugin::register).unwrap();
    let props = serde_json::to_value(types.list_properties("toy-rng").unwrap()).unwrap();
    assert_eq!(
        props,
        json!([
            {"name": "type", "type": "string"},
            {"name": "seed", "type": "uint64", "description": "First value of the sequence"},
            {"name": "next", "type": "uint64", "description": "The next value (advances the sequence)"},
        ])
    );
    assert_eq!(
        types.type_help("toy-rng").unwrap(),
        "toy-rng options:\n  seed=<uint64>          - First value of the sequence\n"
    );
    let tree = ObjectTree::new(types).unwrap();
    tree.object_add_str("toy-rng,id=r,seed=1").unwrap();
    let listed = serde_json::to_value(tree.qom_list("/objects/r").unwrap()).unwrap();
    assert_eq!(
        listed,
        json!([
            {"name": "type", "type": "string"},
            {"name": "seed", "type": "uint64"},
            {"name": "next", "type": "uint64"},
        ])
    );
    assert!(tree.object("r").unwrap().can_be_deleted());
}
