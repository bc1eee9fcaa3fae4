//! The device layer: QEMU's abstract `device` type, its `realize` and
//! `unrealize` hooks, and the rule that a realized device's properties do
//! not change.
//!
//! Realizing is the device's second construction stage, as `complete` is
//! for user-creatable objects, and shares its machinery: from the moment
//! [`realize`] starts, every writable property a device type declared
//! without a lock of its own refuses changes with qdev's wording
//! (`Attempt to set property 'NAME' on device 'ID' (type 'TYPE') after it
//! was realized`). The lock is applied by the class builder to every
//! property of a class that descends from `device`, so types declared with
//! `#[derive(qom::Object)]` get it without asking; a property that QEMU
//! keeps writable opts out with
//! [`settable_after_realize`](crate::PropertyBuilder::settable_after_realize).
//!
//! Where devices live and who plugs them (a machine, its hotplug rules)
//! is not part of this crate: [`realize`] takes the plug handler as an
//! argument.
//!
//! ```
//! use qom::device::{self, Device, DeviceImpl};
//! use qom::{ObjectRef, TypeRegistry};
//! use serde_json::json;
//!
//! #[derive(Default, qom::Object)]
//! #[qom(name = "led", parent = Device)]
//! struct Led {
//!     #[property(default = 1)]
//!     brightness: u32,
//!     lit: bool,
//! }
//! impl qom::ObjectImpl for Led {}
//! impl DeviceImpl for Led {
//!     fn realize(obj: &mut ObjectRef<'_, Self>) -> qom::Result<()> {
//!         obj.state().lit = true;
//!         Ok(())
//!     }
//! }
//!
//! let types = TypeRegistry::with_builtins();
//! device::register(&types)?;
//! types.register_type::<Led>()?;
//! let led = types.new_object("led")?;
//! led.state::<Device>().id = Some("led0".into());
//! led.set_json("brightness", &json!(3))?;
//! device::realize(&led, None)?;
//! assert_eq!(led.get("realized")?, json!(true));
//! assert!(led.state::<Led>().lit);
//! let err = led.set_json("brightness", &json!(4)).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "Attempt to set property 'brightness' on device 'led0' (type 'led') after it was realized"
//! );
//! # Ok::<(), qom::Error>(())
//! ```

use crate::class::ClassBuilder;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::registry::TypeRegistry;
use crate::typed::{ObjectImpl, ObjectRef, ObjectType};
use serde_json::Value;
use std::sync::Arc;

/// The abstract root of all devices.
pub const TYPE_DEVICE: &str = "device";

/// A realize hook: the device's properties are set; make it work or fail.
pub type RealizeFn = Arc<dyn Fn(&Object) -> Result<()> + Send + Sync>;
/// An unrealize hook: undo what realize did.
pub type UnrealizeFn = Arc<dyn Fn(&Object) + Send + Sync>;

/// The class data of `device` (QEMU's `DeviceClass`).
#[derive(Clone)]
pub struct DeviceClass {
    /// Runs when the device is realized, after the plug handler's
    /// `pre_plug` accepted it.
    pub realize: Option<RealizeFn>,
    /// Runs when a realized device leaves the tree.
    pub unrealize: Option<UnrealizeFn>,
    /// Whether the device may be plugged and unplugged at run time
    /// (QEMU's `hotpluggable`, true unless a type says otherwise).
    pub hotpluggable: bool,
}

impl Default for DeviceClass {
    fn default() -> Self {
        DeviceClass {
            realize: None,
            unrealize: None,
            hotpluggable: true,
        }
    }
}

/// What plugs a device in: a machine in QEMU. [`realize`] calls
/// [`pre_plug`](Self::pre_plug) before the device's own hook and
/// [`plug`](Self::plug) after it.
pub trait PlugHandler {
    /// Checks and prepares the device (addresses, slots); an error stops
    /// the realize before the device's hook runs.
    fn pre_plug(&self, dev: &Object) -> Result<()>;
    /// The device is realized; make it visible.
    fn plug(&self, _dev: &Object) {}
}

/// The state of the `device` level, QEMU's `DeviceState`: what qdev keeps
/// for every device.
#[derive(Debug, Default, qom_derive::Object)]
#[qom(
    name = "device",
    abstract,
    manual_subclass_init,
    class_init = Device::declare
)]
pub struct Device {
    /// The id given with `-device id=...` or `device_add`, if any.
    pub id: Option<String>,
    /// Whether the device was added while the machine ran (`device_add`)
    /// rather than on the command line.
    pub hotplugged: bool,
}

impl ObjectImpl for Device {
    fn unparent(obj: &mut ObjectRef<'_, Self>) {
        if obj.object().is_complete() {
            let hook = obj
                .class()
                .data::<DeviceClass>()
                .and_then(|c| c.unrealize.clone());
            if let Some(hook) = hook {
                hook(obj.object());
            }
        }
        crate::typed::parent_unparent(obj)
    }
}

