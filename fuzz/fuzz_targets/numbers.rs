//! The number, boolean and size parsers, and the size printer.
//!
//! * Parsing never panics; a result is `Ok` or a typed error.
//! * What the integer parsers accept agrees with a plain reference: a
//!   decimal, `0x` hex or `0` octal magnitude that fits, the sign applied
//!   (modulo 2^64 for `parse_u64`, as `strtoull`); overflow is an error.
//! * Every `u64`, printed in decimal and in hex, parses back to itself as
//!   a size and as a `u64`; with a suffix (`K` to `E`), a multiple of the
//!   unit parses back exactly and one that overflows is out of range.
//! * `format_size_iec` (three significant digits) reads back with
//!   `parse_size` within the rounding of three digits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qom::value::{format_size_iec, parse_bool, parse_i64, parse_size, parse_u64, NumberError};

/// What base-0 `strtoull` reads from all of `s`: sign and magnitude
/// (`None` on overflow), or `None` when `s` is not all one number.
fn reference(s: &str) -> Option<(bool, Option<u64>)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        // "0x" without a hex digit: strtoull reads the "0" only, which
        // leaves "x..." over.
        (16, h)
    } else if t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    Some((
        negative,
        u128::from_str_radix(digits, radix)
            .ok()
            .and_then(|m| u64::try_from(m).ok()),
    ))
}

fn check_text(s: &str) {
    let r = reference(s);
    match (parse_u64(s), r) {
        (Ok(v), Some((neg, Some(m)))) => {
            assert_eq!(v, if neg { m.wrapping_neg() } else { m }, "{s:?}")
        }
        (Err(NumberError::OutOfRange), Some((_, None))) => {}
        (Err(NumberError::Invalid), None) => {}
        (got, want) => panic!("parse_u64({s:?}) = {got:?}, reference {want:?}"),
    }
    let want_i64 = r.map(|(neg, m)| {
        m.and_then(|m| {
            let wide = if neg { -i128::from(m) } else { i128::from(m) };
            i64::try_from(wide).ok()
        })
    });
    match (parse_i64(s), want_i64) {
        (Ok(v), Some(Some(w))) => assert_eq!(v, w, "{s:?}"),
        (Err(NumberError::OutOfRange), Some(None)) => {}
        (Err(NumberError::Invalid), None) => {}
        (got, want) => panic!("parse_i64({s:?}) = {got:?}, reference {want:?}"),
    }
    if let Ok(v) = parse_size(s) {
        // A size is never negative, and a plain decimal size is its value.
        assert!(!s.trim_start().starts_with('-'), "{s:?} accepted as {v}");
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            assert_eq!(Some(v), s.parse::<u64>().ok(), "{s:?}");
        }
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        assert!(s.parse::<u64>().is_err(), "{s:?} refused as a size");
    }
    if let Some(b) = parse_bool(s) {
        assert!(["on", "yes", "true", "y", "off", "no", "false", "n"].contains(&s));
        assert_eq!(b, ["on", "yes", "true", "y"].contains(&s));
    }
}

fn check_value(v: u64, unit: u8) {
    assert_eq!(parse_size(&v.to_string()), Ok(v));
    assert_eq!(parse_size(&format!("{v:#x}")), Ok(v));
    assert_eq!(parse_u64(&v.to_string()), Ok(v));
    assert_eq!(parse_u64(&format!("{v:#x}")), Ok(v));
    assert_eq!(parse_u64(&format!("{v:#o}").replacen("0o", "0", 1)), Ok(v));
    let signed = v as i64;
    assert_eq!(parse_i64(&signed.to_string()), Ok(signed));

    let (suffix, shift) = [
        ("K", 10),
        ("M", 20),
        ("G", 30),
        ("T", 40),
        ("P", 50),
        ("E", 60),
    ][usize::from(unit % 6)];
    let count = v >> (u32::from(unit) % 64);
    let text = format!("{count}{suffix}");
    match count.checked_mul(1 << shift) {
        Some(bytes) => assert_eq!(parse_size(&text), Ok(bytes), "{text:?}"),
        None => assert_eq!(parse_size(&text), Err(NumberError::OutOfRange), "{text:?}"),
    }
    assert_eq!(parse_size(&text.to_lowercase()), parse_size(&text));

    // "1.5 GiB" reads back as "1.5G"; three significant digits, rounded
    // half up, are within 0.5% (plus rounding to a byte) of the value.
    let printed = format_size_iec(v);
    let compact = printed.replace(' ', "").replace("iB", "").replace('B', "");
    if !compact.contains('e') {
        let back = match parse_size(&compact) {
            Ok(back) => back,
            // Within 0.5% of 2^64, three digits round up to "16 EiB".
            Err(NumberError::OutOfRange) if v as f64 >= u64::MAX as f64 * 0.995 => return,
            Err(e) => panic!("{v}: printed {printed:?}, read back {e}"),
        };
        let err = back.abs_diff(v) as f64;
        assert!(
            err <= v as f64 * 0.005 + 1.0,
            "{v} printed {printed:?} reads {back}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check_text(s);
    }
    if data.len() >= 9 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&data[..8]);
        check_value(u64::from_le_bytes(word), data[8]);
    }
});
