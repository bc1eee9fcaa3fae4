//! Classes: the built, immutable description of a type, and the builder a
//! type's `class_init` fills.

use crate::child::{Child, ChildDecl};
use crate::error::{Error, LockStyle, Result};
use crate::object::Object;
use crate::property::{Property, PropertyKind, PropertyType, TypedGet, TypedSet};
use crate::type_info::{FinalizeFn, InstanceFn, StateDecl};
use crate::typed::StaticType;
use crate::value::Input;
use indexmap::IndexMap;
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A value stored in a class: a "class struct" of virtual methods or
/// class-wide settings. Subclasses start from a copy of their parent's.
pub trait ClassData: Any + Send + Sync {
    /// A boxed copy, for handing the parent's data to a subclass.
    fn clone_box(&self) -> Box<dyn ClassData>;
    /// Upcast for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// Upcast for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> ClassData for T {
    fn clone_box(&self) -> Box<dyn ClassData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The `unparent` hook.
pub type UnparentFn = Arc<dyn Fn(&Object) + Send + Sync>;

/// The class data every class carries: hooks QEMU keeps in `ObjectClass`.
#[derive(Clone, Default)]
pub struct ObjectClass {
    /// Runs when the object is removed from its parent (object-del, tree
    /// teardown, a failed `complete`), before the parent lets go of it.
    pub unparent: Option<UnparentFn>,
}

/// A condition a class must meet to be instantiable; see
/// [`ClassBuilder::check_concrete`].
pub type ClassCheckFn = Arc<dyn Fn(&Class) -> Result<()> + Send + Sync>;

/// The checks declared by a class and its ancestors. Kept as class data so
/// that subclasses inherit them with the rest of the parent's class.
#[derive(Clone, Default)]
struct ClassChecks(Vec<ClassCheckFn>);

/// Runs the inherited checks of a concrete class, once it is built: an
/// abstract type may leave a virtual method for its subclasses to fill, an
/// instantiable one may not.
pub(crate) fn check_concrete(class: &Class) -> Result<()> {
    if class.is_abstract {
        return Ok(());
    }
    if let Some(checks) = class.data::<ClassChecks>() {
        for check in &checks.0 {
            check(class)?;
        }
    }
    Ok(())
}

/// One level of the hierarchy as instances see it.
#[derive(Clone)]
pub(crate) struct Level {
    pub(crate) type_name: Arc<str>,
    pub(crate) state: Option<StateDecl>,
    pub(crate) instance_init: Option<InstanceFn>,
    pub(crate) instance_post_init: Option<InstanceFn>,
    pub(crate) finalize: Option<FinalizeFn>,
    /// The children this level's `class_init` declared.
    pub(crate) children: Vec<ChildDecl>,
}

/// A built class: ancestry, interfaces, the flattened property table and
/// the class data.
///
/// Classes are built lazily, once, parent first, and never change after.
pub struct Class {
    pub(crate) name: Arc<str>,
    pub(crate) parent: Option<Arc<Class>>,
    pub(crate) is_abstract: bool,
    /// This type and its ancestors, nearest first.
    pub(crate) ancestors: Vec<Arc<str>>,
    /// One entry per implemented interface: that interface and its
    /// ancestors, nearest first.
    pub(crate) interfaces: Vec<Vec<Arc<str>>>,
    /// Ancestors' properties first, then this type's, in declaration order.
    pub(crate) properties: IndexMap<Arc<str>, Arc<Property>>,
    pub(crate) data: HashMap<TypeId, Box<dyn ClassData>>,
    /// Root first.
    pub(crate) levels: Vec<Level>,
}

impl fmt::Debug for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Class")
            .field("name", &self.name)
            .field("abstract", &self.is_abstract)
            .field("ancestors", &self.ancestors)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Class {
    /// The type name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The parent class (`None` for the roots `object` and `interface`).
    pub fn parent(&self) -> Option<&Arc<Class>> {
        self.parent.as_ref()
    }
    /// Whether instances can be created.
    pub fn is_abstract(&self) -> bool {
        self.is_abstract
    }
    /// Whether this is an interface type.
    pub fn is_interface(&self) -> bool {
        self.ancestors.iter().any(|a| &**a == "interface")
    }

    /// QEMU's dynamic class cast, as a predicate: the type itself, an
    /// ancestor, or an interface implemented exactly once (a cast to an
    /// interface that two implemented interfaces descend from is ambiguous
    /// and fails, as in QEMU).
    pub fn is_a(&self, type_name: &str) -> bool {
        if &*self.name == type_name {
            return true;
        }
        let via_interfaces = self
            .interfaces
            .iter()
            .filter(|chain| chain.iter().any(|t| &**t == type_name))
            .count();
        if via_interfaces > 0 {
            return via_interfaces == 1;
        }
        self.ancestors.iter().any(|a| &**a == type_name)
    }

    /// The names of the implemented interfaces (inherited ones included).
    pub fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.interfaces
            .iter()
            .filter_map(|c| c.first().map(|s| &**s))
    }

