//! The behaviours QEMU's check-qom-proplist checks, in our own words, plus
//! lifecycle order, the lock policy and every property error path.

use qom::{
    EnumType, Error, ErrorClass, Input, KeyvalValue, LockStyle, ObjectClass, ObjectTree, Props,
    TypeInfo, TypeRegistry, UserCreatableClass,
};
use serde_json::json;
use std::sync::{Arc, Mutex};

qom::qom_enum! {
    /// The animals of the test.
    pub enum DummyAnimal: "DummyAnimal" {
        /// frog
        Frog = "frog",
        /// alligator
        Alligator = "alligator",
        /// platypus
        Platypus = "platypus",
    }
}

#[derive(Default)]
struct Dummy {
    bv: bool,
    sv: String,
    av: Option<DummyAnimal>,
}

fn dummy_types() -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("qemu-dummy")
                .parent("object")
                .interface_impl("user-creatable")
                .state::<Dummy>()
                .class_init(|c| {
                    c.field("sv", |s: &mut Dummy| &mut s.sv);
                    c.property::<DummyAnimal>("av")
                        .getter(|o| Ok(o.state::<Dummy>().av.unwrap_or(DummyAnimal::Frog)))
                        .setter(|o, v| {
                            o.state::<Dummy>().av = Some(v);
                            Ok(())
                        });
                    Ok(())
                })
                .instance_init(|o| {
                    o.add_properties(|b| {
                        b.field("bv", |s: &mut Dummy| &mut s.bv);
                    })
                    .expect("bv is new");
                }),
        )
        .unwrap();
    types
}

fn keyval(pairs: &[(&str, &str)]) -> Props {
    Props::Keyval(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), KeyvalValue::String((*v).to_owned())))
            .collect(),
    )
}

#[test]
fn create_with_string_values() {
    let tree = ObjectTree::new(dummy_types()).unwrap();
    let obj = tree
        .object_add(
            "qemu-dummy",
            "dummy0",
            &keyval(&[("bv", "yes"), ("sv", "Hiss hiss hiss"), ("av", "platypus")]),
        )
        .unwrap();
    {
        let s = obj.state::<Dummy>();
        assert!(s.bv);
        assert_eq!(s.sv, "Hiss hiss hiss");
        assert_eq!(s.av, Some(DummyAnimal::Platypus));
    }
    assert_eq!(
        tree.resolve("/objects/dummy0", None).object(),
        Some(obj.clone())
    );
    assert_eq!(obj.canonical_path().as_deref(), Some("/objects/dummy0"));
    let weak = obj.downgrade();
    drop(obj);
    tree.object_del("dummy0").unwrap();
    assert!(weak.upgrade().is_none(), "unparenting freed the object");
}

#[test]
fn create_from_command_line_string_then_duplicate_then_delete() {
    let tree = ObjectTree::new(dummy_types()).unwrap();
    tree.object_add_str("qemu-dummy,id=dev0,bv=yes,sv=Hiss hiss hiss,av=platypus")
        .unwrap();
    let err = tree
        .object_add_str("qemu-dummy,id=dev0,sv=other")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "attempt to add duplicate property 'dev0' to object (type 'container')"
    );
    assert_eq!(
        tree.qom_get("/objects/dev0", "sv").unwrap(),
        json!("Hiss hiss hiss")
    );
    tree.object_del("dev0").unwrap();
    assert!(tree.object("dev0").is_none());
    tree.object_add_str("qemu-dummy,id=dev0,sv=again").unwrap();
}

