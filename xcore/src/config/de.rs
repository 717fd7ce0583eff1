//! A serde `Deserializer` over the value tree.
//!
//! Errors carry the key path, line and source of the innermost node they concern. Strings
//! that came from the environment (interpolated or overrides) are coerced by the type the
//! target field asks for; strings written in the file are not.

use std::fmt;

use indexmap::map;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer as _, EnumAccess, IntoDeserializer,
    MapAccess, SeqAccess, VariantAccess, Visitor, value::BorrowedStrDeserializer,
};

use super::{
    error::{ConfigError, Origin},
    node::{Entry, Node, Source, Value, join},
    suggest,
};

/// Deserializes `T` from `node`, whose key path is `path`.
pub(crate) fn from_node<T: DeserializeOwned>(
    node: &Node,
    path: &str,
    origin: &Origin,
) -> Result<T, ConfigError> {
    T::deserialize(NodeDe {
        node,
        path: path.to_owned(),
    })
    .map_err(|e| e.into_config_error(origin))
}

/// What went wrong.
#[derive(Debug)]
enum Kind {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    Message(String),
}

/// The error of the deserializer: what, and where (set once, by the innermost node).
#[derive(Debug)]
pub(crate) struct DeError {
    kind: Kind,
    located: Option<(String, Option<usize>, Source)>,
    /// The value is a string of the file that reads as a number or boolean: quoted by mistake.
    quoted_scalar: bool,
}

impl DeError {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            located: None,
            quoted_scalar: false,
        }
    }

    fn locate(mut self, path: &str, line: Option<usize>, source: &Source) -> Self {
        if self.located.is_none() {
            self.located = Some((path.to_owned(), line, source.clone()));
        }
        self
    }

    /// Locates the error at a node (if it has no location yet).
    fn at(mut self, path: &str, node: &Node) -> Self {
        if self.located.is_none() {
            self.quoted_scalar = node.source == Source::File
                && matches!(&node.value, Value::Str(s) if looks_scalar(s));
        }
        self.locate(path, node.line, &node.source)
    }

    /// The public error, with `origin` as the origin unless the value came from an override.
    pub(crate) fn into_config_error(self, origin: &Origin) -> ConfigError {
        let (key, line, source) = self.located.unwrap_or((String::new(), None, Source::File));
        let (origin, line) = match &source {
            Source::Override(var) => (Origin::Env(var.as_str().into()), None),
            _ => (origin.clone(), line),
        };
        let message = match self.kind {
            Kind::UnknownField { field, expected } => {
                return ConfigError::UnknownKey {
                    origin,
                    line,
                    suggestion: suggest::closest(&field, expected.iter().copied())
                        .map(str::to_owned),
                    expected: expected.iter().map(|s| (*s).to_owned()).collect(),
                    key,
                };
            }
            Kind::UnknownVariant { variant, expected } => {
                let mut message = format!(
                    "unknown value `{variant}`, expected one of: {}",
                    expected.join(", ")
                );
                if let Some(s) = suggest::closest(&variant, expected.iter().copied()) {
                    message.push_str(&format!("; did you mean `{s}`?"));
                }
                message
            }
            Kind::Message(message) => message,
        };
        ConfigError::Invalid {
            origin,
            line,
            key,
            hint: hint(&source, self.quoted_scalar, &message),
            message,
        }
    }
}

/// What to do about an invalid value, by where it came from.
fn hint(source: &Source, quoted_scalar: bool, message: &str) -> &'static str {
    let wrong_type = message.starts_with("invalid type:");
    match source {
        Source::Override(_) => "fix the environment variable's value",
        Source::Interpolated => "fix the value of the environment variable interpolated here",
        Source::File
            if wrong_type && quoted_scalar && message.starts_with("invalid type: string") =>
        {
            "write the value without quotes (a quoted value is a string)"
        }
        Source::File if wrong_type && message.ends_with("expected a string") => {
            "quote the value to make it a string"
        }
        Source::File => "fix the value",
    }
}

/// Whether a string reads as a number or a boolean.
fn looks_scalar(text: &str) -> bool {
    text.parse::<f64>().is_ok() || parse_bool(text).is_some()
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::UnknownField { field, .. } => write!(f, "unknown key `{field}`"),
            Kind::UnknownVariant { variant, .. } => write!(f, "unknown value `{variant}`"),
            Kind::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(Kind::Message(msg.to_string()))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::new(Kind::UnknownField {
            field: field.to_owned(),
            expected,
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::new(Kind::UnknownVariant {
            variant: variant.to_owned(),
            expected,
        })
    }
}

/// The deserializer of one node.
struct NodeDe<'de> {
    node: &'de Node,
    path: String,
}

impl<'de> NodeDe<'de> {
    fn locate(&self, err: DeError) -> DeError {
        err.at(&self.path, self.node)
    }

