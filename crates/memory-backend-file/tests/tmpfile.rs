//! No half-made files: a file that `memory-backend-file` creates appears
//! under its name only when the backend is complete, owner-only (`0600`).
//!
//! A probe type, `memory-backend-file-probe`, is a subclass whose `alloc`
//! wraps the file backend's: it looks at `mem-path` right after the file
//! is opened and mapped, and again in `commit`, which `memory-backend`
//! calls after madvise, NUMA binding and preallocation. An id starting
//! with `intrude` makes the probe create a file under the name just
//! before the backend would name its own.
//!
//! File systems without `O_TMPFILE`: of those that can be mounted here,
//! only mqueue refuses it, and its entries are message queues, not files
//! to map; that test shows the fallback create and its clean-up on
//! failure. The successful fallback
//! is tested in the crate's unit tests, which can turn `O_TMPFILE` off.

use qom_test_support as common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{Mount, TempDir};
use memory_backend::host::Mapping;
use memory_backend::{HostMemory, MemoryBackendClass};
use memory_backend_file::file::{FileBacking, FileError, FileMapRequest, FileOrigin};
use qom::{Object, ObjectTree, TypeInfo, TypeRegistry};
use serde_json::{json, Map, Value};

const MIB: u64 = 1 << 20;
const PROBE: &str = "memory-backend-file-probe";
const INTRUDER: &[u8] = b"someone else's file";

