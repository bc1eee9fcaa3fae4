//! Small parsing helpers shared by both derives.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Error, LitStr, Result};

/// One key's value, remembering where it was written so that a second
/// occurrence and later consistency errors can point at it.
pub(crate) struct Slot<T> {
    pub(crate) value: Option<(T, Span)>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { value: None }
    }
}

impl<T> Slot<T> {
    pub(crate) fn set(&mut self, meta: &ParseNestedMeta<'_>, value: T) -> Result<()> {
        if self.value.is_some() {
            return Err(meta.error(format!("`{}` is given twice", path_name(&meta.path))));
        }
        self.value = Some((value, meta.path.span()));
        Ok(())
    }

    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(v, _)| v)
    }

    pub(crate) fn span(&self) -> Option<Span> {
        self.value.as_ref().map(|(_, s)| *s)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.value.is_some()
    }
}

/// A flag such as `locked`: `key` alone, never `key = value`.
pub(crate) fn flag(meta: &ParseNestedMeta<'_>, slot: &mut Slot<()>) -> Result<()> {
    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
        return Err(meta.error(format!(
            "`{}` is a flag and takes no value",
            path_name(&meta.path)
        )));
    }
    slot.set(meta, ())
}

/// `key = "text"`.
pub(crate) fn string(meta: &ParseNestedMeta<'_>, slot: &mut Slot<LitStr>) -> Result<()> {
    let key = path_name(&meta.path);
    let lit: LitStr = meta
        .value()?
        .parse()
        .map_err(|e| Error::new(e.span(), format!("`{key}` takes a string literal")))?;
    slot.set(meta, lit)
}

pub(crate) fn path_name(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// QEMU's rule for type names (the run-time check in `qom` is the same):
/// at least two characters from `[A-Za-z0-9._-]`, the first a letter or a
/// digit other than `0`.
pub(crate) fn is_valid_type_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && (b[0].is_ascii_alphabetic() || (b[0].is_ascii_digit() && b[0] != b'0'))
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Collects errors so that one compilation reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn push_result<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    pub(crate) fn finish(self) -> Result<()> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
