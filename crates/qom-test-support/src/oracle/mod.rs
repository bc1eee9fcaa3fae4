//! The QEMU compatibility oracle: runs the project's QMP scenarios and
//! `-object` command-line cases (tests/oracle/ in the repository) against
//! any server that speaks QMP on stdio, one fresh process per scenario or
//! case, and records or compares the answers.
//!
//! `cargo xtask oracle record` runs it against the installed QEMU to write
//! the fixtures under `tests/oracle/qemu-<version>/`; the tests of qom-cli
//! run it against `qom` and compare with those fixtures.
//!
//! ```no_run
//! use qom_test_support::oracle::{self, transcript::RunOptions};
//! let defs = oracle::read_json(&oracle::fixture_dir().join("scenarios.json")).unwrap();
//! let opts = RunOptions::new(vec!["qom".into(), "-qmp".into(), "stdio".into()]);
//! let mine = oracle::transcript::run_scenarios(&defs, &opts).unwrap();
//! println!("{}", oracle::json_text::fixture_text(&mine));
//! ```

pub mod cli_cases;
pub mod fs_steps;
pub mod json_text;
pub mod normalise;
pub mod server;
pub mod transcript;

use std::fmt;
use std::path::{Path, PathBuf};

/// Why the oracle could not run or read something.
#[derive(Debug)]
pub enum OracleError {
    /// A file or program could not be used.
    Io(PathBuf, std::io::Error),
    /// A fixture or definition file is not what it should be.
    Setup(String),
    /// The server stopped answering in time.
    Timeout(String),
    /// The server could not be talked to.
    Protocol(String),
}

impl OracleError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> OracleError {
        OracleError::Io(path.to_owned(), e)
    }
}

impl fmt::Display for OracleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OracleError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            OracleError::Setup(s) => write!(f, "{s}"),
            OracleError::Timeout(s) => write!(f, "TimeoutError: {s}"),
            OracleError::Protocol(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for OracleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OracleError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// The QEMU version whose answers the tests compare with.
pub const REFERENCE_QEMU: &str = "10.0.2";

/// `tests/oracle` of this repository.
pub fn fixture_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/qom-test-support -> the repository root
    let root = crate_dir.ancestors().nth(2).unwrap_or(crate_dir);
    root.join("tests/oracle")
}

/// The recorded answers of QEMU `version`: `tests/oracle/qemu-<version>`.
pub fn recording_dir(version: &str) -> PathBuf {
    fixture_dir().join(format!("qemu-{version}"))
}

/// The text of a fixture; a missing one is reported with the command
/// that makes it, since a comparison without it would test nothing.
pub fn read_fixture(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "fixture {} is missing or unreadable ({e}): it is part of the repository; \
             restore it with git, or record it again with `cargo xtask oracle record` \
             (needs qemu-system-x86_64 {REFERENCE_QEMU}, see docs/qemu-compat.md)",
            path.display()
        )
    })
}

/// A fixture parsed as JSON; panics like [`read_fixture`].
pub fn read_fixture_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read_fixture(path))
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}

/// A JSON file, for the recorder (errors instead of panics).
pub fn read_json(path: &Path) -> Result<serde_json::Value, OracleError> {
    let text = std::fs::read_to_string(path).map_err(|e| OracleError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| OracleError::Setup(format!("{}: not JSON: {e}", path.display())))
}
