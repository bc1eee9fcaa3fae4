//! The error type serde sees while reading a tree, and how it becomes a
//! [`crate::Error`] naming the right parameter.

use super::Name;
use crate::error::Error;
use serde::de;
use std::fmt;

/// The error serde code sees while deserializing.
///
/// Errors raised by serde-generated code (a missing field, an unknown
/// variant) do not know where they happened; they are resolved into a
/// [`crate::Error`] by the node that called the visitor.
#[derive(Debug)]
pub(super) enum DeError {
    /// Complete, naming its parameter.
    Done(Error),
    /// A struct lacks this field.
    Missing(String),
    /// A struct refuses this field.
    Unknown(String),
    /// An enum has no such variant.
    UnknownVariant(String),
    /// A visitor wanted another type (serde's wording of it).
    InvalidType(String),
    /// A visitor refused the value (serde's wording of what it wanted).
    InvalidValue(String),
    /// A tuple needed more elements than this.
    InvalidLength(usize),
    /// Anything else, in the visitor's words.
    Custom(String),
}

impl DeError {
    /// Pin an unplaced error on the node `name`.
    pub(super) fn resolve(self, name: &Name) -> DeError {
        DeError::Done(match self {
            DeError::Done(e) => e,
            DeError::Missing(field) => Error::MissingParameter(name.member(&field).full),
            DeError::Unknown(field) => name.unexpected(&field),
            DeError::UnknownVariant(value) => Error::ValueNotAccepted {
                name: name.bare.clone().unwrap_or_else(|| "null".to_owned()),
                value,
            },
            DeError::InvalidType(expected) => Error::InvalidParameterType {
                name: name.full.clone(),
                expected,
            },
            DeError::InvalidValue(what) => Error::ParameterExpects {
                name: name.full.clone(),
                what,
            },
            DeError::InvalidLength(len) => Error::MissingParameter(name.element(len).full),
            DeError::Custom(message) => Error::Generic(message),
        })
    }

    pub(super) fn into_error(self) -> Error {
        match self {
            DeError::Done(e) => e,
            // Only reached if `resolve` was skipped; keep the text at least.
            other => Error::Generic(other.to_string()),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Done(e) => e.fmt(f),
            DeError::Missing(field) => write!(f, "Parameter '{field}' is missing"),
            DeError::Unknown(field) => write!(f, "Parameter '{field}' is unexpected"),
            DeError::UnknownVariant(v) => write!(f, "value '{v}' is not accepted"),
            DeError::InvalidType(e) => write!(f, "invalid type, expected: {e}"),
            DeError::InvalidValue(e) => write!(f, "expected {e}"),
            DeError::InvalidLength(n) => write!(f, "element {n} is missing"),
            DeError::Custom(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Custom(msg.to_string())
    }
    fn invalid_type(_: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::InvalidType(exp.to_string())
    }
    fn invalid_value(_: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::InvalidValue(exp.to_string())
    }
    fn invalid_length(len: usize, _: &dyn de::Expected) -> Self {
        DeError::InvalidLength(len)
    }
    fn unknown_variant(variant: &str, _: &'static [&'static str]) -> Self {
        DeError::UnknownVariant(variant.to_owned())
    }
    fn unknown_field(field: &str, _: &'static [&'static str]) -> Self {
        DeError::Unknown(field.to_owned())
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::Missing(field.to_owned())
    }
}

pub(super) type DeResult<T> = Result<T, DeError>;