/// What the probe saw: (object id, stage, whether mem-path existed).
static SEEN: Mutex<Vec<(String, &'static str, bool)>> = Mutex::new(Vec::new());

fn record(id: &str, stage: &'static str, path: &Path) {
    SEEN.lock()
        .unwrap()
        .push((id.to_owned(), stage, path.exists()));
}

fn seen(id: &str) -> Vec<(&'static str, bool)> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|(i, _, _)| i == id)
        .map(|(_, s, e)| (*s, *e))
        .collect()
}

/// The file backend's memory, watched.
#[derive(Debug)]
struct Probe {
    inner: Box<dyn HostMemory>,
    id: String,
    path: PathBuf,
}

impl HostMemory for Probe {
    fn mapping(&self) -> &Mapping {
        self.inner.mapping()
    }
    fn abandon(self: Box<Self>) {
        record(&self.id, "abandon", &self.path);
        self.inner.abandon();
    }
    fn commit(&mut self) -> qom::Result<()> {
        record(&self.id, "before commit", &self.path);
        if self.id.starts_with("intrude") {
            std::fs::write(&self.path, INTRUDER).unwrap();
        }
        let r = self.inner.commit();
        record(&self.id, "after commit", &self.path);
        r
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_file::register(&types).unwrap();
    types
        .register(
            TypeInfo::new(PROBE)
                .parent("memory-backend-file")
                .class_init(|c| {
                    let class = c.data_mut::<MemoryBackendClass>();
                    let parent = class.alloc.clone().expect("the file backend's alloc");
                    class.alloc = Some(Arc::new(move |obj: &Object| {
                        let id = obj.name().unwrap_or_default();
                        let path = PathBuf::from(obj.get("mem-path")?.as_str().unwrap());
                        let inner = parent(obj)?;
                        record(&id, "after alloc", &path);
                        Ok(Box::new(Probe { inner, id, path }) as Box<dyn HostMemory>)
                    }));
                    Ok(())
                }),
        )
        .unwrap();
    ObjectTree::new(types).unwrap()
}

fn add(tree: &ObjectTree, ty: &str, id: &str, extra: Value) -> qom::Result<Object> {
    let mut a: Map<String, Value> = json!({"qom-type": ty, "id": id})
        .as_object()
        .unwrap()
        .clone();
    a.extend(extra.as_object().unwrap().clone());
    tree.object_add_args(&a)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_file_gets_its_name_only_after_prealloc() {
    let t = tree();
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("guest-ram");
    let o = add(
        &t,
        PROBE,
        "named",
        json!({"size": 16 * MIB, "mem-path": p(&path), "share": true, "prealloc": true}),
    )
    .unwrap();
    assert_eq!(
        seen("named"),
        [
            ("after alloc", false),
            ("before commit", false),
            ("after commit", true)
        ]
    );
    // The named file is the mapped one, sized and owner-only.
    memory_backend::mapping(&o)
        .unwrap()
        .write_at(MIB as usize, b"guest")
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 16 * MIB);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        &std::fs::read(&path).unwrap()[MIB as usize..][..5],
        b"guest"
    );
    drop(o);
    t.object_del("named").unwrap();
    assert!(path.exists(), "kept after object-del, as QEMU keeps it");
}

#[test]
fn a_failed_creation_leaves_nothing() {
    let t = tree();
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("guest-ram");
    // The NUMA check runs after the file was created and mapped.
    let e = add(
        &t,
        PROBE,
        "failed",
        json!({"size": 4 * MIB, "mem-path": p(&path), "policy": "bind"}),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "host-nodes must be set for policy bind");
    assert_eq!(seen("failed"), [("after alloc", false), ("abandon", false)]);
    assert!(t.object("failed").is_none());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn prealloc_failing_on_a_full_tmpfs_leaves_nothing() {
    let Some(mnt) = Mount::new("tmpfs", "size=8m") else {
        return;
    };
    let t = tree();
    let path = mnt.join("guest-ram");
    let e = add(
        &t,
        "memory-backend-file",
        "full",
        json!({"size": 64 * MIB, "mem-path": p(&path), "share": true, "prealloc": true}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "qemu_prealloc_mem: preallocating memory failed: No space left on device"
    );
    assert_eq!(std::fs::read_dir(mnt.path()).unwrap().count(), 0);
    // The blocks went with the unnamed file.
    let st = rustix::fs::statvfs(mnt.path()).unwrap();
    assert_eq!(st.f_bfree, st.f_blocks);
}

#[test]
fn a_name_taken_meanwhile_is_an_error_and_the_other_file_is_untouched() {
    let t = tree();
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("guest-ram");
    let e = add(
        &t,
        PROBE,
        "intruded",
        json!({"size": 4 * MIB, "mem-path": p(&path), "share": true}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "can't create backing store {} for guest RAM: File exists (another process created \
             it while the memory was being prepared; it was left as it is)",
            path.display()
        )
    );
    assert_eq!(
        seen("intruded"),
        [
            ("after alloc", false),
            ("before commit", false),
            ("after commit", true),
            ("abandon", true)
        ]
    );
    assert!(t.object("intruded").is_none());
    assert_eq!(std::fs::read(&path).unwrap(), INTRUDER);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn the_file_layer_names_the_file_at_commit() {
    let dir = TempDir::new_in("/tmp");
    let path = dir.join("guest-ram");
    let r = FileMapRequest::new("mem0", &path, 2 * MIB);
    let mut b = FileBacking::prepare(&r).unwrap();
    assert_eq!(b.origin(), FileOrigin::Created);
    assert!(!b.committed());
    assert!(!path.exists());
    b.mapping().prealloc(1, None).unwrap();
    b.commit().unwrap();
    assert!(path.exists());
    drop(b);
    assert_eq!(mode(&path), 0o600);

    // Uncommitted and dropped: gone without a trace.
    let other = dir.join("other");
    drop(FileBacking::prepare(&FileMapRequest::new("mem1", &other, 2 * MIB)).unwrap());
    assert!(!other.exists());

    // A name taken at commit time: the typed error, nothing replaced.
    let mut b = FileBacking::prepare(&FileMapRequest::new("mem2", &other, 2 * MIB)).unwrap();
    std::fs::write(&other, INTRUDER).unwrap();
    let e = b.commit().unwrap_err();
    assert!(
        matches!(e, FileError::Name { errno, .. } if errno == rustix::io::Errno::EXIST),
        "{e:?}"
    );
    b.abandon();
    assert_eq!(std::fs::read(&other).unwrap(), INTRUDER);

    // Existing files keep their mode: the operator's way to another one.
    let shared = dir.join("shared");
    std::fs::write(&shared, b"").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    drop(FileBacking::open_and_map(&FileMapRequest::new("mem3", &shared, 2 * MIB)).unwrap());
    assert_eq!(mode(&shared), 0o640);
    assert_eq!(std::fs::metadata(&shared).unwrap().len(), 2 * MIB);
}

#[test]
fn without_o_tmpfile_the_file_is_created_by_name_and_removed_on_failure() {
    // mqueue refuses O_TMPFILE (EOPNOTSUPP) but creates entries by name;
    // it cannot be sized or mapped, so creation fails after the create.
    let Some(mnt) = Mount::new("mqueue", "rw") else {
        return;
    };
    let dir_fd = rustix::fs::open(
        mnt.path(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let tmp = rustix::fs::openat(
        &dir_fd,
        ".",
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR,
        rustix::fs::Mode::from_raw_mode(0o600),
    );
    assert_eq!(tmp.unwrap_err(), rustix::io::Errno::OPNOTSUPP);
    // Every mqueue mount shows the same queues (one set per IPC
    // namespace): a name of our own, and only it is looked at.
    let path = mnt.join(&format!("qom-test-{}", std::process::id()));
    let e = FileBacking::prepare(&FileMapRequest::new("mq", &path, 2 * MIB)).unwrap_err();
    // Not an open error: the queue was created by name, and then found
    // unusable (its size is that of its status text).
    assert!(
        matches!(e, FileError::TooSmall { file_size, .. } if file_size > 0),
        "{e:?}"
    );
    assert!(!path.exists(), "created by name, removed again");
}
