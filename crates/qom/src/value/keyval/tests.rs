//! The cases of QEMU's tests/unit/test-keyval.c (`/keyval/keyval_parse`
//! and `/keyval/keyval_parse/list`), with QEMU's messages.

use super::*;

fn s(v: &str) -> KeyvalValue {
    KeyvalValue::String(v.to_owned())
}

fn map(entries: &[(&str, KeyvalValue)]) -> KeyvalValue {
    KeyvalValue::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn list(items: &[KeyvalValue]) -> KeyvalValue {
    KeyvalValue::List(items.to_vec())
}

fn ok(input: &str, implied: Option<&str>) -> KeyvalValue {
    let (m, help) =
        keyval_parse(input, implied, false).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert!(!help);
    KeyvalValue::Map(m)
}

fn err(input: &str, implied: Option<&str>) -> String {
    match keyval_parse(input, implied, true) {
        Ok(v) => panic!("{input:?} parsed as {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_input_is_empty_map() {
    assert_eq!(ok("", None), map(&[]));
}

#[test]
fn malformed_keys() {
    assert_eq!(err("=val", None), "Invalid parameter ''");
    assert_eq!(err(".", None), "Invalid parameter '.'");
    assert_eq!(err("key.", None), "Invalid parameter 'key.'");
    assert_eq!(err("7up=val", None), "Invalid parameter '7up'");
    assert_eq!(err("key[0]=val", None), "Invalid parameter 'key[0]'");
    assert_eq!(err(",", None), "Invalid parameter ''");
    assert_eq!(err("a..b=1", None), "Invalid parameter 'a..b'");
    assert_eq!(err("a.0b=1", None), "Invalid parameter 'a.0b'");
    assert_eq!(err("a b=1", None), "Invalid parameter 'a b'");
}

#[test]
fn missing_equals() {
    assert_eq!(
        err("an,noaus,noaus=", None),
        "Expected '=' after parameter 'an'"
    );
    assert_eq!(err("no", None), "Expected '=' after parameter 'no'");
    assert_eq!(err("a.b", None), "Expected '=' after parameter 'a.b'");
}

#[test]
fn key_length_limits() {
    let long = "a".repeat(128);
    let max = "a".repeat(127);
    assert_eq!(
        err(&format!("{long}=v"), None),
        format!("Parameter '{long}' is too long")
    );
    assert_eq!(
        err(&format!("k.{long}=v"), None),
        format!("Parameter fragment '{long}' is too long")
    );
    assert_eq!(
        err(&format!("{long}.k=v"), None),
        format!("Parameter fragment '{long}' is too long")
    );
    assert_eq!(ok(&format!("{max}=v"), None), map(&[(&max, s("v"))]));
    assert_eq!(
        ok(&format!("k.{max}=v"), None),
        map(&[("k", map(&[(&max, s("v"))]))])
    );
}

#[test]
fn escapes_and_last_wins() {
    assert_eq!(
        ok("a=1,b=2,,x,a=3", None),
        map(&[("a", s("3")), ("b", s("2,x"))])
    );
    assert_eq!(ok("id=foo,id=bar", None), map(&[("id", s("bar"))]));
    assert_eq!(ok("x=,,id=bar", None), map(&[("x", s(",id=bar"))]));
    assert_eq!(ok("id=666", None), map(&[("id", s("666"))]));
    assert_eq!(ok("x=y,", None), map(&[("x", s("y"))]));
    assert_eq!(ok("x=", None), map(&[("x", s(""))]));
    assert_eq!(ok("x=a=b", None), map(&[("x", s("a=b"))]));
    assert_eq!(ok("x=,,,y=1", None), map(&[("x", s(",")), ("y", s("1"))]));
}

#[test]
fn dotted_keys_nest() {
    assert_eq!(
        ok("a.b.c=1,a.b.c=2,d=3", None),
        map(&[("a", map(&[("b", map(&[("c", s("2"))]))])), ("d", s("3"))])
    );
    assert_eq!(
        err("a.b=1,a=2", None),
        "Parameters 'a.*' used inconsistently"
    );
    assert_eq!(
        err("a.b=1,a.b.c=2", None),
        "Parameters 'a.b.*' used inconsistently"
    );
    assert_eq!(
        err("a=1,a.b=2", None),
        "Parameters 'a.*' used inconsistently"
    );
}

#[test]
fn downstream_names() {
    assert_eq!(
        ok("__com.redhat_x=1", None),
        map(&[("__com.redhat_x", s("1"))])
    );
    assert_eq!(err("_x=1", None), "Invalid parameter '_x'");
}

#[test]
fn implied_key() {
    assert_eq!(
        ok("an,aus=off,noaus=", Some("implied")),
        map(&[("implied", s("an")), ("aus", s("off")), ("noaus", s(""))])
    );
    assert_eq!(
        ok("val", Some("eins.zwei")),
        map(&[("eins", map(&[("zwei", s("val"))]))])
    );
    // Only the first element may omit the key.
    assert_eq!(
        err("an,noaus", Some("implied")),
        "Expected '=' after parameter 'noaus'"
    );
    assert_eq!(err(",", Some("implied")), "Invalid parameter ''");
    assert_eq!(err(",,,a=1", Some("implied")), "Invalid parameter ''");
    assert_eq!(err("val,,ue", Some("implied")), "Invalid parameter ''");
    assert_eq!(err("=val", Some("implied")), "Invalid parameter ''");
    // An explicit key is still fine in first position.
    assert_eq!(
        ok("implied=x", Some("implied")),
        map(&[("implied", s("x"))])
    );
}

#[test]
fn help_requests() {
    for input in ["help", "?"] {
        for implied in [None, Some("implied")] {
            let (m, help) = keyval_parse(input, implied, true).unwrap();
            assert!(help, "{input}");
            assert!(m.is_empty());
            assert_eq!(
                keyval_parse(input, implied, false).unwrap_err().to_string(),
                "Help is not available for this option"
            );
        }
    }
    assert_eq!(ok("help=on", None), map(&[("help", s("on"))]));
    assert_eq!(ok("help=on", Some("implied")), map(&[("help", s("on"))]));
    assert_eq!(
        err("help.abc", None),
        "Expected '=' after parameter 'help.abc'"
    );
    assert_eq!(
        ok("help.abc", Some("implied")),
        map(&[("implied", s("help.abc"))])
    );
    assert_eq!(err("helpme", None), "Expected '=' after parameter 'helpme'");

    let (m, help) = keyval_parse("number=42,help,foo=bar", None, true).unwrap();
    assert!(help);
    assert_eq!(
        KeyvalValue::Map(m),
        map(&[("number", s("42")), ("foo", s("bar"))])
    );
    let (m, help) = keyval_parse("val,help,foo=bar", Some("implied"), true).unwrap();
    assert!(help);
    assert_eq!(
        KeyvalValue::Map(m),
        map(&[("implied", s("val")), ("foo", s("bar"))])
    );
    let (m, help) = keyval_parse("t,help", Some("implied"), true).unwrap();
    assert!(help);
    assert_eq!(KeyvalValue::Map(m), map(&[("implied", s("t"))]));
}

#[test]
fn syntax_errors_outrank_help_refusal() {
    assert_eq!(
        keyval_parse("help,=x", None, false)
            .unwrap_err()
            .to_string(),
        "Invalid parameter ''"
    );
}

#[test]
fn root_cannot_be_a_list() {
    assert_eq!(err("0=1", None), "Invalid parameter '0'");
}

#[test]
fn lists_any_order() {
    assert_eq!(
        ok("list.0=null,list.2=zwei,list.1=eins", None),
        map(&[("list", list(&[s("null"), s("eins"), s("zwei")]))])
    );
}

#[test]
fn lists_last_duplicate_index_wins() {
    assert_eq!(
        ok("list.1=goner,list.0=null,list.01=eins,list.2=zwei", None),
        map(&[("list", list(&[s("null"), s("eins"), s("zwei")]))])
    );
    assert_eq!(
        ok("l.1=a,l.01=b,l.1=c,l.0=z", None),
        map(&[("l", list(&[s("z"), s("c")]))])
    );
}

#[test]
fn nested_lists() {
    assert_eq!(
        ok("a.0=,a.1=I,a.2.0=II", None),
        map(&[("a", list(&[s(""), s("I"), list(&[s("II")])]))])
    );
    assert_eq!(
        ok("nest.0.a=x,nest.1.a=y,nest.1.b.0=z", None),
        map(&[(
            "nest",
            list(&[
                map(&[("a", s("x"))]),
                map(&[("a", s("y")), ("b", list(&[s("z")]))])
            ])
        )])
    );
}

#[test]
fn list_errors() {
    assert_eq!(
        err("list.0=null,list.a=bad", None),
        "Parameters 'list.*' used inconsistently"
    );
    assert_eq!(
        err("a.b.0=x,a.b.c=y", None),
        "Parameters 'a.b.*' used inconsistently"
    );
    assert_eq!(err("list.1=lonely", None), "Parameter 'list.0' missing");
    assert_eq!(err("a.0=x,a.2=y,a.02=z", None), "Parameter 'a.1' missing");
    assert_eq!(
        err("a.99999999999999999999999=x", None),
        "Parameter 'a.0' missing"
    );
    assert_eq!(err("a.0=x,a.5=y", None), "Parameter 'a.1' missing");
}

#[test]
fn host_nodes_example() {
    assert_eq!(
        ok("host-nodes.0=0,host-nodes.1=1", None),
        map(&[("host-nodes", list(&[s("0"), s("1")]))])
    );
}
