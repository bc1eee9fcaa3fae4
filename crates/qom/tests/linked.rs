//! Registration by linking, seen from a crate that forbids unsafe code (so
//! compiling this file proves the macro's expansion passes that lint).
#![forbid(unsafe_code)]

use qom::{linked_registrations, Error, ObjectTree, TypeInfo, TypeRegistry};

mod zeta {
    pub fn register(types: &qom::TypeRegistry) -> qom::Result<()> {
        // Registered before its parent (from module `alpha`, which sorts
        // after this one by function path): parents are found lazily.
        types.register(
            qom::TypeInfo::new("linked-child")
                .parent("linked-base")
                .interface_impl(qom::TYPE_USER_CREATABLE),
        )
    }
    qom::register_linked!(register);
}

mod alpha {
    pub fn register_base(types: &qom::TypeRegistry) -> qom::Result<()> {
        types.register_once(qom::TypeInfo::new("linked-base").parent("object"))
    }
    qom::register_linked!(register_base);
    // The same function submitted a second time, from elsewhere: it runs once.
    qom::register_linked!(crate::alpha::register_base);
}

fn lazy(types: &TypeRegistry) -> qom::Result<()> {
    types.add_module("linked-lazy", |t| {
        t.register(TypeInfo::new("linked-lazy").parent("object"))
    });
    Ok(())
}
qom::register_linked!(lazy);

#[test]
fn every_linked_registration_runs_once_in_name_order() {
    let names: Vec<&str> = linked_registrations().iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "linked: lazy",
            "linked::alpha: crate::alpha::register_base",
            "linked::zeta: register",
        ],
        "sorted by name; the second submission of register_base is dropped \
         because the first (by name) came from the same function"
    );
    let types = TypeRegistry::with_linked_types().unwrap();
    let mine: Vec<String> = types
        .type_names()
        .into_iter()
        .filter(|n| n.starts_with("linked-"))
        .collect();
    assert_eq!(mine, ["linked-base", "linked-child"]);
    let builtins = TypeRegistry::with_builtins().type_names();
    assert!(types.type_names().starts_with(&builtins));
}

#[test]
fn linked_types_work_and_lazy_modules_still_load() {
    let types = TypeRegistry::with_linked_types().unwrap();
    assert!(!types.contains("linked-lazy"));
    assert!(types.find_class("linked-lazy").unwrap().is_some());
    let tree = ObjectTree::new(types).unwrap();
    let obj = tree.object_add_str("linked-child,id=c0").unwrap();
    assert_eq!(obj.type_name(), "linked-child");
    assert!(tree.object("c0").is_some());
}

#[test]
fn a_failing_registration_is_an_error_that_names_it() {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("linked-child").parent("object"))
        .unwrap();
    let err = types.install_linked().unwrap_err();
    assert_eq!(err.registration, "linked::zeta: register");
    assert_eq!(err.error, Error::DuplicateType("linked-child".into()));
    let msg = Error::from(err).to_string();
    assert!(
        msg.starts_with("registration linked::zeta: register: "),
        "{msg}"
    );
}
