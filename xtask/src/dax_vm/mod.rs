//! `cargo xtask dax-vm`: runs tests inside a small QEMU guest whose
//! `/mnt/dax` is ext4 or xfs on an emulated NVDIMM, mounted `dax=always`,
//! so that `mmap(MAP_SYNC)` really succeeds (the host has no pmem).
//! See docs/dax-vm.md.

mod assets;
mod cpio;
mod elf;
mod util;
mod vm;

pub(crate) use util::is_root;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vm::{Accel, Outcome, Spec};

const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The test targets that `cargo xtask dax-vm` runs without `--package`:
/// the backend through the object model, and the `qom` command.
const DEFAULT_TARGETS: &[(&str, &str)] = &[("memory-backend-file", "dax"), ("qom-cli", "dax")];
const DEFAULT_TEST: &str = "dax";
/// libtest arguments for the test boot when the user gives none after `--`:
/// the tests' report lines (`DAXVM-...`) are printed, in order.
const DEFAULT_TEST_ARGS: &[&str] = &["--nocapture", "--test-threads=1"];

const USAGE: &str = "\
usage:
  cargo xtask dax-vm [OPTIONS] [FILTER] [-- TEST-ARGS...]
      Build the `--test` target (default `dax`) of `--package` (default:
      memory-backend-file and qom-cli) statically, run it in the guest with
      FILTER on every file system, then run each crash pair (ignored tests
      crash_write_X / crash_verify_X): one boot that must crash the guest,
      one that verifies on the same NVDIMM image. The package's binaries
      (e.g. qom for CARGO_BIN_EXE_qom) go into the guest at the same path.
      Exit 0 when everything passed.
  cargo xtask dax-vm run [OPTIONS] BINARY [ARGS...]
      Boot once and run BINARY (static) with ARGS. Exits with the binary's
      status, 123 if it crashed the guest on purpose, 124 on timeout, 125 if
      the guest could not be set up or died otherwise.
  cargo xtask dax-vm prepare
      Only fill the cache (downloads, kernel, initramfs).

options:
  --fs ext4|xfs|all    file system on the NVDIMM (run: ext4; tests: all)
  --pmem-img PATH      keep the NVDIMM in PATH across boots (tests: for the
                       FILTER boot, with one --fs; crash pairs use their own)
  --keep               keep the per-boot work directory (logs, initrd)
  --accel auto|kvm|tcg (default auto: KVM only if a probe boot works)
  --timeout SECS       per boot (default 600)
  --mem MIB            guest RAM (default 1024)
  --smp N              guest CPUs (default 1)
  --env NAME=VALUE     extra environment for the binary (repeatable)
  --add FILE           also put FILE (static program or data) into the guest
                       at the same absolute path (repeatable)
  --verbose            print the QEMU command and the whole guest console
  -p, --package PKG    (tests) package whose test target to build
  --test NAME          (tests) test target name (default dax)
  --no-crash-pairs     (tests) skip the crash pairs
  --trials N           (tests) run each crash pair N times (default 1)
";

#[derive(Default)]
struct Options {
    fs: Option<String>,
    pmem_img: Option<PathBuf>,
    keep: bool,
    accel: Option<Accel>,
    timeout: Option<u64>,
    mem: Option<u64>,
    smp: Option<u32>,
    env: Vec<(String, String)>,
    files: Vec<PathBuf>,
    verbose: bool,
    package: Option<String>,
    test: Option<String>,
    no_crash_pairs: bool,
    trials: Option<u64>,
    positional: Vec<String>,
    passthrough: Vec<String>,
}

