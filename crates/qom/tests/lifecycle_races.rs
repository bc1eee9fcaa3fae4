//! The three lifecycle races of issue 8, each forced into its bad
//! interleaving with gates inside hooks (never with sleeps or retry loops),
//! and each run under a watchdog so that a deadlock fails the test instead
//! of hanging the suite.

use qom::{
    Error, Object, ObjectClass, ObjectTree, Props, TypeInfo, TypeRegistry, UserCreatableClass,
};
use serde_json::{json, Map};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

/// Runs `scenario` on its own thread and fails the test if it has not
/// finished within 10 s: the threads it leaves behind are stuck for good,
/// which is what a deadlock looks like.
fn watchdog<T: Send + 'static>(what: &str, scenario: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(scenario());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(handle.join().expect_err("no value, so it panicked"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: deadlocked (no answer in 10 s)"),
    }
}

/// A one-shot latch: `wait` returns once `open` has been called.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
}

type SetHook = Arc<dyn Fn(&Object, u64) + Send + Sync>;
type CompleteHook = Arc<dyn Fn(&Object) -> qom::Result<()> + Send + Sync>;

/// What a test plugs into the `gated` type.
#[derive(Clone)]
struct Hooks {
    /// Runs inside the setter of the locked property `size`, before the
    /// value is stored (so after the framework's lock check).
    on_set_size: SetHook,
    complete: CompleteHook,
    unparents: Arc<AtomicUsize>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            on_set_size: Arc::new(|_, _| {}),
            complete: Arc::new(|_| Ok(())),
            unparents: Arc::default(),
        }
    }
}

#[derive(Default)]
struct Gated {
    size: u64,
    share: bool,
    plain: u64,
}

/// A user-creatable type `gated` with two locked properties (`size`,
/// whose setter runs the test's hook, and `share`) and an unlocked one
/// (`plain`).
fn registry(hooks: &Hooks) -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    let hooks = hooks.clone();
    types
        .register(
            TypeInfo::new("gated")
                .parent("object")
                .interface_impl("user-creatable")
                .state::<Gated>()
                .class_init(move |c| {
                    let on_set = hooks.on_set_size.clone();
                    c.property::<u64>("size")
                        .getter(|o| Ok(o.state::<Gated>().size))
                        .setter(move |o, v| {
                            on_set(o, v);
                            o.state::<Gated>().size = v;
                            Ok(())
                        })
                        .locked();
                    c.field("share", |s: &mut Gated| &mut s.share).locked();
                    c.field("plain", |s: &mut Gated| &mut s.plain);
                    let complete = hooks.complete.clone();
                    c.data_mut::<UserCreatableClass>().complete =
                        Some(Arc::new(move |o| complete(o)));
                    let unparents = hooks.unparents.clone();
                    c.data_mut::<ObjectClass>().unparent = Some(Arc::new(move |_| {
                        unparents.fetch_add(1, Ordering::SeqCst);
                    }));
                    Ok(())
                }),
        )
        .unwrap();
    types
}

fn no_props() -> Props {
    Props::Json(Map::new())
}

// ---- 1. object_add against object_del -------------------------------------

/// An object-del arriving while object-add's `complete` runs finds the
/// object in use, and object-add's result stays true: the object is in the
/// tree and its unparent hook never ran.
#[test]
fn object_del_during_complete_is_refused_as_in_use() {
    watchdog("object_del during complete", || {
        let entered = Arc::new(Gate::default());
        let release = Arc::new(Gate::default());
        let (e, r) = (entered.clone(), release.clone());
        let hooks = Hooks {
            complete: Arc::new(move |_| {
                e.open();
                r.wait();
                Ok(())
            }),
            ..Hooks::default()
        };
        let tree = Arc::new(ObjectTree::new(registry(&hooks)).unwrap());
        let adder = {
            let tree = tree.clone();
            std::thread::spawn(move || tree.object_add("gated", "g0", &no_props()))
        };
        entered.wait();
        assert_eq!(
            tree.object_del("g0").unwrap_err().to_string(),
            "object 'g0' is in use, can not be deleted"
        );
        release.open();
        let obj = adder.join().unwrap().unwrap();
        assert_eq!(tree.object("g0"), Some(obj));
        assert_eq!(hooks.unparents.load(Ordering::SeqCst), 0);
        tree.object_del("g0").unwrap();
        assert_eq!(hooks.unparents.load(Ordering::SeqCst), 1);
    });
}

