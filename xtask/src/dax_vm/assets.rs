//! Everything the guest needs that does not change from run to run: Debian
//! packages fetched with apt, the kernel (boot image and the few modules we
//! load), the unpacked userland, and the base initramfs built from them.
//! It all lives in one cache directory, so a warm machine never calls apt.

use super::util::{is_root, run_checked, which};
use anyhow::{bail, Context, Result};
use initramfs::{base_initramfs, unpack_userland};
use kernel::{kernel_package, prepare_kernel};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

mod initramfs;
mod kernel;

/// Packages unpacked into the guest. Besides busybox, ndctl and the two
/// mkfs tools, these are the shared libraries that those tools need; the
/// closure check in `add_tool` names any that goes missing.
const GUEST_PKGS: &[&str] = &[
    "busybox-static",
    "e2fsprogs",
    "xfsprogs",
    "ndctl",
    "libc6",
    "libext2fs2",
    "libcom-err2",
    "libblkid1",
    "libuuid1",
    "libinih1",
    "liburcu8",
    "libndctl6",
    "libdaxctl1",
    "libjson-c5",
    "libkeyutils1",
    "libiniparser1",
    "libudev1",
    "libkmod2",
    "libzstd1",
    "liblzma5",
    "libssl3",
];

/// Guest tools (file names; found in the unpacked packages' bin dirs).
const GUEST_TOOLS: &[&str] = &["mke2fs", "mkfs.xfs", "ndctl"];

/// Modules for every boot (NVDIMM bus, pmem block driver, crc32c for the
/// file systems' checksums), and per file system. Dependencies are added.
const COMMON_MODULES: &[&str] = &["nfit", "nd_pmem", "crc32c_generic"];
pub const FILE_SYSTEMS: &[&str] = &["ext4", "xfs"];

/// Bumped when the layout of the cache changes, so old entries are ignored.
const CACHE_FORMAT: &str = "qom-rs dax-vm cache v1";
const INIT_SCRIPT: &str = include_str!("init.sh");

/// Host commands we run, and the Debian package that provides each.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("dpkg-deb", "dpkg"),
    ("tar", "tar"),
    ("xz", "xz-utils"),
    ("apt-get", "apt"),
];

/// What a boot needs from the cache.
pub struct Assets {
    /// The cache root (also used for the KVM verdict).
    pub cache: PathBuf,
    pub kernel_pkg: String,
    /// vmlinux with a PVH entry when we could extract one, else the bzImage.
    pub boot_image: PathBuf,
    pub base_initrd: PathBuf,
    pub qemu: PathBuf,
}

/// `$QOM_DAXVM_CACHE`, else `$XDG_CACHE_HOME/qom-rs/dax-vm`, else
/// `~/.cache/qom-rs/dax-vm`.
pub fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("QOM_DAXVM_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME")
                .context("neither QOM_DAXVM_CACHE, XDG_CACHE_HOME nor HOME is set")?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(base.join("qom-rs").join("dax-vm"))
}

fn say(msg: &str) {
    eprintln!("[dax-vm] {msg}");
}

/// Fills the cache where needed and returns the paths a boot uses.
pub fn prepare() -> Result<Assets> {
    let cache = cache_root()?;
    fs::create_dir_all(&cache).with_context(|| format!("creating cache {}", cache.display()))?;
    // Two cold runs at once would unpack into the same directories; the
    // second one waits here and then finds everything done.
    let lock = File::create(cache.join(".lock")).context("creating the cache lock")?;
    lock.lock().context("locking the cache")?;

    let qemu = ensure_host_tools()?;
    let debs = cache.join("debs");
    fs::create_dir_all(&debs)?;
    let kernel_pkg = kernel_package(&cache, &debs)?;
    let kdir = cache.join("kernel").join(&kernel_pkg);
    if !kdir.join(".complete").exists() {
        prepare_kernel(&debs, &kernel_pkg, &kdir)?;
    }
    let userland = cache.join("userland");
    if !userland.join(".complete").exists() {
        unpack_userland(&debs, &userland)?;
    }
    let boot_image = fs::read_to_string(kdir.join("boot-image"))
        .map(|name| kdir.join(name.trim()))
        .context("kernel cache has no boot-image entry")?;
    let base_initrd = base_initramfs(&cache, &kernel_pkg, &kdir, &userland)?;
    Ok(Assets {
        cache,
        kernel_pkg,
        boot_image,
        base_initrd,
        qemu,
    })
}

