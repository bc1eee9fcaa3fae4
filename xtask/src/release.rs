//! What makes the crates something others can depend on:
//!
//! - `cargo xtask package`: `cargo package --workspace --no-verify` over
//!   every member except those that can never be packaged (they depend on
//!   a `publish = false` crate by path, as xtask does), so a missing
//!   version on a path dependency, a missing licence file or readme fails
//!   here rather than at publishing time;
//! - `cargo xtask msrv`: the `rust-version` the workspace declares against
//!   the `rust-version` of every locked dependency, so the declared MSRV
//!   stays true when a dependency is updated; then `cargo check` of every
//!   crate that declares it, all targets, with that very toolchain
//!   (installed with rustup when missing), which catches what metadata
//!   cannot: language and library features newer than the MSRV in our own
//!   code and in dependencies that declare no `rust-version`.
//!
//! Both run in `cargo xtask ci`.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt;
use std::process::Command;

/// `cargo metadata` of the workspace, resolved from the lock file as it is.
fn metadata() -> Result<Value> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(crate::workspace_root())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata --locked failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("reading cargo metadata's output")
}

/// A Rust version as `rust-version` states it (`1.82` is `1.82.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RustVersion(u32, u32, u32);

impl RustVersion {
    fn parse(text: &str) -> Result<Self> {
        let mut parts = text.split('.').map(|p| {
            p.parse::<u32>()
                .with_context(|| format!("rust-version '{text}' is not MAJOR.MINOR[.PATCH]"))
        });
        let major = parts.next().context("empty rust-version")??;
        let minor = parts.next().transpose()?.unwrap_or(0);
        let patch = parts.next().transpose()?.unwrap_or(0);
        if parts.next().is_some() {
            bail!("rust-version '{text}' has more than three parts");
        }
        Ok(RustVersion(major, minor, patch))
    }
}

