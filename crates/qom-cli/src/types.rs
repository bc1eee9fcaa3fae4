//! The types the `qom` command knows: QEMU's built-ins, every backend crate
//! linked into this binary (registered by being linked), and the plugins
//! named at run time.

use qom::{LinkedError, TypeRegistry};

// memory-backend-file brings memory-backend and thread-context along. The
// backend crates do not submit themselves, so this binary does it for them;
// the order of `qom types` follows these names (file before ram).
qom::register_linked!(memory_backend_file::register);
// memory-backend-ram, -memfd and -shm.
qom::register_linked!(memory_backend_ram::register);

/// A registry with everything linked into this binary.
pub fn registry() -> Result<TypeRegistry, LinkedError> {
    TypeRegistry::with_linked_types()
}
