//! What transparent huge pages buy guest RAM: random 8-byte reads over
//! 1 GiB of private anonymous memory (what `memory-backend-ram` maps),
//! preallocated once with `MADV_HUGEPAGE` (what every backend gets, as in
//! QEMU) and once with `MADV_NOHUGEPAGE` (4 KiB pages whatever the THP
//! settings). Both mappings come from the host layer the backend uses, so
//! they differ in that one advice only. The two phases alternate over the
//! rounds so that the machine's noise falls on both alike; each figure is
//! the median over the rounds (with min and max), followed by the ratios
//! of the medians and of the minimums (the least disturbed rounds). The
//! `AnonHugePages` of each mapping (from /proc/self/smaps) shows how much
//! the kernel actually backed with huge pages. Nothing is asserted.
//!
//! When `perf stat -e dTLB-load-misses` works on the machine, each phase
//! also runs once more in a child under `perf stat` (dependent reads) and
//! the dTLB-miss counts are printed (they include the child's
//! preallocation).
//!
//! Run with `cargo bench -p memory-backend-ram --bench thp`
//! (`-- --rounds N --reads N --size-mib N` to change the defaults 7,
//! 10000000 and 1024; `-- --phase hugepage|nohugepage` runs one phase
//! alone, which is what `perf stat` runs).

use std::process::Command;
use std::time::Instant;

use memory_backend::host::{MapRequest, Mapping};
use qom_test_support::smaps_entry;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hugepage,
    NoHugepage,
}

impl Phase {
    const ALL: [Phase; 2] = [Phase::Hugepage, Phase::NoHugepage];

    fn name(self) -> &'static str {
        match self {
            Phase::Hugepage => "hugepage",
            Phase::NoHugepage => "nohugepage",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Phase::Hugepage => "MADV_HUGEPAGE (as qom and QEMU)",
            Phase::NoHugepage => "MADV_NOHUGEPAGE (4 KiB pages)",
        }
    }
}

struct Options {
    rounds: usize,
    reads: u64,
    size_mib: u64,
    phase: Option<Phase>,
}

