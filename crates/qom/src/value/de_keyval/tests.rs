//! The keyval visitor's rules (QEMU's `/keyval/visit/*` tests), with
//! QEMU's messages.

use super::*;
use crate::value::{keyval_parse, Size};
use serde::Deserialize;
use serde_json::json;

fn tree(input: &str) -> KeyvalValue {
    KeyvalValue::Map(keyval_parse(input, None, false).unwrap().0)
}

/// The member `key` of a parsed map.
fn member(input: &str, key: &str) -> KeyvalValue {
    keyval_parse(input, None, false)
        .unwrap()
        .0
        .shift_remove(key)
        .unwrap()
}

fn leaf(s: &str) -> KeyvalValue {
    KeyvalValue::String(s.to_owned())
}

fn read<T: for<'de> Deserialize<'de>>(s: &str, name: &str) -> crate::Result<T> {
    from_keyval(&leaf(s), name)
}

fn msg<T: for<'de> Deserialize<'de> + std::fmt::Debug>(v: &KeyvalValue, name: &str) -> String {
    match from_keyval::<T>(v, name) {
        Ok(t) => panic!("{v:?} was accepted as {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Policy {
    Default,
    Preferred,
    Bind,
    Interleave,
}

/// /keyval/visit/bool
#[test]
fn booleans() {
    for (s, v) in [
        ("on", true),
        ("yes", true),
        ("true", true),
        ("y", true),
        ("off", false),
        ("n", false),
    ] {
        assert_eq!(read::<bool>(s, "b").unwrap(), v);
    }
    assert_eq!(
        msg::<bool>(&leaf("offer"), "share"),
        "Parameter 'share' expects 'on' or 'off'"
    );
    assert_eq!(
        msg::<bool>(&leaf("1"), "share"),
        "Parameter 'share' expects 'on' or 'off'"
    );
}

/// /keyval/visit/number
#[test]
fn unsigned_numbers() {
    assert_eq!(read::<u64>("0", "n").unwrap(), 0);
    assert_eq!(read::<u64>("18446744073709551615", "n").unwrap(), u64::MAX);
    assert_eq!(read::<u64>("-1", "n").unwrap(), u64::MAX);
    assert_eq!(read::<u64>("0x2a", "n").unwrap(), 42);
    assert_eq!(read::<u64>("052", "n").unwrap(), 42);
    for bad in [
        "18446744073709551616",
        "-18446744073709551616",
        "3.14",
        "08",
        "",
        "x",
    ] {
        assert_eq!(
            msg::<u64>(&leaf(bad), "number1"),
            "Parameter 'number1' expects integer",
            "{bad}"
        );
    }
}

#[test]
fn signed_and_narrow_numbers() {
    assert_eq!(read::<i64>("-0x10", "n").unwrap(), -16);
    assert_eq!(
        msg::<i64>(&leaf("9223372036854775808"), "n"),
        "Parameter 'n' expects integer"
    );
    assert_eq!(read::<u32>("4294967295", "t").unwrap(), u32::MAX);
    assert_eq!(
        msg::<u32>(&leaf("4294967296"), "prealloc-threads"),
        "Parameter 'prealloc-threads' expects uint32_t"
    );
    assert_eq!(
        msg::<u32>(&leaf("-1"), "t"),
        "Parameter 't' expects uint32_t"
    );
    assert_eq!(
        msg::<u8>(&leaf("256"), "t"),
        "Parameter 't' expects uint8_t"
    );
    assert_eq!(
        msg::<i16>(&leaf("40000"), "t"),
        "Parameter 't' expects int16_t"
    );
    assert_eq!(msg::<i32>(&leaf("x"), "t"), "Parameter 't' expects integer");
}

#[test]
fn floats() {
    assert_eq!(read::<f64>("1.5", "f").unwrap(), 1.5);
    assert_eq!(
        msg::<f64>(&leaf("x"), "f"),
        "Invalid parameter type for 'f', expected: number"
    );
    assert_eq!(
        msg::<f64>(&leaf("inf"), "f"),
        "Invalid parameter type for 'f', expected: number"
    );
}

/// /keyval/visit/size
#[test]
fn sizes() {
    assert_eq!(read::<Size>("0", "size").unwrap(), Size(0));
    assert_eq!(
        read::<Size>("18446744073709551615", "size").unwrap(),
        Size(u64::MAX)
    );
    assert_eq!(read::<Size>("8b", "size").unwrap(), Size(8));
    assert_eq!(read::<Size>("1.5k", "size").unwrap(), Size(1536));
    assert_eq!(read::<Size>("2M", "size").unwrap(), Size(2 << 20));
    assert_eq!(read::<Size>("0.1G", "size").unwrap(), Size((1 << 30) / 10));
    assert_eq!(
        read::<Size>("16777215T", "size").unwrap(),
        Size(16_777_215 << 40)
    );
    for bad in ["-1", "18446744073709551616", "16777216T", "0Z", "16Gi"] {
        assert_eq!(
            msg::<Size>(&leaf(bad), "size"),
            "Parameter 'size' expects size",
            "{bad}"
        );
    }
    // A plain integer target does not take suffixes.
    assert_eq!(
        msg::<u64>(&leaf("1G"), "size"),
        "Parameter 'size' expects integer"
    );
}

#[test]
fn strings_and_enums() {
    assert_eq!(read::<String>("a,b=c", "s").unwrap(), "a,b=c");
    assert_eq!(read::<Policy>("bind", "policy").unwrap(), Policy::Bind);
    assert_eq!(
        msg::<Policy>(&leaf("yeti"), "policy"),
        "Parameter 'policy' does not accept value 'yeti'"
    );
    assert_eq!(
        msg::<Policy>(&leaf("Bind"), "policy"),
        "Parameter 'policy' does not accept value 'Bind'"
    );
    let _ = (Policy::Default, Policy::Preferred, Policy::Interleave);
}

#[test]
fn members_where_a_scalar_goes() {
    let t = tree("size.x=1");
    let KeyvalValue::Map(m) = &t else {
        unreachable!()
    };
    assert_eq!(
        msg::<Size>(&m["size"], "size"),
        "Parameters 'size.*' are unexpected"
    );
    assert_eq!(
        msg::<String>(&tree("a.0=1"), "x"),
        "Parameters 'x.*' are unexpected"
    );
    assert_eq!(
        msg::<()>(&leaf(""), "x"),
        "Invalid parameter type for 'x', expected: null"
    );
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Inner {
    b: i64,
    c: i64,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Outer {
    a: Inner,
    d: Option<String>,
}

/// /keyval/visit/dict
#[test]
fn dicts() {
    let o: Outer = from_keyval(&tree("a.b=1,a.c=2,d=x"), "").unwrap();
    assert_eq!(
        o,
        Outer {
            a: Inner { b: 1, c: 2 },
            d: Some("x".to_owned())
        }
    );
    assert_eq!(
        msg::<Outer>(&tree("a.b=1"), ""),
        "Parameter 'a.c' is missing"
    );
    assert_eq!(
        msg::<Outer>(&tree("a.b=1,a.c=2,a.x=3"), ""),
        "Parameter 'a.x' is unexpected"
    );
    assert_eq!(
        msg::<Outer>(&tree("a.b=1,a.c=2,x=3"), ""),
        "Parameter 'x' is unexpected"
    );
    assert_eq!(
        msg::<Outer>(&tree("a=1"), ""),
        "Invalid parameter type for 'a', expected: object"
    );
    assert_eq!(
        msg::<Outer>(&tree("a.b=x,a.c=2"), ""),
        "Parameter 'a.b' expects integer"
    );
}

/// /keyval/visit/optional
#[test]
fn optional_members_at_each_level() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Opt {
        a: Option<Box<Opt>>,
        b: Option<bool>,
    }
    let o: Opt = from_keyval(&tree("a.a.b=on"), "").unwrap();
    let inner = Opt {
        a: None,
        b: Some(true),
    };
    assert_eq!(
        o,
        Opt {
            a: Some(Box::new(Opt {
                a: Some(Box::new(inner)),
                b: None
            })),
            b: None
        }
    );
    let o: Opt = from_keyval(&tree(""), "").unwrap();
    assert_eq!(o, Opt { a: None, b: None });
}

/// /keyval/visit/list
#[test]
fn lists() {
    let any: serde_json::Value = from_keyval(&tree("a.0=,a.1=I,a.2.0=II"), "").unwrap();
    assert_eq!(any, json!({"a": ["", "I", ["II"]]}));

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Nodes {
        host_nodes: Vec<u16>,
    }
    let n: Nodes = from_keyval(&tree("host-nodes.0=0,host-nodes.1=1"), "").unwrap();
    assert_eq!(n.host_nodes, vec![0, 1]);
    assert_eq!(
        msg::<Nodes>(&tree("host-nodes.0=x"), ""),
        "Parameter 'host-nodes.0' expects integer"
    );
    assert_eq!(
        msg::<Nodes>(&tree("host-nodes=1"), ""),
        "Invalid parameter type for 'host-nodes', expected: array"
    );
    // A fixed-length target reports left-over and missing elements.
    assert_eq!(
        msg::<(String, String)>(&member("a.0=x,a.1=y,a.2=z", "a"), "a"),
        "Only 2 list elements expected in a"
    );
    assert_eq!(
        msg::<(String, String)>(&member("a.0=x", "a"), "a"),
        "Parameter 'a.1' is missing"
    );
    // Enum refusals in a list name "null", as QEMU's do.
    assert_eq!(
        msg::<Vec<Policy>>(&member("p.0=x", "p"), "p"),
        "Parameter 'null' does not accept value 'x'"
    );
}

/// /keyval/visit/any
#[test]
fn any_gets_the_raw_string_tree() {
    let any: serde_json::Value = from_keyval(&tree("a=1,b.c=on,b.d.0=x"), "").unwrap();
    assert_eq!(any, json!({"a": "1", "b": {"c": "on", "d": ["x"]}}));
}

/// /keyval/visit/alternate: only string alternates work from keyval.
#[test]
fn untagged_alternates_see_strings_only() {
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Alt {
        Num(u64),
        Str(String),
    }
    assert_eq!(read::<Alt>("1", "x").unwrap(), Alt::Str("1".to_owned()));
}
