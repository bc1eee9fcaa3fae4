//! Reading, writing and declaring an object's properties: the class's
//! table first, then the ones added to the instance.

use super::Object;
use crate::class::ClassBuilder;
use crate::composition::Edge;
use crate::error::{Error, Result};
use crate::property::{Property, PropertyType, TypedGet, TypedSet};
use crate::sync;
use crate::value::{Input, KeyvalValue};
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

impl Object {
    fn with_property<R>(&self, name: &str, f: impl FnOnce(&Property) -> Result<R>) -> Result<R> {
        if let Some(p) = self.0.class.properties.get(name) {
            return f(p);
        }
        let p = self
            .instance_property(name)
            .ok_or_else(|| self.no_property(name))?;
        f(&p)
    }

    fn no_property(&self, name: &str) -> Error {
        Error::PropertyNotFound {
            type_name: self.type_name().to_owned(),
            name: name.to_owned(),
        }
    }

    fn not_readable(&self, name: &str) -> Error {
        Error::NotReadable {
            type_name: self.type_name().to_owned(),
            name: name.to_owned(),
        }
    }

    fn not_writable(&self, name: &str) -> Error {
        Error::NotWritable {
            type_name: self.type_name().to_owned(),
            name: name.to_owned(),
        }
    }

    pub(crate) fn instance_property(&self, name: &str) -> Option<Arc<Property>> {
        sync::read(&self.0.instance_props).get(name).cloned()
    }

    /// A property by name: the class's first, then the instance's.
    pub fn property(&self, name: &str) -> Option<Arc<Property>> {
        self.0
            .class
            .properties
            .get(name)
            .cloned()
            .or_else(|| self.instance_property(name))
    }

    /// Every property: class properties (ancestors first, each in
    /// declaration order), then instance properties in the order added.
    pub fn properties(&self) -> Vec<Arc<Property>> {
        let mut v: Vec<Arc<Property>> = self.0.class.properties.values().cloned().collect();
        v.extend(sync::read(&self.0.instance_props).values().cloned());
        v
    }

    /// Reads a property as JSON (`qom-get`).
    pub fn get(&self, name: &str) -> Result<Value> {
        self.with_property(name, |p| match &p.get {
            Some(get) => get(self),
            None => Err(self.not_readable(name)),
        })
    }

    /// Writes a property from either input source, applying the lock policy.
    pub fn set(&self, name: &str, input: Input<'_>) -> Result<()> {
        self.with_property(name, |p| {
            let Some(set) = &p.set else {
                return Err(self.not_writable(name));
            };
            let _admitted = match self.admit_write(p, name) {
                Ok(admitted) => admitted,
                Err(locked) => {
                    // QEMU reports a bad value before the lock, except for
                    // properties that check the lock first.
                    if !p.lock_first {
                        if let Some(check) = &p.check {
                            check(input)?;
                        }
                    }
                    return Err(locked);
                }
            };
            set(self, input)
        })
    }

    /// Reads a property as its Rust type, without going through JSON.
    /// Fails with `Invalid parameter type` when the property was not
    /// declared with type `V` (or has no typed getter).
    pub fn get_typed<V: PropertyType>(&self, name: &str) -> Result<V> {
        self.with_property(name, |p| {
            let Some(get) = &p.typed_get else {
                return match &p.get {
                    None => Err(self.not_readable(name)),
                    Some(get) => Input::Json(&get(self)?).deserialize(name),
                };
            };
            match get.downcast_ref::<TypedGet<V>>() {
                Some(get) => (get.0)(self),
                None => Err(Error::InvalidParameterType {
                    name: name.to_owned(),
                    expected: p.qom_type.clone(),
                }),
            }
        })
    }