    /// The string, if this node is a string from the environment (coercible by type).
    fn env_str(&self) -> Option<&'de str> {
        match &self.node.value {
            Value::Str(s) if self.node.source.is_env() => Some(s),
            _ => None,
        }
    }

    fn integer<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Some(text) = self.env_str() else {
            return self.deserialize_any(visitor);
        };
        let result = match text.trim().parse::<i128>() {
            Ok(n) => visit_int(n, visitor),
            Err(_) => Err(de::Error::custom(format!("`{text}` is not an integer"))),
        };
        result.map_err(|e| self.locate(e))
    }

    fn float<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Some(text) = self.env_str() else {
            return self.deserialize_any(visitor);
        };
        let result = match text.trim().parse::<f64>() {
            Ok(f) => visitor.visit_f64(f),
            Err(_) => Err(de::Error::custom(format!("`{text}` is not a number"))),
        };
        result.map_err(|e| self.locate(e))
    }

    fn string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => visitor.visit_borrowed_str(s).map_err(|e| self.locate(e)),
            _ => self.deserialize_any(visitor),
        }
    }
}

fn visit_int<'de, V: Visitor<'de>>(n: i128, visitor: V) -> Result<V::Value, DeError> {
    if let Ok(u) = u64::try_from(n) {
        visitor.visit_u64(u)
    } else if let Ok(i) = i64::try_from(n) {
        visitor.visit_i64(i)
    } else {
        visitor.visit_i128(n)
    }
}

/// What a value is, for serde's "invalid type" messages.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(n) => match i64::try_from(*n) {
            Ok(i) => de::Unexpected::Signed(i),
            Err(_) => de::Unexpected::Other("a large integer"),
        },
        Value::Float(f) => de::Unexpected::Float(*f),
        Value::Str(s) => de::Unexpected::Str(s),
        Value::Seq(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
    }
}

/// The words an environment string may use for a boolean.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

macro_rules! integers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.integer(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(n) => visit_int(*n, visitor),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter().enumerate(),
                path: &self.path,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries.iter(), &self.path)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Some(text) = self.env_str() else {
            return self.deserialize_any(visitor);
        };
        let result = match parse_bool(text) {
            Some(b) => visitor.visit_bool(b),
            None => Err(de::Error::custom(format!(
                "`{text}` is not a boolean (use true/false, 1/0, yes/no or on/off)"
            ))),
        };
        result.map_err(|e| self.locate(e))
    }

    integers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.float(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let none = match &self.node.value {
            Value::Null => true,
            // An empty environment value unsets an optional field.
            Value::Str(s) => self.node.source.is_env() && s.is_empty(),
            _ => false,
        };
        if none {
            visitor.visit_none().map_err(|e| self.locate(e))
        } else {
            let (node, path) = (self.node, self.path.clone());
            visitor.visit_some(self).map_err(|e| e.at(&path, node))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (node, path) = (self.node, self.path.clone());
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.at(&path, node))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries.iter(), &self.path)),
            // An empty section (`cache:` with everything commented out) is an empty mapping.
            Value::Null => visitor.visit_map(MapDe::new(map::Iter::default(), &self.path)),
            // Not `deserialize_any`: a struct would accept a list of its fields in order.
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Str(s) => visitor.visit_enum(BorrowedStrDeserializer::<DeError>::new(s)),
            Value::Map(entries) if entries.len() == 1 => match entries.iter().next() {
                Some((key, entry)) => visitor.visit_enum(EnumDe {
                    key,
                    entry,
                    path: &self.path,
                }),
                None => return self.deserialize_any(visitor),
            },
            _ => return self.deserialize_any(visitor),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// The elements of a list.
struct SeqDe<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    path: &'p str,
}

impl<'de> SeqAccess<'de> for SeqDe<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|e| e.at(&path, node))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a mapping.
struct MapDe<'de, 'p> {
    entries: map::Iter<'de, String, Entry>,
    current: Option<(&'de String, &'de Entry)>,
    path: &'p str,
}

impl<'de, 'p> MapDe<'de, 'p> {
    fn new(entries: map::Iter<'de, String, Entry>, path: &'p str) -> Self {
        Self {
            entries,
            current: None,
            path,
        }
    }
}

