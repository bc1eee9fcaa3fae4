//! Graphviz DOT pictures: the type hierarchy (`qom types --dot`) and the
//! composition tree of the objects made from `-object` (`qom tree --dot`).
//!
//! Both graphs start with a comment saying how to read them, so a DOT file
//! found on its own still explains itself.

use qom::{Class, Object, ObjectTree, PropertyKind, TypeRegistry};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

/// Property values longer than this are cut in node labels: a
/// `cpu-affinity` on a big host lists hundreds of CPUs, which would make a
/// node wider than the rest of the picture.
const MAX_VALUE_CHARS: usize = 60;

/// Escapes `text` for the inside of a DOT double-quoted string. The DOT
/// lexer only turns `\"` into `"`; labels then give meaning to `\n`, `\l`,
/// `\N` and the like, so every backslash of the text is doubled to stay a
/// backslash. A newline becomes `line_break` (a label's `\l`, or `\n`), and
/// other control characters are written out visibly (`\t`, `\u{1b}`), since
/// Graphviz would draw them as nothing.
fn escape_into(out: &mut String, text: &str, line_break: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str(line_break),
            c if c.is_control() => {
                for e in c.escape_default() {
                    if e == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(e);
                    }
                }
            }
            c => out.push(c),
        }
    }
}

/// `text` as a DOT quoted string (an ID or a one-line attribute value).
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    escape_into(&mut out, text, "\\n");
    out.push('"');
    out
}

/// A quoted label of left-justified lines (each line ends in `\l`).
fn label(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for l in lines {
        escape_into(&mut out, l, "\\l");
        out.push_str("\\l");
    }
    out.push('"');
    out
}

/// Attributes of a type node: interfaces are ellipses, abstract types
/// dashed and italic, and types the filter did not select grey.
fn type_node_attrs(class: &Class, selected: bool) -> String {
    let mut attrs = vec![];
    if class.is_interface() {
        attrs.push("shape=ellipse");
    }
    if class.is_abstract() {
        attrs.push("style=dashed");
        attrs.push("fontname=\"Helvetica-Oblique\"");
    }
    if !selected {
        attrs.push("color=gray50");
        attrs.push("fontcolor=gray50");
    }
    if attrs.is_empty() {
        String::new()
    } else {
        format!(" [{}]", attrs.join(", "))
    }
}

/// The interfaces `class` declares itself: those its parent does not
/// already bring, so that each interface edge is drawn once, where it is
/// declared.
fn own_interfaces(class: &Class) -> Vec<String> {
    let inherited: BTreeSet<&str> = class
        .parent()
        .map(|p| p.interfaces().collect())
        .unwrap_or_default();
    class
        .interfaces()
        .filter(|i| !inherited.contains(i))
        .map(str::to_owned)
        .collect()
}

/// `qom types --dot`: the types `listed` selected, with every ancestor and
/// interface they need for their edges (grey when not selected themselves).
pub fn types(registry: &TypeRegistry, listed: &[String]) -> qom::Result<String> {
    let selected: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    // Walk up from each selected type (and from each interface it declares),
    // collecting every class on the way.
    let mut classes: BTreeMap<String, Arc<Class>> = BTreeMap::new();
    let mut todo: Vec<String> = listed.to_vec();
    while let Some(name) = todo.pop() {
        if classes.contains_key(&name) {
            continue;
        }
        let class = registry.class(&name)?;
        if let Some(p) = class.parent() {
            todo.push(p.name().to_owned());
        }
        todo.extend(own_interfaces(&class));
        classes.insert(name, class);
    }
    let mut names: Vec<&String> = classes.keys().collect();
    names.sort_by_key(|n| n.to_ascii_lowercase());

    let mut out = String::new();
    out.push_str(
        "// QOM types: a solid edge points to the parent type, a dashed edge to an\n\
         // interface the type implements; abstract types are dashed and italic,\n\
         // interfaces are ellipses, types outside the selection are grey.\n",
    );
    out.push_str("digraph \"qom-types\" {\n");
    out.push_str("  rankdir=BT;\n");
    out.push_str("  node [shape=box, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [arrowhead=empty];\n");
    for name in &names {
        let class = &classes[*name];
        let attrs = type_node_attrs(class, selected.contains(name.as_str()));
        let _ = writeln!(out, "  {}{attrs};", quote(name));
    }
    for name in &names {
        let class = &classes[*name];
        if let Some(p) = class.parent() {
            let _ = writeln!(out, "  {} -> {};", quote(name), quote(p.name()));
        }
        for i in own_interfaces(class) {
            let _ = writeln!(out, "  {} -> {} [style=dashed];", quote(name), quote(&i));
        }
    }
    out.push_str("}\n");
    Ok(out)
}

/// A property value for a label: strings as they are, anything else as
/// compact JSON, cut at [`MAX_VALUE_CHARS`].
fn label_value(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_VALUE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Whether two values are the same, counting `1` and `1.0` as equal: a
/// default declared as a float must not make an integer value look changed.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y)) if x == y)
        }
        _ => a == b,
    }
}

