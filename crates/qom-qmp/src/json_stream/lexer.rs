//! The byte-level tokenizer (QEMU's json-lexer).
//!
//! It is a state machine over single bytes so that a token may be split
//! across any number of reads. QEMU's extensions are part of the grammar:
//! single-quoted strings and `\'` as an escape. After a lexical error it
//! skips input until a structural or control character, as QEMU does, so a
//! client that sent garbage gets one error and a clean start rather than an
//! error per byte.

/// Kinds of tokens handed from the tokenizer to the splitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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

/// What the tokenizer hands on. The text borrows the tokenizer's buffer,
/// which is cleared right after, so the splitter copies what it keeps.
#[derive(Debug)]
pub(super) enum Lexeme<'a> {
    /// A complete token and its text.
    Token(Kind, &'a [u8]),
    /// Text that is no token; recovery has begun.
    Stray(&'a [u8]),
    /// The token being scanned grew past the size bound and was dropped.
    Oversized,
}

/// Tokenizer state that survives between reads: the state machine's
/// position and the text of the token being scanned.
#[derive(Debug, Clone)]
pub(super) struct Lexer {
    state: Lex,
    token: Vec<u8>,
}

impl Lexer {
    pub(super) fn new() -> Self {
        Lexer {
            state: Lex::Start,
            token: Vec::new(),
        }
    }

    /// Drops a partial token and leaves recovery.
    pub(super) fn reset(&mut self) {
        self.state = Lex::Start;
        self.token.clear();
    }

    /// Whether no token is in progress (nor recovery).
    pub(super) fn is_idle(&self) -> bool {
        self.state == Lex::Start
    }

    /// Scans one byte, handing every lexeme it completes to `emit`. A
    /// single token longer than `max_bytes` is cut off here because the
    /// splitter never sees an unfinished token and so could not bound it.
    pub(super) fn push(&mut self, b: u8, max_bytes: usize, emit: &mut impl FnMut(Lexeme<'_>)) {
        loop {
            match step(self.state, b) {
                Step::Go(next) => {
                    self.token.push(b);
                    self.state = next;
                    break;
                }
                Step::Done(kind) => {
                    self.token.push(b);
                    self.emit_token(kind, emit);
                    break;
                }
                Step::DoneBefore(kind) => self.emit_token(kind, emit),
                Step::Error => {
                    self.token.push(b);
                    self.emit_stray(emit);
                    break;
                }
                Step::Skip => break,
                Step::Resync => self.state = Lex::Start,
            }
        }
        if self.token.len() > max_bytes {
            // Scanning starts afresh right after the oversized token, as
            // in QEMU, rather than entering recovery.
            self.reset();
            emit(Lexeme::Oversized);
        }
    }

    /// Ends the input: a number or keyword is complete, anything else
    /// unfinished is stray. A NUL byte stands for the end because it ends
    /// a number or keyword and is an error in every other state.
    pub(super) fn finish(&mut self, emit: &mut impl FnMut(Lexeme<'_>)) {
        while self.state != Lex::Start {
            match step(self.state, 0) {
                Step::DoneBefore(kind) => self.emit_token(kind, emit),
                Step::Resync => self.state = Lex::Start,
                _ => self.emit_stray(emit),
            }
        }
    }

    fn emit_token(&mut self, kind: Kind, emit: &mut impl FnMut(Lexeme<'_>)) {
        emit(Lexeme::Token(kind, &self.token));
        self.token.clear();
        self.state = Lex::Start;
    }

    fn emit_stray(&mut self, emit: &mut impl FnMut(Lexeme<'_>)) {
        emit(Lexeme::Stray(&self.token));
        self.token.clear();
        self.state = Lex::Recovery;
    }
}
