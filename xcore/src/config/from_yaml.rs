//! YAML text → value tree, through yaml-rust2's marked event parser (every node keeps its
//! line). Scalars resolve by the YAML 1.2 core schema; quoted scalars are always strings.
//!
//! | hostile input | bound | error |
//! |---|---|---|
//! | nesting, block (`- - - x`, indented mappings) or flow (`[[[`, `{a: {`) | [`MAX_DEPTH`] levels | `nesting deeper than 64 levels`, at the line of the first level too many |
//! | aliases nesting an anchor deeper | [`MAX_DEPTH`] levels in all | the same, at the alias's line |
//! | aliases expanding to many nodes ("billion laughs") | 1,000,000 nodes | `aliases expand to too many values` |

use std::collections::HashMap;

use indexmap::IndexMap;
use yaml_rust2::{
    Event,
    parser::{Parser, Tag},
    scanner::TScalarStyle,
};

use super::node::{Entry, Node, Source, Value};

/// A syntax error: message and 1-based line and column.
#[derive(Debug, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
}

/// Most nodes a document may expand to through aliases (guards against "billion laughs").
const MAX_NODES: usize = 1_000_000;
/// Deepest nesting of lists and mappings accepted, in YAML (block or flow style, aliases
/// included) and TOML (arrays, tables, inline tables, dotted keys) alike: every later step
/// (interpolation, overrides, deserialization) walks the tree recursively.
pub(crate) const MAX_DEPTH: usize = 64;

/// Parses one YAML document. An empty document is `Null`.
///
/// The events are pulled one at a time from yaml-rust2's parser (a state machine with its
/// own stack) rather than through its recursive `load`, and a collection that would open
/// deeper than [`MAX_DEPTH`] stops the parse at its line: no input reaches a recursion deeper
/// than that, so none can overflow the stack.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let (line, column) = (e.marker().line(), Some(e.marker().col() + 1));
            // The scanner reads flow collections ahead and has its own (higher) bound: the
            // same error either way.
            if e.info().contains("recursion limit") {
                return too_deep(line, column);
            }
            SyntaxError {
                message: e.info().to_owned(),
                line: Some(line),
                column,
            }
        })?;
        if event == Event::StreamEnd {
            break;
        }
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..))
            && builder.stack.len() >= MAX_DEPTH
        {
            return Err(too_deep(mark.line(), Some(mark.col() + 1)));
        }
        builder.event(event, mark.line())?;
    }
    let mut docs = builder.docs.into_iter();
    let root = docs.next().unwrap_or_else(|| Node::file(Value::Null, None));
    if let Some(extra) = docs.next() {
        return Err(SyntaxError {
            message: "the file holds more than one YAML document; keep one".to_owned(),
            line: extra.line,
            column: None,
        });
    }
    Ok(root)
}

/// The error for nesting deeper than [`MAX_DEPTH`], at its line.
pub(crate) fn too_deep(line: usize, column: Option<usize>) -> SyntaxError {
    SyntaxError {
        message: format!(
            "nesting deeper than {MAX_DEPTH} levels (lists and mappings, in any style): \
             flatten the structure"
        ),
        line: Some(line),
        column,
    }
}

/// A collection being built.
enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: IndexMap<String, Entry>,
        key: Option<(String, usize)>,
    },
}

/// Builds nodes from parser events.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    docs: Vec<Node>,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event, line: usize) -> Result<(), SyntaxError> {
        match event {
            Event::DocumentEnd => {
                let root = self
                    .root
                    .take()
                    .unwrap_or_else(|| Node::file(Value::Null, Some(line)));
                self.docs.push(root);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve(text, style, tag.as_ref(), line)?;
                self.insert(Node::file(value, Some(line)), 1, anchor, line)?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                line,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map {
                    line,
                    anchor,
                    entries: IndexMap::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                    }) => (Node::file(Value::Seq(items), Some(line)), anchor),
                    Some(Frame::Map {
                        line,
                        anchor,
                        entries,
                        ..
                    }) => (Node::file(Value::Map(entries), Some(line)), anchor),
                    None => return Err(error("unbalanced collection", line)),
                };
                let size = count(&node);
                self.insert(node, size, anchor, line)?;
            }
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| error("an alias names an unknown anchor", line))?;
                self.nodes += size;
                if self.nodes > MAX_NODES {
                    return Err(error("aliases expand to too many values", line));
                }
                // An alias copies its anchor's node: its depth adds to where it stands.
                if self.stack.len() + height(&node) > MAX_DEPTH {
                    return Err(too_deep(line, None));
                }
                self.insert(node, size, 0, line)?;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
        Ok(())
    }

    /// Puts a finished node into its parent (or as the document's root).
    fn insert(
        &mut self,
        node: Node,
        size: usize,
        anchor: usize,
        line: usize,
    ) -> Result<(), SyntaxError> {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some((key_text(node, line)?, line)),
                Some((name, key_line)) => {
                    if let Some(first) = entries.get(&name) {
                        let first = first
                            .key_line
                            .map(|l| format!(" (first at line {l})"))
                            .unwrap_or_default();
                        return Err(error(&format!("duplicate key `{name}`{first}"), key_line));
                    }
                    let entry = Entry {
                        key_line: Some(key_line),
                        key_source: Source::File,
                        value: node,
                    };
                    entries.insert(name, entry);
                }
            },
        }
        Ok(())
    }
}

