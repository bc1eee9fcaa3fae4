//! The types the `qom` command knows: QEMU's built-ins, every backend crate
//! linked into this binary (registered by being linked), and the plugins
//! named at run time.

use qom::{LinkedError, TypeRegistry};

// The backend crates register themselves by being linked (in the order
// of their module paths: memory-backend-file, then memory-backend-ram); the
// `use` keeps the linker from leaving them out.
use memory_backend_file as _;
use memory_backend_ram as _;
use qom_devices as _;

/// A registry with everything linked into this binary.
pub fn registry() -> Result<TypeRegistry, LinkedError> {
    TypeRegistry::with_linked_types()
}
