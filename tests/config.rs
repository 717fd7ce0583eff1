//! The config file: formats, interpolation, typed overrides, error quality, plugin
//! sections, the production guard, and the annotated example file.
//!
//! Every test passes its environment to the loader explicitly: tests run in parallel and
//! never touch the process environment.

use std::{io::Write as _, path::PathBuf, time::Duration};

use serde::Deserialize;
use xcore::config::{
    Config, ConfigError, ConfigLoader, Environment, Format, LogFormat, Origin, WorkerBackend,
};
use xcore::services::cache::CacheBackendKind;

/// A loader reading only `vars`.
fn loader(vars: &[(&str, &str)]) -> ConfigLoader {
    ConfigLoader::new().env(vars.iter().map(|(k, v)| (*k, *v)))
}

fn yaml(vars: &[(&str, &str)], text: &str) -> Result<Config, ConfigError> {
    loader(vars).load_str(text, Format::Yaml)
}

/// Writes `text` to a file named `name` in a fresh directory.
fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(text.as_bytes()).expect("write");
    (dir, path)
}

const STRONG: &str = "7f3c9e1a5b2d4f6e8a0c1e3b5d7f9a2c";
const STRONG_2: &str = "e4b8c2a6d0f1e3c5a7b9d1f3e5a7c9b2";

// ---------------------------------------------------------------- defaults and files

#[test]
fn defaults_without_a_file() {
    let config = Config::default();
    assert_eq!(config.app.name, "xcore");
    assert_eq!(config.app.env, Environment::Development);
    assert_eq!(config.app.secret_key, "");
    assert_eq!(config.app.admin_token, None);
    assert!(config.plugins.is_empty());
    assert!(
        config.services.databases.is_empty(),
        "no database unless one is configured"
    );
    assert_eq!(config.services.cache.backend, CacheBackendKind::Memory);
    assert_eq!(config.services.cache.ttl, 300);
    assert!(config.services.scheduler.enabled);
    assert_eq!(config.services.scheduler.timezone, "UTC");
    assert_eq!(config.services.worker.backend, WorkerBackend::Memory);
    assert_eq!(config.services.worker.concurrency, 8);
    assert_eq!(config.services.worker.max_retries, 3);
    assert!(config.services.extensions.is_empty());
    assert!(!config.tenancy.enabled);
    assert_eq!(config.tenancy.header, "X-Tenant-ID");
    assert!(!config.tenancy.subdomain);
    assert_eq!(config.tenancy.default, "default");
    assert_eq!(config.observability.log_level, "info");
    assert_eq!(config.observability.log_format, LogFormat::Text);

    // No file with no overrides, an empty text, and an empty section are all the defaults.
    assert_eq!(loader(&[]).load_defaults().unwrap(), config);
    assert_eq!(yaml(&[], "").unwrap(), config);
    assert_eq!(yaml(&[], "# nothing yet\n").unwrap(), config);
    assert_eq!(
        yaml(&[], "services:\n  cache:\n  # ttl: 5\nplugins:\n").unwrap(),
        config
    );
}

#[test]
fn a_missing_file_is_an_error_not_defaults() {
    let err = loader(&[])
        .load_file("/nonexistent/dir/xcore.yaml")
        .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("cannot read config file `/nonexistent/dir/xcore.yaml`"),
        "{err}"
    );
    let err = Config::from_file("/nonexistent/dir/xcore.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}

#[test]
fn unsupported_extension_is_an_error() {
    let (_dir, path) = file("xcore.json", "{}");
    let err = loader(&[]).load_file(&path).unwrap_err();
    assert!(
        matches!(err, ConfigError::UnsupportedFormat { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("use `.yaml`, `.yml` or `.toml`"),
        "{err}"
    );
}

#[test]
fn yaml_file_loads_and_errors_name_the_file() {
    let (_dir, path) = file(
        "xcore.yml",
        "app:\n  name: shop\nservices:\n  cache:\n    ttl: soon\n",
    );
    let err = loader(&[]).load_file(&path).unwrap_err();
    assert_eq!(err.origin(), Some(&Origin::File(path.as_path().into())));
    assert_eq!(err.key(), Some("services.cache.ttl"));
    assert_eq!(err.line(), Some(5));
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{}, line 5: `services.cache.ttl`: invalid type: string \"soon\", expected u64",
            path.display()
        )),
        "{message}"
    );

    std::fs::write(&path, "app:\n  name: shop\n").unwrap();
    let config = loader(&[]).load_file(&path).unwrap();
    assert_eq!(config.app.name, "shop");
    assert_eq!(config.origin(), &Origin::File(path.as_path().into()));
}

