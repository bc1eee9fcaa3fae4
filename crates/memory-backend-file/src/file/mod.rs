//! The file side of `memory-backend-file`: open or create the backing
//! file, check it against `size`, `offset` and `align` in QEMU's order and
//! with QEMU's messages, size new files, and map them through
//! [`memory_backend::host::Mapping`].
//!
//! [`FileBacking::open_and_map`] is the entry point; [`FileBacking::prepare`]
//! and [`FileBacking::commit`] split it for callers with more to do
//! (preallocation, NUMA binding) before a new file may appear under its
//! name.

mod error;
mod open;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use memory_backend::host::{
    fd_page_size, fd_path, host_page_size, Errno, HostError, MapRequest, MapSyncOutcome, Mapping,
    SyncMode,
};

pub use error::{FileError, FileWarning, EACCES_HINT};
pub use open::FileOrigin;

use open::{file_size, open_backing, CreatedGuard, PendingName, Tmpfile};

/// The QOM type name used in messages.
pub const TYPE_NAME: &str = "memory-backend-file";

/// The `rom` property: QAPI's `OnOffAuto`, the property's own type (no
/// conversion in between).
///
/// - `Auto` (the default): ROM exactly when `readonly` is on.
/// - `On`: read-only memory; needs `readonly=on`.
/// - `Off`: writable memory; with `readonly=on` only as a private copy.
pub type RomMode = qom::OnOffAuto;

/// Everything needed to set up a file backend (the backend's properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapRequest {
    /// Region name: the object id (or canonical path). Appears in messages
    /// and in the name of a temporary file.
    pub name: String,
    /// `mem-path`: a file, a device, or a directory.
    pub path: PathBuf,
    /// `size` in bytes.
    pub size: u64,
    /// `offset` into the file.
    pub offset: u64,
    /// `align`; 0 means the page size.
    pub align: u64,
    /// `share`: MAP_SHARED instead of a private copy-on-write mapping.
    pub share: bool,
    /// `readonly`: open the file read-only.
    pub readonly: bool,
    /// `rom`.
    pub rom: RomMode,
    /// `reserve`: false maps with MAP_NORESERVE.
    pub reserve: bool,
    /// `pmem`.
    pub pmem: bool,
    /// `sync`.
    pub sync: SyncMode,
    /// `discard-data`: a shared mapping abandoned after a failed setup
    /// step gives its blocks back, as the teardown of a complete backend
    /// would (a cancelled preallocation must not leave an existing file
    /// holding the blocks it populated).
    pub discard_data: bool,
}

impl FileMapRequest {
    /// A request with QEMU's defaults: private, writable, reserved,
    /// offset and align 0, `rom=auto`, `pmem=off`, `sync=auto`.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, size: u64) -> Self {
        FileMapRequest {
            name: name.into(),
            path: path.into(),
            size,
            offset: 0,
            align: 0,
            share: false,
            readonly: false,
            rom: RomMode::Auto,
            reserve: true,
            pmem: false,
            sync: SyncMode::Auto,
            discard_data: false,
        }
    }
}

/// A mapped file backend: the mapping plus what is known about its file.
///
/// A file that [`FileBacking::prepare`] created has no name, or is removed
/// again on drop, until [`FileBacking::commit`] succeeds: a backend whose
/// setup fails or is interrupted leaves no half-made file behind.
#[derive(Debug)]
pub struct FileBacking {
    mapping: Mapping,
    path: PathBuf,
    origin: FileOrigin,
    rom: bool,
    warnings: Vec<FileWarning>,
    /// The name an unnamed (`O_TMPFILE`) file gets at commit.
    pending: Option<PendingName>,
    /// Removes a file created under its name (no `O_TMPFILE`) unless
    /// committed. Declared after `mapping`, so the file is unmapped first.
    guard: CreatedGuard,
    committed: bool,
    discard_on_abandon: bool,
}

/// Resolves `rom` against `readonly`/`share` (QEMU's rules).
pub fn resolve_rom(rom: RomMode, readonly: bool, share: bool) -> Result<bool, FileError> {
    match rom {
        RomMode::Auto => Ok(readonly),
        RomMode::On if !readonly => Err(FileError::RomOnNeedsReadonly),
        RomMode::On => Ok(true),
        RomMode::Off if readonly && share => Err(FileError::RomOffReadonlyShared),
        RomMode::Off => Ok(false),
    }
}

