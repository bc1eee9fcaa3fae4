//! Incremental splitting and parsing of the QMP input stream.
//!
//! QMP input is a stream of JSON values with no framing of its own: several
//! values may arrive in one read, and one value may be spread over many
//! reads. [`JsonStream`] accepts the bytes as they come and hands back every
//! complete value (or error) in order.
//!
//! It follows the three stages QEMU uses, so that clients see the same
//! answers for the same bytes:
//!
//! 1. a byte-level tokenizer that knows QEMU's extensions (single-quoted
//!    strings, `\'` as an escape) and that, after a lexical error, skips input
//!    until a structural character or a control character before it starts
//!    over;
//! 2. a splitter that collects tokens until the curly braces and square
//!    brackets balance (or one of them goes negative), enforcing bounds on
//!    the total size, the number of tokens and the nesting depth;
//! 3. a recursive-descent parser for one collected value, whose errors carry
//!    QEMU's wording (`JSON parse error, expecting value`, ...).
//!
//! A value that is not enclosed in braces or brackets (a bare string, number
//! or keyword) is complete as soon as its token is, just as in QEMU.

use serde_json::{Map, Number, Value};
use std::fmt;

/// Bounds that keep one message from using unbounded memory.
///
/// QEMU allows 64 MiB of token text, 2 Mi tokens and a nesting depth of 1024
/// per message. The defaults here are smaller for size and token count
/// (16 MiB, 1 Mi tokens) and the same for depth. When a bound is crossed the
/// stream reports the same error QEMU reports and starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of bytes of token text in one message (whitespace is
    /// not counted). A single token longer than this is cut off as well.
    pub max_bytes: usize,
    /// Maximum number of tokens in one message.
    pub max_tokens: usize,
    /// Maximum nesting depth of objects and arrays together.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 20,
            max_tokens: 1 << 20,
            max_depth: 1024,
        }
    }
}

/// Why a stretch of input did not yield a value.
///
/// `Display` renders QEMU's text for the condition; in QMP all of these are
/// reported with class `GenericError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// A byte sequence that is no token at all; carries the offending text
    /// (`JSON parse error, stray 'TEXT'`).
    Stray(String),
    /// A grammar or string-content error (`JSON parse error, DETAIL`).
    Syntax(String),
    /// The message grew past [`Limits::max_bytes`].
    TokenSizeLimit,
    /// The message has more than [`Limits::max_tokens`] tokens.
    TokenCountLimit,
    /// The message nests deeper than [`Limits::max_depth`].
    NestingLimit,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Stray(text) => write!(f, "JSON parse error, stray '{text}'"),
            JsonError::Syntax(detail) => write!(f, "JSON parse error, {detail}"),
            JsonError::TokenSizeLimit => f.write_str("JSON token size limit exceeded"),
            JsonError::TokenCountLimit => f.write_str("JSON token count limit exceeded"),
            JsonError::NestingLimit => f.write_str("JSON nesting depth limit exceeded"),
        }
    }
}

impl std::error::Error for JsonError {}

impl From<JsonError> for qom::Error {
    fn from(e: JsonError) -> Self {
        qom::Error::Generic(e.to_string())
    }
}

/// One result of feeding input: a complete value or the error that replaced it.
pub type Message = Result<Value, JsonError>;

/// Kinds of tokens handed from the tokenizer to the splitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Str,
    Integer,
    Float,
    Keyword,
}

/// Tokenizer states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Start,
    Recovery,
    DqString,
    DqEscape,
    SqString,
    SqEscape,
    Zero,
    Sign,
    Digits,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

/// What the tokenizer does with one byte in one state.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Take the byte into the current token and move to the state.
    Go(Lex),
    /// Take the byte; the token is complete.
    Done(Kind),
    /// The token ended just before this byte; emit it and look at the byte
    /// again from the start state.
    DoneBefore(Kind),
    /// Take the byte; the token so far is garbage.
    Error,
    /// Drop the byte (whitespace between tokens, or skipped garbage).
    Skip,
    /// Leave recovery; look at the byte again from the start state.
    Resync,
}