// ---------------------------------------------------------------- interpolation

#[test]
fn interpolation_forms() {
    let text = r#"
app:
  name: "${APP_NAME}"
  secret_key: "${SECRET:-fallback-secret}"
  admin_token: "${TOKEN:?set TOKEN}"
tenancy:
  header: "${EMPTY:-X-Org}"
  default: "$${literal}-${TENANT:-acme}"
observability:
  log_level: "info,${CRATE:-xcore}=debug"
"#;
    let config = yaml(
        &[("APP_NAME", "shop"), ("TOKEN", "tok"), ("EMPTY", "")],
        text,
    )
    .unwrap();
    assert_eq!(config.app.name, "shop");
    assert_eq!(config.app.secret_key, "fallback-secret");
    assert_eq!(config.app.admin_token.as_deref(), Some("tok"));
    assert_eq!(
        config.tenancy.header, "X-Org",
        "`:-` also replaces an empty value"
    );
    assert_eq!(config.tenancy.default, "${literal}-acme");
    assert_eq!(config.observability.log_level, "info,xcore=debug");
}

#[test]
fn dollar_dollar_is_a_literal_dollar() {
    let config = yaml(&[], "app:\n  name: \"pa$$word $$HOME $ alone\"\n").unwrap();
    assert_eq!(config.app.name, "pa$word $HOME $ alone");
}

#[test]
fn missing_variable_names_it_and_the_key() {
    let err = yaml(&[], "app:\n  name: x\n  secret_key: ${XCORE_SECRET}\n").unwrap_err();
    assert!(matches!(err, ConfigError::MissingVar { .. }), "{err:?}");
    assert_eq!(err.key(), Some("app.secret_key"));
    assert_eq!(err.line(), Some(3));
    assert_eq!(
        err.to_string(),
        "<string>, line 3: `app.secret_key` uses the environment variable `XCORE_SECRET`, \
         which is not set; set it, or give a default with `${XCORE_SECRET:-default}`"
    );
}

#[test]
fn required_variable_shows_its_message() {
    let text = "services:\n  databases:\n    main:\n      url: \"${DATABASE_URL:?point DATABASE_URL at the database}\"\n";
    for env in [&[][..], &[("DATABASE_URL", "")][..]] {
        let err = yaml(env, text).unwrap_err();
        assert!(matches!(err, ConfigError::RequiredVar { .. }), "{err:?}");
        assert_eq!(err.key(), Some("services.databases.main.url"));
        assert_eq!(err.line(), Some(4));
        assert!(
            err.to_string().ends_with(
                "needs the environment variable `DATABASE_URL`: point DATABASE_URL at the database"
            ),
            "{err}"
        );
    }
    let config = yaml(&[("DATABASE_URL", "sqlite://app.db")], text).unwrap();
    assert_eq!(config.services.databases["main"].url, "sqlite://app.db");
}

#[test]
fn malformed_reference_is_an_error() {
    let err = yaml(&[], "app:\n  name: \"${UNCLOSED\"\n").unwrap_err();
    assert!(matches!(err, ConfigError::Interpolation { .. }), "{err:?}");
    assert_eq!((err.key(), err.line()), (Some("app.name"), Some(2)));
}

#[test]
fn interpolated_values_are_read_by_type() {
    let text = "services:\n  cache:\n    ttl: ${CACHE_TTL}\n  scheduler:\n    enabled: ${SCHED:-on}\n  worker:\n    concurrency: \"${WORKERS:-4}\"\n";
    let config = yaml(&[("CACHE_TTL", "45")], text).unwrap();
    assert_eq!(config.services.cache.ttl, 45);
    assert!(config.services.scheduler.enabled);
    assert_eq!(config.services.worker.concurrency, 4);

    let err = yaml(&[("CACHE_TTL", "forty")], text).unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("services.cache.ttl"), Some(3))
    );
    assert!(
        err.to_string().contains("`forty` is not an integer"),
        "{err}"
    );
    assert!(err.to_string().contains("environment variable"), "{err}");
}

// ---------------------------------------------------------------- overrides

