//! `cargo xtask dax-vm`: placeholder until the DAX guest runner lands.

use anyhow::{bail, Result};

/// Runs the DAX tests inside the guest.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("dax-vm is not implemented yet")
}
