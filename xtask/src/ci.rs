//! `cargo xtask ci`: every check a submission must pass, in the order a
//! developer would want to see failures (cheap first).

use anyhow::{bail, Context, Result};
use std::process::Command;

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    eprintln!("xtask ci: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The end-to-end tests drive `qom` with QEMU's own Python QMP client
/// (PyPI `qemu.qmp`); install it when it is missing so that this command
/// works on a fresh machine.
fn ensure_python_client() -> Result<()> {
    let have = Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .status()
        .context("running python3 (needed by the end-to-end tests)")?;
    if have.success() {
        return Ok(());
    }
    eprintln!("xtask ci: installing the Python package qemu.qmp for the end-to-end tests");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "qemu.qmp",
        ])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install qemu.qmp failed ({status}); the end-to-end tests need it");
    }
    Ok(())
}

/// Runs fmt, clippy, tests and docs.
pub fn run(_args: &[String]) -> Result<()> {
    ensure_python_client()?;
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(&["test", "--workspace"], &[])?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    Ok(())
}
