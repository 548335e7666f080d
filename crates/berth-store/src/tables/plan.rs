//! Turns a [`TableQuery`] into SQL text with `$n` placeholders plus typed values to bind.
//!
//! Everything spliced into the SQL text comes from the static whitelist in [`super::schema`];
//! everything the caller supplied travels as a bound parameter. Both backends accept the same
//! text (SQLite understands `$n` placeholders), so one plan serves both.

use std::fmt::Write as _;

use berth_types::MachineSelector;
use serde_json::{Map, Value};

use super::cursor::{self, render_keyset};
use super::filters::{Condition, condition, has_pattern, render_condition, render_like, short};
use super::schema::{self, Column, Kind, Scope, Table};
use super::{DEFAULT_LIMIT, MAX_LIMIT, TableQuery, TableResult, TableScope, invalid};
use crate::StoreError;

const MAX_FILTERS: usize = 32;
const MAX_SORT_KEYS: usize = 4;

pub(crate) use crate::db::Bind;

/// SQL text and the values for its `$1`, `$2`, ... in order.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub(crate) fn bind(&mut self, value: Bind) {
        self.binds.push(value);
        let _ = write!(self.text, "${}", self.binds.len());
    }
}

/// A checked query, ready to run.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Fetches one row more than the limit, to know whether there is a next page.
    pub select: Sql,
    /// Counts every row matching the filters and scope.
    pub count: Sql,
    /// The columns of `select`, in order: decode each row's values by their kind.
    pub fetched: Vec<&'static Column>,
    table: &'static Table,
    output: Vec<&'static Column>,
    order: Vec<(&'static Column, bool)>,
    limit: usize,
}

fn render_where(
    sql: &mut Sql,
    table: &Table,
    scope: Option<&TableScope>,
    conditions: &[Condition],
) {
    sql.push(" WHERE 1 = 1");
    if let Some(scope) = scope {
        sql.push(" AND ");
        render_scope(sql, table, scope);
    }
    for condition in conditions {
        sql.push(" AND ");
        render_condition(sql, condition);
    }
}

/// The rows a user may see: their own, or the machines their selectors pick (none without
/// selectors).
fn render_scope(sql: &mut Sql, table: &Table, scope: &TableScope) {
    let sql_name = |name: &'static str| table.column(name).map_or(name, |c| c.sql);
    match table.scope {
        Scope::Owner(owner) => {
            sql.push(sql_name(owner));
            sql.push(" = ");
            sql.bind(Bind::Text(scope.user.as_str().to_owned()));
        }
        Scope::Selectors { id, tags } => {
            let ids: Vec<&str> = scope
                .machines
                .iter()
                .filter_map(|s| match s {
                    MachineSelector::Id(id) => Some(id.as_str()),
                    MachineSelector::Tag(_) => None,
                })
                .collect();
            let tag_list: Vec<&str> = scope
                .machines
                .iter()
                .filter_map(|s| match s {
                    MachineSelector::Tag(tag) => Some(tag.as_str()),
                    MachineSelector::Id(_) => None,
                })
                .collect();
            if ids.is_empty() && tag_list.is_empty() {
                sql.push("1 = 0");
                return;
            }
            sql.push("(");
            let mut first = true;
            if !ids.is_empty() {
                sql.push(sql_name(id));
                sql.push(" IN (");
                for (i, machine) in ids.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.bind(Bind::Text((*machine).to_owned()));
                }
                sql.push(")");
                first = false;
            }
            for tag in tag_list {
                if !first {
                    sql.push(" OR ");
                }
                render_like(sql, sql_name(tags), Bind::Text(has_pattern(tag)));
                first = false;
            }
            sql.push(")");
        }
    }
}

