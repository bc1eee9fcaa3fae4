//! One tree used from several threads at once, as the QMP server does with
//! several clients: object-add, object-del, qom-get and qom-set racing on
//! the same ids never panic, never lose an object and never leave a
//! half-created one.

use qom::{ObjectTree, Props, TypeInfo, TypeRegistry, UserCreatableClass};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Counter {
    value: u64,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Live;

impl Default for Live {
    fn default() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

fn tree() -> Arc<ObjectTree> {
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("race-counter")
                .parent("object")
                .interface_impl("user-creatable")
                .state::<Counter>()
                .class_init(|c| {
                    c.field("value", |s: &mut Counter| &mut s.value);
                    c.data_mut::<UserCreatableClass>().complete = Some(Arc::new(|_| Ok(())));
                    Ok(())
                }),
        )
        .unwrap();
    types
        .register(
            TypeInfo::new("race-live")
                .parent("race-counter")
                .state::<Live>(),
        )
        .unwrap();
    Arc::new(ObjectTree::new(types).unwrap())
}

#[test]
fn racing_clients_keep_the_tree_consistent() {
    let tree = tree();
    let adds = Arc::new(AtomicUsize::new(0));
    let dels = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (tree, adds, dels) = (tree.clone(), adds.clone(), dels.clone());
            std::thread::spawn(move || {
                for i in 0..500u64 {
                    let id = format!("o{}", (i + t) % 7);
                    let props = Props::Json(json!({"value": i}).as_object().unwrap().clone());
                    match tree.object_add("race-live", &id, &props) {
                        Ok(_) => {
                            adds.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => assert_eq!(
                            e.to_string(),
                            format!("attempt to add duplicate property '{id}' to object (type 'container')")
                        ),
                    }
                    let _ = tree.qom_set(&format!("/objects/{id}"), "value", &json!(i));
                    match tree.qom_get(&format!("/objects/{id}"), "value") {
                        Ok(v) => assert!(v.is_u64()),
                        Err(e) => assert_eq!(e.to_string(), format!("Device '/objects/{id}' not found")),
                    }
                    if i % 3 == t % 3 {
                        match tree.object_del(&id) {
                            Ok(()) => {
                                dels.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => assert!(
                                [
                                    format!("object '{id}' not found"),
                                    format!("object '{id}' is in use, can not be deleted"),
                                ]
                                .contains(&e.to_string()),
                                "{e}"
                            ),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread panicked");
    }
    let remaining = tree.objects().children().len();
    assert_eq!(
        adds.load(Ordering::SeqCst),
        dels.load(Ordering::SeqCst) + remaining
    );
    // Only the objects still in the tree are alive: no half-created or
    // leaked instance anywhere.
    assert_eq!(LIVE.load(Ordering::SeqCst), remaining);
    drop(tree);
    assert_eq!(LIVE.load(Ordering::SeqCst), 0);
}
