//! `qom types`, `qom properties` and `qom schema`.

use qom::{Class, TypeRegistry, TYPE_USER_CREATABLE};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `qom types`: the JSON list, or the hierarchy as an indented tree.
pub fn types(
    types: &TypeRegistry,
    implements: Option<&str>,
    include_abstract: bool,
    tree: bool,
) -> qom::Result<String> {
    let list = types.list_types(implements, include_abstract)?;
    if !tree {
        return Ok(serde_json::to_string_pretty(&list).unwrap_or_default());
    }
    // Draw every listed type under its ancestors; ancestors that the filter
    // left out are drawn too (in brackets) so the shape stays readable.
    let listed: std::collections::HashSet<String> = list.iter().map(|t| t.name.clone()).collect();
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut roots = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in &list {
        let class = types.class(&t.name)?;
        let mut cur: Option<&Arc<Class>> = Some(&class);
        while let Some(c) = cur {
            if !seen.insert(c.name().to_owned()) {
                break;
            }
            match c.parent() {
                Some(p) => children
                    .entry(p.name().to_owned())
                    .or_default()
                    .push(c.name().to_owned()),
                None => roots.push(c.name().to_owned()),
            }
            cur = c.parent();
        }
    }
    for v in children.values_mut() {
        v.sort_by_key(|n| n.to_ascii_lowercase());
    }
    roots.sort();
    let mut out = String::new();
    fn draw(
        out: &mut String,
        name: &str,
        depth: usize,
        children: &BTreeMap<String, Vec<String>>,
        listed: &std::collections::HashSet<String>,
        types: &TypeRegistry,
    ) {
        let abstract_mark = types.class(name).map(|c| c.is_abstract()).unwrap_or(false);
        let label = match (listed.contains(name), abstract_mark) {
            (true, true) => format!("{name} (abstract)"),
            (true, false) => name.to_owned(),
            (false, _) => format!("[{name}]"),
        };
        out.push_str(&"  ".repeat(depth));
        out.push_str(&label);
        out.push('\n');
        for c in children.get(name).into_iter().flatten() {
            draw(out, c, depth + 1, children, listed, types);
        }
    }
    for r in roots {
        draw(&mut out, &r, 0, &children, &listed, types);
    }
    Ok(out.trim_end().to_owned())
}

/// `qom properties TYPE`: `qom-list-properties` as JSON.
pub fn properties(types: &TypeRegistry, type_name: &str) -> qom::Result<String> {
    Ok(serde_json::to_string_pretty(&types.list_properties(type_name)?).unwrap_or_default())
}

fn type_schema(types: &TypeRegistry, type_name: &str) -> qom::Result<Value> {
    let class = types
        .find_class(type_name)?
        .ok_or_else(|| qom::Error::ClassNotFound(type_name.to_owned()))?;
    if class.is_abstract() || !class.is_a(TYPE_USER_CREATABLE) {
        return Err(qom::Error::NotUserCreatable(type_name.to_owned()));
    }
    let mut properties = Map::new();
    properties.insert("qom-type".into(), json!({"const": type_name}));
    properties.insert(
        "id".into(),
        json!({"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9._-]*$", "description": "The object's id: /objects/ID"}),
    );
    let mut required = vec![json!("qom-type"), json!("id")];
    for p in class.properties().filter(|p| p.is_writable()) {
        let mut s = p.json_schema().clone();
        if let Value::Object(m) = &mut s {
            if let Some(d) = p.description() {
                m.insert("description".into(), json!(d));
            }
            if let Some(d) = p.default_value() {
                m.insert("default".into(), d.clone());
            }
            m.insert("x-qom-type".into(), json!(p.qom_type()));
        }
        properties.insert(p.name().to_owned(), s);
        if p.is_required() {
            required.push(json!(p.name()));
        }
    }
    Ok(json!({
        "title": type_name,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

/// `qom schema [TYPE]`: a JSON Schema (draft 2020-12) of the object-add
/// arguments of one type, or of any user-creatable type.
pub fn schema(types: &TypeRegistry, type_name: Option<&str>) -> qom::Result<String> {
    let body = match type_name {
        Some(t) => type_schema(types, t)?,
        None => {
            let mut variants = Vec::new();
            for t in types.list_types(Some(TYPE_USER_CREATABLE), false)? {
                variants.push(type_schema(types, &t.name)?);
            }
            json!({"title": "object-add arguments", "oneOf": variants})
        }
    };
    let mut doc = Map::new();
    doc.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    if let Value::Object(m) = body {
        doc.extend(m);
    }
    Ok(serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default())
}
