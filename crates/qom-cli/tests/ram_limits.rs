//! Guest RAM as QEMU 10.0.2 has it, seen from outside the `qom` process:
//! the `VmFlags` of a `memory-backend-ram`'s mapping, private RAM that
//! holds no descriptor, and the soft open-file limit raised to the hard
//! one at start. Needs `prlimit` (util-linux).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use qom_test_support::smaps_entries_of_len;

/// `qom ARGS` under `prlimit --nofile=LIMITS`, or a failure that says
/// what to install.
fn under_prlimit(limits: &str, args: &[String]) -> Command {
    let found = Command::new("prlimit")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "this test needs prlimit: install util-linux (apt-get install util-linux)"
    );
    let mut c = Command::new("prlimit");
    c.arg(format!("--nofile={limits}"))
        .arg(env!("CARGO_BIN_EXE_qom"))
        .args(args);
    c
}

/// Starts `qom ARGS -qmp stdio` under `prlimit` and waits for its QMP
/// greeting, i.e. until every object exists.
fn serving(limits: &str, args: &[String]) -> Child {
    let mut args = args.to_vec();
    args.extend(["-qmp".into(), "stdio".into()]);
    let mut child = under_prlimit(limits, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("qom starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("\"QMP\""), "no greeting: {line:?}");
    child
}

/// Ends a `serving` child: end of input stops the server.
fn stop(mut child: Child) {
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

fn objects(n: usize, spec: &str) -> Vec<String> {
    (0..n)
        .flat_map(|i| ["-object".to_owned(), format!("{spec},id=m{i}")])
        .collect()
}

#[test]
fn soft_open_file_limit_is_raised_to_the_hard_limit() {
    let child = serving("64:4096", &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3..5], ["4096", "4096"], "{line}");
    stop(child);
}

#[test]
fn fifteen_hundred_shared_backends_fit_under_a_soft_limit_of_1024() {
    let out = under_prlimit(
        "1024:4096",
        &objects(1500, "memory-backend-memfd,size=4K,seal=off"),
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn private_ram_backends_hold_no_descriptor() {
    // Soft and hard limit 1024: nothing to raise, so 1,500 backends only
    // fit if none of them holds a descriptor (QEMU creates them too).
    let out = under_prlimit("1024:1024", &objects(1500, "memory-backend-ram,size=4K"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    // The same with share=on needs 1,500 descriptors, and says so.
    let out = under_prlimit(
        "1024:1024",
        &objects(1500, "memory-backend-ram,size=4K,share=on"),
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("cannot set up guest memory 'm"),
        "{}",
        common::stderr(&out)
    );
    assert!(
        common::stderr(&out).contains("Too many open files"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn ram_mapping_has_qemus_vm_flags() {
    const LEN: usize = 64 << 20;
    for (spec, want) in [
        (
            "memory-backend-ram,id=r,size=64M,prealloc=on",
            "rd wr mr mw me dc ac hg mg",
        ),
        (
            "memory-backend-ram,id=r,size=64M,merge=off,dump=off",
            "rd wr mr mw me dc ac dd hg",
        ),
        (
            "memory-backend-memfd,id=r,size=64M,prealloc=on",
            "rd wr sh mr mw me ms dc hg",
        ),
    ] {
        let child = serving("1024:4096", &["-object".into(), spec.into()]);
        // Accessible mappings only: a malloc arena reserves 64 MiB too,
        // but inaccessible apart from what it uses.
        let entries: Vec<_> = smaps_entries_of_len(&child.id().to_string(), LEN)
            .into_iter()
            .filter(|e| {
                e.header.split_whitespace().nth(1) == Some("rw-p")
                    || e.header.split_whitespace().nth(1) == Some("rw-s")
            })
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let mut got: Vec<&str> = entries[0]
            .vm_flags
            .iter()
            .map(String::as_str)
            .filter(|f| *f != "sd") // soft-dirty: the kernel's configuration
            .collect();
        let mut want: Vec<&str> = want.split_whitespace().collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{spec}: {:?}", entries[0]);
        stop(child);
    }
}
