//! `#[derive(qom::Enum)]`.

use crate::attrs::{path_name, string, Errors, Slot};
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Error, Fields, LitStr, Result};

pub(crate) fn expand(input: &DeriveInput) -> Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(Error::new_spanned(
            &input.ident,
            "`qom::Enum` is derived on a fieldless enum",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &input.generics,
            "a QOM enum cannot be generic",
        ));
    }
    if data.variants.is_empty() {
        return Err(Error::new_spanned(
            &input.ident,
            "a QOM enum needs at least one value",
        ));
    }
    let mut errors = Errors::default();
    let mut qapi_name: Slot<LitStr> = Slot::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("qom")) {
        errors.push_result(attr.parse_nested_meta(|meta| {
            let key = path_name(&meta.path);
            match key.as_str() {
                "name" => string(&meta, &mut qapi_name),
                _ => Err(meta.error(format!(
                    "unknown key `{key}` on a QOM enum; expected `name = \"QapiName\"`"
                ))),
            }
        }));
    }

    let mut variants = Vec::new();
    let mut texts: Vec<LitStr> = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            errors.push(Error::new_spanned(
                &v.fields,
                "QOM enum values carry no data: the property value is just the name",
            ));
            continue;
        }
        let mut rename: Slot<LitStr> = Slot::default();
        for attr in v.attrs.iter().filter(|a| a.path().is_ident("qom")) {
            errors.push_result(attr.parse_nested_meta(|meta| {
                let key = path_name(&meta.path);
                match key.as_str() {
                    "rename" => string(&meta, &mut rename),
                    _ => Err(meta.error(format!(
                        "unknown key `{key}` on a QOM enum value; expected `rename = \"value\"`"
                    ))),
                }
            }));
        }
        let text = match rename.get() {
            Some(lit) => lit.clone(),
            None => LitStr::new(&kebab(&v.ident.to_string()), v.ident.span()),
        };
        if text.value().is_empty() {
            errors.push(Error::new_spanned(
                &text,
                "an enum value name cannot be empty",
            ));
        }
        if texts.iter().any(|t| t.value() == text.value()) {
            errors.push(Error::new_spanned(
                &v.ident,
                format!("enum value '{}' is declared twice", text.value()),
            ));
        }
        texts.push(text);
        variants.push(&v.ident);
    }
    errors.finish()?;

    let ident = &input.ident;
    let rust_name = ident.to_string();
    let qapi = qapi_name
        .get()
        .cloned()
        .unwrap_or_else(|| LitStr::new(&rust_name, ident.span()));
    let indices = 0..variants.len();
    // serde's own derive, on a private twin of the enum, does the parsing:
    // the same code `qom_enum!` relies on, so both accept and refuse the
    // same inputs with the same messages.
    Ok(quote! {
        const _: () = {
            #[derive(::qom::__serde::Serialize, ::qom::__serde::Deserialize)]
            #[serde(crate = "::qom::__serde", rename = #rust_name)]
            enum Twin {
                #( #[serde(rename = #texts)] #variants, )*
            }

            impl ::qom::__serde::Serialize for #ident {
                fn serialize<S: ::qom::__serde::Serializer>(
                    &self,
                    serializer: S,
                ) -> ::core::result::Result<S::Ok, S::Error> {
                    let twin = match self { #( #ident::#variants => Twin::#variants, )* };
                    ::qom::__serde::Serialize::serialize(&twin, serializer)
                }
            }

            impl<'de> ::qom::__serde::Deserialize<'de> for #ident {
                fn deserialize<D: ::qom::__serde::Deserializer<'de>>(
                    deserializer: D,
                ) -> ::core::result::Result<Self, D::Error> {
                    let twin = <Twin as ::qom::__serde::Deserialize<'de>>::deserialize(deserializer)?;
                    ::core::result::Result::Ok(match twin { #( Twin::#variants => #ident::#variants, )* })
                }
            }

            impl ::qom::PropertyType for #ident {
                fn qom_type() -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(#qapi)
                }
                fn json_schema() -> ::qom::__serde_json::Value {
                    ::qom::__serde_json::json!({"type": "string", "enum": [#(#texts),*]})
                }
            }

            impl ::qom::EnumType for #ident {
                const NAME: &'static str = #qapi;
                const VALUES: &'static [&'static str] = &[#(#texts),*];
                fn as_str(self) -> &'static str {
                    match self { #( #ident::#variants => #texts, )* }
                }
                fn index(self) -> usize {
                    match self { #( #ident::#variants => #indices, )* }
                }
            }

            impl ::core::fmt::Display for #ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(::qom::EnumType::as_str(*self))
                }
            }
        };
    })
}

/// `OnOffAuto` as `on-off-auto`: QAPI's usual spelling of enum values.
fn kebab(ident: &str) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    let mut out = String::new();
    for (i, ch) in ident.chars().enumerate() {
        if ch.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(ch.to_lowercase());
        } else if ch == '_' {
            out.push('-');
        } else {
            out.push(ch);
        }
    }
    out
}
