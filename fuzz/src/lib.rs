//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use serde_json::Value;

/// Reads every property of `props` as the types a property can have, so
/// that the keyval, QemuOpts and JSON deserializers see fuzzed values.
/// Only panics matter here: each read may fail.
pub fn read_typed(props: &qom::Props, lists_too: bool) {
    for (name, input) in props.iter() {
        let _ = input.deserialize::<u64>(name);
        let _ = input.deserialize::<i64>(name);
        let _ = input.deserialize::<u8>(name);
        let _ = input.deserialize::<bool>(name);
        let _ = input.deserialize::<f64>(name);
        let _ = input.deserialize::<String>(name);
        let _ = input.deserialize::<qom::Size>(name);
        let _ = input.deserialize::<qom::OnOffAuto>(name);
        let _ = input.deserialize::<Option<u32>>(name);
        let _ = input.deserialize::<Value>(name);
        // A QemuOpts range `a-b` stands for up to 65536 values: reading
        // lists only from short inputs keeps one run's memory small.
        if lists_too {
            let _ = input.deserialize::<Vec<u16>>(name);
            let _ = input.deserialize::<Vec<i64>>(name);
            let _ = input.deserialize::<Vec<String>>(name);
            let _ = input.deserialize::<std::collections::BTreeMap<String, String>>(name);
        }
    }
}

/// Equality of JSON values where two floating-point numbers are equal when
/// they are within a few units in the last place (the parser is not
/// required to round-trip the last bit), and integers must match exactly.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                match (x.as_f64(), y.as_f64()) {
                    (Some(p), Some(q)) => p == q || ((p - q).abs() <= p.abs().max(q.abs()) * 1e-15),
                    _ => false,
                }
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && json_eq(v1, v2))
        }
        _ => a == b,
    }
}
