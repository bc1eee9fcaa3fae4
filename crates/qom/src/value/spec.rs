//! An `-object` / `object_add` argument: type, id and properties.

use super::de_json::from_json;
use super::de_keyval::from_keyval;
use super::de_opts::from_opts_map;
use super::input::{keyval_to_json, opts_to_json, Input};
use super::keyval::{keyval_parse, KeyvalValue};
use super::opts::{is_help, opts_parse, OptsValue};
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
    /// From QemuOpts (the system emulator's `-object`): every occurrence
    /// of each key.
    Opts(IndexMap<String, OptsValue>),
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
            Props::Opts(m) => Box::new(m.iter().map(|(k, v)| (k.as_str(), Input::Opts(v)))),
        }
    }

    /// Look one up.
    pub fn get(&self, key: &str) -> Option<Input<'_>> {
        match self {
            Props::Json(m) => m.get(key).map(Input::Json),
            Props::Keyval(m) => m.get(key).map(Input::Keyval),
            Props::Opts(m) => m.get(key).map(Input::Opts),
        }
    }

    /// How many properties there are.
    pub fn len(&self) -> usize {
        match self {
            Props::Json(m) => m.len(),
            Props::Keyval(m) => m.len(),
            Props::Opts(m) => m.len(),
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
            Props::Opts(m) => Box::new(m.keys().map(String::as_str)),
        }
    }

    /// Take one out, keeping the order of the others.
    fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Props::Json(m) => m.shift_remove(key),
            Props::Keyval(m) => m.shift_remove(key).map(|v| keyval_to_json(&v)),
            Props::Opts(m) => m.shift_remove(key).map(|v| opts_to_json(&v)),
        }
    }

    /// The error for a key no property takes, worded as the source's
    /// parser words it: `Invalid parameter 'KEY'` for QemuOpts,
    /// `Parameter 'KEY' is unexpected` for JSON and keyval.
    pub fn unexpected_key_error(&self, key: &str) -> Error {
        match self {
            Props::Opts(_) => Error::InvalidParameter(key.to_owned()),
            Props::Json(_) | Props::Keyval(_) => Error::UnexpectedParameter(key.to_owned()),
        }
    }

    /// Read all properties at once as the members of a struct (or map),
    /// with the same rules and messages as [`Input::deserialize`];
    /// members are named without a prefix.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        match self {
            Props::Json(m) => from_json(&Value::Object(m.clone()), ""),
            Props::Keyval(m) => from_keyval(&KeyvalValue::Map(m.clone()), ""),
            Props::Opts(m) => from_opts_map(m),
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
    /// `qom-type`: from [`ObjectSpec::parse`] always present unless help
    /// was asked for; from [`ObjectSpec::parse_opts`] possibly absent (see
    /// there).
    pub qom_type: Option<String>,
    /// `id`: from [`ObjectSpec::parse`] always present unless help was
    /// asked for; from [`ObjectSpec::parse_opts`] possibly absent.
    pub id: Option<String>,
    /// Every other key, in the order given.
    pub props: Props,
    /// `help` or `?` was given: print help instead of creating anything.
    /// With a type, help is about that type; without one, list the types.
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

    /// Parse a system-emulator `-object` argument as QEMU's
    /// `object_option_parse` does; also returns the deprecation warnings
    /// to print (see [`ParsedOpts::warnings`](super::ParsedOpts::warnings)).
    ///
    /// Text starting with `{` is JSON, as in [`ObjectSpec::parse`] (a
    /// leading space makes it QemuOpts). Anything else is QemuOpts with the
    /// implied key `qom-type` (see [`opts_parse`]), its properties kept as
    /// [`Props::Opts`].
    ///
    /// Fails only where QEMU fails before printing any warning: an `id`
    /// that is not an identifier ([`Error::InvalidId`], checked first, also
    /// for help) and JSON syntax. A missing `qom-type` or `id` is left as
    /// `None` because QEMU reports it later, in this order:
    /// `qom-type` missing, then help, then an unknown `qom-type`, then `id`
    /// missing; [`ObjectTree::object_add_spec`](crate::ObjectTree::object_add_spec)
    /// and [`ObjectTree::check_spec`](crate::ObjectTree::check_spec) do so.
    /// `help` is set for `help`/`?` as the whole string (no type: list the
    /// types) and for `TYPE,help`/`TYPE,?` (a type was given), but not
    /// when the type is missing.
    pub fn parse_opts(text: &str) -> Result<(ObjectSpec, Vec<String>)> {
        if text.starts_with('{') {
            return Self::parse_json_with(text, false).map(|spec| (spec, Vec::new()));
        }
        let parsed = opts_parse(text, Some("qom-type"));
        if let Some(id) = &parsed.id {
            if !crate::id::is_valid_id(id) {
                return Err(Error::InvalidId);
            }
        }
        let help_key = parsed.wants_help();
        let mut opts = parsed.opts;
        let qom_type = opts.shift_remove("qom-type").map(|v| v.last().to_owned());
        let (qom_type, help) = match qom_type {
            Some(t) if is_help(&t) => (None, true),
            Some(t) => (Some(t), help_key),
            None => (None, false),
        };
        let spec = ObjectSpec {
            qom_type,
            id: parsed.id,
            props: Props::Opts(opts),
            help,
        };
        Ok((spec, parsed.warnings))
    }

    fn parse_json(text: &str) -> Result<ObjectSpec> {
        Self::parse_json_with(text, true)
    }

    /// JSON `-object`; without `id_required` a missing id is left `None`
    /// for the caller to report after the type check, as QAPI orders it.
    fn parse_json_with(text: &str, id_required: bool) -> Result<ObjectSpec> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::JsonSyntax(format!("JSON parse error, {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::JsonSyntax(
                "JSON parse error, expected an object".to_owned(),
            ));
        };
        Self::from_json_map_with(map, id_required)
    }

    /// The spec of QMP `object-add` arguments: `qom-type` (required), `id`
    /// (left `None` when absent, for the caller to report after the type
    /// check, as QAPI orders it) and the properties in the order given.
    pub fn from_json_map(map: serde_json::Map<String, Value>) -> Result<ObjectSpec> {
        Self::from_json_map_with(map, false)
    }

    fn from_json_map_with(
        map: serde_json::Map<String, Value>,
        id_required: bool,
    ) -> Result<ObjectSpec> {
        let mut props = Props::Json(map);
        let qom_type = required_string(&props, "qom-type")?;
        let id = if id_required || props.get("id").is_some() {
            Some(required_string(&props, "id")?)
        } else {
            None
        };
        props.remove("qom-type");
        props.remove("id");
        Ok(ObjectSpec {
            qom_type: Some(qom_type),
            id,
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