impl fmt::Display for RustVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Ids of the workspace members.
fn members(meta: &Value) -> Vec<&str> {
    meta["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Which locked dependencies need a newer Rust than the workspace
/// declares: `(name version, what it needs)`.
fn too_new(meta: &Value) -> Result<(RustVersion, Vec<(String, RustVersion)>)> {
    let members = members(meta);
    let packages = meta["packages"]
        .as_array()
        .context("cargo metadata lists no packages")?;
    let mut declared: Option<RustVersion> = None;
    for p in packages
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
    {
        let name = p["name"].as_str().unwrap_or("?");
        let private = p["publish"].as_array().is_some_and(Vec::is_empty);
        let Some(v) = p["rust_version"].as_str() else {
            // Tools of the repository (xtask) build with the toolchain at
            // hand; a crate others can depend on must declare its minimum.
            if private {
                continue;
            }
            bail!("workspace member {name} declares no rust-version");
        };
        let v = RustVersion::parse(v)?;
        match declared {
            Some(d) if d != v => {
                bail!("workspace member {name} declares rust-version {v}, others {d}")
            }
            _ => declared = Some(v),
        }
    }
    let declared = declared.context("the workspace has no members")?;
    let mut over = Vec::new();
    for p in packages {
        let id = p["id"].as_str().unwrap_or("");
        if members.contains(&id) {
            continue;
        }
        if let Some(v) = p["rust_version"].as_str() {
            let v = RustVersion::parse(v)?;
            if v > declared {
                let name = format!(
                    "{} {}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                );
                over.push((name, v));
            }
        }
    }
    over.sort();
    Ok((declared, over))
}

/// `cargo xtask msrv`.
pub fn msrv() -> Result<()> {
    let meta = metadata()?;
    let (declared, over) = too_new(&meta)?;
    let count = meta["packages"].as_array().map_or(0, Vec::len);
    if !over.is_empty() {
        let list: Vec<String> = over
            .iter()
            .map(|(name, v)| format!("  {name} needs Rust {v}"))
            .collect();
        bail!(
            "the workspace declares rust-version {declared}, but {} locked dependencies need more:\n{}\n\
             Re-resolve with the MSRV-aware resolver (.cargo/config.toml sets it): `cargo update`, \
             or raise rust-version in Cargo.toml.",
            over.len(),
            list.join("\n")
        );
    }
    eprintln!(
        "xtask msrv: all {count} locked packages build with the declared Rust {declared} or older"
    );
    check_with(declared, &meta)
}

/// `cargo +VERSION check` of the members that declare a `rust-version`.
fn check_with(version: RustVersion, meta: &Value) -> Result<()> {
    let toolchain = version.to_string();
    let have = Command::new("rustup")
        .args(["run", &toolchain, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("xtask msrv: installing Rust {toolchain} with rustup (minimal profile)");
        let status = Command::new("rustup")
            .args(["toolchain", "install", &toolchain, "--profile", "minimal"])
            .status()
            .context("running rustup")?;
        if !status.success() {
            bail!(
                "cannot install Rust {toolchain} ({status}); the MSRV check needs it: \
                 rustup toolchain install {toolchain} --profile minimal"
            );
        }
    }
    let members = members(meta);
    let mut args: Vec<String> = vec![
        "check".into(),
        "--workspace".into(),
        "--all-targets".into(),
        "--locked".into(),
    ];
    for p in meta["packages"].as_array().into_iter().flatten() {
        let is_member = p["id"].as_str().is_some_and(|id| members.contains(&id));
        if is_member && p["rust_version"].is_null() {
            args.push("--exclude".into());
            args.push(p["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    let target = crate::workspace_root().join("target").join("msrv");
    eprintln!("xtask msrv: cargo +{toolchain} {}", args.join(" "));
    // rustup's cargo, not the one running xtask: `cargo +VERSION` goes
    // through the rustup proxy.
    let status = Command::new("rustup")
        .args(["run", &toolchain, "cargo"])
        .args(&args)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO")
        .current_dir(crate::workspace_root())
        .status()
        .context("running cargo check with the MSRV toolchain")?;
    if !status.success() {
        bail!("the workspace does not build with its declared Rust {toolchain} ({status})");
    }
    eprintln!("xtask msrv: the workspace builds with Rust {toolchain}");
    Ok(())
}

/// Workspace members that cannot be packaged: they depend by path on a
/// member that is `publish = false` and so has no version anywhere.
fn unpackageable(meta: &Value) -> Vec<String> {
    let members = members(meta);
    let packages: Vec<&Value> = meta["packages"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
                .collect()
        })
        .unwrap_or_default();
    let private: Vec<&str> = packages
        .iter()
        .filter(|p| p["publish"].as_array().is_some_and(Vec::is_empty))
        .filter_map(|p| p["name"].as_str())
        .collect();
    packages
        .iter()
        .filter(|p| {
            p["dependencies"].as_array().is_some_and(|deps| {
                deps.iter().any(|d| {
                    d["kind"].is_null()
                        && d["path"].is_string()
                        && d["name"].as_str().is_some_and(|n| private.contains(&n))
                })
            })
        })
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

/// `cargo xtask package`.
pub fn package() -> Result<()> {
    let meta = metadata()?;
    let skip = unpackageable(&meta);
    let mut args: Vec<String> = ["package", "--workspace", "--no-verify", "--allow-dirty"]
        .map(String::from)
        .to_vec();
    for name in &skip {
        args.push("--exclude".into());
        args.push(name.clone());
    }
    eprintln!(
        "xtask package: cargo {} (not packaged: {})",
        args.join(" "),
        if skip.is_empty() {
            "none".to_owned()
        } else {
            skip.join(", ")
        }
    );
    let status = Command::new(env!("CARGO"))
        .args(&args)
        .current_dir(crate::workspace_root())
        .status()
        .context("running cargo package")?;
    if !status.success() {
        bail!("cargo package failed ({status})");
    }
    Ok(())
}

/// What `cargo xtask ci` runs of this module.
pub fn ci() -> Result<()> {
    msrv()?;
    package()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(RustVersion::parse("1.82").unwrap(), RustVersion(1, 82, 0));
        assert!(RustVersion::parse("1.9").unwrap() < RustVersion::parse("1.10.1").unwrap());
        assert!(RustVersion::parse("1.x").is_err());
        assert!(RustVersion::parse("1.2.3.4").is_err());
    }

    fn pkg(id: &str, rv: Option<&str>) -> Value {
        json!({"id": id, "name": id, "version": "1.0.0", "rust_version": rv,
               "publish": null, "dependencies": []})
    }

    #[test]
    fn a_dependency_newer_than_declared_is_reported() {
        let meta = json!({
            "workspace_members": ["a", "b"],
            "packages": [pkg("a", Some("1.82")), pkg("b", Some("1.82.0")),
                         pkg("old", Some("1.60")), pkg("none", None),
                         pkg("new", Some("1.85")), pkg("same", Some("1.82.0"))],
        });
        let (declared, over) = too_new(&meta).unwrap();
        assert_eq!(declared, RustVersion(1, 82, 0));
        assert_eq!(over, [("new 1.0.0".to_owned(), RustVersion(1, 85, 0))]);
    }

    #[test]
    fn members_must_agree_on_the_msrv() {
        let meta = json!({
            "workspace_members": ["a", "b"],
            "packages": [pkg("a", Some("1.82")), pkg("b", Some("1.85"))],
        });
        assert!(too_new(&meta).is_err());
    }
}
