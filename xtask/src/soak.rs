//! `cargo xtask soak`: the soak test (being written).

use anyhow::{bail, Result};

/// Runs `cargo xtask soak`.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("cargo xtask soak is not written yet")
}

/// What `cargo xtask ci` runs of it.
pub fn ci() -> Result<()> {
    Ok(())
}
