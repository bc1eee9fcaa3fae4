//! OptsVisitor leaf rules: booleans, integers, sizes, enums, lists and
//! ranges, and QemuOpts' wording of each refusal.

use super::*;
use crate::value::Size;
use crate::OnOffAuto;

fn one<T: serde::de::DeserializeOwned>(value: &str) -> Result<T> {
    from_opts(&OptsValue::new(value), "x")
}

fn many<T: serde::de::DeserializeOwned>(values: &[&str]) -> Result<T> {
    from_opts(&OptsValue::from_values(values.iter().copied()), "x")
}

fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn booleans() {
    for (text, v) in [
        ("on", true),
        ("yes", true),
        ("true", true),
        ("y", true),
        ("off", false),
        ("no", false),
        ("false", false),
        ("n", false),
    ] {
        assert_eq!(one::<bool>(text).unwrap(), v, "{text}");
    }
    for text in ["ON", "1", "", "maybe", " on"] {
        assert_eq!(
            msg(one::<bool>(text)),
            "Parameter 'x' expects 'on' or 'off'",
            "{text}"
        );
    }
    // A scalar reads the last occurrence.
    assert!(!many::<bool>(&["on", "off"]).unwrap());
    assert!(many::<bool>(&["bogus", "on"]).unwrap());
}

#[test]
fn unsigned_integers() {
    assert_eq!(one::<u64>("42").unwrap(), 42);
    assert_eq!(one::<u64>("0x2a").unwrap(), 42);
    assert_eq!(one::<u64>("052").unwrap(), 42);
    assert_eq!(one::<u64>(" +42").unwrap(), 42);
    assert_eq!(one::<u64>("18446744073709551615").unwrap(), u64::MAX);
    for text in [
        "",
        "-1",
        "-0",
        "08",
        "1k",
        "0x",
        "18446744073709551616",
        "1-2",
    ] {
        assert_eq!(
            msg(one::<u64>(text)),
            "Parameter 'x' expects a uint64 value",
            "{text}"
        );
    }
    assert_eq!(
        msg(one::<u32>("4294967296")),
        "Parameter 'x' expects uint32_t"
    );
    assert_eq!(one::<u32>("4294967295").unwrap(), u32::MAX);
}

#[test]
fn signed_integers() {
    assert_eq!(one::<i64>("-42").unwrap(), -42);
    assert_eq!(one::<i64>("-0x2a").unwrap(), -42);
    assert_eq!(one::<i64>("-9223372036854775808").unwrap(), i64::MIN);
    for text in ["", "9223372036854775808", "1.5", "--1", "1-2"] {
        assert_eq!(
            msg(one::<i64>(text)),
            "Parameter 'x' expects an int64 value",
            "{text}"
        );
    }
    assert_eq!(msg(one::<i8>("128")), "Parameter 'x' expects int8_t");
}

#[test]
fn sizes() {
    assert_eq!(one::<Size>("4M").unwrap(), Size(4 << 20));
    assert_eq!(one::<Size>("0x400000").unwrap(), Size(4 << 20));
    assert_eq!(one::<Size>("1.5M").unwrap(), Size(3 << 19));
    assert_eq!(one::<Size>("010M").unwrap(), Size(10 << 20));
    assert_eq!(one::<Size>(" 4096k").unwrap(), Size(4 << 20));
    assert_eq!(many::<Size>(&["4M", "8M"]).unwrap(), Size(8 << 20));
    for text in ["1.5", "4MiB", "4X", "", "16E", "-4M", "0x4M"] {
        assert_eq!(
            msg(one::<Size>(text)),
            "Parameter 'x' expects a size value",
            "{text}"
        );
    }
}

#[test]
fn strings_and_enums() {
    assert_eq!(one::<String>("a,b").unwrap(), "a,b");
    assert_eq!(many::<String>(&["a", "b"]).unwrap(), "b");
    assert_eq!(one::<OnOffAuto>("auto").unwrap(), OnOffAuto::Auto);
    let e = from_opts::<OnOffAuto>(&OptsValue::new("maybe"), "rom").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Parameter 'rom' does not accept value 'maybe'"
    );
}