fn parse(args: &[String], run_mode: bool) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        // In run mode everything after the binary belongs to the binary.
        if run_mode && !o.positional.is_empty() {
            o.positional.push(a.clone());
            continue;
        }
        match a.as_str() {
            "--" => {
                o.passthrough.extend(it.by_ref().cloned());
            }
            "--fs" => {
                let v = value(a)?;
                if !matches!(v.as_str(), "ext4" | "xfs" | "all") {
                    bail!("--fs must be ext4, xfs or all, not {v:?}");
                }
                o.fs = Some(v);
            }
            "--pmem-img" => o.pmem_img = Some(PathBuf::from(value(a)?)),
            "--keep" => o.keep = true,
            "--verbose" => o.verbose = true,
            "--no-crash-pairs" => o.no_crash_pairs = true,
            "--accel" => {
                o.accel = Some(match value(a)?.as_str() {
                    "auto" => Accel::Auto,
                    "kvm" => Accel::Kvm,
                    "tcg" => Accel::Tcg,
                    v => bail!("--accel must be auto, kvm or tcg, not {v:?}"),
                })
            }
            "--timeout" => o.timeout = Some(number(a, &value(a)?, 1, 86_400)?),
            "--mem" => o.mem = Some(number(a, &value(a)?, 256, 65_536)?),
            "--smp" => o.smp = Some(number(a, &value(a)?, 1, 64)? as u32),
            "--env" => {
                let v = value(a)?;
                let (k, val) = v
                    .split_once('=')
                    .with_context(|| format!("--env wants NAME=VALUE, got {v:?}"))?;
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    bail!("--env: {k:?} is not a valid variable name");
                }
                o.env.push((k.to_owned(), val.to_owned()));
            }
            "--add" => {
                let f = PathBuf::from(value(a)?);
                let f = if f.is_absolute() {
                    f
                } else {
                    std::env::current_dir()?.join(f)
                };
                o.files.push(f);
            }
            "--trials" => o.trials = Some(number(a, &value(a)?, 1, 1000)?),
            "-p" | "--package" => o.package = Some(value(a)?),
            "--test" => o.test = Some(value(a)?),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            s if s.starts_with('-') && o.positional.is_empty() => {
                bail!("unknown option {s}\n\n{USAGE}")
            }
            _ => o.positional.push(a.clone()),
        }
    }
    Ok(o)
}

fn number(name: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => bail!("{name} wants a number from {min} to {max}, not {v:?}"),
    }
}

fn file_systems(o: &Options, default_all: bool) -> Vec<String> {
    match o.fs.as_deref() {
        Some("all") => assets::FILE_SYSTEMS.iter().map(|s| s.to_string()).collect(),
        Some(fs) => vec![fs.to_owned()],
        None if default_all => assets::FILE_SYSTEMS.iter().map(|s| s.to_string()).collect(),
        None => vec!["ext4".to_owned()],
    }
}

fn spec(o: &Options, fs: &str, binary: &Path, args: Vec<String>) -> Spec {
    Spec {
        fs: fs.to_owned(),
        binary: binary.to_path_buf(),
        args,
        env: o.env.clone(),
        files: o.files.clone(),
        pmem_img: o.pmem_img.clone(),
        accel: o.accel.unwrap_or(Accel::Auto),
        timeout: Duration::from_secs(o.timeout.unwrap_or(600)),
        mem_mib: o.mem.unwrap_or(1024),
        smp: o.smp.unwrap_or(1),
        keep: o.keep,
        verbose: o.verbose,
    }
}

/// Entry point from xtask's main.
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("run") => {
            // run mode speaks in exit codes (see USAGE); its own failures
            // are 125 like a guest that could not be set up
            let code = run_binary(&args[1..]).unwrap_or_else(|e| {
                eprintln!("[dax-vm] error: {e:#}");
                vm::EXIT_FAILED
            });
            std::process::exit(code);
        }
        Some("prepare") => {
            let t = Instant::now();
            let a = assets::prepare()?;
            eprintln!(
                "[dax-vm] cache ready in {:.1}s: {} (kernel {}, boot image {})",
                t.elapsed().as_secs_f64(),
                a.cache.display(),
                a.kernel_pkg,
                a.boot_image.display()
            );
            Ok(())
        }
        _ => run_tests(args),
    }
}

fn check_static(binary: &Path) -> Result<()> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let elf = elf::Elf::parse(&data)
        .with_context(|| format!("{} is not an x86_64 ELF program", binary.display()))?;
    if !elf.is_static()? {
        bail!(
            "{} is dynamically linked; the guest has no host libraries. Build it with \
             RUSTFLAGS=\"-C target-feature=+crt-static\" --target {TARGET}",
            binary.display()
        );
    }
    Ok(())
}

fn run_binary(args: &[String]) -> Result<i32> {
    let o = parse(args, true)?;
    // `run BINARY ARGS` and `run -- BINARY ARGS` both work
    let mut all = o.positional.iter().chain(&o.passthrough).cloned();
    let binary = PathBuf::from(
        all.next()
            .with_context(|| format!("run: which binary?\n\n{USAGE}"))?,
    );
    let bin_args: Vec<String> = all.collect();
    let fss = file_systems(&o, false);
    if fss.len() != 1 {
        bail!("run boots once: pick --fs ext4 or --fs xfs");
    }
    check_static(&binary)?;
    let assets = assets::prepare()?;
    let report = vm::run(&assets, &spec(&o, &fss[0], &binary, bin_args))?;
    eprintln!("[dax-vm] {}", report.summary(&fss[0]));
    Ok(report.exit_code())
}

