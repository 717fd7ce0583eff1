//! TOML text → value tree, through `toml`'s spanned document parser (keys and values keep
//! their lines; tables keep the order of the file).
//!
//! A linear pre-scan bounds the nesting before the parser sees the text: the depth of the
//! current table header (`[a.b.c]`, one more for `[[…]]`) plus the open arrays and inline
//! tables plus the dotted segments of the key being read must stay within
//! [`MAX_DEPTH`](super::from_yaml::MAX_DEPTH) (strings and comments do not count). The tree
//! built from the document is therefore never deeper than that, and neither the parser, nor
//! the conversion, nor dropping the tree can recurse deeper.
//!
//! | hostile input | error |
//! |---|---|
//! | `a = [[[[…` | `nesting deeper than 64 levels`, at its line |
//! | `a = {b = {c = {…` | the same |
//! | `a.b.c.d.… = 1` (dotted keys) | the same |
//! | `[a.b.c.…]`, `[[a.b.c.…]]` | the same |

use std::ops::Range;

use indexmap::IndexMap;
use toml::de::{DeTable, DeValue};

use super::{
    from_yaml::{MAX_DEPTH, SyntaxError, too_deep},
    node::{Entry, Node, Source, Value},
};

/// Parses a TOML document.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    check_depth(text)?;
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

/// Where the pre-scan is.
#[derive(Clone, Copy, PartialEq)]
enum Scan {
    Code,
    Comment,
    Basic,
    Literal,
    MultiBasic,
    MultiLiteral,
}