#[test]
fn override_is_typed_by_the_target_field() {
    let config = yaml(
        &[
            ("XCORE__SERVICES__CACHE__TTL", "30"),
            ("XCORE__TENANCY__ENABLED", "1"),
            ("XCORE__SERVICES__SCHEDULER__ENABLED", "off"),
            ("XCORE__APP__NAME", "1"),
            ("XCORE__SERVICES__WORKER__BACKEND", "redis"),
            ("XCORE__SERVICES__DATABASES__DB__ACQUIRE_TIMEOUT", "9s"),
        ],
        "services:\n  cache:\n    ttl: 10\n  databases:\n    db:\n      url: \"sqlite::memory:\"\n",
    )
    .unwrap();
    assert_eq!(config.services.cache.ttl, 30, "the integer 30");
    assert!(config.tenancy.enabled, "`1` on a bool is true");
    assert!(!config.services.scheduler.enabled);
    assert_eq!(config.app.name, "1", "`1` on a string stays the string");
    assert_eq!(config.services.worker.backend, WorkerBackend::Redis);
    assert_eq!(
        config.services.databases["db"].acquire_timeout,
        Duration::from_secs(9)
    );
}

#[test]
fn override_adds_a_database_after_the_file_ones() {
    let config = yaml(
        &[(
            "XCORE__SERVICES__DATABASES__DB__URL",
            "postgres://app@127.0.0.1/app",
        )],
        "services:\n  databases:\n    main:\n      url: \"sqlite::memory:\"\n",
    )
    .unwrap();
    let names: Vec<_> = config.services.databases.keys().collect();
    assert_eq!(names, ["main", "db"]);
    assert_eq!(
        config.services.databases["db"].url,
        "postgres://app@127.0.0.1/app"
    );
}

#[test]
fn override_with_a_bad_value_names_the_variable() {
    let err = yaml(&[("XCORE__SERVICES__CACHE__TTL", "soon")], "").unwrap_err();
    assert_eq!(
        err.origin(),
        Some(&Origin::Env("XCORE__SERVICES__CACHE__TTL".into()))
    );
    assert_eq!(err.key(), Some("services.cache.ttl"));
    assert_eq!(
        err.to_string(),
        "<env> `XCORE__SERVICES__CACHE__TTL`: `services.cache.ttl`: `soon` is not an integer; \
         fix the environment variable's value"
    );

    let err = yaml(&[("XCORE__TENANCY__ENABLED", "maybe")], "").unwrap_err();
    assert!(err.to_string().contains("not a boolean"), "{err}");
}

#[test]
fn override_of_an_unknown_key_is_an_error_naming_the_variable() {
    let err = yaml(&[("XCORE__SERVICES__CACHE__TTLL", "30")], "").unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    assert_eq!(err.key(), Some("services.cache.ttll"));
    assert_eq!(
        err.to_string(),
        "<env> `XCORE__SERVICES__CACHE__TTLL`: unknown key `services.cache.ttll`; did you mean `ttl`? \
         (known keys: backend, ttl, max_size, prefix, redis); rename or unset the environment variable"
    );

    let err = yaml(&[("XCORE__OBSERVABILTY__LOG_LEVEL", "debug")], "").unwrap_err();
    assert_eq!(err.key(), Some("observabilty"));
    assert!(
        err.to_string().contains("did you mean `observability`?"),
        "{err}"
    );
}

