//! The AddressSanitizer and ThreadSanitizer runs: nightly cargo with
//! `-Zsanitizer` (and `-Zbuild-std` when rust-src is there) over the
//! workspace's tests, and the report files they leave.

use super::{say, Options, Outcome, Skip, Tool, MAPS_COUNTING};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The toolchain that has `-Zsanitizer` (and `-Zbuild-std`).
const NIGHTLY: &str = "nightly";

/// Packages left out of the ASan and TSan runs, and why.
const EXCLUDED_PACKAGES: [(&str, &str); 2] = [
    // Automation, not product code; its tests would rebuild it with the
    // sanitizer for nothing.
    ("xtask", "project automation, not part of what users link"),
    // Its one test (tests/ui.rs) is trybuild's: it compiles bad inputs and
    // compares rustc's messages with files written for stable rustc, which
    // nightly words differently (seen: parent_not_a_qom_type.rs mismatch).
    // The code the macros generate runs in qom's own tests.
    (
        "qom-derive",
        "its only test compares stable rustc's diagnostics; nightly's differ",
    ),
];

/// Tests left out of the TSan run, besides [`MAPS_COUNTING`]. With rustix
/// over libc (see the `--features` in [`run_sanitizer`]) TSan sees every
/// mapping and adds mappings of its own (shadow memory) for them; the
/// stress tests end by comparing `/proc/self/maps` line counts and fail
/// (seen: 241 lines before, 340 after, with every buffer and thread check
/// passed). They run under ASan, valgrind and `cargo xtask ci`.
const TSAN_STRESS: [Skip; 2] = [
    Skip {
        filter: "ext4_backends_leave_other_threads_memory_alone",
        why: "ends by counting /proc/self/maps lines; TSan adds shadow mappings for every mmap it sees",
    },
    Skip {
        filter: "hugetlbfs_exhaustion_leaves_other_threads_memory_alone",
        why: "ends by counting /proc/self/maps lines; TSan adds shadow mappings for every mmap it sees",
    },
];

/// Output of a command that must succeed.
fn output_of(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `cargo` of the nightly toolchain, through rustup's proxy (the `cargo`
/// that runs xtask is the stable one).
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", NIGHTLY, "cargo"]);
    cmd
}

/// The host target triple, as nightly rustc names it. The sanitizer builds
/// pass `--target` explicitly so that RUSTFLAGS reach only the target's
/// crates, not build scripts and proc-macros (which would then need the
/// sanitizer runtime at build time).
fn host_triple() -> Result<String> {
    let vv = output_of(Command::new("rustup").args(["run", NIGHTLY, "rustc", "-vV"]))
        .context("the nightly toolchain is needed (rustup toolchain install nightly)")?;
    vv.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("no host line in rustc -vV")
}

/// Whether nightly has the standard library's sources, which `-Zbuild-std`
/// needs; tries to add the component once when it is missing.
fn have_rust_src() -> bool {
    let has = || -> Option<bool> {
        let sysroot =
            output_of(Command::new("rustup").args(["run", NIGHTLY, "rustc", "--print", "sysroot"]))
                .ok()?;
        Some(
            Path::new(sysroot.trim())
                .join("lib/rustlib/src/rust/library/std/Cargo.toml")
                .is_file(),
        )
    };
    if has() == Some(true) {
        return true;
    }
    say("nightly has no rust-src: trying `rustup component add rust-src --toolchain nightly`");
    let added = Command::new("rustup")
        .args(["component", "add", "rust-src", "--toolchain", NIGHTLY])
        .status()
        .is_ok_and(|s| s.success());
    added && has() == Some(true)
}

