//! The serde plumbing shared by the strict-JSON and keyval deserializers.
//!
//! Both inputs are trees; they differ only in how a node turns into a
//! scalar and in how they word a refusal. That part lives behind [`Node`]
//! (see `de_json.rs` and `de_keyval.rs`); everything serde needs on top of
//! it is written once here.

use super::number::SIZE_NEWTYPE;
use crate::error::Error;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::Deserialize;
use std::fmt;

/// How a list element is named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// `a.b[0]`, as QEMU's strict visitor writes it.
    Json,
    /// `a.b.0`, as QEMU's keyval visitor writes it.
    Keyval,
}

/// The name of the node being read, for messages.
#[derive(Debug, Clone)]
pub(super) struct Name {
    /// The whole path: `size`, `a.b[0]`, `a.b.0`.
    pub(super) full: String,
    /// The member's own name; `None` for a list element. QEMU names only
    /// this part when it refuses an enum value.
    bare: Option<String>,
    style: Style,
}

impl Name {
    fn root(name: &str, style: Style) -> Name {
        let bare = (!name.is_empty()).then(|| name.to_owned());
        Name {
            full: name.to_owned(),
            bare,
            style,
        }
    }

    fn member(&self, key: &str) -> Name {
        let full = if self.full.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.full)
        };
        Name {
            full,
            bare: Some(key.to_owned()),
            style: self.style,
        }
    }

    fn element(&self, index: usize) -> Name {
        let full = match self.style {
            Style::Json => format!("{}[{index}]", self.full),
            Style::Keyval if self.full.is_empty() => index.to_string(),
            Style::Keyval => format!("{}.{index}", self.full),
        };
        Name {
            full,
            bare: None,
            style: self.style,
        }
    }
}

/// What a node looks like, for `deserialize_any`.
pub(super) enum Shape<'de, N> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(&'de str),
    /// A list; its elements come from `Node::elements`.
    Seq,
    Map(Vec<(&'de str, N)>),
}

/// One node of an input tree, read by the rules of its visitor.
///
/// Each method either yields the value or the error QEMU reports, already
/// naming `name.full`.
pub(super) trait Node<'de>: Copy {
    /// How list elements are named.
    const STYLE: Style;
    /// The node as it is, for untyped targets.
    fn shape(self) -> Shape<'de, Self>;
    fn boolean(self, name: &Name) -> Result<bool, Error>;
    fn int64(self, name: &Name) -> Result<i64, Error>;
    fn uint64(self, name: &Name) -> Result<u64, Error>;
    fn size(self, name: &Name) -> Result<u64, Error>;
    fn number(self, name: &Name) -> Result<f64, Error>;
    fn string(self, name: &Name) -> Result<&'de str, Error>;
    fn null(self, name: &Name) -> Result<(), Error>;
    fn elements(self, name: &Name) -> Result<Vec<Self>, Error>;
    fn members(self, name: &Name) -> Result<Vec<(&'de str, Self)>, Error>;
}

/// Read `node` as a `T`; messages name the node `name`.
pub(super) fn deserialize_node<'de, N: Node<'de>, T: Deserialize<'de>>(
    node: N,
    name: &str,
) -> crate::Result<T> {
    let name = Name::root(name, N::STYLE);
    T::deserialize(TreeDeserializer {
        node,
        name: name.clone(),
    })
    .map_err(|e| e.resolve(&name).into_error())
}

/// The error serde code sees while deserializing.
///
/// Errors raised by serde-generated code (a missing field, an unknown
/// variant) do not know where they happened; they are resolved into a
/// [`crate::Error`] by the node that called the visitor.
#[derive(Debug)]
pub(super) enum DeError {
    /// Complete, naming its parameter.
    Done(Error),
    /// A struct lacks this field.
    Missing(String),
    /// A struct refuses this field.
    Unknown(String),
    /// An enum has no such variant.
    UnknownVariant(String),
    /// A visitor wanted another type (serde's wording of it).
    InvalidType(String),
    /// A visitor refused the value (serde's wording of what it wanted).
    InvalidValue(String),
    /// A tuple needed more elements than this.
    InvalidLength(usize),
    /// Anything else, in the visitor's words.
    Custom(String),
}

impl DeError {
    /// Pin an unplaced error on the node `name`.
    fn resolve(self, name: &Name) -> DeError {
        DeError::Done(match self {
            DeError::Done(e) => e,
            DeError::Missing(field) => Error::MissingParameter(name.member(&field).full),
            DeError::Unknown(field) => Error::UnexpectedParameter(name.member(&field).full),
            DeError::UnknownVariant(value) => Error::ValueNotAccepted {
                name: name.bare.clone().unwrap_or_else(|| "null".to_owned()),
                value,
            },
            DeError::InvalidType(expected) => Error::InvalidParameterType {
                name: name.full.clone(),
                expected,
            },
            DeError::InvalidValue(what) => Error::ParameterExpects {
                name: name.full.clone(),
                what,
            },
            DeError::InvalidLength(len) => Error::MissingParameter(name.element(len).full),
            DeError::Custom(message) => Error::Generic(message),
        })
    }