    /// The class properties: ancestors' first, then this type's, each
    /// table in declaration order.
    pub fn properties(&self) -> impl Iterator<Item = &Arc<Property>> {
        self.properties.values()
    }

    /// One class property by name.
    pub fn property(&self, name: &str) -> Option<&Arc<Property>> {
        self.properties.get(name)
    }

    /// Class data of type `T`, if this class (or an ancestor) installed it.
    pub fn data<T: ClassData>(&self) -> Option<&T> {
        self.data
            .get(&TypeId::of::<T>())
            .and_then(|d| (**d).as_any().downcast_ref())
    }
}

/// What a type's `class_init` receives: its class under construction,
/// already holding a copy of the parent's properties and class data.
pub struct ClassBuilder<'a> {
    pub(crate) name: &'a str,
    pub(crate) properties: &'a mut IndexMap<Arc<str>, Arc<Property>>,
    pub(crate) data: &'a mut HashMap<TypeId, Box<dyn ClassData>>,
    pub(crate) error: Option<Error>,
    /// Where declared children go, and how their classes are found: set
    /// for a `class_init`, absent for instance-property declarations.
    pub(crate) children: Option<Children<'a>>,
}

/// The part of a [`ClassBuilder`] that declares children.
pub(crate) struct Children<'a> {
    /// This level's declarations.
    pub(crate) decls: &'a mut Vec<ChildDecl>,
    /// Names of the children declared by ancestors.
    pub(crate) inherited: Vec<Arc<str>>,
    /// Builds (under the registry's build lock, which the caller holds)
    /// the class of a child type.
    pub(crate) resolve: &'a mut dyn FnMut(&str) -> Result<Arc<Class>>,
}

impl<'a> ClassBuilder<'a> {
    /// The type being built.
    pub fn type_name(&self) -> &str {
        self.name
    }

    /// The class data of type `T`, inserted with its default when neither
    /// this type nor an ancestor installed it yet. Overriding a virtual
    /// method is assigning to a field of the returned struct.
    pub fn data_mut<T: ClassData + Default>(&mut self) -> &mut T {
        self.data
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
            .as_any_mut()
            .downcast_mut()
            .expect("class data is keyed by its TypeId")
    }

    /// The class data of type `T`, if present.
    pub fn data<T: ClassData>(&self) -> Option<&T> {
        self.data
            .get(&TypeId::of::<T>())
            .and_then(|d| (**d).as_any().downcast_ref())
    }

