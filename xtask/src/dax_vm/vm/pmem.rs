//! The NVDIMM's backing file: a persistent image or a scratch one.

use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// NVDIMM label area, taken by QEMU from the end of the backing file.
pub(super) const LABEL_SIZE: u64 = 128 << 10;
const DEFAULT_PMEM_MIB: u64 = 512;
pub(super) const MIB: u64 = 1 << 20;

/// The NVDIMM's backing file, locked for the whole run.
pub(super) struct Pmem {
    pub(super) path: PathBuf,
    pub(super) size: u64,
    pub(super) existing: bool,
    pub(super) file: File,
}

impl Pmem {
    /// A persistent image: absent, empty or all zero means new (the guest
    /// formats it); anything else must be one a previous run set up.
    pub(super) fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening the pmem image {}", path.display()))?;
        if file.try_lock().is_err() {
            bail!("{} is in use by another dax-vm run", path.display());
        }
        let len = file.metadata()?.len();
        if len == 0 {
            file.set_len(DEFAULT_PMEM_MIB * MIB)?;
            return Ok(Self {
                path: path.to_path_buf(),
                size: DEFAULT_PMEM_MIB * MIB,
                existing: false,
                file,
            });
        }
        if len % (2 * MIB) != 0 || len < 64 * MIB {
            bail!(
                "{} is {len} bytes; a pmem image is a multiple of 2 MiB and at least 64 MiB",
                path.display()
            );
        }
        let existing = !all_zero(&mut file)?;
        if existing {
            // The label index must sit where our label size puts it, or the
            // guest would see a raw namespace and we would refuse it there
            // anyway, after a whole boot.
            let mut head = vec![0u8; 4096];
            file.seek(SeekFrom::Start(len - LABEL_SIZE))?;
            file.read_exact(&mut head)?;
            if !head.windows(15).any(|w| w == b"NAMESPACE_INDEX") {
                bail!(
                    "{} holds data but no NVDIMM label index in its last 128 KiB: not a dax-vm image; \
                     delete it to start over",
                    path.display()
                );
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            size: len,
            existing,
            file,
        })
    }

    pub(super) fn scratch(path: &Path) -> Result<Self> {
        let file = File::create(path)?;
        file.set_len(DEFAULT_PMEM_MIB * MIB)?;
        Ok(Self {
            path: path.to_path_buf(),
            size: DEFAULT_PMEM_MIB * MIB,
            existing: false,
            file,
        })
    }

    /// Makes a new image all-zero again (sparse, same inode so the lock
    /// holds), so that a boot that died during setup leaves nothing that a
    /// retry would mistake for a set-up image.
    pub(super) fn blank(&self) -> Result<()> {
        if !self.existing {
            self.file.set_len(0)?;
            self.file.set_len(self.size)?;
        }
        Ok(())
    }

    pub(super) fn state(&self) -> &'static str {
        if self.existing {
            "existing"
        } else {
            "new"
        }
    }
}

fn all_zero(file: &mut File) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    if file.metadata()?.blocks() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}
