//! The closing table of `cargo xtask bench prealloc`: medians and ranges
//! per file system and thread count, the part of qom's time that
//! preallocation takes against the reference's, and the verdict on the goal.

use super::{fmt_s, Bench, Sample, Variant, Who, GOAL, NOISY_SPREAD};
use crate::bench::{median, min_max, print_table};
use std::collections::HashMap;

pub(super) fn report(
    bench: &Bench,
    samples: &HashMap<Variant, Vec<Sample>>,
    qemu_version: Option<&str>,
) {
    let walls = |v: Variant| -> Vec<f64> {
        samples
            .get(&v)
            .map(|s| s.iter().map(|s| s.wall).collect())
            .unwrap_or_default()
    };
    let cell = |xs: &[f64]| {
        let (lo, hi) = min_max(xs);
        format!("{:.3} ({lo:.2}–{hi:.2})", median(xs))
    };
    let qemu_name = qemu_version.map(|v| format!("QEMU {v} (s)"));
    let mut header = vec![
        "fs",
        "threads",
        "qom (s)",
        "reference (s)",
        "qom/ref",
        "qom prealloc≈ (s)",
        "ref populate (s)",
        "prealloc qom/ref",
    ];
    if let Some(q) = &qemu_name {
        header.push(q);
        header.push("QEMU/ref");
    }
    let mut rows = Vec::new();
    let mut missed = 0;
    let mut noisy = Vec::new();
    for &fs in &bench.opts.fs {
        let off = median(&walls(Variant {
            fs,
            who: Who::OursNoPrealloc,
            threads: 1,
        }));
        for &threads in &bench.opts.threads {
            let v = |who| Variant { fs, who, threads };
            let ours = walls(v(Who::Ours));
            let reference = walls(v(Who::Reference));
            let ratio = median(&ours) / median(&reference);
            if ratio > GOAL || ratio.is_nan() {
                missed += 1;
            }
            // A cell whose runs spread wider than the goal's margin cannot
            // decide the goal by its median alone.
            let spread = |xs: &[f64]| {
                let (lo, hi) = min_max(xs);
                hi / lo
            };
            if spread(&ours).max(spread(&reference)) > NOISY_SPREAD {
                noisy.push(format!("{} {threads}", fs.name()));
            }
            let ours_pre = median(&ours) - off;
            let ref_pre: Vec<f64> = samples
                .get(&v(Who::Reference))
                .map(|s| s.iter().filter_map(|s| s.populate).collect())
                .unwrap_or_default();
            let mut row = vec![
                fs.name().to_owned(),
                threads.to_string(),
                cell(&ours),
                cell(&reference),
                format!("{ratio:.2}{}", if ratio <= GOAL { "" } else { " MISS" }),
                format!("{ours_pre:.3}"),
                format!("{:.3}", median(&ref_pre)),
                format!("{:.2}", ours_pre / median(&ref_pre)),
            ];
            if qemu_name.is_some() {
                let q = walls(v(Who::Qemu));
                row.push(cell(&q));
                row.push(format!("{:.2}", median(&q) / median(&reference)));
            }
            rows.push(row);
        }
    }
    println!();
    println!(
        "memory-backend-file, {} MiB, share=on, prealloc=on: whole process, median (min–max) of {} runs",
        bench.opts.size_mib, bench.opts.runs
    );
    println!();
    print_table(&header, &rows);
    println!();
    for &fs in &bench.opts.fs {
        let off = walls(Variant {
            fs,
            who: Who::OursNoPrealloc,
            threads: 1,
        });
        let (lo, hi) = min_max(&off);
        println!(
            "qom prealloc=off on {}: {} ({}–{})",
            fs.name(),
            fmt_s(median(&off)),
            fmt_s(lo),
            fmt_s(hi)
        );
    }
    println!("qom prealloc≈ = qom − qom prealloc=off (so it includes unmapping at exit)");
    println!("ref populate = the reference's own MADV_POPULATE_WRITE + munmap/close time");
    if !noisy.is_empty() {
        println!(
            "noisy (slowest run > {NOISY_SPREAD}x the fastest): {}; the machine is busy, \
             rerun with more --runs before drawing a conclusion",
            noisy.join(", ")
        );
    }
    println!(
        "goal: qom within {GOAL:.2}x of the reference in every cell: {}",
        if missed == 0 {
            "met".to_owned()
        } else {
            format!("MISSED in {missed} cell(s)")
        }
    );
}
