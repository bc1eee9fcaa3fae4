//! Declaring a type from a Rust struct: [`ObjectType`], and the typed layer
//! the `#[derive(qom::Object)]` macro builds on: [`ObjectImpl`] hooks,
//! [`ObjectRef`] handles, parents and interfaces named as Rust types.

use crate::builtins::{UserCreatableClass, TYPE_OBJECT, TYPE_USER_CREATABLE};
use crate::class::{Class, ClassBuilder, ObjectClass};
use crate::error::Result;
use crate::object::{Object, StateGuard};
use crate::property::PropertyType;
use crate::registry::TypeRegistry;
use crate::type_info::TypeInfo;
use serde_json::Value;
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A type whose level state is the implementing struct: name, parent,
/// interfaces and properties declared in one place.
///
/// `#[derive(qom::Object)]` writes this implementation from attributes;
/// implementing it by hand stays possible:
///
/// ```
/// use qom::{ClassBuilder, ObjectTree, ObjectType, TypeRegistry, UserCreatableClass};
///
/// #[derive(Default)]
/// struct Rng { filename: String, seed: u64 }
///
/// impl ObjectType for Rng {
///     const NAME: &'static str = "rng-demo";
///     const PARENT: &'static str = "object";
///     const INTERFACES: &'static [&'static str] = &["user-creatable"];
///     fn class_init(class: &mut ClassBuilder<'_>) -> qom::Result<()> {
///         class.field("filename", |s: &mut Rng| &mut s.filename).locked();
///         class.field("seed", |s: &mut Rng| &mut s.seed).default(42);
///         Ok(())
///     }
/// }
///
/// let types = TypeRegistry::with_builtins();
/// types.register_type::<Rng>().unwrap();
/// let tree = ObjectTree::new(types).unwrap();
/// tree.object_add_args(serde_json::json!({"qom-type": "rng-demo", "id": "rng0", "filename": "/dev/urandom"})
///     .as_object().unwrap()).unwrap();
/// assert_eq!(tree.qom_get("/objects/rng0", "seed").unwrap(), 42);
/// let err = tree.qom_set("rng0", "filename", &"/dev/random".into()).unwrap_err();
/// assert_eq!(err.to_string(), "cannot change property 'filename' of rng-demo");
/// ```
pub trait ObjectType: Any + Send + Default {
    /// The type name.
    const NAME: &'static str;
    /// The parent type's name.
    const PARENT: &'static str;
    /// Whether the type is abstract.
    const ABSTRACT: bool = false;
    /// The interfaces the type implements.
    const INTERFACES: &'static [&'static str] = &[];
    /// The types of the children `class_init` declares (see
    /// [`TypeInfo::child_type`]).
    const CHILD_TYPES: &'static [&'static str] = &[];

    /// Declares properties and overrides class data.
    fn class_init(_class: &mut ClassBuilder<'_>) -> Result<()> {
        Ok(())
    }

    /// Runs for each new instance after the defaults are applied.
    fn instance_init(_obj: &Object) {}

    /// The registration this type stands for.
    fn type_info() -> TypeInfo {
        let mut info = TypeInfo::new(Self::NAME)
            .parent(Self::PARENT)
            .abstract_type(Self::ABSTRACT)
            .state::<Self>()
            .class_init(Self::class_init)
            .instance_init(Self::instance_init);
        for i in Self::INTERFACES {
            info = info.interface_impl(*i);
        }
        for c in Self::CHILD_TYPES {
            info = info.child_type(*c);
        }
        info
    }
}

impl TypeRegistry {
    /// Registers an [`ObjectType`].
    pub fn register_type<T: ObjectType>(&self) -> Result<()> {
        self.register(T::type_info())
    }
}

// ---- types known to Rust ----------------------------------------------------

/// An object type that Rust code can name: usable as `parent = T` in
/// `#[derive(qom::Object)]`, so a misspelt or missing parent is a compile
/// error rather than a registration error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a QOM object type known to Rust",
    note = "a parent must derive `qom::Object` (or be `qom::ObjectRoot`); a parent known only by name is `parent_name = \"...\"`"
)]
pub trait StaticType: 'static {
    /// The QOM type name.
    const TYPE_NAME: &'static str;
}

/// A derived type's parent as a Rust type. For a parent known only by name
/// at run time, the derive uses [`ObjectRoot`] here: the only thing Rust
/// can vouch for is that every object is an `object`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no parent known to Rust",
    note = "in `ancestor::<P, _>()` and `upcast::<P, _>()`, `P` must be the type itself or one of its ancestors"
)]
pub trait Subclass: ObjectType + StaticType {
    /// The parent type.
    type Parent: StaticType;
}

