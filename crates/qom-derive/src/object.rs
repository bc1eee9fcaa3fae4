//! `#[derive(qom::Object)]`.

use crate::attrs::{flag, is_valid_type_name, path_name, string, Errors, Slot};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Expr, Fields, Ident, LitStr, Path, Result, Type};

/// A type named in the container attribute: as a Rust type (checked by the
/// compiler) or by name (checked when the class is built).
enum TypeRef {
    Rust(Path),
    Name(LitStr),
}

#[derive(Default)]
struct Container {
    name: Slot<LitStr>,
    parent: Slot<Path>,
    parent_name: Slot<LitStr>,
    interfaces: Vec<TypeRef>,
    is_abstract: Slot<()>,
    class_init: Slot<Path>,
    manual_subclass_init: Slot<()>,
    computed: Vec<Prop>,
}

/// One property: from a field, or computed (declared on the container).
#[derive(Default)]
struct Prop {
    /// The field it reads and writes; `None` for a computed property.
    field: Option<(Ident, Type)>,
    /// Where the declaration is, for errors about it as a whole.
    span: Option<Span>,
    name: Slot<LitStr>,
    ty: Slot<Type>,
    description: Slot<Expr>,
    default: Slot<Expr>,
    locked: Slot<Option<Expr>>,
    lock_first: Slot<()>,
    read_only: Slot<()>,
    write_only: Slot<()>,
    qom_type: Slot<LitStr>,
    required: Slot<()>,
    get: Slot<Path>,
    set: Slot<Path>,
    link: Slot<TypeRef>,
    child: Slot<()>,
}

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

    Ok(generate(input, &container, &name, &props))
}

/// `#[property]` belongs on fields; on the struct it is almost certainly a
/// misplaced field attribute.
fn attr_misplaced(input: &DeriveInput, errors: &mut Errors) -> bool {
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

fn parse_type_ref(meta: &ParseNestedMeta<'_>) -> Result<TypeRef> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        Ok(TypeRef::Name(value.parse()?))
    } else {
        Ok(TypeRef::Rust(value.parse()?))
    }
}

