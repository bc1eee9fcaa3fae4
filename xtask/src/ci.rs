//! `cargo xtask ci`: every check a submission must pass, in the order a
//! developer would want to see failures (cheap first).

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    eprintln!("xtask ci: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The virtual environment of the end-to-end tests:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/qom-rs/venv` (crates/qom-cli/tests/e2e.rs
/// computes the same path).
pub(crate) fn python_venv() -> Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    Ok(cache.join("qom-rs/venv"))
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<bool> {
    Ok(cmd
        .status()
        .with_context(|| format!("running {what}"))?
        .success())
}

/// The end-to-end tests drive `qom` with QEMU's own Python QMP client
/// (PyPI `qemu.qmp`). It goes into a virtual environment under the cache
/// directory, never into the system Python (which Debian forbids, PEP
/// 668); python3-venv is installed with apt when the venv module is
/// missing and we are root.
pub(crate) fn ensure_python_client() -> Result<()> {
    let venv = python_venv()?;
    let python = venv.join("bin/python3");
    let quiet = |c: &mut Command| -> Result<bool> {
        run_ok(
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
            "python3",
        )
    };
    if python.exists() && quiet(Command::new(&python).args(["-c", "import qemu.qmp"]))? {
        return Ok(());
    }
    if !python.exists() {
        eprintln!("xtask: creating the virtual environment {}", venv.display());
        let make_venv = || -> Result<bool> {
            let _ = std::fs::remove_dir_all(&venv);
            run_ok(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv (python3 is needed by the end-to-end tests)",
            )
        };
        if !make_venv()? {
            // Debian's python3 cannot make a venv (no ensurepip) without
            // the python3-venv package
            if !rustix::process::geteuid().is_root() {
                bail!(
                    "python3 -m venv {} failed: install python3-venv \
                     (as root: apt-get install python3-venv) and run this again",
                    venv.display()
                );
            }
            eprintln!("xtask: installing python3-venv with apt");
            let apt = |args: &[&str]| {
                run_ok(
                    Command::new("apt-get")
                        .args(args)
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                    "apt-get",
                )
            };
            let install = [
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "python3-venv",
            ];
            // a failed install may be stale package lists: update once
            let installed = apt(&install)? || (apt(&["update", "-q"])? && apt(&install)?);
            if !installed || !make_venv()? {
                let _ = std::fs::remove_dir_all(&venv);
                bail!(
                    "could not create the virtual environment {}",
                    venv.display()
                );
            }
        }
    }
    eprintln!(
        "xtask: installing the Python package qemu.qmp into {}",
        venv.display()
    );
    if !run_ok(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "qemu.qmp",
        ]),
        "pip",
    )? {
        bail!(
            "pip install qemu.qmp into {} failed; the end-to-end tests need it",
            venv.display()
        );
    }
    Ok(())
}

/// How often CI runs the file test binary of memory-backend-file again.
const REPEAT_RUNS: usize = 50;

/// Runs one test binary `runs` times with the default test threads.
///
/// Races between tests of one binary (two threads mapping and unmapping
/// at once) show up only now and then: a single run proves little, so the
/// binaries that map memory from several threads run again. Every failing
/// run is reported with its output, and any failure fails CI.
fn repeat_tests(package: &str, test: &str, runs: usize) -> Result<()> {
    eprintln!("xtask ci: {package} --test {test}, {runs} runs");
    let out = Command::new(env!("CARGO"))
        .args([
            "test",
            "-p",
            package,
            "--test",
            test,
            "--no-run",
            "--message-format",
            "json",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("building the test binary")?;
    if !out.status.success() {
        bail!("building {package} --test {test} failed ({})", out.status);
    }
    let exe = crate::artifacts::executables(&out.stdout)
        .into_iter()
        .find(|e| e.name == test && e.kinds.iter().any(|k| k == "test"))
        .with_context(|| format!("cargo reported no test binary {test} for {package}"))?;
    let mut failed = 0;
    for run in 1..=runs {
        let o = Command::new(&exe.path)
            .arg("-q")
            .output()
            .with_context(|| format!("running {}", exe.path.display()))?;
        if !o.status.success() {
            failed += 1;
            eprintln!(
                "xtask ci: run {run} of {test} failed ({}):\n{}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    if failed > 0 {
        bail!("{package} --test {test}: {failed} of {runs} runs failed");
    }
    eprintln!("xtask ci: {package} --test {test}: {runs} of {runs} runs passed");
    Ok(())
}

/// Runs fmt, clippy, tests, docs and the public-API check.
pub fn run(_args: &[String]) -> Result<()> {
    ensure_python_client()?;
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(&["test", "--workspace"], &[])?;
    repeat_tests("memory-backend-file", "file", REPEAT_RUNS)?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    crate::release::ci()?;
    crate::public_api::ci()?;
    crate::soak::ci()?;
    crate::fuzz::ci()?;
    Ok(())
}
