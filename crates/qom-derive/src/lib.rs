//! Derive macros for [qom](https://docs.rs/qom): declare a QOM type from the
//! struct that holds its state, and a QAPI-style enum from a Rust enum.
//! Use them through the re-exports `qom::Object` and `qom::Enum`.
//!
//! ```
//! use qom::{ObjectRef, ObjectTree, TypeRegistry};
//! use serde_json::json;
//!
//! /// How the generator starts.
//! #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, qom::Enum)]
//! #[qom(name = "RngMode")]
//! enum RngMode {
//!     #[default]
//!     Fast,
//!     #[qom(rename = "crypto")]
//!     Secure,
//! }
//!
//! #[derive(Default, qom::Object)]
//! #[qom(name = "rng-demo", parent = qom::ObjectRoot, interfaces(qom::UserCreatable))]
//! struct Rng {
//!     #[property(locked, description = "The first value")]
//!     seed: u64,
//!     #[property(default = 1)]
//!     step: u64,
//!     #[property(locked, default = RngMode::Fast)]
//!     mode: RngMode,
//!     /// Plain state: no attribute, no property.
//!     started: bool,
//! }
//!
//! impl qom::ObjectImpl for Rng {}
//!
//! impl qom::UserCreatableImpl for Rng {
//!     fn complete(obj: &mut ObjectRef<'_, Self>) -> qom::Result<()> {
//!         obj.state().started = true;
//!         Ok(())
//!     }
//! }
//!
//! let types = TypeRegistry::with_builtins();
//! types.register_type::<Rng>()?;
//! let tree = ObjectTree::new(types)?;
//! tree.object_add_str("rng-demo,id=r0,seed=7,mode=crypto")?;
//! assert_eq!(tree.qom_get("r0", "step")?, json!(1));
//! assert_eq!(tree.qom_get("r0", "mode")?, json!("crypto"));
//! let err = tree.qom_set("r0", "seed", &json!(8)).unwrap_err();
//! assert_eq!(err.to_string(), "cannot change property 'seed' of rng-demo");
//! # Ok::<(), qom::Error>(())
//! ```
//!
//! # `#[derive(qom::Object)]`
//!
//! On a struct with named fields that implements `Default`. The container
//! attribute `#[qom(...)]` takes:
//!
//! | key | meaning |
//! |---|---|
//! | `name = "type-name"` | the QOM type name (required; QEMU's naming rules are checked here) |
//! | `parent = Path` | the parent as a Rust type (`qom::StaticType`); default `qom::ObjectRoot` |
//! | `parent_name = "name"` | the parent by name, for types only known at run time |
//! | `interfaces(Path, "name", ...)` | implemented interfaces: Rust types (`qom::InterfaceType`, whose `...Impl` trait must then be implemented) or names |
//! | `abstract` | the type cannot be instantiated |
//! | `class_init = path` | a `fn(&mut ClassBuilder) -> qom::Result<()>` run after the generated declarations |
//! | `manual_subclass_init` | the type implements `qom::SubclassInit<T>` itself (it has virtual methods) |
//! | `property(name = "...", ty = Type, get = path, set = path, ...)` | a property without a field, declared after the field properties |
//!
//! Field attributes `#[property]` / `#[property(...)]` make a field a
//! property; fields without one are plain state:
//!
//! | key | meaning |
//! |---|---|
//! | `rename = "name"` | the property name (default: the field name with `_` as `-`) |
//! | `ty = Type` | the value type, when `get`/`set` convert (default: the field's type) |
//! | `description = "..."` | shown by introspection (any `&str` expression, a constant for example) |
//! | `default = expr` | applied through the setter at creation, reported as `default-value` |
//! | `locked` / `locked = LockStyle::...` | refuses changes once the object is complete |
//! | `lock_checked_first` | a locked write fails before its value is parsed |
//! | `read_only` / `write_only` | only a getter / only a setter |
//! | `qom_type = "int"` | overrides the QOM type string |
//! | `required` | object-add fails without it |
//! | `get = path` | `fn(&mut ObjectRef<Self>) -> qom::Result<V>` instead of reading the field |
//! | `set = path` | `fn(&mut ObjectRef<Self>, V) -> qom::Result<()>` instead of storing into the field |
//! | `link = "type"` / `link = Path` | a `link<type>` property on a `qom::Link` field |
//! | `child` | a `child<T>` property on a `qom::Child<T>` field: every instance gets a new `T` at creation, before its `instance_init` |
//!
//! Every derived type also needs `impl qom::ObjectImpl for T {}` (its
//! hooks), and `impl qom::UserCreatableImpl for T {}` when it lists
//! `qom::UserCreatable`. A subclass that overrides the methods of an
//! interface it inherits lists that interface again; hooks it does not
//! override run the parent's.
//!
//! # `#[derive(qom::Enum)]`
//!
//! On a fieldless enum that is `Copy`: `#[qom(name = "QapiName")]` (default:
//! the Rust name) and `#[qom(rename = "value")]` on variants (default: the
//! variant name in kebab case, `OnOff` as `on-off`).

// The guide's examples are doctests of this crate, so they keep compiling.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/defining-types.md")]
struct DefiningTypesGuide;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod attrs;
mod enum_type;
mod object;

/// Declares a QOM type from its state struct; see the crate documentation.
#[proc_macro_derive(Object, attributes(qom, property))]
pub fn derive_object(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    object::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a QAPI-style enum property type; see the crate documentation.
#[proc_macro_derive(Enum, attributes(qom))]
pub fn derive_enum(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    enum_type::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
