//! The machine: `/machine` with its device containers, the RAM layout
//! given with `-m SIZE,slots=N,maxmem=MAX`, and the device-memory window
//! that memory devices are placed in.

use qom::value::opts_parse;
use qom::{Error, Object, ObjectTree, Result};
use std::sync::{Arc, Mutex};

/// The abstract root of machine types.
pub const TYPE_MACHINE: &str = "machine";
/// QEMU 10.0's `pc` machine (its alias `pc` is accepted by [`MachineOptions::parse`]).
pub const TYPE_PC_MACHINE: &str = "pc-i440fx-10.0-machine";

/// QEMU's limit on memory slots on x86 (ACPI's).
const MAX_RAM_SLOTS: u64 = 256;
const GIB: u64 = 1 << 30;
/// Below this much RAM, the pc machine keeps it all under 4 GiB.
const PC_LOWMEM: u64 = 0xe000_0000;
/// Where the pc machine's RAM above 4 GiB starts being split off.
const PC_LOWMEM_GIGABYTE_ALIGNED: u64 = 0xc000_0000;

/// `-m SIZE[,slots=N][,maxmem=MAX]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryOptions {
    /// The initial RAM in bytes.
    pub size: u64,
    /// Memory device slots.
    pub slots: u64,
    /// The most RAM the machine may have, memory devices included.
    pub maxmem: u64,
}

impl Default for MemoryOptions {
    /// QEMU's default: 128 MiB, no slots, no room for memory devices.
    fn default() -> Self {
        MemoryOptions {
            size: 128 << 20,
            slots: 0,
            maxmem: 128 << 20,
        }
    }
}

impl MemoryOptions {
    /// Parses a `-m` argument with QEMU's rules and errors (a size
    /// without suffix is in MiB; `maxmem` in bytes unless suffixed).
    pub fn parse(text: &str) -> Result<MemoryOptions> {
        let parsed = opts_parse(text, Some("size"));
        let mut size = None;
        let mut slots = None;
        let mut maxmem = None;
        for (key, value) in &parsed.opts {
            let value = value.last();
            match key.as_str() {
                "size" => size = Some(parse_size("size", value, 1 << 20)?),
                "maxmem" => maxmem = Some(parse_size("maxmem", value, 1)?),
                "slots" => {
                    slots = Some(value.parse::<u64>().map_err(|_| Error::ParameterExpects {
                        name: "slots".into(),
                        what: "a number".into(),
                    })?)
                }
                other => return Err(Error::InvalidParameter(other.to_owned())),
            }
        }
        let size = size.unwrap_or(MemoryOptions::default().size);
        let (slots, maxmem) = match (slots, maxmem) {
            (Some(_), None) => return Err(Error::generic("slots specified but no max-size")),
            (s, Some(max)) => {
                if max < size {
                    return Err(Error::generic(format!(
                        "invalid value of maxmem: maximum memory size (0x{max:x}) must be at least the initial memory size (0x{size:x})"
                    )));
                }
                (s.unwrap_or(0), max)
            }
            (None, None) => (0, size),
        };
        if slots > MAX_RAM_SLOTS {
            return Err(Error::generic(format!(
                "unsupported amount of memory slots: {slots}"
            )));
        }
        Ok(MemoryOptions {
            size,
            slots,
            maxmem,
        })
    }
}

/// A size as `-m` takes it: a number with an optional k/M/G/T/P/E suffix;
/// a bare number counts in `unit`.
fn parse_size(name: &str, text: &str, unit: u64) -> Result<u64> {
    let bad = || Error::ParameterExpects {
        name: name.to_owned(),
        what: "a non-negative number below 2^64".into(),
    };
    let (digits, mult) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return Err(bad()),
            };
            (&text[..i], 1u64 << shift)
        }
        _ => (text, unit),
    };
    let n: f64 = digits.parse().map_err(|_| bad())?;
    if n.is_nan() || n < 0.0 || n * mult as f64 >= 18446744073709551616.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

/// `-machine TYPE[,nvdimm=on|off]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineOptions {
    /// The machine type's full name.
    pub type_name: String,
    /// Whether nvdimm devices are enabled (`nvdimm=on`).
    pub nvdimm: bool,
    /// The RAM layout.
    pub memory: MemoryOptions,
}

impl MachineOptions {
    /// Parses a `-machine` argument; `memory` comes from `-m`.
    pub fn parse(text: &str, memory: MemoryOptions) -> Result<MachineOptions> {
        let parsed = opts_parse(text, Some("type"));
        let mut type_name = None;
        let mut nvdimm = false;
        for (key, value) in &parsed.opts {
            let value = value.last();
            match key.as_str() {
                "type" => type_name = Some(value.to_owned()),
                "nvdimm" => {
                    nvdimm = match value {
                        "on" | "yes" | "true" | "y" => true,
                        "off" | "no" | "false" | "n" => false,
                        _ => {
                            return Err(Error::ParameterExpects {
                                name: "nvdimm".into(),
                                what: "'on' or 'off'".into(),
                            })
                        }
                    }
                }
                other => {
                    return Err(Error::PropertyNotFound {
                        type_name: TYPE_PC_MACHINE.into(),
                        name: other.to_owned(),
                    })
                }
            }
        }
        let type_name = match type_name.as_deref() {
            Some("pc") | Some(TYPE_PC_MACHINE) | None => TYPE_PC_MACHINE.to_owned(),
            Some(other) => {
                return Err(Error::generic(format!(
                    "unsupported machine type: \"{other}\""
                )))
            }
        };
        Ok(MachineOptions {
            type_name,
            nvdimm,
            memory,
        })
    }
}

