//! The composition tree: containers, canonical and partial paths, links,
//! and the QMP-shaped introspection over it.

use qom::{Error, ErrorClass, Link, ObjectTree, Props, Resolved, TypeInfo, TypeRegistry};
use serde_json::json;

#[derive(Default)]
struct Holder {
    target: Link,
}

fn types() -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("leaf-dummy")
                .parent("object")
                .interface_impl("user-creatable")
                .class_init(|c| {
                    c.property::<String>("sv")
                        .getter(|_| Ok("s".into()))
                        .setter(|_, _| Ok(()))
                        .description("a string");
                    c.property::<bool>("flag")
                        .getter(|_| Ok(true))
                        .setter(|_, _| Ok(()))
                        .default(true);
                    c.property::<u32>("broken")
                        .getter(|_| Err(Error::generic("cannot read")));
                    Ok(())
                }),
        )
        .unwrap();
    types
        .register(
            TypeInfo::new("holder")
                .parent("object")
                .interface_impl("user-creatable")
                .state::<Holder>()
                .class_init(|c| {
                    c.link("target", "leaf-dummy", |s: &mut Holder| &mut s.target)
                        .description("link");
                    Ok(())
                }),
        )
        .unwrap();
    types
}

fn empty() -> Props {
    Props::Json(Default::default())
}

#[test]
fn root_has_qemu_top_containers() {
    let tree = ObjectTree::new(types()).unwrap();
    let list = tree.qom_list("/").unwrap();
    let names: Vec<_> = list
        .iter()
        .map(|p| (p.name.as_str(), p.qom_type.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("type", "string"),
            ("chardevs", "child<container>"),
            ("objects", "child<container>"),
            ("backend", "child<container>")
        ]
    );
    assert_eq!(tree.root().canonical_path().as_deref(), Some("/"));
    assert_eq!(tree.qom_get("/", "objects").unwrap(), json!("/objects"));
}

/// `/objects/cont1/obj1`, `/objects/cont1/obj2`, `/objects/obj2`.
fn partial_tree() -> (ObjectTree, qom::Object, qom::Object, qom::Object) {
    let tree = ObjectTree::new(types()).unwrap();
    let cont1 = tree.new_object("container").unwrap();
    tree.objects().add_child("cont1", &cont1).unwrap();
    let obj1 = tree.new_object("leaf-dummy").unwrap();
    cont1.add_child("obj1", &obj1).unwrap();
    let obj2a = tree.new_object("leaf-dummy").unwrap();
    cont1.add_child("obj2", &obj2a).unwrap();
    let obj2b = tree.new_object("leaf-dummy").unwrap();
    tree.objects().add_child("obj2", &obj2b).unwrap();
    (tree, obj1, obj2a, obj2b)
}

#[test]
fn partial_paths_resolve_like_qemu() {
    let (tree, obj1, obj2a, obj2b) = partial_tree();
    assert_eq!(tree.resolve("", Some("leaf-dummy")), Resolved::Ambiguous);
    assert_eq!(tree.resolve("obj2", None), Resolved::Ambiguous);
    assert_eq!(tree.resolve("obj1", None), Resolved::One(obj1.clone()));
    assert_eq!(
        tree.resolve("cont1/obj2", None),
        Resolved::One(obj2a.clone())
    );
    assert_eq!(
        tree.resolve("/objects/obj2", None),
        Resolved::One(obj2b.clone())
    );
    assert_eq!(tree.resolve("//objects//obj2/", None), Resolved::One(obj2b));
    assert_eq!(tree.resolve("/objects/obj1", None), Resolved::None);
    assert_eq!(tree.resolve("obj1", Some("container")), Resolved::None);
    assert_eq!(
        obj1.canonical_path().as_deref(),
        Some("/objects/cont1/obj1")
    );
    assert_eq!(obj2a.name().as_deref(), Some("obj2"));
    assert_eq!(obj2a.parent().unwrap().name().as_deref(), Some("cont1"));
}

