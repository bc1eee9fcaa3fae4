//! The QOM commands: `qom-list-types`, `qom-list-properties`, `qom-list`,
//! `qom-get`, `qom-set`, `qom-list-get`, `object-add` and `object-del`,
//! answering from one [`ObjectTree`].

use crate::commands::{Commands, RegisterError};
use crate::schema::{self, CommandSchema, ObjectType, SchemaType};
use qom::{ObjectTree, Props};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Decodes a command's arguments with QAPI's rules and messages
/// (`Parameter 'path' is missing`, `Parameter 'x' is unexpected`,
/// `Invalid parameter type for 'path', expected: string`).
pub fn decode<T: DeserializeOwned>(args: &Map<String, Value>) -> qom::Result<T> {
    Props::Json(args.clone()).deserialize()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    path: String,
    property: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetArgs {
    path: String,
    property: String,
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListGetArgs {
    paths: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListTypesArgs {
    implements: Option<String>,
    #[serde(rename = "abstract")]
    include_abstract: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypenameArgs {
    typename: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: String,
}

fn to_json<T: serde::Serialize>(v: T) -> qom::Result<Value> {
    serde_json::to_value(v).map_err(|e| qom::Error::generic(e.to_string()))
}

/// Adds the QOM commands, all answering from `tree`.
pub fn register_qom_commands(
    commands: &Commands,
    tree: Arc<ObjectTree>,
) -> Result<(), RegisterError> {
    let t = tree.clone();
    commands.register("qom-list-types", move |args| {
        let a: ListTypesArgs = decode(args)?;
        to_json(
            t.types()
                .list_types(a.implements.as_deref(), a.include_abstract.unwrap_or(false))?,
        )
    })?;
    let t = tree.clone();
    commands.register("qom-list-properties", move |args| {
        let a: TypenameArgs = decode(args)?;
        to_json(t.types().list_properties(&a.typename)?)
    })?;
    let t = tree.clone();
    commands.register("qom-list", move |args| {
        let a: PathArgs = decode(args)?;
        to_json(t.qom_list(&a.path)?)
    })?;
    let t = tree.clone();
    commands.register("qom-get", move |args| {
        let a: GetArgs = decode(args)?;
        t.qom_get(&a.path, &a.property)
    })?;
    let t = tree.clone();
    commands.register("qom-set", move |args| {
        let a: SetArgs = decode(args)?;
        t.qom_set(&a.path, &a.property, &a.value)?;
        Ok(Value::Object(Map::new()))
    })?;
    let t = tree.clone();
    commands.register("qom-list-get", move |args| {
        let a: ListGetArgs = decode(args)?;
        to_json(t.qom_list_get(&a.paths)?)
    })?;
    let t = tree.clone();
    commands.register("object-add", move |args| {
        t.object_add_args(args)?;
        Ok(Value::Object(Map::new()))
    })?;
    let t = tree.clone();
    commands.register("object-del", move |args| {
        let a: IdArgs = decode(args)?;
        t.object_del(&a.id)?;
        Ok(Value::Object(Map::new()))
    })?;
    describe_qom_commands(commands, tree)
}

/// The `query-qmp-schema` declarations of the QOM commands, as QEMU's
/// `qapi/qom.json` has them; `object-add`'s is computed from the registry
/// at each call.
fn describe_qom_commands(commands: &Commands, tree: Arc<ObjectTree>) -> Result<(), RegisterError> {
    use SchemaType::{Any, Bool, Str};
    let empty = ObjectType::empty;
    let type_info = empty()
        .required("name", Str)
        .optional("abstract", Bool)
        .optional("parent", Str);
    let property_info = empty()
        .required("name", Str)
        .required("type", Str)
        .optional("description", Str)
        .optional("default-value", Any);
    let property_value = empty()
        .required("name", Str)
        .required("type", Str)
        .optional("value", Any);
    let properties_values =
        empty().required("properties", SchemaType::array(property_value.into()));
    let path = || empty().required("path", Str);
    for (name, args, ret) in [
        (
            "qom-list-types",
            empty()
                .optional("implements", Str)
                .optional("abstract", Bool),
            SchemaType::array(type_info.into()),
        ),
        (
            "qom-list-properties",
            empty().required("typename", Str),
            SchemaType::array(property_info.clone().into()),
        ),
        ("qom-list", path(), SchemaType::array(property_info.into())),
        ("qom-get", path().required("property", Str), Any),
        (
            "qom-set",
            path().required("property", Str).required("value", Any),
            empty().into(),
        ),
        (
            "qom-list-get",
            empty().required("paths", SchemaType::array(Str)),
            SchemaType::array(properties_values.into()),
        ),
        ("object-del", empty().required("id", Str), empty().into()),
    ] {
        commands.describe(name, CommandSchema::new(args, ret))?;
    }
    commands.describe_with("object-add", move || {
        Ok(CommandSchema::new(
            schema::object_add_arguments(tree.types())?,
            ObjectType::empty().into(),
        ))
    })
}
