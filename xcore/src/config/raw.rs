//! [`RawSection`]: a plugin's or an extension's own section, read later into its own type.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Deserializer, de::DeserializeOwned};

use super::{
    de,
    error::{ConfigError, Origin},
    node::Node,
};

/// A section whose type the config does not know: a plugin's (`plugins.<name>`) or an
/// extension's (`services.extensions.<name>`). It keeps its lines and which values came from
/// the environment, so [`parse`](Self::parse) reports errors as well as the rest of the config
/// and coerces environment values by type.
#[derive(Clone)]
pub struct RawSection {
    value: serde_json::Value,
    node: Arc<Node>,
    path: String,
    origin: Origin,
}

impl RawSection {
    /// A section from a JSON value (for configs built in code).
    pub fn new(value: serde_json::Value) -> Self {
        let node = Arc::new(Node::from_json(&value));
        Self {
            value,
            node,
            path: String::new(),
            origin: Origin::Defaults,
        }
    }

    /// Points the section at its node of the loaded tree (lines, environment marks).
    pub(crate) fn attach(&mut self, node: &Node, path: String, origin: Origin) {
        self.node = Arc::new(node.clone());
        self.path = path;
        self.origin = origin;
    }

    /// The section as JSON (environment values stay strings here; [`parse`](Self::parse)
    /// coerces them by type).
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// The line the section starts on, when it was read from a file.
    pub fn line(&self) -> Option<usize> {
        self.node.line
    }

    /// The section's key path: `plugins.<name>` (empty for a section built in code).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Deserializes the section into `T`. Errors name the key path (`plugins.<name>.<field>`),
    /// the origin and the line, and suggest the closest known key for an unknown one.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        de::from_node(&self.node, &self.path, &self.origin)
    }

    /// The same, under another key path (when the section was built in code).
    pub(crate) fn parse_at<T: DeserializeOwned>(&self, path: &str) -> Result<T, ConfigError> {
        if self.path.is_empty() {
            de::from_node(&self.node, path, &self.origin)
        } else {
            self.parse()
        }
    }
}

impl PartialEq for RawSection {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// Shows the section's keys, not its values (which may hold secrets).
impl fmt::Debug for RawSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = match &self.value {
            serde_json::Value::Object(map) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        f.debug_struct("RawSection")
            .field("path", &self.path)
            .field("line", &self.line())
            .field("keys", &keys)
            .finish()
    }
}

impl<'de> Deserialize<'de> for RawSection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Self::new)
    }
}

impl From<serde_json::Value> for RawSection {
    fn from(value: serde_json::Value) -> Self {
        Self::new(value)
    }
}