    /// Declares a condition that every non-abstract class built from this
    /// one (this type, if concrete, and every subclass) must meet, checked
    /// when that class is built: a required virtual method left empty
    /// then fails the registration instead of the first object-add.
    ///
    /// ```
    /// use qom::{Error, TypeInfo, TypeRegistry};
    /// #[derive(Clone, Default)]
    /// struct BackendClass { alloc: Option<fn() -> u64> }
    ///
    /// let types = TypeRegistry::with_builtins();
    /// types.register(TypeInfo::new("backend").parent("object").abstract_type(true).class_init(|c| {
    ///     c.data_mut::<BackendClass>();
    ///     c.check_concrete(|class| match class.data::<BackendClass>().and_then(|b| b.alloc) {
    ///         Some(_) => Ok(()),
    ///         None => Err(Error::InvalidRegistration(format!("'{}' does not implement alloc", class.name()))),
    ///     });
    ///     Ok(())
    /// }))?;
    /// types.register(TypeInfo::new("forgetful-backend").parent("backend"))?;
    /// let err = types.class("forgetful-backend").unwrap_err();
    /// assert_eq!(err.to_string(), "'forgetful-backend' does not implement alloc");
    /// # Ok::<(), qom::Error>(())
    /// ```
    pub fn check_concrete(&mut self, check: impl Fn(&Class) -> Result<()> + Send + Sync + 'static) {
        self.data_mut::<ClassChecks>().0.push(Arc::new(check));
    }

    /// Starts declaring a property with a typed value; the declaration is
    /// added when the returned builder is dropped (at the end of the
    /// statement). Give it a getter and/or a setter.
    pub fn property<V: PropertyType>(&mut self, name: &str) -> PropertyBuilder<'_, 'a, V> {
        let mut prop = Property::new(name, V::qom_type());
        prop.schema = V::json_schema();
        prop.check = Some(check_as::<V>(name));
        PropertyBuilder {
            class: self,
            prop: Some(prop),
            _v: PhantomData,
        }
    }

    /// Declares a readable and writable property backed by a field of a
    /// level's typed state `S`.
    ///
    /// ```
    /// # use qom::{TypeInfo, TypeRegistry};
    /// #[derive(Default)]
    /// struct Dummy { bv: bool }
    /// let types = TypeRegistry::with_builtins();
    /// types.register(TypeInfo::new("dummy").parent("object").state::<Dummy>()
    ///     .class_init(|c| { c.field("bv", |s: &mut Dummy| &mut s.bv).description("a bool"); Ok(()) }))
    ///     .unwrap();
    /// let obj = types.new_object("dummy").unwrap();
    /// obj.set_json("bv", &serde_json::json!(true)).unwrap();
    /// assert_eq!(obj.get("bv").unwrap(), serde_json::json!(true));
    /// ```
    pub fn field<S, V>(
        &mut self,
        name: &str,
        access: impl Fn(&mut S) -> &mut V + Send + Sync + Copy + 'static,
    ) -> PropertyBuilder<'_, 'a, V>
    where
        S: Any + Send,
        V: PropertyType + Clone,
    {
        self.property::<V>(name)
            .getter(move |obj| Ok(access(&mut obj.state::<S>()).clone()))
            .setter(move |obj, v| {
                *access(&mut obj.state::<S>()) = v;
                Ok(())
            })
    }