fn parse_container_key(meta: &ParseNestedMeta<'_>, c: &mut Container) -> Result<()> {
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
        "class_init" => {
            let path: Path = meta.value()?.parse()?;
            c.class_init.set(meta, path)
        }
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

fn parse_prop_key(meta: &ParseNestedMeta<'_>, p: &mut Prop) -> Result<()> {
    let key = path_name(&meta.path);
    let computed = p.field.is_none();
    match key.as_str() {
        "rename" if !computed => string(meta, &mut p.name),
        "name" if computed => string(meta, &mut p.name),
        "ty" => {
            let ty: Type = meta.value()?.parse()?;
            p.ty.set(meta, ty)
        }
        // An expression, so that a shared constant can serve as the text.
        "description" => {
            let e: Expr = meta.value()?.parse()?;
            p.description.set(meta, e)
        }
        "default" => {
            let e: Expr = meta.value()?.parse()?;
            p.default.set(meta, e)
        }
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
        "get" => {
            let path: Path = meta.value()?.parse()?;
            p.get.set(meta, path)
        }
        "set" => {
            let path: Path = meta.value()?.parse()?;
            p.set.set(meta, path)
        }
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

fn prop_name(p: &Prop) -> String {
    match (p.name.get(), &p.field) {
        (Some(lit), _) => lit.value(),
        (None, Some((ident, _))) => {
            let s = ident.to_string();
            s.strip_prefix("r#").unwrap_or(&s).replace('_', "-")
        }
        (None, None) => String::new(),
    }
}

fn conflict(errors: &mut Errors, span: Option<Span>, msg: &str) {
    if let Some(span) = span {
        errors.push(Error::new(span, msg));
    }
}

fn check_prop(p: &Prop, errors: &mut Errors) {
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
        for span in [
            p.get.span(),
            p.set.span(),
            p.default.span(),
            p.qom_type.span(),
            p.read_only.span(),
            p.write_only.span(),
            p.ty.span(),
        ] {
            conflict(errors, span, why);
        }
    }
}

fn check_child(p: &Prop, errors: &mut Errors) {
    if !p.child.is_set() {
        return;
    }
    let why = "a `child` property is created with the object and holds it: \
               besides `child` it takes only `rename`";
    for span in [
        p.get.span(),
        p.set.span(),
        p.default.span(),
        p.qom_type.span(),
        p.read_only.span(),
        p.write_only.span(),
        p.ty.span(),
        p.locked.span(),
        p.lock_first.span(),
        p.required.span(),
        p.description.span(),
        p.link.span(),
    ] {
        conflict(errors, span, why);
    }
}

fn type_name_expr(t: &TypeRef, as_interface: bool) -> TokenStream {
    match t {
        TypeRef::Name(lit) => quote!(#lit),
        TypeRef::Rust(path) if as_interface => {
            quote_spanned!(path.span()=> <#path as ::qom::InterfaceType>::TYPE_NAME)
        }
        TypeRef::Rust(path) => {
            quote_spanned!(path.span()=> <#path as ::qom::StaticType>::TYPE_NAME)
        }
    }
}

fn generate(input: &DeriveInput, c: &Container, name: &LitStr, props: &[Prop]) -> TokenStream {
    let ident = &input.ident;
    let parent_ty: TokenStream = match c.parent.get() {
        Some(p) => quote_spanned!(p.span()=> #p),
        None => quote!(::qom::ObjectRoot),
    };
    let parent_name = match (c.parent.get(), c.parent_name.get()) {
        (_, Some(lit)) => quote!(#lit),
        (Some(p), None) => quote_spanned!(p.span()=> <#p as ::qom::StaticType>::TYPE_NAME),
        (None, None) => quote!(::qom::TYPE_OBJECT),
    };
    // A parent named by string is opaque to Rust: only `object` is certain.
    let rust_parent = if c.parent_name.is_set() {
        quote!(::qom::ObjectRoot)
    } else {
        parent_ty.clone()
    };
    let is_abstract = c.is_abstract.is_set();
    let interfaces = c.interfaces.iter().map(|i| type_name_expr(i, true));
    let interface_inits = c.interfaces.iter().filter_map(|i| match i {
        TypeRef::Rust(path) => Some(quote_spanned!(path.span()=>
            <#path as ::qom::InterfaceInit<#ident>>::interface_init(class)?;
        )),
        TypeRef::Name(_) => None,
    });
    let declarations = props.iter().map(|p| declare(ident, p));
    let child_types = props.iter().filter(|p| p.child.is_set()).filter_map(|p| {
        p.field
            .as_ref()
            .map(|(_, ty)| quote_spanned!(ty.span()=> <#ty as ::qom::ChildField>::TYPE_NAME))
    });
    let user_class_init = c
        .class_init
        .get()
        .map(|path| quote_spanned!(path.span()=> #path(class)?;));
    let subclass_init = if c.manual_subclass_init.is_set() {
        quote!()
    } else {
        quote! {
            impl<__T> ::qom::SubclassInit<__T> for #ident
            where
                #rust_parent: ::qom::SubclassInit<__T>,
            {
                fn subclass_init(class: &mut ::qom::ClassBuilder<'_>) -> ::qom::Result<()> {
                    <#rust_parent as ::qom::SubclassInit<__T>>::subclass_init(class)
                }
            }
        }
    };
    let object_impl_check = quote_spanned!(ident.span()=>
        ::qom::__private::type_info::<#ident>()
    );

    quote! {
        impl ::qom::ObjectType for #ident {
            const NAME: &'static str = #name;
            const PARENT: &'static str = #parent_name;
            const ABSTRACT: bool = #is_abstract;
            const INTERFACES: &'static [&'static str] = &[#(#interfaces),*];
            const CHILD_TYPES: &'static [&'static str] = &[#(#child_types),*];

            fn class_init(class: &mut ::qom::ClassBuilder<'_>) -> ::qom::Result<()> {
                #(#declarations)*
                <#rust_parent as ::qom::SubclassInit<#ident>>::subclass_init(class)?;
                #(#interface_inits)*
                ::qom::__private::object_impl_class_init::<#ident>(class);
                #user_class_init
                ::core::result::Result::Ok(())
            }

            fn type_info() -> ::qom::TypeInfo {
                #object_impl_check
            }
        }

        impl ::qom::StaticType for #ident {
            const TYPE_NAME: &'static str = #name;
        }

        impl ::qom::Subclass for #ident {
            type Parent = #rust_parent;
        }

        #subclass_init
    }
}

/// The `class_init` statement declaring one property.
fn declare(owner: &Ident, p: &Prop) -> TokenStream {
    let name = prop_name(p);
    let mut options = TokenStream::new();
    if let Some(d) = p.description.get() {
        options.extend(quote_spanned!(d.span()=> .description(#d)));
    }
    if let Some(q) = p.qom_type.get() {
        options.extend(quote!(.qom_type(#q)));
    }
    match p.locked.get() {
        Some(Some(style)) => options.extend(quote_spanned!(style.span()=> .locked_with(#style))),
        Some(None) => options.extend(quote!(.locked())),
        None => {}
    }
    if p.lock_first.is_set() {
        options.extend(quote!(.lock_checked_first()));
    }
    if p.required.is_set() {
        options.extend(quote!(.required()));
    }
    if let Some(d) = p.default.get() {
        options.extend(quote_spanned!(d.span()=> .default(#d)));
    }

    if let (true, Some((field, ty))) = (p.child.is_set(), &p.field) {
        return quote_spanned! {ty.span()=>
            class.child::<#owner, _>(#name, |s: &mut #owner| -> &mut #ty { &mut s.#field });
        };
    }

    if let (Some(target), Some((field, _))) = (p.link.get(), &p.field) {
        let target = type_name_expr(target, false);
        return quote! {
            class.link::<#owner>(#name, #target, |s: &mut #owner| &mut s.#field)#options;
        };
    }

    let value_ty = match (&p.field, p.ty.get()) {
        (_, Some(ty)) => ty.clone(),
        (Some((_, ty)), None) => ty.clone(),
        (None, None) => unreachable!("checked: computed properties have `ty`"),
    };
    let ty_span = value_ty.span();
    let field = p.field.as_ref().map(|(f, _)| f);

    // The common case stays on the same accessor path as hand-written
    // `class.field(...)`, so derived types cost nothing extra per access.
    if let Some(field) = field {
        if !p.get.is_set() && !p.set.is_set() && !p.read_only.is_set() && !p.write_only.is_set() {
            return quote_spanned! {ty_span=>
                class.field::<#owner, #value_ty>(#name, |s: &mut #owner| &mut s.#field)#options;
            };
        }
    }

    let getter = match (p.get.get(), field) {
        _ if p.write_only.is_set() => None,
        (Some(get), _) => Some(quote_spanned! {get.span()=>
            .getter(|obj| #get(&mut ::qom::ObjectRef::<#owner>::assume(obj)))
        }),
        (None, Some(field)) => Some(quote_spanned! {ty_span=>
            .getter(|obj| ::core::result::Result::Ok(
                ::core::clone::Clone::clone(&obj.state::<#owner>().#field)))
        }),
        (None, None) => None,
    };
    let setter = match (p.set.get(), field) {
        _ if p.read_only.is_set() => None,
        (Some(set), _) => Some(quote_spanned! {set.span()=>
            .setter(|obj, value| #set(&mut ::qom::ObjectRef::<#owner>::assume(obj), value))
        }),
        (None, Some(field)) => Some(quote! {
            .setter(|obj, value| {
                obj.state::<#owner>().#field = value;
                ::core::result::Result::Ok(())
            })
        }),
        (None, None) => None,
    };
    quote_spanned! {ty_span=>
        class.property::<#value_ty>(#name)#getter #setter #options;
    }
}