/// The host layer names the file as `/proc/self/fd` does, which for an
/// unnamed file is `DIR/#INODE (deleted)`: say the name it was to get.
fn named_in_error(e: HostError, pending: Option<&PendingName>) -> HostError {
    match (e, pending) {
        (HostError::MapSyncUnsupported { errno, .. }, Some(p)) => HostError::MapSyncUnsupported {
            path: p.display_path(),
            errno,
        },
        (e, _) => e,
    }
}

impl FileBacking {
    /// Opens (or creates) the backing file and maps it, then gives a
    /// created file its name: [`FileBacking::prepare`] followed by
    /// [`FileBacking::commit`]. A caller that still has steps that may
    /// fail (preallocation) uses those two instead, so that a new file
    /// only appears under its name when everything has succeeded.
    pub fn open_and_map(req: &FileMapRequest) -> Result<FileBacking, FileError> {
        let mut backing = FileBacking::prepare(req)?;
        backing.commit()?;
        Ok(backing)
    }

    /// Opens (or creates) the backing file and maps it, in QEMU's order:
    ///
    /// 1. `size` not 0, `mem-path` set, `rom` resolved, and `sync=on`
    ///    refused with `share=off`, all before the file is touched;
    /// 2. open: existing file, else create (mode `0600`, where QEMU uses
    ///    `0644`), a directory gives an unnamed temporary file; never
    ///    create with `readonly`. A created file is unnamed (`O_TMPFILE`)
    ///    until [`FileBacking::commit`]; on a file system without
    ///    `O_TMPFILE` it is created under its name and removed again if a
    ///    later step fails or the backing is dropped uncommitted;
    /// 3. a non-empty file must hold `offset + size` (size rounded up to
    ///    the host page size);
    /// 4. page size (hugetlbfs: the huge page size); `align` a multiple of
    ///    it, then a power of two; `offset` a multiple of it; `size` at
    ///    least one page;
    /// 5. an empty file is extended to `offset + size` (rounded up to the
    ///    page size); other files are never resized;
    /// 6. mapped at an address aligned to max(page size, align, 2 MiB);
    /// 7. `size` must be a multiple of the page size (QEMU checks this in
    ///    the generic backend after mapping; here a created file is then
    ///    removed, where QEMU leaves it behind).
    pub fn prepare(req: &FileMapRequest) -> Result<FileBacking, FileError> {
        FileBacking::prepare_with(req, Tmpfile::Try)
    }

