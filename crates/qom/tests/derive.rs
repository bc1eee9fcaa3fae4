//! `#[derive(qom::Object)]`, `#[derive(qom::Enum)]` and the typed hooks,
//! driven through a real `ObjectTree` the way an operator would.

use qom::{
    Error, ErrorClass, Link, LockStyle, Object, ObjectImpl, ObjectRef, ObjectTree, Result, Size,
    TypeRegistry, UserCreatableImpl,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

// ---- enums ------------------------------------------------------------------

/// The same enum twice, once per declaration style, to prove they behave
/// alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, qom::Enum)]
#[qom(name = "DummyAnimal")]
enum Animal {
    #[default]
    Frog,
    Alligator,
    #[qom(rename = "duck-billed")]
    Platypus,
    SeaLion,
}

qom::qom_enum! {
    /// The macro-declared twin of `Animal`.
    #[derive(Default)]
    pub enum AnimalByMacro: "DummyAnimal" {
        /// A frog.
        #[default]
        Frog = "frog",
        /// An alligator.
        Alligator = "alligator",
        /// A platypus.
        Platypus = "duck-billed",
        /// A sea lion.
        SeaLion = "sea-lion",
    }
}

#[test]
fn enum_derive_matches_qom_enum() {
    use qom::{EnumType, PropertyType};
    assert_eq!(Animal::NAME, "DummyAnimal");
    assert_eq!(Animal::VALUES, AnimalByMacro::VALUES);
    assert_eq!(Animal::qom_type(), AnimalByMacro::qom_type());
    assert_eq!(Animal::json_schema(), AnimalByMacro::json_schema());
    assert_eq!(Animal::Platypus.as_str(), "duck-billed");
    assert_eq!(Animal::SeaLion.index(), 3);
    assert_eq!(Animal::SeaLion.to_string(), "sea-lion");
    assert_eq!(json!(Animal::Alligator), json!("alligator"));

    // Both enums as properties: same answers, same errors, from both
    // input sources.
    #[derive(Default, qom::Object)]
    #[qom(name = "zoo")]
    struct Zoo {
        #[property]
        derived: Animal,
        #[property]
        by_macro: AnimalByMacro,
    }
    impl ObjectImpl for Zoo {}
    let types = TypeRegistry::with_builtins();
    types.register_type::<Zoo>().unwrap();
    let obj = types.new_object("zoo").unwrap();
    for (good, expect) in [
        ("sea-lion", Animal::SeaLion),
        ("duck-billed", Animal::Platypus),
    ] {
        obj.parse("derived", good).unwrap();
        obj.parse("by-macro", good).unwrap();
        assert_eq!(obj.get("derived").unwrap(), obj.get("by-macro").unwrap());
        assert_eq!(obj.get_typed::<Animal>("derived").unwrap(), expect);
    }
    for bad in ["Frog", "platypus", "", "1"] {
        let a = obj.parse("derived", bad).unwrap_err().to_string();
        let b = obj.parse("by-macro", bad).unwrap_err().to_string();
        assert_eq!(
            a.replace("derived", "X"),
            b.replace("by-macro", "X"),
            "{bad}"
        );
        let a = obj
            .set_json("derived", &json!(bad))
            .unwrap_err()
            .to_string();
        let b = obj
            .set_json("by-macro", &json!(bad))
            .unwrap_err()
            .to_string();
        assert_eq!(
            a.replace("derived", "X"),
            b.replace("by-macro", "X"),
            "{bad}"
        );
    }
    let a = obj.set_json("derived", &json!(3)).unwrap_err().to_string();
    let b = obj.set_json("by-macro", &json!(3)).unwrap_err().to_string();
    assert_eq!(a.replace("derived", "X"), b.replace("by-macro", "X"));
}

// ---- properties -------------------------------------------------------------

static SPEED_SETS: AtomicUsize = AtomicUsize::new(0);

#[derive(Default, qom::Object)]
#[qom(name = "gadget", interfaces(qom::UserCreatable))]
struct Gadget {
    #[property(locked, description = "The gadget's label")]
    label: String,
    #[property(default = 3, set = Gadget::set_speed, description = "Turns per second")]
    speed: u32,
    #[property(locked = LockStyle::Unquoted, lock_checked_first, ty = Size, qom_type = "int", set = Gadget::set_size, get = Gadget::get_size)]
    size_bytes: u64,
    #[property(read_only)]
    turns: u64,
    #[property(write_only, rename = "kick")]
    kicked: bool,
    #[property(default = Animal::Alligator, locked)]
    mascot: Animal,
    #[property(required, locked)]
    serial: u16,
    #[property(link = "gadget", description = "Another gadget")]
    buddy: Link,
    /// Plain state, not a property.
    complete_calls: u32,
}

impl Gadget {
    fn set_speed(obj: &mut ObjectRef<'_, Self>, v: u32) -> Result<()> {
        SPEED_SETS.fetch_add(1, Ordering::SeqCst);
        if v == 0 {
            return Err(Error::generic("speed must be positive"));
        }
        obj.state().speed = v;
        Ok(())
    }

    fn get_size(obj: &mut ObjectRef<'_, Self>) -> Result<Size> {
        Ok(Size(obj.state().size_bytes))
    }

    fn set_size(obj: &mut ObjectRef<'_, Self>, v: Size) -> Result<()> {
        obj.state().size_bytes = v.0;
        Ok(())
    }
}

impl ObjectImpl for Gadget {}

impl UserCreatableImpl for Gadget {
    fn complete(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        // Reading properties of the object itself is fine as long as no
        // state guard is held.
        let label: String = obj.get_typed("label")?;
        let mut s = obj.state();
        s.complete_calls += 1;
        if label == "broken" {
            return Err(Error::generic("broken gadget"));
        }
        Ok(())
    }
}

fn gadget_tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    types.register_type::<Gadget>().unwrap();
    ObjectTree::new(types).unwrap()
}

