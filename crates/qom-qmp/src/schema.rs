//! `query-qmp-schema`: the QAPI introspection answer, built at call time.
//!
//! QEMU generates its schema at build time from `.json` files; here each
//! command declares its arguments and return value with the small model
//! below ([`SchemaType`], [`ObjectType`], [`CommandSchema`]), and `object-add`
//! declares a closure that walks the live [`TypeRegistry`], so a type that a
//! plugin registered a moment ago is listed.
//!
//! The answer has QEMU's `SchemaInfo` shape. Commands and events keep their
//! names; every other type gets an opaque number, as QEMU masks them. Types
//! have no names in this model: two structurally equal types are one entry,
//! numbered in the order the generator first meets them (commands sorted by
//! name, then events sorted by name), so the same table and registry always
//! give the same numbers.

use crate::commands::{Commands, RegisterError};
use qom::{PropertyKind, TypeRegistry, TYPE_USER_CREATABLE};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Adds `query-qmp-schema` to `commands`, answering from that same table
/// at each call. The handler holds the table weakly, so the table does not
/// keep itself alive.
pub fn register_query_qmp_schema(commands: &Arc<Commands>) -> Result<(), RegisterError> {
    let table: Weak<Commands> = Arc::downgrade(commands);
    commands.register("query-qmp-schema", move |args| {
        if let Some(k) = args.keys().next() {
            return Err(qom::Error::UnexpectedParameter(k.clone()));
        }
        let table = table
            .upgrade()
            .ok_or_else(|| qom::Error::generic("the command table is gone"))?;
        generate(&table)
    })
}

/// The type of a value, as introspection describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaType {
    /// A string (`str`).
    Str,
    /// An integer (`int`; QEMU's sized integers are all `int` here too).
    Int,
    /// `true` or `false` (`bool`).
    Bool,
    /// Any number (`number`).
    Number,
    /// `null` (`null`).
    Null,
    /// Any JSON value (`any`).
    Any,
    /// One of these strings.
    Enum(Vec<String>),
    /// A list of elements of one type.
    Array(Box<SchemaType>),
    /// A JSON object with declared members (a struct or a union).
    Object(ObjectType),
    /// A value of any one of these types.
    Alternate(Vec<SchemaType>),
}

impl SchemaType {
    /// A list of `element`.
    pub fn array(element: SchemaType) -> Self {
        SchemaType::Array(Box::new(element))
    }

    /// An enum of these values, in order.
    pub fn enumeration<S: AsRef<str>>(values: &[S]) -> Self {
        SchemaType::Enum(values.iter().map(|v| v.as_ref().to_owned()).collect())
    }
}

/// One member of an object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member name.
    pub name: String,
    /// Its type.
    pub ty: SchemaType,
    /// Whether it may be left out (QEMU then writes `"default": null`).
    pub optional: bool,
    /// Feature flags such as `deprecated`.
    pub features: Vec<String>,
}

/// A struct, or a union when `tag` is set: the common `members`, and for
/// each value of the tag member the extra members of that branch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectType {
    /// The members every value has (for a union: the base, including the tag).
    pub members: Vec<Member>,
    /// The member whose value selects a variant.
    pub tag: Option<String>,
    /// For each tag value, the members that branch adds.
    pub variants: Vec<(String, ObjectType)>,
}

impl ObjectType {
    /// An object with no members (the arguments of `quit`, the answer `{}`).
    pub fn empty() -> Self {
        ObjectType::default()
    }

    /// Adds a member that must be present.
    pub fn required(mut self, name: &str, ty: SchemaType) -> Self {
        self.members.push(Member {
            name: name.to_owned(),
            ty,
            optional: false,
            features: Vec::new(),
        });
        self
    }

    /// Adds a member that may be left out.
    pub fn optional(mut self, name: &str, ty: SchemaType) -> Self {
        self.members.push(Member {
            name: name.to_owned(),
            ty,
            optional: true,
            features: Vec::new(),
        });
        self
    }
}

impl From<ObjectType> for SchemaType {
    fn from(o: ObjectType) -> Self {
        SchemaType::Object(o)
    }
}

