//! Parsing the container attribute `#[qom(...)]` and the field attribute
//! `#[property(...)]` into plain records, with no judgement yet.

use crate::attrs::{flag, path_name, string, Slot};
use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::Parse;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Path, Result, Type};

/// A type named in the container attribute: as a Rust type (checked by the
/// compiler) or by name (checked when the class is built).
pub(super) enum TypeRef {
    Rust(Path),
    Name(LitStr),
}

#[derive(Default)]
pub(super) struct Container {
    pub(super) name: Slot<LitStr>,
    pub(super) parent: Slot<Path>,
    pub(super) parent_name: Slot<LitStr>,
    pub(super) interfaces: Vec<TypeRef>,
    pub(super) is_abstract: Slot<()>,
    pub(super) class_init: Slot<Path>,
    pub(super) manual_subclass_init: Slot<()>,
    pub(super) computed: Vec<Prop>,
}

/// One property: from a field, or computed (declared on the container).
#[derive(Default)]
pub(super) struct Prop {
    /// The field it reads and writes; `None` for a computed property.
    pub(super) field: Option<(Ident, Type)>,
    /// Where the declaration is, for errors about it as a whole.
    pub(super) span: Option<Span>,
    pub(super) name: Slot<LitStr>,
    pub(super) ty: Slot<Type>,
    pub(super) description: Slot<Expr>,
    pub(super) default: Slot<Expr>,
    pub(super) locked: Slot<Option<Expr>>,
    pub(super) lock_first: Slot<()>,
    pub(super) read_only: Slot<()>,
    pub(super) write_only: Slot<()>,
    pub(super) qom_type: Slot<LitStr>,
    pub(super) required: Slot<()>,
    pub(super) get: Slot<Path>,
    pub(super) set: Slot<Path>,
    pub(super) link: Slot<TypeRef>,
    pub(super) child: Slot<()>,
}

/// `key = value` for a key whose value is any syntax tree node.
fn parsed<T: Parse>(meta: &ParseNestedMeta<'_>, slot: &mut Slot<T>) -> Result<()> {
    let value: T = meta.value()?.parse()?;
    slot.set(meta, value)
}

fn parse_type_ref(meta: &ParseNestedMeta<'_>) -> Result<TypeRef> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        Ok(TypeRef::Name(value.parse()?))
    } else {
        Ok(TypeRef::Rust(value.parse()?))
    }
}

pub(super) fn parse_container_key(meta: &ParseNestedMeta<'_>, c: &mut Container) -> Result<()> {
    let key = path_name(&meta.path);
    match key.as_str() {
        "name" => string(meta, &mut c.name),
        "parent" => {
            let value = meta.value()?;
            if value.peek(LitStr) {
                return Err(meta.error(
                    "`parent` takes a Rust type; a parent known only by name is \
                     `parent_name = \"...\"`",
                ));
            }
            let path: Path = value.parse()?;
            c.parent.set(meta, path)
        }
        "parent_name" => string(meta, &mut c.parent_name),
        "interfaces" => {
            let content;
            syn::parenthesized!(content in meta.input);
            while !content.is_empty() {
                let item = if content.peek(LitStr) {
                    TypeRef::Name(content.parse()?)
                } else {
                    TypeRef::Rust(content.parse()?)
                };
                c.interfaces.push(item);
                if content.is_empty() {
                    break;
                }
                content.parse::<syn::Token![,]>()?;
            }
            Ok(())
        }
        "abstract" => flag(meta, &mut c.is_abstract),
        "class_init" => parsed(meta, &mut c.class_init),
        "manual_subclass_init" => flag(meta, &mut c.manual_subclass_init),
        "property" => {
            let mut prop = Prop {
                span: Some(meta.path.span()),
                ..Prop::default()
            };
            meta.parse_nested_meta(|inner| parse_prop_key(&inner, &mut prop))?;
            c.computed.push(prop);
            Ok(())
        }
        _ => Err(meta.error(format!(
            "unknown key `{key}` in #[qom(...)]; expected one of: name, parent, parent_name, \
             interfaces, abstract, class_init, manual_subclass_init, property"
        ))),
    }
}

pub(super) fn parse_prop_key(meta: &ParseNestedMeta<'_>, p: &mut Prop) -> Result<()> {
    let key = path_name(&meta.path);
    let computed = p.field.is_none();
    match key.as_str() {
        "rename" if !computed => string(meta, &mut p.name),
        "name" if computed => string(meta, &mut p.name),
        "ty" => parsed(meta, &mut p.ty),
        // An expression, so that a shared constant can serve as the text.
        "description" => parsed(meta, &mut p.description),
        "default" => parsed(meta, &mut p.default),
        "locked" => {
            let style = if meta.input.peek(syn::Token![=]) {
                Some(meta.value()?.parse::<Expr>()?)
            } else {
                None
            };
            p.locked.set(meta, style)
        }
        "lock_checked_first" => flag(meta, &mut p.lock_first),
        "read_only" => flag(meta, &mut p.read_only),
        "write_only" => flag(meta, &mut p.write_only),
        "qom_type" => string(meta, &mut p.qom_type),
        "required" => flag(meta, &mut p.required),
        "get" => parsed(meta, &mut p.get),
        "set" => parsed(meta, &mut p.set),
        "link" if !computed => {
            let target = parse_type_ref(meta)?;
            p.link.set(meta, target)
        }
        "child" if !computed => flag(meta, &mut p.child),
        _ => {
            let expected = if computed {
                "name, ty, description, default, locked, lock_checked_first, qom_type, \
                 required, get, set"
            } else {
                "rename, ty, description, default, locked, lock_checked_first, read_only, \
                 write_only, qom_type, required, get, set, link, child"
            };
            Err(meta.error(format!(
                "unknown key `{key}` in a property declaration; expected one of: {expected}"
            )))
        }
    }
}

pub(super) fn prop_name(p: &Prop) -> String {
    match (p.name.get(), &p.field) {
        (Some(lit), _) => lit.value(),
        (None, Some((ident, _))) => {
            let s = ident.to_string();
            s.strip_prefix("r#").unwrap_or(&s).replace('_', "-")
        }
        (None, None) => String::new(),
    }
}
