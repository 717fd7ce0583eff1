//! `#[plugin(...)]`: parses and checks the manifest keys, then writes the `PluginManifest` impl
//! and the `inventory` registration.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{
    Expr, ExprLit, Ident, Lit, LitInt, LitStr, Token,
    ext::IdentExt,
    parse::{Parse, ParseStream},
    spanned::Spanned,
};
use xcore_manifest::{Manifest, ManifestBuilder};

use crate::suggest;

/// The kind of value a key takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    List,
    Int,
}

/// Every key of `#[plugin(...)]`: its name, the kind of its value, and an example.
const KEYS: &[(&str, Kind, &str)] = &[
    ("name", Kind::Str, r#"name = "my_plugin""#),
    ("version", Kind::Str, r#"version = "1.2.0""#),
    (
        "description",
        Kind::Str,
        r#"description = "What the plugin does""#,
    ),
    ("author", Kind::Str, r#"author = "Jane Doe""#),
    ("services", Kind::List, r#"services = ["db", "cache"]"#),
    ("requires", Kind::List, r#"requires = ["audit@^1.2"]"#),
    (
        "permissions",
        Kind::List,
        r#"permissions = ["db.default: read, write"]"#,
    ),
    ("allowed_callers", Kind::List, r#"allowed_callers = ["*"]"#),
    ("mode", Kind::Str, r#"mode = "trusted""#),
    ("timeout", Kind::Str, r#"timeout = "10s""#),
    ("rate_limit", Kind::Str, r#"rate_limit = "100/1m""#),
    ("max_concurrency", Kind::Int, "max_concurrency = 16"),
];

fn key_names() -> Vec<&'static str> {
    KEYS.iter().map(|(k, _, _)| *k).collect()
}

/// One `key = value` of the attribute, as written.
struct RawEntry {
    key: Ident,
    value: Expr,
}

/// The attribute's arguments, as written.
struct RawArgs(Vec<RawEntry>);

impl Parse for RawArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut entries = Vec::new();
        while !input.is_empty() {
            let key = input.call(Ident::parse_any)?;
            if !input.peek(Token![=]) {
                let name = key.to_string();
                let hint = match KEYS.iter().find(|(k, _, _)| *k == name) {
                    Some((_, _, example)) => format!("; write e.g. `{example}`"),
                    None => String::new(),
                };
                return Err(syn::Error::new_spanned(
                    &key,
                    format!("expected `{name} = <value>`{hint}"),
                ));
            }
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            entries.push(RawEntry { key, value });
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(RawArgs(entries))
    }
}

/// A value of the right kind.
enum Value {
    Str(LitStr),
    List { expr: Expr, items: Vec<LitStr> },
    Int(LitInt, usize),
}

impl Value {
    fn span_tokens(&self) -> &dyn ToTokens {
        match self {
            Value::Str(lit) => lit,
            Value::List { expr, .. } => expr,
            Value::Int(lit, _) => lit,
        }
    }
}

/// A known key with a value of the right kind.
struct Entry {
    key: Ident,
    name: &'static str,
    value: Value,
}

/// Removes the invisible groups `macro_rules!` puts around `$e:expr` and parentheses.
fn peel(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(g) => peel(&g.expr),
        Expr::Paren(p) => peel(&p.expr),
        other => other,
    }
}

fn as_str_lit(expr: &Expr) -> Option<&LitStr> {
    match peel(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s),
        _ => None,
    }
}

/// The text a bare word or number would have been as a string, for "write `"db"`" hints.
fn as_quotable(expr: &Expr) -> Option<String> {
    match peel(expr) {
        Expr::Path(p) => p.path.get_ident().map(|i| i.unraw().to_string()),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => Some(i.to_string()),
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => Some(f.to_string()),
        _ => None,
    }
}

fn check_kind(
    key: &Ident,
    name: &str,
    kind: Kind,
    example: &str,
    expr: &Expr,
) -> syn::Result<Value> {
    match kind {
        Kind::Str => match as_str_lit(expr) {
            Some(s) => Ok(Value::Str(s.clone())),
            None => {
                // A bare word or number is quoted for the hint (`timeout = 10s`), except a
                // version, which a bare number would not make valid.
                let hint = match as_quotable(expr) {
                    Some(text) if name != "version" => format!("`{name} = {text:?}`"),
                    _ => format!("e.g. `{example}`"),
                };
                Err(syn::Error::new_spanned(
                    expr,
                    format!("`{name}` expects a string; write {hint}"),
                ))
            }
        },
        Kind::List => {
            let array = match peel(expr) {
                Expr::Array(a) => a,
                _ => {
                    let hint = match as_str_lit(expr) {
                        Some(s) => format!("`{name} = [{}]`", s.to_token_stream()),
                        None => format!("e.g. `{example}`"),
                    };
                    return Err(syn::Error::new_spanned(
                        expr,
                        format!("`{name}` expects an array of strings; write {hint}"),
                    ));
                }
            };
            let mut items = Vec::new();
            let mut errors: Option<syn::Error> = None;
            for elem in &array.elems {
                match as_str_lit(elem) {
                    Some(s) => items.push(s.clone()),
                    None => {
                        let hint = match as_quotable(elem) {
                            Some(text) => format!("write `{:?}`", text),
                            None => format!("write e.g. `{example}`"),
                        };
                        let e = syn::Error::new_spanned(
                            elem,
                            format!(
                                "`{name}` expects an array of strings: each element is a string literal; {hint}"
                            ),
                        );
                        combine(&mut errors, e);
                    }
                }
            }
            match errors {
                Some(e) => Err(e),
                None => Ok(Value::List {
                    expr: expr.clone(),
                    items,
                }),
            }
        }
        Kind::Int => {
            let fail = |hint: String| {
                syn::Error::new_spanned(
                    expr,
                    format!("`{name}` expects a whole number; write {hint}"),
                )
            };
            match peel(expr) {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(lit), ..
                }) => match lit.base10_parse::<usize>() {
                    Ok(n) => Ok(Value::Int(lit.clone(), n)),
                    Err(_) => Err(fail(format!(
                        "a number that fits in a `usize`, e.g. `{example}`"
                    ))),
                },
                other => {
                    let unquoted = as_str_lit(other)
                        .map(LitStr::value)
                        .filter(|v| v.trim().parse::<usize>().is_ok());
                    Err(fail(match unquoted {
                        Some(v) => format!("`{key} = {}` (without quotes)", v.trim()),
                        None => format!("e.g. `{example}`"),
                    }))
                }
            }
        }
    }
}

fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// Checks the keys and the kinds of their values: unknown keys, duplicates, wrong kinds.
fn check_entries(raw: RawArgs) -> (Vec<Entry>, Option<syn::Error>) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut errors = None;
    for RawEntry { key, value } in raw.0 {
        let written = key.to_string();
        let Some(&(name, kind, example)) = KEYS.iter().find(|(k, _, _)| *k == written) else {
            combine(
                &mut errors,
                syn::Error::new_spanned(&key, suggest::unknown_key(&written, &key_names())),
            );
            continue;
        };
        if seen.contains(&name) {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    &key,
                    format!("duplicate key `{name}`; give each key once"),
                ),
            );
            continue;
        }
        seen.push(name);
        match check_kind(&key, name, kind, example, &value) {
            Ok(value) => entries.push(Entry { key, name, value }),
            Err(e) => combine(&mut errors, e),
        }
    }
    (entries, errors)
}

