#![deny(unsafe_code)]
//! memory-backend: guest RAM for QEMU-style memory backend objects.
//!
//! - [`host`] is the host side: it reserves address space, maps a file at
//!   an aligned address (optionally with `MAP_SYNC`), and offers madvise,
//!   NUMA binding, preallocation and persistence on the resulting
//!   [`host::Mapping`].
//! - [`backend`] is the abstract, user-creatable QOM type `memory-backend`
//!   built on it: QEMU's properties, rules and messages, the `alloc` hook
//!   subclasses fill ([`MemoryBackendClass`]), the mapping for a VMM
//!   ([`mapping`], [`map`]) and `query-memdev` ([`query_memdev`]).
//! - [`label`] reads, writes and persists an nvdimm's label area inside a
//!   backend's memory ([`LabelArea`]).
//! - [`thread_context`] is the `thread-context` type whose affinity
//!   preallocation threads take (`prealloc-context`).
//!
//! A concrete backend is a subclass with an `alloc` hook. This one maps an
//! unnamed file in `/dev/shm` (the real file backend is the
//! `memory-backend-file` crate):
//!
//! ```
//! use std::sync::Arc;
//! use memory_backend::host::{MapRequest, Mapping};
//! use memory_backend::{host_error, settings, HostMemory, MemoryBackendClass};
//! use qom::{ObjectTree, TypeInfo, TypeRegistry};
//! use serde_json::json;
//!
//! fn alloc(obj: &qom::Object) -> qom::Result<Box<dyn HostMemory>> {
//!     let s = settings(obj).expect("a memory backend");
//!     let file = tempfile_in_dev_shm().map_err(|e| qom::Error::generic(e.to_string()))?;
//!     file.set_len(s.size).map_err(|e| qom::Error::generic(e.to_string()))?;
//!     let req = MapRequest::new(file.into(), s.size).shared(s.share);
//!     Ok(Box::new(Mapping::new(req).map_err(host_error)?))
//! }
//! # fn tempfile_in_dev_shm() -> std::io::Result<std::fs::File> {
//! #     let p = format!("/dev/shm/mb-doc-{}", std::process::id());
//! #     let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p)?;
//! #     std::fs::remove_file(&p)?;
//! #     Ok(f)
//! # }
//!
//! let types = TypeRegistry::with_builtins();
//! memory_backend::register(&types)?;
//! types.register(TypeInfo::new("memory-backend-shm-demo").parent("memory-backend")
//!     .class_init(|c| {
//!         c.data_mut::<MemoryBackendClass>().alloc = Some(Arc::new(alloc));
//!         Ok(())
//!     }))?;
//! let tree = ObjectTree::new(types)?;
//! let args = json!({"qom-type": "memory-backend-shm-demo", "id": "mem0",
//!                   "size": 4 << 20, "share": true, "prealloc": true});
//! tree.object_add_args(args.as_object().unwrap())?;
//! assert_eq!(tree.qom_get("mem0", "prealloc")?, json!(true));
//!
//! let obj = tree.object("mem0").unwrap();
//! let ram = memory_backend::map(&obj)?;           // a device uses the memory
//! assert_eq!(memory_backend::map_exclusive(&obj).unwrap_err().to_string(),
//!            "can't use already busy memdev: mem0"); // no second owner
//! ram.write_at(0, b"hello")?;
//! assert_eq!(ram.len(), 4 << 20);
//! assert!(ram.shared() && !ram.map_sync());
//! assert_eq!(tree.object_del("mem0").unwrap_err().to_string(),
//!            "object 'mem0' is in use, can not be deleted");
//! drop(ram);
//! assert_eq!(memory_backend::query_memdev(&tree)[0].size, 4 << 20);
//! tree.object_del("mem0")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backend;
pub mod host;
pub mod label;
pub mod region;
pub mod thread_context;

pub use backend::{
    host_error, is_mapped, map, map_exclusive, mapping, query_memdev, region_name, register,
    settings, AllocFn, BackendMemory, BackendSettings, HostMemPolicy, HostMemory, MapError,
    MappedMemory, Memdev, MemoryBackend, MemoryBackendClass, MemoryBackendImpl,
    TYPE_MEMORY_BACKEND,
};
pub use host::{PreallocControl, PreallocProgress};
pub use label::{LabelArea, LabelError};
pub use thread_context::TYPE_THREAD_CONTEXT;
