//! Page cursors: the last row's sort-key values, so the next page starts strictly after that
//! row (keyset pagination). Unlike an offset, this stays correct while rows are inserted or
//! deleted between fetches: no row is seen twice and none that existed throughout is skipped.
//!
//! A cursor is base64url of a small JSON document naming the table and the sort it was made
//! for. It is opaque to clients but not secret or signed: a forged cursor can only move the
//! starting point of a query the caller was allowed to run anyway, and its values are checked
//! and bound like filter values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::filters::typed_value;
use super::plan::{Bind, Sql};
use super::schema::{Column, Table};
use crate::StoreError;

/// Longer cursors are refused before decoding.
const MAX_CURSOR_LEN: usize = 16 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    /// The table.
    t: String,
    /// The sort it was made for: (column, descending).
    s: Vec<(String, bool)>,
    /// The last row's values of those columns.
    k: Vec<Value>,
}

pub(crate) fn encode(table: &Table, order: &[(&'static Column, bool)], keys: Vec<Value>) -> String {
    let doc = Document {
        t: table.name.to_owned(),
        s: order.iter().map(|(c, d)| (c.name.to_owned(), *d)).collect(),
        k: keys,
    };
    // Serializing strings, bools and JSON values cannot fail.
    let json = serde_json::to_vec(&doc).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The sort-key values of the row the cursor points after; `None` is a null value.
pub(crate) fn decode(
    text: &str,
    table: &Table,
    order: &[(&'static Column, bool)],
) -> Result<Vec<Option<Bind>>, StoreError> {
    let malformed = || StoreError::InvalidQuery("malformed cursor".to_owned());
    if text.len() > MAX_CURSOR_LEN {
        return Err(malformed());
    }
    let json = URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed())?;
    let doc: Document = serde_json::from_slice(&json).map_err(|_| malformed())?;
    let same_sort = doc.s.len() == order.len()
        && doc
            .s
            .iter()
            .zip(order)
            .all(|((name, desc), (column, d))| name == column.name && desc == d);
    if doc.t != table.name || !same_sort {
        return Err(StoreError::InvalidQuery(
            "the cursor belongs to a query with another table or sort".to_owned(),
        ));
    }
    if doc.k.len() != order.len() {
        return Err(malformed());
    }
    doc.k
        .iter()
        .zip(order)
        .map(|(value, (column, _))| typed_value(column, value, "cursor"))
        .collect()
}

/// Rows strictly after the cursor in the order `ORDER BY` gives, where null is the lowest
/// value (first ascending, last descending):
/// `after(k1) OR (equal(k1) AND (after(k2) OR (equal(k2) AND ...)))`.
pub(crate) fn render_keyset(
    sql: &mut Sql,
    order: &[(&'static Column, bool)],
    after: &[Option<Bind>],
) {
    let (Some(&(column, desc)), Some(value)) = (order.first(), after.first()) else {
        sql.push("1 = 0");
        return;
    };
    let name = column.sql;
    let more = order.len() > 1;
    sql.push("(");
    let mut has_after = true;
    match (value, desc) {
        (None, false) => {
            sql.push(name);
            sql.push(" IS NOT NULL");
        }
        (None, true) => has_after = false,
        (Some(v), false) => {
            sql.push(name);
            sql.push(" > ");
            sql.bind(v.clone());
        }
        (Some(v), true) => {
            sql.push("(");
            sql.push(name);
            sql.push(" < ");
            sql.bind(v.clone());
            if column.nullable {
                sql.push(" OR ");
                sql.push(name);
                sql.push(" IS NULL");
            }
            sql.push(")");
        }
    }
    if more {
        if has_after {
            sql.push(" OR ");
        }
        sql.push("(");
        sql.push(name);
        match value {
            None => sql.push(" IS NULL"),
            Some(v) => {
                sql.push(" = ");
                sql.bind(v.clone());
            }
        }
        sql.push(" AND ");
        render_keyset(sql, &order[1..], &after[1..]);
        sql.push(")");
    } else if !has_after {
        sql.push("1 = 0");
    }
    sql.push(")");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::schema;
    use time::OffsetDateTime;
    use uuid::Uuid;

    #[test]
    fn keyset_follows_null_ordering() {
        let table = schema::table("workspaces").unwrap();
        let order = [
            (table.column("expires_at").unwrap(), true),
            (table.column("id").unwrap(), false),
        ];
        let mut sql = Sql::default();
        render_keyset(&mut sql, &order, &[None, Some(Bind::Uuid(Uuid::nil()))]);
        assert_eq!(sql.text, "((expires_at IS NULL AND (id > $1)))");
        let mut sql = Sql::default();
        let at = OffsetDateTime::UNIX_EPOCH;
        render_keyset(
            &mut sql,
            &order,
            &[Some(Bind::Time(at)), Some(Bind::Uuid(Uuid::nil()))],
        );
        assert_eq!(
            sql.text,
            "((expires_at < $1 OR expires_at IS NULL) OR (expires_at = $2 AND (id > $3)))"
        );
    }
}
