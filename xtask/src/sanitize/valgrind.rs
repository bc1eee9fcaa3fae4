//! The valgrind run: the memory backends' test binaries under memcheck,
//! and the error kinds of its log files.

use super::{say, Options, Outcome, Skip, Tool, MAPS_COUNTING};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The packages whose tests run under valgrind: the ones that map, advise,
/// populate and unmap guest memory (all the `unsafe` lives below them).
const VALGRIND_PACKAGES: [&str; 3] = [
    "memory-backend",
    "memory-backend-file",
    "memory-backend-ram",
];

/// Tests left out of the valgrind run, besides [`MAPS_COUNTING`]: the ones
/// that ask for an impossible mapping (1 EiB, 2^62 bytes) and check QEMU's
/// message for the kernel's ENOMEM. valgrind's address space manager
/// refuses such a length itself, with EINVAL, before the kernel sees it.
const VALGRIND_HUGE_MAPPINGS: [Skip; 3] = [
    Skip {
        filter: "bad_requests_are_errors",
        why: "expects ENOMEM from a 2^62-byte mmap; valgrind answers EINVAL",
    },
    Skip {
        filter: "huge_size_fails_like_qemu_and_leaves_nothing",
        why: "expects ENOMEM from a 1 EiB mmap; valgrind answers EINVAL",
    },
    Skip {
        filter: "argument_and_creation_errors_match_qemu",
        why: "expects ENOMEM from a 1 EiB mmap; valgrind answers EINVAL",
    },
];

/// Makes sure valgrind is there: installs the Debian package as root (as
/// the other tasks do for what they need), or says what to install.
fn ensure_valgrind() -> Result<()> {
    let have = |p: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|d| d.join(p).is_file())
    };
    if have("valgrind") {
        return Ok(());
    }
    if !crate::dax_vm::is_root() {
        bail!("valgrind is missing: install it with `apt-get install --no-install-recommends valgrind`");
    }
    say("installing valgrind (apt-get)");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(["-o", "DPkg::Lock::Timeout=300", "valgrind"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh image may have no package lists: update once and retry.
    if !install() {
        let updated = Command::new("apt-get")
            .args(["update", "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if !updated || !install() {
            bail!("apt-get install valgrind failed");
        }
    }
    Ok(())
}

/// One test binary cargo built, with the directory cargo runs it in.
struct TestBinary {
    path: PathBuf,
    /// The package's directory (cargo runs tests there, with
    /// `CARGO_MANIFEST_DIR` set to it).
    manifest_dir: PathBuf,
}

/// The test executables of a `cargo test --no-run --message-format=json`.
/// The shared reader in `artifacts.rs` keeps no package directory and no
/// profile, which this needs, hence its own small filter.
fn test_binaries(json: &[u8]) -> Vec<TestBinary> {
    String::from_utf8_lossy(json)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| {
            Some(TestBinary {
                path: PathBuf::from(m["executable"].as_str()?),
                manifest_dir: Path::new(m["manifest_path"].as_str()?)
                    .parent()?
                    .to_path_buf(),
            })
        })
        .collect()
}

/// The memory backends' test binaries, built in debug as `cargo test`
/// builds them (but in target/sanitize/valgrind, see below), each run under
/// memcheck.
///
/// Leak policy: only "definitely" and "indirectly" lost blocks are errors.
/// "Still reachable" is what statics hold at exit (the global registry,
/// std's buffers), and "possibly lost" is mostly the harness's threads
/// still running at exit: neither is a leak of ours.
///
/// rustix reads the aux vector with `prctl(PR_GET_AUXV)`, which valgrind
/// passes to the kernel unchanged: the answer is valgrind's own process's
/// vector, whose vDSO address (`AT_SYSINFO_EHDR`) the client cannot read,
/// and rustix's check of that ELF header dies with SIGSEGV on the first
/// `page_size()`. Its `use-libc-auxv` feature asks glibc's `getauxval`
/// instead, which returns the vector valgrind built for the client. That
/// feature changes which crate hashes cargo builds, hence a target dir of
/// its own, so the usual debug build is left alone.
pub(super) fn run_valgrind(opts: &Options, root: &Path) -> Result<Outcome> {
    ensure_valgrind()?;
    let dir = root.join("target/sanitize/valgrind");
    let reports = dir.join("reports");
    let _ = fs::remove_dir_all(&reports);
    fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;

    say("valgrind: building the backend tests (debug, target/sanitize/valgrind)");
    let started = Instant::now();
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "-j",
            &opts.jobs,
        ])
        .args(["--features", "rustix/use-libc-auxv"])
        .env("CARGO_TARGET_DIR", &dir);
    for p in VALGRIND_PACKAGES {
        build.args(["-p", p]);
    }
    let out = build
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!(
            "valgrind: building the backend tests failed ({})",
            out.status
        );
    }
    let binaries = test_binaries(&out.stdout);
    let build = started.elapsed();
    if binaries.is_empty() {
        bail!("valgrind: cargo reported no test binary");
    }

    // Suppressions only when there is a file of them (none were needed
    // when this was written: docs/sanitizers.md).
    let supp = root.join("xtask/sanitize/valgrind.supp");
    let valgrind_supp = supp
        .is_file()
        .then(|| format!("--suppressions={}", supp.display()));
    let valgrind_skips: Vec<&Skip> = MAPS_COUNTING
        .iter()
        .chain(&VALGRIND_HUGE_MAPPINGS)
        .collect();
    for s in &valgrind_skips {
        say(&format!("valgrind: skipping {}: {}", s.filter, s.why));
    }
    let started = Instant::now();
    let mut failed = Vec::new();
    for b in &binaries {
        let name = b.path.file_name().unwrap_or_default().to_string_lossy();
        let report = reports.join(format!("{name}.%p"));
        say(&format!("valgrind: {}", b.path.display()));
        let status = Command::new("valgrind")
            .args([
                "--tool=memcheck",
                "--error-exitcode=1",
                "--leak-check=full",
                "--show-leak-kinds=definite,indirect",
                "--errors-for-leak-kinds=definite,indirect",
                // Children (the test binaries spawn none that matter here)
                // would only slow the run down.
                "--trace-children=no",
                // The tests' threads spin on atomics now and then; without
                // fair scheduling one spinner can starve the others.
                "--fair-sched=yes",
                "--num-callers=40",
            ])
            .arg(format!("--log-file={}", report.display()))
            .args(valgrind_supp.iter())
            .arg(&b.path)
            .args(valgrind_skips.iter().flat_map(|s| ["--skip", s.filter]))
            .args(&opts.test_args)
            .current_dir(&b.manifest_dir)
            .env("CARGO_MANIFEST_DIR", &b.manifest_dir)
            .status()
            .with_context(|| format!("running valgrind {}", b.path.display()))?;
        if !status.success() {
            say(&format!("valgrind: {name} FAILED ({status})"));
            failed.push(name.into_owned());
        }
    }
    let run = started.elapsed();
    if !failed.is_empty() {
        say(&format!("valgrind: failed: {}", failed.join(", ")));
    }
    Ok(Outcome {
        tool: Tool::Valgrind,
        build,
        run,
        failed: !failed.is_empty(),
        reports: valgrind_reports(&reports)?,
    })
}

