//! The QemuOpts grammar: escapes, flags and their warnings, ids, repeats.

use super::*;

fn parse(text: &str) -> ParsedOpts {
    opts_parse(text, Some("qom-type"))
}

/// Every key with all its occurrences, in order.
fn pairs(p: &ParsedOpts) -> Vec<(&str, Vec<&str>)> {
    p.opts
        .iter()
        .map(|(k, v)| (k.as_str(), v.values().iter().map(String::as_str).collect()))
        .collect()
}

#[test]
fn implied_key_and_pairs() {
    let p = parse("memory-backend-file,id=m,size=4M,mem-path=/f");
    assert_eq!(p.id.as_deref(), Some("m"));
    assert_eq!(
        pairs(&p),
        [
            ("qom-type", vec!["memory-backend-file"]),
            ("size", vec!["4M"]),
            ("mem-path", vec!["/f"]),
        ]
    );
    assert!(p.warnings.is_empty());
    // Only a first element without `=` is implied.
    let p = parse("qom-type=t,id=m");
    assert_eq!(pairs(&p), [("qom-type", vec!["t"])]);
    let p = parse("size=1");
    assert_eq!(pairs(&p), [("size", vec!["1"])]);
    // Without an implied key a first bare element is a flag.
    let p = opts_parse("share,size=1", None);
    assert_eq!(pairs(&p), [("share", vec!["on"]), ("size", vec!["1"])]);
}

#[test]
fn double_commas_escape_in_every_value() {
    let p = parse("a,,b,id=x,,y,mem-path=/a,,b,k=v,,");
    assert_eq!(p.id.as_deref(), Some("x,y"));
    assert_eq!(
        pairs(&p),
        [
            ("qom-type", vec!["a,b"]),
            ("mem-path", vec!["/a,b"]),
            ("k", vec!["v,"]),
        ]
    );
    // `,,,` is a comma and then the end of the value.
    let p = parse("t,k=a,,,share=on");
    assert_eq!(
        pairs(&p),
        [
            ("qom-type", vec!["t"]),
            ("k", vec!["a,"]),
            ("share", vec!["on"])
        ]
    );
    // An empty implied value.
    let p = parse(",id=m");
    assert_eq!(pairs(&p), [("qom-type", vec![""])]);
    // Values may be empty and may hold `=`.
    let p = parse("t,a=,b=x=y");
    assert_eq!(
        pairs(&p),
        [("qom-type", vec!["t"]), ("a", vec![""]), ("b", vec!["x=y"])]
    );
}

#[test]
fn unescaped_comma_makes_a_flag() {
    // The oracle's `mem-path=.../a,b`: `b` becomes a deprecated flag.
    let p = parse("t,mem-path=/a,b");
    assert_eq!(
        pairs(&p),
        [
            ("qom-type", vec!["t"]),
            ("mem-path", vec!["/a"]),
            ("b", vec!["on"])
        ]
    );
    assert_eq!(
        p.warnings,
        ["short-form boolean option 'b' deprecated\nPlease use b=on instead"]
    );
}

#[test]
fn short_form_booleans_and_their_warnings() {
    let p = parse("t,share,noshare,nodelay,delay");
    assert_eq!(
        pairs(&p),
        [
            ("qom-type", vec!["t"]),
            ("share", vec!["on", "off"]),
            ("delay", vec!["off", "on"]),
        ]
    );
    assert_eq!(
        p.warnings,
        [
            "short-form boolean option 'share' deprecated\nPlease use share=on instead",
            "short-form boolean option 'noshare' deprecated\nPlease use share=off instead",
            "short-form boolean option 'nodelay' deprecated\nPlease use nodelay=on instead",
            "short-form boolean option 'delay' deprecated\nPlease use nodelay=off instead",
        ]
    );
    // In a flag name `,,` is no escape: the second comma starts an empty flag.
    let p = parse("t,a,,b");
    assert_eq!(
        pairs(&p),
        [
            ("qom-type", vec!["t"]),
            ("a", vec!["on"]),
            ("", vec!["on"]),
            ("b", vec!["on"])
        ]
    );
    assert_eq!(p.warnings.len(), 3);
    assert_eq!(
        p.warnings[1],
        "short-form boolean option '' deprecated\nPlease use =on instead"
    );
}

