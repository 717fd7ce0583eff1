use std::fmt;

/// A manifest value that does not parse, with the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    plugin: String,
    key: &'static str,
    message: String,
}

impl ManifestError {
    pub(crate) fn new(plugin: &str, key: &'static str, message: impl Into<String>) -> Self {
        Self {
            plugin: plugin.to_owned(),
            key,
            message: message.into(),
        }
    }

    /// The plugin whose manifest is wrong (as written, possibly itself invalid).
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The manifest key at fault (`version`, `permissions`, ...).
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// What is wrong with the value, and how to write it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "manifest of plugin `{}`: `{}`: {}",
            self.plugin, self.key, self.message
        )
    }
}

impl std::error::Error for ManifestError {}