/// A statically built test target and the binaries that came with it.
struct TestBuild {
    package: String,
    test: String,
    binary: PathBuf,
    /// The package's own programs built for the test (cargo builds them
    /// for integration tests and names them in `CARGO_BIN_EXE_<name>`).
    bins: Vec<PathBuf>,
}

/// Builds the test target statically; returns the executable's path and
/// those of the binaries built along with it.
fn build_test_binary(package: &str, test: &str) -> Result<TestBuild> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    // With --target, RUSTFLAGS reaches only the target's code, not build
    // scripts or proc macros, which must stay dynamic host programs.
    rustflags.push_str(" -C target-feature=+crt-static");
    eprintln!("[dax-vm] building test `{test}` of {package} (static, {TARGET})");
    let out = Command::new(cargo)
        .args([
            "test",
            "--no-run",
            "--package",
            package,
            "--test",
            test,
            "--target",
            TARGET,
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .env("RUSTFLAGS", rustflags.trim())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the `{test}` test of {package} failed");
    }
    let mut binary = None;
    let mut bins = Vec::new();
    for exe in crate::artifacts::executables(&out.stdout) {
        if exe.kinds.iter().any(|k| k == "test") && exe.name == test {
            binary = Some(exe.path);
        } else if exe.kinds.iter().any(|k| k == "bin") {
            bins.push(exe.path);
        }
    }
    let binary = binary
        .with_context(|| format!("cargo reported no executable for test `{test}` of {package}"))?;
    check_static(&binary)?;
    for b in &bins {
        check_static(b)?;
    }
    Ok(TestBuild {
        package: package.to_owned(),
        test: test.to_owned(),
        binary,
        bins,
    })
}

