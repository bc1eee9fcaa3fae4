//! The QMP input stream: bytes in, values and errors out.
//!
//! * Cutting the input at arbitrary points gives the same messages as
//!   feeding it at once (the server reads whatever the socket has).
//! * Every value respects the limits in force: no more tokens and no
//!   deeper nesting than allowed.
//! * Every value, written as QMP writes it (and as plain JSON), parses
//!   back to itself as a single message.
//! * `finish` leaves the stream idle; `reset` forgets everything.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qom_fuzz::json_eq;
use qom_qmp::json_stream::Message;
use qom_qmp::protocol::to_wire;
use qom_qmp::{JsonStream, Limits};
use serde_json::Value;

/// The number of tokens a value was written with (duplicate keys are an
/// error, so a parsed value keeps every token it came from).
fn tokens(v: &Value) -> usize {
    match v {
        Value::Array(a) => 2 + a.len().saturating_sub(1) + a.iter().map(tokens).sum::<usize>(),
        Value::Object(m) => {
            2 + m.len().saturating_sub(1) + m.values().map(|v| 2 + tokens(v)).sum::<usize>()
        }
        _ => 1,
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The limits to use, from the first byte: small ones make the limit
/// paths reachable with short inputs.
fn limits(b: u8) -> Limits {
    let d = Limits::default();
    Limits {
        max_bytes: [d.max_bytes, 64, 512, 4096][usize::from(b & 3)],
        max_tokens: [d.max_tokens, 4, 32, 300][usize::from((b >> 2) & 3)],
        max_depth: [d.max_depth, 1, 3, 20][usize::from((b >> 4) & 3)],
    }
}

fn same(a: &[Message], b: &[Message]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Ok(p), Ok(q)) => json_eq(p, q),
            (Err(p), Err(q)) => p == q,
            _ => false,
        })
}

fn reparse(v: &Value, text: &str) {
    let got = JsonStream::new().feed(text.as_bytes());
    match got.as_slice() {
        [Ok(w)] => assert!(json_eq(v, w), "{text:?} came back as {w:?}"),
        other => panic!("{v:?} written as {text:?} reads as {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [control, seed, input @ ..] = data else {
        return;
    };
    let limits = limits(*control);
    let mut whole_stream = JsonStream::with_limits(limits);
    let whole = whole_stream.feed(input);

    // The same bytes in pieces of 1 to 16 bytes, cut where `seed` says.
    let mut pieces = JsonStream::with_limits(limits);
    let mut split = Vec::new();
    let mut rng = u32::from(*seed) | 0x100;
    let mut rest = input;
    while !rest.is_empty() {
        rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (((rng >> 16) % 16) as usize + 1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        pieces.feed_into(piece, &mut split);
        rest = tail;
    }
    assert!(same(&whole, &split), "whole {whole:?}\nsplit {split:?}");

    for m in &whole {
        match m {
            Ok(v) => {
                assert!(tokens(v) <= limits.max_tokens, "{v:?} over {limits:?}");
                assert!(depth(v) <= limits.max_depth, "{v:?} over {limits:?}");
                reparse(v, &to_wire(v));
                // A bare number or keyword ends at the next byte.
                reparse(v, &format!("{v}\n"));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    let mut finished = whole_stream.clone();
    let _ = finished.finish();
    assert!(finished.is_idle(), "finish left input pending");
    whole_stream.reset();
    assert!(whole_stream.is_idle());
    assert!(whole_stream.feed(b"[1]").len() == 1, "reset kept old input");
});
