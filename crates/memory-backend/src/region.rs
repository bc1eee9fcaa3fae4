//! The `memory-region` child a backend gets once its memory exists
//! (`/objects/ID/ID[0]`), as QEMU shows it: `addr`, `container`,
//! `priority`, `size`, all read-only.

use qom::{Class, Object, Result, TypeInfo, TypeRegistry};
use serde_json::Value;
use std::sync::Arc;

/// The QOM type name.
pub const TYPE_MEMORY_REGION: &str = "memory-region";

#[derive(Default)]
struct RegionState {
    size: u64,
}

fn type_info() -> TypeInfo {
    TypeInfo::new(TYPE_MEMORY_REGION)
        .parent("object")
        .state::<RegionState>()
        .class_init(|c| {
            c.property::<u64>("addr").getter(|_| Ok(0));
            // A backend's region is not placed in an address space here.
            c.raw_property("container", "link<memory-region>")
                .getter(|_| Ok(Value::String(String::new())));
            c.property::<u32>("priority").getter(|_| Ok(0));
            c.property::<u64>("size")
                .getter(|o| Ok(o.state::<RegionState>().size));
            Ok(())
        })
}

/// Registers `memory-region` (once) and returns its class.
pub(crate) fn register(types: &TypeRegistry) -> Result<Arc<Class>> {
    types.register_once(type_info())?;
    types.class(TYPE_MEMORY_REGION)
}

/// QEMU escapes `/`, `[`, `]` and `\` in a region's child name as `\xNN`.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' | '[' | ']' | '\\' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Adds the `NAME[0]` region child of `size` bytes to `backend`.
pub(crate) fn attach(
    class: &Arc<Class>,
    backend: &Object,
    region_name: &str,
    size: u64,
) -> Result<()> {
    let region = Object::new(class.clone(), Some(backend))?;
    region.state::<RegionState>().size = size;
    backend.add_child(&format!("{}[0]", escape(region_name)), &region)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_escaped_like_qemu() {
        assert_eq!(super::escape("mem0"), "mem0");
        assert_eq!(
            super::escape("/objects/m[1]\\"),
            "\\x2fobjects\\x2fm\\x5b1\\x5d\\x5c"
        );
    }
}
