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

mod lexer;
mod parser;
mod streamer;
#[cfg(test)]
mod tests;

use lexer::Lexer;
use serde_json::Value;
use std::fmt;
use streamer::Streamer;

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
    lexer: Lexer,
    streamer: Streamer,
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
            lexer: Lexer::new(),
            streamer: Streamer::new(),
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Forget any partial input, as after a reconnect.
    pub fn reset(&mut self) {
        self.lexer.reset();
        self.streamer.clear();
    }

    /// Whether nothing is pending: no partial token and no partial message.
    pub fn is_idle(&self) -> bool {
        self.lexer.is_idle() && self.streamer.is_empty()
    }

    /// Feed bytes; returns every value (or error) completed by them, in order.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Message> {
        let mut out = Vec::new();
        self.feed_into(data, &mut out);
        out
    }

    /// Like [`feed`](Self::feed), appending to `out` instead of allocating.
    pub fn feed_into(&mut self, data: &[u8], out: &mut Vec<Message>) {
        let JsonStream {
            limits,
            lexer,
            streamer,
        } = self;
        let mut emit = |lexeme: lexer::Lexeme<'_>| streamer.accept(lexeme, limits, out);
        for &b in data {
            lexer.push(b, limits.max_bytes, &mut emit);
        }
    }

    /// Signal the end of input: a pending number or keyword is completed, a
    /// pending string or structure becomes an error. QEMU's monitor does not
    /// do this when a client goes away (it simply drops partial input); it
    /// is here for other users of the parser.
    pub fn finish(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let JsonStream {
            limits,
            lexer,
            streamer,
        } = self;
        lexer.finish(&mut |lexeme| streamer.accept(lexeme, limits, &mut out));
        streamer.finish(&mut out);
        out
    }
}
