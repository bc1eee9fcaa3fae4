//! The progress line of long preallocations and their cancellation by a
//! signal, through the real binary: a line on a terminal (a pseudo-terminal
//! from `script`), nothing extra otherwise, and SIGINT in the middle of a
//! preallocation leaves no file behind.

use qom_test_support::{dir_entries, TempDir};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const QOM: &str = env!("CARGO_BIN_EXE_qom");
const TIMEOUT: Duration = Duration::from_secs(60);

fn backend(dir: &TempDir, size: &str) -> String {
    format!(
        "memory-backend-file,id=mem0,size={size},mem-path={},share=on,prealloc=on",
        dir.path().display()
    )
}

#[test]
fn a_terminal_shows_the_progress_line_and_clears_it() {
    let dir = TempDir::new_in("/dev/shm");
    let cmd = format!("{QOM} -object {}", backend(&dir, "256M"));
    // script(1) runs the command on a new pseudo-terminal and copies what
    // it printed to its own stdout.
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("QOM_PROGRESS_DELAY_MS", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run script(1) ({e}): install Debian's bsdutils package (util-linux)")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {text}", out.status);
    assert!(
        text.contains("preallocating mem0 ["),
        "no progress line: {text:?}"
    );
    assert!(text.contains(" of 256 MiB ("), "{text:?}");
    assert!(text.contains("/s"), "no rate: {text:?}");
    // The line is gone before the objects are printed.
    let json = text.find("\"mem0\"").expect("the objects are printed");
    let last_line = text.rfind("preallocating mem0").unwrap();
    let cleared = text[last_line..json].contains("\x1b[2K");
    assert!(cleared, "the line was not cleared: {text:?}");
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn without_a_terminal_stderr_is_unchanged() {
    let dir = TempDir::new_in("/dev/shm");
    for delay in [Some("0"), None] {
        let mut cmd = Command::new(QOM);
        cmd.args(["-object", &backend(&dir, "64M")]);
        if let Some(d) = delay {
            cmd.env("QOM_PROGRESS_DELAY_MS", d);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("run qom");
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"mem0\""));
    }
    // An error reads as it always did.
    let out = Command::new(QOM)
        .args([
            "-object",
            "memory-backend-file,id=m,size=3,mem-path=/dev/shm,prealloc=on",
        ])
        .env("QOM_PROGRESS_DELAY_MS", "0")
        .output()
        .expect("run qom");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qom: backend 'memory-backend-file' memory size must be multiple of 4 KiB\n"
    );
}

/// Whether `pid` has a descriptor open on a file in `dir` (the backend's
/// file, unnamed until the backend is complete).
fn has_file_in(pid: u32, dir: &std::path::Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(dir)))
}

#[test]
fn sigint_cancels_a_preallocation_and_leaves_nothing() {
    let dir = TempDir::new_in("/dev/shm");
    let named = dir.join("guest-ram");
    let spec = format!(
        "memory-backend-file,id=mem0,size=4G,mem-path={},share=on,prealloc=on",
        named.display()
    );
    let mut child = Command::new(QOM)
        .args(["-object", &spec])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn qom");
    // The file is open, so its preallocation is running or about to: a
    // signal either way cancels it (the cancellation also stops one that
    // has not started).
    let start = Instant::now();
    while !has_file_in(child.id(), dir.path()) {
        assert!(start.elapsed() < TIMEOUT, "qom never opened its file");
        assert!(child.try_wait().unwrap().is_none(), "qom ended too soon");
        std::thread::sleep(Duration::from_millis(1));
    }
    let sent = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("qom did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("qom: terminating on signal 2\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("qom: preallocation cancelled after ") && stderr.contains(" of 4 GiB\n"),
        "{stderr}"
    );
    assert!(!named.exists(), "the half-made file is there");
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}