#[test]
fn derived_properties_through_object_add() {
    let tree = gadget_tree();
    let before = SPEED_SETS.load(Ordering::SeqCst);
    tree.object_add_str("gadget,id=g0,label=first,size-bytes=64K,serial=7,kick=on")
        .unwrap();
    // The default went through the custom setter.
    assert!(SPEED_SETS.load(Ordering::SeqCst) > before);
    assert_eq!(tree.qom_get("g0", "speed").unwrap(), json!(3));
    assert_eq!(tree.qom_get("g0", "size-bytes").unwrap(), json!(65536));
    assert_eq!(tree.qom_get("g0", "mascot").unwrap(), json!("alligator"));
    assert_eq!(tree.qom_get("g0", "turns").unwrap(), json!(0));
    assert_eq!(tree.qom_get("g0", "buddy").unwrap(), json!(""));
    let obj = tree.object("g0").unwrap();
    assert_eq!(obj.state::<Gadget>().complete_calls, 1);
    assert!(obj.state::<Gadget>().kicked);

    // Settable after complete, with the custom setter's own refusal.
    tree.qom_set("g0", "speed", &json!(9)).unwrap();
    assert_eq!(tree.qom_get("g0", "speed").unwrap(), json!(9));
    let e = tree.qom_set("g0", "speed", &json!(0)).unwrap_err();
    assert_eq!(e.to_string(), "speed must be positive");

    // Locked, each with its wording.
    let e = tree.qom_set("g0", "label", &json!("x")).unwrap_err();
    assert_eq!(e.to_string(), "cannot change property 'label' of gadget");
    let e = tree
        .qom_set("g0", "size-bytes", &json!("junk"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot change property size-bytes of gadget "
    );
    let e = tree.qom_set("g0", "mascot", &json!("frog")).unwrap_err();
    assert_eq!(e.to_string(), "cannot change property 'mascot' of gadget");

    // Read-only and write-only.
    let e = tree.qom_set("g0", "turns", &json!(1)).unwrap_err();
    assert_eq!(e.to_string(), "Property 'gadget.turns' is not writable");
    let e = tree.qom_get("g0", "kick").unwrap_err();
    assert_eq!(e.to_string(), "Property 'gadget.kick' is not readable");

    // Links resolve typed targets.
    tree.object_add_str("gadget,id=g1,serial=8").unwrap();
    tree.qom_set("g1", "buddy", &json!("g0")).unwrap();
    assert_eq!(tree.qom_get("g1", "buddy").unwrap(), json!("/objects/g0"));
    assert_eq!(
        tree.resolve_strict("/objects/g1/buddy").unwrap(),
        tree.object("g0").unwrap()
    );
    tree.object_del("g1").unwrap();
    tree.object_del("g0").unwrap();
}

#[test]
fn derived_required_and_failing_complete() {
    let tree = gadget_tree();
    let e = tree.object_add_str("gadget,id=g0").unwrap_err();
    assert_eq!(e.to_string(), "Parameter 'serial' is missing");
    let e = tree
        .object_add_str("gadget,id=g0,serial=1,label=broken")
        .unwrap_err();
    assert_eq!(e.to_string(), "broken gadget");
    assert_eq!(e.class(), ErrorClass::GenericError);
    assert!(tree.object("g0").is_none());
}

#[test]
fn derived_introspection_shapes() {
    let tree = gadget_tree();
    let props: Value =
        serde_json::to_value(tree.types().list_properties("gadget").unwrap()).unwrap();
    assert_eq!(
        props,
        json!([
            {"name": "type", "type": "string"},
            {"name": "label", "type": "string", "description": "The gadget's label"},
            {"name": "speed", "type": "uint32", "description": "Turns per second", "default-value": 3},
            {"name": "size-bytes", "type": "int"},
            {"name": "turns", "type": "uint64"},
            {"name": "kick", "type": "bool"},
            {"name": "mascot", "type": "DummyAnimal", "default-value": "alligator"},
            {"name": "serial", "type": "uint16"},
            {"name": "buddy", "type": "link<gadget>", "description": "Another gadget"},
        ])
    );
    let class = tree.types().class("gadget").unwrap();
    assert!(class.is_a("user-creatable"));
    let p = class.property("serial").unwrap();
    assert!(p.is_required() && p.is_locked());
    let p = class.property("turns").unwrap();
    assert!(p.is_readable() && !p.is_writable());
}

// ---- computed properties ---------------------------------------------------

#[derive(Default, qom::Object)]
#[qom(
    name = "counter-dev",
    interfaces("user-creatable"),
    property(name = "next", ty = u64, get = Counter::next, description = "Advances"),
    property(name = "reset-to", ty = u64, set = Counter::reset, default = 5)
)]
struct Counter {
    #[property(locked)]
    start: u64,
    value: u64,
}

