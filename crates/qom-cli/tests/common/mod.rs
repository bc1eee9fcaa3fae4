//! What the black-box tests of the `qom` binary share: running it and
//! reading what it printed.

#![allow(dead_code)] // each test binary uses its own part

use std::process::{Command, Output, Stdio};

/// Runs `qom` with `args`, no input, and waits for it.
pub fn qom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("qom runs")
}

/// What it printed on standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What it printed on standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