/// Installs missing host packages (root only) and finds QEMU.
fn ensure_host_tools() -> Result<PathBuf> {
    let qemu_name = std::env::var("QOM_DAXVM_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    let mut missing: Vec<&str> = HOST_TOOLS
        .iter()
        .filter(|(tool, _)| which(tool).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if which(&qemu_name).is_none() {
        // bookworm's QEMU 7.2 has everything used here (NVDIMM with labels,
        // PVH boot); a newer one that is already installed is used as is.
        missing.push("qemu-system-x86");
    }
    if !missing.is_empty() {
        if !is_root() {
            bail!(
                "missing host packages: {}; install them with `apt-get install --no-install-recommends {}`",
                missing.join(" "),
                missing.join(" ")
            );
        }
        say(&format!("installing host packages: {}", missing.join(" ")));
        // A fresh machine may have no package lists at all: then install
        // cannot work before an update, so do that first.
        if !apt_has_lists() {
            run_checked(Command::new("apt-get").args(["update", "-q"]))?;
        }
        let install = |update: bool| -> Result<()> {
            if update {
                run_checked(Command::new("apt-get").args(["update", "-q"]))?;
            }
            run_checked(
                Command::new("apt-get")
                    .args(["install", "-y", "-q", "--no-install-recommends"])
                    .args(["-o", "DPkg::Lock::Timeout=300"])
                    .args(&missing)
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )
        };
        if install(false).is_err() {
            install(true)?;
        }
    }
    which(&qemu_name)
        .with_context(|| format!("{qemu_name} not found even after installing qemu-system-x86"))
}

/// Whether apt has any package list (a fresh image may have none, and then
/// nothing can be installed, downloaded or resolved before `apt-get update`).
fn apt_has_lists() -> bool {
    fs::read_dir("/var/lib/apt/lists")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
        .unwrap_or(false)
}

/// `apt-get update` as root when apt has no lists yet.
fn update_if_no_lists() -> Result<()> {
    if is_root() && !apt_has_lists() {
        say("apt has no package lists yet: apt-get update");
        run_checked(Command::new("apt-get").args(["update", "-q"]))?;
    }
    Ok(())
}

/// `apt-get download` of the packages not yet in `debs`; one `apt-get update`
/// and a retry if apt does not know them (stale or missing package lists).
fn fetch(debs: &Path, pkgs: &[&str]) -> Result<()> {
    let want: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| cached_deb(debs, p).is_none())
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    update_if_no_lists()?;
    say(&format!("apt-get download {}", want.join(" ")));
    let download = || {
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(debs).args(["download", "-q"]);
        if is_root() {
            // as root apt would hand the download to the _apt user, who
            // cannot write into our cache
            cmd.args(["-o", "APT::Sandbox::User=root"]);
        }
        run_checked(cmd.args(&want))
    };
    if let Err(first) = download() {
        if !is_root() {
            return Err(first.context("apt-get download failed (apt-get update needs root)"));
        }
        say("apt-get download failed; running apt-get update and retrying");
        run_checked(Command::new("apt-get").args(["update", "-q"]))?;
        download()?;
    }
    for p in &want {
        if cached_deb(debs, p).is_none() {
            bail!(
                "apt-get download {p} left no {p}_*.deb in {}",
                debs.display()
            );
        }
    }
    Ok(())
}

/// The newest cached `.deb` of a package.
fn cached_deb(debs: &Path, pkg: &str) -> Option<PathBuf> {
    let prefix = format!("{pkg}_");
    fs::read_dir(debs)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".deb")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}
