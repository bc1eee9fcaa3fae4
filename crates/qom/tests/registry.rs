//! Type registry behaviour: names, parents, interfaces, lazy classes,
//! casts and enumeration (QEMU's check-qom-interface and qom-list-types rules).

use qom::{ClassData, Error, TypeInfo, TypeRegistry};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn illegal_and_duplicate_names_are_errors() {
    let types = TypeRegistry::with_builtins();
    for bad in ["x", "0abc", "a b", "a+b", "-ab"] {
        let err = types
            .register(TypeInfo::new(bad).parent("object"))
            .unwrap_err();
        assert_eq!(err, Error::IllegalTypeName(bad.into()));
        assert_eq!(
            err.to_string(),
            format!("Registering '{bad}' with illegal type name")
        );
    }
    types
        .register(TypeInfo::new("dup-type").parent("object"))
        .unwrap();
    let err = types
        .register(TypeInfo::new("dup-type").parent("object"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Registering `dup-type' which already exists"
    );
    let err = types.register(TypeInfo::new("orphan")).unwrap_err();
    assert!(matches!(err, Error::InvalidRegistration(_)), "{err}");
}

#[test]
fn missing_parent_is_found_lazily_and_can_be_fixed() {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("child-type").parent("later-parent"))
        .unwrap();
    let err = types.class("child-type").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Type 'child-type' is missing its parent 'later-parent'"
    );
    // The failure is not cached: registering the parent later fixes it.
    types
        .register(TypeInfo::new("later-parent").parent("object"))
        .unwrap();
    assert!(types.class("child-type").unwrap().is_a("later-parent"));
}

#[test]
fn missing_interface_names_the_parent_like_qemu() {
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("needs-iface")
                .parent("container")
                .interface_impl("no-such-iface"),
        )
        .unwrap();
    let err = types.class("needs-iface").unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing interface 'no-such-iface' for object 'container'"
    );
}

#[test]
fn interface_cannot_carry_instance_state() {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::interface("bad-iface").state::<u32>())
        .unwrap();
    assert!(matches!(
        types.class("bad-iface").unwrap_err(),
        Error::InvalidRegistration(_)
    ));
}

#[test]
fn parent_cycles_are_errors_not_stack_overflows() {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("loop-a").parent("loop-b"))
        .unwrap();
    types
        .register(TypeInfo::new("loop-b").parent("loop-a"))
        .unwrap();
    assert!(matches!(
        types.class("loop-a").unwrap_err(),
        Error::InvalidRegistration(_)
    ));
}

#[test]
fn classes_are_built_once_parent_first() {
    let types = TypeRegistry::with_builtins();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    for (name, parent) in [("leaf-t", "mid-t"), ("mid-t", "object")] {
        let order = order.clone();
        let count = count.clone();
        types
            .register(TypeInfo::new(name).parent(parent).class_init(move |c| {
                order.lock().unwrap().push(c.type_name().to_owned());
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
            .unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let types = &types;
            std::thread::scope(|s| {
                s.spawn(move || types.class("leaf-t").map(|c| c.name().to_owned()))
                    .join()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.unwrap().unwrap(), "leaf-t");
    }
    assert_eq!(*order.lock().unwrap(), vec!["mid-t", "leaf-t"]);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

/// The interface's class data: a value set through the interface cast.
#[derive(Clone, Default)]
struct TestIfaceClass {
    test: u32,
}

const PATTERN: u32 = 0xAA;

fn iface_types() -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::interface("test-interface").class_init(|c| {
            c.data_mut::<TestIfaceClass>();
            Ok(())
        }))
        .unwrap();
    types
        .register(
            TypeInfo::new("direct-impl")
                .parent("object")
                .interface_impl("test-interface")
                .class_init(|c| {
                    c.data_mut::<TestIfaceClass>().test = PATTERN;
                    Ok(())
                }),
        )
        .unwrap();
    types
        .register(TypeInfo::new("intermediate-impl").parent("direct-impl"))
        .unwrap();
    types
}

#[test]
fn direct_implementation_sees_its_interface_class_data() {
    let types = iface_types();
    let obj = types.new_object("direct-impl").unwrap();
    assert!(obj.is_a("test-interface"));
    assert_eq!(obj.class().data::<TestIfaceClass>().unwrap().test, PATTERN);
}

#[test]
fn intermediate_implementation_inherits_interface_and_data() {
    let types = iface_types();
    let obj = types.new_object("intermediate-impl").unwrap();
    assert!(obj.is_a("test-interface"));
    assert!(obj.is_a("direct-impl"));
    assert_eq!(obj.class().data::<TestIfaceClass>().unwrap().test, PATTERN);
    assert_eq!(
        obj.class().interfaces().collect::<Vec<_>>(),
        vec!["test-interface"]
    );
}

#[test]
fn subclass_gets_a_copy_of_parent_class_data() {
    #[derive(Clone, Default)]
    struct Vt {
        a: u32,
        b: u32,
    }
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("base-vt").parent("object").class_init(|c| {
            let vt = c.data_mut::<Vt>();
            vt.a = 1;
            vt.b = 2;
            Ok(())
        }))
        .unwrap();
    types
        .register(TypeInfo::new("sub-vt").parent("base-vt").class_init(|c| {
            assert_eq!(c.data::<Vt>().map(|v| (v.a, v.b)), Some((1, 2)));
            c.data_mut::<Vt>().b = 3;
            Ok(())
        }))
        .unwrap();
    let base = types.class("base-vt").unwrap();
    let sub = types.class("sub-vt").unwrap();
    assert_eq!(
        (base.data::<Vt>().unwrap().a, base.data::<Vt>().unwrap().b),
        (1, 2)
    );
    assert_eq!(
        (sub.data::<Vt>().unwrap().a, sub.data::<Vt>().unwrap().b),
        (1, 3)
    );
    fn _is_class_data<T: ClassData>() {}
    _is_class_data::<Vt>();
}

#[test]
fn casts_follow_qemu_including_interface_ambiguity() {
    let types = iface_types();
    types
        .register(TypeInfo::interface("other-interface"))
        .unwrap();
    types
        .register(
            TypeInfo::new("two-ifaces")
                .parent("object")
                .interface_impl("test-interface")
                .interface_impl("other-interface"),
        )
        .unwrap();
    let c = types.class("two-ifaces").unwrap();
    assert!(c.is_a("test-interface"));
    assert!(c.is_a("other-interface"));
    assert!(c.is_a("object"));
    // Both interfaces descend from "interface": the cast is ambiguous.
    assert!(!c.is_a("interface"));
    let d = types.class("direct-impl").unwrap();
    assert!(d.is_a("interface"));
    assert!(!d.is_a("container"));
    assert!(!d.is_a("no-such-type"));
    // An interface type casts to its own ancestors.
    assert!(types.class("test-interface").unwrap().is_a("interface"));
}

#[test]
fn abstract_is_not_inherited_and_abstract_types_cannot_be_instantiated() {
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("abs-base")
                .parent("object")
                .abstract_type(true),
        )
        .unwrap();
    types
        .register(TypeInfo::new("conc-sub").parent("abs-base"))
        .unwrap();
    assert!(types.class("abs-base").unwrap().is_abstract());
    assert!(!types.class("conc-sub").unwrap().is_abstract());
    assert_eq!(
        types.new_object("abs-base").unwrap_err().to_string(),
        "object type 'abs-base' is abstract"
    );
    assert_eq!(
        types.new_object("nope").unwrap_err().to_string(),
        "unknown type 'nope'"
    );
    types.new_object("conc-sub").unwrap();
}

#[test]
fn enumeration_filters_like_qom_list_types() {
    let types = iface_types();
    let names = |implements: Option<&str>, abs: bool| -> Vec<String> {
        types
            .list_types(implements, abs)
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect()
    };
    let concrete = names(None, false);
    assert!(concrete.contains(&"container".to_owned()));
    assert!(!concrete.contains(&"object".to_owned()));
    let all = types.list_types(None, true).unwrap();
    let object = all.iter().find(|t| t.name == "object").unwrap();
    assert!(object.is_abstract && object.parent.is_none());
    let container = all.iter().find(|t| t.name == "container").unwrap();
    assert_eq!(container.parent.as_deref(), Some("object"));
    assert_eq!(
        serde_json::to_value(container).unwrap(),
        serde_json::json!({"name": "container", "parent": "object"})
    );
    assert_eq!(
        serde_json::to_value(object).unwrap(),
        serde_json::json!({"name": "object", "abstract": true})
    );
    assert_eq!(
        names(Some("test-interface"), false),
        vec!["direct-impl", "intermediate-impl"]
    );
    assert!(names(Some("no-such-type"), true).is_empty());
    // Every abstract flag agrees with absence from the concrete list.
    for t in all {
        assert_eq!(t.is_abstract, !concrete.contains(&t.name), "{}", t.name);
    }
}

#[test]
fn lazy_modules_register_on_first_lookup() {
    let types = TypeRegistry::with_builtins();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    types.add_module("lazy-type", move |t| {
        r.fetch_add(1, Ordering::SeqCst);
        t.register(TypeInfo::new("lazy-type").parent("container"))
    });
    assert!(!types.contains("lazy-type"));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert!(types.class("lazy-type").unwrap().is_a("container"));
    types.class("lazy-type").unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn list_types_loads_all_modules() {
    let types = TypeRegistry::with_builtins();
    types.add_module("mod-type", |t| {
        t.register(TypeInfo::new("mod-type").parent("container"))
    });
    let names: Vec<String> = types
        .list_types(None, false)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(names.contains(&"mod-type".to_owned()));
}

#[test]
fn plugins_install_through_one_entry_point() {
    fn my_plugin(types: &TypeRegistry) -> qom::Result<()> {
        types.register(TypeInfo::new("plugin-type").parent("object"))
    }
    let types = TypeRegistry::with_builtins();
    types.install(my_plugin).unwrap();
    assert!(types.contains("plugin-type"));
    assert_eq!(
        types.install(my_plugin).unwrap_err().to_string(),
        "Registering `plugin-type' which already exists"
    );
}

#[test]
fn duplicate_class_property_is_a_registration_error() {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("dup-prop").parent("object").class_init(|c| {
            c.raw_property("type", "string");
            Ok(())
        }))
        .unwrap();
    assert_eq!(
        types.class("dup-prop").unwrap_err().to_string(),
        "attempt to add duplicate property 'type' to object (type 'dup-prop')"
    );
}

#[test]
fn register_once_tolerates_an_existing_type_only() {
    let types = TypeRegistry::with_builtins();
    types
        .register_once(TypeInfo::new("shared-base").parent("object"))
        .unwrap();
    types
        .register_once(TypeInfo::new("shared-base").parent("object"))
        .unwrap();
    assert!(types.contains("shared-base"));
    let err = types
        .register_once(TypeInfo::new("x").parent("object"))
        .unwrap_err();
    assert_eq!(err, Error::IllegalTypeName("x".into()));
}
