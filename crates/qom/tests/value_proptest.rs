//! Property tests for the text parsers of `qom::value`.

use indexmap::IndexMap;
use proptest::prelude::*;
use qom::value::{
    format_size_iec, from_keyval, from_opts, keyval_parse, opts_parse, parse_i64, parse_size,
    parse_u64, Input, KeyvalValue, OptsValue,
};
use qom::{ObjectSpec, Props, Size};

/// Text that leans on the characters the parsers care about.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.,=?_ -]{0,40}",
        "[0-9a-fA-FxXkKmMgGtTpPeEbB.+ -]{0,24}",
    ]
}

/// A key fragment that is a valid QAPI name.
fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,12}"
}

fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn keyval_parse_never_panics(s in tricky_text(), implied in any::<bool>(), help in any::<bool>()) {
        let _ = keyval_parse(&s, implied.then_some("qom-type"), help);
    }

    #[test]
    fn parse_opts_never_panics(s in tricky_text()) {
        if let Ok((spec, _)) = ObjectSpec::parse_opts(&s) {
            // Reading the properties as any type must not panic either.
            let _ = spec.props.deserialize::<serde_json::Value>();
            for (_, input) in spec.props.iter() {
                let _ = input.deserialize::<Vec<u16>>("x");
                let _ = input.deserialize::<Vec<i64>>("x");
                let _ = input.deserialize::<Size>("x");
                let _ = input.deserialize::<bool>("x");
                let _ = input.to_json();
            }
        }
        let _ = ObjectSpec::parse_opts(&format!("t,id=m,{s}"));
    }

    #[test]
    fn opts_values_round_trip(entries in prop::collection::vec((name(), any::<String>()), 0..8)) {
        // Escaped values come back unchanged; a repeated key keeps them all.
        let text: String = entries
            .iter()
            .map(|(k, v)| format!(",{k}={}", escape(v)))
            .collect();
        let parsed = opts_parse(&format!("t{text}"), Some("qom-type"));
        prop_assert!(parsed.warnings.is_empty());
        for (k, v) in entries.iter().filter(|(k, _)| k != "id") {
            prop_assert!(parsed.opts[k].values().contains(v));
        }
        let first_id = entries.iter().find(|(k, _)| k == "id").map(|(_, v)| v.clone());
        prop_assert_eq!(parsed.id, first_id);
        let (spec, _) = ObjectSpec::parse_opts(&format!("t{text}")).unwrap_or_default();
        prop_assert!(matches!(spec.props, Props::Opts(_)) || spec == ObjectSpec::default());
    }

    #[test]
    fn opts_ranges_expand_ascending(a in any::<u16>(), len in 0u16..300) {
        let b = a.saturating_add(len);
        let v: Vec<u16> = from_opts(&OptsValue::new(format!("{a}-{b}")), "x").unwrap();
        prop_assert_eq!(v, (a..=b).collect::<Vec<_>>());
    }

    #[test]
    fn number_parsers_never_panic(s in tricky_text()) {
        let _ = parse_size(&s);
        let _ = parse_u64(&s);
        let _ = parse_i64(&s);
    }

    #[test]
    fn iec_rendering_has_a_number_and_a_unit(n in any::<u64>()) {
        let text = format_size_iec(n);
        let (number, unit) = text.split_once(' ').unwrap();
        prop_assert!(["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"].contains(&unit), "{}", text);
        prop_assert!(!number.is_empty());
    }

    #[test]
    fn decimal_sizes_round_trip(n in any::<u64>()) {
        prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        prop_assert_eq!(parse_size(&format!("{n}B")), Ok(n));
    }

    #[test]
    fn suffixed_sizes_round_trip(shift_index in 0usize..7, raw in any::<u64>(), upper in any::<bool>()) {
        let suffixes = ["b", "k", "m", "g", "t", "p", "e"];
        let shift = shift_index as u32 * 10;
        let n = raw >> shift;
        let suffix = if upper { suffixes[shift_index].to_uppercase() } else { suffixes[shift_index].to_owned() };
        prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Ok(n << shift));
    }

    #[test]
    fn integers_round_trip(n in any::<u64>(), i in any::<i64>()) {
        prop_assert_eq!(parse_u64(&n.to_string()), Ok(n));
        prop_assert_eq!(parse_u64(&format!("{n:#x}")), Ok(n));
        prop_assert_eq!(parse_u64(&format!("0{n:o}")), Ok(n));
        prop_assert_eq!(parse_i64(&i.to_string()), Ok(i));
    }

    #[test]
    fn keyval_round_trips(entries in prop::collection::vec((name(), any::<String>()), 0..8)) {
        let text: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={}", escape(v))).collect();
        let text = text.join(",");
        let mut expected = IndexMap::new();
        for (k, v) in &entries {
            // Repeated keys: the last value wins, at the first position.
            expected.insert(k.clone(), KeyvalValue::String(v.clone()));
        }
        let (parsed, help) = keyval_parse(&text, None, false).unwrap();
        prop_assert!(!help);
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn keyval_lists_round_trip(key in name(), values in prop::collection::vec(any::<String>(), 1..6)) {
        // Written in reverse: order of indices does not matter.
        let text: Vec<String> =
            values.iter().enumerate().rev().map(|(i, v)| format!("{key}.{i}={}", escape(v))).collect();
        let (parsed, _) = keyval_parse(&text.join(","), None, false).unwrap();
        let list = KeyvalValue::List(values.into_iter().map(KeyvalValue::String).collect());
        prop_assert_eq!(parsed.get(&key), Some(&list));
    }

    #[test]
    fn implied_value_round_trips(value in "[^,=]{1,20}", rest in prop::collection::vec((name(), "[^,]{0,8}"), 0..4)) {
        let mut text = value.clone();
        for (k, v) in &rest {
            text.push_str(&format!(",{k}={v}"));
        }
        match keyval_parse(&text, Some("qom-type"), true) {
            Ok((parsed, help)) => {
                if value == "help" || value == "?" {
                    prop_assert!(help);
                } else if !rest.iter().any(|(k, _)| k == "qom-type") {
                    // A binding, not a temporary: Rust 1.82 drops a temporary
                    // inside prop_assert_eq! before the comparison.
                    let want = KeyvalValue::String(value.clone());
                    prop_assert_eq!(parsed.get("qom-type"), Some(&want));
                }
            }
            Err(e) => prop_assert!(false, "{text:?}: {e}"),
        }
    }

    #[test]
    fn untyped_keyval_reads_match_display(entries in prop::collection::vec((name(), name(), "[a-z0-9]{0,6}"), 0..6)) {
        let text: Vec<String> = entries.iter().map(|(a, b, v)| format!("{a}.{b}={v}")).collect();
        if let Ok((parsed, _)) = keyval_parse(&text.join(","), None, false) {
            let tree = KeyvalValue::Map(parsed);
            let read: serde_json::Value = from_keyval(&tree, "").unwrap();
            prop_assert_eq!(read, Input::Keyval(&tree).to_json());
        }
    }
}
