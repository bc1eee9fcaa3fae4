//! Strict JSON input: QEMU's QObject input visitor.
//!
//! Every value must already have the JSON type the target wants: `true`
//! for a boolean, a number for an integer, a string for an enum. The one
//! leniency QEMU keeps is that unsigned integers accept negative numbers
//! and wrap them. Sizes do not: QEMU's size visitor takes only numbers that
//! fit a `uint64` as they are, and answers with the `uint64` message.

use super::de_tree::{deserialize_node, Name, Node, Shape, Style};
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;

/// Deserialize a `T` from strict JSON; messages name the value `name`
/// (members as `name.member`, list elements as `name[0]`).
pub fn from_json<'de, T: Deserialize<'de>>(value: &'de Value, name: &str) -> Result<T> {
    deserialize_node(value, name)
}

impl<'de> Node<'de> for &'de Value {
    const STYLE: Style = Style::Json;

    fn shape(self) -> Shape<'de> {
        match self {
            Value::Null => Shape::Null,
            Value::Bool(b) => Shape::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Shape::Unsigned(u),
                (None, Some(i)) => Shape::Signed(i),
                (None, None) => Shape::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Shape::Str(s),
            Value::Array(_) => Shape::Seq,
            Value::Object(_) => Shape::Map,
        }
    }

    fn boolean(self, name: &Name) -> Result<bool> {
        self.as_bool().ok_or_else(|| name.wrong_type("boolean"))
    }

    fn int64(self, name: &Name) -> Result<i64> {
        self.as_i64().ok_or_else(|| name.wrong_type("integer"))
    }

    fn uint64(self, name: &Name) -> Result<u64> {
        // Negative integers wrap: QEMU keeps this for backward compatibility.
        self.as_u64()
            .or_else(|| self.as_i64().map(|i| i as u64))
            .ok_or_else(|| Error::ParameterExpects {
                name: name.full.clone(),
                what: "uint64".to_owned(),
            })
    }

    fn size(self, name: &Name) -> Result<u64> {
        self.as_u64().ok_or_else(|| Error::ParameterExpects {
            name: name.full.clone(),
            what: "uint64".to_owned(),
        })
    }

    fn number(self, name: &Name) -> Result<f64> {
        self.as_f64().ok_or_else(|| name.wrong_type("number"))
    }

    fn string(self, name: &Name) -> Result<&'de str> {
        self.as_str().ok_or_else(|| name.wrong_type("string"))
    }

    fn null(self, name: &Name) -> Result<()> {
        self.as_null().ok_or_else(|| name.wrong_type("null"))
    }

    fn elements(self, name: &Name) -> Result<Vec<Self>> {
        match self {
            Value::Array(items) => Ok(items.iter().collect()),
            _ => Err(name.wrong_type("array")),
        }
    }

    fn members(self, name: &Name) -> Result<Vec<(&'de str, Self)>> {
        match self {
            Value::Object(members) => Ok(members.iter().map(|(k, v)| (k.as_str(), v)).collect()),
            _ => Err(name.wrong_type("object")),
        }
    }
}

#[cfg(test)]
mod tests;
