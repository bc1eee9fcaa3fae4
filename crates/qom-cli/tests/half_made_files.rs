//! No half-made files, seen from outside: the real `qom` binary creates a
//! memory-backend-file under a new name on ext4 (or xfs) and is killed
//! with SIGKILL while it preallocates. Nothing may remain under the name:
//! the file only gets it once the backend is complete.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qom_test_support::ext4_or_xfs_dir;

const MIB: u64 = 1 << 20;

fn qom() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qom"))
}

/// `VmRSS` of a process in bytes; `None` once it is gone.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn object(path: &Path, size: &str) -> String {
    format!(
        "memory-backend-file,id=mem0,size={size},mem-path={},share=on,prealloc=on",
        path.display()
    )
}

#[test]
fn sigkill_during_prealloc_leaves_no_file_under_the_name() {
    let dir = match ext4_or_xfs_dir() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let path = dir.join("guest-ram");
    let mut child = qom()
        .args(["-object", &object(&path, "2G")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();

    // Mapping touches no page; only preallocation makes the resident set
    // grow by tens of MiB, so past 64 MiB the process is preallocating
    // (2 GiB takes seconds; this point comes after about a quarter second).
    let start = Instant::now();
    let resident = loop {
        match rss(pid) {
            Some(r) if r > 64 * MIB => break r,
            Some(_) if start.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(2))
            }
            _ => {
                let _ = child.kill();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("qom did not reach preallocation: {err}");
            }
        }
    };
    let named_while_preallocating = path.exists();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    eprintln!(
        "killed after {:?} with {} MiB resident: {status}",
        start.elapsed(),
        resident / MIB
    );
    assert!(!named_while_preallocating, "named before prealloc finished");
    assert!(!path.exists(), "a half-made file was left under the name");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_complete_backend_names_its_new_file_owner_only() {
    let dir = match ext4_or_xfs_dir() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let path = dir.join("guest-ram");
    // Without -qmp, qom creates the objects, prints them and exits.
    let out = qom()
        .args(["-object", &object(&path, "8M")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 8 * MIB);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}
