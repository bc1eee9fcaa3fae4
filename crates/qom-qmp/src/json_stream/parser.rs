//! The parser for one collected message (QEMU's json-parser).
//!
//! A recursive descent over the tokens the splitter collected. Its error
//! texts are QEMU's, word for word, because clients and test suites match
//! on them. String contents are decoded here, not in the tokenizer, as in
//! QEMU: a bad escape or invalid UTF-8 fails the whole message with the
//! parser's wording instead of starting lexical recovery.

use super::lexer::Kind;
use super::streamer::Tok;
use super::{JsonError, Message};
use serde_json::{Map, Number, Value};

/// Parses the tokens of one message, whose text lies in `text`.
pub(super) fn parse(text: &[u8], tokens: &[Tok]) -> Message {
    let mut p = Parser {
        text,
        tokens,
        pos: 0,
        err: None,
    };
    match p.value() {
        Some(v) if p.err.is_none() => Ok(v),
        _ => Err(p
            .err
            .unwrap_or_else(|| JsonError::Syntax("expecting value".into()))),
    }
}

/// Recursive-descent parser over the tokens of one message. The first
/// error recorded wins, as in QEMU, which decides the message text.
struct Parser<'a> {
    text: &'a [u8],
    tokens: &'a [Tok],
    pos: usize,
    err: Option<JsonError>,
}

impl Parser<'_> {
    /// Records `detail` unless an error is already recorded; returns
    /// `None` so that callers can give up with `return self.fail(..)`.
    fn fail<T>(&mut self, detail: impl Into<String>) -> Option<T> {
        if self.err.is_none() {
            self.err = Some(JsonError::Syntax(detail.into()));
        }
        None
    }

    fn peek(&self) -> Option<Tok> {
        self.tokens.get(self.pos).copied()
    }

    /// The next token, where the grammar requires one: running out is
    /// QEMU's "premature EOI".
    fn peek_more(&mut self) -> Option<Tok> {
        match self.peek() {
            Some(t) => Some(t),
            None => self.fail("premature EOI"),
        }
    }

    /// Like [`peek_more`](Self::peek_more), consuming the token.
    fn pop_more(&mut self) -> Option<Tok> {
        let t = self.peek_more()?;
        self.pos += 1;
        Some(t)
    }

    /// Consumes the next token if it is of `kind`.
    fn eat(&mut self, kind: Kind) -> bool {
        let hit = self.peek().is_some_and(|t| t.kind == kind);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Consumes the opening brace or bracket at the cursor; `Some(true)`
    /// if `close` follows at once, so the container is empty.
    fn open(&mut self, close: Kind) -> Option<bool> {
        self.pos += 1;
        self.peek_more()?;
        Some(self.eat(close))
    }

    fn raw(&self, t: Tok) -> &[u8] {
        &self.text[t.start..t.end]
    }

    fn value(&mut self) -> Option<Value> {
        let t = self.peek_more()?;
        match t.kind {
            Kind::LCurly => self.object(),
            Kind::LSquare => self.array(),
            Kind::Str => {
                self.pos += 1;
                self.string(t).map(Value::String)
            }
            Kind::Integer | Kind::Float => {
                self.pos += 1;
                Some(Value::Number(self.number(t)))
            }
            Kind::Keyword => {
                self.pos += 1;
                match self.raw(t) {
                    b"true" => Some(Value::Bool(true)),
                    b"false" => Some(Value::Bool(false)),
                    b"null" => Some(Value::Null),
                    other => {
                        let word = String::from_utf8_lossy(other).into_owned();
                        self.fail(format!("invalid keyword '{word}'"))
                    }
                }
            }
            _ => self.fail("expecting value"),
        }
    }

    fn object(&mut self) -> Option<Value> {
        let mut map = Map::new();
        if self.open(Kind::RCurly)? {
            return Some(Value::Object(map));
        }
        self.pair(&mut map)?;
        loop {
            match self.pop_more()?.kind {
                Kind::RCurly => return Some(Value::Object(map)),
                Kind::Comma => self.pair(&mut map)?,
                _ => return self.fail("expected separator in dict"),
            }
        }
    }

    fn pair(&mut self, map: &mut Map<String, Value>) -> Option<()> {
        self.peek_more()?;
        let Some(Value::String(key)) = self.value() else {
            return self.fail("key is not a string in object");
        };
        if self.pop_more()?.kind != Kind::Colon {
            return self.fail("missing : in object pair");
        }
        let Some(value) = self.value() else {
            return self.fail("Missing value in dict");
        };
        if map.contains_key(&key) {
            return self.fail("duplicate key");
        }
        map.insert(key, value);
        Some(())
    }

    fn array(&mut self) -> Option<Value> {
        let mut list = Vec::new();
        if self.open(Kind::RSquare)? {
            return Some(Value::Array(list));
        }
        loop {
            let Some(v) = self.value() else {
                return self.fail("expecting value");
            };
            list.push(v);
            match self.pop_more()?.kind {
                Kind::RSquare => return Some(Value::Array(list)),
                Kind::Comma => {}
                _ => return self.fail("expected separator in list"),
            }
        }
    }

    fn number(&self, t: Tok) -> Number {
        // The tokenizer guarantees ASCII digits, sign, '.', 'e'.
        let s = std::str::from_utf8(self.raw(t)).unwrap_or("0");
        if t.kind == Kind::Integer {
            if let Ok(i) = s.parse::<i64>() {
                return Number::from(i);
            }
            if !s.starts_with('-') {
                if let Ok(u) = s.parse::<u64>() {
                    return Number::from(u);
                }
            }
        }
        let f: f64 = s.parse().unwrap_or(0.0);
        // JSON has no infinities; keep out-of-range numbers numeric by
        // saturating (QEMU would carry an infinite double).
        let f = if f.is_finite() {
            f
        } else {
            f.signum() * f64::MAX
        };
        Number::from_f64(f).unwrap_or_else(|| Number::from(0))
    }

    fn string(&mut self, t: Tok) -> Option<String> {
        let raw = self.raw(t);
        let quote = raw[0];
        let mut out = String::with_capacity(raw.len());
        let mut i = 1;
        while i < raw.len() && raw[i] != quote {
            if raw[i] == b'\\' {
                let beg = i;
                let esc = raw.get(i + 1).copied().unwrap_or(0);
                i += 2;
                match esc {
                    b'"' => out.push('"'),
                    b'\'' => out.push('\''),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let mut cp = hex4(raw, i);
                        i += 4;
                        if (0xd800..=0xdbff).contains(&cp)
                            && raw.get(i) == Some(&b'\\')
                            && raw.get(i + 1) == Some(&b'u')
                        {
                            let low = hex4(raw, i + 2);
                            if (0xdc00..=0xdfff).contains(&low) {
                                cp = 0x10000 + ((cp & 0x3ff) << 10) + (low & 0x3ff);
                                i += 6;
                            } else {
                                cp = -1;
                            }
                        }
                        match u32::try_from(cp)
                            .ok()
                            .filter(|&c| valid_codepoint(c))
                            .and_then(char::from_u32)
                        {
                            Some(c) => out.push(c),
                            None => {
                                let shown = String::from_utf8_lossy(&raw[beg..i.min(raw.len())])
                                    .into_owned();
                                return self
                                    .fail(format!("{shown} is not a valid Unicode character"));
                            }
                        }
                    }
                    _ => return self.fail("invalid escape sequence in string"),
                }
            } else {
                match decode_mod_utf8(raw, i) {
                    Some((c, next)) => {
                        out.push(c);
                        i = next;
                    }
                    None => return self.fail("invalid UTF-8 sequence in string"),
                }
            }
        }
        Some(out)
    }
}

