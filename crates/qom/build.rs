//! Computes the compile-time half of qom's build stamp (see `src/plugin.rs`).
//!
//! A plugin is a `cdylib` with its own statically linked copy of qom, and the
//! host hands it a `&TypeRegistry`: that is only sound when both copies lay
//! out every shared type identically. What decides that, and so what goes
//! into the stamp: the compiler (rustc's exact version: layouts of std and of
//! our types are not stable between releases), the target, the profile and
//! panic strategy, qom's version, and a hash of qom's own sources (a path
//! dependency edited between two builds keeps its version number). The
//! run-time half (`plugin::build_stamp`) adds the identity rustc gave the
//! crate, which covers features and dependency versions.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Sources whose content decides the layout of qom's types. The derive
/// crate is included when it sits beside us: its expansions become part of
/// qom's code.
const HASHED: &[&str] = &[
    "Cargo.toml",
    "build.rs",
    "src",
    "../qom-derive/Cargo.toml",
    "../qom-derive/src",
];

/// FNV-1a (64 bit): written out because its output must not depend on the
/// std version that runs this script.
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn files_under(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let Ok(entries) = fs::read_dir(path) else {
            return;
        };
        for e in entries.flatten() {
            files_under(&e.path(), out);
        }
    } else if path.is_file() {
        out.push(path.to_owned());
    }
}

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rustc unknown".into())
}

fn main() {
    let mut files = Vec::new();
    for p in HASHED {
        let path = Path::new(p);
        if path.exists() {
            println!("cargo:rerun-if-changed={p}");
            files_under(path, &mut files);
        }
    }
    // Sorted so that the hash depends on contents, not on read_dir's order.
    files.sort();
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    for f in &files {
        hash.write(f.to_string_lossy().as_bytes());
        hash.write(&[0]);
        hash.write(&fs::read(f).unwrap_or_default());
        hash.write(&[0]);
    }
    println!("cargo:rerun-if-env-changed=RUSTC");
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "unknown".into());
    let stamp = format!(
        "qom {} src {:016x}; {}; {} {} panic={}",
        env("CARGO_PKG_VERSION"),
        hash.0,
        rustc_version(),
        env("TARGET"),
        env("PROFILE"),
        env("CARGO_CFG_PANIC"),
    );
    println!("cargo:rustc-env=QOM_BUILD_STAMP={stamp}");
}
