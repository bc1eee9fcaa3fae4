//! `cargo xtask bench NAME`: whole-process benchmarks, one file per
//! benchmark, sharing the helpers below (building release binaries,
//! medians, tables). See docs/benchmarks.md.

mod prealloc;
mod qmp;
mod qmp_spin;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const USAGE: &str = "\
usage: cargo xtask bench NAME [OPTIONS]

benchmarks:
  prealloc   2 GiB memory-backend-file with prealloc=on (qom) against a
             minimal open+ftruncate+mmap+MADV_POPULATE_WRITE program, on ext4
             and tmpfs, 1 and 2 threads (and QEMU when installed);
             `cargo xtask bench prealloc --help` for its options
  qmp        the QMP server against qemu-system-x86_64 -machine none (when
             installed) with a native client: start to greeting, qom-get
             round trips, object-add + object-del cycles; [--runs N];
             with --poll-spin: the qom binary's poll_spin on (50 us) and off,
             round trips and the server's CPU time
";

/// Runs the benchmark named by the first argument.
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("prealloc") => prealloc::run(&args[1..]),
        Some("qmp") => qmp::run(&args[1..]),
        None | Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown benchmark '{other}'\n\n{USAGE}"),
    }
}

/// Builds the given `(package, binary)` pairs with `--release` and returns
/// the paths of the executables, in the same order.
fn build_release(bins: &[(&str, &str)]) -> Result<Vec<PathBuf>> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(crate::workspace_root()).args([
        "build",
        "--release",
        "--message-format",
        "json-render-diagnostics",
    ]);
    for (package, bin) in bins {
        cmd.args(["--package", package, "--bin", bin]);
    }
    eprintln!("bench: cargo build --release ({})", {
        let names: Vec<_> = bins.iter().map(|(_, b)| *b).collect();
        names.join(", ")
    });
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build --release")?;
    if !out.status.success() {
        bail!("cargo build --release failed ({})", out.status);
    }
    let mut found: Vec<Option<PathBuf>> = vec![None; bins.len()];
    for exe in crate::artifacts::executables(&out.stdout) {
        for (slot, (_, bin)) in found.iter_mut().zip(bins) {
            if exe.name == *bin {
                *slot = Some(exe.path.clone());
            }
        }
    }
    found
        .into_iter()
        .zip(bins)
        .map(|(p, (_, bin))| p.with_context(|| format!("cargo reported no executable for {bin}")))
        .collect()
}

/// The median of `xs` (mean of the two middle values for an even count);
/// NaN when empty.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Smallest and largest of `xs`.
fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Prints rows as a Markdown table with padded columns.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(width.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(min_max(&[2.0, 5.0, 1.0]), (1.0, 5.0));
    }
}