impl Counter {
    fn next(obj: &mut ObjectRef<'_, Self>) -> Result<u64> {
        let mut s = obj.state();
        s.value += 1;
        Ok(s.value)
    }
    fn reset(obj: &mut ObjectRef<'_, Self>, v: u64) -> Result<()> {
        obj.state().value = v;
        Ok(())
    }
}

impl ObjectImpl for Counter {}

#[test]
fn computed_properties_follow_field_properties() {
    let types = TypeRegistry::with_builtins();
    types.register_type::<Counter>().unwrap();
    let tree = ObjectTree::new(types).unwrap();
    tree.object_add_str("counter-dev,id=c").unwrap();
    assert_eq!(tree.qom_get("c", "next").unwrap(), json!(6));
    tree.qom_set("c", "reset-to", &json!(100)).unwrap();
    assert_eq!(tree.qom_get("c", "next").unwrap(), json!(101));
    let names: Vec<String> = tree
        .types()
        .list_properties("counter-dev")
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["type", "start", "next", "reset-to"]);
    let e = tree.qom_set("c", "next", &json!(1)).unwrap_err();
    assert_eq!(e.to_string(), "Property 'counter-dev.next' is not writable");
    let e = tree.qom_get("c", "reset-to").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Property 'counter-dev.reset-to' is not readable"
    );
}

