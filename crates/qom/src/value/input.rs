//! A value on its way to a property setter.

use super::de_json::from_json;
use super::de_keyval::from_keyval;
use super::keyval::KeyvalValue;
use crate::error::Result;
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
    ///
    /// JSON input follows QEMU's strict rules, keyval input its string
    /// conversions; see [`from_json`] and [`from_keyval`].
    pub fn deserialize<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        match self {
            Input::Json(v) => from_json(v, name),
            Input::Keyval(v) => from_keyval(v, name),
        }
    }

    /// The value as JSON, for display: keyval leaves become JSON strings,
    /// its maps objects and its lists arrays.
    pub fn to_json(&self) -> Value {
        match self {
            Input::Json(v) => (*v).clone(),
            Input::Keyval(v) => keyval_to_json(v),
        }
    }
}

pub(super) fn keyval_to_json(v: &KeyvalValue) -> Value {
    match v {
        KeyvalValue::String(s) => Value::String(s.clone()),
        KeyvalValue::List(items) => Value::Array(items.iter().map(keyval_to_json).collect()),
        KeyvalValue::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), keyval_to_json(v)))
                .collect(),
        ),
    }
}
