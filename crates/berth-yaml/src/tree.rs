//! A YAML document as a tree of nodes that remember their line, built from the event stream of
//! `saphyr-parser` under hard limits.
//!
//! The limits are what makes hostile input cheap to refuse: nesting is checked as events arrive
//! (the parser never recurses for us), and aliases count the nodes they expand to before they
//! are copied, so a "billion laughs" document stops at the budget instead of filling memory.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::FileError;

/// The deepest nesting accepted. Berth's files need five levels; the margin is for humans.
pub const MAX_DEPTH: usize = 32;

/// The most nodes a document may hold once aliases are expanded.
pub const MAX_NODES: usize = 200_000;

/// One value of the document.
#[derive(Debug, Clone)]
pub struct Node {
    /// Unique within a document (copies made by aliases get fresh ids).
    pub id: u32,
    /// 1-based line where the value starts.
    pub line: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Scalar {
    pub text: String,
    /// Plain (unquoted) scalars may be numbers, booleans or null; quoted ones are strings.
    pub plain: bool,
    /// Character offsets of the scalar in the source, used to edit a value in place.
    pub start: usize,
    pub end: usize,
}

impl Node {
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A plain scalar that YAML reads as null: empty, `~` or `null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.plain && matches!(s.text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The value of `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar().is_some_and(|s| s.text == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The items when this node is a sequence.
    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq(items) => items,
            _ => &[],
        }
    }

    /// A short description for error messages: "a list", "a mapping", "the string \"x\"".
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Seq(_) => "a list".into(),
            Kind::Map(_) => "a mapping".into(),
            Kind::Scalar(_) if self.is_null() => "nothing (null)".into(),
            Kind::Scalar(s) => format!("{:?}", truncate(&s.text)),
        }
    }

    fn size(&self) -> usize {
        1 + match &self.kind {
            Kind::Scalar(_) => 0,
            Kind::Seq(items) => items.iter().map(Node::size).sum(),
            Kind::Map(entries) => entries.iter().map(|(k, v)| k.size() + v.size()).sum(),
        }
    }

    fn renumber(&mut self, next: &mut u32) {
        self.id = *next;
        *next += 1;
        match &mut self.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.renumber(next)),
            Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.renumber(next);
                v.renumber(next);
            }),
        }
    }
}

