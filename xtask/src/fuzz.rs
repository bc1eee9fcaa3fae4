//! `cargo xtask fuzz [--seconds N] [TARGET...]`: builds the libFuzzer
//! targets of `fuzz/` and runs each for a fixed time.
//!
//! The build drives nightly cargo directly with the instrumentation flags
//! that cargo-fuzz passes, instead of installing cargo-fuzz: one tool
//! fewer to fetch and compile on a fresh machine (about a minute cold),
//! and no dependence on its command line between versions. Coverage
//! flags only; no sanitizer: the fuzzed code is safe Rust apart from the
//! mapping layer, which `cargo xtask sanitize` covers, and ASan would
//! cost half the executions. The build goes to `fuzz/target`, so it
//! never invalidates the main workspace's build.
//!
//! Each run grows its corpus in `fuzz/target/corpus/TARGET` (the seeds in
//! `fuzz/corpus/TARGET` are only read) and writes crashing inputs to
//! `fuzz/artifacts/TARGET/`; both are ignored by git.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Every target, in the order they run.
const TARGETS: [&str; 5] = ["keyval", "opts", "json_stream", "numbers", "qmp_session"];

/// How long each target runs by default.
const DEFAULT_SECONDS: u64 = 60;

/// How long each target runs in `cargo xtask ci`.
const CI_SECONDS: u64 = 30;

/// The flags cargo-fuzz passes to rustc (coverage for libFuzzer, the
/// `fuzzing` cfg, and the checks a debug build has).
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// Runs `cargo xtask fuzz`.
pub fn run(args: &[String]) -> Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                let n = it.next().context("--seconds needs a number")?;
                seconds = n.parse().with_context(|| format!("--seconds {n}"))?;
            }
            "-h" | "--help" => {
                println!(
                    "cargo xtask fuzz [--seconds N] [TARGET...]\n\n\
                     Runs each target (default: all of {}) for N seconds (default {DEFAULT_SECONDS}).",
                    TARGETS.join(", ")
                );
                return Ok(());
            }
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(t) => targets.push(t),
                None => bail!(
                    "unknown fuzz target '{name}' (known: {})",
                    TARGETS.join(", ")
                ),
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    fuzz(&targets, seconds)
}

/// What `cargo xtask ci` runs of it: every target for 30 seconds, so that
/// a new crash fails the build.
pub fn ci() -> Result<()> {
    fuzz(&TARGETS, CI_SECONDS)
}

fn say(msg: &str) {
    eprintln!("xtask fuzz: {msg}");
}

fn fuzz(targets: &[&str], seconds: u64) -> Result<()> {
    let started = Instant::now();
    let root = crate::workspace_root();
    let fuzz_dir = root.join("fuzz");
    crate::nightly::ensure("fuzz")?;
    let triple = host_triple()?;
    let bin_dir = build(&fuzz_dir, &triple)?;
    say(&format!(
        "built in {:.0} s",
        started.elapsed().as_secs_f64()
    ));

    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for target in targets {
        let run = run_target(&fuzz_dir, &bin_dir, target, seconds)?;
        let line = format!(
            "{target:<12} {:>12} executions in {:>4} s ({:>9}/s), corpus {}{}",
            run.executions.map_or("?".to_owned(), |n| n.to_string()),
            run.seconds,
            run.per_second.map_or("?".to_owned(), |n| n.to_string()),
            run.corpus,
            if run.ok {
                String::new()
            } else {
                "  FAILED".to_owned()
            },
        );
        say(&line);
        summary.push(line);
        if !run.ok {
            failed.push(format!("{target} (log: {})", run.log.display()));
        }
    }
    println!("fuzz summary ({} s per target):", seconds);
    for line in &summary {
        println!("  {line}");
    }
    println!(
        "fuzz: build and runs took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {}; crashing inputs are in fuzz/artifacts/",
            failed.join(", ")
        );
    }
    Ok(())
}

/// The host target triple, as nightly rustc names it. The build passes
/// `--target` so that RUSTFLAGS reach only the fuzzed crates, not build
/// scripts and proc-macros.
fn host_triple() -> Result<String> {
    let out = Command::new("rustup")
        .args(["run", crate::nightly::NIGHTLY, "rustc", "-vV"])
        .output()
        .context("running nightly rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("no host line in rustc -vV")
}

/// Builds every target; returns the directory of the binaries.
fn build(fuzz_dir: &Path, triple: &str) -> Result<PathBuf> {
    let target_dir = fuzz_dir.join("target");
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        crate::nightly::NIGHTLY,
        "cargo",
        "build",
        "--release",
        "--bins",
    ])
    .arg("--manifest-path")
    .arg(fuzz_dir.join("Cargo.toml"))
    .args(["--target", triple])
    .env("CARGO_TARGET_DIR", &target_dir)
    .env("RUSTFLAGS", RUSTFLAGS)
    // Whatever the calling cargo set for its own build must not leak
    // into this one.
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("RUSTC")
    .env_remove("RUSTC_WRAPPER")
    .env_remove("CARGO_BUILD_TARGET");
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("building the fuzz targets failed ({status})");
    }
    Ok(target_dir.join(triple).join("release"))
}

/// The outcome of one target's run.
struct Run {
    ok: bool,
    executions: Option<u64>,
    per_second: Option<u64>,
    seconds: u64,
    corpus: usize,
    log: PathBuf,
}

fn run_target(fuzz_dir: &Path, bin_dir: &Path, target: &str, seconds: u64) -> Result<Run> {
    let grown = fuzz_dir.join("target/corpus").join(target);
    let seeds = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let logs = fuzz_dir.join("target/logs");
    for d in [&grown, &seeds, &artifacts, &logs] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let log = logs.join(format!("{target}.log"));
    let log_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(bin_dir.join(target));
    // New inputs go to the first directory: the grown corpus, never the
    // committed seeds.
    cmd.arg(&grown)
        .arg(&seeds)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg("-timeout=20")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let dict = fuzz_dir.join("dict").join(format!("{target}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    say(&format!("{target}: {seconds} s, log in {}", log.display()));
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    let text = fs::read_to_string(&log).unwrap_or_default();
    let stat = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
    };
    let ok = status.success();
    if !ok {
        // The panic message and the crashing input's name.
        let tail: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("panicked at")
                    || l.contains("SUMMARY")
                    || l.contains("Test unit written")
                    || l.starts_with("==")
            })
            .collect();
        say(&format!("{target} failed ({status}):\n{}", tail.join("\n")));
        if let Some(i) = text.lines().position(|l| l.contains("panicked at")) {
            let msg: Vec<&str> = text.lines().skip(i).take(4).collect();
            say(&msg.join("\n"));
        }
    }
    let corpus = fs::read_dir(&grown).map_or(0, |d| d.count());
    Ok(Run {
        ok,
        executions: stat("number_of_executed_units"),
        per_second: stat("average_exec_per_sec"),
        seconds,
        corpus,
        log,
    })
}
