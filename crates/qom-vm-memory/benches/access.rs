//! Guest memory accesses through [`BackendGuestMemory`] against the same
//! accesses through vm-memory's own `GuestMemoryMmap` mapping the same
//! memfds at the same guest addresses, measured in the same run:
//! `cargo bench -p qom-vm-memory`.
//!
//! Prints ns per access and the ratio to vm-memory's; a ratio near 1 means
//! the access checks and the backend regions cost nothing noticeable.
//! Each figure is the best of several rounds, alternated between the two
//! (the first to run alternates too).
//! For scale, the last lines time vm-memory on anonymous private memory,
//! which can use transparent huge pages where shared memfd pages usually
//! cannot (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`): on random
//! accesses that difference is the memory's, not the code's.

use std::hint::black_box;
use std::time::{Duration, Instant};

use qom::{ObjectTree, TypeRegistry};
use qom_vm_memory::BackendGuestMemory;
use serde_json::json;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const SIZE: u64 = 64 * MIB;
const ROUNDS: usize = 11;

/// Addresses spread over both regions (a fixed xorshift sequence).
fn addresses(n: usize, align: u64) -> Vec<GuestAddress> {
    let mut x = qom_test_support::XorShift::new(42);
    (0..n)
        .map(|_| {
            let base = if x.coin() { 0 } else { 4 * GIB };
            GuestAddress(base + x.below(SIZE / align) * align)
        })
        .collect()
}

fn words<M: GuestMemory>(mem: &M, at: &[GuestAddress]) -> Duration {
    let start = Instant::now();
    for (i, &a) in at.iter().enumerate() {
        mem.write_obj(i as u64, a).unwrap();
        black_box(mem.read_obj::<u64>(a).unwrap());
    }
    start.elapsed()
}

fn pages<M: GuestMemory>(mem: &M, at: &[GuestAddress], buf: &mut [u8]) -> Duration {
    let start = Instant::now();
    for &a in at {
        mem.write_slice(buf, a).unwrap();
        mem.read_slice(buf, a).unwrap();
    }
    black_box(&buf);
    start.elapsed()
}

/// Best time of `f` on each memory over alternating rounds.
fn race(
    mut ours: impl FnMut() -> Duration,
    mut theirs: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let (mut a, mut b) = (Duration::MAX, Duration::MAX);
    // Both sides touch the same pages: which goes first alternates, so
    // that neither always finds the caches warmed by the other.
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            a = a.min(ours());
            b = b.min(theirs());
        } else {
            b = b.min(theirs());
            a = a.min(ours());
        }
    }
    (a, b)
}

fn report(what: &str, ops: usize, (ours, theirs): (Duration, Duration)) {
    let per = |d: Duration| d.as_nanos() as f64 / ops as f64;
    println!(
        "{what:<44} ours {:8.1} ns  vm-memory GuestMemoryMmap {:8.1} ns  ratio {:.2}",
        per(ours),
        per(theirs),
        per(ours) / per(theirs)
    );
}

fn main() {
    let types = TypeRegistry::with_builtins();
    memory_backend_ram::register(&types).unwrap();
    memory_backend_file::register(&types).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    for id in ["low", "high"] {
        let args = json!({"qom-type": "memory-backend-memfd", "id": id, "size": SIZE,
                          "prealloc": true});
        tree.object_add_args(args.as_object().unwrap()).unwrap();
    }
    let ours = BackendGuestMemory::from_ids(
        &tree,
        &[(GuestAddress(0), "low"), (GuestAddress(4 * GIB), "high")],
    )
    .unwrap();

    // The same with a read-only region too, so that writes search.
    let dir = qom_test_support::TempDir::new_in("/dev/shm");
    let rom = dir.join("rom");
    std::fs::write(&rom, vec![0u8; 2 * MIB as usize]).unwrap();
    let args = json!({"qom-type": "memory-backend-file", "id": "rom", "size": 2 * MIB,
                      "mem-path": rom, "readonly": true, "share": true});
    let rom = tree.object_add_args(args.as_object().unwrap()).unwrap();
    let with_rom = ours.with_backend(GuestAddress(8 * GIB), &rom).unwrap();

    // vm-memory's own regions over the same files (a second mapping).
    let same_files: Vec<_> = ours
        .regions()
        .map(|r| (r.start_addr(), r.len() as usize, r.file_offset().cloned()))
        .collect();
    let theirs = GuestMemoryMmap::<()>::from_ranges_with_files(&same_files).unwrap();
    let anonymous = GuestMemoryMmap::<()>::from_ranges(&[
        (GuestAddress(0), SIZE as usize),
        (GuestAddress(4 * GIB), SIZE as usize),
    ])
    .unwrap();
    // Touch every page of the anonymous memory first, as prealloc did for
    // the backends.
    let zero = vec![0u8; SIZE as usize];
    for base in [0, 4 * GIB] {
        anonymous.write_slice(&zero, GuestAddress(base)).unwrap();
    }

    println!("guest memory accesses, best of {ROUNDS} rounds");
    let at = addresses(1_000_000, 8);
    report(
        "u64 write_obj + read_obj",
        at.len(),
        race(|| words(&ours, &at), || words(&theirs, &at)),
    );
    report(
        "u64 write_obj + read_obj, with a rom region",
        at.len(),
        race(|| words(&with_rom, &at), || words(&theirs, &at)),
    );
    let at4k = addresses(100_000, 4096);
    let mut buf = vec![0x5a_u8; 4096];
    let mut buf2 = buf.clone();
    report(
        "4 KiB write_slice + read_slice",
        at4k.len(),
        race(
            || pages(&ours, &at4k, &mut buf),
            || pages(&theirs, &at4k, &mut buf2),
        ),
    );
    println!("for scale: vm-memory on anonymous memory against the same on the memfds");
    report_pair(
        "u64 write_obj + read_obj",
        at.len(),
        race(|| words(&anonymous, &at), || words(&theirs, &at)),
    );
    report_pair(
        "4 KiB write_slice + read_slice",
        at4k.len(),
        race(
            || pages(&anonymous, &at4k, &mut buf),
            || pages(&theirs, &at4k, &mut buf2),
        ),
    );
}

fn report_pair(what: &str, ops: usize, (anon, files): (Duration, Duration)) {
    let per = |d: Duration| d.as_nanos() as f64 / ops as f64;
    println!(
        "{what:<44} anonymous {:8.1} ns  memfd {:8.1} ns  ratio {:.2}",
        per(anon),
        per(files),
        per(anon) / per(files)
    );
}
