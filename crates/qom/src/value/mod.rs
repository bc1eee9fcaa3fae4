//! Values in and out of properties: serde is the visitor layer.
//!
//! STUB: the full implementation (keyval parser, size parser, strict-JSON and
//! keyval deserializers, `-object` spec parsing) replaces this file.

use crate::error::Result;
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A keyval value: strings at the leaves, maps and lists above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyvalValue {
    /// A leaf.
    String(String),
    /// `a.b=...`
    Map(IndexMap<String, KeyvalValue>),
    /// `a.0=...,a.1=...`
    List(Vec<KeyvalValue>),
}

/// A value arriving at a property setter.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Strict JSON (QMP, JSON `-object`).
    Json(&'a Value),
    /// A keyval tree (`-object key=value`, HMP).
    Keyval(&'a KeyvalValue),
}

impl Input<'_> {
    /// Deserialize a typed value; errors name the parameter `name`.
    pub fn deserialize<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        match self {
            Input::Json(v) => serde_json::from_value((*v).clone())
                .map_err(|e| crate::Error::generic(format!("{name}: {e}"))),
            Input::Keyval(KeyvalValue::String(s)) => {
                serde_json::from_value(Value::String(s.clone()))
                    .or_else(|_| serde_json::from_str(s))
                    .map_err(|e| crate::Error::generic(format!("{name}: {e}")))
            }
            Input::Keyval(_) => Err(crate::Error::generic("stub")),
        }
    }
}

/// A byte count that keyval and string input parse with size suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

/// The properties of an object-add, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Props {
    /// From JSON.
    Json(serde_json::Map<String, Value>),
    /// From keyval.
    Keyval(IndexMap<String, KeyvalValue>),
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
}

/// A parsed `-object` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    /// `qom-type`, if given.
    pub qom_type: Option<String>,
    /// `id`, if given.
    pub id: Option<String>,
    /// The other properties, in the order given.
    pub props: Props,
    /// Whether help was asked for.
    pub help: bool,
}

impl ObjectSpec {
    /// Parses keyval or JSON.
    pub fn parse(s: &str) -> Result<ObjectSpec> {
        let mut props = IndexMap::new();
        let mut qom_type = None;
        let mut id = None;
        for (i, part) in s.split(',').enumerate() {
            match part.split_once('=') {
                None if i == 0 => qom_type = Some(part.to_owned()),
                None => return Err(crate::Error::generic("stub")),
                Some(("id", v)) => id = Some(v.to_owned()),
                Some((k, v)) => {
                    props.insert(k.to_owned(), KeyvalValue::String(v.to_owned()));
                }
            }
        }
        Ok(ObjectSpec {
            qom_type,
            id,
            props: Props::Keyval(props),
            help: false,
        })
    }
}

impl serde::Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        u64::deserialize(d).map(Size)
    }
}
