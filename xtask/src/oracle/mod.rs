//! `cargo xtask oracle`: records QEMU's answers to the project's QMP
//! scenarios and `-object` cases as fixtures (`tests/oracle/qemu-<version>/`)
//! and compares two recordings.

mod record;
mod replay;

use anyhow::{bail, Context, Result};
use qom_test_support::oracle::{self, transcript};
use std::path::PathBuf;

const USAGE: &str = "cargo xtask oracle record [--qemu PATH] [--out DIR] [--tmp-root DIR]\n\
    \x20   run the installed QEMU over tests/oracle/ and write tests/oracle/qemu-<version>/\n\
    cargo xtask oracle replay --server-cmd 'CMD ARGS' [--devices-server-cmd 'CMD ARGS'] [--qemu-version V]\n\
    \x20   run the scenarios and command-line cases against CMD (QMP on stdio) and\n\
    \x20   compare with QEMU's recorded answers (tests/oracle/qemu-V/, default 10.0.2);\n\
    \x20   with --devices-server-cmd, also the devices scenarios against that command\n\
    cargo xtask oracle compare REFERENCE.json OTHER.json\n\
    \x20   compare two transcripts scenario by scenario (exit status 1 when any differs)";

/// Entry point of `cargo xtask oracle ...`.
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("record") => record::run(&args[1..]),
        Some("compare") => compare(&args[1..]),
        Some("replay") => replay::run(&args[1..]),
        _ => {
            println!("{USAGE}");
            if args.is_empty() {
                Ok(())
            } else {
                bail!("unknown oracle command {:?}", args[0])
            }
        }
    }
}

fn compare(args: &[String]) -> Result<()> {
    let [a, b] = args else {
        bail!("usage: {USAGE}");
    };
    let load =
        |p: &String| -> Result<serde_json::Value> { Ok(oracle::read_json(&PathBuf::from(p))?) };
    let (matched, differ) = transcript::compare(&load(a)?, &load(b)?);
    if !report(matched, &differ) {
        bail!("{} scenarios differ", differ.len());
    }
    Ok(())
}

/// Prints the differing scenarios and the counts; true when none differ.
fn report(matched: usize, differ: &[(String, Vec<String>)]) -> bool {
    for (name, diffs) in differ {
        println!("[DIFFER] {name}");
        for d in diffs {
            println!("    {d}");
        }
    }
    println!("{matched} matched, {} differ", differ.len());
    differ.is_empty()
}

/// The value after `flag`, if given.
fn option(args: &[String], flag: &str) -> Result<Option<String>> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .with_context(|| format!("{flag} needs a value")),
    }
}