    /// [`FileBacking::prepare`], with the choice of `O_TMPFILE` open to
    /// tests.
    fn prepare_with(req: &FileMapRequest, tmpfile: Tmpfile) -> Result<FileBacking, FileError> {
        if req.size == 0 {
            return Err(FileError::SizeZero);
        }
        if req.path.as_os_str().is_empty() {
            return Err(FileError::MemPathNotSet);
        }
        let rom = resolve_rom(req.rom, req.readonly, req.share)?;
        if req.sync == SyncMode::On && !req.share {
            return Err(HostError::MapSyncNeedsShared.into());
        }

        let opened = open_backing(&req.path, &req.name, req.readonly, req.share, tmpfile)?;
        // Only a file created under its name needs removing; an unnamed
        // one goes with its last descriptor.
        let named_now = opened.origin == FileOrigin::Created && opened.pending.is_none();
        let guard = CreatedGuard::new(named_now.then(|| req.path.clone()));
        let pending = opened.pending;
        let fd = opened.fd;
        let mut warnings = Vec::new();

        // QEMU rounds to the target page, then to the host page size, in
        // 64-bit arithmetic that may wrap (size 2^64-1 becomes 0).
        let host_page = host_page_size() as u64;
        let size = req.size.wrapping_add(host_page - 1) & !(host_page - 1);
        let fsize = file_size(fd.as_fd());
        let needed = req.offset.wrapping_add(size);
        if fsize > 0 && fsize < needed {
            return Err(FileError::TooSmall {
                name: req.name.clone(),
                file_size: fsize,
                size,
                offset: req.offset,
            });
        }

        let page_size = fd_page_size(fd.as_fd()) as u64;
        if req.align % page_size != 0 {
            return Err(FileError::AlignNotPageMultiple {
                align: req.align,
                page_size,
            });
        }
        if req.align != 0 && !req.align.is_power_of_two() {
            return Err(FileError::AlignNotPowerOfTwo(req.align));
        }
        if req.offset % page_size != 0 {
            return Err(FileError::OffsetNotPageMultiple {
                offset: req.offset,
                page_size,
            });
        }
        if size < page_size {
            return Err(FileError::SizeBelowPageSize { size, page_size });
        }
        let map_len = size.wrapping_add(page_size - 1) & !(page_size - 1);

        let mut truncate_error = None;
        if fsize < needed {
            if let Err(e) = rustix::fs::ftruncate(&fd, req.offset.wrapping_add(map_len)) {
                warnings.push(FileWarning::Truncate(e));
                truncate_error = Some(e);
            }
        }

        let request = MapRequest::new(fd, map_len)
            .offset(req.offset)
            .align(req.align.max(page_size))
            .page_size(page_size as usize)
            .shared(req.share)
            .readonly(rom)
            .noreserve(!req.reserve)
            .sync(req.sync)
            .pmem(req.pmem);
        let mapping = Mapping::new(request).map_err(|e| {
            let e = FileError::Host(named_in_error(e, pending.as_ref()));
            match truncate_error {
                Some(_) => FileError::AfterWarnings {
                    warnings: warnings.clone(),
                    error: Box::new(e),
                },
                None => e,
            }
        })?;

        // A regular file that is still too short would SIGBUS on access
        // (QEMU maps it anyway); refuse instead.
        // (A file mapping always has its descriptor.)
        if let (Some(errno), Some(fd)) = (truncate_error, mapping.fd()) {
            let st = rustix::fs::fstat(fd).map_err(|e| FileError::Resize {
                path: req.path.display().to_string(),
                len: needed,
                errno: e,
            })?;
            let regular = rustix::fs::FileType::from_raw_mode(st.st_mode).is_file();
            let end = req.offset.saturating_add(map_len);
            if regular && (st.st_size as u64) < end {
                return Err(FileError::Resize {
                    path: req.path.display().to_string(),
                    len: end,
                    errno,
                });
            }
        }

        if req.size % page_size != 0 {
            return Err(HostError::SizeNotMultiple {
                type_name: TYPE_NAME.to_owned(),
                page_size,
            }
            .into());
        }

        if req.pmem {
            if let MapSyncOutcome::Refused(Errno::OPNOTSUPP) = mapping.map_sync_outcome() {
                // QEMU names the file as /proc/self/fd shows it; an
                // unnamed file shows there as "#ino (deleted)", so say
                // where it is going to be instead.
                let path = match &pending {
                    Some(p) => p.display_path(),
                    None => mapping.fd().map(fd_path).unwrap_or_default(),
                };
                warnings.push(FileWarning::PersistenceUnavailable { path });
                warnings.push(FileWarning::NonDaxPmemDeprecated);
            }
        }

        Ok(FileBacking {
            mapping,
            path: req.path.clone(),
            origin: opened.origin,
            rom,
            warnings,
            pending,
            guard,
            committed: false,
            discard_on_abandon: req.discard_data && req.share,
        })
    }

    /// Declares the backend complete: an unnamed file that
    /// [`FileBacking::prepare`] created gets its name now (`linkat`), and a
    /// file created under its name is kept from here on. Does nothing for
    /// existing and temporary files, nor a second time.
    ///
    /// Fails with [`FileError::Name`] when the name cannot be given; with
    /// `EEXIST` when another process created a file under that name in the
    /// meantime, which is then left untouched. The backing stays
    /// uncommitted: drop or [`FileBacking::abandon`] it.
    pub fn commit(&mut self) -> Result<(), FileError> {
        if self.committed {
            return Ok(());
        }
        if let Some(pending) = &self.pending {
            // A file mapping always has its descriptor; EBADF if not.
            let fd = self.mapping.fd().ok_or_else(|| FileError::Name {
                path: pending.display_path(),
                errno: Errno::BADF,
            })?;
            pending.link(fd)?;
            self.pending = None;
        }
        self.guard.disarm();
        self.committed = true;
        Ok(())
    }

