//! The code a derive expands to: the `ObjectType` registration and one
//! `class_init` statement per property.

use super::parse::{prop_name, Container, Prop, TypeRef};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, LitStr};

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

pub(super) fn generate(
    input: &DeriveInput,
    c: &Container,
    name: &LitStr,
    props: &[Prop],
) -> TokenStream {
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
