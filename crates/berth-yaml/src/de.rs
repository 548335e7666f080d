//! A serde `Deserializer` over the line-aware tree that reports every error, not just the first.
//!
//! serde stops a struct at its first bad field. To report them all, [`from_node`] records each
//! error with its line and path, then deserializes the document again with the offending entry
//! left out, until it goes through. Unknown and duplicate keys are recorded and skipped without
//! a retry. A missing field that is missing only because its bad value was left out is not
//! reported twice.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use crate::FileError;
use crate::path::Path;
use crate::scalar::{Plain, resolve};
use crate::tree::{Kind, Node};

/// Errors reported per file before giving up; a file this broken needs a look anyway.
const MAX_ERRORS: usize = 100;

/// The error type threaded through serde; the real report is in [`Ctx`].
#[derive(Debug)]
pub struct Error {
    message: String,
    missing: Option<&'static str>,
    /// The node to leave out on the next attempt, once the error has been recorded.
    culprit: Option<u32>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            missing: None,
            culprit: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            message: format!("missing field \"{field}\""),
            missing: Some(field),
            culprit: None,
        }
    }
}

struct Ctx {
    file: String,
    errors: RefCell<Vec<FileError>>,
    excluded: HashSet<u32>,
}

impl Ctx {
    fn record(&self, line: usize, path: &Path<'_>, message: impl Into<String>) {
        let error = FileError::new(self.file.clone(), Some(line), path.to_string(), message);
        let mut errors = self.errors.borrow_mut();
        if errors.len() < MAX_ERRORS && !errors.contains(&error) {
            errors.push(error);
        }
    }

    fn fail(&self, node: &Node, path: &Path<'_>, message: impl Into<String>) -> Error {
        let message = message.into();
        self.record(node.line, path, message.clone());
        Error {
            message,
            missing: None,
            culprit: Some(node.id),
        }
    }

    /// Records an error raised by a visitor at `node`, unless a deeper node already did.
    fn locate(&self, error: Error, node: &Node, path: &Path<'_>) -> Error {
        if error.culprit.is_some() {
            return error;
        }
        self.record(node.line, path, error.message.clone());
        Error {
            culprit: Some(node.id),
            ..error
        }
    }

    fn excluded(&self, node: &Node) -> bool {
        self.excluded.contains(&node.id)
    }
}

/// The outcome of [`from_node`].
#[derive(Debug)]
pub struct Outcome<T> {
    /// `None` when the document as a whole could not be read. It may be `Some` with errors,
    /// with the bad parts left out, so that later checks still see the rest.
    pub value: Option<T>,
    pub errors: Vec<FileError>,
    /// The nodes left out of `value`: to pair typed list items with their nodes again.
    pub excluded: HashSet<u32>,
}

/// Deserializes `root` into `T`, collecting every error of the file.
pub fn from_node<T: DeserializeOwned>(file: &str, root: &Node) -> Outcome<T> {
    let mut ctx = Ctx {
        file: file.to_owned(),
        errors: RefCell::new(Vec::new()),
        excluded: HashSet::new(),
    };
    loop {
        let result = T::deserialize(De {
            node: root,
            path: Path::Root,
            ctx: &ctx,
        });
        let error = match result {
            Ok(value) => {
                return Outcome {
                    value: Some(value),
                    errors: ctx.errors.into_inner(),
                    excluded: ctx.excluded,
                };
            }
            Err(error) => ctx.locate(error, root, &Path::Root),
        };
        let culprit = error.culprit.unwrap_or(root.id);
        let full = ctx.errors.borrow().len() >= MAX_ERRORS;
        if culprit == root.id || full || !ctx.excluded.insert(culprit) {
            let mut errors = ctx.errors.into_inner();
            if full {
                errors.push(FileError::new(
                    file,
                    None,
                    "",
                    format!("stopped after {MAX_ERRORS} errors"),
                ));
            }
            return Outcome {
                value: None,
                errors,
                excluded: ctx.excluded,
            };
        }
    }
}

struct De<'a> {
    node: &'a Node,
    path: Path<'a>,
    ctx: &'a Ctx,
}

macro_rules! integer {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let value = match self.plain() {
                Some(Plain::Int(i)) => i,
                _ => return Err(self.fail(format!("expected a whole number, found {}", self.node.describe()))),
            };
            match <$ty>::try_from(value) {
                Ok(v) => self.visited(visitor.$visit(v)),
                Err(_) => Err(self.fail(format!(
                    "expected a whole number from {} to {}, found {value}", <$ty>::MIN, <$ty>::MAX
                ))),
            }
        }
    )*};
}

impl<'a> De<'a> {
    fn fail(&self, message: impl Into<String>) -> Error {
        self.ctx.fail(self.node, &self.path, message)
    }

