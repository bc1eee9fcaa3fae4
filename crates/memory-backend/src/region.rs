//! The `memory-region` child a backend gets once its memory exists
//! (`/objects/ID/ID[0]`), as QEMU shows it: `addr`, `container`,
//! `priority`, `size`, all read-only.

use qom::{Class, Object, ObjectRef, ObjectType, Result, TypeRegistry};
use std::sync::Arc;

/// The QOM type name.
pub const TYPE_MEMORY_REGION: &str = <RegionState as qom::StaticType>::TYPE_NAME;

// Every property is computed, so that they keep QEMU's order (fields'
// properties would come first). A backend's region is not placed in an
// address space here: it reads as QEMU's unplaced region, with an empty
// container link (declared as a string with QEMU's link type name, since
// there is nothing it could be set to).
#[derive(Default, qom::Object)]
#[qom(
    name = "memory-region",
    property(name = "addr", ty = u64, get = unplaced),
    property(name = "container", ty = String, qom_type = "link<memory-region>", get = unplaced),
    property(name = "priority", ty = u32, get = unplaced),
    property(name = "size", ty = u64, get = region_size)
)]
struct RegionState {
    size: u64,
}

impl qom::ObjectImpl for RegionState {}

fn unplaced<V: Default>(_: &mut ObjectRef<'_, RegionState>) -> Result<V> {
    Ok(V::default())
}

fn region_size(obj: &mut ObjectRef<'_, RegionState>) -> Result<u64> {
    Ok(obj.state().size)
}

/// Registers `memory-region` (once) and returns its class.
pub(crate) fn register(types: &TypeRegistry) -> Result<Arc<Class>> {
    types.register_once(RegionState::type_info())?;
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