fn resolve_columns(
    table: &'static Table,
    names: &[String],
) -> Result<Vec<&'static Column>, StoreError> {
    if names.is_empty() {
        return Ok(table.columns.iter().collect());
    }
    let mut columns: Vec<&'static Column> = Vec::with_capacity(names.len());
    for name in names {
        let column = table.lookup(name)?;
        if columns.iter().any(|c| c.name == column.name) {
            return Err(invalid(format!("column {name:?} is listed twice")));
        }
        columns.push(column);
    }
    Ok(columns)
}

fn resolve_order(
    table: &'static Table,
    query: &TableQuery,
) -> Result<Vec<(&'static Column, bool)>, StoreError> {
    if query.sort.len() > MAX_SORT_KEYS {
        return Err(invalid(format!(
            "at most {MAX_SORT_KEYS} sort keys are allowed, not {}",
            query.sort.len()
        )));
    }
    let requested: Vec<(&str, bool)> = if query.sort.is_empty() {
        table.default_sort.to_vec()
    } else {
        query
            .sort
            .iter()
            .map(|k| (k.column.as_str(), k.desc))
            .collect()
    };
    let mut order: Vec<(&'static Column, bool)> = Vec::with_capacity(requested.len() + 1);
    for (name, desc) in requested {
        let column = table.lookup(name)?;
        if column.kind == Kind::Json {
            return Err(invalid(format!(
                "column {name:?} holds JSON documents and cannot be sorted on"
            )));
        }
        if order.iter().any(|(c, _)| c.name == column.name) {
            return Err(invalid(format!("column {name:?} is sorted on twice")));
        }
        order.push((column, desc));
    }
    // The unique key makes the order total, which keyset pagination needs.
    if !order.iter().any(|(c, _)| c.name == table.key) {
        order.push((table.lookup(table.key)?, false));
    }
    Ok(order)
}

/// Checks `query` against the whitelist and builds its SQL. `scope` restricts the rows to what
/// one user may see (the API passes the caller's unless they are an admin).
pub(crate) fn plan(query: &TableQuery, scope: Option<&TableScope>) -> Result<Plan, StoreError> {
    let table = schema::table(&query.table).ok_or_else(|| {
        invalid(format!(
            "unknown table {:?}; tables: {}",
            short(&Value::String(query.table.clone())),
            schema::table_names()
        ))
    })?;
    let limit = match query.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {n}"
            )));
        }
    };
    let output = resolve_columns(table, &query.columns)?;
    let order = resolve_order(table, query)?;
    if query.filters.len() > MAX_FILTERS {
        return Err(invalid(format!(
            "at most {MAX_FILTERS} filters are allowed, not {}",
            query.filters.len()
        )));
    }
    let conditions = query
        .filters
        .iter()
        .map(|f| condition(table, f))
        .collect::<Result<Vec<_>, _>>()?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| cursor::decode(c, table, &order))
        .transpose()?;

    let mut fetched = output.clone();
    for (column, _) in &order {
        if !fetched.iter().any(|c| c.name == column.name) {
            fetched.push(column);
        }
    }

    let mut count = Sql::default();
    count.push("SELECT COUNT(*) FROM ");
    count.push(table.sql_name);
    render_where(&mut count, table, scope, &conditions);

    let mut select = Sql::default();
    select.push("SELECT ");
    select.push(&fetched.iter().map(|c| c.sql).collect::<Vec<_>>().join(", "));
    select.push(" FROM ");
    select.push(table.sql_name);
    render_where(&mut select, table, scope, &conditions);
    if let Some(after) = &after {
        select.push(" AND ");
        render_keyset(&mut select, &order, after);
    }
    select.push(" ORDER BY ");
    for (i, (column, desc)) in order.iter().enumerate() {
        if i > 0 {
            select.push(", ");
        }
        select.push(column.sql);
        select.push(if *desc {
            " DESC NULLS LAST"
        } else {
            " ASC NULLS FIRST"
        });
    }
    let _ = write!(select.text, " LIMIT {}", u64::from(limit) + 1);

    Ok(Plan {
        select,
        count,
        fetched,
        table,
        output,
        order,
        limit: limit as usize,
    })
}