fn step(state: Lex, b: u8) -> Step {
    use Lex::*;
    use Step::*;
    match state {
        Start => match b {
            b'"' => Go(DqString),
            b'\'' => Go(SqString),
            b'0' => Go(Zero),
            b'1'..=b'9' => Go(Digits),
            b'-' => Go(Sign),
            b'{' => Done(Kind::LCurly),
            b'}' => Done(Kind::RCurly),
            b'[' => Done(Kind::LSquare),
            b']' => Done(Kind::RSquare),
            b',' => Done(Kind::Comma),
            b':' => Done(Kind::Colon),
            b'a'..=b'z' => Go(Keyword),
            b' ' | b'\t' | b'\r' | b'\n' => Skip,
            _ => Error,
        },
        Recovery => match b {
            b'\t' => Skip,
            0..=0x1f | 0xfe | 0xff => Resync,
            b'[' | b']' | b'{' | b'}' | b':' | b',' => Resync,
            _ => Skip,
        },
        DqString | SqString => {
            let quote = if state == DqString { b'"' } else { b'\'' };
            match b {
                b'\\' => Go(if state == DqString {
                    DqEscape
                } else {
                    SqEscape
                }),
                _ if b == quote => Done(Kind::Str),
                0x20..=0xfd => Go(state),
                _ => Error,
            }
        }
        DqEscape => match b {
            0x20..=0xfd => Go(DqString),
            _ => Error,
        },
        SqEscape => match b {
            0x20..=0xfd => Go(SqString),
            _ => Error,
        },
        Zero => match b {
            b'0'..=b'9' => Error,
            b'.' => Go(Mantissa),
            _ => DoneBefore(Kind::Integer),
        },
        Sign => match b {
            b'0' => Go(Zero),
            b'1'..=b'9' => Go(Digits),
            _ => Error,
        },
        Digits => match b {
            b'0'..=b'9' => Go(Digits),
            b'e' | b'E' => Go(ExpE),
            b'.' => Go(Mantissa),
            _ => DoneBefore(Kind::Integer),
        },
        Mantissa => match b {
            b'0'..=b'9' => Go(MantissaDigits),
            _ => Error,
        },
        MantissaDigits => match b {
            b'0'..=b'9' => Go(MantissaDigits),
            b'e' | b'E' => Go(ExpE),
            _ => DoneBefore(Kind::Float),
        },
        ExpE => match b {
            b'-' | b'+' => Go(ExpSign),
            b'0'..=b'9' => Go(ExpDigits),
            _ => Error,
        },
        ExpSign => match b {
            b'0'..=b'9' => Go(ExpDigits),
            _ => Error,
        },
        ExpDigits => match b {
            b'0'..=b'9' => Go(ExpDigits),
            _ => DoneBefore(Kind::Float),
        },
        Keyword => match b {
            b'a'..=b'z' => Go(Keyword),
            _ => DoneBefore(Kind::Keyword),
        },
    }
}

/// A collected token: its kind and where its text lies in the message buffer.
#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

/// The incremental QMP input parser.
///
/// ```
/// use qom_qmp::json_stream::JsonStream;
/// use serde_json::json;
///
/// let mut s = JsonStream::new();
/// assert!(s.feed(b"{'execute': \"quit\"").is_empty());
/// let got = s.feed(b"} [1,").into_iter().collect::<Vec<_>>();
/// assert_eq!(got, vec![Ok(json!({"execute": "quit"}))]);
/// let got = s.feed(b" 2]\n");
/// assert_eq!(got, vec![Ok(json!([1, 2]))]);
/// ```
#[derive(Debug, Clone)]
pub struct JsonStream {
    limits: Limits,
    state: Lex,
    /// Text of the token being scanned.
    token: Vec<u8>,
    /// Text of all tokens of the message being collected.
    text: Vec<u8>,
    tokens: Vec<Tok>,
    braces: i64,
    brackets: i64,
}