    fn into_error(self) -> Error {
        match self {
            DeError::Done(e) => e,
            // Only reached if `resolve` was skipped; keep the text at least.
            other => Error::Generic(other.to_string()),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Done(e) => e.fmt(f),
            DeError::Missing(field) => write!(f, "Parameter '{field}' is missing"),
            DeError::Unknown(field) => write!(f, "Parameter '{field}' is unexpected"),
            DeError::UnknownVariant(v) => write!(f, "value '{v}' is not accepted"),
            DeError::InvalidType(e) => write!(f, "invalid type, expected: {e}"),
            DeError::InvalidValue(e) => write!(f, "expected {e}"),
            DeError::InvalidLength(n) => write!(f, "element {n} is missing"),
            DeError::Custom(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Custom(msg.to_string())
    }
    fn invalid_type(_: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::InvalidType(exp.to_string())
    }
    fn invalid_value(_: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::InvalidValue(exp.to_string())
    }
    fn invalid_length(len: usize, _: &dyn de::Expected) -> Self {
        DeError::InvalidLength(len)
    }
    fn unknown_variant(variant: &str, _: &'static [&'static str]) -> Self {
        DeError::UnknownVariant(variant.to_owned())
    }
    fn unknown_field(field: &str, _: &'static [&'static str]) -> Self {
        DeError::Unknown(field.to_owned())
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::Missing(field.to_owned())
    }
}

type DeResult<T> = Result<T, DeError>;

/// A node and its name: the serde `Deserializer` for both input kinds.
struct TreeDeserializer<N> {
    node: N,
    name: Name,
}

impl<'de, N: Node<'de>> TreeDeserializer<N> {
    /// Run an accessor, then the visitor, placing the visitor's errors here.
    fn scalar<T, V: Visitor<'de>>(
        &self,
        read: impl FnOnce(N, &Name) -> Result<T, Error>,
        visit: impl FnOnce(T) -> DeResult<V::Value>,
    ) -> DeResult<V::Value> {
        let value = read(self.node, &self.name).map_err(DeError::Done)?;
        visit(value).map_err(|e| e.resolve(&self.name))
    }

    /// A 64-bit signed value narrowed to `T`; QEMU names the C type it wanted.
    fn signed<T: TryFrom<i64>>(&self, c_type: &str) -> DeResult<T> {
        let wide = self.node.int64(&self.name).map_err(DeError::Done)?;
        T::try_from(wide).map_err(|_| self.expects(c_type))
    }

    /// A 64-bit unsigned value narrowed to `T`.
    fn unsigned<T: TryFrom<u64>>(&self, c_type: &str) -> DeResult<T> {
        let wide = self.node.uint64(&self.name).map_err(DeError::Done)?;
        T::try_from(wide).map_err(|_| self.expects(c_type))
    }

    fn expects(&self, what: &str) -> DeError {
        DeError::Done(Error::ParameterExpects {
            name: self.name.full.clone(),
            what: what.to_owned(),
        })
    }

    fn seq<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let items = self.node.elements(&self.name).map_err(DeError::Done)?;
        let mut access = Elements {
            items: items.into_iter().enumerate(),
            parent: self.name.clone(),
            used: 0,
        };
        let value = visitor
            .visit_seq(&mut access)
            .map_err(|e| e.resolve(&self.name))?;
        if access.items.len() > 0 {
            return Err(DeError::Done(Error::Generic(format!(
                "Only {} list elements expected in {}",
                access.used, self.name.full
            ))));
        }
        Ok(value)
    }
}