/// The moment right after the object became visible in `/objects` and
/// before its `complete` hook starts: an object-del there must also find
/// it in use. The tree's test seam stops object-add exactly there.
#[test]
fn object_del_between_placing_and_complete_is_refused_as_in_use() {
    watchdog("object_del between placing and complete", || {
        let hooks = Hooks::default();
        let tree = Arc::new(ObjectTree::new(registry(&hooks)).unwrap());
        let placed = Arc::new(Gate::default());
        let release = Arc::new(Gate::default());
        let (p, r) = (placed.clone(), release.clone());
        tree.set_placed_hook(move |_| {
            p.open();
            r.wait();
        });
        let adder = {
            let tree = tree.clone();
            std::thread::spawn(move || tree.object_add("gated", "g0", &no_props()))
        };
        placed.wait();
        let del = tree.object_del("g0");
        release.open();
        let added = adder.join().unwrap();
        assert_eq!(
            del.map_err(|e| e.to_string()),
            Err("object 'g0' is in use, can not be deleted".to_owned())
        );
        let obj = added.unwrap();
        assert_eq!(tree.object("g0"), Some(obj));
        assert_eq!(hooks.unparents.load(Ordering::SeqCst), 0);
    });
}

/// A failing `complete`: object-del meanwhile is refused, object-add
/// unparents the object itself (its hook runs exactly once) and returns the
/// hook's error, and nothing is left under `/objects`.
#[test]
fn failed_complete_is_undone_once_and_leaves_nothing() {
    watchdog("failed complete", || {
        let entered = Arc::new(Gate::default());
        let release = Arc::new(Gate::default());
        let (e, r) = (entered.clone(), release.clone());
        let hooks = Hooks {
            complete: Arc::new(move |_| {
                e.open();
                r.wait();
                Err(Error::generic("no memory for you"))
            }),
            ..Hooks::default()
        };
        let tree = Arc::new(ObjectTree::new(registry(&hooks)).unwrap());
        let adder = {
            let tree = tree.clone();
            std::thread::spawn(move || tree.object_add("gated", "g0", &no_props()))
        };
        entered.wait();
        assert_eq!(
            tree.object_del("g0").unwrap_err().to_string(),
            "object 'g0' is in use, can not be deleted"
        );
        release.open();
        let err = adder.join().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "no memory for you");
        assert_eq!(hooks.unparents.load(Ordering::SeqCst), 1);
        assert!(tree.object("g0").is_none());
        assert!(tree.objects().children().is_empty());
        assert_eq!(
            tree.object_del("g0").unwrap_err().to_string(),
            "object 'g0' not found"
        );
    });
}

/// A `complete` hook that panics unwinds out of object_add, but the object
/// does not stay under /objects half-made: it is unparented on the way out
/// (its unparent hook runs once), and the id is free again.
#[test]
fn panicking_complete_leaves_nothing_in_the_tree() {
    let hooks = Hooks {
        complete: Arc::new(|_| panic!("hook bug")),
        ..Hooks::default()
    };
    let tree = Arc::new(ObjectTree::new(registry(&hooks)).unwrap());
    let t = tree.clone();
    let joined = std::thread::spawn(move || t.object_add("gated", "g0", &no_props())).join();
    assert!(joined.is_err(), "the panic reaches the caller");
    assert!(tree.object("g0").is_none());
    assert!(tree.objects().children().is_empty());
    assert_eq!(hooks.unparents.load(Ordering::SeqCst), 1);
}

/// A duplicate id fails before anything runs: no complete, no unparent,
/// and the first object is untouched.
#[test]
fn duplicate_id_runs_no_hook() {
    let completes = Arc::new(AtomicUsize::new(0));
    let c = completes.clone();
    let hooks = Hooks {
        complete: Arc::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }),
        ..Hooks::default()
    };
    let tree = ObjectTree::new(registry(&hooks)).unwrap();
    let first = tree.object_add("gated", "g0", &no_props()).unwrap();
    let err = tree.object_add("gated", "g0", &no_props()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "attempt to add duplicate property 'g0' to object (type 'container')"
    );
    assert_eq!(completes.load(Ordering::SeqCst), 1);
    assert_eq!(hooks.unparents.load(Ordering::SeqCst), 0);
    assert_eq!(tree.object("g0"), Some(first.clone()));
    assert!(first.is_complete());
}