/// QOM's root type `object`, as a Rust type for `parent = ObjectRoot`.
/// It has no state of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObjectRoot;

impl StaticType for ObjectRoot {
    const TYPE_NAME: &'static str = TYPE_OBJECT;
}

/// An interface type that Rust code can name, for `interfaces(I)`.
pub trait InterfaceType: 'static {
    /// The QOM type name.
    const TYPE_NAME: &'static str;
}

/// The `user-creatable` interface as a Rust type: a derived type listing it
/// in `interfaces(...)` must implement [`UserCreatableImpl`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UserCreatable;

impl InterfaceType for UserCreatable {
    const TYPE_NAME: &'static str = TYPE_USER_CREATABLE;
}

/// How a parent type `Self` lets a subclass `T` fill its virtual methods.
///
/// The derive calls `<Parent as SubclassInit<Self>>::subclass_init` from the
/// subclass's `class_init`. A type with virtual methods of its own
/// implements this by hand, with a bound on its `...Impl` trait, so that a
/// subclass that does not implement that trait does not compile; types
/// without virtual methods pass the call on to their own parent (the derive
/// writes that implementation unless told `manual_subclass_init`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not accept `{T}` as a subclass",
    note = "a parent with virtual methods needs its `...Impl` trait implemented for the subclass"
)]
pub trait SubclassInit<T>: StaticType {
    /// Installs `T`'s overrides into the class data `Self` defines.
    fn subclass_init(_class: &mut ClassBuilder<'_>) -> Result<()> {
        Ok(())
    }
}

impl<T> SubclassInit<T> for ObjectRoot {}

/// How an interface `Self` takes its methods from an implementing type `T`:
/// the derive calls it for each typed entry of `interfaces(...)`.
#[diagnostic::on_unimplemented(
    message = "`{T}` lists `{Self}` in `interfaces(...)` but does not implement it",
    note = "implement the interface's `...Impl` trait for `{T}` (for `UserCreatable`: `impl qom::UserCreatableImpl for {T} {{}}`)"
)]
pub trait InterfaceInit<T>: InterfaceType {
    /// Installs `T`'s methods into the interface's class data.
    fn interface_init(class: &mut ClassBuilder<'_>) -> Result<()>;
}

// ---- ancestry as a compile-time relation ------------------------------------

/// Index of [`IsA`]: the type itself.
#[derive(Debug)]
pub enum Here {}

/// Index of [`IsA`]: something the parent is.
pub struct Up<I>(PhantomData<I>);

impl<I> fmt::Debug for Up<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Up")
    }
}

/// `Self` is `P` or descends from it. The index `I` only tells the
/// compiler how far up `P` is; callers write `_` for it.
///
/// Nothing implements this by hand: it follows from [`Subclass::Parent`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `{P}`: `{P}` is not among its ancestors"
)]
pub trait IsA<P, I> {}

impl<T: StaticType> IsA<T, Here> for T {}
impl<T: Subclass, P, I> IsA<P, Up<I>> for T where T::Parent: IsA<P, I> {}

// ---- typed handles --------------------------------------------------------

/// A typed view of an object of type `T` (or of a subclass), as hooks and
/// custom property accessors receive it.
///
/// The state accessors take `&mut self` and the property accessors `&self`,
/// so while a [`StateGuard`] from this handle lives, the compiler refuses a
/// property read of the same object, which would otherwise wait forever
/// for the guard (see the `state_guard_blocks_property_reads` compile-fail
/// test of `qom-derive`). [`object`](Self::object) is the way out for the
/// rare hook that needs the untyped handle; a clone of it is not covered.
pub struct ObjectRef<'a, T> {
    obj: &'a Object,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ObjectRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ObjectRef").field(self.obj).finish()
    }
}

impl<'a, T: ObjectType> ObjectRef<'a, T> {
    /// The typed view of `obj`, when one of its levels holds state `T`.
    pub fn from_object(obj: &'a Object) -> Option<Self> {
        if obj.is_a(T::NAME) && obj.try_state::<T>().is_some() {
            Some(Self::assume(obj))
        } else {
            None
        }
    }

    /// The typed view of `obj` without looking: for adapters that install
    /// a typed hook into `T`'s class data (a parent's
    /// [`SubclassInit::subclass_init`]), which only objects of `T` or of a
    /// subclass reach. On another object, [`state`](Self::state) panics.
    pub fn assume(obj: &'a Object) -> Self {
        ObjectRef {
            obj,
            _t: PhantomData,
        }
    }