#[test]
fn bad_enum_value_leaves_nothing() {
    let tree = ObjectTree::new(dummy_types()).unwrap();
    let err = tree
        .object_add("qemu-dummy", "dummy0", &keyval(&[("av", "yeti")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Parameter 'av' does not accept value 'yeti'"
    );
    assert_eq!(err.class(), ErrorClass::GenericError);
    assert!(tree.objects().children().is_empty());
}

#[test]
fn get_enum_checks_the_enum_type() {
    let tree = ObjectTree::new(dummy_types()).unwrap();
    let obj = tree
        .object_add("qemu-dummy", "d", &keyval(&[("av", "platypus")]))
        .unwrap();
    assert_eq!(
        obj.get_enum::<DummyAnimal>("av").unwrap(),
        DummyAnimal::Platypus.index()
    );
    assert_eq!(
        obj.get_enum::<qom::OnOffAuto>("av")
            .unwrap_err()
            .to_string(),
        "Property av on qemu-dummy is not 'OnOffAuto' enum type"
    );
    assert_eq!(
        obj.get_enum::<DummyAnimal>("nope").unwrap_err().to_string(),
        "Property 'qemu-dummy.nope' not found"
    );
}

#[test]
fn iterators_yield_instance_and_class_properties() {
    let types = dummy_types();
    let obj = types.new_object("qemu-dummy").unwrap();
    let mut all: Vec<String> = obj
        .properties()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    all.sort();
    assert_eq!(all, ["av", "bv", "sv", "type"]);
    let mut class: Vec<String> = obj
        .class()
        .properties()
        .map(|p| p.name().to_owned())
        .collect();
    class.sort();
    assert_eq!(class, ["av", "sv", "type"]);
    // Documented order: class properties root first, then instance ones.
    let order: Vec<String> = obj
        .properties()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(order, ["type", "sv", "av", "bv"]);
}

#[test]
fn property_errors_have_qemu_texts() {
    let types = dummy_types();
    let obj = types.new_object("qemu-dummy").unwrap();
    let e = obj.get("nope").unwrap_err();
    assert_eq!(e.to_string(), "Property 'qemu-dummy.nope' not found");
    let e = obj.set_json("type", &json!("x")).unwrap_err();
    assert_eq!(e.to_string(), "Property 'qemu-dummy.type' is not writable");
    assert_eq!(obj.get("type").unwrap(), json!("qemu-dummy"));
    let e = obj.set_json("bv", &json!("on")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid parameter type for 'bv', expected: boolean"
    );
    obj.parse("bv", "on").unwrap();
    assert_eq!(obj.get("bv").unwrap(), json!(true));
    let e = obj
        .add_properties(|b| {
            b.raw_property("sv", "string");
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "attempt to add duplicate property 'sv' to object (type 'qemu-dummy')"
    );
}

#[test]
fn write_only_property_is_not_readable() {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("wo-type").parent("object").class_init(|c| {
            c.property::<String>("secret").setter(|_, _| Ok(()));
            Ok(())
        }))
        .unwrap();
    let obj = types.new_object("wo-type").unwrap();
    assert_eq!(
        obj.get("secret").unwrap_err().to_string(),
        "Property 'wo-type.secret' is not readable"
    );
    obj.set_json("secret", &json!("x")).unwrap();
}

/// A chain of three levels recording hook order.
fn lifecycle_types(log: Arc<Mutex<Vec<String>>>) -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    for (name, parent) in [("lc-a", "object"), ("lc-b", "lc-a"), ("lc-c", "lc-b")] {
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        types
            .register(
                TypeInfo::new(name)
                    .parent(parent)
                    .state_with(move || name.to_owned())
                    .instance_init(move |_| l1.lock().unwrap().push(format!("init {name}")))
                    .instance_post_init(move |_| l2.lock().unwrap().push(format!("post {name}")))
                    .finalize(move |s| {
                        let level = s.downcast_ref::<String>().cloned().unwrap_or_default();
                        l3.lock().unwrap().push(format!("finalize {level}"))
                    }),
            )
            .unwrap();
    }
    types
}

#[test]
fn instance_hooks_run_root_first_and_finalize_leaf_first() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let types = lifecycle_types(log.clone());
    let obj = types.new_object("lc-c").unwrap();
    let clone = obj.clone();
    drop(obj);
    assert_eq!(
        log.lock().unwrap().len(),
        6,
        "a clone keeps the object alive"
    );
    drop(clone);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "init lc-a",
            "init lc-b",
            "init lc-c",
            "post lc-a",
            "post lc-b",
            "post lc-c",
            "finalize lc-c",
            "finalize lc-b",
            "finalize lc-a"
        ]
    );
}

#[derive(Default)]
struct Base {
    size: u64,
    share: bool,
}

#[derive(Default)]
struct Leaf {
    path: String,
    discard: bool,
    seen_size: u64,
}