    /// Declares a `link<T>` property stored in a [`Link`](crate::Link)
    /// field of state `S`. Links take a path (absolute or partial) that
    /// must name an object of type `target`; `""` clears the link.
    pub fn link<S: Any + Send>(
        &mut self,
        name: &str,
        target: &str,
        access: impl Fn(&mut S) -> &mut crate::Link + Send + Sync + Copy + 'static,
    ) -> RawPropertyBuilder<'_, 'a> {
        let pname: Arc<str> = name.into();
        let target_owned = target.to_owned();
        let mut prop = Property::new(name, format!("link<{target}>"));
        prop.kind = PropertyKind::Link {
            target: target.to_owned(),
        };
        prop.schema = serde_json::json!({"type": "string"});
        prop.get = Some(Arc::new(move |obj| {
            let path = access(&mut obj.state::<S>())
                .get()
                .and_then(|t| t.canonical_path());
            Ok(Value::String(path.unwrap_or_default()))
        }));
        let set_name = pname.clone();
        prop.set = Some(Arc::new(move |obj, input| {
            let path: String = input.deserialize(&set_name)?;
            let new = if path.is_empty() {
                None
            } else {
                Some(obj.resolve_link_target(&set_name, &path, &target_owned)?)
            };
            access(&mut obj.state::<S>()).replace(new);
            Ok(())
        }));
        let check_name = pname;
        prop.check = Some(Arc::new(move |input| {
            input.deserialize::<String>(&check_name).map(drop)
        }));
        prop.resolve = Some(Arc::new(move |obj| {
            access(&mut obj.state::<S>()).get().cloned()
        }));
        RawPropertyBuilder {
            class: self,
            prop: Some(prop),
        }
    }

    /// Declares a child of type `T` that every instance gets at creation,
    /// as property `name` of type `child<T>`, stored in a
    /// [`Child`](crate::Child) field of state `S`. The child is created
    /// (with its defaults and its own children) before this level's
    /// `instance_init` runs, so that hook can configure it.
    ///
    /// `T`'s class is built with this one: an unknown child type or a
    /// chain of children that loops fails this class, not the first
    /// object-add. A type whose registration may be built before `T` is
    /// loaded (a child from a lazy module) lists it with
    /// [`TypeInfo::child_type`](crate::TypeInfo::child_type); the derive
    /// does that itself.
    ///
    /// ```
    /// use qom::{Child, TypeInfo, TypeRegistry};
    /// #[derive(Default)]
    /// struct Sensor { reading: u32 }
    /// #[derive(Default)]
    /// struct Board { sensor: Child<Sensor> }
    /// impl qom::StaticType for Sensor { const TYPE_NAME: &'static str = "sensor"; }
    ///
    /// let types = TypeRegistry::with_builtins();
    /// types.register(TypeInfo::new("sensor").parent("object").state::<Sensor>().class_init(|c| {
    ///     c.field("reading", |s: &mut Sensor| &mut s.reading);
    ///     Ok(())
    /// }))?;
    /// types.register(TypeInfo::new("board").parent("object").state::<Board>().class_init(|c| {
    ///     c.child("sensor", |s: &mut Board| &mut s.sensor);
    ///     Ok(())
    /// }))?;
    /// let board = types.new_object("board")?;
    /// assert_eq!(board.property("sensor").unwrap().qom_type(), "child<sensor>");
    /// board.state::<Board>().sensor.state().unwrap().reading = 7;
    /// assert_eq!(board.child("sensor").unwrap().get("reading")?, serde_json::json!(7));
    /// # Ok::<(), qom::Error>(())
    /// ```
    pub fn child<S, T>(
        &mut self,
        name: &str,
        access: impl Fn(&mut S) -> &mut Child<T> + Send + Sync + Copy + 'static,
    ) where
        S: Any + Send,
        T: StaticType,
    {
        if self.error.is_some() {
            return;
        }
        let owner = self.name;
        let Some(children) = self.children.as_mut() else {
            self.error = Some(Error::InvalidRegistration(format!(
                "child '{name}' of '{owner}': children are declared in class_init"
            )));
            return;
        };
        let taken = self.properties.contains_key(name)
            || children.inherited.iter().any(|n| **n == *name)
            || children.decls.iter().any(|d| *d.name == *name);
        if name.is_empty() || name.contains('/') {
            self.error = Some(Error::InvalidRegistration(format!(
                "property name '{name}' of type '{owner}' is invalid"
            )));
            return;
        }
        if taken {
            self.error = Some(Error::DuplicateProperty {
                name: name.to_owned(),
                owner_type: owner.to_owned(),
            });
            return;
        }
        let class = match (children.resolve)(T::TYPE_NAME) {
            Ok(c) => c,
            Err(e) => {
                self.error = Some(Error::InvalidRegistration(format!(
                    "child '{name}' of '{owner}' cannot be created: {e}"
                )));
                return;
            }
        };
        if class.is_abstract() {
            self.error = Some(Error::InvalidRegistration(format!(
                "child '{name}' of '{owner}' has abstract type '{}'",
                T::TYPE_NAME
            )));
            return;
        }
        children.decls.push(ChildDecl {
            name: name.into(),
            class,
            store: Arc::new(move |owner, child| access(&mut owner.state::<S>()).set(child.clone())),
        });
    }

