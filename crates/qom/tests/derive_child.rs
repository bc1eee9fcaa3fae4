//! `child<T>` properties declared with `#[property(child)]` (and
//! `ClassBuilder::child`): created with every instance, reachable by path
//! and from the owner's hooks, released with the owner; mistakes fail the
//! class when it is built.

use qom::{Child, Error, ObjectImpl, ObjectRef, ObjectTree, Result, TypeInfo, TypeRegistry};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

static PROBES_FINALIZED: AtomicUsize = AtomicUsize::new(0);

#[derive(Default, qom::Object)]
#[qom(name = "probe")]
struct Probe {
    #[property(default = 3)]
    reading: u32,
}

impl ObjectImpl for Probe {
    fn finalize(&mut self) {
        PROBES_FINALIZED.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default, qom::Object)]
#[qom(name = "board", interfaces(qom::UserCreatable))]
struct Board {
    #[property(locked)]
    label: String,
    #[property(child, rename = "temp-sensor")]
    sensor: Child<Probe>,
    /// What `complete` read from the child.
    seen: u32,
}

impl ObjectImpl for Board {
    // The child exists (with its defaults) when the owner's instance_init
    // runs, so the owner can configure it there.
    fn instance_init(obj: &mut ObjectRef<'_, Self>) {
        let state = obj.state();
        let mut probe = state.sensor.state().expect("the child exists");
        probe.reading += 2;
    }
}

impl qom::UserCreatableImpl for Board {
    fn complete(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        let mut state = obj.state();
        let reading = state.sensor.state().expect("the child exists").reading;
        state.seen = reading;
        Ok(())
    }
}

fn tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    types.register_type::<Probe>().unwrap();
    types.register_type::<Board>().unwrap();
    ObjectTree::new(types).unwrap()
}

fn names_and_types(list: Vec<qom::ObjectPropertyInfo>) -> Vec<(String, String)> {
    list.into_iter().map(|p| (p.name, p.qom_type)).collect()
}

#[test]
fn each_instance_gets_its_child_by_path_and_from_hooks() {
    let tree = tree();
    let board = tree.object_add_str("board,id=b0,label=x").unwrap();
    let listed = names_and_types(tree.qom_list("/objects/b0").unwrap());
    assert!(
        listed.contains(&("temp-sensor".into(), "child<probe>".into())),
        "{listed:?}"
    );
    assert_eq!(
        tree.qom_get("/objects/b0", "temp-sensor").unwrap(),
        json!("/objects/b0/temp-sensor")
    );
    // Default 3, then +2 by the owner's instance_init.
    assert_eq!(
        tree.qom_get("/objects/b0/temp-sensor", "reading").unwrap(),
        json!(5)
    );
    assert_eq!(board.state::<Board>().seen, 5);
    // The child's own properties stay settable; the owner's field sees it.
    tree.qom_set("/objects/b0/temp-sensor", "reading", &json!(9))
        .unwrap();
    let child = board.state::<Board>().sensor.get().cloned().unwrap();
    assert_eq!(child.get("reading").unwrap(), json!(9));
    assert_eq!(
        child.canonical_path().as_deref(),
        Some("/objects/b0/temp-sensor")
    );
    // A partial path finds it too.
    assert_eq!(
        tree.resolve("temp-sensor", Some("probe")).object().unwrap(),
        child
    );
    // Two owners, two children.
    tree.object_add_str("board,id=b1").unwrap();
    let other = tree.resolve_strict("/objects/b1/temp-sensor").unwrap();
    assert_ne!(other, child);
}

#[test]
fn the_child_goes_with_its_owner() {
    let tree = tree();
    let before = PROBES_FINALIZED.load(Ordering::SeqCst);
    let board = tree.object_add_str("board,id=gone").unwrap();
    let weak_child = board.child("temp-sensor").unwrap().downgrade();
    drop(board);
    tree.object_del("gone").unwrap();
    assert!(
        weak_child.upgrade().is_none(),
        "the child outlived its owner"
    );
    assert!(PROBES_FINALIZED.load(Ordering::SeqCst) > before);
}

#[test]
fn introspection_lists_the_child() {
    let tree = tree();
    let props = names_and_types(tree.types().list_properties("board").unwrap());
    assert_eq!(
        props,
        vec![
            ("type".to_owned(), "string".to_owned()),
            ("label".to_owned(), "string".to_owned()),
            ("temp-sensor".to_owned(), "child<probe>".to_owned()),
        ]
    );
    // A failed object-add (unknown property) leaves no child anywhere.
    let err = tree
        .object_add_args(
            json!({"qom-type": "board", "id": "bad", "nope": 1})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "Parameter 'nope' is unexpected");
    assert!(tree.resolve("temp-sensor", None).object().is_none());
}

// ---- mistakes are refused when the class is built -------------------------