/// The state of a machine.
#[derive(Debug, Default, qom::Object)]
#[qom(name = "machine", abstract)]
pub struct Machine {
    /// `-m size`.
    #[property(read_only, qom_type = "int")]
    ram_size: u64,
    /// `-m maxmem`.
    #[property(read_only, rename = "maxram-size", qom_type = "int")]
    maxram_size: u64,
    /// `-m slots`.
    #[property(read_only, rename = "ram-slots", qom_type = "int")]
    ram_slots: u64,
    /// `nvdimm=on`.
    #[property(read_only)]
    nvdimm: bool,
    /// Next `device[N]` of `/machine/peripheral-anon`; never reused, as in QEMU.
    anon_count: u64,
    /// Serializes plugging and unplugging, which QEMU's big lock does.
    plug_lock: Arc<Mutex<()>>,
}

impl qom::ObjectImpl for Machine {}

/// QEMU's pc machine layout, without CPUs or buses.
#[derive(Debug, Default, qom::Object)]
#[qom(name = "pc-i440fx-10.0-machine", parent = Machine)]
pub struct PcMachine {}

impl qom::ObjectImpl for PcMachine {}

/// The device-memory window: where memory devices may be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    /// The first address.
    pub base: u64,
    /// Its size in bytes (`maxmem - size`).
    pub size: u64,
}

impl DeviceMemory {
    /// The first address past the window.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// What a machine was configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineConfig {
    /// The RAM layout.
    pub memory: MemoryOptions,
    /// `nvdimm=on`.
    pub nvdimm: bool,
}

impl MachineConfig {
    /// The pc machine's device-memory window: from the first GiB boundary
    /// above the RAM that sits above 4 GiB, `maxmem - size` bytes; `None`
    /// when there is no room (`maxmem` = `size`).
    pub fn device_memory(&self) -> Option<DeviceMemory> {
        let m = self.memory;
        if m.maxmem <= m.size {
            return None;
        }
        let above_4g = if m.size >= PC_LOWMEM {
            m.size - PC_LOWMEM_GIGABYTE_ALIGNED
        } else {
            0
        };
        let base = (4 * GIB + above_4g).div_ceil(GIB) * GIB;
        Some(DeviceMemory {
            base,
            size: m.maxmem - m.size,
        })
    }
}

/// Creates `/machine` (with `peripheral`, `peripheral-anon` and
/// `unattached`) in `tree`.
pub fn create_machine(tree: &ObjectTree, opts: &MachineOptions) -> Result<Object> {
    if tree.root().child("machine").is_some() {
        return Err(Error::generic("the tree already has a machine"));
    }
    let machine = tree.new_object(&opts.type_name)?;
    {
        let mut s = machine.state::<Machine>();
        s.ram_size = opts.memory.size;
        s.maxram_size = opts.memory.maxmem;
        s.ram_slots = opts.memory.slots;
        s.nvdimm = opts.nvdimm;
    }
    for name in ["peripheral", "peripheral-anon", "unattached"] {
        let c = tree.new_object(qom::TYPE_CONTAINER)?;
        machine.add_child(name, &c)?;
    }
    tree.root().add_child("machine", &machine)?;
    Ok(machine)
}

/// `/machine`, if the tree has one.
pub fn machine(tree: &ObjectTree) -> Option<Object> {
    tree.root()
        .child("machine")
        .filter(|m| m.is_a(TYPE_MACHINE))
}

/// The configuration of a machine object.
pub fn config(machine: &Object) -> MachineConfig {
    let s = machine.state::<Machine>();
    MachineConfig {
        memory: MemoryOptions {
            size: s.ram_size,
            slots: s.ram_slots,
            maxmem: s.maxram_size,
        },
        nvdimm: s.nvdimm,
    }
}

/// The lock that serializes plugging on `machine`.
pub(crate) fn plug_lock(machine: &Object) -> Arc<Mutex<()>> {
    machine.state::<Machine>().plug_lock.clone()
}

/// Takes the next anonymous device number.
pub(crate) fn next_anon(machine: &Object) -> u64 {
    let mut s = machine.state::<Machine>();
    let n = s.anon_count;
    s.anon_count += 1;
    n
}

/// Registers `machine` and the pc machine type.
pub fn register(types: &qom::TypeRegistry) -> Result<()> {
    types.register_type::<Machine>()?;
    types.register_type::<PcMachine>()
}