/// What a command takes and answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSchema {
    /// The `arguments` object; `None` when the command did not declare it,
    /// which is reported as `"arg-type": "any"` rather than as an empty
    /// object that would claim the command takes no arguments.
    pub arguments: Option<ObjectType>,
    /// The `return` value.
    pub returns: SchemaType,
}

impl CommandSchema {
    /// A command with these arguments and this answer.
    pub fn new(arguments: ObjectType, returns: SchemaType) -> Self {
        CommandSchema {
            arguments: Some(arguments),
            returns,
        }
    }

    /// What a command that declared nothing is reported as: any arguments,
    /// any answer.
    pub fn undeclared() -> Self {
        CommandSchema {
            arguments: None,
            returns: SchemaType::Any,
        }
    }
}

/// The builtin types, with the JSON type QEMU reports for each.
const BUILTINS: [(&str, &str); 6] = [
    ("str", "string"),
    ("any", "value"),
    ("bool", "boolean"),
    ("int", "int"),
    ("null", "null"),
    ("number", "number"),
];

/// Assigns the opaque names and collects the type entries.
#[derive(Default)]
struct Generator {
    /// Rendered entry (without its name) → the name it was given.
    names: HashMap<String, String>,
    types: Vec<Value>,
    next: usize,
}

impl Generator {
    fn name_of(&mut self, ty: &SchemaType) -> String {
        let mut entry = match ty {
            SchemaType::Str => return "str".into(),
            SchemaType::Int => return "int".into(),
            SchemaType::Bool => return "bool".into(),
            SchemaType::Number => return "number".into(),
            SchemaType::Null => return "null".into(),
            SchemaType::Any => return "any".into(),
            SchemaType::Array(element) => {
                // QEMU names arrays after their element, unmasked brackets.
                let element = self.name_of(element);
                let name = format!("[{element}]");
                let entry = json!({"name": name, "meta-type": "array", "element-type": element});
                if self.names.insert(name.clone(), name.clone()).is_none() {
                    self.types.push(entry);
                }
                return name;
            }
            SchemaType::Enum(values) => {
                let members: Vec<Value> = values.iter().map(|v| json!({"name": v})).collect();
                json!({"meta-type": "enum", "members": members, "values": values})
            }
            SchemaType::Object(o) => self.object_entry(o),
            SchemaType::Alternate(alts) => {
                let members: Vec<Value> = alts
                    .iter()
                    .map(|t| json!({"type": self.name_of(t)}))
                    .collect();
                json!({"meta-type": "alternate", "members": members})
            }
        };
        let key = entry.to_string();
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let name = self.next.to_string();
        self.next += 1;
        self.names.insert(key, name.clone());
        if let Value::Object(m) = &mut entry {
            m.insert("name".into(), Value::from(name.clone()));
        }
        self.types.push(entry);
        name
    }

    fn object_entry(&mut self, o: &ObjectType) -> Value {
        let members: Vec<Value> = o
            .members
            .iter()
            .map(|m| {
                let mut v = Map::new();
                v.insert("name".into(), Value::from(m.name.clone()));
                v.insert("type".into(), Value::from(self.name_of(&m.ty)));
                if m.optional {
                    // QEMU always writes null here: the key's presence is
                    // what marks the member optional.
                    v.insert("default".into(), Value::Null);
                }
                if !m.features.is_empty() {
                    v.insert("features".into(), json!(m.features));
                }
                Value::Object(v)
            })
            .collect();
        let mut entry = json!({"meta-type": "object", "members": members});
        if let Some(tag) = &o.tag {
            let variants: Vec<Value> = o
                .variants
                .iter()
                .map(|(case, branch)| {
                    json!({"case": case, "type": self.name_of(&SchemaType::Object(branch.clone()))})
                })
                .collect();
            entry["tag"] = Value::from(tag.clone());
            entry["variants"] = Value::Array(variants);
        }
        entry
    }
}

