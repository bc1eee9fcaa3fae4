//! Opening the backing file the way QEMU's `file_ram_open` does, and
//! finding its size.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use memory_backend::host::{fd_path, Errno};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, SeekFrom, CWD};

use super::error::{FileError, EACCES_HINT};

/// The mode of every file we create: guest memory is nobody else's
/// business (QEMU creates `0644`, which the umask usually leaves readable
/// by every local user). An operator who wants another mode creates the
/// file beforehand; an existing file is used as it is.
pub(crate) const CREATED_MODE: u32 = 0o600;

/// How the backing file came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOrigin {
    /// `mem-path` named an existing file (or device).
    Existing,
    /// `mem-path` did not exist and was created (mode `0600`). Where the
    /// file system allows it, the file is created unnamed and only gets
    /// its name once the backend is complete; otherwise it is named at
    /// once and removed again if setting up the backend fails.
    Created,
    /// `mem-path` is a directory: an unnamed temporary file in it, gone
    /// when the backend goes.
    Temporary,
}

/// Removes a file that we created unless disarmed.
#[derive(Debug)]
pub(crate) struct CreatedGuard {
    path: Option<PathBuf>,
}

impl CreatedGuard {
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        CreatedGuard { path }
    }

    /// Keeps the file: setting up succeeded.
    pub(crate) fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for CreatedGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = rustix::fs::unlink(&p);
        }
    }
}

/// The name an unnamed (`O_TMPFILE`) file will get: `name` in the
/// directory `dir`, held open so that the link lands in the directory the
/// file was created in even if that directory is renamed meanwhile.
#[derive(Debug)]
pub(crate) struct PendingName {
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
}

impl PendingName {
    /// Gives the unnamed file `fd` its name. Never replaces a file that
    /// took the name in the meantime: `linkat` fails with `EEXIST` then,
    /// and the other file is left as it is.
    pub(crate) fn link(&self, fd: BorrowedFd<'_>) -> Result<(), FileError> {
        // Through /proc, linkat needs no privilege; AT_EMPTY_PATH would
        // need CAP_DAC_READ_SEARCH, so it is only the way out when /proc
        // is not mounted.
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let linked = match rustix::fs::linkat(
            CWD,
            proc_path.as_str(),
            &self.dir,
            self.name.as_os_str(),
            AtFlags::SYMLINK_FOLLOW,
        ) {
            Err(Errno::NOENT) if !Path::new("/proc/self/fd").exists() => rustix::fs::linkat(
                fd,
                "",
                &self.dir,
                self.name.as_os_str(),
                AtFlags::EMPTY_PATH,
            ),
            r => r,
        };
        linked.map_err(|errno| FileError::Name {
            path: self.path.display().to_string(),
            errno,
        })
    }

    /// Where the file will appear, as `/proc/self/fd` would name it once
    /// linked (for messages that QEMU words with that path).
    pub(crate) fn display_path(&self) -> String {
        Path::new(&fd_path(&self.dir))
            .join(&self.name)
            .display()
            .to_string()
    }
}

/// An open backing file.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) fd: OwnedFd,
    pub(crate) origin: FileOrigin,
    /// Set for a file created unnamed: the name to give it at the end.
    pub(crate) pending: Option<PendingName>,
}

fn open_error(path: &Path, errno: Errno, hint: Option<&'static str>) -> FileError {
    FileError::Open {
        path: path.display().to_string(),
        errno,
        hint,
    }
}

/// Whether a missing file may be created unnamed first. Only tests turn
/// it off, to reach the path taken on file systems without `O_TMPFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tmpfile {
    Try,
    #[cfg_attr(not(test), allow(dead_code))]
    Never,
}

