//! The serde `Deserializer` for a tree node, written once for both input
//! kinds: scalars come from the node's [`Node`] accessors, lists and maps
//! are handed out through `access.rs`.

use super::access::{Elements, Entries, UnitVariant};
use super::error::{DeError, DeResult};
use super::{Name, Node, Run, Shape};
use crate::error::Error;
use crate::value::number::SIZE_NEWTYPE;
use serde::de::{Deserializer, Visitor};
use std::cell::Cell;
use std::rc::Rc;

/// A node and its name: the serde `Deserializer` for both input kinds.
pub(super) struct TreeDeserializer<N> {
    pub(super) node: N,
    pub(super) name: Name,
    /// Set for list elements: the run of integers in progress, if any.
    pub(super) run: Option<Rc<Cell<Run>>>,
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
        let wide = self.int64().map_err(DeError::Done)?;
        T::try_from(wide).map_err(|_| self.expects(c_type))
    }

    /// A 64-bit unsigned value narrowed to `T`.
    fn unsigned<T: TryFrom<u64>>(&self, c_type: &str) -> DeResult<T> {
        let wide = self.uint64().map_err(DeError::Done)?;
        T::try_from(wide).map_err(|_| self.expects(c_type))
    }

    /// The node as an `int64`; a list element may start or continue a run.
    fn int64(&self) -> Result<i64, Error> {
        let Some(run) = &self.run else {
            return self.node.int64(&self.name);
        };
        let (value, last) = match run.get() {
            Run::Signed { next, last } => (next, last),
            _ => self.node.int64_run(&self.name)?,
        };
        run.set(match value.checked_add(1) {
            Some(next) if value < last => Run::Signed { next, last },
            _ => Run::Idle,
        });
        Ok(value)
    }

    /// The node as a `uint64`; a list element may start or continue a run.
    fn uint64(&self) -> Result<u64, Error> {
        let Some(run) = &self.run else {
            return self.node.uint64(&self.name);
        };
        let (value, last) = match run.get() {
            Run::Unsigned { next, last } => (next, last),
            _ => self.node.uint64_run(&self.name)?,
        };
        run.set(match value.checked_add(1) {
            Some(next) if value < last => Run::Unsigned { next, last },
            _ => Run::Idle,
        });
        Ok(value)
    }

    fn expects(&self, what: &str) -> DeError {
        DeError::Done(Error::ParameterExpects {
            name: self.name.full.clone(),
            what: what.to_owned(),
        })
    }

    fn seq<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let items = self.node.elements(&self.name).map_err(DeError::Done)?;
        let mut access = Elements::new(items, self.name.clone());
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
        let result: DeResult<V::Value> = match self.node.shape() {
            Shape::Null => visitor.visit_unit(),
            Shape::Bool(b) => visitor.visit_bool(b),
            Shape::Unsigned(n) => visitor.visit_u64(n),
            Shape::Signed(n) => visitor.visit_i64(n),
            Shape::Float(n) => visitor.visit_f64(n),
            Shape::Str(s) => visitor.visit_borrowed_str(s),
            Shape::Seq => return self.seq(visitor),
            Shape::Map => return self.deserialize_map(visitor),
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
        let v = self.int64().map_err(DeError::Done)?;
        visitor
            .visit_i64::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.int64().map_err(DeError::Done)?;
        visitor
            .visit_i128::<DeError>(v.into())
            .map_err(|e| e.resolve(&self.name))
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
        let v = self.uint64().map_err(DeError::Done)?;
        visitor
            .visit_u64::<DeError>(v)
            .map_err(|e| e.resolve(&self.name))
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> DeResult<V::Value> {
        let v = self.uint64().map_err(DeError::Done)?;
        visitor
            .visit_u128::<DeError>(v.into())
            .map_err(|e| e.resolve(&self.name))
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
            Some(key) => Err(DeError::Done(self.name.unexpected(key))),
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