/// The whole `query-qmp-schema` answer for this command table: its
/// commands, its events, the types they use, and the builtins.
///
/// Fails only when a command's schema is computed at call time and that
/// fails (for `object-add`, a type module that cannot be loaded).
pub fn generate(commands: &Commands) -> qom::Result<Value> {
    let mut g = Generator::default();
    let mut out = Vec::new();
    for name in commands.names() {
        let schema = commands.schema(&name)?;
        let arg = match &schema.arguments {
            Some(a) => g.name_of(&SchemaType::Object(a.clone())),
            None => "any".to_owned(),
        };
        let ret = g.name_of(&schema.returns);
        out.push(json!({"name": name, "meta-type": "command", "arg-type": arg, "ret-type": ret}));
    }
    for (name, data) in commands.events() {
        let arg = g.name_of(&SchemaType::Object(data));
        out.push(json!({"name": name, "meta-type": "event", "arg-type": arg}));
    }
    out.append(&mut g.types);
    for (name, json_type) in BUILTINS {
        out.push(json!({"name": name, "meta-type": "builtin", "json-type": json_type}));
    }
    Ok(Value::Array(out))
}

/// The type of a property's value over QMP, from the JSON Schema its
/// setter was declared with: booleans, integers, numbers, strings, enums
/// and arrays of those; links are paths or ids, so strings; anything the
/// schema does not pin down is `any`.
pub fn property_type(p: &qom::Property) -> SchemaType {
    if let PropertyKind::Link { .. } = p.kind() {
        return SchemaType::Str;
    }
    from_json_schema(p.json_schema())
}

fn from_json_schema(s: &Value) -> SchemaType {
    match s.get("type").and_then(Value::as_str) {
        Some("boolean") => SchemaType::Bool,
        Some("integer") => SchemaType::Int,
        Some("number") => SchemaType::Number,
        Some("null") => SchemaType::Null,
        Some("string") => match s.get("enum").and_then(Value::as_array) {
            Some(values) => SchemaType::Enum(
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            ),
            None => SchemaType::Str,
        },
        Some("array") => {
            SchemaType::array(from_json_schema(s.get("items").unwrap_or(&Value::Null)))
        }
        _ => SchemaType::Any,
    }
}

/// The members `object-add` accepts for one type: its writable
/// properties (children are made by the object itself, never given).
pub fn object_members(types: &TypeRegistry, type_name: &str) -> qom::Result<ObjectType> {
    let class = types.class(type_name)?;
    let mut o = ObjectType::empty();
    for p in class.properties() {
        if !p.is_writable() || matches!(p.kind(), PropertyKind::Child) {
            continue;
        }
        o = if p.is_required() {
            o.required(p.name(), property_type(p))
        } else {
            o.optional(p.name(), property_type(p))
        };
    }
    Ok(o)
}

/// `object-add`'s arguments as QEMU describes them: a union with tag
/// `qom-type` (an enum of the creatable types), the `id`, and one branch
/// per concrete user-creatable type registered now (modules loaded first).
pub fn object_add_arguments(types: &TypeRegistry) -> qom::Result<ObjectType> {
    let mut names: Vec<String> = types
        .list_types(Some(TYPE_USER_CREATABLE), false)?
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    let mut variants = Vec::with_capacity(names.len());
    for name in &names {
        variants.push((name.clone(), object_members(types, name)?));
    }
    let mut o = ObjectType::empty()
        .required("qom-type", SchemaType::enumeration(&names))
        .required("id", SchemaType::Str);
    o.tag = Some("qom-type".to_owned());
    o.variants = variants;
    Ok(o)
}