// ---- hooks, parents, ancestors ------------------------------------------------

/// What the hooks saw, in order.
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn event(s: impl Into<String>) {
    EVENTS.lock().unwrap().push(s.into());
}

fn take_events() -> Vec<String> {
    std::mem::take(&mut *EVENTS.lock().unwrap())
}

#[derive(Default, qom::Object)]
#[qom(name = "hooked-base", abstract, interfaces(qom::UserCreatable))]
struct Base {
    #[property(locked)]
    size: u64,
    in_use: bool,
}

impl ObjectImpl for Base {
    fn instance_init(obj: &mut ObjectRef<'_, Self>) {
        event(format!("base init {}", obj.type_name()));
    }
    fn instance_post_init(_obj: &mut ObjectRef<'_, Self>) {
        event("base post_init");
    }
    fn unparent(obj: &mut ObjectRef<'_, Self>) {
        event(format!("base unparent {}", obj.path().unwrap_or_default()));
    }
    fn finalize(&mut self) {
        event(format!("base finalize size={}", self.size));
    }
}

impl UserCreatableImpl for Base {
    fn complete(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        let size = obj.state().size;
        event(format!("base complete {size}"));
        if size == 0 {
            return Err(Error::generic("size must be set"));
        }
        Ok(())
    }
    fn can_be_deleted(obj: &mut ObjectRef<'_, Self>) -> bool {
        !obj.state().in_use
    }
}

/// A subclass with a typed parent that overrides nothing user-creatable:
/// `Base`'s `complete` and `can_be_deleted` still apply.
#[derive(Default, qom::Object)]
#[qom(name = "hooked-leaf", parent = Base)]
struct Leaf {
    #[property(default = true)]
    shiny: bool,
}

impl ObjectImpl for Leaf {
    fn instance_init(obj: &mut ObjectRef<'_, Self>) {
        // Ancestor state, checked at compile time.
        let size = obj.ancestor::<Base, _>().size;
        event(format!("leaf init size={size} shiny={}", obj.state().shiny));
    }
    fn unparent(obj: &mut ObjectRef<'_, Self>) {
        event("leaf unparent");
        qom::parent_unparent(obj);
    }
    fn finalize(&mut self) {
        event("leaf finalize");
    }
}

/// A grandchild that overrides `complete` and chains up explicitly.
#[derive(Default, qom::Object)]
#[qom(name = "hooked-twig", parent = Leaf, interfaces(qom::UserCreatable))]
struct Twig {
    #[property]
    note: String,
}

impl ObjectImpl for Twig {}

impl UserCreatableImpl for Twig {
    fn complete(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        event(format!("twig complete note={}", obj.state().note));
        // Two levels up, through the compile-time ancestry.
        obj.ancestor::<Base, _>().size *= 2;
        qom::parent_complete(obj)
    }
}

fn hooked_tree() -> ObjectTree {
    let types = TypeRegistry::with_builtins();
    types.register_type::<Base>().unwrap();
    types.register_type::<Leaf>().unwrap();
    types.register_type::<Twig>().unwrap();
    ObjectTree::new(types).unwrap()
}