// ---- 2. locked writes against complete ------------------------------------

/// A setter of a locked property that passed the lock check is still
/// running when `complete` starts on another thread: `complete` waits for
/// it, so its hook sees the final value and never runs beside the setter;
/// a locked write arriving after `complete` started is refused with QEMU's
/// text, while unlocked properties stay writable.
#[test]
fn complete_waits_for_a_locked_setter_in_flight() {
    watchdog("complete against a locked setter", || {
        let in_setter = Arc::new(Gate::default());
        let release = Arc::new(Gate::default());
        let setter_running = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(None::<(u64, bool)>));
        let (i, r, running) = (in_setter.clone(), release.clone(), setter_running.clone());
        let (running2, seen2) = (setter_running.clone(), seen.clone());
        let hooks = Hooks {
            on_set_size: Arc::new(move |_, v| {
                if v == 2 {
                    running.store(true, Ordering::SeqCst);
                    i.open();
                    r.wait();
                    running.store(false, Ordering::SeqCst);
                }
            }),
            complete: Arc::new(move |o| {
                let size = o.get_typed::<u64>("size")?;
                *seen2.lock().unwrap() = Some((size, running2.load(Ordering::SeqCst)));
                Ok(())
            }),
            ..Hooks::default()
        };
        let types = registry(&hooks);
        let obj = types.new_object("gated").unwrap();
        obj.set_typed("size", 1u64).unwrap();
        let setter = {
            let obj = obj.clone();
            std::thread::spawn(move || obj.set_typed("size", 2u64))
        };
        in_setter.wait();
        let completer = {
            let obj = obj.clone();
            std::thread::spawn(move || obj.complete())
        };
        // Whether or not `complete` has begun yet, this write is refused
        // only once it has: wait for that instant through the object's
        // own state (a plain wait on a condition, not a timing guess).
        while !(obj.is_completing() || obj.is_complete()) {
            std::thread::yield_now();
        }
        assert_eq!(
            obj.set_json("share", &json!(true)).unwrap_err().to_string(),
            "cannot change property 'share' of gated"
        );
        assert_eq!(
            obj.set_typed("size", 3u64).unwrap_err().to_string(),
            "cannot change property 'size' of gated"
        );
        obj.set_json("plain", &json!(7)).unwrap();
        release.open();
        setter.join().unwrap().unwrap();
        completer.join().unwrap().unwrap();
        assert_eq!(*seen.lock().unwrap(), Some((2, false)));
        assert_eq!(obj.get_typed::<u64>("size").unwrap(), 2);
    });
}

/// A setter that writes another locked property of its own object while a
/// `complete` waits for it: the nested write is refused as locked (it does
/// not wait, so nothing deadlocks) and `complete` goes on afterwards.
#[test]
fn nested_locked_write_during_pending_complete_is_refused() {
    watchdog("nested locked write", || {
        let in_setter = Arc::new(Gate::default());
        let release = Arc::new(Gate::default());
        let nested = Arc::new(Mutex::new(None::<String>));
        let (i, r, n) = (in_setter.clone(), release.clone(), nested.clone());
        let hooks = Hooks {
            on_set_size: Arc::new(move |o, v| {
                if v == 2 {
                    i.open();
                    r.wait();
                    let res = o.set_json("share", &json!(true));
                    *n.lock().unwrap() = Some(match res {
                        Ok(()) => "ok".to_owned(),
                        Err(e) => e.to_string(),
                    });
                }
            }),
            ..Hooks::default()
        };
        let types = registry(&hooks);
        let obj = types.new_object("gated").unwrap();
        let setter = {
            let obj = obj.clone();
            std::thread::spawn(move || obj.set_typed("size", 2u64))
        };
        in_setter.wait();
        let completer = {
            let obj = obj.clone();
            std::thread::spawn(move || obj.complete())
        };
        while !(obj.is_completing() || obj.is_complete()) {
            std::thread::yield_now();
        }
        release.open();
        setter.join().unwrap().unwrap();
        completer.join().unwrap().unwrap();
        assert_eq!(
            nested.lock().unwrap().as_deref(),
            Some("cannot change property 'share' of gated")
        );
        assert!(obj.is_complete());
        assert!(!obj.get_typed::<bool>("share").unwrap());
    });
}

