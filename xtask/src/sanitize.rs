//! `cargo xtask sanitize`: the test suite under AddressSanitizer and
//! ThreadSanitizer (nightly `-Zsanitizer`), and the memory backends' tests
//! under valgrind's memcheck. Slow, so CI does not run it; see
//! docs/sanitizers.md for what each run covers and what it found.
//!
//! Sanitizer reports are written to files (`log_path`) rather than to
//! stderr: a test that spawns `qom` usually captures the child's stderr and
//! would swallow its report, while a file survives whoever ran the process.
//! After the run every report file is summarised and any report fails the
//! task, whatever the test harness concluded.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The toolchain that has `-Zsanitizer` (and `-Zbuild-std`).
const NIGHTLY: &str = "nightly";

/// The packages whose tests run under valgrind: the ones that map, advise,
/// populate and unmap guest memory (all the `unsafe` lives below them).
const VALGRIND_PACKAGES: [&str; 3] = [
    "memory-backend",
    "memory-backend-file",
    "memory-backend-ram",
];

/// A test left out of a sanitizer run, and why (printed at every run, so
/// that a skip never goes unnoticed).
struct Skip {
    /// A `--skip` filter of the test harness (a substring of test names).
    filter: &'static str,
    /// Why the test cannot work under this tool.
    why: &'static str,
}

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

/// Tests left out of every run here (ASan, TSan, valgrind). Both count the
/// lines of `/proc/self/maps` before and after a thousand cycles and want
/// them equal.
/// The sanitizers' allocator (sanitizer_common's, shared by ASan and TSan)
/// reserves one large `PROT_NONE` range and maps a 256 KiB piece of it for
/// each allocation size class the first time that class is used, never
/// giving it back; every piece splits the reservation into two more lines.
/// A class first used inside the loop (an error message of a new length)
/// therefore adds lines without any leak of ours. Seen under ASan: 158
/// lines before, 162 after, the four new ones exactly two such pieces, also
/// with the quarantine off. Under valgrind, /proc/self/maps is the real
/// process's, valgrind's own growing arenas included (seen: 87 lines before,
/// 88 after). `cargo xtask ci` runs them as they are meant to run.
const MAPS_COUNTING: [Skip; 2] = [
    Skip {
        filter: "thousand_cycles_leave_no_fd_or_mapping",
        why: "counts /proc/self/maps lines, which the tool's own allocator adds to",
    },
    Skip {
        filter: "thousand_object_cycles_leave_nothing_behind",
        why: "counts /proc/self/maps lines, which the tool's own allocator adds to",
    },
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

/// Which sanitizer a run uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Asan,
    Tsan,
    Valgrind,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Asan => "asan",
            Tool::Tsan => "tsan",
            Tool::Valgrind => "valgrind",
        }
    }
}

/// Parsed command line.
struct Options {
    tools: Vec<Tool>,
    jobs: String,
    /// Use the precompiled (uninstrumented) std even when rust-src is there.
    no_build_std: bool,
    /// Handed to every test binary after our own arguments.
    test_args: Vec<String>,
}

