//! serde's access traits over a tree: map members, list elements, and
//! enums written as their variant name.

use super::deserializer::TreeDeserializer;
use super::error::{DeError, DeResult};
use super::{Name, Node, Run};
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::cell::Cell;
use std::rc::Rc;

/// The members of a map or struct, in the order they are handed out.
pub(super) struct Entries<'de, N> {
    items: std::vec::IntoIter<(&'de str, N)>,
    pending: Option<(&'de str, N)>,
    parent: Name,
    /// For structs: stop at the first refused field and report it after the
    /// struct had its say about missing ones.
    defer_unknown: bool,
    pub(super) unexpected: Option<&'de str>,
}

impl<'de, N> Entries<'de, N> {
    pub(super) fn new(items: Vec<(&'de str, N)>, parent: Name, defer_unknown: bool) -> Self {
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
            run: None,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The elements of a list.
///
/// An element may stand for a run of integers (QemuOpts `0-3`); while a
/// run lasts, the same element is read again and yields the run's next
/// value.
pub(super) struct Elements<N> {
    pub(super) items: std::iter::Enumerate<std::vec::IntoIter<N>>,
    pub(super) parent: Name,
    pub(super) used: usize,
    /// The element read last, reused while its run lasts.
    pub(super) current: Option<(usize, N)>,
    pub(super) run: Rc<Cell<Run>>,
}

impl<N> Elements<N> {
    pub(super) fn new(items: Vec<N>, parent: Name) -> Self {
        Elements {
            items: items.into_iter().enumerate(),
            parent,
            used: 0,
            current: None,
            run: Rc::default(),
        }
    }
}

impl<'de, N: Node<'de>> SeqAccess<'de> for Elements<N> {
    type Error = DeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> DeResult<Option<S::Value>> {
        let before = self.run.get();
        let (index, node) = match self.current {
            Some(current) if before != Run::Idle => current,
            _ => {
                let Some(next) = self.items.next() else {
                    return Ok(None);
                };
                self.run.set(Run::Idle);
                self.current = Some(next);
                next
            }
        };
        self.used += 1;
        let value = seed.deserialize(TreeDeserializer {
            node,
            name: self.parent.element(index),
            run: Some(self.run.clone()),
        });
        // A target that is no integer does not consume the run: drop it so
        // the list moves on.
        if before != Run::Idle && self.run.get() == before {
            self.run.set(Run::Idle);
        }
        value.map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An enum given by its variant name alone.
pub(super) struct UnitVariant<'de>(pub(super) &'de str);

impl<'de> EnumAccess<'de> for UnitVariant<'de> {
    type Error = DeError;
    type Variant = UnitOnly;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> DeResult<(S::Value, UnitOnly)> {
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(self.0))
            .map(|v| (v, UnitOnly))
    }
}

/// Only unit variants can be written as a bare string.
pub(super) struct UnitOnly;

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