#[test]
fn override_through_a_scalar_is_an_error() {
    let err = yaml(&[("XCORE__APP__NAME__FIRST", "x")], "app:\n  name: shop\n").unwrap_err();
    assert!(matches!(err, ConfigError::Override { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("cannot set `app.name.first`: `app.name` is a string"),
        "{err}"
    );
}

#[test]
fn literal_strings_in_the_file_are_not_coerced() {
    let err = yaml(&[], "services:\n  cache:\n    ttl: \"30\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "<string>, line 3: `services.cache.ttl`: invalid type: string \"30\", expected u64; \
         write the value without quotes (a quoted value is a string)"
    );
    let err = yaml(&[], "tenancy:\n  enabled: yes\n").unwrap_err();
    assert_eq!((err.key(), err.line()), (Some("tenancy.enabled"), Some(2)));
}

// ---------------------------------------------------------------- unknown keys and types

#[test]
fn unknown_key_in_the_file_suggests_the_closest() {
    let text = "app:\n  name: shop\nservices:\n  cache:\n    backend: memory\n    ttll: 30\n";
    let err = yaml(&[], text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "<string>, line 6: unknown key `services.cache.ttll`; did you mean `ttl`? \
         (known keys: backend, ttl, max_size, prefix, redis); rename or remove the key"
    );
    let ConfigError::UnknownKey {
        suggestion,
        expected,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(suggestion.as_deref(), Some("ttl"));
    assert!(expected.iter().any(|k| k == "max_size"));

    let err = yaml(&[], "tenancy:\n  enabled: true\n  hedaer: X-Org\n").unwrap_err();
    assert!(err.to_string().contains("did you mean `header`?"), "{err}");
    let err = yaml(&[], "sevrices: {}\n").unwrap_err();
    assert_eq!((err.key(), err.line()), (Some("sevrices"), Some(1)));
    assert!(
        err.to_string().contains("did you mean `services`?"),
        "{err}"
    );
    let err = yaml(&[], "app:\n  completely_unrelated: 1\n").unwrap_err();
    let ConfigError::UnknownKey { suggestion, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(suggestion, &None);
}

#[test]
fn unknown_key_inside_a_database_entry() {
    let text = "services:\n  databases:\n    main:\n      url: \"sqlite::memory:\"\n      max_conections: 5\n";
    let err = yaml(&[], text).unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("services.databases.main.max_conections"), Some(5))
    );
    assert!(
        err.to_string().contains("did you mean `max_connections`?"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_the_key_path_and_line() {
    let text = "app:\n  name: shop\nservices:\n  worker:\n    concurrency: [1, 2]\n";
    let err = yaml(&[], text).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    assert_eq!(err.key(), Some("services.worker.concurrency"));
    assert_eq!(err.line(), Some(5));
    assert!(err.to_string().contains("invalid type: sequence"), "{err}");

    let err = yaml(
        &[],
        "services:\n  databases:\n    main:\n      acquire_timeout: soon\n",
    )
    .unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("services.databases.main.acquire_timeout"), Some(4))
    );
    assert!(err.to_string().contains("invalid duration"), "{err}");

    let err = yaml(&[], "app:\n  env: prod\n").unwrap_err();
    assert_eq!((err.key(), err.line()), (Some("app.env"), Some(2)));
    assert!(
        err.to_string().contains("did you mean `production`?"),
        "{err}"
    );

    let err = yaml(&[], "services:\n  cache:\n    ttl: 0\n").unwrap_err();
    assert_eq!((err.key(), err.line()), (Some("services.cache"), Some(2)));
    assert!(
        err.to_string().contains("`services.cache.ttl` is 0"),
        "{err}"
    );

    let err = yaml(&[], "services:\n  worker:\n    concurrency: 0\n").unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("services.worker.concurrency"), Some(3))
    );
}

// ---------------------------------------------------------------- syntax

#[test]
fn yaml_syntax_error_has_its_line() {
    let text = "app:\n  name: shop\n  env: [development\nservices:\n  cache: {}\n";
    let err = yaml(&[], text).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Syntax {
                format: Format::Yaml,
                ..
            }
        ),
        "{err:?}"
    );
    let line = err.line().expect("a line");
    assert!((3..=5).contains(&line), "line {line}: {err}");
    assert!(
        err.to_string()
            .starts_with(&format!("<string>, line {line}: invalid YAML syntax")),
        "{err}"
    );

    let err = yaml(&[], "app:\n  name: a\n    bad: indentation\n").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert_eq!(err.line(), Some(3), "{err}");

    let err = yaml(&[], "app:\n  name: a\napp:\n  name: b\n").unwrap_err();
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.to_string().contains("duplicate key `app`"), "{err}");
}