/// Decides which properties of an object differ from their defaults.
///
/// A property that declares a default-value (what `qom properties` shows)
/// is compared with it. Most properties declare none, although their
/// instance starts with a value (`reserve` is on, `prealloc-threads` is 1),
/// so those are compared with what the property reads on a fresh, unplaced
/// instance of the same type, made once per type: the value the object
/// would have if no option had been given and nothing had happened to it.
/// Values that only exist once an object is complete (a context thread's
/// `thread-id`) therefore count as non-default, which is what a picture of
/// running objects should show. A property the fresh instance cannot read,
/// or an instance property the class does not have, counts as non-default
/// whenever it can be read.
struct Defaults<'a> {
    tree: &'a ObjectTree,
    fresh: HashMap<String, Option<Object>>,
}

impl Defaults<'_> {
    fn is_default(&mut self, obj: &Object, name: &str, value: &Value) -> bool {
        if let Some(d) = obj.property(name).and_then(|p| p.default_value().cloned()) {
            return same_value(value, &d);
        }
        let tree = self.tree;
        let fresh = self
            .fresh
            .entry(obj.type_name().to_owned())
            .or_insert_with(|| tree.new_object(obj.type_name()).ok());
        match fresh.as_ref().map(|f| f.get(name)) {
            Some(Ok(d)) => same_value(value, &d),
            _ => false,
        }
    }
}

/// Appends `name` to `parent`'s path, as QEMU builds canonical paths.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// `qom tree --dot`: the composition tree below `start` (whose path is
/// `start_path`): children as solid edges, set links as dashed edges
/// labelled with the link's name, each node with its path, its type and
/// its non-default properties. A link target outside the drawn subtree is
/// drawn grey, with its path only.
pub fn objects(tree: &ObjectTree, start: &Object, start_path: &str) -> String {
    let mut defaults = Defaults {
        tree,
        fresh: HashMap::new(),
    };
    let mut nodes = String::new();
    let mut edges = String::new();
    let mut drawn: BTreeSet<String> = BTreeSet::new();
    let mut link_targets: BTreeSet<String> = BTreeSet::new();
    let mut todo = vec![(start_path.to_owned(), start.clone())];
    while let Some((path, obj)) = todo.pop() {
        let mut lines = vec![path.clone(), obj.type_name().to_owned()];
        for p in obj.properties() {
            if p.name() == "type" || !p.is_readable() {
                continue;
            }
            match p.kind() {
                PropertyKind::Child => {}
                PropertyKind::Link { .. } => {
                    let Some(target) = obj.resolve_component(p.name()) else {
                        continue;
                    };
                    let Some(target_path) = target.canonical_path() else {
                        continue;
                    };
                    let _ = writeln!(
                        edges,
                        "  {} -> {} [style=dashed, constraint=false, label={}];",
                        quote(&path),
                        quote(&target_path),
                        quote(p.name())
                    );
                    link_targets.insert(target_path);
                }
                PropertyKind::Value => {
                    let Ok(v) = obj.get(p.name()) else {
                        continue;
                    };
                    if !defaults.is_default(&obj, p.name(), &v) {
                        lines.push(format!("{}: {}", p.name(), label_value(&v)));
                    }
                }
            }
        }
        let _ = writeln!(nodes, "  {} [label={}];", quote(&path), label(&lines));
        let children: Vec<(String, Object)> = obj
            .children()
            .into_iter()
            .map(|(name, child)| (child_path(&path, &name), child))
            .collect();
        for (cpath, _) in &children {
            let _ = writeln!(edges, "  {} -> {};", quote(&path), quote(cpath));
        }
        // The stack pops the last pushed first: push in reverse so the
        // nodes come out in the children's order.
        todo.extend(children.into_iter().rev());
        drawn.insert(path);
    }
    for t in link_targets.difference(&drawn) {
        let _ = writeln!(
            nodes,
            "  {} [label={}, color=gray50, fontcolor=gray50];",
            quote(t),
            label(std::slice::from_ref(t))
        );
    }
    let mut out = String::new();
    out.push_str(
        "// QOM composition tree: a solid edge goes to a child, a dashed edge to\n\
         // the target of a link (labelled with the link's name). Each node shows\n\
         // its path, its type and the properties that differ from their defaults.\n",
    );
    out.push_str("digraph \"qom-tree\" {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [shape=box, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str(&nodes);
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_character() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quote(r"dev\n[0]"), r#""dev\\n[0]""#);
        assert_eq!(quote("two\nlines"), r#""two\nlines""#);
        assert_eq!(quote("tab\there"), r#""tab\\there""#);
        assert_eq!(quote("esc\u{1b}"), r#""esc\\u{1b}""#);
        // A trailing backslash must not swallow the closing quote.
        assert_eq!(quote("end\\"), r#""end\\""#);
    }

    #[test]
    fn labels_are_left_justified_lines() {
        assert_eq!(
            label(&["/objects/m".into(), "x: a\nb".into()]),
            r#""/objects/m\lx: a\lb\l""#
        );
        assert_eq!(label(&[r"\N".into()]), r#""\\N\l""#);
    }

    #[test]
    fn long_values_are_cut() {
        let v: Vec<u32> = (0..100).collect();
        let text = label_value(&serde_json::json!(v));
        assert_eq!(text.chars().count(), MAX_VALUE_CHARS);
        assert!(text.ends_with('…'));
        assert_eq!(label_value(&serde_json::json!("/dev/shm")), "/dev/shm");
        assert_eq!(label_value(&serde_json::json!(true)), "true");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_value(&serde_json::json!(1), &serde_json::json!(1.0)));
        assert!(!same_value(&serde_json::json!(1), &serde_json::json!(2)));
        assert!(!same_value(&serde_json::json!("1"), &serde_json::json!(1)));
    }
}
