#![forbid(unsafe_code)]
//! qom: the QEMU Object Model in Rust.
//!
//! A dynamic type registry (types by name, with parents, interfaces and
//! lazily built classes), objects whose every hierarchy level keeps its own
//! typed Rust state, class properties with QOM type strings, descriptions,
//! defaults and a framework-enforced "locked after complete" policy, an
//! object tree with `/objects`, user-creatable objects, and introspection
//! in QEMU's JSON shapes. Values travel through serde: getters produce
//! JSON, setters take strict JSON (QMP) or keyval strings (`-object`).
//!
//! A type is declared with `#[derive(qom::Object)]` on its state struct
//! and typed hooks ([`ObjectImpl`], [`UserCreatableImpl`]); see
//! `docs/defining-types.md`:
//!
//! ```
//! use qom::{ObjectImpl, ObjectTree, TypeRegistry, UserCreatableImpl};
//! use serde_json::json;
//!
//! #[derive(Default, qom::Object)]
//! #[qom(name = "counter", interfaces(qom::UserCreatable))]
//! struct Counter {
//!     #[property(locked, description = "First value")]
//!     start: u64,
//!     #[property(default = 1)]
//!     step: u64,
//! }
//! impl ObjectImpl for Counter {}
//! impl UserCreatableImpl for Counter {}
//!
//! let types = TypeRegistry::with_builtins();
//! types.register_type::<Counter>()?;
//! let tree = ObjectTree::new(types)?;
//! tree.object_add_str("counter,id=c0,start=0x10")?;            // keyval, as -object takes it
//! assert_eq!(tree.qom_get("/objects/c0", "start")?, json!(16)); // JSON out, as qom-get gives it
//! tree.qom_set("c0", "step", &json!(2))?;                       // strict JSON in, as qom-set takes it
//! let err = tree.qom_set("c0", "start", &json!(1)).unwrap_err();
//! assert_eq!(err.to_string(), "cannot change property 'start' of counter");
//! tree.object_del("c0")?;
//! # Ok::<(), qom::Error>(())
//! ```
//!
//! The registration underneath is also open to types built at run time:
//!
//! ```
//! use qom::{ObjectTree, TypeInfo, TypeRegistry, UserCreatableClass};
//! use serde_json::json;
//!
//! #[derive(Default)]
//! struct Counter { start: u64, step: u64 }
//!
//! let types = TypeRegistry::with_builtins();
//! types.register(
//!     TypeInfo::new("counter").parent("object").interface_impl("user-creatable")
//!         .state::<Counter>()
//!         .class_init(|c| {
//!             c.field("start", |s: &mut Counter| &mut s.start).locked().description("First value");
//!             c.field("step", |s: &mut Counter| &mut s.step).default(1);
//!             Ok(())
//!         }),
//! )?;
//! let tree = ObjectTree::new(types)?;
//! tree.object_add_str("counter,id=c0,start=0x10")?;
//! assert_eq!(tree.qom_get("/objects/c0", "start")?, json!(16));
//! assert_eq!(tree.qom_get("c0", "step")?, json!(1));
//! let err = tree.qom_set("c0", "start", &json!(1)).unwrap_err();
//! assert_eq!(err.to_string(), "cannot change property 'start' of counter");
//! tree.object_del("c0")?;
//! # Ok::<(), qom::Error>(())
//! ```

extern crate self as qom;

mod builtins;
mod class;
mod composition;
pub mod device;
pub mod error;
mod id;
mod introspect;
mod linked;
mod object;
pub mod plugin;
mod property;
mod registry;
mod sync;
mod tree;
mod type_info;
mod typed;
pub mod value;

pub use builtins::{
    CanBeDeletedFn, CompleteFn, UserCreatableClass, TYPE_CONTAINER, TYPE_INTERFACE, TYPE_OBJECT,
    TYPE_USER_CREATABLE,
};
pub use class::{
    Class, ClassBuilder, ClassCheckFn, ClassData, ObjectClass, PropertyBuilder, RawPropertyBuilder,
    UnparentFn,
};
pub use composition::path;
pub use composition::path::Resolved;
pub use composition::{Child, ChildField, Link};
pub use device::{Device, DeviceClass, DeviceImpl, TYPE_DEVICE};
pub use error::{Cause, Error, ErrorClass, LockStyle, Result};
pub use id::is_valid_id;
pub use introspect::{
    ObjectPropertiesValues, ObjectPropertyInfo, ObjectPropertyValue, ObjectTypeInfo,
};
pub use linked::{linked_registrations, LinkedError, LinkedRegistration};
pub use object::{Object, StateGuard, WeakObject};
pub use property::{EnumType, OnOffAuto, Property, PropertyKind, PropertyType};
pub use qom_derive::{Enum, Object};
pub use registry::{ModuleFn, Plugin, TypeRegistry};
pub use tree::{ObjectTree, TOP_CONTAINERS};
pub use type_info::{is_valid_type_name, TypeInfo};
pub use typed::{
    parent_can_be_deleted, parent_complete, parent_unparent, Here, InterfaceInit, InterfaceType,
    IsA, ObjectImpl, ObjectRef, ObjectRoot, ObjectType, StaticType, Subclass, SubclassInit, Up,
    UserCreatable, UserCreatableImpl,
};
pub use value::{Input, KeyvalValue, ObjectSpec, OptsValue, Props, Size};

#[doc(hidden)]
pub use inventory as __inventory;
#[doc(hidden)]
pub use serde as __serde;
#[doc(hidden)]
pub use serde_json as __serde_json;
#[doc(hidden)]
pub use typed::__private;