#[test]
fn toml_file_loads() {
    let text = r#"
[app]
name = "shop"
env = "staging"
secret_key = "${SECRET:-dev-secret}"

[plugins.counter]
limit = 5

[services.databases.zeta]
url = "sqlite::memory:"

[services.databases.alpha]
url = "sqlite://alpha.db"
max_connections = 3

[services.cache]
ttl = 60

[observability]
log_format = "json"
"#;
    let (_dir, path) = file("xcore.toml", text);
    let config = loader(&[("XCORE__SERVICES__CACHE__MAX_SIZE", "50")])
        .load_file(&path)
        .unwrap();
    assert_eq!(config.app.name, "shop");
    assert_eq!(config.app.env, Environment::Staging);
    assert_eq!(config.app.secret_key, "dev-secret");
    let names: Vec<_> = config.services.databases.keys().collect();
    assert_eq!(names, ["zeta", "alpha"], "file order, not alphabetical");
    assert_eq!(config.services.databases["alpha"].max_connections, 3);
    assert_eq!(config.services.cache.ttl, 60);
    assert_eq!(config.services.cache.max_size, 50);
    assert_eq!(config.observability.log_format, LogFormat::Json);

    // Errors in TOML carry the key's line too.
    let err = loader(&[])
        .load_str("[services.cache]\nttl = \"30\"\n", Format::Toml)
        .unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("services.cache.ttl"), Some(2))
    );
    let err = loader(&[])
        .load_str("[services.cache]\nttl = 1\nttll = 2\n", Format::Toml)
        .unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("services.cache.ttll"), Some(3))
    );
}

#[test]
fn toml_syntax_error_has_its_line() {
    let (_dir, path) = file("xcore.toml", "[app]\nname = \"shop\"\nenv = \n");
    let err = loader(&[]).load_file(&path).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Syntax {
                format: Format::Toml,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}, line 3: invalid TOML syntax", path.display())),
        "{err}"
    );
}

// ---------------------------------------------------------------- databases, sections

#[test]
fn database_order_is_preserved() {
    let text = "services:\n  databases:\n    zeta: { url: \"sqlite::memory:\" }\n    alpha: { url: \"sqlite://a.db\" }\n    mid: {}\n";
    let config = yaml(&[], text).unwrap();
    let names: Vec<_> = config.services.databases.keys().collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    let (first, _) = config.services.databases.first().unwrap();
    assert_eq!(first, "zeta", "the first database is the default `db`");
    assert_eq!(
        config.services.databases["mid"].max_connections, 10,
        "defaults fill the rest"
    );
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct CounterConfig {
    limit: u32,
    #[serde(default)]
    label: String,
    #[serde(default)]
    verbose: bool,
}

#[test]
fn plugin_section_deserializes_into_the_plugin_type() {
    let text = "plugins:\n  counter:\n    limit: 5\n    label: hits\n";
    let config = yaml(&[("XCORE__PLUGINS__COUNTER__VERBOSE", "yes")], text).unwrap();
    let counter: CounterConfig = config.plugin_section("counter").unwrap().unwrap();
    assert_eq!(
        counter,
        CounterConfig {
            limit: 5,
            label: "hits".into(),
            verbose: true
        }
    );
    assert_eq!(config.plugins["counter"].line(), Some(3));
    assert_eq!(
        config.plugin_section::<CounterConfig>("absent").unwrap(),
        None
    );
}

#[test]
fn plugin_section_errors_name_plugins_name_field() {
    let text = "app:\n  name: shop\nplugins:\n  counter:\n    limit: lots\n";
    let config = yaml(&[], text).unwrap();
    let err = config
        .plugin_section::<CounterConfig>("counter")
        .unwrap_err();
    assert_eq!(err.key(), Some("plugins.counter.limit"));
    assert_eq!(err.line(), Some(5));
    assert_eq!(
        err.to_string(),
        "<string>, line 5: `plugins.counter.limit`: invalid type: string \"lots\", expected u32; fix the value"
    );

    let config = yaml(&[], "plugins:\n  counter:\n    limit: 1\n    lable: x\n").unwrap();
    let err = config
        .plugin_section::<CounterConfig>("counter")
        .unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("plugins.counter.lable"), Some(4))
    );
    assert!(err.to_string().contains("did you mean `label`?"), "{err}");

    let config = yaml(&[], "plugins:\n  counter:\n    label: x\n").unwrap();
    let err = config
        .plugin_section::<CounterConfig>("counter")
        .unwrap_err();
    assert_eq!((err.key(), err.line()), (Some("plugins.counter"), Some(3)));
    assert!(err.to_string().contains("missing field `limit`"), "{err}");

    let config = yaml(&[("XCORE__PLUGINS__COUNTER__LIMIT", "-1")], "").unwrap();
    let err = config
        .plugin_section::<CounterConfig>("counter")
        .unwrap_err();
    assert_eq!(
        err.origin(),
        Some(&Origin::Env("XCORE__PLUGINS__COUNTER__LIMIT".into()))
    );
    assert_eq!(err.key(), Some("plugins.counter.limit"));
}

