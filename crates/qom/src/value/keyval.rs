//! The `key=value,...` syntax of HMP `object_add` and the tools' `--object`
//! (QEMU's keyval parser).
//!
//! The result is a tree whose leaves are all strings: dotted keys build
//! maps, and a map whose keys are all decimal indices becomes a list.
//! Typing happens later, when a property deserializes its value.

use crate::error::{Error, Result};
use indexmap::IndexMap;

/// A keyval value: strings at the leaves, maps and lists above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyvalValue {
    /// A leaf.
    String(String),
    /// `a.b=...`
    Map(IndexMap<String, KeyvalValue>),
    /// `a.0=...,a.1=...`
    List(Vec<KeyvalValue>),
}

/// The longest key fragment QEMU accepts.
const MAX_FRAGMENT_LEN: usize = 127;

type Map = IndexMap<String, KeyvalValue>;

/// Parse `key=value,...` into a map, and report whether help was asked for.
///
/// * `implied_key`: when the first element has no `=`, it is the value of
///   this key (`memory-backend-ram,id=m` with `qom-type`).
/// * `accept_help`: whether a bare `help` or `?` element is allowed; it
///   sets the returned flag and is otherwise ignored, so the other keys are
///   still parsed. When not allowed it is an error.
///
/// Repeated keys: the last one wins. Errors carry QEMU's messages.
pub fn keyval_parse(
    input: &str,
    implied_key: Option<&str>,
    accept_help: bool,
) -> Result<(Map, bool)> {
    let mut root = Map::new();
    let mut help = false;
    let mut rest = input;
    let mut implied = implied_key;
    while !rest.is_empty() {
        rest = parse_element(&mut root, rest, implied, &mut help)?;
        // Only the first element may omit its key.
        implied = None;
    }
    if help && !accept_help {
        return Err(Error::HelpNotAvailable);
    }
    // The root always has names (an index cannot come first), so it stays a map.
    listify_members(&mut root, "")?;
    Ok((root, help))
}

/// Parse one element at the start of `s`, store it in `root`, and return
/// what follows it (past its terminating comma).
fn parse_element<'s>(
    root: &mut Map,
    s: &'s str,
    implied: Option<&str>,
    help: &mut bool,
) -> Result<&'s str> {
    let head_len = s.find(['=', ',']).unwrap_or(s.len());
    let head = s.get(..head_len).unwrap_or_default();
    let after_head = s.get(head_len..).unwrap_or_default();
    let has_equals = after_head.starts_with('=');

    if !head.is_empty() && !has_equals {
        if head == "help" || head == "?" {
            *help = true;
            return Ok(skip_comma(after_head));
        }
        if let Some(key) = implied {
            // The implied value runs to the first comma, with no escapes.
            let target = walk_key(root, key)?;
            put_leaf(target.map, target.last, head.to_owned(), key)?;
            return Ok(skip_comma(after_head));
        }
    }

    let key = head;
    let target = walk_key(root, key)?;
    let Some(value_text) = after_head.strip_prefix('=') else {
        return Err(Error::ExpectedEquals(key.to_owned()));
    };
    let (value, rest) = scan_value(value_text);
    put_leaf(target.map, target.last, value, key)?;
    Ok(rest)
}

fn skip_comma(s: &str) -> &str {
    s.strip_prefix(',').unwrap_or(s)
}

/// Read a value up to the first single comma; `,,` stands for one comma.
/// Returns the value and the text after its terminating comma (QemuOpts
/// values follow the same rule).
pub(super) fn scan_value(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut rest = s;
    loop {
        match rest.find(',') {
            None => {
                value.push_str(rest);
                return (value, "");
            }
            Some(i) => {
                value.push_str(rest.get(..i).unwrap_or_default());
                let after = rest.get(i + 1..).unwrap_or_default();
                match after.strip_prefix(',') {
                    Some(more) => {
                        value.push(',');
                        rest = more;
                    }
                    None => return (value, after),
                }
            }
        }
    }
}

/// Where a key's leaf goes: the innermost map and the last fragment.
struct Target<'m, 'k> {
    map: &'m mut Map,
    last: &'k str,
}

/// Check `key` fragment by fragment, creating the maps its prefixes name.
///
/// As in QEMU, each fragment is validated before the map for the previous
/// one is created, so the first problem from the left is the one reported.
fn walk_key<'m, 'k>(root: &'m mut Map, key: &'k str) -> Result<Target<'m, 'k>> {
    let mut map = root;
    let mut pos = 0;
    let mut previous: Option<&'k str> = None;
    loop {
        let tail = key.get(pos..).unwrap_or_default();
        let len = if pos != 0 && tail.starts_with(|c: char| c.is_ascii_digit()) {
            index_len(tail)
        } else {
            qapi_name_len(tail)
        };
        let end = pos + len;
        let followed_by_dot = key.as_bytes().get(end) == Some(&b'.');
        if len == 0 || (end < key.len() && !followed_by_dot) {
            return Err(Error::InvalidParameter(key.to_owned()));
        }
        let fragment = key.get(pos..end).unwrap_or_default();
        if len > MAX_FRAGMENT_LEN {
            return Err(if pos != 0 || end != key.len() {
                Error::FragmentTooLong(fragment.to_owned())
            } else {
                Error::ParameterTooLong(fragment.to_owned())
            });
        }
        if let Some(parent) = previous {
            // The prefix up to (not including) the dot before this fragment.
            let prefix = key.get(..pos.saturating_sub(1)).unwrap_or_default();
            map = enter_map(map, parent, prefix)?;
        }
        previous = Some(fragment);
        if !followed_by_dot {
            return Ok(Target {
                map,
                last: fragment,
            });
        }
        pos = end + 1;
    }
}

