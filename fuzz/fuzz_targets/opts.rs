//! The QemuOpts parser (the system emulator's `-object`): every string
//! parses; `opts_to_string` prints it back to the same id and options,
//! without warnings; `ObjectSpec::parse_opts` results rebuilt from their
//! parts parse back to the same spec; typed reads never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qom::value::{opts_parse, opts_to_string, OptsValue, ParsedOpts};
use qom::{ObjectSpec, Props};
use qom_fuzz::{json_eq, read_typed};
use serde_json::Value;

fn check_opts(text: &str, implied: Option<&str>) {
    let parsed = opts_parse(text, implied);
    assert!(
        !parsed.opts.contains_key("id"),
        "{text:?}: id left in the options"
    );
    assert!(parsed.opts.values().all(|v| !v.values().is_empty()));
    let printed = opts_to_string(&parsed);
    let again = opts_parse(&printed, None);
    assert_eq!(again.id, parsed.id, "{text:?} printed as {printed:?}");
    assert_eq!(again.opts, parsed.opts, "{text:?} printed as {printed:?}");
    assert!(again.warnings.is_empty(), "{printed:?} warns");
    assert_eq!(opts_to_string(&again), printed);
}

fn check_spec(text: &str) {
    let Ok((spec, _warnings)) = ObjectSpec::parse_opts(text) else {
        return;
    };
    read_typed(&spec.props, text.len() <= 256);
    if let Some(id) = &spec.id {
        assert!(qom::is_valid_id(id), "{text:?}: id {id:?} let through");
    }
    let Some(qom_type) = spec.qom_type.clone() else {
        return;
    };
    let rebuilt = match &spec.props {
        Props::Opts(props) => {
            let mut opts = props.clone();
            opts.shift_insert(0, "qom-type".to_owned(), OptsValue::new(qom_type));
            opts_to_string(&ParsedOpts {
                id: spec.id.clone(),
                opts,
                warnings: Vec::new(),
            })
        }
        Props::Json(props) => {
            let mut all = serde_json::Map::new();
            all.insert("qom-type".to_owned(), Value::String(qom_type));
            if let Some(id) = &spec.id {
                all.insert("id".to_owned(), Value::String(id.clone()));
            }
            all.extend(props.clone());
            Value::Object(all).to_string()
        }
        Props::Keyval(_) => panic!("{text:?}: parse_opts gave keyval"),
    };
    let (again, warnings) = ObjectSpec::parse_opts(&rebuilt)
        .unwrap_or_else(|e| panic!("{text:?} rebuilt as {rebuilt:?}, which fails: {e}"));
    assert!(warnings.is_empty());
    assert_eq!(
        again.qom_type, spec.qom_type,
        "{text:?} rebuilt as {rebuilt:?}"
    );
    assert_eq!(again.id, spec.id);
    assert_eq!(again.help, spec.help, "{text:?} rebuilt as {rebuilt:?}");
    match (&again.props, &spec.props) {
        (Props::Opts(a), Props::Opts(b)) => assert_eq!(a, b, "{text:?} rebuilt as {rebuilt:?}"),
        (a, b) => assert!(json_eq(&a.to_json(), &b.to_json()), "{text:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_opts(text, None);
    check_opts(text, Some("qom-type"));
    check_spec(text);
});
