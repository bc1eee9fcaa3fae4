//! `cargo xtask ci`: every check a submission must pass, in the order a
//! developer would want to see failures (cheap first).

use anyhow::{bail, Context, Result};
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

/// The end-to-end tests drive `qom` with QEMU's own Python QMP client
/// (PyPI `qemu.qmp`); install it when it is missing so that this command
/// works on a fresh machine.
pub(crate) fn ensure_python_client() -> Result<()> {
    let have = Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .status()
        .context("running python3 (needed by the end-to-end tests)")?;
    if have.success() {
        return Ok(());
    }
    eprintln!("xtask ci: installing the Python package qemu.qmp for the end-to-end tests");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "qemu.qmp",
        ])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install qemu.qmp failed ({status}); the end-to-end tests need it");
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