impl<'de> MapAccess<'de> for MapDe<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, entry)) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some((key, entry));
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(key))
            .map(Some)
            .map_err(|e| e.locate(&join(self.path, key), entry.key_line, &entry.key_source))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, entry)) = self.current.take() else {
            return Err(de::Error::custom("a value was asked for before its key"));
        };
        let path = join(self.path, key);
        // Errors raised after the node was read (a `deserialize_with` function's) still
        // belong to this node.
        seed.deserialize(NodeDe {
            node: &entry.value,
            path: path.clone(),
        })
        .map_err(|e| e.at(&path, &entry.value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as a one-entry mapping: `{ variant: value }`.
struct EnumDe<'de, 'p> {
    key: &'de String,
    entry: &'de Entry,
    path: &'p str,
}

impl<'de> EnumAccess<'de> for EnumDe<'de, '_> {
    type Error = DeError;
    type Variant = NodeDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'de>), DeError> {
        let path = join(self.path, self.key);
        let variant = seed
            .deserialize(self.key.as_str().into_deserializer())
            .map_err(|e: DeError| e.locate(&path, self.entry.key_line, &self.entry.key_source))?;
        Ok((
            variant,
            NodeDe {
                node: &self.entry.value,
                path,
            },
        ))
    }
}

impl<'de> VariantAccess<'de> for NodeDe<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let (node, path) = (self.node, self.path.clone());
        seed.deserialize(self).map_err(|e| e.at(&path, node))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::config::node::Node;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        flag: bool,
        count: u32,
        name: String,
        ratio: f64,
        maybe: Option<String>,
        mode: Mode,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    fn env_string(text: &str) -> Node {
        Node {
            value: Value::Str(text.into()),
            line: None,
            source: Source::Override("X".into()),
        }
    }

    fn map(entries: Vec<(&str, Node)>) -> Node {
        Node::file(
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, value)| {
                        (
                            k.to_owned(),
                            Entry {
                                key_line: Some(1),
                                key_source: Source::File,
                                value,
                            },
                        )
                    })
                    .collect(),
            ),
            Some(1),
        )
    }

    #[test]
    fn env_strings_are_coerced_by_type() {
        let node = map(vec![
            ("flag", env_string("on")),
            ("count", env_string("42")),
            ("name", env_string("1")),
            ("ratio", env_string("0.5")),
            ("maybe", env_string("")),
            ("mode", env_string("slow")),
        ]);
        let sample: Sample = from_node(&node, "", &Origin::String).unwrap();
        assert_eq!(
            sample,
            Sample {
                flag: true,
                count: 42,
                name: "1".into(),
                ratio: 0.5,
                maybe: None,
                mode: Mode::Slow
            }
        );
    }

    #[test]
    fn file_strings_are_not_coerced() {
        let node = map(vec![(
            "count",
            Node::file(Value::Str("42".into()), Some(3)),
        )]);
        #[derive(Debug, Deserialize)]
        struct Count {
            #[allow(dead_code)]
            count: u32,
        }
        let err = from_node::<Count>(&node, "", &Origin::String).unwrap_err();
        assert_eq!(err.key(), Some("count"));
        assert_eq!(err.line(), Some(3));
        assert!(err.to_string().contains("without quotes"), "{err}");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let node = map(vec![("flag", env_string("maybe"))]);
        #[derive(Debug, Deserialize)]
        struct Flag {
            #[allow(dead_code)]
            flag: bool,
        }
        let err = from_node::<Flag>(&node, "section", &Origin::String).unwrap_err();
        assert_eq!(err.origin(), Some(&Origin::Env("X".into())));
        assert_eq!(err.key(), Some("section.flag"));
        assert!(err.to_string().contains("not a boolean"), "{err}");
    }

    #[test]
    fn unknown_variant_suggests() {
        let node = map(vec![(
            "mode",
            Node::file(Value::Str("fsat".into()), Some(2)),
        )]);
        #[derive(Debug, Deserialize)]
        struct M {
            #[allow(dead_code)]
            mode: Mode,
        }
        let err = from_node::<M>(&node, "", &Origin::String).unwrap_err();
        assert!(err.to_string().contains("did you mean `fast`?"), "{err}");
        assert_eq!(err.line(), Some(2));
    }

    #[test]
    fn sequences_have_indexed_paths() {
        let node = map(vec![(
            "items",
            Node::file(
                Value::Seq(vec![
                    Node::file(Value::Int(1), Some(2)),
                    Node::file(Value::Str("x".into()), Some(3)),
                ]),
                Some(2),
            ),
        )]);
        #[derive(Debug, Deserialize)]
        struct Items {
            #[allow(dead_code)]
            items: Vec<u8>,
        }
        let err = from_node::<Items>(&node, "p", &Origin::String).unwrap_err();
        assert_eq!(err.key(), Some("p.items[1]"));
        assert_eq!(err.line(), Some(3));
    }

    #[test]
    fn missing_field_is_located_at_its_mapping() {
        let node = map(vec![]);
        #[derive(Debug, Deserialize)]
        struct Needs {
            #[allow(dead_code)]
            needed: u8,
        }
        let err = from_node::<Needs>(&node, "plugins.x", &Origin::String).unwrap_err();
        assert_eq!(err.key(), Some("plugins.x"));
        assert!(err.to_string().contains("missing field `needed`"), "{err}");
    }
}