impl<'de, N: Node<'de>> Deserializer<'de> for TreeDeserializer<N> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let name = self.name.clone();
        let result = match self.node.shape() {
            Shape::Null => visitor.visit_unit(),
            Shape::Bool(b) => visitor.visit_bool(b),
            Shape::Unsigned(n) => visitor.visit_u64(n),
            Shape::Signed(n) => visitor.visit_i64(n),
            Shape::Float(n) => visitor.visit_f64(n),
            Shape::Str(s) => visitor.visit_borrowed_str(s),
            Shape::Seq => return self.seq(visitor),
            Shape::Map(entries) => visitor.visit_map(Entries::new(entries, name.clone(), false)),
        };
        result.map_err(|e| e.resolve(&name))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::boolean, |v| visitor.visit_bool(v))
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.signed("int8_t")?;
        visitor
            .visit_i8::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.signed("int16_t")?;
        visitor
            .visit_i16::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.signed("int32_t")?;
        visitor
            .visit_i32::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::int64, |v| visitor.visit_i64(v))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::int64, |v| visitor.visit_i128(v.into()))
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.unsigned("uint8_t")?;
        visitor
            .visit_u8::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.unsigned("uint16_t")?;
        visitor
            .visit_u16::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.unsigned("uint32_t")?;
        visitor
            .visit_u32::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::uint64, |v| visitor.visit_u64(v))
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::uint64, |v| visitor.visit_u128(v.into()))
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::number, |v| visitor.visit_f32(v as f32))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::number, |v| visitor.visit_f64(v))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        // A char is a one-character string; serde reports anything longer.
        self.scalar::<_, V>(N::string, |v| visitor.visit_borrowed_str(v))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::string, |v| visitor.visit_borrowed_str(v))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::string, |v| visitor.visit_borrowed_bytes(v.as_bytes()))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        // Absence is handled by the struct (a missing Option field is None);
        // a present value, even JSON null, is read as the inner type.
        let name = self.name.clone();
        visitor.visit_some(self).map_err(|e| e.resolve(&name))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::null, |()| visitor.visit_unit())
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> DeResult<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> DeResult<V::Value> {
        if name == SIZE_NEWTYPE {
            return self.scalar::<_, V>(N::size, |v| visitor.visit_u64(v));
        }
        let node_name = self.name.clone();
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.resolve(&node_name))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> DeResult<V::Value> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> DeResult<V::Value> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let entries = self.node.members(&self.name).map_err(DeError::Done)?;
        visitor
            .visit_map(Entries::new(entries, self.name.clone(), false))
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> DeResult<V::Value> {
        let mut entries = self.node.members(&self.name).map_err(DeError::Done)?;
        // QEMU visits members in declaration order and checks for left-over
        // ones last; known fields first gets the same error to win.
        let rank = |key: &str| {
            fields
                .iter()
                .position(|f| *f == key)
                .unwrap_or(fields.len())
        };
        entries.sort_by_key(|(key, _)| rank(key));
        let mut access = Entries::new(entries, self.name.clone(), true);
        let value = visitor
            .visit_map(&mut access)
            .map_err(|e| e.resolve(&self.name))?;
        match access.unexpected {
            Some(key) => Err(DeError::Done(Error::UnexpectedParameter(
                self.name.member(key).full,
            ))),
            None => Ok(value),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> DeResult<V::Value> {
        self.scalar::<_, V>(N::string, |v| visitor.visit_enum(UnitVariant(v)))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        visitor.visit_unit()
    }
}

/// The members of a map or struct, in the order they are handed out.
struct Entries<'de, N> {
    items: std::vec::IntoIter<(&'de str, N)>,
    pending: Option<(&'de str, N)>,
    parent: Name,
    /// For structs: stop at the first refused field and report it after the
    /// struct had its say about missing ones.
    defer_unknown: bool,
    unexpected: Option<&'de str>,
}

impl<'de, N> Entries<'de, N> {
    fn new(items: Vec<(&'de str, N)>, parent: Name, defer_unknown: bool) -> Self {
        Entries {
            items: items.into_iter(),
            pending: None,
            parent,
            defer_unknown,
            unexpected: None,
        }
    }
}

impl<'de, N: Node<'de>> MapAccess<'de> for Entries<'de, N> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> DeResult<Option<K::Value>> {
        let Some((key, node)) = self.items.next() else {
            return Ok(None);
        };
        match seed.deserialize(BorrowedStrDeserializer::<DeError>::new(key)) {
            Ok(k) => {
                self.pending = Some((key, node));
                Ok(Some(k))
            }
            // Unknown keys come last, so ending here skips no known field.
            Err(DeError::Unknown(_)) if self.defer_unknown => {
                self.unexpected = Some(key);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> DeResult<S::Value> {
        let Some((key, node)) = self.pending.take() else {
            return Err(DeError::Custom(
                "a map value was requested before its key".to_owned(),
            ));
        };
        seed.deserialize(TreeDeserializer {
            node,
            name: self.parent.member(key),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The elements of a list.
struct Elements<N> {
    items: std::iter::Enumerate<std::vec::IntoIter<N>>,
    parent: Name,
    used: usize,
}

impl<'de, N: Node<'de>> SeqAccess<'de> for Elements<N> {
    type Error = DeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> DeResult<Option<S::Value>> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        self.used += 1;
        seed.deserialize(TreeDeserializer {
            node,
            name: self.parent.element(index),
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An enum given by its variant name alone.
struct UnitVariant<'de>(&'de str);

impl<'de> EnumAccess<'de> for UnitVariant<'de> {
    type Error = DeError;
    type Variant = UnitOnly;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> DeResult<(S::Value, UnitOnly)> {
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(self.0))
            .map(|v| (v, UnitOnly))
    }
}

/// Only unit variants can be written as a bare string.
struct UnitOnly;

impl UnitOnly {
    fn refuse() -> DeError {
        DeError::Custom("an enum variant carrying data cannot be given as a string".to_owned())
    }
}

impl<'de> VariantAccess<'de> for UnitOnly {
    type Error = DeError;

    fn unit_variant(self) -> DeResult<()> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _: S) -> DeResult<S::Value> {
        Err(Self::refuse())
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> DeResult<V::Value> {
        Err(Self::refuse())
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> DeResult<V::Value> {
        Err(Self::refuse())
    }
}
