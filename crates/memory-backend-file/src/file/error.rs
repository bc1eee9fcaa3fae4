//! [`FileError`] and [`FileWarning`]: QEMU's texts for the file side.

use std::fmt;

use memory_backend::host::{strerror, Errno, HostError};

/// The hint QEMU appends when a private, writable backend cannot open its
/// file read-write but could open it read-only.
pub const EACCES_HINT: &str = "Consider opening the backing store read-only but still creating \
writable RAM using '-object memory-backend-file,readonly=on,rom=off...' (see \"VM templating\" \
documentation)";

/// Why a file backend could not be set up. `Display` gives QEMU's text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// "can't create backend with size 0"
    SizeZero,
    /// "mem-path property not set"
    MemPathNotSet,
    /// `rom=on` without `readonly=on`.
    RomOnNeedsReadonly,
    /// `rom=off` with `readonly=on` and `share=on`.
    RomOffReadonlyShared,
    /// Opening or creating the backing file failed.
    Open {
        /// `mem-path` as given.
        path: String,
        /// The failing call's errno.
        errno: Errno,
        /// [`EACCES_HINT`] when it applies (QEMU prints it on its own line;
        /// it is not part of `Display`).
        hint: Option<&'static str>,
    },
    /// A file created unnamed could not be given its name once the backend
    /// was complete. With `EEXIST`, someone else created a file under
    /// that name while the backend was being set up; that file is left as
    /// it is. QEMU has no such step: it names the file when it creates it.
    Name {
        /// `mem-path` as given.
        path: String,
        /// What `linkat` returned.
        errno: Errno,
    },
    /// An existing non-empty file is smaller than `offset + size`.
    TooSmall {
        /// The region name (the object id).
        name: String,
        /// The file's size.
        file_size: u64,
        /// `size`, rounded up to the host page size.
        size: u64,
        /// `offset`.
        offset: u64,
    },
    /// `align` is not a multiple of the page size.
    AlignNotPageMultiple {
        /// `align`.
        align: u64,
        /// The page size of the file.
        page_size: u64,
    },
    /// `align` is not a power of two.
    AlignNotPowerOfTwo(u64),
    /// `offset` is not a multiple of the page size.
    OffsetNotPageMultiple {
        /// `offset`.
        offset: u64,
        /// The page size of the file.
        page_size: u64,
    },
    /// `size` is smaller than one page.
    SizeBelowPageSize {
        /// `size`, rounded up to the host page size.
        size: u64,
        /// The page size of the file.
        page_size: u64,
    },
    /// The file could not be sized to `offset + size` and is too short to
    /// be mapped without SIGBUS (QEMU maps it anyway).
    Resize {
        /// `mem-path` as given.
        path: String,
        /// The length the file needed.
        len: u64,
        /// What ftruncate returned.
        errno: Errno,
    },
    /// Mapping or a later host step failed.
    Host(HostError),
    /// A failure that QEMU prints after warnings of its own (a failed
    /// `ftruncate` of a new file, then the mmap error).
    AfterWarnings {
        /// What QEMU printed before the error, in order.
        warnings: Vec<FileWarning>,
        /// The error itself.
        error: Box<FileError>,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::SizeZero => f.write_str("can't create backend with size 0"),
            FileError::MemPathNotSet => f.write_str("mem-path property not set"),
            FileError::RomOnNeedsReadonly => {
                f.write_str("property 'rom' = 'on' is not supported with 'readonly' = 'off'")
            }
            FileError::RomOffReadonlyShared => f.write_str(
                "property 'rom' = 'off' is incompatible with 'readonly' = 'on' and 'share' = 'on'",
            ),
            FileError::Open { path, errno, .. } => write!(
                f,
                "can't open backing store {path} for guest RAM: {}",
                strerror(*errno)
            ),
            FileError::Name { path, errno } => {
                // QEMU's wording for a backing store it cannot open, with
                // the reason why a file that did not exist now does.
                write!(
                    f,
                    "can't create backing store {path} for guest RAM: {}",
                    strerror(*errno)
                )?;
                if *errno == Errno::EXIST {
                    f.write_str(
                        " (another process created it while the memory was being prepared; \
                         it was left as it is)",
                    )?;
                }
                Ok(())
            }
            FileError::TooSmall {
                name,
                file_size,
                size,
                offset,
            } => write!(
                f,
                "{name} backing store size 0x{file_size:x} is too small for 'size' option \
                 0x{size:x} plus 'offset' option 0x{offset:x}"
            ),
            FileError::AlignNotPageMultiple { align, page_size } => write!(
                f,
                "alignment 0x{align:x} must be multiples of page size 0x{page_size:x}"
            ),
            FileError::AlignNotPowerOfTwo(a) => {
                write!(f, "alignment 0x{a:x} must be a power of two")
            }
            FileError::OffsetNotPageMultiple { offset, page_size } => write!(
                f,
                "offset 0x{offset:x} must be multiples of page size 0x{page_size:x}"
            ),
            FileError::SizeBelowPageSize { size, page_size } => write!(
                f,
                "memory size 0x{size:x} must be equal to or larger than page size 0x{page_size:x}"
            ),
            FileError::Resize { path, len, errno } => write!(
                f,
                "can't resize backing store {path} to 0x{len:x} bytes: {}",
                strerror(*errno)
            ),
            FileError::Host(e) => e.fmt(f),
            FileError::AfterWarnings { error, .. } => error.fmt(f),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Host(e) => Some(e),
            FileError::AfterWarnings { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

impl From<HostError> for FileError {
    fn from(e: HostError) -> Self {
        FileError::Host(e)
    }
}

impl FileError {
    /// A hint to print after the message (QEMU's `error_append_hint`).
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            FileError::Open { hint, .. } => *hint,
            FileError::AfterWarnings { error, .. } => error.hint(),
            _ => None,
        }
    }

    /// The warnings to print before this error.
    pub fn warnings(&self) -> &[FileWarning] {
        match self {
            FileError::AfterWarnings { warnings, .. } => warnings,
            _ => &[],
        }
    }
}

/// Something QEMU reports on stderr while still creating the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileWarning {
    /// Sizing a new or empty file failed; mapping went ahead.
    /// `Display`: `ftruncate: <strerror>` (QEMU's `perror`).
    Truncate(Errno),
    /// `pmem=on`, `share=on`, `sync=auto`, and the file refused MAP_SYNC
    /// (not DAX). `Display` is QEMU's raw stderr line, starting with
    /// "Warning: ".
    PersistenceUnavailable {
        /// The file, as `/proc/self/fd/N` names it.
        path: String,
    },
    /// Follows [`FileWarning::PersistenceUnavailable`]; QEMU prints it with
    /// `warn_report`, i.e. prefixed with `<program>: warning: `.
    NonDaxPmemDeprecated,
}

impl fmt::Display for FileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileWarning::Truncate(e) => write!(f, "ftruncate: {}", strerror(*e)),
            FileWarning::PersistenceUnavailable { path } => write!(
                f,
                "Warning: requesting persistence across crashes for backend file {path} failed. \
                 Proceeding without persistence, data might become corrupted in case of host crash."
            ),
            FileWarning::NonDaxPmemDeprecated => {
                f.write_str("Using non DAX backing file with 'pmem=on' option is deprecated")
            }
        }
    }
}
