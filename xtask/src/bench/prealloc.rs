//! `cargo xtask bench prealloc`: how long the whole `qom` process takes to
//! create a memory-backend-file with `prealloc=on` (2 GiB, `share=on`, a
//! new file each time) on ext4 and on tmpfs with 1 and 2 threads, next to
//! the `prealloc-ref` program (open, ftruncate, 2 MiB-aligned mmap,
//! MADV_POPULATE_WRITE; src/bench/prealloc_ref.rs) and, when installed,
//! `qemu-system-x86_64`.
//!
//! Method (as the oracle measured QEMU, ../shared/oracle/perf_qemu.py):
//! every timed run starts from a removed file, a `sync`, and an untimed
//! populate+free of the same size in tmpfs (this VM hands freed memory back
//! to the host, and touching it again costs host faults; warming makes every
//! run start alike). The variants are interleaved, in an order shuffled anew
//! each round, so that noise from other users of the machine is spread evenly.
//! A run is timed from just before the process is spawned until it has been
//! reaped. `qom` is also run with `prealloc=off` to estimate the part of its
//! time that preallocation (and freeing the populated mapping at exit)
//! takes: median(on) - median(off), compared with the reference's own
//! populate + munmap/close time.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::build_release;
use report::report;

mod report;

const USAGE: &str = "\
usage: cargo xtask bench prealloc [OPTIONS]

options:
  --runs N          timed runs per variant (default 5)
  --size-mib N      backend size in MiB (default 2048)
  --threads LIST    prealloc-threads values, comma separated (default 1,2)
  --ext4-dir DIR    where the ext4 files go (default /var/tmp; must be ext4)
  --tmpfs-dir DIR   where the tmpfs files go (default /dev/shm; must be tmpfs)
  --qemu PROG       QEMU binary (default qemu-system-x86_64 from $PATH)
  --no-qemu         do not run QEMU even when it is installed
  --no-warm         do not populate+free tmpfs memory before each timed run
  --fs WHICH        tmpfs, ext4 or both (default both)
  --json PATH       also write every sample, in the order run, as JSON
  --seed N          seed of the per-round shuffle of the variants (default: clock)
";

/// The goal: ours within this factor of the reference in every cell.
const GOAL: f64 = 1.15;
/// A cell whose slowest run took this many times its fastest is noisy.
const NOISY_SPREAD: f64 = 1.5;
const EXT4_MAGIC: u64 = 0xEF53;
const TMPFS_MAGIC: u64 = 0x0102_1994;

