//! Whole-stream tests: bytes in, values and QEMU's error texts out, since
//! that is the contract the three stages share.

use super::*;
use serde_json::json;

fn texts(input: &[u8]) -> Vec<Result<Value, String>> {
    JsonStream::new()
        .feed(input)
        .into_iter()
        .map(|m| m.map_err(|e| e.to_string()))
        .collect()
}

/// Each input yields exactly one error, `JSON parse error, DETAIL`.
fn assert_one_error(cases: &[(&[u8], &str)]) {
    for (input, detail) in cases {
        assert_eq!(
            texts(input),
            vec![Err(format!("JSON parse error, {detail}"))],
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn bare_word_inside_object() {
    assert_eq!(
        texts(b"{\"execute\": qom-list}\n"),
        vec![
            Err("JSON parse error, stray '-l'".into()),
            Err("JSON parse error, expecting value".into())
        ]
    );
}

#[test]
fn scalars_complete_on_delimiter() {
    assert_eq!(texts(b"12"), vec![]);
    assert_eq!(
        texts(b"12 \"a\" true\n"),
        vec![Ok(json!(12)), Ok(json!("a")), Ok(json!(true))]
    );
}

#[test]
fn numbers() {
    assert_eq!(
        texts(b"[-0, 18446744073709551615, -9223372036854775809, 1.5e3, 0.25]"),
        vec![Ok(json!([
            0,
            18446744073709551615u64,
            -9223372036854775809.0f64,
            1500.0,
            0.25
        ]))]
    );
    assert_eq!(
        texts(b"01"),
        vec![Err("JSON parse error, stray '01'".into())]
    );
}

#[test]
fn strings_and_escapes() {
    assert_eq!(
        texts(br#"['it\'s', "a\"b", "\u00e9\ud83d\ude00", 'say "hi"']"#),
        vec![Ok(json!(["it's", "a\"b", "\u{e9}\u{1f600}", "say \"hi\""]))]
    );
    assert_one_error(&[
        (br#"["\ud800"]"#, "\\ud800 is not a valid Unicode character"),
        (br#"["\x"]"#, "invalid escape sequence in string"),
        (b"[\"\xc3\"]", "invalid UTF-8 sequence in string"),
    ]);
    assert_eq!(texts(b"\"\xc0\x80\""), vec![Ok(json!("\u{0}"))]);
}

#[test]
fn grammar_errors() {
    assert_one_error(&[
        (b"{]", "expecting value"),
        (b"{1: 2}", "key is not a string in object"),
        (b"{\"a\" 2}", "missing : in object pair"),
        (b"{\"a\": 1 \"b\": 2}", "expected separator in dict"),
        (b"[1 2]", "expected separator in list"),
        (b"{\"a\": 1, \"a\": 2}", "duplicate key"),
        (b"[nul]", "invalid keyword 'nul'"),
        (b"[1,]", "expecting value"),
    ]);
}

#[test]
fn finish_flushes() {
    let mut s = JsonStream::new();
    assert!(s.feed(b"42").is_empty());
    assert_eq!(s.finish(), vec![Ok(json!(42))]);
    assert!(s.feed(b"[1, ").is_empty());
    assert_eq!(
        s.finish(),
        vec![Err(JsonError::Syntax("premature EOI".into()))]
    );
    assert!(s.is_idle());
}
