//! Everything the guest needs that does not change from run to run: Debian
//! packages fetched with apt, the kernel (boot image and the few modules we
//! load), the unpacked userland, and the base initramfs built from them.
//! It all lives in one cache directory, so a warm machine never calls apt.

use super::cpio::Cpio;
use super::elf::{self, Elf};
use super::util::{fnv1a, is_root, run_checked, which};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// The concrete kernel package: `$QOM_DAXVM_KERNEL_PKG`, or what
/// `linux-image-amd64` depends on, resolved once and remembered so that a
/// warm cache never asks apt.
fn kernel_package(cache: &Path, _debs: &Path) -> Result<String> {
    if let Ok(pkg) = std::env::var("QOM_DAXVM_KERNEL_PKG") {
        if !pkg.is_empty() {
            return Ok(pkg);
        }
    }
    let remembered = cache.join("kernel-pkg");
    if let Ok(pkg) = fs::read_to_string(&remembered) {
        let pkg = pkg.trim();
        if !pkg.is_empty() {
            return Ok(pkg.to_owned());
        }
    }
    update_if_no_lists()?;
    let resolve = || -> Result<Option<String>> {
        let out = Command::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .stderr(Stdio::null())
            .output()
            .context("running apt-cache")?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|p| p.starts_with("linux-image-"))
                .map(str::to_owned)
        }))
    };
    let pkg = match resolve()? {
        Some(p) => p,
        None if is_root() => {
            run_checked(Command::new("apt-get").args(["update", "-q"]))?;
            resolve()?.context("apt-cache cannot resolve linux-image-amd64")?
        }
        None => bail!("apt-cache cannot resolve linux-image-amd64 (run apt-get update as root)"),
    };
    fs::write(&remembered, format!("{pkg}\n"))?;
    Ok(pkg)
}

/// Unpacks only the boot files and the module subtrees we can need from the
/// kernel package (the whole module tree is ~400 MB), computes the load order
/// of our modules, keeps those, and extracts a PVH-bootable vmlinux.
fn prepare_kernel(debs: &Path, pkg: &str, kdir: &Path) -> Result<()> {
    fetch(debs, &[pkg])?;
    let deb = cached_deb(debs, pkg).context("kernel .deb vanished")?;
    say(&format!("unpacking {pkg}"));
    let tmp = kdir.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(kdir);
    let x = tmp.join("x");
    fs::create_dir_all(&x)?;
    // dpkg-deb | tar, so that tar can pick members by pattern
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("running dpkg-deb")?;
    let tar_status = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&x)
        .arg("--wildcards")
        .args([
            "./boot/vmlinuz-*",
            "*/modules.builtin",
            "*/kernel/drivers/nvdimm/*",
            "*/kernel/drivers/acpi/nfit/*",
            "*/kernel/drivers/dax/*",
            "*/kernel/fs/*",
            "*/kernel/lib/*",
            "*/kernel/crypto/*",
        ])
        .stdin(dpkg.stdout.take().context("dpkg-deb stdout")?)
        .status()
        .context("running tar")?;
    let dpkg_status = dpkg.wait()?;
    if !tar_status.success() || !dpkg_status.success() {
        bail!(
            "unpacking {} failed (dpkg-deb {dpkg_status}, tar {tar_status})",
            deb.display()
        );
    }

    let vmlinuz = fs::read_dir(x.join("boot"))?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        .context("no boot/vmlinuz-* in the kernel package")?
        .path();
    let out = tmp.join("out");
    fs::create_dir_all(out.join("modules"))?;
    fs::copy(&vmlinuz, out.join("vmlinuz"))?;
    let boot_image = match extract_vmlinux(&vmlinuz, &out.join("vmlinux"), &tmp) {
        Ok(()) => "vmlinux",
        Err(e) => {
            say(&format!(
                "no PVH vmlinux ({e:#}); the guest boots the slower bzImage"
            ));
            "vmlinuz"
        }
    };
    fs::write(out.join("boot-image"), boot_image)?;

    let modules = index_modules(&x)?;
    let mut loaded = BTreeSet::new();
    let common = load_order(&modules, COMMON_MODULES, &mut loaded)?;
    write_module_list(&out, "common", &common, &modules)?;
    for fs_name in FILE_SYSTEMS {
        let mut seen = loaded.clone();
        let order = load_order(&modules, &[fs_name], &mut seen)?;
        write_module_list(&out, fs_name, &order, &modules)?;
    }
    fs::write(out.join(".complete"), "")?;
    fs::rename(&out, kdir).with_context(|| format!("moving the kernel into {}", kdir.display()))?;
    let _ = fs::remove_dir_all(&tmp);
    Ok(())
}