/// Adds one key to a builder; for a list, only its first `take` elements.
fn apply(builder: ManifestBuilder, entry: &Entry, take: usize) -> ManifestBuilder {
    match &entry.value {
        Value::Str(s) => {
            let s = s.value();
            match entry.name {
                "description" => builder.description(s),
                "author" => builder.author(s),
                "mode" => builder.mode(s),
                "timeout" => builder.timeout(s),
                "rate_limit" => builder.rate_limit(s),
                _ => builder,
            }
        }
        Value::List { items, .. } => {
            let items: Vec<String> = items.iter().take(take).map(LitStr::value).collect();
            match entry.name {
                "services" => builder.services(items),
                "requires" => builder.requires(items),
                "permissions" => builder.permissions(items),
                "allowed_callers" => builder.allowed_callers(items),
                _ => builder,
            }
        }
        Value::Int(_, n) => match entry.name {
            "max_concurrency" => builder.max_concurrency(*n),
            _ => builder,
        },
    }
}

/// Checks the values with the very builder registration uses, one key at a time so that every
/// faulty key is reported, and points at the faulty element of a list.
fn check_values(
    name: &LitStr,
    version: &LitStr,
    version_given: bool,
    entries: &[Entry],
) -> syn::Result<()> {
    let base = || Manifest::builder(name.value(), version.value());
    if let Err(e) = base().build() {
        let message = format!("`{}`: {}", e.key(), e.message());
        return Err(match e.key() {
            "name" => syn::Error::new_spanned(name, message),
            "version" if version_given => syn::Error::new_spanned(version, message),
            _ => syn::Error::new(Span::call_site(), message),
        });
    }
    let mut errors = None;
    for entry in entries
        .iter()
        .filter(|e| !matches!(e.name, "name" | "version"))
    {
        let Err(e) = apply(base(), entry, usize::MAX).build() else {
            continue;
        };
        let message = format!("`{}`: {}", e.key(), e.message());
        let at: &dyn ToTokens = match &entry.value {
            // The first prefix of the list that fails ends with the element at fault.
            Value::List { items, .. } => (1..=items.len())
                .find(|&n| apply(base(), entry, n).build().is_err())
                .map_or(entry.value.span_tokens(), |n| {
                    &items[n - 1] as &dyn ToTokens
                }),
            other => other.span_tokens(),
        };
        combine(&mut errors, syn::Error::new_spanned(at, message));
    }
    if let Some(e) = errors {
        return Err(e);
    }
    // Each key is fine on its own; check them together as registration will.
    let all = entries.iter().fold(base(), |b, e| apply(b, e, usize::MAX));
    match all.build() {
        Ok(_) => Ok(()),
        Err(e) => Err(syn::Error::new(
            Span::call_site(),
            format!("`{}`: {}", e.key(), e.message()),
        )),
    }
}