#[test]
fn extension_section_deserializes_into_its_type() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sink {
        endpoint: String,
        #[serde(default)]
        batch: u16,
    }
    let text = "services:\n  extensions:\n    audit:\n      endpoint: ${SINK:-http://127.0.0.1:9}\n      batch: ${BATCH}\n";
    let config = yaml(&[("BATCH", "64")], text).unwrap();
    let sink: Sink = config.extension_section("audit").unwrap().unwrap();
    assert_eq!(
        (sink.endpoint.as_str(), sink.batch),
        ("http://127.0.0.1:9", 64)
    );
    // The raw value keeps environment strings as strings; the typed read coerces them.
    assert_eq!(config.services.extensions["audit"].value()["batch"], "64");

    let config = yaml(&[("BATCH", "huge")], text).unwrap();
    let err = config.extension_section::<Sink>("audit").unwrap_err();
    assert_eq!(
        (err.key(), err.line()),
        (Some("services.extensions.audit.batch"), Some(5))
    );
}

// ---------------------------------------------------------------- production guard

#[test]
fn production_refuses_missing_or_weak_secrets() {
    let cases: &[(&str, &str)] = &[
        ("app:\n  env: production\n", "empty"),
        (
            "app:\n  env: production\n  secret_key: change-me\n",
            "placeholder",
        ),
        (
            "app:\n  env: production\n  secret_key: changeme\n",
            "placeholder",
        ),
        (
            "app:\n  env: production\n  secret_key: xcore\n",
            "placeholder",
        ),
        (
            "app:\n  env: production\n  secret_key: short-but-real\n",
            "shorter than 16",
        ),
    ];
    for (text, needle) in cases {
        let err = yaml(&[], text).unwrap_err();
        assert!(matches!(err, ConfigError::Insecure { .. }), "{err:?}");
        assert_eq!(err.key(), Some("app.secret_key"));
        assert!(err.to_string().contains(needle), "{err}");
    }

    let err = yaml(&[], "app:\n  env: production\n  secret_key: change-me\n").unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert_eq!(
        err.to_string(),
        "<string>, line 3: `app.secret_key` is not safe for production: it is a well-known \
         placeholder; set a random value of at least 16 characters (generate one with `openssl rand -hex 32`)"
    );

    let text = "app:\n  env: production\n  secret_key: ${SECRET}\n  admin_token: ${TOKEN:-}\n";
    let ok = yaml(&[("SECRET", STRONG), ("TOKEN", STRONG_2)], text).unwrap();
    assert_eq!(ok.app.admin_token.as_deref(), Some(STRONG_2));
    let no_token = yaml(&[("SECRET", STRONG)], text).unwrap();
    assert_eq!(
        no_token.app.admin_token, None,
        "an empty value leaves it unset"
    );
    for (token, needle) in [
        ("secret", "placeholder"),
        ("abc", "shorter than 16"),
        (STRONG, "distinct"),
    ] {
        let err = yaml(&[("SECRET", STRONG), ("TOKEN", token)], text).unwrap_err();
        assert_eq!(err.key(), Some("app.admin_token"), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(
            !err.to_string().contains(STRONG),
            "no secret in messages: {err}"
        );
    }

    // The environment can turn production on; the guard still applies.
    let err = yaml(&[("XCORE__APP__ENV", "production")], "").unwrap_err();
    assert_eq!(err.key(), Some("app.secret_key"));
    // Development and staging accept anything.
    assert!(yaml(&[], "app:\n  env: staging\n  secret_key: secret\n").is_ok());

    // A config changed in code is checked on demand.
    let mut config = Config::default();
    config.app.env = Environment::Production;
    assert!(config.check_production().is_err());
    config.app.secret_key = STRONG.into();
    assert!(config.check_production().is_ok());
}

// ---------------------------------------------------------------- the example file

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("xcore.example.yaml")
}

