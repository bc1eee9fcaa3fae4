//! Who may use a backend's memory, decided atomically: `object-del`
//! against `map`, and `map_exclusive` against another claim. Each race is
//! forced through a test seam that runs the other party inside the window
//! (`memory_backend::backend::seams`), then also run freely from threads.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Barrier};

use memory_backend::backend::seams;
use memory_backend::host::{MapRequest, Mapping};
use memory_backend::{host_error, settings, HostMemory, MapError, MemoryBackendClass};
use qom::{Object, ObjectTree, TypeInfo, TypeRegistry};

const MIB: u64 = 1 << 20;

fn alloc(obj: &Object) -> qom::Result<Box<dyn HostMemory>> {
    let s = settings(obj).unwrap();
    let fd = rustix::fs::memfd_create("claims", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| qom::Error::generic(e.to_string()))?;
    rustix::fs::ftruncate(&fd, s.size).map_err(|e| qom::Error::generic(e.to_string()))?;
    let req = MapRequest::new(fd, s.size).shared(true);
    Ok(Box::new(Mapping::new(req).map_err(host_error)?))
}

fn tree() -> Arc<ObjectTree> {
    let types = TypeRegistry::with_builtins();
    memory_backend::register(&types).unwrap();
    types
        .register(
            TypeInfo::new("memory-backend-claims")
                .parent("memory-backend")
                .class_init(|c| {
                    c.data_mut::<MemoryBackendClass>().alloc = Some(Arc::new(alloc));
                    Ok(())
                }),
        )
        .unwrap();
    Arc::new(ObjectTree::new(types).unwrap())
}

fn backend(tree: &ObjectTree, id: &str) -> Object {
    tree.object_add_str(&format!("memory-backend-claims,id={id},size={MIB}"))
        .unwrap()
}

/// What a hook saw, for the test to read after the hook's owner returned.
fn slot<T>() -> (Rc<RefCell<Option<T>>>, Rc<RefCell<Option<T>>>) {
    let s = Rc::new(RefCell::new(None));
    (s.clone(), s)
}

// ---- object-del against map ------------------------------------------------

/// A device maps the backend after `can_be_deleted` agreed and before the
/// unparent: the map must lose, or a deleted backend would have a user.
#[test]
fn a_map_in_the_delete_window_is_refused() {
    let t = tree();
    backend(&t, "m");
    let (put, got) = slot();
    seams::set_delete_accepted(Some(Box::new(move |o: &Object| {
        *put.borrow_mut() = Some(memory_backend::map(o));
    })));
    let deleted = t.object_del("m");
    seams::set_delete_accepted(None);
    let mapped = got.take().expect("the hook ran");
    deleted.unwrap();
    assert!(t.object("m").is_none());
    assert_eq!(
        mapped.unwrap_err().to_string(),
        "memory backend 'm' is being deleted"
    );
}

/// The same window, claimed exclusively: refused with its own variant.
#[test]
fn an_exclusive_claim_in_the_delete_window_is_refused() {
    let t = tree();
    backend(&t, "m");
    let (put, got) = slot();
    seams::set_delete_accepted(Some(Box::new(move |o: &Object| {
        *put.borrow_mut() = Some(memory_backend::map_exclusive(o).map(drop));
    })));
    t.object_del("m").unwrap();
    seams::set_delete_accepted(None);
    assert_eq!(
        got.take().expect("the hook ran"),
        Err(MapError::Deleting { id: "m".into() })
    );
}

/// A second object-del inside the first one's window: one deletes, the
/// other finds nothing ("not found", not "in use").
#[test]
fn two_deletes_one_deletes_the_other_finds_nothing() {
    let t = tree();
    backend(&t, "m");
    let (put, got) = slot();
    let inner = t.clone();
    seams::set_delete_accepted(Some(Box::new(move |_: &Object| {
        *put.borrow_mut() = Some(inner.object_del("m"));
    })));
    let outer = t.object_del("m");
    seams::set_delete_accepted(None);
    got.take().expect("the hook ran").unwrap();
    assert_eq!(outer.unwrap_err().to_string(), "object 'm' not found");
}