fn options() -> Options {
    let mut o = Options {
        rounds: 7,
        reads: 10_000_000,
        size_mib: 1024,
        phase: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).map(String::as_str).unwrap_or("");
        match args[i].as_str() {
            "--rounds" => o.rounds = value.parse().expect("--rounds N"),
            "--reads" => o.reads = value.parse().expect("--reads N"),
            "--size-mib" => o.size_mib = value.parse().expect("--size-mib N"),
            "--phase" => {
                o.phase = Some(
                    *Phase::ALL
                        .iter()
                        .find(|p| p.name() == value)
                        .expect("--phase hugepage|nohugepage"),
                )
            }
            // cargo bench passes --bench; nothing else is expected.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// The mapping of one phase, preallocated, and the kB of it that the
/// kernel backed with huge pages.
fn mapping(phase: Phase, size: u64) -> (Mapping, u64) {
    let m = Mapping::new(MapRequest::anonymous(size)).expect("1 GiB of anonymous memory");
    m.set_hugepage(phase == Phase::Hugepage)
        .expect("madvise(MADV_[NO]HUGEPAGE)");
    m.set_fork(false).expect("madvise(MADV_DONTFORK)");
    m.prealloc(1, None).expect("preallocation");
    let huge = smaps_entry("self", m.as_ptr() as usize).map_or(0, |e| e.anon_huge_kb);
    (m, huge)
}

/// Nanoseconds per random aligned 8-byte read over all of `m`: a
/// fixed-seed xorshift picks the words. With `dependent`, the value read
/// (zero) is mixed into the generator before the next address, so each
/// read waits for the one before: the latency a page walk adds shows in
/// full instead of overlapping with other reads in flight.
fn ns_per_read(m: &Mapping, reads: u64, dependent: bool) -> f64 {
    let words = (m.len() / 8) as u64;
    let mut x: u64 = 0x5eed_0f7a_9e37_79b9;
    let mut buf = [0u8; 8];
    let mut sum = 0u64;
    let start = Instant::now();
    for _ in 0..reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = ((x % words) * 8) as usize;
        m.read_at(at, &mut buf).expect("in range");
        let v = u64::from_ne_bytes(buf);
        if dependent {
            x ^= v;
        }
        sum = sum.wrapping_add(v);
    }
    let ns = start.elapsed().as_nanos() as f64 / reads as f64;
    std::hint::black_box(sum);
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// dTLB-load-misses of one phase run alone under `perf stat`, or why not.
fn dtlb_misses(phase: Phase, o: &Options) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("perf")
        .args(["stat", "-x", ",", "-e", "dTLB-load-misses", "--"])
        .arg(exe)
        .args(["--phase", phase.name(), "--reads", &o.reads.to_string()])
        .args(["--size-mib", &o.size_mib.to_string()])
        .output()
        .map_err(|e| format!("perf not found ({e}): install linux-perf"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("dTLB-load-misses"))
        .ok_or_else(|| format!("perf stat printed no count: {}", err.trim()))?;
    let count = line.split(',').next().unwrap_or("");
    count
        .parse()
        .map_err(|_| format!("perf stat -e dTLB-load-misses: {count}"))
}

fn thp_setting(what: &str) -> String {
    std::fs::read_to_string(format!("/sys/kernel/mm/transparent_hugepage/{what}"))
        .map_or_else(|e| format!("unreadable ({e})"), |s| s.trim().to_owned())
}

fn main() {
    let o = options();
    let size = o.size_mib << 20;
    if let Some(phase) = o.phase {
        let (m, huge) = mapping(phase, size);
        let ns = ns_per_read(&m, o.reads, true);
        println!("{}: {ns:.1} ns/read, AnonHugePages {huge} kB", phase.name());
        return;
    }
    println!(
        "thp: {} random 8-byte reads over {} MiB of private anonymous memory, {} rounds",
        o.reads, o.size_mib, o.rounds
    );
    println!("THP enabled: {}", thp_setting("enabled"));
    println!("THP defrag:  {}", thp_setting("defrag"));
    // ns[dependent][phase]: the figures of each round.
    let mut ns = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut huge = [0u64; 2];
    for round in 0..o.rounds {
        // Alternate which phase goes first, so neither always runs on a
        // machine the other just warmed up or fragmented.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (m, h) = mapping(Phase::ALL[i], size);
            for (d, dependent) in [false, true].into_iter().enumerate() {
                ns[d][i].push(ns_per_read(&m, o.reads, dependent));
            }
            huge[i] = h;
        }
    }
    for (d, what) in [
        "independent reads (many in flight)",
        "dependent reads (one at a time)",
    ]
    .into_iter()
    .enumerate()
    {
        println!("{what}:");
        let med = [median(ns[d][0].clone()), median(ns[d][1].clone())];
        for (i, phase) in Phase::ALL.iter().enumerate() {
            println!(
                "  {:<32} {:>7.1} ns/read (median; min {:.1}, max {:.1})  AnonHugePages {} kB",
                phase.label(),
                med[i],
                ns[d][i].iter().copied().fold(f64::INFINITY, f64::min),
                ns[d][i].iter().copied().fold(0.0, f64::max),
                huge[i]
            );
        }
        // The minimum is the round least disturbed by other work on the
        // machine; on a busy machine it is the steadier of the two.
        let min = |i: usize| ns[d][i].iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "  ratio 4 KiB pages / huge pages: {:.2}x of the medians, {:.2}x of the minimums",
            med[1] / med[0],
            min(1) / min(0)
        );
    }
    match (
        dtlb_misses(Phase::Hugepage, &o),
        dtlb_misses(Phase::NoHugepage, &o),
    ) {
        (Ok(h), Ok(n)) => println!(
            "dTLB-load-misses: {h} with MADV_HUGEPAGE, {n} with MADV_NOHUGEPAGE ({:.1}x)",
            n as f64 / h.max(1) as f64
        ),
        (Err(e), _) | (_, Err(e)) => println!("dTLB-load-misses: not measured: {e}"),
    }
}