fn error(message: &str, line: usize) -> SyntaxError {
    SyntaxError {
        message: message.to_owned(),
        line: Some(line),
        column: None,
    }
}

/// How many levels of collections a node holds (a scalar: 0). Recursion bounded by
/// [`MAX_DEPTH`]: the builder never holds a deeper node.
fn height(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(height).max().unwrap_or(0),
        Value::Map(entries) => {
            1 + entries
                .values()
                .map(|e| height(&e.value))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// How many nodes a node holds (itself included).
fn count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count).sum(),
        Value::Map(entries) => entries.values().map(|e| count(&e.value)).sum(),
        _ => 0,
    }
}

/// A mapping key as text: scalars only.
fn key_text(node: Node, line: usize) -> Result<String, SyntaxError> {
    Ok(match node.value {
        Value::Str(s) => s,
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Null => "null".to_owned(),
        Value::Seq(_) | Value::Map(_) => {
            return Err(error(
                "a key must be a plain value, not a list or mapping",
                line,
            ));
        }
    })
}

/// The value of a scalar: quoted → string; `!!str`/`!!int`/… tags; else the core schema.
fn resolve(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
    line: usize,
) -> Result<Value, SyntaxError> {
    if let Some(tag) = tag {
        if tag.handle != "tag:yaml.org,2002:" {
            return Err(error(
                &format!("unsupported tag `{}{}`", tag.handle, tag.suffix),
                line,
            ));
        }
        if tag.suffix == "str" {
            return Ok(Value::Str(text));
        }
        return match (tag.suffix.as_str(), plain(text)) {
            ("null", v @ Value::Null)
            | ("bool", v @ Value::Bool(_))
            | ("int", v @ Value::Int(_))
            | ("float", v @ Value::Float(_)) => Ok(v),
            ("float", Value::Int(n)) => Ok(Value::Float(n as f64)),
            ("null" | "bool" | "int" | "float", _) => Err(error(
                &format!("the value does not match its tag `!!{}`", tag.suffix),
                line,
            )),
            (other, _) => Err(error(&format!("unsupported tag `!!{other}`"), line)),
        };
    }
    Ok(if style == TScalarStyle::Plain {
        plain(text)
    } else {
        Value::Str(text)
    })
}