/// A refused object-del leaves no mark: the backend can be mapped, and
/// deleted once its users are gone.
#[test]
fn a_refused_delete_changes_nothing() {
    let t = tree();
    let obj = backend(&t, "m");
    let first = memory_backend::map(&obj).unwrap();
    assert_eq!(
        t.object_del("m").unwrap_err().to_string(),
        "object 'm' is in use, can not be deleted"
    );
    let second = memory_backend::map(&obj).unwrap();
    drop((first, second));
    assert!(!memory_backend::is_mapped(&obj));
    t.object_del("m").unwrap();
}

/// The race run freely: whatever the interleaving, never both a
/// successful delete and a successful map.
#[test]
fn object_del_racing_map_never_both_win() {
    let t = tree();
    for round in 0..300 {
        let id = format!("m{round}");
        let obj = backend(&t, &id);
        let start = Arc::new(Barrier::new(2));
        let mapper = {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                memory_backend::map(&obj)
            })
        };
        start.wait();
        let deleted = t.object_del(&id);
        let mapped = mapper.join().unwrap();
        assert!(
            deleted.is_ok() != mapped.is_ok(),
            "round {round}: delete {deleted:?}, map {:?}",
            mapped.map(drop)
        );
    }
}

// ---- exclusive use --------------------------------------------------------------

/// Another user claims the backend between `map_exclusive` finding it and
/// claiming it: exactly one of the two is its user.
#[test]
fn an_exclusive_claim_in_the_window_of_another_wins_alone() {
    let t = tree();
    let obj = backend(&t, "m");
    let (put, got) = slot();
    seams::set_before_claim(Some(Box::new(move |o: &Object| {
        *put.borrow_mut() = Some(memory_backend::map_exclusive(o));
    })));
    let outer = memory_backend::map_exclusive(&obj);
    seams::set_before_claim(None);
    let inner = got.take().expect("the hook ran");
    let inner = inner.expect("the claim made first wins");
    assert_eq!(outer.unwrap_err(), MapError::Busy { id: "m".into() });
    assert_eq!(
        qom::Error::from(MapError::Busy { id: "m".into() }).to_string(),
        "can't use already busy memdev: m"
    );
    drop(inner);
    assert!(!memory_backend::is_mapped(&obj));
    drop(memory_backend::map_exclusive(&obj).unwrap());
}

/// Exclusive means "the first user": later shared users may join it, but
/// an exclusive claim after any user is refused.
#[test]
fn exclusive_claims_and_shared_users() {
    let t = tree();
    let obj = backend(&t, "m");
    let owner = memory_backend::map_exclusive(&obj).unwrap();
    let label = memory_backend::map(&obj).unwrap();
    drop(owner);
    assert_eq!(
        memory_backend::map_exclusive(&obj).unwrap_err(),
        MapError::Busy { id: "m".into() }
    );
    drop(label);
    drop(memory_backend::map_exclusive(&obj).unwrap());
    let tc = t.new_object("thread-context").unwrap();
    assert_eq!(
        memory_backend::map_exclusive(&tc).unwrap_err().to_string(),
        "object type 'thread-context' is not a memory backend"
    );
    let fresh = t.new_object("memory-backend-claims").unwrap();
    assert!(matches!(
        memory_backend::map_exclusive(&fresh),
        Err(MapError::NoMemory { .. })
    ));
}

/// The race run freely: four threads claim one backend at once, round
/// after round; exactly one wins each time.
#[test]
fn racing_exclusive_claims_have_one_winner() {
    const THREADS: usize = 4;
    let t = tree();
    let obj = backend(&t, "m");
    for round in 0..500 {
        let start = Arc::new(Barrier::new(THREADS));
        let done = Arc::new(Barrier::new(THREADS));
        let claimers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (obj, start, done) = (obj.clone(), start.clone(), done.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let won = memory_backend::map_exclusive(&obj);
                    // Hold a win until every thread has tried.
                    done.wait();
                    won.is_ok()
                })
            })
            .collect();
        let winners = claimers
            .into_iter()
            .map(|c| c.join().unwrap())
            .filter(|&won| won)
            .count();
        assert_eq!(winners, 1, "round {round}");
        assert!(!memory_backend::is_mapped(&obj));
    }
}
