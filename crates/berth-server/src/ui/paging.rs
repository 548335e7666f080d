//! What the admin pages that page through a table query share: the query from the page's
//! form (text fields, a day range, the cursor), and the query string of the next page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_types::api::{FilterOp, SortKey, TableFilter, TableQuery, TableResult};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::Viewer;
use crate::extract::Json;
use crate::state::AppState;

/// Rows a page shows at once.
const PAGE: u32 = 50;

/// What an admin page asks of its table.
pub(crate) struct PageQuery<'a> {
    pub(crate) table: &'static str,
    /// Sorted on this column, newest (largest) first.
    pub(crate) sort: &'static str,
    /// The time column the form's `from` and `to` days filter.
    pub(crate) time: &'static str,
    /// Equality filters from the form: (column, form field, value); blank values filter
    /// nothing.
    pub(crate) text: &'a [(&'static str, &'static str, &'a str)],
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) cursor: &'a str,
}

/// One page of `query.table` as `viewer` may see it, and the query string of the next page
/// (empty on the last). A malformed form field is a 400 page that says which.
pub(crate) async fn fetch(
    state: AppState,
    viewer: &Viewer,
    query: &PageQuery<'_>,
) -> Result<(TableResult, String), Response> {
    let mut filters: Vec<TableFilter> = query
        .text
        .iter()
        .filter_map(|(column, _, value)| text_filter(column, value))
        .collect();
    filters.extend(
        date_filters(query.time, query.from, query.to)
            .map_err(|message| super::error_page(StatusCode::BAD_REQUEST, &message))?,
    );
    let table = TableQuery {
        table: query.table.to_owned(),
        columns: Vec::new(),
        filters,
        sort: vec![SortKey {
            column: query.sort.to_owned(),
            desc: true,
        }],
        limit: Some(PAGE),
        cursor: (!query.cursor.is_empty()).then(|| query.cursor.to_owned()),
    };
    let Json(result) = crate::tables::query(State(state), viewer.auth(), Json(table))
        .await
        .map_err(|e| super::api_error_page(&e))?;
    let mut fields: Vec<(&str, &str)> = query.text.iter().map(|(_, f, v)| (*f, *v)).collect();
    fields.extend([("from", query.from), ("to", query.to)]);
    let next = next_page(&fields, result.next_cursor.as_deref());
    Ok((result, next))
}

/// A cell of a table query's row as page text: strings as they are, null as nothing.
pub(crate) fn text(row: &Map<String, Value>, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Filters on `column` (a time) from the form's `from` and `to` days, both inclusive. Empty
/// fields filter nothing; anything but a date is refused with a message for the page.
fn date_filters(column: &str, from: &str, to: &str) -> Result<Vec<TableFilter>, String> {
    let mut filters = Vec::new();
    for (value, field, op, next_day) in [
        (from, "from", FilterOp::Gte, false),
        (to, "to", FilterOp::Lt, true),
    ] {
        if let Some(at) = day_start(value, field, next_day)? {
            let at = at
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("{field}: {e}"))?;
            filters.push(TableFilter {
                column: column.to_owned(),
                op,
                value: json!(at),
            });
        }
    }
    Ok(filters)
}

/// The start (00:00 UTC) of the day a form's date field names (`YYYY-MM-DD`), or of the day
/// after it (`next_day`, for the end of an inclusive range). Blank is none; anything but a date
/// is refused with a message that names `field`.
pub(super) fn day_start(
    value: &str,
    field: &str,
    next_day: bool,
) -> Result<Option<OffsetDateTime>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(value, format)
        .map_err(|_| format!("{field}: give a date as YYYY-MM-DD"))?;
    let date = if next_day {
        date.next_day().unwrap_or(date)
    } else {
        date
    };
    Ok(Some(date.midnight().assume_utc()))
}

/// An equality filter on `column` unless `value` is blank.
fn text_filter(column: &str, value: &str) -> Option<TableFilter> {
    let value = value.trim();
    (!value.is_empty()).then(|| TableFilter {
        column: column.to_owned(),
        op: FilterOp::Eq,
        value: json!(value),
    })
}

/// The query string of the next page: the form's fields and the cursor, percent-encoded.
/// Empty when there is no next page.
pub(super) fn next_page(fields: &[(&str, &str)], cursor: Option<&str>) -> String {
    let Some(cursor) = cursor else {
        return String::new();
    };
    let mut url = String::new();
    for (k, v) in fields.iter().copied().chain([("cursor", cursor)]) {
        url.push_str(&format!("{k}={}&", encode(v)));
    }
    url
}

/// Percent-encodes a query value.
pub(super) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_days_and_junk_is_refused() {
        let filters = date_filters("at", "2026-01-31", "2026-02-28").unwrap();
        assert_eq!(filters[0].value, json!("2026-01-31T00:00:00Z"));
        assert_eq!(filters[0].op, FilterOp::Gte);
        assert_eq!(
            filters[1].value,
            json!("2026-03-01T00:00:00Z"),
            "to is inclusive"
        );
        assert_eq!(filters[1].op, FilterOp::Lt);
        assert!(date_filters("at", "", "").unwrap().is_empty());
        for bad in ["yesterday", "2026-13-01", "2026-1-1", "' OR 1=1"] {
            assert!(date_filters("at", bad, "").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_page_keeps_the_filters_encoded() {
        assert_eq!(next_page(&[("user", "a&b")], None), "");
        assert_eq!(
            next_page(&[("user", "a&b c"), ("from", "")], Some("c/1=")),
            "user=a%26b%20c&from=&cursor=c%2F1%3D&"
        );
        assert!(text_filter("actor", "  ").is_none());
        assert_eq!(text_filter("actor", " ann ").unwrap().value, json!("ann"));
    }
}
