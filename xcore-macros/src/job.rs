//! `#[job(...)]`: a schedule on a method of an `#[actions]` block, declared to the scheduler
//! as `xcore::services::scheduler::DeclaredJob`s in the bag of `xcore::Actions::declarations`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{
    Attribute, Expr, ExprLit, Ident, Lit, LitStr, Meta, Token,
    ext::IdentExt,
    parse::{ParseStream, Parser},
};

use crate::suggest;

/// The keys of `#[job(...)]`.
const JOB_KEYS: &[&str] = &["cron", "every", "id", "timezone"];

/// The cron nicknames the scheduler knows (`@daily`), lowercase.
const NICKNAMES: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// The longest job id (the scheduler's `MAX_JOB_ID_LEN`).
const MAX_ID_LEN: usize = 128;

/// The shortest interval the scheduler accepts (its `MIN_INTERVAL`), in milliseconds.
const MIN_INTERVAL_MS: u128 = 1_000;

/// When a job fires.
pub(crate) enum Schedule {
    /// A cron expression, with an optional IANA time zone.
    Cron {
        expression: String,
        timezone: Option<String>,
    },
    /// An interval (`30s`).
    Every(String),
}

/// One `#[job(...)]`, checked, before it is tied to its action.
pub(crate) struct JobAttr {
    /// The id given with `id = "..."`, if any.
    pub(crate) id: Option<LitStr>,
    pub(crate) schedule: Schedule,
}

/// A job of the block: its id, the action it calls and its schedule.
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) action: String,
    pub(crate) schedule: Schedule,
}

pub(crate) fn is_job_attr(attr: &Attribute) -> bool {
    attr.path().is_ident("job")
}

fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// The message for a job without a schedule, or with two.
const ONE_SCHEDULE: &str = "a job has exactly one schedule: write `#[job(cron = \"0 3 * * *\")]` \
                            or `#[job(every = \"30s\")]`";

/// Checks a job id as the scheduler will: 1 to 128 ASCII letters, digits, `_`, `-` and `.`.
pub(crate) fn check_id(id: &str, at: &dyn ToTokens) -> syn::Result<()> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_ID_LEN {
        "it is longer than 128 characters"
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        "it holds a character other than an ASCII letter, a digit, `_`, `-` and `.`"
    } else {
        return Ok(());
    };
    Err(syn::Error::new_spanned(
        at,
        format!(
            "invalid job id `{id}`: {reason}; write e.g. `#[job(id = \"nightly-cleanup\", ...)]`"
        ),
    ))
}

