//! `qom types`, `qom properties`, `qom schema`, and the view `qom tree`
//! prints of the objects it made.

use crate::args::TreeView;
use crate::dot;
use qom::{Class, Object, ObjectTree, PropertyKind, TypeRegistry, TYPE_USER_CREATABLE};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `qom types`: the JSON list, or the hierarchy as an indented tree or as
/// a Graphviz graph.
pub fn types(
    types: &TypeRegistry,
    implements: Option<&str>,
    include_abstract: bool,
    tree: bool,
    dot: bool,
) -> qom::Result<String> {
    let list = types.list_types(implements, include_abstract)?;
    if dot {
        let names: Vec<String> = list.into_iter().map(|t| t.name).collect();
        return dot::types(types, &names);
    }
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

/// A JSON value as Python's `str()` prints the value QMP decoded into:
/// QEMU's `qom-tree` prints `f"{value}"`, so strings come bare and the
/// rest in Python's notation (`True`, `None`, `['a', 1]`, `{'k': 2}`).
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => python_repr(v),
    }
}

fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => python_string_repr(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", python_string_repr(k), python_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's `repr()` of a string: single quotes unless the text holds a
/// single quote and no double one, and escapes for the quote, backslashes
/// and control characters. (Python also escapes some printable-looking
/// non-ASCII characters; object names and values here do not have them.)
fn python_string_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{a0}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// The text of QEMU's `qom-tree` for `obj` at `path` and everything below
/// it: the path, one `  name: value (type)` line per property that is not
/// a child (in `qom-list` order; a getter's error is shown as
/// `<EXCEPTION: message>`), an empty line, then each child the same way.
fn tree_text(out: &mut String, path: &str, obj: &Object) {
    out.push_str(path);
    out.push('\n');
    let props = obj.properties();
    for p in &props {
        if matches!(p.kind(), PropertyKind::Child) {
            continue;
        }
        let value = match obj.get(p.name()) {
            Ok(v) => python_str(&v),
            Err(e) => format!("<EXCEPTION: {e}>"),
        };
        out.push_str(&format!("  {}: {value} ({})\n", p.name(), p.qom_type()));
    }
    out.push('\n');
    for (name, child) in obj.children() {
        tree_text(out, &dot::child_path(path, &name), &child);
    }
}

/// `qom tree`: the objects below `view.path`, as text or as DOT. The path
/// is resolved as `qom-list` resolves it; nodes are named by canonical
/// path, so `objects` and `/objects` draw the same.
pub fn show_tree(tree: &ObjectTree, view: &TreeView) -> qom::Result<String> {
    let start = tree.resolve_strict(&view.path)?;
    let path = start.canonical_path().unwrap_or_else(|| view.path.clone());
    if view.dot {
        return Ok(dot::objects(tree, &start, &path));
    }
    let mut out = String::new();
    tree_text(&mut out, &path, &start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_python_prints_them() {
        assert_eq!(python_str(&json!("/dev/shm")), "/dev/shm");
        assert_eq!(python_str(&json!(true)), "True");
        assert_eq!(python_str(&json!(false)), "False");
        assert_eq!(python_str(&json!(null)), "None");
        assert_eq!(python_str(&json!(4194304)), "4194304");
        assert_eq!(python_str(&json!([])), "[]");
        assert_eq!(python_str(&json!([0, 1])), "[0, 1]");
        assert_eq!(python_str(&json!(["a", 1])), "['a', 1]");
        assert_eq!(python_str(&json!({"k": "v"})), "{'k': 'v'}");
        assert_eq!(python_repr(&json!("it's")), "\"it's\"");
        assert_eq!(python_repr(&json!("a'\"b")), "'a\\'\"b'");
        assert_eq!(python_repr(&json!("x\\y\n\u{1}")), "'x\\\\y\\n\\x01'");
    }
}
