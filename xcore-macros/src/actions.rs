//! `#[actions]`: turns the `#[action]` methods of an inherent impl block into the
//! `xcore::Actions` dispatch.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{
    Attribute, Expr, ExprLit, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Lit, LitStr, Meta,
    ReturnType, Token, Type,
    ext::IdentExt,
    parse::{ParseStream, Parser},
};
use xcore_manifest::Grant;

use crate::{
    job::{self, Job},
    suggest,
};

/// The keys of `#[action(...)]`.
const ACTION_KEYS: &[&str] = &["name"];

/// A parameter of an action method after `&self`.
enum Param {
    /// `&CallContext`.
    Context,
    /// The input, deserialized from the payload.
    Input(Box<Type>),
}

/// One action: its name and how to call its method.
struct Action {
    name: String,
    method: Ident,
    is_async: bool,
    params: Vec<Param>,
    /// `Output` of `-> Result<Output, _>`, when it can be named (not `impl Trait`).
    output: Option<Type>,
    /// The method's doc comment.
    doc: String,
}

fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

fn is_action_attr(attr: &Attribute) -> bool {
    attr.path().is_ident("action")
}

/// Removes the attributes `which` keeps from `attrs` and returns them.
fn take_attrs(attrs: &mut Vec<Attribute>, which: fn(&Attribute) -> bool) -> Vec<Attribute> {
    let (taken, kept) = std::mem::take(attrs).into_iter().partition(which);
    *attrs = kept;
    taken
}

/// Checks an action name: it must be something a grant can name (`plugin:x: NAME`).
fn check_action_name(name: &str, at: &dyn ToTokens) -> syn::Result<()> {
    let usable = !name.is_empty()
        && name != "*"
        && !name.contains(|c: char| c == ',' || c.is_whitespace())
        && Grant::parse(&format!("plugin:p: {name}")).is_ok();
    if usable {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            at,
            format!(
                "invalid action name `{name}`: an action name holds ASCII letters, digits, `_`, \
                 `-` and `.` (grants name actions), e.g. `#[action(name = \"get_user\")]`"
            ),
        ))
    }
}

/// The name given by `#[action(name = "...")]`, if any, with the tokens to point errors at.
fn parse_action_attr(attr: &Attribute) -> syn::Result<Option<LitStr>> {
    match &attr.meta {
        Meta::Path(_) => Ok(None),
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(
            nv,
            format!(
                "write `#[action(name = {})]` or `#[action]`",
                nv.value.to_token_stream()
            ),
        )),
        Meta::List(list) => {
            let parser = |input: ParseStream<'_>| {
                let mut name: Option<LitStr> = None;
                let mut errors = None;
                while !input.is_empty() {
                    let key = input.call(Ident::parse_any)?;
                    input.parse::<Token![=]>().map_err(|_| {
                        syn::Error::new_spanned(&key, format!("expected `{key} = <value>`"))
                    })?;
                    let value: Expr = input.parse()?;
                    if key == "name" {
                        match &value {
                            Expr::Lit(ExprLit {
                                lit: Lit::Str(s), ..
                            }) if name.is_none() => name = Some(s.clone()),
                            Expr::Lit(ExprLit {
                                lit: Lit::Str(_), ..
                            }) => combine(
                                &mut errors,
                                syn::Error::new_spanned(&key, "duplicate key `name`; give it once"),
                            ),
                            other => combine(
                                &mut errors,
                                syn::Error::new_spanned(
                                    other,
                                    "`name` expects a string; write e.g. `#[action(name = \"get_user\")]`",
                                ),
                            ),
                        }
                    } else {
                        combine(
                            &mut errors,
                            syn::Error::new_spanned(
                                &key,
                                suggest::unknown_key(&key.to_string(), ACTION_KEYS),
                            ),
                        );
                    }
                    if input.is_empty() {
                        break;
                    }
                    input.parse::<Token![,]>()?;
                }
                match errors {
                    Some(e) => Err(e),
                    None => Ok(name),
                }
            };
            parser.parse2(list.tokens.clone())
        }
    }
}

