//! `cargo xtask fuzz [--seconds N | --runs N] [--no-trace-compares]
//! [TARGET...]`: builds the libFuzzer targets of `fuzz/` and runs each for
//! a fixed time or a fixed number of executions.
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
//!
//! `--no-trace-compares` builds the same code without compare tracing,
//! into `fuzz/target/no-trace-compares`, with its own log. libFuzzer then
//! loses its compare-guided mutations, but `qmp_session` runs about twice
//! as many executions a second. A long campaign runs both builds side by
//! side on one corpus (docs/reliability.md shows how): the grown corpus is
//! shared, so each worker picks up what the other found.

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
/// `fuzzing` cfg, and the checks a debug build has), less compare tracing.
const RUSTFLAGS_BASE: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// Compare tracing: feeds libFuzzer the operands of comparisons, for its
/// compare-guided mutations. cargo-fuzz passes it unless told not to.
const TRACE_COMPARES: &str = "-Cllvm-args=-sanitizer-coverage-trace-compares";

/// Which instrumentation a build has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    /// cargo-fuzz's default: coverage and compare tracing.
    Standard,
    /// Coverage only (`--no-trace-compares`).
    NoTraceCompares,
}

impl Build {
    fn rustflags(self) -> String {
        match self {
            Build::Standard => format!("{RUSTFLAGS_BASE} {TRACE_COMPARES}"),
            Build::NoTraceCompares => RUSTFLAGS_BASE.to_owned(),
        }
    }

    /// The name that keeps a variant's build and log apart from the
    /// standard ones, so that both can run at once.
    fn variant(self) -> Option<&'static str> {
        match self {
            Build::Standard => None,
            Build::NoTraceCompares => Some("no-trace-compares"),
        }
    }

    /// Where cargo builds it, under `fuzz/`.
    fn target_dir(self) -> String {
        self.variant()
            .map_or("target".to_owned(), |v| format!("target/{v}"))
    }

    /// The name of a target's log.
    fn log_name(self, target: &str) -> String {
        self.variant()
            .map_or(format!("{target}.log"), |v| format!("{target}.{v}.log"))
    }
}

/// When a target's run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Budget {
    /// After this many seconds.
    Seconds(u64),
    /// After this many executions, however long they take.
    Runs(u64),
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Seconds(n) => write!(f, "{n} s"),
            // libFuzzer counts the corpus it loads first among the runs,
            // and stops only after loading it.
            Budget::Runs(n) => write!(f, "{n} executions or more"),
        }
    }
}

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    targets: Vec<&'static str>,
    budget: Budget,
    build: Build,
}

const USAGE: &str = "cargo xtask fuzz [--seconds N | --runs N] [--no-trace-compares] [TARGET...]";

/// Reads the command line; `None` when help was asked for.
fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut budget = None;
    let mut build = Build::Standard;
    let mut targets: Vec<&'static str> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            flag @ ("--seconds" | "--runs") => {
                let n = it
                    .next()
                    .with_context(|| format!("{flag} needs a number"))?;
                let n: u64 = n.parse().with_context(|| format!("{flag} {n}"))?;
                if n == 0 {
                    bail!("{flag} must be at least 1");
                }
                if budget.is_some() {
                    bail!("give one of --seconds and --runs, once");
                }
                budget = Some(if flag == "--seconds" {
                    Budget::Seconds(n)
                } else {
                    Budget::Runs(n)
                });
            }
            "--no-trace-compares" => build = Build::NoTraceCompares,
            "-h" | "--help" => return Ok(None),
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
    Ok(Some(Options {
        targets,
        budget: budget.unwrap_or(Budget::Seconds(DEFAULT_SECONDS)),
        build,
    }))
}

/// Runs `cargo xtask fuzz`.
pub fn run(args: &[String]) -> Result<()> {
    match parse(args)? {
        Some(o) => fuzz(&o.targets, o.budget, o.build),
        None => {
            println!(
                "{USAGE}\n\n\
                 Runs each target (default: all of {}) for N seconds (default {DEFAULT_SECONDS})\n\
                 or for N executions. --no-trace-compares builds without compare tracing\n\
                 (faster, no compare-guided mutations), into fuzz/target/no-trace-compares.",
                TARGETS.join(", ")
            );
            Ok(())
        }
    }
}

