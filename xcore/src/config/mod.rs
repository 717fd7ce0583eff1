//! The config file: one YAML or TOML file, typed with serde.
//!
//! ```yaml
//! app:
//!   name: shop
//!   env: ${XCORE_ENV:-development}
//!   secret_key: ${XCORE_SECRET_KEY:-}
//! plugins:
//!   counter: { limit: 5 }          # read with Config::plugin_section
//! services:
//!   databases:                     # ordered: the first is the default database `db`
//!     main: { url: "${DATABASE_URL:?set DATABASE_URL}" }
//!   cache: { backend: memory, ttl: 300 }
//! ```
//!
//! - **Interpolation** in every string: `${VAR}` (unset → error), `${VAR:-default}` (unset or
//!   empty → default), `${VAR:?message}` (unset or empty → error with the message), `$$` for a
//!   literal `$`.
//! - **Overrides**: `XCORE__SECTION__KEY=value` sets one key (lowercased, split on `__`), after
//!   interpolation: `XCORE__SERVICES__CACHE__TTL=30`.
//! - **Types**: a value from the environment (interpolated or an override) is read by the type
//!   of its field: `1` is `true` for a bool, `1` for an integer and `"1"` for a string; the
//!   words `true/false/1/0/yes/no/on/off` are booleans; an empty value unsets an optional field.
//!   Values written in the file are not coerced: a quoted `"30"` is a string.
//! - **Strict**: unknown keys are errors that suggest the closest known key; every error names
//!   the file (or `<string>`, or the `<env>` variable), the key path and, where known, the line.
//!   A file that cannot be read is an error, never a silent fallback to defaults.
//! - **Bounded**: a file nests 64 levels at most — YAML block or flow style, aliases included,
//!   TOML arrays, inline tables, table headers and dotted keys alike — checked before any
//!   recursive step sees the text; deeper is a syntax error at its line. `${…}` nests 16
//!   levels at most in a default or a message, an override names 63 keys at most, and
//!   aliases expand to 1,000,000 values at most.
//! - **Production**: with `app.env: production`, `app.secret_key` and `app.admin_token` must be
//!   random values of at least 16 characters, not placeholders, and distinct.
//!
//! `xcore.example.yaml` at the repository root documents every key.
//!
//! # Sections: data each owner reads
//!
//! The config is data: it loads, checks and types the file, and builds nothing. Each section
//! is a type defined by the module that reads it; built-in services are built from their
//! sections by `services` when an `Xcore` is built with a config (`XcoreBuilder::config`).
//!
//! | section | type | defined in | read by |
//! |---|---|---|---|
//! | `app` | [`AppConfig`] | `config` | the builder (production checks), the admin API (token) |
//! | `plugins.<name>` | the plugin's own type | the plugin | [`Config::plugin_section`], `PluginContext::config` |
//! | `services.databases.<name>` | [`DatabaseOptions`](crate::services::db::DatabaseOptions) | `services::db` | the `db` service |
//! | `services.cache` | [`CacheOptions`](crate::services::cache::CacheOptions) | `services::cache` | the `cache` service |
//! | `services.scheduler` | [`SchedulerOptions`](crate::services::scheduler::SchedulerOptions) ([`SchedulerConfig`]) | `services::scheduler` | the `scheduler` service |
//! | `services.worker` | [`WorkerConfig`] | `services::worker` | the `worker` service ([`WorkerOptions::from_config`](crate::services::worker::WorkerOptions::from_config)) |
//! | `services.extensions.<name>` | the extension's own type | the extension | [`ServiceContext::config`](crate::ServiceContext::config) |
//! | `tenancy` | [`TenancyConfig`] | `config` | the builder ([`TenancyConfig::tenants`]) |
//! | `web` | [`WebConfig`] | `config` | the web adapters (edge limits) |
//! | `observability` | [`ObservabilityConfig`] | `config` | `observability::init_tracing` |

mod de;
mod env;
mod error;
mod from_toml;
mod from_yaml;
mod interpolate;
mod loader;
mod node;
mod overrides;
mod raw;
mod sections;
mod suggest;
mod validate;

use std::{fmt, path::Path, sync::Arc};

use indexmap::IndexMap;
use serde::{Deserialize, de::DeserializeOwned};

pub use self::error::{ConfigError, Origin};
pub use self::loader::{ConfigLoader, Format};
use self::node::{Node, join};
pub use self::raw::RawSection;
pub use self::sections::{
    AppConfig, Environment, LogFormat, ObservabilityConfig, SchedulerConfig, ServicesConfig,
    TenancyConfig, WebConfig, WorkerBackend, WorkerConfig,
};

