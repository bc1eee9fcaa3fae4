#![forbid(unsafe_code)]
//! memory-backend-file: guest RAM backed by a file (QEMU's
//! `memory-backend-file`), including the `sync=on|off|auto` property that
//! maps with `MAP_SYNC` on DAX files.
//!
//! - [`backend`] is the QOM type: register it with [`register`], create
//!   objects through [`qom::ObjectTree`], reach the mapping with
//!   [`memory_backend::mapping`]/[`memory_backend::map`], make writes
//!   durable with [`persist`]; an nvdimm's label area in such a backend
//!   is [`memory_backend::label::LabelArea`] (same persistence rules,
//!   bounds-checked, QEMU's layout and checks).
//! - [`file`](mod@file) is the file side: open or create the backing file, check
//!   sizes and alignment with QEMU's messages, and map it through
//!   [`memory_backend::host`].
//!
//! ```
//! use qom::{ObjectTree, TypeRegistry};
//! use serde_json::json;
//!
//! let types = TypeRegistry::with_builtins();
//! memory_backend_file::register(&types)?;      // also memory-backend, thread-context
//! let tree = ObjectTree::new(types)?;
//!
//! let path = format!("/dev/shm/mbf-doc-{}", std::process::id());
//! let args = json!({"qom-type": "memory-backend-file", "id": "mem0", "size": 4 << 20,
//!                   "mem-path": path, "share": true, "discard-data": true});
//! tree.object_add_args(args.as_object().unwrap())?;
//!
//! // tmpfs is not DAX: sync=auto fell back to a plain shared mapping.
//! assert_eq!(tree.qom_get("mem0", "sync")?, json!("off"));
//! assert_eq!(tree.qom_get("mem0", "rom")?, json!("off"));
//!
//! let obj = tree.object("mem0").unwrap();
//! let ram = memory_backend::mapping(&obj).unwrap();
//! ram.write_at(4096, b"guest data")?;
//! memory_backend_file::persist(&obj, 4096..4106)?;  // msync here; clwb+sfence with MAP_SYNC
//! assert_eq!(ram.page_size(), 4096);
//! drop(ram);
//!
//! // Locked after creation, with QEMU's wording.
//! let err = tree.qom_set("mem0", "sync", &json!("on")).unwrap_err();
//! assert_eq!(err.to_string(), "cannot change property 'sync' of memory-backend-file");
//!
//! tree.object_del("mem0")?;                     // discard-data released the blocks
//! std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backend;
pub mod file;

pub use backend::{
    file_info, persist, register, report_warning, FileInfo, RAW_WARNING_TARGET, SYNC_DESCRIPTION,
    TYPE_MEMORY_BACKEND_FILE, WARNING_TARGET,
};

// Linking this crate is enough for `TypeRegistry::with_linked_types` to
// know memory-backend-file (and the memory-backend base it brings along).
qom::register_linked!(register);