    /// Declares a property from erased parts: a QOM type string and any of
    /// getter, setter and checker working on JSON. For properties whose
    /// value is computed rather than stored.
    pub fn raw_property(&mut self, name: &str, qom_type: &str) -> RawPropertyBuilder<'_, 'a> {
        RawPropertyBuilder {
            class: self,
            prop: Some(Property::new(name, qom_type)),
        }
    }

    fn add(&mut self, prop: Property) {
        if self.error.is_some() {
            return;
        }
        if prop.name.contains('/') || prop.name.is_empty() {
            self.error = Some(Error::InvalidRegistration(format!(
                "property name '{}' of type '{}' is invalid",
                prop.name, self.name
            )));
            return;
        }
        if self.properties.contains_key(&*prop.name) {
            self.error = Some(Error::DuplicateProperty {
                name: prop.name.to_string(),
                owner_type: self.name.to_owned(),
            });
            return;
        }
        if let Some(dv) = &prop.default {
            if let Some(check) = &prop.check {
                if let Err(e) = check(Input::Json(dv)) {
                    self.error = Some(Error::InvalidRegistration(format!(
                        "default of property '{}' of type '{}' is not accepted by its setter: {e}",
                        prop.name, self.name
                    )));
                    return;
                }
            }
        }
        self.properties.insert(prop.name.clone(), Arc::new(prop));
    }
}

fn check_as<V: PropertyType>(name: &str) -> crate::property::CheckFn {
    let name: Arc<str> = name.into();
    Arc::new(move |input| input.deserialize::<V>(&name).map(drop))
}

/// Options shared by both property builders.
macro_rules! common_builder_methods {
    () => {
        /// The description shown by introspection and help.
        pub fn description(mut self, text: &str) -> Self {
            self.prop_mut().description = Some(text.to_owned());
            self
        }

        /// Overrides the QOM type string (QEMU says `int` for sizes, for
        /// example).
        pub fn qom_type(mut self, qom_type: &str) -> Self {
            self.prop_mut().qom_type = qom_type.to_owned();
            self
        }

        /// Refuses changes once the object is complete, with QEMU's generic
        /// wording `cannot change property 'NAME' of TYPE`.
        pub fn locked(self) -> Self {
            self.locked_with(LockStyle::Quoted)
        }

        /// Refuses changes once the object is complete, with a specific
        /// wording.
        pub fn locked_with(mut self, style: LockStyle) -> Self {
            self.prop_mut().lock = Some(style);
            self
        }

        /// Once locked, refuse a write before parsing the value, so a
        /// wrongly typed value gets the lock error too (QEMU's order for
        /// `size`, `align`, `offset`). By default the value is parsed first
        /// and a type error wins, as for QEMU's typed properties.
        pub fn lock_checked_first(mut self) -> Self {
            self.prop_mut().lock_first = true;
            self
        }

        /// object-add fails with `Parameter 'NAME' is missing` without it.
        pub fn required(mut self) -> Self {
            self.prop_mut().required = true;
            self
        }
    };
}

/// Declares one typed property; see [`ClassBuilder::property`].
pub struct PropertyBuilder<'b, 'a, V: PropertyType> {
    class: &'b mut ClassBuilder<'a>,
    prop: Option<Property>,
    _v: PhantomData<fn() -> V>,
}

