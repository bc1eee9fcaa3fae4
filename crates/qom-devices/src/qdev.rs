//! Adding and removing devices as `-device`, `device_add` and
//! `device_del` do: driver lookup, ids, `/machine/peripheral[-anon]`,
//! properties, realize, and the machine's plug rules.

use crate::machine;
use crate::memory_device::{self, TYPE_NVDIMM};
use indexmap::IndexMap;
use qom::device::{self, PlugHandler, TYPE_DEVICE};
use qom::{DeviceClass, Error, KeyvalValue, Object, ObjectPropertyInfo, ObjectTree, Props, Result};

/// The properties of a device that introspection of device types hides.
const HIDDEN: &[&str] = &[
    "type",
    "realized",
    "hotpluggable",
    "hotplugged",
    "parent_bus",
];

/// A device to add: the driver, the id and the other properties, as
/// `-device` (keyval strings) or QMP's `device_add` (strict JSON) gives
/// them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceSpec {
    /// The device type (`driver`).
    pub driver: Option<String>,
    /// The id, if any.
    pub id: Option<String>,
    /// Every other property, in the order given.
    pub props: Props,
}

impl DeviceSpec {
    /// Parses a `-device DRIVER,PROP=VALUE,...` argument (QemuOpts, the
    /// first element being the driver); qdev reads the values with the
    /// keyval rules (`node=abc`: `Parameter 'node' expects uint64`).
    pub fn parse(text: &str) -> DeviceSpec {
        let parsed = qom::value::opts_parse(text, Some("driver"));
        let mut driver = None;
        let mut props = IndexMap::new();
        for (k, v) in parsed.opts {
            if k == "driver" {
                driver = Some(v.last().to_owned());
            } else {
                props.insert(k, KeyvalValue::String(v.last().to_owned()));
            }
        }
        DeviceSpec {
            driver,
            id: parsed.id,
            props: Props::Keyval(props),
        }
    }

    /// `device_add`'s arguments: `driver`, `id` (a non-string id makes
    /// an anonymous device, as in QEMU) and the properties, read with
    /// QMP's strict JSON rules.
    pub fn from_json(args: &serde_json::Map<String, serde_json::Value>) -> DeviceSpec {
        let mut props = args.clone();
        let text = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned));
        let driver = text(props.shift_remove("driver"));
        let id = text(props.shift_remove("id"));
        DeviceSpec {
            driver,
            id,
            props: Props::Json(props),
        }
    }
}

/// The machine as the plug handler of its devices.
struct MachinePlug<'a>(&'a Object);

impl PlugHandler for MachinePlug<'_> {
    fn pre_plug(&self, dev: &Object) -> Result<()> {
        memory_device::pre_plug(self.0, dev)
    }
}

/// The class of a device type that `-device`/`device_add` may create.
fn device_class(tree: &ObjectTree, driver: &str) -> Result<std::sync::Arc<qom::Class>> {
    tree.types()
        .find_class(driver)?
        .filter(|c| c.is_a(TYPE_DEVICE) && !c.is_abstract())
        .ok_or_else(|| Error::generic(format!("'{driver}' is not a valid device model name")))
}

