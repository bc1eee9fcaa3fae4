//! The `key=value,...` syntax of the system emulator's `-object` (QEMU's
//! QemuOpts parser, for an option list that accepts any key).
//!
//! It looks like keyval but behaves differently:
//!
//! * `,,` is a literal comma in every value, the implied first one too;
//! * there are no dotted keys: `a.b` is just a key with a dot in it;
//! * an element without `=` after the first is a boolean flag: `share`
//!   means `share=on` and `noshare` `share=off`, each with a deprecation
//!   warning;
//! * a repeated key keeps every occurrence (a scalar reads the last one, a
//!   list reads them all);
//! * `id` is taken out separately: the first `id=` counts, the others are
//!   dropped.
//!
//! The parser never fails; checking the id and the keys is up to the
//! caller (see [`ObjectSpec::parse_opts`](super::ObjectSpec::parse_opts)).

use super::keyval::scan_value;
use indexmap::IndexMap;

/// Every occurrence of one QemuOpts key, as written, in input order.
///
/// A scalar target reads the last occurrence; a list target reads each
/// occurrence as one element (integers also as ranges `a-b`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptsValue(Vec<String>);

impl OptsValue {
    /// A key given once.
    pub fn new(value: impl Into<String>) -> Self {
        OptsValue(vec![value.into()])
    }

    /// A key given once per item, in this order.
    pub fn from_values<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OptsValue(values.into_iter().map(Into::into).collect())
    }

    /// Adds one more occurrence.
    pub fn push(&mut self, value: impl Into<String>) {
        self.0.push(value.into());
    }

    /// Every occurrence, in input order.
    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// The occurrence a scalar reads: the last one (`""` when there is none).
    pub fn last(&self) -> &str {
        self.0.last().map_or("", String::as_str)
    }
}

/// The result of [`opts_parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedOpts {
    /// The first `id=` value, if any (also `id` given as a flag: `on`).
    pub id: Option<String>,
    /// Every other key with all its occurrences, in order of first
    /// appearance. The implied first element is stored under the implied
    /// key.
    pub opts: IndexMap<String, OptsValue>,
    /// Deprecation warnings for short-form booleans, in input order. Each
    /// is two lines joined by `\n`: the warning and the advice, e.g.
    /// `short-form boolean option 'share' deprecated` and
    /// `Please use share=on instead`. QEMU prefixes only the first line
    /// (with the program name, the option and `warning: `).
    pub warnings: Vec<String>,
}

impl ParsedOpts {
    /// Whether some key asks for help (`help` or `?`, whatever its value).
    pub fn wants_help(&self) -> bool {
        self.opts.keys().any(|k| is_help(k))
    }
}

/// `help` or `?`, QEMU's two spellings of a help request.
pub(super) fn is_help(s: &str) -> bool {
    s == "help" || s == "?"
}

/// One element as QemuOpts splits it.
struct Element {
    name: String,
    value: String,
    /// Set for a short-form boolean: the deprecation warning for it.
    warning: Option<String>,
}

/// Parse a QemuOpts string.
///
/// `implied_key` names the first element when it has no `=` (for
/// `-object` it is `qom-type`). Never fails: every string is some set of
/// options.
pub fn opts_parse(text: &str, implied_key: Option<&str>) -> ParsedOpts {
    let mut parsed = ParsedOpts {
        id: first_id(text),
        ..ParsedOpts::default()
    };
    let mut rest = text;
    let mut implied = implied_key;
    while !rest.is_empty() {
        let (element, after) = split_element(rest, implied);
        rest = after;
        implied = None;
        if let Some(w) = element.warning {
            parsed.warnings.push(w);
        }
        // Every `id` element is dropped; the id was taken out before.
        if element.name == "id" {
            continue;
        }
        match parsed.opts.get_mut(&element.name) {
            Some(v) => v.push(element.value),
            None => {
                parsed
                    .opts
                    .insert(element.name, OptsValue::new(element.value));
            }
        }
    }
    parsed
}

/// The value of the first element named `id`, reading the first element
/// like any other (QEMU scans for the id before it applies the implied
/// key, so a leading bare `id` is the flag `id=on`).
fn first_id(text: &str) -> Option<String> {
    let mut rest = text;
    while !rest.is_empty() {
        let (element, after) = split_element(rest, None);
        if element.name == "id" {
            return Some(element.value);
        }
        rest = after;
    }
    None
}

/// Split the element at the start of `s`; returns it and the text after
/// its terminating comma.
fn split_element<'s>(s: &'s str, implied: Option<&str>) -> (Element, &'s str) {
    let name_len = s.find(['=', ',']).unwrap_or(s.len());
    let (element, rest) = if s[name_len..].starts_with('=') {
        let (value, rest) = scan_value(&s[name_len + 1..]);
        let element = Element {
            name: s[..name_len].to_owned(),
            value,
            warning: None,
        };
        (element, rest)
    } else if let Some(key) = implied {
        let (value, rest) = scan_value(s);
        let element = Element {
            name: key.to_owned(),
            value,
            warning: None,
        };
        (element, rest)
    } else {
        // A flag: its name ends at the first comma, and `,,` is no escape.
        let written = &s[..name_len];
        let element = flag(written);
        (element, &s[name_len..])
    };
    (element, rest.strip_prefix(',').unwrap_or(rest))
}

/// A short-form boolean: `name` is on, `noname` is off. Help requests are
/// flags too but draw no warning.
fn flag(written: &str) -> Element {
    let (name, value) = match written.strip_prefix("no") {
        Some(stem) => (stem, "off"),
        None => (written, "on"),
    };
    let warning = if value == "on" && is_help(name) {
        None
    } else {
        // QEMU's one special case: `delay` advises its negation.
        let advice = if name == "delay" {
            format!("nodelay={}", if value == "off" { "on" } else { "off" })
        } else {
            format!("{name}={value}")
        };
        Some(format!(
            "short-form boolean option '{written}' deprecated\nPlease use {advice} instead"
        ))
    };
    Element {
        name: name.to_owned(),
        value: value.to_owned(),
        warning,
    }
}

/// Write parsed options as QemuOpts text that [`opts_parse`] (without an
/// implied key) reads back to the same `id` and options: `id=` first,
/// then every occurrence of each key as `key=value`, commas in values
/// doubled. Flags come back in their long form (`share=on`), so the
/// result draws no warning.
///
/// A key containing `=` or `,` cannot be written (no parse yields one).
///
/// ```
/// use qom::value::{opts_parse, opts_to_string};
///
/// let parsed = opts_parse("ram,share,id=m0,a=1,,2,a=3", Some("qom-type"));
/// let text = opts_to_string(&parsed);
/// assert_eq!(text, "id=m0,qom-type=ram,share=on,a=1,,2,a=3");
/// let again = opts_parse(&text, None);
/// assert_eq!((again.id, again.opts), (parsed.id, parsed.opts));
/// ```
pub fn opts_to_string(parsed: &ParsedOpts) -> String {
    let mut elements = Vec::new();
    if let Some(id) = &parsed.id {
        elements.push(format!("id={}", id.replace(',', ",,")));
    }
    for (key, value) in &parsed.opts {
        for v in value.values() {
            elements.push(format!("{key}={}", v.replace(',', ",,")));
        }
    }
    elements.join(",")
}

#[cfg(test)]
mod tests;
