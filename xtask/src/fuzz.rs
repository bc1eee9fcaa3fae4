//! `cargo xtask fuzz`: the fuzz targets (being written).

use anyhow::{bail, Result};

/// Runs `cargo xtask fuzz`.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("cargo xtask fuzz is not written yet")
}

/// What `cargo xtask ci` runs of it.
pub fn ci() -> Result<()> {
    Ok(())
}
