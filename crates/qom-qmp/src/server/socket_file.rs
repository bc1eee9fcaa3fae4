//! The socket file: binding a Unix socket at a path that only the owner
//! may use, replacing a stale one, and the errors of doing so.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Errors of the socket transport.
#[derive(Debug)]
pub enum ServerError {
    /// Another live server is listening on the path.
    InUse(PathBuf),
    /// The path exists and is not a socket; it is left alone.
    NotASocket(PathBuf),
    /// Any other I/O error, with what was being done.
    Io {
        /// What failed.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::InUse(p) => {
                write!(f, "{}: another server is listening there", p.display())
            }
            ServerError::NotASocket(p) => write!(f, "{}: exists and is not a socket", p.display()),
            ServerError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}

/// Create a listening Unix socket at `path` that only the owner may use
/// (mode 0600), without a window in which it is reachable with looser
/// permissions and without touching the process umask: the socket is bound
/// inside a fresh private (0700) directory next to `path`, set to 0600, then
/// renamed into place.
///
/// A stale socket at `path` (nobody accepting) is replaced; a live one gives
/// [`ServerError::InUse`]; anything that is not a socket gives
/// [`ServerError::NotASocket`] and is left alone.
pub fn bind_unix(path: &Path) -> Result<BoundSocket, ServerError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse(path.to_path_buf()));
            }
        }
        Ok(_) => return Err(ServerError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("{}", path.display()))(e)),
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = private_dir(&parent)?;
    let tmp = dir.join("s");
    let result = (|| {
        let listener =
            UnixListener::bind(&tmp).map_err(io_err(format!("binding {}", tmp.display())))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .map_err(io_err(format!("chmod {}", tmp.display())))?;
        fs::rename(&tmp, path).map_err(io_err(format!("renaming socket to {}", path.display())))?;
        Ok(BoundSocket {
            listener,
            path: path.to_path_buf(),
        })
    })();
    let _ = fs::remove_file(&tmp);
    let _ = fs::remove_dir(&dir);
    result
}

/// A listening socket made by [`bind_unix`], with the path it lives at.
#[derive(Debug)]
pub struct BoundSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl BoundSocket {
    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listener and its path. Note that the listener's own
    /// `local_addr()` names the temporary place it was bound at.
    pub fn into_parts(self) -> (UnixListener, PathBuf) {
        (self.listener, self.path)
    }
}

fn private_dir(parent: &Path) -> Result<PathBuf, ServerError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            ".qmp{:x}",
            (u64::from(std::process::id()) << 24) ^ (u64::from(nanos) << 8) ^ n
        );
        let dir = parent.join(name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(io_err(format!(
                    "creating a directory in {}",
                    parent.display()
                ))(e))
            }
        }
    }
    Err(io_err("creating a private directory")(
        last.unwrap_or_else(|| io::Error::other("no name available")),
    ))
}