/// A loadable module found in the unpacked package.
struct Module {
    path: PathBuf,
    depends: Vec<String>,
}

/// Kernel module names use `_` and `-` interchangeably.
fn mod_key(name: &str) -> String {
    name.replace('-', "_")
}

/// Indexes every module under the unpacked tree; `None` marks a built-in.
fn index_modules(root: &Path) -> Result<BTreeMap<String, Option<Module>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type()?.is_dir() {
                stack.push(path);
            } else if name == "modules.builtin" {
                for line in fs::read_to_string(&path)?.lines() {
                    if let Some(base) = line.rsplit('/').next().and_then(|b| b.strip_suffix(".ko"))
                    {
                        out.entry(mod_key(base)).or_insert(None);
                    }
                }
            } else if let Some(base) = name.split(".ko").next().filter(|_| name.contains(".ko")) {
                out.insert(
                    mod_key(base),
                    Some(Module {
                        path,
                        depends: Vec::new(),
                    }),
                );
            }
        }
    }
    for m in out.values_mut().flatten() {
        let ko = read_module(&m.path)?;
        m.depends =
            elf::module_depends(&ko).with_context(|| format!("reading {}", m.path.display()))?;
    }
    Ok(out)
}

/// Module bytes, decompressing `.ko.xz` / `.ko.zst` (newer Debian kernels).
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else if name.ends_with(".gz") {
        "gzip"
    } else {
        return fs::read(path).with_context(|| format!("reading {name}"));
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .with_context(|| format!("running {tool} -dc {name}"))?;
    if !out.status.success() {
        bail!("{tool} -dc {name} failed");
    }
    Ok(out.stdout)
}

/// Dependencies first, each module once; modules already in `seen` (loaded
/// by an earlier list) or built in are left out.
fn load_order(
    modules: &BTreeMap<String, Option<Module>>,
    roots: &[&str],
    seen: &mut BTreeSet<String>,
) -> Result<Vec<String>> {
    fn visit(
        key: &str,
        modules: &BTreeMap<String, Option<Module>>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) -> Result<()> {
        if depth > 64 {
            bail!("module dependency chain too deep at {key}");
        }
        if !seen.insert(key.to_owned()) {
            return Ok(());
        }
        match modules.get(key) {
            None => bail!(
                "kernel module {key} is neither built in nor in the unpacked part of the kernel package \
                 (extend the tar patterns in prepare_kernel)"
            ),
            Some(None) => Ok(()),
            Some(Some(m)) => {
                for dep in &m.depends {
                    visit(&mod_key(dep), modules, seen, out, depth + 1)?;
                }
                out.push(key.to_owned());
                Ok(())
            }
        }
    }
    let mut out = Vec::new();
    for r in roots {
        visit(&mod_key(r), modules, seen, &mut out, 0)?;
    }
    Ok(out)
}

fn write_module_list(
    out: &Path,
    list: &str,
    order: &[String],
    modules: &BTreeMap<String, Option<Module>>,
) -> Result<()> {
    let mut names = String::new();
    for key in order {
        if let Some(Some(m)) = modules.get(key) {
            fs::write(
                out.join("modules").join(format!("{key}.ko")),
                read_module(&m.path)?,
            )?;
            names.push_str(&format!("{key}.ko\n"));
        }
    }
    fs::write(out.join(format!("modules.{list}")), names)?;
    Ok(())
}