/// The YAML 1.2 core schema.
fn plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = int(&text) {
        return Value::Int(int);
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(&text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Value::Float(if text.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    let numeric = unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    match text.parse::<f64>() {
        Ok(f) if numeric => Value::Float(f),
        _ => Value::Str(text),
    }
}

/// `42`, `-7`, `+3`, `0x1F`, `0o17`.
fn int(text: &str) -> Option<i128> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i128::from_str_radix(hex, 16)
            .ok()
            .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i128::from_str_radix(oct, 8)
            .ok()
            .filter(|_| oct.bytes().all(|b| b.is_ascii_digit()));
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        parse(text).unwrap().value
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let Value::Map(map) = value(
            "a: 1\nb: -2\nc: 1.5\nd: true\ne: ~\nf: yes\ng: \"30\"\nh: 0x10\ni: .inf\nj: '1'\nk: !!str 5\nl: 1e3\nm: 1.2.3",
        ) else {
            panic!("not a map");
        };
        let got: Vec<_> = map
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Value::Int(1)),
                ("b", Value::Int(-2)),
                ("c", Value::Float(1.5)),
                ("d", Value::Bool(true)),
                ("e", Value::Null),
                ("f", Value::Str("yes".into())),
                ("g", Value::Str("30".into())),
                ("h", Value::Int(16)),
                ("i", Value::Float(f64::INFINITY)),
                ("j", Value::Str("1".into())),
                ("k", Value::Str("5".into())),
                ("l", Value::Float(1000.0)),
                ("m", Value::Str("1.2.3".into())),
            ]
        );
    }

    #[test]
    fn lines_are_one_based() {
        let root = parse("# comment\napp:\n  name: x\n  env: production\n").unwrap();
        let app = root.entry(&["app"]).unwrap();
        assert_eq!(app.key_line, Some(2));
        let env = root.entry(&["app", "env"]).unwrap();
        assert_eq!((env.key_line, env.value.line), (Some(4), Some(4)));
    }

    #[test]
    fn order_is_kept() {
        let root = parse("z: 1\na: 2\nm: 3\n").unwrap();
        let Value::Map(map) = root.value else {
            panic!("not a map")
        };
        assert_eq!(map.keys().collect::<Vec<_>>(), ["z", "a", "m"]);
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let err = parse("app:\n  name: x\n  env: [unclosed\nother: 1\n").unwrap_err();
        assert!(err.line.is_some_and(|l| l >= 3), "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(
            err.message.contains("duplicate key `a` (first at line 1)"),
            "{err:?}"
        );
    }

    #[test]
    fn empty_documents_and_anchors() {
        assert_eq!(value(""), Value::Null);
        assert_eq!(value("# only a comment\n"), Value::Null);
        let root = parse("base: &b {x: 1}\ncopy: *b\n").unwrap();
        assert_eq!(root.get(&["copy", "x"]).unwrap().value, Value::Int(1));
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
        assert!(parse("a: *nope\n").is_err());
    }

    /// `depth` levels of each construct, a scalar at the bottom.
    fn nested(depth: usize) -> [String; 5] {
        [
            "- ".repeat(depth) + "x",
            "[".repeat(depth) + "x" + &"]".repeat(depth),
            "{a: ".repeat(depth) + "x" + &"}".repeat(depth),
            (0..depth)
                .map(|i| format!("{}a:\n", "  ".repeat(i)))
                .collect::<String>()
                + &"  ".repeat(depth)
                + "x\n",
            (0..depth)
                .map(|i| format!("{}-\n", "  ".repeat(i)))
                .collect::<String>()
                + &"  ".repeat(depth)
                + "x\n",
        ]
    }

    fn depth_of(node: &Node) -> usize {
        height(node)
    }

    #[test]
    fn nesting_is_bounded_in_every_style() {
        for text in nested(MAX_DEPTH) {
            let root = parse(&text).unwrap_or_else(|e| panic!("{e:?} on {text:?}"));
            assert_eq!(depth_of(&root), MAX_DEPTH, "{text:?}");
        }
        for text in nested(MAX_DEPTH + 1) {
            let err = parse(&text).unwrap_err();
            assert!(err.message.contains("nesting deeper than 64"), "{err:?}");
            assert!(err.line.is_some(), "{err:?}");
        }
        // The indented styles name the line of the level too many.
        let err = parse(&nested(MAX_DEPTH + 1)[3]).unwrap_err();
        assert_eq!(err.line, Some(MAX_DEPTH + 1), "{err:?}");
    }

    #[test]
    fn sixty_kilobytes_of_block_sequence_do_not_overflow_the_stack() {
        // The input that overflowed yaml-rust2's recursive loader.
        let text = "- ".repeat(30_000) + "x";
        assert_eq!(text.len(), 60_001);
        let err = parse(&text).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert_eq!(err.column, Some(2 * MAX_DEPTH + 1), "{err:?}");
        for text in nested(30_000) {
            assert!(parse(&text).is_err());
        }
        // Brackets inside strings are text, not nesting.
        let root = parse(&format!("a: \"{}\"\n", "[".repeat(1000))).unwrap();
        assert_eq!(depth_of(&root), 1);
    }

    #[test]
    fn aliases_cannot_nest_deeper_than_the_limit() {
        let half = MAX_DEPTH / 2;
        let text = |around: usize| {
            format!(
                "a: &a {}x{}\nb: {}*a{}\n",
                "[".repeat(half),
                "]".repeat(half),
                "[".repeat(around),
                "]".repeat(around)
            )
        };
        // The root mapping, `around` lists, then the anchor's `half`: at the limit.
        let root = parse(&text(half - 1)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(depth_of(&root), MAX_DEPTH);
        // One more: rejected at the alias, before it is copied in.
        let err = parse(&text(half)).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{err:?}");
        assert_eq!(err.line, Some(2), "{err:?}");
    }

    #[test]
    fn hostile_input_is_rejected() {
        assert!(parse(&"[".repeat(10_000)).is_err());
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = (b'a' + i - 1) as char;
            let cur = (b'a' + i) as char;
            laughs.push_str(&format!("{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(parse(&laughs).unwrap_err().message.contains("too many"));
    }
}