#[derive(Default, qom::Object)]
#[qom(name = "loop-a")]
struct LoopA {
    #[property(child)]
    b: Child<LoopB>,
}
impl ObjectImpl for LoopA {}

#[derive(Default, qom::Object)]
#[qom(name = "loop-b")]
struct LoopB {
    #[property(child)]
    a: Child<LoopA>,
}
impl ObjectImpl for LoopB {}

#[test]
fn children_that_loop_are_refused() {
    let types = TypeRegistry::with_builtins();
    types.register_type::<LoopA>().unwrap();
    types.register_type::<LoopB>().unwrap();
    let err = types.class("loop-a").unwrap_err();
    assert!(matches!(err, Error::InvalidRegistration(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("children of types loop: loop-a > loop-b > loop-a"),
        "{err}"
    );
    // Nothing was left half-built: asking again gives the same answer.
    assert_eq!(
        types.class("loop-a").unwrap_err().to_string(),
        err.to_string()
    );
}

#[derive(Default, qom::Object)]
#[qom(name = "orphanage")]
struct Orphanage {
    #[property(child)]
    kid: Child<Probe>,
}
impl ObjectImpl for Orphanage {}

#[test]
fn an_unknown_child_type_is_refused() {
    let types = TypeRegistry::with_builtins();
    types.register_type::<Orphanage>().unwrap();
    let err = types.class("orphanage").unwrap_err();
    assert_eq!(
        err.to_string(),
        "child 'kid' of 'orphanage' cannot be created: unknown type 'probe'"
    );
}

#[test]
fn a_child_type_from_a_lazy_module_is_loaded_first() {
    let types = TypeRegistry::with_builtins();
    types.add_module("probe", |t| t.register_type::<Probe>());
    types.register_type::<Orphanage>().unwrap();
    let o = types.new_object("orphanage").unwrap();
    assert_eq!(o.child("kid").unwrap().get("reading").unwrap(), json!(3));
}

#[derive(Default, qom::Object)]
#[qom(name = "big-board", parent = Board)]
struct BigBoard {
    #[property(child)]
    spare: Child<Probe>,
}
impl ObjectImpl for BigBoard {}
impl qom::UserCreatableImpl for BigBoard {}

#[test]
fn subclasses_inherit_children_and_add_their_own() {
    let tree = tree();
    tree.types().register_type::<BigBoard>().unwrap();
    tree.object_add_str("big-board,id=bb").unwrap();
    let listed = names_and_types(tree.qom_list("/objects/bb").unwrap());
    let children: Vec<_> = listed
        .iter()
        .filter(|(_, t)| t.starts_with("child<"))
        .collect();
    assert_eq!(
        children,
        vec![
            &("temp-sensor".to_owned(), "child<probe>".to_owned()),
            &("spare".to_owned(), "child<probe>".to_owned())
        ]
    );
    // The parent's instance_init ran on the parent's child.
    assert_eq!(
        tree.qom_get("/objects/bb/temp-sensor", "reading").unwrap(),
        json!(5)
    );
    assert_eq!(
        tree.qom_get("/objects/bb/spare", "reading").unwrap(),
        json!(3)
    );
}

#[derive(Default)]
struct Clash {
    kid: Child<Probe>,
    kid_value: u32,
}

#[test]
fn a_child_and_a_property_of_one_name_are_refused() {
    for child_first in [true, false] {
        let types = TypeRegistry::with_builtins();
        types.register_type::<Probe>().unwrap();
        types
            .register(
                TypeInfo::new("clash")
                    .parent("object")
                    .state::<Clash>()
                    .class_init(move |c| {
                        if child_first {
                            c.child("kid", |s: &mut Clash| &mut s.kid);
                        }
                        c.field("kid", |s: &mut Clash| &mut s.kid_value);
                        if !child_first {
                            c.child("kid", |s: &mut Clash| &mut s.kid);
                        }
                        Ok(())
                    }),
            )
            .unwrap();
        let err = types.class("clash").unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateProperty { name, .. } if name == "kid"),
            "{err:?}"
        );
    }
}

#[test]
fn an_abstract_child_type_is_refused() {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("vague").parent("object").abstract_type(true))
        .unwrap();
    #[derive(Default)]
    struct Holder {
        v: Child<Vague>,
    }
    struct Vague;
    impl qom::StaticType for Vague {
        const TYPE_NAME: &'static str = "vague";
    }
    types
        .register(
            TypeInfo::new("holder")
                .parent("object")
                .state::<Holder>()
                .class_init(|c| {
                    c.child("v", |s: &mut Holder| &mut s.v);
                    Ok(())
                }),
        )
        .unwrap();
    assert_eq!(
        types.class("holder").unwrap_err().to_string(),
        "child 'v' of 'holder' has abstract type 'vague'"
    );
}
