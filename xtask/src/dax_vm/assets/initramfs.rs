//! The guest userland and the base initramfs: the unpacked Debian
//! packages, the tools the init script needs with their shared libraries,
//! and the init script itself.

use super::{
    cached_deb, fetch, say, CACHE_FORMAT, FILE_SYSTEMS, GUEST_PKGS, GUEST_TOOLS, INIT_SCRIPT,
};
use crate::dax_vm::cpio::Cpio;
use crate::dax_vm::elf::Elf;
use crate::dax_vm::util::{fnv1a, run_checked};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) fn unpack_userland(debs: &Path, userland: &Path) -> Result<()> {
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
pub(super) fn base_initramfs(
    cache: &Path,
    kernel_pkg: &str,
    kdir: &Path,
    userland: &Path,
) -> Result<PathBuf> {
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
