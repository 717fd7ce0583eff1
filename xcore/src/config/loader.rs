//! [`ConfigLoader`] and [`Format`]: read a file or text, interpolate, apply overrides,
//! deserialize, check.

use std::{collections::BTreeMap, fmt, path::Path};

use super::{
    Config, de,
    env::Env,
    error::{ConfigError, Origin},
    from_toml, from_yaml, interpolate,
    node::{Node, Value},
    overrides, validate,
};

/// The format of a config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// TOML (`.toml`).
    Toml,
}

impl Format {
    /// The format a file's extension names (`.yaml`, `.yml`, `.toml`, in any case), if any.
    pub fn from_path(path: impl AsRef<Path>) -> Option<Self> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
        })
    }
}

/// Loads a [`Config`]: parses the file, interpolates `${…}` in every string, applies
/// `XCORE__…` overrides, deserializes, and checks values (and secrets in production).
///
/// It reads the process environment unless given an explicit one with
/// [`env`](Self::env), as tests should (they run in parallel; changing the process
/// environment races).
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    env: Env,
    prefix: String,
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self {
            env: Env::Process,
            prefix: "XCORE".to_owned(),
        }
    }
}

impl ConfigLoader {
    /// A loader that reads the process environment, with the override prefix `XCORE`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads these variables instead of the process environment, for interpolation and
    /// overrides alike.
    pub fn env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.env = Env::Vars(vars);
        self
    }

    /// The prefix of override variables: `MYAPP` reads `MYAPP__SECTION__KEY`. Default `XCORE`.
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Loads a `.yaml`, `.yml` or `.toml` file. A missing or unreadable file is an error:
    /// there is no fallback to defaults.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let format = Format::from_path(path).ok_or_else(|| ConfigError::UnsupportedFormat {
            path: path.to_owned(),
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load(Some((&text, format)), Origin::File(path.into()))
    }

    /// Loads a config text.
    pub fn load_str(&self, text: &str, format: Format) -> Result<Config, ConfigError> {
        self.load(Some((text, format)), Origin::String)
    }

    /// Loads no file: the defaults with the environment's overrides applied.
    pub fn load_defaults(&self) -> Result<Config, ConfigError> {
        self.load(None, Origin::Defaults)
    }

    fn load(&self, text: Option<(&str, Format)>, origin: Origin) -> Result<Config, ConfigError> {
        let mut root = match text {
            Some((text, format)) => parse(text, format, &origin)?,
            None => Node::empty_map(),
        };
        if root.value == Value::Null {
            root = Node::empty_map();
        }
        interpolate::interpolate(&mut root, "", &self.env, &origin)?;
        overrides::apply_all(&mut root, &self.env, &self.prefix)?;
        let mut config: Config = de::from_node(&root, "", &origin)?;
        config.attach(root, origin);
        validate::check_values(&config)?;
        validate::check_production(&config)?;
        Ok(config)
    }
}

fn parse(text: &str, format: Format, origin: &Origin) -> Result<Node, ConfigError> {
    let parsed = match format {
        Format::Yaml => from_yaml::parse(text),
        Format::Toml => from_toml::parse(text),
    };
    parsed.map_err(|e| ConfigError::Syntax {
        origin: origin.clone(),
        format,
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::from_path("a/xcore.yaml"), Some(Format::Yaml));
        assert_eq!(Format::from_path("xcore.YML"), Some(Format::Yaml));
        assert_eq!(Format::from_path("xcore.toml"), Some(Format::Toml));
        assert_eq!(Format::from_path("xcore.json"), None);
        assert_eq!(Format::from_path("xcore"), None);
    }

    #[test]
    fn unsupported_extension_is_an_error() {
        let err = ConfigLoader::new()
            .env([("A", "b")])
            .load_file("xcore.json")
            .unwrap_err();
        assert!(matches!(err, ConfigError::UnsupportedFormat { .. }));
        assert!(
            err.to_string().contains("`.yaml`, `.yml` or `.toml`"),
            "{err}"
        );
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let err = ConfigLoader::new()
            .env([("A", "b")])
            .load_str("- a\n- b\n", Format::Yaml)
            .unwrap_err();
        assert_eq!(err.key(), Some(""));
        assert!(err.to_string().contains("the top level"), "{err}");
    }

    #[test]
    fn custom_prefix() {
        let config = ConfigLoader::new()
            .env([
                ("MYAPP__APP__NAME", "shop"),
                ("XCORE__APP__NAME", "ignored"),
            ])
            .env_prefix("MYAPP")
            .load_defaults()
            .unwrap();
        assert_eq!(config.app.name, "shop");
    }
}