/// Checks the shape of a cron expression: 5, 6 or 7 fields, or a nickname. The expression is
/// parsed in full when the plugin starts.
fn check_cron(expression: &str) -> Result<(), String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match fields.as_slice() {
        [one] if one.starts_with('@') => {
            if NICKNAMES.contains(&one.to_ascii_lowercase().as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "unknown cron nickname `{one}`; the nicknames are {}",
                    NICKNAMES
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        fields if matches!(fields.len(), 5..=7) => {
            if expression.contains('@') {
                Err("`@` is only allowed in a nickname such as `@daily`".into())
            } else {
                Ok(())
            }
        }
        fields => Err(format!(
            "it has {} field{}; a cron expression has 5 fields (`m h dom mon dow`), 6 (seconds \
             first) or 7 (seconds first, year last), or is a nickname such as `@daily`",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        )),
    }
}

/// Checks an interval: a duration (`30s`, `1m30s`) of at least one second.
fn check_every(every: &str) -> Result<(), String> {
    let period = xcore_manifest::parse_duration(every)?;
    if period.as_millis() < MIN_INTERVAL_MS {
        return Err(format!(
            "an interval is at least `1s`, and `{every}` is {period:?}"
        ));
    }
    Ok(())
}

/// Parses and checks one `#[job(...)]`.
pub(crate) fn parse(attr: &Attribute) -> syn::Result<JobAttr> {
    let list = match &attr.meta {
        Meta::List(list) => list,
        Meta::Path(path) => return Err(syn::Error::new_spanned(path, ONE_SCHEDULE)),
        Meta::NameValue(nv) => {
            return Err(syn::Error::new_spanned(
                nv,
                "write `#[job(cron = \"...\")]` or `#[job(every = \"...\")]`",
            ));
        }
    };
    let parser = |input: ParseStream<'_>| {
        let mut keys: Vec<(Ident, LitStr)> = Vec::new();
        let mut errors = None;
        while !input.is_empty() {
            let key = input.call(Ident::parse_any)?;
            input.parse::<Token![=]>().map_err(|_| {
                syn::Error::new_spanned(&key, format!("expected `{key} = \"...\"`"))
            })?;
            let value: Expr = input.parse()?;
            let name = key.to_string();
            if !JOB_KEYS.contains(&name.as_str()) {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(&key, suggest::unknown_key(&name, JOB_KEYS)),
                );
            } else if keys.iter().any(|(k, _)| *k == key) {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(&key, format!("duplicate key `{key}`; give it once")),
                );
            } else {
                match value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) => keys.push((key, s)),
                    other => combine(
                        &mut errors,
                        syn::Error::new_spanned(
                            other,
                            format!("`{key}` expects a string, e.g. {}", example(&name)),
                        ),
                    ),
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(keys),
        }
    };
    let keys = parser.parse2(list.tokens.clone())?;
    let get = |name: &str| keys.iter().find(|(k, _)| k == name);
    let (cron, every, id, timezone) = (get("cron"), get("every"), get("id"), get("timezone"));
    let mut errors = None;
    if let Some((_, lit)) = id
        && let Err(e) = check_id(&lit.value(), lit)
    {
        combine(&mut errors, e);
    }
    let timezone = match timezone {
        Some((key, _)) if cron.is_none() => {
            if every.is_some() {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(
                        key,
                        "`timezone` only applies to `cron` (an interval counts from the Unix \
                         epoch, whatever the zone); remove it",
                    ),
                );
            }
            None
        }
        Some((_, lit)) if lit.value().trim().is_empty() => {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    lit,
                    "`timezone` names an IANA time zone, e.g. `timezone = \"Europe/Paris\"`",
                ),
            );
            None
        }
        Some((_, lit)) => Some(lit.value()),
        None => None,
    };
    let schedule = match (cron, every) {
        (None, None) => Err(syn::Error::new_spanned(attr, ONE_SCHEDULE)),
        (Some(_), Some((key, _))) => Err(syn::Error::new_spanned(
            key,
            "a job has exactly one schedule: give `cron` or `every`, not both",
        )),
        (Some((_, lit)), None) => check_cron(&lit.value())
            .map(|()| Schedule::Cron {
                expression: lit.value(),
                timezone,
            })
            .map_err(|reason| {
                syn::Error::new_spanned(
                    lit,
                    format!("invalid cron expression `{}`: {reason}", lit.value()),
                )
            }),
        (None, Some((_, lit))) => check_every(&lit.value())
            .map(|()| Schedule::Every(lit.value()))
            .map_err(|reason| syn::Error::new_spanned(lit, format!("invalid `every`: {reason}"))),
    };
    match (schedule, errors) {
        (Ok(schedule), None) => Ok(JobAttr {
            id: id.map(|(_, lit)| lit.clone()),
            schedule,
        }),
        (Ok(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e),
        (Err(e), Some(mut all)) => {
            all.combine(e);
            Err(all)
        }
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "cron" => "`cron = \"0 3 * * *\"`",
        "every" => "`every = \"30s\"`",
        "timezone" => "`timezone = \"Europe/Paris\"`",
        _ => "`id = \"cleanup\"`",
    }
}

