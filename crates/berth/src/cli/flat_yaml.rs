//! Reading the CLI's config.yaml: one mapping of keys to single values, with the line of every
//! value so that an error can say where it is.
//!
//! The file is small and flat, so the event parser (`saphyr-parser`, already in the build for
//! the server's configuration) is read directly instead of adding a deserializer to the build.

use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A value of the mapping and the line (1-based) it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub line: usize,
}

/// Why the text is not a flat mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    pub reason: String,
}

/// The keys and values of `text`. An empty document is an empty mapping; `null` values (`~`,
/// `null`, nothing) are left out.
pub fn read(text: &str) -> Result<BTreeMap<String, Value>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut values = BTreeMap::new();
    let mut depth = 0_usize;
    let mut documents = 0_usize;
    let mut key: Option<(String, usize)> = None;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| YamlError {
            line: e.marker().line(),
            reason: e.info().to_owned(),
        })?;
        let line = span.start.line();
        let shape = |what: &str| YamlError {
            line,
            reason: format!("expected `key: value` lines, found {what}"),
        };
        match event {
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentEnd
            | Event::SequenceEnd
            | Event::Nothing => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        line,
                        reason: "more than one document".into(),
                    });
                }
            }
            Event::MappingStart(..) if depth == 0 => depth = 1,
            Event::MappingStart(..) => return Err(shape("a nested mapping")),
            Event::SequenceStart(..) => return Err(shape("a list")),
            Event::Alias(_) => return Err(shape("an alias")),
            Event::MappingEnd => depth = 0,
            Event::Scalar(text, style, _, _) if depth == 1 => match key.take() {
                None => key = Some((text.into_owned(), line)),
                Some((name, _)) => {
                    if values.contains_key(&name) {
                        return Err(YamlError {
                            line,
                            reason: format!("{name} is given twice"),
                        });
                    }
                    let null = style == ScalarStyle::Plain
                        && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                    if !null {
                        values.insert(
                            name,
                            Value {
                                text: text.into_owned(),
                                line,
                            },
                        );
                    }
                }
            },
            Event::Scalar(..) => return Err(shape("a single value")),
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_values_and_lines() {
        let text = "# comment\nserver: http://h:1\nclient_id: 'abc'\nempty: ~\n\ntoken: \"x y\"\n";
        let values = read(text).unwrap();
        assert_eq!(values["server"].text, "http://h:1");
        assert_eq!(values["server"].line, 2);
        assert_eq!(values["client_id"].text, "abc");
        assert_eq!(values["token"].line, 6);
        assert!(!values.contains_key("empty"));
        assert!(read("").unwrap().is_empty());
        assert!(read("# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn anything_but_a_flat_mapping_is_refused_with_its_line() {
        let cases = [
            ("server: [a, b]\n", 1, "a list"),
            ("a: 1\nb:\n  c: 2\n", 3, "a nested mapping"),
            ("just text\n", 1, "a single value"),
            ("a: 1\na: 2\n", 2, "twice"),
            ("a: &x 1\nb: *x\n", 2, "alias"),
            ("a: 1\n---\nb: 2\n", 2, "more than one document"),
        ];
        for (text, line, why) in cases {
            let err = read(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err:?}");
            assert!(err.reason.contains(why), "{text:?}: {err:?}");
        }
        let err = read("a: 1\nb: \"unterminated\n\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        let err = read("server: http://h\n  bad indent: x\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
    }
}
