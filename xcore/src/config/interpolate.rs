//! `${VAR}`, `${VAR:-default}`, `${VAR:?message}` and `$$` in every string of the file.

use std::env::VarError;

use super::{
    env::Env,
    error::{ConfigError, Origin},
    node::{Node, Source, Value, join},
};

/// Interpolates every string of the tree; the strings that used a variable are marked as
/// coming from the environment.
pub(crate) fn interpolate(
    node: &mut Node,
    path: &str,
    env: &Env,
    origin: &Origin,
) -> Result<(), ConfigError> {
    match &mut node.value {
        Value::Str(text) if node.source == Source::File => {
            let to_error = |err: Failure| err.into_config_error(origin, node.line, path);
            let (expanded, used) = expand(text, env).map_err(to_error)?;
            *text = expanded;
            if used {
                node.source = Source::Interpolated;
            }
            Ok(())
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env, origin)?;
            }
            Ok(())
        }
        Value::Map(entries) => {
            for (key, entry) in entries.iter_mut() {
                interpolate(&mut entry.value, &join(path, key), env, origin)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Why a string could not be expanded.
#[derive(Debug, PartialEq)]
enum Failure {
    Missing(String),
    Required { var: String, message: String },
    Syntax(String),
}

impl Failure {
    fn into_config_error(self, origin: &Origin, line: Option<usize>, key: &str) -> ConfigError {
        let (origin, key) = (origin.clone(), key.to_owned());
        match self {
            Failure::Missing(var) => ConfigError::MissingVar {
                origin,
                line,
                key,
                var,
            },
            Failure::Required { var, message } => ConfigError::RequiredVar {
                origin,
                line,
                key,
                var,
                message,
            },
            Failure::Syntax(message) => ConfigError::Interpolation {
                origin,
                line,
                key,
                message,
            },
        }
    }
}

/// The expanded text, and whether it used a variable (`$$` alone does not count).
fn expand(text: &str, env: &Env) -> Result<(String, bool), Failure> {
    if !text.contains('$') {
        return Ok((text.to_owned(), false));
    }
    let mut out = String::with_capacity(text.len());
    let mut used = false;
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner_start) = after.strip_prefix('{') {
            let end = closing_brace(inner_start).map_err(|nested| {
                Failure::Syntax(if nested {
                    format!(
                        "`${{…}}` nested more than {MAX_NESTING} levels deep in `{}`",
                        head(text)
                    )
                } else {
                    format!("`${{` without a closing `}}` in `{}`", head(text))
                })
            })?;
            out.push_str(&reference(&inner_start[..end], env)?);
            used = true;
            rest = &inner_start[end + 1..];
        } else {
            // A lone `$` (a password, a regex) stays as written.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok((out, used))
}

/// How deep `${…}` may nest inside a default or a message (each level is one recursion of
/// the expansion, and one more scan of the rest of the text).
const MAX_NESTING: usize = 16;

/// The start of a long text, for an error message.
fn head(text: &str) -> String {
    if text.chars().count() <= 200 {
        return text.to_owned();
    }
    text.chars().take(200).chain(std::iter::once('…')).collect()
}

/// The index of the `}` closing a `${`, allowing nested `${…}` in defaults and messages;
/// `Err(true)` when they nest deeper than [`MAX_NESTING`], `Err(false)` when none closes.
fn closing_brace(text: &str) -> Result<usize, bool> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(true);
                }
                i += 1;
            }
            b'}' if depth == 0 => return Ok(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    Err(false)
}

