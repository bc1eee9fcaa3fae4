//! A value on its way to a property setter.

use super::de_json::from_json;
use super::de_keyval::from_keyval;
use super::de_opts::from_opts;
use super::keyval::KeyvalValue;
use super::opts::OptsValue;
use crate::error::Result;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A value arriving at a property setter.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Strict JSON (QMP, JSON `-object`).
    Json(&'a Value),
    /// A keyval tree (HMP `object_add`, the tools' `--object`).
    Keyval(&'a KeyvalValue),
    /// Every occurrence of one QemuOpts key (the system emulator's
    /// `-object key=value`).
    Opts(&'a OptsValue),
}

impl Input<'_> {
    /// Deserialize a typed value; errors name the parameter `name`.
    ///
    /// JSON input follows QEMU's strict rules, keyval and QemuOpts input
    /// their string conversions; see [`from_json`], [`from_keyval`] and
    /// [`from_opts`](super::from_opts).
    pub fn deserialize<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        match self {
            Input::Json(v) => from_json(v, name),
            Input::Keyval(v) => from_keyval(v, name),
            Input::Opts(v) => from_opts(v, name),
        }
    }

    /// The value as JSON, for display: keyval leaves become JSON strings,
    /// its maps objects and its lists arrays; a QemuOpts key given once is
    /// a string, one given several times an array of strings.
    pub fn to_json(&self) -> Value {
        match self {
            Input::Json(v) => (*v).clone(),
            Input::Keyval(v) => keyval_to_json(v),
            Input::Opts(v) => opts_to_json(v),
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

pub(super) fn opts_to_json(v: &OptsValue) -> Value {
    match v.values() {
        [one] => Value::String(one.clone()),
        all => Value::Array(all.iter().cloned().map(Value::String).collect()),
    }
}
