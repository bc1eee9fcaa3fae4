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

/// Phase one: parse and check every spec.
pub fn parse_all(prog: &str, tree: &ObjectTree, specs: &[String]) -> Result<Request, Failure> {
    let mut parsed = Vec::new();
    let mut ids = HashSet::new();
    for text in specs {
        let spec = ObjectSpec::parse(text).map_err(|e| Failure {
            lines: error_lines(prog, Some(text), &e),
        })?;
        if spec.help {
            return Ok(match spec.qom_type {
                Some(t) if t != "help" => Request::TypeHelp(t),
                _ => Request::TypeList,
            });
        }
        let (Some(ty), Some(id)) = (spec.qom_type.as_deref(), spec.id.as_deref()) else {
            let e = Error::MissingParameter(
                if spec.qom_type.is_none() {
                    "qom-type"
                } else {
                    "id"
                }
                .into(),
            );
            return Err(Failure {
                lines: error_lines(prog, Some(text), &e),
            });
        };
        tree.validate_add(ty, id, &spec.props)
            .map_err(|e| Failure {
                lines: error_lines(prog, Some(text), &e),
            })?;
        if !ids.insert(id.to_owned()) {
            let e = Error::generic(format!("Duplicate ID '{id}' for object"));
            return Err(Failure {
                lines: error_lines(prog, Some(text), &e),
            });
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

/// Every object below `/objects` with every readable, non-child property.
pub fn describe(tree: &ObjectTree) -> Value {
    let mut out = Map::new();
    for (id, obj) in tree.objects().children() {
        let mut props = Map::new();
        for p in obj.properties() {
            if matches!(p.kind(), qom::PropertyKind::Child) || !p.is_readable() {
                continue;
            }
            if let Ok(v) = obj.get(p.name()) {
                props.insert(p.name().to_owned(), v);
            }
        }
        out.insert(id, Value::Object(props));
    }
    Value::Object(out)
}
