//! End-to-end tests of the real `qom` binary: QEMU's own Python QMP client
//! drives it, and QEMU 10.0.2's recorded answers (tests/oracle/qemu-10.0.2/,
//! made by `cargo xtask oracle record`) are replayed against it by the
//! oracle runner of qom-test-support. A missing fixture fails.

use qom_test_support::oracle::{self, cli_cases, transcript};
use std::path::PathBuf;
use std::process::Command;

fn qom() -> &'static str {
    env!("CARGO_BIN_EXE_qom")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtual environment holding `qemu.qmp` that `cargo xtask
/// python-client` (and `cargo xtask ci`) creates:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/qom-rs/venv`.
fn venv_python() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
        });
    cache.join("qom-rs/venv/bin/python3")
}

#[test]
fn qemu_python_client_drives_the_server_unchanged() {
    let python = venv_python();
    let have = Command::new(&python)
        .args(["-c", "import qemu.qmp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "{} with the PyPI package qemu.qmp is needed: run `cargo xtask python-client` \
         (python3 -m venv there, then pip install qemu.qmp; Debian needs python3-venv)",
        python.display()
    );
    let out = Command::new(&python)
        .arg(repo().join("tests/python/qmp_client_e2e.py"))
        .arg(qom())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "qmp_client_e2e.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scenarios where we differ from QEMU on purpose; docs/qemu-compat.md
/// gives the reason for each.
const EXPECTED_DIFFERENCES: &[&str] = &[
    "list-props-memory-backend-file", // our `sync` property
    "add-sizes",                      // a size error removes the file we created; QEMU leaves it
    "err-unknown-prop",               // `sync` exists here
    "qom-list",                       // `sync`; no /machine
];

/// Backing files that we create are `0600` where QEMU makes them `0644`,
/// on purpose (docs/qemu-compat.md, "New files are owner-only"). The
/// transcripts record the mode of each file they look at; reading ours as
/// QEMU's keeps the rest of those scenarios compared.
fn owner_only_files_as_qemu_would_have_them(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("type").and_then(|t| t.as_str()) == Some("file")
                && m.get("mode").and_then(|t| t.as_str()) == Some("0o600")
            {
                m.insert("mode".into(), "0o644".into());
            }
            m.values_mut()
                .for_each(owner_only_files_as_qemu_would_have_them);
        }
        serde_json::Value::Array(a) => a
            .iter_mut()
            .for_each(owner_only_files_as_qemu_would_have_them),
        _ => {}
    }
}

fn qom_server() -> Vec<String> {
    vec![qom().to_owned(), "-qmp".into(), "stdio".into()]
}

/// `mine` (with our owner-only files read as QEMU's) against QEMU's
/// transcript: how many scenarios matched, the differing ones not in
/// `expected`, and a report of every difference (also printed).
fn compare_with_qemu(
    qemu: &serde_json::Value,
    mut mine: serde_json::Value,
    expected: &[&str],
) -> (usize, Vec<String>, String) {
    owner_only_files_as_qemu_would_have_them(&mut mine);
    let (matched, differ) = transcript::compare(qemu, &mine);
    let report: String = differ
        .iter()
        .map(|(name, diffs)| format!("[DIFFER] {name}\n    {}\n", diffs.join("\n    ")))
        .collect();
    eprintln!("{report}{matched} matched, {} differ", differ.len());
    let unexpected = differ
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| !expected.contains(&name.as_str()))
        .collect();
    (matched, unexpected, report)
}

#[test]
fn recorded_qemu_transcripts_match_except_documented_differences() {
    let recorded = oracle::recording_dir(oracle::REFERENCE_QEMU);
    let qemu = oracle::read_fixture_json(&recorded.join("scenarios.json"));
    let defs = oracle::read_fixture_json(&oracle::fixture_dir().join("scenarios.json"));
    let mine = transcript::run_scenarios(&defs, &transcript::RunOptions::new(qom_server()))
        .expect("the scenarios run");
    let (matched, unexpected, report) = compare_with_qemu(&qemu, mine, EXPECTED_DIFFERENCES);
    assert!(
        unexpected.is_empty(),
        "scenarios differing from QEMU {}: {unexpected:?}\n{report}",
        oracle::REFERENCE_QEMU
    );
    assert!(matched > 0, "nothing matched\n{report}");
}

/// Command-line cases where we differ from `qemu-system-x86_64 -object`
/// on purpose (docs/qemu-compat.md).
const EXPECTED_CLI_DIFFERENCES: &[&str] = &[
    "sync-auto-unknown", // `sync` exists here (QEMU: Invalid parameter 'sync')
    "help",              // our property list has `sync`
];

#[test]
fn recorded_qemu_command_line_outcomes_match_except_documented_differences() {
    let recorded = oracle::recording_dir(oracle::REFERENCE_QEMU);
    let qemu = cli_cases::read_results(&oracle::read_fixture(&recorded.join("cli_cases.tsv")));
    let cases = cli_cases::read_cases(&oracle::read_fixture(
        &oracle::fixture_dir().join("cli_cases.tsv"),
    ));
    assert_eq!(
        cases.len(),
        qemu.len(),
        "tests/oracle/cli_cases.tsv and the recording disagree: record again"
    );
    let tmp = std::env::temp_dir();
    let timeout = std::time::Duration::from_secs(20);
    let (mut matched, mut report, mut unexpected) = (0, String::new(), Vec::new());
    for theirs in &qemu {
        let case = cases
            .iter()
            .find(|c| c.name == theirs.name)
            .unwrap_or_else(|| panic!("case {} is not in tests/oracle/cli_cases.tsv", theirs.name));
        let mine = cli_cases::run_case(case, &qom_server(), &tmp, timeout).expect("the case runs");
        // QEMU has no `sync`: compared without it
        let cols = cli_cases::differing_columns(theirs, &mine, &["sync"]);
        if cols.is_empty() {
            matched += 1;
            continue;
        }
        report.push_str(&format!(
            "DIFFER {}: {}\n  QEMU: {theirs:?}\n  qom:  {mine:?}\n",
            case.name,
            cols.join(" ")
        ));
        if !EXPECTED_CLI_DIFFERENCES.contains(&case.name.as_str()) {
            unexpected.push(case.name.clone());
        }
    }
    eprintln!("{report}{matched} matched, {} differ", qemu.len() - matched);
    assert!(
        unexpected.is_empty(),
        "command-line cases differing from QEMU {}: {unexpected:?}\n{report}",
        oracle::REFERENCE_QEMU
    );
    assert!(matched > 0, "nothing matched\n{report}");
}

/// Device scenarios where we differ from QEMU on purpose (none).
const EXPECTED_DEVICE_DIFFERENCES: &[&str] = &[];

/// QEMU 10.0.2's answers about devices (tests/oracle/devices/), recorded
/// with `-machine pc,nvdimm=on -m 512M,slots=4,maxmem=4G`, replayed
/// against `qom` started with the same machine options.
#[test]
fn recorded_qemu_device_transcripts_match() {
    let recorded = oracle::recording_dir(oracle::REFERENCE_QEMU).join("devices");
    let qemu = oracle::read_fixture_json(&recorded.join("scenarios.json"));
    let defs =
        oracle::read_fixture_json(&oracle::fixture_dir().join("devices").join("scenarios.json"));
    let server: Vec<String> = [
        qom(),
        "-machine",
        "pc,nvdimm=on",
        "-m",
        "512M,slots=4,maxmem=4G",
        "-qmp",
        "stdio",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mine = transcript::run_scenarios(&defs, &transcript::RunOptions::new(server))
        .expect("the device scenarios run");
    let (matched, unexpected, report) = compare_with_qemu(&qemu, mine, EXPECTED_DEVICE_DIFFERENCES);
    assert!(
        unexpected.is_empty(),
        "device scenarios differing from QEMU {}: {unexpected:?}\n{report}",
        oracle::REFERENCE_QEMU
    );
    assert_eq!(matched, 16, "{report}");
}
