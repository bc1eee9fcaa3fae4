//! The device base type: realize and unrealize hooks, the lock after
//! realize with qdev's wordings, and failures that change nothing.

use qom::device::{self, Device, DeviceImpl, PlugHandler};
use qom::{ClassBuilder, Error, Link, Object, ObjectRef, TypeRegistry};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

static UNREALIZED: AtomicUsize = AtomicUsize::new(0);

#[derive(Default, qom::Object)]
#[qom(name = "test-dev", parent = Device, class_init = TestDev::declare)]
struct TestDev {
    #[property(default = 0)]
    level: u32,
    #[property(link = "object")]
    peer: Link,
    tag: String,
    fail_realize: bool,
    realized_once: bool,
}

impl TestDev {
    fn declare(c: &mut ClassBuilder<'_>) -> qom::Result<()> {
        c.field("tag", |s: &mut TestDev| &mut s.tag)
            .settable_after_realize();
        c.field("fail-realize", |s: &mut TestDev| &mut s.fail_realize);
        Ok(())
    }
}

impl qom::ObjectImpl for TestDev {}
impl DeviceImpl for TestDev {
    fn realize(obj: &mut ObjectRef<'_, Self>) -> qom::Result<()> {
        let mut s = obj.state();
        if s.fail_realize {
            return Err(Error::generic("realize failed"));
        }
        s.realized_once = true;
        Ok(())
    }
    fn unrealize(_obj: &mut ObjectRef<'_, Self>) {
        UNREALIZED.fetch_add(1, Ordering::SeqCst);
    }
}

fn types() -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    device::register(&types).unwrap();
    types.register_type::<TestDev>().unwrap();
    types
}

fn device(types: &TypeRegistry, id: Option<&str>) -> Object {
    let dev = types.new_object("test-dev").unwrap();
    dev.state::<Device>().id = id.map(str::to_owned);
    dev
}

#[test]
fn the_device_type_is_abstract_with_qdev_properties() {
    let types = types();
    assert!(types.class("device").unwrap().is_abstract());
    let names: Vec<String> = types
        .list_properties("device")
        .unwrap()
        .into_iter()
        .map(|p| format!("{} {}", p.name, p.qom_type))
        .collect();
    assert_eq!(
        names,
        [
            "type string",
            "parent_bus link<bus>",
            "realized bool",
            "hotplugged bool",
            "hotpluggable bool"
        ]
    );
}

#[test]
fn properties_lock_at_realize_with_qdev_wordings() {
    let types = types();
    let dev = device(&types, Some("d0"));
    dev.set_json("level", &json!(2)).unwrap();
    assert_eq!(dev.get("realized").unwrap(), json!(false));
    device::realize(&dev, None).unwrap();
    assert_eq!(dev.get("realized").unwrap(), json!(true));
    assert!(dev.state::<TestDev>().realized_once);
    let err = dev.set_json("level", &json!(3)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Attempt to set property 'level' on device 'd0' (type 'test-dev') after it was realized"
    );
    // qdev checks before it parses the value.
    let err = dev.set_json("level", &json!("x")).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("Attempt to set property 'level'"));
    let err = dev.set_json("peer", &json!("")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Attempt to set link property 'peer' on device 'd0' (type 'test-dev') after it was realized"
    );
    // Opted out: stays writable.
    dev.set_json("tag", &json!("t")).unwrap();
    // Read-only qdev properties say so.
    let err = dev.set_json("hotplugged", &json!(true)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Property 'test-dev.hotplugged' is not writable"
    );
    // Realizing again is a no-op; unrealizing through the property is refused.
    dev.set_json("realized", &json!(true)).unwrap();
    assert!(dev.set_json("realized", &json!(false)).is_err());
    assert_eq!(dev.get("realized").unwrap(), json!(true));
}

#[test]
fn anonymous_devices_are_worded_as_qemu_words_them() {
    let types = types();
    let dev = device(&types, None);
    device::realize(&dev, None).unwrap();
    assert_eq!(
        dev.set_json("level", &json!(1)).unwrap_err().to_string(),
        "Attempt to set property 'level' on anonymous device (type 'test-dev') after it was realized"
    );
    assert_eq!(
        dev.set_json("peer", &json!("")).unwrap_err().to_string(),
        "Attempt to set link property 'peer' on device '(null)' (type 'test-dev') after it was realized"
    );
}

struct Refuse;
impl PlugHandler for Refuse {
    fn pre_plug(&self, _dev: &Object) -> qom::Result<()> {
        Err(Error::generic("no room"))
    }
}

#[test]
fn a_failed_realize_leaves_the_device_unrealized_and_open() {
    let types = types();
    let dev = device(&types, Some("d1"));
    assert_eq!(
        device::realize(&dev, Some(&Refuse))
            .unwrap_err()
            .to_string(),
        "no room"
    );
    assert!(
        !dev.state::<TestDev>().realized_once,
        "the hook ran after pre_plug failed"
    );
    dev.set_json("fail-realize", &json!(true)).unwrap();
    assert_eq!(
        device::realize(&dev, None).unwrap_err().to_string(),
        "realize failed"
    );
    assert_eq!(dev.get("realized").unwrap(), json!(false));
    dev.set_json("fail-realize", &json!(false)).unwrap();
    device::realize(&dev, None).unwrap();
}

#[test]
fn unparenting_a_realized_device_unrealizes_it_once() {
    let types = types();
    let holder = types.new_object("container").unwrap();
    let unrealized = device(&types, Some("u"));
    holder.add_child("u", &unrealized).unwrap();
    let before = UNREALIZED.load(Ordering::SeqCst);
    unrealized.unparent();
    // Devices of the other tests have no parent, so no unparent hook runs
    // for them: the count is this test's.
    assert_eq!(UNREALIZED.load(Ordering::SeqCst), before);
    let realized = device(&types, Some("r"));
    holder.add_child("r", &realized).unwrap();
    device::realize(&realized, None).unwrap();
    realized.unparent();
    assert_eq!(UNREALIZED.load(Ordering::SeqCst), before + 1);
    assert!(!realized.unparent());
    assert_eq!(UNREALIZED.load(Ordering::SeqCst), before + 1);
}