/// Creates, places and realizes a device, in QEMU's order: driver, id
/// (`/machine/peripheral/ID`, or `/machine/peripheral-anon/device[N]`),
/// properties in the order given, realize with the machine's checks. On
/// failure nothing remains. `hotplugged` is what the device reads back
/// (true for `device_add`, false for `-device`).
pub fn device_add(tree: &ObjectTree, spec: &DeviceSpec, hotplugged: bool) -> Result<Object> {
    let driver = spec
        .driver
        .as_deref()
        .ok_or_else(|| Error::MissingParameter("driver".into()))?;
    let class = device_class(tree, driver)?;
    let machine = machine::machine(tree).ok_or_else(|| {
        Error::generic(format!(
            "Device '{driver}' can not be hotplugged on this machine"
        ))
    })?;
    let lock = machine::plug_lock(&machine);
    let _plugging = lock.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Object::new(class, Some(tree.root()))?;
    {
        let mut d = dev.state::<qom::Device>();
        d.id = spec.id.clone();
        d.hotplugged = hotplugged;
    }
    let placed = match &spec.id {
        Some(id) => machine
            .child("peripheral")
            .expect("machines have /peripheral")
            .add_child(id, &dev)
            .map_err(|_| Error::generic(format!("Duplicate device ID '{id}'"))),
        None => {
            let n = machine::next_anon(&machine);
            machine
                .child("peripheral-anon")
                .expect("machines have /peripheral-anon")
                .add_child(&format!("device[{n}]"), &dev)
        }
    };
    placed?;
    let result = spec
        .props
        .iter()
        .try_for_each(|(k, v)| dev.set(k, v))
        .and_then(|()| device::realize(&dev, Some(&MachinePlug(&machine))));
    if let Err(e) = result {
        dev.unparent();
        return Err(e);
    }
    Ok(dev)
}

/// What `device_del` removed: the `DEVICE_DELETED` event's data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceDeleted {
    /// The device's id, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Its canonical path.
    pub path: String,
}

/// Removes a device by id (a name under `/machine/peripheral`) or by
/// absolute path. QEMU asks the guest and removes a pc-dimm when the guest
/// agrees; there is no guest here, so it goes at once (its backend is
/// free again) and the caller reports `DEVICE_DELETED`.
pub fn device_del(tree: &ObjectTree, id: &str) -> Result<DeviceDeleted> {
    let machine = machine::machine(tree);
    let found = if id.starts_with('/') {
        tree.resolve(id, None).object()
    } else {
        machine
            .as_ref()
            .and_then(|m| m.child("peripheral"))
            .and_then(|p| p.child(id))
    };
    let dev = found.ok_or_else(|| Error::DeviceNotFound(id.to_owned()))?;
    if !dev.is_a(TYPE_DEVICE) {
        return Err(Error::generic(format!("{id} is not a device")));
    }
    let lock = machine.as_ref().map(machine::plug_lock);
    let _unplugging = lock
        .as_ref()
        .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()));
    let hotpluggable = dev
        .class()
        .data::<DeviceClass>()
        .is_none_or(|c| c.hotpluggable);
    if !hotpluggable {
        return Err(Error::generic(format!(
            "Device '{id}' does not support hotplugging"
        )));
    }
    if dev.is_a(TYPE_NVDIMM) {
        return Err(Error::generic(
            "nvdimm device hot unplug is not supported yet.",
        ));
    }
    let deleted = DeviceDeleted {
        device: device::device_id(&dev),
        path: dev.canonical_path().unwrap_or_default(),
    };
    if !dev.unparent() {
        return Err(Error::DeviceNotFound(id.to_owned()));
    }
    Ok(deleted)
}

/// `device-list-properties`: the properties of a concrete device type
/// that a user sets, without qdev's internal ones.
pub fn device_list_properties(
    types: &qom::TypeRegistry,
    typename: &str,
) -> Result<Vec<ObjectPropertyInfo>> {
    let class = types
        .find_class(typename)?
        .ok_or_else(|| Error::DeviceNotFound(typename.to_owned()))?;
    if !class.is_a(TYPE_DEVICE) || class.is_abstract() {
        return Err(Error::generic(
            "Parameter 'typename' expects a non-abstract device type",
        ));
    }
    Ok(types
        .list_properties(typename)?
        .into_iter()
        .filter(|p| !HIDDEN.contains(&p.name.as_str()) && !p.name.starts_with("legacy-"))
        .collect())
}

/// The concrete device types `-device help` lists, by name.
pub fn device_types(types: &qom::TypeRegistry) -> Result<Vec<String>> {
    let mut names: Vec<String> = types
        .list_types(Some(TYPE_DEVICE), false)?
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    Ok(names)
}