#[test]
fn example_file_loads() {
    // With no variables: every reference has a default.
    let config = loader(&[]).load_file(example_path()).unwrap();
    assert_eq!(config.app.name, "xcore");
    assert_eq!(config.app.env, Environment::Development);
    let names: Vec<_> = config.services.databases.keys().collect();
    assert_eq!(names, ["db", "reports"]);
    assert_eq!(config.services.databases["db"].url, "sqlite::memory:");
    assert_eq!(config.services.cache.ttl, 300);
    assert_eq!(
        config
            .plugin_section::<CounterConfig>("counter")
            .unwrap()
            .unwrap()
            .limit,
        100
    );

    // The example's values are the defaults.
    let defaults = Config::default();
    assert_eq!(config.app, defaults.app);
    assert_eq!(config.services.cache, defaults.services.cache);
    assert_eq!(config.services.scheduler, defaults.services.scheduler);
    assert_eq!(config.services.worker, defaults.services.worker);
    assert_eq!(config.tenancy, defaults.tenancy);
    assert_eq!(config.observability, defaults.observability);
    assert_eq!(
        config.services.databases["db"],
        xcore::services::db::DatabaseOptions::default()
    );

    // With every variable it references, in production.
    let config = loader(&[
        ("XCORE_ENV", "production"),
        ("XCORE_SECRET_KEY", STRONG),
        ("XCORE_ADMIN_TOKEN", STRONG_2),
        ("COUNTER_LIMIT", "7"),
        ("DATABASE_URL", "postgres://app@127.0.0.1/app"),
        ("REPORTS_URL", "sqlite://reports.db"),
        ("REDIS_URL", "redis://127.0.0.1:6380/1"),
        ("AUDIT_ENDPOINT", "http://127.0.0.1:9100/audit"),
        ("XCORE_LOG_LEVEL", "debug"),
    ])
    .load_file(example_path())
    .unwrap();
    assert_eq!(config.app.env, Environment::Production);
    assert_eq!(config.app.admin_token.as_deref(), Some(STRONG_2));
    assert_eq!(
        config.services.databases["db"].url,
        "postgres://app@127.0.0.1/app"
    );
    assert_eq!(config.services.cache.redis.url, "redis://127.0.0.1:6380/1");
    assert_eq!(
        config
            .plugin_section::<CounterConfig>("counter")
            .unwrap()
            .unwrap()
            .limit,
        7
    );
    assert_eq!(config.observability.log_level, "debug");

    // The example in production without secrets is refused.
    let err = loader(&[("XCORE_ENV", "production")])
        .load_file(example_path())
        .unwrap_err();
    assert_eq!((err.key(), err.line()), (Some("app.secret_key"), Some(34)));
}

/// Nesting deeper than 64 levels, in any YAML style or TOML construct, is a syntax error
/// naming the file and the line, before any recursive step sees it: the 60 KB block sequence
/// that used to overflow the stack included.
#[test]
fn deep_nesting_is_a_syntax_error_with_its_line() {
    let prelude = "app:\n  name: shop\n";
    let cases = [
        (
            Format::Yaml,
            format!("{prelude}x:\n{}\n", "- ".repeat(30_000) + "x"),
            4,
        ),
        (
            Format::Yaml,
            format!("{prelude}x: {}\n", "[".repeat(30_000)),
            3,
        ),
        (
            Format::Yaml,
            format!(
                "{prelude}{}",
                (0..100)
                    .map(|i| format!("{}a:\n", "  ".repeat(i)))
                    .collect::<String>()
            ),
            3 + 64,
        ),
        (
            Format::Toml,
            format!("[app]\nname = \"shop\"\nx = {}\n", "[".repeat(30_000)),
            3,
        ),
        (
            Format::Toml,
            format!("[app]\nname = \"shop\"\nx = {}\n", "{a = ".repeat(30_000)),
            3,
        ),
        (
            Format::Toml,
            format!(
                "[app]\nname = \"shop\"\n{} = 1\n",
                vec!["x"; 30_000].join(".")
            ),
            3,
        ),
    ];
    for (format, text, line) in cases {
        let (dir, path) = file(
            if format == Format::Yaml {
                "deep.yaml"
            } else {
                "deep.toml"
            },
            &text,
        );
        let err = loader(&[]).load_file(&path).unwrap_err();
        let ConfigError::Syntax {
            line: got, message, ..
        } = &err
        else {
            panic!("not a syntax error: {err}");
        };
        assert_eq!(*got, Some(line), "{format}: {err}");
        assert!(message.contains("nesting deeper than 64 levels"), "{err}");
        assert!(err.to_string().contains("deep."), "{err}");
        drop(dir);
    }
}
