//! Reading `cargo build/test --message-format json` output.

use serde_json::Value;
use std::path::PathBuf;

/// An executable cargo reported building.
pub struct Executable {
    /// The target's name (the binary or test name).
    pub name: String,
    /// The target's kinds (`bin`, `test`, ...).
    pub kinds: Vec<String>,
    /// Where it was written.
    pub path: PathBuf,
}

/// Every executable in cargo's JSON messages, in the order reported.
pub fn executables(stdout: &[u8]) -> Vec<Executable> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter_map(|msg| {
            let path = PathBuf::from(msg["executable"].as_str()?);
            let target = &msg["target"];
            Some(Executable {
                name: target["name"].as_str().unwrap_or_default().to_owned(),
                kinds: target["kind"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                path,
            })
        })
        .collect()
}