/// The `SchemaInfo` union, the element of `query-qmp-schema`'s answer.
pub fn schema_info_type() -> SchemaType {
    let str_list = || SchemaType::array(SchemaType::Str);
    let meta_types = [
        "builtin",
        "enum",
        "array",
        "object",
        "alternate",
        "command",
        "event",
    ];
    let json_types = [
        "string", "number", "int", "boolean", "null", "object", "array", "value",
    ];
    let enum_member = ObjectType::empty()
        .required("name", SchemaType::Str)
        .optional("features", str_list());
    let mut enum_branch =
        ObjectType::empty().required("members", SchemaType::array(enum_member.into()));
    enum_branch.members.push(Member {
        name: "values".into(),
        ty: str_list(),
        optional: false,
        features: vec!["deprecated".into()],
    });
    let object_member = ObjectType::empty()
        .required("name", SchemaType::Str)
        .required("type", SchemaType::Str)
        .optional("default", SchemaType::Any)
        .optional("features", str_list());
    let variant = ObjectType::empty()
        .required("case", SchemaType::Str)
        .required("type", SchemaType::Str);
    let alternate_member = ObjectType::empty().required("type", SchemaType::Str);
    let branches = vec![
        (
            "builtin",
            ObjectType::empty().required("json-type", SchemaType::enumeration(&json_types)),
        ),
        ("enum", enum_branch),
        (
            "array",
            ObjectType::empty().required("element-type", SchemaType::Str),
        ),
        (
            "object",
            ObjectType::empty()
                .required("members", SchemaType::array(object_member.into()))
                .optional("tag", SchemaType::Str)
                .optional("variants", SchemaType::array(variant.into())),
        ),
        (
            "alternate",
            ObjectType::empty().required("members", SchemaType::array(alternate_member.into())),
        ),
        (
            "command",
            ObjectType::empty()
                .required("arg-type", SchemaType::Str)
                .required("ret-type", SchemaType::Str)
                .optional("allow-oob", SchemaType::Bool),
        ),
        (
            "event",
            ObjectType::empty().required("arg-type", SchemaType::Str),
        ),
    ];
    let mut info = ObjectType::empty()
        .required("name", SchemaType::Str)
        .required("meta-type", SchemaType::enumeration(&meta_types))
        .optional("features", str_list());
    info.tag = Some("meta-type".into());
    info.variants = branches
        .into_iter()
        .map(|(c, b)| (c.to_owned(), b))
        .collect();
    info.into()
}

/// QEMU's `ShutdownCause`, the `reason` of `SHUTDOWN`. We send only
/// `host-qmp-quit` and `host-signal`, but the type is QEMU's whole enum so
/// that clients validating against it see the same one.
pub const SHUTDOWN_CAUSES: [&str; 11] = [
    "none",
    "host-error",
    "host-qmp-quit",
    "host-qmp-system-reset",
    "host-signal",
    "host-ui",
    "guest-shutdown",
    "guest-reset",
    "guest-panic",
    "subsystem-reset",
    "snapshot-load",
];

/// The data of the `SHUTDOWN` event.
pub fn shutdown_event() -> ObjectType {
    ObjectType::empty()
        .required("guest", SchemaType::Bool)
        .required("reason", SchemaType::enumeration(&SHUTDOWN_CAUSES))
}

/// The schemas of the protocol's built-in commands.
pub(crate) fn builtin_schema(name: &str) -> Option<CommandSchema> {
    let empty = || ObjectType::empty();
    Some(match name {
        "qmp_capabilities" => CommandSchema::new(
            empty().optional(
                "enable",
                SchemaType::array(SchemaType::enumeration(&["oob"])),
            ),
            empty().into(),
        ),
        "query-version" => {
            let triple = empty()
                .required("major", SchemaType::Int)
                .required("minor", SchemaType::Int)
                .required("micro", SchemaType::Int);
            CommandSchema::new(
                empty(),
                empty()
                    .required("qemu", triple.into())
                    .required("package", SchemaType::Str)
                    .into(),
            )
        }
        "query-commands" => CommandSchema::new(
            empty(),
            SchemaType::array(empty().required("name", SchemaType::Str).into()),
        ),
        "quit" => CommandSchema::new(empty(), empty().into()),
        "query-qmp-schema" => CommandSchema::new(empty(), SchemaType::array(schema_info_type())),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_structures_share_one_name() {
        let mut g = Generator::default();
        let a = g.name_of(&ObjectType::empty().required("x", SchemaType::Int).into());
        let b = g.name_of(&ObjectType::empty().required("x", SchemaType::Int).into());
        let c = g.name_of(&ObjectType::empty().optional("x", SchemaType::Int).into());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(g.name_of(&SchemaType::array(SchemaType::Int)), "[int]");
        assert_eq!(g.types.len(), 3);
        assert_eq!(g.types[1]["members"][0]["default"], Value::Null);
    }

    #[test]
    fn json_schema_maps_to_qapi_types() {
        let t = from_json_schema(&json!({"type": "array", "items": {"type": "integer"}}));
        assert_eq!(t, SchemaType::array(SchemaType::Int));
        let t = from_json_schema(&json!({"type": "string", "enum": ["on", "off"]}));
        assert_eq!(t, SchemaType::enumeration(&["on", "off"]));
        assert_eq!(from_json_schema(&json!({})), SchemaType::Any);
    }
}
