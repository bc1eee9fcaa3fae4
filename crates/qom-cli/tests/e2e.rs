//! End-to-end tests of the real `qom` binary: QEMU's own Python QMP client
//! drives it, and QEMU 10.0.2's recorded QMP transcripts are replayed
//! against it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn qom() -> &'static str {
    env!("CARGO_BIN_EXE_qom")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The oracle folder (`shared/oracle` beside the repository, or
/// `$QOM_ORACLE_DIR`).
fn oracle_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("QOM_ORACLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/oracle"));
    dir.join("qmp_scenarios.py").exists().then_some(dir)
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn qemu_python_client_drives_the_server_unchanged() {
    assert!(
        python_has("qemu.qmp"),
        "the PyPI package qemu.qmp is needed (pip install qemu.qmp); .ci/run installs it"
    );
    let out = Command::new("python3")
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
fn owner_only_files_as_qemu_would_have_them(transcript: &std::path::Path) {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("type").and_then(|t| t.as_str()) == Some("file")
                    && m.get("mode").and_then(|t| t.as_str()) == Some("0o600")
                {
                    m.insert("mode".into(), "0o644".into());
                }
                m.values_mut().for_each(walk);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(transcript).unwrap()).unwrap();
    walk(&mut v);
    std::fs::write(transcript, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn recorded_qemu_transcripts_match_except_documented_differences() {
    let Some(dir) = oracle_dir() else {
        eprintln!("SKIPPED: no oracle folder beside the repository (set QOM_ORACLE_DIR)");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("qom-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mine = tmp.join("mine.json");
    let run = Command::new("python3")
        .current_dir(&dir)
        .args(["qmp_scenarios.py", "run", "--server-cmd"])
        .arg(format!("{} -qmp stdio", qom()))
        .arg("--out")
        .arg(&mine)
        .arg("--tmp-root")
        .arg(&tmp)
        .output()
        .expect("python3 runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    owner_only_files_as_qemu_would_have_them(&mine);
    let cmp = Command::new("python3")
        .current_dir(&dir)
        .args(["qmp_scenarios.py", "compare", "qemu-10.0.2.json"])
        .arg(&mine)
        .arg("-q")
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&cmp.stdout);
    let differ: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("[DIFFER]"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let unexpected: Vec<&&str> = differ
        .iter()
        .filter(|d| !EXPECTED_DIFFERENCES.contains(d))
        .collect();
    assert!(
        unexpected.is_empty(),
        "scenarios differing from QEMU 10.0.2: {unexpected:?}\n{text}"
    );
    assert!(text.contains("matched"), "{text}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Command-line cases where we differ from `qemu-system-x86_64 -object`
/// on purpose (docs/qemu-compat.md).
const EXPECTED_CLI_DIFFERENCES: &[&str] = &[
    "sync-auto-unknown", // `sync` exists here (QEMU: Invalid parameter 'sync')
    "help",              // our property list has `sync`
];

#[test]
fn recorded_qemu_command_line_outcomes_match_except_documented_differences() {
    let Some(dir) = oracle_dir() else {
        eprintln!("SKIPPED: no oracle folder beside the repository (set QOM_ORACLE_DIR)");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("qom-cli-cases-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("tests/python/cli_cases_compare.py"))
        .arg(&dir)
        .arg(qom())
        .arg(&tmp)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let differ: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("DIFFER "))
        .filter_map(|l| l.split(':').next())
        .filter(|name| !EXPECTED_CLI_DIFFERENCES.contains(name))
        .collect();
    assert!(
        differ.is_empty(),
        "command-line cases differing from QEMU 10.0.2: {differ:?}\n{text}"
    );
    assert!(text.contains(" matched, "), "{text}");
    let _ = std::fs::remove_dir_all(&tmp);
}
