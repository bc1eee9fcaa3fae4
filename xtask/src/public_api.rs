//! `cargo xtask public-api [--bless] [CRATE...]`: the public API of each
//! library crate, compared with the snapshot committed in `api/CRATE.txt`,
//! so that a change to it is always deliberate and visible in review.
//!
//! The list comes from `cargo public-api` (rustdoc JSON from the nightly
//! toolchain, one sorted line per item: paths, full signatures, trait
//! impls, auto traits such as `Send` and `Sync`). Blanket impls
//! (`impl<T> From<T> for T` and the like) are left out: they change with
//! the standard library, not with us. The tool is pinned to one version,
//! because its output format and the rustdoc JSON format it reads both
//! change between releases; the task installs it (and nightly) when
//! missing. Snapshots are sorted lists, so the check prints what was
//! removed and what was added.

use crate::nightly::{self, NIGHTLY};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The crates whose API is checked: every library crate that other
/// programs link (test helpers and example plugins are not in it).
const CRATES: [&str; 8] = [
    "qom",
    "qom-derive",
    "qom-qmp",
    "qom-devices",
    "memory-backend",
    "memory-backend-file",
    "memory-backend-ram",
    "qom-vm-memory",
];

/// The cargo-public-api release the snapshots are written with. 0.52.0
/// (with `--locked`: rustdoc-types 0.57) reads rustdoc JSON format 57,
/// which nightlies from 2025-08-02 on write until the next format change;
/// a newer nightly needs a newer release, and the snapshots re-blessed.
const TOOL_VERSION: &str = "0.52.0";

fn say(msg: &str) {
    eprintln!("xtask public-api: {msg}");
}

fn usage() -> &'static str {
    "cargo xtask public-api [--bless] [CRATE...]\n\n  \
     Compares the public API of each library crate with api/CRATE.txt.\n  \
     --bless   write the current API to api/CRATE.txt instead (after an\n            \
     intended change; review the diff of api/ before committing)\n  \
     CRATE     check only these (default: all library crates)"
}

/// Entry point of `cargo xtask public-api`.
pub fn run(args: &[String]) -> Result<()> {
    let mut bless = false;
    let mut crates = Vec::new();
    for a in args {
        match a.as_str() {
            "--bless" => bless = true,
            "help" | "--help" | "-h" => {
                println!("{}", usage());
                return Ok(());
            }
            c if CRATES.contains(&c) => crates.push(c),
            other => bail!("unknown argument or crate '{other}'\n\n{}", usage()),
        }
    }
    if crates.is_empty() {
        crates = CRATES.to_vec();
    }
    check(&crates, bless)
}

/// What `cargo xtask ci` runs: every crate, no blessing.
pub fn ci() -> Result<()> {
    check(&CRATES, false)
}

fn check(crates: &[&str], bless: bool) -> Result<()> {
    let started = Instant::now();
    nightly::ensure("public-api")?;
    ensure_tool()?;
    let root = crate::workspace_root();
    let dir = root.join("api");
    let mut changed = Vec::new();
    for krate in crates {
        let current = public_api(&root, krate)?;
        let path = dir.join(format!("{krate}.txt"));
        if bless {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, &current)
                .with_context(|| format!("writing {}", path.display()))?;
            say(&format!(
                "wrote api/{krate}.txt ({} items)",
                current.lines().count()
            ));
            continue;
        }
        let snapshot = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if snapshot == current {
            continue;
        }
        eprintln!("\npublic API of {krate} differs from api/{krate}.txt:");
        eprint!("{}", diff(&snapshot, &current));
        changed.push(*krate);
    }
    say(&format!(
        "{} crates in {:.0} s",
        crates.len(),
        started.elapsed().as_secs_f64()
    ));
    if !changed.is_empty() {
        bail!(
            "the public API of {} changed. If the change is intended, run \
             `cargo xtask public-api --bless` and commit api/",
            changed.join(", ")
        );
    }
    Ok(())
}

/// Lines removed from `old` (`-`) and added in `new` (`+`). Both lists are
/// sorted and hold each item once, so this is the whole difference.
fn diff(old: &str, new: &str) -> String {
    let a: BTreeSet<&str> = old.lines().collect();
    let b: BTreeSet<&str> = new.lines().collect();
    let mut out = String::new();
    for l in a.difference(&b) {
        out.push_str(&format!("-{l}\n"));
    }
    for l in b.difference(&a) {
        out.push_str(&format!("+{l}\n"));
    }
    if old.is_empty() {
        out.insert_str(0, "(no snapshot yet)\n");
    }
    out
}

/// A stable cargo command (the one running xtask) without what it put in
/// our environment for its own build.
fn cargo() -> Command {
    clean(Command::new(env!("CARGO")))
}

/// A cargo command of the nightly toolchain, through rustup's proxy; cargo
/// public-api then finds that cargo on its `PATH` and uses it for rustdoc.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", NIGHTLY, "cargo"]);
    clean(cmd)
}

fn clean(mut cmd: Command) -> Command {
    for var in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The public API of one crate, as `cargo public-api` lists it.
fn public_api(root: &Path, krate: &str) -> Result<String> {
    let out = nightly_cargo()
        .current_dir(root)
        .args(["public-api", "--package", krate, "--omit", "blanket-impls"])
        .stdin(Stdio::null())
        .output()
        .context("running cargo public-api")?;
    if !out.status.success() {
        bail!(
            "cargo public-api -p {krate} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout).context("cargo public-api printed non-UTF-8")?;
    if text.trim().is_empty() {
        bail!(
            "cargo public-api -p {krate} printed nothing:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

/// The installed cargo-public-api's version, if any.
fn tool_version() -> Option<String> {
    let out = cargo()
        .args(["public-api", "--version"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // "cargo-public-api 0.52.0"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(str::to_owned)
}

/// Installs the pinned cargo-public-api when it is missing or another
/// version is installed (a few minutes, once per machine).
fn ensure_tool() -> Result<()> {
    match tool_version() {
        Some(v) if v == TOOL_VERSION => return Ok(()),
        Some(v) => say(&format!(
            "cargo-public-api {v} is installed, the snapshots are made with {TOOL_VERSION}: installing it"
        )),
        None => say(&format!("installing cargo-public-api {TOOL_VERSION}")),
    }
    let status = cargo()
        .args(["install", "cargo-public-api", "--locked", "--version"])
        .arg(TOOL_VERSION)
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("cargo install cargo-public-api --version {TOOL_VERSION} --locked failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_removed_then_added() {
        let old = "pub fn a()\npub fn b()\npub fn c()\n";
        let new = "pub fn a()\npub fn c(x: u8)\npub fn c()\n";
        assert_eq!(diff(old, new), "-pub fn b()\n+pub fn c(x: u8)\n");
        assert!(diff("", "pub fn a()\n").starts_with("(no snapshot yet)\n+pub fn a()"));
    }
}
