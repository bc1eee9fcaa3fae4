//! Errors keep their cause: an `object_add` that fails below the object
//! model gives a `qom::Error` with QEMU's text and class (unchanged) whose
//! `std::error::Error::source()` is the typed backend error, errno
//! included, so that a VMM can tell one failure from another.
//!
//! As root, a small tmpfs is mounted for the ENOSPC case (SKIPPED
//! otherwise).

use qom_test_support as common;

use std::error::Error as _;
use std::path::Path;

use common::{Mount, TempDir};
use memory_backend::host::{Errno, HostError};
use memory_backend_file::file::FileError;
use qom::{ErrorClass, ObjectTree, TypeRegistry};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// object-add of a memory-backend-file that must fail; the error's class
/// is GenericError, as QEMU's.
fn add_err(tree: &ObjectTree, id: &str, extra: Value) -> qom::Error {
    let mut a = json!({"qom-type": "memory-backend-file", "id": id});
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let e = tree.object_add_args(a.as_object().unwrap()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::GenericError, "{e}");
    e
}

fn host_source(e: &qom::Error) -> &HostError {
    e.source()
        .unwrap_or_else(|| panic!("no source: {e:?}"))
        .downcast_ref::<HostError>()
        .unwrap_or_else(|| panic!("source is not a HostError: {e:?}"))
}

#[test]
fn sync_on_tmpfs_gives_map_sync_unsupported_with_eopnotsupp() {
    let dir = TempDir::new_in("/dev/shm");
    let f = p(&dir.join("s"));
    let t = tree();
    let e = add_err(
        &t,
        "m",
        json!({"size": 2 * MIB, "mem-path": f, "share": true, "sync": "on"}),
    );
    // The text is QEMU-style as before: it names the file and DAX.
    let text = e.to_string();
    assert!(
        text.starts_with("MAP_SYNC was requested (sync=on)"),
        "{text}"
    );
    match host_source(&e) {
        HostError::MapSyncUnsupported { errno, .. } => assert_eq!(*errno, Errno::OPNOTSUPP),
        other => panic!("unexpected source {other:?}"),
    }
    assert_eq!(host_source(&e).errno(), Some(Errno::OPNOTSUPP));
    // The source's own text is the error's text: nothing is added or lost.
    assert_eq!(e.source().unwrap().to_string(), text);
    // A clone keeps the cause and compares equal.
    let c = e.clone();
    assert_eq!(c, e);
    assert!(matches!(
        host_source(&c),
        HostError::MapSyncUnsupported { .. }
    ));
}

#[test]
fn sync_on_with_share_off_gives_map_sync_needs_shared() {
    let dir = TempDir::new_in("/dev/shm");
    let f = p(&dir.join("s"));
    let e = add_err(
        &tree(),
        "m",
        json!({"size": 2 * MIB, "mem-path": f, "sync": "on"}),
    );
    assert_eq!(
        e.to_string(),
        "property 'sync' = 'on' is not supported with 'share' = 'off': \
         MAP_SYNC exists only for shared mappings"
    );
    assert_eq!(host_source(&e), &HostError::MapSyncNeedsShared);
}

#[test]
fn missing_directory_gives_file_open_error_with_enoent() {
    let dir = TempDir::new_in("/dev/shm");
    let f = p(&dir.join("no/such/file"));
    let e = add_err(&tree(), "m", json!({"size": 2 * MIB, "mem-path": f}));
    assert_eq!(
        e.to_string(),
        format!("can't open backing store {f} for guest RAM: No such file or directory")
    );
    let source = e.source().unwrap().downcast_ref::<FileError>().unwrap();
    assert!(
        matches!(source, FileError::Open { errno, .. } if *errno == Errno::NOENT),
        "{source:?}"
    );
}

#[test]
fn prealloc_on_full_tmpfs_gives_enospc() {
    let Some(mnt) = Mount::new("tmpfs", "size=8m") else {
        return;
    };
    let t = tree();
    let f = p(&mnt.join("ram"));
    let e = add_err(
        &t,
        "big",
        json!({"size": 64 * MIB, "mem-path": f, "share": true, "prealloc": true}),
    );
    assert_eq!(
        e.to_string(),
        "qemu_prealloc_mem: preallocating memory failed: No space left on device"
    );
    assert_eq!(host_source(&e), &HostError::Prealloc(Errno::NOSPC));

    // A late preallocation (qom-set) keeps its cause too.
    let mut a = json!({"qom-type": "memory-backend-file", "id": "late",
                       "size": 64 * MIB, "mem-path": f, "share": true});
    t.object_add_args(a.as_object_mut().unwrap()).unwrap();
    let e = t.qom_set("late", "prealloc", &json!(true)).unwrap_err();
    assert_eq!(e.class(), ErrorClass::GenericError);
    assert_eq!(host_source(&e).errno(), Some(Errno::NOSPC));
    t.object_del("late").unwrap();
}

#[test]
fn file_errors_are_their_own_source_and_qom_errors_have_none() {
    let dir = TempDir::new_in("/dev/shm");
    let f = p(&dir.join("r"));
    let e = add_err(
        &tree(),
        "m",
        json!({"size": 2 * MIB, "mem-path": f, "rom": "on"}),
    );
    assert_eq!(
        e.to_string(),
        "property 'rom' = 'on' is not supported with 'readonly' = 'off'"
    );
    // Raised in the file layer, without an errno: the FileError is the
    // source.
    assert!(matches!(
        e.source().and_then(|s| s.downcast_ref::<FileError>()),
        Some(FileError::RomOnNeedsReadonly)
    ));
    // Raised by the object model itself: no source.
    let e = add_err(&tree(), "m", json!({"size": 2 * MIB}));
    assert_eq!(e.to_string(), "Parameter 'mem-path' is missing");
    assert!(e.source().is_none(), "{e:?}");
}
