//! QemuOpts input: QEMU's OptsVisitor, behind the system emulator's
//! `-object key=value,...`.
//!
//! A key carries every occurrence given for it, as strings. A scalar target
//! reads the last occurrence; a list target reads each occurrence as one
//! element, and an integer element may also be a range `a-b` (ascending, at
//! most 65536 values) standing for every value in it. Leaves convert as
//! QemuOpts converts them, with its own wording of a refusal:
//! `Parameter 'x' expects a uint64 value`, `... a size value`, ...

use super::de_tree::{deserialize_node, Name, Node, Shape, Style};
use super::number::{parse_bool, parse_f64, parse_size, scan_c_integer};
use super::opts::OptsValue;
use crate::error::Result;
use indexmap::IndexMap;
use serde::Deserialize;

/// The most values one range `a-b` may stand for.
const RANGE_MAX: u64 = 65536;

/// Deserialize a `T` from the occurrences of one QemuOpts key; messages
/// name it `name`.
pub fn from_opts<'de, T: Deserialize<'de>>(value: &'de OptsValue, name: &str) -> Result<T> {
    deserialize_node(OptsNode::Key(value), name)
}

/// Deserialize a `T` (normally a struct) from a whole set of QemuOpts keys;
/// a key the struct does not know is `Invalid parameter 'KEY'`.
pub(super) fn from_opts_map<'de, T: Deserialize<'de>>(
    map: &'de IndexMap<String, OptsValue>,
) -> Result<T> {
    deserialize_node(OptsNode::Root(map), "")
}

/// A place in QemuOpts input.
#[derive(Debug, Clone, Copy)]
enum OptsNode<'de> {
    /// All keys.
    Root(&'de IndexMap<String, OptsValue>),
    /// Every occurrence of one key.
    Key(&'de OptsValue),
    /// One occurrence, read as a list element.
    Item(&'de str),
}

impl<'de> OptsNode<'de> {
    /// The string a scalar reads, and whether it is read as a list element.
    fn leaf(self, name: &Name) -> Result<(&'de str, bool)> {
        match self {
            OptsNode::Key(v) => Ok((v.last(), false)),
            OptsNode::Item(s) => Ok((s, true)),
            OptsNode::Root(_) => Err(name.wrong_type("string")),
        }
    }
}

/// A non-negative integer at the start of `s` (QEMU's `parse_uint`):
/// the value and the length used.
fn uint_prefix(s: &str) -> Option<(u64, usize)> {
    match scan_c_integer(s)? {
        (false, Some(v), end) => Some((v, end)),
        _ => None,
    }
}

/// A signed integer at the start of `s` (`strtoll`): the value and the
/// length used.
fn int_prefix(s: &str) -> Option<(i64, usize)> {
    let (negative, magnitude, end) = scan_c_integer(s)?;
    let magnitude = i128::from(magnitude?);
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok().map(|v| (v, end))
}

/// The whole of `s` as a non-negative integer.
fn uint_full(s: &str) -> Option<u64> {
    uint_prefix(s).and_then(|(v, end)| (end == s.len()).then_some(v))
}

/// The whole of `s` as a signed integer.
fn int_full(s: &str) -> Option<i64> {
    int_prefix(s).and_then(|(v, end)| (end == s.len()).then_some(v))
}

/// `a` alone or, for a list element, the range `a-b`.
fn uint_run(s: &str, in_list: bool) -> Option<(u64, u64)> {
    let (first, end) = uint_prefix(s)?;
    let rest = &s[end..];
    if rest.is_empty() {
        return Some((first, first));
    }
    let last = uint_full(rest.strip_prefix('-').filter(|_| in_list)?)?;
    (first <= last && last - first < RANGE_MAX).then_some((first, last))
}

/// `a` alone or, for a list element, the range `a-b`.
fn int_run(s: &str, in_list: bool) -> Option<(i64, i64)> {
    let (first, end) = int_prefix(s)?;
    let rest = &s[end..];
    if rest.is_empty() {
        return Some((first, first));
    }
    let last = int_full(rest.strip_prefix('-').filter(|_| in_list)?)?;
    let span = i128::from(last) - i128::from(first);
    (span >= 0 && span < i128::from(RANGE_MAX)).then_some((first, last))
}

fn uint_expected(in_list: bool) -> &'static str {
    if in_list {
        "a uint64 value or range"
    } else {
        "a uint64 value"
    }
}

fn int_expected(in_list: bool) -> &'static str {
    if in_list {
        "an int64 value or range"
    } else {
        "an int64 value"
    }
}

impl<'de> Node<'de> for OptsNode<'de> {
    const STYLE: Style = Style::Opts;

    fn shape(self) -> Shape<'de> {
        match self {
            OptsNode::Root(_) => Shape::Map,
            OptsNode::Key(v) => Shape::Str(v.last()),
            OptsNode::Item(s) => Shape::Str(s),
        }
    }

    fn boolean(self, name: &Name) -> Result<bool> {
        let (s, _) = self.leaf(name)?;
        parse_bool(s).ok_or_else(|| name.expects("'on' or 'off'"))
    }

    fn int64(self, name: &Name) -> Result<i64> {
        let (s, in_list) = self.leaf(name)?;
        int_full(s).ok_or_else(|| name.expects(int_expected(in_list)))
    }

    fn uint64(self, name: &Name) -> Result<u64> {
        let (s, in_list) = self.leaf(name)?;
        uint_full(s).ok_or_else(|| name.expects(uint_expected(in_list)))
    }

    fn int64_run(self, name: &Name) -> Result<(i64, i64)> {
        let (s, in_list) = self.leaf(name)?;
        int_run(s, in_list).ok_or_else(|| name.expects(int_expected(in_list)))
    }

    fn uint64_run(self, name: &Name) -> Result<(u64, u64)> {
        let (s, in_list) = self.leaf(name)?;
        uint_run(s, in_list).ok_or_else(|| name.expects(uint_expected(in_list)))
    }

    fn size(self, name: &Name) -> Result<u64> {
        let (s, _) = self.leaf(name)?;
        parse_size(s).map_err(|_| name.expects("a size value"))
    }

    fn number(self, name: &Name) -> Result<f64> {
        // QEMU's OptsVisitor cannot read doubles; say what was wanted.
        let (s, _) = self.leaf(name)?;
        parse_f64(s).map_err(|_| name.expects("a number"))
    }

    fn string(self, name: &Name) -> Result<&'de str> {
        self.leaf(name).map(|(s, _)| s)
    }

    fn null(self, name: &Name) -> Result<()> {
        // QemuOpts cannot spell null.
        Err(name.wrong_type("null"))
    }

    fn elements(self, name: &Name) -> Result<Vec<Self>> {
        match self {
            OptsNode::Key(v) => Ok(v
                .values()
                .iter()
                .map(|s| OptsNode::Item(s.as_str()))
                .collect()),
            OptsNode::Root(_) | OptsNode::Item(_) => Err(name.wrong_type("array")),
        }
    }

    fn members(self, name: &Name) -> Result<Vec<(&'de str, Self)>> {
        match self {
            OptsNode::Root(map) => Ok(map
                .iter()
                .map(|(k, v)| (k.as_str(), OptsNode::Key(v)))
                .collect()),
            // QemuOpts is flat: there are no nested members.
            OptsNode::Key(_) | OptsNode::Item(_) => Err(name.wrong_type("object")),
        }
    }
}

#[cfg(test)]
mod tests;