impl Default for JsonStream {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonStream {
    /// A parser with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A parser with the given bounds.
    pub fn with_limits(limits: Limits) -> Self {
        JsonStream {
            limits,
            state: Lex::Start,
            token: Vec::new(),
            text: Vec::new(),
            tokens: Vec::new(),
            braces: 0,
            brackets: 0,
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Forget any partial input, as after a reconnect.
    pub fn reset(&mut self) {
        self.state = Lex::Start;
        self.token.clear();
        self.clear_message();
    }

    /// Whether nothing is pending: no partial token and no partial message.
    pub fn is_idle(&self) -> bool {
        self.state == Lex::Start && self.tokens.is_empty()
    }

    /// Feed bytes; returns every value (or error) completed by them, in order.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Message> {
        let mut out = Vec::new();
        self.feed_into(data, &mut out);
        out
    }

    /// Like [`feed`](Self::feed), appending to `out` instead of allocating.
    pub fn feed_into(&mut self, data: &[u8], out: &mut Vec<Message>) {
        for &b in data {
            self.feed_byte(b, out);
        }
    }

    /// Signal the end of input: a pending number or keyword is completed, a
    /// pending string or structure becomes an error. QEMU's monitor does not
    /// do this when a client goes away (it simply drops partial input); it
    /// is here for other users of the parser.
    pub fn finish(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while self.state != Lex::Start {
            match step(self.state, 0) {
                Step::DoneBefore(kind) => {
                    self.token_done(kind, &mut out);
                    self.state = Lex::Start;
                }
                Step::Resync => self.state = Lex::Start,
                // A NUL byte is an error in every other non-start state.
                _ => {
                    self.lex_error(&mut out);
                }
            }
        }
        if !self.tokens.is_empty() {
            let result = self.parse_message();
            self.clear_message();
            out.push(result);
        }
        out
    }

    fn feed_byte(&mut self, b: u8, out: &mut Vec<Message>) {
        loop {
            match step(self.state, b) {
                Step::Go(next) => {
                    self.token.push(b);
                    self.state = next;
                    break;
                }
                Step::Done(kind) => {
                    self.token.push(b);
                    self.token_done(kind, out);
                    self.state = Lex::Start;
                    break;
                }
                Step::DoneBefore(kind) => {
                    self.token_done(kind, out);
                    self.state = Lex::Start;
                }
                Step::Error => {
                    self.token.push(b);
                    self.lex_error(out);
                    break;
                }
                Step::Skip => break,
                Step::Resync => self.state = Lex::Start,
            }
        }
        if self.token.len() > self.limits.max_bytes {
            // One token alone is too big: give up on the message and start
            // scanning afresh right after it (QEMU does the same).
            self.token.clear();
            self.state = Lex::Start;
            self.clear_message();
            out.push(Err(JsonError::TokenSizeLimit));
        }
    }

    fn lex_error(&mut self, out: &mut Vec<Message>) {
        let text = String::from_utf8_lossy(&self.token).into_owned();
        self.token.clear();
        self.state = Lex::Recovery;
        self.clear_message();
        out.push(Err(JsonError::Stray(text)));
    }

    fn clear_message(&mut self) {
        self.text.clear();
        self.tokens.clear();
        self.braces = 0;
        self.brackets = 0;
    }

    fn token_done(&mut self, kind: Kind, out: &mut Vec<Message>) {
        match kind {
            Kind::LCurly => self.braces += 1,
            Kind::RCurly => self.braces -= 1,
            Kind::LSquare => self.brackets += 1,
            Kind::RSquare => self.brackets -= 1,
            _ => {}
        }
        let limit_error = if self.text.len() + self.token.len() + 1 > self.limits.max_bytes {
            Some(JsonError::TokenSizeLimit)
        } else if self.tokens.len() + 1 > self.limits.max_tokens {
            Some(JsonError::TokenCountLimit)
        } else if self.braces + self.brackets > self.limits.max_depth as i64 {
            Some(JsonError::NestingLimit)
        } else {
            None
        };
        if let Some(e) = limit_error {
            self.token.clear();
            self.clear_message();
            out.push(Err(e));
            return;
        }
        let start = self.text.len();
        self.text.extend_from_slice(&self.token);
        self.token.clear();
        self.tokens.push(Tok {
            kind,
            start,
            end: self.text.len(),
        });
        let open = self.braces > 0 || self.brackets > 0;
        if open && self.braces >= 0 && self.brackets >= 0 {
            return;
        }
        let result = self.parse_message();
        self.clear_message();
        out.push(result);
    }

    fn parse_message(&self) -> Message {
        let mut p = Parser {
            text: &self.text,
            tokens: &self.tokens,
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
    fn fail(&mut self, detail: impl Into<String>) {
        if self.err.is_none() {
            self.err = Some(JsonError::Syntax(detail.into()));
        }
    }

    fn peek(&self) -> Option<Tok> {
        self.tokens.get(self.pos).copied()
    }

    fn pop(&mut self) -> Option<Tok> {
        let t = self.peek();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn raw(&self, t: Tok) -> &[u8] {
        &self.text[t.start..t.end]
    }

    fn value(&mut self) -> Option<Value> {
        let Some(t) = self.peek() else {
            self.fail("premature EOI");
            return None;
        };
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
                        self.fail(format!("invalid keyword '{word}'"));
                        None
                    }
                }
            }
            _ => {
                self.fail("expecting value");
                None
            }
        }
    }

