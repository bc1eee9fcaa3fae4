//! What makes two recordings of the same server comparable: the
//! scenario's temp dir becomes `{TMP}`, mkstemp suffixes become `XXXXXX`,
//! timestamps go, lists of objects are sorted, and the greeting keeps only
//! its shape.

use super::json_text::canonical;
use serde_json::{json, Value};
use std::cmp::Ordering;

/// The placeholder of a scenario's temp dir in definitions and fixtures.
pub const TMP: &str = "{TMP}";

/// `{TMP}` replaced by `tmp` in every string (keys too).
pub fn expand(v: &Value, tmp: &str) -> Value {
    map_strings(v, &|s| s.replace(TMP, tmp))
}

/// `tmp` replaced by `{TMP}` in every string, and the random part of
/// `qemu_back_mem.<id>.XXXXXX` names by `XXXXXX`.
pub fn unexpand(v: &Value, tmp: &str) -> Value {
    map_strings(v, &|s| unexpand_str(s, tmp))
}

/// [`unexpand`] for one string.
pub fn unexpand_str(s: &str, tmp: &str) -> String {
    mask_mkstemp(&s.replace(tmp, TMP))
}

fn map_strings(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| map_strings(x, f)).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (f(k), map_strings(x, f))).collect())
        }
        other => other.clone(),
    }
}

/// QEMU names the temp file of a directory backend
/// `qemu_back_mem.<id>.` plus six random characters; the id part may itself
/// contain dots, so the six characters follow the last dot that has six
/// letters or digits after it.
fn mask_mkstemp(s: &str) -> String {
    const PREFIX: &str = "qemu_back_mem.";
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(PREFIX) {
        let after = at + PREFIX.len();
        out.push_str(&rest[..after]);
        let tail = &rest[after..];
        let run = tail
            .find(|c: char| c == '/' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        let word = &tail[..run];
        let six = |i: usize| {
            word.len() >= i + 7
                && word[i + 1..i + 7]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric())
        };
        match word.rmatch_indices('.').map(|(i, _)| i).find(|&i| six(i)) {
            Some(dot) => {
                out.push_str(&word[..=dot]);
                out.push_str("XXXXXX");
                rest = &tail[dot + 7..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Order of the elements of a sorted list: by `name`, then `id`, then the
/// whole text.
fn element_order(a: &Value, b: &Value) -> Ordering {
    fn key(v: &Value) -> (u8, String, String, String) {
        let field = |k: &str| match v.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        match v {
            Value::Object(_) => (0, field("name"), field("id"), canonical(v)),
            _ => (1, String::new(), String::new(), canonical(v)),
        }
    }
    key(a).cmp(&key(b))
}

/// One server message as the fixtures record it. `names` keeps only the
/// list elements with one of these names; `keep_order` leaves a list as
/// the server sent it.
pub fn message(msg: &Value, tmp: &str, names: Option<&[Value]>, keep_order: bool) -> Value {
    let mut msg = msg.clone();
    if let Value::Object(m) = &mut msg {
        m.shift_remove("timestamp");
        if let Some(Value::Array(list)) = m.get_mut("return") {
            if !list.is_empty() && list.iter().all(Value::is_object) {
                if let Some(names) = names {
                    list.retain(|x| x.get("name").is_some_and(|n| names.contains(n)));
                }
                if !keep_order {
                    list.sort_by(element_order);
                }
            }
        }
    }
    unexpand(&msg, tmp)
}

/// The greeting with every scalar under `version` replaced by its kind.
pub fn greeting_shape(g: &Value) -> Value {
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, x)| (k.clone(), shape(x))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
            Value::Bool(_) => json!("<bool>"),
            Value::Number(n) if n.is_f64() => json!("<float>"),
            Value::Number(_) => json!("<int>"),
            Value::String(_) => json!("<str>"),
            Value::Null => Value::Null,
        }
    }
    let mut g = g.clone();
    if let Some(v) = g.get_mut("QMP").and_then(|q| q.get_mut("version")) {
        *v = shape(v);
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkstemp_suffix_is_masked_after_the_last_fitting_dot() {
        assert_eq!(
            mask_mkstemp("{TMP}/d/qemu_back_mem.m0.a1B2c3"),
            "{TMP}/d/qemu_back_mem.m0.XXXXXX"
        );
        assert_eq!(
            mask_mkstemp("x qemu_back_mem.a.b.Zz9Zz9 y"),
            "x qemu_back_mem.a.b.XXXXXX y"
        );
        assert_eq!(mask_mkstemp("qemu_back_mem.m0"), "qemu_back_mem.m0");
    }

    #[test]
    fn lists_of_objects_are_sorted_by_name_and_timestamps_dropped() {
        let m = json!({"return": [{"name": "b"}, {"name": "a"}], "timestamp": {"seconds": 1}});
        assert_eq!(
            message(&m, "/t", None, false),
            json!({"return": [{"name": "a"}, {"name": "b"}]})
        );
    }
}