/// The value of one `VAR`, `VAR:-default` or `VAR:?message`.
fn reference(inner: &str, env: &Env) -> Result<String, Failure> {
    let name_len = inner
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit()))
        .map_or(inner.len(), |(i, _)| i);
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() {
        return Err(Failure::Syntax(format!(
            "`${{{inner}}}` does not start with a variable name"
        )));
    }
    let value = match env.var(name) {
        Ok(value) => Some(value),
        Err(VarError::NotPresent) => None,
        Err(VarError::NotUnicode(_)) => {
            return Err(Failure::Syntax(format!(
                "the environment variable `{name}` is not valid UTF-8"
            )));
        }
    };
    if op.is_empty() {
        return value.ok_or_else(|| Failure::Missing(name.to_owned()));
    }
    let value = value.filter(|v| !v.is_empty());
    if let Some(default) = op.strip_prefix(":-") {
        match value {
            Some(value) => Ok(value),
            None => Ok(expand(default, env)?.0),
        }
    } else if let Some(message) = op.strip_prefix(":?") {
        let message = if message.is_empty() {
            "it is required and not set"
        } else {
            message
        };
        value.ok_or_else(|| Failure::Required {
            var: name.to_owned(),
            message: message.to_owned(),
        })
    } else {
        Err(Failure::Syntax(format!(
            "`${{{inner}}}` is not a valid reference"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::Vars(
            [("HOST", "db.local"), ("EMPTY", ""), ("PORT", "5432")]
                .map(|(k, v)| (k.into(), v.into()))
                .into(),
        )
    }

    fn ok(text: &str) -> Option<String> {
        let (out, used) = expand(text, &env()).unwrap();
        used.then_some(out)
    }

    #[test]
    fn plain_text_is_untouched() {
        assert_eq!(
            expand("no variables", &env()).unwrap(),
            ("no variables".into(), false)
        );
        assert_eq!(
            expand("price: 5$", &env()).unwrap(),
            ("price: 5$".into(), false)
        );
        assert_eq!(
            expand("a $$ b $$$$", &env()).unwrap(),
            ("a $ b $$".into(), false)
        );
    }

    #[test]
    fn forms() {
        assert_eq!(ok("${HOST}:${PORT}"), Some("db.local:5432".into()));
        assert_eq!(ok("${EMPTY}"), Some(String::new()));
        assert_eq!(ok("${NOPE:-fallback}"), Some("fallback".into()));
        assert_eq!(ok("${EMPTY:-fallback}"), Some("fallback".into()));
        assert_eq!(ok("${HOST:-fallback}"), Some("db.local".into()));
        assert_eq!(
            ok("${NOPE:-sqlite::memory:}"),
            Some("sqlite::memory:".into())
        );
        assert_eq!(ok("${NOPE:-${HOST}}"), Some("db.local".into()));
        assert_eq!(ok("${NOPE:-}"), Some(String::new()));
        assert_eq!(ok("$${HOST} ${HOST}"), Some("${HOST} db.local".into()));
        assert_eq!(ok("${HOST:?needed}"), Some("db.local".into()));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| format!("{}x{}", "${NOPE:-".repeat(n), "}".repeat(n));
        assert_eq!(ok(&nested(MAX_NESTING + 1)), Some("x".into()));
        let Failure::Syntax(message) = expand(&nested(MAX_NESTING + 2), &env()).unwrap_err() else {
            panic!("not a syntax error");
        };
        assert!(message.contains("nested more than 16 levels"), "{message}");
        // 60 KB of it: rejected without recursing, the message quotes only its start.
        let Failure::Syntax(message) = expand(&nested(7_500), &env()).unwrap_err() else {
            panic!("not a syntax error");
        };
        assert!(message.len() < 400, "{}", message.len());
    }

    #[test]
    fn failures() {
        let fail = |t: &str| expand(t, &env()).unwrap_err();
        assert_eq!(fail("${NOPE}"), Failure::Missing("NOPE".into()));
        assert_eq!(
            fail("${NOPE:?set NOPE}"),
            Failure::Required {
                var: "NOPE".into(),
                message: "set NOPE".into()
            }
        );
        assert!(matches!(fail("${EMPTY:?x}"), Failure::Required { .. }));
        assert!(matches!(fail("${HOST"), Failure::Syntax(_)));
        assert!(matches!(fail("${}"), Failure::Syntax(_)));
        assert!(matches!(fail("${1A}"), Failure::Syntax(_)));
        assert!(matches!(fail("${HOST-x}"), Failure::Syntax(_)));
    }

    #[test]
    fn tree_marks_interpolated_strings() {
        let mut node = Node::file(Value::Str("${HOST}".into()), Some(4));
        interpolate(&mut node, "a.b", &env(), &Origin::String).unwrap();
        assert_eq!(node.source, Source::Interpolated);
        let mut node = Node::file(Value::Str("$$".into()), Some(4));
        interpolate(&mut node, "a.b", &env(), &Origin::String).unwrap();
        assert_eq!(
            (node.value, node.source),
            (Value::Str("$".into()), Source::File)
        );
        let mut node = Node::file(Value::Str("${NOPE}".into()), Some(4));
        let err = interpolate(&mut node, "a.b", &env(), &Origin::String).unwrap_err();
        assert_eq!((err.key(), err.line()), (Some("a.b"), Some(4)));
    }
}
