//! Opening the backing file the way QEMU's `file_ram_open` does, and
//! finding its size.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use memory_backend::host::Errno;
use rustix::fs::{FileType, Mode, OFlags, SeekFrom};

use super::error::{FileError, EACCES_HINT};

/// How the backing file came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOrigin {
    /// `mem-path` named an existing file (or device).
    Existing,
    /// `mem-path` did not exist and was created (0644). Removed again if
    /// setting up the backend fails.
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
    pub(crate) fn disarm(mut self) {
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

/// An open backing file.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) fd: OwnedFd,
    pub(crate) origin: FileOrigin,
}

fn open_error(path: &Path, errno: Errno, hint: Option<&'static str>) -> FileError {
    FileError::Open {
        path: path.display().to_string(),
        errno,
        hint,
    }
}

/// Opens `path` read-write (or read-only), creating it when missing and
/// using an unnamed temporary file when it is a directory. Read-only mode
/// never creates anything. `region_name` names the temporary file.
pub(crate) fn open_backing(
    path: &Path,
    region_name: &str,
    readonly: bool,
    share: bool,
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
                });
            }
            Err(Errno::NOENT) if !readonly => {
                let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
                match rustix::fs::open(path, flags, Mode::from_raw_mode(0o644)) {
                    Ok(fd) => {
                        return Ok(Opened {
                            fd,
                            origin: FileOrigin::Created,
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

/// An unnamed file in `dir`: `O_TMPFILE` where the file system supports
/// it, otherwise `qemu_back_mem.<name>.XXXXXX` created exclusively and
/// unlinked at once.
fn temp_file(dir: &Path, region_name: &str) -> Result<OwnedFd, Errno> {
    let mode = Mode::from_raw_mode(0o600);
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