/// The length of the run of decimal digits at the start of `s`.
fn index_len(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// The length of the QAPI name at the start of `s`, or 0 if there is none.
///
/// A name is a letter followed by letters, digits, `-` and `_`, optionally
/// after a downstream prefix `__RFQDN_` (whose RFQDN may contain dots).
fn qapi_name_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'_') {
        if b.get(1) != Some(&b'_') {
            return 0;
        }
        i = 2 + b
            .get(2..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.'))
            .count();
        if b.get(i) != Some(&b'_') {
            return 0;
        }
        i += 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    i + 1
        + b.get(i + 1..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
            .count()
}

fn is_index(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_digit())
}

/// Make a re-used index key the newest entry, so that among keys naming
/// the same index (`1` and `01`) the one written last wins in `listify`.
fn touch(map: &mut Map, name: &str) {
    if is_index(name) {
        if let Some((k, v)) = map.shift_remove_entry(name) {
            map.insert(k, v);
        }
    }
}

/// The map under `name`, created if absent; an error if `name` is a leaf.
fn enter_map<'m>(map: &'m mut Map, name: &str, prefix: &str) -> Result<&'m mut Map> {
    touch(map, name);
    let slot = map
        .entry(name.to_owned())
        .or_insert_with(|| KeyvalValue::Map(Map::new()));
    match slot {
        KeyvalValue::Map(inner) => Ok(inner),
        _ => Err(Error::InconsistentParameters(format!("{prefix}.*"))),
    }
}

/// Store a leaf, replacing an earlier leaf; an error if `name` is a map.
fn put_leaf(map: &mut Map, name: &str, value: String, key: &str) -> Result<()> {
    touch(map, name);
    match map.get_mut(name) {
        Some(KeyvalValue::String(old)) => *old = value,
        Some(_) => return Err(Error::InconsistentParameters(format!("{key}.*"))),
        None => {
            map.insert(name.to_owned(), KeyvalValue::String(value));
        }
    }
    Ok(())
}

/// Turn every member map whose keys are all indices into a list, deepest
/// first. `prefix` is the dotted path to `map` with a trailing dot.
fn listify_members(map: &mut Map, prefix: &str) -> Result<()> {
    for (key, value) in map.iter_mut() {
        if let KeyvalValue::Map(inner) = value {
            let inner = std::mem::take(inner);
            *value = listify(inner, &format!("{prefix}{key}."))?;
        }
    }
    Ok(())
}

/// `map` itself, its members listified, or the list it stands for.
fn listify(mut map: Map, prefix: &str) -> Result<KeyvalValue> {
    listify_members(&mut map, prefix)?;
    let indices = map.keys().filter(|k| is_index(k)).count();
    if indices == 0 {
        return Ok(KeyvalValue::Map(map));
    }
    if indices != map.len() {
        return Err(Error::InconsistentParameters(format!("{prefix}*")));
    }
    let len = map.len();
    let mut slots: Vec<Option<KeyvalValue>> = vec![None; len];
    let mut highest = 0;
    for (key, value) in map {
        // Leading zeros are allowed; a huge index can only be a gap.
        let index = key.parse::<usize>().unwrap_or(usize::MAX);
        highest = highest.max(index);
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(value);
        }
    }
    let mut list = Vec::with_capacity(len);
    // More entries than `len` would need an index >= len, so the first gap
    // is at most `len`.
    for i in 0..=highest.min(len) {
        match slots.get_mut(i).and_then(Option::take) {
            Some(v) => list.push(v),
            None => return Err(Error::ListElementMissing(format!("{prefix}{i}"))),
        }
    }
    Ok(KeyvalValue::List(list))
}

/// Write a map as `key=value,...` text that [`keyval_parse`] (without an
/// implied key) reads back to an equal map: nested maps as dotted keys,
/// lists as indices from 0, commas in values doubled.
///
/// Every map that [`keyval_parse`] returns can be written this way. A map
/// built by hand needs keys that are keyval names; empty maps and lists
/// below the root have no keyval syntax and vanish.
///
/// ```
/// use qom::value::{keyval_parse, keyval_to_string};
///
/// let (map, _) = keyval_parse("a.b=1,,2,l.1=y,l.0=x", None, false)?;
/// assert_eq!(keyval_to_string(&map), "a.b=1,,2,l.0=x,l.1=y");
/// assert_eq!(keyval_parse(&keyval_to_string(&map), None, false)?.0, map);
/// # Ok::<(), qom::Error>(())
/// ```
pub fn keyval_to_string(map: &Map) -> String {
    let mut out = String::new();
    for (key, value) in map {
        write_member(&mut out, key, value);
    }
    out
}

fn write_member(out: &mut String, key: &str, value: &KeyvalValue) {
    match value {
        KeyvalValue::String(s) => {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(&s.replace(',', ",,"));
        }
        KeyvalValue::Map(m) => {
            for (k, v) in m {
                write_member(out, &format!("{key}.{k}"), v);
            }
        }
        KeyvalValue::List(items) => {
            for (i, v) in items.iter().enumerate() {
                write_member(out, &format!("{key}.{i}"), v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