#[test]
fn qmp_path_errors() {
    let (tree, ..) = partial_tree();
    let e = tree.qom_list("obj2").unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.class()),
        ("Path 'obj2' is ambiguous", ErrorClass::GenericError)
    );
    let e = tree.qom_list("nope").unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.class()),
        ("Device 'nope' not found", ErrorClass::DeviceNotFound)
    );
    let e = tree.qom_get("obj2", "type").unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.class()),
        ("Device 'obj2' not found", ErrorClass::DeviceNotFound)
    );
    let e = tree.qom_get("", "type").unwrap_err();
    assert_eq!(e.to_string(), "Device '' not found");
    let e = tree.qom_list("").unwrap_err();
    assert_eq!(e.to_string(), "Path '' is ambiguous");
    let e = tree.qom_get("obj1", "nosuch").unwrap_err();
    assert_eq!(e.to_string(), "Property 'leaf-dummy.nosuch' not found");
}

#[test]
fn links_resolve_check_type_and_hold_a_reference() {
    let tree = ObjectTree::new(types()).unwrap();
    tree.object_add("leaf-dummy", "l1", &empty()).unwrap();
    tree.object_add("leaf-dummy", "l2", &empty()).unwrap();
    tree.object_add("holder", "h", &empty()).unwrap();
    assert_eq!(tree.qom_get("h", "target").unwrap(), json!(""));
    tree.qom_set("h", "target", &json!("l1")).unwrap();
    assert_eq!(tree.qom_get("h", "target").unwrap(), json!("/objects/l1"));
    // A link is traversable in paths.
    assert_eq!(
        tree.qom_get("/objects/h/target", "type").unwrap(),
        json!("leaf-dummy")
    );
    let e = tree.qom_set("h", "target", &json!("nope")).unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.class()),
        ("Device 'nope' not found", ErrorClass::DeviceNotFound)
    );
    let e = tree.qom_set("h", "target", &json!("/objects")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid parameter type for 'target', expected: leaf-dummy"
    );
    let e = tree.qom_set("h", "target", &json!("")).map(|_| ());
    assert!(e.is_ok());
    tree.qom_set("h", "target", &json!("/objects/l2")).unwrap();
    // The link keeps l2 alive after it leaves the tree.
    let weak = tree.object("l2").unwrap().downgrade();
    tree.object_del("l2").unwrap();
    assert!(weak.upgrade().is_some());
    tree.qom_set("h", "target", &json!("")).unwrap();
    assert!(weak.upgrade().is_none());
    // Ambiguity: two leaf-dummies named x in different containers.
    let c = tree.new_object("container").unwrap();
    tree.objects().add_child("c", &c).unwrap();
    c.add_child("x", &tree.new_object("leaf-dummy").unwrap())
        .unwrap();
    tree.object_add("leaf-dummy", "x", &empty()).unwrap();
    let e = tree.qom_set("h", "target", &json!("x")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Path 'x' does not uniquely identify an object"
    );
}

#[test]
fn qom_list_get_omits_unreadable_values_and_keeps_order() {
    let tree = ObjectTree::new(types()).unwrap();
    tree.object_add("leaf-dummy", "a", &empty()).unwrap();
    let out = tree
        .qom_list_get(&["/objects/a".into(), "/".into()])
        .unwrap();
    assert_eq!(out.len(), 2);
    let v = serde_json::to_value(&out[0]).unwrap();
    assert_eq!(
        v,
        json!({"properties": [
            {"name": "type", "type": "string", "value": "leaf-dummy"},
            {"name": "sv", "type": "string", "value": "s"},
            {"name": "flag", "type": "bool", "value": true},
            {"name": "broken", "type": "uint32"}
        ]})
    );
    assert_eq!(out[1].properties[0].value, Some(json!("container")));
    let e = tree
        .qom_list_get(&["/objects/a".into(), "/nope".into()])
        .unwrap_err();
    assert_eq!(e.to_string(), "Device '/nope' not found");
}

