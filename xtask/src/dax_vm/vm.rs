//! One guest boot: the per-run initramfs, the NVDIMM backing file, the QEMU
//! command line, the KVM-or-TCG choice, and reading back what happened.

use super::assets::Assets;
use super::cpio::Cpio;
use super::util::{fnv1a, sh_quote};
use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// NVDIMM label area, taken by QEMU from the end of the backing file.
const LABEL_SIZE: u64 = 128 << 10;
const DEFAULT_PMEM_MIB: u64 = 512;
const MIB: u64 = 1 << 20;

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

/// The NVDIMM's backing file, locked for the whole run.
struct Pmem {
    path: PathBuf,
    size: u64,
    existing: bool,
    file: File,
}

impl Pmem {
    /// A persistent image: absent, empty or all zero means new (the guest
    /// formats it); anything else must be one a previous run set up.
    fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening the pmem image {}", path.display()))?;
        if file.try_lock().is_err() {
            bail!("{} is in use by another dax-vm run", path.display());
        }
        let len = file.metadata()?.len();
        if len == 0 {
            file.set_len(DEFAULT_PMEM_MIB * MIB)?;
            return Ok(Self {
                path: path.to_path_buf(),
                size: DEFAULT_PMEM_MIB * MIB,
                existing: false,
                file,
            });
        }
        if len % (2 * MIB) != 0 || len < 64 * MIB {
            bail!(
                "{} is {len} bytes; a pmem image is a multiple of 2 MiB and at least 64 MiB",
                path.display()
            );
        }
        let existing = !all_zero(&mut file)?;
        if existing {
            // The label index must sit where our label size puts it, or the
            // guest would see a raw namespace and we would refuse it there
            // anyway, after a whole boot.
            let mut head = vec![0u8; 4096];
            file.seek(SeekFrom::Start(len - LABEL_SIZE))?;
            file.read_exact(&mut head)?;
            if !head.windows(15).any(|w| w == b"NAMESPACE_INDEX") {
                bail!(
                    "{} holds data but no NVDIMM label index in its last 128 KiB: not a dax-vm image; \
                     delete it to start over",
                    path.display()
                );
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            size: len,
            existing,
            file,
        })
    }

    fn scratch(path: &Path) -> Result<Self> {
        let file = File::create(path)?;
        file.set_len(DEFAULT_PMEM_MIB * MIB)?;
        Ok(Self {
            path: path.to_path_buf(),
            size: DEFAULT_PMEM_MIB * MIB,
            existing: false,
            file,
        })
    }

    /// Makes a new image all-zero again (sparse, same inode so the lock
    /// holds), so that a boot that died during setup leaves nothing that a
    /// retry would mistake for a set-up image.
    fn blank(&self) -> Result<()> {
        if !self.existing {
            self.file.set_len(0)?;
            self.file.set_len(self.size)?;
        }
        Ok(())
    }

    fn state(&self) -> &'static str {
        if self.existing {
            "existing"
        } else {
            "new"
        }
    }
}

fn all_zero(file: &mut File) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    if file.metadata()?.blocks() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// QEMU's option syntax doubles commas inside a value.
fn qemu_escape(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}

struct Boot<'a> {
    assets: &'a Assets,
    work: &'a Path,
    fs: &'a str,
    mem_mib: u64,
    smp: u32,
    verbose: bool,
}

/// What the files of one QEMU run said.
struct Seen {
    qemu_status: Option<std::process::ExitStatus>,
    timed_out: bool,
    control: String,
    console: String,
    qemu_err: String,
    boot: Option<Duration>,
    stdout: String,
}