#[test]
fn lists_from_repeats_and_ranges() {
    assert_eq!(one::<Vec<u16>>("3").unwrap(), [3]);
    assert_eq!(many::<Vec<u16>>(&["0-1", "3"]).unwrap(), [0, 1, 3]);
    assert_eq!(many::<Vec<u16>>(&["5", "0", "0"]).unwrap(), [5, 0, 0]);
    assert_eq!(one::<Vec<u64>>("0x10-0x12").unwrap(), [16, 17, 18]);
    assert_eq!(one::<Vec<u64>>("7-7").unwrap(), [7]);
    assert_eq!(one::<Vec<i64>>("-2-1").unwrap(), [-2, -1, 0, 1]);
    assert_eq!(one::<Vec<i64>>("-3--2").unwrap(), [-3, -2]);
    // At most 65536 values per range.
    assert_eq!(one::<Vec<u64>>("0-65535").unwrap().len(), 65536);
    assert_eq!(one::<Vec<i64>>("-10-65525").unwrap().len(), 65536);
    let top = format!("{}-{}", u64::MAX - 1, u64::MAX);
    assert_eq!(one::<Vec<u64>>(&top).unwrap(), [u64::MAX - 1, u64::MAX]);
    let top = format!("{}-{}", i64::MAX - 1, i64::MAX);
    assert_eq!(one::<Vec<i64>>(&top).unwrap(), [i64::MAX - 1, i64::MAX]);
    for text in ["0-65536", "3-2", "1-", "-1-2", "1-2-3", "a", "", "1-x"] {
        assert_eq!(
            msg(one::<Vec<u64>>(text)),
            "Parameter 'x' expects a uint64 value or range",
            "{text}"
        );
    }
    for text in ["0-65536", "3-2", "1-", "x"] {
        assert_eq!(
            msg(one::<Vec<i64>>(text)),
            "Parameter 'x' expects an int64 value or range",
            "{text}"
        );
    }
    // Each value of a range is range-checked on its own.
    assert_eq!(
        msg(one::<Vec<u8>>("254-256")),
        "Parameter 'x' expects uint8_t"
    );
    // Elements that are no integers read each occurrence whole.
    assert_eq!(
        many::<Vec<String>>(&["0-1", "a"]).unwrap(),
        ["0-1".to_owned(), "a".to_owned()]
    );
    assert_eq!(many::<Vec<bool>>(&["on", "n"]).unwrap(), [true, false]);
}

#[test]
fn structs_report_unknown_keys_as_invalid() {
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct P {
        size: Size,
        host_nodes: Option<Vec<u16>>,
        share: Option<bool>,
    }
    let mut map = IndexMap::new();
    map.insert("bogus".to_owned(), OptsValue::new("1"));
    map.insert("size".to_owned(), OptsValue::from_values(["1M", "2M"]));
    map.insert(
        "host-nodes".to_owned(),
        OptsValue::from_values(["0-1", "3"]),
    );
    let e = from_opts_map::<P>(&map).unwrap_err();
    assert_eq!(e.to_string(), "Invalid parameter 'bogus'");
    map.shift_remove("bogus");
    assert_eq!(
        from_opts_map::<P>(&map).unwrap(),
        P {
            size: Size(2 << 20),
            host_nodes: Some(vec![0, 1, 3]),
            share: None,
        }
    );
    map.shift_remove("size");
    assert_eq!(
        from_opts_map::<P>(&map).unwrap_err().to_string(),
        "Parameter 'size' is missing"
    );
}

#[test]
fn untyped_targets_see_the_last_string() {
    let v: serde_json::Value = many(&["1", "2"]).unwrap();
    assert_eq!(v, serde_json::json!("2"));
}
