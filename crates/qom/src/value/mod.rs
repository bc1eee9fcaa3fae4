//! Values in and out of properties: serde is the visitor layer.
//!
//! STUB: the full implementation (keyval parser, size parser, strict-JSON and
//! keyval deserializers, `-object` spec parsing) replaces this file.

mod keyval;
mod number;

pub use keyval::{keyval_parse, KeyvalValue};
pub use number::{
    format_size_iec, parse_bool, parse_i64, parse_size, parse_u64, NumberError, Size,
};

use crate::error::Result;
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

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
