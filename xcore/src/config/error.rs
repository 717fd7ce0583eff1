//! [`ConfigError`] and [`Origin`]: every error names where the value came from, the key path
//! and, where known, the line.

use std::{
    fmt, io,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::Format;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Origin {
    /// A config file.
    File(Arc<Path>),
    /// Text given to [`Config::from_str`](super::Config::from_str) or
    /// [`ConfigLoader::load_str`](super::ConfigLoader::load_str).
    String,
    /// An `XCORE__…` override: the environment variable's name.
    Env(Arc<str>),
    /// The built-in defaults ([`Config::default`](super::Config::default)).
    #[default]
    Defaults,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::String => f.write_str("<string>"),
            Origin::Env(var) => write!(f, "<env> `{var}`"),
            Origin::Defaults => f.write_str("<defaults>"),
        }
    }
}

/// An error loading or reading the configuration. Its message names the origin (file,
/// `<string>` or `<env>`), the line where known, the key path, and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file `{}`: {source}; check the path (xcore never falls back to defaults when a file is given)", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file's extension names no supported format.
    #[error("config file `{}` has an unsupported extension; use `.yaml`, `.yml` or `.toml`", .path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The text is not valid YAML or TOML.
    #[error("{}: invalid {format} syntax{}: {message}; fix the syntax", place(.origin, .line), column_text(.column))]
    Syntax {
        /// Where the text came from.
        origin: Origin,
        /// The format.
        format: Format,
        /// The line (1-based), where known.
        line: Option<usize>,
        /// The column (1-based), where known.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A key no section knows.
    #[error("{}: unknown key `{key}`{}; {}", place(.origin, .line), suggestion_text(.suggestion, .expected), unknown_key_advice(.origin))]
    UnknownKey {
        /// Where the key came from.
        origin: Origin,
        /// Its line, where known.
        line: Option<usize>,
        /// The key path: `services.cache.ttll`.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<String>,
        /// The keys this section knows.
        expected: Vec<String>,
    },
    /// A value of the wrong type, or an invalid value.
    #[error("{}: {}: {message}; {hint}", place(.origin, .line), key_text(.key))]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// Its line, where known.
        line: Option<usize>,
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// `${VAR}` names a variable that is not set.
    #[error("{}: {} uses the environment variable `{var}`, which is not set; set it, or give a default with `${{{var}:-default}}`", place(.origin, .line), key_text(.key))]
    MissingVar {
        /// Where the text came from.
        origin: Origin,
        /// The line, where known.
        line: Option<usize>,
        /// The key path.
        key: String,
        /// The variable.
        var: String,
    },
    /// `${VAR:?message}` names a variable that is not set or empty.
    #[error("{}: {} needs the environment variable `{var}`: {message}", place(.origin, .line), key_text(.key))]
    RequiredVar {
        /// Where the text came from.
        origin: Origin,
        /// The line, where known.
        line: Option<usize>,
        /// The key path.
        key: String,
        /// The variable.
        var: String,
        /// The message written after `:?`.
        message: String,
    },
    /// A malformed `${…}`.
    #[error("{}: {}: {message}; write `${{VAR}}`, `${{VAR:-default}}`, `${{VAR:?message}}`, or `$$` for a literal `$`", place(.origin, .line), key_text(.key))]
    Interpolation {
        /// Where the text came from.
        origin: Origin,
        /// The line, where known.
        line: Option<usize>,
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An `XCORE__…` override that cannot be applied.
    #[error("<env> `{var}`: {message}")]
    Override {
        /// The environment variable.
        var: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A secret that is missing or weak while `app.env` is `production`.
    #[error("{}: {} is not safe for production: {message}", place(.origin, .line), key_text(.key))]
    Insecure {
        /// Where the value came from.
        origin: Origin,
        /// Its line, where known.
        line: Option<usize>,
        /// The key path: `app.secret_key`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl ConfigError {
    /// Where the offending value came from, if the error concerns one.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::Syntax { origin, .. }
            | ConfigError::UnknownKey { origin, .. }
            | ConfigError::Invalid { origin, .. }
            | ConfigError::MissingVar { origin, .. }
            | ConfigError::RequiredVar { origin, .. }
            | ConfigError::Interpolation { origin, .. }
            | ConfigError::Insecure { origin, .. } => Some(origin),
            ConfigError::Read { .. }
            | ConfigError::UnsupportedFormat { .. }
            | ConfigError::Override { .. } => None,
        }
    }

    /// The line (1-based) of the offending value, where known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. }
            | ConfigError::UnknownKey { line, .. }
            | ConfigError::Invalid { line, .. }
            | ConfigError::MissingVar { line, .. }
            | ConfigError::RequiredVar { line, .. }
            | ConfigError::Interpolation { line, .. }
            | ConfigError::Insecure { line, .. } => *line,
            ConfigError::Read { .. }
            | ConfigError::UnsupportedFormat { .. }
            | ConfigError::Override { .. } => None,
        }
    }

    /// The key path of the offending value (`services.cache.ttl`; empty for the top level),
    /// if the error concerns one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::MissingVar { key, .. }
            | ConfigError::RequiredVar { key, .. }
            | ConfigError::Interpolation { key, .. }
            | ConfigError::Insecure { key, .. } => Some(key),
            ConfigError::Read { .. }
            | ConfigError::UnsupportedFormat { .. }
            | ConfigError::Syntax { .. }
            | ConfigError::Override { .. } => None,
        }
    }
}