/// Without a pending `complete`, a setter may write other locked
/// properties of its own object.
#[test]
fn nested_locked_write_without_complete_is_allowed() {
    let hooks = Hooks {
        on_set_size: Arc::new(|o, _| o.set_json("share", &json!(true)).unwrap()),
        ..Hooks::default()
    };
    let obj = registry(&hooks).new_object("gated").unwrap();
    obj.set_typed("size", 5u64).unwrap();
    assert!(obj.get_typed::<bool>("share").unwrap());
}

/// `complete` called from a setter of the same object on the same thread
/// would wait for itself; it is an error instead.
#[test]
fn complete_from_own_setter_is_an_error() {
    watchdog("complete inside a setter", || {
        let result = Arc::new(Mutex::new(None::<qom::Result<()>>));
        let res = result.clone();
        let hooks = Hooks {
            on_set_size: Arc::new(move |o, _| *res.lock().unwrap() = Some(o.complete())),
            ..Hooks::default()
        };
        let obj = registry(&hooks).new_object("gated").unwrap();
        obj.set_typed("size", 5u64).unwrap();
        let err = result.lock().unwrap().take().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot complete an object of type 'gated' from one of its own setters"
        );
        assert!(!obj.is_complete() && !obj.is_completing());
        obj.complete().unwrap();
    });
}

/// `complete` runs its hook once: a second call is an error.
#[test]
fn complete_twice_is_an_error() {
    let completes = Arc::new(AtomicUsize::new(0));
    let c = completes.clone();
    let hooks = Hooks {
        complete: Arc::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }),
        ..Hooks::default()
    };
    let obj = registry(&hooks).new_object("gated").unwrap();
    obj.complete().unwrap();
    assert_eq!(
        obj.complete().unwrap_err().to_string(),
        "object of type 'gated' is already complete"
    );
    assert_eq!(completes.load(Ordering::SeqCst), 1);
}

/// A failed `complete` opens the locked properties again, and a later
/// `complete` may succeed.
#[test]
fn failed_complete_unlocks_again() {
    let fail = Arc::new(AtomicBool::new(true));
    let f = fail.clone();
    let hooks = Hooks {
        complete: Arc::new(move |_| {
            if f.load(Ordering::SeqCst) {
                Err(Error::generic("not yet"))
            } else {
                Ok(())
            }
        }),
        ..Hooks::default()
    };
    let obj = registry(&hooks).new_object("gated").unwrap();
    assert_eq!(obj.complete().unwrap_err().to_string(), "not yet");
    obj.set_typed("size", 9u64).unwrap();
    fail.store(false, Ordering::SeqCst);
    obj.complete().unwrap();
    assert!(obj.set_typed("size", 10u64).is_err());
}

// ---- 3. lazy modules and the build lock -----------------------------------

/// A module that builds a class while it registers (as
/// `memory_backend::register` builds the memory-region class), loaded
/// because it provides the parent of the class being built.
#[test]
fn module_that_builds_a_class_can_be_loaded_as_a_parent() {
    let class = watchdog("module building a class", || {
        let types = TypeRegistry::with_builtins();
        types.add_module("mod-base", |types: &TypeRegistry| {
            types.register(TypeInfo::new("mod-part").parent("object"))?;
            types.class("mod-part")?;
            types.register(TypeInfo::new("mod-base").parent("object"))
        });
        types
            .register(TypeInfo::new("mod-leaf").parent("mod-base"))
            .unwrap();
        types.class("mod-leaf").map(|c| c.is_a("mod-base"))
    });
    assert!(class.unwrap());
}

/// The same through an interface provided by a module.
#[test]
fn module_that_builds_a_class_can_be_loaded_as_an_interface() {
    let class = watchdog("module building a class (interface)", || {
        let types = TypeRegistry::with_builtins();
        types.add_module("mod-iface", |types: &TypeRegistry| {
            types.register(TypeInfo::new("mod-part").parent("object"))?;
            types.class("mod-part")?;
            types.register(TypeInfo::new("mod-iface").parent("interface"))
        });
        types
            .register(
                TypeInfo::new("mod-impl")
                    .parent("object")
                    .interface_impl("mod-iface"),
            )
            .unwrap();
        types.class("mod-impl").map(|c| c.is_a("mod-iface"))
    });
    assert!(class.unwrap());
}

