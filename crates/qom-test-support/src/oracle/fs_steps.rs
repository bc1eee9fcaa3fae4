//! The file-system steps of a scenario: files and directories made before
//! or between QMP steps, and what the recorder observes of the files the
//! server made.

use super::OracleError;
use serde_json::{json, Value};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The keys that make a step a file-system step.
pub const KEYS: [&str; 4] = ["mkfile", "mkdir", "stat", "listdir"];

/// True for a file-system step.
pub fn is_fs_step(step: &Value) -> bool {
    KEYS.iter().any(|k| step.get(k).is_some())
}

/// Runs one file-system step (placeholders already expanded) and returns
/// its recorded result.
pub fn run(step: &Value) -> Result<Value, OracleError> {
    let path = |k: &str| step.get(k).and_then(Value::as_str).map(Path::new);
    if let Some(p) = path("mkfile") {
        let size = step.get("size").and_then(Value::as_u64).unwrap_or(0);
        let mut f = File::create(p).map_err(|e| OracleError::io(p, e))?;
        match step.get("fill").and_then(Value::as_u64) {
            None => f.set_len(size).map_err(|e| OracleError::io(p, e))?,
            Some(byte) => {
                let chunk = vec![byte as u8; 1 << 20];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    f.write_all(&chunk[..n])
                        .map_err(|e| OracleError::io(p, e))?;
                    left -= n as u64;
                }
            }
        }
        f.sync_all().map_err(|e| OracleError::io(p, e))?;
        return Ok(json!("ok"));
    }
    if let Some(p) = path("mkdir") {
        std::fs::create_dir_all(p).map_err(|e| OracleError::io(p, e))?;
        return Ok(json!("ok"));
    }
    if let Some(p) = path("stat") {
        let Ok(md) = std::fs::metadata(p) else {
            return Ok(json!({"exists": false}));
        };
        let kind = if md.is_dir() {
            "dir"
        } else if md.is_file() {
            "file"
        } else {
            "other"
        };
        let mut r =
            json!({"exists": true, "type": kind, "mode": format!("0o{:o}", md.mode() & 0o7777)});
        if md.is_file() {
            r["size"] = json!(md.size());
            r["allocated"] = json!(md.blocks() * 512);
        }
        return Ok(r);
    }
    if let Some(p) = path("listdir") {
        let Ok(rd) = std::fs::read_dir(p) else {
            return Ok(json!({"exists": false}));
        };
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        return Ok(json!(names));
    }
    Err(OracleError::Setup(format!(
        "unknown file-system step {step}"
    )))
}
