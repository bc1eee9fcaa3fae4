//! `#[derive(qom::Object)]`: the attributes are parsed (`parse`), checked
//! against each other (`check`), then turned into the type's
//! registration (`generate`).

mod check;
mod generate;
mod parse;

use crate::attrs::{is_valid_type_name, path_name, Errors};
use check::{attr_misplaced, check_child, check_prop};
use parse::{parse_container_key, parse_prop_key, prop_name, Container, Prop, TypeRef};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, Result};

pub(crate) fn expand(input: &DeriveInput) -> Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(_) | Fields::Unit => {
                return Err(Error::new_spanned(
                    &input.ident,
                    "`qom::Object` needs a struct with named fields (the type's state); \
                     properties are declared on the fields",
                ))
            }
        },
        Data::Enum(e) => {
            return Err(Error::new_spanned(
                e.enum_token,
                "`qom::Object` is derived on a struct (the type's state); \
                 for a QAPI enum use `qom::Enum`",
            ))
        }
        Data::Union(u) => {
            return Err(Error::new_spanned(
                u.union_token,
                "`qom::Object` is derived on a struct, not a union",
            ))
        }
    };
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(Error::new_spanned(
            &input.generics,
            "a QOM type's state struct cannot be generic: each type is registered once, by name",
        ));
    }

    let mut errors = Errors::default();
    let mut container = Container::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("qom")) {
        let r = attr.parse_nested_meta(|meta| parse_container_key(&meta, &mut container));
        errors.push_result(r);
    }
    if attr_misplaced(input, &mut errors) {
        return Err(errors.finish().unwrap_err());
    }

    let mut props = Vec::new();
    for field in fields {
        let attrs: Vec<_> = field
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("property"))
            .collect();
        let Some(first) = attrs.first() else { continue };
        let ident = field.ident.clone().expect("named field");
        let mut prop = Prop {
            field: Some((ident, field.ty.clone())),
            span: Some(first.span()),
            ..Prop::default()
        };
        for attr in &attrs {
            if matches!(attr.meta, syn::Meta::Path(_)) {
                continue;
            }
            let r = attr.parse_nested_meta(|meta| parse_prop_key(&meta, &mut prop));
            errors.push_result(r);
        }
        props.push(prop);
    }
    props.append(&mut container.computed);

    let Some(name) = container.name.get().cloned() else {
        // A `name` that failed to parse was reported already.
        let had_errors = errors.finish();
        if had_errors.is_err() {
            return had_errors.map(|()| TokenStream::new());
        }
        let mut errors = Errors::default();
        errors.push(Error::new_spanned(
            &input.ident,
            "missing the type name: add `#[qom(name = \"my-type\")]`",
        ));
        return Err(errors.finish().unwrap_err());
    };
    if !is_valid_type_name(&name.value()) {
        errors.push(Error::new_spanned(
            &name,
            "invalid QOM type name: at least two characters from [A-Za-z0-9._-], \
             starting with a letter or a nonzero digit",
        ));
    }
    if let (Some(_), Some(span)) = (container.parent.get(), container.parent_name.span()) {
        errors.push(Error::new(
            span,
            "give the parent once: `parent = Type` or `parent_name = \"name\"`",
        ));
    }
    let mut interfaces_seen: Vec<String> = Vec::new();
    for iface in &container.interfaces {
        let (key, tokens) = match iface {
            TypeRef::Name(lit) => {
                if !is_valid_type_name(&lit.value()) {
                    errors.push(Error::new_spanned(lit, "invalid QOM interface name"));
                }
                (lit.value(), quote!(#lit))
            }
            TypeRef::Rust(path) => (path_name(path), quote!(#path)),
        };
        if interfaces_seen.contains(&key) {
            errors.push(Error::new_spanned(tokens, "this interface is listed twice"));
        }
        interfaces_seen.push(key);
    }
    let mut seen: Vec<String> = Vec::new();
    for prop in &props {
        check_prop(prop, &mut errors);
        check_child(prop, &mut errors);
        let pname = prop_name(prop);
        if seen.contains(&pname) {
            errors.push(Error::new(
                prop.name
                    .span()
                    .or(prop.span)
                    .unwrap_or_else(Span::call_site),
                format!("property '{pname}' is declared twice"),
            ));
        }
        seen.push(pname);
    }
    errors.finish()?;

    Ok(generate::generate(input, &container, &name, &props))
}