fn locked_types() -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("lk-base")
                .parent("object")
                .abstract_type(true)
                .interface_impl("user-creatable")
                .state::<Base>()
                .class_init(|c| {
                    c.field("size", |s: &mut Base| &mut s.size)
                        .locked_with(LockStyle::Unquoted)
                        .lock_checked_first()
                        .required();
                    c.field("share", |s: &mut Base| &mut s.share)
                        .locked_with(LockStyle::Value);
                    Ok(())
                }),
        )
        .unwrap();
    types
        .register(
            TypeInfo::new("lk-leaf")
                .parent("lk-base")
                .state::<Leaf>()
                .class_init(|c| {
                    c.field("path", |s: &mut Leaf| &mut s.path).locked();
                    c.field("discard", |s: &mut Leaf| &mut s.discard);
                    c.data_mut::<UserCreatableClass>().complete = Some(Arc::new(|o| {
                        // A subclass reads its ancestor's state.
                        let size = o.state::<Base>().size;
                        o.state::<Leaf>().seen_size = size;
                        Ok(())
                    }));
                    Ok(())
                }),
        )
        .unwrap();
    types
}

#[test]
fn lock_after_complete_is_enforced_by_the_framework() {
    let tree = ObjectTree::new(locked_types()).unwrap();
    let obj = tree
        .object_add_args(
            json!({"qom-type": "lk-leaf", "id": "l", "size": 4096, "path": "/p"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(obj.state::<Leaf>().seen_size, 4096);
    let cases = [
        ("size", json!(1), "cannot change property size of lk-leaf "),
        (
            "size",
            json!("bogus"),
            "cannot change property size of lk-leaf ",
        ),
        ("share", json!(true), "cannot change property value"),
        (
            "path",
            json!("/q"),
            "cannot change property 'path' of lk-leaf",
        ),
    ];
    for (prop, v, msg) in cases {
        let e = tree.qom_set("l", prop, &v).unwrap_err();
        assert_eq!(e.to_string(), msg);
        assert_eq!(e.class(), ErrorClass::GenericError);
    }
    // A typed property parses first, so a type error wins over the lock
    // (QEMU's order for bool/string/enum); `size` asks for the lock first.
    let e = tree.qom_set("l", "share", &json!("bogus")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid parameter type for 'share', expected: boolean"
    );
    // Same value is refused too; the unlocked property stays settable.
    assert!(tree.qom_set("l", "size", &json!(4096)).is_err());
    tree.qom_set("l", "discard", &json!(true)).unwrap();
    assert_eq!(tree.qom_get("l", "discard").unwrap(), json!(true));
    assert_eq!(tree.qom_get("l", "size").unwrap(), json!(4096));
}

#[test]
fn object_add_checks_in_qemu_order_and_leaves_nothing() {
    let tree = ObjectTree::new(locked_types()).unwrap();
    tree.types()
        .register(TypeInfo::new("not-creatable").parent("object"))
        .unwrap();
    let none = Props::Json(Default::default());
    let cases: Vec<(&str, &str, Props, &str)> = vec![
        (
            "lk-leaf",
            "1bad",
            none.clone(),
            "Parameter 'id' expects an identifier",
        ),
        ("nope", "a", none.clone(), "invalid object type: nope"),
        (
            "not-creatable",
            "a",
            none.clone(),
            "object type 'not-creatable' isn't supported by object-add",
        ),
        (
            "lk-base",
            "a",
            none.clone(),
            "object type 'lk-base' is abstract",
        ),
        ("lk-leaf", "a", none.clone(), "Parameter 'size' is missing"),
        (
            "lk-leaf",
            "a",
            Props::Json(json!({"size": 1, "sized": 2}).as_object().unwrap().clone()),
            "Parameter 'sized' is unexpected",
        ),
        (
            "lk-leaf",
            "a",
            Props::Json(json!({"size": 1, "type": "x"}).as_object().unwrap().clone()),
            "Parameter 'type' is unexpected",
        ),
        (
            "lk-leaf",
            "a",
            Props::Json(
                json!({"size": 1, "share": "on"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            "Invalid parameter type for 'share', expected: boolean",
        ),
        (
            "lk-leaf",
            "a",
            Props::Json(json!({"size": "1"}).as_object().unwrap().clone()),
            "Parameter 'size' expects uint64",
        ),
    ];
    for (ty, id, props, msg) in cases {
        let e = tree.object_add(ty, id, &props).unwrap_err();
        assert_eq!(e.to_string(), msg, "{ty} {id}");
        assert!(tree.objects().children().is_empty());
    }
    assert_eq!(
        Error::InvalidId.hint().unwrap(),
        "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."
    );
}

#[test]
fn failed_complete_unparents_and_runs_the_hook() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("fails")
                .parent("object")
                .interface_impl("user-creatable")
                .class_init(move |c| {
                    c.data_mut::<UserCreatableClass>().complete =
                        Some(Arc::new(|_| Err(Error::generic("no luck"))));
                    let l = l.clone();
                    c.data_mut::<ObjectClass>().unparent = Some(Arc::new(move |o| {
                        l.lock()
                            .unwrap()
                            .push(o.canonical_path().unwrap_or_default())
                    }));
                    Ok(())
                }),
        )
        .unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let e = tree
        .object_add("fails", "f", &Props::Json(Default::default()))
        .unwrap_err();
    assert_eq!(e.to_string(), "no luck");
    assert!(tree.object("f").is_none());
    assert_eq!(*log.lock().unwrap(), ["/objects/f"]);
}

#[test]
fn object_del_errors_and_can_be_deleted() {
    let types = TypeRegistry::with_builtins();
    let busy = Arc::new(Mutex::new(true));
    let b = busy.clone();
    types
        .register(
            TypeInfo::new("busy-type")
                .parent("object")
                .interface_impl("user-creatable")
                .class_init(move |c| {
                    let b = b.clone();
                    c.data_mut::<UserCreatableClass>().can_be_deleted =
                        Some(Arc::new(move |_| !*b.lock().unwrap()));
                    Ok(())
                }),
        )
        .unwrap();
    let tree = ObjectTree::new(types).unwrap();
    assert_eq!(
        tree.object_del("x").unwrap_err().to_string(),
        "object 'x' not found"
    );
    assert_eq!(
        tree.object_del("type").unwrap_err().to_string(),
        "object 'type' not found"
    );
    tree.object_add("busy-type", "b", &Props::Json(Default::default()))
        .unwrap();
    assert_eq!(
        tree.object_del("b").unwrap_err().to_string(),
        "object 'b' is in use, can not be deleted"
    );
    *busy.lock().unwrap() = false;
    tree.object_del("b").unwrap();
    assert_eq!(
        tree.object_del("b").unwrap_err().to_string(),
        "object 'b' not found"
    );
}

#[test]
fn tree_teardown_runs_unparent_hooks() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("hooked")
                .parent("object")
                .interface_impl("user-creatable")
                .class_init(move |c| {
                    let l = l.clone();
                    c.data_mut::<ObjectClass>().unparent =
                        Some(Arc::new(move |o| l.lock().unwrap().push(o.name().unwrap())));
                    Ok(())
                }),
        )
        .unwrap();
    let tree = ObjectTree::new(types).unwrap();
    for id in ["h1", "h2"] {
        tree.object_add("hooked", id, &Props::Json(Default::default()))
            .unwrap();
    }
    drop(tree);
    assert_eq!(*log.lock().unwrap(), ["h2", "h1"]);
}

#[test]
fn input_sources_share_one_setter() {
    let types = locked_types();
    let obj = types.new_object("lk-leaf").unwrap();
    obj.set("size", Input::Keyval(&KeyvalValue::String("0x1000".into())))
        .unwrap();
    assert_eq!(obj.get("size").unwrap(), json!(4096));
    obj.set("size", Input::Json(&json!(8192))).unwrap();
    assert_eq!(obj.get("size").unwrap(), json!(8192));
    obj.parse("share", "yes").unwrap();
    assert_eq!(obj.get("share").unwrap(), json!(true));
    assert_eq!(
        obj.parse("share", "maybe").unwrap_err().to_string(),
        "Parameter 'share' expects 'on' or 'off'"
    );
}
