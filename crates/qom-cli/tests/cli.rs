//! The `qom` command line: output, exit status and QEMU's error layout.

mod common;

use common::{qom, stderr, stdout};
use qom_test_support::TempDir;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

#[test]
fn creates_prints_and_releases_objects() {
    let t = TempDir::new_in("/tmp");
    let spec = format!(
        "memory-backend-file,id=mem0,size=4M,mem-path={},share=on,sync=auto",
        t.file("f")
    );
    let o = qom(&[
        "-object",
        &spec,
        "--object",
        "memory-backend-file,id=mem1,size=2M,mem-path=/dev/shm",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["mem0"]["size"], 4194304);
    assert_eq!(v["mem0"]["share"], true);
    // tmpfs and ext4 refuse MAP_SYNC: auto fell back and reads back off.
    assert_eq!(v["mem0"]["sync"], "off");
    assert_eq!(v["mem1"]["mem-path"], "/dev/shm");
    assert_eq!(std::fs::metadata(t.file("f")).unwrap().len(), 4 << 20);
}

#[test]
fn parse_errors_name_the_option_and_exit_1() {
    let t = TempDir::new_in("/tmp");
    let f = t.file("f");
    let cases = [
        (
            format!("memory-backend-file,id=m,size=4X,mem-path={f}"),
            "Parameter 'size' expects a size value",
        ),
        (
            format!("memory-backend-file,id=m,mem-path={f}"),
            "Parameter 'size' is missing",
        ),
        (
            format!("nosuch,id=m,size=4M,mem-path={f}"),
            "Parameter 'qom-type' does not accept value 'nosuch'",
        ),
        (
            "container,id=m".to_owned(),
            "Parameter 'qom-type' does not accept value 'container'",
        ),
        (
            format!("memory-backend-file,id=m,size=4M,mem-path={f},share=ON"),
            "Parameter 'share' expects 'on' or 'off'",
        ),
        (
            format!("memory-backend-file,id=m,size=4M,mem-path={f},rom=maybe"),
            "Parameter 'rom' does not accept value 'maybe'",
        ),
    ];
    for (spec, msg) in cases {
        let o = qom(&["-object", &spec]);
        assert_eq!(o.status.code(), Some(1), "{spec}");
        assert_eq!(stderr(&o), format!("qom: -object {spec}: {msg}\n"));
        assert!(stdout(&o).is_empty());
    }
    let spec = format!("memory-backend-file,id=1m,size=4M,mem-path={f}");
    let o = qom(&["-object", &spec]);
    assert_eq!(
        stderr(&o),
        format!(
            "qom: -object {spec}: Parameter 'id' expects an identifier\n\
             Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"
        )
    );
    assert!(
        t.entries().is_empty(),
        "nothing may be created: {:?}",
        t.entries()
    );
}

#[test]
fn creation_errors_have_no_location_and_leave_nothing() {
    let t = TempDir::new_in("/tmp");
    let f = t.file("f");
    let cases = [
        (
            format!("memory-backend-file,id=m,size=0,mem-path={f}"),
            "property 'size' of memory-backend-file doesn't take value '0'",
        ),
        (
            format!("memory-backend-file,id=m,size=4M,mem-path={f},align=3M"),
            "alignment 0x300000 must be a power of two",
        ),
        (
            format!(
                "memory-backend-file,id=m,size=4M,mem-path={}",
                t.file("nodir/f")
            ),
            &*format!(
                "can't open backing store {} for guest RAM: No such file or directory",
                t.file("nodir/f")
            ),
        ),
    ];
    for (spec, msg) in cases {
        let o = qom(&["-object", &spec]);
        assert_eq!(o.status.code(), Some(1), "{spec}");
        assert_eq!(stderr(&o), format!("qom: {msg}\n"));
    }
    let spec = format!("memory-backend-file,id=m,size=4M,mem-path={f},share=on,sync=on");
    let o = qom(&["-object", &spec]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("MAP_SYNC"), "{}", stderr(&o));
    assert!(
        t.entries().is_empty(),
        "nothing may be left: {:?}",
        t.entries()
    );
}

#[test]
fn duplicate_ids_and_json_specs() {
    let t = TempDir::new_in("/tmp");
    let a = format!("memory-backend-file,id=m,size=4M,mem-path={}", t.file("a"));
    let b = format!("memory-backend-file,id=m,size=4M,mem-path={}", t.file("b"));
    let o = qom(&["-object", &a, "-object", &b]);
    assert_eq!(
        stderr(&o),
        format!("qom: -object {b}: Duplicate ID 'm' for object\n")
    );
    assert!(t.entries().is_empty());
    let json = format!(
        r#"{{"qom-type":"memory-backend-file","id":"m","size":"4M","mem-path":"{}"}}"#,
        t.file("a")
    );
    let o = qom(&["-object", &json]);
    assert_eq!(
        stderr(&o),
        format!("qom: -object {json}: Parameter 'size' expects uint64\n")
    );
    let json = format!(
        r#"{{"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{}"}}"#,
        t.file("a")
    );
    let o = qom(&["-object", &json]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn help_texts() {
    let o = qom(&["-object", "help"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("List of user creatable objects:\n"));
    assert!(stdout(&o).contains("  memory-backend-file\n"));
    assert!(stdout(&o).contains("  thread-context\n"));
    let o = qom(&["-object", "memory-backend-file,help"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("  size=<int>             - Size of the memory region (ex: 500M)\n")
    );
    assert!(stdout(&o).contains("  sync=<OnOffAuto>"));
    for args in [
        &["--help"][..],
        &["types", "--help"],
        &["properties", "--help"],
        &["schema", "--help"],
    ] {
        let o = qom(args);
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage: qom"), "{args:?}");
        assert!(stdout(&o).contains("Example"), "{args:?}");
    }
    let o = qom(&["--bogus"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unexpected argument '--bogus'"));
}

#[test]
fn introspection_commands() {
    let o = qom(&["types", "--implements", "memory-backend", "--abstract"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "memory-backend" && t["abstract"] == true));
    let o = qom(&["types", "--abstract", "--tree"]);
    assert!(stdout(&o).contains("object (abstract)\n"));
    assert!(
        stdout(&o).contains("    memory-backend-file\n"),
        "{}",
        stdout(&o)
    );
    let o = qom(&["properties", "memory-backend-file"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "sync" && p["type"] == "OnOffAuto"));
    let o = qom(&["properties", "nosuch"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(1), "qom: Class 'nosuch' not found\n".to_owned())
    );
    let o = qom(&["schema", "memory-backend-file"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["properties"]["sync"]["enum"],
        serde_json::json!(["auto", "on", "off"])
    );
    assert_eq!(
        v["required"],
        serde_json::json!(["qom-type", "id", "size", "mem-path"])
    );
    assert_eq!(v["additionalProperties"], false);
}

fn roundtrip(input: &str) -> (Output, Vec<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let values = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, values)
}

#[test]
fn qmp_on_stdio_ends_at_end_of_input() {
    let (out, replies) = roundtrip(
        "{\"execute\":\"qmp_capabilities\"}\n\
         {\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"memory-backend-file\",\"id\":\"m\",\"size\":2097152,\"mem-path\":\"/dev/shm\"}}\n\
         {\"execute\":\"qom-get\",\"arguments\":{\"path\":\"m\",\"property\":\"size\"},\"id\":7}\n\
         {\"execute\":\"query-memdev\"}\n",
    );
    assert!(out.status.success());
    assert!(replies[0]["QMP"]["version"]["qemu"]["major"].is_number());
    assert_eq!(replies[3], serde_json::json!({"return": 2097152, "id": 7}));
    assert_eq!(replies[4]["return"][0]["id"], "m");
}

#[test]
fn qmp_on_a_unix_socket_and_quit() {
    let t = TempDir::new_in("/tmp");
    let sock = t.file("qmp.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["-qmp", &format!("unix:{sock},server=on,wait=off")])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !Path::new(&sock).exists() {
        assert!(std::time::Instant::now() < deadline, "no socket");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("\"QMP\""));
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n")
        .unwrap();
    let mut lines = Vec::new();
    for _ in 0..3 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        lines.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(lines[0], serde_json::json!({"return": {}}));
    assert_eq!(lines[1]["event"], "SHUTDOWN");
    assert_eq!(lines[2], serde_json::json!({"return": {}}));
    assert!(child.wait().unwrap().success());
    assert!(!Path::new(&sock).exists(), "the socket is removed at quit");
}
