//! What watching a preallocation costs: the same 1 GiB shared tmpfs
//! mapping preallocated without a `PreallocControl` (one
//! `MADV_POPULATE_WRITE` per thread, the path every preallocation took
//! before controls existed), with a control that only allows cancelling
//! (16 MiB chunks; what `qom` uses when stderr is not a terminal), with
//! reports every 100 ms (a terminal), and with a report after every chunk.
//! Variants are interleaved in each round so that the machine's noise
//! falls on all of them alike; each figure is the median over the rounds,
//! printed with its ratio to the first variant. Nothing is asserted.
//!
//! Run with `cargo bench -p memory-backend --bench prealloc_progress`
//! (`-- --rounds N --size-mib N` to change the defaults, 9 and 1024).

use memory_backend::host::{MapRequest, Mapping, PreallocOptions, DEFAULT_REPORT_INTERVAL};
use memory_backend::PreallocControl;
use std::fs::OpenOptions;
use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

struct Variant {
    name: &'static str,
    control: Option<PreallocControl>,
}

fn variants() -> Vec<Variant> {
    let report = |interval| {
        PreallocControl::with_interval(interval, |p| {
            black_box(p.done);
            ControlFlow::Continue(())
        })
    };
    vec![
        Variant {
            name: "no control (reference)",
            control: None,
        },
        Variant {
            name: "cancellable, no reports",
            control: Some(PreallocControl::new()),
        },
        Variant {
            name: "reports every 100 ms",
            control: Some(report(DEFAULT_REPORT_INTERVAL)),
        },
        Variant {
            name: "a report after every 16 MiB",
            control: Some(report(Duration::ZERO)),
        },
    ]
}

/// Maps a new file of `len` bytes in `dir`, preallocates it, and returns
/// how long the preallocation took. The file and mapping go afterwards.
fn one_run(dir: &Path, len: u64, threads: usize, control: Option<&PreallocControl>) -> Duration {
    let path = dir.join("bench-ram");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create the file");
    file.set_len(len).expect("size the file");
    let m = Mapping::new(MapRequest::new(file.into(), len).shared(true)).expect("map");
    let opts = PreallocOptions {
        threads,
        control,
        name: "bench",
        ..PreallocOptions::default()
    };
    let start = Instant::now();
    m.prealloc_with(0, m.len(), &opts).expect("prealloc");
    let took = start.elapsed();
    drop(m);
    std::fs::remove_file(&path).expect("remove the file");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut rounds = 9usize;
    let mut size_mib = 1024u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--size-mib" => size_mib = args.next().and_then(|v| v.parse().ok()).unwrap_or(size_mib),
            // What cargo bench passes along.
            _ => {}
        }
    }
    let dir = std::env::temp_dir().join(format!("prealloc-progress-{}", std::process::id()));
    let dir = Path::new("/dev/shm").join(dir.file_name().unwrap_or_default());
    std::fs::create_dir_all(&dir).expect("create a directory in /dev/shm");
    let len = size_mib << 20;
    let variants = variants();
    println!("preallocating {size_mib} MiB of a shared tmpfs file, median of {rounds} rounds");
    for threads in [1usize, 2] {
        let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
        // One untimed run first: the first touch of memory costs more.
        one_run(&dir, len, threads, None);
        for round in 0..rounds {
            // Rotate the order so that no variant always runs first.
            for k in 0..variants.len() {
                let i = (k + round) % variants.len();
                samples[i].push(one_run(&dir, len, threads, variants[i].control.as_ref()));
            }
        }
        let medians: Vec<Duration> = samples.into_iter().map(median).collect();
        println!("{threads} thread(s):");
        for (v, m) in variants.iter().zip(&medians) {
            println!(
                "  {:<30} {:>8.1} ms   ratio {:.3}",
                v.name,
                m.as_secs_f64() * 1e3,
                m.as_secs_f64() / medians[0].as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir(&dir);
}