/// Opens `path` read-write (or read-only), creating it when missing and
/// using an unnamed temporary file when it is a directory. Read-only mode
/// never creates anything. `region_name` names the temporary file.
///
/// A missing file is created unnamed in its directory where the file
/// system supports `O_TMPFILE` ([`Opened::pending`] then holds its name);
/// elsewhere it is created under its name at once, as QEMU does.
pub(crate) fn open_backing(
    path: &Path,
    region_name: &str,
    readonly: bool,
    share: bool,
    tmpfile: Tmpfile,
) -> Result<Opened, FileError> {
    let access = if readonly {
        OFlags::RDONLY
    } else {
        OFlags::RDWR
    };
    loop {
        match rustix::fs::open(path, access | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => {
                if readonly {
                    let st = rustix::fs::fstat(&fd).map_err(|e| open_error(path, e, None))?;
                    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                        return Err(open_error(path, Errno::ISDIR, None));
                    }
                }
                return Ok(Opened {
                    fd,
                    origin: FileOrigin::Existing,
                    pending: None,
                });
            }
            Err(Errno::NOENT) if !readonly => {
                if tmpfile == Tmpfile::Try {
                    if let Some(opened) = create_unnamed(path)? {
                        return Ok(opened);
                    }
                }
                let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
                match rustix::fs::open(path, flags, Mode::from_raw_mode(CREATED_MODE)) {
                    Ok(fd) => {
                        return Ok(Opened {
                            fd,
                            origin: FileOrigin::Created,
                            pending: None,
                        })
                    }
                    // Someone created it meanwhile, or a signal: start over.
                    Err(Errno::EXIST | Errno::INTR) => continue,
                    Err(e) => return Err(open_error(path, e, None)),
                }
            }
            Err(Errno::ISDIR) if !readonly => {
                let fd = temp_file(path, region_name).map_err(|e| open_error(path, e, None))?;
                return Ok(Opened {
                    fd,
                    origin: FileOrigin::Temporary,
                    pending: None,
                });
            }
            Err(Errno::EXIST | Errno::INTR) => continue,
            Err(e) => {
                let hint = (e == Errno::ACCESS
                    && !share
                    && !readonly
                    && rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                        .is_ok())
                .then_some(EACCES_HINT);
                return Err(open_error(path, e, hint));
            }
        }
    }
}

/// Creates the file that `path` names as an unnamed `O_TMPFILE` in its
/// directory. `Ok(None)` when the file system cannot do that (open(2)
/// lists EOPNOTSUPP, and EISDIR or EINVAL from kernels or file systems
/// that do not know the flag), so the caller creates it the old way.
fn create_unnamed(path: &Path) -> Result<Option<Opened>, FileError> {
    // A path without a last component ("..") cannot be linked by name;
    // the ordinary create reports what is wrong with it.
    let Some(name) = path.file_name() else {
        return Ok(None);
    };
    let dir_path = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = rustix::fs::open(
        dir_path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| open_error(path, e, None))?;
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    loop {
        match rustix::fs::openat(&dir, ".", flags, Mode::from_raw_mode(CREATED_MODE)) {
            Ok(fd) => {
                return Ok(Some(Opened {
                    fd,
                    origin: FileOrigin::Created,
                    pending: Some(PendingName {
                        dir,
                        name: name.to_owned(),
                        path: path.to_owned(),
                    }),
                }))
            }
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => return Ok(None),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(open_error(path, e, None)),
        }
    }
}

/// An unnamed file in `dir`: `O_TMPFILE` where the file system supports
/// it, otherwise `qemu_back_mem.<name>.XXXXXX` created exclusively and
/// unlinked at once.
fn temp_file(dir: &Path, region_name: &str) -> Result<OwnedFd, Errno> {
    let mode = Mode::from_raw_mode(CREATED_MODE);
    if let Ok(fd) = rustix::fs::open(dir, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, mode) {
        return Ok(fd);
    }
    let sanitized = region_name.replace('/', "_");
    let mut last = Errno::EXIST;
    for attempt in 0..100u32 {
        let name = format!("qemu_back_mem.{sanitized}.{}", random_suffix(attempt));
        let p = dir.join(name);
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        match rustix::fs::open(&p, flags, mode) {
            Ok(fd) => {
                let _ = rustix::fs::unlink(&p);
                return Ok(fd);
            }
            Err(e @ (Errno::EXIST | Errno::INTR)) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Six characters from `[A-Za-z0-9]`, like mkstemp's `XXXXXX`.
fn random_suffix(attempt: u32) -> String {
    use std::hash::{BuildHasher, Hasher};
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    let mut v = h.finish();
    (0..6)
        .map(|_| {
            let c = CHARS[(v % CHARS.len() as u64) as usize] as char;
            v /= CHARS.len() as u64;
            c
        })
        .collect()
}

/// The size of the backing file: the device size for device DAX (from
/// `/sys/dev/char/M:m/size`), otherwise the end of the file. 0 when it
/// cannot be found.
pub(crate) fn file_size(fd: BorrowedFd<'_>) -> u64 {
    if let Ok(st) = rustix::fs::fstat(fd) {
        if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice {
            let dev = st.st_rdev;
            let base = format!(
                "/sys/dev/char/{}:{}",
                rustix::fs::major(dev),
                rustix::fs::minor(dev)
            );
            let is_dax = std::fs::read_link(format!("{base}/subsystem"))
                .map(|l| l.to_string_lossy().ends_with("/dax"))
                .unwrap_or(false);
            if is_dax {
                return std::fs::read_to_string(format!("{base}/size"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    rustix::fs::seek(fd.as_fd(), SeekFrom::End(0)).unwrap_or(0)
}
