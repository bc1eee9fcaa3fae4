//! `cargo xtask bench qmp`: the QMP server side by side with QEMU, measured
//! with a native client (Rust, one request in flight) in one invocation.
//!
//! Three figures, each for `qom` and for `qemu-system-x86_64 -machine none`
//! (when installed), runs interleaved, medians reported:
//! - process start to QMP greeting (stdio);
//! - sequential `qom-get` round trips over a Unix socket;
//! - `object-add` + `object-del` cycles of a 2 MiB memory-backend-file in
//!   /dev/shm over a Unix socket.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server under test.
pub(super) struct Server {
    pub(super) label: &'static str,
    pub(super) program: PathBuf,
    /// Arguments that come before `-qmp ...`.
    pub(super) base_args: Vec<String>,
    /// Environment variables set for the server.
    pub(super) env: Vec<(&'static str, String)>,
}

impl Server {
    fn command(&self, qmp: &str, objects: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.base_args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        for o in objects {
            c.args(["-object", o]);
        }
        c.args(["-qmp", qmp])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        c
    }
}

/// How the client waits for a reply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// A blocking read: the thread sleeps until the reply arrives.
    Block,
    /// Non-blocking reads in a loop for up to 2 ms before blocking, as a
    /// latency-sensitive client does; the same for every server.
    Poll,
}

/// The reading side of the client socket.
struct ClientReader {
    stream: UnixStream,
    wait: Wait,
}

impl std::io::Read for ClientReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.wait == Wait::Poll {
            let until = Instant::now() + Duration::from_millis(2);
            while Instant::now() < until {
                match rustix::net::recv(&self.stream, &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
                    Ok((n, _)) => return Ok(n),
                    Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {
                        std::hint::spin_loop()
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.stream.read(buf)
    }
}

/// A QMP connection: newline-delimited JSON.
pub(super) struct Client {
    reader: BufReader<ClientReader>,
    writer: UnixStream,
    line: String,
}

impl Client {
    fn connect(path: &Path, wait: Wait) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    return Err(e).with_context(|| format!("connecting to {}", path.display()))
                }
            }
        };
        let mut c = Client {
            reader: BufReader::new(ClientReader {
                stream: stream.try_clone()?,
                wait,
            }),
            writer: stream,
            line: String::new(),
        };
        // Events may precede the greeting (QEMU's RESUME race); skip them.
        loop {
            let v = c.read()?;
            if v.get("QMP").is_some() {
                break;
            }
        }
        c.call("qmp_capabilities", json!({}))?;
        Ok(c)
    }

    fn read(&mut self) -> Result<Value> {
        self.line.clear();
        if self.reader.read_line(&mut self.line)? == 0 {
            bail!("server closed the connection");
        }
        Ok(serde_json::from_str(&self.line)?)
    }

    /// Sends one request and waits for its reply (events are skipped).
    pub(super) fn call(&mut self, execute: &str, arguments: Value) -> Result<Value> {
        let req = json!({"execute": execute, "arguments": arguments});
        let mut text = req.to_string();
        text.push('\n');
        self.writer.write_all(text.as_bytes())?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                bail!("{execute}: {e}");
            }
        }
    }
}

pub(super) fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Process start to the greeting line on stdout.
fn startup(server: &Server) -> Result<f64> {
    let t = Instant::now();
    let mut child = server
        .command("stdio", &[])
        .spawn()
        .with_context(|| format!("starting {}", server.label))?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let secs = t.elapsed().as_secs_f64();
    if !line.contains("\"QMP\"") {
        bail!("{}: no greeting: {line}", server.label);
    }
    stop(child);
    Ok(secs)
}

pub(super) fn socket_server(
    server: &Server,
    dir: &Path,
    objects: &[&str],
    wait: Wait,
) -> Result<(Child, Client)> {
    let sock = dir.join(format!("{}.sock", server.label));
    let _ = std::fs::remove_file(&sock);
    let child = server
        .command(
            &format!("unix:{},server=on,wait=off", sock.display()),
            objects,
        )
        .spawn()
        .with_context(|| format!("starting {}", server.label))?;
    let client = Client::connect(&sock, wait)?;
    Ok((child, client))
}

/// Sequential qom-get round trips per second.
fn qom_get_rate(server: &Server, dir: &Path, requests: u32, wait: Wait) -> Result<f64> {
    let obj = "memory-backend-file,id=m0,size=2M,mem-path=/dev/shm,share=on";
    let (child, mut c) = socket_server(server, dir, &[obj], wait)?;
    let args = json!({"path": "/objects/m0", "property": "size"});
    for _ in 0..requests / 10 {
        c.call("qom-get", args.clone())?;
    }
    let t = Instant::now();
    for _ in 0..requests {
        c.call("qom-get", args.clone())?;
    }
    let rate = f64::from(requests) / t.elapsed().as_secs_f64();
    stop(child);
    Ok(rate)
}

