//! Properties: the record a class or an object holds for each named value,
//! and the typed values they carry.

use crate::composition::Edge;
use crate::error::{LockStyle, Result};
use crate::object::Object;
use crate::value::{Input, Size};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// An erased getter: the value as JSON.
pub type GetFn = Arc<dyn Fn(&Object) -> Result<Value> + Send + Sync>;
/// An erased setter: parses the input with the property's rules and stores it.
pub type SetFn = Arc<dyn Fn(&Object, Input<'_>) -> Result<()> + Send + Sync>;
/// Parses an input without storing it (the "validate" of parse, validate, act).
pub type CheckFn = Arc<dyn Fn(Input<'_>) -> Result<()> + Send + Sync>;

/// What kind of property this is, for the tree and for path resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyKind {
    /// An ordinary value.
    Value,
    /// `child<T>`: part of the composition tree.
    Child,
    /// `link<T>`: a reference to an object of type `target` elsewhere.
    Link {
        /// The declared target type.
        target: String,
    },
}

/// One property: name, QOM type string, description, default, accessors
/// and the lock policy.
#[derive(Clone)]
pub struct Property {
    pub(crate) name: Arc<str>,
    pub(crate) qom_type: String,
    pub(crate) description: Option<String>,
    pub(crate) default: Option<Value>,
    pub(crate) get: Option<GetFn>,
    pub(crate) set: Option<SetFn>,
    pub(crate) check: Option<CheckFn>,
    pub(crate) lock: Option<LockStyle>,
    /// Refuse a locked write before looking at the value (QEMU's raw
    /// visitor properties such as `size`), instead of after parsing it
    /// (QEMU's typed bool/string/enum properties, the default).
    pub(crate) lock_first: bool,
    pub(crate) required: bool,
    /// A device property that stays writable after realize (QEMU's
    /// properties added outside qdev, such as nvdimm's `uuid`).
    pub(crate) after_realize: bool,
    /// Its place in the composition tree: a child it holds, a link it
    /// follows, or neither.
    pub(crate) edge: Edge,
    pub(crate) schema: Value,
    /// The typed getter, as `TypedGet<V>`, for access without JSON.
    pub(crate) typed_get: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// The typed setter, as `TypedSet<V>`, for access without JSON.
    pub(crate) typed_set: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// A property's getter before type erasure.
pub(crate) struct TypedGet<V>(pub(crate) Box<dyn Fn(&Object) -> Result<V> + Send + Sync>);
/// A property's setter before type erasure.
pub(crate) struct TypedSet<V>(pub(crate) Box<dyn Fn(&Object, V) -> Result<()> + Send + Sync>);

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Property")
            .field("name", &self.name)
            .field("type", &self.qom_type)
            .field("description", &self.description)
            .field("default", &self.default)
            .field("readable", &self.get.is_some())
            .field("writable", &self.set.is_some())
            .field("locked", &self.lock)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl Property {
    pub(crate) fn new(name: &str, qom_type: impl Into<String>) -> Self {
        Property {
            name: name.into(),
            qom_type: qom_type.into(),
            description: None,
            default: None,
            get: None,
            set: None,
            check: None,
            lock: None,
            lock_first: false,
            required: false,
            after_realize: false,
            edge: Edge::None,
            schema: json!({}),
            typed_get: None,
            typed_set: None,
        }
    }

    /// The property's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The QOM type string exactly as QEMU prints it (`bool`, `string`, `int`, `child<T>`...).
    pub fn qom_type(&self) -> &str {
        &self.qom_type
    }
    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The default (`default-value` in introspection), if declared.
    pub fn default_value(&self) -> Option<&Value> {
        self.default.as_ref()
    }
    /// Whether the property has a getter.
    pub fn is_readable(&self) -> bool {
        self.get.is_some()
    }
    /// Whether the property has a setter.
    pub fn is_writable(&self) -> bool {
        self.set.is_some()
    }
    /// Whether the property refuses changes once its object is complete.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }
    /// Whether object-add must be given this property.
    pub fn is_required(&self) -> bool {
        self.required
    }
    /// Child, link or plain value.
    pub fn kind(&self) -> &PropertyKind {
        self.edge.kind()
    }
    /// A JSON Schema of the values the setter accepts from JSON.
    pub fn json_schema(&self) -> &Value {
        &self.schema
    }
}

/// A Rust type that can be the value of a property.
///
/// The serde implementations are the visitor layer: `Serialize` produces the
/// JSON a getter reports, `Deserialize` is driven by either the strict JSON
/// or the keyval deserializer, so one typed setter serves both sources.
pub trait PropertyType: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The QOM type string QEMU prints for a property of this type.
    fn qom_type() -> Cow<'static, str>;
    /// A JSON Schema for the values accepted from JSON.
    fn json_schema() -> Value;
}

macro_rules! scalar_property_type {
    ($($t:ty => $name:literal, $schema:expr;)*) => {$(
        impl PropertyType for $t {
            fn qom_type() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn json_schema() -> Value {
                $schema
            }
        }
    )*};
}

scalar_property_type! {
    bool => "bool", json!({"type": "boolean"});
    String => "string", json!({"type": "string"});
    u8 => "uint8", json!({"type": "integer", "minimum": 0, "maximum": u8::MAX});
    u16 => "uint16", json!({"type": "integer", "minimum": 0, "maximum": u16::MAX});
    u32 => "uint32", json!({"type": "integer", "minimum": 0, "maximum": u32::MAX});
    // Negative numbers wrap, as in QEMU's JSON input: the schema says so.
    u64 => "uint64", json!({"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX});
    i8 => "int8", json!({"type": "integer", "minimum": i8::MIN, "maximum": i8::MAX});
    i16 => "int16", json!({"type": "integer", "minimum": i16::MIN, "maximum": i16::MAX});
    i32 => "int32", json!({"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX});
    i64 => "int", json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX});
    f64 => "number", json!({"type": "number"});
    // QEMU declares sizes as "int"; keyval input accepts suffixes (64M).
    // Unlike a uint64, a size from JSON is never negative.
    Size => "int", json!({"type": "integer", "minimum": 0, "maximum": u64::MAX});
}

impl<T: PropertyType> PropertyType for Vec<T> {
    fn qom_type() -> Cow<'static, str> {
        Cow::Owned(format!("{}List", T::qom_type()))
    }
    fn json_schema() -> Value {
        json!({"type": "array", "items": T::json_schema()})
    }
}

/// A QAPI-style enum usable as a property value.
///
/// Implemented by `#[derive(qom::Enum)]` or [`qom_enum!`](crate::qom_enum); the names are the exact,
/// case-sensitive strings accepted on input and printed on output.
pub trait EnumType: PropertyType + Copy {
    /// The enum's QAPI name (for example `OnOffAuto`).
    const NAME: &'static str;
    /// Every accepted name, in declaration order.
    const VALUES: &'static [&'static str];
    /// The name of this value.
    fn as_str(self) -> &'static str;
    /// The position of this value in [`VALUES`](Self::VALUES).
    fn index(self) -> usize;
}

/// Declares a QAPI-style enum: a Rust enum, its QAPI type name and the
/// exact string for each variant. `#[derive(qom::Enum)]` does the same
/// with attributes and is the preferred spelling; both parse with the same
/// serde code, so they accept and refuse the same inputs.
///
/// ```
/// qom::qom_enum! {
///     /// The animals of QEMU's property-list test.
///     pub enum DummyAnimal: "DummyAnimal" {
///         /// A frog.
///         Frog = "frog",
///         /// An alligator.
///         Alligator = "alligator",
///         /// A platypus.
///         Platypus = "platypus",
///     }
/// }
/// use qom::EnumType;
/// assert_eq!(DummyAnimal::Platypus.as_str(), "platypus");
/// assert_eq!(DummyAnimal::VALUES, &["frog", "alligator", "platypus"]);
/// ```
#[macro_export]
macro_rules! qom_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident : $qapi:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, $crate::__serde::Serialize, $crate::__serde::Deserialize)]
        #[serde(crate = "qom::__serde")]
        $vis enum $ty {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $crate::PropertyType for $ty {
            fn qom_type() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed($qapi)
            }
            fn json_schema() -> $crate::__serde_json::Value {
                $crate::__serde_json::json!({"type": "string", "enum": [$($text),+]})
            }
        }

        impl $crate::EnumType for $ty {
            const NAME: &'static str = $qapi;
            const VALUES: &'static [&'static str] = &[$($text),+];
            fn as_str(self) -> &'static str {
                match self { $( $ty::$variant => $text, )+ }
            }
            fn index(self) -> usize {
                Self::VALUES.iter().position(|v| *v == self.as_str()).unwrap_or(0)
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::EnumType::as_str(*self))
            }
        }
    };
}

/// QAPI's `OnOffAuto`: a tri-state switch where `auto` lets the
/// implementation decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, qom_derive::Enum)]
#[qom(name = "OnOffAuto")]
pub enum OnOffAuto {
    /// Decide at creation time.
    #[default]
    Auto,
    /// Required on.
    On,
    /// Required off.
    Off,
}

impl From<bool> for OnOffAuto {
    /// A setting that was decided: `On` or `Off`.
    fn from(on: bool) -> Self {
        if on {
            OnOffAuto::On
        } else {
            OnOffAuto::Off
        }
    }
}

/// Renders a default for help text the way QEMU 10 does: strings bare,
/// booleans as `on`/`off`, everything else as compact JSON.
pub(crate) fn default_for_help(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "on".to_owned(),
        Value::Bool(false) => "off".to_owned(),
        other => other.to_string(),
    }
}
