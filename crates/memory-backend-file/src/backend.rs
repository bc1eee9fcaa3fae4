//! The QOM type `memory-backend-file`: a [`memory_backend`] subclass whose
//! `alloc` hook opens (or creates) `mem-path` and maps it through
//! [`FileBacking::prepare`]; a file it creates gets its name in the
//! `commit` step that ends `complete`, after preallocation.
//!
//! | property | QOM type | default | locked after creation |
//! |---|---|---|---|
//! | `mem-path` | `string` | (required) | `cannot change property 'mem-path' of memory-backend-file` |
//! | `align` | `int` | 0 (the page size) | `cannot change property 'align' of memory-backend-file` |
//! | `offset` | `int` | 0 | `cannot change property 'offset' of memory-backend-file` |
//! | `discard-data` | `bool` | false | no |
//! | `pmem` | `bool` | false | `cannot change property 'pmem' of memory-backend-file.` |
//! | `readonly` | `bool` | false | `cannot change property 'readonly' of memory-backend-file.` |
//! | `rom` | `OnOffAuto` | `auto`; `on`/`off` after creation | `cannot change property 'rom' of memory-backend-file.` |
//! | `sync` | `OnOffAuto` | `auto`; `on`/`off` after creation | `cannot change property 'sync' of memory-backend-file` |
//!
//! `sync` decides `MAP_SYNC` (see `docs/map-sync.md`):
//! - `on`: required; refused before the file is touched with `share=off`,
//!   and an error naming the file when the file is not on DAX;
//! - `off`: never asked for;
//! - `auto`: asked for with `share=on`, a plain shared mapping when
//!   refused (with `pmem=on`, QEMU's two warnings are logged, see
//!   [`report_warning`]).
//!
//! After creation `sync` reads back what was obtained, as `rom` reads back
//! its resolution.

use std::ops::Range;
use std::path::PathBuf;

use memory_backend::host::Mapping;
use memory_backend::{HostMemory, MemoryBackend, MemoryBackendImpl};
use qom::{
    Error, LockStyle, Object, ObjectRef, ObjectType, OnOffAuto, Result, Size, TypeInfo,
    TypeRegistry,
};

use crate::file::{FileBacking, FileError, FileMapRequest, FileOrigin, FileWarning};

/// The QOM type name.
pub const TYPE_MEMORY_BACKEND_FILE: &str = <FileBackendState as qom::StaticType>::TYPE_NAME;

/// The description of the `sync` property. It says what `MAP_SYNC`
/// guarantees and no more: metadata consistency at write faults, not
/// durable data (the writer still flushes CPU caches).
pub const SYNC_DESCRIPTION: &str =
    "Map with MAP_SYNC: on a DAX file (on a real or emulated NVDIMM) \
     each write fault gets consistent file-system metadata; needs share=on (on, off or auto)";

/// The `memory-backend-file` level of an object's state, and the type.
#[derive(Debug, Default, qom::Object)]
#[qom(name = "memory-backend-file", parent = MemoryBackend)]
struct FileBackendState {
    #[property(locked, required)]
    mem_path: String,
    #[property(locked, lock_checked_first)]
    align: Size,
    #[property(
        locked,
        lock_checked_first,
        description = "Offset into the target file (ex: 1G)"
    )]
    offset: Size,
    /// Settable after creation: it acts when the backend leaves the tree.
    #[property]
    discard_data: bool,
    #[property(locked = LockStyle::QuotedPeriod)]
    pmem: bool,
    #[property(locked = LockStyle::QuotedPeriod)]
    readonly: bool,
    #[property(locked = LockStyle::QuotedPeriod, description = "Whether to create Read Only Memory (ROM)")]
    rom: OnOffAuto,
    #[property(locked, default = OnOffAuto::Auto, description = SYNC_DESCRIPTION)]
    sync: OnOffAuto,
}

