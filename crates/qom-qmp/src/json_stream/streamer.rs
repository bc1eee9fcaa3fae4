//! The message splitter (QEMU's json-streamer).
//!
//! JSON on a QMP socket has no framing, so a message ends where its braces
//! and brackets balance. Tokens are collected until then and handed to the
//! parser as one message. The bounds of [`Limits`] are enforced here, on
//! the collected message, because this is where input accumulates without
//! end if a client never closes a structure.

use super::lexer::{Kind, Lexeme};
use super::{parser, JsonError, Limits, Message};

/// A collected token: its kind and where its text lies in the message buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tok {
    pub(super) kind: Kind,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// The message being collected.
#[derive(Debug, Clone)]
pub(super) struct Streamer {
    /// Text of all tokens, back to back; one buffer rather than a string
    /// per token keeps a large message to few allocations.
    text: Vec<u8>,
    tokens: Vec<Tok>,
    /// Signed: a closing character without its opener ends the message
    /// at once (as an error from the parser), as in QEMU.
    braces: i64,
    brackets: i64,
}

impl Streamer {
    pub(super) fn new() -> Self {
        Streamer {
            text: Vec::new(),
            tokens: Vec::new(),
            braces: 0,
            brackets: 0,
        }
    }

    /// Whether no message is partly collected.
    pub(super) fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Forgets the message being collected.
    pub(super) fn clear(&mut self) {
        self.text.clear();
        self.tokens.clear();
        self.braces = 0;
        self.brackets = 0;
    }

    /// Takes one lexeme; appends to `out` the message (or error) it ends.
    pub(super) fn accept(&mut self, lexeme: Lexeme<'_>, limits: &Limits, out: &mut Vec<Message>) {
        match lexeme {
            Lexeme::Token(kind, text) => self.token(kind, text, limits, out),
            Lexeme::Stray(text) => {
                // The error replaces the whole message it interrupted.
                self.clear();
                out.push(Err(JsonError::Stray(
                    String::from_utf8_lossy(text).into_owned(),
                )));
            }
            Lexeme::Oversized => {
                self.clear();
                out.push(Err(JsonError::TokenSizeLimit));
            }
        }
    }

    /// Parses what was collected, complete or not: the end of input.
    pub(super) fn finish(&mut self, out: &mut Vec<Message>) {
        if !self.is_empty() {
            self.end_message(out);
        }
    }

    fn token(&mut self, kind: Kind, text: &[u8], limits: &Limits, out: &mut Vec<Message>) {
        match kind {
            Kind::LCurly => self.braces += 1,
            Kind::RCurly => self.braces -= 1,
            Kind::LSquare => self.brackets += 1,
            Kind::RSquare => self.brackets -= 1,
            _ => {}
        }
        // The `+ 1`s and the checks before storing match QEMU, so a
        // message fails at the same token as there.
        let limit_error = if self.text.len() + text.len() + 1 > limits.max_bytes {
            Some(JsonError::TokenSizeLimit)
        } else if self.tokens.len() + 1 > limits.max_tokens {
            Some(JsonError::TokenCountLimit)
        } else if self.braces + self.brackets > limits.max_depth as i64 {
            Some(JsonError::NestingLimit)
        } else {
            None
        };
        if let Some(e) = limit_error {
            self.clear();
            out.push(Err(e));
            return;
        }
        let start = self.text.len();
        self.text.extend_from_slice(text);
        self.tokens.push(Tok {
            kind,
            start,
            end: self.text.len(),
        });
        let open = self.braces > 0 || self.brackets > 0;
        if open && self.braces >= 0 && self.brackets >= 0 {
            return;
        }
        self.end_message(out);
    }

    fn end_message(&mut self, out: &mut Vec<Message>) {
        let result = parser::parse(&self.text, &self.tokens);
        self.clear();
        out.push(result);
    }
}