/// Pulls the vmlinux ELF out of a bzImage, using the payload location the
/// boot protocol header gives (no magic scanning), and keeps it only if it
/// has a PVH entry: QEMU then loads it directly, skipping the firmware's
/// option ROM and the in-guest decompressor, several seconds under TCG.
fn extract_vmlinux(bzimage: &Path, out: &Path, tmp: &Path) -> Result<()> {
    let img = fs::read(bzimage)?;
    let byte = |off: usize| img.get(off).copied().context("bzImage header truncated");
    let word = |off: usize| -> Result<usize> {
        let b = img.get(off..off + 4).context("bzImage header truncated")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if img.get(0x202..0x206) != Some(b"HdrS") {
        bail!("not a bzImage");
    }
    let version = u16::from(byte(0x206)?) | (u16::from(byte(0x207)?) << 8);
    if version < 0x208 {
        bail!("boot protocol {version:#x} has no payload fields");
    }
    let setup_sects = match byte(0x1f1)? {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + word(0x248)?;
    let payload = img
        .get(start..start + word(0x24c)?)
        .context("payload outside the bzImage")?;
    let tool: &[&str] = if payload.starts_with(b"\xfd7zXZ\0") {
        &["xz", "-dc", "--single-stream"]
    } else if payload.starts_with(b"\x28\xb5\x2f\xfd") {
        &["zstd", "-dcq"]
    } else if payload.starts_with(b"\x1f\x8b") {
        &["gzip", "-dc"]
    } else {
        bail!("unknown kernel payload compression");
    };
    let packed = tmp.join("payload");
    fs::write(&packed, payload)?;
    // The payload may carry trailing bytes (the uncompressed size) that make
    // some decompressors exit non-zero after writing everything, so the
    // result is judged by parsing it, not by the exit status.
    let _ = Command::new(tool[0])
        .args(&tool[1..])
        .arg(&packed)
        .stdout(File::create(out)?)
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", tool[0]))?;
    let vmlinux = fs::read(out)?;
    let pvh = Elf::parse(&vmlinux)
        .and_then(|e| e.has_pvh_entry())
        .unwrap_or(false);
    if !pvh {
        let _ = fs::remove_file(out);
        bail!("the decompressed kernel has no PVH entry note");
    }
    Ok(())
}

fn unpack_userland(debs: &Path, userland: &Path) -> Result<()> {
    fetch(debs, GUEST_PKGS)?;
    say("unpacking guest userland");
    let _ = fs::remove_dir_all(userland);
    let tmp = userland.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let mut versions = String::new();
    for p in GUEST_PKGS {
        let deb = cached_deb(debs, p).with_context(|| format!("{p}.deb vanished"))?;
        run_checked(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
        versions.push_str(&format!(
            "{}\n",
            deb.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    fs::write(tmp.join(".debs"), versions)?;
    fs::write(tmp.join(".complete"), "")?;
    fs::rename(&tmp, userland)?;
    Ok(())
}

/// Reads a file inside an unpacked tree, resolving symlinks (absolute ones
/// included) inside that tree rather than on the host.
fn read_in_root(root: &Path, rel: &str) -> Result<Vec<u8>> {
    let mut rel = PathBuf::from(rel.trim_start_matches('/'));
    for _ in 0..16 {
        let p = root.join(&rel);
        let meta =
            fs::symlink_metadata(&p).with_context(|| format!("{} not found", p.display()))?;
        if !meta.file_type().is_symlink() {
            return fs::read(&p).with_context(|| format!("reading {}", p.display()));
        }
        let target = fs::read_link(&p)?;
        rel = if target.is_absolute() {
            target.strip_prefix("/")?.to_path_buf()
        } else {
            rel.parent().unwrap_or(Path::new("")).join(target)
        };
    }
    bail!("too many symlinks at {}", rel.display())
}

const LIB_DIRS: &[&str] = &["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"];
const BIN_DIRS: &[&str] = &["sbin", "usr/sbin", "bin", "usr/bin"];

/// Adds a guest tool and every shared library it needs (transitively), all
/// taken from the unpacked packages, never from the host.
fn add_tool(
    cpio: &mut Cpio,
    root: &Path,
    tool: &str,
    libs_done: &mut BTreeSet<String>,
) -> Result<()> {
    let rel = BIN_DIRS
        .iter()
        .map(|d| format!("{d}/{tool}"))
        .find(|r| root.join(r).exists())
        .with_context(|| format!("{tool} is not in the unpacked guest packages"))?;
    let data = read_in_root(root, &rel)?;
    cpio.file(&rel, true, &data)?;
    let mut queue: Vec<(String, String)> = Elf::parse(&data)?
        .needed()?
        .into_iter()
        .map(|n| (n, tool.to_owned()))
        .collect();
    while let Some((soname, wanted_by)) = queue.pop() {
        if !libs_done.insert(soname.clone()) {
            continue;
        }
        let found = LIB_DIRS
            .iter()
            .map(|d| format!("{d}/{soname}"))
            .find(|r| fs::symlink_metadata(root.join(r)).is_ok())
            .with_context(|| {
                format!("{wanted_by} needs {soname}, which no package in GUEST_PKGS provides; add its package")
            })?;
        let lib = read_in_root(root, &found)?;
        cpio.file(&format!("lib/x86_64-linux-gnu/{soname}"), true, &lib)?;
        for n in Elf::parse(&lib)?.needed()? {
            queue.push((n, soname.clone()));
        }
    }
    Ok(())
}

/// The cached base archive: busybox, tools, libraries, modules and /init.
/// Its name carries a hash of all its inputs, so a changed init script or
/// package version builds a new one instead of reusing a stale one.
fn base_initramfs(cache: &Path, kernel_pkg: &str, kdir: &Path, userland: &Path) -> Result<PathBuf> {
    let mut key = Vec::new();
    for part in [
        CACHE_FORMAT,
        INIT_SCRIPT,
        kernel_pkg,
        &fs::read_to_string(userland.join(".debs")).unwrap_or_default(),
        &GUEST_TOOLS.join(","),
    ] {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    let dir = cache.join("initramfs");
    let path = dir.join(format!("base-{:016x}.cpio", fnv1a(&key)));
    if path.exists() {
        return Ok(path);
    }
    say("building the base initramfs");
    fs::create_dir_all(&dir)?;
    let mut c = Cpio::new();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "lib",
        "lib/x86_64-linux-gnu",
        "lib/modules",
        "lib64",
        "etc",
        "etc/daxvm",
        "dev",
        "proc",
        "sys",
        "tmp",
        "root",
        "mnt",
        "mnt/dax",
        "mnt/nodax",
        "daxvm",
        "daxvm/bin",
    ] {
        c.dir(d)?;
    }
    c.chardev("dev/console", 5, 1)?;
    c.file("init", true, INIT_SCRIPT.as_bytes())?;
    c.file("bin/busybox", true, &read_in_root(userland, "bin/busybox")?)?;
    // the ELF interpreter path the tools ask for
    c.file(
        "lib64/ld-linux-x86-64.so.2",
        true,
        &read_in_root(userland, "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")?,
    )?;
    let mut libs = BTreeSet::new();
    for tool in GUEST_TOOLS {
        add_tool(&mut c, userland, tool, &mut libs)?;
    }
    c.symlink("sbin/mkfs.ext4", "mke2fs")?;
    if let Ok(conf) = read_in_root(userland, "etc/mke2fs.conf") {
        c.file("etc/mke2fs.conf", false, &conf)?;
    }
    for e in fs::read_dir(kdir.join("modules"))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        c.file(&format!("lib/modules/{name}"), false, &fs::read(e.path())?)?;
    }
    for list in std::iter::once(&"common").chain(FILE_SYSTEMS) {
        let name = format!("modules.{list}");
        c.file(
            &format!("etc/daxvm/{name}"),
            false,
            &fs::read(kdir.join(&name))?,
        )?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, c.finish()?)?;
    fs::rename(&tmp, &path)?;
    // older bases only waste space; a concurrent run holds the cache lock
    for e in fs::read_dir(&dir)?.flatten() {
        if e.path() != path {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(path)
}
