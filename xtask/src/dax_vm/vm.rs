//! One guest boot: the per-run initramfs, the NVDIMM backing file, the QEMU
//! command line, the KVM-or-TCG choice, and reading back what happened.

use super::assets::Assets;
use super::cpio::Cpio;
use super::util::sh_quote;
use anyhow::{bail, Context, Result};
use boot::{choose_accel, judge, Boot};
use pmem::Pmem;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod boot;
mod pmem;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// What to boot.
pub struct Spec {
    pub fs: String,
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Extra host files packed into the guest at the same absolute path
    /// (e.g. the `qom` binary that `CARGO_BIN_EXE_qom` names).
    pub files: Vec<PathBuf>,
    pub pmem_img: Option<PathBuf>,
    pub accel: Accel,
    pub timeout: Duration,
    pub mem_mib: u64,
    pub smp: u32,
    pub keep: bool,
    pub verbose: bool,
}

/// How a boot ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The binary exited with this status; the guest unmounted and synced.
    Exited(i32),
    /// The binary crashed the guest through sysrq (`c` or `b`) on purpose.
    Crashed(char),
    TimedOut,
    /// The guest never ran the binary to completion; the message says why.
    Failed(String),
}

/// The outcome plus timings for the report.
pub struct Report {
    pub outcome: Outcome,
    pub accel: Accel,
    pub pmem_state: &'static str,
    /// Spawn to the binary's start (all of the guest's setup).
    pub boot: Option<Duration>,
    pub total: Duration,
    /// Everything the binary wrote to stdout.
    pub stdout: String,
}

/// `Exited`'s exit code for `run` mode, mirroring the statuses of the
/// reference runner so that scripts can use either.
pub const EXIT_CRASHED: i32 = 123;
pub const EXIT_TIMEOUT: i32 = 124;
pub const EXIT_FAILED: i32 = 125;

fn say(msg: &str) {
    eprintln!("[dax-vm] {msg}");
}

/// A fresh per-run directory under the system temp dir.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn new(keep: bool) -> Result<Self> {
        let base = std::env::temp_dir();
        for n in 0..1000 {
            let path = base.join(format!("xtask-dax-vm.{}.{n}", std::process::id()));
            if fs::create_dir(&path).is_ok() {
                return Ok(Self { path, keep });
            }
        }
        bail!("cannot create a work directory in {}", base.display())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            say(&format!("kept {}", self.path.display()));
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The per-run archive: the binary, its arguments and environment.
fn payload(spec: &Spec) -> Result<Vec<u8>> {
    let bin = fs::read(&spec.binary)
        .with_context(|| format!("reading the test binary {}", spec.binary.display()))?;
    // The binary keeps its own name: argv[0] matters to some (multi-call
    // binaries, test harnesses that print it).
    let name = spec
        .binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "test-binary".into());
    let mut args = format!("DAXVM_BIN={}\nset --", sh_quote(&name));
    for a in &spec.args {
        args.push(' ');
        args.push_str(&sh_quote(a));
    }
    args.push('\n');
    let mut env = String::new();
    for (k, v) in &spec.env {
        env.push_str(&format!("export {k}={}\n", sh_quote(v)));
    }
    let mut c = Cpio::new();
    c.file(&format!("daxvm/bin/{name}"), true, &bin)?;
    c.file("daxvm/args", false, args.as_bytes())?;
    c.file("daxvm/env", false, env.as_bytes())?;
    let mut dirs = std::collections::BTreeSet::new();
    for f in &spec.files {
        let guest = guest_path(f)?;
        let data = fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        // the kernel's unpacker does not make parent directories
        let mut parent = String::new();
        let comps: Vec<&str> = guest.split('/').filter(|c| !c.is_empty()).collect();
        for comp in &comps[..comps.len() - 1] {
            parent.push('/');
            parent.push_str(comp);
            if dirs.insert(parent.clone()) {
                c.dir(&parent)?;
            }
        }
        c.file(&guest, true, &data)?;
    }
    c.finish()
}

/// Where an extra file goes in the guest: its own absolute path, which must
/// not be under a directory that the guest's init mounts over or owns.
fn guest_path(host: &Path) -> Result<String> {
    let s = host
        .to_str()
        .with_context(|| format!("{} is not UTF-8", host.display()))?;
    if !host.is_absolute() || s.split('/').any(|c| c == "." || c == "..") {
        bail!("extra guest file {s}: needs a plain absolute path");
    }
    const HIDDEN: &[&str] = &["/proc", "/sys", "/dev", "/mnt/dax", "/mnt/nodax", "/daxvm"];
    if let Some(d) = HIDDEN
        .iter()
        .find(|d| s == **d || s.starts_with(&format!("{d}/")))
    {
        bail!(
            "extra guest file {s}: {d} is mounted over or used by the guest's init; \
             build somewhere else (set CARGO_TARGET_DIR outside {d})"
        );
    }
    Ok(s.to_owned())
}

