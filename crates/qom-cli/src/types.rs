//! The types the `qom` command knows: QEMU's built-ins plus every backend
//! crate linked into this binary.

use qom::TypeRegistry;

/// A registry with everything this binary offers.
pub fn registry() -> qom::Result<TypeRegistry> {
    let types = TypeRegistry::with_builtins();
    // memory-backend-file brings memory-backend and thread-context along.
    types.install(memory_backend_file::register)?;
    // memory-backend-ram, -memfd and -shm.
    types.install(memory_backend_ram::register)?;
    Ok(types)
}
