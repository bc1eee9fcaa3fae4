//! `-object` argument parsing: both syntaxes, help, and QEMU's messages.

use super::*;
use crate::value::Size;
use serde_json::json;

fn keys(spec: &ObjectSpec) -> Vec<&str> {
    spec.props.keys().collect()
}

fn err(text: &str) -> Error {
    ObjectSpec::parse(text).unwrap_err()
}

#[test]
fn json_form() {
    let spec = ObjectSpec::parse(
        r#"{"qom-type":"memory-backend-file","id":"m0","size":1073741824,"mem-path":"/dev/hugepages","share":true}"#,
    )
    .unwrap();
    assert_eq!(spec.qom_type.as_deref(), Some("memory-backend-file"));
    assert_eq!(spec.id.as_deref(), Some("m0"));
    assert!(!spec.help);
    assert_eq!(keys(&spec), ["size", "mem-path", "share"]);
    assert_eq!(spec.props.len(), 3);
    let size: Size = spec.props.get("size").unwrap().deserialize("size").unwrap();
    assert_eq!(size, Size(1 << 30));
    assert!(spec
        .props
        .get("share")
        .unwrap()
        .deserialize::<bool>("share")
        .unwrap());
}

#[test]
fn json_is_strict() {
    let spec = ObjectSpec::parse(r#"{"qom-type":"t","id":"m","size":"1G","share":"on"}"#).unwrap();
    let size = spec
        .props
        .get("size")
        .unwrap()
        .deserialize::<Size>("size")
        .unwrap_err();
    assert_eq!(size.to_string(), "Parameter 'size' expects uint64");
    let share = spec
        .props
        .get("share")
        .unwrap()
        .deserialize::<bool>("share")
        .unwrap_err();
    assert_eq!(
        share.to_string(),
        "Invalid parameter type for 'share', expected: boolean"
    );
}

#[test]
fn json_type_and_id_checks() {
    assert_eq!(
        err(r#"{"qom-type":1,"id":"x"}"#).to_string(),
        "Invalid parameter type for 'qom-type', expected: string"
    );
    assert_eq!(
        err(r#"{"qom-type":"t","id":5}"#).to_string(),
        "Invalid parameter type for 'id', expected: string"
    );
    assert_eq!(
        err(r#"{"id":"x"}"#).to_string(),
        "Parameter 'qom-type' is missing"
    );
    assert_eq!(
        err(r#"{"id":5}"#).to_string(),
        "Parameter 'qom-type' is missing"
    );
    assert_eq!(
        err(r#"{"qom-type":"t"}"#).to_string(),
        "Parameter 'id' is missing"
    );
}

#[test]
fn json_syntax_errors() {
    for text in ["{", "{\"a\":}", "{} x", "{'a':1}"] {
        match err(text) {
            Error::JsonSyntax(m) => assert!(m.starts_with("JSON parse error, "), "{m}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn keyval_form() {
    let spec = ObjectSpec::parse("memory-backend-ram,id=mem1,size=256M").unwrap();
    assert_eq!(spec.qom_type.as_deref(), Some("memory-backend-ram"));
    assert_eq!(spec.id.as_deref(), Some("mem1"));
    assert_eq!(keys(&spec), ["size"]);
    let size: Size = spec.props.get("size").unwrap().deserialize("size").unwrap();
    assert_eq!(size, Size(256 << 20));
    assert_eq!(spec.props.to_json(), json!({"size": "256M"}));
}

#[test]
fn keyval_keeps_the_order_given() {
    let spec = ObjectSpec::parse("t,b=1,id=x,a.0=2,c=3").unwrap();
    assert_eq!(keys(&spec), ["b", "a", "c"]);
    assert_eq!(
        spec.props.to_json(),
        json!({"b": "1", "a": ["2"], "c": "3"})
    );
    let spec = ObjectSpec::parse("qom-type=t,id=x").unwrap();
    assert!(spec.props.is_empty());
}

#[test]
fn keyval_help() {
    for text in ["help", "?"] {
        let spec = ObjectSpec::parse(text).unwrap();
        assert!(spec.help);
        assert_eq!(spec.qom_type, None);
        assert!(spec.props.is_empty());
    }
    let spec = ObjectSpec::parse("memory-backend-file,help").unwrap();
    assert!(spec.help);
    assert_eq!(spec.qom_type.as_deref(), Some("memory-backend-file"));
    // No id is needed to ask for help, and other keys are kept.
    let spec = ObjectSpec::parse("t,size=1,help").unwrap();
    assert!(spec.help);
    assert_eq!(keys(&spec), ["size"]);
}

#[test]
fn keyval_errors() {
    assert_eq!(err("id=x").to_string(), "Parameter 'qom-type' is missing");
    assert_eq!(err("t").to_string(), "Parameter 'id' is missing");
    assert_eq!(
        err("qom-type.a=1,id=x").to_string(),
        "Parameters 'qom-type.*' are unexpected"
    );
    assert_eq!(err("t,id=x,=y").to_string(), "Invalid parameter ''");
    assert_eq!(
        err("t,id=x,size").to_string(),
        "Expected '=' after parameter 'size'"
    );
}

#[test]
fn props_deserialize_as_a_whole() {
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct P {
        size: Size,
        share: Option<bool>,
    }
    let spec = ObjectSpec::parse("t,id=x,size=1k,share=on").unwrap();
    assert_eq!(
        spec.props.deserialize::<P>().unwrap(),
        P {
            size: Size(1024),
            share: Some(true)
        }
    );
    let spec = ObjectSpec::parse(r#"{"qom-type":"t","id":"x","size":1024,"x":1}"#).unwrap();
    assert_eq!(
        spec.props.deserialize::<P>().unwrap_err().to_string(),
        "Parameter 'x' is unexpected"
    );
    let spec = ObjectSpec::parse("t,id=x").unwrap();
    assert_eq!(
        spec.props.deserialize::<P>().unwrap_err().to_string(),
        "Parameter 'size' is missing"
    );
}

#[test]
fn inputs_render_as_json() {
    let kv = KeyvalValue::List(vec![KeyvalValue::String("1".to_owned())]);
    assert_eq!(Input::Keyval(&kv).to_json(), json!(["1"]));
    let j = json!({"a": 1});
    assert_eq!(Input::Json(&j).to_json(), j);
}

#[test]
fn opts_form() {
    let (spec, warnings) =
        ObjectSpec::parse_opts("memory-backend-file,id=m,size=4M,share,size=8M").unwrap();
    assert_eq!(spec.qom_type.as_deref(), Some("memory-backend-file"));
    assert_eq!(spec.id.as_deref(), Some("m"));
    assert!(!spec.help);
    assert_eq!(keys(&spec), ["size", "share"]);
    assert_eq!(
        spec.props.to_json(),
        json!({"size": ["4M", "8M"], "share": "on"})
    );
    let size: Size = spec.props.get("size").unwrap().deserialize("size").unwrap();
    assert_eq!(size, Size(8 << 20));
    assert_eq!(
        warnings,
        ["short-form boolean option 'share' deprecated\nPlease use share=on instead"]
    );
    // Missing type and id are left for the object-add checks to report.
    let (spec, _) = ObjectSpec::parse_opts("size=1").unwrap();
    assert_eq!((spec.qom_type, spec.id), (None, None));
    // An explicit `qom-type=` works; the last one wins.
    let (spec, _) = ObjectSpec::parse_opts("a,qom-type=b,id=x").unwrap();
    assert_eq!(spec.qom_type.as_deref(), Some("b"));
    assert!(spec.props.is_empty());
}

#[test]
fn opts_form_errors_and_json() {
    for text in ["t,id=1m", "t,id=a,,b", "id=", "t,id=ok,id=2nd-is-ignored"] {
        let r = ObjectSpec::parse_opts(text);
        match text {
            "t,id=ok,id=2nd-is-ignored" => assert!(r.is_ok()),
            _ => assert_eq!(r.unwrap_err(), Error::InvalidId, "{text}"),
        }
    }
    // `noid` is the flag `id=off`: a valid id after all.
    let (spec, warnings) = ObjectSpec::parse_opts("t,noid").unwrap();
    assert_eq!(spec.id.as_deref(), Some("off"));
    assert_eq!(warnings.len(), 1);
    // JSON stays JSON; a missing id is left to the object-add checks.
    let (spec, warnings) = ObjectSpec::parse_opts(r#"{"qom-type":"t","size":1}"#).unwrap();
    assert_eq!(spec.id, None);
    assert!(warnings.is_empty());
    assert!(matches!(spec.props, Props::Json(_)));
    assert!(matches!(
        ObjectSpec::parse_opts("{").unwrap_err(),
        Error::JsonSyntax(_)
    ));
}

/// Found by the `qmp_session` fuzzer: serde_json's default float parser
/// can be one unit in the last place off (79 sixes became
/// 6.6666666666666675e78, not 6.666666666666667e78). With its
/// `float_roundtrip` feature a JSON `-object` keeps the number the text
/// names, as QEMU's parser (strtod) does.
#[test]
fn json_numbers_are_read_exactly() {
    let digits = "6".repeat(79);
    let spec = ObjectSpec::parse(&format!(
        r#"{{"qom-type": "t", "id": "a", "x": {digits}, "y": 6.666666666666667e78}}"#
    ))
    .unwrap();
    let exact: f64 = digits.parse().unwrap();
    let props = spec.props.to_json();
    assert_eq!(props["x"].as_f64(), Some(exact));
    assert_eq!(props["y"].as_f64(), Some(exact));
}
