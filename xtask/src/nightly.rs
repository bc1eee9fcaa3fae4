//! The nightly toolchain, for the tasks that need it (rustdoc JSON for the
//! public-API check, libFuzzer builds).

use anyhow::{bail, Context, Result};
use std::process::{Command, Stdio};

/// The toolchain's rustup name.
pub const NIGHTLY: &str = "nightly";

/// Installs the nightly toolchain when it is missing (fresh CI machines
/// have stable only); `task` names the caller in what is printed.
pub fn ensure(task: &str) -> Result<()> {
    let have = Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "-V"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    eprintln!(
        "xtask {task}: no nightly toolchain: rustup toolchain install nightly --profile minimal"
    );
    let status = Command::new("rustup")
        .args(["toolchain", "install", NIGHTLY, "--profile", "minimal"])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("installing the nightly toolchain failed ({status})");
    }
    Ok(())
}