    /// Whether [`FileBacking::commit`] has succeeded.
    pub fn committed(&self) -> bool {
        self.committed
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Gives up the file information and keeps the mapping. A file created
    /// by an uncommitted backing never gets its name (or loses it).
    pub fn into_mapping(self) -> Mapping {
        self.mapping
    }

    /// `mem-path` as given (a directory for temporary files).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the file came to be.
    pub fn origin(&self) -> FileOrigin {
        self.origin
    }

    /// True when the file was created by [`FileBacking::prepare`].
    pub fn created(&self) -> bool {
        self.origin == FileOrigin::Created
    }

    /// The page size of the mapping (the huge page size on hugetlbfs).
    pub fn page_size(&self) -> usize {
        self.mapping.page_size()
    }

    /// The resolved `rom`: true when mapped read-only. `qom-get rom` reads
    /// `on`/`off` from this after creation.
    pub fn rom(&self) -> bool {
        self.rom
    }

    /// Whether MAP_SYNC is in effect: `qom-get sync` reads `on`/`off` from
    /// this after creation.
    pub fn map_sync(&self) -> bool {
        self.mapping.map_sync()
    }

    /// What QEMU would have printed on stderr while creating the backend.
    pub fn warnings(&self) -> &[FileWarning] {
        &self.warnings
    }

    /// `discard-data` at removal: drops the contents so a shared file's
    /// blocks are freed (see [`Mapping::discard`]).
    pub fn discard_data(&self) -> Result<(), FileError> {
        self.mapping.discard().map_err(FileError::from)
    }

    /// Tears the backend down after a later setup step failed (madvise,
    /// NUMA binding, preallocation): releases the file's blocks with
    /// `discard_data` on a shared mapping, unmaps, closes, and removes the
    /// file if it was created by us. Dropping a committed `FileBacking` instead
    /// keeps the file, as a successfully created backend does; dropping an
    /// uncommitted one leaves no created file either.
    pub fn abandon(self) {
        if self.discard_on_abandon {
            // As the teardown does: the outcome is not looked at.
            let _ = self.mapping.discard();
        }
        let remove = self.created() && self.committed;
        let path = self.path;
        drop(self.mapping);
        // Uncommitted, the file either has no name or is removed by the
        // guard: never unlink the name here then, it may be someone
        // else's file (a failed commit).
        drop(self.guard);
        if remove {
            let _ = rustix::fs::unlink(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The path for file systems without `O_TMPFILE`, reached on any file
    //! system through [`Tmpfile::Never`]: none of the file systems that
    //! can be mounted here refuses `O_TMPFILE` and still maps files.

    use std::os::unix::fs::PermissionsExt;

    use qom_test_support::TempDir;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn without_tmpfile_the_file_is_named_at_once_and_removed_unless_committed() {
        let dir = TempDir::new_in("/tmp");
        let path = dir.join("guest-ram");
        let req = FileMapRequest::new("mem0", &path, 1 << 20);

        let b = FileBacking::prepare_with(&req, Tmpfile::Never).unwrap();
        assert_eq!(b.origin(), FileOrigin::Created);
        assert!(path.exists(), "named before commit: today's behaviour");
        assert_eq!(mode(&path), 0o600);
        drop(b);
        assert!(!path.exists(), "dropped uncommitted: removed");

        let b = FileBacking::prepare_with(&req, Tmpfile::Never).unwrap();
        b.abandon();
        assert!(!path.exists(), "abandoned uncommitted: removed");

        let mut b = FileBacking::prepare_with(&req, Tmpfile::Never).unwrap();
        b.commit().unwrap();
        assert!(b.committed());
        drop(b);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn with_tmpfile_the_file_has_no_name_until_commit() {
        let dir = TempDir::new_in("/tmp");
        let path = dir.join("guest-ram");
        let req = FileMapRequest::new("mem0", &path, 1 << 20);
        let mut b = FileBacking::prepare_with(&req, Tmpfile::Try).unwrap();
        assert!(b.pending.is_some(), "/tmp supports O_TMPFILE");
        assert!(!path.exists());
        b.commit().unwrap();
        assert!(path.exists());
        b.commit().unwrap();
        drop(b);
        assert_eq!(mode(&path), 0o600);
    }
}
