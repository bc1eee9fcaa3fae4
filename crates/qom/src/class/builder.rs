//! The builder a type's `class_init` fills: its class under construction.

use super::property_builder::{PropertyBuilder, RawPropertyBuilder};
use super::{Class, ClassChecks, ClassData};
use crate::composition::{self, Child, ChildDecls, Link};
use crate::error::{Error, LockStyle, Result};
use crate::object::Object;
use crate::property::{CheckFn, Property, PropertyType};
use crate::typed::StaticType;
use crate::value::Input;
use indexmap::IndexMap;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// What a type's `class_init` receives: its class under construction,
/// already holding a copy of the parent's properties and class data.
pub struct ClassBuilder<'a> {
    pub(crate) name: &'a str,
    pub(crate) properties: &'a mut IndexMap<Arc<str>, Arc<Property>>,
    pub(crate) data: &'a mut HashMap<TypeId, Box<dyn ClassData>>,
    pub(crate) error: Option<Error>,
    /// Where declared children go, and how their classes are found: set
    /// for a `class_init`, absent for instance-property declarations.
    pub(crate) children: Option<ChildDecls<'a>>,
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
        PropertyBuilder::new(self, prop)
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
        access: impl Fn(&mut S) -> &mut Link + Send + Sync + Copy + 'static,
    ) -> RawPropertyBuilder<'_, 'a> {
        self.declare(composition::link_property(name, target, access))
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
        let store = Arc::new(move |owner: &Object, child: &Object| {
            access(&mut owner.state::<S>()).set(child.clone())
        });
        composition::declare_child(self, name, T::TYPE_NAME, store);
    }

    /// Declares a property from erased parts: a QOM type string and any of
    /// getter, setter and checker working on JSON. For properties whose
    /// value is computed rather than stored.
    pub fn raw_property(&mut self, name: &str, qom_type: &str) -> RawPropertyBuilder<'_, 'a> {
        self.declare(Property::new(name, qom_type))
    }

    /// Starts the declaration of a property assembled by the framework
    /// (links), with the options every declaration takes.
    pub(crate) fn declare(&mut self, prop: Property) -> RawPropertyBuilder<'_, 'a> {
        RawPropertyBuilder::new(self, prop)
    }

    /// Adds a finished declaration, or records why it cannot be added.
    pub(super) fn add(&mut self, mut prop: Property) {
        if self.error.is_some() {
            return;
        }
        // qdev's rule: a device's properties are set before realize only.
        if prop.set.is_some()
            && prop.lock.is_none()
            && !prop.after_realize
            && self.data::<crate::device::DeviceClass>().is_some()
        {
            let link = matches!(prop.edge.kind(), crate::property::PropertyKind::Link { .. });
            prop.lock = Some(if link {
                LockStyle::RealizedLink
            } else {
                LockStyle::Realized
            });
            prop.lock_first = !link;
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

fn check_as<V: PropertyType>(name: &str) -> CheckFn {
    let name: Arc<str> = name.into();
    Arc::new(move |input| input.deserialize::<V>(&name).map(drop))
}
