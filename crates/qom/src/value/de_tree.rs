//! The serde plumbing shared by the strict-JSON, keyval and QemuOpts
//! deserializers.
//!
//! All inputs are trees; they differ only in how a node turns into a
//! scalar and in how they word a refusal. That part lives behind [`Node`]
//! (see `de_json.rs`, `de_keyval.rs` and `de_opts.rs`); everything serde
//! needs on top of it is written once here, including QemuOpts' integer
//! ranges, where one list element stands for several values ([`Run`]).

mod access;
mod deserializer;
mod error;

use crate::error::Error;
use deserializer::TreeDeserializer;
use serde::Deserialize;

/// How a list element is named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// `a.b[0]`, as QEMU's strict visitor writes it.
    Json,
    /// `a.b.0`, as QEMU's keyval visitor writes it.
    Keyval,
    /// `a`: QEMU's QemuOpts visitor names a list element by its key.
    Opts,
}

/// The name of the node being read, for messages.
#[derive(Debug, Clone)]
pub(super) struct Name {
    /// The whole path: `size`, `a.b[0]`, `a.b.0`.
    pub(super) full: String,
    /// The member's own name; `None` for a list element. QEMU names only
    /// this part when it refuses an enum value.
    bare: Option<String>,
    style: Style,
}

impl Name {
    /// `Parameter 'NAME' expects WHAT`.
    pub(super) fn expects(&self, what: &str) -> Error {
        Error::ParameterExpects {
            name: self.full.clone(),
            what: what.to_owned(),
        }
    }

    /// `Invalid parameter type for 'NAME', expected: EXPECTED`.
    pub(super) fn wrong_type(&self, expected: &str) -> Error {
        Error::InvalidParameterType {
            name: self.full.clone(),
            expected: expected.to_owned(),
        }
    }

    fn root(name: &str, style: Style) -> Name {
        let bare = (!name.is_empty()).then(|| name.to_owned());
        Name {
            full: name.to_owned(),
            bare,
            style,
        }
    }

    fn member(&self, key: &str) -> Name {
        let full = if self.full.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.full)
        };
        Name {
            full,
            bare: Some(key.to_owned()),
            style: self.style,
        }
    }

    fn element(&self, index: usize) -> Name {
        let full = match self.style {
            Style::Json => format!("{}[{index}]", self.full),
            Style::Keyval if self.full.is_empty() => index.to_string(),
            Style::Keyval => format!("{}.{index}", self.full),
            Style::Opts => self.full.clone(),
        };
        Name {
            full,
            bare: None,
            style: self.style,
        }
    }
}

/// What a node looks like, for `deserialize_any` (untyped targets).
pub(super) enum Shape<'de> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(&'de str),
    /// A list; its elements come from [`Node::elements`].
    Seq,
    /// A map; its members come from [`Node::members`].
    Map,
}

/// One node of an input tree, read by the rules of its visitor.
///
/// Each method either yields the value or the error QEMU reports, already
/// naming `name.full`.
pub(super) trait Node<'de>: Copy {
    /// How list elements are named.
    const STYLE: Style;
    /// The node as it is, for untyped targets.
    fn shape(self) -> Shape<'de>;
    /// A `bool`.
    fn boolean(self, name: &Name) -> Result<bool, Error>;
    /// An `int64` (narrower signed types are range-checked afterwards).
    fn int64(self, name: &Name) -> Result<i64, Error>;
    /// A `uint64` (narrower unsigned types are range-checked afterwards).
    fn uint64(self, name: &Name) -> Result<u64, Error>;
    /// A `size` (see [`crate::value::Size`]).
    fn size(self, name: &Name) -> Result<u64, Error>;
    /// A `number` (a double).
    fn number(self, name: &Name) -> Result<f64, Error>;
    /// A `str`, also used for enum values.
    fn string(self, name: &Name) -> Result<&'de str, Error>;
    /// A `null`.
    fn null(self, name: &Name) -> Result<(), Error>;
    /// The elements of a list.
    fn elements(self, name: &Name) -> Result<Vec<Self>, Error>;
    /// The members of a struct or map, in input order.
    fn members(self, name: &Name) -> Result<Vec<(&'de str, Self)>, Error>;
    /// A list element read as a run of `uint64` values `first..=last`
    /// (QemuOpts ranges `a-b`); by default a run of one.
    fn uint64_run(self, name: &Name) -> Result<(u64, u64), Error> {
        self.uint64(name).map(|v| (v, v))
    }
    /// A list element read as a run of `int64` values; by default a run
    /// of one.
    fn int64_run(self, name: &Name) -> Result<(i64, i64), Error> {
        self.int64(name).map(|v| (v, v))
    }
}

/// The unread rest of a run of integers that one list element stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Run {
    /// No run in progress.
    #[default]
    Idle,
    /// Unsigned values `next..=last` are still to come.
    Unsigned { next: u64, last: u64 },
    /// Signed values `next..=last` are still to come.
    Signed { next: i64, last: i64 },
}

impl Name {
    /// The error for a key that the target does not know.
    pub(super) fn unexpected(&self, key: &str) -> Error {
        let full = self.member(key).full;
        match self.style {
            Style::Opts => Error::InvalidParameter(full),
            Style::Json | Style::Keyval => Error::UnexpectedParameter(full),
        }
    }
}

/// Read `node` as a `T`; messages name the node `name`.
pub(super) fn deserialize_node<'de, N: Node<'de>, T: Deserialize<'de>>(
    node: N,
    name: &str,
) -> crate::Result<T> {
    let name = Name::root(name, N::STYLE);
    T::deserialize(TreeDeserializer {
        node,
        name: name.clone(),
        run: None,
    })
    .map_err(|e| e.resolve(&name).into_error())
}