/// Rejects nesting deeper than [`MAX_DEPTH`] before the parser sees the text (see the module
/// docs). Linear; counts generously (a header's brackets count while it is read), so it errs
/// only on the side of rejecting, far beyond any real config.
fn check_depth(text: &str) -> Result<(), SyntaxError> {
    let bytes = text.as_bytes();
    let mut state = Scan::Code;
    let mut line = 1;
    // Open `[` and `{` of the current value (or header), innermost last, each with the dots
    // of the key it is the value of (`a.b = {…`); `carried` is the sum of those.
    let mut open: Vec<(u8, usize)> = Vec::new();
    let mut carried = 0usize;
    // The depth of the current `[table]`, and the dots of the key (or header) being read.
    let mut table_depth = 0usize;
    let mut key_dots = 0usize;
    let mut in_key = true;
    let mut header = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let rest = &bytes[i..];
        if b == b'\n' {
            line += 1;
        }
        match state {
            Scan::Comment => {
                if b == b'\n' {
                    state = Scan::Code;
                    if open.is_empty() {
                        in_key = true;
                        key_dots = 0;
                    }
                }
            }
            Scan::Basic if b == b'\\' => i += 1,
            Scan::Basic if b == b'"' || b == b'\n' => state = Scan::Code,
            Scan::Literal if b == b'\'' || b == b'\n' => state = Scan::Code,
            Scan::MultiBasic if b == b'\\' => i += 1,
            Scan::MultiBasic if rest.starts_with(b"\"\"\"") => {
                state = Scan::Code;
                i += 2;
            }
            Scan::MultiLiteral if rest.starts_with(b"'''") => {
                state = Scan::Code;
                i += 2;
            }
            Scan::Basic | Scan::Literal | Scan::MultiBasic | Scan::MultiLiteral => {}
            Scan::Code => match b {
                b'#' => state = Scan::Comment,
                b'"' if rest.starts_with(b"\"\"\"") => {
                    state = Scan::MultiBasic;
                    i += 2;
                }
                b'\'' if rest.starts_with(b"'''") => {
                    state = Scan::MultiLiteral;
                    i += 2;
                }
                b'"' => state = Scan::Basic,
                b'\'' => state = Scan::Literal,
                b'[' if in_key && open.is_empty() => {
                    // A table header, `[a.b]` or `[[a.b]]`: its brackets count while read.
                    header = true;
                    key_dots = 0;
                    open.push((b'[', 0));
                    if rest.starts_with(b"[[") {
                        open.push((b'[', 0));
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    open.push((b, key_dots));
                    carried += key_dots;
                    in_key = b == b'{';
                    key_dots = 0;
                }
                b']' | b'}' => {
                    carried -= open.pop().map_or(0, |(_, dots)| dots);
                    if header {
                        let array = rest.starts_with(b"]]");
                        if array {
                            open.pop();
                            i += 1;
                        }
                        // `[[…]]` is one level more: the array of tables.
                        table_depth = key_dots + 1 + usize::from(array);
                        header = false;
                        key_dots = 0;
                    }
                    in_key = false;
                }
                b',' => {
                    in_key = open.last().is_some_and(|&(b, _)| b == b'{');
                    key_dots = 0;
                }
                b'=' => in_key = false,
                b'.' if in_key || header => key_dots += 1,
                b'\n' if open.is_empty() => {
                    in_key = true;
                    key_dots = 0;
                }
                _ => {}
            },
        }
        // The root table is the first level.
        if 1 + table_depth + open.len() + carried + key_dots > MAX_DEPTH {
            return Err(too_deep(line, None));
        }
        i += 1;
    }
    Ok(())
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

    /// `depth` levels of tables or arrays in the tree, for every TOML construct.
    fn nested(depth: usize) -> [String; 6] {
        let keys = |n: usize| vec!["a"; n].join(".");
        [
            format!("a = {}1{}\n", "[".repeat(depth - 1), "]".repeat(depth - 1)),
            format!(
                "a = {}1{}\n",
                "{b = ".repeat(depth - 1),
                "}".repeat(depth - 1)
            ),
            format!("{} = 1\n", keys(depth)),
            format!("[{}]\nb = 1\n", keys(depth - 1)),
            format!("[[{}]]\nb = 1\n", keys(depth - 2)),
            format!(
                "x = 1\n[t]\na.b = {{c = [{}1{}]}}\n",
                "[".repeat(depth - 5),
                "]".repeat(depth - 5)
            ),
        ]
    }

    fn depth_of(node: &Node) -> usize {
        match &node.value {
            Value::Seq(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
            Value::Map(entries) => {
                1 + entries
                    .values()
                    .map(|e| depth_of(&e.value))
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }

    #[test]
    fn nesting_is_bounded_for_every_construct() {
        for text in nested(MAX_DEPTH) {
            let root = parse(&text).unwrap_or_else(|e| panic!("{e:?} on {text:?}"));
            assert_eq!(depth_of(&root), MAX_DEPTH, "{text:?}");
        }
        for text in nested(MAX_DEPTH + 1) {
            let err = parse(&text).unwrap_err();
            assert!(
                err.message.contains("nesting deeper than 64"),
                "{err:?} on {text:?}"
            );
        }
        // Deep and long, on the third line: rejected there, before the parser runs.
        for deep in [
            format!("a = {}", "[".repeat(30_000)),
            format!("a = {}", "{b = ".repeat(30_000)),
            format!("{} = 1", vec!["a"; 30_000].join(".")),
            format!("[{}]", vec!["a"; 30_000].join(".")),
            format!("[[{}]]", vec!["a"; 30_000].join(".")),
            format!("a = [{}]", "{b = [".repeat(30_000)),
        ] {
            let err = parse(&format!("x = 1\n# a comment\n{deep}\n")).unwrap_err();
            assert!(err.message.contains("nesting deeper"), "{err:?}");
            assert_eq!(err.line, Some(3), "{err:?}");
        }
    }

    #[test]
    fn dotted_keys_inside_inline_tables_add_up() {
        // 3 × 30 levels: each part is shallow, the whole is not.
        let keys = vec!["a"; 30].join(".");
        let text = format!("{keys} = {{{keys} = {{{keys} = 1}}}}\n");
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{err:?}");
        let keys = vec!["a"; 20].join(".");
        let root = parse(&format!("{keys} = {{{keys} = {{{keys} = 1}}}}\n")).unwrap();
        assert_eq!(depth_of(&root), 1 + 3 * 20 - 1);
    }

    #[test]
    fn strings_and_comments_do_not_count_as_nesting() {
        let brackets = "[".repeat(200);
        let dots = ".".repeat(200);
        let text = format!(
            "a = \"{brackets}{dots}\"\nb = '{brackets}'\nc = \"\"\"\n{brackets}\n\"\"\"\n\
             d = '''{brackets}'''\n# {brackets}\n\"e{dots}\" = 1.5\nf = [1.5, 2.5e3]\n"
        );
        let root = parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(depth_of(&root), 2);
    }

    #[test]
    fn line_positions() {
        let lines = Lines::new("ab\ncd\n");
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(4), (2, 2));
        assert_eq!(lines.line(100), 3);
    }
}
