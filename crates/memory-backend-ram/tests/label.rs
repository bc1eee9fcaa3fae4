//! nvdimm label areas (`memory_backend::label::LabelArea`) over the RAM
//! backends: QEMU's region alignment per type decides the "too small"
//! check, and a memfd or shm label area persists with msync.

use memory_backend::label::{Durability, LabelArea, LabelError, MIN_LABEL_SIZE};
use qom::{ObjectTree, TypeRegistry};
use serde_json::json;

const MIB: u64 = 1 << 20;

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    memory_backend_ram::register(&types).unwrap();
    ObjectTree::new(types).unwrap()
}

/// A 2 MiB backend with a 128 KiB label: anonymous RAM is aligned to
/// 2 MiB in QEMU, so nothing aligned is left for the guest; memfd and shm
/// regions are aligned to the page size, so 0x1e0000 bytes are.
#[test]
fn region_alignment_per_type() {
    let t = tree();
    for (ty, id) in [
        ("memory-backend-ram", "r"),
        ("memory-backend-memfd", "m"),
        ("memory-backend-shm", "s"),
    ] {
        let args = json!({"qom-type": ty, "id": id, "size": 2 * MIB, "share": true});
        let obj = t.object_add_args(args.as_object().unwrap()).unwrap();
        let r = LabelArea::at_end(&obj, MIN_LABEL_SIZE);
        if ty == "memory-backend-ram" {
            assert_eq!(
                r.unwrap_err().to_string(),
                "the size of memdev r (0x200000) is too small to contain nvdimm label \
                 (0x20000) and aligned PMEM (0x200000)"
            );
        } else {
            let area = r.unwrap();
            assert_eq!(area.offset(), (2 * MIB - MIN_LABEL_SIZE) as usize);
            assert_eq!(area.durability(), Durability::Msync);
            area.write_persistent(0, b"label").unwrap();
            let mut back = [0u8; 5];
            area.read(0, &mut back).unwrap();
            assert_eq!(&back, b"label");
            assert!(matches!(
                area.write(area.len(), b"x"),
                Err(LabelError::OutOfRange { .. })
            ));
        }
        t.object_del(id).unwrap();
    }
}