/// `ty` without the invisible groups of `macro_rules!` and without parentheses.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => peel(&g.elem),
        Type::Paren(p) => peel(&p.elem),
        other => other,
    }
}

/// Whether `ty` is a path ending in `last` (`CallContext`, `Result`).
fn path_ends_in(ty: &Type, last: &str) -> bool {
    match peel(ty) {
        Type::Path(p) => {
            p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == last)
        }
        _ => false,
    }
}

/// Whether `ty` is `&CallContext` (any path ending in `CallContext`).
fn is_context(ty: &Type) -> bool {
    matches!(peel(ty), Type::Reference(r) if path_ends_in(&r.elem, "CallContext"))
}

/// Whether `ty` is `Result<...>` (any path ending in `Result`).
fn is_result(ty: &Type) -> bool {
    path_ends_in(ty, "Result")
}

/// Checks the shape of an action method and returns its parameters after `&self`.
fn check_signature(f: &ImplItemFn) -> syn::Result<Vec<Param>> {
    let sig = &f.sig;
    let mut errors = None;
    if let Some(unsafety) = &sig.unsafety {
        combine(
            &mut errors,
            syn::Error::new_spanned(unsafety, "an action cannot be an `unsafe fn`"),
        );
    }
    if let Some(param) = sig
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
    {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                param,
                "an action cannot have type or const parameters: its input and output types \
                 must be known to decode and encode payloads",
            ),
        );
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) => {
            let shared_ref = match (&r.reference, &r.colon_token) {
                (Some(_), _) => r.mutability.is_none(),
                (None, Some(_)) => matches!(&*r.ty, Type::Reference(t) if t.mutability.is_none()),
                (None, None) => false,
            };
            if !shared_ref {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(
                        r,
                        "an action takes `&self`: calls run concurrently on one shared \
                         instance (use interior mutability for state)",
                    ),
                );
            }
        }
        _ => {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    &sig.ident,
                    format!(
                        "an action needs a `&self` receiver; write `fn {}(&self, ...)`",
                        sig.ident
                    ),
                ),
            );
            // Without a receiver every parameter is still looked at below.
            inputs = sig.inputs.iter();
        }
    }
    let mut params = Vec::new();
    let (mut has_context, mut has_input) = (false, false);
    for arg in inputs {
        let FnArg::Typed(pat) = arg else {
            continue;
        };
        if is_context(&pat.ty) {
            if has_context {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(arg, "an action takes at most one `&CallContext`"),
                );
            }
            has_context = true;
            params.push(Param::Context);
        } else {
            if has_input {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(
                        arg,
                        "an action takes at most one input parameter (besides `&self` and \
                         `&CallContext`); gather the inputs in one `#[derive(Deserialize)]` struct",
                    ),
                );
            }
            has_input = true;
            params.push(Param::Input(pat.ty.clone()));
        }
    }
    match &sig.output {
        ReturnType::Type(_, ty) if is_result(ty) => {}
        ReturnType::Type(_, ty) => combine(
            &mut errors,
            syn::Error::new_spanned(
                ty,
                "an action returns `Result<Output, Error>` with `Output: Serialize` and \
                 `Error: Into<CallError>`; write e.g. `-> Result<u32, CallError>`",
            ),
        ),
        ReturnType::Default => combine(
            &mut errors,
            syn::Error::new(
                sig.paren_token.span.close(),
                "an action returns `Result<Output, Error>` with `Output: Serialize` and \
                 `Error: Into<CallError>`; write e.g. `-> Result<(), CallError>`",
            ),
        ),
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(params),
    }
}

/// `Output` of a `Result<Output, _>` return type, when it can be named in a turbofish.
fn output_type(f: &ImplItemFn) -> Option<Type> {
    let ReturnType::Type(_, ty) = &f.sig.output else {
        return None;
    };
    let Type::Path(p) = peel(ty) else {
        return None;
    };
    let syn::PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    let output = args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })?;
    nameable(output).then(|| output.clone())
}

