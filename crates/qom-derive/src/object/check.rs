//! The checks on combinations of keys that the parser cannot make one
//! key at a time: each conflict is reported where the user wrote it.

use super::parse::Prop;
use crate::attrs::Errors;
use proc_macro2::Span;
use syn::{DeriveInput, Error};

/// `#[property]` belongs on fields; on the struct it is almost certainly a
/// misplaced field attribute.
pub(super) fn attr_misplaced(input: &DeriveInput, errors: &mut Errors) -> bool {
    let mut bad = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("property")) {
        errors.push(Error::new_spanned(
            attr,
            "`#[property]` goes on a field; a property without a field is \
             `#[qom(property(name = \"...\", ty = Type, get = ...))]`",
        ));
        bad = true;
    }
    bad
}

fn conflict(errors: &mut Errors, span: Option<Span>, msg: &str) {
    if let Some(span) = span {
        errors.push(Error::new(span, msg));
    }
}

pub(super) fn check_prop(p: &Prop, errors: &mut Errors) {
    let whole = p.span.unwrap_or_else(Span::call_site);
    if let Some(lit) = p.name.get() {
        let n = lit.value();
        if n.is_empty() || n.contains('/') {
            errors.push(Error::new_spanned(
                lit,
                "a property name must be non-empty and without '/'",
            ));
        }
    }
    if p.field.is_none() {
        if !p.name.is_set() {
            errors.push(Error::new(
                whole,
                "a property without a field needs `name = \"...\"`",
            ));
        }
        if !p.ty.is_set() {
            errors.push(Error::new(
                whole,
                "a property without a field needs `ty = Type`",
            ));
        }
        if !p.get.is_set() && !p.set.is_set() {
            errors.push(Error::new(
                whole,
                "a property without a field needs `get = ...`, `set = ...` or both",
            ));
        }
        conflict(
            errors,
            p.default.span().filter(|_| !p.set.is_set()),
            "`default` is applied through the setter: this property has no `set`",
        );
        conflict(
            errors,
            p.locked.span().filter(|_| !p.set.is_set()),
            "`locked` restricts writes: this property has no `set`",
        );
    }
    if p.read_only.is_set() {
        let why = "a `read_only` property has no setter";
        conflict(
            errors,
            p.write_only.span(),
            "`read_only` and `write_only` exclude each other",
        );
        conflict(
            errors,
            p.default.span(),
            &format!("{why}, so no `default` (it is applied through the setter)"),
        );
        conflict(errors, p.locked.span(), &format!("{why}: nothing to lock"));
        conflict(
            errors,
            p.set.span(),
            &format!("{why}: `set` would never run"),
        );
        conflict(
            errors,
            p.required.span(),
            &format!("{why}: it cannot be required"),
        );
    }
    if p.write_only.is_set() {
        conflict(
            errors,
            p.get.span(),
            "a `write_only` property has no getter: `get` would never run",
        );
    }
    if p.lock_first.is_set() && !p.locked.is_set() {
        conflict(
            errors,
            p.lock_first.span(),
            "`lock_checked_first` needs `locked`",
        );
    }
    if p.link.is_set() && !p.child.is_set() {
        let why = "a `link` property reads and writes its `qom::Link` field itself";
        for span in accessor_spans(p) {
            conflict(errors, span, why);
        }
    }
}

pub(super) fn check_child(p: &Prop, errors: &mut Errors) {
    if !p.child.is_set() {
        return;
    }
    let why = "a `child` property is created with the object and holds it: \
               besides `child` it takes only `rename`";
    let others = [
        p.locked.span(),
        p.lock_first.span(),
        p.required.span(),
        p.description.span(),
        p.link.span(),
    ];
    for span in accessor_spans(p).into_iter().chain(others) {
        conflict(errors, span, why);
    }
}

/// Where the keys that choose how a value is read and written were given:
/// `link` and `child` properties take none of them.
fn accessor_spans(p: &Prop) -> [Option<Span>; 7] {
    [
        p.get.span(),
        p.set.span(),
        p.default.span(),
        p.qom_type.span(),
        p.read_only.span(),
        p.write_only.span(),
        p.ty.span(),
    ]
}