/// object-add + object-del cycles per second.
fn add_del_rate(server: &Server, dir: &Path, cycles: u32, wait: Wait) -> Result<f64> {
    let (child, mut c) = socket_server(server, dir, &[], wait)?;
    let add = json!({"qom-type": "memory-backend-file", "id": "b", "size": 2097152, "mem-path": "/dev/shm", "share": true});
    let del = json!({"id": "b"});
    let t = Instant::now();
    for _ in 0..cycles {
        c.call("object-add", add.clone())?;
        c.call("object-del", del.clone())?;
    }
    let rate = f64::from(cycles) / t.elapsed().as_secs_f64();
    stop(child);
    Ok(rate)
}

fn qemu() -> Option<(PathBuf, String)> {
    let out = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .to_owned();
    Some((PathBuf::from("qemu-system-x86_64"), version))
}

/// Runs the benchmark; `args`: `[--runs N] [--poll-spin]`. With
/// `--poll-spin`, compares the `qom` binary's poll_spin settings instead
/// (see the `qmp_spin` module).
pub fn run(args: &[String]) -> Result<()> {
    let mut runs = 5usize;
    let mut poll_spin = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs needs a number")?.parse()?,
            "--poll-spin" => poll_spin = true,
            other => bail!("bench qmp: unexpected argument '{other}'"),
        }
    }
    if poll_spin {
        return super::qmp_spin::run(runs);
    }
    let mut servers = vec![Server {
        label: "qom",
        program: super::build_release(&[("qom-cli", "qom")])?.remove(0),
        base_args: vec![],
        env: vec![],
    }];
    match qemu() {
        Some((program, version)) => {
            println!("reference: {version}");
            servers.push(Server {
                label: "qemu",
                program,
                base_args: ["-machine", "none", "-nodefaults", "-display", "none"]
                    .map(String::from)
                    .to_vec(),
                env: vec![],
            });
        }
        None => println!("reference: qemu-system-x86_64 not installed; measuring qom only"),
    }
    let dir = std::env::temp_dir().join(format!("qom-bench-qmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let n = servers.len();
    let waits = [Wait::Block, Wait::Poll];
    let mut start = vec![vec![]; n];
    let mut gets = vec![vec![vec![]; n]; waits.len()];
    let mut cycles = vec![vec![vec![]; n]; waits.len()];
    for round in 0..runs {
        for (i, s) in servers.iter().enumerate() {
            start[i].push(startup(s)?);
            for (w, wait) in waits.iter().enumerate() {
                gets[w][i].push(qom_get_rate(s, &dir, 20_000, *wait)?);
                cycles[w][i].push(add_del_rate(s, &dir, 1_000, *wait)?);
            }
        }
        eprintln!("bench qmp: round {}/{runs} done", round + 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("\nQMP server, native Rust client, one request in flight; medians of {runs} interleaved runs");
    println!(
        "{:<52} {:>14} {:>14} {:>9}",
        "figure", "qom", "qemu", "qom/qemu"
    );
    let row = |name: &str, v: &[Vec<f64>], scale: f64, unit: &str, higher_is_better: bool| {
        let q = super::median(&v[0]) * scale;
        let r = (n > 1).then(|| super::median(&v[1]) * scale);
        let ratio = r.map(|r| if higher_is_better { q / r } else { r / q });
        println!(
            "{name:<52} {:>14} {:>14} {:>9}",
            format!("{q:.1} {unit}"),
            r.map(|r| format!("{r:.1} {unit}"))
                .unwrap_or_else(|| "-".into()),
            ratio
                .map(|x| format!("{x:.1}x"))
                .unwrap_or_else(|| "-".into())
        );
    };
    row(
        "process start to greeting (stdio)",
        &start,
        1e3,
        "ms",
        false,
    );
    for (w, label) in ["blocking reads", "polling reads"].iter().enumerate() {
        row(
            &format!("qom-get round trips, client with {label}"),
            &gets[w],
            1.0,
            "/s",
            true,
        );
        row(
            &format!("object-add + object-del (2 MiB /dev/shm), {label}"),
            &cycles[w],
            1.0,
            "/s",
            true,
        );
    }
    println!("(qom/qemu: how many times faster qom is; the goal is at least 10x)");
    Ok(())
}