/// Whether `ty` can stand in `SchemaProbe::<ty>` (no `impl Trait`, no `_`, no elided reference
/// lifetime).
fn nameable(ty: &Type) -> bool {
    struct Check(bool);
    impl<'ast> syn::visit::Visit<'ast> for Check {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = false;
        }
        fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
            self.0 = false;
        }
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            if r.lifetime.is_none() {
                self.0 = false;
            }
            syn::visit::visit_type_reference(self, r);
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident == "_" {
                self.0 = false;
            }
        }
    }
    let mut check = Check(true);
    syn::visit::Visit::visit_type(&mut check, ty);
    check.0
}

/// The doc comment of `attrs`, its lines joined (the leading space of `/// ` dropped).
fn doc_of(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').unwrap_or(&line).to_owned())
        .collect();
    lines.join("\n").trim().to_owned()
}

/// The input parameter of `f` (not `self`, not a `&CallContext`), if it has one.
fn input_arg(f: &ImplItemFn) -> Option<&FnArg> {
    f.sig
        .inputs
        .iter()
        .find(|arg| matches!(arg, FnArg::Typed(pat) if !is_context(&pat.ty)))
}

/// The jobs of one method, from its `#[job(...)]` attributes, calling `action`; reports errors
/// (bad keys, a method with an input, a job id already taken) into `errors`.
fn method_jobs(
    f: &ImplItemFn,
    job_attrs: &[Attribute],
    action: &str,
    taken: &[Job],
    errors: &mut Option<syn::Error>,
) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    if job_attrs.is_empty() {
        return jobs;
    }
    if let Some(arg) = input_arg(f) {
        combine(
            errors,
            syn::Error::new_spanned(
                arg,
                "a `#[job]` method takes no input (the scheduler calls it with no payload); it \
                 takes `&self` and optionally a `&CallContext`",
            ),
        );
        return jobs;
    }
    for attr in job_attrs {
        let parsed = match job::parse(attr) {
            Ok(parsed) => parsed,
            Err(e) => {
                combine(errors, e);
                continue;
            }
        };
        let (id, id_at) = match &parsed.id {
            Some(lit) => (lit.value(), lit.to_token_stream()),
            None => {
                let id = f.sig.ident.unraw().to_string();
                if let Err(e) = job::check_id(&id, &f.sig.ident) {
                    combine(errors, e);
                    continue;
                }
                (id, attr.to_token_stream())
            }
        };
        if let Some(other) = taken.iter().chain(&jobs).find(|j| j.id == id) {
            combine(
                errors,
                syn::Error::new_spanned(
                    &id_at,
                    format!(
                        "duplicate job id `{id}` (already the id of the job calling `{}`); give \
                         one another with `#[job(id = \"...\", ...)]`",
                        other.action
                    ),
                ),
            );
            continue;
        }
        jobs.push(Job {
            id,
            action: action.to_owned(),
            schedule: parsed.schedule,
        });
    }
    jobs
}