/// Crash pairs by naming convention: an ignored test whose last path
/// segment starts with `crash_write` and its `crash_verify` twin. The list
/// comes from running the (static) binary on the host with `--list`.
fn crash_pairs(binary: &Path, filter: Option<&str>) -> Result<Vec<(String, String)>> {
    let out = Command::new(binary)
        .args(["--list", "--ignored"])
        .output()
        .with_context(|| format!("listing the tests of {}", binary.display()))?;
    if !out.status.success() {
        bail!("{} --list --ignored failed", binary.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .collect();
    let mut pairs = Vec::new();
    for w in &names {
        let (prefix, last) = w.rsplit_once("::").unwrap_or(("", w));
        let Some(rest) = last.strip_prefix("crash_write") else {
            continue;
        };
        let sep = if prefix.is_empty() { "" } else { "::" };
        let v = format!("{prefix}{sep}crash_verify{rest}");
        if !names.contains(&v.as_str()) {
            bail!("crash test {w} has no {v} to verify it");
        }
        if filter.is_none_or(|f| w.contains(f) || v.contains(f)) {
            pairs.push((w.to_string(), v));
        }
    }
    Ok(pairs)
}

/// One line of the final summary.
struct Line {
    what: String,
    ok: bool,
    detail: String,
}

fn run_tests(args: &[String]) -> Result<()> {
    let o = parse(args, false)?;
    // One image cannot hold two file systems; crash pairs use their own.
    if o.pmem_img.is_some() && file_systems(&o, true).len() != 1 {
        bail!("--pmem-img in test mode needs one file system: add --fs ext4 or --fs xfs");
    }
    if o.positional.len() > 1 {
        bail!("one FILTER at most (more test arguments go after --)\n\n{USAGE}");
    }
    let filter = o.positional.first().cloned();
    let targets: Vec<(String, String)> = match &o.package {
        Some(p) => vec![(
            p.clone(),
            o.test.clone().unwrap_or_else(|| DEFAULT_TEST.into()),
        )],
        None if o.test.is_some() => bail!("--test needs --package"),
        None => DEFAULT_TARGETS
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
    };
    let t0 = Instant::now();
    let mut builds = Vec::new();
    for (package, test) in &targets {
        let b = build_test_binary(package, test)?;
        let pairs = if o.no_crash_pairs {
            Vec::new()
        } else {
            crash_pairs(&b.binary, filter.as_deref())?
        };
        builds.push((b, pairs));
    }
    let assets = assets::prepare()?;
    let test_args: Vec<String> = if o.passthrough.is_empty() {
        DEFAULT_TEST_ARGS.iter().map(|s| s.to_string()).collect()
    } else {
        o.passthrough.clone()
    };
    let trials = o.trials.unwrap_or(1);

    let mut results: Vec<Line> = Vec::new();
    let mut reports: Vec<String> = Vec::new();
    let mut keep_report = |r: &vm::Report| {
        reports.extend(
            r.stdout
                .lines()
                // libtest may put "test NAME ... " in front of the line
                .filter_map(|l| l.find("DAXVM-").map(|i| l[i..].to_owned())),
        );
    };
    for fs in file_systems(&o, true) {
        for (b, _) in &builds {
            let mut s = spec(&o, &fs, &b.binary, Vec::new());
            s.files.extend(b.bins.iter().cloned());
            s.args = filter.iter().cloned().collect();
            s.args.extend(test_args.iter().cloned());
            eprintln!(
                "[dax-vm] === {fs}: {} `{}` {}",
                b.package,
                b.test,
                s.args.join(" ")
            );
            let r = vm::run(&assets, &s)?;
            keep_report(&r);
            results.push(Line {
                what: format!("{fs} {} tests", b.package),
                ok: r.outcome == Outcome::Exited(0),
                detail: r.summary(&fs),
            });
        }

        for trial in 1..=trials {
            for (b, pairs) in &builds {
                for (write, verify) in pairs {
                    let img = std::env::temp_dir()
                        .join(format!("xtask-dax-vm-pair.{}.{fs}.img", std::process::id()));
                    let _ = std::fs::remove_file(&img);
                    let mut s = spec(&o, &fs, &b.binary, Vec::new());
                    s.files.extend(b.bins.iter().cloned());
                    s.pmem_img = Some(img.clone()); // never the user's --pmem-img
                    let exact = |name: &str| {
                        [
                            "--ignored",
                            "--exact",
                            name,
                            "--nocapture",
                            "--test-threads=1",
                        ]
                        .map(String::from)
                        .to_vec()
                    };
                    let t = if trials > 1 {
                        format!(" (trial {trial}/{trials})")
                    } else {
                        String::new()
                    };
                    eprintln!("[dax-vm] === {fs}: {write}{t} (must crash the guest)");
                    s.args = exact(write);
                    let w = vm::run(&assets, &s)?;
                    keep_report(&w);
                    let crashed = matches!(w.outcome, Outcome::Crashed(_));
                    results.push(Line {
                        what: format!("{fs} {write}{t}"),
                        ok: crashed,
                        detail: w.summary(&fs),
                    });
                    if crashed {
                        eprintln!("[dax-vm] === {fs}: {verify}{t} (same NVDIMM, after the crash)");
                        s.args = exact(verify);
                        let v = vm::run(&assets, &s)?;
                        keep_report(&v);
                        results.push(Line {
                            what: format!("{fs} {verify}{t}"),
                            ok: v.outcome == Outcome::Exited(0),
                            detail: v.summary(&fs),
                        });
                    }
                    if !o.keep {
                        let _ = std::fs::remove_file(&img);
                    }
                }
            }
        }
    }

    eprintln!(
        "[dax-vm] summary ({:.1}s in all):",
        t0.elapsed().as_secs_f64()
    );
    for l in &results {
        eprintln!(
            "[dax-vm]   {} {}: {}",
            if l.ok { "PASS" } else { "FAIL" },
            l.what,
            l.detail
        );
    }
    if !reports.is_empty() {
        eprintln!("[dax-vm] what the tests reported:");
        for r in &reports {
            eprintln!("[dax-vm]   {r}");
        }
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        bail!("{failed} of {} dax-vm boots failed", results.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_mode_keeps_binary_arguments() {
        let o = parse(
            &strings(&["--fs", "xfs", "/bin/t", "--fs", "x", "--", "y"]),
            true,
        )
        .unwrap();
        assert_eq!(o.fs.as_deref(), Some("xfs"));
        assert_eq!(o.positional, strings(&["/bin/t", "--fs", "x", "--", "y"]));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse(&strings(&["--fs", "btrfs"]), false).is_err());
        assert!(parse(&strings(&["--timeout", "soon"]), false).is_err());
        assert!(parse(&strings(&["--timeout"]), false).is_err());
        assert!(parse(&strings(&["--env", "A B=c"]), false).is_err());
        assert!(parse(&strings(&["--frobnicate"]), false).is_err());
    }

    #[test]
    fn test_mode_splits_filter_and_test_args() {
        let o = parse(
            &strings(&["-p", "x", "sync_", "--", "--test-threads=1"]),
            false,
        )
        .unwrap();
        assert_eq!(o.positional, strings(&["sync_"]));
        assert_eq!(o.passthrough, strings(&["--test-threads=1"]));
    }
}
