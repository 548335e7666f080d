//! Filters: each value is checked against its column's type and becomes a bound parameter.

use berth_types::fleet::is_label;
use serde_json::Value;
use uuid::Uuid;

use super::plan::{Bind, Sql};
use super::schema::{Column, Kind, Table};
use super::{FilterOp, TableFilter, invalid};
use crate::{StoreError, timestamp};

const MAX_IN_VALUES: usize = 100;
const MAX_TEXT_VALUE: usize = 1024;

/// A checked condition on one column.
#[derive(Debug)]
pub(crate) enum Condition {
    IsNull(&'static Column),
    Compare(&'static Column, &'static str, Bind),
    In {
        column: &'static Column,
        values: Vec<Bind>,
        or_null: bool,
    },
    /// A tags column holds a tag: the bound value is a `LIKE` pattern (see [`has_pattern`]).
    Has(&'static Column, Bind),
}

/// The `LIKE` pattern (with `\` as the escape character) of a tags column holding `tag`:
/// tags are stored as `,a,b,`, so `%,tag,%`, with `\`, `%` and `_` in the tag escaped so they
/// match only themselves (`_` is a tag character; the others cannot be in one, but stay
/// harmless should a caller pass them).
pub(crate) fn has_pattern(tag: &str) -> String {
    let mut pattern = String::with_capacity(tag.len() + 4);
    pattern.push_str("%,");
    for c in tag.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(",%");
    pattern
}

/// Tags as a tags column stores them: `,a,b,`, or empty text for none.
pub(crate) fn tags_text<S: AsRef<str>>(tags: &[S]) -> String {
    if tags.is_empty() {
        return String::new();
    }
    let mut text = String::from(",");
    for tag in tags {
        text.push_str(tag.as_ref());
        text.push(',');
    }
    text
}

/// Renders `column LIKE $n ESCAPE '\'`: the same on SQLite and PostgreSQL (whose
/// `standard_conforming_strings`, on by default since 9.1, reads `'\'` as one backslash).
/// SQLite's `LIKE` folds ASCII case and PostgreSQL's does not; tags and `has` values are
/// lowercase, so both give the same rows.
pub(crate) fn render_like(sql: &mut Sql, column: &str, pattern: Bind) {
    sql.push(column);
    sql.push(" LIKE ");
    sql.bind(pattern);
    sql.push(" ESCAPE '\\'");
}

/// Checks that `value` fits `column` and converts it; `None` is JSON `null` (allowed only for
/// nullable columns). `what` names where the value came from, for the error message.
pub(crate) fn typed_value(
    column: &Column,
    value: &Value,
    what: &str,
) -> Result<Option<Bind>, StoreError> {
    let wrong = |expected: &str| {
        invalid(format!(
            "{what} value for column {:?} must be {expected}, not {}",
            column.name,
            short(value)
        ))
    };
    if value.is_null() {
        return if column.nullable {
            Ok(None)
        } else {
            Err(invalid(format!(
                "{what} value for column {:?} cannot be null: the column is never empty",
                column.name
            )))
        };
    }
    let bind = match column.kind {
        Kind::Uuid => value
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(Bind::Uuid)
            .ok_or_else(|| wrong("a UUID string"))?,
        Kind::Text => match value.as_str() {
            Some(s) if s.len() <= MAX_TEXT_VALUE || what == "cursor" => Bind::Text(s.to_owned()),
            Some(_) => {
                return Err(invalid(format!(
                    "{what} value for column {:?} is longer than {MAX_TEXT_VALUE} bytes",
                    column.name
                )));
            }
            None => return Err(wrong("a string")),
        },
        Kind::Enum(names) => match value.as_str() {
            Some(s) if names.contains(&s) => Bind::Text(s.to_owned()),
            _ => return Err(wrong(&format!("one of {}", names.join(", ")))),
        },
        Kind::Time => value
            .as_str()
            .and_then(timestamp::parse_rfc3339)
            .filter(|t| (1..=9999).contains(&t.year()))
            .map(Bind::Time)
            .ok_or_else(|| wrong("an RFC 3339 timestamp string"))?,
        Kind::Bool => value
            .as_bool()
            .map(Bind::Bool)
            .ok_or_else(|| wrong("true or false"))?,
        Kind::Int => value
            .as_i64()
            .map(Bind::Int)
            .ok_or_else(|| wrong("an integer"))?,
        Kind::Json => {
            return Err(invalid(format!(
                "column {:?} holds JSON documents and cannot be filtered or sorted on",
                column.name
            )));
        }
        // Only a cursor carries a whole tag list (the row's value); filters use `has`.
        Kind::Tags => {
            let tags = value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|t| t.as_str().filter(|t| is_label(t)))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| wrong("an array of tags"))?;
            Bind::Text(tags_text(&tags))
        }
    };
    Ok(Some(bind))
}