impl<V: PropertyType> PropertyBuilder<'_, '_, V> {
    fn prop_mut(&mut self) -> &mut Property {
        self.prop.as_mut().expect("present until drop")
    }

    /// The typed getter.
    pub fn getter(mut self, get: impl Fn(&Object) -> Result<V> + Send + Sync + 'static) -> Self {
        let typed = Arc::new(TypedGet::<V>(Box::new(get)));
        let erased = typed.clone();
        self.prop_mut().get = Some(Arc::new(move |obj| {
            let v = (erased.0)(obj)?;
            serde_json::to_value(v).map_err(|e| Error::generic(e.to_string()))
        }));
        self.prop_mut().typed_get = Some(typed);
        self
    }

    /// The typed setter. The framework has already applied the lock policy
    /// and parsed the input (strict JSON or keyval) into `V`.
    pub fn setter(
        mut self,
        set: impl Fn(&Object, V) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        let name = self.prop_mut().name.clone();
        let typed = Arc::new(TypedSet::<V>(Box::new(set)));
        let erased = typed.clone();
        self.prop_mut().set = Some(Arc::new(move |obj, input| {
            let v = input.deserialize::<V>(&name)?;
            (erased.0)(obj, v)
        }));
        self.prop_mut().typed_set = Some(typed);
        self
    }

    /// The default, applied through the setter when an instance is created
    /// and reported as `default-value`.
    pub fn default(mut self, value: V) -> Self {
        match serde_json::to_value(value) {
            Ok(v) => self.prop_mut().default = Some(v),
            Err(e) => {
                self.class.error = Some(Error::InvalidRegistration(format!(
                    "default of property '{}' cannot be represented: {e}",
                    self.prop_mut().name
                )))
            }
        }
        self
    }

    /// Keeps the input check but takes the value away from introspection
    /// defaults; useful when the default depends on the host.
    pub fn no_default(mut self) -> Self {
        self.prop_mut().default = None;
        self
    }

    common_builder_methods!();
}

impl<V: PropertyType> Drop for PropertyBuilder<'_, '_, V> {
    fn drop(&mut self) {
        if let Some(p) = self.prop.take() {
            self.class.add(p);
        }
    }
}

/// Declares one property from erased parts; see [`ClassBuilder::raw_property`].
pub struct RawPropertyBuilder<'b, 'a> {
    class: &'b mut ClassBuilder<'a>,
    prop: Option<Property>,
}

impl RawPropertyBuilder<'_, '_> {
    fn prop_mut(&mut self) -> &mut Property {
        self.prop.as_mut().expect("present until drop")
    }

    /// A getter producing JSON.
    pub fn getter(
        mut self,
        get: impl Fn(&Object) -> Result<Value> + Send + Sync + 'static,
    ) -> Self {
        self.prop_mut().get = Some(Arc::new(get));
        self
    }

    /// A setter receiving the raw input.
    pub fn setter(
        mut self,
        set: impl Fn(&Object, Input<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.prop_mut().set = Some(Arc::new(set));
        self
    }

    /// A parse-only check of the input, run by object-add before any
    /// property is set.
    pub fn checker(
        mut self,
        check: impl Fn(Input<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.prop_mut().check = Some(Arc::new(check));
        self
    }

    /// The JSON Schema of accepted values.
    pub fn schema(mut self, schema: Value) -> Self {
        self.prop_mut().schema = schema;
        self
    }

    /// The default as JSON, applied through the setter at instance creation.
    pub fn default_json(mut self, value: Value) -> Self {
        self.prop_mut().default = Some(value);
        self
    }

    common_builder_methods!();
}

impl Drop for RawPropertyBuilder<'_, '_> {
    fn drop(&mut self) {
        if let Some(p) = self.prop.take() {
            self.class.add(p);
        }
    }
}
