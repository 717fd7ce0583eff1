//! The value tree every format parses into: each node remembers its line and where its value
//! came from (the file, an interpolated environment variable, or an override).

use indexmap::IndexMap;

/// Where a value came from. Values from the environment are coerced by the target field's
/// type when deserialized; values written in the file are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Written literally in the file (or the text).
    File,
    /// A string of the file with at least one `${VAR}` substituted.
    Interpolated,
    /// Set by the named `XCORE__…` environment variable.
    Override(String),
}

impl Source {
    /// Whether the value came from the environment (and so is coerced by type).
    pub(crate) fn is_env(&self) -> bool {
        !matches!(self, Source::File)
    }
}

/// A value of the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Entry>),
}

impl Value {
    /// What the value is, for messages: "a string", "a mapping".
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "empty",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// One entry of a mapping: the key's line and source, and the value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key_line: Option<usize>,
    pub(crate) key_source: Source,
    pub(crate) value: Node,
}

/// A node: a value, the line it starts on (1-based, when known) and its source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) line: Option<usize>,
    pub(crate) source: Source,
}

impl Node {
    /// A node written in the file at `line`.
    pub(crate) fn file(value: Value, line: Option<usize>) -> Self {
        Self {
            value,
            line,
            source: Source::File,
        }
    }

    /// An empty mapping (the root when there is no file).
    pub(crate) fn empty_map() -> Self {
        Self::file(Value::Map(IndexMap::new()), None)
    }

    /// The entry at a dotted path of mapping keys, if any.
    pub(crate) fn entry(&self, path: &[&str]) -> Option<&Entry> {
        let (last, parents) = path.split_last()?;
        let mut node = self;
        for key in parents {
            node = match &node.value {
                Value::Map(map) => &map.get(*key)?.value,
                _ => return None,
            };
        }
        match &node.value {
            Value::Map(map) => map.get(*last),
            _ => None,
        }
    }

    /// The node at a path of mapping keys, if any (the node itself for an empty path).
    pub(crate) fn get(&self, path: &[&str]) -> Option<&Node> {
        if path.is_empty() {
            return Some(self);
        }
        self.entry(path).map(|entry| &entry.value)
    }

    /// A tree from a JSON value (no lines; written, not from the environment).
    pub(crate) fn from_json(value: &serde_json::Value) -> Self {
        let value = match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Value::Int(i128::from(i)),
                (_, Some(u), _) => Value::Int(i128::from(u)),
                (_, _, Some(f)) => Value::Float(f),
                _ => Value::Null,
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Seq(items.iter().map(Self::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| {
                        let entry = Entry {
                            key_line: None,
                            key_source: Source::File,
                            value: Self::from_json(v),
                        };
                        (k.clone(), entry)
                    })
                    .collect(),
            ),
        };
        Self::file(value, None)
    }
}

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_by_path() {
        let node = Node::from_json(&json!({"a": {"b": {"c": 1}}}));
        assert_eq!(
            node.get(&["a", "b", "c"]).map(|n| &n.value),
            Some(&Value::Int(1))
        );
        assert!(node.get(&["a", "x"]).is_none());
        assert!(node.get(&["a", "b", "c", "d"]).is_none());
        assert!(node.get(&[]).is_some());
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("", "app"), "app");
        assert_eq!(join("app", "name"), "app.name");
    }

    #[test]
    fn env_sources() {
        assert!(!Source::File.is_env());
        assert!(Source::Interpolated.is_env());
        assert!(Source::Override("X".into()).is_env());
    }
}
