//! Keyval input: QEMU's keyval flavour of the QObject input visitor.
//!
//! Every leaf is a string, converted on demand to the type the target
//! wants: `on`/`off` booleans, base-0 integers, sizes with suffixes.
//! Untyped targets (`serde_json::Value`) get the raw string tree.

use super::de_tree::{deserialize_node, Name, Node, Shape, Style};
use super::keyval::KeyvalValue;
use super::number::{parse_bool, parse_f64, parse_i64, parse_size, parse_u64};
use crate::error::{Error, Result};
use serde::Deserialize;

/// Deserialize a `T` from a keyval tree; messages name the value `name`
/// (members as `name.member`, list elements as `name.0`).
pub fn from_keyval<'de, T: Deserialize<'de>>(value: &'de KeyvalValue, name: &str) -> Result<T> {
    deserialize_node(value, name)
}

/// The leaf string, or QEMU's complaint about members where a scalar goes.
fn leaf<'de>(node: &'de KeyvalValue, name: &Name) -> Result<&'de str> {
    match node {
        KeyvalValue::String(s) => Ok(s),
        KeyvalValue::Map(_) | KeyvalValue::List(_) => {
            Err(Error::UnexpectedMembers(name.full.clone()))
        }
    }
}

impl<'de> Node<'de> for &'de KeyvalValue {
    const STYLE: Style = Style::Keyval;

    fn shape(self) -> Shape<'de> {
        match self {
            KeyvalValue::String(s) => Shape::Str(s),
            KeyvalValue::List(_) => Shape::Seq,
            KeyvalValue::Map(_) => Shape::Map,
        }
    }

    fn boolean(self, name: &Name) -> Result<bool> {
        parse_bool(leaf(self, name)?).ok_or_else(|| name.expects("'on' or 'off'"))
    }

    fn int64(self, name: &Name) -> Result<i64> {
        parse_i64(leaf(self, name)?).map_err(|_| name.expects("integer"))
    }

    fn uint64(self, name: &Name) -> Result<u64> {
        parse_u64(leaf(self, name)?).map_err(|_| name.expects("integer"))
    }

    fn size(self, name: &Name) -> Result<u64> {
        parse_size(leaf(self, name)?).map_err(|_| name.expects("size"))
    }

    fn number(self, name: &Name) -> Result<f64> {
        parse_f64(leaf(self, name)?).map_err(|_| name.wrong_type("number"))
    }

    fn string(self, name: &Name) -> Result<&'de str> {
        leaf(self, name)
    }

    fn null(self, name: &Name) -> Result<()> {
        // Keyval cannot spell null.
        Err(name.wrong_type("null"))
    }

    fn elements(self, name: &Name) -> Result<Vec<Self>> {
        match self {
            KeyvalValue::List(items) => Ok(items.iter().collect()),
            _ => Err(name.wrong_type("array")),
        }
    }

    fn members(self, name: &Name) -> Result<Vec<(&'de str, Self)>> {
        match self {
            KeyvalValue::Map(members) => Ok(members.iter().map(|(k, v)| (k.as_str(), v)).collect()),
            _ => Err(name.wrong_type("object")),
        }
    }
}

#[cfg(test)]
mod tests;