impl Device {
    fn declare(c: &mut ClassBuilder<'_>) -> Result<()> {
        c.raw_property("parent_bus", "link<bus>")
            .getter(|_| Ok(Value::String(String::new())));
        c.property::<bool>("realized")
            .getter(|obj| Ok(obj.is_complete()))
            .setter(|obj, on| match (on, obj.is_complete()) {
                (true, true) | (false, false) => Ok(()),
                (true, false) => realize(obj, None),
                (false, true) => Err(Error::generic(format!(
                    "unrealizing device of type '{}' through 'realized' is not supported; use device_del",
                    obj.type_name()
                ))),
            })
            .no_default();
        c.property::<bool>("hotplugged")
            .getter(|obj| Ok(obj.state::<Device>().hotplugged))
            .no_default();
        c.property::<bool>("hotpluggable")
            .getter(|obj| {
                Ok(obj
                    .class()
                    .data::<DeviceClass>()
                    .is_none_or(|c| c.hotpluggable))
            })
            .no_default();
        // Declared last: from here on, properties are locked at realize.
        c.data_mut::<DeviceClass>();
        Ok(())
    }
}

/// The hooks a device type may override, with typed access. A type
/// deriving `qom::Object` with `parent = Device` (or a subclass of it)
/// must implement it; an empty `impl` keeps the parent's hooks.
pub trait DeviceImpl: ObjectType {
    /// Makes the device work; its properties are set and locked. Without
    /// an override, the parent's hook runs.
    fn realize(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        parent_realize(obj)
    }

    /// Undoes `realize` when the device leaves the tree. Without an
    /// override, the parent's hook runs.
    fn unrealize(obj: &mut ObjectRef<'_, Self>) {
        parent_unrealize(obj)
    }
}

fn parent_device_class<T: ObjectType>(obj: &ObjectRef<'_, T>) -> Option<DeviceClass> {
    obj.parent_class()
        .and_then(|c| c.data::<DeviceClass>())
        .cloned()
}

/// The `realize` hook `T` inherited (none: success).
pub fn parent_realize<T: ObjectType>(obj: &mut ObjectRef<'_, T>) -> Result<()> {
    match parent_device_class(obj).and_then(|c| c.realize) {
        Some(hook) => hook(obj.object()),
        None => Ok(()),
    }
}

/// The `unrealize` hook `T` inherited.
pub fn parent_unrealize<T: ObjectType>(obj: &mut ObjectRef<'_, T>) {
    if let Some(hook) = parent_device_class(obj).and_then(|c| c.unrealize) {
        hook(obj.object());
    }
}

impl<T: DeviceImpl> crate::typed::SubclassInit<T> for Device {
    fn subclass_init(class: &mut ClassBuilder<'_>) -> Result<()> {
        let dc = class.data_mut::<DeviceClass>();
        dc.realize = Some(Arc::new(|obj| T::realize(&mut ObjectRef::assume(obj))));
        dc.unrealize = Some(Arc::new(|obj| T::unrealize(&mut ObjectRef::assume(obj))));
        Ok(())
    }
}

/// Registers the abstract `device` type.
pub fn register(types: &TypeRegistry) -> Result<()> {
    if types.find_class(TYPE_DEVICE)?.is_some() {
        return Ok(());
    }
    types.register_type::<Device>()
}

/// The device's id, when `obj` is a device that has one.
pub fn device_id(obj: &Object) -> Option<String> {
    obj.try_state::<Device>().and_then(|d| d.id.clone())
}

/// Whether `obj` is a realized device.
pub fn is_realized(obj: &Object) -> bool {
    obj.is_a(TYPE_DEVICE) && obj.is_complete()
}

/// Realizes a device: locks its properties, asks `handler` (if any) to
/// `pre_plug` it, runs the type's `realize` hook, then `plug`. On failure
/// nothing changed: the properties are open again and the device is not
/// realized (removing it from the tree is the caller's business).
pub fn realize(dev: &Object, handler: Option<&dyn PlugHandler>) -> Result<()> {
    if !dev.is_a(TYPE_DEVICE) {
        return Err(Error::generic(format!(
            "object of type '{}' is not a device",
            dev.type_name()
        )));
    }
    let completion = dev.begin_complete()?;
    if let Some(h) = handler {
        h.pre_plug(dev)?;
    }
    let hook = dev
        .class()
        .data::<DeviceClass>()
        .and_then(|c| c.realize.clone());
    if let Some(hook) = hook {
        hook(dev)?;
    }
    completion.finish();
    if let Some(h) = handler {
        h.plug(dev);
    }
    Ok(())
}