/// The builder calls `manifest()` makes, one per key given (name and version aside).
fn builder_calls(entries: &[Entry]) -> TokenStream {
    let calls = entries
        .iter()
        .filter(|e| !matches!(e.name, "name" | "version"))
        .map(|entry| {
            let method = Ident::new(entry.name, entry.key.span());
            let arg = match &entry.value {
                Value::Str(s) => s.to_token_stream(),
                Value::List { items, .. } if items.is_empty() => {
                    quote!(::core::iter::empty::<&'static str>())
                }
                Value::List { items, .. } => quote!([#(#items),*]),
                Value::Int(lit, n) => {
                    let mut n = Literal::usize_unsuffixed(*n);
                    n.set_span(lit.span());
                    n.to_token_stream()
                }
            };
            quote!(.#method(#arg))
        });
    quote!(#(#calls)*)
}

/// The type the attribute is on: a non-generic struct or enum.
fn check_item(item: &syn::Item) -> syn::Result<&Ident> {
    let (ident, generics) = match item {
        syn::Item::Struct(s) => (&s.ident, &s.generics),
        syn::Item::Enum(e) => (&e.ident, &e.generics),
        other => {
            return Err(syn::Error::new(
                other.span(),
                "`#[plugin]` goes on a struct or an enum (with `#[derive(Default)]` or a `Default` impl)",
            ));
        }
    };
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            generics,
            "a plugin type cannot be generic: registration needs one concrete type; \
             wrap the generic type in a plain struct",
        ));
    }
    Ok(ident)
}

/// The expansion of `#[plugin(attr)] item`, or the item followed by the errors.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item.clone()) {
        Ok(tokens) => tokens,
        Err(e) => {
            let errors = e.to_compile_error();
            quote!(#item #errors)
        }
    }
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let parsed: syn::Item = syn::parse2(item)?;
    let raw: RawArgs = syn::parse2(attr)?;
    let name_written = raw.0.iter().any(|e| e.key == "name");
    let mut errors = None;
    let ident = match check_item(&parsed) {
        Ok(ident) => Some(ident),
        Err(e) => {
            combine(&mut errors, e);
            None
        }
    };
    let (entries, kind_errors) = check_entries(raw);
    if let Some(e) = kind_errors {
        combine(&mut errors, e);
    }
    let find = |key: &str| {
        entries.iter().find_map(|e| match &e.value {
            Value::Str(s) if e.name == key => Some(s.clone()),
            _ => None,
        })
    };
    let name = find("name");
    let given_version = find("version");
    if !name_written {
        combine(
            &mut errors,
            syn::Error::new(
                Span::call_site(),
                r#"missing key `name`; write e.g. `#[plugin(name = "my_plugin")]`"#,
            ),
        );
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let (Some(ident), Some(name)) = (ident, name) else {
        // Unreachable: both failures were reported above.
        return Err(syn::Error::new(Span::call_site(), "invalid `#[plugin]`"));
    };
    let version = match &given_version {
        Some(v) => v.clone(),
        None => match std::env::var("CARGO_PKG_VERSION") {
            Ok(v) => LitStr::new(&v, Span::call_site()),
            Err(_) => {
                return Err(syn::Error::new(
                    Span::call_site(),
                    "no `version` key and `CARGO_PKG_VERSION` is not set (not built by cargo?); \
                     write e.g. `version = \"1.2.0\"`",
                ));
            }
        },
    };
    check_values(&name, &version, given_version.is_some(), &entries)?;

    let calls = builder_calls(&entries);
    Ok(quote! {
        #parsed

        impl ::xcore::plugin::PluginManifest for #ident {
            fn manifest() -> ::core::result::Result<::xcore::Manifest, ::xcore::ManifestError> {
                ::xcore::Manifest::builder(#name, #version) #calls .build()
            }
        }

        const _: () = {
            fn __xcore_make() -> ::std::boxed::Box<dyn ::xcore::Plugin> {
                ::std::boxed::Box::new(<#ident as ::core::default::Default>::default())
            }
            ::xcore::__private::inventory::submit! {
                ::xcore::plugin::Registration::new(
                    <#ident as ::xcore::plugin::PluginManifest>::manifest,
                    __xcore_make,
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                )
            }
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(attr: TokenStream) -> Vec<String> {
        let item = quote!(
            #[derive(Default)]
            struct P;
        );
        match try_expand(attr, item) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_every_key() {
        let out = try_expand(
            quote!(
                name = "p",
                version = "1.0.0",
                description = "d",
                author = "a",
                services = ["db"],
                requires = ["audit@^1.2"],
                permissions = ["db.default: read"],
                allowed_callers = [],
                mode = "trusted",
                timeout = "1s",
                rate_limit = "10/s",
                max_concurrency = 4
            ),
            quote!(
                struct P;
            ),
        )
        .unwrap()
        .to_string();
        assert!(out.contains("PluginManifest for P"), "{out}");
        assert!(out.contains(". max_concurrency (4)"), "{out}");
        assert!(out.contains("empty :: < & 'static str >"), "{out}");
        assert!(!out.contains(". name ("), "{out}");
    }

    #[test]
    fn reports_key_errors() {
        let errs = errors(quote!(
            name = "p",
            permisions = [],
            name = "q",
            timeout = 10
        ));
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("did you mean `permissions`?"), "{errs:?}");
        assert!(errs[1].contains("duplicate key `name`"), "{errs:?}");
        assert!(errs[2].contains("`timeout` expects a string"), "{errs:?}");
    }

    #[test]
    fn reports_missing_name() {
        let errs = errors(quote!(version = "1.0.0"));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("missing key `name`"), "{errs:?}");
    }

    #[test]
    fn reports_value_errors_through_the_builder() {
        let errs = errors(quote!(
            name = "p",
            timeout = "10",
            requires = ["a", "b", "a@1"],
            max_concurrency = 0
        ));
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("`timeout`: "), "{errs:?}");
        assert!(errs[1].contains("`a` is listed twice"), "{errs:?}");
        assert!(errs[2].starts_with("`max_concurrency`: "), "{errs:?}");
        let errs = errors(quote!(name = "P", timeout = "10"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("`name`: invalid name `P`"), "{errs:?}");
    }

    #[test]
    fn suggests_the_right_shape() {
        let errs = errors(quote!(name = "p", services = "db", max_concurrency = "16"));
        assert!(errs[0].contains(r#"write `services = ["db"]`"#), "{errs:?}");
        assert!(
            errs[1].contains("write `max_concurrency = 16` (without quotes)"),
            "{errs:?}"
        );
        let errs = errors(quote!(name = "p", services = [db, 3]));
        assert!(errs[0].contains(r#"write `"db"`"#), "{errs:?}");
        assert!(errs[1].contains(r#"write `"3"`"#), "{errs:?}");
        let errs = errors(quote!(
            name = "p",
            timeout = 10s,
            mode = trusted,
            version = 1
        ));
        assert!(errs[0].contains(r#"write `timeout = "10s"`"#), "{errs:?}");
        assert!(errs[1].contains(r#"write `mode = "trusted"`"#), "{errs:?}");
        assert!(
            errs[2].contains(r#"write e.g. `version = "1.2.0"`"#),
            "{errs:?}"
        );
        let errs = errors(quote!(name));
        assert!(
            errs[0].contains(r#"write e.g. `name = "my_plugin"`"#),
            "{errs:?}"
        );
    }

    #[test]
    fn rejects_generic_and_non_type_items() {
        let e = try_expand(
            quote!(name = "p"),
            quote!(
                struct P<T>(T);
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot be generic"));
        let e = try_expand(
            quote!(name = "p"),
            quote!(
                fn p() {}
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("struct or an enum"));
    }
}