impl Boot<'_> {
    fn command(&self, accel: Accel, initrd: &Path, pmem: &Pmem, extra: &str) -> Command {
        let mut c = Command::new(&self.assets.qemu);
        c.args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ]);
        match accel {
            Accel::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
            _ => c.args(["-accel", "tcg", "-cpu", "max"]),
        };
        let pmem_mib = pmem.size / MIB;
        c.args(["-machine", "pc,nvdimm=on"])
            .arg("-m")
            .arg(format!(
                "{}M,slots=2,maxmem={}M",
                self.mem_mib,
                self.mem_mib + pmem_mib + 1024
            ))
            .arg("-smp")
            .arg(self.smp.to_string())
            // share=on: every guest store lands in the file, which is what
            // makes the image persistent. Never discard-data=on: QEMU would
            // throw the contents away at exit.
            .arg("-object")
            .arg(format!(
                "memory-backend-file,id=pmem0,share=on,mem-path={},size={pmem_mib}M,align=2M",
                qemu_escape(&pmem.path)
            ))
            .arg("-device")
            .arg(format!(
                "nvdimm,memdev=pmem0,id=nvdimm0,label-size={}K",
                LABEL_SIZE >> 10
            ));
        for port in ["console", "stdout", "stderr", "control"] {
            c.arg("-serial")
                .arg(format!("file:{}", qemu_escape(&self.work.join(port))));
        }
        c.arg("-kernel")
            .arg(&self.assets.boot_image)
            .arg("-initrd")
            .arg(initrd)
            .arg("-append")
            .arg(format!(
                "console=ttyS0 panic=-1 quiet loglevel=4 daxvm.fs={} daxvm.pmem={} {extra}",
                self.fs,
                pmem.state()
            ));
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Runs QEMU to its end or the deadline, copying the guest binary's
    /// output through as it arrives.
    fn run(&self, mut cmd: Command, timeout: Duration, stream: bool) -> Result<Seen> {
        for port in ["console", "stdout", "stderr", "control"] {
            File::create(self.work.join(port))?;
        }
        if self.verbose {
            say(&format!("{cmd:?}"));
        }
        let start = Instant::now();
        let mut child = cmd.spawn().context("starting QEMU")?;
        let mut err_pipe = child.stderr.take().context("QEMU stderr")?;
        // drained on a thread so that a chatty QEMU cannot block on the pipe
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            s
        });
        let mut out = Tail::new(self.work.join("stdout"));
        let mut err = Tail::new(self.work.join("stderr"));
        let mut boot = None;
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break Some(st);
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break None;
            }
            if boot.is_none()
                && fs::read_to_string(self.work.join("control"))
                    .is_ok_and(|c| c.contains("daxvm started"))
            {
                boot = Some(start.elapsed());
            }
            if stream {
                out.copy_to(&mut std::io::stdout())?;
                err.copy_to(&mut std::io::stderr())?;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if stream {
            out.copy_to(&mut std::io::stdout())?;
            err.copy_to(&mut std::io::stderr())?;
        }
        let read = |name: &str| {
            fs::read(self.work.join(name))
                .map(|b| String::from_utf8_lossy(&b).replace('\r', ""))
                .unwrap_or_default()
        };
        let control = read("control");
        if boot.is_none() && control.contains("daxvm started") {
            boot = Some(start.elapsed());
        }
        Ok(Seen {
            qemu_status: status,
            timed_out,
            control,
            console: read("console"),
            qemu_err: err_reader.join().unwrap_or_default(),
            boot,
            stdout: read("stdout"),
        })
    }
}

/// Follows a growing file, forwarding what is new.
struct Tail {
    path: PathBuf,
    pos: u64,
}

impl Tail {
    fn new(path: PathBuf) -> Self {
        Self { path, pos: 0 }
    }

    fn copy_to(&mut self, w: &mut dyn Write) -> Result<()> {
        let Ok(mut f) = File::open(&self.path) else {
            return Ok(());
        };
        f.seek(SeekFrom::Start(self.pos))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.pos += buf.len() as u64;
        w.write_all(&buf)?;
        w.flush()?;
        Ok(())
    }
}

