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
        let _ = name;
        unimplemented!()
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
