//! A writer for the kernel's initramfs format (cpio "newc", uncompressed).
//!
//! Why our own instead of the `cpio` tool: the format is a 110-byte ASCII
//! header plus padding, the host then needs no `cpio` package, and we control
//! every field (owner root, mtime 0), so the same inputs give the same bytes
//! and the cached base archive is reproducible. We skip compression: under
//! TCG the guest would spend longer inflating it than QEMU spends copying it.

use anyhow::{bail, Result};
use std::io::Write;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Appends entries to an archive in memory.
pub struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
}

impl Cpio {
    pub fn new() -> Self {
        Self {
            out: Vec::new(),
            next_ino: 1,
        }
    }

    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.entry_dev(path, mode, data, (0, 0))
    }

    fn entry_dev(&mut self, path: &str, mode: u32, data: &[u8], rdev: (u32, u32)) -> Result<()> {
        let path = path.trim_start_matches('/');
        if path.is_empty() || path.contains('\0') {
            bail!("bad archive path {path:?}");
        }
        let Ok(size) = u32::try_from(data.len()) else {
            bail!("{path} is too large for a newc archive");
        };
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
        // devminor, rdevmajor, rdevminor, namesize (with NUL), check
        write!(
            self.out,
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            0,
            0,
            0,
            rdev.0,
            rdev.1,
            path.len() + 1,
            0
        )?;
        self.out.extend_from_slice(path.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
        Ok(())
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    pub fn dir(&mut self, path: &str) -> Result<()> {
        self.entry(path, S_IFDIR | 0o755, &[])
    }

    pub fn file(&mut self, path: &str, executable: bool, data: &[u8]) -> Result<()> {
        let perm = if executable { 0o755 } else { 0o644 };
        self.entry(path, S_IFREG | perm, data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.entry(path, S_IFLNK | 0o777, target.as_bytes())
    }

    /// A character device node. The kernel opens `/dev/console` for PID 1
    /// before our init can mount devtmpfs, so the archive carries that node.
    pub fn chardev(&mut self, path: &str, major: u32, minor: u32) -> Result<()> {
        self.entry_dev(path, S_IFCHR | 0o600, &[], (major, minor))
    }

    /// Ends the archive. The kernel accepts several archives back to back,
    /// which is how the per-run part is appended to the cached base.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.entry("TRAILER!!!", 0, &[])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_newc() {
        let mut c = Cpio::new();
        c.dir("/etc").unwrap();
        c.file("etc/x", false, b"hello").unwrap();
        let bytes = c.finish().unwrap();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        // the second entry starts 4-aligned
        let second = 116; // 110-byte header + "etc\0", padded to 4
        assert_eq!(&bytes[second..second + 6], b"070701");
        assert_eq!(&bytes[second + 54..second + 62], b"00000005"); // filesize
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn refuses_bad_paths() {
        let mut c = Cpio::new();
        assert!(c.file("/", false, b"").is_err());
        assert!(c.file("a\0b", false, b"").is_err());
    }
}
