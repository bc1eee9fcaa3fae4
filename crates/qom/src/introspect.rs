//! Introspection in QEMU's JSON shapes: `qom-list-types`,
//! `qom-list-properties`, `qom-list`, `qom-get`, `qom-set`, `qom-list-get`,
//! and the text of `-object help` / `-object TYPE,help`.

use crate::builtins::TYPE_USER_CREATABLE;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::property::{default_for_help, Property};
use crate::registry::TypeRegistry;
use crate::tree::ObjectTree;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// `ObjectTypeInfo`: one entry of `qom-list-types`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectTypeInfo {
    /// The type name.
    pub name: String,
    /// Present (and true) only for abstract types.
    #[serde(
        rename = "abstract",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub is_abstract: bool,
    /// Absent only for the roots `object` and `interface`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// `ObjectPropertyInfo`: one entry of `qom-list` / `qom-list-properties`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectPropertyInfo {
    /// The property name.
    pub name: String,
    /// The QOM type string.
    #[serde(rename = "type")]
    pub qom_type: String,
    /// Only from `qom-list-properties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only from `qom-list-properties`, when the property declares one.
    #[serde(
        rename = "default-value",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<Value>,
}

/// `ObjectPropertyValue`: one entry of `qom-list-get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectPropertyValue {
    /// The property name.
    pub name: String,
    /// The QOM type string.
    #[serde(rename = "type")]
    pub qom_type: String,
    /// Omitted when the property cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// `ObjectPropertiesValues`: one element of `qom-list-get`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectPropertiesValues {
    /// The properties of one path.
    pub properties: Vec<ObjectPropertyValue>,
}

fn full_info(p: &Property) -> ObjectPropertyInfo {
    ObjectPropertyInfo {
        name: p.name().to_owned(),
        qom_type: p.qom_type().to_owned(),
        description: p.description().map(str::to_owned),
        default_value: p.default_value().cloned(),
    }
}

impl TypeRegistry {
    /// `qom-list-types`: all types (modules loaded first), or those that
    /// cast to `implements`; abstract ones only when asked. An unknown
    /// `implements` gives an empty list.
    pub fn list_types(
        &self,
        implements: Option<&str>,
        include_abstract: bool,
    ) -> Result<Vec<ObjectTypeInfo>> {
        self.load_all_modules()?;
        Ok(self
            .classes(implements, include_abstract)?
            .iter()
            .map(|c| ObjectTypeInfo {
                name: c.name().to_owned(),
                is_abstract: c.is_abstract(),
                parent: c.parent().map(|p| p.name().to_owned()),
            })
            .collect())
    }

    /// `qom-list-properties`: the class properties of an abstract type, or
    /// the properties of a temporary instance of a concrete one.
    pub fn list_properties(&self, type_name: &str) -> Result<Vec<ObjectPropertyInfo>> {
        let class = self
            .find_class(type_name)?
            .ok_or_else(|| Error::ClassNotFound(type_name.to_owned()))?;
        if !class.is_a("object") {
            return Err(Error::NotAQomType);
        }
        if class.is_abstract() {
            return Ok(class.properties().map(|p| full_info(p)).collect());
        }
        let obj = Object::instantiate(class, None)?;
        Ok(obj.properties().iter().map(|p| full_info(p)).collect())
    }

    /// The text of `-object help`: the concrete user-creatable types,
    /// sorted case-insensitively.
    pub fn object_help(&self) -> Result<String> {
        let mut names: Vec<String> = self
            .list_types(Some(TYPE_USER_CREATABLE), false)?
            .into_iter()
            .map(|t| t.name)
            .collect();
        names.sort_by_key(|n| n.to_ascii_lowercase());
        let mut s = String::from("List of user creatable objects:\n");
        for n in names {
            s.push_str("  ");
            s.push_str(&n);
            s.push('\n');
        }
        Ok(s)
    }

    /// The text of `-object TYPE,help`: the settable class properties,
    /// sorted by name; the type list for an unknown type, as QEMU does.
    pub fn type_help(&self, type_name: &str) -> Result<String> {
        let Some(class) = self.find_class(type_name)? else {
            return self.object_help();
        };
        let props: Vec<&Arc<Property>> = class.properties().filter(|p| p.is_writable()).collect();
        if props.is_empty() {
            return Ok(format!("There are no options for {type_name}.\n"));
        }
        // QEMU sorts the finished lines, so `prealloc-context=` comes
        // before `prealloc=` ('-' sorts before '=').
        let mut lines: Vec<String> = props
            .iter()
            .map(|p| {
                let mut line = format!("  {}=<{}>", p.name(), p.qom_type());
                if p.description().is_some() || p.default_value().is_some() {
                    while line.len() < 24 {
                        line.push(' ');
                    }
                    line.push_str(" - ");
                }
                if let Some(d) = p.description() {
                    line.push_str(d);
                }
                if let Some(v) = p.default_value() {
                    line.push_str(&format!(" (default: {})", default_for_help(v)));
                }
                line
            })
            .collect();
        lines.sort();
        let mut s = format!("{type_name} options:\n");
        for line in lines {
            s.push_str(&line);
            s.push('\n');
        }
        Ok(s)
    }
}

impl ObjectTree {
    /// `qom-list`: name and type of every property of the object at `path`.
    pub fn qom_list(&self, path: &str) -> Result<Vec<ObjectPropertyInfo>> {
        let obj = self.resolve_strict(path)?;
        Ok(obj
            .properties()
            .iter()
            .map(|p| ObjectPropertyInfo {
                name: p.name().to_owned(),
                qom_type: p.qom_type().to_owned(),
                description: None,
                default_value: None,
            })
            .collect())
    }

    /// `qom-get`.
    pub fn qom_get(&self, path: &str, property: &str) -> Result<Value> {
        self.resolve_lenient(path)?.get(property)
    }

    /// `qom-set` (strict JSON input).
    pub fn qom_set(&self, path: &str, property: &str, value: &Value) -> Result<()> {
        self.resolve_lenient(path)?.set_json(property, value)
    }

    /// `qom-list-get`: every readable property of each path, in input
    /// order; a value is omitted where its getter fails.
    pub fn qom_list_get(&self, paths: &[String]) -> Result<Vec<ObjectPropertiesValues>> {
        let objs = paths
            .iter()
            .map(|p| self.resolve_strict(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(objs
            .iter()
            .map(|obj| ObjectPropertiesValues {
                properties: obj
                    .properties()
                    .iter()
                    .map(|p| ObjectPropertyValue {
                        name: p.name().to_owned(),
                        qom_type: p.qom_type().to_owned(),
                        value: obj.get(p.name()).ok(),
                    })
                    .collect(),
            })
            .collect())
    }
}