/// Collects the actions and the jobs of the impl block and strips their `#[action]` and
/// `#[job]` attributes.
fn collect(imp: &mut ItemImpl, errors: &mut Option<syn::Error>) -> (Vec<Action>, Vec<Job>) {
    let mut actions: Vec<Action> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    for item in &mut imp.items {
        let ImplItem::Fn(f) = item else {
            let attrs = match item {
                ImplItem::Const(c) => &mut c.attrs,
                ImplItem::Type(t) => &mut t.attrs,
                ImplItem::Macro(m) => &mut m.attrs,
                _ => continue,
            };
            for attr in take_attrs(attrs, is_action_attr) {
                combine(
                    errors,
                    syn::Error::new_spanned(attr, "`#[action]` goes on a method"),
                );
            }
            for attr in take_attrs(attrs, job::is_job_attr) {
                combine(
                    errors,
                    syn::Error::new_spanned(attr, "`#[job]` goes on a method"),
                );
            }
            continue;
        };
        let attrs = take_attrs(&mut f.attrs, is_action_attr);
        let job_attrs = take_attrs(&mut f.attrs, job::is_job_attr);
        if attrs.is_empty() && job_attrs.is_empty() {
            continue;
        }
        for extra in attrs.iter().skip(1) {
            combine(
                errors,
                syn::Error::new_spanned(extra, "duplicate `#[action]` attribute"),
            );
        }
        let parsed = match attrs.first() {
            Some(first) => parse_action_attr(first),
            // A `#[job]` method without `#[action]` is an action named after the method.
            None => Ok(None),
        };
        let (name, name_at) = match parsed {
            Ok(Some(lit)) => (lit.value(), lit.to_token_stream()),
            Ok(None) => (
                f.sig.ident.unraw().to_string(),
                f.sig.ident.to_token_stream(),
            ),
            Err(e) => {
                // Reported; the method name stands in so the rest is still checked.
                combine(errors, e);
                (
                    f.sig.ident.unraw().to_string(),
                    f.sig.ident.to_token_stream(),
                )
            }
        };
        if let Err(e) = check_action_name(&name, &name_at) {
            combine(errors, e);
            continue;
        }
        let params = match check_signature(f) {
            Ok(params) => params,
            Err(e) => {
                combine(errors, e);
                continue;
            }
        };
        if let Some(other) = actions.iter().find(|a| a.name == name) {
            combine(
                errors,
                syn::Error::new_spanned(
                    &name_at,
                    format!(
                        "duplicate action name `{name}` (already the name of `fn {}`); \
                         rename one with `#[action(name = \"...\")]`",
                        other.method
                    ),
                ),
            );
            continue;
        }
        let method_jobs = method_jobs(f, &job_attrs, &name, &jobs, errors);
        jobs.extend(method_jobs);
        actions.push(Action {
            name,
            method: f.sig.ident.clone(),
            is_async: f.sig.asyncness.is_some(),
            params,
            output: output_type(f),
            doc: doc_of(&f.attrs),
        });
    }
    (actions, jobs)
}

/// The `impl xcore::Actions` of the block's type, dispatching to `actions` and declaring
/// `jobs`.
fn actions_impl(imp: &ItemImpl, actions: &[Action], jobs: &[Job]) -> TokenStream {
    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    let names: Vec<&str> = actions.iter().map(|a| a.name.as_str()).collect();
    let uses_payload = actions
        .iter()
        .any(|a| a.params.iter().any(|p| matches!(p, Param::Input(_))));
    let uses_cx = actions
        .iter()
        .any(|a| a.params.iter().any(|p| matches!(p, Param::Context)));
    let payload = Ident::new(
        if uses_payload { "payload" } else { "_payload" },
        Span::call_site(),
    );
    let cx = Ident::new(if uses_cx { "cx" } else { "_cx" }, Span::call_site());
    let unknown = quote! {
        ::core::result::Result::Err(::xcore::CallError::unknown_action(
            action,
            <Self as ::xcore::Actions>::action_names(self),
        ))
    };
    let body = if actions.is_empty() {
        unknown
    } else {
        let arms = actions.iter().map(|a| {
            let name = &a.name;
            let method = &a.method;
            let decode = a.params.iter().find_map(|p| match p {
                Param::Input(ty) => Some(quote! {
                    let input = ::xcore::plugin::decode_input::<#ty>(#payload)?;
                }),
                Param::Context => None,
            });
            let args = a.params.iter().map(|p| match p {
                Param::Context => quote!(#cx),
                Param::Input(_) => quote!(input),
            });
            let wait = a.is_async.then(|| quote!(.await));
            quote! {
                #name => {
                    #decode
                    let out = Self::#method(self #(, #args)*) #wait
                        .map_err(::core::convert::Into::<::xcore::CallError>::into)?;
                    ::xcore::plugin::encode_output(&out)
                }
            }
        });
        quote! {
            match action {
                #(#arms)*
                _ => #unknown,
            }
        }
    };
    let declarations = job::declarations(jobs);
    let schemas = schemas(actions);
    quote! {
        #[::xcore::__private::async_trait]
        impl #impl_generics ::xcore::Actions for #self_ty #where_clause {
            fn action_names(&self) -> &'static [&'static str] {
                &[#(#names),*]
            }

            #declarations

            #schemas

            async fn handle(
                &self,
                action: &str,
                #payload: ::xcore::__private::Value,
                #cx: &::xcore::CallContext,
            ) -> ::core::result::Result<::xcore::__private::Value, ::xcore::CallError> {
                #body
            }
        }
    }
}