/// A module that looks up its own type while registering it (on the
/// loading thread) does not wait for itself.
#[test]
fn module_may_look_up_its_own_type_while_loading() {
    let found = watchdog("module looking itself up", || {
        let types = TypeRegistry::with_builtins();
        types.add_module("mod-self", |types: &TypeRegistry| {
            assert!(types.find_class("mod-self")?.is_none());
            types.register(TypeInfo::new("mod-self").parent("object"))?;
            assert!(types.find_class("mod-self")?.is_some());
            Ok(())
        });
        types.find_class("mod-self").map(|c| c.is_some())
    });
    assert!(found.unwrap());
}

/// Two threads look up a module's type while the module is still loading:
/// the second waits for the first instead of reporting "not found".
#[test]
fn concurrent_lookups_of_a_loading_module_wait_for_it() {
    watchdog("two lookups of a loading module", || {
        let types = Arc::new(TypeRegistry::with_builtins());
        let loading = Arc::new(Gate::default());
        let release = Arc::new(Gate::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (l, r, n) = (loading.clone(), release.clone(), runs.clone());
        types.add_module("mod-slow", move |types: &TypeRegistry| {
            n.fetch_add(1, Ordering::SeqCst);
            l.open();
            r.wait();
            types.register(TypeInfo::new("mod-slow").parent("object"))
        });
        let first = {
            let types = types.clone();
            std::thread::spawn(move || types.find_class("mod-slow").map(|c| c.is_some()))
        };
        loading.wait();
        let (tx, second) = mpsc::channel();
        {
            let types = types.clone();
            std::thread::spawn(move || {
                let _ = tx.send(types.find_class("mod-slow").map(|c| c.is_some()));
            });
        }
        // Release the module only once the second lookup is parked behind
        // it; a lookup that answers before that is the bug.
        loop {
            if let Ok(answer) = second.try_recv() {
                panic!("the second lookup answered while the module was loading: {answer:?}");
            }
            if types.module_waiters("mod-slow") > 0 {
                break;
            }
            std::thread::yield_now();
        }
        release.open();
        assert!(first.join().unwrap().unwrap());
        assert!(second.recv().unwrap().unwrap());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// Two modules loading on two threads, each looking up the other's type
/// while both are inside their functions: the lookup that would close the
/// wait cycle answers at once (with what is registered so far) instead of
/// waiting, so both loads finish.
#[test]
fn modules_looking_each_other_up_on_two_threads_do_not_deadlock() {
    watchdog("two modules waiting for each other", || {
        let types = Arc::new(TypeRegistry::with_builtins());
        let a_in = Arc::new(Gate::default());
        let b_in = Arc::new(Gate::default());
        for (me, other, mine, theirs) in [
            ("mod-a", "mod-b", a_in.clone(), b_in.clone()),
            ("mod-b", "mod-a", b_in.clone(), a_in.clone()),
        ] {
            types.add_module(me, move |types: &TypeRegistry| {
                mine.open();
                theirs.wait();
                types.find_class(other)?;
                types.register(TypeInfo::new(me).parent("object"))
            });
        }
        let threads: Vec<_> = ["mod-a", "mod-b"]
            .into_iter()
            .map(|name| {
                let types = types.clone();
                std::thread::spawn(move || types.find_class(name).map(|c| c.is_some()))
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().unwrap());
        }
    });
}

// ---- no framework lock under user code ------------------------------------

/// The declarations passed to `add_properties` are user code: they may
/// read the object they extend without deadlocking on its property table.
#[test]
fn add_properties_may_read_the_object_it_extends() {
    let names = watchdog("add_properties reading its object", || {
        let obj = registry(&Hooks::default()).new_object("gated").unwrap();
        let reader = obj.clone();
        obj.add_properties(|b| {
            let n = reader.properties().len();
            b.property::<u64>("extra")
                .getter(move |_| Ok(n as u64))
                .description("how many properties there were");
        })
        .unwrap();
        (
            obj.get_typed::<u64>("extra").unwrap(),
            obj.properties().len(),
        )
    });
    assert_eq!(names, (4, 5));
}
