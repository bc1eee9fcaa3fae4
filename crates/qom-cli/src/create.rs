//! Creating the `-object` objects with QEMU's two phases and error layout:
//! every spec is parsed and checked first (errors name the option:
//! `qom: -object SPEC: MESSAGE`), then the objects are created in order
//! (errors from creating an object have no location, as QEMU creates memory
//! backends late: `qom: MESSAGE`).

use qom::{Error, ObjectSpec, ObjectTree};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Why the objects could not be created: the lines to print on stderr.
#[derive(Debug)]
pub struct Failure {
    /// Complete lines, without the trailing newline.
    pub lines: Vec<String>,
}

fn error_lines(prog: &str, location: Option<&str>, e: &Error) -> Vec<String> {
    let mut lines = vec![match location {
        Some(spec) => format!("{prog}: -object {spec}: {e}"),
        None => format!("{prog}: {e}"),
    }];
    if let Some(h) = e.hint() {
        lines.push(h.to_owned());
    }
    lines
}

/// What `-object` asked for before anything is created.
pub enum Request {
    /// Print the list of user-creatable types.
    TypeList,
    /// Print one type's options.
    TypeHelp(String),
    /// Create these objects.
    Create(Vec<ObjectSpec>),
}

/// Phase one: parse and check every spec with qemu-system's command-line
/// rules (QemuOpts, or JSON when the spec starts with `{`). Warnings (the
/// deprecated short-form booleans) are printed as QEMU prints them.
pub fn parse_all(prog: &str, tree: &ObjectTree, specs: &[String]) -> Result<Request, Failure> {
    let mut parsed = Vec::new();
    let mut ids = HashSet::new();
    for text in specs {
        let fail = |e: Error| Failure {
            lines: error_lines(prog, Some(text), &e),
        };
        let (spec, warnings) = ObjectSpec::parse_opts(text).map_err(fail)?;
        // QemuOpts refuses a repeated id before it looks at the rest.
        if !text.starts_with('{') {
            if let Some(id) = &spec.id {
                if !ids.insert(id.clone()) {
                    return Err(fail(Error::DuplicateOptsId(id.clone())));
                }
            }
        }
        for w in &warnings {
            eprintln!("{prog}: -object {text}: warning: {w}");
        }
        if spec.help {
            return Ok(match spec.qom_type {
                Some(t) => Request::TypeHelp(t),
                None => Request::TypeList,
            });
        }
        tree.check_spec(&spec).map_err(fail)?;
        if text.starts_with('{') {
            if let Some(id) = &spec.id {
                if !ids.insert(id.clone()) {
                    return Err(fail(Error::DuplicateOptsId(id.clone())));
                }
            }
        }
        parsed.push(spec);
    }
    Ok(Request::Create(parsed))
}

/// Phase two: create the objects in order.
pub fn create_all(prog: &str, tree: &ObjectTree, specs: &[ObjectSpec]) -> Result<(), Failure> {
    for spec in specs {
        tree.object_add_spec(spec).map_err(|e| Failure {
            lines: error_lines(prog, None, &e),
        })?;
    }
    Ok(())
}

/// Every object below `/objects` (by id) and every device of the machine
/// (by path, `/machine/peripheral/ID`), each with every readable,
/// non-child property.
pub fn describe(tree: &ObjectTree) -> Value {
    let mut out = Map::new();
    for (id, obj) in tree.objects().children() {
        out.insert(id, properties(&obj));
    }
    let machine = tree.root().child("machine");
    for container in ["peripheral", "peripheral-anon"] {
        let Some(c) = machine.as_ref().and_then(|m| m.child(container)) else {
            continue;
        };
        for (_, dev) in c.children() {
            if let Some(path) = dev.canonical_path() {
                out.insert(path, properties(&dev));
            }
        }
    }
    Value::Object(out)
}

fn properties(obj: &qom::Object) -> Value {
    let mut props = Map::new();
    for p in obj.properties() {
        if matches!(p.kind(), qom::PropertyKind::Child) || !p.is_readable() {
            continue;
        }
        if let Ok(v) = obj.get(p.name()) {
            props.insert(p.name().to_owned(), v);
        }
    }
    Value::Object(props)
}