#[test]
fn leading_space_json_is_opts_with_warnings() {
    // The oracle's json-form-leading-space row.
    let text = r#" {"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"/t/f"}"#;
    let p = parse(text);
    assert_eq!(p.id, None);
    assert_eq!(
        p.opts["qom-type"].values(),
        [r#" {"qom-type":"memory-backend-file""#]
    );
    assert_eq!(
        p.warnings,
        [
            "short-form boolean option '\"id\":\"m\"' deprecated\nPlease use \"id\":\"m\"=on instead",
            "short-form boolean option '\"size\":4194304' deprecated\nPlease use \"size\":4194304=on instead",
            "short-form boolean option '\"mem-path\":\"/t/f\"}' deprecated\nPlease use \"mem-path\":\"/t/f\"}=on instead",
        ]
    );
}

#[test]
fn help_flags_do_not_warn() {
    for text in ["t,help", "t,?", "t,help=x"] {
        let p = parse(text);
        assert!(p.wants_help(), "{text}");
        assert!(p.warnings.is_empty(), "{text}");
    }
    // `nohelp` is `help=off`: still a help key, but a warned flag.
    let p = parse("t,nohelp");
    assert!(p.wants_help());
    assert_eq!(p.warnings.len(), 1);
    // The implied value `help` is a type name here, not a key.
    assert!(!parse("help").wants_help());
    assert!(!parse("t,id=m").wants_help());
}

#[test]
fn first_id_wins() {
    let p = parse("t,id=a,id=b,size=1,id=c");
    assert_eq!(p.id.as_deref(), Some("a"));
    assert_eq!(pairs(&p), [("qom-type", vec!["t"]), ("size", vec!["1"])]);
    // The id is looked for before the implied key applies: a leading bare
    // `id` is the flag `id=on`, and it is also the type.
    let p = parse("id,size=1");
    assert_eq!(p.id.as_deref(), Some("on"));
    assert_eq!(pairs(&p), [("qom-type", vec!["id"]), ("size", vec!["1"])]);
    // `noid` as a later flag names `id` too: dropped, with its warning.
    let p = parse("t,noid");
    assert_eq!(p.id.as_deref(), Some("off"));
    assert_eq!(pairs(&p), [("qom-type", vec!["t"])]);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(parse("t,size=1").id, None);
}

#[test]
fn repeated_keys_keep_every_occurrence() {
    let p = parse("t,size=4M,host-nodes=0,size=8M,host-nodes=2-3");
    assert_eq!(p.opts["size"].values(), ["4M", "8M"]);
    assert_eq!(p.opts["size"].last(), "8M");
    assert_eq!(p.opts["host-nodes"].values(), ["0", "2-3"]);
    // Keys are case-sensitive and dots are plain characters.
    let p = parse("t,SIZE=1,size=2,host-nodes.0=0");
    assert_eq!(
        pairs(&p),
        [
            ("qom-type", vec!["t"]),
            ("SIZE", vec!["1"]),
            ("size", vec!["2"]),
            ("host-nodes.0", vec!["0"]),
        ]
    );
}

#[test]
fn trailing_comma_and_empty_input() {
    let p = parse("t,size=1,");
    assert_eq!(pairs(&p), [("qom-type", vec!["t"]), ("size", vec!["1"])]);
    assert!(p.warnings.is_empty());
    assert_eq!(parse(""), ParsedOpts::default());
    let p = parse(",");
    assert_eq!(pairs(&p), [("qom-type", vec![""])]);
}

#[test]
fn opts_value_accessors() {
    let mut v = OptsValue::new("1");
    v.push("2");
    assert_eq!(v, OptsValue::from_values(["1", "2"]));
    assert_eq!(v.last(), "2");
    assert_eq!(OptsValue::default().last(), "");
}
