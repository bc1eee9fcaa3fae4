//! The library prints nothing: QEMU's pmem/MAP_SYNC warnings go through the
//! `log` facade, with the target that says how QEMU prints each one. A
//! small logger of this test captures them (one logger per process, so
//! this file is its own test binary and holds one test).

use qom_test_support as common;

use std::sync::Mutex;

use common::TempDir;
use log::{Level, Log, Metadata, Record};
use memory_backend_file::file::FileWarning;
use memory_backend_file::{RAW_WARNING_TARGET, WARNING_TARGET};
use qom::{ObjectTree, TypeRegistry};
use serde_json::json;

/// (level, target, text) of every record.
struct Capture(Mutex<Vec<(Level, String, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((r.level(), r.target().to_owned(), r.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn take() -> Vec<(Level, String, String)> {
    std::mem::take(&mut *CAPTURE.0.lock().unwrap())
}

#[test]
fn pmem_without_dax_logs_qemus_two_warnings() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let dir = TempDir::new_in("/dev/shm");
    let f = dir.join("pmem");
    let path = f.to_str().unwrap();

    // No warning without pmem.
    let args = json!({"qom-type": "memory-backend-file", "id": "plain",
                      "size": 2 << 20, "mem-path": path, "share": true});
    tree.object_add_args(args.as_object().unwrap()).unwrap();
    tree.object_del("plain").unwrap();
    assert_eq!(take(), vec![]);

    // pmem=on, share=on, sync=auto on tmpfs: MAP_SYNC refused, QEMU's raw
    // line, then its warn_report line.
    let args = json!({"qom-type": "memory-backend-file", "id": "m",
                      "size": 2 << 20, "mem-path": path, "share": true, "pmem": true});
    let obj = tree.object_add_args(args.as_object().unwrap()).unwrap();
    let raw = format!(
        "Warning: requesting persistence across crashes for backend file {path} failed. \
         Proceeding without persistence, data might become corrupted in case of host crash."
    );
    assert_eq!(
        take(),
        vec![
            (Level::Warn, RAW_WARNING_TARGET.to_owned(), raw),
            (
                Level::Warn,
                WARNING_TARGET.to_owned(),
                "Using non DAX backing file with 'pmem=on' option is deprecated".to_owned()
            ),
        ]
    );
    // The same warnings stay readable on the object.
    let info = memory_backend_file::file_info(&obj).unwrap();
    assert_eq!(info.warnings[1], FileWarning::NonDaxPmemDeprecated);
    tree.object_del("m").unwrap();
}