#[test]
fn hooks_run_in_qemu_order_with_typed_state() {
    let _serial = HOOK_TESTS.lock().unwrap();
    let tree = hooked_tree();
    take_events();
    let obj = tree.object_add_str("hooked-leaf,id=l,size=4").unwrap();
    assert_eq!(
        take_events(),
        [
            "base init hooked-leaf",
            "leaf init size=0 shiny=true",
            "base post_init",
            "base complete 4"
        ]
    );
    assert!(tree.types().class("hooked-base").unwrap().is_abstract());
    obj.state::<Base>().in_use = true;
    let e = tree.object_del("l").unwrap_err();
    assert_eq!(e.to_string(), "object 'l' is in use, can not be deleted");
    obj.state::<Base>().in_use = false;
    drop(obj);
    tree.object_del("l").unwrap();
    assert_eq!(
        take_events(),
        [
            "leaf unparent",
            "base unparent /objects/l",
            "leaf finalize",
            "base finalize size=4"
        ]
    );

    let e = tree.object_add_str("hooked-leaf,id=l").unwrap_err();
    assert_eq!(e.to_string(), "size must be set");
    take_events();

    tree.object_add_str("hooked-twig,id=t,size=3,note=hi")
        .unwrap();
    let events = take_events();
    assert!(
        events.contains(&"twig complete note=hi".to_owned()),
        "{events:?}"
    );
    assert!(events.contains(&"base complete 6".to_owned()), "{events:?}");
    assert_eq!(tree.qom_get("t", "size").unwrap(), json!(6));
    tree.object_del("t").unwrap();
}

/// The hook tests share `EVENTS`.
static HOOK_TESTS: Mutex<()> = Mutex::new(());

#[test]
fn typed_parents_and_names_agree() {
    use qom::{ObjectType, StaticType, Subclass};
    assert_eq!(<Leaf as ObjectType>::PARENT, "hooked-base");
    assert_eq!(<Twig as ObjectType>::INTERFACES, ["user-creatable"]);
    assert_eq!(<Twig as StaticType>::TYPE_NAME, "hooked-twig");
    fn parent_name<T: Subclass>() -> &'static str {
        <T::Parent as StaticType>::TYPE_NAME
    }
    assert_eq!(parent_name::<Twig>(), "hooked-leaf");
    assert_eq!(parent_name::<Base>(), "object");

    let _serial = HOOK_TESTS.lock().unwrap();
    let tree = hooked_tree();
    let obj = tree.object_add_str("hooked-twig,id=t,size=1").unwrap();
    assert!(ObjectRef::<Leaf>::from_object(&obj).is_some());
    assert!(ObjectRef::<Gadget>::from_object(&obj).is_none());
    let mut r = ObjectRef::<Twig>::from_object(&obj).unwrap();
    assert_eq!(r.upcast::<Base, _>().state().size, 2);
    assert_eq!(r.path().as_deref(), Some("/objects/t"));
    assert_eq!(r.name().as_deref(), Some("t"));
    drop(obj);
    tree.object_del("t").unwrap();
    take_events();
}

/// A parent known only by name at run time.
#[derive(Default, qom::Object)]
#[qom(name = "late-child", parent_name = "late-parent")]
struct LateChild {
    #[property]
    x: i64,
}

impl ObjectImpl for LateChild {}

#[test]
fn string_parent_is_checked_when_the_class_is_built() {
    let types = TypeRegistry::with_builtins();
    types.register_type::<LateChild>().unwrap();
    let e = types.class("late-child").unwrap_err();
    assert!(e.to_string().contains("late-parent"), "{e}");
    types
        .register(qom::TypeInfo::new("late-parent").parent("container"))
        .unwrap();
    let class = types.class("late-child").unwrap();
    assert!(class.is_a("container"));
    let obj = types.new_object("late-child").unwrap();
    obj.set_json("x", &json!(-3)).unwrap();
    assert_eq!(obj.get("x").unwrap(), json!(-3));
}

// ---- a required virtual method -------------------------------------------------

/// A backend-like abstract type whose subclasses must implement `alloc`.
#[derive(Default, qom::Object)]
#[qom(
    name = "toy-backend",
    abstract,
    interfaces(qom::UserCreatable),
    class_init = ToyBackend::class_init_extra,
    manual_subclass_init
)]
struct ToyBackend {
    #[property(locked)]
    size: u64,
    allocated: Option<Vec<u8>>,
}

