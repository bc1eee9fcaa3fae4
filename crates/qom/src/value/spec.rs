//! An `-object` / `object_add` argument: type, id and properties.

use super::de_json::from_json;
use super::de_keyval::from_keyval;
use super::input::{keyval_to_json, Input};
use super::keyval::{keyval_parse, KeyvalValue};
use crate::error::{Error, Result};
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The properties of an object-add, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Props {
    /// From JSON.
    Json(serde_json::Map<String, Value>),
    /// From keyval.
    Keyval(IndexMap<String, KeyvalValue>),
}

impl Default for Props {
    fn default() -> Self {
        Props::Json(serde_json::Map::new())
    }
}

impl Props {
    /// Iterate in the order given.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&str, Input<'_>)> + '_> {
        match self {
            Props::Json(m) => Box::new(m.iter().map(|(k, v)| (k.as_str(), Input::Json(v)))),
            Props::Keyval(m) => Box::new(m.iter().map(|(k, v)| (k.as_str(), Input::Keyval(v)))),
        }
    }

    /// Look one up.
    pub fn get(&self, key: &str) -> Option<Input<'_>> {
        match self {
            Props::Json(m) => m.get(key).map(Input::Json),
            Props::Keyval(m) => m.get(key).map(Input::Keyval),
        }
    }

    /// How many properties there are.
    pub fn len(&self) -> usize {
        match self {
            Props::Json(m) => m.len(),
            Props::Keyval(m) => m.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The property names, in the order given.
    pub fn keys(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Props::Json(m) => Box::new(m.keys().map(String::as_str)),
            Props::Keyval(m) => Box::new(m.keys().map(String::as_str)),
        }
    }

    /// Take one out, keeping the order of the others.
    fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Props::Json(m) => m.shift_remove(key),
            Props::Keyval(m) => m.shift_remove(key).map(|v| keyval_to_json(&v)),
        }
    }

    /// Read all properties at once as the members of a struct (or map),
    /// with the same rules and messages as [`Input::deserialize`];
    /// members are named without a prefix.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        match self {
            Props::Json(m) => from_json(&Value::Object(m.clone()), ""),
            Props::Keyval(m) => from_keyval(&KeyvalValue::Map(m.clone()), ""),
        }
    }

    /// All properties as one JSON object, for display.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.iter()
                .map(|(k, v)| (k.to_owned(), v.to_json()))
                .collect(),
        )
    }
}

/// A parsed `-object` argument.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectSpec {
    /// `qom-type`: always present unless help was asked for.
    pub qom_type: Option<String>,
    /// `id`: always present unless help was asked for.
    pub id: Option<String>,
    /// Every other key, in the order given.
    pub props: Props,
    /// `help` or `?` was given (keyval only): print help instead of
    /// creating anything. With a type, help is about that type.
    pub help: bool,
}

impl ObjectSpec {
    /// Parse an `-object` argument as QEMU's `user_creatable_parse_str`.
    ///
    /// Text starting with `{` is JSON and must be an object. Anything else
    /// is keyval with the implied key `qom-type`, where `help`, `?` and
    /// `TYPE,help` ask for help. Outside help, `qom-type` and `id` must be
    /// present strings (checked in that order, with QEMU's messages).
    pub fn parse(text: &str) -> Result<ObjectSpec> {
        if text.starts_with('{') {
            Self::parse_json(text)
        } else {
            Self::parse_keyval(text)
        }
    }

    fn parse_json(text: &str) -> Result<ObjectSpec> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::JsonSyntax(format!("JSON parse error, {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::JsonSyntax(
                "JSON parse error, expected an object".to_owned(),
            ));
        };
        let mut props = Props::Json(map);
        let qom_type = required_string(&props, "qom-type")?;
        let id = required_string(&props, "id")?;
        props.remove("qom-type");
        props.remove("id");
        Ok(ObjectSpec {
            qom_type: Some(qom_type),
            id: Some(id),
            props,
            help: false,
        })
    }

    fn parse_keyval(text: &str) -> Result<ObjectSpec> {
        let (map, help) = keyval_parse(text, Some("qom-type"), true)?;
        let mut props = Props::Keyval(map);
        if help {
            // Help is best effort: a type that is not a plain string is
            // ignored and the list of types is shown instead.
            let mut leaf = |key: &str| match props.remove(key) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            let qom_type = leaf("qom-type");
            let id = leaf("id");
            return Ok(ObjectSpec {
                qom_type,
                id,
                props,
                help,
            });
        }
        let qom_type = required_string(&props, "qom-type")?;
        let id = required_string(&props, "id")?;
        props.remove("qom-type");
        props.remove("id");
        Ok(ObjectSpec {
            qom_type: Some(qom_type),
            id: Some(id),
            props,
            help,
        })
    }
}

fn required_string(props: &Props, key: &str) -> Result<String> {
    match props.get(key) {
        Some(input) => input.deserialize(key),
        None => Err(Error::MissingParameter(key.to_owned())),
    }
}

#[cfg(test)]
mod tests;
