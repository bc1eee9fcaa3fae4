//! Recording: QEMU started exactly as the team's first oracle ran it (a
//! fresh process per scenario or case, QMP on stdio, `-machine none`; the
//! devices scenarios on a pc machine with a device-memory window).

use super::option;
use anyhow::{bail, Context, Result};
use qom_test_support::oracle::{self, cli_cases, json_text, transcript};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The server command of the QMP scenarios and command-line cases.
const MACHINE_NONE: &[&str] = &[
    "-machine",
    "none",
    "-nodefaults",
    "-display",
    "none",
    "-qmp",
    "stdio",
];

/// The devices scenarios' machine: pc with NVDIMM support, 512 MiB of RAM
/// and a 3.5 GiB device-memory window with 4 slots, paused, TCG.
const MACHINE_PC: &[&str] = &[
    "-machine",
    "pc,nvdimm=on",
    "-accel",
    "tcg",
    "-m",
    "512M,slots=4,maxmem=4G",
    "-S",
    "-display",
    "none",
    "-nodefaults",
    "-qmp",
    "stdio",
];

/// `qemu-system-x86_64 --version`'s version number and first line.
fn qemu_version(qemu: &str) -> Result<(String, String)> {
    let out = Command::new(qemu)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running {qemu} --version (install QEMU, e.g. apt-get install -t \
                 bookworm-backports qemu-system-x86, see docs/qemu-compat.md)"
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_default().to_owned();
    let version = line
        .strip_prefix("QEMU emulator version ")
        .and_then(|r| r.split_whitespace().next())
        .with_context(|| format!("{qemu} --version printed {line:?}"))?;
    Ok((version.to_owned(), line))
}

fn command(qemu: &str, args: &[&str]) -> Vec<String> {
    std::iter::once(qemu.to_owned())
        .chain(args.iter().map(|s| s.to_string()))
        .collect()
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask oracle: wrote {}", path.display());
    Ok(())
}

/// Fails on scenarios the recorder could not run: a fixture with
/// `harness_error` would make every replay compare against a failure.
fn check_transcript(t: &Value, what: &str) -> Result<()> {
    let broken: Vec<String> = t["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            s.get("harness_error")
                .map(|e| format!("{}: {e}", s["name"].as_str().unwrap_or("?")))
        })
        .collect();
    if !broken.is_empty() {
        bail!("{what}: the recorder failed on {}", broken.join("; "));
    }
    Ok(())
}

/// `query-qmp-schema` of a fresh QEMU, its list sorted by name.
fn schema(server: &[String], opts: &transcript::RunOptions) -> Result<Value> {
    let defs = json!([{
        "name": "query-qmp-schema", "doc": "the QAPI schema", "flags": [], "setup": [],
        "steps": [{"execute": "qmp_capabilities"}, {"execute": "query-qmp-schema"}],
    }]);
    let opts = transcript::RunOptions {
        server: server.to_vec(),
        tmp_root: opts.tmp_root.clone(),
        timeout: opts.timeout,
    };
    let t = transcript::run_scenarios(&defs, &opts)?;
    check_transcript(&t, "query-qmp-schema")?;
    let reply = &t["scenarios"][0]["steps"][1]["response"];
    if reply.get("return").is_none() {
        bail!("query-qmp-schema failed: {reply}");
    }
    Ok(reply.clone())
}

/// `cargo xtask oracle record [--qemu PATH] [--out DIR] [--tmp-root DIR]`.
pub fn run(args: &[String]) -> Result<()> {
    let qemu = option(args, "--qemu")?.unwrap_or_else(|| "qemu-system-x86_64".to_owned());
    let (version, version_line) = qemu_version(&qemu)?;
    let out = option(args, "--out")?
        .map(PathBuf::from)
        .unwrap_or_else(|| oracle::recording_dir(&version));
    let tmp_root = option(args, "--tmp-root")?
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let defs = oracle::fixture_dir();
    eprintln!(
        "xtask oracle: recording {version_line} into {}",
        out.display()
    );

    let none = command(&qemu, MACHINE_NONE);
    let opts = transcript::RunOptions {
        server: none.clone(),
        tmp_root: tmp_root.clone(),
        timeout: Duration::from_secs(30),
    };
    let scenarios = oracle::read_json(&defs.join("scenarios.json"))?;
    let t = transcript::run_scenarios(&scenarios, &opts)?;
    check_transcript(&t, "scenarios.json")?;

    let cases_path = defs.join("cli_cases.tsv");
    let cases_text = std::fs::read_to_string(&cases_path)
        .with_context(|| format!("reading {}", cases_path.display()))?;
    let mut rows = Vec::new();
    for case in cli_cases::read_cases(&cases_text) {
        let r = cli_cases::run_case(&case, &none, &tmp_root, Duration::from_secs(20))?;
        if r.outcome == "HANG" {
            bail!("command-line case {} hung", case.name);
        }
        rows.push(r);
    }

    let schema = schema(&none, &opts)?;

    let pc = transcript::RunOptions {
        server: command(&qemu, MACHINE_PC),
        ..opts
    };
    let devices = oracle::read_json(&defs.join("devices/scenarios.json"))?;
    let dt = transcript::run_scenarios(&devices, &pc)?;
    check_transcript(&dt, "devices/scenarios.json")?;

    // Everything ran: only now replace the old fixtures, so that a failed
    // recording leaves the previous set whole.
    write(&out.join("scenarios.json"), &json_text::fixture_text(&t))?;
    write(&out.join("cli_cases.tsv"), &cli_cases::write_results(&rows))?;
    write(
        &out.join("qmp-schema.json"),
        &json_text::fixture_text(&schema),
    )?;
    write(
        &out.join("devices/scenarios.json"),
        &json_text::fixture_text(&dt),
    )?;
    write(&out.join("VERSION"), &format!("{version_line}\n"))?;
    eprintln!(
        "xtask oracle: {} scenarios, {} command-line cases, {} schema entries, {} devices scenarios",
        t["scenarios"].as_array().map_or(0, Vec::len),
        rows.len(),
        schema["return"].as_array().map_or(0, Vec::len),
        dt["scenarios"].as_array().map_or(0, Vec::len),
    );
    Ok(())
}