    /// Writes a property from its Rust type, without going through JSON;
    /// the lock policy applies as for every other write.
    pub fn set_typed<V: PropertyType>(&self, name: &str, value: V) -> Result<()> {
        self.with_property(name, |p| {
            let Some(set) = &p.typed_set else {
                return match &p.set {
                    None => Err(self.not_writable(name)),
                    Some(_) => {
                        let v = serde_json::to_value(value)
                            .map_err(|e| Error::generic(e.to_string()))?;
                        self.set(name, Input::Json(&v))
                    }
                };
            };
            let _admitted = self.admit_write(p, name)?;
            match set.downcast_ref::<TypedSet<V>>() {
                Some(set) => (set.0)(self, value),
                None => Err(Error::InvalidParameterType {
                    name: name.to_owned(),
                    expected: p.qom_type.clone(),
                }),
            }
        })
    }

    /// Writes a property from strict JSON (`qom-set`).
    pub fn set_json(&self, name: &str, value: &Value) -> Result<()> {
        self.set(name, Input::Json(value))
    }

    /// Writes a property from a string with the keyval rules (`on`, `64M`,
    /// `0x10`...), like QEMU's `object_property_parse`.
    pub fn parse(&self, name: &str, text: &str) -> Result<()> {
        self.set(name, Input::Keyval(&KeyvalValue::String(text.to_owned())))
    }

    /// Checks an input against a property's rules without storing it.
    pub fn check(&self, name: &str, input: Input<'_>) -> Result<()> {
        self.with_property(name, |p| match (&p.set, &p.check) {
            (None, _) => Err(self.not_writable(name)),
            (Some(_), Some(check)) => check(input),
            (Some(_), None) => Ok(()),
        })
    }

    /// Reads an enum property as its index in `E::VALUES`, checking that
    /// the property really is of that enum type (QEMU's
    /// `object_property_get_enum`).
    pub fn get_enum<E: crate::EnumType>(&self, name: &str) -> Result<usize> {
        let p = self.property(name).ok_or_else(|| self.no_property(name))?;
        if p.qom_type != E::NAME {
            return Err(Error::NotEnumType {
                name: name.to_owned(),
                type_name: self.type_name().to_owned(),
                enum_name: E::NAME.to_owned(),
            });
        }
        let v = self.get(name)?;
        let e: E = crate::value::Input::Json(&v).deserialize(name)?;
        Ok(e.index())
    }

    /// Adds instance properties, declared with the same builder a class
    /// uses. Names must be unique across the class and the instance.
    pub fn add_properties(&self, declare: impl FnOnce(&mut ClassBuilder<'_>)) -> Result<()> {
        // `declare` is user code: it runs on a snapshot, without the
        // instance-property lock (it may well read this object's
        // properties), and the result is merged under the lock.
        let mut scratch: IndexMap<Arc<str>, Arc<Property>> = self.0.class.properties.clone();
        scratch.extend(
            sync::read(&self.0.instance_props)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let before = scratch.len();
        let mut data = HashMap::new();
        let mut builder = ClassBuilder {
            name: self.type_name(),
            properties: &mut scratch,
            data: &mut data,
            error: None,
            children: None,
        };
        declare(&mut builder);
        if let Some(e) = builder.error.take() {
            return Err(e);
        }
        let added: Vec<_> = scratch.into_iter().skip(before).collect();
        let mut props = sync::write(&self.0.instance_props);
        // Another thread may have added (or a child been placed under) one
        // of these names since the snapshot.
        if let Some((name, _)) = added.iter().find(|(k, _)| props.contains_key(k)) {
            return Err(Error::DuplicateProperty {
                name: name.to_string(),
                owner_type: self.type_name().to_owned(),
            });
        }
        props.extend(added);
        Ok(())
    }

    /// Removes an instance property (class properties cannot be removed).
    /// Removing a `child<>` property unparents the child.
    pub fn del_property(&self, name: &str) -> Result<()> {
        let prop = self
            .instance_property(name)
            .ok_or_else(|| self.no_property(name))?;
        match &prop.edge {
            Edge::Child(child) => {
                child.unparent();
            }
            _ => {
                // Dropped after the lock: a property's closures may hold
                // user values whose drop runs user code.
                let removed = sync::write(&self.0.instance_props).shift_remove(name);
                drop(removed);
            }
        }
        Ok(())
    }
}
