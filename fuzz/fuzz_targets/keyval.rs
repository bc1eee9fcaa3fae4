//! The keyval parser (`--object` of QEMU's tools, HMP `object_add`):
//! whatever parses is printed by `keyval_to_string` and parsed back to the
//! same tree; `ObjectSpec::parse` results are rebuilt from their parts
//! and parse back to the same spec; typed reads never panic.

#![no_main]

use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;
use qom::value::{keyval_parse, keyval_to_string, KeyvalValue};
use qom::{Error, ObjectSpec, Props};
use qom_fuzz::{json_eq, read_typed};
use serde_json::Value;

fn check_tree(text: &str, implied: Option<&str>) {
    let lenient = keyval_parse(text, implied, true);
    let strict = keyval_parse(text, implied, false);
    let Ok((map, help)) = lenient else {
        assert!(strict.is_err(), "{text:?}: refused only with help allowed");
        return;
    };
    // Help is the one thing `accept_help` changes.
    match strict {
        Ok((m, h)) => assert!(!help && !h && m == map, "{text:?}"),
        Err(Error::HelpNotAvailable) => assert!(help, "{text:?}"),
        Err(e) => panic!("{text:?}: {e} only without help"),
    }
    let printed = keyval_to_string(&map);
    let (again, again_help) = keyval_parse(&printed, None, false)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
    assert!(!again_help);
    assert_eq!(again, map, "{text:?} printed as {printed:?}");
    assert_eq!(keyval_to_string(&again), printed);
}

fn check_spec(text: &str) {
    let Ok(spec) = ObjectSpec::parse(text) else {
        return;
    };
    read_typed(&spec.props, text.len() <= 256);
    if spec.help {
        return;
    }
    let (Some(qom_type), Some(id)) = (spec.qom_type.clone(), spec.id.clone()) else {
        panic!("{text:?}: no type or id without help: {spec:?}");
    };
    let rebuilt = match &spec.props {
        Props::Keyval(props) => {
            let mut all = IndexMap::new();
            all.insert("qom-type".to_owned(), KeyvalValue::String(qom_type));
            all.insert("id".to_owned(), KeyvalValue::String(id));
            all.extend(props.clone());
            keyval_to_string(&all)
        }
        Props::Json(props) => {
            let mut all = serde_json::Map::new();
            all.insert("qom-type".to_owned(), Value::String(qom_type));
            all.insert("id".to_owned(), Value::String(id));
            all.extend(props.clone());
            Value::Object(all).to_string()
        }
        Props::Opts(_) => panic!("{text:?}: ObjectSpec::parse gave QemuOpts"),
    };
    let again = ObjectSpec::parse(&rebuilt)
        .unwrap_or_else(|e| panic!("{text:?} rebuilt as {rebuilt:?}, which fails: {e}"));
    assert_eq!(again.qom_type, spec.qom_type);
    assert_eq!(again.id, spec.id);
    assert!(!again.help);
    assert!(
        json_eq(&again.props.to_json(), &spec.props.to_json()),
        "{text:?} rebuilt as {rebuilt:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_tree(text, None);
    check_tree(text, Some("qom-type"));
    check_spec(text);
});
