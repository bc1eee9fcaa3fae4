//! Values in and out of properties: serde is the visitor layer.
//!
//! QEMU reads property values through "visitors"; here serde plays that
//! part. A value reaches a setter as an [`Input`], which is one of:
//!
//! * strict JSON (QMP, JSON `-object`), read by QEMU's QObject input rules
//!   ([`from_json`]): every value must already have the right JSON type;
//! * a keyval tree (HMP `object_add`, the tools' `--object`), whose leaves
//!   are strings converted on demand ([`from_keyval`]): `on`/`off`,
//!   base-0 integers, sizes such as `1G`;
//! * the occurrences of one QemuOpts key (the system emulator's
//!   `-object`), converted on demand too but by the OptsVisitor's rules
//!   ([`from_opts`]): repeated keys and ranges make lists.
//!
//! [`ObjectSpec::parse`] turns a tools' `--object` argument into a type, an
//! id and the remaining [`Props`]; [`ObjectSpec::parse_opts`] does the same
//! for the system emulator's `-object`. The text parsers
//! ([`keyval_parse`], [`opts_parse`], [`parse_size`], ...) are usable on
//! their own.
//!
//! Errors carry QEMU's wording (see [`crate::Error`]); nested members are
//! named `a.b[0]` in JSON and `a.b.0` in keyval, as QEMU names them.

mod de_json;
mod de_keyval;
mod de_opts;
mod de_tree;
mod input;
mod keyval;
mod number;
mod opts;
mod spec;

pub use de_json::from_json;
pub use de_keyval::from_keyval;
pub use de_opts::from_opts;
pub use input::Input;
pub use keyval::{keyval_parse, keyval_to_string, KeyvalValue};
pub use number::{
    format_size_iec, parse_bool, parse_i64, parse_size, parse_u64, NumberError, Size,
};
pub use opts::{opts_parse, opts_to_string, OptsValue, ParsedOpts};
pub use spec::{ObjectSpec, Props};