impl HostMemory for FileBacking {
    fn mapping(&self) -> &Mapping {
        FileBacking::mapping(self)
    }
    fn abandon(self: Box<Self>) {
        FileBacking::abandon(*self);
    }
    /// Runs after preallocation and the NUMA binding succeeded: a new file
    /// gets its name only now.
    fn commit(&mut self) -> Result<()> {
        FileBacking::commit(self).map_err(file_error)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A [`FileError`] as the object model reports it: QEMU's text, class
/// GenericError, and as `source()` the most specific typed error: the
/// [`HostError`](memory_backend::host::HostError) of a mapping or
/// preallocation failure (a `FileError::Host`, also behind
/// `FileError::AfterWarnings`), the `FileError` otherwise.
fn file_error(e: FileError) -> Error {
    let message = e.to_string();
    match innermost(e) {
        FileError::Host(h) => Error::caused_by(message, h),
        other => Error::caused_by(message, other),
    }
}

fn innermost(e: FileError) -> FileError {
    match e {
        FileError::AfterWarnings { error, .. } => innermost(*error),
        other => other,
    }
}

/// The `log` target of a warning that QEMU prints with `warn_report`
/// (`PROGRAM: warning: TEXT`); the record's text is TEXT.
pub const WARNING_TARGET: &str = "memory_backend_file";

/// The `log` target of a warning whose text is a whole stderr line as QEMU
/// prints it (`perror`-style, or a raw line starting with "Warning: "): a
/// logger that imitates QEMU prints it as it is.
pub const RAW_WARNING_TARGET: &str = "memory_backend_file::raw";

/// Reports a warning through the `log` facade at level `Warn`, with the
/// target that says how QEMU prints it ([`WARNING_TARGET`] or
/// [`RAW_WARNING_TARGET`]). The library prints nothing itself: the `qom`
/// binary's logger prints QEMU's lines on stderr; without a logger the
/// warnings are dropped (they stay readable in [`FileInfo::warnings`]).
pub fn report_warning(w: &FileWarning) {
    match w {
        FileWarning::NonDaxPmemDeprecated => log::warn!(target: WARNING_TARGET, "{w}"),
        _ => log::warn!(target: RAW_WARNING_TARGET, "{w}"),
    }
}

/// The request `alloc` hands to the file layer, built from the properties.
fn map_request(obj: &Object) -> Result<FileMapRequest> {
    let base = memory_backend::settings(obj)
        .ok_or_else(|| Error::generic(format!("'{}' is not a memory backend", obj.type_name())))?;
    let name = memory_backend::region_name(obj);
    let s = obj.state::<FileBackendState>();
    let mut req = FileMapRequest::new(name, s.mem_path.clone(), base.size);
    req.offset = s.offset.0;
    req.align = s.align.0;
    req.share = base.share;
    req.readonly = s.readonly;
    req.rom = s.rom;
    req.reserve = base.reserve;
    req.pmem = s.pmem;
    req.sync = s.sync;
    req.discard_data = s.discard_data;
    Ok(req)
}

impl MemoryBackendImpl for FileBackendState {
    fn alloc(obj: &mut ObjectRef<'_, Self>) -> Result<Box<dyn HostMemory>> {
        let req = map_request(obj.object())?;
        // Not committed: memory-backend calls `commit` once everything
        // else in `complete` has succeeded.
        let backing = FileBacking::prepare(&req).map_err(|e| {
            for w in e.warnings() {
                report_warning(w);
            }
            file_error(e)
        })?;
        for w in backing.warnings() {
            report_warning(w);
        }
        let mut s = obj.state();
        s.rom = OnOffAuto::from(backing.rom());
        s.sync = OnOffAuto::from(backing.map_sync());
        Ok(Box::new(backing))
    }
}

impl qom::ObjectImpl for FileBackendState {
    /// `discard-data`: when the backend leaves the tree with `share=on`,
    /// the file's blocks are released (`MADV_REMOVE`), nothing is written
    /// back. Then `memory-backend`'s own unparent runs.
    fn unparent(obj: &mut ObjectRef<'_, Self>) {
        // Read and let go: no guard of ours is held while the base level's
        // state is locked below.
        let discard = obj.state().discard_data;
        if discard {
            if let Some(mem) = memory_backend::mapping(obj.object()) {
                if mem.shared() {
                    // QEMU ignores the outcome too.
                    let _ = mem.discard();
                }
            }
        }
        qom::parent_unparent(obj);
    }
}

/// The registration of `memory-backend-file`.
pub fn type_info() -> TypeInfo {
    FileBackendState::type_info()
}

/// Registers `memory-backend-file`, after `memory-backend` and
/// `thread-context` (registered here when missing). Calling it twice is
/// harmless.
pub fn register(types: &TypeRegistry) -> Result<()> {
    memory_backend::register(types)?;
    types.register_once(type_info())
}

fn file_backing(mem: &memory_backend::BackendMemory) -> Option<&FileBacking> {
    mem.host_memory().as_any().downcast_ref::<FileBacking>()
}

/// Makes our writes to `range` of a created file backend durable
/// (see [`Mapping::persist`]): with `MAP_SYNC` in effect, cache-line
/// write-back (`clwb`, else `clflushopt`, else `clflush`) and one `sfence`;
/// otherwise `msync(MS_SYNC)` of the pages covering the range. A private
/// mapping (`share=off`) has nothing to persist.
pub fn persist(obj: &Object, range: Range<usize>) -> Result<()> {
    let mem = memory_backend::mapping(obj).ok_or_else(|| {
        Error::generic(format!(
            "'{}' is not a created memory backend",
            obj.canonical_path()
                .unwrap_or_else(|| obj.type_name().to_owned())
        ))
    })?;
    let len = range.end.checked_sub(range.start).ok_or_else(|| {
        Error::generic(format!(
            "invalid range {}..{} to persist",
            range.start, range.end
        ))
    })?;
    mem.persist(range.start, len)
        .map_err(memory_backend::host_error)
}

/// What the file level knows about a created file backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// `mem-path` as given (the directory for a temporary file).
    pub path: PathBuf,
    /// Whether the file existed, was created, or is an unnamed temporary file.
    pub origin: FileOrigin,
    /// The resolved `rom`.
    pub rom: bool,
    /// Whether `MAP_SYNC` is in effect.
    pub map_sync: bool,
    /// What was reported while creating it (see [`report_warning`]).
    pub warnings: Vec<FileWarning>,
}

/// The file behind a created `memory-backend-file`; `None` for other
/// objects and before creation.
pub fn file_info(obj: &Object) -> Option<FileInfo> {
    let mem = memory_backend::mapping(obj)?;
    let fb = file_backing(&mem)?;
    Some(FileInfo {
        path: fb.path().to_owned(),
        origin: fb.origin(),
        rom: fb.rom(),
        map_sync: fb.map_sync(),
        warnings: fb.warnings().to_vec(),
    })
}