/// A bounded rendering of a hostile value for error messages.
pub(crate) fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

pub(crate) fn condition(
    table: &'static Table,
    filter: &TableFilter,
) -> Result<Condition, StoreError> {
    let column = table.lookup(&filter.column)?;
    let what = "filter";
    if column.kind == Kind::Tags && filter.op != FilterOp::Has {
        return Err(invalid(format!(
            "column {:?} holds lists of tags: filter it with \"has\" and one tag",
            column.name
        )));
    }
    let comparison = match filter.op {
        FilterOp::Has => {
            if column.kind != Kind::Tags {
                return Err(invalid(format!(
                    "filter \"has\" applies to lists of tags (machines.tags, operations.machines), \
                     not to column {:?}",
                    column.name
                )));
            }
            return match filter.value.as_str() {
                Some(tag) if is_label(tag) => {
                    Ok(Condition::Has(column, Bind::Text(has_pattern(tag))))
                }
                _ => Err(invalid(format!(
                    "filter \"has\" on column {:?} needs one tag (a-z, 0-9, '_', '.' and '-', \
                     starting with a letter or a digit, at most 63), not {}",
                    column.name,
                    short(&filter.value)
                ))),
            };
        }
        FilterOp::Eq => {
            return Ok(match typed_value(column, &filter.value, what)? {
                None => Condition::IsNull(column),
                Some(value) => Condition::Compare(column, "=", value),
            });
        }
        FilterOp::In => {
            let items = filter.value.as_array().ok_or_else(|| {
                invalid(format!(
                    "filter \"in\" on column {:?} needs an array of values",
                    column.name
                ))
            })?;
            if items.len() > MAX_IN_VALUES {
                return Err(invalid(format!(
                    "filter \"in\" on column {:?} has {} values, at most {MAX_IN_VALUES} are allowed",
                    column.name,
                    items.len()
                )));
            }
            let mut values = Vec::with_capacity(items.len());
            let mut or_null = false;
            for item in items {
                match typed_value(column, item, what)? {
                    Some(value) => values.push(value),
                    None => or_null = true,
                }
            }
            return Ok(Condition::In {
                column,
                values,
                or_null,
            });
        }
        FilterOp::Gt => ">",
        FilterOp::Lt => "<",
        FilterOp::Gte => ">=",
        FilterOp::Lte => "<=",
    };
    if matches!(column.kind, Kind::Bool | Kind::Enum(_)) {
        return Err(invalid(format!(
            "column {:?} can only be compared with \"eq\" and \"in\"",
            column.name
        )));
    }
    match typed_value(column, &filter.value, what)? {
        Some(value) => Ok(Condition::Compare(column, comparison, value)),
        None => Err(invalid(format!(
            "filter on column {:?} compares with null; use \"eq\" with null to find empty values",
            column.name
        ))),
    }
}

pub(crate) fn render_condition(sql: &mut Sql, condition: &Condition) {
    match condition {
        Condition::IsNull(column) => {
            sql.push(column.sql);
            sql.push(" IS NULL");
        }
        Condition::Has(column, pattern) => render_like(sql, column.sql, pattern.clone()),
        Condition::Compare(column, op, value) => {
            sql.push(column.sql);
            sql.push(" ");
            sql.push(op);
            sql.push(" ");
            sql.bind(value.clone());
        }
        Condition::In {
            column,
            values,
            or_null,
        } => {
            sql.push("(");
            if values.is_empty() {
                sql.push("1 = 0");
            } else {
                sql.push(column.sql);
                sql.push(" IN (");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.bind(value.clone());
                }
                sql.push(")");
            }
            if *or_null {
                sql.push(" OR ");
                sql.push(column.sql);
                sql.push(" IS NULL");
            }
            sql.push(")");
        }
    }
}