    /// Exclusive access to this type's own state.
    pub fn state(&mut self) -> StateGuard<'_, T> {
        self.obj.state::<T>()
    }

    /// Exclusive access to the state of ancestor `P`:
    /// `obj.ancestor::<MemoryBackend, _>()`.
    pub fn ancestor<P: ObjectType, I>(&mut self) -> StateGuard<'_, P>
    where
        T: IsA<P, I>,
    {
        self.obj.state::<P>()
    }

    /// The same object seen as ancestor `P`, to call `P`'s helpers.
    pub fn upcast<P: ObjectType, I>(&mut self) -> ObjectRef<'_, P>
    where
        T: IsA<P, I>,
    {
        ObjectRef::assume(self.obj)
    }

    /// The untyped handle.
    pub fn object(&self) -> &Object {
        self.obj
    }

    /// The object's actual type name (`T`'s or a subclass's).
    pub fn type_name(&self) -> &str {
        self.obj.type_name()
    }

    /// The object's class.
    pub fn class(&self) -> &Arc<Class> {
        self.obj.class()
    }

    /// The class of `T`'s parent, where the implementations a hook
    /// overrides live (to chain up to them).
    pub fn parent_class(&self) -> Option<&Arc<Class>> {
        let mut class = self.obj.class();
        while class.name() != T::NAME {
            class = class.parent()?;
        }
        class.parent()
    }

    /// The name of the `child<>` property the parent holds the object by
    /// (the id of a user-created object).
    pub fn name(&self) -> Option<String> {
        self.obj.name()
    }

    /// The canonical path, once the object is in a tree.
    pub fn path(&self) -> Option<String> {
        self.obj.canonical_path()
    }

    /// Reads a property as JSON.
    pub fn get(&self, name: &str) -> Result<Value> {
        self.obj.get(name)
    }

    /// Reads a property as its Rust type.
    pub fn get_typed<V: PropertyType>(&self, name: &str) -> Result<V> {
        self.obj.get_typed(name)
    }

    /// Writes a property from JSON; the lock policy applies.
    pub fn set_json(&self, name: &str, value: &Value) -> Result<()> {
        self.obj.set_json(name, value)
    }

    /// Writes a property from its Rust type; the lock policy applies.
    pub fn set_typed<V: PropertyType>(&self, name: &str, value: V) -> Result<()> {
        self.obj.set_typed(name, value)
    }
}

// ---- typed hooks ------------------------------------------------------------

/// The hooks every object type may override, with typed access. The derive
/// requires an implementation (an empty `impl qom::ObjectImpl for T {}`
/// keeps every default).
///
/// A parent named as a Rust type gives the subclass's hooks its state too:
///
/// ```
/// use qom::{ObjectImpl, ObjectRef, ObjectTree, TypeRegistry, UserCreatableImpl};
///
/// #[derive(Default, qom::Object)]
/// #[qom(name = "disk", abstract, interfaces(qom::UserCreatable))]
/// struct Disk {
///     #[property(locked, required)]
///     sectors: u64,
/// }
/// impl ObjectImpl for Disk {}
/// impl UserCreatableImpl for Disk {}
///
/// #[derive(Default, qom::Object)]
/// // Listing an inherited interface again is how a subclass overrides its
/// // methods; the hook sees both levels' state, one guard at a time.
/// #[qom(name = "ram-disk", parent = Disk, interfaces(qom::UserCreatable))]
/// struct RamDisk {
///     data: Vec<u8>,
/// }
/// impl ObjectImpl for RamDisk {}
/// impl UserCreatableImpl for RamDisk {
///     fn complete(obj: &mut ObjectRef<'_, Self>) -> qom::Result<()> {
///         let sectors = obj.ancestor::<Disk, _>().sectors;
///         obj.state().data = vec![0; sectors as usize * 512];
///         qom::parent_complete(obj)
///     }
/// }
///
/// let types = TypeRegistry::with_builtins();
/// types.register_type::<Disk>()?;
/// types.register_type::<RamDisk>()?;
/// let tree = ObjectTree::new(types)?;
/// let obj = tree.object_add_str("ram-disk,id=d0,sectors=8")?;
/// assert_eq!(obj.state::<RamDisk>().data.len(), 4096);
/// # Ok::<(), qom::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` derives `qom::Object` but does not implement `qom::ObjectImpl`",
    note = "add `impl qom::ObjectImpl for {Self} {{}}` (override the hooks you need)"
)]
pub trait ObjectImpl: ObjectType {
    /// Runs for each new instance after the defaults are applied, root
    /// type first.
    fn instance_init(_obj: &mut ObjectRef<'_, Self>) {}

    /// Runs after every level's `instance_init`, root type first.
    fn instance_post_init(_obj: &mut ObjectRef<'_, Self>) {}

    /// Runs when the object is removed from its parent. Without an
    /// override, the parent's hook runs; an override that wants it too
    /// calls [`parent_unparent`].
    fn unparent(obj: &mut ObjectRef<'_, Self>) {
        parent_unparent(obj)
    }

    /// Runs on this level's state when the last reference goes, leaf type
    /// first. The object is already gone, so only the state is offered.
    fn finalize(&mut self) {}
}

/// The `unparent` hook `T` inherited: what an override calls to chain up.
pub fn parent_unparent<T: ObjectType>(obj: &mut ObjectRef<'_, T>) {
    let hook = obj
        .parent_class()
        .and_then(|c| c.data::<ObjectClass>())
        .and_then(|c| c.unparent.clone());
    if let Some(hook) = hook {
        hook(obj.object());
    }
}

/// The methods of the `user-creatable` interface, with typed access.
#[diagnostic::on_unimplemented(
    message = "`{Self}` lists `UserCreatable` but does not implement `qom::UserCreatableImpl`",
    note = "add `impl qom::UserCreatableImpl for {Self} {{}}` (override `complete` / `can_be_deleted` as needed)"
)]
pub trait UserCreatableImpl: ObjectType {
    /// Runs after all properties are set; a failure undoes the creation.
    /// Without an override, the parent's `complete` runs.
    fn complete(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        parent_complete(obj)
    }