/// Sorts a finished boot into an outcome.
fn judge(seen: &Seen) -> Outcome {
    let mut exit = None;
    let mut failure = None;
    for line in seen.control.lines() {
        if let Some(rc) = line.strip_prefix("daxvm exit ") {
            exit = rc.trim().parse::<i32>().ok();
        } else if let Some(msg) = line.strip_prefix("daxvm failed ") {
            failure = Some(msg.to_owned());
        }
    }
    if let Some(msg) = failure {
        return Outcome::Failed(format!("in the guest: {msg}"));
    }
    if let Some(rc) = exit {
        return Outcome::Exited(rc);
    }
    if seen.timed_out {
        return Outcome::TimedOut;
    }
    // A requested crash: the binary started, the kernel logged the sysrq
    // that the binary triggered, and QEMU left by itself (panic=-1 resets,
    // -no-reboot turns the reset into an exit).
    let started = seen.control.contains("daxvm started");
    let after_start = seen
        .console
        .split_once("daxvm-init: running the binary")
        .map(|(_, rest)| rest)
        .unwrap_or("");
    let clean_exit = seen.qemu_status.is_some_and(|s| s.success());
    if started && clean_exit {
        if after_start.contains("sysrq: Trigger a crash") {
            return Outcome::Crashed('c');
        }
        if after_start.contains("sysrq: Resetting") {
            return Outcome::Crashed('b');
        }
    }
    let why = match seen.qemu_status {
        Some(s) if !s.success() => format!("QEMU failed ({s})"),
        _ if started => "the guest died while the binary ran (not a requested crash)".to_owned(),
        _ => "the guest died before the binary started".to_owned(),
    };
    Outcome::Failed(why)
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

/// Decides between KVM and TCG. KVM is used only after a probe boot showed
/// that this host's KVM really runs our guest kernel (it can exist and still
/// fail, e.g. a PVM host without VT-x); the verdict is cached per host
/// kernel, QEMU and guest kernel.
fn choose_accel(boot: &Boot, requested: Accel) -> Result<Accel> {
    if requested != Accel::Auto {
        return Ok(requested);
    }
    if OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(Accel::Tcg);
    }
    let qemu_version = Command::new(&boot.assets.qemu)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    let key = format!(
        "{}\n{}\n{}\n{}",
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        qemu_version,
        boot.assets.kernel_pkg,
        boot.assets.boot_image.display()
    );
    let state = boot.assets.cache.join("state");
    fs::create_dir_all(&state)?;
    let verdict = state.join(format!("kvm-{:016x}", fnv1a(key.as_bytes())));
    if let Ok(v) = fs::read_to_string(&verdict) {
        return Ok(if v.trim() == "ok" {
            Accel::Kvm
        } else {
            Accel::Tcg
        });
    }
    let limit = std::env::var("QOM_DAXVM_KVM_PROBE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    say(&format!(
        "probing whether KVM can run the guest (once; up to {limit} s)"
    ));
    let pmem = Pmem::scratch(&boot.work.join("probe-pmem.img"))?;
    let cmd = boot.command(Accel::Kvm, &boot.assets.base_initrd, &pmem, "daxvm.probe=1");
    let seen = boot.run(cmd, Duration::from_secs(limit), false)?;
    let _ = fs::remove_file(&pmem.path);
    let ok = seen.control.contains("daxvm probe-ok");
    fs::write(&verdict, if ok { "ok\n" } else { "bad\n" })?;
    if !ok {
        say(&format!(
            "KVM cannot run the guest here; using TCG (verdict in {})",
            verdict.display()
        ));
    }
    Ok(if ok { Accel::Kvm } else { Accel::Tcg })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn seen(control: &str, console: &str, status: Option<i32>, timed_out: bool) -> Seen {
        Seen {
            qemu_status: status.map(|c| std::process::ExitStatus::from_raw(c << 8)),
            timed_out,
            control: control.into(),
            console: console.into(),
            qemu_err: String::new(),
            boot: None,
            stdout: String::new(),
        }
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            judge(&seen("daxvm started\ndaxvm exit 3\n", "", Some(0), false)),
            Outcome::Exited(3)
        );
        let crash = "daxvm-init: running the binary\n[ 1.0] sysrq: Trigger a crash\n";
        assert_eq!(
            judge(&seen("daxvm started\n", crash, Some(0), false)),
            Outcome::Crashed('c')
        );
        // a sysrq line before the binary ran is not the binary's request
        let early = "[ 1.0] sysrq: Trigger a crash\ndaxvm-init: running the binary\n";
        assert!(matches!(
            judge(&seen("daxvm started\n", early, Some(0), false)),
            Outcome::Failed(_)
        ));
        assert!(matches!(
            judge(&seen("", "", Some(0), false)),
            Outcome::Failed(_)
        ));
        assert_eq!(
            judge(&seen("daxvm started\n", "", None, true)),
            Outcome::TimedOut
        );
        assert!(matches!(
            judge(&seen("daxvm failed mkfs\n", "", Some(0), false)),
            Outcome::Failed(m) if m.contains("mkfs")
        ));
    }
}
