//! Replaying the scenarios and command-line cases against any server that
//! speaks QMP on stdio, for a look at every difference (the tests of
//! qom-cli do the same against `qom` and accept only the documented ones).

use super::{option, report};
use anyhow::{bail, Context, Result};
use qom_test_support::oracle::{self, cli_cases, transcript};
use std::time::Duration;

/// `cargo xtask oracle replay --server-cmd CMD [--devices-server-cmd CMD]
/// [--qemu-version V]`.
pub fn run(args: &[String]) -> Result<()> {
    let cmd = option(args, "--server-cmd")?.context("--server-cmd 'PROGRAM ARGS...' is needed")?;
    let server: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
    if server.is_empty() {
        bail!("--server-cmd is empty");
    }
    let version =
        option(args, "--qemu-version")?.unwrap_or_else(|| oracle::REFERENCE_QEMU.to_owned());
    let recorded = oracle::recording_dir(&version);
    let defs = oracle::fixture_dir();

    let qemu = oracle::read_json(&recorded.join("scenarios.json"))?;
    let scenarios = oracle::read_json(&defs.join("scenarios.json"))?;
    let mine = transcript::run_scenarios(&scenarios, &transcript::RunOptions::new(server.clone()))?;
    let (matched, differ) = transcript::compare(&qemu, &mine);
    println!("QMP scenarios against QEMU {version}:");
    let scenarios_ok = report(matched, &differ);

    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let theirs = cli_cases::read_results(&read(recorded.join("cli_cases.tsv"))?);
    let cases = cli_cases::read_cases(&read(defs.join("cli_cases.tsv"))?);
    println!("command-line cases against QEMU {version}:");
    let mut same = 0;
    for t in &theirs {
        let Some(case) = cases.iter().find(|c| c.name == t.name) else {
            bail!(
                "case {} is recorded but not in tests/oracle/cli_cases.tsv",
                t.name
            );
        };
        let mine = cli_cases::run_case(
            case,
            &server,
            &std::env::temp_dir(),
            Duration::from_secs(20),
        )?;
        let cols = cli_cases::differing_columns(t, &mine, &[]);
        if cols.is_empty() {
            same += 1;
        } else {
            println!(
                "[DIFFER] {}: {}\n    QEMU: {t:?}\n    this: {mine:?}",
                t.name,
                cols.join(" ")
            );
        }
    }
    println!("{same} matched, {} differ", theirs.len() - same);

    // The devices scenarios need a machine with a device-memory window:
    // their own server command (qom -machine pc,nvdimm=on -m
    // 512M,slots=4,maxmem=4G -qmp stdio, as QEMU was recorded).
    let mut devices_ok = true;
    if let Some(cmd) = option(args, "--devices-server-cmd")? {
        let server: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
        let qemu = oracle::read_json(&recorded.join("devices/scenarios.json"))?;
        let scenarios = oracle::read_json(&defs.join("devices/scenarios.json"))?;
        let mine = transcript::run_scenarios(&scenarios, &transcript::RunOptions::new(server))?;
        let (matched, differ) = transcript::compare(&qemu, &mine);
        println!("devices scenarios against QEMU {version}:");
        devices_ok = report(matched, &differ);
    }
    if !scenarios_ok || !devices_ok || same != theirs.len() {
        bail!("the server differs from QEMU {version} (see above)");
    }
    Ok(())
}