/// `fn action_schemas`: each action's name, doc, and the schemas probed for its input and
/// output (see `xcore::plugin::ActionSchema`: a type without `JsonSchema`, or a build without
/// xcore's `openapi` feature, has none). Nothing when there are no actions.
fn schemas(actions: &[Action]) -> TokenStream {
    if actions.is_empty() {
        return TokenStream::new();
    }
    let probe = |ty: &Type| {
        if nameable(ty) {
            quote!((&&::xcore::__private::SchemaProbe::<#ty>::new()).probe())
        } else {
            quote!(::xcore::__private::SchemaProbe::<()>::none())
        }
    };
    let entries = actions.iter().map(|a| {
        let name = &a.name;
        let doc = &a.doc;
        let input = match a.params.iter().find_map(|p| match p {
            Param::Input(ty) => Some(ty),
            Param::Context => None,
        }) {
            Some(ty) => {
                let probe = probe(ty);
                quote!(::core::option::Option::Some(#probe))
            }
            None => quote!(::core::option::Option::None),
        };
        let output = match &a.output {
            Some(ty) => probe(ty),
            None => quote!(::xcore::__private::SchemaProbe::<()>::none()),
        };
        quote!(::xcore::plugin::ActionSchema::__new(#name, #doc, #input, #output))
    });
    quote! {
        fn action_schemas(&self) -> ::std::vec::Vec<::xcore::plugin::ActionSchema> {
            #[allow(unused_imports)]
            use ::xcore::__private::{ProbeAny as _, ProbeJsonSchema as _};
            ::std::vec![#(#entries),*]
        }
    }
}

/// The expansion of `#[actions(attr)] item`. On errors, the block (stripped of its `#[action]`
/// attributes) and an `Actions` impl of the valid actions are still emitted, so that the errors
/// reported are only the ones the attribute found.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut imp: ItemImpl = match syn::parse2(item.clone()) {
        Ok(imp) => imp,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                format!(
                    "`#[actions]` goes on an inherent impl block (`impl MyPlugin {{ ... }}`): {e}"
                ),
            )
            .to_compile_error();
            return quote!(#item #e);
        }
    };
    let mut errors = None;
    if !attr.is_empty() {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                &attr,
                "`#[actions]` takes no arguments; name an action with `#[action(name = \"...\")]` on its method",
            ),
        );
    }
    if let Some((_, path, _)) = &imp.trait_ {
        let e = syn::Error::new_spanned(
            path,
            "`#[actions]` goes on an inherent impl block (`impl MyPlugin { ... }`), not on a trait impl",
        )
        .to_compile_error();
        return quote!(#item #e);
    }
    let (actions, jobs) = collect(&mut imp, &mut errors);
    let dispatch = actions_impl(&imp, &actions, &jobs);
    let errors = errors.map(|e| e.to_compile_error());
    quote! {
        #imp
        #dispatch
        #errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_ok(item: TokenStream) -> String {
        let mut imp: ItemImpl = syn::parse2(item).unwrap();
        let mut errors = None;
        let (actions, jobs) = collect(&mut imp, &mut errors);
        assert!(errors.is_none(), "{:?}", errors.map(|e| e.to_string()));
        let out = quote!(#imp);
        let dispatch = actions_impl(&imp, &actions, &jobs);
        format!("{out}\n{dispatch}")
    }

    fn errors(item: TokenStream) -> Vec<String> {
        let mut imp: ItemImpl = syn::parse2(item).unwrap();
        let mut errors = None;
        collect(&mut imp, &mut errors);
        errors.map_or_else(Vec::new, |e| e.into_iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn dispatches_each_shape() {
        let out = expand_ok(quote! {
            impl P {
                #[action]
                async fn a(&self) -> Result<u32, CallError> { Ok(1) }
                #[action(name = "bee")]
                fn b(&self, cx: &xcore::CallContext) -> Result<u32, CallError> { Ok(1) }
                #[action]
                async fn c(&self, input: Input) -> Result<u32, CallError> { Ok(1) }
                #[action]
                fn d(&self, cx: &CallContext, input: Vec<u8>) -> Result<u32, CallError> { Ok(1) }
                fn helper(&self) {}
            }
        });
        assert!(!out.contains("# [action"), "{out}");
        assert!(out.contains(r#"& ["a" , "bee" , "c" , "d"]"#), "{out}");
        assert!(out.contains("Self :: a (self) . await"), "{out}");
        assert!(out.contains("Self :: b (self , cx) . map_err"), "{out}");
        assert!(out.contains("decode_input :: < Input > (payload)"), "{out}");
        assert!(
            out.contains("Self :: d (self , cx , input) . map_err"),
            "{out}"
        );
        assert!(!out.contains("helper (self"), "{out}");
    }

    #[test]
    fn emits_action_schemas() {
        let out = expand_ok(quote! {
            impl P {
                /// Counts.
                ///
                /// Per tenant.
                #[action]
                async fn count(&self) -> Result<Count, CallError> { todo() }
                #[action]
                fn add(&self, cx: &CallContext, input: Input) -> io::Result<Vec<u8>> { todo() }
                #[action]
                fn opaque(&self) -> Result<impl Serialize, CallError> { Ok(1) }
                #[action]
                fn borrowed(&self, input: &str) -> Result<&'static str, CallError> { Ok("") }
            }
        });
        assert!(out.contains("fn action_schemas"), "{out}");
        assert!(
            out.contains(r#"__new ("count" , "Counts.\n\nPer tenant." , :: core :: option :: Option :: None , (&& :: xcore :: __private :: SchemaProbe :: < Count > :: new ()) . probe ())"#),
            "{out}"
        );
        assert!(
            out.contains("SchemaProbe :: < Input > :: new ()) . probe ())"),
            "{out}"
        );
        assert!(
            out.contains("SchemaProbe :: < Vec < u8 > > :: new ()) . probe ())"),
            "{out}"
        );
        // Types that cannot be named in a turbofish have no schema.
        assert!(!out.contains("impl Serialize >"), "{out}");
        assert!(!out.contains("SchemaProbe :: < & str >"), "{out}");
        assert!(out.contains("SchemaProbe :: < & 'static str >"), "{out}");
        // No actions, no `action_schemas`: the default (none) stays.
        let out = expand_ok(quote!(impl P {}));
        assert!(!out.contains("action_schemas"), "{out}");
    }

    #[test]
    fn names_unused_parameters_with_underscores() {
        let out = expand_ok(quote! {
            impl P {
                #[action]
                async fn a(&self) -> Result<u32, CallError> { Ok(1) }
            }
        });
        assert!(out.contains("_payload :"), "{out}");
        assert!(out.contains("_cx :"), "{out}");
        let out = expand_ok(quote!(impl P {}));
        assert!(out.contains("& []"), "{out}");
        assert!(!out.contains("match"), "{out}");
    }

    #[test]
    fn rejects_bad_shapes() {
        let errs = errors(quote! {
            impl P {
                #[action]
                fn no_receiver(x: u32) -> Result<u32, E> { Ok(x) }
                #[action]
                fn by_mut(&mut self) -> Result<u32, E> { Ok(1) }
                #[action]
                fn two(&self, a: u32, b: u32) -> Result<u32, E> { Ok(1) }
                #[action]
                fn no_result(&self) -> u32 { 1 }
                #[action]
                fn nothing(&self) {}
                #[action(nmae = "x")]
                fn key(&self) -> Result<u32, E> { Ok(1) }
                #[action(name = "key2")]
                fn dup1(&self) -> Result<u32, E> { Ok(1) }
                #[action(name = "key2")]
                fn dup2(&self) -> Result<u32, E> { Ok(1) }
                #[action(name = "a b")]
                fn spaced(&self) -> Result<u32, E> { Ok(1) }
                #[action]
                fn generic<T>(&self) -> Result<u32, E> { Ok(1) }
            }
        });
        let expected = [
            "needs a `&self` receiver",
            "an action takes `&self`",
            "at most one input parameter",
            "an action returns `Result<Output, Error>`",
            "an action returns `Result<Output, Error>`",
            "unknown key `nmae`; did you mean `name`?",
            "duplicate action name `key2`",
            "invalid action name `a b`",
            "cannot have type or const parameters",
        ];
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
        for (err, want) in errs.iter().zip(expected) {
            assert!(err.contains(want), "{err} / {want}");
        }
    }

    #[test]
    fn declares_jobs() {
        let out = expand_ok(quote! {
            impl P {
                #[job(cron = "0 3 * * *", timezone = "Europe/Paris")]
                async fn cleanup(&self) -> Result<(), CallError> { Ok(()) }
                #[action(name = "beat.now")]
                #[job(every = "30s", id = "beat")]
                #[job(every = "1h", id = "hourly")]
                fn beat(&self, cx: &CallContext) -> Result<(), CallError> { Ok(()) }
                #[action]
                fn plain(&self) -> Result<(), CallError> { Ok(()) }
            }
        });
        assert!(!out.contains("# [job"), "{out}");
        assert!(
            out.contains(r#"& ["cleanup" , "beat.now" , "plain"]"#),
            "{out}"
        );
        assert!(out.contains("fn declarations"), "{out}");
        assert!(out.contains(r#"new ("cleanup" , "cleanup" ,"#), "{out}");
        assert!(out.contains(r#"new ("beat" , "beat.now" ,"#), "{out}");
        assert!(out.contains(r#"new ("hourly" , "beat.now" ,"#), "{out}");
        // Without jobs, the default `declarations` stays.
        let out = expand_ok(quote! {
            impl P {
                #[action]
                fn plain(&self) -> Result<(), CallError> { Ok(()) }
            }
        });
        assert!(!out.contains("fn declarations"), "{out}");
    }

    #[test]
    fn rejects_bad_jobs() {
        let errs = errors(quote! {
            impl P {
                #[job(every = "1s")]
                fn with_input(&self, n: u32) -> Result<(), E> { Ok(()) }
                #[job(every = "1s", id = "same")]
                fn a(&self) -> Result<(), E> { Ok(()) }
                #[job(cron = "* * * * *", id = "same")]
                fn b(&self) -> Result<(), E> { Ok(()) }
                #[job(every = "1s")]
                #[job(every = "2s")]
                fn twice(&self) -> Result<(), E> { Ok(()) }
                #[job(cron = "* * *")]
                fn short(&self) -> Result<(), E> { Ok(()) }
                #[job(every = "1s", timezone = "UTC")]
                fn zoned(&self) -> Result<(), E> { Ok(()) }
                #[job(shedule = "1s")]
                const C: u32 = 1;
            }
        });
        let expected = [
            "a `#[job]` method takes no input",
            "duplicate job id `same`",
            "duplicate job id `twice`",
            "invalid cron expression `* * *`: it has 3 fields",
            "`timezone` only applies to `cron`",
            "`#[job]` goes on a method",
        ];
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
        for (err, want) in errs.iter().zip(expected) {
            assert!(err.contains(want), "{err} / {want}");
        }
    }

    #[test]
    fn recognises_the_context() {
        let ty: Type = syn::parse_quote!(&::xcore::CallContext);
        assert!(is_context(&ty));
        let ty: Type = syn::parse_quote!(&'a CallContext);
        assert!(is_context(&ty));
        let ty: Type = syn::parse_quote!(CallContext);
        assert!(!is_context(&ty));
        let ty: Type = syn::parse_quote!(&Context);
        assert!(!is_context(&ty));
    }
}