struct Options {
    runs: usize,
    size_mib: u64,
    threads: Vec<u32>,
    ext4_dir: PathBuf,
    tmpfs_dir: PathBuf,
    qemu: Option<String>,
    warm: bool,
    seed: Option<u64>,
    fs: Vec<Fs>,
    json: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut o = Options {
        runs: 5,
        size_mib: 2048,
        threads: vec![1, 2],
        ext4_dir: PathBuf::from("/var/tmp"),
        tmpfs_dir: PathBuf::from("/dev/shm"),
        qemu: Some("qemu-system-x86_64".into()),
        warm: true,
        seed: None,
        fs: vec![Fs::Tmpfs, Fs::Ext4],
        json: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value\n\n{USAGE}"))
        };
        let positive = |v: &str| -> Result<u64> {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("{a} needs a positive number, not {v:?}"))
        };
        match a.as_str() {
            "--runs" => o.runs = positive(&value()?)? as usize,
            "--size-mib" => o.size_mib = positive(&value()?)?,
            "--threads" => {
                o.threads = value()?
                    .split(',')
                    .map(|t| positive(t).map(|n| n as u32))
                    .collect::<Result<_>>()?
            }
            "--ext4-dir" => o.ext4_dir = PathBuf::from(value()?),
            "--tmpfs-dir" => o.tmpfs_dir = PathBuf::from(value()?),
            "--qemu" => o.qemu = Some(value()?),
            "--no-qemu" => o.qemu = None,
            "--no-warm" => o.warm = false,
            "--fs" => {
                o.fs = match value()?.as_str() {
                    "tmpfs" => vec![Fs::Tmpfs],
                    "ext4" => vec![Fs::Ext4],
                    "both" => vec![Fs::Tmpfs, Fs::Ext4],
                    v => bail!("--fs must be tmpfs, ext4 or both, not {v:?}"),
                }
            }
            "--json" => o.json = Some(PathBuf::from(value()?)),
            "--seed" => o.seed = Some(positive(&value()?)?),
            "-h" | "--help" | "help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    Ok(Some(o))
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Fs {
    Ext4,
    Tmpfs,
}

impl Fs {
    fn name(self) -> &'static str {
        match self {
            Fs::Ext4 => "ext4",
            Fs::Tmpfs => "tmpfs",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Who {
    /// `qom` with prealloc=on.
    Ours,
    /// `qom` with prealloc=off (start-up, mapping and exit only).
    OursNoPrealloc,
    /// `prealloc-ref`.
    Reference,
    /// `qemu-system-x86_64` with prealloc=on.
    Qemu,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Ours => "qom",
            Who::OursNoPrealloc => "qom prealloc=off",
            Who::Reference => "reference",
            Who::Qemu => "qemu",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Variant {
    fs: Fs,
    who: Who,
    threads: u32,
}

/// What one timed run gave.
struct Sample {
    /// Spawn to reaped, seconds.
    wall: f64,
    /// The reference's populate + teardown time, seconds.
    populate: Option<f64>,
}

/// Removes the benchmark's directories when dropped.
struct Dirs(Vec<PathBuf>);

impl Drop for Dirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

struct Bench {
    opts: Options,
    qom: PathBuf,
    reference: PathBuf,
    qemu: Option<PathBuf>,
    dirs: HashMap<Fs, PathBuf>,
    warm_file: PathBuf,
}

/// Runs the benchmark and prints the table.
pub fn run(args: &[String]) -> Result<()> {
    let Some(opts) = parse(args)? else {
        return Ok(());
    };
    // tmpfs is also where the machine is warmed, so it is always checked
    if opts.fs.contains(&Fs::Ext4) {
        check_fs(&opts.ext4_dir, EXT4_MAGIC, "ext4")?;
    }
    check_fs(&opts.tmpfs_dir, TMPFS_MAGIC, "tmpfs")?;
    let qemu = find_qemu(opts.qemu.as_deref());
    let bins = build_release(&[("qom-cli", "qom"), ("xtask", "prealloc-ref")])?;

    let tag = format!("qom-bench-{}", std::process::id());
    let ext4 = opts.ext4_dir.join(&tag);
    let tmpfs = opts.tmpfs_dir.join(&tag);
    let guard = Dirs(vec![ext4.clone(), tmpfs.clone()]);
    for d in &guard.0 {
        std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let bench = Bench {
        warm_file: tmpfs.join("warm"),
        dirs: HashMap::from([(Fs::Ext4, ext4), (Fs::Tmpfs, tmpfs)]),
        qom: bins[0].clone(),
        reference: bins[1].clone(),
        qemu: qemu.as_ref().map(|(p, _)| p.clone()),
        opts,
    };

    let mut variants = Vec::new();
    for &fs in &bench.opts.fs {
        variants.push(Variant {
            fs,
            who: Who::OursNoPrealloc,
            threads: 1,
        });
        for &threads in &bench.opts.threads {
            let mut whos = vec![Who::Ours, Who::Reference];
            if bench.qemu.is_some() {
                whos.push(Who::Qemu);
            }
            for who in whos {
                variants.push(Variant { fs, who, threads });
            }
        }
    }

    eprintln!(
        "bench prealloc: {} MiB, share=on, {} runs of {} variants{}",
        bench.opts.size_mib,
        bench.opts.runs,
        variants.len(),
        if bench.opts.warm {
            ", each after a populate+free of the same size in tmpfs"
        } else {
            ""
        }
    );
    let mut seed = bench.opts.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("bench prealloc: order seed {seed} (--seed to repeat it)");
    let mut samples: HashMap<Variant, Vec<Sample>> = HashMap::new();
    let mut log = Vec::new();
    let start = Instant::now();
    for round in 0..bench.opts.runs {
        let mut order = variants.clone();
        shuffle(&mut order, &mut seed);
        eprint!("round {}/{}:", round + 1, bench.opts.runs);
        for v in order {
            let s = bench.measure(v)?;
            eprint!(" {}", fmt_s(s.wall));
            let _ = std::io::stderr().flush();
            log.push(serde_json::json!({
                "round": round + 1,
                "fs": v.fs.name(),
                "who": v.who.name(),
                "threads": v.threads,
                "wall_s": s.wall,
                "ref_populate_s": s.populate,
            }));
            samples.entry(v).or_default().push(s);
        }
        eprintln!();
    }
    eprintln!("({:.0} s)", start.elapsed().as_secs_f64());
    drop(guard);
    if let Some(path) = &bench.opts.json {
        let doc = serde_json::json!({
            "benchmark": "prealloc",
            "size_mib": bench.opts.size_mib,
            "runs": bench.opts.runs,
            "warm": bench.opts.warm,
            "qemu": qemu.as_ref().map(|(_, v)| v),
            "samples": log,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    report(&bench, &samples, qemu.as_ref().map(|(_, v)| v.as_str()));
    Ok(())
}

fn check_fs(dir: &Path, magic: u64, name: &str) -> Result<()> {
    let st = rustix::fs::statfs(dir).with_context(|| format!("statfs {}", dir.display()))?;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs per target
    let f_type = st.f_type as u64;
    if f_type != magic {
        bail!(
            "{} is not on {name} (file system magic {f_type:#x}); pick another directory",
            dir.display()
        );
    }
    Ok(())
}

/// QEMU's path and version line, or None (with a note) when not installed.
fn find_qemu(prog: Option<&str>) -> Option<(PathBuf, String)> {
    let prog = prog?;
    let path = if prog.contains('/') {
        Some(PathBuf::from(prog)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(prog))
                .find(|p| p.is_file())
        })
    };
    let Some(path) = path else {
        eprintln!("bench prealloc: note: {prog} is not installed; QEMU is skipped");
        return None;
    };
    let version = Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("QEMU emulator version "))
                .map(|v| v.split_whitespace().next().unwrap_or(v).to_owned())
        });
    let Some(version) = version else {
        eprintln!(
            "bench prealloc: note: {} gave no QEMU version; skipped",
            path.display()
        );
        return None;
    };
    if version != "10.0.2" {
        eprintln!(
            "bench prealloc: note: QEMU {version} is installed; the oracle's figures \
             (../shared/oracle) are for 10.0.2"
        );
    }
    Some((path, version))
}

impl Bench {
    /// One timed run of `v`, prepared as the oracle does: no file, sync,
    /// warm; the file is removed again afterwards.
    fn measure(&self, v: Variant) -> Result<Sample> {
        let file = self.dirs[&v.fs].join("backend");
        remove_if_present(&file)?;
        rustix::fs::sync();
        if self.opts.warm && v.who != Who::OursNoPrealloc {
            let out = Command::new(&self.reference)
                .arg(&self.warm_file)
                .arg(self.opts.size_mib.to_string())
                .args(["1", "--unlink"])
                .output()
                .context("running prealloc-ref to warm")?;
            if !out.status.success() {
                remove_if_present(&self.warm_file)?;
                bail!("warming failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let spec = format!(
            "memory-backend-file,id=m,size={}M,mem-path={},share=on,prealloc={},prealloc-threads={}",
            self.opts.size_mib,
            file.display().to_string().replace(',', ",,"),
            if v.who == Who::OursNoPrealloc {
                "off"
            } else {
                "on"
            },
            v.threads
        );
        let sample = match v.who {
            Who::Ours | Who::OursNoPrealloc => {
                let mut cmd = Command::new(&self.qom);
                cmd.args(["-object", &spec]);
                let (wall, _) = timed(cmd, None, v)?;
                Sample {
                    wall,
                    populate: None,
                }
            }
            Who::Reference => {
                let mut cmd = Command::new(&self.reference);
                cmd.arg(&file)
                    .arg(self.opts.size_mib.to_string())
                    .arg(v.threads.to_string());
                let (wall, stdout) = timed(cmd, None, v)?;
                let field = |k: &str| {
                    stdout.split_whitespace().find_map(|kv| {
                        kv.strip_prefix(k)
                            .and_then(|x| x.strip_prefix('='))
                            .and_then(|x| x.parse::<f64>().ok())
                    })
                };
                Sample {
                    wall,
                    populate: field("populate_s")
                        .zip(field("teardown_s"))
                        .map(|(p, t)| p + t),
                }
            }
            Who::Qemu => {
                let mut cmd = Command::new(self.qemu.as_ref().context("no QEMU")?);
                cmd.args(["-machine", "none", "-nodefaults", "-display", "none"])
                    .args(["-qmp", "stdio", "-object", &spec]);
                // QEMU creates the backend before it serves QMP; these two
                // commands make it exit as soon as it does.
                let qmp = b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";
                let (wall, _) = timed(cmd, Some(qmp), v)?;
                Sample {
                    wall,
                    populate: None,
                }
            }
        };
        remove_if_present(&file)?;
        Ok(sample)
    }
}

/// Shuffles `v` in place (Fisher-Yates with xorshift64), so that the
/// variants have different neighbours in every round: a variant that always
/// ran right after the same other one could inherit its after-effects.
fn shuffle<T>(v: &mut [T], state: &mut u64) {
    for i in (1..v.len()).rev() {
        let mut x = (*state).max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Runs `cmd` (stdin from `input` if given) and returns the time from
/// spawn to reaped, and its stdout. A failure is an error naming `v`.
fn timed(mut cmd: Command, input: Option<&[u8]>, v: Variant) -> Result<(f64, String)> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    // Keep stdin open until the process has exited (QEMU treats EOF on a
    // stdio monitor as a reason to stop reading, not to quit).
    let stdin = child.stdin.take();
    if let (Some(mut w), Some(data)) = (stdin.as_ref(), input) {
        w.write_all(data).context("writing to stdin")?;
    }
    let out = child.wait_with_output().context("waiting")?;
    let wall = t0.elapsed().as_secs_f64();
    drop(stdin);
    if !out.status.success() {
        bail!(
            "{} ({}, {} thread(s)) failed ({}): {}",
            v.who.name(),
            v.fs.name(),
            v.threads,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((wall, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn remove_if_present(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    }
}

fn fmt_s(s: f64) -> String {
    if s < 0.1 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.3}s")
    }
}