    fn visited<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| self.ctx.locate(e, self.node, &self.path))
    }

    /// The scalar read with the core schema, or `None` for collections. Quoted scalars are
    /// always strings.
    fn plain(&self) -> Option<Plain> {
        match &self.node.kind {
            Kind::Scalar(s) if s.plain => Some(resolve(&s.text)),
            Kind::Scalar(_) => Some(Plain::Str),
            _ => None,
        }
    }

    fn text(&self) -> Option<&'a str> {
        match &self.node.kind {
            Kind::Scalar(s) if !self.node.is_null() => Some(&s.text),
            _ => None,
        }
    }

    fn map<'de, V: Visitor<'de>>(
        self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let entries: &[(Node, Node)] = match &self.node.kind {
            Kind::Map(entries) => entries,
            _ if self.node.is_null() => &[],
            _ => {
                return Err(self.fail(format!(
                    "expected a mapping (`key: value` lines), found {}",
                    self.node.describe()
                )));
            }
        };
        let left_out: Vec<&str> = entries
            .iter()
            .filter(|(k, v)| self.ctx.excluded(k) || self.ctx.excluded(v))
            .filter_map(|(k, _)| k.scalar().map(|s| s.text.as_str()))
            .collect();
        let access = MapDe {
            entries: entries.iter(),
            value: None,
            path: self.path,
            ctx: self.ctx,
            fields,
            seen: HashSet::new(),
        };
        visitor.visit_map(access).map_err(|e| match e.missing {
            // The field is missing because its bad value was left out: already reported.
            Some(field) if e.culprit.is_none() && left_out.contains(&field) => Error {
                culprit: Some(self.node.id),
                ..e
            },
            _ => self.ctx.locate(e, self.node, &self.path),
        })
    }
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = Error;

    integer!(
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64,
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64
    );

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match (&self.node.kind, self.plain()) {
            (Kind::Map(_), _) => self.deserialize_map(visitor),
            (Kind::Seq(_), _) => self.deserialize_seq(visitor),
            (Kind::Scalar(s), Some(plain)) => {
                let result = match plain {
                    Plain::Null => visitor.visit_unit(),
                    Plain::Bool(b) => visitor.visit_bool(b),
                    Plain::Int(i) => match i64::try_from(i) {
                        Ok(i) => visitor.visit_i64(i),
                        Err(_) => visitor.visit_str(&s.text),
                    },
                    Plain::Float(f) => visitor.visit_f64(f),
                    Plain::Str => visitor.visit_str(&s.text),
                };
                self.visited(result)
            }
            (Kind::Scalar(_), None) => Err(self.fail("unreadable value")),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.plain() {
            Some(Plain::Bool(b)) => self.visited(visitor.visit_bool(b)),
            _ => Err(self.fail(format!(
                "expected true or false, found {}",
                self.node.describe()
            ))),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        #[allow(clippy::cast_precision_loss)] // small integers written without a decimal point
        let value = match self.plain() {
            Some(Plain::Float(f)) => f,
            Some(Plain::Int(i)) if i.abs() < (1 << 52) => i as f64,
            _ => {
                return Err(self.fail(format!("expected a number, found {}", self.node.describe())));
            }
        };
        self.visited(visitor.visit_f64(value))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut chars = self.text().unwrap_or_default().chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => self.visited(visitor.visit_char(c)),
            _ => Err(self.fail(format!(
                "expected one character, found {}",
                self.node.describe()
            ))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.text() {
            Some(text) => self.visited(visitor.visit_str(text)),
            None => Err(self.fail(format!("expected a string, found {}", self.node.describe()))),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(self.fail("binary values are not supported"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            self.visited(visitor.visit_none())
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            self.visited(visitor.visit_unit())
        } else {
            Err(self.fail(format!(
                "expected nothing (null), found {}",
                self.node.describe()
            )))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let items: &[Node] = match &self.node.kind {
            Kind::Seq(items) => items,
            _ if self.node.is_null() => &[],
            _ => return Err(self.fail(format!("expected a list, found {}", self.node.describe()))),
        };
        let access = SeqDe {
            items: items.iter().enumerate(),
            path: self.path,
            ctx: self.ctx,
        };
        self.visited(visitor.visit_seq(access))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.map(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.map(Some(fields), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.text() {
            Some(text) if variants.contains(&text) => {
                let access: de::value::StrDeserializer<'_, Error> = text.into_deserializer();
                self.visited(visitor.visit_enum(access))
            }
            _ => Err(self.fail(format!(
                "expected one of {}, found {}",
                list(variants),
                self.node.describe()
            ))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// `"a", "b" or "c"`.
fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

struct SeqDe<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: Path<'a>,
    ctx: &'a Ctx,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((index, node)) = self.items.by_ref().find(|(_, n)| !self.ctx.excluded(n)) else {
            return Ok(None);
        };
        let path = Path::Index(&self.path, index);
        seed.deserialize(De {
            node,
            path,
            ctx: self.ctx,
        })
        .map(Some)
        .map_err(|e| self.ctx.locate(e, node, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a str, &'a Node)>,
    path: Path<'a>,
    ctx: &'a Ctx,
    /// The fields of a struct: other keys are reported and skipped.
    fields: Option<&'static [&'static str]>,
    seen: HashSet<&'a str>,
}

impl<'de> de::MapAccess<'de> for MapDe<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (key, value) in self.entries.by_ref() {
            if self.ctx.excluded(key) || self.ctx.excluded(value) {
                continue;
            }
            let text = key.scalar().map_or("", |s| s.text.as_str());
            let path = Path::Key(&self.path, text);
            if !self.seen.insert(text) {
                self.ctx
                    .record(key.line, &path, format!("duplicate key {text:?}"));
                continue;
            }
            if let Some(fields) = self.fields
                && !fields.contains(&text)
            {
                self.ctx
                    .record(key.line, &path, unknown_field(text, fields));
                continue;
            }
            self.value = Some((text, value));
            return seed
                .deserialize(De {
                    node: key,
                    path,
                    ctx: self.ctx,
                })
                .map(Some)
                .map_err(|e| self.ctx.locate(e, key, &path));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, node)) = self.value.take() else {
            return Err(de::Error::custom("a value was asked for before its key"));
        };
        let path = Path::Key(&self.path, key);
        seed.deserialize(De {
            node,
            path,
            ctx: self.ctx,
        })
        .map_err(|e| self.ctx.locate(e, node, &path))
    }
}

fn unknown_field(name: &str, fields: &[&str]) -> String {
    match crate::closest(name, fields.iter().copied()) {
        Some(close) => format!("unknown field {name:?} (did you mean {close:?}?)"),
        None if fields.is_empty() => {
            format!("unknown field {name:?}: this mapping takes no fields")
        }
        None => format!("unknown field {name:?}, expected {}", list(fields)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::tree::parse;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        #[serde(default)]
        size: u32,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        ratio: Option<f64>,
    }

    fn read(text: &str) -> (Option<Doc>, Vec<String>) {
        let root = parse("t.yaml", text).unwrap();
        let outcome = from_node::<Doc>("t.yaml", &root);
        (
            outcome.value,
            outcome.errors.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn reads_a_valid_document() {
        let (doc, errors) = read(
            "items:\n  - name: a\n    size: 0x10\n    on: true\n    tags: [x, 'y']\nenv: {A: 1, B: \"two\"}\nratio: 0.5\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let doc = doc.unwrap();
        assert_eq!(doc.items[0].size, 16);
        assert_eq!(doc.env["A"], "1");
        assert_eq!(doc.ratio, Some(0.5));
    }

    #[test]
    fn reports_every_error_with_line_and_path() {
        let text = "items:\n  - name: a\n    size: big\n    colour: red\n  - size: 3\n  - name: c\n    on: yes\n    tags: x\nratio: [1]\nextra: 1\n";
        let (doc, errors) = read(text);
        assert_eq!(
            errors,
            [
                "t.yaml:3: items[0].size: expected a whole number, found \"big\"",
                "t.yaml:4: items[0].colour: unknown field \"colour\", expected \"name\", \"size\", \"on\" or \"tags\"",
                "t.yaml:5: items[1]: missing field \"name\"",
                "t.yaml:7: items[2].on: expected true or false, found \"yes\"",
                "t.yaml:8: items[2].tags: expected a list, found \"x\"",
                "t.yaml:9: ratio: expected a number, found a list",
                "t.yaml:10: extra: unknown field \"extra\", expected \"items\", \"env\" or \"ratio\"",
            ]
        );
        // The bad parts are left out; the rest is still there for later checks.
        let doc = doc.unwrap();
        assert_eq!(doc.items.len(), 2);
        assert_eq!(doc.items[1].name, "c");
    }

    #[test]
    fn a_bad_value_is_not_also_reported_as_missing() {
        let (_, errors) = read("items:\n  - name: [x]\n");
        assert_eq!(
            errors,
            ["t.yaml:2: items[0].name: expected a string, found a list"]
        );
    }

    #[test]
    fn duplicate_keys_and_wrong_types_are_refused() {
        let (_, errors) = read("items: []\nitems: []\nenv: 3\n");
        assert_eq!(
            errors,
            [
                "t.yaml:2: items: duplicate key \"items\"",
                "t.yaml:3: env: expected a mapping (`key: value` lines), found \"3\"",
            ]
        );
    }

    #[test]
    fn quoted_numbers_are_strings_and_out_of_range_numbers_are_refused() {
        let (_, errors) = read("items:\n  - name: a\n    size: \"3\"\n  - name: b\n    size: -1\n");
        assert_eq!(
            errors,
            [
                "t.yaml:3: items[0].size: expected a whole number, found \"3\"",
                "t.yaml:5: items[1].size: expected a whole number from 0 to 4294967295, found -1",
            ]
        );
    }

    #[test]
    fn paths_quote_unusual_keys() {
        let (_, errors) = read("env:\n  \"a.b\": [1]\n");
        assert_eq!(
            errors,
            ["t.yaml:2: env[\"a.b\"]: expected a string, found a list"]
        );
    }

    #[test]
    fn null_collections_are_empty() {
        let (doc, errors) = read("items:\nenv: ~\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert!(doc.unwrap().items.is_empty());
    }
}
