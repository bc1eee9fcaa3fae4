//! The declarations a [`ClassBuilder`] hands out: one property each,
//! added to the class when the declaration is dropped, so a statement
//! `c.property(..).getter(..).locked();` is the whole declaration.

use super::ClassBuilder;
use crate::error::{Error, LockStyle, Result};
use crate::object::Object;
use crate::property::{Property, PropertyType, TypedGet, TypedSet};
use crate::value::Input;
use serde_json::Value;
use std::marker::PhantomData;
use std::sync::Arc;

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

        /// On a device, keeps the property writable after realize (by
        /// default every writable device property without a lock of its
        /// own refuses changes then, with qdev's wording).
        pub fn settable_after_realize(mut self) -> Self {
            self.prop_mut().after_realize = true;
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

impl<'b, 'a, V: PropertyType> PropertyBuilder<'b, 'a, V> {
    pub(super) fn new(class: &'b mut ClassBuilder<'a>, prop: Property) -> Self {
        PropertyBuilder {
            class,
            prop: Some(prop),
            _v: PhantomData,
        }
    }

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

impl<'b, 'a> RawPropertyBuilder<'b, 'a> {
    pub(super) fn new(class: &'b mut ClassBuilder<'a>, prop: Property) -> Self {
        RawPropertyBuilder {
            class,
            prop: Some(prop),
        }
    }

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