type AllocFn = Arc<dyn Fn(&Object) -> Result<Vec<u8>> + Send + Sync>;

#[derive(Clone, Default)]
struct ToyBackendClass {
    alloc: Option<AllocFn>,
}

/// What a concrete toy backend must provide.
trait ToyBackendImpl: ObjectImpl {
    fn alloc(obj: &mut ObjectRef<'_, Self>, size: u64) -> Result<Vec<u8>>;
}

impl<T: ToyBackendImpl> qom::SubclassInit<T> for ToyBackend {
    fn subclass_init(class: &mut qom::ClassBuilder<'_>) -> Result<()> {
        class.data_mut::<ToyBackendClass>().alloc = Some(Arc::new(|obj| {
            let size = obj.state::<ToyBackend>().size;
            T::alloc(&mut ObjectRef::assume(obj), size)
        }));
        Ok(())
    }
}

impl ToyBackend {
    fn class_init_extra(class: &mut qom::ClassBuilder<'_>) -> Result<()> {
        class.data_mut::<ToyBackendClass>();
        class.check_concrete(|c| {
            match c.data::<ToyBackendClass>().and_then(|d| d.alloc.as_ref()) {
                Some(_) => Ok(()),
                None => Err(Error::InvalidRegistration(format!(
                    "memory backend '{}' does not implement alloc",
                    c.name()
                ))),
            }
        });
        Ok(())
    }
}

impl ObjectImpl for ToyBackend {}

impl UserCreatableImpl for ToyBackend {
    fn complete(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        let alloc = obj
            .class()
            .data::<ToyBackendClass>()
            .and_then(|c| c.alloc.clone())
            .expect("concrete classes are checked to have alloc");
        let memory = alloc(obj.object())?;
        obj.state().allocated = Some(memory);
        Ok(())
    }
}

#[derive(Default, qom::Object)]
#[qom(name = "toy-backend-zero", parent = ToyBackend)]
struct ZeroBackend {
    #[property(default = 0u8)]
    fill: u8,
}

impl ObjectImpl for ZeroBackend {}

impl ToyBackendImpl for ZeroBackend {
    fn alloc(obj: &mut ObjectRef<'_, Self>, size: u64) -> Result<Vec<u8>> {
        Ok(vec![obj.state().fill; size as usize])
    }
}

#[test]
fn a_concrete_class_without_alloc_is_refused_when_built() {
    let types = TypeRegistry::with_builtins();
    types.register_type::<ToyBackend>().unwrap();
    types.register_type::<ZeroBackend>().unwrap();
    // Registered by name only, with no way to fill `alloc`.
    types
        .register(qom::TypeInfo::new("toy-backend-broken").parent("toy-backend"))
        .unwrap();
    // An abstract intermediate may leave it empty.
    types
        .register(
            qom::TypeInfo::new("toy-backend-abstract")
                .parent("toy-backend")
                .abstract_type(true),
        )
        .unwrap();
    assert!(types.class("toy-backend").unwrap().is_abstract());
    assert!(types.class("toy-backend-abstract").is_ok());
    let e = types.class("toy-backend-broken").unwrap_err();
    assert_eq!(
        e.to_string(),
        "memory backend 'toy-backend-broken' does not implement alloc"
    );

    let tree = ObjectTree::new(types).unwrap();
    let e = tree
        .object_add_str("toy-backend-broken,id=b,size=2")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "memory backend 'toy-backend-broken' does not implement alloc"
    );
    let obj = tree
        .object_add_str("toy-backend-zero,id=z,size=3,fill=7")
        .unwrap();
    assert_eq!(
        obj.state::<ToyBackend>().allocated.as_deref(),
        Some(&[7u8, 7, 7][..])
    );
}