/// At most 60 characters of `text`, for messages.
pub fn truncate(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder {
    file: String,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    next_id: u32,
    documents: usize,
}

/// Parses `text` into its single document. An empty file (or one holding only comments) is an
/// empty mapping, so that every section takes its defaults.
pub fn parse(file: &str, text: &str) -> Result<Node, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder {
        file: file.to_owned(),
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        nodes: 0,
        next_id: 0,
        documents: 0,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            FileError::new(
                file,
                Some(e.marker().line()),
                "",
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        builder.event(event, span)?;
    }
    match builder.root.take() {
        Some(root) => Ok(root),
        None => Ok(Node {
            id: builder.next_id,
            line: 1,
            kind: Kind::Map(Vec::new()),
        }),
    }
}

impl Builder {
    fn error(&self, line: usize, message: impl Into<String>) -> FileError {
        FileError::new(self.file.clone(), Some(line), "", message)
    }

    fn count(&mut self, n: usize, line: usize) -> Result<(), FileError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(self.error(
                line,
                format!(
                    "the document holds more than {MAX_NODES} values once its aliases are \
                     expanded; refusing it (aliases that multiply, a \"billion laughs\", look \
                     like this)"
                ),
            ));
        }
        Ok(())
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), FileError> {
        let line = span.start.line();
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.error(
                        line,
                        "a configuration file holds one YAML document; remove the second `---`",
                    ));
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                if tag.is_some() {
                    return Err(self.error(
                        line,
                        "YAML tags (`!!str`, `!thing`) are not supported; quote the value instead",
                    ));
                }
                self.count(1, line)?;
                let node = Node {
                    id: self.id(),
                    line,
                    kind: Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        start: span.start.index(),
                        end: span.end.index(),
                    }),
                };
                self.remember(anchor, &node, line)?;
                self.push(node)
            }
            Event::SequenceStart(anchor, tag) => self.open(
                line,
                tag.is_some(),
                Frame::Seq {
                    line,
                    anchor,
                    items: Vec::new(),
                },
            ),
            Event::MappingStart(anchor, tag) => self.open(
                line,
                tag.is_some(),
                Frame::Map {
                    line,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                },
            ),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                    }) => (
                        Node {
                            id: self.id(),
                            line,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        line,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            id: self.id(),
                            line,
                            kind: Kind::Map(entries),
                        },
                        anchor,
                    ),
                    None => return Err(self.error(line, "invalid YAML: unbalanced collection")),
                };
                self.remember(anchor, &node, line)?;
                self.push(node)
            }
            Event::Alias(anchor) => {
                let Some((node, size)) = self.anchors.get(&anchor) else {
                    return Err(self.error(line, "invalid YAML: alias to an unknown anchor"));
                };
                let (mut node, size) = (node.clone(), *size);
                self.count(size, line)?;
                let mut next = self.next_id + 1;
                node.renumber(&mut next);
                self.next_id = next - 1;
                self.push(node)
            }
        }
    }

    fn open(&mut self, line: usize, tagged: bool, frame: Frame) -> Result<(), FileError> {
        if tagged {
            return Err(self.error(line, "YAML tags (`!!map`, `!thing`) are not supported"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(
                line,
                format!(
                    "values are nested more than {MAX_DEPTH} levels deep; refusing the document"
                ),
            ));
        }
        self.count(1, line)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Keeps a copy of an anchored node for its aliases; the copy counts against the budget too.
    fn remember(&mut self, anchor: usize, node: &Node, line: usize) -> Result<(), FileError> {
        if anchor == 0 {
            return Ok(());
        }
        let size = node.size();
        self.count(size, line)?;
        self.anchors.insert(anchor, (node.clone(), size));
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), FileError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, .. }) => {
                match key.take() {
                    Some(k) => entries.push((k, node)),
                    None if node.scalar().is_some() => *key = Some(node),
                    None => {
                        let line = node.line;
                        return Err(self.error(
                            line,
                            "a mapping key must be a plain string, not a list or mapping",
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lines_of_keys_and_values() {
        let root = parse("t.yaml", "# c\na: 1\nb:\n  - x\n  - y: 2\n").unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!()
        };
        assert_eq!(entries[0].0.line, 2);
        assert_eq!(entries[1].1.line, 4);
        assert_eq!(entries[1].1.items()[1].line, 5);
        assert_eq!(root.get("a").unwrap().scalar().unwrap().text, "1");
    }

    #[test]
    fn empty_documents_are_empty_mappings() {
        for text in ["", "# only a comment\n", "\u{feff}"] {
            let root = parse("t.yaml", text).unwrap();
            assert!(
                matches!(&root.kind, Kind::Map(e) if e.is_empty()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn aliases_are_copied_with_fresh_ids() {
        let root = parse("t.yaml", "a: &x [1, 2]\nb: *x\n").unwrap();
        let (a, b) = (root.get("a").unwrap(), root.get("b").unwrap());
        assert_eq!(b.items().len(), 2);
        assert_ne!(a.id, b.id);
        assert_ne!(a.items()[0].id, b.items()[0].id);
    }

    #[test]
    fn refuses_syntax_errors_with_their_line() {
        let e = parse("t.yaml", "a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert_eq!(e.file, "t.yaml");
        assert!(
            e.line.is_some() && e.message.starts_with("invalid YAML"),
            "{e}"
        );
    }

    #[test]
    fn refuses_tags_and_several_documents() {
        assert!(
            parse("t.yaml", "a: !!str 1\n")
                .unwrap_err()
                .message
                .contains("tags")
        );
        let e = parse("t.yaml", "a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("one YAML document"), "{e}");
    }

    #[test]
    fn refuses_complex_keys() {
        let e = parse("t.yaml", "? [a, b]\n: c\n").unwrap_err();
        assert!(e.message.contains("mapping key"), "{e}");
    }
}
