//! The JSON Schema of each scalar property type states the range that its
//! JSON setter accepts: the bounds themselves are accepted and the integers
//! just outside them are refused. QEMU's visitors decide the ranges: a
//! `uint64` takes negative numbers (they wrap), a size does not.

use qom::{Input, PropertyType, Size};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Whether the JSON setter path takes `v` as a `T`.
fn accepts<T: DeserializeOwned>(v: &Value) -> bool {
    Input::Json(v).deserialize::<T>("p").is_ok()
}

/// The number one step beyond `bound` (`step` is -1 or +1), when JSON can
/// carry it as an integer.
fn beyond(bound: &Value, step: i128) -> Option<Value> {
    let n = bound
        .as_i64()
        .map(i128::from)
        .or_else(|| bound.as_u64().map(i128::from))?
        + step;
    if let Ok(v) = i64::try_from(n) {
        Some(json!(v))
    } else {
        u64::try_from(n).ok().map(|v| json!(v))
    }
}

fn check<T: PropertyType>() {
    let schema = T::json_schema();
    let name = T::qom_type();
    assert_eq!(schema["type"], "integer", "{name}");
    let (min, max) = (&schema["minimum"], &schema["maximum"]);
    assert!(accepts::<T>(min), "{name}: the minimum {min} is refused");
    assert!(accepts::<T>(max), "{name}: the maximum {max} is refused");
    if let Some(below) = beyond(min, -1) {
        assert!(
            !accepts::<T>(&below),
            "{name}: {below} is taken below the minimum {min}"
        );
    }
    if let Some(above) = beyond(max, 1) {
        assert!(
            !accepts::<T>(&above),
            "{name}: {above} is taken above the maximum {max}"
        );
    }
}

#[test]
fn integer_schemas_state_what_the_setters_take() {
    check::<u8>();
    check::<u16>();
    check::<u32>();
    check::<u64>();
    check::<i8>();
    check::<i16>();
    check::<i32>();
    check::<i64>();
    check::<Size>();
}

#[test]
fn a_negative_size_is_refused_with_qemus_message() {
    let e = Input::Json(&json!(-1))
        .deserialize::<Size>("size")
        .unwrap_err();
    assert_eq!(e.to_string(), "Parameter 'size' expects uint64");
    assert_eq!(Size::json_schema()["minimum"], json!(0));
}