impl Plan {
    /// Builds the page from the fetched rows (values in `fetched` order) and the total.
    pub(crate) fn finish(&self, mut rows: Vec<Vec<Value>>, total: i64) -> TableResult {
        let next_cursor = if rows.len() > self.limit {
            rows.truncate(self.limit);
            rows.last().map(|last| {
                let keys = self
                    .order
                    .iter()
                    .map(|(column, _)| self.value_of(last, column))
                    .collect();
                cursor::encode(self.table, &self.order, keys)
            })
        } else {
            None
        };
        let rows = rows
            .iter()
            .map(|row| {
                self.output
                    .iter()
                    .map(|column| (column.name.to_owned(), self.value_of(row, column)))
                    .collect::<Map<String, Value>>()
            })
            .collect();
        TableResult {
            rows,
            total: u64::try_from(total).unwrap_or(0),
            next_cursor,
        }
    }

    fn value_of(&self, row: &[Value], column: &Column) -> Value {
        self.fetched
            .iter()
            .position(|c| c.name == column.name)
            .and_then(|i| row.get(i))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{FilterOp, TableFilter};
    use berth_types::Username;
    use serde_json::json;
    use uuid::Uuid;

    fn query(value: Value) -> TableQuery {
        serde_json::from_value(value).unwrap()
    }

    fn refused(value: Value) -> String {
        match plan(&query(value), None) {
            Err(StoreError::InvalidQuery(message)) => message,
            other => panic!("expected InvalidQuery, got {other:?}"),
        }
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let hostile = "x' OR '1'='1";
        let plan = plan(
            &TableQuery {
                table: "workspaces".into(),
                filters: vec![TableFilter {
                    column: "template".into(),
                    op: FilterOp::Eq,
                    value: json!(hostile),
                }],
                ..TableQuery::default()
            },
            Some(&TableScope::new(Username::new("alice").unwrap())),
        )
        .unwrap();
        assert!(!plan.select.text.contains(hostile), "{}", plan.select.text);
        assert_eq!(
            plan.count.text,
            "SELECT COUNT(*) FROM workspaces WHERE 1 = 1 AND owner = $1 AND template = $2"
        );
        assert_eq!(
            plan.count.binds,
            vec![Bind::Text("alice".into()), Bind::Text(hostile.into())]
        );
        assert!(
            plan.select
                .text
                .ends_with("ORDER BY created_at DESC NULLS LAST, id ASC NULLS FIRST LIMIT 51"),
            "{}",
            plan.select.text
        );
    }

    #[test]
    fn unknown_names_and_wrong_types_are_refused() {
        assert!(refused(json!({"table": "users"})).contains("unknown table"));
        assert!(refused(json!({"table": "login_attempts"})).contains("unknown table"));
        assert!(
            refused(json!({"table": "workspaces", "columns": ["id", "password"]}))
                .contains("unknown column \"password\"")
        );
        assert!(
            refused(json!({"table": "workspaces", "columns": ["id; DROP TABLE workspaces"]}))
                .contains("unknown column")
        );
        let cases = [
            json!({"column": "persistent", "op": "eq", "value": "yes"}),
            json!({"column": "id", "op": "eq", "value": "not-a-uuid"}),
            json!({"column": "created_at", "op": "gt", "value": "yesterday"}),
            json!({"column": "created_at", "op": "gt", "value": 1714560000}),
            json!({"column": "state", "op": "eq", "value": "exploded"}),
            json!({"column": "state", "op": "gt", "value": "running"}),
            json!({"column": "owner", "op": "eq", "value": null}),
            json!({"column": "expires_at", "op": "lt", "value": null}),
            json!({"column": "owner", "op": "in", "value": "alice"}),
            json!({"column": "owner", "op": "eq", "value": ["alice"]}),
            json!({"column": "owner", "op": "eq", "value": "x".repeat(2000)}),
        ];
        for filter in cases {
            refused(json!({"table": "workspaces", "filters": [filter]}));
        }
        refused(json!({"table": "audit", "filters": [{"column": "id", "op": "gt", "value": 1.5}]}));
        refused(json!({"table": "audit", "sort": [{"column": "details"}]}));
        refused(
            json!({"table": "audit", "filters": [{"column": "details", "op": "eq", "value": "{}"}]}),
        );
        refused(json!({"table": "workspaces", "limit": 0}));
        refused(json!({"table": "workspaces", "limit": 501}));
        refused(json!({"table": "workspaces", "sort": [{"column": "owner"}, {"column": "owner"}]}));
        refused(json!({"table": "workspaces", "columns": ["id", "id"]}));
        let many: Vec<_> = (0..101).map(|i| json!(format!("u{i}"))).collect();
        assert!(
            refused(json!({"table": "workspaces", "filters": [{"column": "owner", "op": "in", "value": many}]}))
                .contains("at most 100")
        );
        // Unknown fields and operators never reach the planner: the JSON does not parse.
        assert!(serde_json::from_value::<TableQuery>(json!({"table": "x", "offset": 5})).is_err());
        assert!(
            serde_json::from_value::<TableQuery>(json!({"table": "workspaces",
                "filters": [{"column": "owner", "op": "like", "value": "%"}]}))
            .is_err()
        );
    }

    #[test]
    fn hostile_cursors_are_refused() {
        let base = json!({"table": "workspaces", "sort": [{"column": "owner"}]});
        let with = |cursor: &str| {
            let mut q = base.clone();
            q["cursor"] = json!(cursor);
            refused(q)
        };
        assert_eq!(with("!!!"), "malformed cursor");
        assert_eq!(with(&"A".repeat(20_000)), "malformed cursor");
        let forge = |doc: Value| URL_SAFE_NO_PAD.encode(doc.to_string());
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        assert!(
            with(&forge(
                json!({"t": "workspaces", "s": [["created_at", true], ["id", false]], "k": []})
            ))
            .contains("another table or sort")
        );
        let uuid = Uuid::nil().to_string();
        assert!(
            with(&forge(
                json!({"t": "workspaces", "s": [["owner", false], ["id", false]], "k": [5, uuid]})
            ))
            .contains("must be a string")
        );
        assert_eq!(
            with(&forge(
                json!({"t": "workspaces", "s": [["owner", false], ["id", false]], "k": ["a"]})
            )),
            "malformed cursor"
        );
        // A well-formed cursor for this sort is accepted.
        let good = forge(
            json!({"t": "workspaces", "s": [["owner", false], ["id", false]], "k": ["a", uuid]}),
        );
        let mut q = query(base);
        q.cursor = Some(good);
        assert!(plan(&q, None).is_ok());
    }

    #[test]
    fn machines_tags_have_their_own_operator() {
        let planned = plan(
            &query(
                json!({"table": "machines", "columns": ["id", "user", "type"],
                "filters": [{"column": "tags", "op": "has", "value": "eu_west.1"},
                            {"column": "type", "op": "eq", "value": "web"}],
                "sort": [{"column": "user", "desc": true}]}),
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            planned.count.text,
            "SELECT COUNT(*) FROM machines WHERE 1 = 1 AND tags LIKE $1 ESCAPE '\\' AND kind = $2"
        );
        // `_` is a tag character, and a LIKE wildcard unless escaped.
        assert_eq!(planned.count.binds[0], Bind::Text("%,eu\\_west.1,%".into()));
        assert!(
            planned
                .select
                .text
                .starts_with("SELECT id, ssh_user, kind FROM machines"),
            "{}",
            planned.select.text
        );
        assert!(
            planned
                .select
                .text
                .ends_with("ORDER BY ssh_user DESC NULLS LAST, id ASC NULLS FIRST LIMIT 51"),
            "{}",
            planned.select.text
        );
        for (filter, expected) in [
            (
                json!({"column": "host", "op": "has", "value": "web"}),
                "applies to lists of tags",
            ),
            (
                json!({"column": "tags", "op": "eq", "value": "web"}),
                "filter it with \"has\"",
            ),
            (
                json!({"column": "tags", "op": "in", "value": ["web"]}),
                "filter it with \"has\"",
            ),
            (
                json!({"column": "tags", "op": "gt", "value": "web"}),
                "filter it with \"has\"",
            ),
            (
                json!({"column": "tags", "op": "has", "value": "%"}),
                "needs one tag",
            ),
            (
                json!({"column": "tags", "op": "has", "value": "a%b"}),
                "needs one tag",
            ),
            (
                json!({"column": "tags", "op": "has", "value": "Web"}),
                "needs one tag",
            ),
            (
                json!({"column": "tags", "op": "has", "value": "a,b"}),
                "needs one tag",
            ),
            (
                json!({"column": "tags", "op": "has", "value": ""}),
                "needs one tag",
            ),
            (
                json!({"column": "tags", "op": "has", "value": ["web"]}),
                "needs one tag",
            ),
            (
                json!({"column": "tags", "op": "has", "value": null}),
                "needs one tag",
            ),
            (
                json!({"column": "tags", "op": "has", "value": 5}),
                "needs one tag",
            ),
            (
                json!({"column": "enrollment", "op": "eq", "value": "online"}),
                "one of unknown",
            ),
            (
                json!({"column": "health", "op": "gt", "value": "online"}),
                "\"eq\" and \"in\"",
            ),
            (
                json!({"column": "port", "op": "eq", "value": "22"}),
                "an integer",
            ),
        ] {
            let message = refused(json!({"table": "machines", "filters": [filter]}));
            assert!(message.contains(expected), "{filter}: {message}");
        }
        // Tags sort as text; keys, probes and host keys are not columns.
        assert!(
            plan(
                &query(json!({"table": "machines", "sort": [{"column": "tags"}]})),
                None
            )
            .is_ok()
        );
        for hidden in [
            "key",
            "key_file",
            "host_key",
            "probes",
            "fingerprint",
            "ssh_user",
            "kind",
        ] {
            assert!(
                refused(json!({"table": "machines", "columns": [hidden]}))
                    .contains("unknown column"),
                "{hidden}"
            );
        }
    }

    #[test]
    fn machines_are_scoped_by_selectors() {
        let alice = Username::new("alice").unwrap();
        let scoped = |machines: &[&str]| {
            let scope = TableScope {
                user: alice.clone(),
                machines: machines.iter().map(|s| s.parse().unwrap()).collect(),
            };
            plan(&query(json!({"table": "machines"})), Some(&scope))
                .unwrap()
                .count
        };
        assert_eq!(
            scoped(&[]).text,
            "SELECT COUNT(*) FROM machines WHERE 1 = 1 AND 1 = 0"
        );
        let both = scoped(&["web-1", "tag:eu_1", "db", "tag:web"]);
        assert_eq!(
            both.text,
            "SELECT COUNT(*) FROM machines WHERE 1 = 1 AND (id IN ($1, $2) \
             OR tags LIKE $3 ESCAPE '\\' OR tags LIKE $4 ESCAPE '\\')"
        );
        assert_eq!(
            both.binds,
            vec![
                Bind::Text("web-1".into()),
                Bind::Text("db".into()),
                Bind::Text("%,eu\\_1,%".into()),
                Bind::Text("%,web,%".into()),
            ]
        );
        assert_eq!(
            scoped(&["tag:web"]).text,
            "SELECT COUNT(*) FROM machines WHERE 1 = 1 AND (tags LIKE $1 ESCAPE '\\')"
        );
        // Owner tables ignore the selectors.
        let scope = TableScope {
            user: alice,
            machines: vec!["web-1".parse().unwrap()],
        };
        let plan = plan(&query(json!({"table": "workspaces"})), Some(&scope)).unwrap();
        assert_eq!(
            plan.count.text,
            "SELECT COUNT(*) FROM workspaces WHERE 1 = 1 AND owner = $1"
        );
    }
}