    /// Whether the object may be deleted now. Without an override, the
    /// parent decides (yes when it has no opinion).
    fn can_be_deleted(obj: &mut ObjectRef<'_, Self>) -> bool {
        parent_can_be_deleted(obj)
    }
}

fn parent_user_creatable<T: ObjectType>(obj: &ObjectRef<'_, T>) -> Option<UserCreatableClass> {
    obj.parent_class()
        .and_then(|c| c.data::<UserCreatableClass>())
        .cloned()
}

/// The `complete` hook `T` inherited (none: success).
pub fn parent_complete<T: ObjectType>(obj: &mut ObjectRef<'_, T>) -> Result<()> {
    match parent_user_creatable(obj).and_then(|c| c.complete) {
        Some(hook) => hook(obj.object()),
        None => Ok(()),
    }
}

/// The `can_be_deleted` hook `T` inherited (none: yes).
pub fn parent_can_be_deleted<T: ObjectType>(obj: &mut ObjectRef<'_, T>) -> bool {
    match parent_user_creatable(obj).and_then(|c| c.can_be_deleted) {
        Some(hook) => hook(obj.object()),
        None => true,
    }
}

impl<T: UserCreatableImpl> InterfaceInit<T> for UserCreatable {
    fn interface_init(class: &mut ClassBuilder<'_>) -> Result<()> {
        let uc = class.data_mut::<UserCreatableClass>();
        uc.complete = Some(Arc::new(|obj| T::complete(&mut ObjectRef::assume(obj))));
        uc.can_be_deleted = Some(Arc::new(|obj| {
            T::can_be_deleted(&mut ObjectRef::assume(obj))
        }));
        Ok(())
    }
}

/// What the derive expands to; not an API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Installs the class-level [`ObjectImpl`] hooks.
    pub fn object_impl_class_init<T: ObjectImpl>(class: &mut ClassBuilder<'_>) {
        class.data_mut::<ObjectClass>().unparent =
            Some(Arc::new(|obj| T::unparent(&mut ObjectRef::assume(obj))));
    }

    /// The registration of a derived type: [`ObjectType::type_info`] plus
    /// the per-level [`ObjectImpl`] hooks.
    pub fn type_info<T: ObjectImpl>() -> TypeInfo {
        let mut info = TypeInfo::new(T::NAME)
            .parent(T::PARENT)
            .abstract_type(T::ABSTRACT)
            .state::<T>()
            .class_init(T::class_init)
            .instance_init(|obj| <T as ObjectImpl>::instance_init(&mut ObjectRef::assume(obj)))
            .instance_post_init(|obj| {
                <T as ObjectImpl>::instance_post_init(&mut ObjectRef::assume(obj))
            })
            .finalize(|state| {
                if let Some(s) = state.downcast_mut::<T>() {
                    <T as ObjectImpl>::finalize(s);
                }
            });
        for i in T::INTERFACES {
            info = info.interface_impl(*i);
        }
        for c in T::CHILD_TYPES {
            info = info.child_type(*c);
        }
        info
    }
}
