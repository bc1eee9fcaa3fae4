//! The QEMU side of one boot: the command line, running it with a
//! timeout while following the console, sorting what it said into an
//! outcome, and the KVM-or-TCG choice.

use super::pmem::{Pmem, LABEL_SIZE, MIB};
use super::{say, Accel, Outcome};
use crate::dax_vm::assets::Assets;
use crate::dax_vm::util::fnv1a;
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// QEMU's option syntax doubles commas inside a value.
fn qemu_escape(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}

pub(super) struct Boot<'a> {
    pub(super) assets: &'a Assets,
    pub(super) work: &'a Path,
    pub(super) fs: &'a str,
    pub(super) mem_mib: u64,
    pub(super) smp: u32,
    pub(super) verbose: bool,
}

/// What the files of one QEMU run said.
pub(super) struct Seen {
    pub(super) qemu_status: Option<std::process::ExitStatus>,
    pub(super) timed_out: bool,
    pub(super) control: String,
    pub(super) console: String,
    pub(super) qemu_err: String,
    pub(super) boot: Option<Duration>,
    pub(super) stdout: String,
}

impl Boot<'_> {
    pub(super) fn command(&self, accel: Accel, initrd: &Path, pmem: &Pmem, extra: &str) -> Command {
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
    pub(super) fn run(&self, mut cmd: Command, timeout: Duration, stream: bool) -> Result<Seen> {
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
pub(super) fn judge(seen: &Seen) -> Outcome {
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

/// Decides between KVM and TCG. KVM is used only after a probe boot showed
/// that this host's KVM really runs our guest kernel (it can exist and still
/// fail, e.g. a PVM host without VT-x); the verdict is cached per host
/// kernel, QEMU and guest kernel.
pub(super) fn choose_accel(boot: &Boot, requested: Accel) -> Result<Accel> {
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