/// What `cargo xtask ci` runs of it: every target for 30 seconds, so that
/// a new crash fails the build.
pub fn ci() -> Result<()> {
    fuzz(&TARGETS, Budget::Seconds(CI_SECONDS), Build::Standard)
}

fn say(msg: &str) {
    eprintln!("xtask fuzz: {msg}");
}

fn fuzz(targets: &[&str], budget: Budget, build: Build) -> Result<()> {
    let started = Instant::now();
    let root = crate::workspace_root();
    let fuzz_dir = root.join("fuzz");
    crate::nightly::ensure("fuzz")?;
    let triple = host_triple()?;
    let bin_dir = build_targets(&fuzz_dir, &triple, build)?;
    say(&format!(
        "built in {:.0} s",
        started.elapsed().as_secs_f64()
    ));

    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for target in targets {
        let run = run_target(&fuzz_dir, &bin_dir, target, budget, build)?;
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
    let variant = build.variant().map(|v| format!(", {v} build"));
    println!(
        "fuzz summary ({budget} per target{}):",
        variant.unwrap_or_default()
    );
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
fn build_targets(fuzz_dir: &Path, triple: &str, build: Build) -> Result<PathBuf> {
    let target_dir = fuzz_dir.join(build.target_dir());
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
    .env("RUSTFLAGS", build.rustflags())
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

fn run_target(
    fuzz_dir: &Path,
    bin_dir: &Path,
    target: &str,
    budget: Budget,
    build: Build,
) -> Result<Run> {
    let grown = fuzz_dir.join("target/corpus").join(target);
    let seeds = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let logs = fuzz_dir.join("target/logs");
    for d in [&grown, &seeds, &artifacts, &logs] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let log = logs.join(build.log_name(target));
    let log_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(bin_dir.join(target));
    // New inputs go to the first directory: the grown corpus, never the
    // committed seeds.
    cmd.arg(&grown)
        .arg(&seeds)
        .arg(match budget {
            Budget::Seconds(n) => format!("-max_total_time={n}"),
            Budget::Runs(n) => format!("-runs={n}"),
        })
        .arg("-print_final_stats=1")
        .arg("-timeout=20")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let dict = fuzz_dir.join("dict").join(format!("{target}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    say(&format!("{target}: {budget}, log in {}", log.display()));
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    let seconds = started.elapsed().as_secs();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_every_target_for_a_minute_with_compare_tracing() {
        let o = parse(&[]).unwrap().unwrap();
        assert_eq!(o.targets, TARGETS.to_vec());
        assert_eq!(o.budget, Budget::Seconds(DEFAULT_SECONDS));
        assert_eq!(o.build, Build::Standard);
        assert!(o.build.rustflags().contains(TRACE_COMPARES));
    }

    #[test]
    fn a_campaign_worker_counts_executions_without_compare_tracing() {
        let o = parse(&args(&[
            "--no-trace-compares",
            "--runs",
            "6700000",
            "qmp_session",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.targets, vec!["qmp_session"]);
        assert_eq!(o.budget, Budget::Runs(6_700_000));
        assert!(!o.build.rustflags().contains("trace-compares"));
        // Its own build and log, so that it can run beside a standard one.
        assert_ne!(o.build.target_dir(), Build::Standard.target_dir());
        assert_ne!(
            o.build.log_name("qmp_session"),
            Build::Standard.log_name("qmp_session")
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |list: &[&str]| format!("{:#}", parse(&args(list)).unwrap_err());
        assert!(err(&["--runs"]).contains("--runs needs a number"));
        assert!(err(&["--runs", "ten"]).contains("--runs ten"));
        assert!(err(&["--seconds", "0"]).contains("at least 1"));
        assert!(err(&["--seconds", "5", "--runs", "9"]).contains("one of --seconds and --runs"));
        assert!(err(&["nope"]).contains("unknown fuzz target 'nope'"));
        assert!(parse(&args(&["--help"])).unwrap().is_none());
    }
}