/// The configuration of an xcore host: the sections `app`, `plugins`, `services`, `tenancy`
/// and `observability`.
///
/// [`Config::default`] runs with no file and no server (memory cache, no database);
/// [`Config::from_file`] loads a file with the process environment; [`ConfigLoader`] takes
/// an explicit environment (for tests).
///
/// ```
/// use serde::Deserialize;
/// use xcore::config::{ConfigLoader, Format};
///
/// #[derive(Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct CounterConfig {
///     limit: u32,
/// }
///
/// let yaml = r#"
/// app:
///   name: shop
/// plugins:
///   counter:
///     limit: ${COUNTER_LIMIT:-5}
/// services:
///   databases:
///     main: { url: "${DATABASE_URL:-sqlite::memory:}" }
///     reports: { url: "sqlite://reports.db" }
///   cache:
///     ttl: 60
/// "#;
/// let config = ConfigLoader::new()
///     .env([("XCORE__SERVICES__CACHE__TTL", "30"), ("COUNTER_LIMIT", "7")])
///     .load_str(yaml, Format::Yaml)?;
/// assert_eq!(config.app.name, "shop");
/// assert_eq!(config.services.cache.ttl, 30); // the override, read as an integer
/// assert_eq!(config.services.databases.keys().collect::<Vec<_>>(), ["main", "reports"]);
/// let counter: CounterConfig = config.plugin_section("counter")?.expect("the section is there");
/// assert_eq!(counter.limit, 7);
///
/// let err = ConfigLoader::new()
///     .env([("A", "b")])
///     .load_str("services:\n  cache:\n    ttll: 5\n", Format::Yaml)
///     .unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "<string>, line 3: unknown key `services.cache.ttll`; did you mean `ttl`? \
///      (known keys: backend, ttl, max_size, prefix, redis); rename or remove the key"
/// );
/// # Ok::<(), xcore::config::ConfigError>(())
/// ```
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// The application: name, environment, secrets.
    pub app: AppConfig,
    /// Each plugin's own section, by plugin name; read one with
    /// [`plugin_section`](Self::plugin_section).
    pub plugins: IndexMap<String, RawSection>,
    /// Databases, cache, scheduler, worker, extensions.
    pub services: ServicesConfig,
    /// Tenant resolution.
    pub tenancy: TenancyConfig,
    /// The time limits at the HTTP edge.
    pub web: WebConfig,
    /// Logs.
    pub observability: ObservabilityConfig,
    /// Where the config came from.
    #[serde(skip)]
    origin: Origin,
    /// The loaded tree (lines, environment marks), for errors found after loading.
    #[serde(skip)]
    tree: Option<Arc<Node>>,
}

impl Config {
    /// Loads a `.yaml`, `.yml` or `.toml` file, reading the process environment for
    /// interpolation and `XCORE__…` overrides. A missing file is an error.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        ConfigLoader::new().load_file(path)
    }

    /// Loads a config text, reading the process environment.
    pub fn from_str(text: &str, format: Format) -> Result<Self, ConfigError> {
        ConfigLoader::new().load_str(text, format)
    }

    /// Where the config came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Deserializes the section `plugins.<name>` into the plugin's own config type; `None`
    /// when the file has no such section. Errors name `plugins.<name>.<field>` and the line.
    pub fn plugin_section<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.plugins
            .get(name)
            .map(|s| s.parse_at(&join("plugins", name)))
            .transpose()
    }

    /// Deserializes the section `services.extensions.<name>` into the extension's own config
    /// type; `None` when the file has no such section.
    pub fn extension_section<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.services
            .extensions
            .get(name)
            .map(|s| s.parse_at(&join("services.extensions", name)))
            .transpose()
    }

    /// Checks the secrets when `app.env` is `production`: `app.secret_key` must be set and
    /// `app.admin_token`, when set, too; each at least 16 characters, not a well-known
    /// placeholder (`change-me`, `secret`, …), and distinct. Loading runs this check; call it
    /// again after changing a config in code.
    pub fn check_production(&self) -> Result<(), ConfigError> {
        validate::check_production(self)
    }

    /// Keeps the loaded tree and points the raw sections at their nodes.
    fn attach(&mut self, tree: Node, origin: Origin) {
        for (name, section) in &mut self.plugins {
            if let Some(node) = tree.get(&["plugins", name]) {
                section.attach(node, join("plugins", name), origin.clone());
            }
        }
        for (name, section) in &mut self.services.extensions {
            if let Some(node) = tree.get(&["services", "extensions", name]) {
                section.attach(node, join("services.extensions", name), origin.clone());
            }
        }
        self.origin = origin;
        self.tree = Some(Arc::new(tree));
    }
}

impl PartialEq for Config {
    /// Compares the values, not where they came from.
    fn eq(&self, other: &Self) -> bool {
        self.app == other.app
            && self.plugins == other.plugins
            && self.services == other.services
            && self.tenancy == other.tenancy
            && self.web == other.web
            && self.observability == other.observability
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("origin", &self.origin)
            .field("app", &self.app)
            .field("plugins", &self.plugins)
            .field("services", &self.services)
            .field("tenancy", &self.tenancy)
            .field("web", &self.web)
            .field("observability", &self.observability)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::default();
        assert_eq!(config.app.name, "xcore");
        assert_eq!(config.app.env, Environment::Development);
        assert!(config.services.databases.is_empty());
        assert_eq!(
            config.services.cache,
            crate::services::cache::CacheOptions::default()
        );
        assert_eq!(config.origin(), &Origin::Defaults);
        assert!(config.check_production().is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        let mut config = Config::default();
        config.app.secret_key = "super-secret-value-1234".into();
        config.app.admin_token = Some("token-value-5678-abcdef".into());
        let text = format!("{config:?}");
        assert!(
            !text.contains("super-secret") && !text.contains("token-value"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn sections_built_in_code_parse_with_their_path() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Limits {
            #[allow(dead_code)]
            limit: u32,
        }
        let mut config = Config::default();
        config.plugins.insert(
            "counter".into(),
            RawSection::new(serde_json::json!({"limti": 1})),
        );
        let err = config.plugin_section::<Limits>("counter").unwrap_err();
        assert_eq!(err.key(), Some("plugins.counter.limti"));
        assert!(err.to_string().contains("did you mean `limit`?"), "{err}");
        assert!(config.plugin_section::<Limits>("other").unwrap().is_none());
    }
}
