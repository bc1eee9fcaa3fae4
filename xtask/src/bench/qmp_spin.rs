//! `cargo xtask bench qmp --poll-spin`: what the QMP server's poll_spin
//! (`ServerConfig::poll_spin`, 50 µs in the `qom` binary, off by default
//! for embedders) gains in round trips and costs in CPU.
//!
//! The same release `qom` binary runs with `QOM_POLL_SPIN_US=50` and
//! `QOM_POLL_SPIN_US=0`, interleaved, against three clients with one
//! request in flight: back to back with blocking reads, back to back with
//! polling reads, and paced (one request per millisecond, like a
//! management tool that is not in a hurry: the spin never catches the next
//! request there, so it is pure cost). The server's CPU time is its user +
//! system time from `/proc/PID/stat` over the measured requests.

use super::qmp::{socket_server, stop, Server, Wait};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// How the client sends its requests.
#[derive(Clone, Copy)]
enum Load {
    /// The next request as soon as the reply is read.
    BackToBack(Wait),
    /// One request per `Duration` (blocking reads).
    Paced(Duration),
}

/// A row of the table: name, how to read it off a sample, unit.
type Figure = (&'static str, fn(&Sample) -> f64, &'static str);

/// One measured run.
struct Sample {
    /// Round trips per second of wall time.
    rate: f64,
    /// Server CPU time per round trip, µs.
    cpu_us: f64,
    /// Server CPU time over wall time, percent.
    busy: f64,
}

/// User + system CPU time a process has used so far, from /proc/PID/stat
/// (clock ticks, all threads, exited ones included).
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count the
    // fields after it, starting with field 3 (state).
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| -> Result<u64> {
        fields
            .get(field - 3)
            .context("short /proc/PID/stat")?
            .parse()
            .context("malformed /proc/PID/stat")
    };
    // Fields 14 and 15: utime and stime.
    let total = ticks(14)? + ticks(15)?;
    let hz = rustix::param::clock_ticks_per_second();
    Ok(Duration::from_secs_f64(total as f64 / hz as f64))
}

fn measure(server: &Server, dir: &Path, requests: u32, load: Load) -> Result<Sample> {
    let obj = "memory-backend-file,id=m0,size=2M,mem-path=/dev/shm,share=on";
    let wait = match load {
        Load::BackToBack(w) => w,
        Load::Paced(_) => Wait::Block,
    };
    let (child, mut c) = socket_server(server, dir, &[obj], wait)?;
    let args = json!({"path": "/objects/m0", "property": "size"});
    for _ in 0..requests / 10 {
        c.call("qom-get", args.clone())?;
    }
    let cpu0 = cpu_time(child.id())?;
    let t = Instant::now();
    for i in 0..requests {
        if let Load::Paced(period) = load {
            let due = t + period * i;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        c.call("qom-get", args.clone())?;
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = (cpu_time(child.id())? - cpu0).as_secs_f64();
    stop(child);
    Ok(Sample {
        rate: f64::from(requests) / wall,
        cpu_us: cpu * 1e6 / f64::from(requests),
        busy: cpu * 100.0 / wall,
    })
}

/// Runs the comparison, `runs` interleaved rounds, and prints medians.
pub fn run(runs: usize) -> Result<()> {
    let program = super::build_release(&[("qom-cli", "qom")])?.remove(0);
    let settings = [("50 µs (qom)", "50"), ("off (embedders)", "0")];
    let servers: Vec<Server> = settings
        .iter()
        .map(|(_, us)| Server {
            label: "qom",
            program: program.clone(),
            base_args: vec![],
            env: vec![("QOM_POLL_SPIN_US", (*us).to_owned())],
        })
        .collect();
    let loads = [
        ("blocking client", Load::BackToBack(Wait::Block), 50_000),
        ("polling client", Load::BackToBack(Wait::Poll), 50_000),
        (
            "paced client, 1 request/ms",
            Load::Paced(Duration::from_millis(1)),
            2_000,
        ),
    ];
    let dir = std::env::temp_dir().join(format!("qom-bench-spin-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // samples[load][setting]
    let mut samples: Vec<Vec<Vec<Sample>>> = loads
        .iter()
        .map(|_| settings.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 0..runs {
        for (l, (_, load, requests)) in loads.iter().enumerate() {
            for (s, server) in servers.iter().enumerate() {
                samples[l][s].push(measure(server, &dir, *requests, *load)?);
            }
        }
        eprintln!("bench qmp --poll-spin: round {}/{runs} done", round + 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\nqom's QMP server, poll_spin on and off; qom-get, one request in flight; \
         medians of {runs} interleaved runs; CPU: the server's user + system time"
    );
    let mut header = vec!["client", "figure"];
    header.extend(settings.iter().map(|(name, _)| *name));
    let mut rows = Vec::new();
    for (l, (name, _, _)) in loads.iter().enumerate() {
        let figures: [Figure; 3] = [
            ("round trips", |s| s.rate, "/s"),
            ("server CPU per round trip", |s| s.cpu_us, " µs"),
            ("server CPU busy", |s| s.busy, " %"),
        ];
        for (figure, get, unit) in figures {
            let mut row = vec![name.to_string(), figure.to_owned()];
            for per_setting in &samples[l] {
                let v: Vec<f64> = per_setting.iter().map(get).collect();
                row.push(format!("{:.1}{unit}", super::median(&v)));
            }
            rows.push(row);
        }
    }
    super::print_table(&header, &rows);
    Ok(())
}