/// `fn declarations` of the generated `Actions` impl (the block's jobs, as `DeclaredJob`s in
/// the bag), or nothing when the block declares no job.
pub(crate) fn declarations(jobs: &[Job]) -> Option<TokenStream> {
    if jobs.is_empty() {
        return None;
    }
    let some = |s: Option<&str>| match s {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let entries = jobs.iter().map(|job| {
        let (id, action) = (&job.id, &job.action);
        let (cron, every, timezone) = match &job.schedule {
            Schedule::Cron {
                expression,
                timezone,
            } => (
                some(Some(expression)),
                some(None),
                some(timezone.as_deref()),
            ),
            Schedule::Every(every) => (some(None), some(Some(every)), some(None)),
        };
        quote! {
            ::xcore::services::scheduler::DeclaredJob::new(#id, #action, #cron, #every, #timezone)
        }
    });
    Some(quote! {
        fn declarations(&self) -> ::xcore::plugin::Declarations {
            const JOBS: &[::xcore::services::scheduler::DeclaredJob] = &[#(#entries),*];
            ::xcore::plugin::Declarations::new().with(JOBS)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(attr: TokenStream) -> Result<JobAttr, String> {
        let attr: Attribute = syn::parse_quote!(#attr);
        parse(&attr).map_err(|e| {
            e.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn cron_shapes() {
        for ok in [
            "* * * * *",
            "0 * * * * *",
            "0 0 3 * * * 2030",
            "@daily",
            "@Hourly",
            " 0 9 * * MON-FRI ",
        ] {
            assert!(check_cron(ok).is_ok(), "{ok}");
        }
        for (bad, needle) in [
            ("", "0 fields"),
            ("* * *", "3 fields"),
            ("* * * * * * * *", "8 fields"),
            ("@often", "unknown cron nickname `@often`"),
            ("@daily * * * *", "`@` is only allowed"),
            ("daily", "1 field;"),
        ] {
            let err = check_cron(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn intervals() {
        assert!(check_every("30s").is_ok());
        assert!(check_every("1m30s").is_ok());
        assert!(check_every("1000ms").is_ok());
        assert!(check_every("500ms").unwrap_err().contains("at least `1s`"));
        assert!(check_every("soon").is_err());
        assert!(check_every("30").is_err());
    }

    #[test]
    fn attributes() {
        let job = parse_str(quote!(#[job(cron = "0 3 * * *", timezone = "Europe/Paris")])).unwrap();
        assert!(job.id.is_none());
        assert!(matches!(
            job.schedule,
            Schedule::Cron { ref expression, timezone: Some(ref tz) }
                if expression == "0 3 * * *" && tz == "Europe/Paris"
        ));
        let job = parse_str(quote!(#[job(every = "5s", id = "beat")])).unwrap();
        assert_eq!(job.id.unwrap().value(), "beat");
        assert!(matches!(job.schedule, Schedule::Every(ref e) if e == "5s"));

        for (attr, needle) in [
            (quote!(#[job]), "exactly one schedule"),
            (quote!(#[job()]), "exactly one schedule"),
            (quote!(#[job(id = "x")]), "exactly one schedule"),
            (quote!(#[job(cron = "* * * * *", every = "1s")]), "not both"),
            (
                quote!(#[job(every = "1s", timezone = "UTC")]),
                "`timezone` only applies to `cron`",
            ),
            (
                quote!(#[job(evry = "1s")]),
                "unknown key `evry`; did you mean `every`?",
            ),
            (quote!(#[job(every = 5)]), "`every` expects a string"),
            (
                quote!(#[job(every = "1s", every = "2s")]),
                "duplicate key `every`",
            ),
            (
                quote!(#[job(every = "1s", id = "a:b")]),
                "invalid job id `a:b`",
            ),
            (quote!(#[job(cron = "* *")]), "2 fields"),
            (quote!(#[job(every = "often")]), "invalid `every`"),
            (quote!(#[job = "1s"]), "write `#[job(cron"),
        ] {
            let err = parse_str(attr.clone()).err().unwrap_or_default();
            assert!(err.contains(needle), "{attr}: {err}");
        }
    }

    #[test]
    fn declares_jobs() {
        assert!(declarations(&[]).is_none());
        let out = declarations(&[
            Job {
                id: "nightly".into(),
                action: "cleanup".into(),
                schedule: Schedule::Cron {
                    expression: "0 3 * * *".into(),
                    timezone: Some("Europe/Paris".into()),
                },
            },
            Job {
                id: "beat".into(),
                action: "beat".into(),
                schedule: Schedule::Every("30s".into()),
            },
        ])
        .unwrap()
        .to_string();
        assert!(
            out.contains(
                "DeclaredJob :: new (\"nightly\" , \"cleanup\" , :: core :: option :: Option :: \
                 Some (\"0 3 * * *\") , :: core :: option :: Option :: None , :: core :: option \
                 :: Option :: Some (\"Europe/Paris\"))"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "DeclaredJob :: new (\"beat\" , \"beat\" , :: core :: option :: Option :: None , \
                 :: core :: option :: Option :: Some (\"30s\") , :: core :: option :: Option :: \
                 None)"
            ),
            "{out}"
        );
    }
}