#[test]
fn list_properties_shapes_and_errors() {
    let types = types();
    let props = serde_json::to_value(types.list_properties("leaf-dummy").unwrap()).unwrap();
    assert_eq!(
        props,
        json!([
            {"name": "type", "type": "string"},
            {"name": "sv", "type": "string", "description": "a string"},
            {"name": "flag", "type": "bool", "default-value": true},
            {"name": "broken", "type": "uint32"}
        ])
    );
    let e = types.list_properties("nope").unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.class()),
        ("Class 'nope' not found", ErrorClass::DeviceNotFound)
    );
    let e = types.list_properties("user-creatable").unwrap_err();
    assert_eq!(e.to_string(), "Parameter 'typename' expects a QOM type");
    let abs = types.list_properties("object").unwrap();
    assert_eq!(abs.len(), 1);
}

#[test]
fn help_texts_match_qemu_layout() {
    let types = types();
    assert_eq!(
        types.object_help().unwrap(),
        "List of user creatable objects:\n  holder\n  leaf-dummy\n"
    );
    assert_eq!(
        types.type_help("leaf-dummy").unwrap(),
        "leaf-dummy options:\n  flag=<bool>            -  (default: on)\n  sv=<string>            - a string\n"
    );
    assert_eq!(
        types.type_help("container").unwrap(),
        "There are no options for container.\n"
    );
    assert_eq!(
        types.type_help("nope").unwrap(),
        types.object_help().unwrap()
    );
}

#[test]
fn child_names_must_be_unique() {
    let tree = ObjectTree::new(types()).unwrap();
    let a = tree.new_object("container").unwrap();
    tree.objects().add_child("a", &a).unwrap();
    let b = tree.new_object("container").unwrap();
    let e = tree.objects().add_child("a", &b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "attempt to add duplicate property 'a' to object (type 'container')"
    );
    assert!(
        tree.objects().add_child("b", &a).is_err(),
        "a child has one parent"
    );
}

#[derive(Default)]
struct Dev {
    backend: Link,
}

/// QEMU's delchild case: a device with a child bus, a child backend on the
/// bus, and a link from the device to the backend. Unparenting the device
/// cascades through the unparent hooks without a crash, and frees all three.
#[test]
fn unparent_cascades_through_children_and_links() {
    use qom::ObjectClass;
    use std::sync::{Arc, Mutex};
    let log = Arc::new(Mutex::new(Vec::new()));
    let types = TypeRegistry::with_builtins();
    for name in ["dummy-dev", "dummy-bus", "dummy-backend"] {
        let l = log.clone();
        let mut info = TypeInfo::new(name).parent("object").class_init(move |c| {
            let l = l.clone();
            c.data_mut::<ObjectClass>().unparent = Some(Arc::new(move |o| {
                l.lock().unwrap().push(o.type_name().to_owned());
                // The bus drops the device's link to the backend, as QEMU's
                // test does from its unparent hook.
                if o.type_name() == "dummy-bus" {
                    if let Some(dev) = o.parent() {
                        dev.state::<Dev>().backend.replace(None);
                    }
                }
            }));
            if name == "dummy-dev" {
                c.link("backend", "dummy-backend", |s: &mut Dev| &mut s.backend);
            }
            Ok(())
        });
        if name == "dummy-dev" {
            info = info.state::<Dev>();
        }
        types.register(info).unwrap();
    }
    let tree = ObjectTree::new(types).unwrap();
    let dev = tree.new_object("dummy-dev").unwrap();
    tree.objects().add_child("dev", &dev).unwrap();
    let bus = tree.new_object("dummy-bus").unwrap();
    dev.add_child("bus", &bus).unwrap();
    let backend = tree.new_object("dummy-backend").unwrap();
    bus.add_child("backend", &backend).unwrap();
    tree.qom_set(
        "/objects/dev",
        "backend",
        &json!("/objects/dev/bus/backend"),
    )
    .unwrap();
    let weaks = [dev.downgrade(), bus.downgrade(), backend.downgrade()];
    drop((bus, backend));
    dev.unparent();
    drop(dev);
    assert!(
        weaks.iter().all(|w| w.upgrade().is_none()),
        "everything is freed"
    );
    let log = log.lock().unwrap();
    assert_eq!(log[0], "dummy-dev");
    assert!(log.contains(&"dummy-bus".to_owned()) && log.contains(&"dummy-backend".to_owned()));
}