    fn object(&mut self) -> Option<Value> {
        self.pos += 1; // the '{'
        let mut map = Map::new();
        let Some(peek) = self.peek() else {
            self.fail("premature EOI");
            return None;
        };
        if peek.kind == Kind::RCurly {
            self.pos += 1;
            return Some(Value::Object(map));
        }
        self.pair(&mut map)?;
        loop {
            let Some(t) = self.pop() else {
                self.fail("premature EOI");
                return None;
            };
            match t.kind {
                Kind::RCurly => return Some(Value::Object(map)),
                Kind::Comma => self.pair(&mut map)?,
                _ => {
                    self.fail("expected separator in dict");
                    return None;
                }
            }
        }
    }

    fn pair(&mut self, map: &mut Map<String, Value>) -> Option<()> {
        if self.peek().is_none() {
            self.fail("premature EOI");
            return None;
        }
        let key = match self.value() {
            Some(Value::String(k)) => k,
            _ => {
                self.fail("key is not a string in object");
                return None;
            }
        };
        let Some(colon) = self.pop() else {
            self.fail("premature EOI");
            return None;
        };
        if colon.kind != Kind::Colon {
            self.fail("missing : in object pair");
            return None;
        }
        let Some(value) = self.value() else {
            self.fail("Missing value in dict");
            return None;
        };
        if map.contains_key(&key) {
            self.fail("duplicate key");
            return None;
        }
        map.insert(key, value);
        Some(())
    }

    fn array(&mut self) -> Option<Value> {
        self.pos += 1; // the '['
        let mut list = Vec::new();
        let Some(peek) = self.peek() else {
            self.fail("premature EOI");
            return None;
        };
        if peek.kind == Kind::RSquare {
            self.pos += 1;
            return Some(Value::Array(list));
        }
        loop {
            let Some(v) = self.value() else {
                self.fail("expecting value");
                return None;
            };
            list.push(v);
            let Some(t) = self.pop() else {
                self.fail("premature EOI");
                return None;
            };
            match t.kind {
                Kind::RSquare => return Some(Value::Array(list)),
                Kind::Comma => {}
                _ => {
                    self.fail("expected separator in list");
                    return None;
                }
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
                                self.fail(format!("{shown} is not a valid Unicode character"));
                                return None;
                            }
                        }
                    }
                    _ => {
                        self.fail("invalid escape sequence in string");
                        return None;
                    }
                }
            } else {
                match decode_mod_utf8(raw, i) {
                    Some((c, next)) => {
                        out.push(c);
                        i = next;
                    }
                    None => {
                        self.fail("invalid UTF-8 sequence in string");
                        return None;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(input: &[u8]) -> Vec<Result<Value, String>> {
        JsonStream::new()
            .feed(input)
            .into_iter()
            .map(|m| m.map_err(|e| e.to_string()))
            .collect()
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
        assert_eq!(
            texts(br#"["\ud800"]"#),
            vec![Err(
                "JSON parse error, \\ud800 is not a valid Unicode character".into()
            )]
        );
        assert_eq!(
            texts(br#"["\x"]"#),
            vec![Err(
                "JSON parse error, invalid escape sequence in string".into()
            )]
        );
        assert_eq!(
            texts(b"[\"\xc3\"]"),
            vec![Err(
                "JSON parse error, invalid UTF-8 sequence in string".into()
            )]
        );
        assert_eq!(texts(b"\"\xc0\x80\""), vec![Ok(json!("\u{0}"))]);
    }

    #[test]
    fn grammar_errors() {
        assert_eq!(
            texts(b"{]"),
            vec![Err("JSON parse error, expecting value".into())]
        );
        assert_eq!(
            texts(b"{1: 2}"),
            vec![Err("JSON parse error, key is not a string in object".into())]
        );
        assert_eq!(
            texts(b"{\"a\" 2}"),
            vec![Err("JSON parse error, missing : in object pair".into())]
        );
        assert_eq!(
            texts(b"{\"a\": 1 \"b\": 2}"),
            vec![Err("JSON parse error, expected separator in dict".into())]
        );
        assert_eq!(
            texts(b"[1 2]"),
            vec![Err("JSON parse error, expected separator in list".into())]
        );
        assert_eq!(
            texts(b"{\"a\": 1, \"a\": 2}"),
            vec![Err("JSON parse error, duplicate key".into())]
        );
        assert_eq!(
            texts(b"[nul]"),
            vec![Err("JSON parse error, invalid keyword 'nul'".into())]
        );
        assert_eq!(
            texts(b"[1,]"),
            vec![Err("JSON parse error, expecting value".into())]
        );
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
}