/// ASan or TSan over `cargo test --workspace` (less [`EXCLUDED_PACKAGES`]).
///
/// With rust-src, std is rebuilt with the sanitizer (`-Zbuild-std`): the
/// only way to get no false positives from std's own synchronisation
/// (TSan) and to see errors inside std's code (ASan). Without it, the
/// precompiled std is linked anyway; recent nightlies refuse to mix crates
/// built with and without a sanitizer unless told that this is deliberate
/// (`-Cunsafe-allow-abi-mismatch=sanitizer`). TSan is then drowned in
/// false races from std's locking, which no suppression can remove
/// without also hiding real races (docs/sanitizers.md), so there is no
/// suppressions file.
pub(super) fn run_sanitizer(tool: Tool, opts: &Options, root: &Path) -> Result<Outcome> {
    let name = tool.name();
    let flag = match tool {
        Tool::Asan => "address",
        Tool::Tsan => "thread",
        Tool::Valgrind => unreachable!("valgrind is not a -Zsanitizer"),
    };
    let triple = host_triple()?;
    let build_std = !opts.no_build_std && have_rust_src();
    let mut rustflags = format!("-Zsanitizer={flag}");
    if !build_std {
        say(
            "std is NOT instrumented (no -Zbuild-std): see docs/sanitizers.md for what this misses",
        );
        if tool == Tool::Tsan {
            // Measured: hundreds of reports, every one a synchronisation
            // inside the precompiled std (Mutex, Arc, OnceLock, channels)
            // that TSan cannot see. No suppression can remove them without
            // hiding real races, so say plainly what the run is worth.
            say("tsan: expect hundreds of false data races from std's invisible locking; only a run with rust-src (-Zbuild-std) means anything");
        }
        rustflags.push_str(" -Cunsafe-allow-abi-mismatch=sanitizer");
    }
    // Other RUSTFLAGS would make cargo rebuild everything in the same
    // directory, so the std-less variant gets its own.
    let dir_name = if build_std {
        name.to_owned()
    } else {
        format!("{name}-prebuilt-std")
    };
    let dir = root.join("target/sanitize").join(&dir_name);
    let reports = dir.join("reports");
    // Reports of an earlier run must not count against this one.
    let _ = fs::remove_dir_all(&reports);
    fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    let log_path = reports.join(name);

    let skips: Vec<&Skip> = match tool {
        Tool::Tsan => MAPS_COUNTING.iter().chain(&TSAN_STRESS).collect(),
        _ => MAPS_COUNTING.iter().collect(),
    };
    for (package, why) in EXCLUDED_PACKAGES {
        say(&format!("{name}: leaving out package {package}: {why}"));
    }
    for s in &skips {
        say(&format!("{name}: skipping {}: {}", s.filter, s.why));
    }

    let options = runtime_options(tool, &log_path);
    let cargo = |select: &[&str], harness: &[String]| {
        let mut cmd = nightly_cargo();
        cmd.arg("test");
        if build_std {
            cmd.arg("-Zbuild-std");
        }
        // rustc links the sanitizer runtime statically into executables
        // and not into cdylibs, and does not export it: an instrumented
        // plugin that `qom` dlopens then fails with "undefined symbol:
        // __tsan_init" (or __asan_...). Exporting the executable's symbols
        // lets the plugin bind to the runtime already loaded. Only for the
        // package of `qom` (per-package flags are a nightly cargo feature),
        // so that changing this rebuilds nothing else.
        cmd.arg("-Zprofile-rustflags");
        for profile in ["dev", "test"] {
            cmd.args([
                "--config",
                &format!(
                    "profile.{profile}.package.qom-cli.rustflags=[\"-Clink-arg=-Wl,--export-dynamic\"]"
                ),
            ]);
        }
        if tool == Tool::Tsan {
            // rustix makes its syscalls itself by default, so TSan never
            // sees our munmap: when a test unmaps a region and another
            // test's new mapping gets the same address, TSan still holds
            // the old accesses and reports a race between two mappings
            // that never coexisted (seen: host.rs's
            // readonly_mapping_refuses_writes writing "cow", dropping its
            // mapping, then private_mapping_leaves_the_file_untouched
            // filling a new one at that address; 2 runs of 25). Through
            // libc, TSan's mmap/munmap interceptors reset that history.
            cmd.args(["--features", "rustix/use-libc"]);
        }
        cmd.args(["--target", &triple, "-j", &opts.jobs])
            .args(select)
            .env("CARGO_TARGET_DIR", &dir)
            .env("RUSTFLAGS", &rustflags)
            // Doctests are part of the suite: they need the same flags.
            .env("RUSTDOCFLAGS", &rustflags)
            .envs(options.iter().map(|(k, v)| (k, v)));
        if !harness.is_empty() {
            cmd.arg("--").args(harness);
        }
        cmd
    };
    let mut workspace = vec!["--workspace"];
    for (package, _) in EXCLUDED_PACKAGES {
        workspace.extend(["--exclude", package]);
    }

    say(&format!(
        "{name}: building (target/sanitize/{dir_name}, -j {})",
        opts.jobs
    ));
    let started = Instant::now();
    let built = run_logged(
        cargo(&[&workspace[..], &["--no-run"]].concat(), &[]),
        &dir.join("build.log"),
    )?;
    let build = started.elapsed();
    if !built {
        bail!(
            "{name}: the build failed (log: {})",
            dir.join("build.log").display()
        );
    }

    // The end-to-end test needs the Python QMP client; a failed install
    // is left to that test to report.
    let _ = crate::ci::ensure_python_client();
    say(&format!(
        "{name}: running the tests (log: {})",
        dir.join("test.log").display()
    ));
    let started = Instant::now();
    let mut harness: Vec<String> = skips
        .iter()
        .flat_map(|s| ["--skip".to_owned(), s.filter.to_owned()])
        .collect();
    harness.extend(opts.test_args.iter().cloned());
    let ok = run_logged(
        cargo(&[&workspace[..], &["--no-fail-fast"]].concat(), &harness),
        &dir.join("test.log"),
    )?;
    let run = started.elapsed();
    Ok(Outcome {
        tool,
        build,
        run,
        failed: !ok,
        reports: collect_reports(&reports)?,
    })
}