/// Boots the guest once for `spec`.
pub fn run(assets: &Assets, spec: &Spec) -> Result<Report> {
    let t0 = Instant::now();
    let work = WorkDir::new(spec.keep)?;
    let pmem = match &spec.pmem_img {
        Some(p) => {
            let p = if p.is_absolute() {
                p.clone()
            } else {
                std::env::current_dir()?.join(p)
            };
            Pmem::open(&p)?
        }
        None => Pmem::scratch(&work.path.join("pmem.img"))?,
    };
    let initrd = work.path.join("initrd.cpio");
    let mut bytes = fs::read(&assets.base_initrd).context("reading the base initramfs")?;
    bytes.extend_from_slice(&payload(spec)?);
    fs::write(&initrd, bytes)?;

    let boot = Boot {
        assets,
        work: &work.path,
        fs: &spec.fs,
        mem_mib: spec.mem_mib,
        smp: spec.smp,
        verbose: spec.verbose,
    };
    let mut accel = choose_accel(&boot, spec.accel)?;
    let (seen, outcome) = loop {
        pmem.blank()?;
        let seen = boot.run(boot.command(accel, &initrd, &pmem, ""), spec.timeout, true)?;
        let outcome = judge(&seen);
        // A KVM that passed the probe but still dies before the binary
        // starts gets one TCG retry, and loses its "ok" verdict.
        if spec.accel == Accel::Auto
            && accel == Accel::Kvm
            && seen.boot.is_none()
            && matches!(outcome, Outcome::Failed(_) | Outcome::TimedOut)
        {
            say("the KVM boot failed before the binary started; retrying with TCG");
            for e in fs::read_dir(assets.cache.join("state"))?.flatten() {
                if e.file_name().to_string_lossy().starts_with("kvm-") {
                    let _ = fs::write(e.path(), "bad\n");
                }
            }
            accel = Accel::Tcg;
            continue;
        }
        break (seen, outcome);
    };

    // The guest's own progress lines, then diagnostics for anything odd.
    let quiet = std::env::var_os("QOM_DAXVM_QUIET").is_some();
    if spec.verbose {
        for line in seen.console.lines() {
            eprintln!("[guest] {line}");
        }
    } else if !quiet {
        for line in seen
            .console
            .lines()
            .filter_map(|l| l.strip_prefix("daxvm-init: "))
        {
            eprintln!("[dax-vm] guest: {line}");
        }
    }
    match &outcome {
        Outcome::Exited(_) => {}
        Outcome::Crashed(k) => say(&format!(
            "guest crashed as requested (sysrq {k}; no sync, no unmount)"
        )),
        Outcome::TimedOut | Outcome::Failed(_) => {
            let what = match &outcome {
                Outcome::Failed(m) => m.clone(),
                _ => format!("timed out after {} s", spec.timeout.as_secs()),
            };
            eprintln!("[dax-vm] error: {what} (accel {accel:?}); console tail:");
            if !spec.verbose {
                let lines: Vec<&str> = seen.console.lines().collect();
                for line in &lines[lines.len().saturating_sub(60)..] {
                    eprintln!("[guest] {line}");
                }
            }
            for line in seen.qemu_err.lines() {
                eprintln!("[qemu] {line}");
            }
        }
    }
    Ok(Report {
        outcome,
        accel,
        pmem_state: pmem.state(),
        boot: seen.boot,
        total: t0.elapsed(),
        stdout: seen.stdout,
    })
}

impl Report {
    /// The exit code `run` mode ends with.
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Exited(rc) => rc,
            Outcome::Crashed(_) => EXIT_CRASHED,
            Outcome::TimedOut => EXIT_TIMEOUT,
            Outcome::Failed(_) => EXIT_FAILED,
        }
    }

    pub fn summary(&self, fs: &str) -> String {
        let boot = self
            .boot
            .map(|b| format!("{:.1}s", b.as_secs_f64()))
            .unwrap_or_else(|| "-".into());
        format!(
            "accel={} fs={fs} pmem={} outcome={:?} boot={boot} total={:.1}s",
            if self.accel == Accel::Kvm {
                "kvm"
            } else {
                "tcg"
            },
            self.pmem_state,
            self.outcome,
            self.total.as_secs_f64()
        )
    }
}
