//! Memory devices: `pc-dimm` and `nvdimm`, each backed by one memory
//! backend (its `memdev` link), placed in the machine's device-memory
//! window with QEMU's slot and address rules.

use crate::machine::{self, DeviceMemory};
use memory_backend::MappedMemory;
use qom::device::{Device, DeviceImpl};
use qom::{ClassBuilder, Error, Link, LockStyle, Object, ObjectRef, Result};
use serde::Serialize;

/// The interface every memory device implements.
pub const TYPE_MEMORY_DEVICE: &str = "memory-device";
/// A DIMM.
pub const TYPE_PC_DIMM: &str = "pc-dimm";
/// A non-volatile DIMM.
pub const TYPE_NVDIMM: &str = "nvdimm";

/// The smallest nvdimm label area (QEMU's `MIN_NAMESPACE_LABEL_SIZE`): the
/// label-area layer's constant, so that the two checks cannot drift apart.
pub use memory_backend::label::MIN_LABEL_SIZE;
/// The address alignment of anonymous RAM (QEMU's `QEMU_VMALLOC_ALIGN`).
const RAM_ALIGN: u64 = 2 << 20;
const UNASSIGNED_SLOT: i32 = -1;

/// The state of a `pc-dimm` (and of the pc-dimm level of an `nvdimm`).
#[derive(Debug, Default, qom::Object)]
#[qom(
    name = "pc-dimm",
    parent = Device,
    interfaces("memory-device"),
    class_init = PcDimm::declare
)]
pub struct PcDimm {
    /// Guest physical address; 0 asks for the first free place.
    #[property(default = 0)]
    addr: u64,
    /// NUMA node.
    #[property(default = 0)]
    node: u32,
    /// Slot; -1 asks for the first free one.
    #[property(default = -1)]
    slot: i32,
    /// The backend.
    #[property(link = "memory-backend")]
    memdev: Link,
    /// The size the guest sees, fixed when the device is plugged.
    region_size: u64,
    /// The backend's memory, marked in use while the device is realized.
    mapped: Option<MappedMemory>,
}

impl PcDimm {
    fn declare(c: &mut ClassBuilder<'_>) -> Result<()> {
        c.property::<u64>("size").getter(|obj| {
            let backend = memdev(obj)?;
            region(obj, &backend).map(|r| r.size)
        });
        // QEMU's legacy printing of the link: listed, neither readable
        // nor writable.
        c.raw_property("legacy-memdev", "str");
        Ok(())
    }
}

impl qom::ObjectImpl for PcDimm {}

impl DeviceImpl for PcDimm {
    fn realize(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        let (backend, node) = {
            let s = obj.state();
            (s.memdev.get().cloned(), s.node)
        };
        let backend = backend.ok_or_else(no_memdev)?;
        // The machine lock serialises devices, but not qom-vm-memory or
        // other embedders: the claim itself must be the busy check. It
        // comes first, as QEMU checks busy before the node; a refused node
        // drops the claim again.
        let mapped = memory_backend::map_exclusive(&backend)?;
        // No NUMA configuration here: one node, 0.
        if node > 0 {
            return Err(Error::generic(format!(
                "'DIMM property node has value {node}' which exceeds the number of numa nodes: 1"
            )));
        }
        obj.state().mapped = Some(mapped);
        Ok(())
    }

    fn unrealize(obj: &mut ObjectRef<'_, Self>) {
        let mapped = obj.state().mapped.take();
        drop(mapped);
    }
}

/// The state of an `nvdimm`'s own level.
#[derive(Debug, Default, qom::Object)]
#[qom(name = "nvdimm", parent = PcDimm, class_init = Nvdimm::declare)]
pub struct Nvdimm {
    /// Whether the guest may not write (required for read-only backends).
    #[property(default = false, description = "on/off")]
    unarmed: bool,
    label_size: u64,
    uuid: [u8; 16],
}

impl qom::ObjectImpl for Nvdimm {}
impl DeviceImpl for Nvdimm {}

