//! JSON text in the two shapes the oracle needs: the fixture files
//! (keys sorted, one-space indent, UTF-8 kept, as the team's first
//! recordings were written, so that re-recording gives byte-identical
//! files) and the canonical text used to break ties when sorting lists.

use serde::Serialize;
use serde_json::{Map, Value};

/// `v` with every object's keys in sorted order (the workspace builds
/// serde_json with `preserve_order`, so sorting has to be done by hand).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The fixture text of `v`: sorted keys, one space per indent level, a
/// final newline.
pub fn fixture_text(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    sorted(v)
        .serialize(&mut ser)
        .expect("a JSON value always serializes");
    let mut text = String::from_utf8(buf).expect("serde_json writes UTF-8");
    text.push('\n');
    text
}

/// Canonical one-line text with sorted keys, for ordering only.
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(&sorted(v)).expect("a JSON value always serializes")
}