/// Environment of the instrumented processes (children such as `qom`
/// inherit it, so their reports land in the same place).
fn runtime_options(tool: Tool, log_path: &Path) -> Vec<(&'static str, String)> {
    let log = format!("log_path={}", log_path.display());
    match tool {
        Tool::Asan => vec![
            // Leak checking at exit is on by default on Linux; said here so
            // nobody wonders. Our mappings are mmap, which LSan does not
            // track: only heap leaks count.
            ("ASAN_OPTIONS", format!("{log}:detect_leaks=1")),
            // ASan's redzones make every frame larger: the QMP parser's
            // 1,024-level nesting test (qom-qmp tests/protocol.rs) recurses
            // that deep on a default 2 MiB thread stack and overflows it
            // under ASan only (3 MiB is enough). Threads spawned without an
            // explicit size get the main thread's 8 MiB instead.
            ("RUST_MIN_STACK", (8 << 20).to_string()),
        ],
        Tool::Tsan => {
            // Keep going after the first race so that one run shows all of
            // them; the process still exits 66 when any was reported.
            let v = format!("{log}:halt_on_error=0:second_deadlock_stack=1");
            vec![("TSAN_OPTIONS", v)]
        }
        Tool::Valgrind => Vec::new(),
    }
}

/// Runs a command, copying its stdout and stderr to ours and to `log`
/// (appended); true when it succeeded.
fn run_logged(mut cmd: Command, log: &Path) -> Result<bool> {
    use std::io::Write;
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    // A shell's `tee` would do; but then the exit status is the shell's.
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("running {cmd:?}"))?;
    let copy = |mut from: Box<dyn std::io::Read + Send>, to_err: bool, file: fs::File| {
        std::thread::spawn(move || {
            let mut file = file;
            let mut buf = [0u8; 8192];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = file.write_all(&buf[..n]);
                if to_err {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                } else {
                    let _ = std::io::stdout().write_all(&buf[..n]);
                }
            }
        })
    };
    let out = copy(
        Box::new(child.stdout.take().expect("piped")),
        false,
        file.try_clone()?,
    );
    let err = copy(Box::new(child.stderr.take().expect("piped")), true, file);
    let status = child.wait()?;
    let _ = out.join();
    let _ = err.join();
    Ok(status.success())
}

/// The head of every report file in `dir` (the `ERROR:`/`WARNING:` line
/// without its pid and addresses, and the `SUMMARY:` line), by count.
fn collect_reports(dir: &Path) -> Result<BTreeMap<String, usize>> {
    let mut heads = BTreeMap::new();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_default();
        let mut found = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("SUMMARY:") {
                *heads.entry(line.to_owned()).or_insert(0) += 1;
                found = true;
            }
        }
        if !found {
            // A report without a SUMMARY (a runtime CHECK failure, a
            // deadly signal in the runtime): count its first line.
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(empty)");
            *heads.entry(first.trim().to_owned()).or_insert(0) += 1;
        }
        say(&format!("report: {}", f.display()));
    }
    Ok(heads)
}