/// `xcore.yaml, line 12` / `<env> `XCORE__A``.
fn place(origin: &Origin, line: &Option<usize>) -> String {
    match line {
        Some(line) => format!("{origin}, line {line}"),
        None => origin.to_string(),
    }
}

fn column_text(column: &Option<usize>) -> String {
    column.map(|c| format!(" (column {c})")).unwrap_or_default()
}

/// `` `services.cache.ttl` ``, or "the top level".
fn key_text(key: &str) -> String {
    if key.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{key}`")
    }
}

fn suggestion_text(suggestion: &Option<String>, expected: &[String]) -> String {
    let known = if expected.is_empty() {
        " (this section takes no keys)".to_owned()
    } else {
        format!(" (known keys: {})", expected.join(", "))
    };
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?{known}"),
        None => known,
    }
}

fn unknown_key_advice(origin: &Origin) -> &'static str {
    match origin {
        Origin::Env(_) => "rename or unset the environment variable",
        _ => "rename or remove the key",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_message() {
        let err = ConfigError::UnknownKey {
            origin: Origin::File(Path::new("xcore.yaml").into()),
            line: Some(7),
            key: "services.cache.ttll".into(),
            suggestion: Some("ttl".into()),
            expected: vec!["backend".into(), "ttl".into()],
        };
        assert_eq!(
            err.to_string(),
            "xcore.yaml, line 7: unknown key `services.cache.ttll`; did you mean `ttl`? \
             (known keys: backend, ttl); rename or remove the key"
        );
        assert_eq!(err.line(), Some(7));
        assert_eq!(err.key(), Some("services.cache.ttll"));
    }

    #[test]
    fn env_origin_message() {
        let err = ConfigError::Invalid {
            origin: Origin::Env("XCORE__SERVICES__CACHE__TTL".into()),
            line: None,
            key: "services.cache.ttl".into(),
            message: "`abc` is not an integer".into(),
            hint: "fix the environment variable",
        };
        assert_eq!(
            err.to_string(),
            "<env> `XCORE__SERVICES__CACHE__TTL`: `services.cache.ttl`: `abc` is not an integer; \
             fix the environment variable"
        );
    }

    #[test]
    fn missing_var_message() {
        let err = ConfigError::MissingVar {
            origin: Origin::String,
            line: Some(3),
            key: "app.secret_key".into(),
            var: "SECRET".into(),
        };
        assert_eq!(
            err.to_string(),
            "<string>, line 3: `app.secret_key` uses the environment variable `SECRET`, which is not \
             set; set it, or give a default with `${SECRET:-default}`"
        );
    }
}
