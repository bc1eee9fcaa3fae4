//! QEMU's device layer for VMMs built on qom: a machine with QEMU's pc
//! memory layout (`-machine pc[,nvdimm=on] -m SIZE,slots=N,maxmem=MAX`),
//! and the memory devices `pc-dimm` and `nvdimm` placed in its
//! device-memory window, each backed by one memory backend.
//!
//! Devices are QOM objects whose type descends from [`qom::Device`];
//! [`device_add`] and [`device_del`] do what QEMU's `-device`,
//! `device_add` and `device_del` do, with QEMU's errors.
//!
//! ```
//! use qom::{ObjectTree, TypeRegistry};
//! use qom_devices::{DeviceSpec, MachineOptions, MemoryOptions};
//! use serde_json::json;
//!
//! let types = TypeRegistry::with_builtins();
//! memory_backend::register(&types)?;
//! memory_backend_ram::register(&types)?;
//! qom_devices::register(&types)?;
//! let tree = ObjectTree::new(types)?;
//! let memory = MemoryOptions::parse("512M,slots=4,maxmem=4G")?;
//! qom_devices::create_machine(&tree, &MachineOptions::parse("pc,nvdimm=on", memory)?)?;
//! tree.object_add_str("memory-backend-ram,id=m1,size=128M")?;
//! qom_devices::device_add(&tree, &DeviceSpec::parse("pc-dimm,id=d1,memdev=m1"), true)?;
//! assert_eq!(tree.qom_get("/machine/peripheral/d1", "addr")?, json!(4u64 << 30));
//! let err = tree.object_del("m1").unwrap_err();
//! assert_eq!(err.to_string(), "object 'm1' is in use, can not be deleted");
//! let gone = qom_devices::device_del(&tree, "d1")?;
//! assert_eq!(gone.path, "/machine/peripheral/d1");
//! tree.object_del("m1")?;
//! # Ok::<(), qom::Error>(())
//! ```

mod machine;
mod memory_device;
mod qdev;

pub use machine::{
    config, create_machine, machine, DeviceMemory, Machine, MachineConfig, MachineOptions,
    MemoryOptions, PcMachine, TYPE_MACHINE, TYPE_PC_MACHINE,
};
pub use memory_device::{
    nvdimm_label_area, nvdimm_label_range, query_memory_devices, DimmInfo, MemoryDeviceInfo,
    Nvdimm, PcDimm, MIN_LABEL_SIZE, TYPE_MEMORY_DEVICE, TYPE_NVDIMM, TYPE_PC_DIMM,
};
pub use qdev::{
    device_add, device_del, device_list_properties, device_types, DeviceDeleted, DeviceSpec,
};

/// Registers `device`, the machine types, `memory-device`, `pc-dimm` and
/// `nvdimm`.
pub fn register(types: &qom::TypeRegistry) -> qom::Result<()> {
    qom::device::register(types)?;
    machine::register(types)?;
    memory_device::register(types)
}

qom::register_linked!(register);
