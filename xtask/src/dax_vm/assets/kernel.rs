//! The guest kernel: which package, its boot image turned into a
//! PVH-bootable vmlinux, and the few modules we load, in dependency order.

use super::{cached_deb, fetch, say, update_if_no_lists, COMMON_MODULES, FILE_SYSTEMS};
use crate::dax_vm::elf::{self, Elf};
use crate::dax_vm::util::{is_root, run_checked};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The concrete kernel package: `$QOM_DAXVM_KERNEL_PKG`, or what
/// `linux-image-amd64` depends on, resolved once and remembered so that a
/// warm cache never asks apt.
pub(super) fn kernel_package(cache: &Path, _debs: &Path) -> Result<String> {
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
pub(super) fn prepare_kernel(debs: &Path, pkg: &str, kdir: &Path) -> Result<()> {
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