impl Nvdimm {
    fn declare(c: &mut ClassBuilder<'_>) -> Result<()> {
        c.property::<u64>("label-size")
            .qom_type("int")
            .getter(|obj| Ok(obj.state::<Nvdimm>().label_size))
            .setter(|obj, v| {
                if v < MIN_LABEL_SIZE {
                    return Err(Error::generic(format!(
                        "Property '{}.label-size' (0x{v:x}) is required at least 0x{MIN_LABEL_SIZE:x}",
                        obj.type_name()
                    )));
                }
                obj.state::<Nvdimm>().label_size = v;
                Ok(())
            })
            .locked_with(LockStyle::Value)
            .lock_checked_first();
        c.property::<String>("uuid")
            .qom_type("QemuUUID")
            .getter(|obj| Ok(format_uuid(&obj.state::<Nvdimm>().uuid)))
            .setter(|obj, text| {
                let uuid = parse_uuid(&text).ok_or_else(|| {
                    Error::generic(format!(
                        "Property '{}.uuid' has invalid value",
                        obj.type_name()
                    ))
                })?;
                obj.state::<Nvdimm>().uuid = uuid;
                Ok(())
            })
            .settable_after_realize();
        Ok(())
    }
}

fn format_uuid(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let b = text.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: String = text.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn no_memdev() -> Error {
    Error::generic("'memdev' property must be set")
}

fn memdev(dev: &Object) -> Result<Object> {
    dev.state::<PcDimm>()
        .memdev
        .get()
        .cloned()
        .ok_or_else(no_memdev)
}

/// The part of a backend a memory device shows the guest.
#[derive(Debug, Clone, Copy)]
struct Region {
    size: u64,
    align: u64,
}

/// The device's memory region: the whole backend for a pc-dimm; for an
/// nvdimm, what the label area at the end leaves, aligned down to the
/// backend's alignment.
fn region(dev: &Object, backend: &Object) -> Result<Region> {
    let size = memory_backend::settings(backend).map_or(0, |s| s.size);
    let memory = memory_backend::mapping(backend);
    let page = memory.as_ref().map_or(4096, |m| m.page_size() as u64);
    let align = if backend.is_a("memory-backend-ram") {
        RAM_ALIGN.max(page)
    } else {
        let prop = backend
            .get("align")
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        page.max(prop)
    };
    if !dev.is_a(TYPE_NVDIMM) {
        return Ok(Region { size, align });
    }
    let (label, unarmed) = {
        let s = dev.state::<Nvdimm>();
        (s.label_size, s.unarmed)
    };
    let pmem = size.saturating_sub(label) / align * align;
    if size <= label || pmem == 0 {
        return Err(Error::generic(format!(
            "the size of memdev {} (0x{size:x}) is too small to contain nvdimm label (0x{label:x}) and aligned PMEM (0x{align:x})",
            backend.name().unwrap_or_default()
        )));
    }
    if !unarmed && memory.as_ref().is_some_and(|m| m.readonly()) {
        return Err(Error::generic(format!(
            "'unarmed' property must be 'on' since memdev {} is read-only",
            backend.name().unwrap_or_default()
        )));
    }
    Ok(Region { size: pmem, align })
}

/// Where an nvdimm's label area lives: its backend, the offset of the
/// area in the backend's memory and its length (`label-size`). `None` for
/// other objects and for an nvdimm without label area or without memdev.
/// The area is the last `label-size` bytes of the backend; the guest sees
/// the part before it (see the `size` property).
pub fn nvdimm_label_range(dev: &Object) -> Option<(Object, u64, u64)> {
    if !dev.is_a(TYPE_NVDIMM) {
        return None;
    }
    let label = dev.state::<Nvdimm>().label_size;
    let backend = memdev(dev).ok()?;
    let size = memory_backend::settings(&backend)?.size;
    if label == 0 || label >= size {
        return None;
    }
    Some((backend, size - label, label))
}

/// The label area of a realized nvdimm, for a VMM to read and write the
/// way a guest's label methods would: the last `label-size` bytes of its
/// backend, made durable as the backend is mapped (cache-line write-back
/// with MAP_SYNC in effect, msync otherwise; see
/// [`LabelArea`](memory_backend::label::LabelArea)). The area holds the
/// backend in use for as long as it lives, like the device itself.
///
/// Fails with `'DEV' is not an nvdimm with a label area` for other
/// objects, for an nvdimm without `label-size` and for one not realized.
pub fn nvdimm_label_area(dev: &Object) -> Result<memory_backend::label::LabelArea> {
    let not_one = || {
        Error::generic(format!(
            "'{}' is not an nvdimm with a label area",
            dev.canonical_path().unwrap_or_default()
        ))
    };
    let realized = dev.is_a(TYPE_NVDIMM) && qom::device::is_realized(dev);
    let (backend, offset, len) = realized
        .then(|| nvdimm_label_range(dev))
        .flatten()
        .ok_or_else(not_one)?;
    let mapped = memory_backend::map(&backend)?;
    let offset = usize::try_from(offset).map_err(|_| not_one())?;
    let len = usize::try_from(len).map_err(|_| not_one())?;
    Ok(memory_backend::label::LabelArea::new(mapped, offset, len)?)
}

/// A plugged memory device as the allocator sees it.
struct Plugged {
    id: Option<String>,
    addr: u64,
    size: u64,
    slot: i32,
}

/// The realized memory devices of the machine, by address.
fn plugged(machine: &Object) -> Vec<(Object, Plugged)> {
    let mut out: Vec<(Object, Plugged)> = memory_devices(machine)
        .into_iter()
        .map(|dev| {
            let p = {
                let s = dev.state::<PcDimm>();
                Plugged {
                    id: None,
                    addr: s.addr,
                    size: s.region_size,
                    slot: s.slot,
                }
            };
            let p = Plugged {
                id: qom::device::device_id(&dev),
                ..p
            };
            (dev, p)
        })
        .collect();
    out.sort_by_key(|(_, p)| p.addr);
    out
}

/// The realized memory devices below the machine's device containers.
fn memory_devices(machine: &Object) -> Vec<Object> {
    ["peripheral", "peripheral-anon"]
        .iter()
        .filter_map(|c| machine.child(c))
        .flat_map(|c| c.children())
        .map(|(_, dev)| dev)
        .filter(|dev| dev.is_a(TYPE_PC_DIMM) && dev.is_complete())
        .collect()
}

/// The machine's checks before a memory device is realized: nvdimm
/// support, the slot, room in the window and the address, in QEMU's
/// order. Fixes `slot` and `addr` in the device's state.
pub(crate) fn pre_plug(machine: &Object, dev: &Object) -> Result<()> {
    if !dev.is_a(TYPE_PC_DIMM) {
        return Ok(());
    }
    let config = machine::config(machine);
    if dev.is_a(TYPE_NVDIMM) && !config.nvdimm {
        return Err(Error::generic(
            "nvdimm is not enabled: add 'nvdimm=on' to '-M'",
        ));
    }
    let others = plugged(machine);
    let slots = config.memory.slots;
    let (hint_slot, hint_addr) = {
        let s = dev.state::<PcDimm>();
        (s.slot, s.addr)
    };
    if (hint_slot < 0 || hint_slot as u64 >= slots) && hint_slot != UNASSIGNED_SLOT {
        return Err(Error::generic(format!(
            "invalid slot number {hint_slot}, valid range is [0-{}]",
            slots.wrapping_sub(1)
        )));
    }
    let slot = free_slot(&others, hint_slot, slots)?;
    dev.state::<PcDimm>().slot = slot;
    let window = config.device_memory().ok_or_else(|| {
        Error::generic(
            "the configuration is not prepared for memory devices (e.g., for memory hotplug), consider specifying the maxmem option",
        )
    })?;
    let backend = memdev(dev)?;
    let region = region(dev, &backend)?;
    let used: u64 = others.iter().map(|(_, p)| p.size).sum();
    if used
        .checked_add(region.size)
        .is_none_or(|t| t > window.size)
    {
        return Err(Error::generic(format!(
            "not enough space, currently 0x{used:x} in use of total space for memory devices 0x{:x}",
            window.size
        )));
    }
    let hint = (hint_addr != 0).then_some(hint_addr);
    let addr = free_addr(&others, window, hint, region)?;
    let mut s = dev.state::<PcDimm>();
    s.addr = addr;
    s.region_size = region.size;
    Ok(())
}

fn free_slot(others: &[(Object, Plugged)], hint: i32, slots: u64) -> Result<i32> {
    if slots == 0 {
        return Err(Error::generic(
            "no slots where allocated, please specify the 'slots' option",
        ));
    }
    let busy = |s: i32| others.iter().any(|(_, p)| p.slot == s);
    if hint != UNASSIGNED_SLOT {
        if busy(hint) {
            return Err(Error::generic(format!("slot {hint} is busy")));
        }
        return Ok(hint);
    }
    (0..slots as i32)
        .find(|&s| !busy(s))
        .ok_or_else(|| Error::generic("no free slots available"))
}

/// First fit in the window, or the hint checked, as QEMU places them.
fn free_addr(
    others: &[(Object, Plugged)],
    window: DeviceMemory,
    hint: Option<u64>,
    region: Region,
) -> Result<u64> {
    let Region { size, align } = region;
    if size % align != 0 {
        return Err(Error::generic(format!(
            "backend memory size must be multiple of 0x{align:x}"
        )));
    }
    let mut start = match hint {
        Some(h) => {
            if h % align != 0 {
                return Err(Error::generic(format!(
                    "address must be aligned to 0x{align:x} bytes"
                )));
            }
            let inside = h >= window.base && h.checked_add(size).is_some_and(|e| e <= window.end());
            if !inside {
                return Err(Error::generic(format!(
                    "can't add memory device [0x{h:x}:0x{size:x}], usable range for memory devices [0x{:x}:0x{:x}]",
                    window.base,
                    window.end()
                )));
            }
            h
        }
        None => window.base.div_ceil(align) * align,
    };
    for (_, p) in others {
        let overlaps = p.addr < start.saturating_add(size) && start < p.addr + p.size;
        if overlaps {
            if hint.is_some() {
                return Err(Error::generic(format!(
                    "address range conflicts with memory device id='{}'",
                    p.id.as_deref().unwrap_or("(unnamed)")
                )));
            }
            start = (p.addr + p.size).div_ceil(align) * align;
        } else if p.addr >= start.saturating_add(size) {
            break;
        }
    }
    if start < window.base || start.checked_add(size).is_none_or(|e| e > window.end()) {
        return Err(Error::generic(
            "could not find position in guest address space for memory device - memory fragmented due to alignments",
        ));
    }
    Ok(start)
}

/// One element of `query-memory-devices` (QAPI's `MemoryDeviceInfo` for
/// DIMMs and NVDIMMs), in QEMU's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryDeviceInfo {
    /// `dimm` or `nvdimm`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The device.
    pub data: DimmInfo,
}