fn usage() -> &'static str {
    "cargo xtask sanitize [asan|tsan|valgrind|all]... [-j N] [--no-build-std] [-- TEST-ARGS...]\n\n  \
     asan      cargo test --workspace (but xtask, qom-derive) under AddressSanitizer (+LeakSanitizer)\n  \
     tsan      cargo test --workspace (but xtask, qom-derive) under ThreadSanitizer\n  \
     valgrind  the memory-backend{,-file,-ram} test binaries under valgrind memcheck\n  \
     all       the three, in this order (the default)\n  \
     -j N      build jobs (default 2)\n  \
     --no-build-std  link the precompiled std instead of building an instrumented one\n                  \
     (what happens anyway without the nightly rust-src component)\n  \
     -- ARGS   passed to every test binary (a test name filter, --test-threads=1, ...)\n\n\
     Builds go to target/sanitize/{asan,tsan}; reports to target/sanitize/*/reports.\n\
     Not part of CI: it takes far longer than CI's budget (docs/sanitizers.md)."
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut opts = Options {
        tools: Vec::new(),
        jobs: "2".to_owned(),
        no_build_std: false,
        test_args: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "asan" => opts.tools.push(Tool::Asan),
            "tsan" => opts.tools.push(Tool::Tsan),
            "valgrind" => opts.tools.push(Tool::Valgrind),
            "all" => opts.tools.extend([Tool::Asan, Tool::Tsan, Tool::Valgrind]),
            "-j" | "--jobs" => {
                opts.jobs = it.next().context("-j needs a number")?.clone();
            }
            "--no-build-std" => opts.no_build_std = true,
            "help" | "--help" | "-h" => return Ok(None),
            "--" => {
                opts.test_args = it.cloned().collect();
                break;
            }
            other => bail!("unknown argument '{other}'\n\n{}", usage()),
        }
    }
    if opts.tools.is_empty() {
        opts.tools = vec![Tool::Asan, Tool::Tsan, Tool::Valgrind];
    }
    opts.tools.dedup();
    Ok(Some(opts))
}

/// The outcome of one tool's run, for the closing summary.
struct Outcome {
    tool: Tool,
    build: Duration,
    run: Duration,
    /// Test binaries that failed (by cargo's or our count).
    failed: bool,
    /// Report heads by count: "ERROR: AddressSanitizer: ..." and its SUMMARY.
    reports: BTreeMap<String, usize>,
}

/// Entry point of `cargo xtask sanitize`.
pub fn run(args: &[String]) -> Result<()> {
    let Some(opts) = parse(args)? else {
        println!("{}", usage());
        return Ok(());
    };
    let root = workspace_root();
    let mut outcomes = Vec::new();
    for &tool in &opts.tools {
        let outcome = match tool {
            Tool::Asan | Tool::Tsan => run_sanitizer(tool, &opts, &root)?,
            Tool::Valgrind => run_valgrind(&opts, &root)?,
        };
        outcomes.push(outcome);
    }
    let mut bad = Vec::new();
    eprintln!("\nxtask sanitize: summary");
    for o in &outcomes {
        eprintln!(
            "  {:<8} build {:>5.0} s, tests {:>5.0} s: {}",
            o.tool.name(),
            o.build.as_secs_f64(),
            o.run.as_secs_f64(),
            if o.failed || !o.reports.is_empty() {
                "FAILED"
            } else {
                "ok"
            }
        );
        for (head, n) in &o.reports {
            eprintln!("      {n} x {head}");
        }
        if o.failed || !o.reports.is_empty() {
            bad.push(o.tool.name());
        }
    }
    if !bad.is_empty() {
        bail!(
            "sanitize: {} reported errors or failing tests",
            bad.join(", ")
        );
    }
    Ok(())
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

fn say(msg: &str) {
    eprintln!("xtask sanitize: {msg}");
}

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
fn run_sanitizer(tool: Tool, opts: &Options, root: &Path) -> Result<Outcome> {
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
fn run_valgrind(opts: &Options, root: &Path) -> Result<Outcome> {
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

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn default_is_all_three() {
        let o = parse(&[]).unwrap().unwrap();
        assert_eq!(o.tools, [Tool::Asan, Tool::Tsan, Tool::Valgrind]);
        assert_eq!(o.jobs, "2");
    }

    #[test]
    fn options_and_pass_through() {
        let o = parse(&args(&[
            "tsan",
            "-j",
            "1",
            "--",
            "--test-threads=1",
            "file",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.tools, [Tool::Tsan]);
        assert_eq!(o.jobs, "1");
        assert_eq!(o.test_args, args(&["--test-threads=1", "file"]));
        assert!(parse(&args(&["msan"])).is_err());
        assert!(parse(&args(&["help"])).unwrap().is_none());
    }

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
