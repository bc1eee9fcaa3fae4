//! `memory-backend-ram` with `share=off` holds no file descriptor, as in
//! QEMU: thousands of backends do not run into the open-file limit. Alone
//! in its test binary so no other test opens descriptors meanwhile.

use qom::{ObjectTree, TypeRegistry};
use qom_test_support::fd_count;
use serde_json::json;

#[test]
fn two_thousand_private_ram_backends_hold_no_descriptor() {
    let types = TypeRegistry::with_builtins();
    types.install(memory_backend_ram::register).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let before = fd_count();
    for i in 0..2000 {
        let args = json!({"qom-type": "memory-backend-ram", "id": format!("r{i}"), "size": 4096});
        tree.object_add_args(args.as_object().unwrap()).unwrap();
    }
    assert_eq!(fd_count(), before);
    let obj = tree.object("r1999").unwrap();
    let ram = memory_backend::mapping(&obj).unwrap();
    assert!(ram.fd().is_none());
    ram.write_at(4095, b"x").unwrap();
    drop(ram);
    for i in 0..2000 {
        tree.object_del(&format!("r{i}")).unwrap();
    }
    assert_eq!(fd_count(), before);
}