/// QAPI's `PCDIMMDeviceInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DimmInfo {
    /// The device id, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Guest physical address.
    pub addr: u64,
    /// Size the guest sees.
    pub size: u64,
    /// Slot.
    pub slot: i64,
    /// NUMA node.
    pub node: u64,
    /// The backend's canonical path.
    pub memdev: String,
    /// Added at run time.
    pub hotplugged: bool,
    /// May be unplugged.
    pub hotpluggable: bool,
}

/// `query-memory-devices`: the plugged memory devices, by address.
pub fn query_memory_devices(tree: &qom::ObjectTree) -> Vec<MemoryDeviceInfo> {
    let Some(machine) = machine::machine(tree) else {
        return Vec::new();
    };
    plugged(&machine)
        .into_iter()
        .map(|(dev, p)| {
            let (node, memdev) = {
                let s = dev.state::<PcDimm>();
                (
                    s.node,
                    s.memdev
                        .get()
                        .and_then(|m| m.canonical_path())
                        .unwrap_or_default(),
                )
            };
            let hotplugged = dev.state::<Device>().hotplugged;
            let hotpluggable = dev.get("hotpluggable").ok() == Some(serde_json::Value::Bool(true));
            MemoryDeviceInfo {
                kind: if dev.is_a(TYPE_NVDIMM) {
                    "nvdimm"
                } else {
                    "dimm"
                }
                .into(),
                data: DimmInfo {
                    id: p.id,
                    addr: p.addr,
                    size: p.size,
                    slot: p.slot.into(),
                    node: node.into(),
                    memdev,
                    hotplugged,
                    hotpluggable,
                },
            }
        })
        .collect()
}

/// Registers the `memory-device` interface, `pc-dimm` and `nvdimm`.
pub fn register(types: &qom::TypeRegistry) -> Result<()> {
    types.register(qom::TypeInfo::interface(TYPE_MEMORY_DEVICE))?;
    types.register_type::<PcDimm>()?;
    types.register_type::<Nvdimm>()
}
