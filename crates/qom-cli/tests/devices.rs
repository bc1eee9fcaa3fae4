//! Devices through the `qom` binary: `-device` cold plug, `device_add` and
//! `device_del` over QMP (with `DEVICE_DELETED`), `query-memory-devices`,
//! and the machine options' errors.

use qom_test_support::TempDir;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `qom ARGS -qmp stdio` with `input` and returns every line it wrote.
fn session(args: &[&str], input: &[Value]) -> (Output, Vec<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(args)
        .args(["-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    for v in input {
        text.push_str(&v.to_string());
        text.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, lines)
}

const MACHINE: [&str; 4] = ["-machine", "pc,nvdimm=on", "-m", "512M,slots=4,maxmem=4G"];

#[test]
fn cold_plugged_devices_are_not_hotplugged_and_hot_plugged_ones_are() {
    let mut args = MACHINE.to_vec();
    args.extend([
        "-object",
        "memory-backend-ram,id=m0,size=64M",
        "-device",
        "pc-dimm,id=d0,memdev=m0",
        "-object",
        "memory-backend-ram,id=m1,size=128M",
    ]);
    let (out, lines) = session(
        &args,
        &[
            json!({"execute": "qmp_capabilities"}),
            json!({"execute": "device_add", "arguments": {"driver": "pc-dimm", "id": "d1", "memdev": "m1"}}),
            json!({"execute": "query-memory-devices", "id": 1}),
            json!({"execute": "device_del", "arguments": {"id": "d1"}, "id": 2}),
            json!({"execute": "object-del", "arguments": {"id": "m1"}, "id": 3}),
            json!({"execute": "query-memory-devices", "id": 4}),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_id = |id: i64| {
        lines
            .iter()
            .find(|l| l["id"] == id)
            .unwrap_or_else(|| panic!("no reply {id} in {lines:?}"))
            .clone()
    };
    let devices = by_id(1)["return"].clone();
    assert_eq!(
        devices,
        json!([
            {"type": "dimm", "data": {"id": "d0", "addr": 4u64 << 30, "size": 64 << 20, "slot": 0,
             "node": 0, "memdev": "/objects/m0", "hotplugged": false, "hotpluggable": true}},
            {"type": "dimm", "data": {"id": "d1", "addr": (4u64 << 30) + (64 << 20), "size": 128 << 20,
             "slot": 1, "node": 0, "memdev": "/objects/m1", "hotplugged": true, "hotpluggable": true}},
        ])
    );
    let event = lines
        .iter()
        .find(|l| l["event"] == "DEVICE_DELETED")
        .expect("DEVICE_DELETED was sent");
    assert_eq!(
        event["data"],
        json!({"device": "d1", "path": "/machine/peripheral/d1"})
    );
    assert_eq!(by_id(2)["return"], json!({}));
    // The backend is free again once its device is gone.
    assert_eq!(by_id(3)["return"], json!({}));
    assert_eq!(by_id(4)["return"].as_array().unwrap().len(), 1);
}

#[test]
fn nvdimm_over_a_sync_auto_file_backend_is_hot_plugged() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.path().join("nv0");
    let (out, lines) = session(
        &MACHINE,
        &[
            json!({"execute": "qmp_capabilities"}),
            json!({"execute": "object-add", "arguments": {"qom-type": "memory-backend-file", "id": "n0",
                   "mem-path": path, "size": 134217728, "share": true, "sync": "auto"}}),
            json!({"execute": "device_add", "arguments": {"driver": "nvdimm", "id": "nv0", "memdev": "n0",
                   "label-size": 131072}, "id": 1}),
            json!({"execute": "qom-get", "arguments": {"path": "/machine/peripheral/nv0", "property": "size"}, "id": 2}),
            json!({"execute": "device_del", "arguments": {"id": "nv0"}, "id": 3}),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply = |id: i64| lines.iter().find(|l| l["id"] == id).unwrap().clone();
    assert_eq!(reply(1)["return"], json!({}), "{lines:?}");
    assert_eq!(reply(2)["return"], json!(134217728 - 131072));
    assert_eq!(
        reply(3)["error"]["desc"],
        "nvdimm device hot unplug is not supported yet."
    );
}

#[test]
fn device_errors_name_the_option_and_create_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(MACHINE)
        .args([
            "-object",
            "memory-backend-ram,id=m0,size=64M",
            "-device",
            "pc-dimm,id=d0,memdev=m0",
            "-device",
            "pc-dimm,id=d1,memdev=m0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qom: -device pc-dimm,id=d1,memdev=m0: can't use already busy memdev: m0\n"
    );
    let stderr_of = |devices: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qom"));
        cmd.args(MACHINE)
            .args(["-object", "memory-backend-ram,id=m0,size=64M"]);
        for d in devices {
            cmd.args(["-device", d]);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(
        stderr_of(&["pc-dimm,id=1bad,memdev=m0"]),
        "qom: -device pc-dimm,id=1bad,memdev=m0: Parameter 'id' expects an identifier\n\
         Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"
    );
    assert_eq!(
        stderr_of(&["pc-dimm,id=d0,memdev=m0", "pc-dimm,id=d0,memdev=m1"]),
        "qom: -device pc-dimm,id=d0,memdev=m1: Duplicate ID 'd0' for device\n"
    );
    assert_eq!(
        stderr_of(&["pc-dimm,memdev=m0,bogus=1"]),
        "qom: -device pc-dimm,memdev=m0,bogus=1: Property 'pc-dimm.bogus' not found\n"
    );
    assert_eq!(
        stderr_of(&["nosuch"]),
        "qom: -device nosuch: 'nosuch' is not a valid device model name\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["-m", "512M,slots=4,maxmem=256M"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qom: invalid value of maxmem: maximum memory size (0x10000000) must be at least the initial memory size (0x20000000)\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["-machine", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qom: unsupported machine type: \"nosuch\"\nUse -machine help to list supported machines\n"
    );
}

#[test]
fn a_read_only_backend_needs_an_unarmed_nvdimm() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.path().join("ro");
    std::fs::write(&path, vec![0u8; 4 << 20]).unwrap();
    let backend = format!(
        "memory-backend-file,id=ro,size=4M,mem-path={},readonly=on",
        path.display()
    );
    let run = |device: &str| {
        Command::new(env!("CARGO_BIN_EXE_qom"))
            .args(MACHINE)
            .args(["-object", &backend, "-device", device])
            .output()
            .unwrap()
    };
    let out = run("nvdimm,id=n,memdev=ro");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qom: -device nvdimm,id=n,memdev=ro: 'unarmed' property must be 'on' since memdev ro is read-only\n"
    );
    let out = run("nvdimm,id=n,memdev=ro,unarmed=on");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Print mode shows the device by path beside the backend.
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dev = &printed["/machine/peripheral/n"];
    assert_eq!(dev["unarmed"], true, "{printed}");
    assert_eq!(dev["hotplugged"], false);
    assert_eq!(dev["memdev"], "/objects/ro");
    assert_eq!(dev["addr"], 4u64 << 30);
    assert_eq!(printed["ro"]["readonly"], true);
}

#[test]
fn device_help_lists_drivers_and_properties() {
    let out = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["-device", "help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("name \"pc-dimm\"") && text.contains("name \"nvdimm\""),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["-device", "nvdimm,help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("nvdimm options:\n"), "{text}");
    assert!(text.contains("  memdev=<link<memory-backend>>"), "{text}");
    assert!(!text.contains("realized"), "{text}");
}