/// Four hex digits at `at`, or -1.
fn hex4(raw: &[u8], at: usize) -> i64 {
    let Some(digits) = raw.get(at..at + 4) else {
        return -1;
    };
    let mut cp = 0i64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return -1,
        };
        cp = (cp << 4) | i64::from(v);
    }
    cp
}

/// QEMU's notion of a character it will carry in a string: in range, not a
/// surrogate, not a noncharacter.
fn valid_codepoint(cp: u32) -> bool {
    cp <= 0x10ffff
        && (cp & 0xffff_f800) != 0xd800
        && !(0xfdd0..=0xfdef).contains(&cp)
        && (cp & 0xfffe) != 0xfffe
}

/// Decode one character of "modified UTF-8" (UTF-8 that also allows the
/// two-byte form of U+0000) at `at`; returns it and the next position.
fn decode_mod_utf8(raw: &[u8], at: usize) -> Option<(char, usize)> {
    let b0 = raw[at];
    if b0 < 0x80 {
        return Some((char::from(b0), at + 1));
    }
    if b0 >= 0xfe || b0 & 0x40 == 0 {
        return None;
    }
    let len = b0.leading_ones() as usize; // 2..=6
    let mut cp = u32::from(b0) & (0x7f >> len);
    for k in 1..len {
        let b = *raw.get(at + k)?;
        if b & 0xc0 != 0x80 {
            return None;
        }
        cp = (cp << 6) | u32::from(b & 0x3f);
    }
    const MIN: [u32; 5] = [0x80, 0x800, 0x10000, 0x20_0000, 0x400_0000];
    if !valid_codepoint(cp) || (cp < MIN[len - 2] && !(cp == 0 && len == 2)) {
        return None;
    }
    char::from_u32(cp).map(|c| (c, at + len))
}