/// memcheck's error kinds from its log files: the first line of each error
/// ("Invalid read of size 8", "Conditional jump or move depends on
/// uninitialised value(s)", "N bytes in M blocks are definitely lost...").
fn valgrind_reports(dir: &Path) -> Result<BTreeMap<String, usize>> {
    let mut heads = BTreeMap::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut errors = 0;
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            // Every line is "==PID== TEXT". An error's head follows a bare
            // "==PID==" line (or a "Thread N:" line naming the thread) and
            // is followed by its first stack frame; the auxiliary lines
            // ("Address 0x.. is ...", "Block was alloc'd at") follow frames.
            let body = |l: &str| l.split_once("== ").map_or("", |(_, b)| b).to_owned();
            let text = body(line);
            let prev = i.checked_sub(1).map(|p| body(lines[p])).unwrap_or_default();
            let after_gap = prev.trim().is_empty() || prev.starts_with("Thread ");
            let has_frame = lines
                .get(i + 1)
                .is_some_and(|n| n.contains("   at 0x") || n.contains("   by 0x"));
            if after_gap && has_frame && !text.trim().is_empty() {
                // Leak sizes differ from run to run; the kind is the point.
                let head = match text.split_once(" are ") {
                    Some((_, kind)) if text.contains(" lost in loss record ") => kind,
                    _ => &text,
                };
                *heads.entry(head.trim().to_owned()).or_insert(0) += 1;
            }
            if let Some(rest) = text.strip_prefix("ERROR SUMMARY: ") {
                errors += rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
            }
        }
        if errors > 0 {
            say(&format!("report: {} ({errors} errors)", path.display()));
        }
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_binaries_keep_tests_only() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/host-1","manifest_path":"/w/crates/mb/Cargo.toml"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","profile":{"test":false},"executable":null,"manifest_path":"/w/crates/mb/Cargo.toml"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        let got = test_binaries(json.as_bytes());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, Path::new("/t/deps/host-1"));
        assert_eq!(got[0].manifest_dir, Path::new("/w/crates/mb"));
    }
}
