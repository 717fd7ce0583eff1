//! TOML text → value tree, through `toml`'s spanned document parser (keys and values keep
//! their lines; tables keep the order of the file).

use std::ops::Range;

use indexmap::IndexMap;
use toml::de::{DeTable, DeValue};

use super::{
    from_yaml::SyntaxError,
    node::{Entry, Node, Source, Value},
};

/// Parses a TOML document.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let lines = Lines::new(text);
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = e.span().map(|s| lines.position(s.start)).unzip();
        SyntaxError {
            message: e.message().trim().to_owned(),
            line,
            column,
        }
    })?;
    Ok(table(doc.get_ref(), doc.span(), &lines))
}

fn table(table: &DeTable<'_>, span: Range<usize>, lines: &Lines) -> Node {
    let entries: IndexMap<String, Entry> = table
        .iter()
        .map(|(key, value)| {
            let entry = Entry {
                key_line: Some(lines.line(key.span().start)),
                key_source: Source::File,
                value: node(value.get_ref(), value.span(), lines),
            };
            (key.get_ref().to_string(), entry)
        })
        .collect();
    Node::file(Value::Map(entries), Some(lines.line(span.start)))
}

fn node(value: &DeValue<'_>, span: Range<usize>, lines: &Lines) -> Node {
    let value = match value {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i128::from_str_radix(&digits, i.radix()) {
                Ok(n) => Value::Int(n),
                Err(_) => Value::Str(i.as_str().to_owned()),
            }
        }
        DeValue::Float(f) => {
            float(f.as_str()).map_or_else(|| Value::Str(f.as_str().to_owned()), Value::Float)
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Str(d.to_string()),
        DeValue::Array(items) => Value::Seq(
            items
                .iter()
                .map(|v| node(v.get_ref(), v.span(), lines))
                .collect(),
        ),
        DeValue::Table(t) => return table(t, span, lines),
    };
    Node::file(value, Some(lines.line(span.start)))
}

/// A TOML float: `1.5`, `1_000.0`, `6e-3`, `inf`, `-inf`, `nan`.
fn float(text: &str) -> Option<f64> {
    let text = text.replace('_', "");
    match text.trim_start_matches(['+', '-']) {
        "inf" if text.starts_with('-') => Some(f64::NEG_INFINITY),
        "inf" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Byte offset → line and column.
struct Lines {
    starts: Vec<usize>,
    text_len: usize,
}

impl Lines {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            starts,
            text_len: text.len(),
        }
    }

    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&start| start <= offset.min(self.text_len))
            .max(1)
    }

    /// The 1-based line and column of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        (line, offset.saturating_sub(start) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_lines() {
        let root = parse("[app]\nname = \"x\"\n\n[services.cache]\nttl = 30\nratio = 1_000.5\nwhen = 1979-05-27\n")
            .unwrap();
        let name = root.entry(&["app", "name"]).unwrap();
        assert_eq!(
            (name.key_line, &name.value.value),
            (Some(2), &Value::Str("x".into()))
        );
        let ttl = root.entry(&["services", "cache", "ttl"]).unwrap();
        assert_eq!((ttl.key_line, &ttl.value.value), (Some(5), &Value::Int(30)));
        assert_eq!(
            root.get(&["services", "cache", "ratio"]).unwrap().value,
            Value::Float(1000.5)
        );
        assert_eq!(
            root.get(&["services", "cache", "when"]).unwrap().value,
            Value::Str("1979-05-27".into())
        );
    }

    #[test]
    fn order_is_kept() {
        let root = parse("[db.zeta]\nurl = \"a\"\n[db.alpha]\nurl = \"b\"\n").unwrap();
        let Value::Map(map) = &root.get(&["db"]).unwrap().value else {
            panic!("not a map")
        };
        assert_eq!(map.keys().collect::<Vec<_>>(), ["zeta", "alpha"]);
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let err = parse("[app]\nname = \"x\"\nenv = \n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err:?}");
        let err = parse("a = 1\na = 2\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err:?}");
    }

    #[test]
    fn line_positions() {
        let lines = Lines::new("ab\ncd\n");
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(4), (2, 2));
        assert_eq!(lines.line(100), 3);
    }
}
